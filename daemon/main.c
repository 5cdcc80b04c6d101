/*
 * socksgated: SOCKS5 gateway daemon (RFC 1928, RFC 1929, TRANSPARENT).
 * main parses options and loads the configuration, then becomes the
 * supervisor (sup.c), which starts the kernel agent (agent.c) and the
 * session process (session_main below: srv, with the gateway's own
 * addresses from rtnl/selfaddr on its loop).  docs/privsep.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ev.h>

#include "auth.h"
#include "cfg.h"
#include "agent.h"
#include "log.h"
#include "ctl.h"
#include "ctl_cmd.h"
#include "fwcheck.h"
#include "selfaddr.h"
#include "sess.h"
#include "priv.h"
#include "sockmap.h"
#include "srv.h"
#include "sup.h"

/* After a failed dump of the local routing table, the next try. */
#define SELF_RETRY_SECS 1.0

/* The gateway's own addresses (`rule ... to self`), kept current: the
 * notification socket is watched; a failed dump keeps the previous table
 * and is retried. */
struct self_watch {
	struct selfaddr *sa;
	struct srv *srv;
	ev_io io;
	ev_timer retry;
};

static bool self_match(const void *ctx, const struct sockaddr *a)
{
	return selfaddr_match(ctx, a);
}

static void self_log(const struct selfaddr *sa)
{
	size_t n;
	const struct selfaddr_prefix *p = selfaddr_table(sa, &n);

	log_info("own addresses: %zu local routes", n);
	for (size_t i = 0; i < n; i++) {
		char ip[INET6_ADDRSTRLEN];
		inet_ntop(p[i].family, p[i].addr, ip, sizeof(ip));
		log_debug("own address %s/%u %s", ip, p[i].plen,
			  p[i].type == RTN_LOCAL       ? "local"
			  : p[i].type == RTN_BROADCAST ? "broadcast"
						       : "anycast");
	}
}

static void self_updated(struct self_watch *w, int rc)
{
	if (rc < 0) {
		log_warn("own addresses: local routing table dump failed, "
			 "retrying in %.0f s",
			 SELF_RETRY_SECS);
		ev_timer_set(&w->retry, SELF_RETRY_SECS, 0.);
		ev_timer_start(w->srv->loop, &w->retry);
		return;
	}
	if (rc == 0)
		return;
	self_log(w->sa);
	/* An association whose DST just became one of ours ends now if
	 * the rules deny `to self`. */
	sess_transparent_recheck(w->srv);
}

static void self_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct self_watch *w = io->data;
	struct selfaddr_stats a, b;
	int rc;

	(void)loop;
	(void)revents;
	selfaddr_get_stats(w->sa, &a);
	rc = selfaddr_process(w->sa);
	selfaddr_get_stats(w->sa, &b);
	log_debug("own addresses: woken, %llu notifications%s, %s",
		  (unsigned long long)(b.notifications - a.notifications),
		  b.overruns != a.overruns ? " (some lost)" : "",
		  b.dumps == a.dumps ? "no dump"
		  : rc > 0	     ? "table dumped, changed"
		  : rc == 0	     ? "table dumped, unchanged"
				     : "table dump failed");
	self_updated(w, rc);
}

static void self_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct self_watch *w = t->data;

	(void)loop;
	(void)revents;
	self_updated(w, selfaddr_refresh(w->sa));
}

/* Fails closed: without its own addresses the daemon cannot honour a
 * `deny to self`.  Returns 0 or -1 after logging why. */
static int self_start(struct self_watch *w, struct srv *srv)
{
	char err[256];

	w->srv = srv;
	w->sa = selfaddr_open(err, sizeof(err));
	if (w->sa == NULL) {
		log_error("own addresses: %s", err);
		return -1;
	}
	self_log(w->sa);
	srv->self.match = self_match;
	srv->self.ctx = w->sa;
	ev_io_init(&w->io, self_io_cb, selfaddr_fd(w->sa), EV_READ);
	w->io.data = w;
	ev_io_start(srv->loop, &w->io);
	ev_init(&w->retry, self_retry_cb);
	w->retry.data = w;
	return 0;
}

