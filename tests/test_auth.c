/*
 * Unit tests for daemon/auth: users file parsing and crypt(3) checks.
 */
#include <crypt.h>
#include <poll.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"

static char line[512];

/* A users file with alice (yescrypt) and bob (SHA-512). */
static struct auth_db *load(void)
{
	char buf[1024], err[256];
	char *y = crypt("wonderland", crypt_gensalt("$y$", 0, NULL, 0));
	cr_assert_not_null(y);
	snprintf(line, sizeof(line), "%s", y);
	char *s = crypt("builder", crypt_gensalt("$6$", 0, NULL, 0));
	snprintf(buf, sizeof(buf), "# users\n\nalice:%s\nbob:%s\n", line, s);
	struct auth_db *db =
		auth_parse_buf(buf, strlen(buf), "u", err, sizeof(err));
	cr_assert_not_null(db, "%s", err);
	return db;
}

Test(auth, yescrypt_and_sha512)
{
	struct auth_db *db = load();

	cr_assert_eq(auth_count(db), 2);
	cr_assert(auth_check(db, "alice", 5, "wonderland", 10));
	cr_assert(!auth_check(db, "alice", 5, "wonderlan", 9));
	cr_assert(!auth_check(db, "alice", 5, "builder", 7));
	cr_assert(auth_check(db, "bob", 3, "builder", 7));
	cr_assert(!auth_check(db, "carol", 5, "wonderland", 10));
	/* An embedded NUL never matches. */
	cr_assert(!auth_check(db, "alice", 5, "wonder\0land", 11));
	auth_free(db);
}

Test(auth, file_errors)
{
	char err[256];

	cr_assert_null(auth_parse_buf("alice\n", 6, "u", err, sizeof(err)));
	cr_assert_str_eq(err, "u:1: expected name:crypt-hash");
	cr_assert_null(auth_parse_buf("x:$6$a$b\nalice:plain\n", 21, "u", err,
				      sizeof(err)));
	cr_assert(strncmp(err, "u:2: hash must be", 17) == 0, "%s", err);
	cr_assert_null(auth_parse_buf("a:$6$a$b\na:$6$a$c\n", 18, "u", err,
				      sizeof(err)));
	cr_assert(strstr(err, "u:2: user 'a' listed twice") != NULL, "%s", err);
	struct auth_db *db = auth_parse_buf("", 0, "u", err, sizeof(err));
	cr_assert_not_null(db);
	cr_assert(!auth_check(db, "x", 1, "y", 1));
	auth_free(db);
}

struct result {
	int calls;
	bool ok;
	int order; /* 1 for the first callback of a test, 2... */
	double at;
};

static int callbacks;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void done_cb(void *arg, bool ok)
{
	struct result *r = arg;
	r->calls++;
	r->ok = ok;
	r->order = ++callbacks;
	r->at = now_s();
}

/* The result hook: counts, and answers a fixed spacing for failures. */
static int hook_calls;
static double hook_spacing;
static double hook(void *owner, const void *key, size_t keylen,
		   const char *user, bool ok)
{
	(void)owner;
	(void)key;
	(void)keylen;
	(void)user;
	hook_calls++;
	return ok ? 0 : hook_spacing;
}

static void reset(void)
{
	callbacks = 0;
	hook_calls = 0;
	hook_spacing = 0;
}

/* Waits for the worker's descriptor and runs the finished callbacks. */
static void pump(struct auth_worker *w, int want, struct result *rs, int n)
{
	/* Bounded by time, generously: yescrypt under ASan on a busy
	 * machine takes what it takes. */
	double end = now_s() + 60;

	while (now_s() < end) {
		int calls = 0;
		struct pollfd p = {.fd = auth_worker_fd(w), .events = POLLIN};
		poll(&p, 1, 50);
		auth_worker_process(w);
		for (int k = 0; k < n; k++)
			calls += rs[k].calls;
		if (calls >= want)
			return;
	}
}

static struct auth_job *check(struct auth_worker *w, struct auth_db *db,
			      const char *user, const char *pass,
			      const char *src, double spacing, struct result *r)
{
	return auth_check_async(w, db, user, strlen(user), pass, strlen(pass),
				src, strlen(src), spacing, done_cb, r);
}

Test(auth, worker_thread_checks_off_the_loop)
{
	struct auth_db *db = load();
	char err[128];
	struct auth_worker *w =
		auth_worker_new(1, NULL, NULL, err, sizeof(err));
	struct result rs[3] = {{0}};

	reset();
	cr_assert_not_null(w, "%s", err);
	cr_assert_eq(auth_worker_threads(w), 1);
	cr_assert_not_null(check(w, db, "alice", "wonderland", "a", 0, &rs[0]));
	cr_assert_not_null(check(w, db, "alice", "nope", "a", 0, &rs[1]));
	struct auth_job *j = check(w, db, "bob", "builder", "a", 0, &rs[2]);
	cr_assert_not_null(j);
	auth_job_cancel(w, j);
	/* The database may go away while checks run: hashes were copied. */
	auth_free(db);
	pump(w, 2, rs, 3);
	cr_assert_eq(rs[0].calls, 1);
	cr_assert(rs[0].ok);
	cr_assert_eq(rs[1].calls, 1);
	cr_assert(!rs[1].ok);
	cr_assert_eq(rs[2].calls, 0, "a cancelled check called back");
	auth_worker_free(w);
}

