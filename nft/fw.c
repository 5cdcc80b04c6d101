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

/* Flows per transaction: keeps one batch well under the socket's send
 * buffer; larger requests are split (each part still atomic). */
#define FW_CHUNK 256
/* Bytes a message may take: an IPv6 element with data and comment. */
#define FW_MSG_MAX 512
#define FW_ACK_WAIT_MS 2000

struct fw {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	struct fw_stats stats;
};

/* One batch being built: the buffer and, per message, the flow index it
 * belongs to (so a refused message can be blamed on its flow). */
struct fw_batch {
	char *buf;
	size_t cap;
	struct mnl_nlmsg_batch *b;
	uint32_t first_seq;
	size_t nmsg;
	size_t *owner; /* owner[i]: flow index of message i */
	size_t owner_cap;
};

static int batch_init(struct fw *fw, struct fw_batch *bt, size_t nmsg_hint)
{
	memset(bt, 0, sizeof(*bt));
	bt->cap = (nmsg_hint + 4) * FW_MSG_MAX + MNL_SOCKET_BUFFER_SIZE;
	bt->buf = malloc(bt->cap);
	bt->owner_cap = nmsg_hint + 4;
	bt->owner = malloc(bt->owner_cap * sizeof(size_t));
	if (bt->buf == NULL || bt->owner == NULL) {
		free(bt->buf);
		free(bt->owner);
		return -1;
	}
	bt->b = mnl_nlmsg_batch_start(bt->buf, bt->cap);
	nftnl_batch_begin(mnl_nlmsg_batch_current(bt->b), fw->seq++);
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
	if (mnl_nlmsg_batch_size(bt->b) + FW_MSG_MAX * 2 > bt->cap)
		return NULL;
	bt->owner[bt->nmsg++] = owner;
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(bt->b), type,
				     NFPROTO_INET, flags | NLM_F_ACK,
				     fw->seq++);
}

