/*
 * Unit tests for daemon/auth: users file parsing and crypt(3) checks.
 */
#include <crypt.h>
#include <poll.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

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
};

static void done_cb(void *arg, bool ok)
{
	struct result *r = arg;
	r->calls++;
	r->ok = ok;
}

/* Waits for the worker's descriptor and runs the finished callbacks. */
static void pump(struct auth_worker *w, int want, struct result *rs, int n)
{
	for (int i = 0; i < 200; i++) {
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

Test(auth, worker_thread_checks_off_the_loop)
{
	struct auth_db *db = load();
	char err[128];
	struct auth_worker *w = auth_worker_new(err, sizeof(err));
	struct result rs[3] = {{0}};

	cr_assert_not_null(w, "%s", err);
	cr_assert_not_null(auth_check_async(w, db, "alice", 5, "wonderland", 10,
					    done_cb, &rs[0]));
	cr_assert_not_null(auth_check_async(w, db, "alice", 5, "nope", 4,
					    done_cb, &rs[1]));
	struct auth_job *j = auth_check_async(w, db, "bob", 3, "builder", 7,
					      done_cb, &rs[2]);
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
