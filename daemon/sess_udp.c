/*
 * sess_udp: UDP ASSOCIATE (RFC 1928 section 7).  A relay socket bound to
 * the address the client reached us on (BND, never unspecified) takes the
 * client's datagrams; each one's header names its destination, which the
 * rules check (`command udp`) before the payload goes out through an
 * external socket of the destination's family.  Answers are wrapped in a
 * header naming their source and sent back to the client.
 *
 * Only the client's address is accepted (its port too, once known or when
 * the request gave it).  FRAG != 0, malformed headers, foreign sources and
 * denied destinations are dropped and counted; the association lives on.
 * Denials are logged in summary: the first at once, then at most one line
 * per association every UDP_LOG_INTERVAL seconds (anyone who finds the
 * external port can send denied datagrams).  Names are resolved on the
 * loop and cached in a fixed table, so memory per association is bounded
 * whatever the number of destinations; new names are looked up at the
 * source's udp-name-rate at most (each costs the resolver one or two
 * queries), the datagrams beyond it dropped and counted.  It ends with N1,
 * or after `timeout idle` without a datagram.
 *
 * Datagrams move in batches: one recvmmsg(2) takes up to UDP_BATCH into
 * the daemon's workspace, each is judged in order as it would be alone,
 * and those that pass leave with one sendmmsg(2) per socket (udpq), so
 * their order per destination is kept; consecutive ones of one size to
 * one destination leave as one UDP GSO message (the receiver sees the
 * same datagrams; the stack routes and filters them once).  A callback
 * moves at most UDP_PER_WAKEUP datagrams, so one busy association cannot
 * starve the others (the loop comes back to it).  Datagrams the kernel
 * refuses to send (a full socket buffer) are dropped and counted, as UDP
 * may.  The relay sockets' receive buffers are raised (UDP_RCVBUF) so
 * that a burst outlasts a moment without CPU.  No UDP GRO on the relay
 * socket: it coalesces only where the device does GRO, which veth and
 * most router LAN ports do not for UDP, so it was not measurable here
 * (docs/benchmarks.md).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "pol.h"
#include "sess_int.h"
#include "srclimit.h"
#include "srv.h"
#include "udpq.h"

#define UDP_CACHE 8
#define UDP_CACHE_TTL 60.0
#define UDP_MAX_DGRAM 65535
#define UDP_LOG_INTERVAL 10.0
#define UDP_BATCH UDPQ_MAX /* datagrams per recvmmsg */
#define UDP_PER_WAKEUP 64  /* per callback: the other associations' turn */
#define UDP_SLOT (S5_MAX_UDP_HEADER + UDP_MAX_DGRAM)
/* Receive buffers of the relay sockets: room for ~2 ms of a fast sender
 * while the loop is busy elsewhere or the CPU runs something else (the
 * kernel's default, 208 KiB, holds ~250 small datagrams: on a 2-core
 * machine most of a flood was dropped there, not for want of CPU).
 * Kernel memory, used only while the daemon lags (the kernel doubles it
 * for its bookkeeping). */
#define UDP_RCVBUF (512 * 1024)

struct udp_name {
	char name[256];
	struct sockaddr_storage addr; /* port 0; family 0 if not found */
	ev_tstamp expires;
	struct dns_query *q;
	uint8_t *pending; /* one datagram waiting for the answer */
	size_t pending_len;
	uint16_t pending_port;
	struct sess *s;
};

struct sess_udp {
	int cfd;    /* client side, bound to BND */
	int efd[2]; /* external, IPv4 and IPv6 (lazily) */
	ev_io crd, erd[2];
	union sess_addr client; /* port 0 until known */
	ev_tstamp last;
	struct udp_name names[UDP_CACHE];
	uint64_t up_pkts, up_bytes, down_pkts, down_bytes;
	uint64_t dropped_frag, dropped_bad, dropped_foreign, dropped_denied;
	uint64_t dropped_limited; /* udp-name-rate */
	uint64_t dropped_send;	  /* refused by the kernel (full buffer...) */
	bool gso[3]; /* efd[0], efd[1], cfd: may coalesce (until refused) */
	/* Denials since the last log line, since when, and that line; the
	 * timer writes the pending ones when no new denial does. */
	uint64_t denied_pending;
	ev_tstamp denied_since, denied_logged;
	char denied_last[320]; /* "to NAME ADDR by rule at line N" */
	ev_timer denied_flush;
	struct sess *s;
};

