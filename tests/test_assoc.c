/*
 * Unit tests for the association table (daemon/assoc.c, track.c)
 * against link-time stubs of the kernel back ends (nft/fw.h and
 * conntrack/ct.h, defined below): a fake kernel that holds elements and
 * can be told to fail the way the real one does (a chunk refused, a
 * transaction without an answer that did or did not commit, an element
 * the record does not know, a failed dump, an event overrun, allocation
 * failure).  After every fault the invariant is checked: the kernel holds
 * exactly the elements the record says, no port is leaked, and every
 * client got the reply its fate deserves.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "assoc.h"
#include "assoc_int.h"
#include "cfg.h"
#include "ct.h"
#include "fw.h"
#include "fwcheck.h"
#include "log.h"
#include "s5_proto.h"

/* --- the fake kernel ------------------------------------------------- */

#define MAXE 2048

static struct {
	struct fw_flow e[FW_NSETS][MAXE];
	size_t n[FW_NSETS];
	size_t set_size;
	/* faults */
	bool owned, unavailable;
	int txn;	   /* add transactions so far */
	int refuse_txn;	   /* this add transaction blames ... */
	bool refuse_every; /* (or every one does) ... */
	size_t refuse_pos; /* ... its flow at this position */
	int refuse_errno;
	int unknown_txn;      /* this add transaction gets no answer */
	bool unknown_commits; /* ... but was applied */
	int del_unknown;      /* this many delete transactions: no answer */
	int del_refuse;	      /* this many: refused (EBUSY) */
	bool dump_fails;
	int events_rc;		  /* what ct_events_process returns */
	struct ct_flow flows[16]; /* what a dump returns */
	size_t nflows;
	int purges, ct_deletes;
	struct ct_tuple deleted[16];
	/* the stall watch: the dnat counter, the firewall check */
	uint64_t nat_packets;
	int nat_queries;
	int fw_runs, explained[FW_NPKT];
} K;

static bool same_key(enum fw_set_kind k, const struct fw_flow *a,
		     const struct fw_flow *b)
{
	size_t al = a->family == AF_INET6 ? 16 : 4;

	if (a->family != b->family || a->bport != b->bport ||
	    memcmp(a->baddr, b->baddr, al))
		return false;
	if (k == FW_SET_BOUND)
		return true;
	return a->proto == b->proto && a->sport == b->sport &&
	       memcmp(a->saddr, b->saddr, al) == 0;
}

static ssize_t k_find(enum fw_set_kind k, const struct fw_flow *f)
{
	for (size_t i = 0; i < K.n[k]; i++)
		if (same_key(k, &K.e[k][i], f))
			return (ssize_t)i;
	return -1;
}

static bool wanted(enum fw_set_kind k, unsigned what)
{
	return what & (k == FW_SET_BOUND ? FW_ELEM_BOUND : FW_ELEM_RELAY);
}

static void k_insert(enum fw_set_kind k, const struct fw_flow *f)
{
	K.e[k][K.n[k]++] = *f;
}

static void k_remove(enum fw_set_kind k, size_t i)
{
	K.e[k][i] = K.e[k][--K.n[k]];
}

struct fw {
	int dummy;
};
static struct fw the_fw;
static struct fw_stats fstats;

struct fw *fw_open(const struct fw_snat *snat, const struct fw_open_opts *o,
		   enum fw_open_error *why, char *err, size_t errlen)
{
	(void)snat;
	K.set_size = o->set_size;
	if (K.owned || K.unavailable) {
		*why = K.owned ? FW_OPEN_OWNED : FW_OPEN_UNAVAILABLE;
		snprintf(err, errlen, "fake: %s", K.owned ? "owned" : "none");
		return NULL;
	}
	return &the_fw;
}

void fw_close(struct fw *fw)
{
	(void)fw;
}

int fw_set_snat(struct fw *fw, const struct fw_snat *snat, char *err,
		size_t errlen)
{
	(void)fw, (void)snat, (void)err, (void)errlen;
	return 0;
}

