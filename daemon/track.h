/*
 * track: what the kernel's conntrack says about the associations' flows.
 * Conntrack events (filtered in the kernel to our ct mark) update byte and
 * packet counters and end associations when configured:
 *   close-on-target-fin       TCP: the target sent FIN, or a reset
 *   close-on-flow-end         the flow's conntrack entry was destroyed
 *   timeout association-idle  no packet for that long (periodic dumps)
 * On an event overrun (ENOBUFS) the state is rebuilt from a dump, so no
 * association keeps a stale state or misses its end.  Without conntrack
 * events (nf_conntrack_events = 0) the same dump runs every second.  A
 * dump that fails ends nothing; dumps also delete marked entries that no
 * live association owns (orphans).  New associations are watched for a
 * minute for flows something after our NAT drops (track_stall), each
 * judged once.
 *
 * One owner per state: this module owns the event socket, its timers, and
 * the per-flow tracking state (struct track_flow, embedded in each
 * association but read and written only here).  It knows nothing of the
 * association table: it asks through callbacks (lookup, each, ended).
 */
#ifndef SOCKSGATE_TRACK_H
#define SOCKSGATE_TRACK_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"
#include "ct.h"

struct track;

/* Why the kernel's view ends an association. */
enum track_end {
	TRACK_END_TARGET_FIN = 0,
	TRACK_END_FLOW_END,
	TRACK_END_IDLE,
};

/* Byte and packet counts, each way (orig: client -> target). */
struct track_count {
	uint64_t packets_orig, bytes_orig, packets_reply, bytes_reply;
};

/* Per-association tracking state; only track.c touches the fields. */
struct track_flow {
	struct track_count done; /* flows of this association that ended */
	struct track_count cur;	 /* the live flow */
	ev_tstamp last_activity; /* last time the counters moved */
	uint32_t dump_gen;	 /* last dump that saw the flow */
	bool seen_flow;		 /* a conntrack entry existed */
	/* Is something after our NAT dropping the flow (track_stall)? */
	bool ever_seen;	    /* some conntrack entry of it was seen */
	bool stall_done;    /* judged (or too old to watch): no more */
	uint8_t tcp_state;  /* TCP_CONNTRACK_* of the live flow (0: none) */
	ev_tstamp born;	    /* when tracking began */
	ev_tstamp seen_at;  /* when a conntrack entry was first seen */
	ev_tstamp nat_seen; /* when NATed packets without a flow were
			     * first noticed (0: not yet) */
};

/* How a relayed flow looks dropped by something after our NAT (a forward
 * firewall: docs/firewalls.md). */
enum track_stall {
	/* Our nat chain handled packets of the association, yet conntrack
	 * kept no entry: they were dropped before the kernel confirmed the
	 * flow (a forward chain's drop or reject, or no route to DST). */
	TRACK_STALL_NO_FLOW = 0,
	/* TCP: the target answered the SYN (conntrack saw its SYN-ACK) but
	 * seconds later the client still has not completed the handshake:
	 * the answer was dropped on its way back, after conntrack counted
	 * it (a forward chain dropping established packets).  Conntrack
	 * counts a packet before any filter chain runs, so byte and packet
	 * counters cannot show a dropped reply; this state can. */
	TRACK_STALL_HALF_OPEN,
};

struct track_stats {
	uint64_t events, event_overruns, resyncs;
	uint64_t errors;	  /* event socket and dump errors */
	uint64_t dump_failures;	  /* a failed dump ends nothing */
	uint64_t orphans_deleted; /* marked entries of no association */
};

/* What lookup() says of the association an entry's mark names. */
enum track_owner {
	TRACK_OWNER_LIVE = 0, /* live: *tf and *key are set */
	TRACK_OWNER_BUSY,     /* being set up or removed: leave the entry */
	TRACK_OWNER_NONE,     /* none, or its relay is gone: an orphan */
};

struct track_cbs {
	enum track_owner (*lookup)(void *arg, uint32_t id,
				   struct track_flow **tf,
				   struct ct_tuple *key);
	/* Calls fn for every live association. */
	void (*each)(void *arg,
		     void (*fn)(void *ctx, uint32_t id, uint8_t proto,
				struct track_flow *tf),
		     void *ctx);
	/* The kernel's view ends association id (it is live). */
	void (*ended)(void *arg, uint32_t id, enum track_end why);
	/* Packets association id's NAT handled so far (its dnat element's
	 * counter); 0, or -1 if unknown. */
	int (*nat_packets)(void *arg, uint32_t id, uint64_t *packets);
	/* Association id looks dropped after our NAT (once per
	 * association); packets: what nat_packets said (NO_FLOW). */
	void (*stalled)(void *arg, uint32_t id, enum track_stall why,
			uint64_t packets);
};

/* ct: the conntrack query handle (owned by the caller). */
struct track *track_new(struct ev_loop *loop, struct ct *ct,
			const struct track_cbs *cbs, void *arg);
/* Subscribes to events (or falls back to polling) and applies cfg. */
void track_start(struct track *tr, const struct cfg *cfg);
void track_reconfigure(struct track *tr, const struct cfg *cfg);
/* Stops events and timers (shutdown); track_free() after. */
void track_stop(struct track *tr);
void track_free(struct track *tr);

/* A new association's tracking state. */
void track_flow_init(struct track *tr, struct track_flow *tf);
/* Its counters: ended flows plus the live one. */
void track_flow_counts(const struct track_flow *tf, struct track_count *out);
/* Adds what the entry read at teardown (key's, if any) says. */
void track_flow_final(struct track_flow *tf, const struct ct_tuple *key,
		      const struct ct_flow *f);

/* Re-reads every flow's counters (list, shutdown); ends nothing. */
void track_refresh(struct track *tr);
/* Re-reads every flow; ends the associations whose flow is gone or
 * closed, or idle; deletes orphans.  A failed dump ends nothing: it is
 * counted and tried again in a second.  Returns 0, or -1 if it failed. */
int track_resync(struct track *tr);
/* Asks for a resync soon (a conntrack delete failed at teardown: the
 * dump finds the entry again as an orphan). */
void track_repair_soon(struct track *tr);
const struct track_stats *track_get_stats(const struct track *tr);

#endif
