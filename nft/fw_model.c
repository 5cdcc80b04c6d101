/*
 * fw_model: see fw_model.h.
 *
 * A relayed flow's packet, as the forward hook sees it: ct mark has our
 * tag in its high byte (0x5a000000/0xff000000; the low 24 bits name the
 * association, unknown here); ct state is new for the first packet and
 * established for the others (either direction); ct status has dnat (the
 * relay is DNAT to DST.ADDR:DST.PORT) and confirmed only after the first
 * packet; everything else (interfaces, addresses, ports, the snat status
 * bit, which depends on `snat`) is unknown.  A register holds what a ct
 * load put there with the bits that are known; a comparison or a set
 * lookup on known bits is certain, on unknown ones it is "maybe".
 *
 * Must not: open sockets, include libev or daemon headers, log.
 */
#include "fw_model_int.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/xt_connmark.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_state.h>
#include <linux/netlink.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "fw_build.h"

/* ct state bits (nft's ct state and xtables' --ctstate agree). */
#define ST_ESTABLISHED 0x02u
#define ST_NEW 0x08u
/* xtables --ctstate extra bits: SNAT and DNAT (status, really). */
#define XT_ST_SNAT XT_CONNTRACK_STATE_SNAT
#define XT_ST_DNAT XT_CONNTRACK_STATE_DNAT

/* --- building ------------------------------------------------------- */

static int grow_array(void **v, size_t *cap, size_t need, size_t size)
{
	size_t nc;
	void *nv;

	if (need <= *cap)
		return 0;
	nc = *cap ? *cap * 2 : 8;
	while (nc < need)
		nc *= 2;
	nv = realloc(*v, nc * size);
	if (nv == NULL)
		return -1;
	*v = nv;
	*cap = nc;
	return 0;
}

struct fw_model *fw_model_new(void)
{
	return calloc(1, sizeof(struct fw_model));
}

static void chain_clear(struct fw_mchain *c)
{
	for (size_t i = 0; i < c->n; i++)
		for (int k = 0; k < FW_NPKT; k++)
			free(c->rules[i].targets[k]);
	free(c->rules);
	for (size_t i = 0; i < c->nraw; i++)
		nftnl_rule_free(c->raw[i]);
	free(c->raw);
	free(c->table);
	free(c->name);
}

void fw_model_free(struct fw_model *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->ntables; i++)
		free(m->tables[i].name);
	free(m->tables);
	for (size_t i = 0; i < m->nchains; i++)
		chain_clear(&m->chains[i]);
	free(m->chains);
	for (size_t i = 0; i < m->nsets; i++) {
		struct fw_mset *s = &m->sets[i];
		for (size_t j = 0; j < s->n; j++)
			free(s->e[j].chain);
		free(s->e);
		free(s->table);
		free(s->name);
	}
	free(m->sets);
	free(m);
}

static bool same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

const struct fw_mtable *fw_model_table(const struct fw_model *m, int family,
				       const char *name)
{
	for (size_t i = 0; i < m->ntables; i++)
		if (m->tables[i].family == family &&
		    same(m->tables[i].name, name))
			return &m->tables[i];
	return NULL;
}

static struct fw_mchain *chain_find(const struct fw_model *m, int family,
				    const char *table, const char *name)
{
	for (size_t i = 0; i < m->nchains; i++) {
		struct fw_mchain *c = &m->chains[i];
		if (c->family == family && same(c->table, table) &&
		    same(c->name, name))
			return c;
	}
	return NULL;
}

const struct fw_mchain *fw_model_chain(const struct fw_model *m, int family,
				       const char *table, const char *name)
{
	return chain_find(m, family, table, name);
}

/* The chain, created empty (not a base chain) if it is not known yet:
 * rules may come before their chain. */
