/*
 * Unit tests for nft/fw.c (transactions, ACKs, per-flow results) against
 * a fake nftables kernel: the libmnl socket calls are defined here
 * (link-time stubs), so fw.c's batches land in a parser that applies them
 * atomically to an element table and writes the ACKs the kernel would
 * into a socketpair that fw.c reads with recv()/poll() as it reads the
 * real netlink socket.  Faults injected: a message refused in one chunk
 * of several, a transaction whose ACKs never come (applied or not) and
 * whose late ACKs then arrive before the next transaction's, a refused
 * batch, the table owned by another process, an element gone already.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h> /* before the linux/ headers */
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "fw.h"

/* --- the fake kernel ------------------------------------------------- */

#define MAXK 4096
#define KEYMAX 64

struct elem {
	char set[32];
	uint8_t key[KEYMAX];
	uint32_t klen;
};

static struct {
	int fd[2]; /* [0]: fw.c's end, [1]: the kernel's */
	struct elem e[MAXK];
	size_t n;
	int txn; /* transactions (batches) seen */
	/* faults, by transaction number */
	int refuse_txn, refuse_msg, refuse_errno; /* message index in it */
	int silent_txn;				  /* no ACKs at all ... */
	bool silent_applies;			  /* ... but applied */
	int batch_refuse_txn;			  /* error on the BEGIN */
	int enomem_txn; /* the kernel runs out of memory: one error on the
			 * first message, no other answer (nfnetlink.c) */
	bool table_owned, no_privilege;
	/* ACKs held back (a silent transaction's), sent before the next */
	char late[1 << 16] __attribute__((aligned(8)));
	size_t late_len;
	int stale_sent;
} F;

struct mnl_socket {
	int dummy;
};
static struct mnl_socket the_sock;

