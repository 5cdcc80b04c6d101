/*
 * auth: see auth.h.  crypt_rn(3) from libxcrypt with a per-call
 * struct crypt_data, so the module holds no static state.
 */
#include "auth.h"
#include "grow.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct auth_user {
	char *name;
	char *hash;
};

struct auth_db {
	struct auth_user *users;
	size_t n;
	char dummy[CRYPT_OUTPUT_SIZE]; /* same-cost hash for unknown users */
};

void auth_free(struct auth_db *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < db->n; i++) {
		free(db->users[i].name);
		explicit_bzero(db->users[i].hash, strlen(db->users[i].hash));
		free(db->users[i].hash);
	}
	free(db->users);
	free(db);
}

size_t auth_count(const struct auth_db *db)
{
	return db ? db->n : 0;
}

struct auth_db *auth_parse_buf(const char *buf, size_t len, const char *fname,
			       char *err, size_t errlen)
{
	struct auth_db *db = calloc(1, sizeof(*db));
	size_t pos = 0, cap = 0;
	int lineno = 0;

	if (db == NULL) {
		snprintf(err, errlen, "%s: out of memory", fname);
		return NULL;
	}
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		const char *line = buf + pos, *colon;

		lineno++;
		pos += ll + (nl ? 1 : 0);
		while (ll > 0 && (line[ll - 1] == '\r' || line[ll - 1] == ' '))
			ll--;
		if (ll == 0 || line[0] == '#')
			continue;
		colon = memchr(line, ':', ll);
		if (colon == NULL || colon == line || colon == line + ll - 1 ||
		    colon - line > 255 || memchr(line, '\0', ll)) {
			snprintf(err, errlen, "%s:%d: expected name:crypt-hash",
				 fname, lineno);
			goto fail;
		}
		if (colon[1] != '$') {
			snprintf(err, errlen,
				 "%s:%d: hash must be a crypt(3) '$id$...' "
				 "string (e.g. from mkpasswd -m yescrypt)",
				 fname, lineno);
			goto fail;
		}
		if (grow(&db->users, &cap, db->n + 1, sizeof(*db->users), 8) <
		    0)
			goto oom;
		struct auth_user *u = &db->users[db->n];
		u->name = strndup(line, (size_t)(colon - line));
		u->hash = strndup(colon + 1, ll - (size_t)(colon - line) - 1);
		if (u->name == NULL || u->hash == NULL) {
			free(u->name);
			free(u->hash);
			goto oom;
		}
		db->n++;
		for (size_t i = 0; i + 1 < db->n; i++) {
			if (strcmp(db->users[i].name, u->name) == 0) {
				snprintf(err, errlen,
					 "%s:%d: user '%s' listed twice", fname,
					 lineno, u->name);
				goto fail;
			}
		}
	}
	/* The dummy hash uses the first user's setting so that an unknown
	 * name costs what a known one does. */
	if (db->n > 0) {
		snprintf(db->dummy, sizeof(db->dummy), "%s", db->users[0].hash);
	} else {
		snprintf(db->dummy, sizeof(db->dummy), "%s",
			 "$6$socksgate$invalid");
	}
	return db;
oom:
	snprintf(err, errlen, "%s:%d: out of memory", fname, lineno);
fail:
	auth_free(db);
	return NULL;
}

