/*
 * selfaddr: the gateway's own addresses, as the kernel decides them: the
 * local, broadcast and anycast routes of the local routing table (table
 * 255).  That is every address of every interface, the loopback network
 * (`local 127.0.0.0/8`), IPv4 broadcast addresses, the IPv6
 * subnet-router anycast address of each prefix on a forwarding router,
 * and prefixes routed `local` by hand ("AnyIP"): every destination the
 * kernel delivers to this host itself.  The only rtnetlink code.
 *
 * Kept current without a system call per request: one socket subscribed
 * to address and route notifications, filtered in the kernel (a BPF
 * socket filter) to address changes and local-table routes, so that a
 * routing daemon's churn in the main table never wakes the daemon.  Each
 * wake-up drains that socket and dumps the local table once (on a second
 * socket); the new table is swapped in whole.  A lost notification
 * (ENOBUFS) also causes a dump.
 *
 * Must not: include libev or daemon headers.
 */
#ifndef SOCKSGATE_SELFADDR_H
#define SOCKSGATE_SELFADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct nlmsghdr;

/* One route of the local table. */
struct selfaddr_prefix {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t plen;	/* prefix length: 32/128 for one address */
	uint8_t type;	/* RTN_LOCAL, RTN_BROADCAST or RTN_ANYCAST */
	uint8_t addr[16];
};

struct selfaddr;

/*
 * Subscribes to the notifications, then dumps the local table (in that
 * order, so that no change falls between the two).  Returns NULL with a
 * message in err if either fails.
 */
struct selfaddr *selfaddr_open(char *err, size_t errlen);
void selfaddr_close(struct selfaddr *sa);
/* The notification socket (non-blocking): watch it for reading. */
int selfaddr_fd(const struct selfaddr *sa);
/*
 * Reads the pending notifications; if any (or a lost one) concerned the
 * local table or an address, dumps the table again.  Returns 1 if the
 * set of prefixes changed, 0 if not, -1 if the dump failed (the previous
 * table stays in force; call selfaddr_refresh() later).
 */
int selfaddr_process(struct selfaddr *sa);
/* Dumps the local table now; returns as selfaddr_process(). */
int selfaddr_refresh(struct selfaddr *sa);
/* True if a (AF_INET or AF_INET6, port ignored) is in the table.  A
 * linear scan of a few dozen prefixes: no system call. */
bool selfaddr_match(const struct selfaddr *sa, const struct sockaddr *a);
/* Counters since selfaddr_open. */
struct selfaddr_stats {
	uint64_t notifications; /* messages read (what the filter passed) */
	uint64_t overruns;	/* ENOBUFS: notifications lost */
	uint64_t dumps;		/* of the local table, successful or not */
	uint64_t dump_failures;
};
void selfaddr_get_stats(const struct selfaddr *sa, struct selfaddr_stats *st);
/* The table, for logs: n prefixes, sorted. */
const struct selfaddr_prefix *selfaddr_table(const struct selfaddr *sa,
					     size_t *n);

/* Pure helpers (unit-tested). */

/*
 * One RTM_NEWROUTE message (nlmsg_len checked by the caller, as
 * mnl_cb_run does) -> *out.  Returns 1 for a route of the local table
 * of type local, broadcast or anycast (IPv4 or IPv6), 0 for any other
 * message, -1 for a malformed one.
 */
int selfaddr_parse_route(const struct nlmsghdr *nlh,
			 struct selfaddr_prefix *out);
/* True if a is inside one of p[0..n). */
bool selfaddr_prefix_match(const struct selfaddr_prefix *p, size_t n,
			   const struct sockaddr *a);
/* Sorts p[0..n) and removes duplicates; returns the new count. */
size_t selfaddr_prefix_sort(struct selfaddr_prefix *p, size_t n);

#endif
