/*
 * kagent: see kagent.h.  Messages from the agent are read in the channel's
 * io callback and dispatched at once, except while a synchronous call
 * waits for its answer: events that arrive then (ready, ended) are kept in
 * order and dispatched from an idle watcher, never inside the caller (who
 * may be walking the sessions).
 */
#include "kagent.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kmsg.h"
#include "log.h"
#include "s5_proto.h"

#define KAGENT_BUCKETS 4096

struct kassoc {
	struct kagent *k;
	uint64_t tag;
	uint32_t id;
	bool ready;
	struct assoc_cbs cbs;
	void *arg;
	uint64_t session_id;
	uint8_t proto;
	struct sockaddr_storage src, bnd, dst;
	double opened;
	/* From the last LIST. */
	char state[20];
	uint64_t packets_orig, bytes_orig, packets_reply, bytes_reply;
	struct kassoc *next; /* hash chain */
};

struct kagent {
	struct ev_loop *loop;
	int fd;
	ev_io rd;
	ev_idle later;
	struct kmsg_queue evq; /* events met during a synchronous call */
	/* Opens and closes, sent together before the loop sleeps (the agent
	 * then reads them in one wakeup: one kernel transaction). */
	ev_prepare out_prep; /* lowest priority: last before sleeping */
	ev_io wr;
	struct kmsg_queue outq;
	bool available;
	bool gone;
	void (*lost)(void *arg);
	void *arg;
	uint64_t next_tag;
	size_t count;
	struct kassoc *hash[KAGENT_BUCKETS];
	/* The packet being read: messages [pkt_off, pkt_len) are next. */
	unsigned char pkt[KMSG_PACKET + 1];
	size_t pkt_len, pkt_off;
};

union kagent_buf {
	unsigned char b[KMSG_MAX + 1];
	struct kmsg_hdr h;
	struct kmsg_welcome welcome;
	struct kmsg_ready ready;
	struct kmsg_ended ended;
	struct kmsg_result result;
	struct kmsg_info info;
	struct kmsg_stats_reply stats;
};

static struct kassoc **slot(struct kagent *k, uint64_t tag)
{
	struct kassoc **p = &k->hash[tag % KAGENT_BUCKETS];

	while (*p && (*p)->tag != tag)
		p = &(*p)->next;
	return p;
}

static void unlink_free(struct kassoc *a)
{
	struct kassoc **p = slot(a->k, a->tag);

	if (*p == a) {
		*p = a->next;
		a->k->count--;
	}
	free(a);
}

static void agent_gone(struct kagent *k, const char *why)
{
	if (k->gone)
		return;
	k->gone = true;
	log_error("the kernel agent is gone (%s)", why);
	ev_io_stop(k->loop, &k->rd);
	if (k->lost)
		k->lost(k->arg);
}

/* One event from the agent. */
static void dispatch(struct kagent *k, const union kagent_buf *u,
		     enum kmsg_type type)
{
	struct kassoc *a;

	switch (type) {
	case KMSG_READY: {
		a = *slot(k, u->ready.tag);
		if (a == NULL || a->ready)
			return; /* closed here meanwhile */
		void (*ready)(void *, uint8_t, const struct sockaddr *) =
			a->cbs.ready;
		void *arg = a->arg;
		if (u->ready.rep != S5_REP_SUCCEEDED) {
			unlink_free(a);
			if (ready)
				ready(arg, u->ready.rep, NULL);
			return;
		}
		a->ready = true;
		a->id = u->ready.id;
		kmsg_addr_to(&u->ready.bnd, &a->bnd);
		snprintf(a->state, sizeof(a->state), "live");
		if (ready)
			ready(arg, S5_REP_SUCCEEDED,
			      (const struct sockaddr *)&a->bnd);
		return;
	}
	case KMSG_ENDED: {
		a = *slot(k, u->ended.tag);
		if (a == NULL)
			return;
		void (*ended)(void *, enum assoc_end) = a->cbs.ended;
		void *arg = a->arg;
		unlink_free(a);
		if (ended)
			ended(arg, (enum assoc_end)u->ended.why);
		return;
	}
	default:
		log_warnx("agent: unexpected %s message", kmsg_type_str(type));
		return;
	}
}

/* Reads one message; 1 with *type, 0 if none waits, -1 if the agent is
 * gone. */
