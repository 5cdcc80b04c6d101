/*
 * sockmap: see sockmap.h.  libbpf loads the program (the skeleton
 * bpftool generates from bpf/sockmap.bpf.c at build time embeds the
 * object); after sockmap_init() only the maps' descriptors are used.
 *
 * Adding a pair, in this order (each step's reason):
 *   1. sg_peer and sg_user: each socket's cookie names the other's, so
 *      the program knows where to send as soon as it runs on a socket
 *      (sg_user: nothing held back was moved yet);
 *   2. sg_dst: both sockets become redirect targets (this map has no
 *      program: their receive path is unchanged);
 *   3. sg_src: each socket gets the verdict program; from now on what
 *      arrives is sent on.  The peer is already in sg_dst, so nothing
 *      arrives with nowhere to go.  The target goes first: if the client
 *      cannot follow (it half-closed meanwhile), only the target's data
 *      may have moved, toward the client, which stays in sg_dst;
 *   4. the kick (sockmap_kick) on each: the program runs over what was
 *      queued before step 3 (the kernel runs it only when data arrives),
 *      oldest first, so nothing waits for more data to come and nothing
 *      is reordered.
 * A socket must not hold a partly read skb at step 3: the kernel sends
 * whole skbs (the owner drains what it read from first).
 *
 * The kick is not a recv(): tcp_bpf's recvmsg runs the program too, but
 * then writes back the copied_seq it read before, undoing the program's
 * advances; a later splice or recv of that socket's receive queue then
 * skips that many queued bytes.  That lost the end of 10 MB transfers in
 * 6 of 20 runs of an earlier design.  SO_RCVLOWAT's setter calls the
 * data-ready hook and touches nothing else.
 *
 * Held back (back-pressure): the owner recv()s held-back data only while
 * the program holds (it then passes everything, so that recv never
 * makes it send on), and the pair stays in every map until it ends: a
 * socket taken out of sg_src while data arrives loses an skb.
 */
#include "sockmap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCKMAP_TCP_ESTABLISHED 1 /* tcpi_state (linux/tcp.h has no enum) */

#ifdef SG_SOCKMAP

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sockmap.skel.h"
#include "sockmap_bpf.h"

#define SOCKMAP_HASH 4096 /* cookie -> pair buckets (chained) */

struct sockmap {
	struct sockmap_bpf *skel;
	int src, dst, peer, user; /* the maps' descriptors */
	int ep;			  /* EOF, error and ring watch */
	struct ring_buffer *notes;
	struct sockmap_pair_slot note_slot; /* pair NULL: the ring */
	struct sockmap_pair_slot *hash[SOCKMAP_HASH];
};

static struct sockmap_pair_slot **hash_head(struct sockmap *sm, uint64_t c)
{
	return &sm->hash[(c ^ (c >> 12) ^ (c >> 24)) % SOCKMAP_HASH];
}

static void hash_add(struct sockmap *sm, struct sockmap_pair *p)
{
	for (int i = 0; i < 2; i++) {
		struct sockmap_pair_slot **h = hash_head(sm, p->cookie[i]);
		p->slot[i].next = *h;
		*h = &p->slot[i];
	}
}

static struct sockmap_pair_slot *hash_find(struct sockmap *sm, uint64_t c)
{
	struct sockmap_pair_slot *s = *hash_head(sm, c);

	while (s != NULL && s->pair->cookie[s->side] != c)
		s = s->next;
	return s;
}

static void hash_del(struct sockmap *sm, struct sockmap_pair *p)
{
	for (int i = 0; i < 2; i++) {
		struct sockmap_pair_slot **h = hash_head(sm, p->cookie[i]);
		while (*h != NULL && *h != &p->slot[i])
			h = &(*h)->next;
		if (*h != NULL)
			*h = p->slot[i].next;
	}
}

/* The socket's epoll registration: EPOLLIN too while the program holds
 * its data back (EPOLLIN otherwise fires for every skb sent on). */
static int watch(struct sockmap *sm, struct sockmap_pair *p, int side, int op)
{
	struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET |
					   (p->held[side] ? EPOLLIN : 0),
				 .data.ptr = &p->slot[side]};

	return epoll_ctl(sm->ep, op, p->fd[side], &ev);
}

