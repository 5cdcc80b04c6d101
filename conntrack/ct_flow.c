/*
 * ct_flow: conversion of libnetfilter_conntrack entries into struct
 * ct_flow, and the decisions taken on them.  Pure: no socket, no state.
 */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>

#include "ct.h"

/* From linux/netfilter/nf_conntrack_tcp.h, whose state enum clashes with
 * libnetfilter_conntrack's. */
#ifndef IP_CT_TCP_FLAG_CLOSE_INIT
#define IP_CT_TCP_FLAG_CLOSE_INIT 0x04
#endif

static int tuple_from(const struct nf_conntrack *c, bool orig,
		      struct ct_tuple *t)
{
	memset(t, 0, sizeof(*t));
	t->family = nfct_get_attr_u8(c, orig ? ATTR_ORIG_L3PROTO
					     : ATTR_REPL_L3PROTO);
	t->proto = nfct_get_attr_u8(c, orig ? ATTR_ORIG_L4PROTO
					    : ATTR_REPL_L4PROTO);
	if (t->family == AF_INET) {
		uint32_t s = nfct_get_attr_u32(c, orig ? ATTR_ORIG_IPV4_SRC
						       : ATTR_REPL_IPV4_SRC);
		uint32_t d = nfct_get_attr_u32(c, orig ? ATTR_ORIG_IPV4_DST
						       : ATTR_REPL_IPV4_DST);
		memcpy(t->src, &s, 4);
		memcpy(t->dst, &d, 4);
	} else if (t->family == AF_INET6) {
		const void *s = nfct_get_attr(c, orig ? ATTR_ORIG_IPV6_SRC
						      : ATTR_REPL_IPV6_SRC);
		const void *d = nfct_get_attr(c, orig ? ATTR_ORIG_IPV6_DST
						      : ATTR_REPL_IPV6_DST);
		if (s == NULL || d == NULL)
			return -1;
		memcpy(t->src, s, 16);
		memcpy(t->dst, d, 16);
	} else {
		return -1;
	}
	t->sport = ntohs(nfct_get_attr_u16(c, orig ? ATTR_ORIG_PORT_SRC
						   : ATTR_REPL_PORT_SRC));
	t->dport = ntohs(nfct_get_attr_u16(c, orig ? ATTR_ORIG_PORT_DST
						   : ATTR_REPL_PORT_DST));
	return 0;
}

int ct_flow_from_entry(const struct nf_conntrack *c, enum ct_event_type t,
		       struct ct_flow *out)
{
	memset(out, 0, sizeof(*out));
	out->type = t;
	if (tuple_from(c, true, &out->orig) < 0)
		return -1;
	if (nfct_attr_is_set(c, ATTR_REPL_L3PROTO) > 0)
		tuple_from(c, false, &out->reply);
	out->mark = nfct_get_attr_u32(c, ATTR_MARK);
	if (out->orig.proto == IPPROTO_TCP &&
	    nfct_attr_is_set(c, ATTR_TCP_STATE) > 0) {
		out->tcp_state = nfct_get_attr_u8(c, ATTR_TCP_STATE);
		out->tcp_flags_orig = nfct_get_attr_u8(c, ATTR_TCP_FLAGS_ORIG);
		out->tcp_flags_reply = nfct_get_attr_u8(c, ATTR_TCP_FLAGS_REPL);
	}
	if (nfct_attr_is_set(c, ATTR_ORIG_COUNTER_PACKETS) > 0) {
		out->has_counters = true;
		out->packets_orig =
			nfct_get_attr_u64(c, ATTR_ORIG_COUNTER_PACKETS);
		out->bytes_orig = nfct_get_attr_u64(c, ATTR_ORIG_COUNTER_BYTES);
		out->packets_reply =
			nfct_get_attr_u64(c, ATTR_REPL_COUNTER_PACKETS);
		out->bytes_reply =
			nfct_get_attr_u64(c, ATTR_REPL_COUNTER_BYTES);
	}
	return 0;
}

bool ct_flow_target_closed(const struct ct_flow *f)
{
	if (f->orig.proto != IPPROTO_TCP || f->tcp_state == 0)
		return false;
	switch (f->tcp_state) {
	case TCP_CONNTRACK_FIN_WAIT:
	case TCP_CONNTRACK_CLOSE_WAIT:
		/* One side sent a FIN: the target's if it closed first. */
		return (f->tcp_flags_reply & IP_CT_TCP_FLAG_CLOSE_INIT) != 0;
	case TCP_CONNTRACK_LAST_ACK:
	case TCP_CONNTRACK_TIME_WAIT:
		/* Both sides sent a FIN: the target did. */
		return true;
	case TCP_CONNTRACK_CLOSE:
		/* A reset (either side): the flow is dead. */
		return true;
	default:
		return false;
	}
}

enum ct_verdict ct_flow_verdict(const struct ct_flow *f,
				bool close_on_target_fin,
				bool close_on_flow_end)
{
	if (f->type == CT_EV_DESTROY)
		return close_on_flow_end ? CT_END_FLOW_GONE : CT_KEEP;
	if (close_on_target_fin && ct_flow_target_closed(f))
		return CT_END_TARGET_CLOSED;
	return CT_KEEP;
}
