/*
 * selfaddr: see selfaddr.h.
 */
#include "selfaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "grow.h"

/* A dump answer is sent in parts of up to 32 KiB when the buffer allows;
 * a smaller buffer would truncate them. */
#define SELFADDR_BUF 32768
/* Notifications read per wake-up: a storm of local-table changes is
 * drained in bounded steps (the fd stays readable for the rest). */
#define SELFADDR_DRAIN_MAX 256
/* A dump that the kernel marks interrupted (the table changed meanwhile)
 * is taken again, this many times at most; the change that interrupted
 * it is notified anyway, so the next wake-up dumps again. */
#define SELFADDR_DUMP_TRIES 3

struct selfaddr {
	struct mnl_socket *ev; /* notifications, non-blocking */
	struct mnl_socket *q;  /* dumps, receive bounded by SO_RCVTIMEO */
	bool ipv6;	       /* the kernel has IPv6 */
	uint32_t seq;
	struct selfaddr_stats st;
	struct selfaddr_prefix *p;
	size_t n;
	uint8_t buf[SELFADDR_BUF];
};

/* What one dump collects. */
struct dump_ctx {
	struct selfaddr_prefix *p;
	size_t n, cap;
	bool intr;
	bool nomem;
};

int selfaddr_parse_route(const struct nlmsghdr *nlh,
			 struct selfaddr_prefix *out)
{
	const struct rtmsg *rtm;
	const struct nlattr *attr;
	const void *dst = NULL;
	size_t dlen = 0, alen;
	uint32_t table;
	unsigned max;

	if (nlh->nlmsg_type != RTM_NEWROUTE)
		return 0;
	if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(*rtm))
		return -1;
	rtm = mnl_nlmsg_get_payload(nlh);
	table = rtm->rtm_table;
	mnl_attr_for_each(attr, nlh, sizeof(*rtm))
	{
		switch (mnl_attr_get_type(attr)) {
		case RTA_TABLE:
			if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
				return -1;
			table = mnl_attr_get_u32(attr);
			break;
		case RTA_DST:
			dst = mnl_attr_get_payload(attr);
			dlen = mnl_attr_get_payload_len(attr);
			break;
		default:
			break;
		}
	}
	if (table != RT_TABLE_LOCAL)
		return 0;
	if (rtm->rtm_type != RTN_LOCAL && rtm->rtm_type != RTN_BROADCAST &&
	    rtm->rtm_type != RTN_ANYCAST)
		return 0;
	if (rtm->rtm_family == AF_INET) {
		alen = 4;
		max = 32;
	} else if (rtm->rtm_family == AF_INET6) {
		alen = 16;
		max = 128;
	} else {
		return 0;
	}
	if (rtm->rtm_dst_len > max || (dst != NULL && dlen != alen))
		return -1;
	memset(out, 0, sizeof(*out));
	out->family = rtm->rtm_family;
	out->plen = rtm->rtm_dst_len;
	out->type = rtm->rtm_type;
	/* No RTA_DST: the default route (local everything), as the kernel
	 * would treat it. */
	if (dst != NULL)
		memcpy(out->addr, dst, alen);
	return 1;
}

bool selfaddr_prefix_match(const struct selfaddr_prefix *p, size_t n,
			   const struct sockaddr *a)
{
	const uint8_t *b;

	if (a->sa_family == AF_INET)
		b = (const uint8_t *)&((const struct sockaddr_in *)a)->sin_addr;
	else if (a->sa_family == AF_INET6)
		b = ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr;
	else
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned full = p[i].plen / 8, rest = p[i].plen % 8;
		if (p[i].family != a->sa_family ||
		    memcmp(b, p[i].addr, full) != 0)
			continue;
		if (rest == 0)
			return true;
		uint8_t mask = (uint8_t)(0xff00u >> rest);
		if ((b[full] & mask) == (p[i].addr[full] & mask))
			return true;
	}
	return false;
}

static int prefix_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct selfaddr_prefix));
}

