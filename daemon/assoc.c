/*
 * assoc: see assoc.h.
 */
#include "assoc.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "assoc_int.h"
#include "ct.h"
#include "fw.h"
#include "fwcheck.h"
#include "log.h"
#include "s5_proto.h"

#define ASSOC_NAME(e, name) [e] = name,
static const char *const end_names[] = {ASSOC_END_LIST(ASSOC_NAME)};
static const char *const state_names[] = {ASSOC_STATE_LIST(ASSOC_NAME)};
#undef ASSOC_NAME
_Static_assert(sizeof(end_names) / sizeof(end_names[0]) == ASSOC_END_COUNT,
	       "a name per end reason");
_Static_assert(sizeof(state_names) / sizeof(state_names[0]) ==
		       ASSOC_STATE_COUNT,
	       "a name per state");

const char *assoc_end_str(enum assoc_end e)
{
	return (unsigned)e < ASSOC_END_COUNT ? end_names[e] : "?";
}

uint32_t assoc_id(const struct assoc *a)
{
	return a->id;
}

bool assoc_table_available(const struct assoc_table *t)
{
	return t->fw != NULL && t->ct != NULL;
}

static void list_push(struct assoc_list *l, struct assoc *a)
{
	a->list = l;
	a->next = NULL;
	a->prev = l->tail;
	if (l->tail)
		l->tail->next = a;
	else
		l->head = a;
	l->tail = a;
}

static void list_remove(struct assoc *a)
{
	struct assoc_list *l = a->list;

	if (l == NULL)
		return;
	if (a->prev)
		a->prev->next = a->next;
	else
		l->head = a->next;
	if (a->next)
		a->next->prev = a->prev;
	else
		l->tail = a->prev;
	a->prev = a->next = NULL;
	a->list = NULL;
}

/* --- ids ------------------------------------------------------------ */

static struct assoc **bucket(struct assoc_table *t, uint32_t id)
{
	return &t->buckets[(id * 2654435761u) & (t->nbuckets - 1)];
}

struct assoc *assoc_find(struct assoc_table *t, uint32_t id)
{
	for (struct assoc *a = *bucket(t, id); a; a = a->hnext)
		if (a->id == id)
			return a;
	return NULL;
}

static int hash_grow(struct assoc_table *t)
{
	size_t n = t->nbuckets ? t->nbuckets * 2 : 1024;
	struct assoc **old = t->buckets, **nb = calloc(n, sizeof(*nb));
	size_t oldn = t->nbuckets;

	if (nb == NULL)
		return -1;
	t->buckets = nb;
	t->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		for (struct assoc *a = old[i], *next; a; a = next) {
			next = a->hnext;
			struct assoc **b = bucket(t, a->id);
			a->hnext = *b;
			*b = a;
		}
	}
	free(old);
	return 0;
}

static int hash_insert(struct assoc_table *t, struct assoc *a)
{
	if (t->count >= t->nbuckets && hash_grow(t) < 0)
		return -1;
	for (uint32_t tries = 0; tries < ASSOC_ID_MAX; tries++) {
		uint32_t id = t->next_id;
		t->next_id = t->next_id >= ASSOC_ID_MAX ? 1 : t->next_id + 1;
		if (assoc_find(t, id) == NULL) {
			a->id = id;
			struct assoc **b = bucket(t, id);
			a->hnext = *b;
			*b = a;
			t->count++;
			return 0;
		}
	}
	return -1;
}

static void hash_remove(struct assoc_table *t, struct assoc *a)
{
	for (struct assoc **pp = bucket(t, a->id); *pp; pp = &(*pp)->hnext) {
		if (*pp == a) {
			*pp = a->hnext;
			t->count--;
			return;
		}
	}
}

/* --- ports ---------------------------------------------------------- */

static struct port_pool *pool_get(struct assoc_table *t, int family,
				  const uint8_t *addr)
{
	size_t alen = family == AF_INET6 ? 16 : 4;
	struct port_pool *p;

	for (p = t->pools; p; p = p->next)
		if (p->family == family && memcmp(p->addr, addr, alen) == 0)
			return p;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->family = family;
	memcpy(p->addr, addr, alen);
	p->next = t->pools;
	t->pools = p;
	return p;
}

static bool port_used(const struct port_pool *p, uint16_t port)
{
	return p->used[port / 8] & (1u << (port % 8));
}

static void port_mark(struct port_pool *p, uint16_t port, bool used)
{
	if (used)
		p->used[port / 8] |= (uint8_t)(1u << (port % 8));
	else
		p->used[port / 8] &= (uint8_t) ~(1u << (port % 8));
}

/* The socket kinds whose local ports a bound endpoint can shadow: the
 * guard drops every protocol to BND.ADDR:BND.PORT, so a port is free only
 * if no local socket of any of them uses it.  UDP-Lite, SCTP and DCCP are
 * tried only when their module is loaded (/proc/net/protocols): creating
 * such a socket would otherwise load it. */
