/*
 * fw_build: see fw_build.h.  Mirrors what nftables' netlink_linearize.c
 * emits for the equivalent nft syntax (shown above each rule builder), so
 * that `nft list table inet socksgate` prints it back as readable rules.
 *
 * Must not: open sockets, include libev or daemon headers.
 */
#include "fw_build.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

/* nftables datatype ids (nftables include/datatype.h); a concatenation's
 * type is the ids shifted by 6 bits each, which is what lets `nft list`
 * print addresses, protocols and ports. */
#define DT_IPADDR 7
#define DT_IP6ADDR 8
#define DT_INET_PROTO 12
#define DT_INET_SERVICE 13
#define DT_MARK 19
#define DT_BITS 6
/* nftables enum byteorder, stored in set userdata for `nft list`. */
#define BYTEORDER_INVALID 0
#define BYTEORDER_HOST 1

/* 32-bit registers: a concatenation puts each field in its own. */
#define R(n) (NFT_REG32_00 + (n))

static int addr_len(int family)
{
	return family == AF_INET6 ? 16 : 4;
}

/* Words (4 bytes) an address takes in a concatenation. */
static int addr_words(int family)
{
	return addr_len(family) / 4;
}

const char *fw_set_name(enum fw_set_kind k, int family)
{
	static const char *const names[FW_NSETS][2] = {
		{"bound4", "bound6"},
		{"assoc4", "assoc6"},
		{"dnat4", "dnat6"},
		{"mark4", "mark6"},
	};
	return names[k][family == AF_INET6];
}

uint32_t fw_set_id(enum fw_set_kind k, int family)
{
	return 1 + (uint32_t)k * 2 + (family == AF_INET6);
}

struct nftnl_table *fw_build_table(bool owner)
{
	struct nftnl_table *t = nftnl_table_alloc();

	if (t == NULL)
		return NULL;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, FW_TABLE);
	nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS,
			    owner ? NFT_TABLE_F_OWNER : 0);
	return t;
}

struct nftnl_obj *fw_build_counter(void)
{
	struct nftnl_obj *o = nftnl_obj_alloc();

	if (o == NULL)
		return NULL;
	nftnl_obj_set_u32(o, NFTNL_OBJ_FAMILY, NFPROTO_INET);
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, FW_TABLE);
	nftnl_obj_set_str(o, NFTNL_OBJ_NAME, FW_COUNTER_DROPPED);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	return o;
}

/* Concatenated type of the association key:
 * addr . inet_proto . inet_service . addr . inet_service */
static uint32_t assoc_key_type(int family)
{
	uint32_t a = family == AF_INET6 ? DT_IP6ADDR : DT_IPADDR;
	uint32_t t = a;

	t = t << DT_BITS | DT_INET_PROTO;
	t = t << DT_BITS | DT_INET_SERVICE;
	t = t << DT_BITS | a;
	t = t << DT_BITS | DT_INET_SERVICE;
	return t;
}

static uint32_t addr_port_type(int family)
{
	uint32_t a = family == AF_INET6 ? DT_IP6ADDR : DT_IPADDR;
	return a << DT_BITS | DT_INET_SERVICE;
}

/* Key length in bytes: each field padded to 4. */
static uint32_t assoc_key_len(int family)
{
	return (uint32_t)(2 * addr_len(family) + 3 * 4);
}

struct nftnl_set *fw_build_set(enum fw_set_kind k, int family)
{
	struct nftnl_set *s = nftnl_set_alloc();
	uint32_t alen = (uint32_t)addr_len(family);

	if (s == NULL)
		return NULL;
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, FW_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, fw_set_name(k, family));
	nftnl_set_set_u32(s, NFTNL_SET_ID, fw_set_id(k, family));
	if (k == FW_SET_BOUND) {
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE,
				  addr_port_type(family));
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, alen + 4);
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, 0);
		return s;
	}
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, assoc_key_type(family));
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, assoc_key_len(family));
	switch (k) {
	case FW_SET_DNAT: {
		/* A counter per element: the nat chain sees only packets
		 * without a confirmed conntrack entry, so it counts the
		 * packets that started (or tried to start) a relayed flow.
		 * More than the flows conntrack kept means something after
		 * our DNAT dropped them (fw_elem_packets, track.c). */
		struct nftnl_expr *ctr = nftnl_expr_alloc("counter");
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE,
				  addr_port_type(family));
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, alen + 4);
		if (ctr == NULL) {
			nftnl_set_free(s);
			return NULL;
		}
		nftnl_set_add_expr(s, ctr);
		break;
	}
	case FW_SET_MARK: {
		/* Marks are host-endian; without this hint `nft list` would
		 * print them byte-swapped. */
		struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(64);
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, DT_MARK);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 4);
		if (ud) {
			nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER,
					    BYTEORDER_INVALID);
			nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_DATABYTEORDER,
					    BYTEORDER_HOST);
			nftnl_set_set_data(s, NFTNL_SET_USERDATA,
					   nftnl_udata_buf_data(ud),
					   nftnl_udata_buf_len(ud));
			nftnl_udata_buf_free(ud);
		}
		break;
	}
	default:
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, 0);
		break;
	}
	return s;
}

