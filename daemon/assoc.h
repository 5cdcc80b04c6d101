/*
 * assoc: the table of TRANSPARENT associations and the N2 side of the
 * daemon: allocates ids (ct mark) and BND ports, and drives the kernel
 * back ends (nft/fw, conntrack/ct).  It keeps its own record of what it
 * installed and never reads the kernel's rules back.
 *
 * Requests are coalesced: opens and closes queued during one loop
 * iteration go to the kernel in one nftables transaction each, just
 * before the loop sleeps (ev_prepare).  Results come back through the
 * callbacks given to assoc_open().
 *
 * Teardown order: elements first, then conntrack entries (else a packet
 * in between would re-create a NATed entry).  The bound endpoint stays in
 * the guard set for a short quarantine, so late packets of the flow are
 * dropped silently instead of re-creating conntrack entries or drawing a
 * RST; then the port is released.
 */
#ifndef SOCKSGATE_ASSOC_H
#define SOCKSGATE_ASSOC_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cfg.h"

struct assoc;
struct assoc_table;

/* Why an association ended: (enum name, name in logs and stats). */
#define ASSOC_END_LIST(X)                                                      \
	X(ASSOC_END_N1_CLOSED, "n1-closed")                                    \
	X(ASSOC_END_TARGET_FIN, "target-fin") /* TCP: FIN or reset from DST */ \
	X(ASSOC_END_FLOW_END, "flow-end")     /* the conntrack entry went */   \
	X(ASSOC_END_IDLE, "idle")	      /* timeout association-idle */   \
	X(ASSOC_END_OPERATOR, "operator")     /* socksgate close ID */         \
	X(ASSOC_END_SHUTDOWN, "shutdown")                                      \
	X(ASSOC_END_POLICY, "policy") /* a reload no longer allows it */       \
	X(ASSOC_END_FAILED, "failed") /* setup failed; elements removed */     \
	X(ASSOC_END_SESSION_LOST, "session-process-lost") /* privsep */

#define ASSOC_END_ENUM(e, name) e,
enum assoc_end { ASSOC_END_LIST(ASSOC_END_ENUM) ASSOC_END_COUNT };
#undef ASSOC_END_ENUM

struct assoc_stats {
	uint64_t opened, setup_failures;
	uint64_t ended[ASSOC_END_COUNT];
	uint64_t event_overruns, resyncs, events;
	uint64_t conntrack_errors; /* teardown deletes that failed */
	uint64_t track_errors;	   /* event socket and dump errors */
	uint64_t dump_failures;	   /* a failed dump ends nothing */
	uint64_t orphans_deleted;  /* marked entries of no association */
	uint64_t kernel_retries;   /* element removals tried again */
	uint64_t unknown_outcomes; /* setups without an answer */
	/* nftables (read when the stats are asked for) */
	uint64_t nl_transactions, nl_errors, nl_unanswered, nl_stale;
	uint64_t dropped_packets, dropped_bytes; /* the guard's counter */
};

/* The daemon's record against the kernel's state (socksgate stats). */
struct assoc_audit {
	size_t pending, live, closing, quarantine;
	/* Elements the record says the kernel holds, per set
	 * (FW_SET_BOUND, ASSOC, DNAT, MARK), and what it holds. */
	uint64_t expected[4], kernel[4];
	bool kernel_read;   /* kernel[] is valid */
	bool consistent;    /* kernel[] == expected[] */
	size_t unconfirmed; /* removals not yet confirmed by the kernel */
};

/* A live association as `socksgate list` shows it. */
struct assoc_info {
	uint32_t id;
	uint64_t session_id;
	uint8_t proto;
	struct sockaddr_storage src, bnd, dst;
	double age;
	const char *state;
	uint64_t packets_orig, bytes_orig, packets_reply, bytes_reply;
};

struct assoc_cbs {
	/* Setup finished: rep is S5_REP_SUCCEEDED and bnd is set, or a
	 * failure code (the association is then already freed). */
	void (*ready)(void *arg, uint8_t rep, const struct sockaddr *bnd);
	/* The association ended on its own (not through assoc_close). */
	void (*ended)(void *arg, enum assoc_end why);
};

struct assoc_req {
	uint8_t proto;
	struct sockaddr_storage src;	/* S.ADDR:S.PORT */
	struct sockaddr_storage bnd;	/* BND.ADDR (port allocated here) */
	struct sockaddr_storage dst;	/* DST.ADDR:DST.PORT */
	struct sockaddr_storage client; /* N1 peer, for the comment */
	const char *user;
	uint64_t session_id;
};

/* Opens the back ends: first claims the nftables table, then purges
 * conntrack entries an earlier run left.  If nftables or conntrack are
 * unavailable the table still exists and assoc_table_available() is false
 * (TRANSPARENT is answered X'07'; the daemon keeps serving the other
 * commands).  Returns NULL when out of memory, or with *fatal set when the
 * daemon must not run: another live socksgated owns the table (nothing
 * was touched then). */
struct assoc_table *assoc_table_new(struct ev_loop *loop, const struct cfg *cfg,
				    bool *fatal);
/* First step of shutdown: drops the nftables table (closing its owning
 * socket) and purges our conntrack entries; later assoc_close() calls
 * only log and free. */
void assoc_table_shutdown(struct assoc_table *t);
/* Ends every association (reason shutdown) and closes the back ends. */
void assoc_table_free(struct assoc_table *t);
/* Applies a new configuration (snat mode). */
void assoc_table_reconfigure(struct assoc_table *t, const struct cfg *cfg);
bool assoc_table_available(const struct assoc_table *t);

/* Queues the setup of an association.  Returns it (pending), or NULL if
 * refused at once: *rep then says why (limits, no free port). */
struct assoc *assoc_open(struct assoc_table *t, const struct assoc_req *r,
			 const struct assoc_cbs *cbs, void *arg, uint8_t *rep);
/* Ends an association: no callback is called afterwards. */
void assoc_close(struct assoc *a, enum assoc_end why);
/* Ends association id for a reason of the server's (operator, policy):
 * like the kernel-decided ends, the owner's ended() callback runs.
 * Returns 0, or -1 if there is no live association with that id. */
int assoc_terminate_id(struct assoc_table *t, uint32_t id, enum assoc_end why);
/* Re-reads the counters of every flow from conntrack. */
void assoc_table_refresh(struct assoc_table *t);
/* Compares the record with the kernel's sets (reads them). */
void assoc_table_audit(struct assoc_table *t, struct assoc_audit *out);
/* What `socksgate list` shows of an association. */
void assoc_get_info(const struct assoc *a, struct assoc_info *ai);
/* Counters, with the back ends' (the guard's dropped counter is read
 * from the kernel). */
const struct assoc_stats *assoc_table_stats(struct assoc_table *t);
size_t assoc_table_count(const struct assoc_table *t);
uint32_t assoc_id(const struct assoc *a);
const char *assoc_end_str(enum assoc_end e);

#endif