struct sock_kind {
	const char *proc_name; /* NULL: always there */
	int type, proto;
};
static const struct sock_kind sock_kinds[] = {
	{NULL, SOCK_STREAM, IPPROTO_TCP},
	{NULL, SOCK_DGRAM, IPPROTO_UDP},
	{"UDP-Lite", SOCK_DGRAM, IPPROTO_UDPLITE},
	{"SCTP", SOCK_SEQPACKET, IPPROTO_SCTP},
	{"DCCP", SOCK_DCCP, IPPROTO_DCCP},
};
#define NSOCK_KINDS (sizeof(sock_kinds) / sizeof(sock_kinds[0]))

/* Which optional socket kinds this kernel has now (bit i: sock_kinds[i]).
 * Read at start and on reload. */
static unsigned local_kinds(void)
{
	FILE *f = fopen("/proc/net/protocols", "re");
	char line[256];
	unsigned m = 0;

	for (size_t i = 0; i < NSOCK_KINDS; i++)
		if (sock_kinds[i].proc_name == NULL)
			m |= 1u << i;
	if (f == NULL)
		return m;
	while (fgets(line, sizeof(line), f)) {
		for (size_t i = 0; i < NSOCK_KINDS; i++) {
			const char *n = sock_kinds[i].proc_name;
			size_t l = n ? strlen(n) : 0;
			if (n && strncmp(line, n, l) == 0 &&
			    (line[l] == ' ' || line[l] == '\t'))
				m |= 1u << i;
		}
	}
	fclose(f);
	return m;
}

/* 1 if no local socket of any kind uses bnd:port, 0 if one does, -1 if
 * bnd is not a local address. */
static int port_free_locally(const struct assoc_table *t,
			     const struct sockaddr_storage *bnd, uint16_t port)
{
	struct sockaddr_storage ss = *bnd;

	addr_set_port((struct sockaddr *)&ss, port);
	for (size_t i = 0; i < NSOCK_KINDS; i++) {
		if (!(t->sock_kinds & (1u << i)))
			continue;
		int fd = socket(ss.ss_family, sock_kinds[i].type | SOCK_CLOEXEC,
				sock_kinds[i].proto);
		if (fd < 0)
			continue; /* cannot tell; the kernel rules still work */
		int rc = bind(fd, (struct sockaddr *)&ss,
			      addr_len((struct sockaddr *)&ss));
		int e = errno;
		close(fd);
		/* In use (or below 1024 without the right): try another;
		 * anything else (not local, a link-local address without
		 * scope...) will not change with the port. */
		if (rc < 0 && (e == EADDRINUSE || e == EACCES))
			return 0;
		if (rc < 0)
			return -1;
	}
	return 1;
}

/* Picks a BND.PORT: free in our pool and not used by a local socket. */
static int port_alloc(struct assoc_table *t, struct port_pool *p,
		      const struct sockaddr_storage *bnd, uint16_t *out)
{
	uint32_t range = (uint32_t)t->port_hi - t->port_lo + 1;

	for (uint32_t i = 0; i < range; i++) {
		uint16_t port = (uint16_t)(t->port_lo + (p->hint + i) % range);
		if (port_used(p, port))
			continue;
		int local = port_free_locally(t, bnd, port);
		if (local < 0)
			return -1;
		if (local == 0)
			continue;
		p->hint = (p->hint + i + 1) % range;
		port_mark(p, port, true);
		*out = port;
		return 0;
	}
	return -1;
}

/* --- lifecycle ------------------------------------------------------ */

void assoc_flow_tuple(const struct fw_flow *f, struct ct_tuple *ct)
{
	memset(ct, 0, sizeof(*ct));
	ct->family = f->family;
	ct->proto = f->proto;
	memcpy(ct->src, f->saddr, 16);
	ct->sport = f->sport;
	memcpy(ct->dst, f->baddr, 16);
	ct->dport = f->bport;
}

/* One side of a flow (raw address bytes, host-order port) as a sockaddr. */
static void flow_sockaddr(int family, const uint8_t *addr, uint16_t port,
			  struct sockaddr_storage *ss)
{
	struct s5_addr w;
	size_t alen = family == AF_INET6 ? 16 : 4;

	memset(&w, 0, sizeof(w));
	w.atyp = alen == 16 ? S5_ATYP_IPV6 : S5_ATYP_IPV4;
	memcpy(w.u.v6, addr, alen);
	w.port = port;
	addr_from_s5(&w, ss);
}

static void flow_str(const struct fw_flow *f, char *out, size_t cap)
{
	struct sockaddr_storage s, b, d;
	char ss[ADDR_STRLEN], bs[ADDR_STRLEN], ds[ADDR_STRLEN];

	flow_sockaddr(f->family, f->saddr, f->sport, &s);
	flow_sockaddr(f->family, f->baddr, f->bport, &b);
	flow_sockaddr(f->family, f->daddr, f->dport, &d);
	snprintf(out, cap, "ptcl %u %s -> %s -> %s", f->proto,
		 addr_str((struct sockaddr *)&s, ss, sizeof(ss)),
		 addr_str((struct sockaddr *)&b, bs, sizeof(bs)),
		 addr_str((struct sockaddr *)&d, ds, sizeof(ds)));
}