/* One atomic transaction of adds, as the kernel does it. */
static void add_chunk(const struct fw_flow *const *flows, size_t m,
		      unsigned what, enum fw_result *res, int *errs)
{
	int tx = K.txn++;
	size_t before[FW_NSETS];
	int blame = -1, e = 0;

	for (size_t i = 0; i < m; i++)
		res[i] = FW_DONE;
	if (tx == K.unknown_txn) {
		for (size_t i = 0; i < m; i++) {
			res[i] = FW_UNKNOWN;
			for (int k = 0; K.unknown_commits && k < FW_NSETS; k++)
				if (wanted(k, what))
					k_insert(k, flows[i]);
		}
		return;
	}
	if ((tx == K.refuse_txn || K.refuse_every) && K.refuse_pos < m) {
		blame = (int)K.refuse_pos;
		e = K.refuse_errno;
	}
	/* Like the kernel, every message is processed and every failing one
	 * is reported; any failure aborts the whole transaction. */
	memcpy(before, K.n, sizeof(before));
	for (size_t i = 0; i < m; i++) {
		for (int k = 0; k < FW_NSETS; k++) {
			int fe = 0;
			if (!wanted(k, what))
				continue;
			if ((int)i == blame)
				fe = e;
			else if (k_find(k, flows[i]) >= 0)
				fe = EEXIST;
			else if (K.set_size && K.n[k] >= K.set_size)
				fe = ENFILE;
			else
				k_insert(k, flows[i]);
			if (fe && res[i] == FW_DONE) {
				res[i] = FW_REFUSED;
				if (errs)
					errs[i] = fe;
			}
		}
	}
	bool aborted = false;
	for (size_t i = 0; i < m; i++)
		aborted |= res[i] == FW_REFUSED;
	if (!aborted)
		return;
	memcpy(K.n, before, sizeof(before)); /* nothing of it stays */
	for (size_t i = 0; i < m; i++) {
		if (res[i] != FW_REFUSED) {
			res[i] = FW_NOT_DONE;
			if (errs)
				errs[i] = EINVAL;
		}
	}
}

int fw_add(struct fw *fw, const struct fw_flow *const *flows, size_t n,
	   unsigned what, enum fw_result *res, int *errnos, char *err,
	   size_t errlen)
{
	int rc = 0;

	(void)fw;
	snprintf(err, errlen, "fake refusal");
	for (size_t off = 0; off < n; off += FW_CHUNK) {
		size_t m = n - off < FW_CHUNK ? n - off : FW_CHUNK;
		add_chunk(flows + off, m, what, res + off,
			  errnos ? errnos + off : NULL);
		for (size_t i = off; i < off + m; i++)
			if (res[i] != FW_DONE)
				rc = -1;
	}
	return rc;
}

int fw_del(struct fw *fw, const struct fw_flow *const *flows, size_t n,
	   unsigned what, enum fw_result *res, char *err, size_t errlen)
{
	(void)fw;
	snprintf(err, errlen, "fake: no answer");
	if (K.del_unknown > 0) {
		K.del_unknown--;
		for (size_t i = 0; i < n; i++)
			res[i] = FW_UNKNOWN;
		return -1;
	}
	if (K.del_refuse > 0) {
		K.del_refuse--;
		for (size_t i = 0; i < n; i++)
			res[i] = FW_REFUSED;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		res[i] = FW_DONE;
		for (int k = 0; k < FW_NSETS; k++) {
			ssize_t j;
			if (wanted(k, what) && (j = k_find(k, flows[i])) >= 0)
				k_remove(k, (size_t)j);
		}
	}
	return 0;
}

int fw_dropped(struct fw *fw, uint64_t *packets, uint64_t *bytes)
{
	(void)fw;
	*packets = *bytes = 0;
	return 0;
}

int fw_count_elems(struct fw *fw, uint64_t counts[FW_NSETS])
{
	(void)fw;
	for (int k = 0; k < FW_NSETS; k++)
		counts[k] = K.n[k];
	return 0;
}

int fw_elem_packets(struct fw *fw, const struct fw_flow *f, uint64_t *packets)
{
	(void)fw, (void)f;
	K.nat_queries++;
	*packets = K.nat_packets;
	return 0;
}

/* The firewall check (daemon/fwcheck.c reads the kernel: stubbed). */
struct fwcheck {
	int dummy;
};
static struct fwcheck the_fwc;

struct fwcheck *fwcheck_new(void)
{
	return &the_fwc;
}

void fwcheck_free(struct fwcheck *fc)
{
	(void)fc;
}

void fwcheck_run(struct fwcheck *fc, const char *when)
{
	(void)fc, (void)when;
	K.fw_runs++;
}

void fwcheck_explain(struct fwcheck *fc, enum fw_pkt k, double now)
{
	(void)fc, (void)now;
	K.explained[k]++;
}

const struct fw_stats *fw_get_stats(const struct fw *fw)
{
	(void)fw;
	return &fstats;
}

const char *fw_result_str(enum fw_result r)
{
	return r == FW_DONE ? "done" : "not done";
}

struct ct {
	int dummy;
};
static struct ct the_ct;

struct ct *ct_open(char *err, size_t errlen)
{
	(void)err, (void)errlen;
	return &the_ct;
}

