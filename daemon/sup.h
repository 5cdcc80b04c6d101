/*
 * sup: the supervisor, the process socksgated starts as (docs/privsep.md).
 * It reads the configuration and nothing else; it parses no byte from
 * the network.  It starts the kernel agent (agent.c: CAP_NET_ADMIN only),
 * waits until the agent holds the table, then starts the session process
 * (`session-user`, no capability) with a fresh channel to the agent, and
 * starts a new one whenever it ends.  SIGHUP is checked here and passed
 * to both; SIGTERM stops both.  If the agent ends, the session process is
 * stopped and the supervisor exits non-zero (systemd restarts it).
 */
#ifndef SOCKSGATE_SUP_H
#define SOCKSGATE_SUP_H

#include <stdbool.h>

#include "cfg.h"

/* Exit status of a session process that could not start (listeners,
 * users file...): the supervisor stops rather than loop. */
#define SUP_SESSION_START_FAILED 2

/* What the supervisor keeps (the rest leaves the bounding set at start):
 * CAP_NET_ADMIN for the agent (and the channels' buffer sizes), SETUID,
 * SETGID and SETPCAP to make the children's accounts and capability
 * sets, KILL to signal them, CHOWN for the control socket,
 * NET_BIND_SERVICE for listeners below 1024, DAC_READ_SEARCH to read the
 * configuration and users file whoever owns them, BPF and PERFMON for the
 * session process to load `connect-relay sockmap` before its drop (each
 * kept only if the supervisor has it). */
#define SUP_CAPS                                                               \
	((1ull << 12) /* NET_ADMIN */ | (1ull << 7) /* SETUID */ |             \
	 (1ull << 6) /* SETGID */ | (1ull << 8) /* SETPCAP */ |                \
	 (1ull << 5) /* KILL */ | (1ull << 0) /* CHOWN */ |                    \
	 (1ull << 10) /* NET_BIND_SERVICE */ |                                 \
	 (1ull << 2) /* DAC_READ_SEARCH */ | (1ull << 39) /* BPF */ |          \
	 (1ull << 38) /* PERFMON */)

struct sup_opts {
	const char *cfg_path;
	struct cfg *cfg; /* loaded and checked */
	bool debug;
	/* Runs the session process (forked, still root): opens what it
	 * needs, drops privileges, serves until it ends.  agent_fd: its
	 * channel to the agent; sup_fd: the supervisor's (KMSG_RELOAD).
	 * Returns its exit status. */
	int (*session_main)(void *arg, struct cfg *cfg, int agent_fd,
			    int sup_fd);
	void *session_arg;
};

/* Returns the exit status of socksgated. */
int sup_run(const struct sup_opts *o);

#endif
