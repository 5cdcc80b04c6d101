/*
 * ct: see ct.h.
 */
#include "ct.h"
#include "grow.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

struct ct {
	struct nfct_handle *h;
};

struct ct *ct_open(char *err, size_t errlen)
{
	struct ct *ct = calloc(1, sizeof(*ct));

	if (ct == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ct->h = nfct_open(CONNTRACK, 0);
	if (ct->h == NULL) {
		snprintf(err, errlen, "conntrack netlink: %s", strerror(errno));
		free(ct);
		return NULL;
	}
	return ct;
}

void ct_close(struct ct *ct)
{
	if (ct == NULL)
		return;
	nfct_close(ct->h);
	free(ct);
}

static struct nf_conntrack *tuple_to_ct(const struct ct_tuple *t)
{
	struct nf_conntrack *c = nfct_new();

	if (c == NULL)
		return NULL;
	nfct_set_attr_u8(c, ATTR_L3PROTO, (uint8_t)t->family);
	if (t->family == AF_INET6) {
		nfct_set_attr(c, ATTR_IPV6_SRC, t->src);
		nfct_set_attr(c, ATTR_IPV6_DST, t->dst);
	} else {
		uint32_t s, d;
		memcpy(&s, t->src, 4);
		memcpy(&d, t->dst, 4);
		nfct_set_attr_u32(c, ATTR_IPV4_SRC, s);
		nfct_set_attr_u32(c, ATTR_IPV4_DST, d);
	}
	nfct_set_attr_u8(c, ATTR_L4PROTO, t->proto);
	nfct_set_attr_u16(c, ATTR_PORT_SRC, htons(t->sport));
	nfct_set_attr_u16(c, ATTR_PORT_DST, htons(t->dport));
	return c;
}

int ct_delete(struct ct *ct, const struct ct_tuple *t)
{
	struct nf_conntrack *c = tuple_to_ct(t);
	int rc;

	if (c == NULL)
		return -1;
	rc = nfct_query(ct->h, NFCT_Q_DESTROY, c);
	nfct_destroy(c);
	if (rc == 0)
		return 1;
	return errno == ENOENT ? 0 : -1;
}

struct collect {
	struct nf_conntrack **v;
	size_t n, cap;
	bool oom;
};

static int collect_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *c,
		      void *data)
{
	struct collect *col = data;

	(void)type;
	if (grow(&col->v, &col->cap, col->n + 1, sizeof(*col->v), 64) < 0) {
		col->oom = true;
		return NFCT_CB_CONTINUE;
	}
	col->v[col->n] = nfct_clone(c);
	if (col->v[col->n])
		col->n++;
	return NFCT_CB_CONTINUE;
}

/* Dumps the entries with our mark (both families) into col. */
static int dump_mark(struct ct *ct, uint32_t value, uint32_t mask,
		     struct collect *col)
{
	struct nfct_filter_dump *f = nfct_filter_dump_create();
	struct nfct_filter_dump_mark m = {.val = value, .mask = mask};
	int rc;

	if (f == NULL)
		return -1;
	nfct_filter_dump_set_attr(f, NFCT_FILTER_DUMP_MARK, &m);
	nfct_callback_register(ct->h, NFCT_T_ALL, collect_cb, col);
	rc = nfct_query(ct->h, NFCT_Q_DUMP_FILTER, f);
	nfct_callback_unregister(ct->h);
	nfct_filter_dump_destroy(f);
	return rc;
}

static void collect_free(struct collect *col)
{
	for (size_t i = 0; i < col->n; i++)
		nfct_destroy(col->v[i]);
	free(col->v);
}

int ct_purge_mark(struct ct *ct, uint32_t value, uint32_t mask)
{
	struct collect col = {0};
	int deleted = 0;

	if (dump_mark(ct, value, mask, &col) < 0) {
		collect_free(&col);
		return -1;
	}
	for (size_t i = 0; i < col.n; i++)
		if (nfct_query(ct->h, NFCT_Q_DESTROY, col.v[i]) == 0)
			deleted++;
	collect_free(&col);
	return deleted;
}

struct dump_ctx {
	ct_flow_cb cb;
	void *arg;
	int n;
};

static int dump_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *c,
		   void *data)
{
	struct dump_ctx *d = data;
	struct ct_flow f;

	(void)type;
	if (ct_flow_from_entry(c, CT_EV_DUMP, &f) == 0) {
		d->n++;
		d->cb(d->arg, &f);
	}
	return NFCT_CB_CONTINUE;
}

int ct_dump_mark(struct ct *ct, uint32_t value, uint32_t mask, ct_flow_cb cb,
		 void *arg)
{
	struct nfct_filter_dump *f = nfct_filter_dump_create();
	struct nfct_filter_dump_mark m = {.val = value, .mask = mask};
	struct dump_ctx d = {.cb = cb, .arg = arg};
	int rc;

	if (f == NULL)
		return -1;
	nfct_filter_dump_set_attr(f, NFCT_FILTER_DUMP_MARK, &m);
	nfct_callback_register(ct->h, NFCT_T_ALL, dump_cb, &d);
	rc = nfct_query(ct->h, NFCT_Q_DUMP_FILTER, f);
	nfct_callback_unregister(ct->h);
	nfct_filter_dump_destroy(f);
	return rc < 0 ? -1 : d.n;
}

static int get_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *c,
		  void *data)
{
	(void)type;
	ct_flow_from_entry(c, CT_EV_DUMP, data);
	return NFCT_CB_CONTINUE;
}

int ct_take(struct ct *ct, const struct ct_tuple *t, struct ct_flow *out)
{
	struct nf_conntrack *c = tuple_to_ct(t);
	int rc;

	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return -1;
	nfct_callback_register(ct->h, NFCT_T_ALL, get_cb, out);
	rc = nfct_query(ct->h, NFCT_Q_GET, c);
	nfct_callback_unregister(ct->h);
	if (rc < 0) {
		nfct_destroy(c);
		return errno == ENOENT ? 0 : -1;
	}
	rc = nfct_query(ct->h, NFCT_Q_DESTROY, c);
	nfct_destroy(c);
	if (rc == 0)
		return 1;
	return errno == ENOENT ? 0 : -1;
}

static int read_sysctl(const char *path)
{
	FILE *f = fopen(path, "re");
	int v = -1;

	if (f == NULL)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

int ct_events_setting(void)
{
	return read_sysctl("/proc/sys/net/netfilter/nf_conntrack_events");
}

int ct_enable_acct(void)
{
	FILE *f;

	if (read_sysctl("/proc/sys/net/netfilter/nf_conntrack_acct") == 1)
		return 0;
	f = fopen("/proc/sys/net/netfilter/nf_conntrack_acct", "we");
	if (f == NULL)
		return -1;
	if (fputs("1\n", f) < 0) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}
