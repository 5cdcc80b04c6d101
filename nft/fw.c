/*
 * fw: see fw.h.  Messages are built by fw_build.c; this file owns the
 * socket, batches, ACK accounting and error mapping.
 */
#include "fw.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

/* Bytes a message may take: an IPv6 element with data and comment. */
#define FW_MSG_MAX 512
#define FW_ACK_WAIT_MS 2000

static int64_t fw_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct fw {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	unsigned ack_wait_ms;
	uint32_t set_size;
	struct fw_stats stats;
};

/* One batch being built: the buffer and, per message, the flow index it
 * belongs to (so a refused message can be blamed on its flow). */
struct fw_batch {
	char *buf;
	size_t limit; /* libmnl's batch limit; buf holds twice as much */
	struct mnl_nlmsg_batch *b;
	uint32_t begin_seq, first_seq, end_seq;
	size_t nmsg;
	size_t *owner; /* owner[i]: flow index of message i */
	size_t owner_cap;
};

static int batch_init(struct fw *fw, struct fw_batch *bt, size_t nmsg_hint)
{
	memset(bt, 0, sizeof(*bt));
	bt->limit = (nmsg_hint + 4) * FW_MSG_MAX + MNL_SOCKET_BUFFER_SIZE;
	/* libmnl's contract: the buffer is twice the limit, since the
	 * message that crosses the limit is still written into it. */
	bt->buf = malloc(bt->limit * 2);
	bt->owner_cap = nmsg_hint + 4;
	bt->owner = malloc(bt->owner_cap * sizeof(size_t));
	if (bt->buf)
		bt->b = mnl_nlmsg_batch_start(bt->buf, bt->limit);
	if (bt->buf == NULL || bt->owner == NULL || bt->b == NULL) {
		free(bt->buf);
		free(bt->owner);
		memset(bt, 0, sizeof(*bt));
		return -1;
	}
	bt->begin_seq = fw->seq++;
	nftnl_batch_begin(mnl_nlmsg_batch_current(bt->b), bt->begin_seq);
	mnl_nlmsg_batch_next(bt->b);
	bt->first_seq = fw->seq;
	return 0;
}

static void batch_free(struct fw_batch *bt)
{
	if (bt->b)
		mnl_nlmsg_batch_stop(bt->b);
	free(bt->buf);
	free(bt->owner);
	memset(bt, 0, sizeof(*bt));
}

/* Starts a message; the caller fills the payload then calls batch_next. */
static struct nlmsghdr *batch_msg(struct fw *fw, struct fw_batch *bt,
				  uint16_t type, uint16_t flags, size_t owner)
{
	if (bt->nmsg == bt->owner_cap) {
		size_t nc = bt->owner_cap * 2;
		size_t *no = realloc(bt->owner, nc * sizeof(size_t));
		if (no == NULL)
			return NULL;
		bt->owner = no;
		bt->owner_cap = nc;
	}
	/* Room for this message and the batch end, within the limit. */
	if (mnl_nlmsg_batch_size(bt->b) + FW_MSG_MAX * 2 > bt->limit)
		return NULL;
	bt->owner[bt->nmsg++] = owner;
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(bt->b), type,
				     NFPROTO_INET, flags | NLM_F_ACK,
				     fw->seq++);
}

static int batch_next(struct fw_batch *bt)
{
	/* false: the message crossed the limit (batch_msg prevents it). */
	return mnl_nlmsg_batch_next(bt->b) ? 0 : -1;
}

/* Extended ACK text of an error message, or "". */
static const char *ext_ack_msg(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t off, len = nlh->nlmsg_len;
	const struct nlattr *a;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return "";
	off = NLMSG_HDRLEN + sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	while (off + sizeof(struct nlattr) <= len) {
		a = (const struct nlattr *)((const char *)nlh + off);
		if (a->nla_len < sizeof(*a) || off + a->nla_len > len)
			break;
		if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG)
			return (const char *)mnl_attr_get_payload(a);
		off += NLA_ALIGN(a->nla_len);
	}
	return "";
}