struct auth_db *auth_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, len = 0, got;
	struct auth_db *db;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	do {
		if (cap - len < 4096) {
			char *nb;
			if (cap > 16 * 1024 * 1024 ||
			    (nb = realloc(buf, cap + 65536)) == NULL) {
				snprintf(err, errlen, "%s: too large", path);
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
	} while (got > 0);
	fclose(f);
	db = auth_parse_buf(buf ? buf : "", len, path, err, errlen);
	if (buf) {
		explicit_bzero(buf, len);
		free(buf);
	}
	return db;
}

/* The user's hash (or the dummy), and whether the user exists. */
static const char *lookup(const struct auth_db *db, const char *user,
			  size_t ulen, const char *pass, size_t plen,
			  bool *known)
{
	*known = false;
	/* Credentials with NUL bytes cannot match a C-string entry. */
	if (strlen(user) != ulen || strlen(pass) != plen)
		return db->dummy;
	for (size_t i = 0; i < db->n; i++) {
		if (strcmp(db->users[i].name, user) == 0) {
			*known = true;
			return db->users[i].hash;
		}
	}
	return db->dummy;
}

/* crypt(3) and a comparison without early exit. */
static bool verify(const char *hash, bool known, const char *pass)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	unsigned char diff;
	const char *out;
	size_t hl, cl;
	bool ok;

	if (cd == NULL)
		return false;
	out = crypt_rn(pass, hash, cd, sizeof(*cd));
	if (out == NULL || out[0] == '*') {
		free(cd);
		return false;
	}
	hl = strlen(hash);
	cl = strlen(out);
	diff = (unsigned char)(hl != cl);
	for (size_t i = 0; i < hl && i < cl; i++)
		diff |= (unsigned char)(hash[i] ^ out[i]);
	ok = known && diff == 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

bool auth_check(const struct auth_db *db, const char *user, size_t ulen,
		const char *pass, size_t plen)
{
	bool known;
	const char *hash = lookup(db, user, ulen, pass, plen, &known);

	return verify(hash, known, pass);
}

/* --- worker thread ---------------------------------------------------- */

struct auth_job {
	char *hash;
	char pass[256];
	bool known, ok, cancelled;
	auth_done_cb cb;
	void *arg;
	struct auth_job *next;
};

struct auth_worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct auth_job *todo, *todo_tail, *done;
	bool stop;
	int efd;
};

static void job_free(struct auth_job *j)
{
	explicit_bzero(j->pass, sizeof(j->pass));
	free(j->hash);
	free(j);
}

static void *worker_main(void *arg)
{
	struct auth_worker *w = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->todo == NULL && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop)
			break;
		struct auth_job *j = w->todo;
		w->todo = j->next;
		if (w->todo == NULL)
			w->todo_tail = NULL;
		pthread_mutex_unlock(&w->lock);
		j->ok = verify(j->hash, j->known, j->pass);
		explicit_bzero(j->pass, sizeof(j->pass));
		pthread_mutex_lock(&w->lock);
		j->next = w->done;
		w->done = j;
		if (write(w->efd, &one, sizeof(one)) < 0) {
			/* The counter cannot overflow here; nothing to do. */
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct auth_worker *auth_worker_new(char *err, size_t errlen)
{
	struct auth_worker *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (w->efd < 0 ||
	    pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		snprintf(err, errlen, "auth worker: %s", strerror(errno));
		if (w->efd >= 0)
			close(w->efd);
		free(w);
		return NULL;
	}
	return w;
}

void auth_worker_free(struct auth_worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	for (struct auth_job *j = w->todo, *n; j; j = n) {
		n = j->next;
		job_free(j);
	}
	for (struct auth_job *j = w->done, *n; j; j = n) {
		n = j->next;
		job_free(j);
	}
	close(w->efd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}

int auth_worker_fd(const struct auth_worker *w)
{
	return w->efd;
}

void auth_worker_process(struct auth_worker *w)
{
	uint64_t n;
	struct auth_job *done;

	if (read(w->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&w->lock);
	done = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->lock);
	while (done) {
		struct auth_job *j = done;
		done = j->next;
		if (!j->cancelled)
			j->cb(j->arg, j->ok);
		job_free(j);
	}
}

struct auth_job *auth_check_async(struct auth_worker *w,
				  const struct auth_db *db, const char *user,
				  size_t ulen, const char *pass, size_t plen,
				  auth_done_cb cb, void *arg)
{
	struct auth_job *j = calloc(1, sizeof(*j));
	const char *hash;

	if (j == NULL)
		return NULL;
	hash = lookup(db, user, ulen, pass, plen, &j->known);
	j->hash = strdup(hash);
	if (j->hash == NULL || plen >= sizeof(j->pass)) {
		job_free(j);
		return NULL;
	}
	memcpy(j->pass, pass, plen);
	j->cb = cb;
	j->arg = arg;
	pthread_mutex_lock(&w->lock);
	if (w->todo_tail)
		w->todo_tail->next = j;
	else
		w->todo = j;
	w->todo_tail = j;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return j;
}

void auth_job_cancel(struct auth_worker *w, struct auth_job *j)
{
	/* Only the owner's thread reads the flag (in process()). */
	(void)w;
	j->cancelled = true;
}
