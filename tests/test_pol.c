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

/* A fixed table standing in for rtnl/selfaddr. */
static bool fake_self(const void *ctx, const struct sockaddr *sa)
{
	const char *const *p = ctx;

	for (; *p; p++) {
		struct addr_cidr c;
		cr_assert_eq(addr_cidr_parse(*p, &c), 0);
		if (addr_cidr_match(&c, sa))
			return true;
	}
	return false;
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
	/* ...but never to the router itself, in any form, by any command. */
	static const char *const own[] = {"192.168.1.1", "fd00::1", NULL};
	static const struct pol_self self = {fake_self, own};
	static const char *const gw[] = {"127.0.0.1",
					 "::ffff:127.0.0.1",
					 "::1",
					 "0.0.0.0",
					 "::",
					 "0.1.2.3",
					 "::127.0.0.1",
					 "192.168.1.1",
					 "::ffff:192.168.1.1",
					 "fd00::1",
					 "64:ff9b::7f00:1",
					 "2002:c0a8:101::1",
					 "64:ff9b::192.168.1.1",
					 "224.0.0.251",
					 "fe80::1"};
	q.self = &self;
	for (size_t k = 0; k < 4; k++) {
		q.cmd = cmds[k];
		for (size_t i = 0; i < sizeof(gw) / sizeof(gw[0]); i++) {
			addr_parse(gw[i], 80, &d);
			cr_assert(!pol_check(C.rules, C.nrules, &q).allow,
				  "%s allowed", gw[i]);
		}
	}
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

/*
 * Destination forms (docs/security.md, "Destination forms"): every form
 * a client may write, literally or as what a name resolved to, is judged
 * as what the kernel will reach.  The rules are the sample's shape:
 * loopback and one network denied, then the LAN allowed; optionally
 * `deny to self` first.  Each row is checked for every command.
 */
#define SELF_RULES                                                             \
	"rule deny to 127.0.0.0/8\n"                                           \
	"rule deny to ::1\n"                                                   \
	"rule deny to 198.18.2.0/24\n"                                         \
	"rule allow from 198.18.0.0/24\n"                                      \
	"rule allow from 2001:db8::/64\n"

enum want { ALLOW, DENY, REFUSE };

struct form_case {
	const char *dst;
	enum want want;
	int line;	    /* DENY: the deciding rule */
	enum addr_dst form; /* REFUSE: why */
	bool embedded;	    /* DENY: for the IPv4 address it carries */
};

static const struct form_case forms[] = {
	/* ordinary addresses */
	{"198.18.1.2", ALLOW, 0, 0, false},
	{"2001:db8:1::2", ALLOW, 0, 0, false},
	/* "this host": unspecified and all of 0.0.0.0/8 */
	{"0.0.0.0", REFUSE, 0, ADDR_DST_THIS_HOST, false},
	{"0.1.2.3", REFUSE, 0, ADDR_DST_THIS_HOST, false},
	{"0.255.255.255", REFUSE, 0, ADDR_DST_THIS_HOST, false},
	{"::", REFUSE, 0, ADDR_DST_THIS_HOST, false},
	{"::ffff:0.0.0.0", REFUSE, 0, ADDR_DST_THIS_HOST, false},
	{"::ffff:0.1.2.3", REFUSE, 0, ADDR_DST_THIS_HOST, false},
	/* IPv4-compatible (::/96 but :: and ::1) */
	{"::127.0.0.1", REFUSE, 0, ADDR_DST_V4COMPAT, false},
	{"::198.18.1.2", REFUSE, 0, ADDR_DST_V4COMPAT, false},
	{"::2", REFUSE, 0, ADDR_DST_V4COMPAT, false},
	/* loopback, plain and IPv4-mapped: the rules */
	{"127.0.0.1", DENY, 1, 0, false},
	{"127.255.255.254", DENY, 1, 0, false},
	{"::ffff:127.0.0.1", DENY, 1, 0, false},
	{"::ffff:127.1.2.3", DENY, 1, 0, false},
	{"::ffff:7f00:1", DENY, 1, 0, false},
	{"::1", DENY, 2, 0, false},
	/* a denied network, plain and IPv4-mapped */
	{"198.18.2.5", DENY, 3, 0, false},
	{"::ffff:198.18.2.5", DENY, 3, 0, false},
	{"::ffff:198.18.1.2", ALLOW, 0, 0, false},
	/* NAT64 well-known prefix: the IPv4 address must pass too */
	{"64:ff9b::198.18.2.5", DENY, 3, 0, true},
	{"64:ff9b::127.0.0.1", DENY, 1, 0, true},
	{"64:ff9b::198.18.1.2", ALLOW, 0, 0, false},
	{"64:ff9b::0.0.0.0", REFUSE, 0, ADDR_DST_THIS_HOST, false},
	{"64:ff9b::224.0.0.1", REFUSE, 0, ADDR_DST_MULTICAST, false},
	/* NAT64 local-use prefix: embedding unknown, as written */
	{"64:ff9b:1::c612:205", ALLOW, 0, 0, false},
	/* 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD */
	{"2002:c612:205::1", DENY, 3, 0, true},
	{"2002:7f00:1::1", DENY, 1, 0, true},
	{"2002:c612:102::1", ALLOW, 0, 0, false},
	{"2002::1", REFUSE, 0, ADDR_DST_THIS_HOST, false},
	/* Teredo: the client's address, bits inverted, in the last 32 */
	{"2001:0:4136:e378:8000:63bf:39ed:fdfa", DENY, 3, 0, true},
	{"2001:0:4136:e378:8000:63bf:80ff:fffe", DENY, 1, 0, true},
	{"2001:0:4136:e378:8000:63bf:39ed:fefd", ALLOW, 0, 0, false},
	/* multicast and broadcast */
	{"224.0.0.1", REFUSE, 0, ADDR_DST_MULTICAST, false},
	{"239.255.255.250", REFUSE, 0, ADDR_DST_MULTICAST, false},
	{"::ffff:224.0.0.251", REFUSE, 0, ADDR_DST_MULTICAST, false},
	{"ff02::1", REFUSE, 0, ADDR_DST_MULTICAST, false},
	{"ff05::1:3", REFUSE, 0, ADDR_DST_MULTICAST, false},
	{"ff0e::1", REFUSE, 0, ADDR_DST_MULTICAST, false},
	{"255.255.255.255", REFUSE, 0, ADDR_DST_BROADCAST, false},
	{"::ffff:255.255.255.255", REFUSE, 0, ADDR_DST_BROADCAST, false},
	/* link-local: no zone on the wire */
	{"fe80::1", REFUSE, 0, ADDR_DST_LINK_LOCAL, false},
	{"febf:ffff::1", REFUSE, 0, ADDR_DST_LINK_LOCAL, false},
	/* as written: ordinary addresses to the kernel, the rules decide */
	{"fec0::1", ALLOW, 0, 0, false},
	{"169.254.169.254", ALLOW, 0, 0, false},
	{"240.0.0.1", ALLOW, 0, 0, false},
	{"100::1", ALLOW, 0, 0, false},
	{"fc00::1", ALLOW, 0, 0, false},
	{"::ffff:0:198.18.2.5", ALLOW, 0, 0, false},	     /* SIIT */
	{"2001:db8:1::5efe:198.18.2.5", ALLOW, 0, 0, false}, /* ISATAP */
	{"192.88.99.1", ALLOW, 0, 0, false},
};

/* lines: also check the deciding rule (the rule set is SELF_RULES). */
static void check_forms(const struct pol_self *self, bool lines)
{
	static const uint8_t cmds[] = {POL_CMD_CONNECT, POL_CMD_BIND,
				       POL_CMD_UDP, POL_CMD_TRANSPARENT};

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		const struct form_case *f = &forms[i];
		for (size_t k = 0; k < sizeof(cmds); k++) {
			struct sockaddr_storage c, d;
			const char *client = strchr(f->dst, ':') ? "2001:db8::2"
								 : "198.18.0.2";
			struct pol_query q = {
				.dst_port = 7000, .cmd = cmds[k], .self = self};
			cr_assert_eq(addr_parse(client, 1, &c), 0);
			cr_assert_eq(addr_parse(f->dst, 7000, &d), 0, "%s",
				     f->dst);
			q.client = (struct sockaddr *)&c;
			q.dst_ip = (struct sockaddr *)&d;
			struct pol_decision r =
				pol_check(C.rules, C.nrules, &q);
			cr_assert_eq(r.allow, f->want == ALLOW, "%s cmd %u",
				     f->dst, cmds[k]);
			cr_assert_eq(r.form,
				     f->want == REFUSE ? f->form : ADDR_DST_OK,
				     "%s: form %s", f->dst,
				     addr_dst_str(r.form));
			if (f->want == DENY && lines) {
				cr_assert_eq(r.line, f->line, "%s: line %d",
					     f->dst, r.line);
				cr_assert_eq(r.embedded, f->embedded, "%s",
					     f->dst);
			}
			if (f->want == REFUSE)
				cr_assert_eq(r.line, 0);
			/* The same through a name: rules see the address. */
			q.dst_name = "forms.test";
			cr_assert_eq(pol_check(C.rules, C.nrules, &q).allow,
				     f->want == ALLOW, "%s as a name", f->dst);
		}
	}
}

