/*
 * sess: see sess.h.  The read callback appends to s->setup->in and calls
 * sess_process(), which parses as many complete messages as the state
 * allows: parse (s5_proto), decide (pol, auth), then act.
 *
 * Re-entrancy rule: sess_end() frees the session, so every path that may
 * call it returns at once.  Failure replies never end the session from
 * inside sess_reply(); the CLOSING state and its timer do that.
 */
#include "sess_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "assoc.h"
#include "kagent.h"
#include "auth.h"
#include "log.h"
#include "pol.h"
#include "srclimit.h"
#include "srv.h"

/* How long a closing session waits for the client's FIN after the final
 * reply (RFC 1928: close within 10 s of the failure). */
#define SESS_LINGER 2.0

static void sess_process(struct sess *s);
static void sess_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

#define SESS_NAME(e, name) [e] = name,
static const char *const end_names[] = {SESS_END_LIST(SESS_NAME)};
static const char *const state_names[] = {SESS_STATE_LIST(SESS_NAME)};
#undef SESS_NAME
_Static_assert(sizeof(end_names) / sizeof(end_names[0]) == SESS_END_COUNT,
	       "a name per end reason");
_Static_assert(sizeof(state_names) / sizeof(state_names[0]) == SESS_STATE_COUNT,
	       "a name per state");

const char *sess_end_str(enum sess_end e)
{
	return (unsigned)e < SESS_END_COUNT ? end_names[e] : "?";
}

const char *sess_state_str(enum sess_state st)
{
	return (unsigned)st < SESS_STATE_COUNT ? state_names[st] : "?";
}

struct sess *sess_next(const struct sess *s)
{
	return s->next;
}

void sess_get_info(const struct sess *s, struct sess_info *out)
{
	memset(out, 0, sizeof(*out));
	out->id = s->id;
	out->command = s5_cmd_str(s->cmd);
	out->state = sess_state_str(s->state);
	memcpy(&out->peer, &s->peer, sizeof(s->peer));
	out->user = s->user;
	out->dst = s->dst;
	out->age = ev_now(s->srv->loop) - s->started;
	sess_tcp_bytes(s, &out->bytes_up, &out->bytes_down);
	if (s->assoc) {
		out->has_assoc = true;
		kagent_get_info(s->assoc, &out->assoc);
	}
}

static void sess_log_end(struct sess *s)
{
	char peer[ADDR_STRLEN], dst[300] = "-", rep[8] = "-";
	uint64_t up = 0, down = 0;

	addr_str(&s->peer.sa, peer, sizeof(peer));
	if (s->dst)
		snprintf(dst, sizeof(dst), "%s", s->dst);
	if (s->rep != 0xff)
		snprintf(rep, sizeof(rep), "0x%02x", s->rep);
	sess_tcp_bytes(s, &up, &down);
	log_info("session %llu end: client %s user %s cmd %s dst %s rep %s "
		 "assoc %u up %llu down %llu duration %.3fs reason %s",
		 (unsigned long long)s->id, peer, s->user ? s->user : "-",
		 s5_cmd_str(s->cmd), dst, rep, s->assoc_id,
		 (unsigned long long)up, (unsigned long long)down,
		 ev_now(s->srv->loop) - s->started,
		 s->end == SESS_END_ASSOC ? assoc_end_str(s->assoc_reason)
					  : sess_end_str(s->end));
}

void sess_end(struct sess *s, enum sess_end why)
{
	struct srv *srv = s->srv;

	if (s->state != SESS_CLOSING || s->end == SESS_END_DONE)
		s->end = why;
	if (s->auth_job) {
		auth_job_cancel(srv->authw, s->auth_job);
		s->auth_job = NULL;
	}
	if (s->assoc_counted)
		srclimit_assoc_close(srv->limits, s->src);
	srclimit_session_close(srv->limits, s->src, s->in_handshake,
			       ev_now(srv->loop));
	if (s->state == SESS_TRANSPARENT || s->assoc)
		sess_transparent_stop(s, why);
	sess_connect_stop(s);
	sess_bind_stop(s);
	sess_tcp_stop(s);
	sess_udp_stop(s);
	ev_io_stop(srv->loop, &s->rd);
	ev_io_stop(srv->loop, &s->wr);
	ev_timer_stop(srv->loop, &s->timer);
	sess_log_end(s);
	close(s->fd);
	sess_settle(s);
	free(s->connect);
	free(s->bind);
	free(s->tcp);
	free(s->user);
	free(s->dst);
	free(s->dst_name);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nsessions--;
	free(s);
	srv_session_gone(srv);
}

