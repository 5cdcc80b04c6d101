/*
 * sup: see sup.h.  No event library: a poll over a signalfd and the
 * agent's channel is the whole loop.  Children get the signal mask and
 * dispositions of a fresh process, and PR_SET_PDEATHSIG: if the
 * supervisor is killed, they stop too (the agent's end removes the table).
 */
#include "sup.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "ct.h"
#include "fw_build.h"
#include "kmsg.h"
#include "log.h"

#define SUP_CHANNEL_BUF (4 << 20) /* bytes each way */
#define SUP_STABLE_SECS                                                        \
	10.0 /* a session process that lived this                              \
	      * long is restarted at once */
#define SUP_BACKOFF_MAX 10.0
#define SUP_STOP_SECS 5.0 /* then SIGKILL */

struct sup {
	const struct sup_opts *o;
	struct cfg cfg;
	bool cfg_owned;
	sigset_t oldmask;
	int sfd;
	int agent_fd;
	int session_fd; /* the supervisor's channel to the session */
	pid_t agent, session;
	uint32_t generation;
	struct cfg pending; /* a reload the session process must answer */
	int pending_fd;
	bool has_pending;
	double session_started;
	double backoff;
	double respawn_at; /* 0: none planned */
	bool stopping;
	int status;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* In a child: a fresh process's signals, and an end with the parent. */
static void child_setup(struct sup *s, pid_t parent)
{
	signal(SIGCHLD, SIG_DFL);
	sigprocmask(SIG_SETMASK, &s->oldmask, NULL);
	close(s->sfd);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0 ||
	    getppid() != parent)
		exit(1);
}

static const char *status_str(int st, char *buf, size_t cap)
{
	if (WIFEXITED(st))
		snprintf(buf, cap, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, cap, "signal %d", WTERMSIG(st));
	else
		snprintf(buf, cap, "status 0x%x", (unsigned)st);
	return buf;
}

static int spawn_agent(struct sup *s)
{
	int sv[2];
	pid_t parent = getpid();

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_warn("socketpair");
		return -1;
	}
	fflush(NULL);
	s->agent = fork();
	if (s->agent < 0) {
		log_warn("fork");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (s->agent == 0) {
		struct agent_opts ao = {
			.cfg_path = s->o->cfg_path,
			.cfg = &s->cfg,
			.sup_fd = sv[1],
			.session_fd = -1,
			.debug = s->o->debug,
		};
		close(sv[0]);
		child_setup(s, parent);
		exit(agent_main(&ao));
	}
	close(sv[1]);
	s->agent_fd = sv[0];
	return 0;
}

static void set_bufs(int fd)
{
	int sz = SUP_CHANNEL_BUF;

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
}

static int spawn_session(struct sup *s)
{
	struct kmsg_session m;
	pid_t parent = getpid();
	int sv[2], cv[2];

	s->respawn_at = 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_warn("socketpair");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cv) < 0) {
		log_warn("socketpair");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	set_bufs(sv[0]);
	set_bufs(sv[1]);
	fflush(NULL);
	s->session = fork();
	if (s->session < 0) {
		log_warn("fork");
		close(sv[0]);
		close(sv[1]);
		close(cv[0]);
		close(cv[1]);
		return -1;
	}
	if (s->session == 0) {
		close(sv[0]);
		close(cv[0]);
		close(s->agent_fd);
		if (s->session_fd >= 0)
			close(s->session_fd);
		child_setup(s, parent);
		exit(s->o->session_main(s->o->session_arg, &s->cfg, sv[1],
					cv[1]));
	}
	close(sv[1]);
	close(cv[1]);
	if (s->session_fd >= 0)
		close(s->session_fd);
	s->session_fd = cv[0];
	kmsg_refuse_fds(cv[0]);
	s->session_started = now();
	s->generation++;
	memset(&m, 0, sizeof(m));
	kmsg_hdr_init(&m.h, KMSG_SESSION, sizeof(m));
	m.pid = (int32_t)s->session;
	m.generation = s->generation;
	if (kmsg_send_fds(s->agent_fd, &m, sizeof(m), &sv[0], 1) < 0)
		log_warn("handing the session channel to the agent");
	close(sv[0]);
	return 0;
}

static void kill_wait(struct sup *s, pid_t *pid, int sig)
{
	if (*pid <= 0)
		return;
	kill(*pid, sig);
	double until = now() + SUP_STOP_SECS;
	for (;;) {
		int st;
		pid_t r = waitpid(*pid, &st, WNOHANG);
		if (r == *pid || (r < 0 && errno == ECHILD))
			break;
		if (now() > until) {
			log_warnx("process %d did not stop: SIGKILL",
				  (int)*pid);
			kill(*pid, SIGKILL);
			waitpid(*pid, &st, 0);
			break;
		}
		struct pollfd p = {.fd = s->sfd, .events = POLLIN};
		poll(&p, 1, 50);
		struct signalfd_siginfo si;
		while (read(s->sfd, &si, sizeof(si)) == sizeof(si))
			;
	}
	*pid = 0;
}

