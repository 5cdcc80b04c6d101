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
 * Back-pressure: past SOCKMAP_BACKLOG bytes sent on and not yet in the
 * peer's stream, the program holds a socket's data back in that
 * socket's own queue (TCP's window closes) and notes it on a ring; the
 * module then watches the socket for EPOLLIN too and tells the owner
 * (SOCKMAP_EV_HOLD, then SOCKMAP_EV_DATA), who reads what was held back
 * with recv() once what was sent before it went out (sockmap_state),
 * writes it to the other socket and reports it (sockmap_set_done).  The
 * program sends on again with the first data after the owner wrote
 * everything it held back; the owner then stops watching
 * (sockmap_unhold).
 *
 * Must not: include libev, read or write payload, take a socket out of
 * sg_src while the pair lives (the kernel drops an skb that arrives
 * meanwhile), use recv() to make the program run (tcp_bpf's recvmsg
 * then puts back a stale copied_seq: a later splice or recv of the
 * receive queue skips as many bytes; seen on 6.18), decide when a
 * session ends (relay.c does).
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

/* What sockmap_process() reports for one side of a pair. */
enum sockmap_event {
	SOCKMAP_EV_EOF = 1,	  /* the peer of that socket sent FIN */
	SOCKMAP_EV_ERR = 2,	  /* an error or RST on that socket */
	SOCKMAP_EV_HOLD = 4,	  /* the program holds that socket's data back
				   * (it backed up toward the other): the
				   * owner moves it */
	SOCKMAP_EV_DATA = 8,	  /* held-back data may be there to read */
	SOCKMAP_EV_OVERFLOW = 16, /* more is held back than the socket's
				   * buffer accounts for (both directions
				   * stalled): end the pair */
};

/* The owner tells the program what it read of held-back data at least
 * this often (sockmap_set_done). */
#define SOCKMAP_READ_STEP (512 * 1024)

/* What the program counted for one socket (sockmap_state). */
struct sockmap_state {
	uint64_t taken;	 /* bytes taken: sent on or held back */
	uint64_t passed; /* of those, held back for the owner */
	bool hold;	 /* data arriving now is held back */
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
	/* Set by sockmap_add before either socket enters a map: what was
	 * written into each socket's stream (sockmap_written) and what it
	 * received and its owner read (the program never sees that). */
	uint64_t wbase[2], rbase[2];
	bool added;
	bool held[2]; /* watched for EPOLLIN: the program held data back */
	/* Half-closed before it could enter sg_src (the kernel takes only
	 * established sockets): its data is the owner's to move, from its
	 * receive queue as with any socket. */
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
 * (p->outside[side]: its data waits in its queue for the owner) while
 * the other side is relayed.  Returns 0; or -1 with
 * errno and nothing left in the maps (the caller may relay the pair
 * otherwise; EPIPE: one already half-closed); or -2 with errno when one socket
 * was already handed to the kernel (data may be in flight: the pair can only be
 * ended). */
int sockmap_add(struct sockmap *sm, struct sockmap_pair *p, int a, int b);
/* Takes the pair out of the maps and the epoll set; idempotent.  Data
 * the kernel holds for a socket leaving the maps is dropped: remove a
 * pair once each direction went out, or when it is reset anyway. */
void sockmap_remove(struct sockmap *sm, struct sockmap_pair *p);
/* What the program counted for side's socket; -1 on error. */
int sockmap_state(struct sockmap *sm, const struct sockmap_pair *p, int side,
		  struct sockmap_state *st);
/* Tells the program how many held-back bytes of side's socket the owner
 * wrote to the other socket (done) and read (read) so far (tell read at
 * least every SOCKMAP_READ_STEP: the program ends a pair that holds back
 * more than it can account for, unread); -1 on error (ENOMEM: try again
 * later). */
int sockmap_set_done(struct sockmap *sm, const struct sockmap_pair *p, int side,
		     uint64_t done, uint64_t read);
/* Stops watching side's socket for held-back data (the program sends
 * on again: sockmap_state's hold is false and all was moved). */
void sockmap_unhold(struct sockmap *sm, struct sockmap_pair *p, int side);
/* Bytes written into fd's TCP stream so far (acknowledged plus queued),
 * counted from the connection's start; -1 on error. */
int sockmap_written(int fd, uint64_t *bytes);
/* Bytes fd received in order so far (TCP_INFO bytes_received: a FIN
 * counts one); -1 on error. */
int sockmap_received(int fd, uint64_t *bytes);
/* Makes the kernel run fd's data-ready hook now (the program over what
 * its queue holds), without reading: SO_RCVLOWAT 1, whose setter calls
 * it. */
void sockmap_kick(int fd);

#endif