static void assoc_free(struct assoc *a)
{
	struct assoc_table *t = a->t;

	list_remove(a);
	hash_remove(t, a);
	if (a->pool)
		port_mark(a->pool, a->flow.bport, false);
	free(a->comment);
	free(a);
}

static void assoc_log_end(struct assoc *a)
{
	char f[300];
	struct track_count c;

	track_flow_counts(&a->tf, &c);
	flow_str(&a->flow, f, sizeof(f));
	a->t->stats.ended[a->end]++;
	log_info("assoc %u end: session %llu %s reason %s duration %.3fs "
		 "up %llu bytes %llu packets down %llu bytes %llu packets",
		 a->id, (unsigned long long)a->session_id, f,
		 assoc_end_str(a->end), ev_now(a->t->loop) - a->created,
		 (unsigned long long)c.bytes_orig,
		 (unsigned long long)c.packets_orig,
		 (unsigned long long)c.bytes_reply,
		 (unsigned long long)c.packets_reply);
}

static void schedule_flush(struct assoc_table *t)
{
	if (!ev_is_active(&t->flush))
		ev_prepare_start(t->loop, &t->flush);
	/* Queued from inside a flush (a failed setup handed to the removal
	 * path, an owner closing another association in its callback): the
	 * prepare watcher would only run after the loop's next wakeup, which
	 * may be far; an idle watcher keeps the loop from blocking. */
	if (t->in_flush && !ev_is_active(&t->kick))
		ev_idle_start(t->loop, &t->kick);
}

static void kick_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)revents;
	ev_idle_stop(loop, w);
}

