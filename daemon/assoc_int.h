/*
 * assoc_int: the association table's internals, for assoc.c and its unit
 * test only; other modules use assoc.h.  Flow tracking (conntrack events,
 * counters, ends decided by the kernel's view) is its own module, track.h,
 * which the table drives one way through callbacks.
 */
#ifndef SOCKSGATE_ASSOC_INT_H
#define SOCKSGATE_ASSOC_INT_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "assoc.h"
#include "ct.h"
#include "fw.h"
#include "track.h"

struct fwcheck;

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

/* (enum name, name in `socksgate list`):
 *   pending     queued for installation
 *   installing  in the transaction being sent; a close asked for now is
 *               noted and carried out once the kernel has answered
 *   live        elements installed
 *   closing     queued for removal (again, until the kernel confirms)
 *   quarantine  relay removed, endpoint still guarded */
#define ASSOC_STATE_LIST(X)                                                    \
	X(ASSOC_PENDING, "pending")                                            \
	X(ASSOC_INSTALLING, "installing")                                      \
	X(ASSOC_LIVE, "live")                                                  \
	X(ASSOC_CLOSING, "closing")                                            \
	X(ASSOC_QUARANTINE, "quarantine")

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
	bool warned;	      /* a failed removal was logged already */
	bool close_asked;     /* INSTALLING: the owner closed it meanwhile */
	struct track_flow tf; /* owned by track.c */
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
	struct track *track; /* NULL without conntrack */
	struct fwcheck *fwc; /* the firewall check; NULL without nftables */
	struct assoc_stats stats;
};

struct assoc *assoc_find(struct assoc_table *t, uint32_t id);
/* The original-direction conntrack tuple of a flow: S -> BND. */
void assoc_flow_tuple(const struct fw_flow *f, struct ct_tuple *ct);

#endif
