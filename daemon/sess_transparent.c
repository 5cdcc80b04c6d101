/*
 * sess_transparent: the TRANSPARENT command (draft-lucioni).  Resolve
 * S.ADDR and DST.ADDR if they are names, check (sess_check_transparent),
 * then ask the association table to install the relay; reply with BND
 * once the kernel has it, and hold N1 open: its end ends the association.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "addr.h"
#include "assoc.h"
#include "kagent.h"
#include "log.h"
#include "sess_int.h"
#include "sess_check.h"
#include "srclimit.h"
#include "srv.h"
#include "grow.h"

static void tp_resolve_next(struct sess *s);

static void tp_ready(void *arg, uint8_t rep, const struct sockaddr *bnd)
{
	struct sess *s = arg;
	int on = 1, idle = 60, intvl = 10, cnt = 3;

	if (rep != S5_REP_SUCCEEDED) {
		s->assoc = NULL; /* freed by the table */
		sess_reply(s, rep, NULL);
		return;
	}
	/* A client that vanishes without FIN must not hold the relay
	 * forever: keepalive probes end N1 after ~90 s of silence. */
	setsockopt(s->fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(s->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(s->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(s->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	s->assoc_id = kagent_id(s->assoc);
	s->state = SESS_TRANSPARENT;
	sess_settle(s);
	sess_reply(s, S5_REP_SUCCEEDED, bnd);
	/* Watch N1: EOF, RST or a keepalive failure ends the association. */
	ev_io_start(s->srv->loop, &s->rd);
}

static void tp_ended(void *arg, enum assoc_end why)
{
	struct sess *s = arg;

	s->assoc = NULL; /* already closed by the table */
	s->assoc_reason = why;
	sess_end(s, SESS_END_ASSOC);
}

static void tp_proceed(struct sess *s)
{
	static const struct assoc_cbs cbs = {tp_ready, tp_ended};
	struct tp_check_in in = {
		.cfg = &s->srv->cfg,
		.peer = &s->peer.sa,
		.local = &s->local.sa,
		.ptcl = s->setup->req.ptcl,
		.src = (struct sockaddr *)&s->setup->tp_src,
		.dst = (struct sockaddr *)&s->setup->tp_dst,
		.dst_name = s->dst_name,
		.user = s->authed ? s->user : NULL,
		.self = &s->srv->self,
	};
	struct tp_check_out out;
	struct assoc_req r;
	uint8_t rep = sess_check_transparent(&in, &out);

	ev_timer_stop(s->srv->loop, &s->timer);
	if (rep != S5_REP_SUCCEEDED) {
		char src[ADDR_STRLEN], dst[ADDR_STRLEN];
		log_info("session %llu: TRANSPARENT ptcl %u %s -> %s refused "
			 "(0x%02x): %s",
			 (unsigned long long)s->id, s->setup->req.ptcl,
			 addr_str(in.src, src, sizeof(src)),
			 addr_str(in.dst, dst, sizeof(dst)), rep, out.why);
		sess_reply(s, rep, NULL);
		return;
	}
	/* One client must not take every relay port: its quota is checked
	 * before a port is allocated (X'01'; srclimit logs in summary). */
	if (!s->assoc_counted) {
		if (srclimit_assoc_open(s->srv->limits, s->src,
					ev_now(s->srv->loop)) < 0) {
			log_debug("session %llu: TRANSPARENT refused (0x01): "
				  "max-associations-per-source %u",
				  (unsigned long long)s->id,
				  s->srv->cfg.limits.associations);
			sess_reply(s, S5_REP_GENERAL, NULL);
			return;
		}
		s->assoc_counted = true;
	}
	memset(&r, 0, sizeof(r));
	r.proto = s->setup->req.ptcl;
	r.src = s->setup->tp_src;
	r.dst = s->setup->tp_dst;
	r.bnd = out.bnd;
	memcpy(&r.client, &s->peer, sizeof(s->peer));
	r.user = in.user;
	r.session_id = s->id;
	s->assoc = kagent_open(s->srv->kagent, &r, &cbs, s, &rep);
	if (s->assoc == NULL) {
		sess_reply(s, rep, NULL);
		return;
	}
	/* tp_ready() answers once the kernel agent has the elements in. */
}

static void tp_resolved(void *arg, enum dns_result res,
			const struct sockaddr_storage *addrs, size_t n)
{
	struct sess *s = arg;
	bool src_pending = s->setup->tp_src.ss_family == 0;
	struct sockaddr_storage *slot =
		src_pending ? &s->setup->tp_src : &s->setup->tp_dst;
	const struct s5_addr *w =
		src_pending ? &s->setup->req.src : &s->setup->req.dst;
	int want = 0;

	if (res != DNS_OK) {
		log_info("session %llu: %s: %s", (unsigned long long)s->id,
			 w->u.dom.name, dns_result_str(res));
		sess_reply(s, S5_REP_HOST_UNREACH, NULL);
		return;
	}
	/* Prefer the family of the other end if it is known. */
	if (!src_pending)
		want = s->setup->tp_src.ss_family;
	else if (s->setup->req.dst.atyp != S5_ATYP_DOMAIN)
		want = s->setup->req.dst.atyp == S5_ATYP_IPV6 ? AF_INET6
							      : AF_INET;
	*slot = addrs[0];
	for (size_t i = 0; i < n; i++) {
		if (addrs[i].ss_family == want) {
			*slot = addrs[i];
			break;
		}
	}
	addr_set_port((struct sockaddr *)slot, w->port);
	tp_resolve_next(s);
}

/* Resolves S then DST where they are names, then proceeds. */
static void tp_resolve_next(struct sess *s)
{
	const struct s5_addr *w = NULL;
	int family = AF_UNSPEC;

	if (s->setup->tp_src.ss_family == 0)
		w = &s->setup->req.src;
	else if (s->setup->tp_dst.ss_family == 0)
		w = &s->setup->req.dst;
	if (w == NULL) {
		tp_proceed(s);
		return;
	}
	if (w == &s->setup->req.dst)
		family = s->setup->tp_src.ss_family;
	else if (s->setup->req.dst.atyp == S5_ATYP_IPV4)
		family = AF_INET;
	else if (s->setup->req.dst.atyp == S5_ATYP_IPV6)
		family = AF_INET6;
	s->state = SESS_RESOLVING;
	if (dns_resolve(s->srv->dns, w->u.dom.name, family, tp_resolved, s,
			&s->dnsq) < 0)
		sess_reply(s, S5_REP_GENERAL, NULL);
}

void sess_transparent_start(struct sess *s)
{
	struct srv *srv = s->srv;

	ev_io_stop(srv->loop, &s->rd);
	/* No nftables or conntrack here (logged once at start): "not
	 * supported" lets a client tell "not here" from "failed". */
	if (!kagent_available(srv->kagent)) {
		sess_reply(s, S5_REP_CMD_UNSUPPORTED, NULL);
		return;
	}
	/* Checked before any name is resolved: an unknown PTCL needs no
	 * lookup to be refused. */
	if (!srv->cfg.ptcl_enabled[s->setup->req.ptcl]) {
		log_info("session %llu: TRANSPARENT ptcl %u not enabled",
			 (unsigned long long)s->id, s->setup->req.ptcl);
		sess_reply(s, S5_REP_PTCL_UNSUPPORTED, NULL);
		return;
	}
	/* What the kernel cannot relay (ct_probe.h) the agent refuses
	 * with X'09': probing needs its privilege. */
	memset(&s->setup->tp_src, 0, sizeof(s->setup->tp_src));
	memset(&s->setup->tp_dst, 0, sizeof(s->setup->tp_dst));
	if (s->setup->req.src.atyp != S5_ATYP_DOMAIN)
		addr_from_s5(&s->setup->req.src, &s->setup->tp_src);
	if (s->setup->req.dst.atyp != S5_ATYP_DOMAIN)
		addr_from_s5(&s->setup->req.dst, &s->setup->tp_dst);
	/* Mixed literal families need no lookup either. */
	if (s->setup->tp_src.ss_family && s->setup->tp_dst.ss_family &&
	    s->setup->tp_src.ss_family != s->setup->tp_dst.ss_family) {
		sess_reply(s, S5_REP_ATYP_UNSUPPORTED, NULL);
		return;
	}
	/* Name lookups and installation are bounded by the connect
	 * timeout (sess_timer_cb replies X'04' on expiry). */
	ev_timer_set(&s->timer, (double)srv->cfg.timeout_connect, 0.);
	ev_timer_start(srv->loop, &s->timer);
	tp_resolve_next(s);
}

void sess_transparent_stop(struct sess *s, enum sess_end why)
{
	enum assoc_end e;

	dns_cancel(&s->dnsq);
	if (s->assoc == NULL)
		return;
	switch (why) {
	case SESS_END_SHUTDOWN:
		e = ASSOC_END_SHUTDOWN;
		break;
	default:
		e = ASSOC_END_N1_CLOSED;
		break;
	}
	kagent_close(s->assoc, e);
	s->assoc = NULL;
}

void sess_transparent_recheck(struct srv *srv)
{
	uint32_t *ids = NULL;
	size_t n = 0, cap = 0;

	/* Decide for all first: ending one frees its session. */
	for (struct sess *s = srv->sessions; s; s = s->next) {
		struct assoc_info ai;
		struct tp_check_out out;

		if (s->state != SESS_TRANSPARENT || s->assoc == NULL)
			continue;
		kagent_get_info(s->assoc, &ai);
		struct tp_check_in in = {
			.cfg = &srv->cfg,
			.peer = &s->peer.sa,
			.local = &s->local.sa,
			.ptcl = ai.proto,
			.src = (struct sockaddr *)&ai.src,
			.dst = (struct sockaddr *)&ai.dst,
			.dst_name = s->dst_name,
			.user = s->authed ? s->user : NULL,
			.self = &srv->self,
		};
		if (sess_check_transparent(&in, &out) == S5_REP_SUCCEEDED)
			continue;
		log_info("session %llu: association %u no longer allowed: %s",
			 (unsigned long long)s->id, ai.id, out.why);
		if (grow(&ids, &cap, n + 1, sizeof(*ids), 16) < 0)
			break;
		ids[n++] = ai.id;
	}
	for (size_t i = 0; i < n; i++)
		kagent_terminate_id(srv->kagent, ids[i], ASSOC_END_POLICY);
	free(ids);
}
