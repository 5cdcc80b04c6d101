/*
 * Unit tests for daemon/sess_check: the TRANSPARENT decision, without
 * sockets.  Each refusal gets the reply code docs/transparent.md names.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "addr.h"
#include "cfg.h"
#include "s5_proto.h"
#include "sess_check.h"

static struct cfg C;
static struct sockaddr_storage peer, local, src, dst;

static void setup_cfg(const char *text)
{
	char err[256];
	cfg_free(&C);
	cr_assert_eq(cfg_parse_buf(text, strlen(text), "c.conf", &C, err,
				   sizeof(err)),
		     0, "%s", err);
}

static uint8_t check(const char *p, const char *l, const char *s,
		     uint16_t sport, const char *d, uint16_t dport,
		     uint8_t ptcl, struct tp_check_out *out)
{
	addr_parse(p, 5555, &peer);
	addr_parse(l, 1080, &local);
	addr_parse(s, sport, &src);
	addr_parse(d, dport, &dst);
	struct tp_check_in in = {.cfg = &C,
				 .peer = (struct sockaddr *)&peer,
				 .local = (struct sockaddr *)&local,
				 .ptcl = ptcl,
				 .src = (struct sockaddr *)&src,
				 .dst = (struct sockaddr *)&dst};
	return sess_check_transparent(&in, out);
}

Test(sess_check, accepts_and_picks_bnd)
{
	struct tp_check_out o;
	char ip[64];

	setup_cfg("rule allow command transparent\n");
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.2", 4000,
			   "198.18.1.2", 7000, 6, &o),
		     S5_REP_SUCCEEDED, "%s", o.why);
	/* No relay-address: the local address of N1. */
	cr_assert_str_eq(addr_ip_str((struct sockaddr *)&o.bnd, ip, sizeof(ip)),
			 "198.18.0.1");
	setup_cfg("rule allow\nrelay-address 198.18.0.77\n");
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.2", 4000,
			   "198.18.1.2", 7000, 17, &o),
		     S5_REP_SUCCEEDED);
	cr_assert_str_eq(addr_ip_str((struct sockaddr *)&o.bnd, ip, sizeof(ip)),
			 "198.18.0.77");
}

Test(sess_check, reply_codes)
{
	struct tp_check_out o;

	setup_cfg("rule allow to 198.18.1.0/24\nrule allow to "
		  "2001:db8:1::/48\n");
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.2", 4000,
			   "198.18.1.2", 7000, 1, &o),
		     S5_REP_PTCL_UNSUPPORTED);
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.2", 4000,
			   "198.18.1.2", 7000, 132, &o),
		     S5_REP_PTCL_UNSUPPORTED); /* not enabled by default */
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.2", 4000,
			   "2001:db8:1::2", 7000, 6, &o),
		     S5_REP_ATYP_UNSUPPORTED);
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.9", 4000,
			   "198.18.1.2", 7000, 6, &o),
		     S5_REP_NOT_ALLOWED); /* spoofed S.ADDR */
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.2", 0,
			   "198.18.1.2", 7000, 6, &o),
		     S5_REP_NOT_ALLOWED); /* S.PORT 0 */
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.2", 4000,
			   "198.18.2.2", 7000, 6, &o),
		     S5_REP_NOT_ALLOWED); /* denied destination */
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.2", 4000,
			   "0.0.0.0", 7000, 6, &o),
		     S5_REP_HOST_UNREACH);
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.2", 4000,
			   "224.0.0.1", 7000, 6, &o),
		     S5_REP_HOST_UNREACH);
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.2", 4000,
			   "198.18.1.2", 0, 6, &o),
		     S5_REP_HOST_UNREACH);
	/* IPv6 source over an IPv4 N1 without relay-address for IPv6. */
	setup_cfg("rule allow\ntransparent-source any\n");
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "2001:db8::2", 4000,
			   "2001:db8:1::2", 7000, 6, &o),
		     S5_REP_ATYP_UNSUPPORTED);
	/* transparent-source any lets another source through. */
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.9", 4000,
			   "198.18.1.2", 7000, 6, &o),
		     S5_REP_SUCCEEDED);
}

Test(sess_check, ptcl_checked_first)
{
	struct tp_check_out o;

	/* Several faults: the PTCL answer wins (documented order). */
	setup_cfg("");
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.9", 0,
			   "2001:db8:1::2", 7000, 47, &o),
		     S5_REP_PTCL_UNSUPPORTED);
}

