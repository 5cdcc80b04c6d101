/*
 * fw_model_int: internals of the firewall model, for fw_model.c and
 * fw_judge.c only (others use fw_model.h).  Each rule is reduced, per
 * packet kind (enum fw_pkt), to whether it certainly, maybe or never
 * matches a relayed flow's packet and what it then does.
 */
#ifndef SOCKSGATE_FW_MODEL_INT_H
#define SOCKSGATE_FW_MODEL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw_model.h"

struct nftnl_rule;

enum fw_cond { FW_NEVER = 0, FW_MAYBE, FW_ALWAYS };

enum fw_verdict {
	FWV_NONE = 0, /* no verdict: the next rule */
	FWV_ACCEPT,
	FWV_DROP,
	FWV_REJECT,
	FWV_JUMP,
	FWV_GOTO,
	FWV_RETURN,
	FWV_QUEUE, /* to user space (queue, NFQUEUE): unknown */
};

/* What one rule does to one kind of packet. */
struct fw_step {
	uint8_t cond;	    /* enum fw_cond */
	uint8_t verdict;    /* enum fw_verdict, when cond != FW_NEVER */
	const char *target; /* chain of a jump/goto (owned by the rule) */
	const char *by;	    /* what decided it: "ct mark", "ct state"... */
};

struct fw_mrule {
	uint64_t handle;
	struct fw_step k[FW_NPKT];
	char *targets[FW_NPKT];
};

struct fw_mchain {
	int family;
	char *table, *name;
	bool base;
	uint32_t hook;
	int32_t prio;
	uint32_t policy; /* NF_ACCEPT, NF_DROP */
	struct fw_mrule *rules;
	size_t n, cap;
	/* Parsed rules waiting to be reduced (once the sets are known). */
	struct nftnl_rule **raw;
	size_t nraw, rawcap;
};

struct fw_melem {
	uint8_t key[16];
	uint8_t klen;
	int verdict; /* vmaps: NF_ACCEPT, NF_DROP, NFT_JUMP, ... */
	char *chain; /* vmaps: jump/goto target */
};

struct fw_mset {
	int family;
	char *table, *name;
	uint32_t flags, klen;
	bool loaded;	/* its elements were dumped */
	bool truncated; /* more than FW_SET_ELEMS_MAX: unusable */
	struct fw_melem *e;
	size_t n, cap;
};

struct fw_mtable {
	int family;
	char *name;
	uint32_t flags;
	bool xt; /* iptables-nft: rules with xtables compat expressions */
};

struct fw_model {
	struct fw_mtable *tables;
	size_t ntables, tcap;
	struct fw_mchain *chains;
	size_t nchains, ccap;
	struct fw_mset *sets;
	size_t nsets, scap;
	size_t nrules;
	bool reduced;
};

/* Only small sets are read: a ct state map has a handful of elements. */
#define FW_SET_ELEMS_MAX 256

/* Reduces every parsed rule (once).  Returns 0 or -1 (ENOMEM). */
int fw_model_reduce(struct fw_model *m);
const struct fw_mtable *fw_model_table(const struct fw_model *m, int family,
				       const char *name);
const struct fw_mchain *fw_model_chain(const struct fw_model *m, int family,
				       const char *table, const char *name);

#endif