struct nftnl_chain *fw_build_chain(enum fw_chain_kind k)
{
	static const struct {
		const char *name, *type;
		uint32_t hook;
		int32_t prio;
	} defs[] = {
		/* Before DNAT (-100), so it sees BND, not DST. */
		{"guard", "filter", NF_INET_PRE_ROUTING, -150},
		{"pre", "nat", NF_INET_PRE_ROUTING, -100},
		{"post", "nat", NF_INET_POST_ROUTING, 100},
	};
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (c == NULL)
		return NULL;
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, FW_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, defs[k].name);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, defs[k].type);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, defs[k].hook);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, defs[k].prio);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	return c;
}

static const char *chain_name(enum fw_chain_kind k)
{
	static const char *const names[] = {"guard", "pre", "post"};
	return names[k];
}

static void add_payload(struct nftnl_rule *r, uint32_t base, uint32_t off,
			uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

static void add_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

static void add_cmp_op(struct nftnl_rule *r, uint32_t op, uint32_t sreg,
		       const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	nftnl_rule_add_expr(r, e);
}

static void add_cmp(struct nftnl_rule *r, uint32_t sreg, const void *data,
		    uint32_t len)
{
	add_cmp_op(r, NFT_CMP_EQ, sreg, data, len);
}

static void add_lookup(struct nftnl_rule *r, enum fw_set_kind k, int family,
		       uint32_t dreg, bool invert)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, R(0));
	if (dreg)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, dreg);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, fw_set_name(k, family));
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, fw_set_id(k, family));
	if (invert)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS,
				   NFT_LOOKUP_F_INV);
	nftnl_rule_add_expr(r, e);
}

/* meta nfproto == ipv4|ipv6: the inet table sees both. */
static void add_family_match(struct nftnl_rule *r, int family)
{
	uint8_t p = family == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4;

	add_meta(r, NFT_META_NFPROTO, NFT_REG_1);
	add_cmp(r, NFT_REG_1, &p, 1);
}

static uint32_t saddr_off(int family)
{
	return family == AF_INET6 ? 8 : 12;
}

static uint32_t daddr_off(int family)
{
	return family == AF_INET6 ? 24 : 16;
}

/* Loads the association key:
 * saddr . meta l4proto . th sport . daddr . th dport into R(0)... */
static void add_assoc_key(struct nftnl_rule *r, int family)
{
	uint32_t w = (uint32_t)addr_words(family), alen = 4 * w;

	add_payload(r, NFT_PAYLOAD_NETWORK_HEADER, saddr_off(family), alen,
		    R(0));
	add_meta(r, NFT_META_L4PROTO, R(w));
	add_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2, R(w + 1));
	add_payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddr_off(family), alen,
		    R(w + 2));
	add_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, R(2 * w + 2));
}

static struct nftnl_rule *rule_new(enum fw_chain_kind k)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (r == NULL)
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, FW_TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain_name(k));
	return r;
}

/* ip daddr . th dport @bound4   (the packet is to a bound endpoint) */
static void add_bound_match(struct nftnl_rule *r, int family)
{
	uint32_t w = (uint32_t)addr_words(family);

	add_payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddr_off(family), 4 * w,
		    R(0));
	add_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, R(w));
	add_lookup(r, FW_SET_BOUND, family, 0, false);
}

/* counter name "dropped" drop */
static void add_count_drop(struct nftnl_rule *r)
{
	struct nftnl_expr *e = nftnl_expr_alloc("objref");

	nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
	nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, FW_COUNTER_DROPPED);
	nftnl_rule_add_expr(r, e);
	e = nftnl_expr_alloc("immediate");
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_DROP);
	nftnl_rule_add_expr(r, e);
}

/*
 * ip daddr . th dport @bound4
 *   ip saddr . meta l4proto . th sport . ip daddr . th dport != @assoc4
 *   counter name "dropped" drop
 */
static struct nftnl_rule *guard_rule(int family)
{
	struct nftnl_rule *r = rule_new(FW_CHAIN_GUARD);

