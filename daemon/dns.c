/*
 * dns: see dns.h.  c-ares tells us which sockets to watch through its
 * socket-state callback; we keep one ev_io per socket in a small list and
 * re-arm one ev_timer from ares_timeout() after every step.
 */
#include "dns.h"

#include "addr.h"

#include <ares.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

struct dns_io {
	ev_io w;
	struct dns *d;
	struct dns_io *next;
};

/* A negative answer: name (NULL: free slot), family, until when. */
struct dns_neg {
	char *name;
	int family;
	enum dns_result res;
	ev_tstamp expires;
};

struct dns {
	struct ev_loop *loop;
	ares_channel ch;
	ev_timer timer;
	struct dns_io *ios;
	bool freeing;
	uint32_t seed; /* slot hash: a client cannot aim at one slot */
	struct dns_neg neg[DNS_NEG_SLOTS];
	struct dns_stats stats;
};

struct dns_query {
	struct dns *d;
	dns_cb cb;
	void *arg;
	struct dns_query **handle;
	int family;
	char name[]; /* for the negative cache */
};

/* FNV-1a of the lower-cased name and the family, seeded. */
static struct dns_neg *neg_slot(struct dns *d, const char *name, int family)
{
	uint32_t h = 2166136261u ^ d->seed;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		unsigned char c = *p >= 'A' && *p <= 'Z' ? *p + 32 : *p;
		h = (h ^ c) * 16777619u;
	}
	h = (h ^ (uint32_t)family) * 16777619u;
	return &d->neg[h % DNS_NEG_SLOTS];
}

/* The cached negative answer for name and family, or NULL. */
static struct dns_neg *neg_find(struct dns *d, const char *name, int family)
{
	struct dns_neg *e = neg_slot(d, name, family);

	if (e->name == NULL || e->family != family ||
	    strcasecmp(e->name, name) != 0)
		return NULL;
	if (e->expires <= ev_now(d->loop)) {
		free(e->name);
		e->name = NULL;
		d->stats.negative_entries--;
		return NULL;
	}
	return e;
}

static void neg_put(struct dns *d, const char *name, int family,
		    enum dns_result res)
{
	struct dns_neg *e = neg_slot(d, name, family);
	char *copy = strdup(name);

	if (copy == NULL)
		return;
	if (e->name)
		free(e->name);
	else
		d->stats.negative_entries++;
	e->name = copy;
	e->family = family;
	e->res = res;
	e->expires = ev_now(d->loop) +
		     (res == DNS_NOTFOUND ? DNS_NEG_TTL : DNS_FAIL_TTL);
}

static void dns_rearm(struct dns *d)
{
	struct timeval tv, *tvp;

	ev_timer_stop(d->loop, &d->timer);
	tvp = ares_timeout(d->ch, NULL, &tv);
	if (tvp == NULL)
		return;
	ev_timer_set(&d->timer, (double)tvp->tv_sec + tvp->tv_usec / 1e6, 0.);
	ev_timer_start(d->loop, &d->timer);
}

static void dns_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct dns_io *io = (struct dns_io *)w;
	struct dns *d = io->d;
	int fd = w->fd;

	(void)loop;
	ares_process_fd(d->ch, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
			(revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	dns_rearm(d);
}

static void dns_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct dns *d = (struct dns *)((char *)w - offsetof(struct dns, timer));

	(void)loop;
	(void)revents;
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_rearm(d);
}