void ct_close(struct ct *ct)
{
	(void)ct;
}

int ct_delete(struct ct *ct, const struct ct_tuple *t)
{
	(void)ct;
	if (K.ct_deletes < 16)
		K.deleted[K.ct_deletes] = *t;
	K.ct_deletes++;
	return 1;
}

int ct_purge_mark(struct ct *ct, uint32_t value, uint32_t mask)
{
	(void)ct, (void)value, (void)mask;
	K.purges++;
	return 0;
}

int ct_dump_mark(struct ct *ct, uint32_t value, uint32_t mask, ct_flow_cb cb,
		 void *arg)
{
	(void)ct, (void)value, (void)mask;
	/* A failing dump may deliver part of the entries first. */
	for (size_t i = 0; i < K.nflows && !(K.dump_fails && i > 0); i++)
		cb(arg, &K.flows[i]);
	if (K.dump_fails) {
		errno = ENOBUFS;
		return -1;
	}
	return (int)K.nflows;
}

int ct_take(struct ct *ct, const struct ct_tuple *t, struct ct_flow *out)
{
	(void)ct, (void)t;
	memset(out, 0, sizeof(*out));
	return 0;
}

int ct_events_setting(void)
{
	return 1;
}

int ct_enable_acct(void)
{
	return 0;
}

struct ct_events {
	int fd[2];
};
static struct ct_events the_events;

struct ct_events *ct_events_open(uint32_t value, uint32_t mask, int rcvbuf,
				 char *err, size_t errlen)
{
	(void)value, (void)mask, (void)rcvbuf, (void)err, (void)errlen;
	cr_assert_eq(pipe(the_events.fd), 0);
	return &the_events;
}

void ct_events_close(struct ct_events *e)
{
	close(e->fd[0]);
	close(e->fd[1]);
}

int ct_events_fd(const struct ct_events *e)
{
	return e->fd[0];
}

int ct_events_process(struct ct_events *e, ct_flow_cb cb, void *arg)
{
	char c;

	(void)cb, (void)arg;
	while (read(e->fd[0], &c, 1) < 0 && errno == EINTR)
		;
	return K.events_rc;
}

int ct_events_rcvbuf(const struct ct_events *e)
{
	(void)e;
	return 1 << 20;
}

/* Tests make malloc fail on demand: the n-th calloc from here on. */
void *__real_calloc(size_t n, size_t s);
void *__wrap_calloc(size_t n, size_t s);
static int calloc_fail_in;
void *__wrap_calloc(size_t n, size_t s)
{
	if (calloc_fail_in > 0 && --calloc_fail_in == 0)
		return NULL;
	return __real_calloc(n, s);
}

/* --- the test harness ------------------------------------------------ */

#define NCLIENT 400

static struct ev_loop *loop;
static struct cfg C;
static struct assoc_table *T;

static struct client {
	struct assoc *a;
	int replies; /* how many ready() calls */
	uint8_t rep;
	uint16_t bport;
	int ended;
	enum assoc_end why;
} cl[NCLIENT];

/* When client close_from gets its reply, it closes client close_to's
 * association (an owner acting on another one from its callback). */
static int close_from = -1, close_to = -1;

static void c_ready(void *arg, uint8_t rep, const struct sockaddr *bnd)
{
	struct client *c = arg;

	if (c - cl == close_from && cl[close_to].a) {
		assoc_close(cl[close_to].a, ASSOC_END_N1_CLOSED);
		cl[close_to].a = NULL;
		cl[close_to].replies = -100; /* it must get no reply now */
	}
	c->replies++;
	c->rep = rep;
	if (rep == S5_REP_SUCCEEDED)
		c->bport = addr_port(bnd);
	else
		c->a = NULL; /* freed or handed to the removal path */
}

static void c_ended(void *arg, enum assoc_end why)
{
	struct client *c = arg;

	c->ended++;
	c->why = why;
	c->a = NULL;
}

static const struct assoc_cbs cbs = {c_ready, c_ended};

static void setup_table(const char *extra)
{
	char text[512], err[256];
	bool fatal;

	memset(&K, 0, sizeof(K));
	K.refuse_txn = K.unknown_txn = -1;
	close_from = close_to = -1;
	memset(cl, 0, sizeof(cl));
	log_init(1, LOG_LVL_ERROR, "test_assoc");
	/* Above the kernel's ephemeral range (32768-60999): a port of the
	 * range held by another process's outgoing connection (or its
	 * TIME_WAIT) would fail "every port comes back" at random. */
	snprintf(text, sizeof(text),
		 "relay-ports 61000-61299\n"
		 "max-associations 100000\n%s",
		 extra ? extra : "");
	cr_assert_eq(cfg_parse_buf(text, strlen(text), "t.conf", &C, err,
				   sizeof(err)),
		     0, "%s", err);
	loop = ev_loop_new(EVFLAG_AUTO);
	T = assoc_table_new(loop, &C, &fatal);
	cr_assert_not_null(T);
	cr_assert(!fatal);
}

