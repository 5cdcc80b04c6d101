/*
 * track: see track.h.
 */
#include "track.h"

#include <errno.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fw_build.h"
#include "grow.h"
#include "log.h"

#define TRACK_POLL_INTERVAL 1.0
#define TRACK_REAP_INTERVAL 2.0
#define TRACK_DEFAULT_RCVBUF (4 * 1024 * 1024)
#define TRACK_REPAIR_DELAY 1.0
/* Orphan entries deleted after one dump at most (the rest next time). */
#define TRACK_ORPHANS_MAX 4096
/* Stall watch (track_stall): how often, for how long after an
 * association starts, how long NATed packets may wait for their
 * conntrack entry, how long a TCP handshake may stay half open, how many nat
 * counters are read per tick (a netlink query each).  Unit tests shorten
 * the times. */
#ifndef TRACK_STALL_TICK_SECS
#define TRACK_STALL_TICK_SECS 2.0
#endif
#ifndef TRACK_STALL_WATCH_SECS
#define TRACK_STALL_WATCH_SECS 60.0
#endif
#ifndef TRACK_STALL_CONFIRM_SECS
#define TRACK_STALL_CONFIRM_SECS 1.0
#endif
#ifndef TRACK_STALL_HALF_OPEN_SECS
#define TRACK_STALL_HALF_OPEN_SECS 5.0
#endif
#define TRACK_STALL_QUERIES 32

struct track {
	struct ev_loop *loop;
	struct ct *ct;
	struct track_cbs cbs;
	void *arg;
	struct ct_events *events;
	ev_io events_io;
	ev_timer timer;	 /* polling fallback, reaping, idle checks */
	ev_timer repair; /* a failed dump or conntrack delete: again */
	ev_timer stall;	 /* the stall watch; runs while some are watched */
	bool polling;	 /* no conntrack events: poll by dumps */
	bool stopped;
	uint32_t dump_gen;
	bool close_on_target_fin;
	bool close_on_flow_end[256];
	unsigned idle_timeout;
	struct track_stats stats;
};

static bool same_tuple(const struct ct_tuple *a, const struct ct_tuple *b)
{
	size_t alen = a->family == AF_INET6 ? 16 : 4;

	return a->family == b->family && a->proto == b->proto &&
	       a->sport == b->sport && a->dport == b->dport &&
	       memcmp(a->src, b->src, alen) == 0 &&
	       memcmp(a->dst, b->dst, alen) == 0;
}

static void count_add(struct track_count *to, const struct track_count *c)
{
	to->packets_orig += c->packets_orig;
	to->bytes_orig += c->bytes_orig;
	to->packets_reply += c->packets_reply;
	to->bytes_reply += c->bytes_reply;
}

/* Takes the counters of f as those of the live flow. */
static void take_counters(struct track_flow *tf, const struct ct_flow *f,
			  ev_tstamp now)
{
	if (!f->has_counters)
		return;
	if (f->packets_orig != tf->cur.packets_orig ||
	    f->packets_reply != tf->cur.packets_reply)
		tf->last_activity = now;
	tf->cur.packets_orig = f->packets_orig;
	tf->cur.bytes_orig = f->bytes_orig;
	tf->cur.packets_reply = f->packets_reply;
	tf->cur.bytes_reply = f->bytes_reply;
}

/* The live flow is gone: its counters move to `done`. */
static void flow_gone(struct track_flow *tf)
{
	count_add(&tf->done, &tf->cur);
	memset(&tf->cur, 0, sizeof(tf->cur));
	tf->seen_flow = false;
}

void track_flow_init(struct track *tr, struct track_flow *tf)
{
	memset(tf, 0, sizeof(*tf));
	tf->last_activity = ev_now(tr->loop);
	tf->born = tf->last_activity;
	if (!tr->stopped && !ev_is_active(&tr->stall)) {
		ev_timer_set(&tr->stall, TRACK_STALL_TICK_SECS,
			     TRACK_STALL_TICK_SECS);
		ev_timer_start(tr->loop, &tr->stall);
	}
}

void track_flow_counts(const struct track_flow *tf, struct track_count *out)
{
	*out = tf->done;
	count_add(out, &tf->cur);
}

void track_flow_final(struct track_flow *tf, const struct ct_tuple *key,
		      const struct ct_flow *f)
{
	if (f->has_counters && same_tuple(&f->orig, key))
		take_counters(tf, f, tf->last_activity);
	flow_gone(tf);
}