static int read_one(struct kagent *k, union kagent_buf *u, enum kmsg_type *type,
		    size_t *len)
{
	const char *why;
	struct kmsg_hdr h;

	if (k->pkt_off >= k->pkt_len) {
		ssize_t n = kmsg_recv(k->fd, k->pkt, sizeof(k->pkt), NULL, 0);
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0) {
			agent_gone(k, strerror(errno));
			return -1;
		}
		if (n == 0) {
			agent_gone(k, "its channel closed");
			return -1;
		}
		if (kmsg_check_packet(k->pkt, (size_t)n, 'A', &why) < 0) {
			agent_gone(k, why);
			return -1;
		}
		k->pkt_len = (size_t)n;
		k->pkt_off = 0;
	}
	memcpy(&h, k->pkt + k->pkt_off, sizeof(h));
	memcpy(u->b, k->pkt + k->pkt_off, h.size); /* checked: <= KMSG_MAX */
	k->pkt_off += h.size;
	*type = (enum kmsg_type)h.type;
	*len = h.size;
	return 1;
}

static void rd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct kagent *k = w->data;
	union kagent_buf u;

	(void)loop;
	(void)revents;
	/* Events queued during a call go first: order is kept. */
	if (k->evq.head)
		return;
	for (int i = 0; i < 1024 && !k->gone; i++) {
		enum kmsg_type type;
		size_t len;
		if (read_one(k, &u, &type, &len) <= 0)
			return;
		dispatch(k, &u, type);
	}
	/* More to read: the next iteration goes on (others get a turn). */
	if (!k->gone)
		ev_feed_event(k->loop, &k->rd, EV_READ);
}

static void later_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct kagent *k = w->data;
	union kagent_buf u;

	(void)revents;
	ev_idle_stop(loop, w);
	while (k->evq.head && !k->gone) {
		struct kmsg_out *e = k->evq.head;
		k->evq.head = e->next;
		if (k->evq.head == NULL)
			kmsg_queue_init(&k->evq);
		memcpy(u.b, e->msg, e->len);
		free(e);
		dispatch(k, &u, (enum kmsg_type)u.h.type);
	}
	ev_feed_event(loop, &k->rd, EV_READ);
}

static void defer(struct kagent *k, const union kagent_buf *u, size_t len)
{
	if (kmsg_queue_push(&k->evq, u->b, len) < 0) {
		agent_gone(k, "out of memory");
		return;
	}
	ev_idle_start(k->loop, &k->later);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for a message of type want (or, for LIST, INFO too: handed to
 * each()).  Events met on the way are deferred.  0, or -1 (agent lost). */
static int wait_for(struct kagent *k, enum kmsg_type want, union kagent_buf *u,
		    void (*each)(struct kagent *, const struct kmsg_info *))
{
	long long deadline = now_ms() + KAGENT_CALL_MS;

	while (!k->gone) {
		enum kmsg_type type;
		size_t len;
		int r = read_one(k, u, &type, &len);
		if (r < 0)
			return -1;
		if (r == 0) {
			long long left = deadline - now_ms();
			struct pollfd p = {.fd = k->fd, .events = POLLIN};
			if (left <= 0 || poll(&p, 1, (int)left) == 0) {
				agent_gone(k, "no answer in time");
				return -1;
			}
			continue;
		}
		if (type == want) {
			/* What came after it in the packet waits for the
			 * loop (never for the next packet). */
			if (k->pkt_off < k->pkt_len)
				ev_idle_start(k->loop, &k->later);
			return 0;
		}
		if (type == KMSG_INFO && each) {
			each(k, &u->info);
			continue;
		}
		if (type == KMSG_READY || type == KMSG_ENDED) {
			defer(k, u, len);
			continue;
		}
		agent_gone(k, "an answer out of turn");
		return -1;
	}
	return -1;
}

/* Sends the queue; with wait, until it is empty (bounded by
 * KAGENT_CALL_MS), else what fits now.  0, or -1 (the agent is lost). */
static int out_flush(struct kagent *k, bool wait)
{
	long long deadline = now_ms() + KAGENT_CALL_MS;
	int rc;

	while (!k->gone && (rc = kmsg_queue_flush(&k->outq, k->fd)) != 0) {
		long long left = deadline - now_ms();
		struct pollfd p = {.fd = k->fd, .events = POLLOUT};
		if (rc < 0) {
			agent_gone(k, strerror(errno));
			return -1;
		}
		if (!wait) {
			ev_io_start(k->loop, &k->wr);
			return 0;
		}
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			agent_gone(k, "its channel stays full");
			return -1;
		}
	}
	if (k->outq.head == NULL)
		ev_io_stop(k->loop, &k->wr);
	return k->gone ? -1 : 0;
}

