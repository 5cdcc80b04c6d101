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

struct sup_opts {
	const char *cfg_path;
	struct cfg *cfg; /* loaded and checked */
	bool debug;
	/* Runs the session process (forked, still root): opens what it
	 * needs, drops privileges, serves until it ends.  Returns its exit
	 * status. */
	int (*session_main)(void *arg, struct cfg *cfg, int agent_fd);
	void *session_arg;
};

/* Returns the exit status of socksgated. */
int sup_run(const struct sup_opts *o);

#endif
