/*
 * assoc_track: what the kernel's conntrack says about the associations'
 * flows.  Conntrack events (filtered in the kernel to our ct mark) update
 * byte/packet counters and end associations when configured:
 *   close-on-target-fin  TCP flow: the target sent FIN, or a reset
 *   close-on-flow-end    the flow's conntrack entry was destroyed
 *   timeout association-idle  no packet for that long (periodic dumps)
 * On an event overrun (ENOBUFS) the state is rebuilt from a dump, so no
 * association keeps a stale state or misses its end.  Without conntrack
 * events (nf_conntrack_events = 0) the same dump runs every second.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "assoc_int.h"
#include "log.h"

#define TRACK_POLL_INTERVAL 1.0
#define TRACK_REAP_INTERVAL 2.0
#define TRACK_DEFAULT_RCVBUF (4 * 1024 * 1024)
#define TRACK_REPAIR_DELAY 1.0
/* Orphan entries deleted after one dump at most (the rest next time). */
#define TRACK_ORPHANS_MAX 4096

static bool flow_is_ours(const struct assoc *a, const struct ct_flow *f)
{
	size_t alen = a->flow.family == AF_INET6 ? 16 : 4;

	return f->orig.family == a->flow.family &&
	       f->orig.proto == a->flow.proto &&
	       f->orig.sport == a->flow.sport &&
	       f->orig.dport == a->flow.bport &&
	       memcmp(f->orig.src, a->flow.saddr, alen) == 0 &&
	       memcmp(f->orig.dst, a->flow.baddr, alen) == 0;
}

static void count_add(struct assoc_count *to, const struct assoc_count *c)
{
	to->packets_orig += c->packets_orig;
	to->bytes_orig += c->bytes_orig;
	to->packets_reply += c->packets_reply;
	to->bytes_reply += c->bytes_reply;
}

/* Takes the counters of f as those of the live flow. */
static void take_counters(struct assoc *a, const struct ct_flow *f)
{
	if (!f->has_counters)
		return;
	if (f->packets_orig != a->cur.packets_orig ||
	    f->packets_reply != a->cur.packets_reply)
		a->last_activity = ev_now(a->t->loop);
	a->cur.packets_orig = f->packets_orig;
	a->cur.bytes_orig = f->bytes_orig;
	a->cur.packets_reply = f->packets_reply;
	a->cur.bytes_reply = f->bytes_reply;
}

/* The live flow is gone: its counters move to `done`. */
static void flow_gone(struct assoc *a)
{
	count_add(&a->done, &a->cur);
	memset(&a->cur, 0, sizeof(a->cur));
	a->seen_flow = false;
}

void assoc_track_final(struct assoc *a, const struct ct_flow *f)
{
	if (f->has_counters && flow_is_ours(a, f))
		take_counters(a, f);
	flow_gone(a);
}

struct track_ctx {
	struct assoc_table *t;
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
	if (x->norphans == x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 16;
		struct ct_tuple *no;
		if (nc > TRACK_ORPHANS_MAX ||
		    (no = realloc(x->orphans, nc * sizeof(*no))) == NULL)
			return;
		x->orphans = no;
		x->cap = nc;
	}
	x->orphans[x->norphans++] = f->orig;
}

static void track_flow(void *arg, const struct ct_flow *f)
{
	struct track_ctx *x = arg;
	struct assoc_table *t = x->t;
	struct assoc *a;

	if ((f->mark & FW_MARK_MASK) != FW_MARK_TAG)
		return;
	a = assoc_find(t, f->mark & ~FW_MARK_MASK);
	if (f->type == CT_EV_DUMP && x->act &&
	    (a == NULL || a->state == ASSOC_QUARANTINE)) {
		note_orphan(x, f);
		return;
	}
	if (a == NULL || a->state != ASSOC_LIVE || !flow_is_ours(a, f))
		return; /* e.g. the DESTROY our own teardown caused */
	if (f->type == CT_EV_DUMP)
		a->dump_gen = t->dump_gen;
	else
		t->stats.events++;
	a->seen_flow = true;
	take_counters(a, f);
	if (f->type == CT_EV_DESTROY)
		flow_gone(a);
	if (!x->act)
		return;
	switch (ct_flow_verdict(f, t->close_on_target_fin,
				t->close_on_flow_end[a->flow.proto])) {
	case CT_END_TARGET_CLOSED:
		assoc_terminate(a, ASSOC_END_TARGET_FIN);
		break;
	case CT_END_FLOW_GONE:
		assoc_terminate(a, ASSOC_END_FLOW_END);
		break;
	case CT_KEEP:
		break;
	}
}

/* One dump of our entries.  Returns 0, or -1 if it failed (partly or
 * wholly: what it delivered updated counters, nothing else). */
static int dump(struct assoc_table *t, struct track_ctx *x)
{
	t->dump_gen++;
	if (ct_dump_mark(t->ct, FW_MARK_TAG, FW_MARK_MASK, track_flow, x) < 0) {
		t->stats.conntrack_errors++;
		t->stats.dump_failures++;
		log_warn("conntrack dump");
		return -1;
	}
	return 0;
}

void assoc_table_refresh(struct assoc_table *t)
{
	struct track_ctx x = {.t = t, .act = false};

	if (t->ct && !t->shutting_down)
		dump(t, &x);
}

void assoc_track_repair_soon(struct assoc_table *t)
{
	if (t->ct && !t->shutting_down && !ev_is_active(&t->repair)) {
		ev_timer_set(&t->repair, TRACK_REPAIR_DELAY, 0.);
		ev_timer_start(t->loop, &t->repair);
	}
}