static struct fw_mchain *chain_get(struct fw_model *m, int family,
				   const char *table, const char *name)
{
	struct fw_mchain *c = chain_find(m, family, table, name);

	if (c)
		return c;
	if (grow_array((void **)&m->chains, &m->ccap, m->nchains + 1,
		       sizeof(*m->chains)) < 0)
		return NULL;
	c = &m->chains[m->nchains];
	memset(c, 0, sizeof(*c));
	c->family = family;
	c->table = strdup(table);
	c->name = strdup(name);
	c->policy = NF_ACCEPT;
	if (c->table == NULL || c->name == NULL) {
		chain_clear(c);
		return NULL;
	}
	m->nchains++;
	return c;
}

static struct fw_mset *set_find(const struct fw_model *m, int family,
				const char *table, const char *name)
{
	for (size_t i = 0; i < m->nsets; i++) {
		struct fw_mset *s = &m->sets[i];
		if (s->family == family && same(s->table, table) &&
		    same(s->name, name))
			return s;
	}
	return NULL;
}

static struct fw_mset *set_get(struct fw_model *m, int family,
			       const char *table, const char *name)
{
	struct fw_mset *s = set_find(m, family, table, name);

	if (s)
		return s;
	if (grow_array((void **)&m->sets, &m->scap, m->nsets + 1,
		       sizeof(*m->sets)) < 0)
		return NULL;
	s = &m->sets[m->nsets];
	memset(s, 0, sizeof(*s));
	s->family = family;
	s->table = strdup(table);
	s->name = strdup(name);
	if (s->table == NULL || s->name == NULL) {
		free(s->table);
		free(s->name);
		return NULL;
	}
	m->nsets++;
	return s;
}

static int add_table(struct fw_model *m, const struct nlmsghdr *nlh)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct fw_mtable *mt;
	int rc = -1;

	if (t == NULL)
		return -1;
	if (nftnl_table_nlmsg_parse(nlh, t) < 0 ||
	    !nftnl_table_is_set(t, NFTNL_TABLE_NAME)) {
		errno = EINVAL;
		goto out;
	}
	if (fw_model_table(m, (int)nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY),
			   nftnl_table_get_str(t, NFTNL_TABLE_NAME))) {
		rc = 0;
		goto out;
	}
	if (grow_array((void **)&m->tables, &m->tcap, m->ntables + 1,
		       sizeof(*m->tables)) < 0)
		goto out;
	mt = &m->tables[m->ntables];
	memset(mt, 0, sizeof(*mt));
	mt->family = (int)nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY);
	mt->flags = nftnl_table_is_set(t, NFTNL_TABLE_FLAGS)
			    ? nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS)
			    : 0;
	mt->name = strdup(nftnl_table_get_str(t, NFTNL_TABLE_NAME));
	if (mt->name == NULL)
		goto out;
	m->ntables++;
	rc = 0;
out:
	nftnl_table_free(t);
	return rc;
}

static int add_chain(struct fw_model *m, const struct nlmsghdr *nlh)
{
	struct nftnl_chain *ch = nftnl_chain_alloc();
	struct fw_mchain *c;
	int rc = -1;

	if (ch == NULL)
		return -1;
	if (nftnl_chain_nlmsg_parse(nlh, ch) < 0 ||
	    !nftnl_chain_is_set(ch, NFTNL_CHAIN_TABLE) ||
	    !nftnl_chain_is_set(ch, NFTNL_CHAIN_NAME)) {
		errno = EINVAL;
		goto out;
	}
	c = chain_get(m, (int)nftnl_chain_get_u32(ch, NFTNL_CHAIN_FAMILY),
		      nftnl_chain_get_str(ch, NFTNL_CHAIN_TABLE),
		      nftnl_chain_get_str(ch, NFTNL_CHAIN_NAME));
	if (c == NULL)
		goto out;
	if (nftnl_chain_is_set(ch, NFTNL_CHAIN_HOOKNUM)) {
		c->base = true;
		c->hook = nftnl_chain_get_u32(ch, NFTNL_CHAIN_HOOKNUM);
		c->prio = nftnl_chain_is_set(ch, NFTNL_CHAIN_PRIO)
				  ? nftnl_chain_get_s32(ch, NFTNL_CHAIN_PRIO)
				  : 0;
		c->policy =
			nftnl_chain_is_set(ch, NFTNL_CHAIN_POLICY)
				? nftnl_chain_get_u32(ch, NFTNL_CHAIN_POLICY)
				: NF_ACCEPT;
	}
	rc = 0;
out:
	nftnl_chain_free(ch);
	return rc;
}