	add_family_match(r, family);
	add_bound_match(r, family);
	add_assoc_key(r, family);
	add_lookup(r, FW_SET_ASSOC, family, 0, true);
	add_count_drop(r);
	return r;
}

/*
 * ct state invalid,untracked ip daddr . th dport @bound4
 *   counter name "dropped" drop
 *
 * A packet conntrack judged invalid (bad checksum, out of window, ...) or
 * did not track is never NATed: without this rule it would reach the
 * gateway's own stack, which answers a bound endpoint with an ICMP port
 * unreachable or a TCP RST (telling a prober the port exists, and a RST
 * can break the client's relayed connection).  The cheap state test comes
 * first, so valid packets skip the set lookup.
 */
static struct nftnl_rule *guard_invalid_rule(int family)
{
	struct nftnl_rule *r = rule_new(FW_CHAIN_GUARD);
	struct nftnl_expr *e;
	uint32_t bits = NF_CT_STATE_INVALID_BIT | NF_CT_STATE_UNTRACKED_BIT;
	uint32_t zero = 0;

	add_family_match(r, family);
	e = nftnl_expr_alloc("ct");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	nftnl_rule_add_expr(r, e);
	e = nftnl_expr_alloc("bitwise");
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &bits, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, 4);
	nftnl_rule_add_expr(r, e);
	add_cmp_op(r, NFT_CMP_NEQ, NFT_REG_1, &zero, 4);
	add_bound_match(r, family);
	add_count_drop(r);
	return r;
}

/* ct mark & 0xff000000 == 0x5a000000 accept   (family-independent) */
static void add_mark_match(struct nftnl_rule *r);

static struct nftnl_rule *guard_marked_rule(void)
{
	struct nftnl_rule *r = rule_new(FW_CHAIN_GUARD);
	struct nftnl_expr *e;

	add_mark_match(r);
	e = nftnl_expr_alloc("immediate");
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_ACCEPT);
	nftnl_rule_add_expr(r, e);
	return r;
}

/* ct mark set ip saddr . meta l4proto . th sport . ip daddr . th dport
 *   map @mark4 */
static struct nftnl_rule *mark_rule(int family)
{
	struct nftnl_rule *r = rule_new(FW_CHAIN_PRE);
	struct nftnl_expr *e;

	add_family_match(r, family);
	add_assoc_key(r, family);
	add_lookup(r, FW_SET_MARK, family, NFT_REG_1, false);
	e = nftnl_expr_alloc("ct");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_MARK);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_SREG, NFT_REG_1);
	nftnl_rule_add_expr(r, e);
	return r;
}

/* dnat ip to ip saddr . meta l4proto . th sport . ip daddr . th dport
 *   map @dnat4 */
static struct nftnl_rule *dnat_rule(int family)
{
	struct nftnl_rule *r = rule_new(FW_CHAIN_PRE);
	struct nftnl_expr *e;

	add_family_match(r, family);
	add_assoc_key(r, family);
	add_lookup(r, FW_SET_DNAT, family, NFT_REG_1, false);
	e = nftnl_expr_alloc("nat");
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY,
			   family == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN,
			   R((uint32_t)addr_words(family)));
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS,
			   NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED);
	nftnl_rule_add_expr(r, e);
	return r;
}

/* ct mark & 0xff000000 == 0x5a000000 */
static void add_mark_match(struct nftnl_rule *r)
{
	uint32_t mask = FW_MARK_MASK, zero = 0, tag = FW_MARK_TAG;
	struct nftnl_expr *e = nftnl_expr_alloc("ct");

	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_MARK);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	nftnl_rule_add_expr(r, e);
	e = nftnl_expr_alloc("bitwise");
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, 4);
	nftnl_rule_add_expr(r, e);
	add_cmp(r, NFT_REG_1, &tag, 4);
}

/* ct mark & 0xff000000 == 0x5a000000 masquerade   (family-independent)
 * meta nfproto ipv4 ct mark & ... == ... snat ip to ADDR */
static struct nftnl_rule *snat_rule(int family, const struct fw_snat *snat)
{
	struct nftnl_rule *r = rule_new(FW_CHAIN_POST);
	struct nftnl_expr *e;

	if (snat->mode == FW_SNAT_MASQUERADE) {
		add_mark_match(r);
		nftnl_rule_add_expr(r, nftnl_expr_alloc("masq"));
		return r;
	}
	add_family_match(r, family);
	add_mark_match(r);
	e = nftnl_expr_alloc("immediate");
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA,
		       family == AF_INET6 ? snat->addr6 : snat->addr4,
		       (uint32_t)addr_len(family));
	nftnl_rule_add_expr(r, e);
	e = nftnl_expr_alloc("nat");
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_SNAT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY,
			   family == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_MAP_IPS);
	nftnl_rule_add_expr(r, e);
	return r;
}

