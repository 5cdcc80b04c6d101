/*
 * Unit tests for daemon/srclimit: per-source limits (prefixes, handshakes,
 * sessions, associations), the password penalty's growing spacing and its
 * decay, the UDP name-lookup bucket, and bounded memory.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "cfg.h"
#include "srclimit.h"

static struct cfg_limits limits(void)
{
	struct cfg c;
	char err[256];

	cr_assert_eq(cfg_parse_buf("", 0, "t", &c, err, sizeof(err)), 0);
	cfg_free(&c);
	return c.limits;
}

static struct sockaddr_storage ip(const char *s)
{
	struct sockaddr_storage ss;
	cr_assert_eq(addr_parse(s, 1234, &ss), 0, "%s", s);
	return ss;
}

static struct srclimit_src *open_ok(struct srclimit *t, const char *a,
				    double now)
{
	struct sockaddr_storage ss = ip(a);
	struct srclimit_src *src = NULL;
	enum srclimit_kind why;

	cr_assert_eq(srclimit_session_open(t, (struct sockaddr *)&ss, now, &src,
					   &why),
		     0, "%s refused", a);
	cr_assert_not_null(src);
	return src;
}

static enum srclimit_kind open_refused(struct srclimit *t, const char *a,
				       double now)
{
	struct sockaddr_storage ss = ip(a);
	struct srclimit_src *src = NULL;
	enum srclimit_kind why = SRCLIMIT_KINDS;

	cr_assert_eq(srclimit_session_open(t, (struct sockaddr *)&ss, now, &src,
					   &why),
		     -1, "%s allowed", a);
	cr_assert_null(src);
	return why;
}

Test(srclimit, defaults)
{
	struct cfg_limits l = limits();

	cr_assert_eq(l.prefix4, 32);
	cr_assert_eq(l.prefix6, 64);
	cr_assert_eq(l.handshakes, 64);
	cr_assert_eq(l.sessions, 256);
	cr_assert_eq(l.associations, 128);
	cr_assert_eq(l.auth_workers, 0);
	cr_assert_eq(l.penalty_free, 3);
	cr_assert_float_eq(l.penalty_base, 1, 1e-9);
	cr_assert_float_eq(l.penalty_max, 60, 1e-9);
	cr_assert_float_eq(l.udp_name_rate, 10, 1e-9);
	cr_assert_eq(l.udp_name_burst, 20);
}

Test(srclimit, handshakes_then_sessions)
{
	struct cfg_limits l = limits();
	l.handshakes = 2;
	l.sessions = 3;
	struct srclimit *t = srclimit_new(&l, 1);
	struct srclimit_src *a = open_ok(t, "198.18.0.2", 1);
	struct srclimit_src *b = open_ok(t, "198.18.0.2", 1);

	cr_assert_eq(a, b);
	cr_assert_eq(open_refused(t, "198.18.0.2", 1), SRCLIMIT_HANDSHAKES);
	/* Another host is another source. */
	srclimit_session_close(t, open_ok(t, "198.18.0.3", 1), true, 1);
	/* A finished handshake frees a handshake slot, not a session. */
	srclimit_handshake_done(t, a);
	open_ok(t, "198.18.0.2", 1);
	srclimit_handshake_done(t, a);
	cr_assert_eq(open_refused(t, "198.18.0.2", 1), SRCLIMIT_SESSIONS);
	srclimit_session_close(t, a, false, 2);
	open_ok(t, "198.18.0.2", 2);
	struct srclimit_stats st;
	srclimit_stats(t, 2, &st);
	cr_assert_eq(st.events[SRCLIMIT_HANDSHAKES], 1);
	cr_assert_eq(st.events[SRCLIMIT_SESSIONS], 1);
	srclimit_free(t);
}

Test(srclimit, zero_is_no_limit)
{
	struct cfg_limits l = limits();
	l.handshakes = 0;
	l.sessions = 0;
	l.associations = 0;
	struct srclimit *t = srclimit_new(&l, 1);

	for (int i = 0; i < 1000; i++) {
		struct srclimit_src *s = open_ok(t, "198.18.0.2", 1);
		cr_assert_eq(srclimit_assoc_open(t, s, 1), 0);
	}
	srclimit_free(t);
}

