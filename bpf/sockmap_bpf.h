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

/* Bytes taken from a socket and not yet written into its peer's stream
 * (the kernel's queue between the two, which nothing else bounds) above
 * which the program asks user space to stop taking from that socket. */
#define SOCKMAP_BACKLOG (512 * 1024)
/* The ring of such requests (bytes; a power of 2, at least a page). */
#define SOCKMAP_NOTE_RING (64 * 1024)

/* sg_peer's value, keyed by a socket's cookie. */
struct sockmap_peer {
	__u64 peer;  /* the cookie of the socket its data goes to */
	__u64 bytes; /* bytes the program took from this socket */
	__u64 wbase; /* the peer's written bytes (acked + queued) at the
		      * start: user space's sockmap_written() */
};

/* A request on sg_note: the socket with this cookie is too far ahead. */
struct sockmap_note {
	__u64 cookie;
};

#endif
