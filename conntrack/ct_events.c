/*
 * ct_events: conntrack event subscription (NEW, UPDATE, DESTROY), filtered
 * in the kernel to entries carrying our mark, read without blocking.
 *
 * Event overrun: when the kernel cannot queue an event (the socket's
 * receive buffer is full) recv() fails with ENOBUFS and the events are
 * lost.  We then double the buffer (up to CT_RCVBUF_MAX) and report
 * CT_OVERRUN; the caller resynchronises from a dump (conntrack-tools
 * does the same in src/ctnl.c).
 *
 * Must not: include libev or daemon headers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include "ct.h"

#define CT_RCVBUF_MAX (64 * 1024 * 1024)

struct ct_events {
	struct nfct_handle *h;
	int asked;  /* the size we asked for */
	int rcvbuf; /* what the kernel reports (it doubles the request) */
	ct_flow_cb cb;
	void *arg;
};

static int event_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *c,
		    void *data)
{
	struct ct_events *e = data;
	struct ct_flow f;
	enum ct_event_type t = type == NFCT_T_NEW	? CT_EV_NEW
			       : type == NFCT_T_DESTROY ? CT_EV_DESTROY
							: CT_EV_UPDATE;

	if (e->cb && ct_flow_from_entry(c, t, &f) == 0)
		e->cb(e->arg, &f);
	return NFCT_CB_CONTINUE;
}

static void set_rcvbuf(struct ct_events *e, int size)
{
	int fd = nfct_fd(e->h);
	socklen_t l = sizeof(e->rcvbuf);

	e->asked = size;
	/* FORCE works beyond rmem_max for a privileged daemon. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &e->rcvbuf, &l) < 0)
		e->rcvbuf = size;
}

struct ct_events *ct_events_open(uint32_t value, uint32_t mask, int rcvbuf,
				 char *err, size_t errlen)
{
	struct ct_events *e = calloc(1, sizeof(*e));
	struct nfct_filter *f;
	struct nfct_filter_dump_mark m = {.val = value, .mask = mask};

	if (e == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->h = nfct_open(CONNTRACK, NF_NETLINK_CONNTRACK_NEW |
					    NF_NETLINK_CONNTRACK_UPDATE |
					    NF_NETLINK_CONNTRACK_DESTROY);
	if (e->h == NULL) {
		snprintf(err, errlen, "conntrack events: %s", strerror(errno));
		free(e);
		return NULL;
	}
	f = nfct_filter_create();
	if (f == NULL) {
		snprintf(err, errlen, "out of memory");
		ct_events_close(e);
		return NULL;
	}
	nfct_filter_add_attr(f, NFCT_FILTER_MARK, &m);
	if (nfct_filter_attach(nfct_fd(e->h), f) < 0) {
		snprintf(err, errlen, "conntrack event filter: %s",
			 strerror(errno));
		nfct_filter_destroy(f);
		ct_events_close(e);
		return NULL;
	}
	nfct_filter_destroy(f);
	set_rcvbuf(e, rcvbuf > 0 ? rcvbuf : 4 * 1024 * 1024);
	fcntl(nfct_fd(e->h), F_SETFL,
	      fcntl(nfct_fd(e->h), F_GETFL) | O_NONBLOCK);
	nfct_callback_register(e->h, NFCT_T_ALL, event_cb, e);
	return e;
}

void ct_events_close(struct ct_events *e)
{
	if (e == NULL)
		return;
	nfct_close(e->h);
	free(e);
}

int ct_events_fd(const struct ct_events *e)
{
	return nfct_fd(e->h);
}

int ct_events_rcvbuf(const struct ct_events *e)
{
	return e->rcvbuf;
}

int ct_events_process(struct ct_events *e, ct_flow_cb cb, void *arg)
{
	e->cb = cb;
	e->arg = arg;
	/* nfct_catch() reads until the socket is empty (EAGAIN). */
	if (nfct_catch(e->h) < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		if (errno == ENOBUFS) {
			/* Double what we asked for: the kernel reports
			 * twice the request (bookkeeping overhead), so
			 * doubling its figure would grow 4x. */
			if (e->asked < CT_RCVBUF_MAX)
				set_rcvbuf(e, e->asked * 2 > CT_RCVBUF_MAX
						      ? CT_RCVBUF_MAX
						      : e->asked * 2);
			return CT_OVERRUN;
		}
		return -1;
	}
	return 0;
}
