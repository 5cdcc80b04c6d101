/*
 * udpq: batches of datagrams for sendmmsg(2), with UDP GSO runs
 * (udpq.h).  Never touches a socket itself: the send function is the
 * caller's.
 */
#include "udpq.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

unsigned udpq_add(struct udpq *q, const void *to, socklen_t tolen,
		  const void *p, size_t len)
{
	unsigned i = q->n++;

	q->iov[i].iov_base = (void *)p;
	q->iov[i].iov_len = len;
	q->to[i] = to;
	q->tolen[i] = tolen;
	q->err[i] = 0;
	return i;
}

/* May datagram b join the run that starts at a, which has total bytes? */
static bool joins(const struct udpq *q, unsigned a, unsigned b, size_t total)
{
	size_t seg = q->iov[a].iov_len;

	return seg <= UDPQ_GSO_SEG && q->iov[b].iov_len <= seg &&
	       q->iov[b].iov_len > 0 &&
	       total + q->iov[b].iov_len <= UDPQ_GSO_BYTES &&
	       q->tolen[b] == q->tolen[a] &&
	       (q->to[b] == q->to[a] ||
		memcmp(q->to[b], q->to[a], q->tolen[a]) == 0);
}

/* Builds the messages for datagrams from..n-1, coalescing (if gso) only
 * datagrams at or after single_until.  Returns the number of messages. */
static unsigned build(struct udpq *q, unsigned from, bool gso,
		      unsigned single_until)
{
	unsigned nm = 0;

	for (unsigned i = from; i < q->n; nm++) {
		struct msghdr *h = &q->m[nm].msg_hdr;
		unsigned c = 1;
		size_t total = q->iov[i].iov_len;

		if (gso && i >= single_until && total > 0) {
			/* Same size, same destination; a shorter one ends
			 * the run (GSO's last segment may be short). */
			while (i + c < q->n && joins(q, i, i + c, total)) {
				total += q->iov[i + c].iov_len;
				c++;
				if (q->iov[i + c - 1].iov_len <
				    q->iov[i].iov_len)
					break;
			}
		}
		memset(&q->m[nm], 0, sizeof(q->m[nm]));
		h->msg_name = (void *)q->to[i];
		h->msg_namelen = q->tolen[i];
		h->msg_iov = &q->iov[i];
		h->msg_iovlen = c;
		if (c > 1) {
			uint16_t seg = (uint16_t)q->iov[i].iov_len;
			h->msg_control = q->ctl[nm].buf;
			h->msg_controllen = sizeof(q->ctl[nm].buf);
			struct cmsghdr *cm = CMSG_FIRSTHDR(h);
			cm->cmsg_level = IPPROTO_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(seg));
			memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
		}
		q->first[nm] = i;
		q->count[nm] = c;
		i += c;
	}
	return nm;
}

unsigned udpq_flush(struct udpq *q, int fd, udpq_send_fn send, bool *gso)
{
	unsigned i = 0, sent = 0, n = q->n, single_until = 0;

	while (i < n) {
		unsigned nm = build(q, i, gso && *gso, single_until);
		int r = send(fd, q->m, nm);
		if (r > 0) {
			/* The kernel stops at the first message it refuses
			 * (its error is then lost): the next call reports it.
			 */
			unsigned end = (unsigned)r < nm ? q->first[r] : n;
			for (unsigned j = i; j < end; j++)
				q->err[j] = 0;
			sent += end - i;
			i = end;
			continue;
		}
		int e = r < 0 ? errno : EIO;
		if (e == EINTR)
			continue;
		if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) {
			while (i < n)
				q->err[i++] = e;
			break;
		}
		if (q->count[0] > 1) {
			/* A GSO run refused: its datagrams go one by one. */
			if (e == EIO || e == EINVAL || e == EOPNOTSUPP ||
			    e == ENOPROTOOPT)
				*gso = false;
			single_until = i + q->count[0];
			continue;
		}
		q->err[i++] = e;
	}
	q->n = 0;
	return sent;
}
