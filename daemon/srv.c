/*
 * srv: see srv.h.  Listeners and accept, signals, configuration reload,
 * and shutdown.  Accept never spins: when fds run out (EMFILE, ENFILE) or
 * max-clients is reached the listeners are paused, and resumed by a timer
 * or when a session ends.
 */
#include "srv.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "kagent.h"
#include "kmsg.h"
#include "auth.h"
#include "ctl.h"
#include "dns.h"
#include "log.h"
#include "sess.h"
#include "sockmap.h"
#include "srclimit.h"

#define SRV_ACCEPT_BURST 64
#define SRV_ACCEPT_RETRY 0.5
#define SRV_LIMITS_SWEEP 1.0

static void srv_listeners_set(struct srv *s, bool on)
{
	for (size_t i = 0; i < s->nlisteners; i++) {
		if (on)
			ev_io_start(s->loop, &s->listeners[i].w);
		else
			ev_io_stop(s->loop, &s->listeners[i].w);
	}
}

static void srv_pause_accept(struct srv *s)
{
	if (!s->accept_paused) {
		s->accept_paused = true;
		srv_listeners_set(s, false);
	}
}

static void srv_maybe_resume(struct srv *s)
{
	if (s->accept_paused && !s->stopping &&
	    !ev_is_active(&s->accept_retry) &&
	    s->nsessions < s->cfg.max_clients) {
		s->accept_paused = false;
		srv_listeners_set(s, true);
	}
}

void srv_session_gone(struct srv *s)
{
	srv_maybe_resume(s);
}

static void srv_accept_retry_cb(struct ev_loop *loop, ev_timer *w, int rev)
{
	struct srv *s = w->data;

	(void)loop;
	(void)rev;
	srv_maybe_resume(s);
}

static void srv_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct srv_listener *l = (struct srv_listener *)w;
	struct srv *s = l->srv;

	(void)revents;
	for (int i = 0; i < SRV_ACCEPT_BURST; i++) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int fd = accept4(l->fd, (struct sockaddr *)&peer, &pl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR ||
			    errno == ECONNABORTED)
				return;
			s->stats.accept_errors++;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				log_warn("accept: pausing for %.1fs",
					 SRV_ACCEPT_RETRY);
				srv_pause_accept(s);
				ev_timer_set(&s->accept_retry, SRV_ACCEPT_RETRY,
					     0.);
				ev_timer_start(loop, &s->accept_retry);
				return;
			}
			log_warn("accept");
			return;
		}
		/* Per-source limits: refused with a reset at once (no
		 * TIME_WAIT kept for a client that comes back in a loop). */
		struct srclimit_src *src;
		enum srclimit_kind why;
		if (srclimit_session_open(s->limits, (struct sockaddr *)&peer,
					  ev_now(loop), &src, &why) < 0) {
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(fd);
			continue;
		}
		if (sess_new(s, fd, &peer, src) == NULL) {
			log_warnx("out of memory for a session");
			srclimit_session_close(s->limits, src, true,
					       ev_now(loop));
			close(fd);
		}
		if (s->nsessions >= s->cfg.max_clients) {
			log_info("max-clients (%u) reached: pausing accept",
				 s->cfg.max_clients);
			srv_pause_accept(s);
			return;
		}
	}
}

static int srv_listen_open(struct srv_listener *l,
			   const struct sockaddr_storage *addr)
{
	const struct sockaddr *sa = (const struct sockaddr *)addr;
	char name[ADDR_STRLEN];
	int one = 1, fd;

	addr_str(sa, name, sizeof(name));
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		log_warn("listen %s: socket", name);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, addr_len(sa)) < 0 || listen(fd, 511) < 0) {
		log_warn("listen %s", name);
		close(fd);
		return -1;
	}
	l->fd = fd;
	l->addr = *addr;
	log_info("listening on %s", name);
	return 0;
}

static bool same_addr(const struct sockaddr_storage *a,
		      const struct sockaddr_storage *b)
{
	return addr_eq_ip((const struct sockaddr *)a,
			  (const struct sockaddr *)b) &&
	       addr_port((const struct sockaddr *)a) ==
		       addr_port((const struct sockaddr *)b);
}

