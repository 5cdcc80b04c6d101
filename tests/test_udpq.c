/*
 * Unit tests for daemon/udpq: datagram batches for sendmmsg, against a
 * scripted fake of the kernel: every datagram sent in order, partial
 * sends resumed, a refused datagram skipped while the rest go out, a full
 * socket dropping the rest of the batch at once, and the queue reusable.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "udpq.h"

/* The fake: each call takes at most script[call].take datagrams (all if
 * 0 and no error), or fails with script[call].err; what it took is
 * recorded as the datagrams' first byte. */
struct step {
	int take, err;
};
static const struct step *script;
static int calls;
static char wire[256];
static int nwire;

static int fake_send(int fd, struct mmsghdr *m, unsigned n)
{
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
		wire[nwire++] = ((char *)m[i].msg_hdr.msg_iov->iov_base)[0];
		m[i].msg_len = (unsigned)m[i].msg_hdr.msg_iov->iov_len;
	}
	return (int)take;
}

static char data[UDPQ_MAX];
static struct sockaddr_storage to;

static void fill(struct udpq *q, unsigned n)
{
	udpq_init(q);
	for (unsigned i = 0; i < n; i++) {
		data[i] = (char)('a' + i);
		cr_assert_eq(udpq_add(q, &to, sizeof(to), &data[i], 1), i);
	}
}

static void run(struct udpq *q, const struct step *s)
{
	script = s;
	calls = 0;
	nwire = 0;
	memset(wire, 0, sizeof(wire));
	(void)q;
}

Test(udpq, all_at_once)
{
	struct udpq q;
	static const struct step s[] = {{0, 0}};

	fill(&q, 5);
	run(&q, s);
	cr_assert_eq(udpq_flush(&q, 7, fake_send), 5);
	cr_assert_eq(calls, 1);
	cr_assert_str_eq(wire, "abcde");
	for (int i = 0; i < 5; i++)
		cr_assert_eq(q.err[i], 0);
	cr_assert_eq(q.n, 0);
	cr_assert_eq(q.m[2].msg_hdr.msg_name, &to);
	cr_assert_eq(q.iov[2].iov_len, 1);
}

Test(udpq, partial_sends_resume_in_order)
{
	struct udpq q;
	static const struct step s[] = {{2, 0}, {1, 0}, {0, 0}};

	fill(&q, 6);
	run(&q, s);
	cr_assert_eq(udpq_flush(&q, 7, fake_send), 6);
	cr_assert_eq(calls, 3);
	cr_assert_str_eq(wire, "abcdef");
}

Test(udpq, refused_datagram_skipped)
{
	struct udpq q;
	/* Two go, the third is too big, the rest go. */
	static const struct step s[] = {{2, 0}, {0, EMSGSIZE}, {0, 0}};

	fill(&q, 5);
	run(&q, s);
	cr_assert_eq(udpq_flush(&q, 7, fake_send), 4);
	cr_assert_str_eq(wire, "abde");
	cr_assert_eq(q.err[2], EMSGSIZE);
	cr_assert_eq(q.err[0] | q.err[1] | q.err[3] | q.err[4], 0);
}

Test(udpq, full_socket_drops_the_rest)
{
	struct udpq q;
	static const struct step s[] = {{3, 0}, {0, EAGAIN}};

	fill(&q, 8);
	run(&q, s);
	cr_assert_eq(udpq_flush(&q, 7, fake_send), 3);
	cr_assert_eq(calls, 2); /* not one call per dropped datagram */
	cr_assert_str_eq(wire, "abc");
	for (int i = 3; i < 8; i++)
		cr_assert_eq(q.err[i], EAGAIN);
}

Test(udpq, enobufs_at_first_and_every_error)
{
	struct udpq q;
	static const struct step s[] = {{0, ENOBUFS}};
	static const struct step e[] = {{0, EPERM}, {0, EPERM}, {0, EPERM}};

	fill(&q, 4);
	run(&q, s);
	cr_assert_eq(udpq_flush(&q, 7, fake_send), 0);
	cr_assert_eq(calls, 1);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(q.err[i], ENOBUFS);
	/* A firewall refusing each: each tried, none sent, queue empty. */
	fill(&q, 3);
	run(&q, e);
	cr_assert_eq(udpq_flush(&q, 7, fake_send), 0);
	cr_assert_eq(calls, 3);
	cr_assert_eq(q.n, 0);
}

Test(udpq, full_queue_and_empty_flush)
{
	struct udpq q;
	static const struct step s[] = {{0, 0}};

	fill(&q, UDPQ_MAX);
	cr_assert(udpq_full(&q));
	run(&q, s);
	cr_assert_eq(udpq_flush(&q, 7, fake_send), UDPQ_MAX);
	cr_assert_eq(nwire, UDPQ_MAX);
	udpq_init(&q);
	cr_assert_eq(udpq_flush(&q, 7, fake_send), 0);
	cr_assert_eq(calls, 1); /* an empty queue makes no call */
}