static void out_prep_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct kagent *k = w->data;

	(void)loop;
	(void)revents;
	if (k->outq.head && !ev_is_active(&k->wr))
		out_flush(k, false);
}

static void wr_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	out_flush(w->data, false);
}

/* Queues a message (opens and closes); -1 if the agent is lost. */
static int queue_msg(struct kagent *k, const void *m, size_t len)
{
	if (k->gone)
		return -1;
	if (kmsg_queue_push(&k->outq, m, len) < 0) {
		agent_gone(k, "out of memory");
		return -1;
	}
	return 0;
}

/* A synchronous call's request: what is queued goes first. */
static int send_msg(struct kagent *k, const void *m, size_t len)
{
	if (k->gone || out_flush(k, true) < 0)
		return -1;
	if (kmsg_send(k->fd, m, len, KAGENT_CALL_MS) < 0) {
		agent_gone(k, errno == EAGAIN ? "its channel stays full"
					      : strerror(errno));
		return -1;
	}
	return 0;
}

struct kagent *kagent_new(struct ev_loop *loop, int fd, void (*lost)(void *arg),
			  void *arg)
{
	struct kagent *k = calloc(1, sizeof(*k));
	union kagent_buf u;

	if (k == NULL) {
		log_error("out of memory");
		close(fd);
		return NULL;
	}
	k->loop = loop;
	k->fd = fd;
	kmsg_queue_init(&k->evq);
	kmsg_queue_init(&k->outq);
	k->next_tag = 1;
	ev_io_init(&k->rd, rd_cb, fd, EV_READ);
	ev_io_init(&k->wr, wr_cb, fd, EV_WRITE);
	ev_idle_init(&k->later, later_cb);
	ev_prepare_init(&k->out_prep, out_prep_cb);
	ev_set_priority(&k->out_prep, EV_MINPRI);
	k->rd.data = k->later.data = k->wr.data = k->out_prep.data = k;
	if (wait_for(k, KMSG_WELCOME, &u, NULL) < 0) {
		kagent_free(k);
		return NULL;
	}
	k->available = u.welcome.available != 0;
	k->lost = lost;
	k->arg = arg;
	ev_io_start(loop, &k->rd);
	ev_prepare_start(loop, &k->out_prep);
	return k;
}

void kagent_free(struct kagent *k)
{
	if (k == NULL)
		return;
	if (!k->gone)
		out_flush(k, true); /* the closes of a shutdown */
	ev_io_stop(k->loop, &k->rd);
	ev_io_stop(k->loop, &k->wr);
	ev_idle_stop(k->loop, &k->later);
	ev_prepare_stop(k->loop, &k->out_prep);
	kmsg_queue_clear(&k->evq);
	kmsg_queue_clear(&k->outq);
	for (size_t b = 0; b < KAGENT_BUCKETS; b++)
		while (k->hash[b])
			unlink_free(k->hash[b]);
	close(k->fd);
	free(k);
}

bool kagent_available(const struct kagent *k)
{
	return k && k->available && !k->gone;
}

