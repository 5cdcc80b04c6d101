/*
 * priv: see priv.h.  Raw capget/capset (linux/capability.h) rather than
 * libcap: three calls do not justify a library.  The order matters:
 * PR_SET_KEEPCAPS before the uid change (else it clears the permitted
 * set), the bounding set while CAP_SETPCAP is still held, groups before
 * gid before uid (each needs the privilege the next one drops), and
 * capset last, which may only shrink the permitted set kept across it.
 */
#include "priv.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PRIV_KEEP (1u << CAP_NET_ADMIN) /* CAP_NET_ADMIN is 12 */

static int caps_get(struct __user_cap_data_struct d[2]);

/* CAP_SETUID and CAP_SETGID effective (the unit's supervisor: not root). */
static bool priv_can_setuid(void)
{
	struct __user_cap_data_struct d[2];

	return caps_get(d) == 0 && (d[0].effective & (1u << CAP_SETUID)) &&
	       (d[0].effective & (1u << CAP_SETGID));
}

int priv_lookup(const char *name, struct priv_user *u, char *err, size_t errlen)
{
	struct passwd *pw;

	memset(u, 0, sizeof(*u));
	if (strlen(name) >= sizeof(u->name)) {
		snprintf(err, errlen, "user %s: name too long", name);
		return -1;
	}
	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL) {
		snprintf(err, errlen, "user %s: %s", name,
			 errno ? strerror(errno) : "no such user");
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen,
			 "user %s: uid 0; name an unprivileged account", name);
		return -1;
	}
	strcpy(u->name, name);
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	if (getuid() == u->uid && geteuid() == u->uid)
		u->switch_needed = false;
	else if (geteuid() == 0 || priv_can_setuid())
		u->switch_needed = true;
	else {
		snprintf(
			err, errlen,
			"user %s: running as uid %u without CAP_SETUID: cannot "
			"become another user",
			name, (unsigned)geteuid());
		return -1;
	}
	return 0;
}

int priv_no_new_privs(void)
{
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static int caps_get(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};

	return (int)syscall(SYS_capget, &h, d);
}

/* keep: a mask of all 64 capability bits. */
static int caps_set(uint64_t keep)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	d[0].effective = d[0].permitted = (uint32_t)keep;
	d[1].effective = d[1].permitted = (uint32_t)(keep >> 32);
	return (int)syscall(SYS_capset, &h, d);
}

/* Becomes u with the capabilities in keep (a mask of the first 32). */
static int priv_become(const struct priv_user *u, uint64_t keep, char *err,
		       size_t errlen)
{
	struct __user_cap_data_struct d[2];
	const char *step;
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	step = "prctl(PR_SET_KEEPCAPS)";
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		goto fail;
	/* Every capability the kernel knows (PR_CAPBSET_READ fails past the
	 * last one) leaves the bounding set, but the one kept. */
	step = "prctl(PR_CAPBSET_DROP)";
	for (int cap = 0; cap < 64 && prctl(PR_CAPBSET_READ, cap) >= 0; cap++)
		if (!(keep & (1ull << cap)) &&
		    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			goto fail;
	step = "prctl(PR_CAP_AMBIENT_CLEAR_ALL)";
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    errno != EINVAL) /* kernels before 4.3 have no ambient set */
		goto fail;
	step = "setgroups";
	if (setgroups(1, &u->gid) < 0)
		goto fail;
	step = "setresgid";
	if (setresgid(u->gid, u->gid, u->gid) < 0)
		goto fail;
	step = "setresuid";
	if (setresuid(u->uid, u->uid, u->uid) < 0)
		goto fail;
	step = "capset";
	if (caps_set(keep) < 0)
		goto fail;
	step = "prctl(PR_SET_KEEPCAPS, 0)";
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		goto fail;
	/* Check, as OpenBSD daemons do, that there is no way back. */
	if (getresuid(&ruid, &euid, &suid) < 0 ||
	    getresgid(&rgid, &egid, &sgid) < 0 || ruid != u->uid ||
	    euid != u->uid || suid != u->uid || rgid != u->gid ||
	    egid != u->gid || sgid != u->gid || setuid(0) == 0 ||
	    seteuid(0) == 0) {
		snprintf(err, errlen,
			 "user %s: the uid/gid change did not hold", u->name);
		return -1;
	}
	if (caps_get(d) < 0 || d[0].effective != keep ||
	    d[0].permitted != keep || d[0].inheritable != 0 ||
	    d[1].effective != 0 || d[1].permitted != 0 ||
	    d[1].inheritable != 0) {
		snprintf(err, errlen,
			 "user %s: capabilities other than the ones kept "
			 "remain",
			 u->name);
		return -1;
	}
	return 0;
fail:
	snprintf(err, errlen, "user %s: %s: %s", u->name, step,
		 strerror(errno));
	return -1;
}

int priv_drop(const struct priv_user *u, char *err, size_t errlen)
{
	if (!u->switch_needed)
		return priv_limit(PRIV_KEEP, err, errlen);
	return priv_become(u, PRIV_KEEP, err, errlen);
}

int priv_drop_all(const struct priv_user *u, char *err, size_t errlen)
{
	if (!u->switch_needed) {
		snprintf(err, errlen,
			 "session-user %s: the daemon already runs as it; the "
			 "session process needs an account of its own",
			 u->name);
		return -1;
	}
	return priv_become(u, 0, err, errlen);
}

int priv_limit(uint64_t keep, char *err, size_t errlen)
{
	struct __user_cap_data_struct d[2];
	const char *step = "prctl(PR_CAPBSET_DROP)";

	for (int cap = 0; cap < 64 && prctl(PR_CAPBSET_READ, cap) >= 0; cap++)
		if (!(keep & (1ull << cap)) &&
		    prctl(PR_CAPBSET_READ, cap) == 1 &&
		    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			goto fail;
	step = "prctl(PR_CAP_AMBIENT_CLEAR_ALL)";
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    errno != EINVAL)
		goto fail;
	step = "capget";
	if (caps_get(d) < 0)
		goto fail;
	step = "capset";
	if (caps_set(keep & ((uint64_t)d[1].permitted << 32 | d[0].permitted)) <
	    0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "capabilities: %s: %s", step, strerror(errno));
	return -1;
}

int priv_no_dump(void)
{
	return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
