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
 * does not wait on anything but the kernel's own work.
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

struct fw_stats {
	uint64_t transactions;
	uint64_t errors; /* messages the kernel refused */
	uint64_t elements_added, elements_deleted;
};

/*
 * Opens the socket and installs the table in one transaction that first
 * deletes a leftover `inet socksgate` (from a run that did not use the
 * owner flag, or an administrator's copy).  Fails if another live process
 * owns the table.  Returns NULL with err set.
 */
struct fw *fw_open(const struct fw_snat *snat, bool owner, char *err,
		   size_t errlen);
/* Closes the socket; with the owner flag the kernel drops the table. */
void fw_close(struct fw *fw);
/* Replaces the post chain's rules (new snat mode) in one transaction. */
int fw_set_snat(struct fw *fw, const struct fw_snat *snat, char *err,
		size_t errlen);

/*
 * Adds (what & FW_ELEM_*) elements of flows[0..n) in one transaction.
 * If the kernel refuses, nothing is added; failed[i] is set for each flow
 * whose message was refused (so the caller can retry the others), and
 * err holds the first error text.  Returns 0 or -1.
 */
int fw_add(struct fw *fw, const struct fw_flow *const *flows, size_t n,
	   unsigned what, bool *failed, char *err, size_t errlen);
/* Deletes elements in one transaction; if the batch is refused (an
 * element was already gone), retries one flow at a time so that the
 * others still go.  Returns 0, or -1 if some element could not be
 * deleted for another reason than ENOENT. */
int fw_del(struct fw *fw, const struct fw_flow *const *flows, size_t n,
	   unsigned what, char *err, size_t errlen);
/* Reads the `dropped` counter. */
int fw_dropped(struct fw *fw, uint64_t *packets, uint64_t *bytes);
const struct fw_stats *fw_get_stats(const struct fw *fw);

#endif