struct assoc *assoc_open(struct assoc_table *t, const struct assoc_req *r,
			 const struct assoc_cbs *cbs, void *arg, uint8_t *rep)
{
	const struct sockaddr *src = (const struct sockaddr *)&r->src;
	const struct sockaddr *dst = (const struct sockaddr *)&r->dst;
	const struct sockaddr *bnd = (const struct sockaddr *)&r->bnd;
	char client[ADDR_STRLEN];
	struct assoc *a;
	size_t alen = 0;

	*rep = S5_REP_GENERAL;
	if (!assoc_table_available(t) || t->shutting_down)
		return NULL;
	if (t->count >= t->max) {
		log_limited(LOG_LVL_WARN, "max-associations (%u) reached",
			    t->max);
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->t = t;
	a->cbs = *cbs;
	a->arg = arg;
	a->session_id = r->session_id;
	a->created = ev_now(t->loop);
	a->flow.family = src->sa_family;
	a->flow.proto = r->proto;
	/* addr_bytes() sets alen: call it before alen is read. */
	const uint8_t *sb = addr_bytes(src, &alen);
	memcpy(a->flow.saddr, sb, alen);
	a->flow.sport = addr_port(src);
	const uint8_t *bb = addr_bytes(bnd, &alen);
	memcpy(a->flow.baddr, bb, alen);
	const uint8_t *db = addr_bytes(dst, &alen);
	memcpy(a->flow.daddr, db, alen);
	a->flow.dport = addr_port(dst);
	if (hash_insert(t, a) < 0) {
		free(a);
		return NULL;
	}
	a->flow.mark = FW_MARK_TAG | a->id;
	a->pool = pool_get(t, a->flow.family, a->flow.baddr);
	if (a->pool == NULL ||
	    port_alloc(t, a->pool, &r->bnd, &a->flow.bport) < 0) {
		if (a->pool)
			log_limited(LOG_LVL_WARN,
				    "no free relay port on %s in %u-%u "
				    "(or it is not a local address)",
				    addr_ip_str(bnd, client, sizeof(client)),
				    t->port_lo, t->port_hi);
		a->pool = NULL;
		hash_remove(t, a);
		free(a);
		return NULL;
	}
	/* The comment is only needed until the elements are in the kernel. */
	if (asprintf(&a->comment, "assoc %u session %llu client %s user %s",
		     a->id, (unsigned long long)r->session_id,
		     addr_str((const struct sockaddr *)&r->client, client,
			      sizeof(client)),
		     r->user && r->user[0] ? r->user : "-") < 0)
		a->comment = NULL;
	a->flow.comment = a->comment;
	a->state = ASSOC_PENDING;
	list_push(&t->pending_add, a);
	schedule_flush(t);
	*rep = S5_REP_SUCCEEDED;
	return a;
}

void assoc_close(struct assoc *a, enum assoc_end why)
{
	struct assoc_table *t = a->t;

	a->cbs.ready = NULL;
	a->cbs.ended = NULL;
	switch (a->state) {
	case ASSOC_PENDING:
		/* Nothing in the kernel yet. */
		assoc_free(a);
		return;
	case ASSOC_INSTALLING:
		/* Closed from another owner's callback while its transaction
		 * is being answered: flush_adds() carries it out. */
		a->close_asked = true;
		a->end = why;
		return;
	case ASSOC_LIVE:
		a->end = why;
		if (t->shutting_down) {
			/* The table is gone already; entries are purged. */
			assoc_log_end(a);
			assoc_free(a);
			return;
		}
		list_remove(a);
		a->state = ASSOC_CLOSING;
		list_push(&t->pending_del, a);
		schedule_flush(t);
		return;
	default:
		return; /* already ending */
	}
}

/* Hands a setup result to the association's owner. */
static void tell_ready(struct assoc *a, uint8_t rep, const struct sockaddr *bnd)
{
	void (*ready)(void *, uint8_t, const struct sockaddr *) = a->cbs.ready;

	a->cbs.ready = NULL;
	if (ready)
		ready(a->arg, rep, bnd);
}

/* A setup that failed with nothing in the kernel: free it (the port goes
 * back to the pool), then tell the owner. */
static void add_failed(struct assoc *a)
{
	struct assoc_cbs cbs = a->cbs;
	void *arg = a->arg;

	a->t->stats.setup_failures++;
	assoc_free(a);
	if (cbs.ready)
		cbs.ready(arg, S5_REP_GENERAL, NULL);
}

/* A setup whose elements may be in the kernel (no answer came, or the
 * kernel holds an element with its key): the owner gets X'01' now, and
 * the association goes down the removal path like an ending one, so its
 * port is reused only once the kernel confirms the elements are gone. */
static void add_doubtful(struct assoc *a)
{
	struct assoc_table *t = a->t;

	t->stats.setup_failures++;
	t->stats.unknown_outcomes++;
	tell_ready(a, S5_REP_GENERAL, NULL);
	a->cbs.ended = NULL;
	free(a->comment);
	a->comment = NULL;
	a->flow.comment = NULL;
	a->end = ASSOC_END_FAILED;
	a->state = ASSOC_CLOSING;
	list_push(&t->pending_del, a);
	schedule_flush(t);
}

static void add_done(struct assoc *a)
{
	struct assoc_table *t = a->t;
	struct sockaddr_storage bnd;
	struct ct_tuple tu;
	char f[300];

	/* Packets sent before the association made an entry that would
	 * bypass the DNAT: delete it now. */
	assoc_flow_tuple(&a->flow, &tu);
	if (ct_delete(t->ct, &tu) > 0)
		log_debug(
			"assoc %u: deleted a conntrack entry that predates it",
			a->id);
	a->state = ASSOC_LIVE;
	free(a->comment);
	a->comment = NULL;
	a->flow.comment = NULL;
	if (t->track)
		track_flow_init(t->track, &a->tf);
	t->stats.opened++;
	flow_sockaddr(a->flow.family, a->flow.baddr, a->flow.bport, &bnd);
	flow_str(&a->flow, f, sizeof(f));
	log_info("assoc %u start: session %llu %s", a->id,
		 (unsigned long long)a->session_id, f);
	tell_ready(a, S5_REP_SUCCEEDED, (struct sockaddr *)&bnd);
	if (a->close_asked) /* its owner left while it was installed */
		assoc_close(a, a->end);
}

/* Transactions tried for one set of pending associations: a refused
 * chunk is retried without the flows the kernel blamed. */
#define ADD_ROUNDS 3

/*
 * Installs every pending association: one transaction per FW_CHUNK flows.
 * Per flow, fw_add() says: installed (reply X'00'); refused by the kernel
 * (X'01', nothing in the kernel, port freed); not done because its chunk
 * was refused for another flow (tried again, up to ADD_ROUNDS); unknown
 * (no answer: X'01', then removed like an ending association).  A flow
 * refused with EEXIST meets an element the record does not know: it is
 * removed the same way, which also clears that element.
 */
static void flush_adds(struct assoc_table *t)
{
	size_t n = 0, m;
	struct assoc **v;
	const struct fw_flow **flows;
	enum fw_result *res;
	int *errs;
	char err[256] = "";

	for (struct assoc *a = t->pending_add.head; a; a = a->next)
		n++;
	v = calloc(n, sizeof(*v));
	flows = calloc(n, sizeof(*flows));
	res = calloc(n, sizeof(*res));
	errs = calloc(n, sizeof(*errs));
	if (!v || !flows || !res || !errs) {
		/* Still pending: the sweep timer tries again. */
		log_warnx("out of memory installing associations; retrying");
		if (!ev_is_active(&t->sweep))
			ev_timer_again(t->loop, &t->sweep);
		goto out;
	}
	m = 0;
	while (t->pending_add.head) {
		struct assoc *a = t->pending_add.head;
		list_remove(a);
		a->state = ASSOC_INSTALLING;
		v[m++] = a;
	}
	for (int round = 0; round < ADD_ROUNDS && m > 0; round++) {
		size_t k = 0;
		for (size_t i = 0; i < m; i++)
			flows[i] = &v[i]->flow;
		if (fw_add(t->fw, flows, m, FW_ELEM_ALL, res, errs, err,
			   sizeof(err)) < 0)
			log_warnx("nftables refused an association batch "
				  "(round %d, %zu flows): %s",
				  round + 1, m, err);
		for (size_t i = 0; i < m; i++) {
			struct assoc *a = v[i];
			switch (res[i]) {
			case FW_DONE:
				add_done(a);
				break;
			case FW_REFUSED:
				log_warnx("assoc %u: the kernel refused its "
					  "elements: %s",
					  a->id, strerror(errs[i]));
				if (errs[i] == EEXIST)
					add_doubtful(a);
				else
					add_failed(a);
				break;
			case FW_UNKNOWN:
				log_warnx(
					"assoc %u: no answer from the kernel; "
					"removing whatever it installed",
					a->id);
				add_doubtful(a);
				break;
			case FW_NOT_DONE:
				if (round + 1 < ADD_ROUNDS && !a->close_asked)
					v[k++] = a; /* again, without the others
						     */
				else
					add_failed(a);
				break;
			}
		}
		m = k;
	}
out:
	free(v);
	free(flows);
	free(res);
	free(errs);
}

/* Removes the relay elements of every closing association in one
 * transaction, then their conntrack entries.  An association whose
 * elements the kernel did not confirm gone stays closing (its port
 * reserved) and is tried again by the sweep timer. */
static void flush_dels(struct assoc_table *t)
{
	size_t n = 0, i = 0;
	const struct fw_flow **flows;
	enum fw_result *res;
	struct assoc **v;
	char err[256] = "";

	for (struct assoc *a = t->pending_del.head; a; a = a->next)
		n++;
	flows = calloc(n, sizeof(*flows));
	res = calloc(n, sizeof(*res));
	v = calloc(n, sizeof(*v));
	if (flows == NULL || res == NULL || v == NULL) {
		if (!ev_is_active(&t->sweep))
			ev_timer_again(t->loop, &t->sweep);
		goto out;
	}
	for (struct assoc *a = t->pending_del.head; a; a = a->next) {
		v[i] = a;
		flows[i++] = &a->flow;
	}
	if (fw_del(t->fw, flows, n, FW_ELEM_RELAY, res, err, sizeof(err)) < 0)
		log_warnx("nftables: deleting association elements: %s", err);
	for (i = 0; i < n; i++) {
		struct assoc *a = v[i];
		struct ct_tuple tu;
		struct ct_flow last;

		if (res[i] != FW_DONE) {
			t->stats.kernel_retries++;
			if (!a->warned)
				log_warnx(
					"assoc %u: its elements could not be "
					"confirmed deleted (%s); trying again",
					a->id, fw_result_str(res[i]));
			a->warned = true;
			continue; /* stays on pending_del */
		}
		list_remove(a);
		a->warned = false;
		assoc_flow_tuple(&a->flow, &tu);
		/* Read the counters on the way out: the entry is gone next. */
		if (ct_take(t->ct, &tu, &last) < 0) {
			t->stats.conntrack_errors++;
			log_warn("assoc %u: deleting its conntrack entry; a "
				 "dump will find it",
				 a->id);
			if (t->track)
				track_repair_soon(t->track);
		} else {
			track_flow_final(&a->tf, &tu, &last);
		}
		assoc_log_end(a);
		a->state = ASSOC_QUARANTINE;
		a->until = ev_now(t->loop) + ASSOC_QUARANTINE_SECS;
		list_push(&t->quarantine, a);
	}
	if ((t->quarantine.head || t->pending_del.head) &&
	    !ev_is_active(&t->sweep))
		ev_timer_again(t->loop, &t->sweep);
out:
	free(flows);
	free(res);
	free(v);
}

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct assoc_table *t = w->data;

	(void)revents;
	ev_prepare_stop(loop, w);
	if (t->fw == NULL)
		return; /* shut down */
	ev_now_update(loop);
	ev_tstamp t0 = ev_now(loop);
	t->in_flush = true;
	if (t->pending_del.head)
		flush_dels(t);
	if (t->pending_add.head)
		flush_adds(t);
	t->in_flush = false;
	ev_now_update(loop);
	if (ev_now(loop) - t0 > 0.010)
		log_debug("association batch took %.1f ms",
			  (ev_now(loop) - t0) * 1000);
}

