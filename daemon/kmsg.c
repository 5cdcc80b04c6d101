/*
 * kmsg: see kmsg.h.
 */
#include "kmsg.h"

#include "addr.h"
#include "s5_proto.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/uio.h>
#include <unistd.h>

/* The layouts the test harness (netns-tests/tools/kagent.py) packs by
 * hand: any change here must change it and KMSG_VERSION. */
_Static_assert(sizeof(struct kmsg_hdr) == 8, "kmsg_hdr");
_Static_assert(sizeof(struct kmsg_addr) == 20, "kmsg_addr");
_Static_assert(sizeof(struct kmsg_open) == 8 + 8 + 8 + 8 + 4 * 20 + 256,
	       "kmsg_open");
_Static_assert(offsetof(struct kmsg_open, src) == 32, "kmsg_open.src");
_Static_assert(sizeof(struct kmsg_close) == 24, "kmsg_close");
_Static_assert(sizeof(struct kmsg_terminate) == 16, "kmsg_terminate");
_Static_assert(sizeof(struct kmsg_ready) == 8 + 8 + 8 + 20 + 4, "kmsg_ready");
_Static_assert(offsetof(struct kmsg_ready, bnd) == 24, "kmsg_ready.bnd");
_Static_assert(sizeof(struct kmsg_result) == 16, "kmsg_result");
_Static_assert(sizeof(struct kmsg_welcome) == 16, "kmsg_welcome");
_Static_assert(sizeof(struct kmsg_open) <= KMSG_MAX &&
		       sizeof(struct kmsg_stats_reply) <= KMSG_MAX &&
		       sizeof(struct kmsg_info) <= KMSG_MAX,
	       "KMSG_MAX");

struct kmsg_desc {
	const char *name;
	char from;
	size_t size;
};

#define KMSG_DESC(e, n, dir) [e] = {n, dir, 0},
static struct kmsg_desc desc[KMSG_TYPE_COUNT] = {KMSG_TYPE_LIST(KMSG_DESC)};
#undef KMSG_DESC

static size_t kmsg_size(unsigned type)
{
	switch (type) {
	case KMSG_OPEN:
		return sizeof(struct kmsg_open);
	case KMSG_CLOSE:
		return sizeof(struct kmsg_close);
	case KMSG_TERMINATE:
		return sizeof(struct kmsg_terminate);
	case KMSG_LIST:
	case KMSG_STATS:
	case KMSG_LIST_END:
		return sizeof(struct kmsg_query);
	case KMSG_WELCOME:
		return sizeof(struct kmsg_welcome);
	case KMSG_READY:
		return sizeof(struct kmsg_ready);
	case KMSG_ENDED:
		return sizeof(struct kmsg_ended);
	case KMSG_RESULT:
		return sizeof(struct kmsg_result);
	case KMSG_INFO:
		return sizeof(struct kmsg_info);
	case KMSG_STATS_REPLY:
		return sizeof(struct kmsg_stats_reply);
	case KMSG_SESSION:
		return sizeof(struct kmsg_session);
	case KMSG_RELOAD:
		return sizeof(struct kmsg_reload);
	case KMSG_AGENT_UP:
		return sizeof(struct kmsg_agent_up);
	case KMSG_RELOADED:
		return sizeof(struct kmsg_reloaded);
	default:
		return 0;
	}
}

const char *kmsg_type_str(unsigned type)
{
	return type > KMSG_NONE && type < KMSG_TYPE_COUNT ? desc[type].name
							  : "unknown";
}

void kmsg_hdr_init(struct kmsg_hdr *h, enum kmsg_type type, size_t size)
{
	h->version = KMSG_VERSION;
	h->type = (uint16_t)type;
	h->size = (uint32_t)size;
}

static bool addr_ok(const struct kmsg_addr *a)
{
	if (a->family == AF_INET) {
		for (size_t i = 4; i < sizeof(a->ip); i++)
			if (a->ip[i] != 0)
				return false;
		return a->pad == 0;
	}
	return a->family == AF_INET6 && a->pad == 0;
}

/* A NUL within the field, and only printable ASCII before it (names end
 * up in logs and in nftables comments). */
