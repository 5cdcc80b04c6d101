/*
 * sess_check: see sess_check.h.  The order of the checks decides which
 * code a request with several faults gets; docs/transparent.md lists it.
 */
#include "sess_check.h"

#include <string.h>

#include "addr.h"
#include "pol.h"
#include "s5_proto.h"

static uint8_t refuse(struct tp_check_out *out, uint8_t rep, const char *why)
{
	out->why = why;
	return rep;
}

uint8_t sess_check_transparent(const struct tp_check_in *in,
			       struct tp_check_out *out)
{
	const struct cfg *c = in->cfg;
	const struct sockaddr_storage *relay;
	struct pol_query q;
	struct pol_decision d;

	memset(out, 0, sizeof(*out));
	if (!c->ptcl_enabled[in->ptcl])
		return refuse(out, S5_REP_PTCL_UNSUPPORTED,
			      "PTCL not enabled (transparent-protocols)");
	if (in->ptcl_unsupported != NULL)
		return refuse(out, S5_REP_PTCL_UNSUPPORTED,
			      in->ptcl_unsupported);
	if (in->src->sa_family != in->dst->sa_family)
		return refuse(out, S5_REP_ATYP_UNSUPPORTED,
			      "S.ADDR and DST.ADDR of different families");
	if (addr_is_unusable_bnd(in->src) ||
	    addr_is_multicast_or_broadcast(in->src))
		return refuse(out, S5_REP_NOT_ALLOWED, "unusable S.ADDR");
	if (addr_port(in->src) == 0)
		return refuse(out, S5_REP_NOT_ALLOWED,
			      "S.PORT 0 (an exact source port is required)");
	if (addr_is_unusable_bnd(in->dst) ||
	    addr_is_multicast_or_broadcast(in->dst))
		return refuse(out, S5_REP_HOST_UNREACH, "unusable DST.ADDR");
	if (addr_port(in->dst) == 0)
		return refuse(out, S5_REP_HOST_UNREACH, "DST.PORT 0");
	if (!c->transparent_source_any && !addr_eq_ip(in->src, in->peer))
		return refuse(out, S5_REP_NOT_ALLOWED,
			      "S.ADDR differs from the N1 peer "
			      "(transparent-source peer)");
	memset(&q, 0, sizeof(q));
	q.client = in->peer;
	q.dst_ip = in->dst;
	q.dst_name = in->dst_name;
	q.dst_port = addr_port(in->dst);
	q.cmd = POL_CMD_TRANSPARENT;
	q.user = in->user;
	q.self = in->self;
	d = pol_check(c->rules, c->nrules, &q);
	out->rule_line = d.line;
	if (d.form != ADDR_DST_OK)
		return refuse(out, S5_REP_NOT_ALLOWED, addr_dst_str(d.form));
	if (!d.allow)
		return refuse(out, S5_REP_NOT_ALLOWED,
			      d.embedded ? "denied by rule (the IPv4 address "
					   "DST.ADDR carries)"
					 : "denied by rule");
	relay = in->src->sa_family == AF_INET6 ? &c->relay6 : &c->relay4;
	if (relay->ss_family != 0) {
		out->bnd = *relay;
	} else if (in->local->sa_family == in->src->sa_family &&
		   !addr_is_unusable_bnd(in->local)) {
		memcpy(&out->bnd, in->local, addr_len(in->local));
	} else {
		return refuse(out, S5_REP_ATYP_UNSUPPORTED,
			      "no relay-address for this family");
	}
	addr_set_port((struct sockaddr *)&out->bnd, 0);
	return S5_REP_SUCCEEDED;
}