/* A notice from the program: that socket's data is held back. */
static int sockmap_note(void *ctx, void *data, size_t len)
{
	struct sockmap *sm = ctx;
	const struct sockmap_note *n = data;
	struct sockmap_pair_slot *s;
	struct sockmap_pair *p;
	int side;

	if (len < sizeof(*n) || (s = hash_find(sm, n->cookie)) == NULL)
		return 0;
	p = s->pair;
	side = s->side;
	if (!p->added)
		return 0;
	if (n->what == SOCKMAP_NOTE_OVERFLOW) {
		p->cb(p->arg, side, SOCKMAP_EV_OVERFLOW);
		return 0;
	}
	if (!p->held[side]) {
		p->held[side] = true;
		/* Adding EPOLLIN reports data already there at once. */
		watch(sm, p, side, EPOLL_CTL_MOD);
	}
	p->cb(p->arg, side, SOCKMAP_EV_HOLD);
	return 0;
}

void sockmap_unhold(struct sockmap *sm, struct sockmap_pair *p, int side)
{
	if (!p->added || !p->held[side])
		return;
	p->held[side] = false;
	watch(sm, p, side, EPOLL_CTL_MOD);
}

static int sockmap_quiet(enum libbpf_print_level level, const char *fmt,
			 va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

/* The program's sg_overflow: held-back bytes no receive buffer can
 * account for.  Twice the largest buffer TCP grows to, plus 4 MiB. */
static uint64_t overflow_limit(void)
{
	unsigned long lo, def, max = 6UL << 20;
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_rmem", "r");

	if (f != NULL) {
		if (fscanf(f, "%lu %lu %lu", &lo, &def, &max) != 3)
			max = 6UL << 20;
		fclose(f);
	}
	return 2 * (uint64_t)max + (4ULL << 20);
}

struct sockmap *sockmap_init(char *err, size_t errlen)
{
	struct sockmap *sm = calloc(1, sizeof(*sm));
	int prog;

	if (sm == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sm->ep = -1;
	libbpf_set_print(sockmap_quiet);
	sm->skel = sockmap_bpf__open();
	if (sm->skel != NULL) {
		sm->skel->rodata->sg_overflow = overflow_limit();
		if (sockmap_bpf__load(sm->skel) < 0) {
			int e = errno;
			sockmap_bpf__destroy(sm->skel);
			sm->skel = NULL;
			errno = e;
		}
	}
	if (sm->skel == NULL) {
		snprintf(err, errlen, "loading the BPF program: %s%s",
			 strerror(errno),
			 errno == EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN)"
					: "");
		goto fail;
	}
	sm->src = bpf_map__fd(sm->skel->maps.sg_src);
	sm->dst = bpf_map__fd(sm->skel->maps.sg_dst);
	sm->peer = bpf_map__fd(sm->skel->maps.sg_peer);
	sm->user = bpf_map__fd(sm->skel->maps.sg_user);
	prog = bpf_program__fd(sm->skel->progs.sg_verdict);
	if (bpf_prog_attach(prog, sm->src, BPF_SK_SKB_STREAM_VERDICT, 0) < 0) {
		snprintf(err, errlen, "attaching the verdict program: %s",
			 strerror(errno));
		goto fail;
	}
	sm->ep = epoll_create1(EPOLL_CLOEXEC);
	if (sm->ep < 0) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		goto fail;
	}
	sm->notes = ring_buffer__new(bpf_map__fd(sm->skel->maps.sg_note),
				     sockmap_note, sm, NULL);
	if (sm->notes == NULL) {
		snprintf(err, errlen, "the request ring: %s", strerror(errno));
		goto fail;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &sm->note_slot};
	if (epoll_ctl(sm->ep, EPOLL_CTL_ADD, ring_buffer__epoll_fd(sm->notes),
		      &ev) < 0) {
		snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
		goto fail;
	}
	return sm;
fail:
	sockmap_free(sm);
	return NULL;
}

void sockmap_free(struct sockmap *sm)
{
	if (sm == NULL)
		return;
	if (sm->ep >= 0)
		close(sm->ep);
	ring_buffer__free(sm->notes);
	sockmap_bpf__destroy(sm->skel);
	free(sm);
}

int sockmap_fd(const struct sockmap *sm)
{
	return sm->ep;
}

void sockmap_process(struct sockmap *sm)
{
	/* One event per epoll_wait: a callback may remove (and its owner
	 * free) any pair, so no event may outlive a callback in a batch.
	 * Events are rare (ends of streams), hence the bound. */
	for (int i = 0; i < 256; i++) {
		struct epoll_event ev;
		struct sockmap_pair_slot *s;
		unsigned e = 0;

		if (epoll_wait(sm->ep, &ev, 1, 0) != 1)
			return;
		s = ev.data.ptr;
		if (s == &sm->note_slot) {
			/* Each request may end its session: one at a time
			 * is not needed, the pair is looked up per
			 * request. */
			ring_buffer__consume(sm->notes);
			continue;
		}
		if (ev.events & EPOLLERR)
			e |= SOCKMAP_EV_ERR;
		if (ev.events & (EPOLLRDHUP | EPOLLHUP))
			e |= SOCKMAP_EV_EOF;
		if (ev.events & EPOLLIN)
			e |= SOCKMAP_EV_DATA;
		if (e && s->pair != NULL && s->pair->added)
			s->pair->cb(s->pair->arg, s->side, e);
	}
}

