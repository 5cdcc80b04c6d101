/*
 * srclimit: see srclimit.h.  A chained hash table of sources, keyed by
 * (family, prefix bits, masked address) and hashed with a random seed so
 * that a client choosing its addresses cannot aim at one chain.  Entries
 * without sessions are also on an idle list, oldest first: the sweep
 * frees those whose state is over, and the oldest is forgotten when there
 * are too many.
 */
#include "srclimit.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "log.h"

struct srclimit_src {
	uint8_t key[SRCLIMIT_KEY_LEN];
	unsigned sessions, handshakes, associations;
	double score, score_at;	  /* failed checks, decaying */
	double tokens, tokens_at; /* UDP name lookups */
	/* Summaries: events since the last line, since when, last line. */
	uint32_t pending[SRCLIMIT_KINDS];
	double pending_since[SRCLIMIT_KINDS], logged_at[SRCLIMIT_KINDS];
	char last_user[64];
	struct srclimit_src *hnext;	    /* hash chain */
	struct srclimit_src *iprev, *inext; /* idle list (no session) */
	bool idle;
};

struct srclimit {
	struct cfg_limits lim;
	uint64_t seed;
	struct srclimit_src **buckets;
	size_t nbuckets, count;
	struct srclimit_src *idle_head, *idle_tail;
	size_t nidle;
	uint64_t events[SRCLIMIT_KINDS];
	uint64_t forgotten;
};

#define SRCLIMIT_NAME(e, name) [e] = name,
static const char *const kind_names[] = {SRCLIMIT_KIND_LIST(SRCLIMIT_NAME)};
#undef SRCLIMIT_NAME
_Static_assert(sizeof(kind_names) / sizeof(kind_names[0]) == SRCLIMIT_KINDS,
	       "a name per kind");

const char *srclimit_kind_str(enum srclimit_kind k)
{
	return (unsigned)k < SRCLIMIT_KINDS ? kind_names[k] : "?";
}

/* Seconds from then to now; never negative (the caller's clock may be
 * the loop's, which follows the wall clock). */
static double since(double now, double then)
{
	return now > then ? now - then : 0;
}

/* --- keys and the table ----------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finaliser */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static size_t key_hash(const struct srclimit *t, const uint8_t *key)
{
	uint64_t h = t->seed, w;

	for (size_t i = 0; i < SRCLIMIT_KEY_LEN; i += 8) {
		w = 0;
		memcpy(&w, key + i,
		       SRCLIMIT_KEY_LEN - i < 8 ? SRCLIMIT_KEY_LEN - i : 8);
		h = mix64(h ^ w);
	}
	return (size_t)h & (t->nbuckets - 1);
}

/* The key of an address: IPv4-mapped addresses count as IPv4. */
static void make_key(const struct srclimit *t, const struct sockaddr *sa,
		     uint8_t key[SRCLIMIT_KEY_LEN])
{
	struct sockaddr_storage ss;
	const uint8_t *b;
	size_t alen = 0;
	unsigned bits;

	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, sa, addr_len(sa));
	addr_unmap(&ss);
	b = addr_bytes((struct sockaddr *)&ss, &alen);
	bits = alen == 4 ? t->lim.prefix4 : t->lim.prefix6;
	memset(key, 0, SRCLIMIT_KEY_LEN);
	key[0] = alen == 4 ? 4 : 6;
	key[1] = (uint8_t)bits;
	for (unsigned i = 0; i < alen && i * 8 < bits; i++) {
		unsigned keep = bits - i * 8 >= 8 ? 8 : bits - i * 8;
		key[2 + i] = b[i] & (uint8_t)(0xff00u >> keep);
	}
}

/* "198.18.0.2/32", "2001:db8::/64" */
static const char *key_str(const uint8_t *key, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];

	if (inet_ntop(key[0] == 4 ? AF_INET : AF_INET6, key + 2, ip,
		      sizeof(ip)) == NULL)
		snprintf(ip, sizeof(ip), "?");
	snprintf(out, cap, "%s/%u", ip, key[1]);
	return out;
}

static void idle_remove(struct srclimit *t, struct srclimit_src *e)
{
	if (!e->idle)
		return;
	if (e->iprev)
		e->iprev->inext = e->inext;
	else
		t->idle_head = e->inext;
	if (e->inext)
		e->inext->iprev = e->iprev;
	else
		t->idle_tail = e->iprev;
	e->iprev = e->inext = NULL;
	e->idle = false;
	t->nidle--;
}

