/*
 * srv: the daemon's context: configuration, listeners, signals, the list
 * of sessions, counters, and the kernel-facing back ends.  Passed to every
 * module instead of globals.
 */
#ifndef SOCKSGATE_SRV_H
#define SOCKSGATE_SRV_H

#include <ev.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"

struct sess;
struct auth_db;
struct auth_worker;
struct dns;
struct kagent;
struct ctl;
struct ctl_conn;
struct srclimit;
struct sockmap;

struct srv_listener {
	ev_io w;
	int fd;
	struct sockaddr_storage addr;
	struct srv *srv;
};

struct srv_stats {
	uint64_t sessions_total;
	uint64_t sessions_by_cmd[5]; /* index: SOCKS CMD, 0 = none reached */
	uint64_t auth_failures;
	uint64_t bad_requests;
	uint64_t accept_errors;
	uint64_t denied;
	uint64_t udp_denied; /* UDP datagrams the rules denied, both ways */
};

struct srv {
	struct ev_loop *loop;
	char cfg_path[PATH_MAX];
	struct cfg cfg;
	struct auth_db *auth;
	struct auth_worker *authw; /* crypt(3) off the loop */
	ev_io authw_io;
	struct dns *dns;
	struct srv_listener listeners[CFG_MAX_LISTEN];
	size_t nlisteners;
	bool accept_paused;    /* max-clients reached or fd exhaustion */
	ev_timer accept_retry; /* after EMFILE/ENFILE */
	ev_signal sig_int, sig_term, sig_hup;
	struct sess *sessions; /* doubly linked */
	unsigned nsessions;
	uint64_t next_id;
	struct srv_stats stats;
	struct srclimit *limits; /* per-source limits and penalties */
	ev_timer limits_sweep;	 /* their summaries and expiry */
	struct kagent *kagent;	 /* TRANSPARENT: the kernel agent */
	int sup_fd;		 /* the supervisor's channel: reloads */
	ev_io sup_io;
	int status;	 /* the session process's exit status */
	struct ctl *ctl; /* control socket; NULL if it failed */
	/* The kernel relay for CONNECT (connect-relay), loaded at start
	 * by the session process while still privileged; NULL: splice.
	 * srv_free frees it. */
	struct sockmap *sockmap;
	ev_io sockmap_io;
	/* What the control socket answers (ctl_cmd_answer, set by main.c:
	 * the module that reads the server is not the server's to name). */
	void (*ctl_handler)(void *srv, const char *line, struct ctl_conn *c);
	/* The gateway's own addresses for `to self` (rtnl/selfaddr, kept
	 * current by main.c). */
	struct pol_self self;
	bool stopping;
	bool debug;	  /* -d: debug logging whatever log-level says */
	uint8_t *udp_buf; /* UDP ASSOCIATE workspace (a batch of datagrams) */
};

/* What needs privileges, before the session process drops them:
 * listeners (any port), the users file, the control socket.  Returns 0,
 * or -1 after logging why. */
int srv_open(struct srv *s, struct ev_loop *loop);
/* The rest, unprivileged: resolver, limits, password workers (threads:
 * after the drop, so that none keeps a capability), the kernel agent's
 * channel agent_fd (taken over), signals.  0, or -1 after logging why. */
int srv_start(struct srv *s, int agent_fd, int sup_fd);
/* Runs the loop until SIGTERM/SIGINT, then ends every session. */
void srv_run(struct srv *s);
void srv_free(struct srv *s);
/* Called by sess when a session is freed: may resume accepting. */
void srv_session_gone(struct srv *s);
/* Loads the users file named by c (if any) into *out; -1 on error. */
int srv_load_users(const struct cfg *c, struct auth_db **out);

#endif