/* Reads and drops whatever the socket holds (answers to a transaction we
 * stopped listening to), so that they cannot be taken for the next one's.
 * Transactions complete inside sendmsg(), so everything is there. */
static void drain(struct fw *fw)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int fd = mnl_socket_get_fd(fw->nl);

	for (int i = 0; i < 4096; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != ENOBUFS)
			return; /* EAGAIN: empty */
	}
}

/* Receives one datagram, waiting at most until deadline (ms, monotonic).
 * Returns its length, or -1 with errno (ETIMEDOUT at the deadline). */
static ssize_t recv_until(struct fw *fw, void *buf, size_t cap,
			  int64_t deadline)
{
	struct pollfd p = {.fd = mnl_socket_get_fd(fw->nl), .events = POLLIN};

	for (;;) {
		ssize_t n = recv(p.fd, buf, cap, MSG_DONTWAIT);
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			return n;
		int64_t left = deadline - fw_now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return -1;
	}
}

/* Result of one transaction, per message. */
struct commit_out {
	enum fw_result *res; /* per flow (owner index); may be NULL */
	int *errnos;	     /* per flow; may be NULL */
};

static void set_all(const struct fw_batch *bt, struct commit_out *o,
		    enum fw_result r, int e)
{
	for (size_t i = 0; o && i < bt->nmsg; i++) {
		if (o->res && o->res[bt->owner[i]] != FW_REFUSED)
			o->res[bt->owner[i]] = r;
		if (o->errnos && o->res && o->res[bt->owner[i]] != FW_REFUSED)
			o->errnos[bt->owner[i]] = e;
	}
}

/*
 * Sends the batch and reads one ACK per message.  Per flow (o->res):
 * FW_DONE when every message was accepted (the transaction committed);
 * FW_REFUSED for a flow whose message the kernel refused and FW_NOT_DONE
 * for the others (the transaction was aborted); FW_UNKNOWN for every flow
 * when the answers did not all come and none was an error.  Returns 0
 * if committed, else -1 with the first error in err and errno.
 */
static int batch_commit(struct fw *fw, struct fw_batch *bt,
			struct commit_out *o, char *err, size_t errlen)
{
	char rbuf[MNL_SOCKET_BUFFER_SIZE * 4];
	size_t acked = 0;
	int first_err = 0, rc = -1;
	int64_t deadline;

