/*
 * fw: socksgate's relay back end on nftables; the only code that talks
 * nftables netlink.  One long-lived netlink socket (closing one costs
 * ~14 ms in the kernel, and it owns the table: NFT_TABLE_F_OWNER makes the
 * kernel delete the table when the socket closes, so a crash or kill -9
 * leaves no rule behind).
 *
 * Every change is one batch (a transaction: all or nothing).  Every
 * message asks for an ACK; errors are mapped back to the message, and so
 * to the flow, by sequence number, with the kernel's extended-ack text.
 * Transactions complete inside sendmsg(), so reading the ACKs right after
 * does not wait on anything but the kernel's own work.  Whatever ends a
 * transaction early (a refusal, a timeout, a receive error such as
 * ENOBUFS), the socket is drained before the next one, and answers whose
 * sequence number belongs to an earlier transaction are dropped: a stale
 * ACK never fails the next batch (as nftables' mnl_batch_talk()).
 *
 * Must not: include libev or daemon headers.
 */
#ifndef SOCKSGATE_FW_H
#define SOCKSGATE_FW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw_build.h"

struct fw;

/* Which elements of a flow an operation touches. */
#define FW_ELEM_BOUND 0x1 /* the endpoint (bound set): the guard drops */
#define FW_ELEM_RELAY 0x2 /* assoc, dnat and mark: the relay itself */
#define FW_ELEM_ALL (FW_ELEM_BOUND | FW_ELEM_RELAY)

/* Flows per transaction: keeps one batch well under the socket buffers;
 * larger requests are split (each part still atomic). */
#define FW_CHUNK 256

struct fw_stats {
	uint64_t transactions;
	uint64_t errors;     /* messages the kernel refused */
	uint64_t unanswered; /* transactions whose outcome stayed unknown */
	uint64_t stale_acks; /* answers to an earlier transaction, dropped */
	uint64_t elements_added, elements_deleted;
};

/* What happened to one flow's elements in fw_add() or fw_del(). */
enum fw_result {
	FW_DONE = 0, /* added (fw_add) / gone, deleted now or before (fw_del) */
	FW_REFUSED,  /* the kernel refused this flow's message: nothing of its
		      * transaction was applied (errnos[i] says why) */
	FW_NOT_DONE, /* its transaction was refused because of another flow,
		      * or as a whole: nothing applied, safe to try again */
	FW_UNKNOWN,  /* no answer (timeout, lost ACKs): the transaction may
		      * or may not have been applied */
};

/* Why fw_open() failed. */
enum fw_open_error {
	FW_OPEN_UNAVAILABLE = 1, /* no nftables (kernel, module, netlink) */
	FW_OPEN_NO_PRIVILEGE,	 /* no CAP_NET_ADMIN */
	FW_OPEN_OWNED,		 /* another live process owns the table */
};

struct fw_open_opts {
	bool owner;	      /* NFT_TABLE_F_OWNER: the kernel drops the table
			       * when our socket closes */
	uint32_t set_size;    /* each set's size (kernel refuses beyond);
			       * 0: unbounded */
	unsigned ack_wait_ms; /* how long to wait for a transaction's ACKs;
			       * 0: 2000 */
	uint32_t first_seq;   /* first sequence number; 0: the time (tests
			       * start near 2^32 to cross the wrap) */
};

/*
 * Opens the socket and claims the table in one transaction that first
 * deletes a leftover `inet socksgate` (from a run that did not use the
 * owner flag, or an administrator's copy).  The kernel refuses the whole
 * transaction if another live process owns the table: nothing is touched
 * then.  Returns NULL with *why and err set.
 */
struct fw *fw_open(const struct fw_snat *snat, const struct fw_open_opts *o,
		   enum fw_open_error *why, char *err, size_t errlen);
/* Closes the socket; with the owner flag the kernel drops the table. */
void fw_close(struct fw *fw);
/* Replaces the post chain's rules (new snat mode) in one transaction. */
int fw_set_snat(struct fw *fw, const struct fw_snat *snat, char *err,
		size_t errlen);

/*
 * Adds (what & FW_ELEM_*) elements of flows[0..n).  At most FW_CHUNK
 * flows go in one transaction (each chunk all or nothing); res[i] says
 * what happened to flow i and errnos[i] (may be NULL) the kernel's error
 * for FW_REFUSED / FW_NOT_DONE.  err holds the first error text.  Returns
 * 0 if every flow is FW_DONE, else -1.
 */
int fw_add(struct fw *fw, const struct fw_flow *const *flows, size_t n,
	   unsigned what, enum fw_result *res, int *errnos, char *err,
	   size_t errlen);
/*
 * Deletes elements the same way; an element already gone counts as
 * deleted.  If a chunk is refused, its flows are retried one element at
 * a time so that the others still go.  res[i] is FW_DONE when every
 * element of flow i is gone, else FW_REFUSED or FW_UNKNOWN (the caller
 * keeps the flow and tries again later).  Returns 0 if all are FW_DONE.
 */
int fw_del(struct fw *fw, const struct fw_flow *const *flows, size_t n,
	   unsigned what, enum fw_result *res, char *err, size_t errlen);
/* Reads the `dropped` counter (bounded wait).  Returns 0 or -1. */
int fw_dropped(struct fw *fw, uint64_t *packets, uint64_t *bytes);
/* Counts the elements the kernel holds in each set (both families
 * summed): counts[FW_SET_*].  An audit of the daemon's record, for
 * `socksgate stats`; costs one dump per set.  Returns 0 or -1. */
int fw_count_elems(struct fw *fw, uint64_t counts[FW_NSETS]);
/* Packets the nat chain relayed through flow f's dnat element: those
 * that started a flow, or tried to (each packet of a flow whose first
 * packet something after our DNAT drops).  Bounded wait.  Returns 0, or
 * -1 with errno (ENOENT: no such element). */
int fw_elem_packets(struct fw *fw, const struct fw_flow *f, uint64_t *packets);
const struct fw_stats *fw_get_stats(const struct fw *fw);
const char *fw_result_str(enum fw_result r);

#endif
