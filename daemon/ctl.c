/*
 * ctl: the control socket's transport (see ctl.h): accept, one request
 * line, the owner's answer, close.  It knows nothing of what the answers
 * say (ctl_cmd.c).
 */
#include "ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_req.h"
#include "grow.h"
#include "log.h"

#define CTL_MAX_LINE (CTL_REQ_MAX + 1)
#define CTL_TIMEOUT 5.0

struct ctl {
	struct ev_loop *loop;
	ctl_handler handler;
	void *arg;
	int fd;
	ev_io w;
	ev_timer retry; /* accept paused after EMFILE/ENFILE */
	char path[108];
	char dir[108]; /* the directory ctl_open made; "" if it existed */
};

struct ctl_conn {
	struct ctl *ctl;
	int fd;
	ev_io rd, wr;
	ev_timer timer;
	char in[CTL_MAX_LINE];
	size_t inlen;
	char *out;
	size_t outlen, outoff, outcap;
	bool oom;
};

/* --- output buffer --------------------------------------------------- */

void ctl_printf(struct ctl_conn *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->oom)
		return;
	for (;;) {
		size_t room = c->outcap - c->outlen;
		va_start(ap, fmt);
		n = vsnprintf(c->out ? c->out + c->outlen : NULL, room, fmt,
			      ap);
		va_end(ap);
		if (n < 0) {
			c->oom = true;
			return;
		}
		if ((size_t)n < room) {
			c->outlen += (size_t)n;
			return;
		}
		if (grow(&c->out, &c->outcap, c->outlen + (size_t)n + 1, 1,
			 4096) < 0) {
			c->oom = true;
			return;
		}
	}
}

void ctl_json_str(struct ctl_conn *c, const char *s)
{
	ctl_printf(c, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			ctl_printf(c, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			ctl_printf(c, "\\u%04x", ch);
		else
			ctl_printf(c, "%c", ch);
	}
	ctl_printf(c, "\"");
}

/* --- connections ------------------------------------------------------ */

static void conn_free(struct ctl_conn *c)
{
	struct ev_loop *loop = c->ctl->loop;

	ev_io_stop(loop, &c->rd);
	ev_io_stop(loop, &c->wr);
	ev_timer_stop(loop, &c->timer);
	close(c->fd);
	free(c->out);
	free(c);
}

static void conn_wr_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_conn *c = w->data;

	(void)loop;
	(void)revents;
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff,
				 c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			break;
		}
		c->outoff += (size_t)n;
	}
	conn_free(c);
}

static void conn_rd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_conn *c = w->data;
	size_t ll, used;
	ssize_t n;

	(void)revents;
	n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, 0);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_free(c);
		return;
	}
	c->inlen += (size_t)n;
	switch (ctl_req_line(c->in, c->inlen, &ll, &used)) {
	case CTL_REQ_OK:
		break;
	case CTL_REQ_NEED_MORE:
		return;
	default: /* too long, or a NUL byte: no answer */
		conn_free(c);
		return;
	}
	c->in[ll] = '\0';
	ev_io_stop(loop, &c->rd);
	c->ctl->handler(c->ctl->arg, c->in, c);
	if (c->oom) {
		conn_free(c);
		return;
	}
	ev_io_start(loop, &c->wr);
}

static void conn_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_free(w->data);
}

static void ctl_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl *ctl = w->data;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct ctl_conn *c;
	int fd;

	(void)revents;
	fd = accept4(ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		/* Out of fds the listener stays readable: pause instead of
		 * spinning (as the SOCKS listeners do). */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			log_warn("control: accept");
			ev_io_stop(loop, &ctl->w);
			ev_timer_start(loop, &ctl->retry);
		}
		return;
	}
	/* The socket's mode already keeps others out; check anyway. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	c->ctl = ctl;
	c->fd = fd;
	ev_io_init(&c->rd, conn_rd_cb, fd, EV_READ);
	ev_io_init(&c->wr, conn_wr_cb, fd, EV_WRITE);
	ev_timer_init(&c->timer, conn_timeout_cb, CTL_TIMEOUT, 0.);
	c->rd.data = c->wr.data = c->timer.data = c;
	ev_io_start(loop, &c->rd);
	ev_timer_start(loop, &c->timer);
}

static void ctl_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl *ctl = w->data;

	(void)revents;
	ev_io_start(loop, &ctl->w);
}

/* Whether a process accepts connections on the socket at path. */
static bool ctl_in_use(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool used;

	if (fd < 0)
		return false;
	used = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return used;
}

struct ctl *ctl_open(struct ev_loop *loop, const char *path,
		     ctl_handler handler, void *arg)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct ctl *ctl;
	struct stat st;
	char dir[sizeof(sun.sun_path)], *slash;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("control %s: path too long", path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	bool made_dir = false;
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) == 0)
			made_dir = true;
		else if (errno != EEXIST)
			log_warn("control: mkdir %s", dir);
	}
	/* Replace a stale socket, never another kind of file, nor the
	 * socket of a live process. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_warnx("control %s: exists and is not a socket",
				  path);
			return NULL;
		}
		if (ctl_in_use(&sun)) {
			log_warnx("control %s: another process serves it; "
				  "no control socket",
				  path);
			return NULL;
		}
		unlink(path);
	}
	ctl = calloc(1, sizeof(*ctl));
	if (ctl == NULL)
		return NULL;
	ctl->loop = loop;
	ctl->handler = handler;
	ctl->arg = arg;
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	if (made_dir)
		snprintf(ctl->dir, sizeof(ctl->dir), "%s", dir);
	ctl->fd =
		socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	mode_t old = umask(0177);
	if (ctl->fd < 0 ||
	    bind(ctl->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, 0600) < 0 || listen(ctl->fd, 16) < 0) {
		umask(old);
		log_warn("control %s", path);
		if (ctl->fd >= 0)
			close(ctl->fd);
		free(ctl);
		return NULL;
	}
	umask(old);
	ev_io_init(&ctl->w, ctl_accept_cb, ctl->fd, EV_READ);
	ctl->w.data = ctl;
	ev_timer_init(&ctl->retry, ctl_retry_cb, 0.5, 0.);
	ctl->retry.data = ctl;
	ev_io_start(loop, &ctl->w);
	log_info("control socket %s", path);
	return ctl;
}

void ctl_close(struct ctl *ctl)
{
	if (ctl == NULL)
		return;
	ev_io_stop(ctl->loop, &ctl->w);
	ev_timer_stop(ctl->loop, &ctl->retry);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl);
}

int ctl_chown(struct ctl *ctl, uid_t uid, gid_t gid)
{
	if (ctl == NULL)
		return 0;
	if (lchown(ctl->path, uid, gid) < 0)
		return -1;
	/* Only a directory of our own making: never /run or /tmp. */
	if (ctl->dir[0] != '\0' && lchown(ctl->dir, uid, gid) < 0)
		return -1;
	return 0;
}

const char *ctl_path(const struct ctl *ctl)
{
	return ctl->path;
}