size_t selfaddr_prefix_sort(struct selfaddr_prefix *p, size_t n)
{
	size_t k = 0;

	if (n == 0)
		return 0;
	qsort(p, n, sizeof(*p), prefix_cmp);
	for (size_t i = 1; i < n; i++)
		if (prefix_cmp(&p[k], &p[i]) != 0)
			p[++k] = p[i];
	return k + 1;
}

bool selfaddr_match(const struct selfaddr *sa, const struct sockaddr *a)
{
	return selfaddr_prefix_match(sa->p, sa->n, a);
}

const struct selfaddr_prefix *selfaddr_table(const struct selfaddr *sa,
					     size_t *n)
{
	*n = sa->n;
	return sa->p;
}

void selfaddr_get_stats(const struct selfaddr *sa, struct selfaddr_stats *st)
{
	*st = sa->st;
}

int selfaddr_fd(const struct selfaddr *sa)
{
	return mnl_socket_get_fd(sa->ev);
}

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *d = data;
	struct selfaddr_prefix p;

	if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
		d->intr = true;
	if (selfaddr_parse_route(nlh, &p) != 1)
		return MNL_CB_OK; /* not ours; a malformed one is skipped */
	if (grow(&d->p, &d->cap, d->n + 1, sizeof(*d->p), 32) < 0) {
		d->nomem = true;
		return MNL_CB_ERROR;
	}
	d->p[d->n++] = p;
	return MNL_CB_OK;
}

/* Reads what an earlier, abandoned dump left on the socket. */
static void drain(struct mnl_socket *nl, uint8_t *buf, size_t cap)
{
	for (int i = 0; i < SELFADDR_DRAIN_MAX; i++)
		if (recv(mnl_socket_get_fd(nl), buf, cap, MSG_DONTWAIT) < 0 &&
		    errno != EINTR)
			return;
}

/* One family's local table into d; 0 or -1 with errno. */
static int dump_family(struct selfaddr *sa, int family, struct dump_ctx *d)
{
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	uint32_t portid = mnl_socket_get_portid(sa->q), seq;
	ssize_t n;
	int rc;

	drain(sa->q, sa->buf, sizeof(sa->buf));
	nlh = mnl_nlmsg_put_header(sa->buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq = ++sa->seq;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)family;
	/* With NETLINK_GET_STRICT_CHK the kernel dumps this table only;
	 * without, it dumps all and dump_cb keeps the local table's. */
	rtm->rtm_table = RT_TABLE_LOCAL;
	if (mnl_socket_sendto(sa->q, nlh, nlh->nlmsg_len) < 0)
		return -1;
	for (;;) {
		n = mnl_socket_recvfrom(sa->q, sa->buf, sizeof(sa->buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1; /* EAGAIN: SO_RCVTIMEO passed */
		rc = mnl_cb_run(sa->buf, (size_t)n, seq, portid, dump_cb, d);
		if (rc == MNL_CB_STOP)
			return 0;
		if (rc == MNL_CB_ERROR) {
			if (d->nomem)
				errno = ENOMEM;
			return -1;
		}
	}
}

int selfaddr_refresh(struct selfaddr *sa)
{
	struct dump_ctx d;
	bool changed;

	sa->st.dumps++;
	for (int tries = 0;; tries++) {
		memset(&d, 0, sizeof(d));
		if (dump_family(sa, AF_INET, &d) < 0 ||
		    (sa->ipv6 && dump_family(sa, AF_INET6, &d) < 0)) {
			int e = errno;
			free(d.p);
			sa->st.dump_failures++;
			errno = e;
			return -1;
		}
		if (!d.intr || tries + 1 == SELFADDR_DUMP_TRIES)
			break;
		free(d.p);
	}
	d.n = selfaddr_prefix_sort(d.p, d.n);
	changed = d.n != sa->n ||
		  (d.n > 0 && memcmp(d.p, sa->p, d.n * sizeof(*d.p)) != 0);
	free(sa->p);
	sa->p = d.p;
	sa->n = d.n;
	return changed ? 1 : 0;
}

/* True if a notification in buf[0..n) may change the table: an address
 * change, or a route of the local table (the BPF filter lets only those
 * through; this is the same test, in case it let others by).  Counts the
 * messages. */
static bool relevant(struct selfaddr *sa, const uint8_t *buf, size_t n)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	int len = (int)n;
	bool any = false;

	for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
		const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
		sa->st.notifications++;
		if (nlh->nlmsg_type == RTM_NEWADDR ||
		    nlh->nlmsg_type == RTM_DELADDR)
			any = true;
		else if ((nlh->nlmsg_type == RTM_NEWROUTE ||
			  nlh->nlmsg_type == RTM_DELROUTE) &&
			 (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(*rtm) ||
			  rtm->rtm_table == RT_TABLE_LOCAL))
			any = true; /* above 255: RT_TABLE_COMPAT here */
	}
	return any;
}

