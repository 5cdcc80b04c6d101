/*
 * priv: least privilege.  The daemon starts as root (or with
 * CAP_NET_ADMIN from systemd), opens what needs privileges (listeners on
 * any port, the users file, the nftables and conntrack netlink sockets,
 * the control socket, RLIMIT_NOFILE), then runs as `user NAME` with
 * CAP_NET_ADMIN alone: the nftables table, conntrack deletes, dumps and
 * events and SO_RCVBUFFORCE need it for as long as the daemon runs.
 * Must not: know the server, the loop or the configuration's layout.
 */
#ifndef SOCKSGATE_PRIV_H
#define SOCKSGATE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct priv_user {
	char name[33];
	uid_t uid;
	gid_t gid;
	/* false when the process already runs as the user (a unit's User=)
	 * and there is nothing to change. */
	bool switch_needed;
};

/* Looks NAME up (getpwnam) and checks that the process can become it:
 * root can; another user only if it already is NAME.  Refuses uid 0.
 * Returns 0 with *u filled, or -1 with err set. */
int priv_lookup(const char *name, struct priv_user *u, char *err,
		size_t errlen);

/* Sets no_new_privs: neither the daemon nor anything it might execute can
 * gain privileges (setuid bits, file capabilities).  Threads created
 * later inherit it, so main() calls this before starting any.  0 or -1
 * with errno. */
int priv_no_new_privs(void);

/* Becomes u: supplementary groups = u's group, gid, uid (real, effective
 * and saved), every capability dropped except CAP_NET_ADMIN (permitted
 * and effective; bounding set reduced to it, no inheritable nor
 * ambient).  Then checks that root cannot be regained.  Other threads
 * follow the uid change (glibc) and keep no capability.  Returns 0, or -1
 * with err set; after -1 the process must exit: it may hold a mix. */
int priv_drop(const struct priv_user *u, char *err, size_t errlen);
/* The session process (`session-user`): becomes u with no capability at
 * all (bounding set emptied); only from root.  0, or -1 with err set. */
int priv_drop_all(const struct priv_user *u, char *err, size_t errlen);

#define PRIV_CAP_NET_ADMIN (1u << 12)
/* Keeps only the capabilities in keep (a mask of all 64 bits), without
 * changing uid: bounding set, ambient set, then permitted and effective.
 * 0, or -1 with err set. */
int priv_limit(uint64_t keep, char *err, size_t errlen);
/* PR_SET_DUMPABLE 0: no core dump, no ptrace by the same uid, /proc/PID
 * owned by root.  0 or -1 with errno. */
int priv_no_dump(void);

#endif