/* Makes the listeners match c: keeps the ones still wanted, opens new
 * ones, closes the rest.  Returns -1 if a new one could not be opened
 * (the old set is then left as it was). */
static int srv_listeners_apply(struct srv *s, const struct cfg *c)
{
	struct srv_listener next[CFG_MAX_LISTEN];
	bool kept[CFG_MAX_LISTEN] = {false};
	size_t n = 0;

	for (size_t i = 0; i < c->nlisten; i++) {
		size_t j;
		for (j = 0; j < s->nlisteners; j++)
			if (!kept[j] &&
			    same_addr(&s->listeners[j].addr, &c->listen[i]))
				break;
		if (j < s->nlisteners) {
			kept[j] = true;
			next[n] = s->listeners[j];
			ev_io_stop(s->loop, &s->listeners[j].w);
		} else if (srv_listen_open(&next[n], &c->listen[i]) < 0) {
			for (size_t k = 0; k < n; k++) {
				bool old = false;
				for (size_t m = 0; m < s->nlisteners; m++)
					old |= next[k].fd == s->listeners[m].fd;
				if (!old)
					close(next[k].fd);
			}
			if (!s->accept_paused)
				srv_listeners_set(s, true);
			return -1;
		}
		n++;
	}
	for (size_t j = 0; j < s->nlisteners; j++) {
		if (!kept[j]) {
			ev_io_stop(s->loop, &s->listeners[j].w);
			close(s->listeners[j].fd);
		}
	}
	for (size_t i = 0; i < n; i++) {
		s->listeners[i] = next[i];
		s->listeners[i].srv = s;
		ev_io_init(&s->listeners[i].w, srv_accept_cb,
			   s->listeners[i].fd, EV_READ);
	}
	s->nlisteners = n;
	if (!s->accept_paused)
		srv_listeners_set(s, true);
	return 0;
}

int srv_load_users(const struct cfg *c, struct auth_db **out)
{
	char err[512];

	*out = NULL;
	if (c->users_file[0] == '\0')
		return 0;
	*out = auth_load(c->users_file, err, sizeof(err));
	if (*out == NULL) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

/* From the files the supervisor opened (cfg_fd, users_fd), or with
 * cfg_fd -1 (a SIGHUP sent to the session process itself) from their
 * paths, as far as session-user may read them. */
static int srv_reload(struct srv *s, int cfg_fd, int users_fd)
{
	struct cfg next;
	struct auth_db *auth = NULL;
	char err[512];

	log_info("reloading %s", s->cfg_path);
	if ((cfg_fd >= 0
		     ? cfg_load_fd(cfg_fd, s->cfg_path, &next, err, sizeof(err))
		     : cfg_load(s->cfg_path, &next, err, sizeof(err))) < 0) {
		log_error("%s; keeping the running configuration", err);
		return -1;
	}
	if (cfg_fd >= 0 && next.users_file[0] != '\0') {
		if (users_fd < 0 ||
		    (auth = auth_load_fd(users_fd, next.users_file, err,
					 sizeof(err))) == NULL) {
			log_error("%s; keeping the running configuration",
				  users_fd < 0 ? "no users file" : err);
			cfg_free(&next);
			return -1;
		}
	} else if (cfg_fd < 0 && srv_load_users(&next, &auth) < 0) {
		log_error("keeping the running configuration");
		cfg_free(&next);
		return -1;
	}
	if (srv_listeners_apply(s, &next) < 0) {
		log_error("keeping the running configuration");
		auth_free(auth);
		cfg_free(&next);
		return -1;
	}
	auth_free(s->auth);
	s->auth = auth;
	cfg_free(&s->cfg);
	s->cfg = next;
	/* -d on the command line outlives reloads. */
	log_set_level(s->debug ? LOG_LVL_DEBUG
			       : (enum log_level)s->cfg.log_level);
	srclimit_configure(s->limits, &s->cfg.limits);
	/* The kernel agent reloads on its own (the supervisor signals
	 * both); the rules are the session process's. */
	if (s->kagent)
		sess_transparent_recheck(s);
	if (s->ctl == NULL || strcmp(ctl_path(s->ctl), s->cfg.control_path)) {
		ctl_close(s->ctl);
		s->ctl = ctl_open(s->loop, s->cfg.control_path, s->ctl_handler,
				  s);
	}
	if (s->cfg.connect_relay == CFG_RELAY_SOCKMAP && s->sockmap == NULL)
		log_warnx(
			"connect-relay sockmap: the program was not loaded at "
			"start; CONNECT uses splice until a restart");
	srv_maybe_resume(s);
	log_info("configuration reloaded");
	return 0;
}

static void srv_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct srv *s = w->data;

	(void)revents;
	if (w->signum == SIGHUP) {
		srv_reload(s, -1, -1);
		return;
	}
	log_info("signal %d: shutting down", w->signum);
	s->stopping = true;
	ev_break(loop, EVBREAK_ALL);
}