static int sock_cookie(int fd, uint64_t *c)
{
	socklen_t len = sizeof(*c);

	return getsockopt(fd, SOL_SOCKET, SO_COOKIE, c, &len);
}

/* Where fd's streams stand before it enters any map: *written (as
 * sockmap_written) and *consumed, the bytes it received that its owner
 * already read, which the program will never see.  Two TCP_INFO readings
 * around SIOCINQ (which counts the receive queue only while the socket is
 * in no map); data arriving between them shows as a change of
 * bytes_received: read again.  Urgent data is kept inline first (the
 * kernel relay sends it on inline anyway), else SIOCINQ stops at the
 * mark.  -1 with errno EPIPE when fd is no longer established (a FIN
 * came: it cannot enter a map). */
static int sock_origin(int fd, uint64_t *written, uint64_t *consumed)
{
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
	for (int i = 0; i < 8; i++) {
		struct tcp_info a, b;
		socklen_t la = sizeof(a), lb = sizeof(b);
		int inq, outq;

		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &a, &la) < 0 ||
		    ioctl(fd, SIOCINQ, &inq) < 0 ||
		    ioctl(fd, SIOCOUTQ, &outq) < 0 ||
		    getsockopt(fd, IPPROTO_TCP, TCP_INFO, &b, &lb) < 0)
			return -1;
		if (a.tcpi_state != SOCKMAP_TCP_ESTABLISHED ||
		    b.tcpi_state != SOCKMAP_TCP_ESTABLISHED) {
			errno = EPIPE;
			return -1;
		}
		if (a.tcpi_bytes_received == b.tcpi_bytes_received &&
		    inq >= 0 && (uint64_t)inq <= a.tcpi_bytes_received) {
			*written = b.tcpi_bytes_acked + (uint64_t)outq;
			*consumed = a.tcpi_bytes_received - (uint64_t)inq;
			return 0;
		}
	}
	errno = EAGAIN;
	return -1;
}

/* Steps 1..3 for the pair; on failure, undoes what it did (the steps
 * before 3b never moved data). */
int sockmap_add(struct sockmap *sm, struct sockmap_pair *p, int a, int b)
{
	struct sockmap_peer v[2];
	int step = 0, saved, rc = -1;

	p->fd[0] = a;
	p->fd[1] = b;
	if (sock_cookie(a, &p->cookie[0]) < 0 ||
	    sock_cookie(b, &p->cookie[1]) < 0)
		return -1;
	const struct sockmap_user u0 = {.done = 0, .read = 0};
	v[0] = (struct sockmap_peer){.peer = p->cookie[1]};
	v[1] = (struct sockmap_peer){.peer = p->cookie[0]};
	for (int i = 0; i < 2; i++)
		if (sock_origin(p->fd[i], &p->wbase[i], &p->rbase[i]) < 0)
			return -1;
	v[0].wbase = p->wbase[1];
	v[1].wbase = p->wbase[0];
	p->held[0] = p->held[1] = false;
	for (int i = 0; i < 2; i++, step++)
		if (bpf_map_update_elem(sm->user, &p->cookie[i], &u0, BPF_ANY) <
			    0 ||
		    bpf_map_update_elem(sm->peer, &p->cookie[i], &v[i],
					BPF_NOEXIST) < 0) {
			bpf_map_delete_elem(sm->user, &p->cookie[i]);
			goto undo;
		}
	for (int i = 0; i < 2; i++, step++) {
		uint64_t fd = (uint64_t)p->fd[i];
		if (bpf_map_update_elem(sm->dst, &p->cookie[i], &fd,
					BPF_NOEXIST) < 0)
			goto undo;
	}
	p->outside[0] = p->outside[1] = false;
	for (int j = 0, in = 0; j < 2; j++) {
		int i = 1 - j; /* the target first */
		uint64_t fd = (uint64_t)p->fd[i];
		if (bpf_map_update_elem(sm->src, &p->cookie[i], &fd,
					BPF_NOEXIST) == 0) {
			in++;
			continue;
		}
		if (errno == EOPNOTSUPP && in > 0) {
			/* Half-closed after step 2: its data stays queued
			 * for the owner; the target's is relayed. */
			p->outside[i] = true;
			continue;
		}
		/* Nothing moved if the target is not in either; once it
		 * is, its data may be on its way to the client. */
		rc = in > 0 ? -2 : -1;
		if (in > 0)
			bpf_map_delete_elem(sm->src, &p->cookie[1]);
		goto undo;
	}
	p->added = true;
	for (int i = 0; i < 2; i++) {
		p->slot[i].pair = p;
		p->slot[i].side = i;
	}
	hash_add(sm, p);
	for (int i = 0; i < 2; i++) {
		if (watch(sm, p, i, EPOLL_CTL_ADD) < 0) {
			saved = errno;
			sockmap_remove(sm, p);
			errno = saved;
			return -2;
		}
	}
	/* Step 4.  A reset already there shows as EPOLLERR (the epoll
	 * registration above looked at the socket's state). */
	for (int i = 0; i < 2; i++)
		if (!p->outside[i])
			sockmap_kick(p->fd[i]);
	return 0;
undo:
	saved = errno;
	for (int s = step - 1; s >= 0; s--) {
		if (s < 2)
			bpf_map_delete_elem(sm->user, &p->cookie[s]);
		bpf_map_delete_elem(s < 2 ? sm->peer : sm->dst,
				    &p->cookie[s % 2]);
	}
	errno = saved;
	return rc;
}