struct track_ctx {
	struct track *tr;
	bool act; /* false: update counters only (list, shutdown) */
	/* Dumps only: marked entries that belong to no live association. */
	struct ct_tuple *orphans;
	size_t norphans, cap;
};

/* A marked entry whose association is gone (its conntrack delete failed,
 * or it slipped in during teardown): it still NATs; delete it after the
 * dump (the dump's socket is busy until then). */
static void note_orphan(struct track_ctx *x, const struct ct_flow *f)
{
	if (x->norphans >= TRACK_ORPHANS_MAX ||
	    grow(&x->orphans, &x->cap, x->norphans + 1, sizeof(*x->orphans),
		 16) < 0)
		return;
	x->orphans[x->norphans++] = f->orig;
}

static void track_flow_cb(void *arg, const struct ct_flow *f)
{
	struct track_ctx *x = arg;
	struct track *tr = x->tr;
	struct track_flow *tf = NULL;
	struct ct_tuple key;
	uint32_t id;
	enum track_owner own;

	if ((f->mark & FW_MARK_MASK) != FW_MARK_TAG)
		return;
	id = f->mark & ~FW_MARK_MASK;
	own = tr->cbs.lookup(tr->arg, id, &tf, &key);
	if (own == TRACK_OWNER_NONE && f->type == CT_EV_DUMP && x->act) {
		note_orphan(x, f);
		return;
	}
	if (own != TRACK_OWNER_LIVE || !same_tuple(&f->orig, &key))
		return; /* e.g. the DESTROY our own teardown caused */
	if (f->type == CT_EV_DUMP)
		tf->dump_gen = tr->dump_gen;
	else
		tr->stats.events++;
	tf->seen_flow = true;
	if (!tf->ever_seen) {
		tf->ever_seen = true;
		tf->seen_at = ev_now(tr->loop);
	}
	if (f->tcp_state)
		tf->tcp_state = f->tcp_state;
	take_counters(tf, f, ev_now(tr->loop));
	if (f->type == CT_EV_DESTROY)
		flow_gone(tf);
	if (!x->act)
		return;
	switch (ct_flow_verdict(f, tr->close_on_target_fin,
				tr->close_on_flow_end[key.proto])) {
	case CT_END_TARGET_CLOSED:
		tr->cbs.ended(tr->arg, id, TRACK_END_TARGET_FIN);
		break;
	case CT_END_FLOW_GONE:
		tr->cbs.ended(tr->arg, id, TRACK_END_FLOW_END);
		break;
	case CT_KEEP:
		break;
	}
}

/* One dump of our entries.  Returns 0, or -1 if it failed (partly or
 * wholly: what it delivered updated counters, nothing else). */
static int dump(struct track *tr, struct track_ctx *x)
{
	tr->dump_gen++;
	if (ct_dump_mark(tr->ct, FW_MARK_TAG, FW_MARK_MASK, track_flow_cb, x) <
	    0) {
		tr->stats.errors++;
		tr->stats.dump_failures++;
		log_warn("conntrack dump");
		return -1;
	}
	return 0;
}

void track_refresh(struct track *tr)
{
	struct track_ctx x = {.tr = tr, .act = false};

	if (!tr->stopped)
		dump(tr, &x);
}

void track_repair_soon(struct track *tr)
{
	if (!tr->stopped && !ev_is_active(&tr->repair)) {
		ev_timer_set(&tr->repair, TRACK_REPAIR_DELAY, 0.);
		ev_timer_start(tr->loop, &tr->repair);
	}
}

/* Associations to end after a dump, collected first: ending one runs its
 * owner's callbacks, which may change the table being walked. */
struct ending {
	struct track *tr;
	ev_tstamp now;
	struct {
		uint32_t id;
		enum track_end why;
	} * v;
	size_t n, cap;
};

static void check_one(void *ctx, uint32_t id, uint8_t proto,
		      struct track_flow *tf)
{
	struct ending *e = ctx;
	struct track *tr = e->tr;
	enum track_end why;

