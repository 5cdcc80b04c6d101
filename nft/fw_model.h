/*
 * fw_model: the other tables' chains, rules and small sets, from the
 * netlink messages of a ruleset dump, each rule reduced to what it does
 * to a relayed flow's packets (fw_model_int.h), for fw_judge.c.  Pure:
 * libnftnl parses, nothing here sends or receives.
 *
 * Must not: open sockets, include libev or daemon headers, log.
 */
#ifndef SOCKSGATE_FW_MODEL_H
#define SOCKSGATE_FW_MODEL_H

#include <stddef.h>

struct nlmsghdr;
struct fw_model;

/* The packets of a relayed flow a chain is judged for. */
enum fw_pkt {
	FW_PKT_NEW = 0, /* its first packet: ct state new, ct status dnat */
	FW_PKT_EST,	/* any later packet, either direction: established */
	FW_NPKT
};

/*
 * The model.  fw_model_add() takes the messages of ruleset dumps:
 * NFT_MSG_NEWTABLE, NEWCHAIN, NEWSET, NEWSETELEM and NEWRULE (any order;
 * others are ignored).  Returns 0, or -1 with errno (ENOMEM; EINVAL for
 * a message libnftnl cannot parse).
 */
struct fw_model *fw_model_new(void);
void fw_model_free(struct fw_model *m);
int fw_model_add(struct fw_model *m, const struct nlmsghdr *nlh);
/* Calls fn for each set whose elements the judgement can use (anonymous
 * sets: `ct state vmap { ... }`, `{ established, related }`), so that
 * the reader dumps their elements.  Returns how many. */
size_t fw_model_wanted_sets(const struct fw_model *m,
			    void (*fn)(void *arg, int family, const char *table,
				       const char *set),
			    void *arg);

#endif
