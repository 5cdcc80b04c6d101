/*
 * Unit tests for conntrack/ct_flow: conversion of conntrack entries to
 * struct ct_flow, and the "target closed" decision, without a kernel
 * (entries are built in memory with libnetfilter_conntrack).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

#include <endian.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>

#include "ct.h"

#define FLAG_CLOSE_INIT 0x04 /* IP_CT_TCP_FLAG_CLOSE_INIT */

static struct nf_conntrack *entry4(uint8_t proto)
{
	struct nf_conntrack *c = nfct_new();
	struct in_addr a;

	nfct_set_attr_u8(c, ATTR_ORIG_L3PROTO, AF_INET);
	inet_pton(AF_INET, "198.18.0.2", &a);
	nfct_set_attr_u32(c, ATTR_ORIG_IPV4_SRC, a.s_addr);
	inet_pton(AF_INET, "198.18.0.1", &a);
	nfct_set_attr_u32(c, ATTR_ORIG_IPV4_DST, a.s_addr);
	nfct_set_attr_u8(c, ATTR_ORIG_L4PROTO, proto);
	nfct_set_attr_u16(c, ATTR_ORIG_PORT_SRC, htons(40000));
	nfct_set_attr_u16(c, ATTR_ORIG_PORT_DST, htons(20000));
	nfct_set_attr_u8(c, ATTR_REPL_L3PROTO, AF_INET);
	inet_pton(AF_INET, "198.18.1.2", &a);
	nfct_set_attr_u32(c, ATTR_REPL_IPV4_SRC, a.s_addr);
	inet_pton(AF_INET, "198.18.1.1", &a);
	nfct_set_attr_u32(c, ATTR_REPL_IPV4_DST, a.s_addr);
	nfct_set_attr_u8(c, ATTR_REPL_L4PROTO, proto);
	nfct_set_attr_u16(c, ATTR_REPL_PORT_SRC, htons(7000));
	nfct_set_attr_u16(c, ATTR_REPL_PORT_DST, htons(40000));
	nfct_set_attr_u32(c, ATTR_MARK, 0x5a000007);
	return c;
}

Test(ct_flow, converts_tuples_mark_and_counters)
{
	struct nf_conntrack *c = entry4(IPPROTO_UDP);
	struct ct_flow f;
	uint8_t want_src[4] = {198, 18, 0, 2},
		want_reply_src[4] = {198, 18, 1, 2};

	/* libnetfilter_conntrack has no setter for counters: add them to a
	 * netlink message as the kernel sends them, and parse it back. */
	char buf[4096];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *g;
	struct nlattr *nest;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = AF_INET;
	cr_assert_eq(nfct_nlmsg_build(nlh, c), 0);
	nest = mnl_attr_nest_start(nlh, CTA_COUNTERS_ORIG);
	mnl_attr_put_u64(nlh, CTA_COUNTERS_PACKETS, htobe64(3));
	mnl_attr_put_u64(nlh, CTA_COUNTERS_BYTES, htobe64(300));
	mnl_attr_nest_end(nlh, nest);
	nest = mnl_attr_nest_start(nlh, CTA_COUNTERS_REPLY);
	mnl_attr_put_u64(nlh, CTA_COUNTERS_PACKETS, htobe64(2));
	mnl_attr_put_u64(nlh, CTA_COUNTERS_BYTES, htobe64(200));
	mnl_attr_nest_end(nlh, nest);
	nfct_destroy(c);
	c = nfct_new();
	cr_assert_eq(nfct_nlmsg_parse(nlh, c), 0);
	cr_assert_eq(ct_flow_from_entry(c, CT_EV_DESTROY, &f), 0);
	cr_assert_eq(f.type, CT_EV_DESTROY);
	cr_assert_eq(f.orig.family, AF_INET);
	cr_assert_eq(f.orig.proto, IPPROTO_UDP);
	cr_assert_arr_eq(f.orig.src, want_src, 4);
	cr_assert_eq(f.orig.sport, 40000);
	cr_assert_eq(f.orig.dport, 20000);
	cr_assert_arr_eq(f.reply.src, want_reply_src, 4);
	cr_assert_eq(f.reply.sport, 7000);
	cr_assert_eq(f.mark, 0x5a000007);
	cr_assert(f.has_counters);
	cr_assert_eq(f.packets_orig, 3);
	cr_assert_eq(f.bytes_reply, 200);
	cr_assert_eq(f.tcp_state, 0);
	cr_assert(!ct_flow_target_closed(&f)); /* not TCP */
	nfct_destroy(c);
}

