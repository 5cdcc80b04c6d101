/*
 * assoc_int: the association table's internals, shared by assoc.c
 * (lifecycle, ports, batching) and assoc_track.c (conntrack events,
 * counters, ends decided by the kernel's view of the flows).  Not for
 * other modules: they use assoc.h.
 */
#ifndef SOCKSGATE_ASSOC_INT_H
#define SOCKSGATE_ASSOC_INT_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "assoc.h"
#include "ct.h"
#include "fw.h"

/* How long a released endpoint keeps dropping late packets, and how often
 * quarantines end and failed removals are tried again (unit tests shorten
 * both). */
#ifndef ASSOC_QUARANTINE_SECS
#define ASSOC_QUARANTINE_SECS 2.0
#endif
#ifndef ASSOC_SWEEP_SECS
#define ASSOC_SWEEP_SECS 0.5
#endif
#define ASSOC_ID_MAX 0xffffffu

/* (enum name, name in `socksgate list`) */
#define ASSOC_STATE_LIST(X)                                                    \
	X(ASSOC_PENDING, "pending")	  /* queued for installation */        \
	X(ASSOC_LIVE, "live")		  /* elements installed */             \
	X(ASSOC_CLOSING, "closing")	  /* queued for (retried) removal */   \
	X(ASSOC_QUARANTINE, "quarantine") /* relay removed, endpoint guarded   \
					   */

#define ASSOC_STATE_ENUM(e, name) e,
enum assoc_state { ASSOC_STATE_LIST(ASSOC_STATE_ENUM) ASSOC_STATE_COUNT };
#undef ASSOC_STATE_ENUM

/* Ports handed out on one BND.ADDR (one bit per port). */
struct port_pool {
	int family;
	uint8_t addr[16];
	uint8_t used[65536 / 8];
	uint32_t hint;
	struct port_pool *next;
};

struct assoc_list {
	struct assoc *head, *tail;
};

/* Byte and packet counts, each way (orig: client -> target). */
struct assoc_count {
	uint64_t packets_orig, bytes_orig, packets_reply, bytes_reply;
};

struct assoc {
	struct assoc_table *t;
	uint32_t id;
	enum assoc_state state;
	struct fw_flow flow;
	char *comment; /* until installed */
	struct assoc_cbs cbs;
	void *arg;
	uint64_t session_id;
	enum assoc_end end;
	ev_tstamp created, until;
	struct port_pool *pool;
	struct assoc *hnext;	   /* id hash chain */
	struct assoc *prev, *next; /* the one list it is on */
	struct assoc_list *list;
	bool warned; /* a failed removal was logged already */
	/* Tracking (assoc_track.c). */
	struct assoc_count done; /* flows of this association that ended */
	struct assoc_count cur;	 /* the live flow */
	ev_tstamp last_activity; /* last time the counters moved */
	uint32_t dump_gen;	 /* last resync that saw the flow */
	bool seen_flow;		 /* a conntrack entry existed */
};

struct assoc_table {
	struct ev_loop *loop;
	struct fw *fw;
	struct ct *ct;
	struct fw_snat snat; /* what the post chain does now */
	uint16_t port_lo, port_hi;
	unsigned sock_kinds; /* local socket kinds to trial-bind (assoc.c) */
	unsigned max;
	struct assoc **buckets;
	size_t nbuckets, count;
	uint32_t next_id;
	struct port_pool *pools;
	struct assoc_list pending_add, pending_del, quarantine;
	ev_prepare flush;
	ev_idle kick; /* see schedule_flush() */
	bool in_flush;
	ev_timer sweep; /* quarantine ends, removals tried again */
	bool shutting_down;
	/* Tracking (assoc_track.c). */
	struct ct_events *events;
	ev_io events_io;
	ev_timer track_timer; /* polling fallback, idle checks */
	ev_timer repair;      /* a failed dump or conntrack delete: again */
	bool polling;	      /* no conntrack events: poll by dumps */
	uint32_t dump_gen;
	bool close_on_target_fin;
	bool close_on_flow_end[256];
	unsigned idle_timeout;
	struct assoc_stats stats;
};

/* assoc.c */
struct assoc *assoc_find(struct assoc_table *t, uint32_t id);
void assoc_flow_tuple(const struct fw_flow *f, struct ct_tuple *ct);
/* Ends a live association for a reason found by the server or the kernel
 * and tells its owner (ended callback). */
void assoc_terminate(struct assoc *a, enum assoc_end why);

/* assoc_track.c */
/* Initialises the tracking timers (before any reconfigure). */
void assoc_track_init(struct assoc_table *t);
int assoc_track_open(struct assoc_table *t, const struct cfg *cfg);
void assoc_track_reconfigure(struct assoc_table *t, const struct cfg *cfg);
void assoc_track_close(struct assoc_table *t);
/* Adds what a conntrack entry read at teardown says to the counters. */
void assoc_track_final(struct assoc *a, const struct ct_flow *f);
/* Re-reads every flow of ours (resync); ends the associations whose flow
 * is gone or closed, and deletes marked entries that belong to no live
 * association (orphans).  If the dump fails nothing is ended (a flow
 * missing from a failed dump has not ended); it is counted and tried
 * again in a second.  Returns -1 if the dump failed. */
int assoc_track_resync(struct assoc_table *t);
/* Asks for a resync soon (a conntrack delete failed: the dump finds the
 * entry again as an orphan). */
void assoc_track_repair_soon(struct assoc_table *t);

#endif
