/*
 * pol: see pol.h.
 */
#include "pol.h"

#include <string.h>
#include <strings.h>

#include "s5_proto.h"

uint8_t pol_cmd_bit(uint8_t s5_cmd)
{
	switch (s5_cmd) {
	case S5_CMD_CONNECT:
		return POL_CMD_CONNECT;
	case S5_CMD_BIND:
		return POL_CMD_BIND;
	case S5_CMD_UDP:
		return POL_CMD_UDP;
	case S5_CMD_TRANSPARENT:
		return POL_CMD_TRANSPARENT;
	default:
		return 0;
	}
}

uint8_t pol_cmd_parse(const char *s)
{
	static const struct {
		const char *name;
		uint8_t bit;
	} cmds[] = {{"connect", POL_CMD_CONNECT},
		    {"bind", POL_CMD_BIND},
		    {"udp", POL_CMD_UDP},
		    {"transparent", POL_CMD_TRANSPARENT},
		    {"any", POL_CMD_ANY}};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(s, cmds[i].name) == 0)
			return cmds[i].bit;
	return 0;
}

/* Case-insensitive name match; a trailing dot in the query is ignored. */
static bool name_match(const struct pol_rule *r, const char *name)
{
	size_t n = strlen(name), rl = strlen(r->to_name);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (r->to_kind == POL_TO_NAME)
		return n == rl && strncasecmp(name, r->to_name, n) == 0;
	/* ".example" matches "example" and "*.example". */
	if (n == rl - 1 && strncasecmp(name, r->to_name + 1, n) == 0)
		return true;
	return n > rl && strncasecmp(name + n - rl, r->to_name, rl) == 0;
}

static bool rule_match(const struct pol_rule *r, const struct pol_query *q)
{
	if (!(r->cmds & q->cmd))
		return false;
	if (r->has_from && !addr_cidr_match(&r->from, q->client))
		return false;
	if (q->dst_port < r->port_lo || q->dst_port > r->port_hi)
		return false;
	if (r->user[0] != '\0' &&
	    (q->user == NULL || strcmp(q->user, r->user) != 0))
		return false;
	switch (r->to_kind) {
	case POL_TO_ANY:
		return true;
	case POL_TO_CIDR:
		return q->dst_ip != NULL && addr_cidr_match(&r->to, q->dst_ip);
	case POL_TO_SELF:
		return q->dst_ip != NULL &&
		       (addr_is_loopback(q->dst_ip) ||
			(q->self != NULL && q->self->match != NULL &&
			 q->self->match(q->self->ctx, q->dst_ip)));
	case POL_TO_NAME:
	case POL_TO_SUFFIX:
		return q->dst_name != NULL && name_match(r, q->dst_name);
	}
	return false;
}

static struct pol_decision first_match(const struct pol_rule *rules, size_t n,
				       const struct pol_query *q)
{
	struct pol_decision d = {.allow = false, .line = 0};

	for (size_t i = 0; i < n; i++) {
		if (rule_match(&rules[i], q)) {
			d.allow = rules[i].allow;
			d.line = rules[i].line;
			break;
		}
	}
	return d;
}

struct pol_decision pol_check(const struct pol_rule *rules, size_t n,
			      const struct pol_query *q)
{
	struct sockaddr_storage dst, v4;
	struct pol_query nq = *q;
	struct pol_decision d, d4;
	enum addr_dst form;

	if (q->dst_ip == NULL)
		return first_match(rules, n, q);
	form = addr_dst_normalise(q->dst_ip, &dst, &v4);
	if (form != ADDR_DST_OK)
		return (struct pol_decision){.allow = false, .form = form};
	nq.dst_ip = (const struct sockaddr *)&dst;
	d = first_match(rules, n, &nq);
	if (!d.allow || v4.ss_family == 0)
		return d;
	nq.dst_ip = (const struct sockaddr *)&v4;
	d4 = first_match(rules, n, &nq);
	if (d4.allow)
		return d;
	d4.embedded = true;
	return d4;
}

bool pol_may_allow(const struct pol_rule *rules, size_t n,
		   const struct pol_query *q)
{
	for (size_t i = 0; i < n; i++) {
		const struct pol_rule *r = &rules[i];
		bool narrow = r->to_kind != POL_TO_ANY || r->port_lo != 0 ||
			      r->port_hi != 65535;
		if (!(r->cmds & q->cmd))
			continue;
		if (r->has_from && !addr_cidr_match(&r->from, q->client))
			continue;
		if (r->user[0] != '\0' &&
		    (q->user == NULL || strcmp(q->user, r->user) != 0))
			continue;
		if (r->allow)
			return true;
		if (!narrow)
			return false;
	}
	return false;
}