static void idle_push(struct srclimit *t, struct srclimit_src *e)
{
	if (e->idle)
		idle_remove(t, e);
	e->iprev = t->idle_tail;
	e->inext = NULL;
	if (t->idle_tail)
		t->idle_tail->inext = e;
	else
		t->idle_head = e;
	t->idle_tail = e;
	e->idle = true;
	t->nidle++;
}

static void entry_free(struct srclimit *t, struct srclimit_src *e)
{
	struct srclimit_src **pp = &t->buckets[key_hash(t, e->key)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	idle_remove(t, e);
	t->count--;
	free(e);
}

static int table_grow(struct srclimit *t)
{
	size_t n = t->nbuckets * 2, oldn = t->nbuckets;
	struct srclimit_src **nb = calloc(n, sizeof(*nb)), **old = t->buckets;

	if (nb == NULL)
		return -1;
	t->buckets = nb;
	t->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		for (struct srclimit_src *e = old[i], *next; e; e = next) {
			next = e->hnext;
			size_t h = key_hash(t, e->key);
			e->hnext = nb[h];
			nb[h] = e;
		}
	}
	free(old);
	return 0;
}

static struct srclimit_src *lookup(struct srclimit *t, const uint8_t *key)
{
	for (struct srclimit_src *e = t->buckets[key_hash(t, key)]; e;
	     e = e->hnext)
		if (memcmp(e->key, key, SRCLIMIT_KEY_LEN) == 0)
			return e;
	return NULL;
}

/* The entry of key, created (idle, full bucket) if new; NULL if no
 * memory. */
static struct srclimit_src *lookup_add(struct srclimit *t, const uint8_t *key,
				       double now)
{
	struct srclimit_src *e = lookup(t, key);

	if (e)
		return e;
	if (t->count >= t->nbuckets && table_grow(t) < 0)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	memcpy(e->key, key, SRCLIMIT_KEY_LEN);
	for (int k = 0; k < SRCLIMIT_KINDS; k++)
		e->logged_at[k] = -HUGE_VAL; /* never */
	e->tokens = t->lim.udp_name_burst;
	e->tokens_at = now;
	e->score_at = now;
	size_t h = key_hash(t, key);
	e->hnext = t->buckets[h];
	t->buckets[h] = e;
	t->count++;
	idle_push(t, e);
	/* Too many entries without sessions: forget the oldest. */
	while (t->nidle > SRCLIMIT_IDLE_MAX && t->idle_head != e) {
		entry_free(t, t->idle_head);
		t->forgotten++;
	}
	return e;
}

struct srclimit *srclimit_new(const struct cfg_limits *lim, uint64_t seed)
{
	struct srclimit *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->lim = *lim;
	t->seed = seed;
	t->nbuckets = 256;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (t->buckets == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

void srclimit_free(struct srclimit *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct srclimit_src *e = t->buckets[i], *next; e;
		     e = next) {
			next = e->hnext;
			free(e);
		}
	}
	free(t->buckets);
	free(t);
}

void srclimit_configure(struct srclimit *t, const struct cfg_limits *lim)
{
	t->lim = *lim;
}

/* --- summaries -------------------------------------------------------- */

static void summary_line(struct srclimit *t, struct srclimit_src *e,
			 enum srclimit_kind k, double now)
{
	char src[ADDR_STRLEN];
	unsigned long long n = e->pending[k];
	double span = since(now, e->pending_since[k]);
	const struct cfg_limits *l = &t->lim;

	key_str(e->key, src, sizeof(src));
	switch (k) {
	case SRCLIMIT_HANDSHAKES:
		log_limited(LOG_LVL_WARN,
			    "source %s: %llu connection(s) refused in %.1fs: "
			    "max-handshakes-per-source %u reached",
			    src, n, span, l->handshakes);
		break;
	case SRCLIMIT_SESSIONS:
		log_limited(LOG_LVL_WARN,
			    "source %s: %llu connection(s) refused in %.1fs: "
			    "max-sessions-per-source %u reached",
			    src, n, span, l->sessions);
		break;
	case SRCLIMIT_ASSOCIATIONS:
		log_limited(LOG_LVL_WARN,
			    "source %s: %llu TRANSPARENT request(s) refused "
			    "(X'01') in %.1fs: max-associations-per-source %u "
			    "reached",
			    src, n, span, l->associations);
		break;
	case SRCLIMIT_AUTH_FAILED:
		log_limited(LOG_LVL_WARN,
			    "source %s: %llu failed password checks in %.1fs "
			    "(last user '%s'); its checks are now %.0fs apart",
			    src, n, span, e->last_user,
			    srclimit_auth_spacing(t, e, now));
		break;
	case SRCLIMIT_UDP_NAMES:
		log_limited(LOG_LVL_WARN,
			    "source %s: %llu UDP datagram(s) dropped in %.1fs: "
			    "udp-name-rate %.0f/s (burst %u) reached",
			    src, n, span, l->udp_name_rate, l->udp_name_burst);
		break;
	default:
		break;
	}
	e->pending[k] = 0;
	e->logged_at[k] = now;
}

