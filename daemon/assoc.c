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
#include "log.h"
#include "s5_proto.h"
#include "srv.h"

const char *assoc_end_str(enum assoc_end e)
{
	static const char *const names[] = {
		"n1-closed", "target-fin", "flow-end", "idle",
		"operator",  "shutdown",   "policy"};
	return (unsigned)e < sizeof(names) / sizeof(names[0]) ? names[e] : "?";
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

/* 1 if no local socket uses bnd:port for this kind of protocol, 0 if one
 * does, -1 if bnd is not a local address. */
static int port_free_locally(const struct sockaddr_storage *bnd, uint16_t port,
			     uint8_t proto)
{
	struct sockaddr_storage ss = *bnd;
	int type = (proto == IPPROTO_UDP || proto == CFG_PTCL_UDPLITE)
			   ? SOCK_DGRAM
			   : SOCK_STREAM;
	int fd = socket(ss.ss_family, type | SOCK_CLOEXEC, 0), rc = 1;

	if (fd < 0)
		return 1; /* cannot tell; the kernel rules still work */
	addr_set_port((struct sockaddr *)&ss, port);
	if (bind(fd, (struct sockaddr *)&ss, addr_len((struct sockaddr *)&ss)) <
	    0)
		rc = errno == EADDRNOTAVAIL ? -1 : 0;
	close(fd);
	return rc;
}

/* Picks a BND.PORT: free in our pool and not used by a local socket. */
static int port_alloc(struct assoc_table *t, struct port_pool *p,
		      const struct sockaddr_storage *bnd, uint8_t proto,
		      uint16_t *out)
{
	uint32_t range = (uint32_t)t->port_hi - t->port_lo + 1;

	for (uint32_t i = 0; i < range; i++) {
		uint16_t port = (uint16_t)(t->port_lo + (p->hint + i) % range);
		if (port_used(p, port))
			continue;
		int local = port_free_locally(bnd, port, proto);
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

static void flow_str(const struct fw_flow *f, char *out, size_t cap)
{
	struct sockaddr_storage s, b, d;
	char ss[ADDR_STRLEN], bs[ADDR_STRLEN], ds[ADDR_STRLEN];
	size_t alen = f->family == AF_INET6 ? 16 : 4;
	struct s5_addr w;

	memset(&w, 0, sizeof(w));
	w.atyp = alen == 16 ? S5_ATYP_IPV6 : S5_ATYP_IPV4;
	memcpy(w.u.v6, f->saddr, alen);
	w.port = f->sport;
	addr_from_s5(&w, &s);
	memcpy(w.u.v6, f->baddr, alen);
	w.port = f->bport;
	addr_from_s5(&w, &b);
	memcpy(w.u.v6, f->daddr, alen);
	w.port = f->dport;
	addr_from_s5(&w, &d);
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
	struct assoc_count c = a->done;

	c.packets_orig += a->cur.packets_orig;
	c.bytes_orig += a->cur.bytes_orig;
	c.packets_reply += a->cur.packets_reply;
	c.bytes_reply += a->cur.bytes_reply;
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
		log_warnx("max-associations (%u) reached", t->max);
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
	    port_alloc(t, a->pool, &r->bnd, r->proto, &a->flow.bport) < 0) {
		if (a->pool)
			log_warnx("no free relay port on %s in %u-%u "
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

/* Installs every pending association in one transaction (two if the
 * first was refused because of some of them). */
static void flush_adds(struct assoc_table *t)
{
	size_t n = 0, i = 0;
	struct assoc **v;
	const struct fw_flow **flows;
	bool *failed;
	char err[256] = "";

	for (struct assoc *a = t->pending_add.head; a; a = a->next)
		n++;
	v = calloc(n, sizeof(*v));
	flows = calloc(n, sizeof(*flows));
	failed = calloc(n, sizeof(*failed));
	if (!v || !flows || !failed) {
		free(v);
		free(flows);
		free(failed);
		return; /* retried at the next iteration */
	}
	while (t->pending_add.head) {
		struct assoc *a = t->pending_add.head;
		list_remove(a);
		v[i] = a;
		flows[i++] = &a->flow;
	}
	if (fw_add(t->fw, flows, n, FW_ELEM_ALL, failed, err, sizeof(err)) <
	    0) {
		/* Nothing was added.  Retry the flows not to blame. */
		size_t m = 0;
		bool *f2 = calloc(n, sizeof(*f2));
		const struct fw_flow **retry = calloc(n, sizeof(*retry));
		log_warnx("nftables refused an association batch: %s", err);
		for (i = 0; i < n; i++)
			if (!failed[i])
				retry[m++] = flows[i];
		if (m > 0 && f2 && retry &&
		    fw_add(t->fw, retry, m, FW_ELEM_ALL, f2, err, sizeof(err)) <
			    0) {
			log_warnx("nftables refused the retry: %s", err);
			for (i = 0; i < n; i++)
				failed[i] = true;
		}
		free(f2);
		free(retry);
	}
	for (i = 0; i < n; i++) {
		struct assoc *a = v[i];
		void (*ready)(void *, uint8_t, const struct sockaddr *) =
			a->cbs.ready;
		void *arg = a->arg;
		if (failed[i]) {
			t->stats.setup_failures++;
			assoc_free(a);
			if (ready)
				ready(arg, S5_REP_GENERAL, NULL);
			continue;
		}
		struct ct_tuple tu;
		struct sockaddr_storage bnd;
		struct s5_addr w;
		size_t alen = a->flow.family == AF_INET6 ? 16 : 4;

		/* Packets sent before the association made an entry that
		 * would bypass the DNAT: delete it now. */
		assoc_flow_tuple(&a->flow, &tu);
		if (ct_delete(t->ct, &tu) > 0)
			log_debug("assoc %u: deleted a conntrack entry that "
				  "predates it",
				  a->id);
		a->state = ASSOC_LIVE;
		free(a->comment);
		a->comment = NULL;
		a->flow.comment = NULL;
		a->last_activity = ev_now(t->loop);
		t->stats.opened++;
		memset(&w, 0, sizeof(w));
		w.atyp = alen == 16 ? S5_ATYP_IPV6 : S5_ATYP_IPV4;
		memcpy(w.u.v6, a->flow.baddr, alen);
		w.port = a->flow.bport;
		addr_from_s5(&w, &bnd);
		char f[300];
		flow_str(&a->flow, f, sizeof(f));
		log_info("assoc %u start: session %llu %s", a->id,
			 (unsigned long long)a->session_id, f);
		if (ready)
			ready(arg, S5_REP_SUCCEEDED, (struct sockaddr *)&bnd);
	}
	free(v);
	free(flows);
	free(failed);
}

/* Removes the relay elements of every closing association in one
 * transaction, then their conntrack entries. */
static void flush_dels(struct assoc_table *t)
{
	size_t n = 0, i = 0;
	const struct fw_flow **flows;
	char err[256];

	for (struct assoc *a = t->pending_del.head; a; a = a->next)
		n++;
	flows = calloc(n, sizeof(*flows));
	if (flows == NULL)
		return;
	for (struct assoc *a = t->pending_del.head; a; a = a->next)
		flows[i++] = &a->flow;
	if (fw_del(t->fw, flows, n, FW_ELEM_RELAY, err, sizeof(err)) < 0)
		log_warnx("nftables: deleting association elements: %s", err);
	free(flows);
	while (t->pending_del.head) {
		struct assoc *a = t->pending_del.head;
		struct ct_tuple tu;

		struct ct_flow last;

		list_remove(a);
		assoc_flow_tuple(&a->flow, &tu);
		/* Read the counters on the way out: the entry is gone next. */
		if (ct_take(t->ct, &tu, &last) < 0) {
			t->stats.conntrack_errors++;
			log_warn("assoc %u: deleting its conntrack entry",
				 a->id);
		} else {
			assoc_track_final(a, &last);
		}
		assoc_log_end(a);
		a->state = ASSOC_QUARANTINE;
		a->until = ev_now(t->loop) + ASSOC_QUARANTINE_SECS;
		list_push(&t->quarantine, a);
	}
	if (!ev_is_active(&t->sweep))
		ev_timer_again(t->loop, &t->sweep);
}

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct assoc_table *t = w->data;

	(void)revents;
	ev_prepare_stop(loop, w);
	ev_now_update(loop);
	ev_tstamp t0 = ev_now(loop);
	if (t->pending_del.head)
		flush_dels(t);
	if (t->pending_add.head)
		flush_adds(t);
	ev_now_update(loop);
	if (ev_now(loop) - t0 > 0.010)
		log_debug("association batch took %.1f ms",
			  (ev_now(loop) - t0) * 1000);
}

/* Releases endpoints whose quarantine is over, in one transaction. */
static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct assoc_table *t = w->data;
	const struct fw_flow **flows;
	size_t n = 0, i = 0;
	ev_tstamp now = ev_now(loop);
	char err[256];

	(void)revents;
	for (struct assoc *a = t->quarantine.head; a && a->until <= now;
	     a = a->next)
		n++;
	if (n > 0 && (flows = calloc(n, sizeof(*flows))) != NULL) {
		for (struct assoc *a = t->quarantine.head; i < n; a = a->next)
			flows[i++] = &a->flow;
		if (fw_del(t->fw, flows, n, FW_ELEM_BOUND, err, sizeof(err)) <
		    0)
			log_warnx("nftables: releasing endpoints: %s", err);
		free(flows);
		for (i = 0; i < n; i++)
			assoc_free(t->quarantine.head);
	}
	if (t->quarantine.head == NULL)
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

struct assoc_table *assoc_table_new(struct srv *srv, const struct cfg *cfg)
{
	struct assoc_table *t = calloc(1, sizeof(*t));
	struct fw_snat snat;
	char err[512];
	int purged;

	if (t == NULL)
		return NULL;
	t->srv = srv;
	t->loop = srv->loop;
	t->next_id = 1;
	if (hash_grow(t) < 0) {
		free(t);
		return NULL;
	}
	ev_prepare_init(&t->flush, flush_cb);
	t->flush.data = t;
	ev_init(&t->sweep, sweep_cb);
	t->sweep.repeat = 0.5;
	t->sweep.data = t;
	assoc_table_reconfigure(t, cfg);
	t->ct = ct_open(err, sizeof(err));
	if (t->ct == NULL) {
		log_error("TRANSPARENT unavailable: %s", err);
		return t;
	}
	/* Flows NATed by an earlier run (killed before it could clean up)
	 * would keep passing: delete them before installing anything. */
	purged = ct_purge_mark(t->ct, FW_MARK_TAG, FW_MARK_MASK);
	if (purged > 0)
		log_info("deleted %d conntrack entries left by an earlier run",
			 purged);
	snat_from_cfg(cfg, &snat);
	t->fw = fw_open(&snat, true, err, sizeof(err));
	if (t->fw == NULL) {
		log_error("TRANSPARENT unavailable: nftables: %s", err);
		return t;
	}
	log_info("nftables table inet %s installed", FW_TABLE);
	assoc_track_open(t, cfg);
	return t;
}

void assoc_table_reconfigure(struct assoc_table *t, const struct cfg *cfg)
{
	t->port_lo = cfg->relay_port_lo;
	t->port_hi = cfg->relay_port_hi;
	t->max = cfg->max_associations;
	assoc_track_reconfigure(t, cfg);
	if (t->fw && cfg->snat != t->snat_mode) {
		struct fw_snat snat;
		char err[256];
		snat_from_cfg(cfg, &snat);
		if (fw_set_snat(t->fw, &snat, err, sizeof(err)) < 0)
			log_warnx("nftables: changing snat: %s", err);
	}
	t->snat_mode = cfg->snat;
}

void assoc_table_shutdown(struct assoc_table *t)
{
	int purged;

	if (t == NULL || t->shutting_down)
		return;
	t->shutting_down = true;
	/* Last counters for the end log lines, before the flows go. */
	assoc_table_refresh(t);
	assoc_track_close(t);
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
	/* Associations queued for removal are done now. */
	while (t->pending_del.head) {
		struct assoc *a = t->pending_del.head;
		assoc_log_end(a);
		assoc_free(a);
	}
}

void assoc_terminate(struct assoc *a, enum assoc_end why)
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

static void sockaddr_of(int family, const uint8_t *addr, uint16_t port,
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

void assoc_get_info(const struct assoc *a, struct assoc_info *ai)
{
	static const char *const states[] = {"pending", "live", "closing",
					     "quarantine"};

	memset(ai, 0, sizeof(*ai));
	ai->id = a->id;
	ai->session_id = a->session_id;
	ai->proto = a->flow.proto;
	sockaddr_of(a->flow.family, a->flow.saddr, a->flow.sport, &ai->src);
	sockaddr_of(a->flow.family, a->flow.baddr, a->flow.bport, &ai->bnd);
	sockaddr_of(a->flow.family, a->flow.daddr, a->flow.dport, &ai->dst);
	ai->age = ev_now(a->t->loop) - a->created;
	ai->state = states[a->state];
	ai->packets_orig = a->done.packets_orig + a->cur.packets_orig;
	ai->bytes_orig = a->done.bytes_orig + a->cur.bytes_orig;
	ai->packets_reply = a->done.packets_reply + a->cur.packets_reply;
	ai->bytes_reply = a->done.bytes_reply + a->cur.bytes_reply;
}

const struct assoc_stats *assoc_table_stats(const struct assoc_table *t)
{
	return &t->stats;
}

size_t assoc_table_count(const struct assoc_table *t)
{
	return t->count;
}

struct fw *assoc_table_fw(struct assoc_table *t)
{
	return t->fw;
}

void assoc_table_free(struct assoc_table *t)
{
	if (t == NULL)
		return;
	assoc_table_shutdown(t);
	ev_prepare_stop(t->loop, &t->flush);
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
	ct_close(t->ct);
	free(t);
}
