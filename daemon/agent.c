/*
 * agent: see agent.h.  One loop: the supervisor's channel (new session
 * channels arrive on it), the session channel (kmsg requests in, results
 * and events out), signals (SIGHUP reload, SIGTERM stop), and the
 * association table's own watchers (coalesced kernel transactions are
 * kept: every request read in one wakeup goes to the kernel in the
 * transaction flushed before the loop sleeps).
 *
 * What reaches the session process is queued when its socket is full; a
 * session process that stops reading (more than AGENT_OUTQ_MAX bytes
 * queued) is treated as gone: its associations end.
 */
#include "agent.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <unistd.h>

#include <ev.h>

#include "addr.h"
#include "assoc.h"
#include "ct_probe.h"
#include "log.h"
#include "priv.h"
#include "s5_proto.h"

#define AGENT_BUCKETS 16384
#define AGENT_READ_BURST 16	   /* packets per wakeup */
#define AGENT_OUTQ_MAX (16u << 20) /* bytes queued for the session */
#define AGENT_REFUSED_LOG 20	   /* refusals logged one by one */

/* One association of the session's, by the session's tag. */
struct agent_link {
	uint64_t tag;
	struct assoc *a;
	struct agent *ag;
	uint8_t proto;
	struct agent_link *next; /* hash chain */
};

struct agent {
	struct ev_loop *loop;
	const char *cfg_path;
	struct cfg cfg;
	bool debug;
	struct assoc_table *t;
	int sup_fd;
	ev_io sup_io;
	int sess_fd;
	ev_io sess_rd, sess_wr;
	/* Sends what is queued just before the loop sleeps: lowest
	 * priority, so after the association table's own flush (which
	 * produces the answers) in the same iteration. */
	ev_prepare out_prep;
	struct kmsg_queue outq;
	struct agent_link *hash[AGENT_BUCKETS];
	size_t nlinks;
	uint64_t refused;  /* messages or requests refused */
	uint64_t hash_key; /* tags are the session's: a keyed hash */
	/* LIST and STATS make the kernel work (a conntrack dump, set
	 * counts): LIST refreshes the counters at most once a second, STATS
	 * reads the sets at most once per packet. */
	double listed;
	uint64_t packets, audited; /* packets read; the last audit's */
	struct assoc_audit last_audit;
	bool exit_on_session_end;
	ev_signal sig_hup, sig_term, sig_int;
	int status;
};

/* --- links --------------------------------------------------------- */

static struct agent_link **link_slot(struct agent *ag, uint64_t tag)
{
	struct agent_link **p =
		&ag->hash[((tag ^ ag->hash_key) * 0x9e3779b97f4a7c15ULL) >> 50];

	_Static_assert(AGENT_BUCKETS == 1u << 14, "buckets: 64 - 50 bits");
	while (*p && (*p)->tag != tag)
		p = &(*p)->next;
	return p;
}

static struct agent_link *link_find(struct agent *ag, uint64_t tag)
{
	return *link_slot(ag, tag);
}

static void link_free(struct agent_link *l)
{
	struct agent_link **p = link_slot(l->ag, l->tag);

	if (*p == l) {
		*p = l->next;
		l->ag->nlinks--;
	}
	free(l);
}

/* --- output -------------------------------------------------------- */

static void session_lost(struct agent *ag, const char *why);
static void agent_reload(struct agent *ag, int fd);

/* Sends the queue, KMSG_BATCH messages per system call: the session
 * process wakes once for a transaction's answers, not once each. */
static void out_flush(struct agent *ag)
{
	int rc = kmsg_queue_flush(&ag->outq, ag->sess_fd);

	if (rc < 0) {
		session_lost(ag, "its channel failed");
		return;
	}
	if (rc == 0)
		ev_io_stop(ag->loop, &ag->sess_wr);
	else
		ev_io_start(ag->loop, &ag->sess_wr);
}

static void send_session(struct agent *ag, const void *msg, size_t len)
{
	if (ag->sess_fd < 0)
		return;
	if (ag->outq.bytes + len > AGENT_OUTQ_MAX) {
		session_lost(ag, "it stopped reading its messages");
		return;
	}
	if (kmsg_queue_push(&ag->outq, msg, len) < 0)
		session_lost(ag, "out of memory for its messages");
}

static void out_prep_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct agent *ag = w->data;

	(void)loop;
	(void)revents;
	if (ag->outq.head && ag->sess_fd >= 0 && !ev_is_active(&ag->sess_wr))
		out_flush(ag);
}