static void self_stop(struct self_watch *w)
{
	if (w->sa == NULL)
		return;
	ev_io_stop(w->srv->loop, &w->io);
	ev_timer_stop(w->srv->loop, &w->retry);
	memset(&w->srv->self, 0, sizeof(w->srv->self));
	selfaddr_close(w->sa);
	w->sa = NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: socksgated [-fnd] [-c FILE]\n"
		"  -c FILE  configuration file (default " CFG_DEFAULT_PATH ")\n"
		"  -f       stay in the foreground, log to stderr\n"
		"  -n       check the configuration and exit 0 or 1\n"
		"  -d       debug logging (overrides log-level)\n"
		"  -a FD    run the kernel agent alone, serving the session\n"
		"           channel FD (a SOCK_SEQPACKET socket; for tests)\n"
		"  -V       print the version\n");
}

/* connect-relay: loads the kernel relay (needs privileges: in the
 * session process before its drop).  `sockmap` that cannot load refuses to
 * start.  `auto` is splice: on the kernel measured (6.18) the kernel relay
 * is slower than splice, one stream and 100 (docs/benchmarks.md).
 * Returns 0, or -1 after logging why. */
static int relay_init(struct srv *srv)
{
	enum cfg_relay mode = srv->cfg.connect_relay;
	char err[256];

	if (mode == CFG_RELAY_SPLICE) {
		log_info("connect-relay splice");
		return 0;
	}
	if (mode == CFG_RELAY_AUTO) {
		log_info("connect-relay auto: splice (the kernel relay, "
			 "sockmap, is slower on the kernels measured: set "
			 "connect-relay sockmap to use it)");
		return 0;
	}
	srv->sockmap = sockmap_init(err, sizeof(err));
	if (srv->sockmap == NULL && mode == CFG_RELAY_SOCKMAP) {
		log_error("connect-relay sockmap: %s", err);
		return -1;
	}
	if (srv->sockmap == NULL)
		log_info("connect-relay auto: splice (sockmap unavailable: %s)",
			 err);
	else
		log_info("connect-relay %s: sockmap",
			 mode == CFG_RELAY_AUTO ? "auto" : "sockmap");
	return 0;
}

/* Descriptors inherited from whoever started the daemon (but stdin,
 * stdout, stderr and, with -a, the agent's channel) would reach the
 * session process: closed first. */
static void close_inherited(int keep)
{
#ifdef SYS_close_range
	if (keep < 0 ? syscall(SYS_close_range, 3u, ~0u, 0u) == 0
		     : (keep == 3 || syscall(SYS_close_range, 3u,
					     (unsigned)keep - 1, 0u) == 0) &&
			       syscall(SYS_close_range, (unsigned)keep + 1, ~0u,
				       0u) == 0)
		return;
#endif
	for (int fd = 3; fd < 65536; fd++)
		if (fd != keep)
			close(fd);
}

struct session_arg {
	const char *path;
	bool debug;
	struct priv_user user; /* session-user */
};

/* The session process: forked by the supervisor, still root.  Opens what
 * needs privileges, becomes session-user with no capability, serves. */