/* Releases endpoints whose quarantine is over, in one transaction; a
 * port goes back to the pool only once its element is confirmed gone.
 * Also tries again what failed before (removals, out-of-memory adds). */
static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct assoc_table *t = w->data;
	const struct fw_flow **flows = NULL;
	enum fw_result *res = NULL;
	struct assoc **v = NULL;
	size_t n = 0, i = 0;
	ev_tstamp now = ev_now(loop);
	char err[256] = "";

	(void)revents;
	if (t->fw == NULL) {
		ev_timer_stop(loop, w);
		return; /* shut down */
	}
	for (struct assoc *a = t->quarantine.head; a; a = a->next)
		if (a->until <= now)
			n++;

	if (n > 0 && (flows = calloc(n, sizeof(*flows))) != NULL &&
	    (res = calloc(n, sizeof(*res))) != NULL &&
	    (v = calloc(n, sizeof(*v))) != NULL) {
		for (struct assoc *a = t->quarantine.head; a; a = a->next) {
			if (a->until <= now) {
				v[i] = a;
				flows[i++] = &a->flow;
			}
		}
		if (fw_del(t->fw, flows, n, FW_ELEM_BOUND, res, err,
			   sizeof(err)) < 0)
			log_warnx("nftables: releasing endpoints: %s", err);
		for (i = 0; i < n; i++) {
			if (res[i] == FW_DONE) {
				assoc_free(v[i]);
			} else {
				t->stats.kernel_retries++;
				if (!v[i]->warned)
					log_warnx(
						"assoc %u: endpoint release "
						"not confirmed (%s); its port "
						"stays reserved",
						v[i]->id,
						fw_result_str(res[i]));
				v[i]->warned = true;
			}
		}
	}
	free(flows);
	free(res);
	free(v);
	if (t->pending_del.head || t->pending_add.head)
		schedule_flush(t);
	if (t->quarantine.head == NULL && t->pending_del.head == NULL &&
	    t->pending_add.head == NULL)
		ev_timer_stop(loop, w);
}

