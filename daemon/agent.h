/*
 * agent: the kernel agent, the privileged half of privilege separation
 * (docs/privsep.md).  It owns the association table (assoc.c with the
 * nftables and conntrack back ends) and holds CAP_NET_ADMIN and nothing
 * else.  It parses nothing that came from the network: its only inputs
 * are the configuration file and the fixed-size messages of kmsg.h from
 * the session process, each checked by kmsg_check() and then against its
 * own configuration (agent_check_open) before anything reaches the kernel.
 *
 * If the session process goes (its channel closes), every association
 * ends (elements and conntrack entries); the supervisor then hands over
 * the channel of a new one.  If the agent goes, the kernel removes the
 * table it owns.
 */
#ifndef SOCKSGATE_AGENT_H
#define SOCKSGATE_AGENT_H

#include <stdint.h>
#include <sys/socket.h>

#include "cfg.h"
#include "kmsg.h"

/* Exit status of an agent that found another socksgated owning the table:
 * the supervisor stops without a word of its own. */
#define AGENT_EXIT_OWNED 3

struct agent_opts {
	const char *cfg_path; /* re-read on SIGHUP */
	struct cfg *cfg;      /* loaded; the agent takes it over */
	int sup_fd;	      /* supervisor channel, or -1 */
	int session_fd;	      /* a session channel at once (-a), or -1 */
	bool debug;	      /* -d outlives reloads */
};

/* Runs the agent until SIGTERM or the supervisor's end (or, with
 * session_fd and no sup_fd, the end of that one channel).  Returns the
 * process's exit status. */
int agent_main(const struct agent_opts *o);

/* Warns about each enabled PTCL the kernel cannot relay (refused X'09'). */
void agent_warn_unrelayable(const struct cfg *c);

#endif
