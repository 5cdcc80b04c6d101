/*
 * sgclient: see sgclient.h.  One deadline bounds the whole call: the proxy
 * name lookup, the connect, every write and every read wait with poll(2)
 * (or a condition variable, for the name lookup's helper thread) for what
 * is left of it.  The socket is non-blocking
 * while we work on it and blocking when handed over.
 */
#include "sgclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* > 0 ready, 0 deadline passed, < 0 poll failed (errno). */
static int wait_fd(int fd, short ev, long deadline)
{
	struct pollfd p = {.fd = fd, .events = ev};
	long left;
	int rc;

	do {
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		rc = poll(&p, 1, (int)left);
	} while (rc < 0 && errno == EINTR);
	return rc;
}

/* 0, -1 (I/O error, errno) or -2 (deadline passed). */
static int write_all(int fd, const uint8_t *b, size_t n, long deadline)
{
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			int rc = wait_fd(fd, POLLOUT, deadline);
			if (rc == 0)
				return -2;
			if (rc < 0)
				return -1;
			continue;
		}
		if (w < 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads until parse() accepts; returns S5 status or -1 (I/O), -2
 * (timeout). */
typedef enum s5_status (*parse_fn)(const uint8_t *, size_t, void *, size_t *);

static int read_msg(int fd, parse_fn parse, void *out, long deadline)
{
	uint8_t buf[600];
	size_t len = 0, used;
	enum s5_status st;

	for (;;) {
		st = parse(buf, len, out, &used);
		if (st != S5_NEED_MORE)
			return st;
		if (len == sizeof(buf))
			return S5_ERR_VERSION;
		int rc = wait_fd(fd, POLLIN, deadline);
		if (rc == 0)
			return -2;
		if (rc < 0)
			return -1;
		/* Read only what the message may still need: never eat
		 * bytes that belong to what follows the reply. */
		ssize_t n = recv(fd, buf + len, 1, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return -1;
		len += (size_t)n;
	}
}

/*
 * A proxy name lookup on a helper thread running getaddrinfo(3), so that
 * waiting for it is bounded.  Plain POSIX threads, not glibc's
 * getaddrinfo_a(3): the library must build against musl (OpenWrt).  When
 * the deadline passes first, the caller leaves and the lookup finishes in
 * the background: whichever of the caller and the thread comes second
 * frees it (decided under the mutex).
 */
struct lookup {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* signalled on done; CLOCK_MONOTONIC */
	bool done, left;
	int rc;
	struct addrinfo *res;
	char port[8];
	char host[];
};

static void lookup_free(struct lookup *l)
{
	if (l->res)
		freeaddrinfo(l->res);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static void *lookup_run(void *arg)
{
	struct lookup *l = arg;
	struct addrinfo hints, *res = NULL;
	bool left;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(l->host, l->port, &hints, &res);
	pthread_mutex_lock(&l->mu);
	l->rc = rc;
	l->res = rc == 0 ? res : NULL;
	l->done = true;
	left = l->left;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	if (left)
		lookup_free(l);
	return NULL;
}

/* Starts the detached helper with every signal blocked (the caller's
 * handlers must not run on a thread it does not know of).  0 or an
 * error number. */
static int lookup_start(struct lookup *l)
{
	sigset_t all, old;
	pthread_attr_t at;
	pthread_t t;
	int rc;

	if ((rc = pthread_attr_init(&at)) != 0)
		return rc;
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t, &at, lookup_run, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&at);
	return rc;
}

static struct lookup *lookup_new(const char *host, const char *port)
{
	struct lookup *l = calloc(1, sizeof(*l) + strlen(host) + 1);
	pthread_condattr_t ca;

	if (l == NULL)
		return NULL;
	strcpy(l->host, host);
	snprintf(l->port, sizeof(l->port), "%s", port);
	if (pthread_condattr_init(&ca) != 0) {
		free(l);
		return NULL;
	}
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&l->cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		free(l);
		return NULL;
	}
	pthread_condattr_destroy(&ca);
	if (pthread_mutex_init(&l->mu, NULL) != 0) {
		pthread_cond_destroy(&l->cv);
		free(l);
		return NULL;
	}
	return l;
}

/* 0 with *res set, EAI_* from the lookup (EAI_SYSTEM with errno when the
 * thread cannot start), or EAI_AGAIN with *timed_out when the deadline
 * passed. */
static int lookup_name(const char *host, const char *port, long deadline,
		       struct addrinfo **res, bool *timed_out)
{
	struct lookup *l = lookup_new(host, port);
	struct timespec ts = {.tv_sec = deadline / 1000,
			      .tv_nsec = (deadline % 1000) * 1000000L};
	bool done;
	int rc;

	*timed_out = false;
	if (l == NULL)
		return EAI_MEMORY;
	if ((rc = lookup_start(l)) != 0) {
		lookup_free(l);
		errno = rc;
		return EAI_SYSTEM;
	}
	pthread_mutex_lock(&l->mu);
	/* 0 is a wakeup (maybe spurious); ETIMEDOUT or an error ends it. */
	while (!l->done && pthread_cond_timedwait(&l->cv, &l->mu, &ts) == 0)
		;
	done = l->done;
	if (done) {
		rc = l->rc;
		*res = l->res;
		l->res = NULL;
	} else {
		l->left = true; /* the thread frees it */
	}
	pthread_mutex_unlock(&l->mu);
	if (!done) {
		*timed_out = true;
		return EAI_AGAIN;
	}
	lookup_free(l);
	return rc;
}

/* Numeric addresses never wait for anything; names go to lookup_name. */
static int resolve_proxy(const char *host, const char *port, long deadline,
			 struct addrinfo **res, bool *timed_out)
{
	struct addrinfo hints;
	int rc;

	*timed_out = false;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, res);
	if (rc != EAI_NONAME)
		return rc;
	return lookup_name(host, port, deadline, res, timed_out);
}