static int add_set(struct fw_model *m, const struct nlmsghdr *nlh)
{
	struct nftnl_set *ns = nftnl_set_alloc();
	struct fw_mset *s;
	int rc = -1;

	if (ns == NULL)
		return -1;
	if (nftnl_set_nlmsg_parse(nlh, ns) < 0 ||
	    !nftnl_set_is_set(ns, NFTNL_SET_TABLE) ||
	    !nftnl_set_is_set(ns, NFTNL_SET_NAME)) {
		errno = EINVAL;
		goto out;
	}
	s = set_get(m, (int)nftnl_set_get_u32(ns, NFTNL_SET_FAMILY),
		    nftnl_set_get_str(ns, NFTNL_SET_TABLE),
		    nftnl_set_get_str(ns, NFTNL_SET_NAME));
	if (s == NULL)
		goto out;
	s->flags = nftnl_set_is_set(ns, NFTNL_SET_FLAGS)
			   ? nftnl_set_get_u32(ns, NFTNL_SET_FLAGS)
			   : 0;
	s->klen = nftnl_set_is_set(ns, NFTNL_SET_KEY_LEN)
			  ? nftnl_set_get_u32(ns, NFTNL_SET_KEY_LEN)
			  : 0;
	rc = 0;
out:
	nftnl_set_free(ns);
	return rc;
}

static int add_elems(struct fw_model *m, const struct nlmsghdr *nlh)
{
	struct nftnl_set *ns = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it = NULL;
	struct nftnl_set_elem *e;
	struct fw_mset *s;
	int rc = -1;

	if (ns == NULL)
		return -1;
	if (nftnl_set_elems_nlmsg_parse(nlh, ns) < 0 ||
	    !nftnl_set_is_set(ns, NFTNL_SET_TABLE) ||
	    !nftnl_set_is_set(ns, NFTNL_SET_NAME)) {
		errno = EINVAL;
		goto out;
	}
	s = set_get(m, (int)nftnl_set_get_u32(ns, NFTNL_SET_FAMILY),
		    nftnl_set_get_str(ns, NFTNL_SET_TABLE),
		    nftnl_set_get_str(ns, NFTNL_SET_NAME));
	if (s == NULL)
		goto out;
	s->loaded = true;
	it = nftnl_set_elems_iter_create(ns);
	while (it && (e = nftnl_set_elems_iter_next(it)) != NULL) {
		struct fw_melem *me;
		uint32_t klen = 0;
		const void *key =
			nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);

		if (s->n >= FW_SET_ELEMS_MAX || key == NULL || klen > 16) {
			s->truncated = true;
			continue;
		}
		if (grow_array((void **)&s->e, &s->cap, s->n + 1,
			       sizeof(*s->e)) < 0)
			goto out;
		me = &s->e[s->n];
		memset(me, 0, sizeof(*me));
		memcpy(me->key, key, klen);
		me->klen = (uint8_t)klen;
		me->verdict = NFT_CONTINUE;
		if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT))
			me->verdict = (int)nftnl_set_elem_get_u32(
				e, NFTNL_SET_ELEM_VERDICT);
		if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN)) {
			me->chain = strdup(nftnl_set_elem_get_str(
				e, NFTNL_SET_ELEM_CHAIN));
			if (me->chain == NULL)
				goto out;
		}
		s->n++;
	}
	rc = 0;
out:
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(ns);
	return rc;
}