struct mnl_socket *mnl_socket_open2(int bus, int flags)
{
	(void)bus, (void)flags;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, F.fd),
		     0);
	int big = 4 << 20;
	setsockopt(F.fd[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(F.fd[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	return &the_sock;
}

int mnl_socket_bind(struct mnl_socket *nl, unsigned int groups, pid_t pid)
{
	(void)nl, (void)groups, (void)pid;
	return 0;
}

int mnl_socket_setsockopt(const struct mnl_socket *nl, int type, void *buf,
			  socklen_t len)
{
	(void)nl, (void)type, (void)buf, (void)len;
	return 0;
}

int mnl_socket_get_fd(const struct mnl_socket *nl)
{
	(void)nl;
	return F.fd[0];
}

unsigned int mnl_socket_get_portid(const struct mnl_socket *nl)
{
	(void)nl;
	return 77;
}

int mnl_socket_close(struct mnl_socket *nl)
{
	(void)nl;
	close(F.fd[0]);
	close(F.fd[1]);
	return 0;
}

/* Answers are packed into datagrams of up to 8 KiB. */
static char out[8192] __attribute__((aligned(8)));
static size_t outlen;

static void flush_out(void)
{
	if (outlen)
		cr_assert_eq(send(F.fd[1], out, outlen, 0), (ssize_t)outlen);
	outlen = 0;
}

static void put(const void *msg, size_t len, bool late)
{
	if (late) {
		cr_assert_leq(F.late_len + len, sizeof(F.late));
		memcpy(F.late + F.late_len, msg, len);
		F.late_len += len;
		return;
	}
	if (outlen + len > sizeof(out))
		flush_out();
	memcpy(out + outlen, msg, len);
	outlen += len;
}

static void ack(const struct nlmsghdr *req, int error, bool late)
{
	char buf[NLMSG_HDRLEN + sizeof(struct nlmsgerr)];
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	struct nlmsgerr *e = (struct nlmsgerr *)(buf + NLMSG_HDRLEN);

	memset(buf, 0, sizeof(buf));
	h->nlmsg_len = sizeof(buf);
	h->nlmsg_type = NLMSG_ERROR;
	h->nlmsg_flags = NLM_F_CAPPED;
	h->nlmsg_seq = req->nlmsg_seq;
	h->nlmsg_pid = 77;
	e->error = -error;
	e->msg = *req;
	put(buf, sizeof(buf), late);
}

static ssize_t find(const char *set, const uint8_t *key, uint32_t klen)
{
	for (size_t i = 0; i < F.n; i++)
		if (!strcmp(F.e[i].set, set) && F.e[i].klen == klen &&
		    !memcmp(F.e[i].key, key, klen))
			return (ssize_t)i;
	return -1;
}

/* Applies one NEWSETELEM/DELSETELEM; returns 0 or an errno. */
static int apply_elems(const struct nlmsghdr *nlh, bool add)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *el;
	int rc = 0;

	cr_assert_eq(nftnl_set_elems_nlmsg_parse(nlh, s), 0);
	const char *name = nftnl_set_get_str(s, NFTNL_SET_NAME);
	it = nftnl_set_elems_iter_create(s);
	while ((el = nftnl_set_elems_iter_next(it)) != NULL && rc == 0) {
		uint32_t klen;
		const void *k =
			nftnl_set_elem_get(el, NFTNL_SET_ELEM_KEY, &klen);
		ssize_t i = find(name, k, klen);
		if (add && i >= 0) {
			rc = EEXIST;
		} else if (add) {
			cr_assert_lt(F.n, MAXK);
			snprintf(F.e[F.n].set, sizeof(F.e[F.n].set), "%s",
				 name);
			memcpy(F.e[F.n].key, k, klen);
			F.e[F.n++].klen = klen;
		} else if (i < 0) {
			rc = ENOENT;
		} else {
			F.e[i] = F.e[--F.n];
		}
	}
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return rc;
}

static void dump_elems(const struct nlmsghdr *req)
{
	struct nftnl_set *q = nftnl_set_alloc();
	char buf[4096];

	cr_assert_eq(nftnl_set_elems_nlmsg_parse(req, q), 0);
	const char *name = nftnl_set_get_str(q, NFTNL_SET_NAME);
	for (size_t i = 0; i < F.n; i++) {
		if (strcmp(F.e[i].set, name))
			continue;
		struct nftnl_set *s = nftnl_set_alloc();
		struct nftnl_set_elem *el = nftnl_set_elem_alloc();
		nftnl_set_set_str(s, NFTNL_SET_TABLE, FW_TABLE);
		nftnl_set_set_str(s, NFTNL_SET_NAME, name);
		nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, F.e[i].key,
				   F.e[i].klen);
		nftnl_set_elem_add(s, el);
		struct nlmsghdr *h = nftnl_nlmsg_build_hdr(
			buf, NFT_MSG_NEWSETELEM, NFPROTO_INET, NLM_F_MULTI,
			req->nlmsg_seq);
		nftnl_set_elems_nlmsg_build_payload(h, s);
		h->nlmsg_pid = 77;
		put(h, h->nlmsg_len, false);
		nftnl_set_free(s);
	}
	struct nlmsghdr *d = (struct nlmsghdr *)buf;
	memset(d, 0, NLMSG_HDRLEN + 4);
	d->nlmsg_len = NLMSG_HDRLEN + 4;
	d->nlmsg_type = NLMSG_DONE;
	d->nlmsg_flags = NLM_F_MULTI;
	d->nlmsg_seq = req->nlmsg_seq;
	d->nlmsg_pid = 77;
	put(d, d->nlmsg_len, false);
	nftnl_set_free(q);
}

/* GETTABLE: the owned table (flags owner, owner port 4242), or EPERM
 * without privilege, or ENOENT. */
static void get_table(const struct nlmsghdr *req)
{
	char buf[1024] __attribute__((aligned(8)));

	if (F.no_privilege || !F.table_owned) {
		ack(req, F.no_privilege ? EPERM : ENOENT, false);
		return;
	}
	struct nftnl_table *t = nftnl_table_alloc();
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, FW_TABLE);
	nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, NFT_TABLE_F_OWNER);
	struct nlmsghdr *h = nftnl_nlmsg_build_hdr(
		buf, NFT_MSG_NEWTABLE, NFPROTO_INET, 0, req->nlmsg_seq);
	nftnl_table_nlmsg_build_payload(h, t);
	/* libnftnl builds no NFTA_TABLE_OWNER: add it as the kernel does. */
	mnl_attr_put_u32(h, NFTA_TABLE_OWNER, htonl(4242));
	h->nlmsg_pid = 77;
	put(h, h->nlmsg_len, false);
	nftnl_table_free(t);
	ack(req, 0, false);
}

