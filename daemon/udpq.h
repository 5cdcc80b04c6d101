/*
 * udpq: a batch of UDP datagrams for one socket, sent with one sendmmsg(2)
 * where the kernel takes them all.  Pure bookkeeping: the send function
 * is passed in (sendmmsg in the daemon, a fake in the tests), so the
 * handling of partial sends and errors is tested without sockets.  No
 * allocation, no logging; the datagrams' bytes and addresses belong to
 * the caller and must live until udpq_flush() returns.
 */
#ifndef SG_UDPQ_H
#define SG_UDPQ_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define UDPQ_MAX 32

struct udpq {
	unsigned n;
	struct mmsghdr m[UDPQ_MAX];
	struct iovec iov[UDPQ_MAX];
	int err[UDPQ_MAX]; /* after udpq_flush: 0 sent, else the errno */
};

/* sendmmsg(fd, m, n, 0): the number sent, or -1 with errno.  (A wrapper,
 * not sendmmsg itself: its flags argument is int in glibc and unsigned in
 * musl.) */
typedef int (*udpq_send_fn)(int fd, struct mmsghdr *m, unsigned n);

static inline void udpq_init(struct udpq *q)
{
	q->n = 0;
}
static inline bool udpq_full(const struct udpq *q)
{
	return q->n == UDPQ_MAX;
}

/* Appends a datagram of len bytes at p to to (tolen bytes).  The queue
 * must not be full.  Returns its index. */
unsigned udpq_add(struct udpq *q, const void *to, socklen_t tolen,
		  const void *p, size_t len);

/* Sends the queued datagrams in order on fd.  A datagram the kernel
 * refuses (EMSGSIZE, EPERM from a firewall, an unreachable network...) is
 * skipped and the rest still go out, as one sendto each would do; when
 * the socket is full (EAGAIN, ENOBUFS) the rest are dropped at once, since
 * each would fail the same way (UDP may drop).  err[i] tells each
 * datagram's fate.  Returns the number sent; the queue is then empty
 * (udpq_init) but err[] and m[] stay readable until the next udpq_add. */
unsigned udpq_flush(struct udpq *q, int fd, udpq_send_fn send);

#endif
