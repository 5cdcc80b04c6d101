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
 * which the loop must not spend while other clients wait.  One worker
 * thread runs the hashes; the owner watches auth_worker_fd() and calls
 * auth_worker_process(), which runs the callbacks of finished checks on
 * the owner's thread.
 */
struct auth_worker;
struct auth_job;
typedef void (*auth_done_cb)(void *arg, bool ok);

struct auth_worker *auth_worker_new(char *err, size_t errlen);
/* Stops and joins the thread; pending callbacks are not called. */
void auth_worker_free(struct auth_worker *w);
int auth_worker_fd(const struct auth_worker *w);
void auth_worker_process(struct auth_worker *w);
/* Queues a check of user/pass against db.  The user's hash is copied, so
 * db may be replaced (SIGHUP) meanwhile.  Returns the job, or NULL when
 * out of memory.  cb runs once, from auth_worker_process(). */
struct auth_job *auth_check_async(struct auth_worker *w,
				  const struct auth_db *db, const char *user,
				  size_t ulen, const char *pass, size_t plen,
				  auth_done_cb cb, void *arg);
/* The job's callback will not run; the job is freed by the module. */
void auth_job_cancel(struct auth_worker *w, struct auth_job *j);

#endif
