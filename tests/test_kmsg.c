/*
 * Unit tests for daemon/kmsg: the messages between the session process
 * and the kernel agent.  kmsg_check() must refuse every malformed
 * message (size, version, type, direction, address family, strings,
 * reasons), and kmsg_check_open() every OPEN the agent must not carry
 * out whatever the session process decided.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

#include "cfg.h"
#include "kmsg.h"
#include "s5_proto.h"

static void addr4(struct kmsg_addr *a, uint8_t last, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	a->ip[0] = 198;
	a->ip[1] = 18;
	a->ip[2] = 0;
	a->ip[3] = last;
	a->port = port;
}

static struct kmsg_open good_open(void)
{
	struct kmsg_open m;

	memset(&m, 0, sizeof(m));
	kmsg_hdr_init(&m.h, KMSG_OPEN, sizeof(m));
	m.tag = 7;
	m.session_id = 1;
	m.proto = 6;
	addr4(&m.src, 2, 40000);
	addr4(&m.bnd, 1, 0);
	addr4(&m.dst, 9, 80);
	m.dst.ip[2] = 1;
	addr4(&m.client, 2, 5555);
	strcpy(m.user, "alice");
	return m;
}

static enum kmsg_type check(const void *m, size_t len, char from)
{
	const char *why;
	enum kmsg_type t = kmsg_check(m, len, from, &why);

	if (t == KMSG_NONE)
		cr_assert_not_null(why);
	return t;
}

Test(kmsg, a_good_open_passes)
{
	struct kmsg_open m = good_open();

	cr_assert_eq(check(&m, sizeof(m), 'S'), KMSG_OPEN);
}

Test(kmsg, framing_faults_are_refused)
{
	struct kmsg_open m = good_open();
	unsigned char big[KMSG_MAX + 1];

	/* Short, long, size field wrong, version, type, direction. */
	cr_assert_eq(check(&m, 4, 'S'), KMSG_NONE);
	cr_assert_eq(check(&m, sizeof(m) - 1, 'S'), KMSG_NONE);
	memset(big, 0, sizeof(big));
	memcpy(big, &m, sizeof(m));
	cr_assert_eq(check(big, sizeof(m) + 1, 'S'), KMSG_NONE);
	m.h.size++;
	cr_assert_eq(check(&m, sizeof(m), 'S'), KMSG_NONE);
	m = good_open();
	m.h.version = KMSG_VERSION + 1;
	cr_assert_eq(check(&m, sizeof(m), 'S'), KMSG_NONE);
	m = good_open();
	cr_assert_eq(check(&m, sizeof(m), 'A'), KMSG_NONE,
		     "an OPEN from the agent");
	cr_assert_eq(check(&m, sizeof(m), 'P'), KMSG_NONE);
	m.h.type = 0;
	cr_assert_eq(check(&m, sizeof(m), 'S'), KMSG_NONE);
	m.h.type = KMSG_TYPE_COUNT;
	cr_assert_eq(check(&m, sizeof(m), 'S'), KMSG_NONE);
	m.h.type = 0xffff;
	cr_assert_eq(check(&m, sizeof(m), 'S'), KMSG_NONE);
}

Test(kmsg, open_fields_are_checked)
{
	struct kmsg_open m = good_open();

	m.tag = 0;
	cr_assert_eq(check(&m, sizeof(m), 'S'), KMSG_NONE, "tag 0");
	m = good_open();
	m.proto = 0;
	cr_assert_eq(check(&m, sizeof(m), 'S'), KMSG_NONE, "proto 0");
	m = good_open();
	m.dst.family = AF_UNIX;
	cr_assert_eq(check(&m, sizeof(m), 'S'), KMSG_NONE, "AF_UNIX");
	m = good_open();
	m.src.ip[7] = 1; /* IPv4 with bytes past the fourth */
	cr_assert_eq(check(&m, sizeof(m), 'S'), KMSG_NONE);
	m = good_open();
	memset(m.user, 'a', sizeof(m.user)); /* no NUL */
	cr_assert_eq(check(&m, sizeof(m), 'S'), KMSG_NONE, "unterminated");
	m = good_open();
	strcpy(m.user, "al\nice"); /* a forged log line */
	cr_assert_eq(check(&m, sizeof(m), 'S'), KMSG_NONE, "newline");
	m = good_open();
	strcpy(m.user, "a b");
	cr_assert_eq(check(&m, sizeof(m), 'S'), KMSG_NONE, "space");
}