static void dns_sock_state(void *data, ares_socket_t s, int readable,
			   int writable)
{
	struct dns *d = data;
	struct dns_io **pp, *io;

	for (pp = &d->ios; *pp && (*pp)->w.fd != s; pp = &(*pp)->next)
		;
	io = *pp;
	if (io) {
		ev_io_stop(d->loop, &io->w);
		if (!readable && !writable) {
			*pp = io->next;
			free(io);
			return;
		}
	} else {
		if (!readable && !writable)
			return;
		io = calloc(1, sizeof(*io));
		if (io == NULL)
			return; /* the query times out instead */
		io->d = d;
		io->next = d->ios;
		d->ios = io;
	}
	ev_io_init(&io->w, dns_io_cb, s,
		   (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	ev_io_start(d->loop, &io->w);
}

struct dns *dns_new(struct ev_loop *loop, char *err, size_t errlen)
{
	struct ares_options opts;
	struct dns *d;
	int rc;

	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->loop = loop;
	if (getrandom(&d->seed, sizeof(d->seed), GRND_NONBLOCK) !=
	    sizeof(d->seed))
		d->seed = (uint32_t)(uintptr_t)d;
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = dns_sock_state;
	opts.sock_state_cb_data = d;
	opts.lookups = (char *)"fb";
	rc = ares_init_options(&d->ch, &opts,
			       ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(d);
		return NULL;
	}
	ev_init(&d->timer, dns_timer_cb);
	return d;
}

void dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	d->freeing = true;
	ares_destroy(d->ch); /* calls every callback with ARES_EDESTRUCTION */
	ev_timer_stop(d->loop, &d->timer);
	while (d->ios) {
		struct dns_io *io = d->ios;
		d->ios = io->next;
		ev_io_stop(d->loop, &io->w);
		free(io);
	}
	for (size_t i = 0; i < DNS_NEG_SLOTS; i++)
		free(d->neg[i].name);
	free(d);
	ares_library_cleanup();
}

static void dns_done(void *arg, int status, int timeouts,
		     struct ares_addrinfo *res)
{
	struct dns_query *q = arg;
	struct sockaddr_storage addrs[DNS_MAX_ADDRS];
	enum dns_result r = DNS_OK;
	size_t n = 0;

	(void)timeouts;
	if (status == ARES_SUCCESS && res) {
		for (struct ares_addrinfo_node *ai = res->nodes;
		     ai && n < DNS_MAX_ADDRS; ai = ai->ai_next) {
			if (ai->ai_family != AF_INET &&
			    ai->ai_family != AF_INET6)
				continue;
			if ((size_t)ai->ai_addrlen > sizeof(addrs[0]))
				continue;
			memset(&addrs[n], 0, sizeof(addrs[n]));
			memcpy(&addrs[n], ai->ai_addr, ai->ai_addrlen);
			/* An AAAA ::ffff:a.b.c.d is a.b.c.d: the rules must
			 * see the IPv4 address the connection will reach. */
			addr_unmap(&addrs[n]);
			n++;
		}
		if (n == 0)
			r = DNS_NOTFOUND;
	} else if (status == ARES_ENOTFOUND || status == ARES_ENODATA ||
		   status == ARES_ENONAME) {
		r = DNS_NOTFOUND;
	} else {
		r = DNS_FAILED;
	}
	/* Cached even when the asker has gone: the query was made.  Not
	 * when the resolver itself is going away. */
	if (r != DNS_OK && !q->d->freeing && status != ARES_EDESTRUCTION &&
	    status != ARES_ECANCELLED)
		neg_put(q->d, q->name, q->family, r);
	if (res)
		ares_freeaddrinfo(res);
	if (q->handle)
		*q->handle = NULL;
	if (q->cb && !q->d->freeing)
		q->cb(q->arg, r, addrs, n);
	free(q);
}

/* Answers an address literal (or an address-shaped name) without c-ares:
 * c-ares 1.18 sends "198.18.1.2" asked for AF_UNSPEC, "[2001:db8::5]" and
 * "fe80::1%eth0" to the DNS servers, leaking the destination and failing
 * only after the resolver timed out.  Returns false for other names. */
static bool dns_literal(const char *name, int family, dns_cb cb, void *arg,
			struct dns_query **handle)
{
	struct sockaddr_storage ss;
	enum addr_literal k = addr_literal_parse(name, &ss);

	if (k == ADDR_LITERAL_NONE)
		return false;
	*handle = NULL;
	if (k == ADDR_LITERAL_ADDR) {
		addr_unmap(&ss); /* as dns_done does */
		/* As a resolver would: no address of the wanted family. */
		if (family == AF_UNSPEC || family == ss.ss_family) {
			cb(arg, DNS_OK, &ss, 1);
			return true;
		}
	}
	cb(arg, DNS_NOTFOUND, NULL, 0);
	return true;
}

int dns_resolve(struct dns *d, const char *name, int family, dns_cb cb,
		void *arg, struct dns_query **handle)
{
	struct ares_addrinfo_hints hints;
	struct dns_query *q;

	if (dns_literal(name, family, cb, arg, handle))
		return 0;
	struct dns_neg *neg = neg_find(d, name, family);
	if (neg) {
		d->stats.negative_hits++;
		*handle = NULL;
		cb(arg, neg->res, NULL, 0);
		return 0;
	}
	size_t nl = strlen(name);
	q = calloc(1, sizeof(*q) + nl + 1);
	if (q == NULL)
		return -1;
	q->d = d;
	q->cb = cb;
	q->arg = arg;
	q->handle = handle;
	q->family = family;
	memcpy(q->name, name, nl + 1);
	*handle = q;
	d->stats.lookups++;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	ares_getaddrinfo(d->ch, name, NULL, &hints, dns_done, q);
	dns_rearm(d);
	return 0;
}

void dns_cancel(struct dns_query **handle)
{
	if (*handle) {
		(*handle)->cb = NULL;
		(*handle)->handle = NULL;
		*handle = NULL;
	}
}

const char *dns_result_str(enum dns_result r)
{
	switch (r) {
	case DNS_OK:
		return "ok";
	case DNS_NOTFOUND:
		return "name not found";
	case DNS_FAILED:
		return "resolver failure";
	}
	return "?";
}

void dns_get_stats(const struct dns *d, struct dns_stats *out)
{
	*out = d->stats;
}
