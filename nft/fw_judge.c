/*
 * fw_judge: see fw_judge.h.  Walks each forward base chain of the model
 * for a relayed flow's packets, following jumps and gotos, and says what
 * happens to them and which rule would let them through.
 *
 * Must not: open sockets, include libev or daemon headers, log.
 */
#include "fw_judge.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <string.h>

#include "fw_build.h"
#include "fw_model_int.h"

/* nftables refuses deeper jump stacks: beyond this, the ruleset cannot
 * be what the kernel runs. */
#define WALK_DEPTH 16

enum walk_end {
	W_FALLTHROUGH = 0, /* end of chain (or return): back to the caller */
	W_ACCEPT,
	W_DROP,
	W_UNKNOWN,
};

struct walk {
	const struct fw_model *m;
	int pkt;
	char *why;
	size_t cap;
	/* The path: chain and rule handle at each depth. */
	const struct fw_mchain *stack[WALK_DEPTH + 1];
	uint64_t handles[WALK_DEPTH + 1];
	int depth;
};

const char *fw_judge_family(int family)
{
	switch (family) {
	case NFPROTO_INET:
		return "inet";
	case NFPROTO_IPV4:
		return "ip";
	case NFPROTO_IPV6:
		return "ip6";
	case NFPROTO_BRIDGE:
		return "bridge";
	case NFPROTO_NETDEV:
		return "netdev";
	case NFPROTO_ARP:
		return "arp";
	default:
		return "?";
	}
}

const char *fw_judge_fate_str(enum fw_fate f)
{
	switch (f) {
	case FW_FATE_PASS:
		return "passes";
	case FW_FATE_ACCEPTED:
		return "accepted";
	case FW_FATE_DROPPED:
		return "dropped";
	case FW_FATE_UNKNOWN:
		return "unknown";
	}
	return "?";
}

static const char *verdict_str(uint8_t v)
{
	switch (v) {
	case FWV_ACCEPT:
		return "accept";
	case FWV_DROP:
		return "drop";
	case FWV_REJECT:
		return "reject";
	case FWV_QUEUE:
		return "queue";
	default:
		return "?";
	}
}

/* "forward [handle 7] -> handle_reject [handle 12]: reject" */
static void note(struct walk *w, const char *what, const char *by)
{
	size_t off = 0;

	for (int i = 0; i <= w->depth && off < w->cap; i++) {
		int n = snprintf(w->why + off, w->cap - off,
				 "%s%s [handle %llu]", i ? " -> " : "",
				 w->stack[i]->name,
				 (unsigned long long)w->handles[i]);
		if (n < 0)
			return;
		off += (size_t)n;
	}
	if (off < w->cap)
		snprintf(w->why + off, w->cap - off, ": %s%s%s%s", what,
			 by ? " (" : "", by ? by : "", by ? ")" : "");
}

static enum walk_end walk_chain(struct walk *w, const struct fw_mchain *c);

/* A jump or goto from the rule on top of the stack to chain `name`. */
static enum walk_end walk_to(struct walk *w, const struct fw_mchain *from,
			     const char *name)
{
	const struct fw_mchain *to =
		name ? fw_model_chain(w->m, from->family, from->table, name)
		     : NULL;
	enum walk_end r;

	if (to == NULL) {
		note(w, "jump to a chain not in the dump", NULL);
		return W_UNKNOWN;
	}
	if (w->depth >= WALK_DEPTH) {
		note(w, "jumps nested too deep", NULL);
		return W_UNKNOWN;
	}
	w->depth++;
	r = walk_chain(w, to);
	w->depth--;
	return r;
}

static enum walk_end walk_chain(struct walk *w, const struct fw_mchain *c)
{
	w->stack[w->depth] = c;
	for (size_t i = 0; i < c->n; i++) {
		const struct fw_step *st = &c->rules[i].k[w->pkt];
		enum walk_end r;

		/* Only rules certainly matching a relayed packet whatever
		 * its addresses and interfaces (fw_judge.h). */
		if (st->cond != FW_ALWAYS)
			continue;
		w->handles[w->depth] = c->rules[i].handle;
		switch (st->verdict) {
		case FWV_NONE:
			continue;
		case FWV_ACCEPT:
			note(w, "accept", st->by);
			return W_ACCEPT;
		case FWV_DROP:
		case FWV_REJECT:
			note(w, verdict_str(st->verdict), st->by);
			return W_DROP;
		case FWV_QUEUE:
			note(w, "queued to user space", st->by);
			return W_UNKNOWN;
		case FWV_RETURN:
			return W_FALLTHROUGH;
		case FWV_JUMP:
			r = walk_to(w, c, st->target);
			w->stack[w->depth] = c;
			if (r != W_FALLTHROUGH)
				return r;
			continue;
		case FWV_GOTO:
			/* The target's end returns to our caller. */
			return walk_to(w, c, st->target);
		default:
			continue;
		}
	}
	return W_FALLTHROUGH;
}

static enum fw_kind kind_of(const struct fw_model *m, const struct fw_mchain *c)
{
	const struct fw_mtable *t = fw_model_table(m, c->family, c->table);