static void teardown_table(void)
{
	if (T)
		assoc_table_free(T);
	T = NULL;
	cfg_free(&C);
	if (loop)
		ev_loop_destroy(loop);
	loop = NULL;
}

static void stop_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)w, (void)revents;
	ev_break(l, EVBREAK_ONE);
}

/* Runs the loop for about `secs` (timers included). */
static void run_for(double secs)
{
	ev_timer stop;

	ev_timer_init(&stop, stop_cb, secs, 0.);
	ev_timer_start(loop, &stop);
	ev_run(loop, 0);
	ev_timer_stop(loop, &stop);
}

static void open_n(size_t from, size_t n)
{
	for (size_t i = from; i < from + n; i++) {
		struct assoc_req r;
		uint8_t rep;
		memset(&r, 0, sizeof(r));
		r.proto = IPPROTO_UDP;
		addr_parse("127.0.0.1", (uint16_t)(10000 + i), &r.src);
		addr_parse("127.0.0.1", 0, &r.bnd);
		addr_parse("127.0.0.1", 9, &r.dst);
		addr_parse("127.0.0.1", 5555, &r.client);
		r.session_id = i;
		cl[i].a = assoc_open(T, &r, &cbs, &cl[i], &rep);
		cr_assert_not_null(cl[i].a, "open %zu refused: 0x%02x", i, rep);
	}
}

static void close_all(void)
{
	for (size_t i = 0; i < NCLIENT; i++) {
		if (cl[i].a && cl[i].rep == S5_REP_SUCCEEDED &&
		    cl[i].replies == 1) {
			assoc_close(cl[i].a, ASSOC_END_N1_CLOSED);
			cl[i].a = NULL;
		}
	}
}

/* The invariant: what the kernel holds is what the record says. */
static void assert_consistent(void)
{
	struct assoc_audit au;

	assoc_table_audit(T, &au);
	cr_assert(au.kernel_read);
	cr_assert_eq(au.unconfirmed, 0, "unconfirmed removals: %zu",
		     au.unconfirmed);
	for (int k = 0; k < FW_NSETS; k++)
		cr_assert_eq(au.kernel[k], au.expected[k],
			     "set %d: kernel %llu record %llu", k,
			     (unsigned long long)au.kernel[k],
			     (unsigned long long)au.expected[k]);
	cr_assert(au.consistent);
}

static size_t count_rep(size_t n, uint8_t rep)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		if (cl[i].replies == 1 && cl[i].rep == rep)
			c++;
	return c;
}

/* Everything ends; the kernel and the table are empty; then every port of
 * the range can be had again (none leaked). */
static void assert_all_ports_come_back(void)
{
	close_all();
	run_for(0.3); /* quarantine (shortened) and sweep */
	assert_consistent();
	cr_assert_eq(assoc_table_count(T), 0, "%zu left in the table",
		     assoc_table_count(T));
	for (int k = 0; k < FW_NSETS; k++)
		cr_assert_eq(K.n[k], 0);
	memset(cl, 0, sizeof(cl));
	K.refuse_txn = K.unknown_txn = -1;
	close_from = close_to = -1;
	open_n(0, 300); /* the whole range */
	run_for(0.05);
	cr_assert_eq(count_rep(300, S5_REP_SUCCEEDED), 300);
	assert_consistent();
}

TestSuite(assoc, .init = NULL, .fini = teardown_table);

Test(assoc, happy_path_open_close)
{
	setup_table(NULL);
	open_n(0, 3);
	run_for(0.05);
	cr_assert_eq(count_rep(3, S5_REP_SUCCEEDED), 3);
	cr_assert_eq(K.n[FW_SET_BOUND], 3);
	cr_assert_eq(K.n[FW_SET_DNAT], 3);
	assert_consistent();
	assert_all_ports_come_back();
}

/* 300 associations: two transactions (256 + 44); the kernel refuses the
 * second because of one flow.  The first chunk's flows are installed,
 * the blamed one fails with X'01', the other 43 are retried and
 * installed; nothing is installed twice and no port leaks. */
