/*
 * relay: copies a TCP stream both ways between two connected sockets with
 * splice(2) through a pipe per direction (zero copy through user space),
 * falling back to a bounded buffer where splice cannot be used.
 *
 * Back-pressure: a direction reads only when its pipe (or buffer) is
 * empty, so a peer that stops reading stops the reading from the other.
 * Half-close: EOF from one side becomes shutdown(SHUT_WR) on the other and
 * the opposite direction keeps running.  The relay never closes the
 * sockets; the owner does that in its done callback.
 */
#ifndef SOCKSGATE_RELAY_H
#define SOCKSGATE_RELAY_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

enum relay_end {
	RELAY_END_CLOSED = 0, /* both sides sent FIN */
	RELAY_END_RESET,      /* an error or RST on either side */
	RELAY_END_IDLE,	      /* no byte either way for the idle timeout */
};

struct relay;
typedef void (*relay_done_cb)(void *arg, enum relay_end why);

struct relay_dir {
	ev_io rd, wr;
	int src, dst;
	int pipe[2];	/* -1 when using buf */
	char *buf;	/* fallback buffer */
	size_t pending; /* bytes read but not yet written */
	size_t off;	/* buf mode: first unwritten byte */
	bool eof, done;
	bool no_pipe; /* splice unusable or no pipe to be had: buffer */
	uint64_t bytes;
	struct relay *r;
};

struct relay {
	struct ev_loop *loop;
	struct relay_dir up;   /* client -> target */
	struct relay_dir down; /* target -> client */
	ev_timer idle;
	double idle_timeout, last;
	relay_done_cb cb;
	void *arg;
	bool running;
};

/* Starts relaying between client fd c and target fd t (both non-blocking).
 * idle_timeout 0 disables the idle timer.  Returns 0, or -1 if no pipe nor
 * buffer could be had. */
int relay_start(struct relay *r, struct ev_loop *loop, int c, int t,
		unsigned idle_timeout, relay_done_cb cb, void *arg);
/* Stops the watchers and frees pipes and buffers; idempotent. */
void relay_stop(struct relay *r);

#endif