static bool str_ok(const char *s, size_t cap)
{
	const char *end = memchr(s, '\0', cap);

	if (end == NULL)
		return false;
	for (const char *p = s; p < end; p++)
		if (*p < 0x21 || *p > 0x7e)
			return false;
	return true;
}

static bool zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static enum kmsg_type bad(const char **why, const char *s)
{
	*why = s;
	return KMSG_NONE;
}

enum kmsg_type kmsg_check(const void *buf, size_t len, char from,
			  const char **why)
{
	struct kmsg_hdr h;

	*why = NULL;
	if (len < sizeof(h))
		return bad(why, "shorter than a header");
	memcpy(&h, buf, sizeof(h));
	if (h.version != KMSG_VERSION)
		return bad(why, "unknown version");
	if (h.type <= KMSG_NONE || h.type >= KMSG_TYPE_COUNT)
		return bad(why, "unknown type");
	if (desc[h.type].from != from)
		return bad(why, "type not allowed from this sender");
	if (h.size != len || len != kmsg_size(h.type))
		return bad(why, "wrong size for its type");
	switch (h.type) {
	case KMSG_OPEN: {
		const struct kmsg_open *m = buf;
		if (m->tag == 0)
			return bad(why, "tag 0");
		if (m->proto == 0 || !zero(m->pad, sizeof(m->pad)))
			return bad(why, "bad protocol field");
		if (!addr_ok(&m->src) || !addr_ok(&m->bnd) ||
		    !addr_ok(&m->dst) || !addr_ok(&m->client))
			return bad(why, "address of an unknown family");
		if (!str_ok(m->user, sizeof(m->user)))
			return bad(why, "user name not a printable string");
		break;
	}
	case KMSG_CLOSE: {
		const struct kmsg_close *m = buf;
		if (m->tag == 0 || (m->why != ASSOC_END_N1_CLOSED &&
				    m->why != ASSOC_END_SHUTDOWN))
			return bad(why, "bad tag or reason");
		break;
	}
	case KMSG_TERMINATE: {
		const struct kmsg_terminate *m = buf;
		if (m->why != ASSOC_END_OPERATOR && m->why != ASSOC_END_POLICY)
			return bad(why, "reason not the session's to give");
		break;
	}
	case KMSG_READY: {
		const struct kmsg_ready *m = buf;
		if (m->rep == 0 && !addr_ok(&m->bnd))
			return bad(why, "address of an unknown family");
		break;
	}
	case KMSG_ENDED: {
		const struct kmsg_ended *m = buf;
		if (m->why >= ASSOC_END_COUNT)
			return bad(why, "reason out of range");
		break;
	}
	case KMSG_INFO: {
		const struct kmsg_info *m = buf;
		if (!str_ok(m->state, sizeof(m->state)))
			return bad(why, "state not a printable string");
		break;
	}
	default:
		break;
	}
	return (enum kmsg_type)h.type;
}

static bool unusable_end(const struct sockaddr *sa)
{
	return addr_is_unusable_bnd(sa) || addr_is_multicast_or_broadcast(sa) ||
	       addr_is_loopback(sa) || addr_port(sa) == 0;
}