/* The daemon's one workspace (the loop is single-threaded): a batch of
 * received datagrams, each in a slot with room for a SOCKS header in front
 * (answers are wrapped in place), and the queues out.  Allocated at the
 * first datagram; slot pages are touched only as big datagrams fill them. */
struct udp_work {
	struct mmsghdr rm[UDP_BATCH];
	struct iovec riov[UDP_BATCH];
	struct sockaddr_storage from[UDP_BATCH];
	struct sockaddr_storage to[UDP_BATCH]; /* destinations out */
	struct udpq q[2];	/* out: per external socket; answers: q[0] */
	uint16_t hl[UDP_BATCH]; /* answers: the header in front, by q index */
	uint8_t slot[UDP_BATCH][UDP_SLOT];
};

static struct udp_work *udp_work(struct sess *s)
{
	/* srv keeps it as bytes (srv.c frees it): malloc's alignment. */
	if (s->srv->udp_buf == NULL)
		s->srv->udp_buf = malloc(sizeof(struct udp_work));
	return (struct udp_work *)(void *)s->srv->udp_buf;
}

static int udp_sendmmsg(int fd, struct mmsghdr *m, unsigned n)
{
	return sendmmsg(fd, m, n, 0);
}

/* Receives up to UDP_BATCH datagrams from fd, each at off in its slot;
 * the number received (0 when none or on an error). */
static unsigned udp_recv_batch(struct udp_work *w, int fd, size_t off)
{
	for (unsigned i = 0; i < UDP_BATCH; i++) {
		w->riov[i].iov_base = w->slot[i] + off;
		w->riov[i].iov_len = UDP_MAX_DGRAM;
		memset(&w->rm[i].msg_hdr, 0, sizeof(w->rm[i].msg_hdr));
		w->rm[i].msg_hdr.msg_name = &w->from[i];
		w->rm[i].msg_hdr.msg_namelen = sizeof(w->from[i]);
		w->rm[i].msg_hdr.msg_iov = &w->riov[i];
		w->rm[i].msg_hdr.msg_iovlen = 1;
	}
	int r = recvmmsg(fd, w->rm, UDP_BATCH, 0, NULL);
	return r > 0 ? (unsigned)r : 0;
}

/* Sends q on fd; the datagrams that went out are added to *pkts and
 * their payload (without the hl[i] bytes of header, if hl) to *bytes, the
 * others counted as dropped (and logged for debugging).  Returns the
 * number sent. */
static unsigned udp_flush(struct sess *s, struct udpq *q, int fd, bool *gso,
			  const uint16_t *hl, uint64_t *pkts, uint64_t *bytes)
{
	struct sess_udp *u = s->udp;
	unsigned n = q->n, sent, failed = 0;
	int err = 0;
	bool had_gso = *gso;

	if (n == 0)
		return 0;
	sent = udpq_flush(q, fd, udp_sendmmsg, gso);
	if (had_gso && !*gso)
		log_debug("session %llu: udp: the kernel refuses GSO on this "
			  "socket; datagrams go one by one",
			  (unsigned long long)s->id);
	for (unsigned i = 0; i < n; i++) {
		if (q->err[i] == 0) {
			*bytes += q->iov[i].iov_len - (hl ? hl[i] : 0);
			continue;
		}
		failed++;
		err = q->err[i];
	}
	*pkts += sent;
	if (failed > 0) {
		u->dropped_send += failed;
		log_debug("session %llu: udp: %u of %u datagrams not sent: %s",
			  (unsigned long long)s->id, failed, n, strerror(err));
	}
	return sent;
}

static int ext_socket(struct sess *s, int family);

/* UDP_RCVBUF on fd: beyond net.core.rmem_max when the daemon may
 * (CAP_NET_ADMIN), else up to it; the default stays if neither works. */
