/*
 * relay_sockmap: relay.c's sockmap mode.  The kernel moves the bytes
 * (sockmap.c); this file moves what the program held back, decides when
 * a direction is over and what the byte counts are.
 *
 * Start: the client's socket may hold part of an skb the session read
 * from (its request, with bytes pipelined behind it), and the kernel
 * would send such an skb whole: what is queued there is read and
 * written to the target first, so the pair enters the maps with an
 * empty queue or whole skbs only.  If the target does not take it all
 * at once, the session uses splice, the rest queued first.  A client
 * that half-closed before it could enter the program's map (sockmap_add:
 * outside) has its direction relayed by relay.c (splice) from the start.
 *
 * Held back (back-pressure, see bpf/sockmap.bpf.c): once the program
 * holds direction i's data back, it waits in the sender's own queue.
 * User space first lets what was sent before it reach the receiver's
 * stream (sent == written, polled), then reads the held-back bytes with
 * recv() and writes them (64 KiB at a time, waiting for the receiver to
 * be writable), then reports how many (sockmap_set_done).  The program
 * sends on by itself with the first data after that; the sender is read
 * only while the program holds, so recv() never runs the program in a
 * way that sends on.
 *
 * End of a direction: a FIN shows as EPOLLRDHUP on the sender's socket,
 * but the data before it may not have gone out yet, in three places:
 *   - not yet taken by the program: TCP marks the FIN (and wakes us)
 *     before it runs the data-ready hook for the segment that carried
 *     it.  So the program must have taken all the sender received but
 *     the FIN (TCP_INFO bytes_received - 1 - what was read before the
 *     handover, the pair's rbase);
 *   - sent, but queued toward the other socket (the redirect is
 *     asynchronous, and the other socket may not be writable);
 *   - held back, not yet moved by user space.
 * So what the program took must equal what was written into the
 * receiver's stream since the start (TCP_INFO bytes_acked plus
 * SIOCOUTQ).  Only then is the other side shut down (SHUT_WR); until
 * then the drain is polled with back-off.  Taking the pair out of the
 * maps earlier would drop that data.
 *
 * Counts: what was written into each stream since the start, as in
 * splice mode (bytes written, not read).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "relay.h"

#define DRAIN_FIRST 0.001      /* first re-check of an unfinished drain, s */
#define DRAIN_MAX 0.1	       /* back-off ceiling */
#define PREREAD 16384	       /* = relay.c's fallback buffer */
#define HOLD_CHUNK (64 * 1024) /* held-back bytes moved at a time */
#define HOLD_BURST (4 << 20)   /* read per call, then the loop's others */

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

/* Written into side's stream since the start; -1 if it cannot be read. */
static int kern_out(const struct relay_kern *k, int side, uint64_t *w)
{
	if (sockmap_written(k->pair.fd[side], w) < 0 ||
	    *w < k->pair.wbase[side])
		return -1;
	*w -= k->pair.wbase[side];
	return 0;
}

/* The same, 0 if it cannot be read. */
static uint64_t kern_written(const struct relay_kern *k, int side)
{
	uint64_t w;

	return kern_out(k, side, &w) < 0 ? 0 : w;
}

/* Tells the program what was moved; 0, or 1 to try again later (out of
 * memory), -1 if the pair broke. */
static int kern_tell(struct relay_kern *k, int i)
{
	struct relay_hold *h = &k->hold[i];

	if (h->told == h->done && h->told_read == h->read)
		return 0;
	if (sockmap_set_done(k->sm, &k->pair, i, h->done, h->read) < 0)
		return errno == ENOMEM ? 1 : -1;
	h->told = h->done;
	h->told_read = h->read;
	return 0;
}

/* Moves direction i's held-back bytes, at most HOLD_BURST per call (the
 * loop serves others in between).  Returns 2 if it stopped there (call
 * again at once), 1 if it waits for sent data to go out first or could
 * not tell the program (poll), 0 otherwise (it waits for an event, or
 * there is nothing to move), -1 if the pair broke. */
static int kern_move(struct relay *r, int i)
{
	struct relay_kern *k = r->kern;
	struct relay_hold *h = &k->hold[i];
	int s = k->pair.fd[i], d = k->pair.fd[1 - i];
	struct sockmap_state st;
	uint64_t w, start = h->read;
	int rc = 0;

	if (sockmap_state(k->sm, &k->pair, i, &st) < 0)
		return -1;
	if (h->pending == 0 && st.passed == h->done && h->told == h->done &&
	    h->told_read == h->read) {
		/* All moved; once the program sends on, stop watching. */
		if (!st.hold)
			sockmap_unhold(k->sm, &k->pair, i);
		return 0;
	}
	/* What the program sent before holding back goes first. */
	if (kern_out(k, 1 - i, &w) < 0 || w - h->done < st.taken - st.passed)
		return 1;
	for (;;) {
		ssize_t n;

		if (h->pending > 0) {
			n = send(d, h->buf + h->off, h->pending,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0) {
				if (errno != EAGAIN && errno != EINTR)
					return -1;
				ev_io_start(r->loop, &h->wr);
				break;
			}
			h->pending -= (size_t)n;
			h->off += (size_t)n;
			h->done += (uint64_t)n;
			continue;
		}
		if (h->done == st.passed && h->told == h->done)
			break; /* nothing held back to read */
		if (h->read - start >= HOLD_BURST) {
			rc = 2;
			break;
		}
		/* The program compares what it held back with what was
		 * read: it must not see a stale count. */
		if (h->read - h->told_read >= SOCKMAP_READ_STEP &&
		    (rc = kern_tell(k, i)) != 0)
			break;
		if (h->buf == NULL && (h->buf = malloc(HOLD_CHUNK)) == NULL)
			return -1;
		/* The rest of what was held back.  0 is the FIN (or
		 * nothing yet: the end is decided by the counts,
		 * kern_drain). */
		n = recv(s, h->buf, HOLD_CHUNK, MSG_DONTWAIT);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				return -1;
			ev_io_stop(r->loop, &h->wr);
			break;
		}
		h->pending = (size_t)n;
		h->off = 0;
		h->read += (uint64_t)n;
	}
	if (h->pending == 0) {
		free(h->buf); /* up to 64 KiB each way, only while moving */
		h->buf = NULL;
	}
	if (rc < 0)
		return rc;
	int t = kern_tell(k, i);
	return t != 0 ? t : rc;
}