Test(assoc, chunk_refused_for_one_flow)
{
	setup_table(NULL);
	K.refuse_txn = 1;
	K.refuse_pos = 5;
	K.refuse_errno = ENOMEM;
	open_n(0, 300);
	run_for(0.05);
	cr_assert_eq(count_rep(300, S5_REP_SUCCEEDED), 299);
	cr_assert_eq(count_rep(300, S5_REP_GENERAL), 1);
	cr_assert_eq(cl[256 + 5].rep, S5_REP_GENERAL);
	cr_assert_eq(K.n[FW_SET_BOUND], 299);
	assert_consistent();
	/* The failed one's port is free again: one more fits the range. */
	open_n(300, 1);
	run_for(0.05);
	cr_assert_eq(cl[300].rep, S5_REP_SUCCEEDED);
	assert_consistent();
	assert_all_ports_come_back();
}

/* The first chunk refused: its other flows are retried, the second
 * chunk (committed in the same round) is not sent again. */
Test(assoc, first_chunk_refused)
{
	setup_table(NULL);
	K.refuse_txn = 0;
	K.refuse_pos = 0;
	K.refuse_errno = EINVAL;
	open_n(0, 300);
	run_for(0.05);
	cr_assert_eq(cl[0].rep, S5_REP_GENERAL);
	cr_assert_eq(count_rep(300, S5_REP_SUCCEEDED), 299);
	for (size_t i = 0; i < 300; i++)
		cr_assert_eq(cl[i].replies, 1, "client %zu: %d replies", i,
			     cl[i].replies);
	assert_consistent();
	assert_all_ports_come_back();
}

/* No answer, but the transaction did commit: the clients get X'01', the
 * daemon removes what the kernel may hold, and the ports come back only
 * then. */
Test(assoc, unknown_outcome_that_committed)
{
	setup_table(NULL);
	K.unknown_txn = 0;
	K.unknown_commits = true;
	open_n(0, 2);
	run_for(0.02);
	cr_assert_eq(count_rep(2, S5_REP_GENERAL), 2);
	cr_assert_eq(cl[0].ended, 0);
	run_for(0.3);
	for (int k = 0; k < FW_NSETS; k++)
		cr_assert_eq(K.n[k], 0, "set %d keeps %zu elements", k, K.n[k]);
	assert_consistent();
	cr_assert_eq(assoc_table_stats(T)->ended[ASSOC_END_FAILED], 2);
	assert_all_ports_come_back();
}

Test(assoc, unknown_outcome_not_applied)
{
	setup_table(NULL);
	K.unknown_txn = 0;
	K.unknown_commits = false;
	open_n(0, 2);
	run_for(0.3);
	cr_assert_eq(count_rep(2, S5_REP_GENERAL), 2);
	assert_consistent();
	assert_all_ports_come_back();
}

/* An element the record does not know holds a port (EEXIST): the flow
 * fails, and the removal path clears that element, so the port works
 * again afterwards. */
Test(assoc, foreign_element_on_a_port)
{
	struct fw_flow f;

	setup_table(NULL);
	memset(&f, 0, sizeof(f));
	f.family = AF_INET;
	memcpy(f.baddr, "\x7f\x00\x00\x01", 4);
	f.bport = 61000;
	k_insert(FW_SET_BOUND, &f);
	open_n(0, 1);
	run_for(0.02);
	cr_assert_eq(cl[0].rep, S5_REP_GENERAL);
	run_for(0.3);
	cr_assert_eq(K.n[FW_SET_BOUND], 0);
	assert_all_ports_come_back();
}

/* Removal without an answer: the association stays closing, its port
 * reserved, and the removal is tried again until confirmed. */
Test(assoc, removal_unanswered_is_retried)
{
	struct assoc_audit au;

	setup_table(NULL);
	open_n(0, 2);
	run_for(0.02);
	cr_assert_eq(count_rep(2, S5_REP_SUCCEEDED), 2);
	K.del_unknown = 1;
	close_all();
	run_for(0.01);
	assoc_table_audit(T, &au);
	cr_assert_eq(au.closing, 2);
	cr_assert_eq(au.unconfirmed, 2);
	cr_assert_eq(K.n[FW_SET_DNAT], 2, "nothing was deleted yet");
	run_for(0.5);
	cr_assert_eq(K.n[FW_SET_DNAT], 0);
	cr_assert_geq(assoc_table_stats(T)->kernel_retries, 2);
	assert_all_ports_come_back();
}

/* The kernel's set is full (kernel-set-size): ENFILE blames one flow per
 * round; the ones that fit are installed, the others fail cleanly. */
