/*
 * sess_bind: the BIND command (RFC 1928 section 4).  Listen on the
 * address the gateway uses toward DST (so DST can reach it), reply with
 * it, accept one connection, only from DST.ADDR (others are refused and
 * logged), reply with the peer's address, then relay as CONNECT does
 * (sess_tcp.c).  DST 0.0.0.0 or :: names no peer: any may connect, and
 * the rules judge each one as it does.
 * Bounded by `timeout bind`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "pol.h"
#include "sess_int.h"
#include "srv.h"

/* As srv's listeners: how long accept rests when descriptors run out. */
#define BIND_ACCEPT_RETRY 0.5

static void bind_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sess *s = w->data;

	(void)loop;
	(void)revents;
	log_info("session %llu: BIND: no connection within %u s",
		 (unsigned long long)s->id, s->srv->cfg.timeout_bind);
	sess_bind_stop(s);
	sess_reply(s, S5_REP_TTL_EXPIRED, NULL);
}

static void bind_accept_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sess *s = w->data;

	(void)revents;
	ev_io_start(loop, &s->bind->lw);
}

static void bind_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sess *s = w->data;
	struct sess_bind *c = s->bind;
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	char ps[ADDR_STRLEN], want[ADDR_STRLEN];
	int fd;

	(void)revents;
	fd = accept4(c->lfd, (struct sockaddr *)&peer, &pl,
		     SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		/* The connection stays queued and the listener readable:
		 * watching it now would spin.  Retry later, as srv does;
		 * `timeout bind` still bounds the wait. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			log_warn("session %llu: BIND accept: pausing for %.1fs",
				 (unsigned long long)s->id, BIND_ACCEPT_RETRY);
			ev_io_stop(loop, &c->lw);
			ev_timer_set(&c->lretry, BIND_ACCEPT_RETRY, 0.);
			ev_timer_start(loop, &c->lretry);
		}
		return;
	}
	addr_unmap(&peer);
	/* Any peer, for an unspecified DST: the rules judge it instead. */
	if (addr_is_unusable_bnd((struct sockaddr *)&c->target) &&
	    !sess_allowed(s, (struct sockaddr *)&peer, NULL,
			  addr_port((struct sockaddr *)&c->target))) {
		close(fd);
		return;
	}
	/* Only the expected peer (unless the request left it unspecified). */
	if (!addr_is_unusable_bnd((struct sockaddr *)&c->target) &&
	    !addr_eq_ip((struct sockaddr *)&peer,
			(struct sockaddr *)&c->target)) {
		log_warnx("session %llu: BIND: refused a connection from %s "
			  "(expected %s)",
			  (unsigned long long)s->id,
			  addr_str((struct sockaddr *)&peer, ps, sizeof(ps)),
			  addr_ip_str((struct sockaddr *)&c->target, want,
				      sizeof(want)));
		close(fd);
		return;
	}
	sess_bind_stop(s);
	ev_timer_stop(loop, &s->timer);
	sess_reply(s, S5_REP_SUCCEEDED, (struct sockaddr *)&peer);
	if (s->state == SESS_CLOSING) {
		close(fd);
		return;
	}
	sess_tcp_start(s, fd);
}