int selfaddr_process(struct selfaddr *sa)
{
	int fd = mnl_socket_get_fd(sa->ev);
	bool dump = false;

	for (int i = 0; i < SELFADDR_DRAIN_MAX; i++) {
		ssize_t n = recv(fd, sa->buf, sizeof(sa->buf), MSG_DONTWAIT);
		if (n > 0) {
			dump = relevant(sa, sa->buf, (size_t)n) || dump;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			sa->st.overruns++;
			dump = true; /* lost notifications: ask the table */
			continue;
		}
		break; /* EAGAIN: drained */
	}
	return dump ? selfaddr_refresh(sa) : 0;
}

/*
 * Passes address notifications and routes of the local table; drops the
 * rest in the kernel.  BPF loads halfwords in network order, netlink is
 * in host order: the type is compared with htons(type), right on either
 * byte order.
 */
static int attach_filter(int fd)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS,
			 offsetof(struct nlmsghdr, nlmsg_type)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htons(RTM_NEWROUTE), 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htons(RTM_DELROUTE), 1, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff), /* addresses */
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS,
			 NLMSG_HDRLEN + offsetof(struct rtmsg, rtm_table)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RT_TABLE_LOCAL, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]),
				  .filter = code};

	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog,
			  sizeof(prog));
}

static bool have_ipv6(void)
{
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return errno != EAFNOSUPPORT;
	close(fd);
	return true;
}

struct selfaddr *selfaddr_open(char *err, size_t errlen)
{
	struct selfaddr *sa = calloc(1, sizeof(*sa));
	struct timeval tv = {.tv_sec = 1};
	int on = 1;
	unsigned groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE;
	const char *what;

	if (sa == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sa->ipv6 = have_ipv6();
	if (sa->ipv6)
		groups |= RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE;
	what = "notification socket";
	sa->ev = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (sa->ev == NULL)
		goto fail;
	/* Before bind: nothing unfiltered is ever queued. */
	what = "notification filter";
	if (attach_filter(mnl_socket_get_fd(sa->ev)) < 0)
		goto fail;
	what = "notification subscription";
	if (mnl_socket_bind(sa->ev, groups, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	what = "dump socket";
	sa->q = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (sa->q == NULL || mnl_socket_bind(sa->q, 0, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	/* Kernels before 4.20 lack it: dump_cb filters then. */
	setsockopt(mnl_socket_get_fd(sa->q), SOL_NETLINK,
		   NETLINK_GET_STRICT_CHK, &on, sizeof(on));
	setsockopt(mnl_socket_get_fd(sa->q), SOL_SOCKET, SO_RCVTIMEO, &tv,
		   sizeof(tv));
	what = "local routing table dump";
	if (selfaddr_refresh(sa) < 0)
		goto fail;
	return sa;
fail:
	snprintf(err, errlen, "rtnetlink %s: %s", what, strerror(errno));
	selfaddr_close(sa);
	return NULL;
}

void selfaddr_close(struct selfaddr *sa)
{
	if (sa == NULL)
		return;
	if (sa->ev)
		mnl_socket_close(sa->ev);
	if (sa->q)
		mnl_socket_close(sa->q);
	free(sa->p);
	free(sa);
}