Test(pol_forms, every_form_every_command)
{
	load(SELF_RULES);
	check_forms(NULL, true);
	/* With `deny to self` first and a table holding none of them, the
	 * same forms get the same answers (loopback from line 1 now). */
	static const char *const none[] = {NULL};
	static const struct pol_self empty = {fake_self, none};
	load("rule deny to self\n" SELF_RULES);
	check_forms(&empty, false);
}

/* A form is refused even by an allow-everything rule set, and a name rule
 * cannot allow it either. */
Test(pol_forms, refused_whatever_the_rules)
{
	static const char *const refused[] = {
		"0.0.0.0",     "::",	      "0.9.9.9",  "::ffff:0.0.0.0",
		"::127.0.0.1", "224.0.0.251", "ff02::fb", "255.255.255.255",
		"fe80::1"};

	load("rule allow to forms.test\nrule allow\n");
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		struct pol_decision d =
			ask("198.18.0.2", refused[i], "forms.test", 80,
			    POL_CMD_UDP, NULL);
		cr_assert(!d.allow, "%s", refused[i]);
		cr_assert_neq(d.form, ADDR_DST_OK, "%s", refused[i]);
	}
	/* Without an address (a name rule before resolution) nothing is
	 * normalised: the name decides. */
	cr_assert(
		ask("198.18.0.2", NULL, "forms.test", 80, POL_CMD_CONNECT, NULL)
			.allow);
}