	if (tf->seen_flow && tf->dump_gen != tr->dump_gen) {
		/* Seen before, absent now: it ended unseen (while events
		 * were lost, or between polls). */
		flow_gone(tf);
		if (!tr->close_on_flow_end[proto])
			return;
		why = TRACK_END_FLOW_END;
	} else if (tr->idle_timeout > 0 &&
		   e->now - tf->last_activity >= tr->idle_timeout) {
		why = TRACK_END_IDLE;
	} else {
		return;
	}
	if (grow(&e->v, &e->cap, e->n + 1, sizeof(*e->v), 64) < 0)
		return; /* the next resync ends it */
	e->v[e->n].id = id;
	e->v[e->n++].why = why;
}

int track_resync(struct track *tr)
{
	struct track_ctx x = {.tr = tr, .act = true};
	struct ending e = {.tr = tr, .now = ev_now(tr->loop)};

	if (tr->stopped)
		return -1;
	tr->stats.resyncs++;
	if (dump(tr, &x) < 0) {
		/* A flow missing from a failed dump has not ended: end
		 * nothing, and look again soon. */
		free(x.orphans);
		track_repair_soon(tr);
		return -1;
	}
	for (size_t i = 0; i < x.norphans; i++)
		if (ct_delete(tr->ct, &x.orphans[i]) > 0)
			tr->stats.orphans_deleted++;
	if (x.norphans > 0)
		log_warnx("deleted %zu conntrack entries of ended associations",
			  x.norphans);
	free(x.orphans);
	tr->cbs.each(tr->arg, check_one, &e);
	for (size_t i = 0; i < e.n; i++)
		tr->cbs.ended(tr->arg, e.v[i].id, e.v[i].why);
	free(e.v);
	return 0;
}

/* --- stall watch ---------------------------------------------------- */

struct stall_ctx {
	struct track *tr;
	ev_tstamp now;
	size_t watching, queries;
};

/* One association: is something after our NAT dropping its flow?  The
 * callbacks used here read and log; they never change the table. */
static void check_stall(void *arg, uint32_t id, uint8_t proto,
			struct track_flow *tf)
{
	struct stall_ctx *x = arg;
	struct track *tr = x->tr;
	uint64_t p;

	if (tf->stall_done)
		return;
	if (tf->ever_seen) {
		/* The first packet got through.  Only a TCP handshake can
		 * still show its answer being dropped (enum track_stall);
		 * SYN_SENT (no answer yet) is watched on. */
		if (proto != IPPROTO_TCP ||
		    (tf->tcp_state != TCP_CONNTRACK_NONE &&
		     tf->tcp_state != TCP_CONNTRACK_SYN_SENT &&
		     tf->tcp_state != TCP_CONNTRACK_SYN_RECV)) {
			tf->stall_done = true;
			return;
		}
		if (tf->tcp_state == TCP_CONNTRACK_SYN_RECV &&
		    x->now - tf->seen_at >= TRACK_STALL_HALF_OPEN_SECS) {
			tf->stall_done = true;
			tr->cbs.stalled(tr->arg, id, TRACK_STALL_HALF_OPEN, 0);
			return;
		}
	} else if (x->queries < TRACK_STALL_QUERIES) {
		x->queries++;
		if (tr->cbs.nat_packets(tr->arg, id, &p) == 0 && p > 0) {
			/* Seen at an earlier tick, still no entry: the
			 * packets were dropped before confirmation. */
			if (tf->nat_seen > 0 &&
			    x->now - tf->nat_seen >= TRACK_STALL_CONFIRM_SECS) {
				tf->stall_done = true;
				tr->cbs.stalled(tr->arg, id,
						TRACK_STALL_NO_FLOW, p);
				return;
			}
			if (tf->nat_seen == 0)
				tf->nat_seen = x->now;
		}
	}
	if (x->now - tf->born >= TRACK_STALL_WATCH_SECS)
		tf->stall_done = true;
	else
		x->watching++;
}

static void stall_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct track *tr = w->data;
	struct stall_ctx x = {.tr = tr, .now = ev_now(loop)};

	(void)revents;
	tr->cbs.each(tr->arg, check_stall, &x);
	if (x.watching == 0)
		ev_timer_stop(loop, w);
}

static void events_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct track *tr = w->data;
	struct track_ctx x = {.tr = tr, .act = true};
	int rc;

	(void)loop;
	(void)revents;
	rc = ct_events_process(tr->events, track_flow_cb, &x);
	if (rc == CT_OVERRUN) {
		tr->stats.event_overruns++;
		log_warnx("conntrack events lost (receive buffer full): "
			  "resynchronising from a dump; buffer now %d bytes",
			  ct_events_rcvbuf(tr->events));
		track_resync(tr);
	} else if (rc < 0) {
		tr->stats.errors++;
		log_warn("conntrack events");
	}
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	track_resync(w->data);
}

