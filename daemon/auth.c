/*
 * auth: see auth.h.  crypt_rn(3) from libxcrypt with a per-call
 * struct crypt_data, so the module holds no static state.
 *
 * The pool: one lock guards the sources (a circular list in turn order),
 * their queues and the list of finished checks.  A worker takes the first
 * source, from the one whose turn it is, that has a queued check, fewer
 * than per_source checks busy and whose spacing has passed; the turn then
 * moves past it.  A check stays "busy" for its source until the owner has
 * processed its result, so the spacing the result brings applies before
 * the source's next check can start.
 */
#include "auth.h"
#include "grow.h"

#include <crypt.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
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

struct auth_db *auth_load_fd(int fd, const char *name, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t cap = 0, len = 0;
	ssize_t got;
	struct auth_db *db;

	do {
		if (cap - len < 4096) {
			char *nb;
			if (cap > 16 * 1024 * 1024 ||
			    (nb = realloc(buf, cap + 65536)) == NULL) {
				snprintf(err, errlen, "%s: too large", name);
				if (buf)
					explicit_bzero(buf, len);
				free(buf);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		/* pread: the description may be shared. */
		got = pread(fd, buf + len, cap - len, (off_t)len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(err, errlen, "%s: %s", name, strerror(errno));
			explicit_bzero(buf, len);
			free(buf);
			return NULL;
		}
		len += (size_t)got;
	} while (got > 0);
	db = auth_parse_buf(buf ? buf : "", len, name, err, errlen);
	if (buf) {
		explicit_bzero(buf, len);
		free(buf);
	}
	return db;
}

struct auth_db *auth_load(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct auth_db *db;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	db = auth_load_fd(fd, path, err, errlen);
	close(fd);
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

/* --- worker pool ---------------------------------------------------- */

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct auth_src;

struct auth_job {
	char *hash;
	char pass[256];
	char user[256]; /* for the result hook; control bytes replaced */
	bool known, ok, cancelled;
	enum job_state state;
	auth_done_cb cb;
	void *arg;
	struct auth_src *src;
	struct auth_job *prev, *next; /* the source's queue, or done list */
};

/* A source with checks queued or busy, or whose spacing runs. */
struct auth_src {
	uint8_t key[AUTH_KEY_MAX];
	size_t keylen;
	struct auth_job *head, *tail; /* queued */
	unsigned busy;		      /* running, or done and not processed */
	double spacing;		      /* seconds between two starts */
	double last_start;	      /* monotonic; -HUGE_VAL: never */
	struct auth_src *prev, *next; /* circular, in turn order */
};

struct auth_worker {
	pthread_t *threads;
	unsigned nthreads, per_source;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct auth_src *turn; /* the source whose turn it is; NULL: none */
	size_t nsrcs, queued, running;
	struct auth_job *done;
	unsigned long long checks, failures;
	bool stop;
	int efd;
	auth_result_cb on_result;
	void *owner;
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void job_free(struct auth_job *j)
{
	explicit_bzero(j->pass, sizeof(j->pass));
	free(j->hash);
	free(j);
}

static void src_unlink_job(struct auth_worker *w, struct auth_job *j)
{
	struct auth_src *s = j->src;

	if (j->prev)
		j->prev->next = j->next;
	else
		s->head = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		s->tail = j->prev;
	j->prev = j->next = NULL;
	w->queued--;
}

/* The next check to run, or NULL; *wake: when a spaced source's next
 * check may start (HUGE_VAL: nothing waits on spacing).  Locked. */
static struct auth_job *pick(struct auth_worker *w, double now, double *wake)
{
	struct auth_src *s = w->turn;

	*wake = HUGE_VAL;
	for (size_t i = 0; i < w->nsrcs; i++, s = s->next) {
		struct auth_job *j = s->head;
		if (j == NULL || s->busy >= w->per_source)
			continue;
		if (s->last_start + s->spacing > now) {
			if (s->last_start + s->spacing < *wake)
				*wake = s->last_start + s->spacing;
			continue;
		}
		src_unlink_job(w, j);
		j->state = JOB_RUNNING;
		s->busy++;
		s->last_start = now;
		w->running++;
		w->turn = s->next;
		return j;
	}
	return NULL;
}

static void *worker_main(void *arg)
{
	struct auth_worker *w = arg;
	uint64_t one = 1;
	id_t tid = (id_t)syscall(SYS_gettid);
	int prio;

	/* Hashing yields to the loop, which serves everyone else. */
	errno = 0;
	prio = getpriority(PRIO_PROCESS, tid);
	if (errno == 0)
		(void)setpriority(PRIO_PROCESS, tid, prio + 5);
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		double wake;
		struct auth_job *j = pick(w, mono(), &wake);
		if (j == NULL) {
			if (wake == HUGE_VAL) {
				pthread_cond_wait(&w->cond, &w->lock);
			} else {
				struct timespec ts;
				ts.tv_sec = (time_t)wake;
				ts.tv_nsec = (long)((wake - (double)ts.tv_sec) *
						    1e9);
				pthread_cond_timedwait(&w->cond, &w->lock, &ts);
			}
			continue;
		}
		pthread_mutex_unlock(&w->lock);
		j->ok = verify(j->hash, j->known, j->pass);
		explicit_bzero(j->pass, sizeof(j->pass));
		pthread_mutex_lock(&w->lock);
		j->state = JOB_DONE;
		w->running--;
		w->checks++;
		w->failures += !j->ok;
		j->next = w->done;
		w->done = j;
		if (write(w->efd, &one, sizeof(one)) < 0) {
			/* The counter cannot overflow here; nothing to do. */
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

static void pool_stop(struct auth_worker *w, unsigned started)
{
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(w->threads[i], NULL);
}

struct auth_worker *auth_worker_new(unsigned threads, auth_result_cb on_result,
				    void *owner, char *err, size_t errlen)
{
	struct auth_worker *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	unsigned i;
	int rc = 0;

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (threads == 0) {
		threads = online_cpus();
		if (threads < 2)
			threads = 2;
	}
	if (threads > AUTH_WORKERS_MAX)
		threads = AUTH_WORKERS_MAX;
	w->nthreads = threads;
	w->per_source = threads > 1 ? threads - 1 : 1;
	w->on_result = on_result;
	w->owner = owner;
	w->threads = calloc(threads, sizeof(*w->threads));
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (w->threads == NULL || w->efd < 0) {
		snprintf(err, errlen, "auth workers: %s", strerror(errno));
		goto fail;
	}
	for (i = 0; i < threads; i++) {
		rc = pthread_create(&w->threads[i], NULL, worker_main, w);
		if (rc != 0)
			break;
	}
	if (i < threads) {
		snprintf(err, errlen, "auth workers: %s", strerror(rc));
		pool_stop(w, i);
		goto fail;
	}
	return w;
fail:
	if (w->efd >= 0)
		close(w->efd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w->threads);
	free(w);
	return NULL;
}

void auth_worker_free(struct auth_worker *w)
{
	if (w == NULL)
		return;
	pool_stop(w, w->nthreads);
	while (w->nsrcs > 0) {
		struct auth_src *s = w->turn;
		for (struct auth_job *j = s->head, *n; j; j = n) {
			n = j->next;
			job_free(j);
		}
		w->turn = s->next;
		free(s);
		w->nsrcs--;
	}
	for (struct auth_job *j = w->done, *n; j; j = n) {
		n = j->next;
		job_free(j);
	}
	close(w->efd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w->threads);
	free(w);
}

int auth_worker_fd(const struct auth_worker *w)
{
	return w->efd;
}

unsigned auth_worker_threads(const struct auth_worker *w)
{
	return w->nthreads;
}

/* Frees the sources with nothing queued or busy whose spacing has run
 * out (their next check would start at once anyway).  Locked. */
static void forget_idle(struct auth_worker *w, double now)
{
	struct auth_src *s = w->turn;

	for (size_t i = 0, n = w->nsrcs; i < n; i++) {
		struct auth_src *next = s->next;
		if (s->head == NULL && s->busy == 0 &&
		    s->last_start + s->spacing <= now) {
			s->prev->next = s->next;
			s->next->prev = s->prev;
			if (w->turn == s)
				w->turn = s->next;
			w->nsrcs--;
			if (w->nsrcs == 0)
				w->turn = NULL;
			free(s);
		}
		s = next;
	}
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
		double spacing = -1;
		done = j->next;
		if (w->on_result)
			spacing = w->on_result(w->owner, j->src->key,
					       j->src->keylen, j->user, j->ok);
		/* The spacing applies before the source's next check can
		 * start: it was busy until now. */
		pthread_mutex_lock(&w->lock);
		if (spacing >= 0)
			j->src->spacing = spacing;
		j->src->busy--;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		if (!j->cancelled)
			j->cb(j->arg, j->ok);
		job_free(j);
	}
	pthread_mutex_lock(&w->lock);
	forget_idle(w, mono());
	pthread_mutex_unlock(&w->lock);
}

/* The source of key (created, last in turn, if new); NULL if no memory.
 * Locked. */
static struct auth_src *src_get(struct auth_worker *w, const void *key,
				size_t keylen)
{
	struct auth_src *s = w->turn;

	for (size_t i = 0; i < w->nsrcs; i++, s = s->next)
		if (s->keylen == keylen && memcmp(s->key, key, keylen) == 0)
			return s;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	memcpy(s->key, key, keylen);
	s->keylen = keylen;
	s->last_start = -HUGE_VAL;
	if (w->turn == NULL) {
		s->prev = s->next = s;
		w->turn = s;
	} else {
		s->next = w->turn;
		s->prev = w->turn->prev;
		s->prev->next = s;
		w->turn->prev = s;
	}
	w->nsrcs++;
	return s;
}

struct auth_job *auth_check_async(struct auth_worker *w,
				  const struct auth_db *db, const char *user,
				  size_t ulen, const char *pass, size_t plen,
				  const void *key, size_t keylen,
				  double spacing, auth_done_cb cb, void *arg)
{
	struct auth_job *j = calloc(1, sizeof(*j));
	const char *hash;

	if (j == NULL)
		return NULL;
	if (keylen > AUTH_KEY_MAX)
		keylen = AUTH_KEY_MAX;
	hash = lookup(db, user, ulen, pass, plen, &j->known);
	j->hash = strdup(hash);
	if (j->hash == NULL || plen >= sizeof(j->pass) ||
	    ulen >= sizeof(j->user)) {
		job_free(j);
		return NULL;
	}
	memcpy(j->pass, pass, plen);
	for (size_t i = 0; i < ulen && user[i]; i++)
		j->user[i] = (unsigned char)user[i] < 0x20 || user[i] == 0x7f
				     ? '?'
				     : user[i];
	j->cb = cb;
	j->arg = arg;
	j->state = JOB_QUEUED;
	pthread_mutex_lock(&w->lock);
	j->src = src_get(w, key, keylen);
	if (j->src == NULL) {
		pthread_mutex_unlock(&w->lock);
		job_free(j);
		return NULL;
	}
	j->src->spacing = spacing > 0 ? spacing : 0;
	j->prev = j->src->tail;
	if (j->src->tail)
		j->src->tail->next = j;
	else
		j->src->head = j;
	j->src->tail = j;
	w->queued++;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return j;
}

void auth_job_cancel(struct auth_worker *w, struct auth_job *j)
{
	pthread_mutex_lock(&w->lock);
	if (j->state == JOB_QUEUED) {
		/* Never ran: nothing to report, nothing learnt. */
		src_unlink_job(w, j);
		pthread_mutex_unlock(&w->lock);
		job_free(j);
		return;
	}
	/* Running or done: auth_worker_process() reports the result to the
	 * hook and frees the job. */
	j->cancelled = true;
	pthread_mutex_unlock(&w->lock);
}

void auth_worker_stats(struct auth_worker *w, struct auth_worker_stats *out)
{
	double now = mono();
	struct auth_src *s;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&w->lock);
	out->threads = w->nthreads;
	out->queued = w->queued;
	out->running = w->running;
	out->checks = w->checks;
	out->failures = w->failures;
	s = w->turn;
	for (size_t i = 0; i < w->nsrcs; i++, s = s->next) {
		if (s->head == NULL)
			continue;
		out->sources++;
		if (s->last_start + s->spacing > now)
			for (struct auth_job *j = s->head; j; j = j->next)
				out->held++;
	}
	pthread_mutex_unlock(&w->lock);
}
