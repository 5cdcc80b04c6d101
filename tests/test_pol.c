/*
 * Unit tests for daemon/pol (rules: first match wins, default deny) and
 * daemon/addr CIDR helpers.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "addr.h"
#include "cfg.h"
#include "pol.h"

static struct cfg C;

static void load(const char *text)
{
	char err[256];
	cfg_free(&C);
	cr_assert_eq(cfg_parse_buf(text, strlen(text), "p.conf", &C, err,
				   sizeof(err)),
		     0, "%s", err);
}

static struct pol_decision ask(const char *client, const char *dst,
			       const char *name, uint16_t port, uint8_t cmd,
			       const char *user)
{
	struct sockaddr_storage c, d;
	struct pol_query q = {
		.dst_name = name, .dst_port = port, .cmd = cmd, .user = user};

	cr_assert_eq(addr_parse(client, 1234, &c), 0);
	q.client = (struct sockaddr *)&c;
	if (dst) {
		cr_assert_eq(addr_parse(dst, port, &d), 0);
		q.dst_ip = (struct sockaddr *)&d;
	}
	return pol_check(C.rules, C.nrules, &q);
}

Test(pol, default_deny)
{
	load("");
	struct pol_decision d = ask("198.18.0.2", "198.18.1.2", NULL, 80,
				    POL_CMD_CONNECT, NULL);
	cr_assert(!d.allow);
	cr_assert_eq(d.line, 0);
}

Test(pol, first_match_wins)
{
	load("rule deny to 198.18.1.2 port 81\n"
	     "rule allow from 198.18.0.0/24\n"
	     "rule allow\n");
	cr_assert(
		ask("198.18.0.2", "198.18.1.2", NULL, 80, POL_CMD_CONNECT, NULL)
			.allow);
	struct pol_decision d = ask("198.18.0.2", "198.18.1.2", NULL, 81,
				    POL_CMD_CONNECT, NULL);
	cr_assert(!d.allow);
	cr_assert_eq(d.line, 1);
	cr_assert_eq(
		ask("10.0.0.1", "198.18.1.2", NULL, 81, POL_CMD_CONNECT, NULL)
			.line,
		1);
	cr_assert_eq(
		ask("10.0.0.1", "198.18.1.3", NULL, 81, POL_CMD_CONNECT, NULL)
			.line,
		3);
}

Test(pol, ipv6_cidrs_and_commands)
{
	load("rule allow from 2001:db8::/64 to 2001:db8:1::/48 command "
	     "transparent\n");
	cr_assert(ask("2001:db8::2", "2001:db8:1::2", NULL, 7000,
		      POL_CMD_TRANSPARENT, NULL)
			  .allow);
	cr_assert(!ask("2001:db8::2", "2001:db8:1::2", NULL, 7000,
		       POL_CMD_CONNECT, NULL)
			   .allow);
	cr_assert(!ask("2001:db8:2::2", "2001:db8:1::2", NULL, 7000,
		       POL_CMD_TRANSPARENT, NULL)
			   .allow);
	/* An IPv4 client never matches an IPv6 prefix. */
	cr_assert(!ask("198.18.0.2", "2001:db8:1::2", NULL, 7000,
		       POL_CMD_TRANSPARENT, NULL)
			   .allow);
}

Test(pol, names_and_resolution)
{
	load("rule deny to .blocked.test\n"
	     "rule allow to exact.test\n"
	     "rule allow to 198.18.1.0/24\n");
	/* A name rule matches the requested name, case-insensitively. */
	cr_assert(
		ask("198.18.0.2", NULL, "EXACT.test", 80, POL_CMD_CONNECT, NULL)
			.allow);
	cr_assert(ask("198.18.0.2", NULL, "exact.test.", 80, POL_CMD_CONNECT,
		      NULL)
			  .allow);
	cr_assert(!ask("198.18.0.2", NULL, "a.exact.test", 80, POL_CMD_CONNECT,
		       NULL)
			   .allow);
	cr_assert_eq(ask("198.18.0.2", "198.18.1.9", "x.blocked.test", 80,
			 POL_CMD_CONNECT, NULL)
			     .line,
		     1);
	cr_assert_eq(ask("198.18.0.2", "198.18.1.9", "blocked.test", 80,
			 POL_CMD_CONNECT, NULL)
			     .line,
		     1);
	/* ".blocked.test" does not match "notblocked.test". */
	cr_assert_eq(ask("198.18.0.2", "198.18.1.9", "notblocked.test", 80,
			 POL_CMD_CONNECT, NULL)
			     .line,
		     3);
	/* `to CIDR` matches a name after resolution, not before. */
	cr_assert(!ask("198.18.0.2", NULL, "other.test", 80, POL_CMD_CONNECT,
		       NULL)
			   .allow);
	cr_assert(ask("198.18.0.2", "198.18.1.7", "other.test", 80,
		      POL_CMD_CONNECT, NULL)
			  .allow);
}

Test(pol, users)
{
	load("rule allow user alice\n");
	cr_assert(ask("198.18.0.2", "198.18.1.2", NULL, 1, POL_CMD_CONNECT,
		      "alice")
			  .allow);
	cr_assert(!ask("198.18.0.2", "198.18.1.2", NULL, 1, POL_CMD_CONNECT,
		       "bob")
			   .allow);
	cr_assert(
		!ask("198.18.0.2", "198.18.1.2", NULL, 1, POL_CMD_CONNECT, NULL)
			 .allow);
}