/* Sends what is in s->out; returns -1 on a socket error. */
static int sess_flush(struct sess *s)
{
	while (s->outlen > 0) {
		ssize_t n = send(s->fd, s->out, s->outlen, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -1;
		}
		memmove(s->out, s->out + n, s->outlen - (size_t)n);
		s->outlen -= (uint8_t)n;
	}
	if (s->outlen > 0)
		ev_io_start(s->srv->loop, &s->wr);
	else
		ev_io_stop(s->srv->loop, &s->wr);
	return 0;
}

static int sess_write(struct sess *s, const uint8_t *buf, size_t len)
{
	if (len > sizeof(s->out) - s->outlen)
		return -1;
	memcpy(s->out + s->outlen, buf, len);
	s->outlen += (uint8_t)len;
	return sess_flush(s);
}

/* Enters CLOSING: the final message is queued; the timer ends the session
 * once it is written and the client had a moment to close first. */
static void sess_close_soon(struct sess *s, enum sess_end why)
{
	s->state = SESS_CLOSING;
	s->end = why;
	ev_timer_stop(s->srv->loop, &s->timer);
	ev_set_cb(&s->timer, sess_timer_cb);
	ev_timer_set(&s->timer, 0., 0.);
	ev_timer_start(s->srv->loop, &s->timer);
}

void sess_reply(struct sess *s, uint8_t rep, const struct sockaddr *bnd)
{
	struct s5_reply r;
	uint8_t buf[32];
	ssize_t n;

	memset(&r, 0, sizeof(r));
	r.rep = rep;
	if (bnd)
		addr_to_s5(bnd, &r.bnd);
	else
		r.bnd.atyp = S5_ATYP_IPV4; /* 0.0.0.0:0, ignored on failure */
	n = s5_reply_build(&r, buf, sizeof(buf));
	s->rep = rep;
	if (n < 0 || sess_write(s, buf, (size_t)n) < 0) {
		sess_close_soon(s, SESS_END_RESET);
		return;
	}
	if (rep != S5_REP_SUCCEEDED) {
		if (rep == S5_REP_NOT_ALLOWED)
			s->srv->stats.denied++;
		sess_close_soon(s, SESS_END_REFUSED);
	}
}

void sess_settle(struct sess *s)
{
	if (s->setup) {
		explicit_bzero(s->setup, sizeof(*s->setup));
		free(s->setup);
		s->setup = NULL;
	}
}

static struct pol_decision sess_decide(struct sess *s,
				       const struct sockaddr *dst_ip,
				       const char *dst_name, uint16_t port)
{
	const struct cfg *c = &s->srv->cfg;
	struct pol_query q = {
		.client = &s->peer.sa,
		.dst_ip = dst_ip,
		.dst_name = dst_name,
		.dst_port = port,
		.cmd = pol_cmd_bit(s->cmd),
		.user = s->authed ? s->user : NULL,
		.self = &s->srv->self,
	};

	return pol_check(c->rules, c->nrules, &q);
}

bool sess_allowed_quiet(struct sess *s, const struct sockaddr *dst_ip,
			const char *dst_name, uint16_t port, int *line)
{
	struct pol_decision d = sess_decide(s, dst_ip, dst_name, port);

	*line = d.line;
	return d.allow;
}

bool sess_allowed(struct sess *s, const struct sockaddr *dst_ip,
		  const char *dst_name, uint16_t port)
{
	struct pol_decision d = sess_decide(s, dst_ip, dst_name, port);

	if (!d.allow) {
		char peer[ADDR_STRLEN], dst[ADDR_STRLEN] = "", why[80];
		addr_str(&s->peer.sa, peer, sizeof(peer));
		if (dst_ip)
			addr_ip_str(dst_ip, dst, sizeof(dst));
		if (d.form != ADDR_DST_OK)
			snprintf(why, sizeof(why), "refused: %s",
				 addr_dst_str(d.form));
		else
			snprintf(why, sizeof(why), "denied by %s%d%s",
				 d.line ? "rule at line " : "default ", d.line,
				 d.embedded ? " (the IPv4 address it carries)"
					    : "");
		log_info("session %llu: %s to %s%s%s port %u %s",
			 (unsigned long long)s->id, peer,
			 dst_name ? dst_name : "",
			 dst_name && dst_ip ? "/" : "", dst, port, why);
	}
	return d.allow;
}