Test(auth, pool_sized_to_the_machine)
{
	char err[128];
	struct auth_worker *w =
		auth_worker_new(0, NULL, NULL, err, sizeof(err));
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	cr_assert_not_null(w, "%s", err);
	/* One per CPU, at least 2: one source cannot hold them all. */
	cr_assert_eq(auth_worker_threads(w), cpus < 2 ? 2u : (unsigned)cpus);
	auth_worker_free(w);
}

/* 20 checks of one source queued before one of another: the other's is
 * among the first answered (round robin), and the first source never has
 * every worker. */
Test(auth, fair_queueing_by_source)
{
	struct auth_db *db = load();
	char err[128];
	struct auth_worker *w =
		auth_worker_new(2, NULL, NULL, err, sizeof(err));
	struct result rs[21] = {{0}};
	struct auth_worker_stats st;

	reset();
	cr_assert_not_null(w, "%s", err);
	for (int i = 0; i < 20; i++)
		cr_assert_not_null(
			check(w, db, "alice", "guess", "attacker", 0, &rs[i]));
	cr_assert_not_null(
		check(w, db, "alice", "wonderland", "other", 0, &rs[20]));
	for (double end = now_s() + 60; now_s() < end;) {
		struct pollfd p = {.fd = auth_worker_fd(w), .events = POLLIN};
		auth_worker_stats(w, &st);
		/* A source has at most n - 1 = 1 check running, so the
		 * attacker never has both workers. */
		if (rs[20].calls)
			cr_assert_leq(st.running, 1);
		poll(&p, 1, 20);
		auth_worker_process(w);
		if (callbacks == 21)
			break;
	}
	cr_assert_eq(callbacks, 21);
	cr_assert(rs[20].ok);
	/* It runs beside the attacker's first (the attacker never holds
	 * both workers), so it ends among the first few; FIFO would make it
	 * 21st.  The bound leaves room for the scheduler on a busy machine
	 * (two hashes side by side need not end in step). */
	cr_assert_leq(rs[20].order, 11, "the other source waited behind %d",
		      rs[20].order - 1);
	auth_free(db);
	auth_worker_free(w);
}

/* Spacing: a source's checks start at least `spacing` apart once the hook
 * says so; another source is not held. */
Test(auth, spacing_per_source)
{
	struct auth_db *db = load();
	char err[128];
	struct auth_worker *w =
		auth_worker_new(2, hook, NULL, err, sizeof(err));
	struct result rs[4] = {{0}};

	reset();
	hook_spacing = 0.3;
	cr_assert_not_null(w, "%s", err);
	double t0 = now_s();
	for (int i = 0; i < 3; i++)
		cr_assert_not_null(
			check(w, db, "alice", "guess", "slow", 0, &rs[i]));
	cr_assert_not_null(check(w, db, "bob", "builder", "fast", 0, &rs[3]));
	pump(w, 4, rs, 4);
	cr_assert_eq(callbacks, 4);
	cr_assert_eq(hook_calls, 4);
	cr_assert(rs[3].ok);
	/* Not held: the other source's check is answered before the slow
	 * source's second one, which waits its spacing.  (An order, not a
	 * time: the check itself may be slow on a busy machine.) */
	cr_assert_lt(rs[3].order, rs[1].order, "the other source was held");
	/* The first failure set the spacing: the source's checks start at
	 * least 0.3 s apart, so (whatever hashing takes) the second ends no
	 * sooner than 0.3 s after the first was queued, the third 0.6 s.
	 * (Without spacing three yescrypt checks end within ~0.2 s here.) */
	cr_assert_geq(rs[1].at - t0, 0.3);
	cr_assert_geq(rs[2].at - t0, 0.6);
	auth_free(db);
	auth_worker_free(w);
}

/* A check cancelled while queued never runs (the hook does not see it);
 * one cancelled while running still reports its result to the hook. */
Test(auth, cancel_queued_and_running)
{
	struct auth_db *db = load();
	char err[128];
	struct auth_worker *w =
		auth_worker_new(1, hook, NULL, err, sizeof(err));
	struct result rs[2] = {{0}};
	struct auth_worker_stats st;

	reset();
	cr_assert_not_null(w, "%s", err);
	struct auth_job *a = check(w, db, "alice", "guess", "s", 0, &rs[0]);
	struct auth_job *b = check(w, db, "alice", "guess", "s", 0, &rs[1]);
	for (int i = 0; i < 200; i++) {
		auth_worker_stats(w, &st);
		if (st.running == 1)
			break;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	cr_assert_eq(st.running, 1);
	cr_assert_eq(st.queued, 1);
	auth_job_cancel(w, b); /* queued: dropped */
	auth_job_cancel(w, a); /* running: result still reported */
	auth_worker_stats(w, &st);
	cr_assert_eq(st.queued, 0);
	for (int i = 0; i < 100 && hook_calls == 0; i++) {
		struct pollfd p = {.fd = auth_worker_fd(w), .events = POLLIN};
		poll(&p, 1, 20);
		auth_worker_process(w);
	}
	cr_assert_eq(hook_calls, 1);
	cr_assert_eq(callbacks, 0);
	auth_worker_stats(w, &st);
	cr_assert_eq(st.checks, 1);
	cr_assert_eq(st.failures, 1);
	auth_free(db);
	auth_worker_free(w);
}
