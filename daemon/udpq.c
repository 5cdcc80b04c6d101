/*
 * udpq: batches of datagrams for sendmmsg(2) (udpq.h).  Never touches a
 * socket itself: the send function is the caller's.
 */
#include "udpq.h"

#include <errno.h>
#include <string.h>

unsigned udpq_add(struct udpq *q, const void *to, socklen_t tolen,
		  const void *p, size_t len)
{
	unsigned i = q->n++;

	q->iov[i].iov_base = (void *)p;
	q->iov[i].iov_len = len;
	memset(&q->m[i], 0, sizeof(q->m[i]));
	q->m[i].msg_hdr.msg_name = (void *)to;
	q->m[i].msg_hdr.msg_namelen = tolen;
	q->m[i].msg_hdr.msg_iov = &q->iov[i];
	q->m[i].msg_hdr.msg_iovlen = 1;
	q->err[i] = 0;
	return i;
}

unsigned udpq_flush(struct udpq *q, int fd, udpq_send_fn send)
{
	unsigned i = 0, sent = 0, n = q->n;

	while (i < n) {
		int r = send(fd, &q->m[i], n - i);
		if (r > 0) {
			/* The kernel stops at the first datagram it refuses
			 * (its error is then lost): the next call reports it.
			 */
			for (unsigned j = i; j < i + (unsigned)r; j++)
				q->err[j] = 0;
			i += (unsigned)r;
			sent += (unsigned)r;
			continue;
		}
		int e = r < 0 ? errno : EIO;
		if (e == EINTR)
			continue;
		q->err[i++] = e;
		if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS)
			while (i < n)
				q->err[i++] = e;
	}
	q->n = 0;
	return sent;
}