static void udp_rcvbuf(int fd)
{
	int v = UDP_RCVBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}

static void udp_denied_line(struct sess *s)
{
	struct sess_udp *u = s->udp;
	ev_tstamp now = ev_now(s->srv->loop);

	log_limited(LOG_LVL_INFO,
		    "session %llu udp: %llu datagrams denied in %.1fs (%llu in "
		    "all); last %s",
		    (unsigned long long)s->id,
		    (unsigned long long)u->denied_pending,
		    now - u->denied_since,
		    (unsigned long long)u->dropped_denied, u->denied_last);
	u->denied_pending = 0;
	u->denied_logged = now;
}

static void udp_denied_flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sess_udp *u = w->data;

	(void)loop;
	(void)revents;
	if (u->denied_pending > 0)
		udp_denied_line(u->s);
}

/* Counts a denied datagram (out to dst, or in from it); the first one
 * is logged at once, the next in summary. */
static void udp_denied(struct sess *s, bool in, const struct sockaddr *addr,
		       const char *name, int line)
{
	struct sess_udp *u = s->udp;
	ev_tstamp now = ev_now(s->srv->loop);
	char a[ADDR_STRLEN];

	u->dropped_denied++;
	s->srv->stats.udp_denied++;
	if (u->denied_pending++ == 0)
		u->denied_since = now;
	char by[32] = "the default";
	if (line)
		snprintf(by, sizeof(by), "rule at line %d", line);
	snprintf(u->denied_last, sizeof(u->denied_last), "%s %s%s%s by %s",
		 in ? "from" : "to", name ? name : "", name ? " " : "",
		 addr_str(addr, a, sizeof(a)), by);
	/* The name is the client's: no control bytes into the log. */
	for (char *p = u->denied_last; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (now >= u->denied_logged &&
	    now - u->denied_logged < UDP_LOG_INTERVAL) {
		if (!ev_is_active(&u->denied_flush)) {
			ev_timer_set(&u->denied_flush,
				     u->denied_logged + UDP_LOG_INTERVAL - now,
				     0.);
			ev_timer_start(s->srv->loop, &u->denied_flush);
		}
		return;
	}
	udp_denied_line(s);
}

/* Queues payload to dst (port set, alive until the flush) on q[family]:
 * the external socket of dst's family. */
static void udp_forward(struct sess *s, struct udpq q[2],
			const struct sockaddr *dst, const char *name,
			const uint8_t *p, size_t n)
{
	int idx = dst->sa_family == AF_INET6;
	int line;

	if (!sess_allowed_quiet(s, dst, name, addr_port(dst), &line)) {
		udp_denied(s, false, dst, name, line);
		return;
	}
	if (ext_socket(s, dst->sa_family) < 0)
		return;
	udpq_add(&q[idx], dst, addr_len(dst), p, n);
}

/* Sends what udp_forward queued. */
static void udp_forward_flush(struct sess *s, struct udpq q[2])
{
	struct sess_udp *u = s->udp;

	for (int i = 0; i < 2; i++)
		if (q[i].n > 0)
			udp_flush(s, &q[i], u->efd[i], &u->gso[i], NULL,
				  &u->up_pkts, &u->up_bytes);
}

static void name_resolved(void *arg, enum dns_result res,
			  const struct sockaddr_storage *addrs, size_t n)
{
	struct udp_name *e = arg;
	struct sess *s = e->s;

	memset(&e->addr, 0, sizeof(e->addr));
	if (res == DNS_OK && n > 0)
		e->addr = addrs[0];
	e->expires = ev_now(s->srv->loop) + UDP_CACHE_TTL;
	if (e->pending) {
		if (e->addr.ss_family) {
			struct sockaddr_storage d = e->addr;
			struct udpq q[2];
			udpq_init(&q[0]);
			udpq_init(&q[1]);
			addr_set_port((struct sockaddr *)&d, e->pending_port);
			udp_forward(s, q, (struct sockaddr *)&d, e->name,
				    e->pending, e->pending_len);
			udp_forward_flush(s, q);
		}
		free(e->pending);
		e->pending = NULL;
	}
}

/* The cache entry for name: found, or the oldest one reused. */
static struct udp_name *name_slot(struct sess_udp *u, const char *name,
				  bool *hit)
{
	struct udp_name *old = &u->names[0];

	for (int i = 0; i < UDP_CACHE; i++) {
		struct udp_name *e = &u->names[i];
		if (strcasecmp(e->name, name) == 0) {
			*hit = true;
			return e;
		}
		if (e->q == NULL && e->expires < old->expires)
			old = e;
	}
	*hit = false;
	return old;
}

/* Judges one datagram from the client; queues it on q (its destination
 * kept in *dst until the flush). */
static void udp_from_client(struct sess *s, struct udpq q[2],
			    struct sockaddr_storage *dst, const uint8_t *buf,
			    size_t n)
{
	struct sess_udp *u = s->udp;
	struct s5_udp_header h;
	size_t hl;
	enum s5_status st = s5_udp_header_parse(buf, n, &h, &hl);

	if (st != S5_OK) {
		u->dropped_bad++;
		return;
	}
	if (h.frag != 0) {
		u->dropped_frag++; /* no reassembly (RFC 1928 allows that) */
		return;
	}
	/* Address literals sent as names are literals: no lookup, no name
	 * for the rules; address-shaped names that are none never resolve. */
	if (addr_s5_literal(&h.dst) == ADDR_LITERAL_BAD) {
		u->dropped_bad++;
		return;
	}
	if (h.dst.atyp != S5_ATYP_DOMAIN) {
		addr_from_s5(&h.dst, dst);
		/* ::ffff:a.b.c.d reaches a.b.c.d: the rules must see that. */
		addr_unmap(dst);
		udp_forward(s, q, (struct sockaddr *)dst, NULL, buf + hl,
			    n - hl);
		return;
	}
	bool hit;
	struct udp_name *e = name_slot(u, h.dst.u.dom.name, &hit);
	if (hit && e->q == NULL && e->expires > ev_now(s->srv->loop)) {
		if (e->addr.ss_family == 0) {
			u->dropped_bad++; /* name did not resolve */
			return;
		}
		*dst = e->addr;
		addr_set_port((struct sockaddr *)dst, h.dst.port);
		udp_forward(s, q, (struct sockaddr *)dst, e->name, buf + hl,
			    n - hl);
		return;
	}
	if (hit && e->q) {
		u->dropped_bad++; /* still resolving: one datagram waits */
		return;
	}
	/* A new lookup: within the source's rate (DNS amplification). */
	if (!srclimit_udp_name(s->srv->limits, s->src, ev_now(s->srv->loop))) {
		u->dropped_limited++;
		return;
	}
	/* Resolve, keeping this datagram for the answer. */
	dns_cancel(&e->q);
	free(e->pending);
	memset(e, 0, sizeof(*e));
	e->s = s;
	snprintf(e->name, sizeof(e->name), "%s", h.dst.u.dom.name);
	e->pending = malloc(n - hl + 1);
	if (e->pending) {
		memcpy(e->pending, buf + hl, n - hl);
		e->pending_len = n - hl;
		e->pending_port = h.dst.port;
	}
	if (dns_resolve(s->srv->dns, e->name, AF_UNSPEC, name_resolved, e,
			&e->q) < 0) {
		free(e->pending);
		e->pending = NULL;
	}
}

static void udp_client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sess *s = w->data;
	struct sess_udp *u = s->udp;
	struct udp_work *wk = udp_work(s);

	(void)revents;
	if (wk == NULL)
		return;
	for (int done = 0; done < UDP_PER_WAKEUP;) {
		unsigned n = udp_recv_batch(wk, u->cfd, 0);
		udpq_init(&wk->q[0]);
		udpq_init(&wk->q[1]);
		for (unsigned i = 0; i < n; i++) {
			struct sockaddr_storage *from = &wk->from[i];
			addr_unmap(from);
			/* Only the client: its address, and its port once
			 * known. */
			if (!addr_eq_ip((struct sockaddr *)from,
					&u->client.sa) ||
			    (addr_port(&u->client.sa) != 0 &&
			     addr_port((struct sockaddr *)from) !=
				     addr_port(&u->client.sa))) {
				u->dropped_foreign++;
				continue;
			}
			if (addr_port(&u->client.sa) == 0)
				addr_set_port(
					&u->client.sa,
					addr_port((struct sockaddr *)from));
			u->last = ev_now(loop);
			udp_from_client(s, wk->q, &wk->to[i], wk->slot[i],
					wk->rm[i].msg_len);
		}
		udp_forward_flush(s, wk->q);
		if (n < UDP_BATCH) /* drained */
			return;
		done += (int)n;
	}
}