uint8_t kmsg_check_open(const struct cfg *c, const struct kmsg_open *m,
			const char **why)
{
	struct sockaddr_storage src, bnd, dst, norm, emb;
	const struct sockaddr_storage *relay;
	bool embedded = false;

	kmsg_addr_to(&m->src, &src);
	kmsg_addr_to(&m->bnd, &bnd);
	kmsg_addr_to(&m->dst, &dst);
	*why = NULL;
	if (!c->ptcl_enabled[m->proto]) {
		*why = "PTCL not enabled (transparent-protocols)";
		return S5_REP_PTCL_UNSUPPORTED;
	}
	if (m->src.family != m->dst.family || m->bnd.family != m->src.family) {
		*why = "S, BND and DST of different families";
		return S5_REP_ATYP_UNSUPPORTED;
	}
	if (m->bnd.port != 0) {
		*why = "BND.PORT chosen by the session process (the agent "
		       "allocates it in relay-ports)";
		return S5_REP_NOT_ALLOWED;
	}
	relay = m->bnd.family == AF_INET6 ? &c->relay6 : &c->relay4;
	if (relay->ss_family != 0 &&
	    !addr_eq_ip((struct sockaddr *)relay, (struct sockaddr *)&bnd)) {
		*why = "BND.ADDR is not the relay-address";
		return S5_REP_NOT_ALLOWED;
	}
	if (addr_is_unusable_bnd((struct sockaddr *)&bnd) ||
	    addr_is_multicast_or_broadcast((struct sockaddr *)&bnd) ||
	    addr_is_loopback((struct sockaddr *)&bnd) ||
	    (m->bnd.family == AF_INET6 && m->bnd.ip[0] == 0xfe &&
	     (m->bnd.ip[1] & 0xc0) == 0x80) ||
	    (m->bnd.family == AF_INET && m->bnd.ip[0] == 169 &&
	     m->bnd.ip[1] == 254)) {
		*why = "unusable BND.ADDR";
		return S5_REP_NOT_ALLOWED;
	}
	if (unusable_end((struct sockaddr *)&src)) {
		*why = "unusable S.ADDR or S.PORT";
		return S5_REP_NOT_ALLOWED;
	}
	if (unusable_end((struct sockaddr *)&dst)) {
		*why = "unusable DST.ADDR or DST.PORT";
		return S5_REP_NOT_ALLOWED;
	}
	/* The forms no rule may allow (docs/security.md), for S too. */
	if (addr_dst_normalise((struct sockaddr *)&src, &norm, &emb) !=
		    ADDR_DST_OK ||
	    norm.ss_family != src.ss_family) {
		*why = "S.ADDR of a form never relayed";
		return S5_REP_NOT_ALLOWED;
	}
	if (addr_dst_normalise((struct sockaddr *)&dst, &norm, &emb) !=
		    ADDR_DST_OK ||
	    norm.ss_family != dst.ss_family) {
		*why = "DST.ADDR of a form never relayed";
		return S5_REP_NOT_ALLOWED;
	}
	embedded = emb.ss_family != 0;
	if (embedded && addr_is_loopback((struct sockaddr *)&emb)) {
		*why = "DST.ADDR carries a loopback address";
		return S5_REP_NOT_ALLOWED;
	}
	return S5_REP_SUCCEEDED;
}