static int add_rule(struct fw_model *m, const struct nlmsghdr *nlh)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct fw_mchain *c;

	if (r == NULL)
		return -1;
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0 ||
	    !nftnl_rule_is_set(r, NFTNL_RULE_TABLE) ||
	    !nftnl_rule_is_set(r, NFTNL_RULE_CHAIN)) {
		nftnl_rule_free(r);
		errno = EINVAL;
		return -1;
	}
	c = chain_get(m, (int)nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY),
		      nftnl_rule_get_str(r, NFTNL_RULE_TABLE),
		      nftnl_rule_get_str(r, NFTNL_RULE_CHAIN));
	if (c == NULL || grow_array((void **)&c->raw, &c->rawcap, c->nraw + 1,
				    sizeof(*c->raw)) < 0) {
		nftnl_rule_free(r);
		return -1;
	}
	c->raw[c->nraw++] = r;
	m->nrules++;
	m->reduced = false;
	return 0;
}

int fw_model_add(struct fw_model *m, const struct nlmsghdr *nlh)
{
	if ((nlh->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES)
		return 0;
	switch (nlh->nlmsg_type & 0xff) {
	case NFT_MSG_NEWTABLE:
		return add_table(m, nlh);
	case NFT_MSG_NEWCHAIN:
		return add_chain(m, nlh);
	case NFT_MSG_NEWSET:
		return add_set(m, nlh);
	case NFT_MSG_NEWSETELEM:
		return add_elems(m, nlh);
	case NFT_MSG_NEWRULE:
		return add_rule(m, nlh);
	default:
		return 0;
	}
}

size_t fw_model_wanted_sets(const struct fw_model *m,
			    void (*fn)(void *arg, int family, const char *table,
				       const char *set),
			    void *arg)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nsets; i++) {
		const struct fw_mset *s = &m->sets[i];
		if (!(s->flags & NFT_SET_ANONYMOUS) || s->loaded ||
		    s->klen == 0 || s->klen > 16)
			continue;
		fn(arg, s->family, s->table, s->name);
		n++;
	}
	return n;
}

/* --- reducing a rule ------------------------------------------------ */

#define NREGS 16

/* What a register holds: the bits of a relayed packet's value that are
 * known (known) and what they are (val).  !ok: unknown. */
struct rv {
	bool ok;
	uint32_t known, val;
	const char *src;
};

struct ev {
	const struct fw_model *m;
	const struct fw_mchain *c;
	int pkt;
	struct rv r[NREGS];
	uint8_t cond;
	uint8_t verdict;
	const char *target;
	const char *by;
};

/* 32-bit register index of an nftables register, or -1 (verdict). */
static int reg_index(uint32_t reg)
{
	if (reg >= NFT_REG32_00 && reg < NFT_REG32_00 + NREGS)
		return (int)(reg - NFT_REG32_00);
	if (reg >= NFT_REG_1 && reg <= NFT_REG_4)
		return (int)(reg - NFT_REG_1) * 4;
	return -1;
}

static void invalidate(struct ev *x, int i, int words)
{
	for (int j = i; i >= 0 && j < i + words && j < NREGS; j++)
		x->r[j].ok = false;
}

static void invalidate_all(struct ev *x)
{
	invalidate(x, 0, NREGS);
}

/* A match: the rule matches only if it does. */
static void match(struct ev *x, enum fw_cond c, const char *by)
{
	if (c < x->cond)
		x->cond = (uint8_t)c;
	if (c == FW_ALWAYS && by && x->by == NULL)
		x->by = by;
}

static uint32_t u32_of(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* (v & mask) == want, for a value with known bits. */
static enum fw_cond test_masked(const struct rv *v, uint32_t mask,
				uint32_t want)
{
	uint32_t known = v->known & mask;

	if (((v->val & mask) ^ want) & known)
		return FW_NEVER;
	if (known == mask)
		return FW_ALWAYS;
	return FW_MAYBE;
}

static enum fw_cond invert(enum fw_cond c, bool inv)
{
	if (!inv || c == FW_MAYBE)
		return c;
	return c == FW_ALWAYS ? FW_NEVER : FW_ALWAYS;
}

static void eval_ct(struct ev *x, const struct nftnl_expr *e)
{
	int i;

	if (nftnl_expr_is_set(e, NFTNL_EXPR_CT_SREG))
		return; /* ct ... set: a statement */
	i = reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_CT_DREG));
	invalidate(x, i, 4);
	if (i < 0 || nftnl_expr_is_set(e, NFTNL_EXPR_CT_DIR))
		return;
	switch (nftnl_expr_get_u32(e, NFTNL_EXPR_CT_KEY)) {
	case NFT_CT_STATE:
		x->r[i] = (struct rv){true, ~0u,
				      x->pkt == FW_PKT_NEW ? ST_NEW
							   : ST_ESTABLISHED,
				      "ct state"};
		break;
	case NFT_CT_MARK:
		x->r[i] =
			(struct rv){true, FW_MARK_MASK, FW_MARK_TAG, "ct mark"};
		break;
	case NFT_CT_STATUS:
		x->r[i] = (struct rv){
			true, IPS_DST_NAT | IPS_CONFIRMED,
			IPS_DST_NAT |
				(x->pkt == FW_PKT_NEW ? 0 : IPS_CONFIRMED),
			"ct status"};
		break;
	default:
		break;
	}
}

