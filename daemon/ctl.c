/*
 * ctl: the control socket (`control PATH`, a Unix stream socket, mode
 * 0600 in a 0700 directory, root or the daemon's own user only).  One
 * request line per connection, one answer, then close:
 *   list [json]     every session, and its association if TRANSPARENT
 *   close ID        end association ID (reason operator)
 *   stats [json]    counters
 * An answer that starts with "error: " is a failure.
 */
#include "ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "assoc.h"
#include "fw.h"
#include "log.h"
#include "sess.h"
#include "srv.h"
#include "grow.h"

#define CTL_MAX_LINE 256
#define CTL_TIMEOUT 5.0

struct ctl {
	struct srv *srv;
	int fd;
	ev_io w;
	ev_timer retry; /* accept paused after EMFILE/ENFILE */
	char path[108];
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

static void out_printf(struct ctl_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void out_printf(struct ctl_conn *c, const char *fmt, ...)
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

/* A JSON string (quoted, escaped). */
static void out_json_str(struct ctl_conn *c, const char *s)
{
	out_printf(c, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			out_printf(c, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			out_printf(c, "\\u%04x", ch);
		else
			out_printf(c, "%c", ch);
	}
	out_printf(c, "\"");
}

/* --- answers ---------------------------------------------------------- */

static const char *cmd_name(uint8_t cmd)
{
	static const char *const names[] = {"none", "connect", "bind", "udp",
					    "transparent"};
	return cmd < 5 ? names[cmd] : "?";
}

static const char *state_name(enum sess_state st)
{
	return sess_state_str(st);
}

static void answer_list(struct ctl_conn *c, bool json)
{
	struct srv *srv = c->ctl->srv;
	ev_tstamp now = ev_now(srv->loop);
	bool first = true;

	if (srv->assocs)
		assoc_table_refresh(srv->assocs);
	if (json)
		out_printf(c, "{\"sessions\": [");
	else
		out_printf(c, "%-7s %-11s %-24s %-10s %-11s %-7s %9s %s\n",
			   "SESSION", "COMMAND", "CLIENT", "USER", "STATE",
			   "ASSOC", "AGE", "DETAILS");
	for (struct sess *s = srv->sessions; s; s = s->next) {
		char peer[ADDR_STRLEN];
		const char *user = s->user ? s->user : "-";
		const char *dst = s->dst ? s->dst : "-";
		uint64_t up = s->conn ? s->conn->relay.up.bytes : 0;
		uint64_t down = s->conn ? s->conn->relay.down.bytes : 0;
		struct assoc_info ai;
		bool has_assoc = s->assoc != NULL;

		addr_str(&s->peer.sa, peer, sizeof(peer));
		if (has_assoc)
			assoc_get_info(s->assoc, &ai);
		if (!json) {
			out_printf(c, "%-7llu %-11s %-24s %-10s %-11s ",
				   (unsigned long long)s->id, cmd_name(s->cmd),
				   peer, user, state_name(s->state));
			if (has_assoc) {
				char sa[ADDR_STRLEN], ba[ADDR_STRLEN],
					da[ADDR_STRLEN];
				out_printf(
					c,
					"%-7u %8.1fs ptcl %u %s -> %s -> %s "
					"up %llu B %llu pkt down %llu B %llu "
					"pkt\n",
					ai.id, now - s->started, ai.proto,
					addr_str((struct sockaddr *)&ai.src, sa,
						 sizeof(sa)),
					addr_str((struct sockaddr *)&ai.bnd, ba,
						 sizeof(ba)),
					addr_str((struct sockaddr *)&ai.dst, da,
						 sizeof(da)),
					(unsigned long long)ai.bytes_orig,
					(unsigned long long)ai.packets_orig,
					(unsigned long long)ai.bytes_reply,
					(unsigned long long)ai.packets_reply);
			} else {
				out_printf(c,
					   "%-7s %8.1fs dst %s up %llu B "
					   "down %llu B\n",
					   "-", now - s->started, dst,
					   (unsigned long long)up,
					   (unsigned long long)down);
			}
			continue;
		}
		out_printf(c,
			   "%s\n  {\"id\": %llu, \"command\": \"%s\", "
			   "\"client\": \"%s\", \"user\": ",
			   first ? "" : ",", (unsigned long long)s->id,
			   cmd_name(s->cmd), peer);
		first = false;
		if (s->user)
			out_json_str(c, s->user);
		else
			out_printf(c, "null");
		out_printf(c,
			   ", \"state\": \"%s\", \"age\": %.3f, "
			   "\"destination\": ",
			   state_name(s->state), now - s->started);
		out_json_str(c, dst);
		out_printf(c, ", \"bytes_up\": %llu, \"bytes_down\": %llu",
			   (unsigned long long)up, (unsigned long long)down);
		if (has_assoc) {
			char sa[ADDR_STRLEN], ba[ADDR_STRLEN], da[ADDR_STRLEN];
			out_printf(
				c,
				", \"association\": {\"id\": %u, \"ptcl\": %u, "
				"\"source\": \"%s\", \"bound\": \"%s\", "
				"\"destination\": \"%s\", \"state\": \"%s\", "
				"\"age\": %.3f, \"packets_up\": %llu, "
				"\"bytes_up\": %llu, \"packets_down\": %llu, "
				"\"bytes_down\": %llu}",
				ai.id, ai.proto,
				addr_str((struct sockaddr *)&ai.src, sa,
					 sizeof(sa)),
				addr_str((struct sockaddr *)&ai.bnd, ba,
					 sizeof(ba)),
				addr_str((struct sockaddr *)&ai.dst, da,
					 sizeof(da)),
				ai.state, ai.age,
				(unsigned long long)ai.packets_orig,
				(unsigned long long)ai.bytes_orig,
				(unsigned long long)ai.packets_reply,
				(unsigned long long)ai.bytes_reply);
		}
		out_printf(c, "}");
	}
	if (json)
		out_printf(c, "\n]}\n");
}

static const char *const set_names[] = {"bound", "assoc", "dnat", "mark"};

static void answer_stats(struct ctl_conn *c, bool json)
{
	struct srv *srv = c->ctl->srv;
	const struct srv_stats *ss = &srv->stats;
	static const struct assoc_stats none;
	const struct assoc_stats *as =
		srv->assocs ? assoc_table_stats(srv->assocs) : &none;
	struct fw *fw = srv->assocs ? assoc_table_fw(srv->assocs) : NULL;
	static const struct fw_stats fnone;
	const struct fw_stats *fs = fw ? fw_get_stats(fw) : &fnone;
	struct assoc_audit au;
	uint64_t dp = 0, db = 0;
	size_t n = srv->assocs ? assoc_table_count(srv->assocs) : 0;

	memset(&au, 0, sizeof(au));
	if (srv->assocs)
		assoc_table_audit(srv->assocs, &au);
	if (fw)
		fw_dropped(fw, &dp, &db);
	if (!json) {
		out_printf(c,
			   "sessions: %llu total, %u active; connect %llu "
			   "bind %llu udp %llu transparent %llu\n"
			   "refused: %llu denied by rules, %llu auth "
			   "failures, %llu malformed\n"
			   "associations: %zu in table (%zu live, %zu pending, "
			   "%zu closing, %zu quarantine), %llu opened, %llu "
			   "setup failures\n",
			   (unsigned long long)ss->sessions_total,
			   srv->nsessions,
			   (unsigned long long)ss->sessions_by_cmd[1],
			   (unsigned long long)ss->sessions_by_cmd[2],
			   (unsigned long long)ss->sessions_by_cmd[3],
			   (unsigned long long)ss->sessions_by_cmd[4],
			   (unsigned long long)ss->denied,
			   (unsigned long long)ss->auth_failures,
			   (unsigned long long)ss->bad_requests, n, au.live,
			   au.pending, au.closing, au.quarantine,
			   (unsigned long long)as->opened,
			   (unsigned long long)as->setup_failures);
		out_printf(c, "ended:");
		for (int i = 0; i < ASSOC_END_COUNT; i++)
			out_printf(c, " %s %llu", assoc_end_str(i),
				   (unsigned long long)as->ended[i]);
		out_printf(c, "\nkernel elements:");
		for (int k = 0; k < 4; k++)
			out_printf(c, " %s %llu/%llu", set_names[k],
				   (unsigned long long)au.kernel[k],
				   (unsigned long long)au.expected[k]);
		out_printf(c, " (kernel/record): %s; %zu unconfirmed\n",
			   !au.kernel_read ? "unreadable"
			   : au.consistent ? "consistent"
					   : "DIFFERENT",
			   au.unconfirmed);
		out_printf(c,
			   "source filter: %llu packets %llu bytes "
			   "dropped\nnetlink: %llu transactions, %llu "
			   "errors, %llu unanswered, %llu stale answers, %llu "
			   "removals retried\nconntrack: %llu events, %llu "
			   "overruns, %llu resyncs, %llu errors, %llu dump "
			   "failures, %llu orphans deleted\n",
			   (unsigned long long)dp, (unsigned long long)db,
			   (unsigned long long)fs->transactions,
			   (unsigned long long)fs->errors,
			   (unsigned long long)fs->unanswered,
			   (unsigned long long)fs->stale_acks,
			   (unsigned long long)as->kernel_retries,
			   (unsigned long long)as->events,
			   (unsigned long long)as->event_overruns,
			   (unsigned long long)as->resyncs,
			   (unsigned long long)(as->conntrack_errors +
						as->track_errors),
			   (unsigned long long)as->dump_failures,
			   (unsigned long long)as->orphans_deleted);
		return;
	}
	out_printf(c,
		   "{\"sessions\": {\"total\": %llu, \"active\": %u, "
		   "\"by_command\": {\"connect\": %llu, \"bind\": %llu, "
		   "\"udp\": %llu, \"transparent\": %llu}, \"denied\": %llu, "
		   "\"auth_failures\": %llu, \"malformed\": %llu},\n",
		   (unsigned long long)ss->sessions_total, srv->nsessions,
		   (unsigned long long)ss->sessions_by_cmd[1],
		   (unsigned long long)ss->sessions_by_cmd[2],
		   (unsigned long long)ss->sessions_by_cmd[3],
		   (unsigned long long)ss->sessions_by_cmd[4],
		   (unsigned long long)ss->denied,
		   (unsigned long long)ss->auth_failures,
		   (unsigned long long)ss->bad_requests);
	out_printf(c,
		   " \"associations\": {\"in_table\": %zu, \"live\": %zu, "
		   "\"pending\": %zu, \"closing\": %zu, \"quarantine\": %zu, "
		   "\"opened\": %llu, \"setup_failures\": %llu, \"ended\": {",
		   n, au.live, au.pending, au.closing, au.quarantine,
		   (unsigned long long)as->opened,
		   (unsigned long long)as->setup_failures);
	for (int i = 0; i < ASSOC_END_COUNT; i++)
		out_printf(c, "%s\"%s\": %llu", i ? ", " : "", assoc_end_str(i),
			   (unsigned long long)as->ended[i]);
	out_printf(c,
		   "}},\n \"kernel\": {\"readable\": %s, \"consistent\": "
		   "%s, \"unconfirmed\": %zu, \"elements\": {",
		   au.kernel_read ? "true" : "false",
		   au.consistent ? "true" : "false", au.unconfirmed);
	for (int k = 0; k < 4; k++)
		out_printf(c, "%s\"%s\": %llu", k ? ", " : "", set_names[k],
			   (unsigned long long)au.kernel[k]);
	out_printf(c, "}, \"expected\": {");
	for (int k = 0; k < 4; k++)
		out_printf(c, "%s\"%s\": %llu", k ? ", " : "", set_names[k],
			   (unsigned long long)au.expected[k]);
	out_printf(
		c,
		"}},\n \"source_filter\": {\"dropped_packets\": %llu, "
		"\"dropped_bytes\": %llu},\n \"netlink\": "
		"{\"transactions\": %llu, \"errors\": %llu, "
		"\"unanswered\": %llu, \"stale_answers\": %llu, "
		"\"removals_retried\": %llu},\n "
		"\"conntrack\": {\"events\": %llu, \"overruns\": %llu, "
		"\"resyncs\": %llu, \"errors\": %llu, \"dump_failures\": "
		"%llu, \"orphans_deleted\": %llu}}\n",
		(unsigned long long)dp, (unsigned long long)db,
		(unsigned long long)fs->transactions,
		(unsigned long long)fs->errors,
		(unsigned long long)fs->unanswered,
		(unsigned long long)fs->stale_acks,
		(unsigned long long)as->kernel_retries,
		(unsigned long long)as->events,
		(unsigned long long)as->event_overruns,
		(unsigned long long)as->resyncs,
		(unsigned long long)(as->conntrack_errors + as->track_errors),
		(unsigned long long)as->dump_failures,
		(unsigned long long)as->orphans_deleted);
}

static void answer_close(struct ctl_conn *c, const char *arg)
{
	struct srv *srv = c->ctl->srv;
	char *end;
	unsigned long id = strtoul(arg, &end, 10);

	if (*arg == '\0' || *end != '\0' || id == 0 || id > 0xffffff) {
		out_printf(c, "error: usage: close ASSOCIATION-ID\n");
		return;
	}
	if (srv->assocs == NULL || assoc_terminate_id(srv->assocs, (uint32_t)id,
						      ASSOC_END_OPERATOR) < 0) {
		out_printf(c, "error: no live association %lu\n", id);
		return;
	}
	log_info("control: association %lu closed by the operator", id);
	out_printf(c, "closed %lu\n", id);
}

static void ctl_answer(struct ctl_conn *c, char *line)
{
	if (strcmp(line, "list") == 0)
		answer_list(c, false);
	else if (strcmp(line, "list json") == 0)
		answer_list(c, true);
	else if (strcmp(line, "stats") == 0)
		answer_stats(c, false);
	else if (strcmp(line, "stats json") == 0)
		answer_stats(c, true);
	else if (strncmp(line, "close ", 6) == 0)
		answer_close(c, line + 6);
	else
		out_printf(c, "error: unknown request (list [json], close ID, "
			      "stats [json])\n");
}

/* --- connections ------------------------------------------------------ */

static void conn_free(struct ctl_conn *c)
{
	struct ev_loop *loop = c->ctl->srv->loop;

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
	char *nl;
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
	c->in[c->inlen] = '\0';
	nl = strchr(c->in, '\n');
	if (nl == NULL) {
		if (c->inlen == sizeof(c->in) - 1)
			conn_free(c);
		return;
	}
	*nl = '\0';
	if (nl > c->in && nl[-1] == '\r')
		nl[-1] = '\0';
	ev_io_stop(loop, &c->rd);
	ctl_answer(c, c->in);
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

struct ctl *ctl_open(struct srv *srv, const char *path)
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
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
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
	ctl->srv = srv;
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
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
	ev_io_start(srv->loop, &ctl->w);
	log_info("control socket %s", path);
	return ctl;
}

void ctl_close(struct ctl *ctl)
{
	if (ctl == NULL)
		return;
	ev_io_stop(ctl->srv->loop, &ctl->w);
	ev_timer_stop(ctl->srv->loop, &ctl->retry);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl);
}

const char *ctl_path(const struct ctl *ctl)
{
	return ctl->path;
}