/* Routers run many sessions: take every fd the hard limit allows. */
static void srv_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void srv_authw_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct srv *s = w->data;

	(void)loop;
	(void)revents;
	auth_worker_process(s->authw);
}

/* Every password check's result (the pool's hook): the source's penalty,
 * and the spacing its next check keeps. */
static double srv_auth_result(void *owner, const void *key, size_t keylen,
			      const char *user, bool ok)
{
	struct srv *s = owner;

	return srclimit_auth_result(s->limits, key, keylen, user, ok,
				    ev_now(s->loop));
}

static void srv_limits_sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct srv *s = w->data;

	(void)revents;
	srclimit_sweep(s->limits, ev_now(loop));
}

static int srv_limits_init(struct srv *s)
{
	uint64_t seed = 0;

	/* The seed keeps clients from aiming at one hash chain. */
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL ^
		       (uint64_t)ev_time();
	s->limits = srclimit_new(&s->cfg.limits, seed);
	if (s->limits == NULL)
		return -1;
	ev_timer_init(&s->limits_sweep, srv_limits_sweep_cb, SRV_LIMITS_SWEEP,
		      SRV_LIMITS_SWEEP);
	s->limits_sweep.data = s;
	ev_timer_start(s->loop, &s->limits_sweep);
	return 0;
}

static void srv_sockmap_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct srv *s = w->data;

	(void)loop;
	(void)revents;
	sockmap_process(s->sockmap);
}

int srv_open(struct srv *s, struct ev_loop *loop)
{
	s->loop = loop;
	signal(SIGPIPE, SIG_IGN); /* splice(2) to a closed socket */
	srv_raise_nofile();
	if (srv_load_users(&s->cfg, &s->auth) < 0)
		return -1;
	ev_timer_init(&s->accept_retry, srv_accept_retry_cb, 0., 0.);
	s->accept_retry.data = s;
	/* Not accepting before srv_start: the listeners wait paused. */
	s->accept_paused = true;
	if (srv_listeners_apply(s, &s->cfg) < 0)
		return -1;
	s->ctl = ctl_open(s->loop, s->cfg.control_path, s->ctl_handler, s);
	return 0;
}

/* The kernel agent is gone: no association can be kept honest. */
static void srv_agent_lost(void *arg)
{
	struct srv *s = arg;

	s->status = 1;
	s->stopping = true;
	ev_break(s->loop, EVBREAK_ALL);
}