/* Moves held-back bytes and shuts down the receiving side of every
 * direction whose sender ended and whose data all went out.  Returns 2
 * if some direction has more to move now, 1 if some still waits for sent
 * data to go out (poll), 0 if none, -1 if the pair broke. */
static int kern_drain(struct relay *r)
{
	struct relay_kern *k = r->kern;
	bool waiting = false, more = false;

	for (int i = 0; i < 2; i++) {
		struct relay_dir *d = kern_dir(r, i);
		struct sockmap_state st;
		uint64_t w, rcvd;
		int rc;

		if (d->done || k->handed[i])
			continue;
		if (k->pair.held[i] || k->hold[i].pending > 0) {
			rc = kern_move(r, i);
			if (rc < 0)
				return -1;
			waiting |= rc == 1;
			more |= rc == 2;
		}
		if (!k->eof[i])
			continue;
		if (sockmap_state(k->sm, &k->pair, i, &st) < 0) {
			waiting = true;
			continue;
		}
		w = kern_written(k, 1 - i);
		if (st.taken > w || k->hold[i].pending > 0) {
			waiting = true;
			continue;
		}
		if (sockmap_received(k->pair.fd[i], &rcvd) == 0 &&
		    rcvd > k->pair.rbase[i] + st.taken + 1) {
			/* The program has not seen the last segment yet. */
			sockmap_kick(k->pair.fd[i]);
			waiting = true;
			continue;
		}
		d->bytes += w; /* final: nothing more goes this way */
		d->done = true;
		shutdown(k->pair.fd[1 - i], SHUT_WR);
	}
	return more ? 2 : waiting;
}

static void kern_step(struct relay *r)
{
	struct relay_kern *k = r->kern;
	int rc = kern_drain(r);

	if (rc < 0) {
		kern_finish(r, RELAY_END_RESET);
		return;
	}
	if (rc == 2) {
		/* More to move: the next loop iteration, after the others. */
		ev_timer_stop(r->loop, &k->drain);
		k->drain_wait = 0.;
		ev_timer_set(&k->drain, 0., 0.);
		ev_timer_start(r->loop, &k->drain);
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
	if (rc == 2) {
		k->drain_wait = 0.;
		ev_timer_set(w, 0., 0.);
		ev_timer_start(loop, w);
		return;
	}
	if (rc > 0) {
		k->drain_wait = k->drain_wait < DRAIN_FIRST ? DRAIN_FIRST
							    : k->drain_wait * 2;
		if (k->drain_wait > DRAIN_MAX)
			k->drain_wait = DRAIN_MAX;
		ev_timer_set(w, k->drain_wait, 0.);
		ev_timer_start(loop, w);
		return;
	}
	kern_step(r);
}

static void kern_wr_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct relay *r = w->data;

	(void)loop;
	(void)revents;
	r->last = ev_now(r->loop);
	kern_step(r);
}

static void kern_event(void *arg, int side, unsigned events)
{
	struct relay *r = arg;
	struct relay_kern *k = r->kern;

	r->last = ev_now(r->loop);
	if (events & SOCKMAP_EV_ERR) {
		kern_finish(r, RELAY_END_RESET);
		return;
	}
	if (events & SOCKMAP_EV_OVERFLOW) {
		kern_finish(r, RELAY_END_OVERFLOW);
		return;
	}
	if ((events & SOCKMAP_EV_EOF) && !k->handed[side])
		k->eof[side] = true;
	if (events & SOCKMAP_EV_HOLD)
		ev_timer_stop(r->loop, &k->drain); /* poll from the start */
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
	k->pair.cb = kern_event;
	k->pair.arg = r;
	rc = sockmap_add(sm, &k->pair, c, t);
	if (rc < 0) {
		free(k);
		return rc == -1 ? 1 : -1; /* -1: e.g. a FIN came: splice */
	}
	ev_init(&k->drain, kern_drain_cb);
	k->drain.data = r;
	for (int i = 0; i < 2; i++) {
		ev_io_init(&k->hold[i].wr, kern_wr_cb, k->pair.fd[1 - i],
			   EV_WRITE);
		k->hold[i].wr.data = r;
	}
	r->kern = k;
	for (int i = 0; i < 2; i++) {
		if (!k->pair.outside[i])
			continue;
		/* Nothing was taken from it: its direction is relay.c's
		 * from the start, the other stays in the kernel. */
		k->handed[i] = true;
		relay_dir_handover(kern_dir(r, i));
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
		ev_io_stop(r->loop, &k->hold[i].wr);
		free(k->hold[i].buf);
		r->held[i] = k->hold[i].done;
	}
	sockmap_remove(k->sm, &k->pair);
	r->kern = NULL;
	free(k);
}

void relay_sockmap_idle(struct relay *r)
{
	struct relay_kern *k = r->kern;
	struct sockmap_state a = {0}, b = {0};

	sockmap_state(k->sm, &k->pair, 0, &a);
	sockmap_state(k->sm, &k->pair, 1, &b);
	if (a.taken + b.taken != k->seen) {
		k->seen = a.taken + b.taken;
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