Test(kmsg, reasons_the_session_may_give)
{
	struct kmsg_close c;
	struct kmsg_terminate t;

	memset(&c, 0, sizeof(c));
	kmsg_hdr_init(&c.h, KMSG_CLOSE, sizeof(c));
	c.tag = 3;
	c.why = ASSOC_END_N1_CLOSED;
	cr_assert_eq(check(&c, sizeof(c), 'S'), KMSG_CLOSE);
	c.why = ASSOC_END_SHUTDOWN;
	cr_assert_eq(check(&c, sizeof(c), 'S'), KMSG_CLOSE);
	c.why = ASSOC_END_TARGET_FIN; /* the kernel's to say */
	cr_assert_eq(check(&c, sizeof(c), 'S'), KMSG_NONE);
	c.why = 1000;
	cr_assert_eq(check(&c, sizeof(c), 'S'), KMSG_NONE);
	memset(&t, 0, sizeof(t));
	kmsg_hdr_init(&t.h, KMSG_TERMINATE, sizeof(t));
	t.id = 5;
	t.why = ASSOC_END_OPERATOR;
	cr_assert_eq(check(&t, sizeof(t), 'S'), KMSG_TERMINATE);
	t.why = ASSOC_END_POLICY;
	cr_assert_eq(check(&t, sizeof(t), 'S'), KMSG_TERMINATE);
	t.why = ASSOC_END_SESSION_LOST;
	cr_assert_eq(check(&t, sizeof(t), 'S'), KMSG_NONE);
}

Test(kmsg, agent_messages)
{
	struct kmsg_ready r;
	struct kmsg_ended e;

	memset(&r, 0, sizeof(r));
	kmsg_hdr_init(&r.h, KMSG_READY, sizeof(r));
	r.tag = 1;
	r.rep = S5_REP_GENERAL; /* a refusal needs no address */
	cr_assert_eq(check(&r, sizeof(r), 'A'), KMSG_READY);
	r.rep = S5_REP_SUCCEEDED; /* a success does */
	cr_assert_eq(check(&r, sizeof(r), 'A'), KMSG_NONE);
	addr4(&r.bnd, 1, 20000);
	cr_assert_eq(check(&r, sizeof(r), 'A'), KMSG_READY);
	cr_assert_eq(check(&r, sizeof(r), 'S'), KMSG_NONE);
	memset(&e, 0, sizeof(e));
	kmsg_hdr_init(&e.h, KMSG_ENDED, sizeof(e));
	e.tag = 1;
	e.why = ASSOC_END_COUNT;
	cr_assert_eq(check(&e, sizeof(e), 'A'), KMSG_NONE);
	e.why = ASSOC_END_IDLE;
	cr_assert_eq(check(&e, sizeof(e), 'A'), KMSG_ENDED);
}

static struct cfg conf(void)
{
	struct cfg c;

	cfg_defaults(&c);
	return c;
}

static uint8_t open_rep(const struct cfg *c, const struct kmsg_open *m)
{
	const char *why = NULL;
	uint8_t rep = kmsg_check_open(c, m, &why);

	if (rep != S5_REP_SUCCEEDED)
		cr_assert_not_null(why);
	return rep;
}

Test(kmsg, open_semantics)
{
	struct cfg c = conf();
	struct kmsg_open m = good_open();

	cr_assert_eq(open_rep(&c, &m), S5_REP_SUCCEEDED);
	/* A BND.PORT of the session's choosing: the agent allocates. */
	m.bnd.port = 22;
	cr_assert_eq(open_rep(&c, &m), S5_REP_NOT_ALLOWED);
	/* A PTCL the configuration does not enable. */
	m = good_open();
	m.proto = 132;
	cr_assert_eq(open_rep(&c, &m), S5_REP_PTCL_UNSUPPORTED);
	/* Families that differ. */
	m = good_open();
	m.dst.family = AF_INET6;
	memset(m.dst.ip, 0, 16);
	m.dst.ip[0] = 0x20;
	m.dst.ip[1] = 0x01;
	m.dst.ip[2] = 0x0d;
	m.dst.ip[3] = 0xb8;
	m.dst.ip[15] = 1;
	cr_assert_eq(open_rep(&c, &m), S5_REP_ATYP_UNSUPPORTED);
	/* Loopback, unspecified, multicast, broadcast destinations; port 0. */
	static const uint8_t bad[][4] = {
		{127, 0, 0, 1}, {0, 0, 0, 0},	      {0, 1, 2, 3},
		{224, 0, 0, 1}, {255, 255, 255, 255},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = good_open();
		memcpy(m.dst.ip, bad[i], 4);
		cr_assert_neq(open_rep(&c, &m), S5_REP_SUCCEEDED,
			      "dst %u.%u.%u.%u", bad[i][0], bad[i][1],
			      bad[i][2], bad[i][3]);
		m = good_open();
		memcpy(m.src.ip, bad[i], 4);
		cr_assert_neq(open_rep(&c, &m), S5_REP_SUCCEEDED, "src");
	}
	m = good_open();
	m.dst.port = 0;
	cr_assert_neq(open_rep(&c, &m), S5_REP_SUCCEEDED);
	m = good_open();
	m.src.port = 0;
	cr_assert_neq(open_rep(&c, &m), S5_REP_SUCCEEDED);
	/* IPv6 loopback and an IPv4-mapped loopback. */
	m = good_open();
	m.src.family = m.bnd.family = m.dst.family = AF_INET6;
	memset(m.dst.ip, 0, 16);
	m.dst.ip[15] = 1;
	memset(m.src.ip, 0, 16);
	m.src.ip[0] = 0x20;
	m.src.ip[1] = 0x01;
	m.src.ip[2] = 0x0d;
	m.src.ip[3] = 0xb8;
	m.src.ip[15] = 2;
	memcpy(m.bnd.ip, m.src.ip, 16);
	m.bnd.ip[15] = 1;
	cr_assert_neq(open_rep(&c, &m), S5_REP_SUCCEEDED, "::1");
	memset(m.dst.ip, 0, 16);
	m.dst.ip[10] = m.dst.ip[11] = 0xff;
	m.dst.ip[12] = 127;
	m.dst.ip[15] = 1;
	cr_assert_neq(open_rep(&c, &m), S5_REP_SUCCEEDED, "::ffff:127.0.0.1");
	/* A NAT64 address carrying 127.0.0.1. */
	memset(m.dst.ip, 0, 16);
	m.dst.ip[0] = 0x00;
	m.dst.ip[1] = 0x64;
	m.dst.ip[2] = 0xff;
	m.dst.ip[3] = 0x9b;
	m.dst.ip[12] = 127;
	m.dst.ip[15] = 1;
	cr_assert_neq(open_rep(&c, &m), S5_REP_SUCCEEDED, "64:ff9b::7f00:1");
}