Test(pol_forms, to_self)
{
	static const char *const own[] = {"198.18.0.1",
					  "198.18.1.1",
					  "198.18.0.255",
					  "2001:db8::1",
					  "2001:db8:1::1",
					  "2001:db8::", /* anycast */
					  "198.18.50.0/24" /* AnyIP */,
					  NULL};
	static const struct pol_self self = {fake_self, own};
	static const struct {
		const char *dst;
		bool self;
	} cases[] = {
		{"198.18.0.1", true},
		{"::ffff:198.18.0.1", true},
		{"198.18.1.1", true},
		{"198.18.0.255", true},
		{"198.18.50.7", true},
		{"2001:db8::1", true},
		{"2001:db8::", true},
		{"64:ff9b::198.18.0.1", true}, /* NAT64 of our address */
		{"2002:c612:101::1", true},    /* 6to4 of 198.18.1.1 */
		{"127.0.0.1", true}, /* loopback, whatever the table */
		{"127.3.2.1", true},
		{"::ffff:127.0.0.1", true},
		{"::1", true},
		{"198.18.1.2", false},
		{"2001:db8:1::2", false},
		{"198.18.0.2", false},
	};

	/* `to self` first: the sample's shape. */
	load("rule deny to self\n" SELF_RULES);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage c, d;
		struct pol_query q = {.dst_port = 22, .cmd = POL_CMD_CONNECT};
		addr_parse(strchr(cases[i].dst, ':') ? "2001:db8::2"
						     : "198.18.0.2",
			   1, &c);
		cr_assert_eq(addr_parse(cases[i].dst, 22, &d), 0);
		q.client = (struct sockaddr *)&c;
		q.dst_ip = (struct sockaddr *)&d;
		q.self = &self;
		struct pol_decision r = pol_check(C.rules, C.nrules, &q);
		cr_assert_eq(!r.allow, cases[i].self, "%s", cases[i].dst);
		if (cases[i].self)
			cr_assert_eq(r.line, 1, "%s: line %d", cases[i].dst,
				     r.line);
		/* Without the table only loopback is ours. */
		q.self = NULL;
		r = pol_check(C.rules, C.nrules, &q);
		if (strcmp(cases[i].dst, "127.0.0.1") == 0 ||
		    strcmp(cases[i].dst, "::1") == 0)
			cr_assert_eq(r.line, 1, "%s", cases[i].dst);
		else if (strcmp(cases[i].dst, "198.18.0.1") == 0)
			cr_assert(r.allow);
	}
	struct pol_decision r =
		ask("198.18.0.2", "198.18.2.5", NULL, 1, POL_CMD_UDP, NULL);
	cr_assert_eq(r.line, 4);
	/* `to self` never matches before resolution. */
	struct pol_query q = {.dst_name = "x.test", .cmd = POL_CMD_CONNECT};
	struct sockaddr_storage c;
	addr_parse("198.18.0.2", 1, &c);
	q.client = (struct sockaddr *)&c;
	q.self = &self;
	cr_assert_eq(pol_check(C.rules, C.nrules, &q).line, 5);
	/* A UDP association may still be allowed: `to self` is narrow. */
	q.cmd = POL_CMD_UDP;
	cr_assert(pol_may_allow(C.rules, C.nrules, &q));
}

Test(pol_forms, to_self_parses)
{
	load("rule deny to self port 22 command connect\nrule allow to "
	     "self.\n");
	cr_assert_eq(C.rules[0].to_kind, POL_TO_SELF);
	cr_assert_eq(C.rules[1].to_kind, POL_TO_NAME);
}