static void udp_remote_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sess *s = w->data;
	struct sess_udp *u = s->udp;
	struct udp_work *wk = udp_work(s);
	int idx = w == &u->erd[1];

	(void)revents;
	if (wk == NULL)
		return;
	for (int done = 0; done < UDP_PER_WAKEUP;) {
		unsigned n = udp_recv_batch(wk, u->efd[idx], S5_MAX_UDP_HEADER);
		struct udpq *q = &wk->q[0];
		udpq_init(q);
		for (unsigned i = 0; i < n; i++) {
			struct sockaddr *from = (struct sockaddr *)&wk->from[i];
			struct s5_udp_header h = {.frag = 0};
			uint8_t hdr[S5_MAX_UDP_HEADER];
			addr_unmap(&wk->from[i]);
			/* Answers pass the rules like the datagrams out did. */
			int line = 0;
			if (addr_port(&u->client.sa) == 0 ||
			    !sess_allowed_quiet(s, from, NULL, addr_port(from),
						&line)) {
				udp_denied(s, true, from, NULL, line);
				continue;
			}
			addr_to_s5(from, &h.dst);
			ssize_t hl = s5_udp_header_build(&h, hdr, sizeof(hdr));
			if (hl < 0)
				continue;
			uint8_t *out = wk->slot[i] + S5_MAX_UDP_HEADER - hl;
			memcpy(out, hdr, (size_t)hl);
			unsigned k = udpq_add(q, &u->client.sa,
					      addr_len(&u->client.sa), out,
					      (size_t)hl + wk->rm[i].msg_len);
			wk->hl[k] = (uint16_t)hl;
		}
		if (udp_flush(s, q, u->cfd, &u->gso[2], wk->hl, &u->down_pkts,
			      &u->down_bytes) > 0)
			u->last = ev_now(loop);
		if (n < UDP_BATCH)
			return;
		done += (int)n;
	}
}