static void sess_wr_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	out_flush(w->data);
}

/* --- association callbacks ----------------------------------------- */

static void send_ready(struct agent *ag, uint64_t tag, uint32_t id, uint8_t rep,
		       const struct sockaddr *bnd)
{
	struct kmsg_ready m;

	memset(&m, 0, sizeof(m));
	kmsg_hdr_init(&m.h, KMSG_READY, sizeof(m));
	m.tag = tag;
	m.id = id;
	m.rep = rep;
	if (rep == S5_REP_SUCCEEDED && kmsg_addr_from(bnd, &m.bnd) < 0)
		m.rep = S5_REP_GENERAL;
	send_session(ag, &m, sizeof(m));
}

static void link_ready(void *arg, uint8_t rep, const struct sockaddr *bnd)
{
	struct agent_link *l = arg;
	struct agent *ag = l->ag;

	if (rep != S5_REP_SUCCEEDED) {
		l->a = NULL; /* already freed by the table */
		uint64_t tag = l->tag;
		link_free(l);
		send_ready(ag, tag, 0, rep, NULL);
		return;
	}
	send_ready(ag, l->tag, assoc_id(l->a), rep, bnd);
}

static void link_ended(void *arg, enum assoc_end why)
{
	struct agent_link *l = arg;
	struct agent *ag = l->ag;
	struct kmsg_ended m;

	memset(&m, 0, sizeof(m));
	kmsg_hdr_init(&m.h, KMSG_ENDED, sizeof(m));
	m.tag = l->tag;
	m.why = why;
	l->a = NULL; /* closed by the table */
	link_free(l);
	send_session(ag, &m, sizeof(m));
}

/* --- requests ------------------------------------------------------ */

static void refuse(struct agent *ag, const char *what, const char *why)
{
	ag->refused++;
	if (ag->refused <= AGENT_REFUSED_LOG)
		log_warnx("agent: refused %s from the session process: %s",
			  what, why);
	else
		log_limited(LOG_LVL_WARN,
			    "agent: refused %s from the session process: %s "
			    "(%llu refusals so far)",
			    what, why, (unsigned long long)ag->refused);
}