Test(ct_flow, without_accounting)
{
	struct nf_conntrack *c = entry4(IPPROTO_TCP);
	struct ct_flow f;

	cr_assert_eq(ct_flow_from_entry(c, CT_EV_NEW, &f), 0);
	cr_assert(!f.has_counters);
	nfct_destroy(c);
}

Test(ct_flow, ipv6)
{
	struct nf_conntrack *c = nfct_new();
	struct in6_addr a;
	struct ct_flow f;

	nfct_set_attr_u8(c, ATTR_ORIG_L3PROTO, AF_INET6);
	inet_pton(AF_INET6, "2001:db8::2", &a);
	nfct_set_attr(c, ATTR_ORIG_IPV6_SRC, &a);
	inet_pton(AF_INET6, "2001:db8::1", &a);
	nfct_set_attr(c, ATTR_ORIG_IPV6_DST, &a);
	nfct_set_attr_u8(c, ATTR_ORIG_L4PROTO, IPPROTO_TCP);
	nfct_set_attr_u16(c, ATTR_ORIG_PORT_SRC, htons(1));
	nfct_set_attr_u16(c, ATTR_ORIG_PORT_DST, htons(2));
	cr_assert_eq(ct_flow_from_entry(c, CT_EV_UPDATE, &f), 0);
	cr_assert_eq(f.orig.family, AF_INET6);
	cr_assert_eq(f.orig.src[15], 2);
	cr_assert_eq(f.orig.dst[15], 1);
	nfct_destroy(c);
}

static bool closed(uint8_t state, uint8_t flags_orig, uint8_t flags_reply)
{
	struct nf_conntrack *c = entry4(IPPROTO_TCP);
	struct ct_flow f;
	bool r;

	nfct_set_attr_u8(c, ATTR_TCP_STATE, state);
	nfct_set_attr_u8(c, ATTR_TCP_FLAGS_ORIG, flags_orig);
	nfct_set_attr_u8(c, ATTR_TCP_FLAGS_REPL, flags_reply);
	cr_assert_eq(ct_flow_from_entry(c, CT_EV_UPDATE, &f), 0);
	r = ct_flow_target_closed(&f);
	nfct_destroy(c);
	return r;
}

Test(ct_flow, target_closed_decision)
{
	/* Open flows. */
	cr_assert(!closed(TCP_CONNTRACK_SYN_SENT, 0, 0));
	cr_assert(!closed(TCP_CONNTRACK_ESTABLISHED, 0, 0));
	/* The client half-closed: the target may still send. */
	cr_assert(!closed(TCP_CONNTRACK_FIN_WAIT, FLAG_CLOSE_INIT, 0));
	cr_assert(!closed(TCP_CONNTRACK_CLOSE_WAIT, FLAG_CLOSE_INIT, 0));
	/* The target closed first. */
	cr_assert(closed(TCP_CONNTRACK_FIN_WAIT, 0, FLAG_CLOSE_INIT));
	cr_assert(closed(TCP_CONNTRACK_CLOSE_WAIT, 0, FLAG_CLOSE_INIT));
	/* Both sent FIN (the target answered the client's). */
	cr_assert(closed(TCP_CONNTRACK_LAST_ACK, FLAG_CLOSE_INIT, 0));
	cr_assert(closed(TCP_CONNTRACK_TIME_WAIT, FLAG_CLOSE_INIT, 0));
	/* Reset. */
	cr_assert(closed(TCP_CONNTRACK_CLOSE, 0, 0));
}

Test(ct_flow, verdicts_follow_the_configuration)
{
	struct nf_conntrack *c = entry4(IPPROTO_TCP);
	struct ct_flow f;

	nfct_set_attr_u8(c, ATTR_TCP_STATE, TCP_CONNTRACK_TIME_WAIT);
	cr_assert_eq(ct_flow_from_entry(c, CT_EV_UPDATE, &f), 0);
	cr_assert_eq(ct_flow_verdict(&f, true, true), CT_END_TARGET_CLOSED);
	cr_assert_eq(ct_flow_verdict(&f, false, true), CT_KEEP);
	f.type = CT_EV_DESTROY;
	cr_assert_eq(ct_flow_verdict(&f, false, true), CT_END_FLOW_GONE);
	cr_assert_eq(ct_flow_verdict(&f, true, false), CT_KEEP);
	nfct_set_attr_u8(c, ATTR_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
	cr_assert_eq(ct_flow_from_entry(c, CT_EV_UPDATE, &f), 0);
	cr_assert_eq(ct_flow_verdict(&f, true, true), CT_KEEP);
	nfct_destroy(c);
}