static int ext_socket(struct sess *s, int family)
{
	struct sess_udp *u = s->udp;
	int idx = family == AF_INET6;

	if (u->efd[idx] >= 0)
		return 0;
	u->efd[idx] =
		socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->efd[idx] < 0) {
		log_warn("session %llu: udp socket", (unsigned long long)s->id);
		return -1;
	}
	udp_rcvbuf(u->efd[idx]);
	ev_io_init(&u->erd[idx], udp_remote_cb, u->efd[idx], EV_READ);
	u->erd[idx].data = s;
	ev_io_start(s->srv->loop, &u->erd[idx]);
	return 0;
}

static void udp_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sess *s = w->data;
	double left;

	(void)revents;
	left = s->udp->last + s->srv->cfg.timeout_idle - ev_now(loop);
	if (left <= 0) {
		sess_end(s, SESS_END_IDLE);
		return;
	}
	ev_timer_set(w, left, 0.);
	ev_timer_start(loop, w);
}

void sess_udp_start(struct sess *s)
{
	struct srv *srv = s->srv;
	struct sess_udp *u;
	struct sockaddr_storage bnd;
	socklen_t bl = sizeof(bnd);
	struct pol_query q = {.client = &s->peer.sa,
			      .cmd = POL_CMD_UDP,
			      .user = s->authed ? s->user : NULL};
	const struct s5_addr *want = &s->setup->req.dst;

	if (!pol_may_allow(srv->cfg.rules, srv->cfg.nrules, &q)) {
		srv->stats.denied++;
		sess_reply(s, S5_REP_NOT_ALLOWED, NULL);
		return;
	}
	u = calloc(1, sizeof(*u));
	if (u == NULL) {
		sess_reply(s, S5_REP_GENERAL, NULL);
		return;
	}
	s->udp = u;
	u->s = s;
	u->cfd = u->efd[0] = u->efd[1] = -1;
	u->gso[0] = u->gso[1] = u->gso[2] = true;
	ev_init(&u->denied_flush, udp_denied_flush_cb);
	u->denied_flush.data = u;
	/* The client's datagrams come from its N1 address; from the port
	 * the request names, if it names one. */
	memcpy(&u->client, &s->peer, sizeof(u->client));
	addr_set_port(&u->client.sa, 0);
	if (want->atyp != S5_ATYP_DOMAIN && want->port != 0) {
		struct sockaddr_storage w;
		addr_from_s5(want, &w);
		addr_unmap(&w);
		if (addr_eq_ip((struct sockaddr *)&w, &s->peer.sa) ||
		    addr_is_unusable_bnd((struct sockaddr *)&w))
			addr_set_port(&u->client.sa, want->port);
	}
	/* BND: the address the client reached us on, a real one. */
	memset(&bnd, 0, sizeof(bnd));
	memcpy(&bnd, &s->local, addr_len(&s->local.sa));
	addr_set_port((struct sockaddr *)&bnd, 0);
	u->cfd = socket(bnd.ss_family,
			SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->cfd < 0 ||
	    bind(u->cfd, (struct sockaddr *)&bnd,
		 addr_len((struct sockaddr *)&bnd)) < 0 ||
	    getsockname(u->cfd, (struct sockaddr *)&bnd, &bl) < 0) {
		log_warn("session %llu: udp relay socket",
			 (unsigned long long)s->id);
		sess_reply(s, S5_REP_GENERAL, NULL);
		return;
	}
	addr_unmap(&bnd);
	udp_rcvbuf(u->cfd);
	ev_io_init(&u->crd, udp_client_cb, u->cfd, EV_READ);
	u->crd.data = s;
	ev_io_start(srv->loop, &u->crd);
	u->last = ev_now(srv->loop);
	s->state = SESS_UDP;
	sess_settle(s);
	sess_reply(s, S5_REP_SUCCEEDED, (struct sockaddr *)&bnd);
	/* N1 is watched for its end, like TRANSPARENT's. */
	ev_io_start(srv->loop, &s->rd);
	if (srv->cfg.timeout_idle > 0) {
		ev_set_cb(&s->timer, udp_idle_cb);
		ev_timer_set(&s->timer, (double)srv->cfg.timeout_idle, 0.);
		ev_timer_start(srv->loop, &s->timer);
	}
}