	if (c->family == NFPROTO_INET && strcmp(c->table, "fw4") == 0)
		return FW_KIND_FW4;
	if (c->family == NFPROTO_INET && strncmp(c->table, "firewalld", 9) == 0)
		return FW_KIND_FIREWALLD;
	if ((c->family == NFPROTO_IPV4 || c->family == NFPROTO_IPV6) &&
	    ((t && t->xt) || strcmp(c->name, "FORWARD") == 0)) {
		if (fw_model_chain(m, c->family, c->table, "DOCKER-USER"))
			return FW_KIND_DOCKER;
		return FW_KIND_IPTABLES;
	}
	return FW_KIND_NFT;
}

static void judge_chain(const struct fw_model *m, const struct fw_mchain *c,
			struct fw_finding *f)
{
	memset(f, 0, sizeof(*f));
	f->family = c->family;
	snprintf(f->table, sizeof(f->table), "%s", c->table);
	snprintf(f->chain, sizeof(f->chain), "%s", c->name);
	f->prio = c->prio;
	f->policy_drop = c->policy == NF_DROP;
	f->kind = kind_of(m, c);
	for (int k = 0; k < FW_NPKT; k++) {
		struct walk w = {.m = m,
				 .pkt = k,
				 .why = f->why[k],
				 .cap = sizeof(f->why[k])};
		switch (walk_chain(&w, c)) {
		case W_FALLTHROUGH:
			if (f->policy_drop) {
				f->fate[k] = FW_FATE_DROPPED;
				snprintf(f->why[k], sizeof(f->why[k]),
					 "%s: policy drop", c->name);
			} else {
				f->fate[k] = FW_FATE_PASS;
				snprintf(f->why[k], sizeof(f->why[k]),
					 "%s: policy accept", c->name);
			}
			break;
		case W_ACCEPT:
			f->fate[k] = FW_FATE_ACCEPTED;
			break;
		case W_DROP:
			f->fate[k] = FW_FATE_DROPPED;
			break;
		case W_UNKNOWN:
			f->fate[k] = FW_FATE_UNKNOWN;
			break;
		}
	}
}

static bool ours(const struct fw_mchain *c)
{
	return c->family == NFPROTO_INET && strcmp(c->table, FW_TABLE) == 0;
}

int fw_judge(struct fw_model *m, struct fw_report *out)
{
	memset(out, 0, sizeof(*out));
	if (fw_model_reduce(m) < 0) {
		errno = ENOMEM;
		return -1;
	}
	out->tables = m->ntables;
	out->chains = m->nchains;
	out->rules = m->nrules;
	for (size_t i = 0; i < m->nchains; i++) {
		const struct fw_mchain *c = &m->chains[i];
		const struct fw_mtable *t =
			fw_model_table(m, c->family, c->table);

		if (!c->base || c->hook != NF_INET_FORWARD || ours(c) ||
		    (t && (t->flags & NFT_TABLE_F_DORMANT)) ||
		    (c->family != NFPROTO_INET && c->family != NFPROTO_IPV4 &&
		     c->family != NFPROTO_IPV6))
			continue;
		if (out->n == FW_FINDINGS_MAX) {
			out->more++;
			continue;
		}
		judge_chain(m, c, &out->f[out->n]);
		for (int k = 0; k < FW_NPKT; k++)
			if (out->f[out->n].fate[k] == FW_FATE_DROPPED)
				out->blocks[k] = true;
		out->n++;
	}
	return 0;
}

#define MARK_NFT "ct mark and 0xff000000 == 0x5a000000 accept"
#define MARK_XT "-m connmark --mark 0x5a000000/0xff000000 -j ACCEPT"

int fw_judge_fix(const struct fw_finding *f, char *out, size_t cap)
{
	const char *ipt = f->family == NFPROTO_IPV6 ? "ip6tables" : "iptables";

	switch (f->kind) {
	case FW_KIND_DOCKER:
		return snprintf(out, cap, "%s -I DOCKER-USER 1 " MARK_XT, ipt);
	case FW_KIND_IPTABLES:
		if (strcmp(f->table, "filter") == 0)
			return snprintf(out, cap, "%s -I %s 1 " MARK_XT, ipt,
					f->chain);
		return snprintf(out, cap, "%s -t %s -I %s 1 " MARK_XT, ipt,
				f->table, f->chain);
	default:
		return snprintf(out, cap, "nft insert rule %s %s %s " MARK_NFT,
				fw_judge_family(f->family), f->table, f->chain);
	}
}

const char *fw_judge_keep(const struct fw_finding *f)
{
	switch (f->kind) {
	case FW_KIND_FW4:
		return "on OpenWrt install socksgate's forward include as "
		       "/usr/share/nftables.d/chain-pre/forward/"
		       "30-socksgate.nft and run `fw4 reload`";
	case FW_KIND_FIREWALLD:
		return "firewalld accepts DNAT'd flows, which relayed flows "
		       "are, unless StrictForwardPorts=yes: set "
		       "StrictForwardPorts=no in /etc/firewalld/firewalld.conf "
		       "(firewalld cannot match a ct mark)";
	case FW_KIND_DOCKER:
		return "Docker leaves DOCKER-USER to you: save it with the "
		       "host's iptables rules (socksgate's iptables script "
		       "adds it at boot)";
	case FW_KIND_IPTABLES:
		return "save it with the host's iptables rules "
		       "(iptables-save, netfilter-persistent)";
	default:
		return "add the same rule at the start of that chain in the "
		       "file that loads it (e.g. include socksgate's forward "
		       "include there)";
	}
}