static int session_main(void *argp, struct cfg *cfg, int agent_fd, int sup_fd)
{
	static struct srv srv; /* large; one per process */
	struct session_arg *arg = argp;
	struct self_watch self = {.sa = NULL};
	struct ev_loop *loop;
	char err[512];
	int status = SUP_SESSION_START_FAILED;
	bool fds_taken = false;

	srv.cfg = *cfg;
	snprintf(srv.cfg_path, sizeof(srv.cfg_path), "%s", arg->path);
	srv.debug = arg->debug;
	srv.ctl_handler = ctl_cmd_answer;
	loop = ev_default_loop(EVBACKEND_EPOLL);
	if (loop == NULL) {
		log_error("cannot initialise libev with epoll");
		return status;
	}
	if (relay_init(&srv) < 0 || srv_open(&srv, loop) < 0)
		goto out;
	if (ctl_chown(srv.ctl, arg->user.uid, arg->user.gid) < 0)
		log_warn("control %s: chown to %s", srv.cfg.control_path,
			 arg->user.name);
	/* Before any thread starts (password workers): they would keep
	 * their capabilities. */
	if (priv_drop_all(&arg->user, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto out;
	}
	if (priv_no_new_privs() < 0 || priv_no_dump() < 0)
		log_warn("prctl");
	fds_taken = true;
	if (srv_start(&srv, agent_fd, sup_fd) < 0 ||
	    self_start(&self, &srv) < 0)
		goto out;
	log_info("session process: serving as %s (uid %u) with no capability",
		 arg->user.name, (unsigned)arg->user.uid);
	srv_run(&srv);
	status = srv.status;
out:
	if (!fds_taken) {
		close(agent_fd);
		close(sup_fd);
	}
	self_stop(&self);
	srv_free(&srv);
	ev_loop_destroy(loop);
	return status;
}

int main(int argc, char **argv)
{
	static struct cfg cfg;
	struct session_arg sarg = {.path = CFG_DEFAULT_PATH};
	struct priv_user user = {.switch_needed = false};
	const char *path = CFG_DEFAULT_PATH;
	bool foreground = false, check = false, debug = false;
	int agent_fd = -1;
	char err[512];
	int ch;

	while ((ch = getopt(argc, argv, "c:fnda:Vh")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'n':
			check = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'a': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end != '\0' || v < 3 || v > 65535) {
				usage(stderr);
				return 1;
			}
			agent_fd = (int)v;
			break;
		}
		case 'V':
			printf("socksgated %s\n", SOCKSGATE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	close_inherited(agent_fd);
	log_init(1, LOG_LVL_INFO, "socksgated");
	if (cfg_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* Both accounts must exist, and (but for -n) be reachable. */
	if ((cfg.user[0] != '\0' &&
	     priv_lookup(cfg.user, &user, err, sizeof(err)) < 0) ||
	    priv_lookup(cfg.session_user, &sarg.user, err, sizeof(err)) < 0) {
		if (!check || strstr(err, "no such user") ||
		    strstr(err, "uid 0")) {
			fprintf(stderr, "%s: %s\n", path, err);
			return 1;
		}
	}
	/* By uid, not name: two names for one uid would let the session
	 * process signal the agent. */
	if (sarg.user.name[0] &&
	    sarg.user.uid == (cfg.user[0] ? user.uid : geteuid())) {
		fprintf(stderr,
			"%s: session-user %s has the kernel agent's uid %u: "
			"name an account of its own\n",
			path, sarg.user.name, (unsigned)sarg.user.uid);
		return 1;
	}
	if (check) {
		struct auth_db *db;
		if (srv_load_users(&cfg, &db) < 0)
			return 1;
		auth_free(db);
		agent_warn_unrelayable(&cfg);
		fwcheck_once();
		if (cfg.connect_relay == CFG_RELAY_SOCKMAP) {
			struct sockmap *sm = sockmap_init(err, sizeof(err));
			if (sm == NULL) {
				fprintf(stderr,
					"%s: connect-relay sockmap: %s\n", path,
					err);
				cfg_free(&cfg);
				return 1;
			}
			sockmap_free(sm);
		}
		cfg_free(&cfg);
		printf("%s: configuration OK\n", path);
		return 0;
	}
	log_init(foreground,
		 debug ? LOG_LVL_DEBUG : (enum log_level)cfg.log_level,
		 "socksgated");
	if (agent_fd >= 0) {
		struct agent_opts ao = {.cfg_path = path,
					.cfg = &cfg,
					.sup_fd = -1,
					.session_fd = agent_fd,
					.debug = debug};
		return agent_main(&ao);
	}
	if (!foreground && daemon(0, 0) < 0)
		fatal("daemon");
	/* Neither process, nor anything they might execute, can gain
	 * privileges (setuid bits, file capabilities); the supervisor keeps
	 * only what it needs to start them (docs/privsep.md). */
	if (priv_no_new_privs() < 0)
		log_warn("prctl(PR_SET_NO_NEW_PRIVS)");
	if (priv_limit(SUP_CAPS, err, sizeof(err)) < 0)
		log_warnx("%s", err);
	sarg.path = path;
	sarg.debug = debug;
	struct sup_opts so = {.cfg_path = path,
			      .cfg = &cfg,
			      .debug = debug,
			      .session_main = session_main,
			      .session_arg = &sarg};
	int rc = sup_run(&so);
	cfg_free(&cfg);
	log_info("socksgated stopped");
	return rc;
}