Test(assoc, kernel_set_full)
{
	setup_table("kernel-set-size 10\n");
	open_n(0, 12);
	run_for(0.05);
	cr_assert_eq(count_rep(12, S5_REP_SUCCEEDED) +
			     count_rep(12, S5_REP_GENERAL),
		     12);
	cr_assert_leq(K.n[FW_SET_BOUND], 10);
	cr_assert_eq(count_rep(12, S5_REP_SUCCEEDED), K.n[FW_SET_BOUND]);
	assert_consistent();
	close_all();
	run_for(0.3);
	assert_consistent();
	cr_assert_eq(assoc_table_count(T), 0);
}

static void seen_flow(size_t i, enum ct_event_type type)
{
	struct ct_flow *f = &K.flows[K.nflows++];
	struct assoc_info ai;
	size_t l;

	assoc_get_info(cl[i].a, &ai);
	memset(f, 0, sizeof(*f));
	f->type = type;
	f->orig.family = AF_INET;
	f->orig.proto = ai.proto;
	memcpy(f->orig.src, addr_bytes((struct sockaddr *)&ai.src, &l), 4);
	f->orig.sport = addr_port((struct sockaddr *)&ai.src);
	memcpy(f->orig.dst, addr_bytes((struct sockaddr *)&ai.bnd, &l), 4);
	f->orig.dport = addr_port((struct sockaddr *)&ai.bnd);
	f->mark = FW_MARK_TAG | ai.id;
}

/* A failed (or partial) dump ends nothing: a flow missing from it has
 * not ended.  A good dump that misses a flow seen before does end it. */
Test(assoc, failed_dump_ends_nothing)
{
	setup_table("close-on-flow-end yes\n");
	open_n(0, 3);
	run_for(0.02);
	for (size_t i = 0; i < 3; i++)
		seen_flow(i, CT_EV_DUMP);
	cr_assert_eq(track_resync(T->track), 0);
	K.dump_fails = true; /* delivers the first entry, then fails */
	cr_assert_eq(track_resync(T->track), -1);
	run_for(0.01);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(cl[i].ended, 0, "client %zu ended", i);
	cr_assert_eq(assoc_table_stats(T)->dump_failures, 1);
	/* The real end of flow 2 is still noticed by a good dump. */
	K.dump_fails = false;
	K.nflows = 2;
	cr_assert_eq(track_resync(T->track), 0);
	cr_assert_eq(cl[2].ended, 1);
	cr_assert_eq(cl[2].why, ASSOC_END_FLOW_END);
	cr_assert_eq(cl[0].ended + cl[1].ended, 0);
	run_for(0.3);
	assert_consistent();
}

/* An event overrun (ENOBUFS) resynchronises from a dump. */
Test(assoc, event_overrun_resyncs)
{
	setup_table("close-on-flow-end yes\n");
	open_n(0, 2);
	run_for(0.02);
	seen_flow(0, CT_EV_DUMP);
	seen_flow(1, CT_EV_DUMP);
	cr_assert_eq(track_resync(T->track), 0);
	K.nflows = 1; /* flow 1 ended while events were lost */
	K.events_rc = CT_OVERRUN;
	cr_assert_eq(write(the_events.fd[1], "x", 1), 1);
	run_for(0.02);
	cr_assert_eq(assoc_table_stats(T)->event_overruns, 1);
	cr_assert_eq(cl[1].ended, 1);
	cr_assert_eq(cl[0].ended, 0);
	run_for(0.3);
	assert_consistent();
}

/* A marked entry of no live association (its delete failed at teardown)
 * is found by the next dump and deleted. */
Test(assoc, orphan_entry_is_deleted)
{
	setup_table(NULL);
	open_n(0, 1);
	run_for(0.02);
	seen_flow(0, CT_EV_DUMP);
	K.flows[0].mark = FW_MARK_TAG | 0x123456; /* no such association */
	int before = K.ct_deletes;
	cr_assert_eq(track_resync(T->track), 0);
	cr_assert_eq(K.ct_deletes, before + 1);
	cr_assert_eq(assoc_table_stats(T)->orphans_deleted, 1);
	cr_assert_eq(cl[0].ended, 0);
}

/* Out of memory while installing: nothing is answered wrongly; the setup
 * is tried again and succeeds. */
Test(assoc, allocation_failure_is_retried)
{
	setup_table(NULL);
	open_n(0, 2);
	calloc_fail_in = 1; /* the first calloc of the flush */
	run_for(0.02);
	cr_assert_eq(cl[0].replies, 0);
	run_for(0.3);
	cr_assert_eq(count_rep(2, S5_REP_SUCCEEDED), 2);
	assert_consistent();
	assert_all_ports_come_back();
}

/* A second instance touches nothing: no conntrack purge when the table
 * belongs to another process, and the daemon must stop. */
