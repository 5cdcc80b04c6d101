/*
 * Unit tests for daemon/udpq: datagram batches for sendmmsg, against a
 * scripted fake of the kernel: every datagram sent in order, partial
 * sends resumed, a refused datagram skipped while the rest go out, a full
 * socket dropping the rest of the batch at once; GSO runs (same size,
 * same destination, a shorter last one, the size and segment caps), a
 * refused run sent again datagram by datagram and GSO given up when the
 * kernel says it cannot.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>

#include "udpq.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

/* The fake: each call takes at most script[call].take messages (all if
 * 0 and no error), or fails with script[call].err.  What it took is
 * recorded: the datagrams' first bytes in wire, and per message its
 * number of datagrams and its GSO segment size (0: none) in msgs. */
struct step {
	int take, err;
};
static const struct step *script;
static int calls, nscript;
static char wire[256];
static int nwire;
static struct {
	unsigned count, seg;
} msgs[256];
static int nmsgs;

static int fake_send(int fd, struct mmsghdr *m, unsigned n)
{
	cr_assert_lt(calls, nscript, "more calls than scripted");
	const struct step *st = &script[calls++];

	cr_assert_eq(fd, 7);
	cr_assert_gt(n, 0);
	if (st->err) {
		errno = st->err;
		return -1;
	}
	unsigned take = st->take ? (unsigned)st->take : n;
	if (take > n)
		take = n;
	for (unsigned i = 0; i < take; i++) {
		struct msghdr *h = &m[i].msg_hdr;
		unsigned seg = 0;
		struct cmsghdr *cm =
			h->msg_controllen ? CMSG_FIRSTHDR(h) : NULL;
		if (cm) {
			uint16_t g;
			cr_assert_eq(cm->cmsg_level, IPPROTO_UDP);
			cr_assert_eq(cm->cmsg_type, UDP_SEGMENT);
			memcpy(&g, CMSG_DATA(cm), sizeof(g));
			seg = g;
		}
		cr_assert_eq(h->msg_iovlen > 1, seg > 0);
		for (size_t k = 0; k < h->msg_iovlen; k++) {
			/* GSO's rule: every segment seg bytes but the last,
			 * which may be shorter. */
			if (seg)
				cr_assert(h->msg_iov[k].iov_len == seg ||
					  (k + 1 == h->msg_iovlen &&
					   h->msg_iov[k].iov_len < seg));
			wire[nwire++] = ((char *)h->msg_iov[k].iov_base)[0];
		}
		msgs[nmsgs].count = (unsigned)h->msg_iovlen;
		msgs[nmsgs++].seg = seg;
	}
	return (int)take;
}

static char data[UDPQ_MAX][2000];
static struct sockaddr_storage to[2];

/* Queues n datagrams 'a', 'b', ... of size[i] bytes (1 if !size) to
 * to[dst[i]] (to[0] if !dst). */
static void fill(struct udpq *q, unsigned n, const size_t *size, const int *dst)
{
	udpq_init(q);
	for (unsigned i = 0; i < n; i++) {
		data[i][0] = (char)('a' + i);
		int d = dst ? dst[i] : 0;
		cr_assert_eq(udpq_add(q, &to[d], sizeof(to[d]), data[i],
				      size ? size[i] : 1),
			     i);
	}
}

static void run(const struct step *s, int n)
{
	script = s;
	nscript = n;
	calls = 0;
	nwire = nmsgs = 0;
	memset(wire, 0, sizeof(wire));
	to[0].ss_family = AF_INET;
	to[1].ss_family = AF_INET6;
}
#define RUN(s) run(s, (int)(sizeof(s) / sizeof(s[0])))

Test(udpq, all_at_once)
{
	struct udpq q;
	static const struct step s[] = {{0, 0}};
	bool gso = false;

	RUN(s);
	fill(&q, 5, NULL, NULL);
	cr_assert_eq(udpq_flush(&q, 7, fake_send, &gso), 5);
	cr_assert_eq(calls, 1);
	cr_assert_eq(nmsgs, 5);
	cr_assert_str_eq(wire, "abcde");
	for (int i = 0; i < 5; i++)
		cr_assert_eq(q.err[i], 0);
	cr_assert_eq(q.n, 0);
	cr_assert_eq(q.m[2].msg_hdr.msg_name, &to[0]);
}

Test(udpq, partial_sends_resume_in_order)
{
	struct udpq q;
	static const struct step s[] = {{2, 0}, {1, 0}, {0, 0}};
	bool gso = false;

	RUN(s);
	fill(&q, 6, NULL, NULL);
	cr_assert_eq(udpq_flush(&q, 7, fake_send, &gso), 6);
	cr_assert_eq(calls, 3);
	cr_assert_str_eq(wire, "abcdef");
}

Test(udpq, refused_datagram_skipped)
{
	struct udpq q;
	/* Two go, the third is too big, the rest go. */
	static const struct step s[] = {{2, 0}, {0, EMSGSIZE}, {0, 0}};
	bool gso = false;

	RUN(s);
	fill(&q, 5, NULL, NULL);
	cr_assert_eq(udpq_flush(&q, 7, fake_send, &gso), 4);
	cr_assert_str_eq(wire, "abde");
	cr_assert_eq(q.err[2], EMSGSIZE);
	cr_assert_eq(q.err[0] | q.err[1] | q.err[3] | q.err[4], 0);
}