Test(sess_check, unrelayable_ptcl_gets_x09)
{
	struct tp_check_out o;
	struct tp_check_in in = {.cfg = &C,
				 .peer = (struct sockaddr *)&peer,
				 .local = (struct sockaddr *)&local,
				 .ptcl = 33,
				 .src = (struct sockaddr *)&src,
				 .dst = (struct sockaddr *)&dst,
				 .ptcl_unsupported = "no DCCP conntrack"};

	/* Enabled, allowed, well-formed: only the kernel's answer refuses. */
	setup_cfg("rule allow\ntransparent-protocols tcp dccp\n");
	addr_parse("198.18.0.2", 5555, &peer);
	addr_parse("198.18.0.1", 1080, &local);
	addr_parse("198.18.0.2", 4000, &src);
	addr_parse("198.18.1.2", 7000, &dst);
	cr_assert_eq(sess_check_transparent(&in, &o), S5_REP_PTCL_UNSUPPORTED);
	cr_assert_str_eq(o.why, "no DCCP conntrack");
	in.ptcl_unsupported = NULL;
	cr_assert_eq(sess_check_transparent(&in, &o), S5_REP_SUCCEEDED);
}

static bool own_198_18_1_1(const void *ctx, const struct sockaddr *sa)
{
	struct addr_cidr c;

	(void)ctx;
	addr_cidr_parse("198.18.1.1", &c);
	return addr_cidr_match(&c, sa);
}

/* Destination forms (docs/security.md): refused with X'02' and the form
 * as the reason, checked after the older X'04' checks. */
Test(sess_check, destination_forms)
{
	static const struct pol_self self = {own_198_18_1_1, NULL};
	struct tp_check_out o;
	struct tp_check_in in = {.cfg = &C,
				 .peer = (struct sockaddr *)&peer,
				 .local = (struct sockaddr *)&local,
				 .ptcl = 17,
				 .src = (struct sockaddr *)&src,
				 .dst = (struct sockaddr *)&dst};

	setup_cfg(
		"rule deny to 198.18.2.0/24\nrule deny to self\nrule allow\n");
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.2", 4000,
			   "0.1.2.3", 7000, 17, &o),
		     S5_REP_NOT_ALLOWED);
	cr_assert_str_eq(o.why, "unspecified address (this host)");
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.2", 4000,
			   "255.255.255.255", 7000, 17, &o),
		     S5_REP_HOST_UNREACH); /* as before: unusable */
	cr_assert_eq(check("2001:db8::2", "2001:db8::1", "2001:db8::2", 4000,
			   "::127.0.0.1", 7000, 17, &o),
		     S5_REP_NOT_ALLOWED);
	cr_assert_str_eq(o.why, "IPv4-compatible IPv6 address");
	cr_assert_eq(check("2001:db8::2", "2001:db8::1", "2001:db8::2", 4000,
			   "fe80::1", 7000, 17, &o),
		     S5_REP_NOT_ALLOWED);
	cr_assert_eq(check("2001:db8::2", "2001:db8::1", "2001:db8::2", 4000,
			   "64:ff9b::198.18.2.2", 7000, 17, &o),
		     S5_REP_NOT_ALLOWED);
	cr_assert_str_eq(o.why,
			 "denied by rule (the IPv4 address DST.ADDR carries)");
	cr_assert_eq(o.rule_line, 1);
	cr_assert_eq(check("2001:db8::2", "2001:db8::1", "2001:db8::2", 4000,
			   "64:ff9b::198.18.1.2", 7000, 17, &o),
		     S5_REP_SUCCEEDED);
	/* `to self`: the loopback always, the table when given. */
	cr_assert_eq(check("198.18.0.2", "198.18.0.1", "198.18.0.2", 4000,
			   "127.0.0.1", 7000, 17, &o),
		     S5_REP_NOT_ALLOWED);
	cr_assert_eq(o.rule_line, 2);
	addr_parse("198.18.1.1", 7000, &dst);
	cr_assert_eq(sess_check_transparent(&in, &o), S5_REP_SUCCEEDED);
	in.self = &self;
	cr_assert_eq(sess_check_transparent(&in, &o), S5_REP_NOT_ALLOWED);
	cr_assert_eq(o.rule_line, 2);
}
