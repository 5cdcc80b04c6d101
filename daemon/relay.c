/*
 * relay: see relay.h.
 */
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RELAY_CHUNK (64 * 1024)
#define RELAY_BUFSZ (16 * 1024)

static void relay_finish(struct relay *r, enum relay_end why)
{
	relay_done_cb cb = r->cb;
	void *arg = r->arg;

	relay_stop(r);
	cb(arg, why);
}

static void dir_switch_to_buf(struct relay_dir *d)
{
	if (d->pipe[0] >= 0) {
		close(d->pipe[0]);
		close(d->pipe[1]);
		d->pipe[0] = d->pipe[1] = -1;
	}
}

/* Writes what is pending.  Returns 0 (maybe still pending), -1 on error. */
static int dir_flush(struct relay_dir *d)
{
	ssize_t n;

	while (d->pending > 0) {
		if (d->pipe[0] >= 0)
			n = splice(d->pipe[0], NULL, d->dst, NULL, d->pending,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		else
			n = send(d->dst, d->buf + d->off, d->pending,
				 MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			return -1;
		}
		d->pending -= (size_t)n;
		d->off += (size_t)n;
		d->bytes += (uint64_t)n;
	}
	d->off = 0;
	return 0;
}

/* Reads once into the pipe or buffer.  Returns bytes, 0 at EOF, -1 with
 * errno (EAGAIN when nothing is there). */
static ssize_t dir_fill(struct relay_dir *d)
{
	ssize_t n;

	/* The pipe is made when data first flows: an idle session costs no
	 * pipe descriptors.  Without one (EMFILE...) the buffer is used. */
	if (d->pipe[0] < 0 && !d->no_pipe &&
	    pipe2(d->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		d->pipe[0] = d->pipe[1] = -1;
		d->no_pipe = true;
	}
	if (d->pipe[0] >= 0) {
		n = splice(d->src, NULL, d->pipe[1], NULL, RELAY_CHUNK,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n >= 0 || errno != EINVAL)
			return n;
		dir_switch_to_buf(d); /* splice not supported here */
		d->no_pipe = true;
	}
	if (d->buf == NULL && (d->buf = malloc(RELAY_BUFSZ)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	return recv(d->src, d->buf, RELAY_BUFSZ, 0);
}

/* Chooses which watcher the direction needs after a step. */
static void dir_arm(struct relay_dir *d)
{
	struct ev_loop *loop = d->r->loop;

	if (d->pending > 0) {
		ev_io_stop(loop, &d->rd);
		ev_io_start(loop, &d->wr);
		return;
	}
	ev_io_stop(loop, &d->wr);
	if (d->eof) {
		ev_io_stop(loop, &d->rd);
		if (!d->done) {
			d->done = true;
			shutdown(d->dst, SHUT_WR);
		}
	} else {
		ev_io_start(loop, &d->rd);
	}
}

static void dir_step(struct relay_dir *d, bool readable)
{
	struct relay *r = d->r;
	ssize_t n;

	if (dir_flush(d) < 0)
		goto reset;
	if (readable && d->pending == 0 && !d->eof) {
		n = dir_fill(d);
		if (n == 0) {
			d->eof = true;
		} else if (n > 0) {
			d->pending = (size_t)n;
			d->off = 0;
			if (dir_flush(d) < 0)
				goto reset;
		} else if (errno != EAGAIN && errno != EINTR) {
			goto reset;
		}
	}
	r->last = ev_now(r->loop);
	dir_arm(d);
	if (r->up.done && r->down.done)
		relay_finish(r, RELAY_END_CLOSED);
	return;
reset:
	relay_finish(r, RELAY_END_RESET);
}

static void relay_rd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	dir_step(w->data, true);
}

static void relay_wr_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	dir_step(w->data, false);
}

static void relay_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct relay *r = w->data;
	double left, step;

	(void)revents;
	/* Sockmap mode sees no data: it looks at the counters, a quarter
	 * of the timeout apart, and takes a change as activity then (never
	 * early; at most a quarter late). */
	if (r->kern)
		relay_sockmap_idle(r);
	left = r->last + r->idle_timeout - ev_now(loop);
	if (left <= 0) {
		relay_finish(r, RELAY_END_IDLE);
		return;
	}
	step = r->idle_timeout / 4.0;
	w->repeat = r->kern && step < left ? (step < 0.1 ? 0.1 : step) : left;
	ev_timer_again(loop, w);
}

static int dir_init(struct relay *r, struct relay_dir *d, int src, int dst)
{
	d->r = r;
	d->src = src;
	d->dst = dst;
	d->pipe[0] = d->pipe[1] = -1;
	ev_io_init(&d->rd, relay_rd_cb, src, EV_READ);
	ev_io_init(&d->wr, relay_wr_cb, dst, EV_WRITE);
	d->rd.data = d;
	d->wr.data = d;
	return 0;
}

void relay_dir_handover(struct relay_dir *d)
{
	dir_arm(d);
}

int relay_preload(struct relay *r, const void *buf, size_t len)
{
	struct relay_dir *d = &r->up;

	if (len == 0)
		return 0;
	if (len > RELAY_BUFSZ || (d->buf = malloc(RELAY_BUFSZ)) == NULL)
		return -1;
	memcpy(d->buf, buf, len);
	d->pending = len;
	d->off = 0;
	return 0;
}

int relay_start(struct relay *r, struct ev_loop *loop, struct sockmap *sm,
		int c, int t, unsigned idle_timeout, relay_done_cb cb,
		void *arg)
{
	r->loop = loop;
	r->cb = cb;
	r->arg = arg;
	r->idle_timeout = idle_timeout;
	r->last = ev_now(loop);
	r->kern = NULL;
	r->held[0] = r->held[1] = 0;
	dir_init(r, &r->up, c, t);
	dir_init(r, &r->down, t, c);
	ev_init(&r->idle, relay_idle_cb);
	r->idle.data = r;
	if (idle_timeout > 0) {
		r->idle.repeat = idle_timeout;
		ev_timer_again(loop, &r->idle);
	}
	r->running = true;
	if (sm != NULL) {
		int rc = relay_sockmap_start(r, sm, c, t);
		if (rc < 0) {
			r->running = false;
			ev_timer_stop(loop, &r->idle);
			free(r->up.buf);
			r->up.buf = NULL;
			return -1;
		}
		if (rc == 0)
			return 0;
	}
	/* Splice.  Bytes preloaded toward the target go first. */
	dir_arm(&r->up);
	ev_io_start(loop, &r->down.rd);
	return 0;
}

void relay_bytes(const struct relay *r, uint64_t *up, uint64_t *down)
{
	if (r->kern) {
		relay_sockmap_bytes(r, up, down);
		return;
	}
	*up = r->up.bytes;
	*down = r->down.bytes;
}

static void dir_stop(struct relay *r, struct relay_dir *d)
{
	ev_io_stop(r->loop, &d->rd);
	ev_io_stop(r->loop, &d->wr);
	dir_switch_to_buf(d);
	free(d->buf);
	d->buf = NULL;
}

void relay_stop(struct relay *r)
{
	if (!r->running)
		return;
	r->running = false;
	if (r->kern)
		relay_sockmap_stop(r);
	dir_stop(r, &r->up);
	dir_stop(r, &r->down);
	ev_timer_stop(r->loop, &r->idle);
}