Test(srclimit, prefixes)
{
	struct cfg_limits l = limits();
	l.handshakes = 1;
	struct srclimit *t = srclimit_new(&l, 7);

	/* /64: two addresses of one /64 are one source. */
	open_ok(t, "2001:db8:0:1::2", 1);
	cr_assert_eq(open_refused(t, "2001:db8:0:1:ffff::9", 1),
		     SRCLIMIT_HANDSHAKES);
	open_ok(t, "2001:db8:0:2::2", 1);
	/* IPv4-mapped counts as the IPv4 address. */
	open_ok(t, "198.18.0.9", 1);
	cr_assert_eq(open_refused(t, "::ffff:198.18.0.9", 1),
		     SRCLIMIT_HANDSHAKES);
	/* A shorter prefix on reload applies to new sessions. */
	l.prefix4 = 24;
	srclimit_configure(t, &l);
	open_ok(t, "198.18.0.10", 1);
	cr_assert_eq(open_refused(t, "198.18.0.11", 1), SRCLIMIT_HANDSHAKES);
	uint8_t key[SRCLIMIT_KEY_LEN];
	struct srclimit_src *s = open_ok(t, "198.18.7.200", 1);
	cr_assert_eq(srclimit_key(s, key), SRCLIMIT_KEY_LEN);
	cr_assert_eq(key[0], 4);
	cr_assert_eq(key[1], 24);
	cr_assert(key[2] == 198 && key[3] == 18 && key[4] == 7 && key[5] == 0);
	cr_assert_eq(srclimit_key(NULL, key), 0);
	srclimit_free(t);
}

Test(srclimit, association_quota)
{
	struct cfg_limits l = limits();
	l.associations = 2;
	struct srclimit *t = srclimit_new(&l, 1);
	struct srclimit_src *s = open_ok(t, "198.18.0.2", 1);

	cr_assert_eq(srclimit_assoc_open(t, s, 1), 0);
	cr_assert_eq(srclimit_assoc_open(t, s, 1), 0);
	cr_assert_eq(srclimit_assoc_open(t, s, 1), -1);
	srclimit_assoc_close(t, s);
	cr_assert_eq(srclimit_assoc_open(t, s, 1), 0);
	cr_assert_eq(srclimit_assoc_open(t, NULL, 1), 0); /* untracked */
	struct srclimit_stats st;
	srclimit_stats(t, 1, &st);
	cr_assert_eq(st.events[SRCLIMIT_ASSOCIATIONS], 1);
	srclimit_free(t);
}

/* FREE 3, BASE 1, MAX 8: no delay for three failures, then 1, 2, 4, 8, 8
 * seconds; one failure forgotten per 8 s. */
Test(srclimit, penalty_grows_and_decays)
{
	struct cfg_limits l = limits();
	l.penalty_free = 3;
	l.penalty_base = 1;
	l.penalty_max = 8;
	struct srclimit *t = srclimit_new(&l, 1);
	struct srclimit_src *s = open_ok(t, "198.18.0.2", 100);
	uint8_t key[SRCLIMIT_KEY_LEN];
	size_t kl = srclimit_key(s, key);
	const double want[] = {0, 0, 0, 1, 2, 4, 8, 8, 8};
	double now = 100;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		now += 0.01;
		double sp = srclimit_auth_result(t, key, kl, "u", false, now);
		cr_assert_float_eq(sp, want[i], 1e-9, "failure %zu: %f", i + 1,
				   sp);
	}
	cr_assert_float_eq(srclimit_auth_spacing(t, s, now), 8, 1e-9);
	/* A success neither raises nor clears it. */
	double ok = srclimit_auth_result(t, key, kl, "u", true, now);
	cr_assert_float_eq(ok, 8, 1e-9);
	struct srclimit_stats st;
	srclimit_stats(t, now, &st);
	cr_assert_eq(st.penalised, 1);
	cr_assert_eq(st.events[SRCLIMIT_AUTH_FAILED], 9);
	/* The score is capped (free + steps to MAX + 2 = 8): quiet, it falls
	 * one failure per 8 s, halving the spacing each time below MAX. */
	cr_assert_float_eq(srclimit_auth_spacing(t, s, now + 8 * 1 + 1), 8,
			   1e-9);
	cr_assert_float_eq(srclimit_auth_spacing(t, s, now + 8 * 2 + 1), 4,
			   1e-9);
	cr_assert_float_eq(srclimit_auth_spacing(t, s, now + 8 * 4 + 1), 1,
			   1e-9);
	cr_assert_float_eq(srclimit_auth_spacing(t, s, now + 8 * 5 + 1), 0,
			   1e-9);
	/* Another source is untouched. */
	struct srclimit_src *o = open_ok(t, "198.18.0.3", now);
	cr_assert_float_eq(srclimit_auth_spacing(t, o, now), 0, 1e-9);
	srclimit_free(t);
}

