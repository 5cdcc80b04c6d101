/*
 * ctl: the control socket of socksgated (see ctl.c for the protocol);
 * `socksgate list|close|stats` are its client.
 */
#ifndef SOCKSGATE_CTL_H
#define SOCKSGATE_CTL_H

struct srv;
struct ctl;

/* Opens the socket at path (creating its directory 0700); NULL after
 * logging why. */
struct ctl *ctl_open(struct srv *srv, const char *path);
void ctl_close(struct ctl *ctl);
const char *ctl_path(const struct ctl *ctl);

#endif
