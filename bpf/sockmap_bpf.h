/*
 * sockmap_bpf.h: what the verdict program (bpf/sockmap.bpf.c) and its
 * loader (daemon/sockmap.c) share.  Fixed-size types only: the same
 * layout on both sides.
 */
#ifndef SOCKSGATE_SOCKMAP_BPF_H
#define SOCKSGATE_SOCKMAP_BPF_H

#include <linux/types.h>

/* Sockets in each map (two per session).  Elements are allocated on
 * insert, so a large bound costs only the hash buckets. */
#define SOCKMAP_MAX_SOCKETS 65536

/* Bytes redirected from a socket and not yet written into its peer's
 * stream (the kernel's queue between the two, which nothing else bounds)
 * above which the program holds that socket's data back: it then stays
 * in the socket's own queue, counted against its receive buffer, so TCP
 * closes the window, and user space moves it. */
#define SOCKMAP_BACKLOG (512 * 1024)
/* The ring of hold notices (bytes; a power of 2, at least a page). */
#define SOCKMAP_NOTE_RING (64 * 1024)

/* sg_peer's value, keyed by a socket's cookie; written by the program
 * only (user space creates it and reads it). */
struct sockmap_peer {
	__u64 peer;   /* the cookie of the socket its data goes to */
	__u64 bytes;  /* bytes the program took from this socket: sent
		       * to the peer, or held back */
	__u64 wbase;  /* the peer's written bytes (acked + queued) at the
		       * start: user space's sockmap_written() */
	__u64 passed; /* of bytes, those held back (SK_PASS: for user
		       * space to read and write to the peer) */
	__u32 hold;   /* 1: what arrives is held back */
	__u32 flags;  /* SOCKMAP_OVERFLOW_NOTED */
};

#define SOCKMAP_OVERFLOW_NOTED 1

/* sg_user's value, keyed by a socket's cookie; written by user space
 * only. */
struct sockmap_user {
	__u64 done; /* held-back bytes user space wrote into the peer's
		     * stream; when it equals passed, the program may send
		     * on again */
	__u64 read; /* held-back bytes user space read so far (told at
		     * least every 512 KiB: SOCKMAP_READ_STEP, sockmap.h) */
};

/* A notice on sg_note about the socket with this cookie. */
struct sockmap_note {
	__u64 cookie;
	__u32 what; /* enum below */
	__u32 pad;
};

enum {
	/* Its data is held back from now on. */
	SOCKMAP_NOTE_HOLD = 1,
	/* More of its data is held back and unread than its receive
	 * buffer can account for (sg_overflow): the kernel queues held
	 * data behind the other direction's, uncounted, when both
	 * directions are stalled; the session must end. */
	SOCKMAP_NOTE_OVERFLOW = 2,
};

#endif