Test(assoc, second_instance_touches_nothing)
{
	bool fatal = false;
	char err[256];
	const char *text = "relay-ports 61000-61299\n";

	memset(&K, 0, sizeof(K));
	K.owned = true;
	log_init(1, LOG_LVL_ERROR + 0, "test_assoc");
	cr_assert_eq(cfg_parse_buf(text, strlen(text), "t.conf", &C, err,
				   sizeof(err)),
		     0);
	loop = ev_loop_new(EVFLAG_AUTO);
	T = assoc_table_new(loop, &C, &fatal);
	cr_assert_null(T);
	cr_assert(fatal);
	cr_assert_eq(K.purges, 0, "conntrack purged by a second instance");
}

/* No nftables: TRANSPARENT is unavailable, reloads do not crash, timers
 * that were never started are not touched. */
Test(assoc, reload_without_nftables)
{
	bool fatal;
	char err[256];
	const char *text = "relay-ports 61000-61299\n"
			   "timeout association-idle 5\n"
			   "close-on-flow-end yes udp\n";

	memset(&K, 0, sizeof(K));
	K.unavailable = true;
	log_init(1, LOG_LVL_ERROR, "test_assoc");
	cr_assert_eq(cfg_parse_buf(text, strlen(text), "t.conf", &C, err,
				   sizeof(err)),
		     0, "%s", err);
	loop = ev_loop_new(EVFLAG_AUTO);
	T = assoc_table_new(loop, &C, &fatal);
	cr_assert_not_null(T);
	cr_assert(!assoc_table_available(T));
	assoc_table_reconfigure(T, &C);
	run_for(0.05);
	cr_assert_eq(K.purges, 0);
}

/* An owner's callback closes another association whose transaction is
 * being answered: it is carried out once the kernel has answered (no use
 * after free, no reply to the closed one, nothing left in the kernel). */
Test(assoc, ready_callback_closes_a_sibling)
{
	setup_table(NULL);
	close_from = 0;
	close_to = 2;
	open_n(0, 4);
	run_for(0.02);
	cr_assert_eq(cl[2].replies, -100, "the closed one got a reply");
	cr_assert_eq(count_rep(4, S5_REP_SUCCEEDED), 3);
	run_for(0.3);
	assert_consistent();
	cr_assert_eq(K.n[FW_SET_BOUND], 3);
	/* And while a retry round is pending (the first round refused). */
	close_all();
	run_for(0.3);
	memset(cl, 0, sizeof(cl));
	K.refuse_txn = K.txn;
	K.refuse_pos = 0;
	K.refuse_errno = EINVAL;
	close_from = 1; /* installed in round 2 ... */
	close_to = 3;	/* ... with 3, which is then closed */
	open_n(0, 4);
	run_for(0.02);
	cr_assert_eq(cl[0].rep, S5_REP_GENERAL);
	cr_assert_eq(cl[3].replies, -100);
	run_for(0.3);
	assert_consistent();
	cr_assert_eq(K.n[FW_SET_BOUND], 2);
	assert_all_ports_come_back();
}

/* Every round refused: after ADD_ROUNDS the rest fail; nothing stays in
 * the kernel, every client gets exactly one X'01'. */
Test(assoc, add_rounds_exhausted)
{
	setup_table(NULL);
	K.refuse_every = true;
	K.refuse_pos = 0;
	K.refuse_errno = EINVAL;
	open_n(0, 5);
	run_for(0.05);
	for (size_t i = 0; i < 5; i++) {
		cr_assert_eq(cl[i].replies, 1, "client %zu: %d replies", i,
			     cl[i].replies);
		cr_assert_eq(cl[i].rep, S5_REP_GENERAL);
	}
	cr_assert_eq(K.n[FW_SET_BOUND], 0);
	K.refuse_every = false;
	assert_consistent();
	assert_all_ports_come_back();
}

/* A removal the kernel refuses (not "gone already") is tried again. */
Test(assoc, removal_refused_is_retried)
{
	setup_table(NULL);
	open_n(0, 2);
	run_for(0.02);
	K.del_refuse = 2;
	close_all();
	run_for(0.02);
	cr_assert_eq(K.n[FW_SET_DNAT], 2);
	run_for(0.5);
	cr_assert_eq(K.n[FW_SET_DNAT], 0);
	assert_all_ports_come_back();
}

/* Shutdown with associations in every state: pending, live, closing
 * (removal unanswered), quarantined; then the owners close theirs.
 * Nothing is freed twice, nothing leaks, no kernel call after. */