static const char *bnd_refusal(struct agent *ag, const struct kmsg_open *m)
{
	const struct sockaddr_storage *relay =
		m->bnd.family == AF_INET6 ? &ag->cfg.relay6 : &ag->cfg.relay4;
	struct sockaddr_storage bnd;
	bool listed = false, wildcard = false;
	int fd, rc;

	kmsg_addr_to(&m->bnd, &bnd);
	if (relay->ss_family == 0) {
		for (size_t i = 0; i < ag->cfg.nlisten; i++) {
			const struct sockaddr *l =
				(const struct sockaddr *)&ag->cfg.listen[i];
			if (l->sa_family != bnd.ss_family)
				continue;
			if (addr_is_unusable_bnd(l))
				wildcard = true;
			else if (addr_eq_ip(l, (struct sockaddr *)&bnd))
				listed = true;
		}
		if (!listed && !wildcard)
			return "BND.ADDR is not an address the daemon listens "
			       "on (and no relay-address is set)";
	}
	/* A configured address: the port pools stay as few as those (the
	 * trial binds find one that is not local), no system call here. */
	if (relay->ss_family != 0 || listed)
		return NULL;
	/* A wildcard listener: local, or no port pool is made for it. */
	fd = socket(bnd.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL; /* cannot tell: the trial binds will */
	rc = bind(fd, (struct sockaddr *)&bnd,
		  addr_len((struct sockaddr *)&bnd));
	close(fd);
	if (rc < 0 && errno == EADDRNOTAVAIL)
		return "BND.ADDR is not a local address";
	return NULL;
}

static void do_open(struct agent *ag, const struct kmsg_open *m)
{
	static const struct assoc_cbs cbs = {link_ready, link_ended};
	struct agent_link *l;
	struct assoc_req r;
	const char *why;
	uint8_t rep;

	if (link_find(ag, m->tag) != NULL) {
		refuse(ag, "open", "tag already in use");
		return; /* answering would confuse the live one */
	}
	/* What the session process should have refused itself. */
	rep = kmsg_check_open(&ag->cfg, m, &why);
	if (rep != S5_REP_SUCCEEDED) {
		refuse(ag, "open", why);
		send_ready(ag, m->tag, 0, rep, NULL);
		return;
	}
	/* BND: the relay address, else an address the daemon listens on
	 * (any local one only if it listens on the wildcard); and local. */
	why = bnd_refusal(ag, m);
	if (why != NULL) {
		refuse(ag, "open", why);
		send_ready(ag, m->tag, 0, S5_REP_NOT_ALLOWED, NULL);
		return;
	}
	/* What it cannot know: the kernel's abilities, the table's size. */
	why = ct_relay_unsupported(m->proto);
	if (why != NULL) {
		log_limited(LOG_LVL_INFO,
			    "agent: session %llu: TRANSPARENT ptcl %u refused "
			    "(0x09): %s",
			    (unsigned long long)m->session_id, m->proto, why);
		send_ready(ag, m->tag, 0, S5_REP_PTCL_UNSUPPORTED, NULL);
		return;
	}
	if (ag->nlinks >= ag->cfg.max_associations) {
		log_limited(LOG_LVL_WARN, "max-associations (%u) reached",
			    ag->cfg.max_associations);
		send_ready(ag, m->tag, 0, S5_REP_GENERAL, NULL);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.proto = m->proto;
	kmsg_addr_to(&m->src, &r.src);
	kmsg_addr_to(&m->bnd, &r.bnd);
	kmsg_addr_to(&m->dst, &r.dst);
	kmsg_addr_to(&m->client, &r.client);
	r.user = m->user;
	r.session_id = m->session_id;
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		send_ready(ag, m->tag, 0, S5_REP_GENERAL, NULL);
		return;
	}
	l->tag = m->tag;
	l->ag = ag;
	l->proto = m->proto;
	l->a = assoc_open(ag->t, &r, &cbs, l, &rep);
	if (l->a == NULL) {
		free(l);
		send_ready(ag, m->tag, 0, rep, NULL);
		return;
	}
	*link_slot(ag, l->tag) = l;
	ag->nlinks++;
}

static void do_close(struct agent *ag, const struct kmsg_close *m)
{
	struct agent_link *l = link_find(ag, m->tag);

	/* Unknown: it ended here while the close was on its way. */
	if (l == NULL)
		return;
	assoc_close(l->a, (enum assoc_end)m->why);
	link_free(l);
}

static void do_terminate(struct agent *ag, const struct kmsg_terminate *m)
{
	struct kmsg_result res;

	memset(&res, 0, sizeof(res));
	kmsg_hdr_init(&res.h, KMSG_RESULT, sizeof(res));
	res.rc = assoc_terminate_id(ag->t, m->id, (enum assoc_end)m->why);
	if (res.rc < 0) {
		char what[64];
		snprintf(what, sizeof(what), "terminate of id %u", m->id);
		refuse(ag, what, "no live association of ours has that id");
	}
	send_session(ag, &res, sizeof(res));
}

#define AGENT_REFRESH_SECS 1.0

static void do_list(struct agent *ag)
{
	struct kmsg_query end;

	ev_now_update(ag->loop);
	if (ev_now(ag->loop) - ag->listed >= AGENT_REFRESH_SECS) {
		assoc_table_refresh(ag->t);
		ag->listed = ev_now(ag->loop);
	}
	for (size_t b = 0; b < AGENT_BUCKETS; b++) {
		for (struct agent_link *l = ag->hash[b]; l; l = l->next) {
			struct assoc_info ai;
			struct kmsg_info m;
			assoc_get_info(l->a, &ai);
			memset(&m, 0, sizeof(m));
			kmsg_hdr_init(&m.h, KMSG_INFO, sizeof(m));
			m.tag = l->tag;
			m.id = ai.id;
			snprintf(m.state, sizeof(m.state), "%s", ai.state);
			m.age = ai.age;
			m.packets_orig = ai.packets_orig;
			m.bytes_orig = ai.bytes_orig;
			m.packets_reply = ai.packets_reply;
			m.bytes_reply = ai.bytes_reply;
			send_session(ag, &m, sizeof(m));
			if (ag->sess_fd < 0)
				return;
		}
	}
	memset(&end, 0, sizeof(end));
	kmsg_hdr_init(&end.h, KMSG_LIST_END, sizeof(end));
	send_session(ag, &end, sizeof(end));
}

static void do_stats(struct agent *ag)
{
	struct kmsg_stats_reply m;

	memset(&m, 0, sizeof(m));
	kmsg_hdr_init(&m.h, KMSG_STATS_REPLY, sizeof(m));
	m.stats = *assoc_table_stats(ag->t);
	if (ag->audited != ag->packets) {
		assoc_table_audit(ag->t, &ag->last_audit);
		ag->audited = ag->packets;
	}
	m.audit = ag->last_audit;
	m.count = assoc_table_count(ag->t);
	send_session(ag, &m, sizeof(m));
}

/* --- the session channel ------------------------------------------- */

static void session_welcome(struct agent *ag)
{
	struct kmsg_welcome w;

	memset(&w, 0, sizeof(w));
	kmsg_hdr_init(&w.h, KMSG_WELCOME, sizeof(w));
	w.available = assoc_table_available(ag->t);
	send_session(ag, &w, sizeof(w));
}

/* Ends every association of the session process: its channel is gone
 * (it exited, crashed, or misbehaved). */
static void session_lost(struct agent *ag, const char *why)
{
	size_t n = ag->nlinks;

	if (ag->sess_fd < 0)
		return;
	log_warnx("agent: session process lost (%s): ending its %zu "
		  "associations",
		  why, n);
	ev_io_stop(ag->loop, &ag->sess_rd);
	ev_io_stop(ag->loop, &ag->sess_wr);
	close(ag->sess_fd);
	ag->sess_fd = -1;
	kmsg_queue_clear(&ag->outq);
	for (size_t b = 0; b < AGENT_BUCKETS; b++) {
		while (ag->hash[b]) {
			struct agent_link *l = ag->hash[b];
			assoc_close(l->a, ASSOC_END_SESSION_LOST);
			link_free(l);
		}
	}
	if (ag->exit_on_session_end)
		ev_break(ag->loop, EVBREAK_ALL);
}

/* One message of a packet kmsg_check_packet() passed: each message in it
 * was checked there, once. */
static void dispatch(struct agent *ag, const unsigned char *msg, size_t len)
{
	union {
		unsigned char b[KMSG_MAX];
		struct kmsg_hdr h;
		struct kmsg_open open;
		struct kmsg_close close;
		struct kmsg_terminate term;
	} u;
	memcpy(u.b, msg, len); /* aligned */
	switch ((enum kmsg_type)u.h.type) {
	case KMSG_OPEN:
		do_open(ag, &u.open);
		break;
	case KMSG_CLOSE:
		do_close(ag, &u.close);
		break;
	case KMSG_TERMINATE:
		do_terminate(ag, &u.term);
		break;
	case KMSG_LIST:
		do_list(ag);
		break;
	case KMSG_STATS:
		do_stats(ag);
		break;
	default:
		refuse(ag, "a message", "unexpected type");
		break;
	}
}

/* Packets from the session process; a packet is checked whole (every
 * message, and that they fill it) before any of it is carried out. */
static void sess_rd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	static unsigned char pkt[KMSG_PACKET + 1];
	struct agent *ag = w->data;

	(void)loop;
	(void)revents;
	for (int i = 0; i < AGENT_READ_BURST && ag->sess_fd >= 0; i++) {
		const char *why;
		ssize_t n = kmsg_recv(ag->sess_fd, pkt, sizeof(pkt), NULL, 0);
		if (n < 0) {
			if (errno != EAGAIN)
				session_lost(ag, strerror(errno));
			return;
		}
		if (n == 0) {
			session_lost(ag, "its channel closed");
			return;
		}
		ag->packets++;
		if (kmsg_check_packet(pkt, (size_t)n, 'S', &why) < 0) {
			refuse(ag, "a packet", why);
			continue;
		}
		for (size_t off = 0; off < (size_t)n && ag->sess_fd >= 0;) {
			struct kmsg_hdr h;
			memcpy(&h, pkt + off, sizeof(h));
			dispatch(ag, pkt + off, h.size);
			off += h.size;
		}
	}
}

