/*
 * sockmap: the kernel relay of CONNECT streams (BPF sockmap).  The only
 * code that talks bpf(2).  sockmap_init() does everything that needs
 * privileges (program load, map creation, attaching the verdict program
 * to its map) once, before the daemon drops them; from then on a pair of
 * sockets is added, counted and removed with map updates, lookups and
 * deletes on descriptors already open, which need no capability.
 *
 * A pair's data never reaches user space: the verdict program
 * (bpf/sockmap.bpf.c) sends what arrives on one socket to the other.
 * User space still sees the end of each direction: the module watches
 * both sockets for EPOLLRDHUP and errors only (not EPOLLIN: the data
 * wakeups are filtered out in the kernel) on its own epoll descriptor,
 * which the owner watches and hands to sockmap_process().
 *
 * Back-pressure: the program reports a socket whose data runs more than
 * SOCKMAP_BACKLOG ahead of its peer's stream on a ring; the module takes
 * that socket out of the program's map (paused: TCP's window closes) and
 * tells the owner (SOCKMAP_EV_FULL), who resumes it once drained.
 *
 * Must not: include libev, read or write payload, call recv() on a
 * socket in sg_src (tcp_bpf's recvmsg runs the program over the queue,
 * then puts back the stream position, copied_seq, it read before: a
 * later splice or recv of that socket then skips as many bytes of what
 * is queued; seen on 6.18), decide when a session ends (relay.c does).
 *
 * Built only with SG_SOCKMAP (clang, bpftool, libbpf); without it
 * sockmap_init() fails with the reason and the rest are never called.
 */
#ifndef SOCKSGATE_SOCKMAP_H
#define SOCKSGATE_SOCKMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockmap;

/* A paused side may be resumed once fewer bytes than this are taken from
 * it and not yet written to the other (half the program's limit,
 * SOCKMAP_BACKLOG in bpf/sockmap_bpf.h). */
#define SOCKMAP_RESUME_BELOW (256 * 1024)

/* What sockmap_process() reports for one side of a pair. */
enum sockmap_event {
	SOCKMAP_EV_EOF = 1,  /* the peer of that socket sent FIN */
	SOCKMAP_EV_ERR = 2,  /* an error or RST on that socket */
	SOCKMAP_EV_FULL = 4, /* that socket's data backs up toward the
			      * other: it is paused (no longer read); the
			      * owner resumes it once the backlog drained */
};

/* One relayed pair; embedded in its owner, which keeps it in place
 * while added. */
struct sockmap_pair {
	int fd[2];
	uint64_t cookie[2];
	/* events: a mask of enum sockmap_event for side 0 or 1. */
	void (*cb)(void *arg, int side, unsigned events);
	void *arg;
	struct sockmap_pair_slot {
		struct sockmap_pair *pair;
		int side;
		struct sockmap_pair_slot *next; /* cookie hash chain */
	} slot[2]; /* the epoll registrations' data, the hash's nodes */
	bool added;
	bool paused[2]; /* out of sg_src: its data waits in its queue */
	/* Half-closed before it could enter sg_src (the kernel takes only
	 * established sockets): paused from the start and for good. */
	bool outside[2];
};

/* Loads the verdict program, creates the maps, attaches the program and
 * makes the epoll descriptor.  Needs CAP_BPF and CAP_NET_ADMIN (or root).
 * Returns the context, or NULL with the reason in err. */
struct sockmap *sockmap_init(char *err, size_t errlen);
void sockmap_free(struct sockmap *sm);
/* The descriptor to watch for reading; then call sockmap_process(). */
int sockmap_fd(const struct sockmap *sm);
/* Reports pending events to the pairs' callbacks (a callback may remove
 * any pair, its own included). */
void sockmap_process(struct sockmap *sm);

/* Relays connected TCP sockets a (side 0) and b (side 1) in the kernel.
 * Bytes already in either socket's receive queue are sent on too, in
 * order (sockmap_kick runs the program over them).  A FIN already
 * received is reported by the first sockmap_process().  A side whose FIN
 * came before it could enter the program's map is left out of it
 * (p->outside[side], p->paused[side]: its data waits in its queue for
 * the owner) while the other side is relayed.  Returns 0; or -1 with
 * errno and nothing left in the maps (the caller may relay the pair
 * otherwise); or -2 with errno when one socket was already handed to the
 * kernel (data may be in flight: the pair can only be ended). */
int sockmap_add(struct sockmap *sm, struct sockmap_pair *p, int a, int b);
/* Takes the pair out of the maps and the epoll set; idempotent.  Data
 * the kernel holds for a socket leaving the maps is dropped: remove a
 * pair once each direction is drained (sockmap_drained) or when it is
 * reset anyway. */
void sockmap_remove(struct sockmap *sm, struct sockmap_pair *p);
/* Puts a paused side back (its queued data is taken, oldest first).
 * Returns 0, or -1 with errno (the pair can only be ended). */
int sockmap_resume(struct sockmap *sm, struct sockmap_pair *p, int side);
/* Bytes the program took from side's socket so far; -1 on error. */
int sockmap_taken(struct sockmap *sm, const struct sockmap_pair *p, int side,
		  uint64_t *bytes);
/* Bytes written into fd's TCP stream so far (acknowledged plus queued),
 * counted from the connection's start; -1 on error. */
int sockmap_written(int fd, uint64_t *bytes);
/* Bytes fd received in order so far (TCP_INFO bytes_received: a FIN
 * counts one); -1 on error. */
int sockmap_received(int fd, uint64_t *bytes);
/* Bytes fd received that its owner already read: what the program will
 * never see.  Only for a socket in no map yet; -1 with errno (EPIPE when
 * fd is no longer established: it cannot enter a map). */
int sockmap_consumed(int fd, uint64_t *bytes);
/* Makes the kernel run fd's data-ready hook now (the program over what
 * its queue holds), without reading: SO_RCVLOWAT 1, whose setter calls
 * it. */
void sockmap_kick(int fd);

#endif