/* The agent died without its shutdown: the kernel dropped its table with
 * its socket, but the flows' conntrack entries would go on being NATed
 * until they time out.  The supervisor deletes them. */
static void purge_flows(void)
{
	char err[256];
	struct ct *ct = ct_open(err, sizeof(err));
	int n;

	if (ct == NULL) {
		log_warnx("conntrack: %s: entries of the agent's flows stay "
			  "until they time out",
			  err);
		return;
	}
	n = ct_purge_mark(ct, FW_MARK_TAG, FW_MARK_MASK);
	if (n > 0)
		log_info("deleted %d conntrack entries of the agent's flows",
			 n);
	ct_close(ct);
}

static void pending_drop(struct sup *s);

static void reap(struct sup *s)
{
	char buf[64];
	int st;
	pid_t pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid == s->agent) {
			s->agent = 0;
			if (!s->stopping) {
				log_error("the kernel agent ended (%s): "
					  "stopping",
					  status_str(st, buf, sizeof(buf)));
				s->status = 1;
				s->stopping = true;
				kill_wait(s, &s->session, SIGTERM);
				if (!WIFEXITED(st) ||
				    WEXITSTATUS(st) != AGENT_EXIT_OWNED)
					purge_flows();
			}
		} else if (pid == s->session) {
			s->session = 0;
			if (s->has_pending) {
				log_warnx("reload: the session process ended "
					  "before applying it; send SIGHUP "
					  "again");
				pending_drop(s);
			}
			if (s->stopping)
				continue;
			double lived = now() - s->session_started;
			log_error("the session process ended (%s) after %.1f s",
				  status_str(st, buf, sizeof(buf)), lived);
			if (WIFEXITED(st) &&
			    WEXITSTATUS(st) == SUP_SESSION_START_FAILED) {
				log_error("it could not start: stopping");
				s->status = 1;
				s->stopping = true;
				kill_wait(s, &s->agent, SIGTERM);
				continue;
			}
			s->backoff = lived >= SUP_STABLE_SECS ? 0.
				     : s->backoff < 0.25      ? 0.25
							      : s->backoff * 2;
			if (s->backoff > SUP_BACKOFF_MAX)
				s->backoff = SUP_BACKOFF_MAX;
			log_info("starting a new session process in %.2f s",
				 s->backoff);
			s->respawn_at = now() + s->backoff;
		}
	}
}

/* A reload the session process has not answered yet. */
static void pending_drop(struct sup *s)
{
	if (!s->has_pending)
		return;
	cfg_free(&s->pending);
	close(s->pending_fd);
	s->has_pending = false;
}

/* The session process applied it (or there is none): the agent gets the
 * same file, and a session process started later starts with it. */
static void pending_commit(struct sup *s)
{
	struct kmsg_reload m;

	memset(&m, 0, sizeof(m));
	kmsg_hdr_init(&m.h, KMSG_RELOAD, sizeof(m));
	if (s->agent > 0 &&
	    kmsg_send_fds(s->agent_fd, &m, sizeof(m), &s->pending_fd, 1) < 0)
		log_warn("reload: telling the agent");
	if (s->cfg_owned)
		cfg_free(&s->cfg);
	s->cfg = s->pending;
	s->cfg_owned = true;
	close(s->pending_fd);
	s->has_pending = false;
}

/* SIGHUP: the supervisor opens and checks the files; the children get
 * the open files (they may not have the right to open them): first the
 * session process, which may still refuse (a listener it cannot bind),
 * then, if it applied it, the agent, so that both run one configuration. */
static void reload(struct sup *s)
{
	struct kmsg_reload m;
	struct cfg next;
	char err[512];
	int fds[2] = {-1, -1};

	log_info("SIGHUP: reloading %s", s->o->cfg_path);
	fds[0] = open(s->o->cfg_path, O_RDONLY | O_CLOEXEC);
	if (fds[0] < 0) {
		log_error("%s: %s; keeping the running configuration",
			  s->o->cfg_path, strerror(errno));
		return;
	}
	if (cfg_load_fd(fds[0], s->o->cfg_path, &next, err, sizeof(err)) < 0) {
		log_error("%s; keeping the running configuration", err);
		close(fds[0]);
		return;
	}
	if (next.users_file[0] != '\0') {
		fds[1] = open(next.users_file, O_RDONLY | O_CLOEXEC);
		if (fds[1] < 0) {
			log_error("%s: %s; keeping the running configuration",
				  next.users_file, strerror(errno));
			cfg_free(&next);
			close(fds[0]);
			return;
		}
	}
	pending_drop(s); /* a newer one replaces it */
	s->pending = next;
	s->pending_fd = fds[0];
	s->has_pending = true;
	memset(&m, 0, sizeof(m));
	kmsg_hdr_init(&m.h, KMSG_RELOAD, sizeof(m));
	m.users_fd = fds[1] >= 0;
	if (s->session > 0 && s->session_fd >= 0 &&
	    kmsg_send_fds(s->session_fd, &m, sizeof(m), fds,
			  fds[1] >= 0 ? 2 : 1) == 0) {
		if (fds[1] >= 0)
			close(fds[1]);
		return; /* its answer commits or drops it */
	}
	if (fds[1] >= 0)
		close(fds[1]);
	pending_commit(s);
}