static void session_adopt(struct agent *ag, int fd, int pid)
{
	if (ag->sess_fd >= 0)
		session_lost(ag, "a new one replaces it");
	ag->sess_fd = fd;
	kmsg_refuse_fds(fd);
	ev_io_init(&ag->sess_rd, sess_rd_cb, fd, EV_READ);
	ev_io_init(&ag->sess_wr, sess_wr_cb, fd, EV_WRITE);
	ag->sess_rd.data = ag->sess_wr.data = ag;
	ev_io_start(ag->loop, &ag->sess_rd);
	if (pid > 0)
		log_info("agent: serving session process %d", pid);
	session_welcome(ag);
}

/* --- the supervisor ------------------------------------------------- */

static void sup_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct agent *ag = w->data;
	union {
		unsigned char b[KMSG_MAX + 1];
		struct kmsg_session s;
	} u;
	const char *why;
	int fd;
	ssize_t n = kmsg_recv(ag->sup_fd, u.b, sizeof(u.b), &fd, 1);

	(void)revents;
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		/* The supervisor is gone: so are we (the kernel then drops
		 * the table with our socket). */
		log_warnx("agent: supervisor gone; stopping");
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	enum kmsg_type t = kmsg_check(u.b, (size_t)n, 'P', &why);
	if (fd < 0 || (t != KMSG_SESSION && t != KMSG_RELOAD)) {
		log_warnx("agent: unexpected message from the supervisor");
		if (fd >= 0)
			close(fd);
		return;
	}
	if (t == KMSG_RELOAD) {
		agent_reload(ag, fd);
		close(fd);
		return;
	}
	session_adopt(ag, fd, u.s.pid);
}