	for (size_t i = 0; o && o->res && i < bt->nmsg; i++)
		o->res[bt->owner[i]] = FW_DONE;
	bt->end_seq = fw->seq++;
	nftnl_batch_end(mnl_nlmsg_batch_current(bt->b), bt->end_seq);
	if (batch_next(bt) < 0) {
		snprintf(err, errlen, "batch overflow");
		set_all(bt, o, FW_NOT_DONE, ENOSPC);
		errno = ENOSPC;
		return -1;
	}
	fw->stats.transactions++;
	if (mnl_socket_sendto(fw->nl, mnl_nlmsg_batch_head(bt->b),
			      mnl_nlmsg_batch_size(bt->b)) < 0) {
		int e = errno;
		snprintf(err, errlen, "netlink send: %s", strerror(e));
		/* A failed sendmsg() delivered nothing. */
		set_all(bt, o, FW_NOT_DONE, e);
		drain(fw);
		errno = e;
		return -1;
	}
	deadline = fw_now_ms() + fw->ack_wait_ms;
	while (acked < bt->nmsg) {
		/* The kernel answers inside sendmsg(): once an error was
		 * seen, an answer that is not queued will not come (the
		 * kernel stopped answering the batch, e.g. ENOMEM on its
		 * first message): do not wait for it. */
		ssize_t n = first_err ? recv(mnl_socket_get_fd(fw->nl), rbuf,
					     sizeof(rbuf), MSG_DONTWAIT)
				      : recv_until(fw, rbuf, sizeof(rbuf),
						   deadline);
		if (n < 0 && first_err &&
		    (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* Aborted with answers missing: the blame cannot be
			 * trusted (a batch-wide error lands on the first
			 * message); nothing applied, all may be retried. */
			for (size_t i = 0; o && o->res && i < bt->nmsg; i++)
				o->res[bt->owner[i]] = FW_NOT_DONE;
			set_all(bt, o, FW_NOT_DONE, first_err);
			errno = first_err;
			return -1;
		}
		if (n < 0) {
			int e = errno;
			snprintf(err, errlen, "netlink: %s",
				 e == ETIMEDOUT ? "no answer from the kernel"
						: strerror(e));
			fw->stats.unanswered++;
			/* An error seen already means the transaction was
			 * aborted; otherwise it may have committed. */
			set_all(bt, o, first_err ? FW_NOT_DONE : FW_UNKNOWN,
				first_err ? first_err : e);
			drain(fw);
			errno = first_err ? first_err : e;
			return -1;
		}
		int left = (int)n;
		for (struct nlmsghdr *nlh = (struct nlmsghdr *)rbuf;
		     mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			const struct nlmsgerr *e;
			uint32_t idx;

			if (nlh->nlmsg_type != NLMSG_ERROR ||
			    nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(*e))
				continue;
			e = mnl_nlmsg_get_payload(nlh);
			if (nlh->nlmsg_seq == bt->begin_seq ||
			    nlh->nlmsg_seq == bt->end_seq) {
				if (e->error == 0)
					continue;
				/* The batch itself was refused: nothing
				 * of it applies. */
				snprintf(err, errlen, "batch: %s %s",
					 strerror(-e->error), ext_ack_msg(nlh));
				set_all(bt, o, FW_NOT_DONE, -e->error);
				drain(fw);
				errno = -e->error;
				return -1;
			}
			/* Modulo 2^32: sequence numbers wrap. */
			idx = nlh->nlmsg_seq - bt->first_seq;
			if (idx >= bt->nmsg) {
				fw->stats.stale_acks++;
				continue;
			}
			acked++;
			if (e->error == 0)
				continue;
			fw->stats.errors++;
			if (o && o->res)
				o->res[bt->owner[idx]] = FW_REFUSED;
			if (o && o->errnos)
				o->errnos[bt->owner[idx]] = -e->error;
			if (first_err == 0) {
				first_err = -e->error;
				snprintf(err, errlen, "%s%s%s",
					 strerror(first_err),
					 ext_ack_msg(nlh)[0] ? ": " : "",
					 ext_ack_msg(nlh));
			}
		}
	}
	drain(fw);
	if (first_err) {
		/* Aborted: the flows not blamed were not applied either. */
		for (size_t i = 0; o && o->res && i < bt->nmsg; i++)
			if (o->res[bt->owner[i]] == FW_DONE) {
				o->res[bt->owner[i]] = FW_NOT_DONE;
				if (o->errnos)
					o->errnos[bt->owner[i]] = first_err;
			}
		errno = first_err;
	} else {
		rc = 0;
	}
	return rc;
}

/* Appends a message carrying one object; returns -1 on overflow. */
#define BATCH_ADD(fw, bt, type, flags, owner, build_payload, obj)              \
	({                                                                     \
		struct nlmsghdr *nlh_ = batch_msg(fw, bt, type, flags, owner); \
		if (nlh_) {                                                    \
			build_payload(nlh_, obj);                              \
			batch_next(bt);                                        \
		}                                                              \
		nlh_ ? 0 : -1;                                                 \
	})

static int batch_add_rules(struct fw *fw, struct fw_batch *bt,
			   enum fw_chain_kind k, const struct fw_snat *snat)
{
	static const int fams[] = {AF_INET, AF_INET6};
	int rc = 0;

