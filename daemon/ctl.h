/*
 * ctl: the control socket's transport (`control PATH`: a Unix stream
 * socket, mode 0600 in a 0700 directory, root or the daemon's own user
 * only).  One request line per connection, the owner's answer, then
 * close.  What the answers say is ctl_cmd.c's; this module knows nothing
 * of the server.
 */
#ifndef SOCKSGATE_CTL_H
#define SOCKSGATE_CTL_H

#include <ev.h>
#include <sys/types.h>

struct ctl;
struct ctl_conn;

/* Answers one request line (no newline) by writing to c. */
typedef void (*ctl_handler)(void *arg, const char *line, struct ctl_conn *c);

/* Opens the socket at path (creating its directory 0700); never replaces
 * a socket a live process answers on.  NULL after logging why. */
struct ctl *ctl_open(struct ev_loop *loop, const char *path,
		     ctl_handler handler, void *arg);
void ctl_close(struct ctl *ctl);
/* Hands the socket, and its directory if ctl_open made it, to uid:gid
 * before the daemon becomes that user (`user`), so that it can still
 * remove them at exit; root passes any mode and keeps access.  NULL ctl:
 * nothing to do.  0, or -1 with errno. */
int ctl_chown(struct ctl *ctl, uid_t uid, gid_t gid);
const char *ctl_path(const struct ctl *ctl);

/* Appends to the answer (out of memory: the connection is closed). */
void ctl_printf(struct ctl_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends a JSON string, quoted and escaped. */
void ctl_json_str(struct ctl_conn *c, const char *s);

#endif