/* The supervisor's messages: reloads; its end is ours. */
static void srv_sup_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct srv *s = w->data;
	union {
		unsigned char b[KMSG_MAX + 1];
		struct kmsg_reload r;
	} u;
	int fds[2];
	const char *why;
	ssize_t n = kmsg_recv(s->sup_fd, u.b, sizeof(u.b), fds, 2);

	(void)revents;
	if (n < 0 && errno == EAGAIN)
		return;
	if (n > 0 && kmsg_check(u.b, (size_t)n, 'P', &why) == KMSG_RELOAD &&
	    fds[0] >= 0) {
		struct kmsg_reloaded done;
		memset(&done, 0, sizeof(done));
		kmsg_hdr_init(&done.h, KMSG_RELOADED, sizeof(done));
		done.ok =
			srv_reload(s, fds[0], u.r.users_fd ? fds[1] : -1) == 0;
		if (kmsg_send(s->sup_fd, &done, sizeof(done), 1000) < 0)
			log_warn("reload: telling the supervisor");
	} else if (n <= 0) {
		log_error("the supervisor is gone: stopping");
		s->status = 1;
		ev_break(loop, EVBREAK_ALL);
	} else {
		log_warnx("unexpected message from the supervisor");
	}
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int srv_start(struct srv *s, int agent_fd, int sup_fd)
{
	struct ev_loop *loop = s->loop;
	char err[256];

	s->sup_fd = sup_fd;
	if (sup_fd >= 0) {
		ev_io_init(&s->sup_io, srv_sup_cb, sup_fd, EV_READ);
		s->sup_io.data = s;
		ev_io_start(loop, &s->sup_io);
	}

	s->kagent = kagent_new(loop, agent_fd, srv_agent_lost, s);
	if (s->kagent == NULL)
		return -1;
	if (!kagent_available(s->kagent))
		log_warnx("TRANSPARENT unavailable (the kernel agent has no "
			  "nftables or conntrack): answered X'07'");
	s->dns = dns_new(loop, err, sizeof(err));
	if (s->dns == NULL) {
		log_error("resolver: %s", err);
		return -1;
	}
	if (srv_limits_init(s) < 0) {
		log_error("out of memory");
		return -1;
	}
	s->authw = auth_worker_new(s->cfg.limits.auth_workers, srv_auth_result,
				   s, err, sizeof(err));
	if (s->authw) {
		log_info("%u password check workers",
			 auth_worker_threads(s->authw));
		ev_io_init(&s->authw_io, srv_authw_cb, auth_worker_fd(s->authw),
			   EV_READ);
		s->authw_io.data = s;
		ev_io_start(loop, &s->authw_io);
	} else {
		log_warnx("%s: password checks will run on the loop", err);
	}
	ev_signal_init(&s->sig_int, srv_signal_cb, SIGINT);
	ev_signal_init(&s->sig_term, srv_signal_cb, SIGTERM);
	ev_signal_init(&s->sig_hup, srv_signal_cb, SIGHUP);
	s->sig_int.data = s->sig_term.data = s->sig_hup.data = s;
	ev_signal_start(loop, &s->sig_int);
	ev_signal_start(loop, &s->sig_term);
	ev_signal_start(loop, &s->sig_hup);
	if (s->sockmap) {
		ev_io_init(&s->sockmap_io, srv_sockmap_cb,
			   sockmap_fd(s->sockmap), EV_READ);
		s->sockmap_io.data = s;
		ev_io_start(loop, &s->sockmap_io);
	}
	s->accept_paused = false;
	srv_listeners_set(s, true);
	return 0;
}

void srv_run(struct srv *s)
{
	ev_run(s->loop, 0);
	s->stopping = true;
	srv_listeners_set(s, false);
	while (s->sessions)
		sess_end(s->sessions, SESS_END_SHUTDOWN);
}

void srv_free(struct srv *s)
{
	for (size_t i = 0; i < s->nlisteners; i++) {
		ev_io_stop(s->loop, &s->listeners[i].w);
		close(s->listeners[i].fd);
	}
	s->nlisteners = 0;
	ctl_close(s->ctl);
	s->ctl = NULL;
	ev_timer_stop(s->loop, &s->accept_retry);
	ev_signal_stop(s->loop, &s->sig_int);
	ev_signal_stop(s->loop, &s->sig_term);
	ev_signal_stop(s->loop, &s->sig_hup);
	kagent_free(s->kagent);
	s->kagent = NULL;
	if (s->sup_fd > 0) {
		ev_io_stop(s->loop, &s->sup_io);
		close(s->sup_fd);
		s->sup_fd = -1;
	}
	dns_free(s->dns);
	s->dns = NULL;
	if (s->authw) {
		ev_io_stop(s->loop, &s->authw_io);
		auth_worker_free(s->authw);
		s->authw = NULL;
	}
	auth_free(s->auth);
	s->auth = NULL;
	if (s->limits) {
		ev_timer_stop(s->loop, &s->limits_sweep);
		srclimit_free(s->limits);
		s->limits = NULL;
	}
	free(s->udp_buf);
	s->udp_buf = NULL;
	if (s->sockmap) {
		if (ev_is_active(&s->sockmap_io))
			ev_io_stop(s->loop, &s->sockmap_io);
		sockmap_free(s->sockmap);
		s->sockmap = NULL;
	}
	cfg_free(&s->cfg);
}
