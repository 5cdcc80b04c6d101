/*
 * fwcheck: tells the operator when the router's firewall drops the flows
 * socksgated relays, with the exact rule that lets them through
 * (docs/firewalls.md).  The reading and the judging are nft/fw_scan.c's
 * and nft/fw_judge.c's (read-only); this module logs what they found and
 * remembers it for the run-time hints (track.c notices flows dropped after
 * our NAT).  It never changes the ruleset.
 */
#ifndef SOCKSGATE_FWCHECK_H
#define SOCKSGATE_FWCHECK_H

#include <stdbool.h>

#include "fw_judge.h"

struct fwcheck;

struct fwcheck *fwcheck_new(void);
void fwcheck_free(struct fwcheck *fc);
/* Reads and judges the ruleset now and logs the result: a warning and
 * the fix for each forward chain that drops relayed flows, else one info
 * line.  when: "start", "reload"... (for the log).  A ruleset that cannot
 * be read (no CAP_NET_ADMIN) is said at info level: `socksgated -n` runs
 * as any user. */
void fwcheck_run(struct fwcheck *fc, const char *when);
/* One check for `socksgated -n`: fwcheck_new, _run, _free. */
void fwcheck_once(void);
/* A relayed flow looks dropped (k: its first packet, or its replies):
 * logs which chain does it and the fix, reading the ruleset again if the
 * last check is older than 10 s (it may have changed since), or says that
 * no chain it can judge does.  now: the loop's time.  Logs the fix at most
 * once a minute; the callers log the association itself. */
void fwcheck_explain(struct fwcheck *fc, enum fw_pkt k, double now);

#endif
