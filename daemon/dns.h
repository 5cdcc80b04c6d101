/*
 * dns: asynchronous name resolution with c-ares on the daemon's libev loop.
 * Never blocks: c-ares sockets are watched by ev_io and its timeouts by
 * one ev_timer.  /etc/hosts is consulted before DNS (c-ares "fb" lookups).
 *
 * Negative answers are cached (c-ares 1.18 has no cache): "not found" for
 * DNS_NEG_TTL seconds, a resolver failure (timeout, refused, SERVFAIL) for
 * DNS_FAIL_TTL, per name and family, in DNS_NEG_SLOTS slots (a new answer
 * takes its slot from whatever held it: memory is bounded, and a flood of
 * new names evicts only other negative answers).  A name asked for again
 * meanwhile is answered at once, without a query.
 */
#ifndef SOCKSGATE_DNS_H
#define SOCKSGATE_DNS_H

#include <ev.h>
#include <stddef.h>
#include <sys/socket.h>

#define DNS_MAX_ADDRS 8
#define DNS_NEG_SLOTS 512
#define DNS_NEG_TTL 60.0
#define DNS_FAIL_TTL 5.0

enum dns_result {
	DNS_OK = 0,
	DNS_NOTFOUND, /* the name has no address of the wanted family */
	DNS_FAILED,   /* server failure, timeout, refused... */
};

struct dns;
struct dns_query;

struct dns_stats {
	unsigned long long lookups;	  /* sent to c-ares */
	unsigned long long negative_hits; /* answered from the cache */
	size_t negative_entries;
};

/* Called once per query unless it was cancelled.  addrs have port 0. */
typedef void (*dns_cb)(void *arg, enum dns_result res,
		       const struct sockaddr_storage *addrs, size_t n);

struct dns *dns_new(struct ev_loop *loop, char *err, size_t errlen);
/* Cancels every pending query silently and frees the resolver. */
void dns_free(struct dns *d);
/*
 * Starts a lookup.  family: AF_INET, AF_INET6 or AF_UNSPEC.  *handle is
 * set to the pending query and reset to NULL just before cb runs (which
 * may happen before dns_resolve returns, for names in /etc/hosts, for
 * cached negative answers and for address literals), so the caller's
 * handle is always either pending or NULL.  Returns -1 on allocation
 * failure (cb is then never called).
 *
 * Address literals ("198.18.1.2", "2001:db8::5", "[2001:db8::5]", see
 * addr_literal_parse) are answered at once, never sent to a server: DNS_OK
 * with that address if it is of the wanted family, else DNS_NOTFOUND, as
 * a resolver would.  Address-shaped names that are no usable address
 * ("fe80::1%eth0", "198.18.1") get DNS_NOTFOUND at once.  IPv4-mapped
 * IPv6 answers (literal or not) are given as IPv4 addresses.
 */
int dns_resolve(struct dns *d, const char *name, int family, dns_cb cb,
		void *arg, struct dns_query **handle);
/* The callback of *handle will not be called; *handle becomes NULL. */
void dns_cancel(struct dns_query **handle);
const char *dns_result_str(enum dns_result r);
void dns_get_stats(const struct dns *d, struct dns_stats *out);

#endif