struct kassoc *kagent_open(struct kagent *k, const struct assoc_req *r,
			   const struct assoc_cbs *cbs, void *arg, uint8_t *rep)
{
	struct kmsg_open m;
	struct kassoc *a;

	*rep = S5_REP_GENERAL;
	if (!kagent_available(k))
		return NULL;
	memset(&m, 0, sizeof(m));
	kmsg_hdr_init(&m.h, KMSG_OPEN, sizeof(m));
	m.tag = k->next_tag++;
	m.session_id = r->session_id;
	m.proto = r->proto;
	if (kmsg_addr_from((const struct sockaddr *)&r->src, &m.src) < 0 ||
	    kmsg_addr_from((const struct sockaddr *)&r->bnd, &m.bnd) < 0 ||
	    kmsg_addr_from((const struct sockaddr *)&r->dst, &m.dst) < 0 ||
	    kmsg_addr_from((const struct sockaddr *)&r->client, &m.client) <
		    0) {
		*rep = S5_REP_ATYP_UNSUPPORTED;
		return NULL;
	}
	m.bnd.port = 0;
	/* Names reach logs and nftables comments: printable only. */
	if (r->user) {
		size_t i;
		for (i = 0; r->user[i] && i < sizeof(m.user) - 1; i++)
			m.user[i] = r->user[i] > 0x20 && r->user[i] < 0x7f
					    ? r->user[i]
					    : '?';
		m.user[i] = '\0';
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->k = k;
	a->tag = m.tag;
	a->cbs = *cbs;
	a->arg = arg;
	a->session_id = r->session_id;
	a->proto = r->proto;
	a->src = r->src;
	a->bnd = r->bnd;
	a->dst = r->dst;
	a->opened = ev_now(k->loop);
	snprintf(a->state, sizeof(a->state), "pending");
	if (queue_msg(k, &m, sizeof(m)) < 0) {
		free(a);
		return NULL;
	}
	*slot(k, a->tag) = a;
	k->count++;
	*rep = S5_REP_SUCCEEDED;
	return a;
}

void kagent_close(struct kassoc *a, enum assoc_end why)
{
	struct kagent *k = a->k;
	struct kmsg_close m;

	memset(&m, 0, sizeof(m));
	kmsg_hdr_init(&m.h, KMSG_CLOSE, sizeof(m));
	m.tag = a->tag;
	m.why = why == ASSOC_END_SHUTDOWN ? ASSOC_END_SHUTDOWN
					  : ASSOC_END_N1_CLOSED;
	unlink_free(a);
	queue_msg(k, &m, sizeof(m));
}

uint32_t kagent_id(const struct kassoc *a)
{
	return a->id;
}

void kagent_get_info(const struct kassoc *a, struct assoc_info *ai)
{
	memset(ai, 0, sizeof(*ai));
	ai->id = a->id;
	ai->session_id = a->session_id;
	ai->proto = a->proto;
	ai->src = a->src;
	ai->bnd = a->bnd;
	ai->dst = a->dst;
	ai->age = ev_now(a->k->loop) - a->opened;
	ai->state = a->state;
	ai->packets_orig = a->packets_orig;
	ai->bytes_orig = a->bytes_orig;
	ai->packets_reply = a->packets_reply;
	ai->bytes_reply = a->bytes_reply;
}

int kagent_terminate_id(struct kagent *k, uint32_t id, enum assoc_end why)
{
	struct kmsg_terminate m;
	union kagent_buf u;

	memset(&m, 0, sizeof(m));
	kmsg_hdr_init(&m.h, KMSG_TERMINATE, sizeof(m));
	m.id = id;
	m.why = why;
	if (send_msg(k, &m, sizeof(m)) < 0 ||
	    wait_for(k, KMSG_RESULT, &u, NULL) < 0)
		return -1;
	return u.result.rc;
}

static void take_info(struct kagent *k, const struct kmsg_info *m)
{
	struct kassoc *a = *slot(k, m->tag);

	if (a == NULL)
		return;
	snprintf(a->state, sizeof(a->state), "%s", m->state);
	a->packets_orig = m->packets_orig;
	a->bytes_orig = m->bytes_orig;
	a->packets_reply = m->packets_reply;
	a->bytes_reply = m->bytes_reply;
}

int kagent_refresh(struct kagent *k)
{
	struct kmsg_query m;
	union kagent_buf u;

	memset(&m, 0, sizeof(m));
	kmsg_hdr_init(&m.h, KMSG_LIST, sizeof(m));
	if (send_msg(k, &m, sizeof(m)) < 0 ||
	    wait_for(k, KMSG_LIST_END, &u, take_info) < 0)
		return -1;
	return 0;
}

int kagent_stats(struct kagent *k, uint64_t *count, struct assoc_stats *st,
		 struct assoc_audit *au)
{
	struct kmsg_query m;
	union kagent_buf u;

	memset(&m, 0, sizeof(m));
	kmsg_hdr_init(&m.h, KMSG_STATS, sizeof(m));
	if (send_msg(k, &m, sizeof(m)) < 0 ||
	    wait_for(k, KMSG_STATS_REPLY, &u, NULL) < 0)
		return -1;
	*count = u.stats.count;
	*st = u.stats.stats;
	*au = u.stats.audit;
	return 0;
}

size_t kagent_count(const struct kagent *k)
{
	return k ? k->count : 0;
}
