/*
 * auth: RFC 1929 credentials from a users file of `name:crypt-hash` lines
 * (yescrypt, SHA-512 or any other hash crypt(3) knows).  Blank lines and
 * `#` comments are allowed; errors are reported as "file:line: message".
 */
#ifndef SOCKSGATE_AUTH_H
#define SOCKSGATE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct auth_db;

/* Returns a new database or NULL with err set. */
struct auth_db *auth_load(const char *path, char *err, size_t errlen);
/* The same from an open file (pread from offset 0; not closed). */
struct auth_db *auth_load_fd(int fd, const char *name, char *err,
			     size_t errlen);
struct auth_db *auth_parse_buf(const char *buf, size_t len, const char *fname,
			       char *err, size_t errlen);
void auth_free(struct auth_db *db);
size_t auth_count(const struct auth_db *db);
/*
 * True if user/pass are valid.  The work done does not depend on whether
 * the user exists or where the hashes differ: an unknown user is checked
 * against a dummy hash, and the hash comparison has no early exit.
 */
bool auth_check(const struct auth_db *db, const char *user, size_t ulen,
		const char *pass, size_t plen);

/*
 * Checks off the event loop: crypt(3) with yescrypt costs milliseconds,
 * which the loop must not spend while other clients wait.  A pool of
 * worker threads runs the hashes; the owner watches auth_worker_fd() and
 * calls auth_worker_process(), which runs the callbacks of finished checks
 * on the owner's thread.
 *
 * Fair queueing: every check names its source (an opaque key, e.g. the
 * client's address prefix).  Workers take queued checks source by source
 * in turn (round robin), so one source's queue never sits in front of
 * another's; and one source never has more than n - 1 of the n workers
 * (one, with a single worker), so a worker is free for the others.  A
 * source's checks are also spaced: the next one starts at least `spacing`
 * seconds after its previous one started, spacing being what the owner
 * said last for that source (auth_check_async(), or the result hook).
 * The queue holds at most one check per pending session: it is bounded
 * by the owner's sessions.
 */
#define AUTH_KEY_MAX 32
#define AUTH_WORKERS_MAX 64

struct auth_worker;
struct auth_job;
typedef void (*auth_done_cb)(void *arg, bool ok);
/* Called on the owner's thread for every check that ran, cancelled or not
 * (a client that hangs up does not escape the result), before the job's
 * own callback: returns the spacing (seconds, >= 0) the source's next
 * check must keep. */
typedef double (*auth_result_cb)(void *owner, const void *key, size_t keylen,
				 const char *user, bool ok);

struct auth_worker_stats {
	unsigned threads;
	size_t queued, running, sources; /* sources: with checks queued */
	size_t held;			 /* queued checks waiting on spacing */
	unsigned long long checks, failures;
};

/* threads: how many (0: one per online CPU, at least 2 so that one source
 * cannot hold them all).  on_result may be NULL (no spacing).  Returns
 * NULL with err set. */
struct auth_worker *auth_worker_new(unsigned threads, auth_result_cb on_result,
				    void *owner, char *err, size_t errlen);
/* Stops and joins the threads; pending callbacks are not called. */
void auth_worker_free(struct auth_worker *w);
int auth_worker_fd(const struct auth_worker *w);
unsigned auth_worker_threads(const struct auth_worker *w);
void auth_worker_process(struct auth_worker *w);
/* Queues a check of user/pass against db for source key (keylen <=
 * AUTH_KEY_MAX; 0 is one shared anonymous source), whose checks must be
 * spacing seconds apart.  The user's hash is copied, so db may be
 * replaced (SIGHUP) meanwhile.  Returns the job, or NULL when out of
 * memory.  cb runs once, from auth_worker_process(). */
struct auth_job *auth_check_async(struct auth_worker *w,
				  const struct auth_db *db, const char *user,
				  size_t ulen, const char *pass, size_t plen,
				  const void *key, size_t keylen,
				  double spacing, auth_done_cb cb, void *arg);
/* The job's callback will not run; the job is freed by the module.  A
 * check still queued is dropped without running. */
void auth_job_cancel(struct auth_worker *w, struct auth_job *j);
void auth_worker_stats(struct auth_worker *w, struct auth_worker_stats *out);

#endif