static enum s5_status parse_method(const uint8_t *b, size_t l, void *o,
				   size_t *c)
{
	return s5_method_reply_parse(b, l, o, c);
}

static enum s5_status parse_authrep(const uint8_t *b, size_t l, void *o,
				    size_t *c)
{
	return s5_auth_reply_parse(b, l, o, c);
}

static enum s5_status parse_reply(const uint8_t *b, size_t l, void *o,
				  size_t *c)
{
	return s5_reply_parse(b, l, o, c);
}

/* The connected, non-blocking socket, or -1 with err set and *r
 * SGC_ERR_CONNECT or SGC_ERR_TIMEOUT. */
static int connect_proxy(const struct sgc_opts *o, long deadline,
			 enum sgc_result *r, char *err, size_t errlen)
{
	struct addrinfo *res, *ai;
	char port[8];
	int fd = -1, rc;
	bool timed_out;

	*r = SGC_ERR_CONNECT;
	snprintf(port, sizeof(port), "%u",
		 o->proxy_port ? o->proxy_port : 1080);
	rc = resolve_proxy(o->proxy_host, port, deadline, &res, &timed_out);
	if (rc != 0) {
		if (timed_out)
			*r = SGC_ERR_TIMEOUT;
		snprintf(err, errlen, "%s: %s", o->proxy_host,
			 timed_out ? "name lookup timed out"
				   : gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int e = 0;
		socklen_t el = sizeof(e);

		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			e = errno;
			goto next;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			if (errno != EINPROGRESS) {
				e = errno;
				goto next;
			}
			rc = wait_fd(fd, POLLOUT, deadline);
			if (rc <= 0) {
				e = rc == 0 ? ETIMEDOUT : errno;
				goto next;
			}
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
				e = errno;
		}
		if (e == 0)
			break;
	next:
		snprintf(err, errlen, "connect to %s port %s: %s",
			 o->proxy_host, port, strerror(e));
		*r = e == ETIMEDOUT ? SGC_ERR_TIMEOUT : SGC_ERR_CONNECT;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0)
		err[0] = '\0';
	return fd;
}