static void eval_bitwise(struct ev *x, const struct nftnl_expr *e)
{
	int s = reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_BITWISE_SREG));
	int d = reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_BITWISE_DREG));
	uint32_t len = nftnl_expr_get_u32(e, NFTNL_EXPR_BITWISE_LEN);
	uint32_t mlen = 0, xlen = 0;
	const void *mask = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &mlen);
	const void *xr = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_XOR, &xlen);
	struct rv v;

	if (d < 0)
		return;
	if (s < 0 || !x->r[s].ok || len != 4 || mask == NULL || mlen != 4 ||
	    xr == NULL || xlen != 4 ||
	    (nftnl_expr_is_set(e, NFTNL_EXPR_BITWISE_OP) &&
	     nftnl_expr_get_u32(e, NFTNL_EXPR_BITWISE_OP) !=
		     NFT_BITWISE_BOOL)) {
		invalidate(x, d, (int)((len + 3) / 4));
		return;
	}
	v = x->r[s];
	uint32_t m = u32_of(mask), xo = u32_of(xr);
	/* Bits the mask clears become known (the xor's). */
	v.val = (v.val & m) ^ xo;
	v.known = (v.known & m) | ~m;
	x->r[d] = v;
}

static void eval_cmp(struct ev *x, const struct nftnl_expr *e)
{
	int s = reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_SREG));
	uint32_t op = nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP), len = 0;
	const void *data = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
	enum fw_cond c;

	if (s < 0 || !x->r[s].ok || data == NULL || len != 4 ||
	    (op != NFT_CMP_EQ && op != NFT_CMP_NEQ)) {
		match(x, FW_MAYBE, NULL);
		return;
	}
	c = test_masked(&x->r[s], ~0u, u32_of(data));
	match(x, invert(c, op == NFT_CMP_NEQ), x->r[s].src);
}

/* Whether a set holds the value of register v: FW_ALWAYS if an element
 * certainly equals it (*hit: that element), FW_NEVER if none can,
 * FW_MAYBE otherwise (or when the set cannot be used). */
static enum fw_cond set_holds(const struct fw_mset *s, const struct rv *v,
			      const struct fw_melem **hit)
{
	bool maybe = false;

	*hit = NULL;
	if (s == NULL || !v->ok || !s->loaded || s->truncated || s->klen != 4 ||
	    (s->flags & NFT_SET_INTERVAL))
		return FW_MAYBE;
	for (size_t i = 0; i < s->n; i++) {
		if (s->e[i].klen != 4)
			return FW_MAYBE;
		enum fw_cond c = test_masked(v, ~0u, u32_of(s->e[i].key));
		if (c == FW_ALWAYS) {
			*hit = &s->e[i];
			return FW_ALWAYS;
		}
		if (c == FW_MAYBE)
			maybe = true;
	}
	return maybe ? FW_MAYBE : FW_NEVER;
}

