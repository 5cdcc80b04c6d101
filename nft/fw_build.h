/*
 * fw_build: builds the libnftnl objects of socksgate's nftables table.
 * Pure: objects in memory, no socket (fw.c sends them).  Unit tests
 * compare the rules against golden expression listings.
 *
 * The table `inet socksgate` (flags owner) holds, per family F in {4, 6}:
 *   set boundF  BND.ADDR . BND.PORT                    (endpoints we own)
 *   set assocF  S.ADDR . PTCL . S.PORT . BND.ADDR . BND.PORT
 *   map dnatF   assoc key : DST.ADDR . DST.PORT     (a counter per element)
 *   map markF   assoc key : mark
 * counter dropped, and three base chains:
 *   guard (filter prerouting -150): our ct mark -> accept (flows that
 *         passed already); to a bound endpoint but conntrack state invalid
 *         or untracked (it would not be NATed) -> count, drop; to a bound
 *         endpoint but not an association's exact key -> count, drop
 *         (silently: no RST/ICMP)
 *   pre   (nat prerouting dstnat): ct mark from markF, dnat from dnatF
 *   post  (nat postrouting srcnat): our ct mark -> masquerade | snat | -
 * Per-packet cost is a fixed number of hash lookups whatever the number of
 * associations.
 */
#ifndef SOCKSGATE_FW_BUILD_H
#define SOCKSGATE_FW_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nftnl_table;
struct nftnl_set;
struct nftnl_chain;
struct nftnl_rule;
struct nftnl_obj;

#define FW_TABLE "socksgate"
#define FW_COUNTER_DROPPED "dropped"
#define FW_COMMENT_MAX 128
/* ct mark layout: high byte tags our flows, low 24 bits the association. */
#define FW_MARK_TAG 0x5a000000u
#define FW_MARK_MASK 0xff000000u

enum fw_set_kind { FW_SET_BOUND = 0, FW_SET_ASSOC, FW_SET_DNAT, FW_SET_MARK };
#define FW_NSETS 4

enum fw_chain_kind { FW_CHAIN_GUARD = 0, FW_CHAIN_PRE, FW_CHAIN_POST };

/* One association as the kernel sees it.  Addresses are raw network-order
 * bytes (4 used for IPv4); ports are in host order. */
struct fw_flow {
	int family; /* AF_INET or AF_INET6 */
	uint8_t proto;
	uint8_t saddr[16];
	uint16_t sport;
	uint8_t baddr[16];
	uint16_t bport;
	uint8_t daddr[16];
	uint16_t dport;
	uint32_t mark;
	/* Shown by nft list; only read while elements are added (may be
	 * NULL; at most FW_COMMENT_MAX - 1 bytes are used). */
	const char *comment;
};

enum fw_snat_mode { FW_SNAT_MASQUERADE = 0, FW_SNAT_ADDRESS, FW_SNAT_NONE };

struct fw_snat {
	enum fw_snat_mode mode;
	bool has4, has6; /* FW_SNAT_ADDRESS: which families get snat */
	uint8_t addr4[4];
	uint8_t addr6[16];
};

/* Name of a set, e.g. "dnat6". */
const char *fw_set_name(enum fw_set_kind k, int family);
/* Set id used to reference a set created in the same batch. */
uint32_t fw_set_id(enum fw_set_kind k, int family);

struct nftnl_table *fw_build_table(bool owner);
struct nftnl_obj *fw_build_counter(void);
struct nftnl_set *fw_build_set(enum fw_set_kind k, int family);
struct nftnl_chain *fw_build_chain(enum fw_chain_kind k);
/* The rules of a chain for one family (0..FW_MAX_RULES; out must have
 * room for FW_MAX_RULES); returns how many. */
#define FW_MAX_RULES 3
size_t fw_build_rules(enum fw_chain_kind k, int family,
		      const struct fw_snat *snat, struct nftnl_rule **out,
		      size_t cap);
/* A set carrying the one element of flow f for set k (key, data and the
 * comment).  The caller sends it with NEWSETELEM or DELSETELEM. */
struct nftnl_set *fw_build_elem(enum fw_set_kind k, const struct fw_flow *f);
/* The same with the key only (no data, no comment): to ask the kernel
 * for one element (GETSETELEM). */
struct nftnl_set *fw_build_elem_key(enum fw_set_kind k,
				    const struct fw_flow *f);

#endif
