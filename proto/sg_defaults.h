/*
 * sg_defaults: paths and ports the daemon and the client must agree on.
 */
#ifndef SOCKSGATE_SG_DEFAULTS_H
#define SOCKSGATE_SG_DEFAULTS_H

#define SG_CONFIG_PATH "/etc/socksgate/socksgated.conf"
/* Overridable at build time (OpenWrt: /var/run/socksgate/control.sock). */
#ifndef SG_CONTROL_PATH
#define SG_CONTROL_PATH "/run/socksgate/control.sock"
#endif
#define SG_SOCKS_PORT 1080
/* The session process's account when `session-user` is not given: an
 * account with no files of its own (a dedicated one is better:
 * docs/privsep.md). */
#ifndef SG_SESSION_USER
#define SG_SESSION_USER "nobody"
#endif

#endif