/* The local address the gateway would use toward dst. */
static int local_toward(const struct sockaddr *dst,
			struct sockaddr_storage *out)
{
	socklen_t l = sizeof(*out);
	int fd = socket(dst->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = -1;

	if (fd < 0)
		return -1;
	if (connect(fd, dst, addr_len(dst)) == 0 &&
	    getsockname(fd, (struct sockaddr *)out, &l) == 0)
		rc = 0;
	close(fd);
	return rc;
}

static void bind_listen(struct sess *s)
{
	struct srv *srv = s->srv;
	struct sess_bind *c = s->bind;
	struct sockaddr_storage la;
	socklen_t ll = sizeof(la);
	struct pol_query any = {.client = &s->peer.sa,
				.cmd = POL_CMD_BIND,
				.user = s->authed ? s->user : NULL};

	/* 0.0.0.0 or ::: no peer is named yet, so no form to refuse; each
	 * peer is checked when it connects.  Any other DST is checked now
	 * (the rules refuse the forms that mean the gateway itself). */
	if (addr_is_unusable_bnd((struct sockaddr *)&c->target)
		    ? !pol_may_allow(srv->cfg.rules, srv->cfg.nrules, &any)
		    : !sess_allowed(s, (struct sockaddr *)&c->target,
				    s->setup->req.dst.atyp == S5_ATYP_DOMAIN
					    ? s->setup->req.dst.u.dom.name
					    : NULL,
				    s->setup->req.dst.port)) {
		sess_reply(s, S5_REP_NOT_ALLOWED, NULL);
		return;
	}
	if (addr_is_unusable_bnd((struct sockaddr *)&c->target) ||
	    local_toward((struct sockaddr *)&c->target, &la) < 0) {
		memset(&la, 0, sizeof(la));
		memcpy(&la, &s->local, addr_len(&s->local.sa));
	}
	addr_unmap(&la);
	addr_set_port((struct sockaddr *)&la, 0);
	c->lfd = socket(la.ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->lfd < 0 ||
	    bind(c->lfd, (struct sockaddr *)&la,
		 addr_len((struct sockaddr *)&la)) < 0 ||
	    listen(c->lfd, 1) < 0 ||
	    getsockname(c->lfd, (struct sockaddr *)&la, &ll) < 0) {
		log_warn("session %llu: BIND listen",
			 (unsigned long long)s->id);
		sess_reply(s, S5_REP_GENERAL, NULL);
		return;
	}
	addr_unmap(&la);
	ev_io_init(&c->lw, bind_accept_cb, c->lfd, EV_READ);
	c->lw.data = s;
	ev_init(&c->lretry, bind_accept_retry_cb);
	c->lretry.data = s;
	ev_io_start(srv->loop, &c->lw);
	s->state = SESS_BIND_WAIT;
	sess_reply(s, S5_REP_SUCCEEDED, (struct sockaddr *)&la);
	ev_timer_stop(srv->loop, &s->timer);
	ev_set_cb(&s->timer, bind_timeout_cb);
	ev_timer_set(&s->timer, (double)srv->cfg.timeout_bind, 0.);
	ev_timer_start(srv->loop, &s->timer);
	/* Notice the client giving up while we wait. */
	ev_io_start(srv->loop, &s->rd);
}

static void bind_resolved(void *arg, enum dns_result res,
			  const struct sockaddr_storage *addrs, size_t n)
{
	struct sess *s = arg;

	if (res != DNS_OK || n == 0) {
		sess_reply(s, S5_REP_HOST_UNREACH, NULL);
		return;
	}
	s->bind->target = addrs[0];
	addr_set_port((struct sockaddr *)&s->bind->target,
		      s->setup->req.dst.port);
	bind_listen(s);
}

void sess_bind_start(struct sess *s)
{
	s->bind = calloc(1, sizeof(*s->bind));
	if (s->bind == NULL) {
		sess_reply(s, S5_REP_GENERAL, NULL);
		return;
	}
	s->bind->lfd = -1;
	ev_io_stop(s->srv->loop, &s->rd);
	if (s->setup->req.dst.atyp != S5_ATYP_DOMAIN) {
		addr_from_s5(&s->setup->req.dst, &s->bind->target);
		addr_unmap(&s->bind->target);
		bind_listen(s);
		return;
	}
	/* The lookup is bounded by the connect timeout (sess_timer_cb
	 * replies X'04' on expiry), as CONNECT's is. */
	s->state = SESS_RESOLVING;
	ev_timer_set(&s->timer, (double)s->srv->cfg.timeout_connect, 0.);
	ev_timer_start(s->srv->loop, &s->timer);
	if (dns_resolve(s->srv->dns, s->setup->req.dst.u.dom.name, AF_UNSPEC,
			bind_resolved, s, &s->dnsq) < 0)
		sess_reply(s, S5_REP_GENERAL, NULL);
}

void sess_bind_stop(struct sess *s)
{
	if (s->bind == NULL)
		return;
	ev_io_stop(s->srv->loop, &s->bind->lw);
	ev_timer_stop(s->srv->loop, &s->bind->lretry);
	if (s->bind->lfd >= 0) {
		close(s->bind->lfd);
		s->bind->lfd = -1;
	}
}