int assoc_track_resync(struct assoc_table *t)
{
	struct track_ctx x = {.t = t, .act = true};
	ev_tstamp now = ev_now(t->loop);
	uint32_t *ending = NULL;
	enum assoc_end *why = NULL;
	size_t n = 0, cap = 0;

	t->stats.resyncs++;
	if (dump(t, &x) < 0) {
		/* A flow missing from a failed dump has not ended: end
		 * nothing, and look again soon. */
		free(x.orphans);
		assoc_track_repair_soon(t);
		return -1;
	}
	for (size_t i = 0; i < x.norphans; i++) {
		if (ct_delete(t->ct, &x.orphans[i]) > 0)
			t->stats.orphans_deleted++;
	}
	if (x.norphans > 0)
		log_warnx("deleted %zu conntrack entries of ended associations",
			  x.norphans);
	free(x.orphans);
	/* Flows that were seen but are not in the dump ended unseen (while
	 * events were lost, or between polls); idle ones end too. */
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct assoc *a = t->buckets[i]; a; a = a->hnext) {
			enum assoc_end w;
			if (a->state != ASSOC_LIVE)
				continue;
			if (a->seen_flow && a->dump_gen != t->dump_gen) {
				flow_gone(a);
				if (!t->close_on_flow_end[a->flow.proto])
					continue;
				w = ASSOC_END_FLOW_END;
			} else if (t->idle_timeout > 0 &&
				   now - a->last_activity >= t->idle_timeout) {
				w = ASSOC_END_IDLE;
			} else {
				continue;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				uint32_t *ne =
					realloc(ending, cap * sizeof(*ne));
				enum assoc_end *nw =
					realloc(why, cap * sizeof(*nw));
				if (ne)
					ending = ne;
				if (nw)
					why = nw;
				if (!ne || !nw)
					goto out;
			}
			ending[n] = a->id;
			why[n++] = w;
		}
	}
out:
	/* Ended after the walk: ending one runs its owner's callbacks. */
	for (size_t i = 0; i < n; i++)
		assoc_terminate_id(t, ending[i], why[i]);
	free(ending);
	free(why);
	return 0;
}

static void events_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct assoc_table *t = w->data;
	struct track_ctx x = {.t = t, .act = true};
	int rc;

	(void)loop;
	(void)revents;
	rc = ct_events_process(t->events, track_flow, &x);
	if (rc == CT_OVERRUN) {
		t->stats.event_overruns++;
		log_warnx("conntrack events lost (receive buffer full): "
			  "resynchronising from a dump; buffer now %d bytes",
			  ct_events_rcvbuf(t->events));
		assoc_track_resync(t);
	} else if (rc < 0) {
		t->stats.conntrack_errors++;
		log_warn("conntrack events");
	}
}

static void track_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	assoc_track_resync(w->data);
}

void assoc_track_init(struct assoc_table *t)
{
	ev_init(&t->track_timer, track_timer_cb);
	t->track_timer.data = t;
	ev_init(&t->repair, track_timer_cb);
	t->repair.data = t;
}

/* True if flows of a protocol that ends by timeout (UDP, UDP-Lite) end
 * their association: the kernel reaps expired entries lazily (its garbage
 * collector may take tens of seconds), but a dump reaps them at once. */
static bool timeout_flows_end(const struct assoc_table *t)
{
	return t->close_on_flow_end[IPPROTO_UDP] ||
	       t->close_on_flow_end[CFG_PTCL_UDPLITE];
}

static void track_timer_arm(struct assoc_table *t)
{
	double every = 0;

	if (t->polling)
		every = TRACK_POLL_INTERVAL;
	else if (timeout_flows_end(t))
		every = TRACK_REAP_INTERVAL;
	if (t->idle_timeout > 0) {
		double idle = t->idle_timeout / 4.0;
		if (idle < 1)
			idle = 1;
		if (every == 0 || idle < every)
			every = idle;
	}
	ev_timer_stop(t->loop, &t->track_timer);
	if (every > 0 && t->ct && !t->shutting_down) {
		ev_timer_set(&t->track_timer, every, every);
		ev_timer_start(t->loop, &t->track_timer);
	}
}

void assoc_track_reconfigure(struct assoc_table *t, const struct cfg *cfg)
{
	t->close_on_target_fin = cfg->close_on_target_fin;
	memcpy(t->close_on_flow_end, cfg->close_on_flow_end,
	       sizeof(t->close_on_flow_end));
	t->idle_timeout = cfg->timeout_assoc_idle;
	track_timer_arm(t);
}

int assoc_track_open(struct assoc_table *t, const struct cfg *cfg)
{
	char err[256];
	int setting = ct_events_setting();

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
		t->polling = true;
	} else {
		t->events = ct_events_open(FW_MARK_TAG, FW_MARK_MASK,
					   cfg->conntrack_rcvbuf
						   ? (int)cfg->conntrack_rcvbuf
						   : TRACK_DEFAULT_RCVBUF,
					   err, sizeof(err));
		if (t->events == NULL) {
			log_warnx("%s: polling conntrack every %.0f s instead",
				  err, TRACK_POLL_INTERVAL);
			t->polling = true;
		} else {
			ev_io_init(&t->events_io, events_cb,
				   ct_events_fd(t->events), EV_READ);
			t->events_io.data = t;
			ev_io_start(t->loop, &t->events_io);
		}
	}
	assoc_track_reconfigure(t, cfg);
	return 0;
}

void assoc_track_close(struct assoc_table *t)
{
	ev_timer_stop(t->loop, &t->track_timer);
	ev_timer_stop(t->loop, &t->repair);
	if (t->events) {
		ev_io_stop(t->loop, &t->events_io);
		ct_events_close(t->events);
		t->events = NULL;
	}
}
