/*
 * relay_sockmap: relay.c's sockmap mode.  The kernel moves the bytes
 * (sockmap.c); this file decides when a direction is over and what the
 * byte counts are.
 *
 * Start: the client's socket may hold part of an skb the session read
 * from (its request, with bytes pipelined behind it), and the kernel
 * would send such an skb whole: what is queued there is read and
 * written to the target first, so the pair enters the maps with an
 * empty queue or whole skbs only.  If the target does not take it all
 * at once, the session uses splice, the rest queued first.
 *
 * End of a direction: a FIN shows as EPOLLRDHUP on the sender's socket,
 * but the data before it may not have gone out yet, in two places:
 *   - not yet taken by the program: TCP marks the FIN (and wakes us)
 *     before it runs the data-ready hook for the segment that carried
 *     it.  So the program must have taken all the sender received but
 *     the FIN (TCP_INFO bytes_received - 1 - what was read before the
 *     handover, rbase);
 *   - taken, but queued toward the other socket (the redirect is
 *     asynchronous, and the other socket may not be writable).  So what
 *     the program took must equal what was written into the receiver's
 *     stream since the start (TCP_INFO bytes_acked plus SIOCOUTQ).
 * Only then is the other side shut down (SHUT_WR); until then the drain
 * is polled with back-off.  Taking the pair out of the maps earlier would
 * drop that data.
 *
 * Back-pressure: a socket the module paused (SOCKMAP_EV_FULL: its data
 * ran SOCKMAP_BACKLOG ahead of the other stream) is resumed, by the same
 * polling, once less than SOCKMAP_RESUME_BELOW is outstanding.  A direction
 * whose sender is paused is never taken for drained: its data, FIN
 * included, still waits in the sender's queue.  The kernel takes only
 * established sockets into its maps: a paused sender that half-closed
 * meanwhile cannot go back, so once everything taken from it went out,
 * the rest of that direction (its queue, then the FIN) goes through
 * user space (splice, relay.c), the other direction staying in the
 * kernel.  A side that half-closed before it could enter the program's
 * map at all (sockmap_add: outside) starts that way.
 *
 * Counts: what was written into each stream since the start, as in
 * splice mode (bytes written, not read).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "relay.h"

#define DRAIN_FIRST 0.001 /* first re-check of an unfinished drain, s */
#define DRAIN_MAX 0.02	  /* back-off ceiling */
#define PREREAD 16384	  /* = relay.c's fallback buffer */

static void kern_finish(struct relay *r, enum relay_end why)
{
	relay_done_cb cb = r->cb;
	void *arg = r->arg;

	relay_stop(r);
	cb(arg, why);
}

static struct relay_dir *kern_dir(struct relay *r, int side)
{
	return side == 0 ? &r->up : &r->down;
}

/* Written into side's stream since the start; 0 if it cannot be read. */
static uint64_t kern_written(const struct relay_kern *k, int side)
{
	uint64_t w;

	if (sockmap_written(k->pair.fd[side], &w) < 0 || w < k->base[side])
		return 0;
	return w - k->base[side];
}

/* Resumes paused senders whose backlog went down, and shuts down the
 * receiving side of every direction whose sender ended and whose data
 * all went out.  Returns 1 if some direction still waits, 0 if none,
 * -1 if the pair broke. */
static int kern_drain(struct relay *r)
{
	struct relay_kern *k = r->kern;
	bool waiting = false;

	for (int i = 0; i < 2; i++) {
		struct relay_dir *d = kern_dir(r, i);
		uint64_t taken, w;

		if (d->done || k->handed[i] ||
		    (!k->eof[i] && !k->pair.paused[i]))
			continue;
		w = kern_written(k, 1 - i);
		if (sockmap_taken(k->sm, &k->pair, i, &taken) < 0) {
			waiting = true;
			continue;
		}
		if (k->pair.paused[i]) {
			if (taken > w && (taken - w >= SOCKMAP_RESUME_BELOW ||
					  k->stuck[i])) {
				waiting = true;
				continue;
			}
			if (k->stuck[i]) {
				/* All out: user space takes over. */
				d->bytes += w;
				k->handed[i] = true;
				relay_dir_handover(d);
				continue;
			}
			if (sockmap_resume(k->sm, &k->pair, i) < 0) {
				if (errno != EOPNOTSUPP)
					return -1;
				k->stuck[i] = true; /* half-closed */
			}
			/* Its queue was taken just now: look again. */
			waiting = true;
			continue;
		}
		if (taken > w) {
			waiting = true;
			continue;
		}
		uint64_t rcvd;
		if (sockmap_received(k->pair.fd[i], &rcvd) == 0 &&
		    rcvd > k->rbase[i] + taken + 1) {
			/* The program has not seen the last segment yet. */
			sockmap_kick(k->pair.fd[i]);
			waiting = true;
			continue;
		}
		d->bytes += w; /* final: nothing more goes this way */
		d->done = true;
		shutdown(k->pair.fd[1 - i], SHUT_WR);
	}
	return waiting;
}

