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

/* A conntrack entry as socksgate needs it (from an event or a dump). */
enum ct_event_type {
	CT_EV_NEW = 1,
	CT_EV_UPDATE,
	CT_EV_DESTROY,
	CT_EV_DUMP, /* from a dump, not an event */
};

struct ct_flow {
	enum ct_event_type type;
	struct ct_tuple orig, reply;
	uint32_t mark;
	uint8_t tcp_state;	 /* TCP_CONNTRACK_*; 0 when not TCP */
	uint8_t tcp_flags_orig;	 /* IP_CT_TCP_FLAG_* seen from the client */
	uint8_t tcp_flags_reply; /* ... and from the target */
	bool has_counters;	 /* nf_conntrack_acct was on */
	uint64_t packets_orig, bytes_orig, packets_reply, bytes_reply;
};

typedef void (*ct_flow_cb)(void *arg, const struct ct_flow *f);

struct nf_conntrack;
/* Pure conversion of a libnetfilter_conntrack entry.  Returns 0, or -1
 * for an entry without an IPv4/IPv6 tuple. */
int ct_flow_from_entry(const struct nf_conntrack *c, enum ct_event_type t,
		       struct ct_flow *out);
/* True when the target (reply direction) has closed a TCP flow: it sent a
 * FIN (it initiated the close, or answered the client's FIN), or the flow
 * was reset.  Pure. */
bool ct_flow_target_closed(const struct ct_flow *f);

/* What a flow event means for its association, given the policy. */
enum ct_verdict {
	CT_KEEP = 0,
	CT_END_TARGET_CLOSED, /* TCP: FIN from the target, or a reset */
	CT_END_FLOW_GONE,     /* the entry was destroyed */
};
/* Pure: close_on_target_fin and close_on_flow_end (for this flow's
 * protocol) are the configuration's answers. */
enum ct_verdict ct_flow_verdict(const struct ct_flow *f,
				bool close_on_target_fin,
				bool close_on_flow_end);

struct ct *ct_open(char *err, size_t errlen);
void ct_close(struct ct *ct);
/* Deletes the entry whose original tuple is t.  Returns 1 if one was
 * deleted, 0 if there was none, -1 on another error (errno set). */
int ct_delete(struct ct *ct, const struct ct_tuple *t);
/* Deletes every entry with (mark & mask) == value.  Returns how many, or
 * -1 on error. */
int ct_purge_mark(struct ct *ct, uint32_t value, uint32_t mask);
/* Calls cb for every entry with (mark & mask) == value (type CT_EV_DUMP).
 * Returns how many, or -1 on error. */
int ct_dump_mark(struct ct *ct, uint32_t value, uint32_t mask, ct_flow_cb cb,
		 void *arg);
/* Reads the entry of tuple t into *out (with its counters), then deletes
 * it.  Returns 1 if one was deleted, 0 if there was none, -1 on error. */
int ct_take(struct ct *ct, const struct ct_tuple *t, struct ct_flow *out);

/* Kernel settings of the current network namespace. */
/* net.netfilter.nf_conntrack_events: 0 off, 1 on, 2 on when listened to;
 * -1 if unreadable. */
int ct_events_setting(void);
/* Turns on net.netfilter.nf_conntrack_acct (byte and packet counters of
 * new entries).  Returns 0 or -1 with errno. */
int ct_enable_acct(void);

/* Event subscription: NEW, UPDATE and DESTROY of entries whose mark
 * matches, filtered in the kernel (BPF on the socket). */
struct ct_events;
#define CT_OVERRUN 1
struct ct_events *ct_events_open(uint32_t value, uint32_t mask, int rcvbuf,
				 char *err, size_t errlen);
void ct_events_close(struct ct_events *e);
int ct_events_fd(const struct ct_events *e);
/* Reads every pending event and calls cb for each.  Returns 0; CT_OVERRUN
 * if the kernel dropped events (the receive buffer is then doubled, up to
 * a limit, and the caller must resynchronise from ct_dump_mark); -1 on
 * another error. */
int ct_events_process(struct ct_events *e, ct_flow_cb cb, void *arg);
/* Current receive buffer size in bytes. */
int ct_events_rcvbuf(const struct ct_events *e);

#endif
