/*
 * udpq: a batch of UDP datagrams for one socket, sent with one sendmmsg(2)
 * where the kernel takes them all, and with UDP GSO (UDP_SEGMENT, Linux
 * >= 4.18) where the caller allows it: consecutive datagrams of one size
 * to one destination (the last may be shorter) leave as one message that
 * the stack carries as one packet until the device (or the receiving
 * socket) cuts it, so routing, netfilter and conntrack run once per run,
 * not once per datagram.  The datagrams, their order and their
 * boundaries are what they would be one sendto each.
 *
 * Pure bookkeeping: the send function is passed in (sendmmsg in the
 * daemon, a fake in the tests), so the handling of partial sends, errors
 * and refused GSO is tested without sockets.  No allocation, no logging;
 * the datagrams' bytes and addresses belong to the caller and must live
 * until udpq_flush() returns.
 */
#ifndef SG_UDPQ_H
#define SG_UDPQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define UDPQ_MAX 32
/* GSO runs: at most this many bytes in all (the kernel's limit is one
 * IP packet, 64 KiB with headers), of segments of at most UDPQ_GSO_SEG
 * bytes: a segment must fit the path MTU unfragmented, and 1232 fits
 * IPv6's minimum (1280) with the headers, so that a refusal means the
 * socket cannot do GSO at all, not that one datagram was big. */
#define UDPQ_GSO_BYTES 60000
#define UDPQ_GSO_SEG 1232

struct udpq {
	unsigned n; /* datagrams queued */
	struct iovec iov[UDPQ_MAX];
	const void *to[UDPQ_MAX];
	socklen_t tolen[UDPQ_MAX];
	int err[UDPQ_MAX]; /* after udpq_flush: 0 sent, else the errno */
	/* Messages, built by udpq_flush: message j carries datagrams
	 * first[j] .. first[j] + count[j] - 1. */
	struct mmsghdr m[UDPQ_MAX];
	unsigned first[UDPQ_MAX], count[UDPQ_MAX];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[UDPQ_MAX];
};

/* sendmmsg(fd, m, n, 0): the number of messages sent, or -1 with errno.
 * (A wrapper, not sendmmsg itself: its flags argument is int in glibc
 * and unsigned in musl.) */
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

/* Sends the queued datagrams in order on fd, coalescing runs when *gso.
 * A datagram the kernel refuses (EMSGSIZE, EPERM from a firewall, an
 * unreachable network...) is skipped and the rest still go out, as one
 * sendto each would do; when the socket is full (EAGAIN, ENOBUFS) the
 * rest are dropped at once, since each would fail the same way (UDP may
 * drop).  A coalesced run the kernel refuses is sent again datagram by
 * datagram; if the refusal says the socket or device cannot do GSO
 * (EIO: no checksum offload; EINVAL: a segment over the path MTU, or an
 * old kernel; EOPNOTSUPP, ENOPROTOOPT) *gso is cleared, for the caller to
 * remember.  err[i] tells each datagram's fate.  Returns the number of
 * datagrams sent; the queue is then empty (udpq_init), err[] readable
 * until the next udpq_add. */
unsigned udpq_flush(struct udpq *q, int fd, udpq_send_fn send, bool *gso);

#endif