static void snat_from_cfg(const struct cfg *c, struct fw_snat *s)
{
	memset(s, 0, sizeof(*s));
	s->mode = c->snat == CFG_SNAT_NONE	? FW_SNAT_NONE
		  : c->snat == CFG_SNAT_ADDRESS ? FW_SNAT_ADDRESS
						: FW_SNAT_MASQUERADE;
	if (c->snat4.ss_family == AF_INET) {
		size_t l;
		s->has4 = true;
		memcpy(s->addr4, addr_bytes((struct sockaddr *)&c->snat4, &l),
		       4);
	}
	if (c->snat6.ss_family == AF_INET6) {
		size_t l;
		s->has6 = true;
		memcpy(s->addr6, addr_bytes((struct sockaddr *)&c->snat6, &l),
		       16);
	}
}

/* --- flow tracking: the table as track.c sees it ------------------- */

static enum track_owner track_lookup(void *arg, uint32_t id,
				     struct track_flow **tf,
				     struct ct_tuple *key)
{
	struct assoc *a = assoc_find(arg, id);

	if (a == NULL || a->state == ASSOC_QUARANTINE)
		return TRACK_OWNER_NONE; /* its relay is gone */
	if (a->state != ASSOC_LIVE)
		return TRACK_OWNER_BUSY;
	*tf = &a->tf;
	assoc_flow_tuple(&a->flow, key);
	return TRACK_OWNER_LIVE;
}

static void track_each(void *arg,
		       void (*fn)(void *ctx, uint32_t id, uint8_t proto,
				  struct track_flow *tf),
		       void *ctx)
{
	struct assoc_table *t = arg;

	for (size_t i = 0; i < t->nbuckets; i++)
		for (struct assoc *a = t->buckets[i]; a; a = a->hnext)
			if (a->state == ASSOC_LIVE)
				fn(ctx, a->id, a->flow.proto, &a->tf);
}

static void track_ended(void *arg, uint32_t id, enum track_end why)
{
	static const enum assoc_end map[] = {
		[TRACK_END_TARGET_FIN] = ASSOC_END_TARGET_FIN,
		[TRACK_END_FLOW_END] = ASSOC_END_FLOW_END,
		[TRACK_END_IDLE] = ASSOC_END_IDLE,
	};

	assoc_terminate_id(arg, id, map[why]);
}

static int track_nat_packets(void *arg, uint32_t id, uint64_t *packets)
{
	struct assoc_table *t = arg;
	struct assoc *a = assoc_find(t, id);

	if (a == NULL || t->fw == NULL)
		return -1;
	return fw_elem_packets(t->fw, &a->flow, packets);
}

/* The one-time hint for an association whose flow something after our
 * NAT drops (track.c decides; fwcheck says which chain). */
static void track_stalled(void *arg, uint32_t id, enum track_stall why,
			  uint64_t packets)
{
	struct assoc_table *t = arg;
	struct assoc *a = assoc_find(t, id);
	char f[300];

	if (a == NULL || t->fwc == NULL)
		return;
	flow_str(&a->flow, f, sizeof(f));
	if (why == TRACK_STALL_NO_FLOW) {
		log_warnx("assoc %u: %s: %llu packet%s relayed (DNAT) but the "
			  "kernel kept no flow: something after socksgate's "
			  "NAT drops them",
			  a->id, f, (unsigned long long)packets,
			  packets == 1 ? "" : "s");
		fwcheck_explain(t->fwc, FW_PKT_NEW, ev_now(t->loop));
	} else {
		log_warnx("assoc %u: %s: the target answered the client's SYN "
			  "but the handshake never completed: its answer is "
			  "dropped on the way back, after socksgate's NAT",
			  a->id, f);
		fwcheck_explain(t->fwc, FW_PKT_EST, ev_now(t->loop));
	}
}

