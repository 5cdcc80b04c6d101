/*
 * Unit tests for rtnl/selfaddr's pure part: which route messages of a
 * dump are the gateway's own addresses, and prefix matching.  The
 * messages are built as the kernel sends them (libmnl); no socket.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "selfaddr.h"

static uint8_t buf[8192];

/* An RTM_NEWROUTE: family, dst (NULL: none), plen, table (in rtm_table,
 * and in RTA_TABLE when rta_table is not 0), type. */
static struct nlmsghdr *route(int family, const char *dst, uint8_t plen,
			      uint8_t table, uint32_t rta_table, uint8_t type)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;
	uint8_t a[16];

	nlh->nlmsg_type = RTM_NEWROUTE;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)family;
	rtm->rtm_dst_len = plen;
	rtm->rtm_table = table;
	rtm->rtm_type = type;
	if (rta_table)
		mnl_attr_put_u32(nlh, RTA_TABLE, rta_table);
	if (dst) {
		cr_assert_eq(inet_pton(family, dst, a), 1);
		mnl_attr_put(nlh, RTA_DST, family == AF_INET ? 4 : 16, a);
	}
	return nlh;
}

static struct sockaddr_storage sa(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr))
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, ip,
			   &((struct sockaddr_in6 *)&ss)->sin6_addr))
		ss.ss_family = AF_INET6;
	else
		cr_assert_fail("%s", ip);
	return ss;
}

Test(selfaddr, parse_keeps_the_local_table_only)
{
	struct selfaddr_prefix p;

	cr_assert_eq(selfaddr_parse_route(route(AF_INET, "198.18.0.1", 32,
						RT_TABLE_LOCAL, 0, RTN_LOCAL),
					  &p),
		     1);
	cr_assert_eq(p.family, AF_INET);
	cr_assert_eq(p.plen, 32);
	cr_assert_eq(p.type, RTN_LOCAL);
	cr_assert_eq(p.addr[0], 198);
	cr_assert_eq(p.addr[3], 1);
	cr_assert_eq(selfaddr_parse_route(route(AF_INET, "127.0.0.0", 8,
						RT_TABLE_LOCAL, 0, RTN_LOCAL),
					  &p),
		     1);
	cr_assert_eq(p.plen, 8);
	cr_assert_eq(
		selfaddr_parse_route(route(AF_INET, "198.18.0.255", 32,
					   RT_TABLE_LOCAL, 0, RTN_BROADCAST),
				     &p),
		1);
	cr_assert_eq(selfaddr_parse_route(route(AF_INET6, "2001:db8::", 128,
						RT_TABLE_LOCAL, 0, RTN_ANYCAST),
					  &p),
		     1);
	cr_assert_eq(p.family, AF_INET6);
	/* RTA_TABLE wins over rtm_table (tables above 255). */
	cr_assert_eq(selfaddr_parse_route(route(AF_INET, "198.18.0.1", 32,
						RT_TABLE_COMPAT, RT_TABLE_LOCAL,
						RTN_LOCAL),
					  &p),
		     1);
	cr_assert_eq(
		selfaddr_parse_route(route(AF_INET, "198.18.0.1", 32,
					   RT_TABLE_LOCAL, 1000, RTN_LOCAL),
				     &p),
		0);
	/* Other tables, other types: not ours. */
	cr_assert_eq(selfaddr_parse_route(route(AF_INET, "198.18.0.0", 24,
						RT_TABLE_MAIN, 0, RTN_UNICAST),
					  &p),
		     0);
	cr_assert_eq(
		selfaddr_parse_route(
			route(AF_INET, "0.0.0.0", 0, 100, 0, RTN_LOCAL), &p),
		0); /* a TPROXY table: only for marked packets */
	cr_assert_eq(
		selfaddr_parse_route(route(AF_INET6, "ff00::", 8,
					   RT_TABLE_LOCAL, 0, RTN_MULTICAST),
				     &p),
		0);
	cr_assert_eq(selfaddr_parse_route(route(AF_INET6, "2001:db8::", 64,
						RT_TABLE_LOCAL, 0, RTN_UNICAST),
					  &p),
		     0);
	/* Malformed: prefix longer than the family, address of the wrong
	 * size. */
	cr_assert_eq(selfaddr_parse_route(route(AF_INET, "198.18.0.1", 33,
						RT_TABLE_LOCAL, 0, RTN_LOCAL),
					  &p),
		     -1);
	struct nlmsghdr *nlh =
		route(AF_INET6, NULL, 128, RT_TABLE_LOCAL, 0, RTN_LOCAL);
	uint32_t four = 0;
	mnl_attr_put(nlh, RTA_DST, 4, &four);
	cr_assert_eq(selfaddr_parse_route(nlh, &p), -1);
	/* No RTA_DST: a default route, local everything. */
	cr_assert_eq(selfaddr_parse_route(route(AF_INET, NULL, 0,
						RT_TABLE_LOCAL, 0, RTN_LOCAL),
					  &p),
		     1);
	cr_assert_eq(p.plen, 0);
	/* Not a route. */
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWADDR;
	cr_assert_eq(selfaddr_parse_route(nlh, &p), 0);
}

Test(selfaddr, match_and_sort)
{
	struct selfaddr_prefix p[6];
	size_t n = 0;

	cr_assert_eq(selfaddr_parse_route(route(AF_INET, "198.18.0.1", 32,
						RT_TABLE_LOCAL, 0, RTN_LOCAL),
					  &p[n++]),
		     1);
	cr_assert_eq(selfaddr_parse_route(route(AF_INET, "127.0.0.0", 8,
						RT_TABLE_LOCAL, 0, RTN_LOCAL),
					  &p[n++]),
		     1);
	cr_assert_eq(selfaddr_parse_route(route(AF_INET, "198.18.48.0", 20,
						RT_TABLE_LOCAL, 0, RTN_LOCAL),
					  &p[n++]),
		     1);
	cr_assert_eq(selfaddr_parse_route(route(AF_INET6, "2001:db8::1", 128,
						RT_TABLE_LOCAL, 0, RTN_LOCAL),
					  &p[n++]),
		     1);
	cr_assert_eq(selfaddr_parse_route(route(AF_INET, "198.18.0.1", 32,
						RT_TABLE_LOCAL, 0, RTN_LOCAL),
					  &p[n++]),
		     1); /* the same address on a second interface */
	n = selfaddr_prefix_sort(p, n);
	cr_assert_eq(n, 4);

	static const struct {
		const char *ip;
		bool own;
	} cases[] = {
		{"198.18.0.1", true},	  {"198.18.0.2", false},
		{"127.0.0.1", true},	  {"127.255.0.9", true},
		{"128.0.0.1", false},	  {"198.18.48.0", true},
		{"198.18.63.255", true},  {"198.18.64.0", false},
		{"198.18.47.255", false}, {"2001:db8::1", true},
		{"2001:db8::2", false},	  {"::ffff:198.18.0.1", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage a = sa(cases[i].ip);
		cr_assert_eq(selfaddr_prefix_match(p, n, (struct sockaddr *)&a),
			     cases[i].own, "%s", cases[i].ip);
	}
	struct sockaddr_storage a = sa("198.18.0.1");
	cr_assert(!selfaddr_prefix_match(p, 0, (struct sockaddr *)&a));
}