static uint8_t verdict_of(int code)
{
	if (code >= 0) {
		switch (code & NF_VERDICT_MASK) {
		case NF_ACCEPT:
			return FWV_ACCEPT;
		case NF_DROP:
			return FWV_DROP;
		case NF_QUEUE:
			return FWV_QUEUE;
		default:
			return FWV_QUEUE; /* stolen, repeat: unknown */
		}
	}
	switch (code) {
	case NFT_JUMP:
		return FWV_JUMP;
	case NFT_GOTO:
		return FWV_GOTO;
	case NFT_RETURN:
		return FWV_RETURN;
	default:
		return FWV_NONE; /* continue, break */
	}
}

static void eval_lookup(struct ev *x, const struct nftnl_expr *e)
{
	int s = reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_SREG));
	bool has_dreg = nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_DREG);
	uint32_t dreg =
		has_dreg ? nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_DREG) : 0;
	bool inv = nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_FLAGS) &&
		   (nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_FLAGS) &
		    NFT_LOOKUP_F_INV);
	const struct fw_mset *set =
		set_find(x->m, x->c->family, x->c->table,
			 nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET));
	const struct fw_melem *hit;
	struct rv none = {0};
	enum fw_cond c = set_holds(set, s >= 0 ? &x->r[s] : &none, &hit);
	const char *src = s >= 0 ? x->r[s].src : NULL;

	if (has_dreg && dreg == NFT_REG_VERDICT) {
		/* A verdict map: the element's verdict, if one is hit. */
		match(x, c, src);
		if (c == FW_ALWAYS) {
			x->verdict = verdict_of(hit->verdict);
			x->target = hit->chain;
		}
		return;
	}
	if (has_dreg) {
		/* A data map loads its data; no element: no match. */
		invalidate(x, reg_index(dreg), 4);
		match(x, c, src);
		return;
	}
	match(x, invert(c, inv), src);
}

static void eval_immediate(struct ev *x, const struct nftnl_expr *e)
{
	uint32_t dreg = nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_DREG);

	if (dreg != NFT_REG_VERDICT) {
		invalidate(x, reg_index(dreg), 4);
		return;
	}
	x->verdict =
		verdict_of((int)nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT));
	x->target = nftnl_expr_is_set(e, NFTNL_EXPR_IMM_CHAIN)
			    ? nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN)
			    : NULL;
}

/* -m conntrack: --ctstate and --ctstatus only; anything else "maybe". */
static enum fw_cond xt_conntrack(const struct ev *x, uint32_t rev,
				 const void *info, uint32_t len)
{
	uint16_t flags, inv, state, status;
	uint32_t known_state, maybe_state;
	enum fw_cond c = FW_ALWAYS, s;

	if (rev == 1 && len >= sizeof(struct xt_conntrack_mtinfo1)) {
		const struct xt_conntrack_mtinfo1 *i = info;
		flags = i->match_flags;
		inv = i->invert_flags;
		state = i->state_mask;
		status = i->status_mask;
	} else if ((rev == 2 && len >= sizeof(struct xt_conntrack_mtinfo2)) ||
		   (rev == 3 && len >= sizeof(struct xt_conntrack_mtinfo3))) {
		/* Version 3 extends version 2 at its end. */
		const struct xt_conntrack_mtinfo2 *i = info;
		flags = i->match_flags;
		inv = i->invert_flags;
		state = i->state_mask;
		status = i->status_mask;
	} else {
		return FW_MAYBE;
	}
	if (flags & ~(XT_CONNTRACK_STATE | XT_CONNTRACK_STATUS |
		      XT_CONNTRACK_STATE_ALIAS))
		return FW_MAYBE;
	if (flags & XT_CONNTRACK_STATE) {
		/* Our packets: new or established, always DNAT; SNAT
		 * depends on `snat`. */
		known_state = (x->pkt == FW_PKT_NEW ? ST_NEW : ST_ESTABLISHED) |
			      XT_ST_DNAT;
		maybe_state = XT_ST_SNAT;
		s = (state & known_state)   ? FW_ALWAYS
		    : (state & maybe_state) ? FW_MAYBE
					    : FW_NEVER;
		s = invert(s, inv & XT_CONNTRACK_STATE);
		if (s < c)
			c = s;
	}
	if (flags & XT_CONNTRACK_STATUS) {
		uint32_t set = IPS_DST_NAT |
			       (x->pkt == FW_PKT_NEW ? 0 : IPS_CONFIRMED);
		uint32_t known = IPS_DST_NAT | IPS_CONFIRMED;
		s = (status & set)	? FW_ALWAYS
		    : (status & ~known) ? FW_MAYBE
					: FW_NEVER;
		s = invert(s, inv & XT_CONNTRACK_STATUS);
		if (s < c)
			c = s;
	}
	return c;
}