void sockmap_remove(struct sockmap *sm, struct sockmap_pair *p)
{
	if (!p->added)
		return;
	p->added = false;
	hash_del(sm, p);
	for (int i = 0; i < 2; i++) {
		/* Before sg_peer, so the program never runs without it. */
		epoll_ctl(sm->ep, EPOLL_CTL_DEL, p->fd[i], NULL);
		if (!p->outside[i])
			bpf_map_delete_elem(sm->src, &p->cookie[i]);
		p->slot[i].pair = NULL;
		p->held[i] = false;
	}
	for (int i = 0; i < 2; i++) {
		bpf_map_delete_elem(sm->dst, &p->cookie[i]);
		bpf_map_delete_elem(sm->peer, &p->cookie[i]);
		bpf_map_delete_elem(sm->user, &p->cookie[i]);
	}
}

int sockmap_state(struct sockmap *sm, const struct sockmap_pair *p, int side,
		  struct sockmap_state *st)
{
	struct sockmap_peer v;

	if (bpf_map_lookup_elem(sm->peer, &p->cookie[side], &v) < 0)
		return -1;
	st->taken = v.bytes;
	st->passed = v.passed;
	st->hold = v.hold != 0;
	return 0;
}

int sockmap_set_done(struct sockmap *sm, const struct sockmap_pair *p, int side,
		     uint64_t done, uint64_t read)
{
	struct sockmap_user u = {.done = done, .read = read};

	return bpf_map_update_elem(sm->user, &p->cookie[side], &u, BPF_EXIST);
}

#else /* !SG_SOCKMAP */

struct sockmap {
	int unused;
};

struct sockmap *sockmap_init(char *err, size_t errlen)
{
	snprintf(err, errlen, "built without sockmap support (SG_SOCKMAP)");
	return NULL;
}

void sockmap_free(struct sockmap *sm)
{
	(void)sm;
}

int sockmap_fd(const struct sockmap *sm)
{
	(void)sm;
	return -1;
}

void sockmap_process(struct sockmap *sm)
{
	(void)sm;
}

int sockmap_add(struct sockmap *sm, struct sockmap_pair *p, int a, int b)
{
	(void)sm;
	(void)p;
	(void)a;
	(void)b;
	errno = ENOSYS;
	return -1;
}

void sockmap_remove(struct sockmap *sm, struct sockmap_pair *p)
{
	(void)sm;
	(void)p;
}

int sockmap_state(struct sockmap *sm, const struct sockmap_pair *p, int side,
		  struct sockmap_state *st)
{
	(void)sm;
	(void)p;
	(void)side;
	memset(st, 0, sizeof(*st));
	errno = ENOSYS;
	return -1;
}

int sockmap_set_done(struct sockmap *sm, const struct sockmap_pair *p, int side,
		     uint64_t done, uint64_t read)
{
	(void)sm;
	(void)p;
	(void)side;
	(void)done;
	(void)read;
	errno = ENOSYS;
	return -1;
}

void sockmap_unhold(struct sockmap *sm, struct sockmap_pair *p, int side)
{
	(void)sm;
	(void)p;
	(void)side;
}

#endif /* SG_SOCKMAP */

void sockmap_kick(int fd)
{
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
}

int sockmap_received(int fd, uint64_t *bytes)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -1;
	*bytes = ti.tcpi_bytes_received;
	return 0;
}

int sockmap_written(int fd, uint64_t *bytes)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int outq;

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	    ioctl(fd, SIOCOUTQ, &outq) < 0)
		return -1;
	*bytes = ti.tcpi_bytes_acked + (uint64_t)outq;
	return 0;
}