static const struct track_cbs track_cbs = {
	track_lookup, track_each, track_ended, track_nat_packets, track_stalled,
};

/* Reads the firewall and says whether it drops relayed flows. */
static void check_firewall(struct assoc_table *t, const char *when)
{
	if (t->fwc)
		fwcheck_run(t->fwc, when);
}

struct assoc_table *assoc_table_new(struct ev_loop *loop, const struct cfg *cfg,
				    bool *fatal)
{
	struct assoc_table *t = calloc(1, sizeof(*t));
	struct fw_open_opts fo = {.owner = true,
				  .set_size = cfg->kernel_set_size};
	enum fw_open_error why;
	char err[512];
	int purged;

	*fatal = false;
	if (t == NULL)
		return NULL;
	t->loop = loop;
	t->next_id = 1;
	if (hash_grow(t) < 0) {
		free(t);
		return NULL;
	}
	ev_prepare_init(&t->flush, flush_cb);
	t->flush.data = t;
	ev_idle_init(&t->kick, kick_cb);
	ev_init(&t->sweep, sweep_cb);
	t->sweep.repeat = ASSOC_SWEEP_SECS;
	t->sweep.data = t;
	snat_from_cfg(cfg, &t->snat);
	assoc_table_reconfigure(t, cfg);
	/* Claim the table before touching anything: if another live
	 * socksgated owns it, the kernel refuses and we leave its rules and
	 * its flows alone. */
	t->fw = fw_open(&t->snat, &fo, &why, err, sizeof(err));
	if (t->fw == NULL) {
		if (why == FW_OPEN_OWNED) {
			log_error("%s", err);
			*fatal = true;
			assoc_table_free(t);
			return NULL;
		}
		log_error("TRANSPARENT unavailable (answered X'07'): "
			  "nftables: %s",
			  err);
		return t;
	}
	t->ct = ct_open(err, sizeof(err));
	if (t->ct == NULL) {
		log_error("TRANSPARENT unavailable (answered X'07'): %s", err);
		fw_close(t->fw);
		t->fw = NULL;
		return t;
	}
	/* Flows NATed by an earlier run (killed before it could clean up)
	 * would keep passing: delete them before relaying anything. */
	purged = ct_purge_mark(t->ct, FW_MARK_TAG, FW_MARK_MASK);
	if (purged > 0)
		log_info("deleted %d conntrack entries left by an earlier run",
			 purged);
	log_info("nftables table inet %s installed", FW_TABLE);
	t->track = track_new(loop, t->ct, &track_cbs, t);
	if (t->track == NULL) {
		assoc_table_free(t);
		return NULL;
	}
	track_start(t->track, cfg);
	t->fwc = fwcheck_new();
	check_firewall(t, "start");
	return t;
}

void assoc_table_reconfigure(struct assoc_table *t, const struct cfg *cfg)
{
	struct fw_snat snat;

	t->port_lo = cfg->relay_port_lo;
	t->port_hi = cfg->relay_port_hi;
	t->max = cfg->max_associations;
	t->sock_kinds = local_kinds();
	if (t->track)
		track_reconfigure(t->track, cfg);
	check_firewall(t, "reload");
	snat_from_cfg(cfg, &snat);
	/* The whole setting counts (mode and addresses), not the mode. */
	if (t->fw && memcmp(&snat, &t->snat, sizeof(snat)) != 0) {
		char err[256];
		if (fw_set_snat(t->fw, &snat, err, sizeof(err)) < 0) {
			log_warnx("nftables: changing snat: %s; the previous "
				  "snat stays",
				  err);
			return;
		}
		log_info("snat changed");
	}
	t->snat = snat;
}

void assoc_table_shutdown(struct assoc_table *t)
{
	int purged;

	if (t == NULL || t->shutting_down)
		return;
	t->shutting_down = true;
	/* Last counters for the end log lines, before the flows go. */
	if (t->track)
		track_refresh(t->track);
	track_stop(t->track);
	ev_prepare_stop(t->loop, &t->flush);
	ev_idle_stop(t->loop, &t->kick);
	ev_timer_stop(t->loop, &t->sweep);
	/* Closing the owning socket drops the whole table at once, which
	 * is faster than deleting elements association by association. */
	fw_close(t->fw);
	t->fw = NULL;
	if (t->ct) {
		purged = ct_purge_mark(t->ct, FW_MARK_TAG, FW_MARK_MASK);
		if (purged > 0)
			log_info("shutdown: deleted %d conntrack entries",
				 purged);
	}
	/* Associations queued for removal, or quarantined, are done now;
	 * pending ones are closed by their owners (as live ones). */
	while (t->pending_del.head) {
		struct assoc *a = t->pending_del.head;
		assoc_log_end(a);
		assoc_free(a);
	}
	while (t->quarantine.head)
		assoc_free(t->quarantine.head);
}