Test(addr, cidr_edges)
{
	struct addr_cidr c;
	struct sockaddr_storage a;

	cr_assert_eq(addr_cidr_parse("198.18.0.0/15", &c), 0);
	addr_parse("198.19.255.255", 0, &a);
	cr_assert(addr_cidr_match(&c, (struct sockaddr *)&a));
	addr_parse("198.20.0.0", 0, &a);
	cr_assert(!addr_cidr_match(&c, (struct sockaddr *)&a));
	cr_assert_eq(addr_cidr_parse("0.0.0.0/0", &c), 0);
	cr_assert(addr_cidr_match(&c, (struct sockaddr *)&a));
	cr_assert_eq(addr_cidr_parse("2001:db8::/32", &c), 0);
	addr_parse("2001:db8:ffff::1", 0, &a);
	cr_assert(addr_cidr_match(&c, (struct sockaddr *)&a));
	cr_assert_eq(addr_cidr_parse("1.2.3.4/", &c), -1);
	cr_assert_eq(addr_cidr_parse("1.2.3.4/x", &c), -1);
	/* IPv4-mapped peers are unmapped before matching. */
	addr_parse("::ffff:198.18.0.2", 5, &a);
	addr_unmap(&a);
	cr_assert_eq(a.ss_family, AF_INET);
	cr_assert_eq(addr_port((struct sockaddr *)&a), 5);
}

Test(addr, unusable_bnd)
{
	struct sockaddr_storage a;
	addr_parse("0.0.0.0", 0, &a);
	cr_assert(addr_is_unusable_bnd((struct sockaddr *)&a));
	addr_parse("::", 0, &a);
	cr_assert(addr_is_unusable_bnd((struct sockaddr *)&a));
	addr_parse("::ffff:1.2.3.4", 0, &a);
	cr_assert(addr_is_unusable_bnd((struct sockaddr *)&a));
	addr_parse("198.18.0.1", 0, &a);
	cr_assert(!addr_is_unusable_bnd((struct sockaddr *)&a));
}

/* The shipped etc/socksgated.conf must not make an open proxy: a public
 * client is denied every command, a private one is allowed. */
Test(pol, shipped_config_is_not_open)
{
	char err[256];
	struct sockaddr_storage c, d;
	static const uint8_t cmds[] = {POL_CMD_CONNECT, POL_CMD_BIND,
				       POL_CMD_UDP, POL_CMD_TRANSPARENT};
	static const char *const publics[] = {"203.0.113.5", "2001:db8::5",
					      "8.8.8.8"};

	cfg_free(&C);
	cr_assert_eq(cfg_load(SG_SOURCE_DIR "/etc/socksgated.conf", &C, err,
			      sizeof(err)),
		     0, "%s", err);
	addr_parse("198.18.1.2", 80, &d);
	for (size_t p = 0; p < 3; p++) {
		addr_parse(publics[p], 1234, &c);
		for (size_t i = 0; i < 4; i++) {
			struct pol_query q = {.client = (struct sockaddr *)&c,
					      .dst_ip = (struct sockaddr *)&d,
					      .dst_port = 80,
					      .cmd = cmds[i]};
			cr_assert(!pol_check(C.rules, C.nrules, &q).allow,
				  "%s allowed", publics[p]);
		}
	}
	for (size_t i = 0; i < C.nlisten; i++) {
		struct addr_cidr lo4, lo6;
		addr_cidr_parse("127.0.0.0/8", &lo4);
		addr_cidr_parse("::1", &lo6);
		cr_assert(
			addr_cidr_match(&lo4,
					(struct sockaddr *)&C.listen[i]) ||
				addr_cidr_match(
					&lo6, (struct sockaddr *)&C.listen[i]),
			"the shipped config listens beyond loopback");
	}
	addr_parse("192.168.1.20", 1234, &c);
	struct pol_query q = {.client = (struct sockaddr *)&c,
			      .dst_ip = (struct sockaddr *)&d,
			      .dst_port = 80,
			      .cmd = POL_CMD_CONNECT};
	cr_assert(pol_check(C.rules, C.nrules, &q).allow);
}

Test(pol, may_allow_for_udp_associations)
{
	struct sockaddr_storage c;
	struct pol_query q = {.cmd = POL_CMD_UDP};

	addr_parse("198.18.0.2", 1, &c);
	q.client = (struct sockaddr *)&c;
	load("rule deny to 198.18.9.0/24\nrule allow from 198.18.0.0/24 to "
	     "198.18.1.0/24 command udp\n");
	cr_assert(pol_may_allow(C.rules, C.nrules, &q));
	load("rule deny from 198.18.0.0/24\nrule allow\n");
	cr_assert(!pol_may_allow(C.rules, C.nrules, &q));
	load("rule allow command connect\n");
	cr_assert(!pol_may_allow(C.rules, C.nrules, &q));
	load("");
	cr_assert(!pol_may_allow(C.rules, C.nrules, &q));
}