static void batch_next(struct fw_batch *bt)
{
	mnl_nlmsg_batch_next(bt->b);
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

/*
 * Sends the batch and reads one ACK per message.  failed[owner] is set
 * for every refused message (if failed is not NULL).  Returns 0 if all
 * were accepted, else -1 with the first error in err and errno.
 */
static int batch_commit(struct fw *fw, struct fw_batch *bt, bool *failed,
			char *err, size_t errlen)
{
	char rbuf[MNL_SOCKET_BUFFER_SIZE * 4];
	size_t acked = 0;
	int first_err = 0;
	ssize_t n;

	nftnl_batch_end(mnl_nlmsg_batch_current(bt->b), fw->seq++);
	mnl_nlmsg_batch_next(bt->b);
	fw->stats.transactions++;
	if (mnl_socket_sendto(fw->nl, mnl_nlmsg_batch_head(bt->b),
			      mnl_nlmsg_batch_size(bt->b)) < 0) {
		snprintf(err, errlen, "netlink send: %s", strerror(errno));
		return -1;
	}
	while (acked < bt->nmsg) {
		struct pollfd p = {.fd = mnl_socket_get_fd(fw->nl),
				   .events = POLLIN};
		n = recv(p.fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (poll(&p, 1, FW_ACK_WAIT_MS) <= 0) {
				snprintf(err, errlen,
					 "netlink: no answer from the kernel");
				errno = ETIMEDOUT;
				return -1;
			}
			continue;
		}
		if (n < 0) {
			snprintf(err, errlen, "netlink recv: %s",
				 strerror(errno));
			return -1;
		}
		int left = (int)n;
		for (struct nlmsghdr *nlh = (struct nlmsghdr *)rbuf;
		     mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			const struct nlmsgerr *e;
			uint32_t idx;

			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			e = mnl_nlmsg_get_payload(nlh);
			if (nlh->nlmsg_seq < bt->first_seq ||
			    nlh->nlmsg_seq >= bt->first_seq + bt->nmsg) {
				/* The batch itself was refused. */
				if (e->error != 0) {
					snprintf(err, errlen, "batch: %s %s",
						 strerror(-e->error),
						 ext_ack_msg(nlh));
					errno = -e->error;
					return -1;
				}
				continue;
			}
			idx = nlh->nlmsg_seq - bt->first_seq;
			acked++;
			if (e->error == 0)
				continue;
			fw->stats.errors++;
			if (failed)
				failed[bt->owner[idx]] = true;
			if (first_err == 0) {
				first_err = -e->error;
				snprintf(err, errlen, "%s%s%s",
					 strerror(first_err),
					 ext_ack_msg(nlh)[0] ? ": " : "",
					 ext_ack_msg(nlh));
			}
		}
	}
	if (first_err) {
		errno = first_err;
		return -1;
	}
	return 0;
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
	if (rc < 0 && errno == EPERM)
		snprintf(err + strlen(err), errlen - strlen(err),
			 " (is another socksgated running? table inet "
			 "%s is owned by a live process)",
			 FW_TABLE);
	goto out;
overflow:
	snprintf(err, errlen, "cannot build the table (out of memory)");
out:
	batch_free(&bt);
	nftnl_table_free(t0);
	nftnl_table_free(t);
	nftnl_obj_free(ctr);
	return rc;
}

struct fw *fw_open(const struct fw_snat *snat, bool owner, char *err,
		   size_t errlen)
{
	struct fw *fw = calloc(1, sizeof(*fw));
	int one = 1, big = 8 * 1024 * 1024;

	if (fw == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
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
	fw->seq = (uint32_t)time(NULL);
	if (fw_install(fw, snat, owner, err, errlen) < 0) {
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

/* Deletes one element in its own transaction.  0, also when it was gone
 * already; -1 on another error. */
static int del_one(struct fw *fw, enum fw_set_kind k, const struct fw_flow *f,
		   char *err, size_t errlen)
{
	struct nftnl_set *s = fw_build_elem(k, f);
	struct fw_batch bt;
	int rc = -1;

	if (s == NULL || batch_init(fw, &bt, 1) < 0) {
		nftnl_set_free(s);
		return -1;
	}
	if (BATCH_ADD(fw, &bt, NFT_MSG_DELSETELEM, 0, 0,
		      nftnl_set_elems_nlmsg_build_payload, s) == 0) {
		if (batch_commit(fw, &bt, NULL, err, errlen) == 0) {
			fw->stats.elements_deleted++;
			rc = 0;
		} else if (errno == ENOENT) {
			rc = 0;
		}
	}
	batch_free(&bt);
	nftnl_set_free(s);
	return rc;
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

static int fw_apply(struct fw *fw, const struct fw_flow *const *flows, size_t n,
		    unsigned what, bool add, bool *failed, char *err,
		    size_t errlen)
{
	struct fw_batch bt;
	int rc;

	if (batch_init(fw, &bt, n * FW_NSETS) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (batch_add_flow(fw, &bt, flows[i], what, add, i) < 0) {
			snprintf(err, errlen, "batch overflow");
			batch_free(&bt);
			return -1;
		}
	}
	rc = batch_commit(fw, &bt, failed, err, errlen);
	batch_free(&bt);
	return rc;
}

static size_t elems_per_flow(unsigned what)
{
	return (what & FW_ELEM_BOUND ? 1 : 0) + (what & FW_ELEM_RELAY ? 3 : 0);
}

int fw_add(struct fw *fw, const struct fw_flow *const *flows, size_t n,
	   unsigned what, bool *failed, char *err, size_t errlen)
{
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		failed[i] = false;
	for (size_t off = 0; off < n; off += FW_CHUNK) {
		size_t m = n - off < FW_CHUNK ? n - off : FW_CHUNK;
		if (fw_apply(fw, flows + off, m, what, true, failed + off, err,
			     errlen) < 0) {
			rc = -1;
			/* A refused batch added nothing: if no flow was
			 * blamed (send failure), they all failed. */
			bool any = false;
			for (size_t i = off; i < off + m; i++)
				any |= failed[i];
			for (size_t i = off; !any && i < off + m; i++)
				failed[i] = true;
		} else {
			fw->stats.elements_added += m * elems_per_flow(what);
		}
	}
	return rc;
}

int fw_del(struct fw *fw, const struct fw_flow *const *flows, size_t n,
	   unsigned what, char *err, size_t errlen)
{
	int rc = 0;

	for (size_t off = 0; off < n; off += FW_CHUNK) {
		size_t m = n - off < FW_CHUNK ? n - off : FW_CHUNK;
		if (fw_apply(fw, flows + off, m, what, false, NULL, err,
			     errlen) == 0) {
			fw->stats.elements_deleted += m * elems_per_flow(what);
			continue;
		}
		/* Some element was gone already: go one element at a time so
		 * every other one is still deleted. */
		for (size_t i = off; i < off + m; i++)
			for (int k = 0; k < FW_NSETS; k++)
				if (elem_wanted((enum fw_set_kind)k, what) &&
				    del_one(fw, (enum fw_set_kind)k, flows[i],
					    err, errlen) < 0)
					rc = -1;
	}
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
	uint32_t seq = fw->seq++;
	ssize_t n;
	int rc = -1;

	if (q == NULL || o == NULL)
		goto out;
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETOBJ, NFPROTO_INET,
				    NLM_F_ACK, seq);
	nftnl_obj_nlmsg_build_payload(nlh, q);
	if (mnl_socket_sendto(fw->nl, nlh, nlh->nlmsg_len) < 0)
		goto out;
	do {
		n = mnl_socket_recvfrom(fw->nl, buf, sizeof(buf));
		if (n <= 0)
			goto out;
		rc = mnl_cb_run(buf, (size_t)n, seq, fw->portid, counter_cb, o);
	} while (rc == MNL_CB_OK);
	if (rc < 0 || !nftnl_obj_is_set(o, NFTNL_OBJ_CTR_PKTS)) {
		rc = -1;
		goto out;
	}
	*packets = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS);
	*bytes = nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_BYTES);
	rc = 0;
out:
	nftnl_obj_free(q);
	nftnl_obj_free(o);
	return rc;
}

const struct fw_stats *fw_get_stats(const struct fw *fw)
{
	return &fw->stats;
}
