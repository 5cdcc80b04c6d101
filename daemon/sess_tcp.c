/*
 * sess_tcp: the byte relay of a session's TCP connection, shared by
 * CONNECT (once connected) and BIND (once the peer came): the bytes the
 * client pipelined after its request go first, then relay.c moves the
 * streams (splice) until both sides are done, an error, or the idle
 * timeout; the session ends with it.
 */
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "sess_int.h"
#include "srv.h"

static void tcp_done(void *arg, enum relay_end why)
{
	struct sess *s = arg;

	if (why == RELAY_END_OVERFLOW)
		log_warnx("session %llu: both directions stalled (each "
			  "receiver slower than the other side's sender) and "
			  "the kernel relay cannot bound what it holds back: "
			  "ended (connect-relay splice keeps such sessions)",
			  (unsigned long long)s->id);
	sess_end(s, why == RELAY_END_CLOSED ? SESS_END_DONE
		    : why == RELAY_END_IDLE ? SESS_END_IDLE
					    : SESS_END_RESET);
}

void sess_tcp_start(struct sess *s, int fd)
{
	struct srv *srv = s->srv;

	s->tcp = calloc(1, sizeof(*s->tcp));
	if (s->tcp == NULL) {
		close(fd);
		sess_end(s, SESS_END_RESET);
		return;
	}
	s->tcp->fd = fd;
	if (s->outlen > 0) { /* the relay must not overtake the reply */
		sess_end(s, SESS_END_RESET);
		return;
	}
	/* Bytes the client sent right after its request go first. */
	if (s->setup && s->setup->inlen > 0) {
		ssize_t n =
			send(fd, s->setup->in, s->setup->inlen, MSG_NOSIGNAL);
		if (n != (ssize_t)s->setup->inlen) {
			sess_end(s, SESS_END_RESET);
			return;
		}
		s->tcp->relay.up.bytes += (uint64_t)n;
		s->setup->inlen = 0;
	}
	s->state = SESS_RELAY;
	sess_settle(s);
	ev_io_stop(srv->loop, &s->rd);
	/* connect-relay: BIND keeps splice (its peer came to us; the
	 * directive is about CONNECT). */
	struct sockmap *sm =
		s->cmd == S5_CMD_CONNECT &&
				srv->cfg.connect_relay != CFG_RELAY_SPLICE
			? srv->sockmap
			: NULL;
	if (relay_start(&s->tcp->relay, srv->loop, sm, s->fd, fd,
			srv->cfg.timeout_idle, tcp_done, s) < 0) {
		sess_end(s, SESS_END_RESET);
		return;
	}
	if (sm != NULL && s->tcp->relay.kern == NULL)
		log_debug("session %llu: CONNECT relayed by splice (the "
			  "kernel relay could not take it)",
			  (unsigned long long)s->id);
}

void sess_tcp_stop(struct sess *s)
{
	if (s->tcp == NULL)
		return;
	relay_stop(&s->tcp->relay);
	if (s->tcp->relay.held[0] || s->tcp->relay.held[1])
		log_debug("session %llu: the kernel relay held back %llu "
			  "bytes up, %llu down (a slow receiver), moved by "
			  "the daemon",
			  (unsigned long long)s->id,
			  (unsigned long long)s->tcp->relay.held[0],
			  (unsigned long long)s->tcp->relay.held[1]);
	if (s->tcp->fd >= 0)
		close(s->tcp->fd);
	/* Kept (stopped) until the session is freed: its byte counts go
	 * into the end log line. */
	s->tcp->fd = -1;
}

void sess_tcp_bytes(const struct sess *s, uint64_t *up, uint64_t *down)
{
	*up = *down = 0;
	if (s->tcp)
		relay_bytes(&s->tcp->relay, up, down);
}