/* The session process's answer to a RELOAD. */
static void on_session(struct sup *s)
{
	union {
		unsigned char b[KMSG_MAX + 1];
		struct kmsg_reloaded r;
	} u;
	const char *why;
	ssize_t n = kmsg_recv(s->session_fd, u.b, sizeof(u.b), NULL, 0);

	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		/* It is going; its SIGCHLD says the rest. */
		close(s->session_fd);
		s->session_fd = -1;
		return;
	}
	if (kmsg_check(u.b, (size_t)n, 'Q', &why) != KMSG_RELOADED ||
	    !s->has_pending)
		return;
	if (u.r.ok)
		pending_commit(s);
	else {
		log_warnx("the session process kept its configuration: so "
			  "does the kernel agent");
		pending_drop(s);
	}
}

static int on_signal(struct sup *s)
{
	struct signalfd_siginfo si;

	while (read(s->sfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap(s);
			break;
		case SIGHUP:
			reload(s);
			break;
		case SIGTERM:
		case SIGINT:
			log_info("signal %u: shutting down", si.ssi_signo);
			s->stopping = true;
			if (s->session > 0)
				kill(s->session, SIGTERM);
			if (s->agent > 0)
				kill(s->agent, SIGTERM);
			break;
		default:
			break;
		}
	}
	return 0;
}

/* Waits for the agent's "up" (table claimed, privileges dropped). */
static int wait_agent_up(struct sup *s)
{
	union {
		unsigned char b[KMSG_MAX + 1];
		struct kmsg_hdr h;
	} u;
	const char *why;

	for (;;) {
		struct pollfd p[2] = {{.fd = s->agent_fd, .events = POLLIN},
				      {.fd = s->sfd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return -1;
		if (p[1].revents)
			on_signal(s);
		if (s->agent == 0 || s->stopping)
			return -1;
		if (p[0].revents) {
			ssize_t n = kmsg_recv(s->agent_fd, u.b, sizeof(u.b),
					      NULL, 0);
			if (n < 0 && errno == EAGAIN)
				continue;
			if (n <= 0)
				return -1; /* its exit follows */
			if (kmsg_check(u.b, (size_t)n, 'R', &why) ==
			    KMSG_AGENT_UP)
				return 0;
			log_warnx("agent: unexpected message (%s)",
				  why ? why : "type");
			return -1;
		}
	}
}

int sup_run(const struct sup_opts *o)
{
	struct sup s = {.o = o,
			.cfg = *o->cfg,
			.status = 0,
			.agent_fd = -1,
			.session_fd = -1};
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, &s.oldmask);
	s.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s.sfd < 0)
		fatal("signalfd");
	if (spawn_agent(&s) < 0)
		return 1;
	if (wait_agent_up(&s) < 0) {
		/* Another instance owns the table, or the agent could not
		 * start: it said why. */
		kill_wait(&s, &s.agent, SIGTERM);
		close(s.agent_fd);
		return 1;
	}
	if (spawn_session(&s) < 0) {
		kill_wait(&s, &s.agent, SIGTERM);
		close(s.agent_fd);
		return 1;
	}
	log_info("socksgated %s started: kernel agent %d, session process %d",
		 SOCKSGATE_VERSION, (int)s.agent, (int)s.session);
	while (s.agent > 0 || s.session > 0) {
		int timeout = -1;
		if (s.respawn_at > 0 && !s.stopping) {
			double left = s.respawn_at - now();
			timeout = left <= 0 ? 0 : (int)(left * 1000) + 1;
		}
		struct pollfd p[3] = {{.fd = s.sfd, .events = POLLIN},
				      {.fd = s.agent_fd, .events = POLLIN},
				      {.fd = s.session_fd, .events = POLLIN}};
		int r = poll(p, 3, timeout);
		if (r < 0 && errno != EINTR)
			fatal("poll");
		if (p[0].revents)
			on_signal(&s);
		if (p[1].revents & (POLLHUP | POLLERR)) {
			/* The agent is going; its SIGCHLD says the rest. */
			close(s.agent_fd);
			s.agent_fd = -1;
		} else if (p[1].revents) {
			unsigned char b[KMSG_MAX + 1];
			kmsg_recv(s.agent_fd, b, sizeof(b), NULL, 0);
		}
		if (p[2].revents && s.session_fd >= 0)
			on_session(&s);
		if (s.respawn_at > 0 && !s.stopping && s.session == 0 &&
		    s.agent > 0 && now() >= s.respawn_at)
			spawn_session(&s);
	}
	if (s.agent_fd >= 0)
		close(s.agent_fd);
	if (s.session_fd >= 0)
		close(s.session_fd);
	pending_drop(&s);
	close(s.sfd);
	if (s.cfg_owned)
		cfg_free(&s.cfg);
	return s.status;
}
