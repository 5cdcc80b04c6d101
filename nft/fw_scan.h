/*
 * fw_scan: reads the ruleset of the other tables, read-only (dumps of
 * tables, chains, sets, the elements of small anonymous sets, and rules;
 * nothing is ever sent but GET requests), and judges it (fw_judge.h):
 * does a forward chain of another table drop socksgate's relayed flows?
 *
 * Every call opens its own netlink socket and closes it (a few ms in the
 * kernel): it runs at start, on reload, in `socksgated -n`, and at most
 * now and then when a relayed flow looks dropped, never per packet or
 * per association.  A dump that the ruleset's generation changed under is
 * read again (up to three times), so the model is one consistent ruleset.
 *
 * Must not: include libev or daemon headers, log, change the ruleset.
 */
#ifndef SOCKSGATE_FW_SCAN_H
#define SOCKSGATE_FW_SCAN_H

#include <stddef.h>

#include "fw_judge.h"

struct nlmsghdr;

/* Reads and judges.  Returns 0, or -1 with err (and errno: EPERM without
 * CAP_NET_ADMIN, which reading rules needs). */
int fw_scan(struct fw_report *out, char *err, size_t errlen);

/* The dumps fw_scan reads, each message handed to fn as received (a tool
 * records them as unit-test fixtures).  fn returns 0, or -1 to stop.
 * Returns 0, or -1 with err. */
int fw_scan_dump(int (*fn)(void *arg, const struct nlmsghdr *nlh), void *arg,
		 char *err, size_t errlen);

#endif