/* An xtables match (iptables-nft keeps the ones it cannot translate). */
static void eval_xt_match(struct ev *x, const struct nftnl_expr *e)
{
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_MT_NAME);
	uint32_t rev = nftnl_expr_get_u32(e, NFTNL_EXPR_MT_REV), len = 0;
	const void *info = nftnl_expr_get(e, NFTNL_EXPR_MT_INFO, &len);

	if (name == NULL || info == NULL) {
		match(x, FW_MAYBE, NULL);
	} else if (strcmp(name, "comment") == 0) {
		match(x, FW_ALWAYS, NULL);
	} else if (strcmp(name, "connmark") == 0 && rev == 1 &&
		   len >= sizeof(struct xt_connmark_mtinfo1)) {
		const struct xt_connmark_mtinfo1 *i = info;
		struct rv v = {true, FW_MARK_MASK, FW_MARK_TAG, "connmark"};
		match(x, invert(test_masked(&v, i->mask, i->mark), i->invert),
		      "connmark");
	} else if (strcmp(name, "conntrack") == 0) {
		match(x, xt_conntrack(x, rev, info, len), "conntrack");
	} else if (strcmp(name, "state") == 0 &&
		   len >= sizeof(struct xt_state_info)) {
		const struct xt_state_info *i = info;
		uint32_t st = x->pkt == FW_PKT_NEW ? ST_NEW : ST_ESTABLISHED;
		match(x, (i->statemask & st) ? FW_ALWAYS : FW_NEVER, "state");
	} else {
		match(x, FW_MAYBE, NULL);
	}
}

static void eval_expr(struct ev *x, const struct nftnl_expr *e)
{
	const char *n = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (n == NULL) {
		match(x, FW_MAYBE, NULL);
		invalidate_all(x);
	} else if (strcmp(n, "ct") == 0) {
		eval_ct(x, e);
	} else if (strcmp(n, "bitwise") == 0) {
		eval_bitwise(x, e);
	} else if (strcmp(n, "cmp") == 0) {
		eval_cmp(x, e);
	} else if (strcmp(n, "lookup") == 0) {
		eval_lookup(x, e);
	} else if (strcmp(n, "immediate") == 0) {
		eval_immediate(x, e);
	} else if (strcmp(n, "reject") == 0) {
		x->verdict = FWV_REJECT;
	} else if (strcmp(n, "queue") == 0) {
		x->verdict = FWV_QUEUE;
	} else if (strcmp(n, "match") == 0) {
		eval_xt_match(x, e);
	} else if (strcmp(n, "target") == 0) {
		const char *t = nftnl_expr_get_str(e, NFTNL_EXPR_TG_NAME);
		if (t && strcmp(t, "REJECT") == 0)
			x->verdict = FWV_REJECT;
		else if (t && strcmp(t, "NFQUEUE") == 0)
			x->verdict = FWV_QUEUE;
	} else if (strcmp(n, "meta") == 0) {
		if (!nftnl_expr_is_set(e, NFTNL_EXPR_META_SREG))
			invalidate(x,
				   reg_index(nftnl_expr_get_u32(
					   e, NFTNL_EXPR_META_DREG)),
				   4);
	} else if (strcmp(n, "payload") == 0) {
		if (!nftnl_expr_is_set(e, NFTNL_EXPR_PAYLOAD_SREG))
			invalidate(x,
				   reg_index(nftnl_expr_get_u32(
					   e, NFTNL_EXPR_PAYLOAD_DREG)),
				   4);
	} else if (strcmp(n, "counter") == 0 || strcmp(n, "log") == 0 ||
		   strcmp(n, "flow_offload") == 0 || strcmp(n, "objref") == 0 ||
		   strcmp(n, "notrack") == 0 || strcmp(n, "last") == 0 ||
		   strcmp(n, "dynset") == 0) {
		/* statements: no effect on the verdict */
	} else if (strcmp(n, "exthdr") == 0 || strcmp(n, "rt") == 0 ||
		   strcmp(n, "fib") == 0 || strcmp(n, "socket") == 0 ||
		   strcmp(n, "osf") == 0 || strcmp(n, "hash") == 0 ||
		   strcmp(n, "numgen") == 0 || strcmp(n, "xfrm") == 0 ||
		   strcmp(n, "byteorder") == 0 || strcmp(n, "tunnel") == 0) {
		/* loads of things we do not know (exthdr may also write:
		 * either way nothing we track is left) */
		invalidate_all(x);
	} else {
		/* limit, quota, range, connlimit, anything new: a match we
		 * cannot decide */
		match(x, FW_MAYBE, NULL);
		invalidate_all(x);
	}
}