static void sess_choose_method(struct sess *s, const struct s5_methods *m)
{
	const struct cfg *c = &s->srv->cfg;
	uint8_t chosen = S5_METHOD_NONE, buf[2];

	for (size_t i = 0; i < c->nauth && chosen == S5_METHOD_NONE; i++)
		for (size_t j = 0; j < m->nmethods; j++)
			if (m->methods[j] == c->auth[i]) {
				chosen = c->auth[i];
				break;
			}
	s5_method_reply_build(chosen, buf, sizeof(buf));
	if (sess_write(s, buf, 2) < 0) {
		sess_close_soon(s, SESS_END_RESET);
		return;
	}
	if (chosen == S5_METHOD_NONE) {
		s->srv->stats.auth_failures++;
		sess_close_soon(s, SESS_END_AUTH);
	} else if (chosen == S5_METHOD_USERPASS) {
		s->state = SESS_AUTH;
	} else {
		s->state = SESS_REQUEST;
	}
}

/* The answer of RFC 1929 authentication, once crypt(3) has spoken. */
static void sess_auth_done(void *arg, bool ok)
{
	struct sess *s = arg;
	uint8_t buf[2];

	s->auth_job = NULL;
	s5_auth_reply_build(ok ? S5_AUTH_SUCCESS : S5_AUTH_FAILURE, buf,
			    sizeof(buf));
	if (sess_write(s, buf, 2) < 0) {
		sess_close_soon(s, SESS_END_RESET);
		return;
	}
	if (!ok) {
		/* Logged in summary per source (srclimit), not here: one
		 * line per guess is what a guesser wants. */
		s->srv->stats.auth_failures++;
		log_debug("session %llu: authentication failed for user '%s'",
			  (unsigned long long)s->id, s->user ? s->user : "?");
		sess_close_soon(s, SESS_END_AUTH);
		return;
	}
	s->authed = true;
	s->state = SESS_REQUEST;
	/* The request may have come with the credentials. */
	ev_io_start(s->srv->loop, &s->rd);
	sess_process(s);
}