enum sgc_result sgc_request(const struct sgc_opts *o,
			    const struct s5_request *req,
			    struct s5_reply *reply, int *fd_out, char *err,
			    size_t errlen)
{
	long deadline = now_ms() + (o->timeout_ms ? o->timeout_ms : 10000);
	uint8_t buf[S5_MAX_REQUEST + 8], method = 0, status = 0;
	struct s5_methods m = {.nmethods = 1, .methods = {S5_METHOD_NOAUTH}};
	enum sgc_result r = SGC_ERR_PROTOCOL;
	ssize_t n;
	int fd, st, fl;

	err[0] = '\0';
	if (o->user) {
		m.methods[0] = S5_METHOD_USERPASS;
		if (strlen(o->user) == 0 || strlen(o->user) > 255 ||
		    !o->password || strlen(o->password) == 0 ||
		    strlen(o->password) > 255) {
			snprintf(err, errlen,
				 "user and password: 1..255 bytes");
			return SGC_ERR_ARG;
		}
	}
	fd = connect_proxy(o, deadline, &r, err, errlen);
	if (fd < 0)
		return r;
	r = SGC_ERR_PROTOCOL;
	n = s5_methods_build(&m, buf, sizeof(buf));
	if ((st = write_all(fd, buf, (size_t)n, deadline)) < 0)
		goto io;
	st = read_msg(fd, parse_method, &method, deadline);
	if (st != S5_OK)
		goto bad;
	if (method == S5_METHOD_NONE) {
		snprintf(err, errlen, "no acceptable authentication method");
		r = SGC_ERR_METHOD;
		goto out;
	}
	if (method == S5_METHOD_USERPASS && o->user) {
		struct s5_auth a;
		memset(&a, 0, sizeof(a));
		a.ulen = (uint8_t)strlen(o->user);
		memcpy(a.uname, o->user, a.ulen);
		a.plen = (uint8_t)strlen(o->password);
		memcpy(a.passwd, o->password, a.plen);
		n = s5_auth_build(&a, buf, sizeof(buf));
		explicit_bzero(&a, sizeof(a));
		st = write_all(fd, buf, (size_t)n, deadline);
		explicit_bzero(buf, sizeof(buf));
		if (st < 0)
			goto io;
		st = read_msg(fd, parse_authrep, &status, deadline);
		if (st != S5_OK)
			goto bad;
		if (status != S5_AUTH_SUCCESS) {
			snprintf(err, errlen, "authentication failed");
			r = SGC_ERR_AUTH;
			goto out;
		}
	} else if (method != m.methods[0]) {
		snprintf(err, errlen, "proxy chose method 0x%02x", method);
		goto out;
	}
	n = s5_request_build(req, buf, sizeof(buf));
	if (n < 0) {
		snprintf(err, errlen, "request not encodable");
		r = SGC_ERR_ARG;
		goto out;
	}
	if ((st = write_all(fd, buf, (size_t)n, deadline)) < 0)
		goto io;
	st = read_msg(fd, parse_reply, reply, deadline);
	if (st != S5_OK)
		goto bad;
	if (reply->rep != S5_REP_SUCCEEDED) {
		snprintf(err, errlen, "request refused: 0x%02x %s", reply->rep,
			 s5_rep_str(reply->rep));
		r = SGC_ERR_REFUSED;
		goto out;
	}
	/* Handed over blocking, as a caller of a blocking library expects
	 * (a plain read() waits for N1's end instead of failing EAGAIN). */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		snprintf(err, errlen, "fcntl: %s", strerror(errno));
		r = SGC_ERR_CONNECT;
		goto out;
	}
	*fd_out = fd;
	return SGC_OK;
bad:
	if (st == -2) {
		snprintf(err, errlen, "timeout waiting for the proxy");
		r = SGC_ERR_TIMEOUT;
	} else if (st == -1) {
		snprintf(err, errlen, "the proxy closed the connection");
	} else {
		snprintf(err, errlen, "malformed answer: %s",
			 s5_status_str((enum s5_status)st));
	}
	goto out;
io:
	if (st == -2) {
		snprintf(err, errlen, "timeout sending to the proxy");
		r = SGC_ERR_TIMEOUT;
	} else {
		snprintf(err, errlen, "send: %s", strerror(errno));
	}
out:
	close(fd);
	return r;
}

const char *sgc_result_str(enum sgc_result r)
{
	static const char *const names[] = {
		"ok",	     "connect failed", "protocol error",
		"no method", "auth failed",    "refused",
		"timeout",   "bad argument"};
	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

int sgc_parse_hostport(const char *s, struct s5_addr *out)
{
	char host[300];
	const char *colon;
	char *end;
	unsigned long port;
	size_t hl;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		hl = (size_t)(close - s - 1);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hl = (size_t)(colon - s);
		if (hl == 0 || hl >= sizeof(host))
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (strchr(host, ':'))
			return -1; /* IPv6 needs brackets */
	}
	port = strtoul(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port > 65535)
		return -1;
	out->port = (uint16_t)port;
	if (inet_pton(AF_INET, host, out->u.v4) == 1) {
		out->atyp = S5_ATYP_IPV4;
	} else if (inet_pton(AF_INET6, host, out->u.v6) == 1) {
		out->atyp = S5_ATYP_IPV6;
	} else {
		if (strlen(host) > 255)
			return -1;
		out->atyp = S5_ATYP_DOMAIN;
		out->u.dom.len = (uint8_t)strlen(host);
		memcpy(out->u.dom.name, host, out->u.dom.len);
	}
	return 0;
}