static void kern_step(struct relay *r)
{
	struct relay_kern *k = r->kern;
	int rc = kern_drain(r);

	if (rc < 0) {
		kern_finish(r, RELAY_END_RESET);
		return;
	}
	if (rc > 0) {
		if (!ev_is_active(&k->drain)) {
			k->drain_wait = DRAIN_FIRST;
			ev_timer_set(&k->drain, k->drain_wait, 0.);
			ev_timer_start(r->loop, &k->drain);
		}
		return;
	}
	ev_timer_stop(r->loop, &k->drain);
	if (r->up.done && r->down.done)
		kern_finish(r, RELAY_END_CLOSED);
}

static void kern_drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct relay *r = w->data;
	struct relay_kern *k = r->kern;
	int rc;

	(void)revents;
	rc = kern_drain(r);
	if (rc < 0) {
		kern_finish(r, RELAY_END_RESET);
		return;
	}
	if (rc > 0) {
		k->drain_wait *= 2;
		if (k->drain_wait > DRAIN_MAX)
			k->drain_wait = DRAIN_MAX;
		ev_timer_set(w, k->drain_wait, 0.);
		ev_timer_start(loop, w);
		return;
	}
	kern_step(r);
}

static void kern_event(void *arg, int side, unsigned events)
{
	struct relay *r = arg;

	r->last = ev_now(r->loop);
	if (events & SOCKMAP_EV_ERR) {
		kern_finish(r, RELAY_END_RESET);
		return;
	}
	if ((events & SOCKMAP_EV_EOF) && !r->kern->handed[side])
		r->kern->eof[side] = true;
	if (events & SOCKMAP_EV_FULL)
		ev_timer_stop(r->loop, &r->kern->drain); /* from the start */
	kern_step(r);
}

/* Reads what the client's socket holds and writes it to the target.
 * Returns 0 when the queue is empty (*eof: a FIN was read), 1 when the
 * target took less (the rest is preloaded for splice), -1 on error. */
static int kern_preread(struct relay *r, int c, int t, bool *eof)
{
	char buf[PREREAD];

	for (;;) {
		ssize_t n = recv(c, buf, sizeof(buf), MSG_DONTWAIT), m;
		if (n == 0) {
			*eof = true;
			return 0;
		}
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		m = send(t, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (m < 0 && errno != EAGAIN)
			return -1;
		if (m < 0)
			m = 0;
		r->up.bytes += (uint64_t)m;
		if (m < n)
			return relay_preload(r, buf + m, (size_t)(n - m)) < 0
				       ? -1
				       : 1;
	}
}

int relay_sockmap_start(struct relay *r, struct sockmap *sm, int c, int t)
{
	struct relay_kern *k;
	bool eof = false;
	int rc;

	rc = kern_preread(r, c, t, &eof);
	if (rc != 0)
		return rc;
	if (eof) {
		/* Already half-closed: splice handles it as any EOF. */
		r->up.eof = true;
		return 1;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return 1;
	k->sm = sm;
	if (sockmap_written(c, &k->base[0]) < 0 ||
	    sockmap_written(t, &k->base[1]) < 0 ||
	    sockmap_consumed(c, &k->rbase[0]) < 0 ||
	    sockmap_consumed(t, &k->rbase[1]) < 0) {
		free(k);
		return 1; /* e.g. a FIN came: splice handles it */
	}
	k->pair.cb = kern_event;
	k->pair.arg = r;
	rc = sockmap_add(sm, &k->pair, c, t);
	if (rc < 0) {
		free(k);
		return rc == -1 ? 1 : -1;
	}
	ev_init(&k->drain, kern_drain_cb);
	k->drain.data = r;
	r->kern = k;
	for (int i = 0; i < 2; i++) {
		if (!k->pair.outside[i])
			continue;
		/* Paused for good: its direction goes to user space once
		 * the loop runs (nothing was taken from it). */
		k->stuck[i] = true;
		k->drain_wait = DRAIN_FIRST;
		ev_timer_set(&k->drain, 0., 0.);
		ev_timer_start(r->loop, &k->drain);
	}
	return 0;
}

void relay_sockmap_stop(struct relay *r)
{
	struct relay_kern *k = r->kern;

	if (k == NULL)
		return;
	ev_timer_stop(r->loop, &k->drain);
	for (int i = 0; i < 2; i++) {
		struct relay_dir *d = kern_dir(r, i);
		if (!d->done && !k->handed[i]) {
			d->bytes += kern_written(k, 1 - i);
			d->done = true;
		}
	}
	sockmap_remove(k->sm, &k->pair);
	r->kern = NULL;
	free(k);
}

void relay_sockmap_idle(struct relay *r)
{
	struct relay_kern *k = r->kern;
	uint64_t a = 0, b = 0;

	sockmap_taken(k->sm, &k->pair, 0, &a);
	sockmap_taken(k->sm, &k->pair, 1, &b);
	if (a + b != k->seen) {
		k->seen = a + b;
		r->last = ev_now(r->loop);
	}
}

void relay_sockmap_bytes(const struct relay *r, uint64_t *up, uint64_t *down)
{
	const struct relay_kern *k = r->kern;

	*up = r->up.bytes +
	      (r->up.done || k->handed[0] ? 0 : kern_written(k, 1));
	*down = r->down.bytes +
		(r->down.done || k->handed[1] ? 0 : kern_written(k, 0));
}