	for (size_t f = 0; f < 2; f++) {
		struct nftnl_rule *rules[FW_MAX_RULES];
		size_t n =
			fw_build_rules(k, fams[f], snat, rules, FW_MAX_RULES);
		for (size_t i = 0; i < n; i++) {
			if (rules[i] == NULL)
				rc = -1;
			else if (BATCH_ADD(fw, bt, NFT_MSG_NEWRULE,
					   NLM_F_CREATE | NLM_F_APPEND, 0,
					   nftnl_rule_nlmsg_build_payload,
					   rules[i]) < 0)
				rc = -1;
			nftnl_rule_free(rules[i]);
		}
	}
	return rc;
}

/* The whole table in one transaction (see fw_open). */
static int fw_install(struct fw *fw, const struct fw_snat *snat, bool owner,
		      char *err, size_t errlen)
{
	static const int fams[] = {AF_INET, AF_INET6};
	struct fw_batch bt;
	struct nftnl_table *t0 = fw_build_table(false),
			   *t = fw_build_table(owner);
	struct nftnl_obj *ctr = fw_build_counter();
	int rc = -1;

	if (batch_init(fw, &bt, 64) < 0 || !t0 || !t || !ctr) {
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		goto out;
	}
	/* Create-then-delete makes the delete succeed whether or not a
	 * leftover table exists; the kernel refuses both if a live process
	 * owns it. */
	if (BATCH_ADD(fw, &bt, NFT_MSG_NEWTABLE, NLM_F_CREATE, 0,
		      nftnl_table_nlmsg_build_payload, t0) < 0 ||
	    BATCH_ADD(fw, &bt, NFT_MSG_DELTABLE, 0, 0,
		      nftnl_table_nlmsg_build_payload, t0) < 0 ||
	    BATCH_ADD(fw, &bt, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, 0,
		      nftnl_table_nlmsg_build_payload, t) < 0 ||
	    BATCH_ADD(fw, &bt, NFT_MSG_NEWOBJ, NLM_F_CREATE | NLM_F_EXCL, 0,
		      nftnl_obj_nlmsg_build_payload, ctr) < 0)
		goto overflow;
	for (int k = 0; k < FW_NSETS; k++) {
		for (size_t f = 0; f < 2; f++) {
			struct nftnl_set *s =
				fw_build_set((enum fw_set_kind)k, fams[f]);
			if (s && fw->set_size)
				nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE,
						  fw->set_size);
			int r = s ? BATCH_ADD(fw, &bt, NFT_MSG_NEWSET,
					      NLM_F_CREATE | NLM_F_EXCL, 0,
					      nftnl_set_nlmsg_build_payload, s)
				  : -1;
			nftnl_set_free(s);
			if (r < 0)
				goto overflow;
		}
	}
	for (int k = FW_CHAIN_GUARD; k <= FW_CHAIN_POST; k++) {
		struct nftnl_chain *c = fw_build_chain((enum fw_chain_kind)k);
		int r = c ? BATCH_ADD(fw, &bt, NFT_MSG_NEWCHAIN,
				      NLM_F_CREATE | NLM_F_EXCL, 0,
				      nftnl_chain_nlmsg_build_payload, c)
			  : -1;
		nftnl_chain_free(c);
		if (r < 0 ||
		    batch_add_rules(fw, &bt, (enum fw_chain_kind)k, snat) < 0)
			goto overflow;
	}
	rc = batch_commit(fw, &bt, NULL, err, errlen);
	goto out;
overflow:
	snprintf(err, errlen, "cannot build the table (out of memory)");
	errno = ENOMEM;
out:
	batch_free(&bt);
	nftnl_table_free(t0);
	nftnl_table_free(t);
	nftnl_obj_free(ctr);
	return rc;
}

static int table_owner(struct fw *fw, uint32_t *portid);

struct fw *fw_open(const struct fw_snat *snat, const struct fw_open_opts *o,
		   enum fw_open_error *why, char *err, size_t errlen)
{
	struct fw *fw = calloc(1, sizeof(*fw));
	int one = 1, big = 8 * 1024 * 1024;