Test(srclimit, penalty_off)
{
	struct cfg_limits l = limits();
	l.penalty_max = 0;
	struct srclimit *t = srclimit_new(&l, 1);
	struct srclimit_src *s = open_ok(t, "198.18.0.2", 1);
	uint8_t key[SRCLIMIT_KEY_LEN];
	size_t kl = srclimit_key(s, key);

	for (int i = 0; i < 50; i++) {
		double sp = srclimit_auth_result(t, key, kl, "u", false, 1);
		cr_assert_float_eq(sp, 0, 0);
	}
	srclimit_free(t);
}

/* A failure reported after the source's last session ended (a client
 * that hung up) still counts; the entry outlives its sessions while the
 * penalty lasts, and is forgotten by the sweep afterwards. */
Test(srclimit, penalty_outlives_sessions_then_swept)
{
	struct cfg_limits l = limits();
	l.penalty_free = 0;
	l.penalty_max = 4;
	struct srclimit *t = srclimit_new(&l, 1);
	struct srclimit_src *s = open_ok(t, "198.18.0.2", 10);
	uint8_t key[SRCLIMIT_KEY_LEN];
	size_t kl = srclimit_key(s, key);
	struct srclimit_stats st;

	srclimit_session_close(t, s, true, 10);
	double sp = srclimit_auth_result(t, key, kl, "u", false, 10);
	cr_assert_float_eq(sp, 1, 1e-9);
	s = open_ok(t, "198.18.0.2", 11);
	cr_assert_float_eq(srclimit_auth_spacing(t, s, 11), 1, 1e-9);
	srclimit_session_close(t, s, true, 11);
	srclimit_sweep(t, 12);
	srclimit_stats(t, 12, &st);
	cr_assert_eq(st.sources, 1);
	srclimit_sweep(t, 30); /* penalty over, summary written */
	srclimit_sweep(t, 31);
	srclimit_stats(t, 31, &st);
	cr_assert_eq(st.sources, 0);
	srclimit_free(t);
}

Test(srclimit, udp_name_bucket)
{
	struct cfg_limits l = limits();
	l.udp_name_rate = 10;
	l.udp_name_burst = 5;
	struct srclimit *t = srclimit_new(&l, 1);
	struct srclimit_src *s = open_ok(t, "198.18.0.2", 1);
	int ok = 0;

	for (int i = 0; i < 100; i++)
		ok += srclimit_udp_name(t, s, 1);
	cr_assert_eq(ok, 5);
	cr_assert(srclimit_udp_name(t, s, 1.1 + 1e-6));
	cr_assert(!srclimit_udp_name(t, s, 1.1 + 1e-6));
	/* 10 s at 10/s: back to the burst, not beyond. */
	ok = 0;
	for (int i = 0; i < 100; i++)
		ok += srclimit_udp_name(t, s, 20);
	cr_assert_eq(ok, 5);
	/* A clock stepping back takes nothing. */
	cr_assert(!srclimit_udp_name(t, s, 10));
	/* The bucket is the source's, whatever the association: the entry
	 * stays while it refills. */
	srclimit_session_close(t, s, true, 20);
	srclimit_sweep(t, 20.05);
	s = open_ok(t, "198.18.0.2", 20.05);
	cr_assert(!srclimit_udp_name(t, s, 20.05));
	struct srclimit_stats st;
	srclimit_stats(t, 21, &st);
	cr_assert_geq(st.events[SRCLIMIT_UDP_NAMES], 97 + 95);
	srclimit_free(t);
}

/* Sources without sessions are bounded: the oldest is forgotten. */
Test(srclimit, idle_entries_bounded)
{
	struct cfg_limits l = limits();
	struct srclimit *t = srclimit_new(&l, 1);
	struct srclimit_stats st;
	uint8_t key[SRCLIMIT_KEY_LEN];

	for (unsigned i = 0; i < SRCLIMIT_IDLE_MAX + 100; i++) {
		char a[64];
		snprintf(a, sizeof(a), "2001:db8:%x:%x::1", i >> 16,
			 i & 0xffff);
		struct srclimit_src *s = open_ok(t, a, 1);
		size_t kl = srclimit_key(s, key);
		srclimit_session_close(t, s, true, 1);
		srclimit_auth_result(t, key, kl, "u", false, 1);
	}
	srclimit_stats(t, 1, &st);
	cr_assert_leq(st.sources, SRCLIMIT_IDLE_MAX);
	cr_assert_geq(st.forgotten, 100);
	srclimit_free(t);
}