ssize_t mnl_socket_sendto(const struct mnl_socket *nl, const void *req,
			  size_t siz)
{
	const struct nlmsghdr *msgs[8192];
	int nmsg = 0, err_at = -1, err = 0, txn;
	struct elem *snap = NULL;
	size_t snap_n = F.n;
	int len = (int)siz;

	(void)nl;
	/* Late ACKs of an earlier transaction come first. */
	if (F.late_len) {
		cr_assert_eq(send(F.fd[1], F.late, F.late_len, 0),
			     (ssize_t)F.late_len);
		F.late_len = 0;
		F.stale_sent++;
	}
	for (const struct nlmsghdr *h = req; mnl_nlmsg_ok(h, len);
	     h = mnl_nlmsg_next(h, &len))
		msgs[nmsg++] = h;
	cr_assert_gt(nmsg, 0);
	if ((msgs[0]->nlmsg_type & 0xff) == NFT_MSG_GETSETELEM &&
	    msgs[0]->nlmsg_type >> 8 == NFNL_SUBSYS_NFTABLES) {
		dump_elems(msgs[0]);
		flush_out();
		return (ssize_t)siz;
	}
	if ((msgs[0]->nlmsg_type & 0xff) == NFT_MSG_GETTABLE &&
	    msgs[0]->nlmsg_type >> 8 == NFNL_SUBSYS_NFTABLES) {
		get_table(msgs[0]);
		flush_out();
		return (ssize_t)siz;
	}
	cr_assert_eq(msgs[0]->nlmsg_type, NFNL_MSG_BATCH_BEGIN);
	cr_assert_eq(msgs[nmsg - 1]->nlmsg_type, NFNL_MSG_BATCH_END);
	txn = F.txn++;
	if (txn == F.batch_refuse_txn) {
		ack(msgs[0], EINVAL, false);
		flush_out();
		return (ssize_t)siz;
	}
	if (txn == F.enomem_txn) {
		ack(msgs[1], ENOMEM, false);
		flush_out();
		return (ssize_t)siz;
	}
	bool silent = txn == F.silent_txn;
	snap = malloc(sizeof(F.e[0]) * (F.n + 1));
	memcpy(snap, F.e, sizeof(F.e[0]) * F.n);
	int errs[8192];
	for (int i = 1; i < nmsg - 1; i++) {
		const struct nlmsghdr *h = msgs[i];
		int type = h->nlmsg_type & 0xff, e = 0;
		if (txn == F.refuse_txn && i - 1 == F.refuse_msg)
			e = F.refuse_errno;
		else if (type == NFT_MSG_NEWTABLE || type == NFT_MSG_DELTABLE)
			e = F.table_owned || F.no_privilege ? EPERM : 0;
		else if (type == NFT_MSG_NEWSETELEM)
			e = apply_elems(h, true);
		else if (type == NFT_MSG_DELSETELEM)
			e = apply_elems(h, false);
		errs[i] = e;
		if (e && err_at < 0)
			err_at = i, err = e;
	}
	if (err_at >= 0 || (silent && !F.silent_applies)) {
		memcpy(F.e, snap, sizeof(F.e[0]) * snap_n); /* abort */
		F.n = snap_n;
	}
	free(snap);
	for (int i = 1; i < nmsg - 1; i++)
		ack(msgs[i], errs[i], silent);
	flush_out();
	(void)err;
	return (ssize_t)siz;
}

/* --- tests ------------------------------------------------------------ */

static struct fw *fw;
static char err[512];
static uint32_t first_seq;

static void fake_reset(void)
{
	memset(&F, 0, sizeof(F));
	F.refuse_txn = F.silent_txn = F.batch_refuse_txn = F.enomem_txn = -1;
}

static struct fw *open_fw(enum fw_open_error *why)
{
	struct fw_snat snat = {.mode = FW_SNAT_MASQUERADE};
	struct fw_open_opts o = {
		.owner = true, .ack_wait_ms = 100, .first_seq = first_seq};
	enum fw_open_error w;

	return fw_open(&snat, &o, why ? why : &w, err, sizeof(err));
}

static void setup(void)
{
	fake_reset();
	fw = open_fw(NULL);
	cr_assert_not_null(fw, "%s", err);
}

static void teardown(void)
{
	fw_close(fw);
	fw = NULL;
}

#define NF 600
static struct fw_flow flows[NF];
static const struct fw_flow *fp[NF];
static enum fw_result res[NF];
static int errs_[NF];

static void make_flows(size_t n, int family)
{
	for (size_t i = 0; i < n; i++) {
		struct fw_flow *f = &flows[i];
		memset(f, 0, sizeof(*f));
		f->family = family;
		f->proto = IPPROTO_UDP;
		memset(f->saddr, 0x20, 16);
		memset(f->baddr, 0x30, 16);
		memset(f->daddr, 0x40, 16);
		f->sport = (uint16_t)(1000 + i);
		f->bport = (uint16_t)(20000 + i);
		f->dport = 53;
		f->mark = FW_MARK_TAG | (uint32_t)(i + 1);
		/* The longest comment the daemon writes. */
		f->comment = "assoc 16777215 session 18446744073709551615 "
			     "client [2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]"
			     ":65535 user a-rather-long-user-name-of-64-ch";
		fp[i] = f;
	}
}