static void sess_authenticate(struct sess *s, struct s5_auth *a)
{
	struct srv *srv = s->srv;

	/* Keep the name for logs and rules, without control bytes. */
	free(s->user);
	s->user = strndup(a->uname, a->ulen);
	for (char *p = s->user; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (srv->auth == NULL) {
		explicit_bzero(a->passwd, sizeof(a->passwd));
		sess_auth_done(s, false);
		return;
	}
	uint8_t key[SRCLIMIT_KEY_LEN];
	size_t keylen = srclimit_key(s->src, key);
	if (srv->authw) {
		/* crypt(3) runs on a worker thread, queued fairly by source
		 * and spaced by the source's penalty; reading waits. */
		s->auth_job = auth_check_async(
			srv->authw, srv->auth, a->uname, a->ulen, a->passwd,
			a->plen, key, keylen,
			srclimit_auth_spacing(srv->limits, s->src,
					      ev_now(srv->loop)),
			sess_auth_done, s);
		explicit_bzero(a->passwd, sizeof(a->passwd));
		if (s->auth_job) {
			ev_io_stop(srv->loop, &s->rd);
			return;
		}
		sess_auth_done(s, false);
		return;
	}
	/* No worker (it could not start): on the loop, without spacing. */
	bool ok = auth_check(srv->auth, a->uname, a->ulen, a->passwd, a->plen);
	explicit_bzero(a->passwd, sizeof(a->passwd));
	srclimit_auth_result(srv->limits, key, keylen, s->user, ok,
			     ev_now(srv->loop));
	sess_auth_done(s, ok);
}

static void sess_request(struct sess *s)
{
	ev_timer_stop(s->srv->loop, &s->timer); /* handshake done */
	srclimit_handshake_done(s->srv->limits, s->src);
	s->in_handshake = false;
	char dst[300];

	s->cmd = s->setup->req.cmd;
	/* Address literals sent as names (Chromium, torsocks) are literals:
	 * no lookup, no name for the rules or the logs, same checks. */
	if (addr_s5_literal(&s->setup->req.dst) == ADDR_LITERAL_ADDR)
		log_debug("session %llu: DST name is an address literal",
			  (unsigned long long)s->id);
	if (addr_s5_literal(&s->setup->req.src) == ADDR_LITERAL_ADDR)
		log_debug("session %llu: S.ADDR name is an address literal",
			  (unsigned long long)s->id);
	s5_addr_str(&s->setup->req.dst, dst, sizeof(dst));
	s->dst = strdup(dst);
	if (s->setup->req.dst.atyp == S5_ATYP_DOMAIN)
		s->dst_name = strdup(s->setup->req.dst.u.dom.name);
	s->srv->stats.sessions_by_cmd[s->cmd]++;
	switch (s->cmd) {
	case S5_CMD_CONNECT:
		sess_connect_start(s);
		break;
	case S5_CMD_TRANSPARENT:
		sess_transparent_start(s);
		break;
	case S5_CMD_UDP:
		sess_udp_start(s);
		break;
	case S5_CMD_BIND:
		sess_bind_start(s);
		break;
	default:
		sess_reply(s, S5_REP_CMD_UNSUPPORTED, NULL);
		break;
	}
}

static void sess_protocol_error(struct sess *s, enum s5_status st)
{
	char peer[ADDR_STRLEN];

	s->srv->stats.bad_requests++;
	log_info("session %llu: malformed message from %s: %s",
		 (unsigned long long)s->id,
		 addr_str(&s->peer.sa, peer, sizeof(peer)), s5_status_str(st));
	if (s->state == SESS_REQUEST) {
		sess_reply(s, s5_status_to_rep(st), NULL);
		s->end = SESS_END_PROTOCOL;
	} else if (s->state == SESS_AUTH) {
		uint8_t buf[2];
		s5_auth_reply_build(S5_AUTH_FAILURE, buf, sizeof(buf));
		sess_write(s, buf, 2);
		sess_close_soon(s, SESS_END_PROTOCOL);
	} else {
		sess_close_soon(s, SESS_END_PROTOCOL);
	}
}

/* Parses whatever complete messages s->in holds, in order. */
static void sess_process(struct sess *s)
{
	struct sess_setup *su = s->setup;
	size_t used = 0;
	enum s5_status st = S5_OK;

	while (st == S5_OK) {
		enum sess_state before = s->state;
		union {
			struct s5_methods m;
			struct s5_auth a;
		} msg;

		if (before == SESS_METHODS) {
			st = s5_methods_parse(su->in, su->inlen, &msg.m, &used);
			if (st == S5_OK)
				sess_choose_method(s, &msg.m);
		} else if (before == SESS_AUTH) {
			if (s->auth_job)
				return; /* the check is running */
			st = s5_auth_parse(su->in, su->inlen, &msg.a, &used);
			if (st == S5_OK) {
				/* Consumed before the check: its callback may
				 * parse what follows. */
				memmove(su->in, su->in + used,
					su->inlen - used);
				su->inlen -= used;
				sess_authenticate(s, &msg.a);
				explicit_bzero(&msg.a, sizeof(msg.a));
				return;
			}
			explicit_bzero(&msg.a, sizeof(msg.a));
		} else if (before == SESS_REQUEST) {
			st = s5_request_parse(su->in, su->inlen, &su->req,
					      &used);
		} else {
			return;
		}
		if (st == S5_NEED_MORE) {
			if (su->inlen == sizeof(su->in))
				sess_protocol_error(s, S5_ERR_VERSION);
			return;
		}
		if (st != S5_OK) {
			sess_protocol_error(s, st);
			return;
		}
		memmove(su->in, su->in + used, su->inlen - used);
		su->inlen -= used;
		if (before == SESS_REQUEST) {
			sess_request(s);
			return;
		}
		if (s->state == SESS_CLOSING)
			return;
	}
}

static void sess_rd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sess *s = w->data;
	uint8_t junk[512];
	ssize_t n;

	(void)loop;
	(void)revents;
	if (s->state == SESS_CLOSING || s->setup == NULL) {
		/* Nothing more is expected: drain, and notice the close. */
		n = recv(s->fd, junk, sizeof(junk), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			sess_end(s, s->state == SESS_CLOSING ? s->end
							     : SESS_END_CLIENT);
		return;
	}
	if (s->setup->inlen == sizeof(s->setup->in)) {
		/* Pipelined data beyond what the phase needs: wait. */
		ev_io_stop(loop, &s->rd);
		return;
	}
	n = recv(s->fd, s->setup->in + s->setup->inlen,
		 sizeof(s->setup->in) - s->setup->inlen, 0);
	if (n == 0) {
		sess_end(s, SESS_END_CLIENT);
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			sess_end(s, SESS_END_RESET);
		return;
	}
	s->setup->inlen += (size_t)n;
	if (s->state <= SESS_REQUEST)
		sess_process(s);
}

static void sess_wr_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sess *s = w->data;

	(void)loop;
	(void)revents;
	if (sess_flush(s) < 0) {
		sess_end(s, SESS_END_RESET);
		return;
	}
	if (s->state == SESS_CLOSING && s->outlen == 0) {
		/* Re-run the closing timer now that the reply is out. */
		ev_timer_stop(loop, &s->timer);
		ev_timer_set(&s->timer, 0., 0.);
		ev_timer_start(loop, &s->timer);
	}
}