static void assoc_terminate(struct assoc *a, enum assoc_end why)
{
	void (*ended)(void *, enum assoc_end) = a->cbs.ended;
	void *arg = a->arg;

	if (a->state != ASSOC_LIVE)
		return;
	assoc_close(a, why);
	if (ended)
		ended(arg, why);
}

int assoc_terminate_id(struct assoc_table *t, uint32_t id, enum assoc_end why)
{
	struct assoc *a = assoc_find(t, id);

	if (a == NULL || a->state != ASSOC_LIVE)
		return -1;
	assoc_terminate(a, why);
	return 0;
}

void assoc_get_info(const struct assoc *a, struct assoc_info *ai)
{
	memset(ai, 0, sizeof(*ai));
	ai->id = a->id;
	ai->session_id = a->session_id;
	ai->proto = a->flow.proto;
	flow_sockaddr(a->flow.family, a->flow.saddr, a->flow.sport, &ai->src);
	flow_sockaddr(a->flow.family, a->flow.baddr, a->flow.bport, &ai->bnd);
	flow_sockaddr(a->flow.family, a->flow.daddr, a->flow.dport, &ai->dst);
	ai->age = ev_now(a->t->loop) - a->created;
	ai->state = state_names[a->state];
	struct track_count c;
	track_flow_counts(&a->tf, &c);
	ai->packets_orig = c.packets_orig;
	ai->bytes_orig = c.bytes_orig;
	ai->packets_reply = c.packets_reply;
	ai->bytes_reply = c.bytes_reply;
}

void assoc_table_refresh(struct assoc_table *t)
{
	if (t->track && !t->shutting_down)
		track_refresh(t->track);
}

const struct assoc_stats *assoc_table_stats(struct assoc_table *t)
{
	if (t->track) {
		const struct track_stats *ts = track_get_stats(t->track);
		t->stats.events = ts->events;
		t->stats.event_overruns = ts->event_overruns;
		t->stats.resyncs = ts->resyncs;
		t->stats.dump_failures = ts->dump_failures;
		t->stats.orphans_deleted = ts->orphans_deleted;
		t->stats.track_errors = ts->errors;
	}
	if (t->fw) {
		const struct fw_stats *fs = fw_get_stats(t->fw);
		t->stats.nl_transactions = fs->transactions;
		t->stats.nl_errors = fs->errors;
		t->stats.nl_unanswered = fs->unanswered;
		t->stats.nl_stale = fs->stale_acks;
		fw_dropped(t->fw, &t->stats.dropped_packets,
			   &t->stats.dropped_bytes);
	}
	return &t->stats;
}

size_t assoc_table_count(const struct assoc_table *t)
{
	return t->count;
}

void assoc_table_audit(struct assoc_table *t, struct assoc_audit *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct assoc *a = t->buckets[i]; a; a = a->hnext) {
			switch (a->state) {
			case ASSOC_PENDING:
			case ASSOC_INSTALLING:
				out->pending++;
				continue;
			case ASSOC_LIVE:
				out->live++;
				break;
			case ASSOC_CLOSING:
				out->closing++;
				break;
			case ASSOC_QUARANTINE:
				out->quarantine++;
				break;
			default:
				break;
			}
			/* A setup without an answer, or a removal the kernel
			 * did not confirm: its elements may or may not be
			 * there until the removal is confirmed. */
			if (a->warned || a->end == ASSOC_END_FAILED) {
				out->unconfirmed++;
				continue;
			}
			/* Relay elements until the removal is confirmed;
			 * the endpoint until the quarantine release is. */
			out->expected[FW_SET_BOUND]++;
			if (a->state != ASSOC_QUARANTINE) {
				out->expected[FW_SET_ASSOC]++;
				out->expected[FW_SET_DNAT]++;
				out->expected[FW_SET_MARK]++;
			}
		}
	}
	if (t->fw && fw_count_elems(t->fw, out->kernel) == 0) {
		out->kernel_read = true;
		out->consistent = out->unconfirmed == 0 &&
				  memcmp(out->kernel, out->expected,
					 sizeof(out->kernel)) == 0;
	}
}

void assoc_table_free(struct assoc_table *t)
{
	if (t == NULL)
		return;
	assoc_table_shutdown(t);
	ev_prepare_stop(t->loop, &t->flush);
	ev_idle_stop(t->loop, &t->kick);
	ev_timer_stop(t->loop, &t->sweep);
	for (size_t i = 0; i < t->nbuckets; i++) {
		while (t->buckets[i]) {
			struct assoc *a = t->buckets[i];
			if (a->state == ASSOC_LIVE) {
				a->end = ASSOC_END_SHUTDOWN;
				assoc_log_end(a);
			}
			assoc_free(a);
		}
	}
	free(t->buckets);
	while (t->pools) {
		struct port_pool *p = t->pools;
		t->pools = p->next;
		free(p);
	}
	track_free(t->track);
	ct_close(t->ct);
	fwcheck_free(t->fwc);
	free(t);
}
