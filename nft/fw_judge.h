/*
 * fw_judge: does the firewall let socksgate's relayed flows through?
 * Pure: a judgement of every forward base chain of the model of the
 * ruleset (fw_model.h).  No socket: fw_scan.c reads the kernel and feeds
 * the model; the unit tests feed it recorded dumps.
 *
 * Why: every base chain at a netfilter hook is its own stage, in any
 * table, and an accept ends only that chain.  A drop (or a reject) in any
 * other table's forward chain is final for a relayed flow whatever
 * socksgate's own table says; only a rule inside that chain accepting our
 * ct mark lets the flows through (docs/firewalls.md).
 *
 * How a chain is judged: for two packets of a relayed flow (its first
 * packet: ct state new, ct status dnat; and a later one of either
 * direction: established), the rules are walked in order, following
 * jumps and gotos.  A rule counts only when every match in it is
 * certainly true of such a packet whatever its interfaces, addresses or
 * ports (ct mark with our tag, ct state, ct status dnat, or no match at
 * all); a rule that depends on anything else is taken as not matching.
 * So the judgement follows the path a relayed flow takes when it matches
 * none of the firewall's own conditions: what happens to traffic the
 * firewall was not written for.  It finds a policy drop, a final jump to
 * a reject, and a rule accepting our mark placed before them; it does not
 * claim that a conditional drop (an interface, an address) spares our
 * flows.
 *
 * Must not: open sockets, include libev or daemon headers, log.
 */
#ifndef SOCKSGATE_FW_JUDGE_H
#define SOCKSGATE_FW_JUDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw_model.h"

/* What a forward base chain does to a relayed flow's packet. */
enum fw_fate {
	FW_FATE_PASS = 0, /* nothing stops it; the chain's policy accepts */
	FW_FATE_ACCEPTED, /* a rule accepts it (our mark, ct status dnat,
			   * ct state established...) */
	FW_FATE_DROPPED,  /* policy drop, or a drop or reject reached */
	FW_FATE_UNKNOWN,  /* queued to user space, a missing chain, too
			   * deep: cannot tell */
};

/* Whose chain it is: decides which fix to suggest. */
enum fw_kind {
	FW_KIND_NFT = 0,   /* a plain nftables table */
	FW_KIND_FW4,	   /* OpenWrt's fw4 (table inet fw4) */
	FW_KIND_FIREWALLD, /* table inet firewalld */
	FW_KIND_IPTABLES,  /* iptables-nft (xtables compat, FORWARD) */
	FW_KIND_DOCKER,	   /* iptables-nft with Docker's DOCKER-USER */
};

#define FW_NAME_MAX 64 /* names longer than this are cut (display) */
#define FW_WHY_MAX 200 /* the path to the verdict, for the log */
#define FW_FINDINGS_MAX 16

/* One forward base chain of another table. */
struct fw_finding {
	int family; /* NFPROTO_INET, _IPV4, _IPV6 */
	char table[FW_NAME_MAX], chain[FW_NAME_MAX];
	int32_t prio;
	bool policy_drop;
	enum fw_kind kind;
	enum fw_fate fate[FW_NPKT];
	char why[FW_NPKT][FW_WHY_MAX];
};

struct fw_report {
	struct fw_finding f[FW_FINDINGS_MAX]; /* forward base chains */
	size_t n;
	size_t more;	      /* chains beyond FW_FINDINGS_MAX, not judged */
	bool blocks[FW_NPKT]; /* some chain drops that packet */
	bool legacy[2];	      /* iptables-legacy filter tables loaded
			       * (IPv4, IPv6): not readable here */
	size_t tables, chains, rules; /* what the model held */
};

/* Judges every forward base chain of every table but ours (inet
 * socksgate) and dormant ones.  Fills *out (legacy: false; fw_scan
 * sets it).
 * Returns 0, or -1 with errno ENOMEM. */
int fw_judge(struct fw_model *m, struct fw_report *out);

/* The rule that lets relayed flows through finding f, as the command an
 * operator types (nft insert rule ... / iptables -I ...).  Returns the
 * length snprintf would write. */
int fw_judge_fix(const struct fw_finding *f, char *out, size_t cap);
/* Where that rule belongs so that it survives a reload of the firewall
 * (fw4's include directory, firewalld's setting, ...): one sentence. */
const char *fw_judge_keep(const struct fw_finding *f);
/* "inet", "ip", "ip6". */
const char *fw_judge_family(int family);
const char *fw_judge_fate_str(enum fw_fate f);

#endif