size_t fw_build_rules(enum fw_chain_kind k, int family,
		      const struct fw_snat *snat, struct nftnl_rule **out,
		      size_t cap)
{
	size_t n = 0;

	if (cap < FW_MAX_RULES)
		return 0;
	switch (k) {
	case FW_CHAIN_GUARD:
		/* Packets of flows that already passed the guard carry our
		 * ct mark: accept them at the cost of one ct load, instead
		 * of two set lookups per packet. */
		if (family == AF_INET)
			out[n++] = guard_marked_rule();
		out[n++] = guard_invalid_rule(family);
		out[n++] = guard_rule(family);
		break;
	case FW_CHAIN_PRE:
		out[n++] = mark_rule(family);
		out[n++] = dnat_rule(family);
		break;
	case FW_CHAIN_POST:
		if (snat->mode == FW_SNAT_NONE)
			break;
		/* masquerade is one rule for both families. */
		if (snat->mode == FW_SNAT_MASQUERADE && family == AF_INET6)
			break;
		if (snat->mode == FW_SNAT_ADDRESS &&
		    !(family == AF_INET6 ? snat->has6 : snat->has4))
			break;
		out[n++] = snat_rule(family, snat);
		break;
	}
	return n;
}

/* Writes the association key of f as the registers hold it. */
static uint32_t put_assoc_key(const struct fw_flow *f, uint8_t *key)
{
	uint32_t alen = (uint32_t)addr_len(f->family), o = 0;
	uint16_t sp = htons(f->sport), bp = htons(f->bport);

	memset(key, 0, 64);
	memcpy(key + o, f->saddr, alen);
	o += alen;
	key[o] = f->proto;
	o += 4;
	memcpy(key + o, &sp, 2);
	o += 4;
	memcpy(key + o, f->baddr, alen);
	o += alen;
	memcpy(key + o, &bp, 2);
	return o + 4;
}

static uint32_t put_addr_port(const uint8_t *addr, uint16_t port, int family,
			      uint8_t *out)
{
	uint32_t alen = (uint32_t)addr_len(family);
	uint16_t p = htons(port);

	memset(out, 0, 20);
	memcpy(out, addr, alen);
	memcpy(out + alen, &p, 2);
	return alen + 4;
}

struct nftnl_set *fw_build_elem(enum fw_set_kind k, const struct fw_flow *f)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elem *e;
	struct nftnl_udata_buf *ud;
	uint8_t key[64], data[20];
	uint32_t klen, dlen;

	if (s == NULL)
		return NULL;
	e = nftnl_set_elem_alloc();
	if (e == NULL) {
		nftnl_set_free(s);
		return NULL;
	}
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, FW_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, fw_set_name(k, f->family));
	if (k == FW_SET_BOUND)
		klen = put_addr_port(f->baddr, f->bport, f->family, key);
	else
		klen = put_assoc_key(f, key);
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, klen);
	if (k == FW_SET_DNAT) {
		dlen = put_addr_port(f->daddr, f->dport, f->family, data);
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, data, dlen);
	} else if (k == FW_SET_MARK) {
		uint32_t m = f->mark; /* ct mark is host byte order */
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, &m, 4);
	}
	if (f->comment && f->comment[0]) {
		char c[FW_COMMENT_MAX];
		snprintf(c, sizeof(c), "%s", f->comment);
		ud = nftnl_udata_buf_alloc(FW_COMMENT_MAX + 8);
		if (ud) {
			nftnl_udata_put_strz(ud, NFTNL_UDATA_SET_ELEM_COMMENT,
					     c);
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_USERDATA,
					   nftnl_udata_buf_data(ud),
					   nftnl_udata_buf_len(ud));
			nftnl_udata_buf_free(ud);
		}
	}
	nftnl_set_elem_add(s, e);
	return s;
}

struct nftnl_set *fw_build_elem_key(enum fw_set_kind k, const struct fw_flow *f)
{
	struct fw_flow kf = *f;
	struct nftnl_set *s;
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;

	kf.comment = NULL;
	s = fw_build_elem(k, &kf);
	if (s == NULL)
		return NULL;
	it = nftnl_set_elems_iter_create(s);
	e = it ? nftnl_set_elems_iter_next(it) : NULL;
	if (e)
		nftnl_set_elem_unset(e, NFTNL_SET_ELEM_DATA);
	nftnl_set_elems_iter_destroy(it);
	return s;
}