	*why = FW_OPEN_UNAVAILABLE;
	if (fw == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fw->ack_wait_ms = o->ack_wait_ms ? o->ack_wait_ms : FW_ACK_WAIT_MS;
	fw->set_size = o->set_size;
	fw->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (fw->nl == NULL) {
		snprintf(err, errlen, "netlink socket: %s", strerror(errno));
		free(fw);
		return NULL;
	}
	if (mnl_socket_bind(fw->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "netlink bind: %s", strerror(errno));
		fw_close(fw);
		return NULL;
	}
	mnl_socket_setsockopt(fw->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(fw->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	/* Room for the ACKs of large batches, and for large batches. */
	setsockopt(mnl_socket_get_fd(fw->nl), SOL_SOCKET, SO_RCVBUFFORCE, &big,
		   sizeof(big));
	setsockopt(mnl_socket_get_fd(fw->nl), SOL_SOCKET, SO_SNDBUFFORCE, &big,
		   sizeof(big));
	fw->portid = mnl_socket_get_portid(fw->nl);
	fw->seq = o->first_seq ? o->first_seq : (uint32_t)time(NULL);
	if (fw_install(fw, snat, o->owner, err, errlen) < 0) {
		uint32_t owner = 0;
		/* EPERM twice over: without CAP_NET_ADMIN over this network
		 * namespace (even root in a user namespace), or because a
		 * live process owns the table.  Asking for the table tells
		 * them apart: only the second may read it. */
		if (errno == EPERM && table_owner(fw, &owner) == 1) {
			*why = FW_OPEN_OWNED;
			snprintf(err, errlen,
				 "another socksgated owns table inet %s "
				 "(netlink "
				 "port %u, normally its pid): the kernel "
				 "refused "
				 "to replace it",
				 FW_TABLE, owner);
		} else if (errno == EPERM) {
			*why = FW_OPEN_NO_PRIVILEGE;
			snprintf(
				err, errlen,
				"no CAP_NET_ADMIN over this network namespace: "
				"socksgated must run as root or with "
				"CAP_NET_ADMIN to install relays");
		}
		fw_close(fw);
		return NULL;
	}
	return fw;
}

void fw_close(struct fw *fw)
{
	if (fw == NULL)
		return;
	if (fw->nl)
		mnl_socket_close(fw->nl);
	free(fw);
}

int fw_set_snat(struct fw *fw, const struct fw_snat *snat, char *err,
		size_t errlen)
{
	struct fw_batch bt;
	struct nftnl_rule *flush = nftnl_rule_alloc();
	int rc = -1;

	if (flush == NULL || batch_init(fw, &bt, 8) < 0) {
		nftnl_rule_free(flush);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* A DELRULE naming only the chain flushes it. */
	nftnl_rule_set_u32(flush, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(flush, NFTNL_RULE_TABLE, FW_TABLE);
	nftnl_rule_set_str(flush, NFTNL_RULE_CHAIN, "post");
	if (BATCH_ADD(fw, &bt, NFT_MSG_DELRULE, 0, 0,
		      nftnl_rule_nlmsg_build_payload, flush) == 0 &&
	    batch_add_rules(fw, &bt, FW_CHAIN_POST, snat) == 0)
		rc = batch_commit(fw, &bt, NULL, err, errlen);
	else
		snprintf(err, errlen, "out of memory");
	batch_free(&bt);
	nftnl_rule_free(flush);
	return rc;
}

/* Whether set k holds one of the elements `what` names. */
static bool elem_wanted(enum fw_set_kind k, unsigned what)
{
	return what & (k == FW_SET_BOUND ? FW_ELEM_BOUND : FW_ELEM_RELAY);
}

/* Deletes one element in its own transaction: FW_DONE also when it was
 * gone already. */
static enum fw_result del_one(struct fw *fw, enum fw_set_kind k,
			      const struct fw_flow *f, char *err, size_t errlen)
{
	struct nftnl_set *s = fw_build_elem(k, f);
	enum fw_result r = FW_NOT_DONE;
	struct commit_out o = {.res = &r};
	struct fw_batch bt;

	if (s == NULL || batch_init(fw, &bt, 1) < 0) {
		nftnl_set_free(s);
		snprintf(err, errlen, "out of memory");
		return FW_NOT_DONE;
	}
	if (BATCH_ADD(fw, &bt, NFT_MSG_DELSETELEM, 0, 0,
		      nftnl_set_elems_nlmsg_build_payload, s) == 0) {
		if (batch_commit(fw, &bt, &o, err, errlen) == 0)
			fw->stats.elements_deleted++;
		else if (r == FW_REFUSED && errno == ENOENT)
			r = FW_DONE;
	}
	batch_free(&bt);
	nftnl_set_free(s);
	return r;
}

/* Appends the element messages of one flow. */
static int batch_add_flow(struct fw *fw, struct fw_batch *bt,
			  const struct fw_flow *f, unsigned what, bool add,
			  size_t owner)
{
	uint16_t type = add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM;
	uint16_t flags = add ? NLM_F_CREATE | NLM_F_EXCL : 0;

	for (int k = 0; k < FW_NSETS; k++) {
		if (!elem_wanted((enum fw_set_kind)k, what))
			continue;
		struct nftnl_set *s = fw_build_elem((enum fw_set_kind)k, f);
		int r = s ? BATCH_ADD(fw, bt, type, flags, owner,
				      nftnl_set_elems_nlmsg_build_payload, s)
			  : -1;
		nftnl_set_free(s);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* One transaction for flows[0..n) (n <= FW_CHUNK). */
static int fw_apply(struct fw *fw, const struct fw_flow *const *flows, size_t n,
		    unsigned what, bool add, struct commit_out *o, char *err,
		    size_t errlen)
{
	struct fw_batch bt;
	int rc;

	if (batch_init(fw, &bt, n * FW_NSETS) < 0) {
		snprintf(err, errlen, "out of memory");
		for (size_t i = 0; i < n; i++) {
			o->res[i] = FW_NOT_DONE;
			if (o->errnos)
				o->errnos[i] = ENOMEM;
		}
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (batch_add_flow(fw, &bt, flows[i], what, add, i) < 0) {
			snprintf(err, errlen, "cannot build the batch");
			for (size_t j = 0; j < n; j++) {
				o->res[j] = FW_NOT_DONE;
				if (o->errnos)
					o->errnos[j] = ENOMEM;
			}
			batch_free(&bt);
			return -1;
		}
	}
	rc = batch_commit(fw, &bt, o, err, errlen);
	batch_free(&bt);
	return rc;
}

static size_t elems_per_flow(unsigned what)
{
	return (what & FW_ELEM_BOUND ? 1 : 0) + (what & FW_ELEM_RELAY ? 3 : 0);
}

int fw_add(struct fw *fw, const struct fw_flow *const *flows, size_t n,
	   unsigned what, enum fw_result *res, int *errnos, char *err,
	   size_t errlen)
{
	int rc = 0;

	for (size_t off = 0; off < n; off += FW_CHUNK) {
		size_t m = n - off < FW_CHUNK ? n - off : FW_CHUNK;
		struct commit_out o = {.res = res + off,
				       .errnos = errnos ? errnos + off : NULL};
		if (fw_apply(fw, flows + off, m, what, true, &o, err, errlen) <
		    0)
			rc = -1;
		else
			fw->stats.elements_added += m * elems_per_flow(what);
	}
	return rc;
}

int fw_del(struct fw *fw, const struct fw_flow *const *flows, size_t n,
	   unsigned what, enum fw_result *res, char *err, size_t errlen)
{
	int rc = 0;

	for (size_t off = 0; off < n; off += FW_CHUNK) {
		size_t m = n - off < FW_CHUNK ? n - off : FW_CHUNK;
		struct commit_out o = {.res = res + off};
		if (fw_apply(fw, flows + off, m, what, false, &o, err,
			     errlen) == 0) {
			fw->stats.elements_deleted += m * elems_per_flow(what);
			continue;
		}
		/* Some element was gone already, or no answer came: go one
		 * element at a time so every other one is still deleted and
		 * each flow's outcome is known. */
		for (size_t i = off; i < off + m; i++) {
			res[i] = FW_DONE;
			for (int k = 0; k < FW_NSETS; k++) {
				if (!elem_wanted((enum fw_set_kind)k, what))
					continue;
				enum fw_result r =
					del_one(fw, (enum fw_set_kind)k,
						flows[i], err, errlen);
				if (r != FW_DONE)
					res[i] = r;
			}
			if (res[i] != FW_DONE)
				rc = -1;
		}
	}
	return rc;
}

/* Sends one request and runs cb over its answers until the DONE/ACK, with
 * a bounded wait.  Returns 0 or -1. */
static int query(struct fw *fw, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE * 4];
	uint32_t seq = nlh->nlmsg_seq;
	int64_t deadline;
	int rc;

	if (mnl_socket_sendto(fw->nl, nlh, nlh->nlmsg_len) < 0)
		return -1;
	deadline = fw_now_ms() + fw->ack_wait_ms;
	do {
		ssize_t n = recv_until(fw, buf, sizeof(buf), deadline);
		if (n <= 0) {
			int e = n == 0 ? EIO : errno;
			drain(fw);
			errno = e;
			return -1;
		}
		/* Answers to an earlier request (a timed-out one) are not
		 * ours: mnl_cb_run() rejects them by sequence number, so
		 * skip them here instead. */
		const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
		if (mnl_nlmsg_ok(h, (int)n) && h->nlmsg_seq != seq) {
			fw->stats.stale_acks++;
			rc = MNL_CB_OK;
			continue;
		}
		rc = mnl_cb_run(buf, (size_t)n, seq, fw->portid, cb, data);
	} while (rc == MNL_CB_OK);
	if (rc < 0) {
		int e = errno;
		drain(fw);
		errno = e;
		return -1;
	}
	return 0;
}

static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_table *t = data;

	if (nftnl_table_nlmsg_parse(nlh, t) < 0)
		return MNL_CB_ERROR;
	return MNL_CB_OK;
}

/* 1 if table inet socksgate exists and a process owns it (*portid: its
 * netlink port), 0 if it exists unowned, -1 with errno (EPERM: we may not
 * read it; ENOENT: no such table). */
static int table_owner(struct fw *fw, uint32_t *portid)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_table *q = fw_build_table(false), *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;
	int rc = -1;

	if (q == NULL || t == NULL)
		goto out;
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET,
				    NLM_F_ACK, fw->seq++);
	nftnl_table_nlmsg_build_payload(nlh, q);
	if (query(fw, nlh, table_cb, t) < 0)
		goto out;
	rc = 0;
	if (nftnl_table_is_set(t, NFTNL_TABLE_FLAGS) &&
	    (nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS) & NFT_TABLE_F_OWNER)) {
		rc = 1;
		*portid = nftnl_table_is_set(t, NFTNL_TABLE_OWNER)
				  ? nftnl_table_get_u32(t, NFTNL_TABLE_OWNER)
				  : 0;
	}
out:
	nftnl_table_free(q);
	nftnl_table_free(t);
	return rc;
}

static int counter_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_obj *o = data;

	if (nftnl_obj_nlmsg_parse(nlh, o) < 0)
		return MNL_CB_ERROR;
	return MNL_CB_OK;
}

int fw_dropped(struct fw *fw, uint64_t *packets, uint64_t *bytes)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_obj *q = fw_build_counter(), *o = nftnl_obj_alloc();
	struct nlmsghdr *nlh;
	int rc = -1;