/* --- reload and stop ------------------------------------------------ */

/* fd: the configuration as the supervisor opened it, or -1 (a SIGHUP sent
 * to the agent itself: the file is opened here). */
static void agent_reload(struct agent *ag, int fd)
{
	struct cfg next;
	char err[512];
	uint32_t *ids;
	size_t n = 0;

	if ((fd >= 0 ? cfg_load_fd(fd, ag->cfg_path, &next, err, sizeof(err))
		     : cfg_load(ag->cfg_path, &next, err, sizeof(err))) < 0) {
		log_error("agent: %s; keeping the running configuration", err);
		return;
	}
	cfg_free(&ag->cfg);
	ag->cfg = next;
	log_set_level(ag->debug ? LOG_LVL_DEBUG
				: (enum log_level)ag->cfg.log_level);
	assoc_table_reconfigure(ag->t, &ag->cfg);
	/* What the kernel can no longer relay, or the configuration no
	 * longer enables, ends (the session process decides the rules). */
	ids = calloc(ag->nlinks + 1, sizeof(*ids));
	if (ids == NULL)
		return;
	const char *why[256] = {NULL};
	bool probed[256] = {false};
	for (size_t b = 0; b < AGENT_BUCKETS; b++) {
		for (struct agent_link *l = ag->hash[b]; l; l = l->next) {
			if (!probed[l->proto]) {
				why[l->proto] =
					!ag->cfg.ptcl_enabled[l->proto]
						? "PTCL not enabled "
						  "(transparent-protocols)"
						: ct_relay_unsupported(
							  l->proto);
				probed[l->proto] = true;
			}
			if (why[l->proto] == NULL)
				continue;
			log_info("agent: association %u no longer allowed: %s",
				 assoc_id(l->a), why[l->proto]);
			ids[n++] = assoc_id(l->a);
		}
	}
	for (size_t i = 0; i < n; i++)
		assoc_terminate_id(ag->t, ids[i], ASSOC_END_POLICY);
	free(ids);
	log_info("agent: configuration reloaded");
}

static void agent_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct agent *ag = w->data;

	(void)revents;
	if (w->signum == SIGHUP) {
		agent_reload(ag, -1);
		return;
	}
	ev_break(loop, EVBREAK_ALL);
}

void agent_warn_unrelayable(const struct cfg *c)
{
	for (int p = 1; p < 256; p++) {
		const char *why = c->ptcl_enabled[p]
					  ? ct_relay_unsupported((uint8_t)p)
					  : NULL;
		if (why)
			log_warnx("transparent-protocols: PTCL %d is refused "
				  "(X'09'): %s",
				  p, why);
	}
}

/* Keeps CAP_NET_ADMIN only: as `user` if the configuration names one,
 * else as the uid it has. */
static int agent_drop(const struct cfg *c)
{
	struct priv_user u;
	char err[512];

	if (c->user[0] != '\0') {
		if (priv_lookup(c->user, &u, err, sizeof(err)) < 0 ||
		    priv_drop(&u, err, sizeof(err)) < 0) {
			log_error("agent: %s", err);
			return -1;
		}
	} else if (priv_limit(PRIV_CAP_NET_ADMIN, err, sizeof(err)) < 0) {
		log_error("agent: %s", err);
		return -1;
	}
	if (priv_no_dump() < 0)
		log_warn("agent: prctl(PR_SET_DUMPABLE)");
	return 0;
}