void sess_udp_stop(struct sess *s)
{
	struct sess_udp *u = s->udp;

	if (u == NULL)
		return;
	for (int i = 0; i < UDP_CACHE; i++) {
		dns_cancel(&u->names[i].q);
		free(u->names[i].pending);
	}
	ev_io_stop(s->srv->loop, &u->crd);
	ev_timer_stop(s->srv->loop, &u->denied_flush);
	if (u->cfd >= 0)
		close(u->cfd);
	for (int i = 0; i < 2; i++) {
		if (u->efd[i] >= 0) {
			ev_io_stop(s->srv->loop, &u->erd[i]);
			close(u->efd[i]);
		}
	}
	log_info("session %llu udp: up %llu datagrams %llu bytes, down %llu "
		 "datagrams %llu bytes; dropped %llu frag, %llu malformed, "
		 "%llu foreign, %llu denied, %llu over udp-name-rate, %llu "
		 "unsent",
		 (unsigned long long)s->id, (unsigned long long)u->up_pkts,
		 (unsigned long long)u->up_bytes,
		 (unsigned long long)u->down_pkts,
		 (unsigned long long)u->down_bytes,
		 (unsigned long long)u->dropped_frag,
		 (unsigned long long)u->dropped_bad,
		 (unsigned long long)u->dropped_foreign,
		 (unsigned long long)u->dropped_denied,
		 (unsigned long long)u->dropped_limited,
		 (unsigned long long)u->dropped_send);
	free(u);
	s->udp = NULL;
}