static void sess_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sess *s = w->data;

	(void)revents;
	switch (s->state) {
	case SESS_CLOSING:
		if (s->outlen == 0 && !s->half_closed) {
			/* Reply written: half-close, give the client a
			 * moment to close first so that it reads the reply
			 * instead of an RST, then end. */
			shutdown(s->fd, SHUT_WR);
			s->half_closed = true;
			ev_io_start(loop, &s->rd);
			ev_timer_set(w, SESS_LINGER, 0.);
			ev_timer_start(loop, w);
			return;
		}
		if (s->outlen > 0 && ev_now(loop) - s->started < 10.) {
			ev_timer_set(w, 10., 0.);
			ev_timer_start(loop, w);
			return;
		}
		sess_end(s, s->end);
		return;
	case SESS_METHODS:
	case SESS_AUTH:
	case SESS_REQUEST:
		sess_end(s, SESS_END_TIMEOUT);
		return;
	case SESS_RESOLVING:
		dns_cancel(&s->dnsq);
		sess_reply(s, S5_REP_HOST_UNREACH, NULL);
		return;
	default:
		/* Phases with their own timer use it through the command
		 * module (connect timeout). */
		sess_end(s, SESS_END_TIMEOUT);
		return;
	}
}

struct sess *sess_new(struct srv *srv, int fd,
		      const struct sockaddr_storage *peer,
		      struct srclimit_src *src)
{
	struct sess *s = calloc(1, sizeof(*s));
	struct sockaddr_storage ss = *peer;
	socklen_t sl = sizeof(ss);

	if (s == NULL)
		return NULL;
	s->setup = malloc(sizeof(*s->setup));
	if (s->setup == NULL) {
		free(s);
		return NULL;
	}
	s->setup->inlen = 0;
	s->srv = srv;
	s->fd = fd;
	s->src = src;
	s->in_handshake = true;
	s->id = ++srv->next_id;
	addr_unmap(&ss);
	memcpy(&s->peer, &ss, addr_len((struct sockaddr *)&ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		addr_unmap(&ss);
		memcpy(&s->local, &ss, addr_len((struct sockaddr *)&ss));
	}
	s->rep = 0xff;
	s->started = ev_now(srv->loop);
	ev_io_init(&s->rd, sess_rd_cb, fd, EV_READ);
	ev_io_init(&s->wr, sess_wr_cb, fd, EV_WRITE);
	ev_timer_init(&s->timer, sess_timer_cb,
		      (double)srv->cfg.timeout_handshake, 0.);
	s->rd.data = s->wr.data = s->timer.data = s;
	ev_io_start(srv->loop, &s->rd);
	ev_timer_start(srv->loop, &s->timer);
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	srv->stats.sessions_total++;
	return s;
}