static size_t count_set(const char *name)
{
	size_t c = 0;

	for (size_t i = 0; i < F.n; i++)
		c += strcmp(F.e[i].set, name) == 0;
	return c;
}

TestSuite(fw, .init = setup, .fini = teardown);

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(fw, add_and_count)
{
	uint64_t counts[FW_NSETS];

	make_flows(3, AF_INET);
	cr_assert_eq(
		fw_add(fw, fp, 3, FW_ELEM_ALL, res, errs_, err, sizeof(err)), 0,
		"%s", err);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(res[i], FW_DONE);
	cr_assert_eq(F.n, 12);
	cr_assert_eq(fw_count_elems(fw, counts), 0);
	for (int k = 0; k < FW_NSETS; k++)
		cr_assert_eq(counts[k], 3, "set %d: %llu", k,
			     (unsigned long long)counts[k]);
}

/* Three chunks (256 + 256 + 88); the kernel refuses the second because
 * of one message: the first and third are in, the second not at all;
 * the blamed flow is REFUSED with the kernel's errno, the rest of its
 * chunk NOT_DONE. */
Test(fw, chunk_refused_per_flow_results)
{
	make_flows(NF, AF_INET6);
	F.refuse_txn = 2;	   /* the install was transaction 0 */
	F.refuse_msg = 4 * 10 + 2; /* flow 256 + 10, its dnat element */
	F.refuse_errno = ENOSPC;
	cr_assert_eq(
		fw_add(fw, fp, NF, FW_ELEM_ALL, res, errs_, err, sizeof(err)),
		-1);
	for (size_t i = 0; i < NF; i++) {
		enum fw_result want = i < 256 || i >= 512 ? FW_DONE
				      : i == 266	  ? FW_REFUSED
							  : FW_NOT_DONE;
		cr_assert_eq(res[i], want, "flow %zu: %s", i,
			     fw_result_str(res[i]));
	}
	cr_assert_eq(errs_[266], ENOSPC);
	cr_assert_eq(count_set("bound6"), 256 + 88);
	cr_assert_eq(count_set("dnat6"), 256 + 88);
}

/* A transaction whose ACKs never come: UNKNOWN for every flow (it did
 * commit here).  Its ACKs (one an error) arrive just before the next
 * transaction's: they must not fail it. */
Test(fw, lost_acks_are_unknown_and_late_ones_stale)
{
	make_flows(4, AF_INET);
	F.silent_txn = 1;
	F.silent_applies = true;
	cr_assert_eq(
		fw_add(fw, fp, 2, FW_ELEM_ALL, res, errs_, err, sizeof(err)),
		-1);
	cr_assert_eq(res[0], FW_UNKNOWN);
	cr_assert_eq(res[1], FW_UNKNOWN);
	cr_assert_eq(count_set("bound4"), 2, "the transaction did commit");
	/* Make one of the late ACKs an error. */
	struct nlmsghdr *h = (struct nlmsghdr *)F.late;
	((struct nlmsgerr *)mnl_nlmsg_get_payload(h))->error = -EEXIST;
	cr_assert_eq(fw_add(fw, fp + 2, 2, FW_ELEM_ALL, res, errs_, err,
			    sizeof(err)),
		     0, "stale ACK failed the next batch: %s", err);
	cr_assert_eq(res[0], FW_DONE);
	cr_assert_eq(res[1], FW_DONE);
	cr_assert_eq(F.stale_sent, 1);
	cr_assert_geq(fw_get_stats(fw)->stale_acks, 8);
	cr_assert_eq(count_set("bound4"), 4);
}