	if (q == NULL || o == NULL)
		goto out;
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETOBJ, NFPROTO_INET,
				    NLM_F_ACK, fw->seq++);
	nftnl_obj_nlmsg_build_payload(nlh, q);
	if (query(fw, nlh, counter_cb, o) < 0 ||
	    !nftnl_obj_is_set(o, NFTNL_OBJ_CTR_PKTS))
		goto out;
	*packets = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS);
	*bytes = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_BYTES);
	rc = 0;
out:
	nftnl_obj_free(q);
	nftnl_obj_free(o);
	return rc;
}

static int count_cb(const struct nlmsghdr *nlh, void *data)
{
	uint64_t *n = data;
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;

	if (s == NULL)
		return MNL_CB_ERROR;
	if (nftnl_set_elems_nlmsg_parse(nlh, s) < 0) {
		nftnl_set_free(s);
		return MNL_CB_ERROR;
	}
	it = nftnl_set_elems_iter_create(s);
	while (it && nftnl_set_elems_iter_next(it))
		(*n)++;
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return MNL_CB_OK;
}

int fw_count_elems(struct fw *fw, uint64_t counts[FW_NSETS])
{
	static const int fams[] = {AF_INET, AF_INET6};
	char buf[MNL_SOCKET_BUFFER_SIZE];

	for (int k = 0; k < FW_NSETS; k++) {
		counts[k] = 0;
		for (size_t f = 0; f < 2; f++) {
			struct nftnl_set *s = nftnl_set_alloc();
			struct nlmsghdr *nlh;
			if (s == NULL)
				return -1;
			nftnl_set_set_str(s, NFTNL_SET_TABLE, FW_TABLE);
			nftnl_set_set_str(
				s, NFTNL_SET_NAME,
				fw_set_name((enum fw_set_kind)k, fams[f]));
			nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM,
						    NFPROTO_INET, NLM_F_DUMP,
						    fw->seq++);
			nftnl_set_elems_nlmsg_build_payload(nlh, s);
			nftnl_set_free(s);
			if (query(fw, nlh, count_cb, &counts[k]) < 0)
				return -1;
		}
	}
	return 0;
}

