/*
 * Unit tests for daemon/addr: address literals sent as names (what
 * addr_literal_parse takes for an address, refuses, or leaves to the
 * resolver) and their rewriting into wire addresses.  The CIDR helpers are
 * tested with the rules in test_pol.c.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <string.h>

#include "addr.h"

static enum addr_literal lit(const char *name, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	enum addr_literal k = addr_literal_parse(name, &ss);

	if (k == ADDR_LITERAL_ADDR) {
		cr_assert(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
		cr_assert_eq(addr_port((struct sockaddr *)&ss), 0);
		addr_ip_str((struct sockaddr *)&ss, out, cap);
	}
	return k;
}

Test(addr_literal, addresses)
{
	static const struct {
		const char *name, *want;
	} cases[] = {
		{"198.18.1.2", "198.18.1.2"},
		{"0.0.0.0", "0.0.0.0"},
		{"255.255.255.255", "255.255.255.255"},
		{"2001:db8::5", "2001:db8::5"},
		{"[2001:db8::5]", "2001:db8::5"},
		{"2001:DB8:0:0:0:0:0:5", "2001:db8::5"},
		{"::", "::"},
		{"[::1]", "::1"},
		/* Kept as written: the session treats it as the same ATYP
		 * X'04' literal would be treated. */
		{"::ffff:198.18.1.2", "::ffff:198.18.1.2"},
	};
	char out[ADDR_STRLEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(lit(cases[i].name, out, sizeof(out)),
			     ADDR_LITERAL_ADDR, "%s", cases[i].name);
		cr_assert_str_eq(out, cases[i].want, "%s", cases[i].name);
	}
}

Test(addr_literal, address_shaped_but_refused)
{
	static const char *const bad[] = {
		/* inet_aton forms: octal, short, integer, five parts */
		"198.18.1",
		"010.0.0.1",
		"198.18.01.2",
		"3221225985",
		"1.2.3.4.5",
		"256.1.1.1",
		"1.2.3.4.",
		".",
		"1..2.3",
		/* IPv6 with zone ids, brackets around the wrong things */
		"fe80::1%eth0",
		"[fe80::1%eth0]",
		"[198.18.1.2]",
		"[]",
		"[",
		"[2001:db8::5",
		"2001:db8::5]",
		"[[2001:db8::5]]",
		/* colons: not an IPv6 address, and not a host name */
		"host:80",
		"2001:db8:::5",
		"1:2:3:4:5:6:7:8:9",
		":",
		"[2001:0db8:0000:0000:0000:0000:0000:0005:0000]",
		"2001:db8::5 ",
	};
	char out[ADDR_STRLEN];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(lit(bad[i], out, sizeof(out)), ADDR_LITERAL_BAD,
			     "'%s'", bad[i]);
}

Test(addr_literal, names_left_to_the_resolver)
{
	static const char *const names[] = {
		"target.test",		 "localhost",
		"1.2.3.4.example",	 "0x7f.0.0.1",
		"198.18.1.2x",		 "a",
		"xn--bcher-kva.example", "1e100.net",
		"198.18.1.2 ",
	};
	char out[ADDR_STRLEN];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		cr_assert_eq(lit(names[i], out, sizeof(out)), ADDR_LITERAL_NONE,
			     "'%s'", names[i]);
	/* ss may be NULL; a long name is not copied anywhere. */
	char longname[256];
	memset(longname, '7', sizeof(longname) - 1);
	longname[255] = '\0';
	cr_assert_eq(addr_literal_parse(longname, NULL), ADDR_LITERAL_BAD);
	longname[0] = ':';
	cr_assert_eq(addr_literal_parse(longname, NULL), ADDR_LITERAL_BAD);
	longname[0] = '[';
	longname[254] = ']';
	cr_assert_eq(addr_literal_parse(longname, NULL), ADDR_LITERAL_BAD);
}

static void dom(struct s5_addr *a, const char *name, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->atyp = S5_ATYP_DOMAIN;
	a->u.dom.len = (uint8_t)strlen(name);
	memcpy(a->u.dom.name, name, strlen(name) + 1);
	a->port = port;
}

Test(addr_literal, wire_address_rewritten_in_place)
{
	struct s5_addr a;
	uint8_t v6[16];

	dom(&a, "198.18.1.2", 7000);
	cr_assert_eq(addr_s5_literal(&a), ADDR_LITERAL_ADDR);
	cr_assert_eq(a.atyp, S5_ATYP_IPV4);
	cr_assert_eq(memcmp(a.u.v4, "\xc6\x12\x01\x02", 4), 0);
	cr_assert_eq(a.port, 7000);

	dom(&a, "[2001:db8:1::2]", 443);
	cr_assert_eq(addr_s5_literal(&a), ADDR_LITERAL_ADDR);
	cr_assert_eq(a.atyp, S5_ATYP_IPV6);
	inet_pton(AF_INET6, "2001:db8:1::2", v6);
	cr_assert_eq(memcmp(a.u.v6, v6, 16), 0);
	cr_assert_eq(a.port, 443);

	/* Refused and ordinary names stay names, untouched. */
	dom(&a, "fe80::1%eth0", 1);
	cr_assert_eq(addr_s5_literal(&a), ADDR_LITERAL_BAD);
	cr_assert_eq(a.atyp, S5_ATYP_DOMAIN);
	cr_assert_str_eq(a.u.dom.name, "fe80::1%eth0");
	dom(&a, "target.test", 2);
	cr_assert_eq(addr_s5_literal(&a), ADDR_LITERAL_NONE);
	cr_assert_str_eq(a.u.dom.name, "target.test");
	cr_assert_eq(a.port, 2);

	/* A literal stays what it is. */
	a.atyp = S5_ATYP_IPV4;
	memcpy(a.u.v4, "\x01\x02\x03\x04", 4);
	cr_assert_eq(addr_s5_literal(&a), ADDR_LITERAL_NONE);
	cr_assert_eq(memcmp(a.u.v4, "\x01\x02\x03\x04", 4), 0);
}
