/*
 * sess_connect: the CONNECT command.  Resolve (c-ares) if DST is a name,
 * keep the addresses the rules allow, connect to them in turn with the
 * connect timeout, reply with the outbound socket's real local address,
 * then hand the connection to the TCP relay (sess_tcp.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "sess_int.h"
#include "srv.h"

static void connect_next(struct sess *s);

/* Maps a connect(2) error to the reply code that says why. */
static uint8_t connect_errno_rep(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return S5_REP_REFUSED;
	case ENETUNREACH:
	case ENETDOWN:
		return S5_REP_NET_UNREACH;
	case EHOSTUNREACH:
	case EHOSTDOWN:
	case ETIMEDOUT:
		return S5_REP_HOST_UNREACH;
	case EACCES:
	case EPERM:
		return S5_REP_NOT_ALLOWED;
	default:
		return S5_REP_GENERAL;
	}
}

/* Keeps the more specific of two failure codes: refused or unreachable
 * says more than "general". */
static void note_failure(struct sess *s, uint8_t rep)
{
	if (s->connect->best_rep == S5_REP_GENERAL || s->connect->best_rep == 0)
		s->connect->best_rep = rep;
}

static void connect_established(struct sess *s)
{
	struct sockaddr_storage bnd;
	socklen_t bl = sizeof(bnd);
	struct srv *srv = s->srv;

	ev_io_stop(srv->loop, &s->connect->cw);
	ev_timer_stop(srv->loop, &s->timer);
	if (getsockname(s->connect->fd, (struct sockaddr *)&bnd, &bl) < 0) {
		sess_reply(s, S5_REP_GENERAL, NULL);
		return;
	}
	addr_unmap(&bnd);
	sess_reply(s, S5_REP_SUCCEEDED, (struct sockaddr *)&bnd);
	if (s->state == SESS_CLOSING)
		return;
	int fd = s->connect->fd;
	s->connect->fd = -1; /* the relay's now */
	sess_tcp_start(s, fd);
}

static void connect_fail_current(struct sess *s, int err)
{
	char dst[ADDR_STRLEN];

	log_debug("session %llu: connect to %s: %s", (unsigned long long)s->id,
		  addr_str((struct sockaddr *)&s->connect->target, dst,
			   sizeof(dst)),
		  strerror(err));
	note_failure(s, connect_errno_rep(err));
	ev_io_stop(s->srv->loop, &s->connect->cw);
	close(s->connect->fd);
	s->connect->fd = -1;
	s->connect->addr_idx++;
	connect_next(s);
}

static void connect_wr_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sess *s = w->data;
	int err = 0;
	socklen_t el = sizeof(err);

	(void)loop;
	(void)revents;
	if (getsockopt(s->connect->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		err = errno;
	if (err == 0)
		connect_established(s);
	else
		connect_fail_current(s, err);
}

static void connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sess *s = w->data;

	(void)loop;
	(void)revents;
	if (s->state == SESS_RESOLVING) {
		dns_cancel(&s->dnsq);
		sess_reply(s, S5_REP_HOST_UNREACH, NULL);
		return;
	}
	/* Drop the remaining addresses: the client waited long enough. */
	s->connect->naddrs = s->connect->addr_idx + 1;
	connect_fail_current(s, ETIMEDOUT);
}