static int ctr_expr_cb(struct nftnl_expr *e, void *data)
{
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (name && strcmp(name, "counter") == 0)
		*(uint64_t *)data =
			nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
	return 0;
}

struct elem_ctr {
	uint64_t packets;
	bool found;
};

static int elem_ctr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct elem_ctr *c = data;
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;

	if (s == NULL)
		return MNL_CB_ERROR;
	if (nftnl_set_elems_nlmsg_parse(nlh, s) < 0) {
		nftnl_set_free(s);
		return MNL_CB_ERROR;
	}
	it = nftnl_set_elems_iter_create(s);
	e = it ? nftnl_set_elems_iter_next(it) : NULL;
	if (e) {
		c->found = true;
		nftnl_set_elem_expr_foreach(e, ctr_expr_cb, &c->packets);
	}
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
	return MNL_CB_OK;
}

int fw_elem_packets(struct fw *fw, const struct fw_flow *f, uint64_t *packets)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_set *s = fw_build_elem_key(FW_SET_DNAT, f);
	struct elem_ctr c = {0};
	struct nlmsghdr *nlh;

	if (s == NULL) {
		errno = ENOMEM;
		return -1;
	}
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET,
				    NLM_F_ACK, fw->seq++);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	if (query(fw, nlh, elem_ctr_cb, &c) < 0)
		return -1;
	if (!c.found) {
		errno = ENOENT;
		return -1;
	}
	*packets = c.packets;
	return 0;
}

const struct fw_stats *fw_get_stats(const struct fw *fw)
{
	return &fw->stats;
}

const char *fw_result_str(enum fw_result r)
{
	switch (r) {
	case FW_DONE:
		return "done";
	case FW_REFUSED:
		return "refused";
	case FW_NOT_DONE:
		return "not done";
	case FW_UNKNOWN:
		return "unknown";
	}
	return "?";
}