Test(assoc, shutdown_in_every_state)
{
	setup_table(NULL);
	open_n(0, 3);
	run_for(0.02); /* 0, 1, 2 live */
	assoc_close(cl[0].a, ASSOC_END_N1_CLOSED);
	cl[0].a = NULL;
	run_for(0.01); /* 0 quarantined */
	K.del_unknown = 100;
	assoc_close(cl[1].a, ASSOC_END_N1_CLOSED);
	cl[1].a = NULL;
	run_for(0.01); /* 1 closing, unconfirmed */
	open_n(3, 1);  /* 3 pending */
	assoc_table_shutdown(T);
	run_for(0.1); /* no flush, no sweep may touch the closed back end */
	for (size_t i = 0; i < 4; i++)
		if (cl[i].a) {
			assoc_close(cl[i].a, ASSOC_END_SHUTDOWN);
			cl[i].a = NULL;
		}
	assoc_table_free(T);
	T = NULL;
	cr_assert_eq(cl[3].replies, 0);
}

/* The stall watch: packets NATed but no conntrack entry ever seen (a
 * forward firewall dropped them before confirmation) gives one hint per
 * association, and not for an association whose flow exists. */
Test(assoc, stall_no_flow_hinted_once)
{
	setup_table(NULL);
	cr_assert_eq(K.fw_runs, 1, "the firewall is checked at start");
	open_n(0, 2);
	run_for(0.02);
	seen_flow(1, CT_EV_DUMP); /* association 1's flow exists */
	cr_assert_eq(track_resync(T->track), 0);
	K.nat_packets = 3;
	run_for(0.5);
	cr_assert_eq(K.explained[FW_PKT_NEW], 1);
	cr_assert_eq(K.explained[FW_PKT_EST], 0);
	run_for(0.3);
	cr_assert_eq(K.explained[FW_PKT_NEW], 1, "one hint per association");
	cr_assert_eq(cl[0].ended + cl[1].ended, 0, "a hint ends nothing");
	/* After the watch (shortened to 1 s) nothing is queried any more. */
	run_for(1.0);
	int q = K.nat_queries;
	run_for(0.3);
	cr_assert_eq(K.nat_queries, q);
}

/* No NATed packet yet: the client has not sent; no hint. */
Test(assoc, stall_quiet_client_no_hint)
{
	setup_table(NULL);
	open_n(0, 1);
	run_for(0.5);
	cr_assert_gt(K.nat_queries, 0);
	cr_assert_eq(K.explained[FW_PKT_NEW], 0);
}

/* TCP: conntrack saw the target's SYN-ACK, the handshake never completed
 * (the answer was dropped after conntrack counted it): one hint.  A
 * handshake that completes, or UDP, gives none. */
static void tcp_flow(size_t i, uint8_t state)
{
	seen_flow(i, CT_EV_DUMP);
	K.flows[K.nflows - 1].tcp_state = state;
}

static void open_tcp(size_t i)
{
	struct assoc_req r;
	uint8_t rep;

	memset(&r, 0, sizeof(r));
	r.proto = IPPROTO_TCP;
	addr_parse("127.0.0.1", (uint16_t)(10000 + i), &r.src);
	addr_parse("127.0.0.1", 0, &r.bnd);
	addr_parse("127.0.0.1", 9, &r.dst);
	addr_parse("127.0.0.1", 5555, &r.client);
	r.session_id = i;
	cl[i].a = assoc_open(T, &r, &cbs, &cl[i], &rep);
	cr_assert_not_null(cl[i].a);
}

Test(assoc, stall_half_open_hinted)
{
	setup_table(NULL);
	open_tcp(0);
	open_tcp(1);
	open_n(2, 1); /* UDP */
	run_for(0.02);
	tcp_flow(0, 2 /* TCP_CONNTRACK_SYN_RECV */);
	tcp_flow(1, 3 /* TCP_CONNTRACK_ESTABLISHED */);
	seen_flow(2, CT_EV_DUMP);
	cr_assert_eq(track_resync(T->track), 0);
	run_for(0.5);
	cr_assert_eq(K.explained[FW_PKT_EST], 1);
	cr_assert_eq(K.explained[FW_PKT_NEW], 0);
	run_for(0.3);
	cr_assert_eq(K.explained[FW_PKT_EST], 1, "one hint per association");
}

/* SYN_SENT: the target has not answered (or its answer never reached the
 * gateway): not the gateway's firewall, no hint. */
Test(assoc, stall_syn_sent_no_hint)
{
	setup_table(NULL);
	open_tcp(0);
	run_for(0.02);
	tcp_flow(0, 1 /* TCP_CONNTRACK_SYN_SENT */);
	cr_assert_eq(track_resync(T->track), 0);
	run_for(0.5);
	cr_assert_eq(K.explained[FW_PKT_EST] + K.explained[FW_PKT_NEW], 0);
}
