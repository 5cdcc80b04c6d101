/*
 * relay: copies a TCP stream both ways between two connected sockets with
 * splice(2) through a pipe per direction (zero copy through user space),
 * falling back to a bounded buffer where splice cannot be used; or has
 * the kernel relay them (sockmap mode, relay_sockmap.c: no byte through
 * user space, which still sees each direction's end and counts bytes).
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

#include "sockmap.h"

enum relay_end {
	RELAY_END_CLOSED = 0, /* both sides sent FIN */
	RELAY_END_RESET,      /* an error or RST on either side */
	RELAY_END_IDLE,	      /* no byte either way for the idle timeout */
	RELAY_END_OVERFLOW,   /* sockmap: both directions stalled and the
			       * kernel held more back than it bounds */
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

/* Sockmap mode (relay_sockmap.c).  Side 0 is the client, side 1 the
 * target; direction i carries side i's data to side 1 - i. */
struct relay_kern {
	struct sockmap *sm;
	struct sockmap_pair pair;
	uint64_t seen;	   /* taken both ways at the last idle check */
	ev_timer drain;	   /* polls until sent data went out */
	double drain_wait; /* its next interval (backs off) */
	bool eof[2];	   /* side i sent FIN */
	bool handed[2];	   /* direction i runs in user space (relay.c) */
	/* Direction i's data the program held back, moved by user space. */
	struct relay_hold {
		char *buf;
		size_t pending, off; /* read, not yet written */
		uint64_t done;	     /* written to the other side */
		uint64_t read;	     /* read (done + pending) */
		uint64_t told;	     /* done as the program knows it */
		uint64_t told_read;  /* read as the program knows it */
		ev_io wr;	     /* the other side writable again */
	} hold[2];
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
	struct relay_kern *kern; /* sockmap mode; NULL: splice */
	/* Sockmap mode: bytes the program held back (a slow receiver) and
	 * user space moved, up and down; final once stopped. */
	uint64_t held[2];
};

/* Starts relaying between client fd c and target fd t (both non-blocking).
 * idle_timeout 0 disables the idle timer.  With sm, the kernel relays
 * (r->kern is then set) unless the pair cannot go into its maps (full,
 * out of memory) or the client pipelined more than the target takes at
 * once: then splice.  Returns 0, or -1 (nothing started; the owner ends
 * the session). */
int relay_start(struct relay *r, struct ev_loop *loop, struct sockmap *sm,
		int c, int t, unsigned idle_timeout, relay_done_cb cb,
		void *arg);
/* Stops the watchers and frees pipes and buffers (sockmap mode: counts
 * the bytes and takes the pair out of the maps); idempotent. */
void relay_stop(struct relay *r);
/* Bytes relayed each way so far (up: client to target), including
 * r->up.bytes counted before the start. */
void relay_bytes(const struct relay *r, uint64_t *up, uint64_t *down);

/* relay_sockmap.c, for relay.c only.  _start returns 0 (the kernel
 * relays), 1 (use splice; what the client had queued may be preloaded),
 * or -1 (end the session). */
int relay_sockmap_start(struct relay *r, struct sockmap *sm, int c, int t);
void relay_sockmap_stop(struct relay *r);
void relay_sockmap_idle(struct relay *r);
void relay_sockmap_bytes(const struct relay *r, uint64_t *up, uint64_t *down);
/* Starts direction d in user space (splice) in a relay that ran it in
 * the kernel so far. */
void relay_dir_handover(struct relay_dir *d);
/* Splice mode with len (<= 16 KiB) bytes queued toward the target
 * first. */
int relay_preload(struct relay *r, const void *buf, size_t len);

#endif
