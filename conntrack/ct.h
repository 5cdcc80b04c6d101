/*
 * ct: socksgate's conntrack back end (libnetfilter_conntrack); the only
 * code that talks conntrack netlink.
 *
 * Why it exists: conntrack outlives nftables rules.  Deleting an
 * association's elements stops new flows, but an established flow keeps
 * its NAT in its conntrack entry; so teardown deletes the entry too (by
 * original tuple: S.ADDR:S.PORT -> BND.ADDR:BND.PORT, PTCL).  At setup, an
 * entry created by packets sent before the association existed would
 * bypass the new DNAT, so it is deleted as well.  At start, entries that
 * carry our mark from an earlier run are purged.
 *
 * Must not: include libev or daemon headers.
 */
#ifndef SOCKSGATE_CT_H
#define SOCKSGATE_CT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ct;

/* An original-direction tuple.  Addresses raw network order (4 bytes
 * used for IPv4); ports host order. */
struct ct_tuple {
	int family; /* AF_INET or AF_INET6 */
	uint8_t proto;
	uint8_t src[16];
	uint16_t sport;
	uint8_t dst[16];
	uint16_t dport;
};

struct ct *ct_open(char *err, size_t errlen);
void ct_close(struct ct *ct);
/* Deletes the entry whose original tuple is t.  Returns 1 if one was
 * deleted, 0 if there was none, -1 on another error (errno set). */
int ct_delete(struct ct *ct, const struct ct_tuple *t);
/* Deletes every entry with (mark & mask) == value.  Returns how many, or
 * -1 on error. */
int ct_purge_mark(struct ct *ct, uint32_t value, uint32_t mask);
/* Counts entries with (mark & mask) == value (tests, resync), -1 on error. */
int ct_count_mark(struct ct *ct, uint32_t value, uint32_t mask);

#endif