static struct fw_step reduce_one(const struct fw_model *m,
				 const struct fw_mchain *c,
				 struct nftnl_rule *r, int pkt)
{
	struct ev x = {.m = m, .c = c, .pkt = pkt, .cond = FW_ALWAYS};
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	struct nftnl_expr *e;
	struct fw_step st;

	while (it && x.cond != FW_NEVER &&
	       (e = nftnl_expr_iter_next(it)) != NULL)
		eval_expr(&x, e);
	nftnl_expr_iter_destroy(it);
	if (it == NULL)
		x.cond = FW_MAYBE;
	st.cond = x.cond;
	st.verdict = x.cond == FW_NEVER ? FWV_NONE : x.verdict;
	st.target = x.target;
	st.by = x.by;
	return st;
}

/* iptables-nft keeps the matches and targets it cannot translate as
 * xtables compat expressions: they tell its tables apart. */
static bool uses_xtables(struct nftnl_rule *r)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	struct nftnl_expr *e;
	bool xt = false;

	while (it && !xt && (e = nftnl_expr_iter_next(it)) != NULL) {
		const char *n = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
		xt = n && (strcmp(n, "match") == 0 || strcmp(n, "target") == 0);
	}
	nftnl_expr_iter_destroy(it);
	return xt;
}

static void mark_xt(struct fw_model *m, const struct fw_mchain *c)
{
	for (size_t i = 0; i < m->ntables; i++)
		if (m->tables[i].family == c->family &&
		    same(m->tables[i].name, c->table))
			m->tables[i].xt = true;
}

int fw_model_reduce(struct fw_model *m)
{
	if (m->reduced)
		return 0;
	for (size_t i = 0; i < m->nchains; i++) {
		struct fw_mchain *c = &m->chains[i];
		for (size_t j = 0; j < c->nraw; j++) {
			struct fw_mrule *mr;
			if (grow_array((void **)&c->rules, &c->cap, c->n + 1,
				       sizeof(*c->rules)) < 0)
				return -1;
			mr = &c->rules[c->n];
			memset(mr, 0, sizeof(*mr));
			mr->handle =
				nftnl_rule_is_set(c->raw[j], NFTNL_RULE_HANDLE)
					? nftnl_rule_get_u64(c->raw[j],
							     NFTNL_RULE_HANDLE)
					: 0;
			c->n++;
			for (int k = 0; k < FW_NPKT; k++) {
				mr->k[k] = reduce_one(m, c, c->raw[j], k);
				/* The target string belongs to the raw rule
				 * or set: keep a copy. */
				if (mr->k[k].target) {
					mr->targets[k] =
						strdup(mr->k[k].target);
					if (mr->targets[k] == NULL)
						return -1;
					mr->k[k].target = mr->targets[k];
				}
			}
			if (uses_xtables(c->raw[j]))
				mark_xt(m, c);
		}
		for (size_t j = 0; j < c->nraw; j++)
			nftnl_rule_free(c->raw[j]);
		c->nraw = 0;
	}
	m->reduced = true;
	return 0;
}