int kmsg_addr_from(const struct sockaddr *sa, struct kmsg_addr *ka)
{
	memset(ka, 0, sizeof(*ka));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		ka->family = AF_INET;
		ka->port = ntohs(in->sin_port);
		memcpy(ka->ip, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)sa;
		ka->family = AF_INET6;
		ka->port = ntohs(in6->sin6_port);
		memcpy(ka->ip, &in6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

void kmsg_addr_to(const struct kmsg_addr *ka, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ka->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(ka->port);
		memcpy(&in->sin_addr, ka->ip, 4);
	} else if (ka->family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(ka->port);
		memcpy(&in6->sin6_addr, ka->ip, 16);
	}
}

int kmsg_send(int fd, const void *msg, size_t len, int timeout_ms)
{
	for (;;) {
		ssize_t n = send(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == (ssize_t)len)
			return 0;
		if (n >= 0) {
			errno = EMSGSIZE;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || timeout_ms == 0)
			return -1;
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int r = poll(&p, 1, timeout_ms);
		if (r == 0) {
			errno = EAGAIN;
			return -1;
		}
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

int kmsg_send_many(int fd, const struct iovec *msgs, unsigned n)
{
	struct mmsghdr mm[KMSG_BATCH];
	unsigned npk = 0, i = 0, first[KMSG_BATCH + 1];
	int r;

	if (n > KMSG_BATCH)
		n = KMSG_BATCH;
	/* Packets of consecutive messages, each at most KMSG_PACKET. */
	while (i < n) {
		size_t bytes = 0;
		first[npk] = i;
		memset(&mm[npk], 0, sizeof(mm[npk]));
		mm[npk].msg_hdr.msg_iov = (struct iovec *)&msgs[i];
		while (i < n &&
		       (bytes == 0 || bytes + msgs[i].iov_len <= KMSG_PACKET)) {
			bytes += msgs[i].iov_len;
			i++;
		}
		mm[npk].msg_hdr.msg_iovlen = i - first[npk];
		npk++;
	}
	first[npk] = n;
	do
		r = sendmmsg(fd, mm, npk, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r < 0 ? -1 : 0;
	return (int)first[r];
}

void kmsg_queue_init(struct kmsg_queue *q)
{
	q->head = NULL;
	q->tail = &q->head;
	q->bytes = 0;
}

int kmsg_queue_push(struct kmsg_queue *q, const void *msg, size_t len)
{
	struct kmsg_out *o = malloc(sizeof(*o) + len);

	if (o == NULL)
		return -1;
	o->next = NULL;
	o->len = len;
	memcpy(o->msg, msg, len);
	*q->tail = o;
	q->tail = &o->next;
	q->bytes += len;
	return 0;
}

int kmsg_queue_flush(struct kmsg_queue *q, int fd)
{
	while (q->head) {
		struct iovec iov[KMSG_BATCH];
		unsigned n = 0;
		for (struct kmsg_out *o = q->head; o && n < KMSG_BATCH;
		     o = o->next, n++) {
			iov[n].iov_base = o->msg;
			iov[n].iov_len = o->len;
		}
		int sent = kmsg_send_many(fd, iov, n);
		if (sent < 0)
			return errno == EAGAIN ? 1 : -1;
		for (int i = 0; i < sent; i++) {
			struct kmsg_out *o = q->head;
			q->head = o->next;
			q->bytes -= o->len;
			free(o);
		}
	}
	q->tail = &q->head;
	return 0;
}

void kmsg_queue_clear(struct kmsg_queue *q)
{
	while (q->head) {
		struct kmsg_out *o = q->head;
		q->head = o->next;
		free(o);
	}
	kmsg_queue_init(q);
}

int kmsg_check_packet(const void *buf, size_t len, char from, const char **why)
{
	const unsigned char *p = buf;
	size_t off = 0;
	int n = 0;

	*why = NULL;
	if (len == 0 || len > KMSG_PACKET) {
		*why = len ? "packet too long" : "empty packet";
		return -1;
	}
	while (off < len) {
		struct kmsg_hdr h;
		if (len - off < sizeof(h)) {
			*why = "shorter than a header";
			return -1;
		}
		memcpy(&h, p + off, sizeof(h));
		if (h.size < sizeof(h) || h.size > len - off) {
			*why = "size beyond the packet";
			return -1;
		}
		if (kmsg_check(p + off, h.size, from, why) == KMSG_NONE)
			return -1;
		off += h.size;
		n++;
	}
	return n;
}

int kmsg_send_fds(int fd, const void *msg, size_t len, const int *fds,
		  size_t nfds)
{
	union {
		char buf[CMSG_SPACE(KMSG_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = c.buf,
			    .msg_controllen = CMSG_SPACE(nfds * sizeof(int))};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	if (nfds == 0 || nfds > KMSG_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	memset(c.buf, 0, sizeof(c.buf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	for (;;) {
		/* Never blocks: the supervisor must not wait on a child
		 * that does not read (EAGAIN is an error here). */
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == (ssize_t)len)
			return 0;
		if (n >= 0) {
			errno = EMSGSIZE;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83 /* Linux 6.16 */
#endif

int kmsg_refuse_fds(int fd)
{
	int zero = 0;

	return setsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &zero, sizeof(zero));
}

/* A descriptor nobody asked for: closed without waiting for anything. */
static void close_unwanted(int f)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	setsockopt(f, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(f);
}

ssize_t kmsg_recv(int fd, void *buf, size_t cap, int *fds, size_t maxfds)
{
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov = {.iov_base = buf, .iov_len = cap};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = c.buf,
			    .msg_controllen = sizeof(c.buf)};
	ssize_t n;
	size_t got = 0;

	for (size_t i = 0; fds && i < maxfds; i++)
		fds[i] = -1;
	do
		n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
	     cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int f;
			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(f));
			if (fds && got < maxfds)
				fds[got++] = f;
			else
				close_unwanted(f);
		}
	}
	if (mh.msg_flags & MSG_TRUNC) {
		/* A message longer than any we know: seen as such. */
		return (ssize_t)cap;
	}
	return n;
}