Test(udpq, full_socket_drops_the_rest)
{
	struct udpq q;
	static const struct step s[] = {{3, 0}, {0, EAGAIN}};
	bool gso = false;

	RUN(s);
	fill(&q, 8, NULL, NULL);
	cr_assert_eq(udpq_flush(&q, 7, fake_send, &gso), 3);
	cr_assert_eq(calls, 2); /* not one call per dropped datagram */
	cr_assert_str_eq(wire, "abc");
	for (int i = 3; i < 8; i++)
		cr_assert_eq(q.err[i], EAGAIN);
}

Test(udpq, enobufs_and_a_firewall)
{
	struct udpq q;
	static const struct step s[] = {{0, ENOBUFS}};
	static const struct step e[] = {{0, EPERM}, {0, EPERM}, {0, EPERM}};
	bool gso = false;

	RUN(s);
	fill(&q, 4, NULL, NULL);
	cr_assert_eq(udpq_flush(&q, 7, fake_send, &gso), 0);
	cr_assert_eq(calls, 1);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(q.err[i], ENOBUFS);
	/* A firewall refusing each: each tried, none sent, queue empty. */
	RUN(e);
	fill(&q, 3, NULL, NULL);
	cr_assert_eq(udpq_flush(&q, 7, fake_send, &gso), 0);
	cr_assert_eq(calls, 3);
	cr_assert_eq(q.n, 0);
}

Test(udpq, full_queue_and_empty_flush)
{
	struct udpq q;
	static const struct step s[] = {{0, 0}};
	bool gso = true;

	RUN(s);
	fill(&q, UDPQ_MAX, NULL, NULL);
	cr_assert(udpq_full(&q));
	cr_assert_eq(udpq_flush(&q, 7, fake_send, &gso), UDPQ_MAX);
	cr_assert_eq(nwire, UDPQ_MAX);
	cr_assert_eq(nmsgs, 1); /* one run of 32 one-byte datagrams */
	udpq_init(&q);
	cr_assert_eq(udpq_flush(&q, 7, fake_send, &gso), 0);
	cr_assert_eq(calls, 1); /* an empty queue makes no call */
}

Test(udpq, gso_runs)
{
	struct udpq q;
	static const struct step s[] = {{0, 0}};
	/* a b c: 100 bytes to 0, d: 60 (a shorter last: joins), e f: 100
	 * (a new run), g: 100 to 1, h: 200 to 1 (longer: no), i j: 1300
	 * (over the segment cap: single). */
	static const size_t size[] = {100, 100, 100, 60,   100,
				      100, 100, 200, 1300, 1300};
	static const int dst[] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
	bool gso = true;

	RUN(s);
	fill(&q, 10, size, dst);
	cr_assert_eq(udpq_flush(&q, 7, fake_send, &gso), 10);
	cr_assert_str_eq(wire, "abcdefghij");
	cr_assert_eq(nmsgs, 6);
	unsigned want[][2] = {{4, 100}, {2, 100}, {1, 0},
			      {1, 0},	{1, 0},	  {1, 0}};
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(msgs[i].count, want[i][0], "message %d", i);
		cr_assert_eq(msgs[i].seg, want[i][1], "message %d", i);
	}
	cr_assert(gso);
}

Test(udpq, gso_run_bytes_capped)
{
	struct udpq q;
	static const struct step s[] = {{0, 0}};
	size_t size[UDPQ_MAX];
	bool gso = true;
	unsigned per = UDPQ_GSO_BYTES / UDPQ_GSO_SEG;

	for (int i = 0; i < UDPQ_MAX; i++)
		size[i] = UDPQ_GSO_SEG;
	RUN(s);
	fill(&q, UDPQ_MAX, size, NULL);
	cr_assert_eq(udpq_flush(&q, 7, fake_send, &gso), UDPQ_MAX);
	cr_assert_eq(msgs[0].count, per < UDPQ_MAX ? per : UDPQ_MAX);
	cr_assert_eq(msgs[0].seg, UDPQ_GSO_SEG);
	cr_assert_eq(nwire, UDPQ_MAX);
}

Test(udpq, gso_refused_then_one_by_one)
{
	struct udpq q;
	/* The run of 3 is refused (no checksum offload): sent again one
	 * by one, and GSO given up. */
	static const struct step s[] = {{0, EIO}, {0, 0}};
	bool gso = true;

	RUN(s);
	fill(&q, 3, NULL, NULL);
	cr_assert_eq(udpq_flush(&q, 7, fake_send, &gso), 3);
	cr_assert_str_eq(wire, "abc");
	cr_assert_eq(nmsgs, 3);
	cr_assert_not(gso);
}

Test(udpq, gso_run_firewalled_keeps_gso)
{
	struct udpq q;
	/* A run to a refused destination: tried one by one (each refused),
	 * then the next destination's run still coalesced. */
	static const size_t size[] = {10, 10, 10, 10};
	static const int dst[] = {0, 0, 1, 1};
	static const struct step s[] = {
		{0, EPERM}, {0, EPERM}, {0, EPERM}, {0, 0}};
	bool gso = true;

	RUN(s);
	fill(&q, 4, size, dst);
	cr_assert_eq(udpq_flush(&q, 7, fake_send, &gso), 2);
	cr_assert_str_eq(wire, "cd");
	cr_assert_eq(nmsgs, 1);
	cr_assert_eq(msgs[0].count, 2);
	cr_assert_eq(q.err[0], EPERM);
	cr_assert_eq(q.err[1], EPERM);
	cr_assert(gso);
}