int agent_main(const struct agent_opts *o)
{
	static struct agent ag; /* large (the hash); one per process */
	bool fatal = false;

	ag.loop = ev_default_loop(EVBACKEND_EPOLL);
	if (ag.loop == NULL) {
		log_error("agent: cannot initialise libev with epoll");
		return 1;
	}
	ag.cfg_path = o->cfg_path;
	ag.cfg = *o->cfg;
	ag.debug = o->debug;
	ag.sup_fd = o->sup_fd;
	ag.sess_fd = -1;
	kmsg_queue_init(&ag.outq);
	ev_prepare_init(&ag.out_prep, out_prep_cb);
	ev_set_priority(&ag.out_prep, EV_MINPRI);
	ag.out_prep.data = &ag;
	ev_prepare_start(ag.loop, &ag.out_prep);
	ag.status = 0;
	ag.exit_on_session_end = o->sup_fd < 0;
	ag.listed = -AGENT_REFRESH_SECS;
	ag.audited = (uint64_t)-1;
	if (getrandom(&ag.hash_key, sizeof(ag.hash_key), GRND_NONBLOCK) !=
	    sizeof(ag.hash_key))
		ag.hash_key = (uint64_t)getpid() * 0x2545f4914f6cdd1dULL ^
			      (uint64_t)ev_time();
	/* The table is claimed first: a second socksgated stops here,
	 * having touched nothing. */
	ag.t = assoc_table_new(ag.loop, &ag.cfg, &fatal);
	if (ag.t == NULL) {
		if (!fatal)
			log_error("agent: out of memory");
		return fatal ? AGENT_EXIT_OWNED : 1;
	}
	if (agent_drop(&ag.cfg) < 0) {
		assoc_table_free(ag.t);
		return 1;
	}
	agent_warn_unrelayable(&ag.cfg);
	ev_signal_init(&ag.sig_hup, agent_signal_cb, SIGHUP);
	ev_signal_init(&ag.sig_term, agent_signal_cb, SIGTERM);
	ev_signal_init(&ag.sig_int, agent_signal_cb, SIGINT);
	ag.sig_hup.data = ag.sig_term.data = ag.sig_int.data = &ag;
	ev_signal_start(ag.loop, &ag.sig_hup);
	ev_signal_start(ag.loop, &ag.sig_term);
	ev_signal_start(ag.loop, &ag.sig_int);
	if (ag.sup_fd >= 0) {
		struct kmsg_agent_up up;
		memset(&up, 0, sizeof(up));
		kmsg_hdr_init(&up.h, KMSG_AGENT_UP, sizeof(up));
		if (kmsg_send(ag.sup_fd, &up, sizeof(up), -1) < 0) {
			log_warn("agent: telling the supervisor");
			assoc_table_free(ag.t);
			return 1;
		}
		ev_io_init(&ag.sup_io, sup_cb, ag.sup_fd, EV_READ);
		ag.sup_io.data = &ag;
		ev_io_start(ag.loop, &ag.sup_io);
	}
	if (o->session_fd >= 0)
		session_adopt(&ag, o->session_fd, 0);
	log_info("agent: ready (CAP_NET_ADMIN only)");
	ev_run(ag.loop, 0);
	/* Shutdown: the table first (its owner socket closes, the kernel
	 * drops every element), then our conntrack entries. */
	assoc_table_shutdown(ag.t);
	for (size_t b = 0; b < AGENT_BUCKETS; b++) {
		while (ag.hash[b]) {
			struct agent_link *l = ag.hash[b];
			assoc_close(l->a, ASSOC_END_SHUTDOWN);
			link_free(l);
		}
	}
	if (ag.sess_fd >= 0) {
		ev_io_stop(ag.loop, &ag.sess_rd);
		ev_io_stop(ag.loop, &ag.sess_wr);
		close(ag.sess_fd);
		ag.sess_fd = -1;
	}
	kmsg_queue_clear(&ag.outq);
	assoc_table_free(ag.t);
	cfg_free(&ag.cfg);
	if (ag.sup_fd >= 0) {
		ev_io_stop(ag.loop, &ag.sup_io);
		close(ag.sup_fd);
	}
	ev_signal_stop(ag.loop, &ag.sig_hup);
	ev_signal_stop(ag.loop, &ag.sig_term);
	ev_signal_stop(ag.loop, &ag.sig_int);
	ev_loop_destroy(ag.loop);
	log_info("agent: stopped");
	return ag.status;
}