Test(fw, lost_acks_not_applied)
{
	make_flows(2, AF_INET);
	F.silent_txn = 1;
	F.silent_applies = false;
	cr_assert_eq(
		fw_add(fw, fp, 2, FW_ELEM_ALL, res, errs_, err, sizeof(err)),
		-1);
	cr_assert_eq(res[0], FW_UNKNOWN);
	cr_assert_eq(count_set("bound4"), 0);
	cr_assert_eq(fw_get_stats(fw)->unanswered, 1);
	/* The removal path that follows an unknown setup: every element
	 * gone (ENOENT counts as gone), one element at a time. */
	cr_assert_eq(fw_del(fw, fp, 2, FW_ELEM_ALL, res, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(res[0], FW_DONE);
	cr_assert_eq(res[1], FW_DONE);
}

Test(fw, refused_batch_then_next_works)
{
	make_flows(2, AF_INET);
	F.batch_refuse_txn = 1;
	cr_assert_eq(
		fw_add(fw, fp, 2, FW_ELEM_ALL, res, errs_, err, sizeof(err)),
		-1);
	cr_assert_eq(res[0], FW_NOT_DONE);
	cr_assert_eq(res[1], FW_NOT_DONE);
	cr_assert_eq(
		fw_add(fw, fp, 2, FW_ELEM_ALL, res, errs_, err, sizeof(err)), 0,
		"%s", err);
	cr_assert_eq(count_set("bound4"), 2);
}

/* Deleting flows of which one element is gone already: every other
 * element still goes, and every flow reports DONE. */
Test(fw, delete_with_an_element_gone)
{
	make_flows(5, AF_INET);
	cr_assert_eq(
		fw_add(fw, fp, 5, FW_ELEM_ALL, res, errs_, err, sizeof(err)),
		0);
	cr_assert_eq(
		fw_del(fw, fp + 2, 1, FW_ELEM_RELAY, res, err, sizeof(err)), 0);
	cr_assert_eq(fw_del(fw, fp, 5, FW_ELEM_RELAY, res, err, sizeof(err)), 0,
		     "%s", err);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(res[i], FW_DONE);
	cr_assert_eq(count_set("dnat4"), 0);
	cr_assert_eq(count_set("bound4"), 5, "endpoints were not asked for");
}

/* A full chunk of IPv6 flows with the longest comments fits the batch
 * buffer (libmnl's contract: twice the limit). */
Test(fw, largest_chunk_fits)
{
	make_flows(FW_CHUNK, AF_INET6);
	cr_assert_eq(fw_add(fw, fp, FW_CHUNK, FW_ELEM_ALL, res, errs_, err,
			    sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(count_set("mark6"), FW_CHUNK);
}

Test(fw_open, owned_by_another_process)
{
	enum fw_open_error why = 0;
	struct fw *f;

	fake_reset();
	F.table_owned = true;
	f = open_fw(&why);
	cr_assert_null(f);
	cr_assert_eq(why, FW_OPEN_OWNED);
	cr_assert(strstr(err, "another socksgated owns table inet socksgate"),
		  "%s", err);
	cr_assert(strstr(err, "port 4242"), "%s", err);
}

/* EPERM without the privilege (e.g. root in a user namespace, where
 * capget() still shows CAP_NET_ADMIN): not blamed on another instance. */
Test(fw_open, no_privilege_is_not_another_instance)
{
	enum fw_open_error why = 0;

	fake_reset();
	F.no_privilege = true;
	cr_assert_null(open_fw(&why));
	cr_assert_eq(why, FW_OPEN_NO_PRIVILEGE);
	cr_assert(strstr(err, "CAP_NET_ADMIN"), "%s", err);
}

/* The kernel runs out of memory for a batch: one error, on the first
 * message, and no other answer.  Nobody is blamed, nothing waits for
 * the missing answers, and all may be retried. */
Test(fw, batch_wide_enomem)
{
	make_flows(3, AF_INET);
	F.enomem_txn = 1;
	int64_t t0 = now_ms();
	cr_assert_eq(
		fw_add(fw, fp, 3, FW_ELEM_ALL, res, errs_, err, sizeof(err)),
		-1);
	cr_assert_lt(now_ms() - t0, 50, "waited for answers that never come");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(res[i], FW_NOT_DONE, "flow %d: %s", i,
			     fw_result_str(res[i]));
	cr_assert_eq(count_set("bound4"), 0);
	cr_assert_eq(
		fw_add(fw, fp, 3, FW_ELEM_ALL, res, errs_, err, sizeof(err)), 0,
		"%s", err);
}

/* Sequence numbers wrap at 2^32 in the middle of a batch. */
Test(fw_wrap, batch_across_the_wrap)
{
	fake_reset();
	first_seq = 0xffffffffu - 6;
	fw = open_fw(NULL);
	first_seq = 0;
	cr_assert_not_null(fw, "%s", err);
	make_flows(8, AF_INET);
	for (int round = 0; round < 3; round++) {
		cr_assert_eq(fw_add(fw, fp, 8, FW_ELEM_ALL, res, errs_, err,
				    sizeof(err)),
			     0, "round %d: %s", round, err);
		cr_assert_eq(
			fw_del(fw, fp, 8, FW_ELEM_ALL, res, err, sizeof(err)),
			0, "round %d: %s", round, err);
	}
	cr_assert_eq(fw_get_stats(fw)->stale_acks, 0);
	fw_close(fw);
	fw = NULL;
}