/* Counts an event; the first line of a quiet source is written at once,
 * the others at most every SRCLIMIT_LOG_INTERVAL. */
static void event(struct srclimit *t, struct srclimit_src *e,
		  enum srclimit_kind k, double now)
{
	t->events[k]++;
	if (e->pending[k]++ == 0)
		e->pending_since[k] = now;
	if (since(now, e->logged_at[k]) >= SRCLIMIT_LOG_INTERVAL) {
		if (k == SRCLIMIT_AUTH_FAILED && e->pending[k] == 1) {
			char src[ADDR_STRLEN];
			/* One failure: the line users and tests know. */
			log_limited(LOG_LVL_WARN,
				    "authentication failed for user '%s' from "
				    "%s",
				    e->last_user,
				    key_str(e->key, src, sizeof(src)));
			e->pending[k] = 0;
			e->logged_at[k] = now;
			return;
		}
		summary_line(t, e, k, now);
	}
}

/* --- sessions and associations ---------------------------------------- */

int srclimit_session_open(struct srclimit *t, const struct sockaddr *peer,
			  double now, struct srclimit_src **src,
			  enum srclimit_kind *why)
{
	uint8_t key[SRCLIMIT_KEY_LEN];
	struct srclimit_src *e;

	*src = NULL;
	make_key(t, peer, key);
	e = lookup_add(t, key, now);
	if (e == NULL)
		return 0; /* not limited rather than not served */
	if (t->lim.sessions && e->sessions >= t->lim.sessions) {
		*why = SRCLIMIT_SESSIONS;
		event(t, e, *why, now);
		return -1;
	}
	if (t->lim.handshakes && e->handshakes >= t->lim.handshakes) {
		*why = SRCLIMIT_HANDSHAKES;
		event(t, e, *why, now);
		return -1;
	}
	if (e->sessions++ == 0)
		idle_remove(t, e);
	e->handshakes++;
	*src = e;
	return 0;
}

void srclimit_handshake_done(struct srclimit *t, struct srclimit_src *src)
{
	(void)t;
	if (src && src->handshakes > 0)
		src->handshakes--;
}

void srclimit_session_close(struct srclimit *t, struct srclimit_src *src,
			    bool in_handshake, double now)
{
	if (src == NULL)
		return;
	if (in_handshake)
		srclimit_handshake_done(t, src);
	(void)now;
	/* Kept while its state lasts; the sweep frees it. */
	if (src->sessions > 0 && --src->sessions == 0)
		idle_push(t, src);
}

int srclimit_assoc_open(struct srclimit *t, struct srclimit_src *src,
			double now)
{
	if (src == NULL)
		return 0;
	if (t->lim.associations && src->associations >= t->lim.associations) {
		event(t, src, SRCLIMIT_ASSOCIATIONS, now);
		return -1;
	}
	src->associations++;
	return 0;
}

void srclimit_assoc_close(struct srclimit *t, struct srclimit_src *src)
{
	(void)t;
	if (src && src->associations > 0)
		src->associations--;
}

/* --- password checks -------------------------------------------------- */

size_t srclimit_key(const struct srclimit_src *src,
		    uint8_t key[SRCLIMIT_KEY_LEN])
{
	if (src == NULL)
		return 0;
	memcpy(key, src->key, SRCLIMIT_KEY_LEN);
	return SRCLIMIT_KEY_LEN;
}

/* The score now: one failure forgotten per penalty_max seconds. */
static double score_now(const struct srclimit *t, const struct srclimit_src *e,
			double now)
{
	double s;

	if (t->lim.penalty_max <= 0 || e->score <= 0)
		return 0;
	s = e->score - since(now, e->score_at) / t->lim.penalty_max;
	return s > 0 ? s : 0;
}