Test(kmsg, bnd_forms)
{
	struct cfg c = conf();
	struct kmsg_open m = good_open();

	m.bnd.ip[0] = 127; /* loopback */
	cr_assert_eq(open_rep(&c, &m), S5_REP_NOT_ALLOWED);
	m = good_open();
	m.bnd.ip[0] = 169; /* link-local */
	m.bnd.ip[1] = 254;
	cr_assert_eq(open_rep(&c, &m), S5_REP_NOT_ALLOWED);
	m = good_open();
	m.src.family = m.bnd.family = m.dst.family = AF_INET6;
	memset(m.src.ip, 0, 16);
	memset(m.dst.ip, 0, 16);
	memset(m.bnd.ip, 0, 16);
	m.src.ip[0] = m.dst.ip[0] = 0x20;
	m.src.ip[1] = m.dst.ip[1] = 0x01;
	m.src.ip[2] = m.dst.ip[2] = 0x0d;
	m.src.ip[3] = m.dst.ip[3] = 0xb8;
	m.src.ip[15] = 2;
	m.dst.ip[15] = 9;
	m.bnd.ip[0] = 0xfe; /* fe80::1 */
	m.bnd.ip[1] = 0x80;
	m.bnd.ip[15] = 1;
	cr_assert_eq(open_rep(&c, &m), S5_REP_NOT_ALLOWED);
	m.bnd.ip[0] = 0x20; /* 2001:db8::1 */
	m.bnd.ip[1] = 0x01;
	m.bnd.ip[2] = 0x0d;
	m.bnd.ip[3] = 0xb8;
	cr_assert_eq(open_rep(&c, &m), S5_REP_SUCCEEDED);
}

Test(kmsg, bnd_must_be_the_relay_address)
{
	struct cfg c = conf();
	struct kmsg_open m = good_open();
	struct sockaddr_in *r = (struct sockaddr_in *)&c.relay4;

	r->sin_family = AF_INET;
	memcpy(&r->sin_addr, m.bnd.ip, 4);
	cr_assert_eq(open_rep(&c, &m), S5_REP_SUCCEEDED);
	m.bnd.ip[3] = 77;
	cr_assert_eq(open_rep(&c, &m), S5_REP_NOT_ALLOWED);
}

Test(kmsg, addresses_round_trip)
{
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
	struct kmsg_addr ka;

	memset(&in6, 0, sizeof(in6));
	in6.sin6_family = AF_INET6;
	in6.sin6_port = htons(4242);
	in6.sin6_addr.s6_addr[0] = 0x20;
	in6.sin6_addr.s6_addr[15] = 9;
	cr_assert_eq(kmsg_addr_from((struct sockaddr *)&in6, &ka), 0);
	cr_assert_eq(ka.port, 4242);
	kmsg_addr_to(&ka, &ss);
	cr_assert_eq(memcmp(&ss, &in6, sizeof(in6)), 0);
	ss.ss_family = AF_UNIX;
	cr_assert_eq(kmsg_addr_from((struct sockaddr *)&ss, &ka), -1);
}
