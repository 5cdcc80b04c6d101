/*
 * kagent: the kernel agent as the session process sees it -- the
 * association table's API (assoc.h) carried over the kmsg channel
 * (docs/privsep.md).  Sessions open and close associations and get
 * ready() and ended() callbacks exactly as from the table itself; the
 * control socket's queries (list, stats, close ID) are synchronous calls
 * that wait for the agent's answer (bounded by KAGENT_CALL_MS; the agent
 * does no blocking work of the session's).
 *
 * The agent may go at any time: the channel's end is reported through
 * the lost() callback given to kagent_new (the session process then
 * exits: without the agent no association can be kept honest).
 */
#ifndef SOCKSGATE_KAGENT_H
#define SOCKSGATE_KAGENT_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "assoc.h"

#define KAGENT_CALL_MS 5000

struct kagent;
struct kassoc;

/* Takes over fd (the session end of the channel) and waits, up to
 * KAGENT_CALL_MS, for the agent's welcome.  NULL after logging why. */
struct kagent *kagent_new(struct ev_loop *loop, int fd, void (*lost)(void *arg),
			  void *arg);
void kagent_free(struct kagent *k);
/* nftables and conntrack are usable (the agent said so). */
bool kagent_available(const struct kagent *k);

/* As assoc_open: queued at once, answered by cbs->ready.  NULL if
 * refused at once (*rep says why). */
struct kassoc *kagent_open(struct kagent *k, const struct assoc_req *r,
			   const struct assoc_cbs *cbs, void *arg,
			   uint8_t *rep);
/* As assoc_close: no callback afterwards. */
void kagent_close(struct kassoc *a, enum assoc_end why);
/* 0 once ready() said X'00', else 0 too (the id comes with ready). */
uint32_t kagent_id(const struct kassoc *a);
/* What `socksgate list` shows (the counters of the last kagent_refresh). */
void kagent_get_info(const struct kassoc *a, struct assoc_info *ai);

/* Synchronous calls; -1 if the agent did not answer (it is then lost). */
int kagent_terminate_id(struct kagent *k, uint32_t id, enum assoc_end why);
int kagent_refresh(struct kagent *k);
int kagent_stats(struct kagent *k, uint64_t *count, struct assoc_stats *st,
		 struct assoc_audit *au);
size_t kagent_count(const struct kagent *k);

#endif