/* Tries addrs[addr_idx..]; replies with the best failure if none is left. */
static void connect_next(struct sess *s)
{
	struct srv *srv = s->srv;

	for (; s->connect->addr_idx < s->connect->naddrs;
	     s->connect->addr_idx++) {
		struct sockaddr *sa = (struct sockaddr *)&s->connect
					      ->addrs[s->connect->addr_idx];
		int fd = socket(sa->sa_family,
				SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			log_warn("session %llu: socket",
				 (unsigned long long)s->id);
			note_failure(s, S5_REP_GENERAL);
			continue;
		}
		s->connect->target = s->connect->addrs[s->connect->addr_idx];
		if (connect(fd, sa, addr_len(sa)) == 0 ||
		    errno == EINPROGRESS) {
			s->connect->fd = fd;
			s->state = SESS_CONNECTING;
			ev_io_init(&s->connect->cw, connect_wr_cb, fd,
				   EV_WRITE);
			s->connect->cw.data = s;
			ev_io_start(srv->loop, &s->connect->cw);
			ev_timer_stop(srv->loop, &s->timer);
			ev_set_cb(&s->timer, connect_timeout_cb);
			ev_timer_set(&s->timer,
				     (double)srv->cfg.timeout_connect, 0.);
			ev_timer_start(srv->loop, &s->timer);
			return;
		}
		note_failure(s, connect_errno_rep(errno));
		close(fd);
	}
	sess_reply(s,
		   s->connect->best_rep ? s->connect->best_rep
					: S5_REP_HOST_UNREACH,
		   NULL);
}

/* Keeps the addresses the rules allow; replies X'02' if none is. */
static void connect_filter_and_go(struct sess *s, const char *name)
{
	size_t kept = 0;

	for (size_t i = 0; i < s->connect->naddrs; i++) {
		struct sockaddr *sa = (struct sockaddr *)&s->connect->addrs[i];
		addr_set_port(sa, s->setup->req.dst.port);
		if (sess_allowed(s, sa, name, s->setup->req.dst.port))
			s->connect->addrs[kept++] = s->connect->addrs[i];
	}
	if (kept == 0) {
		sess_reply(s, S5_REP_NOT_ALLOWED, NULL);
		return;
	}
	s->connect->naddrs = kept;
	s->connect->addr_idx = 0;
	connect_next(s);
}

static void connect_resolved(void *arg, enum dns_result res,
			     const struct sockaddr_storage *addrs, size_t n)
{
	struct sess *s = arg;

	if (res != DNS_OK) {
		log_info("session %llu: %s: %s", (unsigned long long)s->id,
			 s->setup->req.dst.u.dom.name, dns_result_str(res));
		sess_reply(s, S5_REP_HOST_UNREACH, NULL);
		return;
	}
	memcpy(s->connect->addrs, addrs, n * sizeof(addrs[0]));
	s->connect->naddrs = n;
	connect_filter_and_go(s, s->setup->req.dst.u.dom.name);
}

void sess_connect_start(struct sess *s)
{
	struct srv *srv = s->srv;

	s->connect = calloc(1, sizeof(*s->connect));
	if (s->connect == NULL) {
		sess_reply(s, S5_REP_GENERAL, NULL);
		return;
	}
	s->connect->fd = -1;
	/* Pipelined bytes stay in s->in; stop reading until the relay. */
	ev_io_stop(srv->loop, &s->rd);
	if (s->setup->req.dst.atyp != S5_ATYP_DOMAIN) {
		addr_from_s5(&s->setup->req.dst, &s->connect->addrs[0]);
		/* ::ffff:a.b.c.d reaches a.b.c.d: the rules must see that. */
		addr_unmap(&s->connect->addrs[0]);
		s->connect->naddrs = 1;
		connect_filter_and_go(s, NULL);
		return;
	}
	s->state = SESS_RESOLVING;
	ev_set_cb(&s->timer, connect_timeout_cb);
	ev_timer_set(&s->timer, (double)srv->cfg.timeout_connect, 0.);
	ev_timer_start(srv->loop, &s->timer);
	if (dns_resolve(srv->dns, s->setup->req.dst.u.dom.name, AF_UNSPEC,
			connect_resolved, s, &s->dnsq) < 0)
		sess_reply(s, S5_REP_GENERAL, NULL);
}

void sess_connect_stop(struct sess *s)
{
	dns_cancel(&s->dnsq);
	if (s->connect == NULL)
		return;
	ev_io_stop(s->srv->loop, &s->connect->cw);
	if (s->connect->fd >= 0) {
		close(s->connect->fd);
		s->connect->fd = -1;
	}
}