/* True if flows of a protocol that ends by timeout (UDP, UDP-Lite) end
 * their association: the kernel reaps expired entries lazily (its garbage
 * collector may take tens of seconds), but a dump reaps them at once. */
static bool timeout_flows_end(const struct track *tr)
{
	return tr->close_on_flow_end[IPPROTO_UDP] ||
	       tr->close_on_flow_end[PTCL_UDPLITE];
}

static void timer_arm(struct track *tr)
{
	double every = 0;

	if (tr->polling)
		every = TRACK_POLL_INTERVAL;
	else if (timeout_flows_end(tr))
		every = TRACK_REAP_INTERVAL;
	if (tr->idle_timeout > 0) {
		double idle = tr->idle_timeout / 4.0;
		if (idle < 1)
			idle = 1;
		if (every == 0 || idle < every)
			every = idle;
	}
	ev_timer_stop(tr->loop, &tr->timer);
	if (every > 0 && !tr->stopped) {
		ev_timer_set(&tr->timer, every, every);
		ev_timer_start(tr->loop, &tr->timer);
	}
}

struct track *track_new(struct ev_loop *loop, struct ct *ct,
			const struct track_cbs *cbs, void *arg)
{
	struct track *tr = calloc(1, sizeof(*tr));

	if (tr == NULL)
		return NULL;
	tr->loop = loop;
	tr->ct = ct;
	tr->cbs = *cbs;
	tr->arg = arg;
	tr->stopped = true; /* until track_start() */
	ev_init(&tr->timer, timer_cb);
	tr->timer.data = tr;
	ev_init(&tr->repair, timer_cb);
	tr->repair.data = tr;
	ev_init(&tr->stall, stall_cb);
	tr->stall.data = tr;
	return tr;
}

void track_reconfigure(struct track *tr, const struct cfg *cfg)
{
	tr->close_on_target_fin = cfg->close_on_target_fin;
	memcpy(tr->close_on_flow_end, cfg->close_on_flow_end,
	       sizeof(tr->close_on_flow_end));
	tr->idle_timeout = cfg->timeout_assoc_idle;
	timer_arm(tr);
}

void track_start(struct track *tr, const struct cfg *cfg)
{
	char err[256];
	int setting = ct_events_setting();

	tr->stopped = false;
	/* Counters come with conntrack accounting; it is per namespace and
	 * off by default. */
	if (ct_enable_acct() < 0)
		log_warn("cannot enable net.netfilter.nf_conntrack_acct: byte "
			 "counts will be missing");
	if (setting == 0) {
		log_warnx("net.netfilter.nf_conntrack_events is 0: no "
			  "conntrack events; polling conntrack every %.0f s "
			  "instead (ends are noticed up to that late)",
			  TRACK_POLL_INTERVAL);
		tr->polling = true;
	} else {
		tr->events = ct_events_open(FW_MARK_TAG, FW_MARK_MASK,
					    cfg->conntrack_rcvbuf
						    ? (int)cfg->conntrack_rcvbuf
						    : TRACK_DEFAULT_RCVBUF,
					    err, sizeof(err));
		if (tr->events == NULL) {
			log_warnx("%s: polling conntrack every %.0f s instead",
				  err, TRACK_POLL_INTERVAL);
			tr->polling = true;
		} else {
			ev_io_init(&tr->events_io, events_cb,
				   ct_events_fd(tr->events), EV_READ);
			tr->events_io.data = tr;
			ev_io_start(tr->loop, &tr->events_io);
		}
	}
	track_reconfigure(tr, cfg);
}

void track_stop(struct track *tr)
{
	if (tr == NULL)
		return;
	tr->stopped = true;
	ev_timer_stop(tr->loop, &tr->timer);
	ev_timer_stop(tr->loop, &tr->repair);
	ev_timer_stop(tr->loop, &tr->stall);
	if (tr->events) {
		ev_io_stop(tr->loop, &tr->events_io);
		ct_events_close(tr->events);
		tr->events = NULL;
	}
}

void track_free(struct track *tr)
{
	track_stop(tr);
	free(tr);
}

const struct track_stats *track_get_stats(const struct track *tr)
{
	return &tr->stats;
}
