/*
 * fw_scan: see fw_scan.h.  The socket side of the firewall check: dumps,
 * bounded waits, generation checks.  What the messages mean is
 * fw_model.c's business, the verdict fw_judge.c's.
 */
#include "fw_scan.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/gen.h>
#include <libnftnl/set.h>

#define SCAN_WAIT_MS 2000
#define SCAN_TRIES 3
#define SCAN_BUF (64 * 1024)

struct scan {
	struct mnl_socket *nl;
	uint32_t portid, seq;
	char *buf;
	struct fw_model *m;
	int (*raw)(void *arg, const struct nlmsghdr *nlh);
	void *arg;
	bool intr;   /* a dump said the ruleset changed under it */
	bool failed; /* the model or the raw callback refused a message */
	uint32_t genid;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct scan *s = data;

	if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
		s->intr = true;
	if ((nlh->nlmsg_type & 0xff) == NFT_MSG_NEWGEN &&
	    (nlh->nlmsg_type >> 8) == NFNL_SUBSYS_NFTABLES) {
		struct nftnl_gen *g = nftnl_gen_alloc();
		if (g && nftnl_gen_nlmsg_parse(nlh, g) == 0)
			s->genid = nftnl_gen_get_u32(g, NFTNL_GEN_ID);
		nftnl_gen_free(g);
		return MNL_CB_OK;
	}
	if (s->raw && s->raw(s->arg, nlh) < 0) {
		s->failed = true;
		return MNL_CB_ERROR;
	}
	if (fw_model_add(s->m, nlh) < 0) {
		s->failed = true;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

/* Sends one request and reads its answers to the end (NLMSG_DONE or the
 * ACK), waiting at most SCAN_WAIT_MS in all.  Returns 0 or -1 (errno). */
static int talk(struct scan *s, struct nlmsghdr *nlh)
{
	struct pollfd p = {.fd = mnl_socket_get_fd(s->nl), .events = POLLIN};
	int64_t deadline = now_ms() + SCAN_WAIT_MS;
	uint32_t seq = nlh->nlmsg_seq;
	int rc;

	if (mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	do {
		ssize_t n = recv(p.fd, s->buf, SCAN_BUF, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			int64_t left = deadline - now_ms();
			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
				return -1;
			rc = MNL_CB_OK;
			continue;
		}
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		rc = mnl_cb_run(s->buf, (size_t)n, seq, s->portid, msg_cb, s);
	} while (rc == MNL_CB_OK);
	return rc < 0 ? -1 : 0;
}

static int dump(struct scan *s, uint16_t type, int family,
		struct nftnl_set *payload)
{
	char hdr[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(
		hdr, type, (uint16_t)family, NLM_F_DUMP, s->seq++);

	if (payload)
		nftnl_set_elems_nlmsg_build_payload(nlh, payload);
	return talk(s, nlh);
}

static int get_gen(struct scan *s, uint32_t *id)
{
	char hdr[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(
		hdr, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, s->seq++);

	s->genid = 0;
	if (talk(s, nlh) < 0)
		return -1;
	*id = s->genid;
	return 0;
}

struct wanted {
	struct scan *s;
	int rc;
};

static void dump_set(void *arg, int family, const char *table, const char *name)
{
	struct wanted *w = arg;
	struct nftnl_set *q = nftnl_set_alloc();

	if (q == NULL) {
		w->rc = -1;
		return;
	}
	nftnl_set_set_str(q, NFTNL_SET_TABLE, table);
	nftnl_set_set_str(q, NFTNL_SET_NAME, name);
	/* A set that went away since: the generation check catches it. */
	if (dump(w->s, NFT_MSG_GETSETELEM, family, q) < 0 && errno != ENOENT)
		w->rc = -1;
	nftnl_set_free(q);
}

/* One consistent read: -1 (errno), 0 done, 1 the ruleset changed. */
static int read_once(struct scan *s)
{
	static const uint16_t kinds[] = {NFT_MSG_GETTABLE, NFT_MSG_GETCHAIN,
					 NFT_MSG_GETSET};
	struct wanted w = {.s = s};
	uint32_t g0, g1;

	s->intr = false;
	if (get_gen(s, &g0) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (dump(s, kinds[i], NFPROTO_UNSPEC, NULL) < 0)
			return -1;
	fw_model_wanted_sets(s->m, dump_set, &w);
	if (w.rc < 0 || dump(s, NFT_MSG_GETRULE, NFPROTO_UNSPEC, NULL) < 0 ||
	    get_gen(s, &g1) < 0)
		return -1;
	return s->intr || g0 != g1 ? 1 : 0;
}

static int scan_run(struct scan *s, char *err, size_t errlen)
{
	int rc = -1;

	s->buf = malloc(SCAN_BUF);
	s->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (s->buf == NULL || s->nl == NULL ||
	    mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "netlink socket: %s", strerror(errno));
		goto out;
	}
	s->portid = mnl_socket_get_portid(s->nl);
	s->seq = (uint32_t)time(NULL);
	for (int t = 0; t < SCAN_TRIES; t++) {
		int r;
		fw_model_free(s->m);
		s->m = fw_model_new();
		if (s->m == NULL) {
			errno = ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		r = read_once(s);
		if (r < 0) {
			int e = errno;
			snprintf(err, errlen, "reading the ruleset: %s%s",
				 s->failed ? "cannot parse a message: " : "",
				 strerror(e));
			errno = e;
			goto out;
		}
		if (r == 0) {
			rc = 0;
			goto out;
		}
	}
	snprintf(err, errlen, "the ruleset kept changing while read");
	errno = EAGAIN;
out:
	if (s->nl) {
		int e = errno;
		mnl_socket_close(s->nl);
		errno = e;
	}
	free(s->buf);
	return rc;
}

/* iptables-legacy tables live outside nftables: their names show in
 * /proc/net/ip{,6}_tables_names once loaded in this namespace. */
static bool legacy_filter(const char *path)
{
	FILE *f = fopen(path, "re");
	char line[64];
	bool found = false;

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strcmp(line, "filter\n") == 0;
	fclose(f);
	return found;
}

int fw_scan(struct fw_report *out, char *err, size_t errlen)
{
	struct scan s = {0};
	int rc;

	memset(out, 0, sizeof(*out));
	rc = scan_run(&s, err, errlen);
	if (rc == 0 && fw_judge(s.m, out) < 0) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
	int e = errno;
	out->legacy[0] = legacy_filter("/proc/net/ip_tables_names");
	out->legacy[1] = legacy_filter("/proc/net/ip6_tables_names");
	fw_model_free(s.m);
	errno = e;
	return rc;
}

int fw_scan_dump(int (*fn)(void *arg, const struct nlmsghdr *nlh), void *arg,
		 char *err, size_t errlen)
{
	struct scan s = {.raw = fn, .arg = arg};
	int rc = scan_run(&s, err, errlen);

	fw_model_free(s.m);
	return rc;
}