/* The number of doublings from BASE to MAX. */
static unsigned penalty_steps(const struct cfg_limits *l)
{
	unsigned k = 0;

	for (double d = l->penalty_base; d < l->penalty_max && k < 64; d *= 2)
		k++;
	return k;
}

static double spacing_of(const struct cfg_limits *l, double score)
{
	unsigned n, k;
	double d;

	if (l->penalty_max <= 0)
		return 0;
	/* Failures still counted (a fraction counts as one). */
	n = (unsigned)score;
	if ((double)n < score - 1e-9)
		n++;
	if (n <= l->penalty_free)
		return 0;
	d = l->penalty_base;
	for (k = n - l->penalty_free - 1; k > 0 && d < l->penalty_max; k--)
		d *= 2;
	return d < l->penalty_max ? d : l->penalty_max;
}

double srclimit_auth_spacing(struct srclimit *t, struct srclimit_src *src,
			     double now)
{
	if (src == NULL)
		return 0;
	return spacing_of(&t->lim, score_now(t, src, now));
}

double srclimit_auth_result(struct srclimit *t, const uint8_t *key,
			    size_t keylen, const char *user, bool ok,
			    double now)
{
	struct srclimit_src *e;
	double s, cap;

	if (keylen != SRCLIMIT_KEY_LEN)
		return 0;
	e = lookup_add(t, key, now);
	if (e == NULL)
		return 0;
	if (e->idle)
		idle_push(t, e); /* recently active: last to be forgotten */
	if (ok)
		return srclimit_auth_spacing(t, e, now);
	/* Capped so that a source that stops is forgiven in bounded time:
	 * a little beyond the score that reaches MAX. */
	cap = (double)t->lim.penalty_free + penalty_steps(&t->lim) + 2;
	s = score_now(t, e, now) + 1;
	e->score = s < cap ? s : cap;
	e->score_at = now;
	snprintf(e->last_user, sizeof(e->last_user), "%s", user ? user : "?");
	event(t, e, SRCLIMIT_AUTH_FAILED, now);
	return spacing_of(&t->lim, e->score);
}

/* --- UDP name lookups ------------------------------------------------- */

bool srclimit_udp_name(struct srclimit *t, struct srclimit_src *src, double now)
{
	const struct cfg_limits *l = &t->lim;

	if (src == NULL || l->udp_name_rate <= 0)
		return true;
	src->tokens += since(now, src->tokens_at) * l->udp_name_rate;
	if (src->tokens > l->udp_name_burst)
		src->tokens = l->udp_name_burst;
	if (now > src->tokens_at)
		src->tokens_at = now;
	if (src->tokens >= 1) {
		src->tokens -= 1;
		return true;
	}
	event(t, src, SRCLIMIT_UDP_NAMES, now);
	return false;
}

/* --- sweep and stats -------------------------------------------------- */

/* True when nothing is left to remember of an idle entry. */
static bool state_over(const struct srclimit *t, const struct srclimit_src *e,
		       double now)
{
	const struct cfg_limits *l = &t->lim;
	double tokens = e->tokens + since(now, e->tokens_at) * l->udp_name_rate;

	for (int k = 0; k < SRCLIMIT_KINDS; k++)
		if (e->pending[k])
			return false;
	if (score_now(t, e, now) > 0)
		return false;
	return l->udp_name_rate <= 0 || tokens >= l->udp_name_burst;
}

void srclimit_sweep(struct srclimit *t, double now)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct srclimit_src *e = t->buckets[i]; e; e = e->hnext)
			for (int k = 0; k < SRCLIMIT_KINDS; k++)
				if (e->pending[k] &&
				    since(now, e->logged_at[k]) >=
					    SRCLIMIT_LOG_INTERVAL)
					summary_line(t, e, k, now);
	}
	for (struct srclimit_src *e = t->idle_head, *next; e; e = next) {
		next = e->inext;
		if (state_over(t, e, now))
			entry_free(t, e);
	}
}

void srclimit_stats(struct srclimit *t, double now, struct srclimit_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->sources = t->count;
	memcpy(out->events, t->events, sizeof(out->events));
	out->forgotten = t->forgotten;
	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct srclimit_src *e = t->buckets[i]; e; e = e->hnext)
			if (srclimit_auth_spacing(t, e, now) > 0)
				out->penalised++;
}
