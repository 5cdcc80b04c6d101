/*
 * ctl_cmd: what the control socket answers (ctl.c carries the lines):
 *   list [json]     every session, and its association if TRANSPARENT
 *   close ID        end association ID (reason operator)
 *   stats [json]    counters, and the kernel's elements against the record
 * An answer that starts with "error: " is a failure.
 */
#include "ctl_cmd.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "assoc.h"
#include "kagent.h"
#include "auth.h"
#include "ctl.h"
#include "ctl_req.h"
#include "dns.h"
#include "log.h"
#include "sess.h"
#include "srclimit.h"
#include "srv.h"

/* --- list -------------------------------------------------------------- */

static void list_text(struct ctl_conn *c, const struct sess_info *si)
{
	char peer[ADDR_STRLEN];
	const struct assoc_info *ai = &si->assoc;

	ctl_printf(c, "%-7llu %-11s %-24s %-10s %-11s ",
		   (unsigned long long)si->id, si->command,
		   addr_str((const struct sockaddr *)&si->peer, peer,
			    sizeof(peer)),
		   si->user ? si->user : "-", si->state);
	if (si->has_assoc) {
		char sa[ADDR_STRLEN], ba[ADDR_STRLEN], da[ADDR_STRLEN];
		ctl_printf(c,
			   "%-7u %8.1fs ptcl %u %s -> %s -> %s up %llu B %llu "
			   "pkt down %llu B %llu pkt\n",
			   ai->id, si->age, ai->proto,
			   addr_str((const struct sockaddr *)&ai->src, sa,
				    sizeof(sa)),
			   addr_str((const struct sockaddr *)&ai->bnd, ba,
				    sizeof(ba)),
			   addr_str((const struct sockaddr *)&ai->dst, da,
				    sizeof(da)),
			   (unsigned long long)ai->bytes_orig,
			   (unsigned long long)ai->packets_orig,
			   (unsigned long long)ai->bytes_reply,
			   (unsigned long long)ai->packets_reply);
		return;
	}
	ctl_printf(c, "%-7s %8.1fs dst %s up %llu B down %llu B\n", "-",
		   si->age, si->dst ? si->dst : "-",
		   (unsigned long long)si->bytes_up,
		   (unsigned long long)si->bytes_down);
}

static void list_json(struct ctl_conn *c, const struct sess_info *si,
		      bool first)
{
	char peer[ADDR_STRLEN];
	const struct assoc_info *ai = &si->assoc;

	ctl_printf(c,
		   "%s\n  {\"id\": %llu, \"command\": \"%s\", "
		   "\"client\": \"%s\", \"user\": ",
		   first ? "" : ",", (unsigned long long)si->id, si->command,
		   addr_str((const struct sockaddr *)&si->peer, peer,
			    sizeof(peer)));
	if (si->user)
		ctl_json_str(c, si->user);
	else
		ctl_printf(c, "null");
	ctl_printf(c, ", \"state\": \"%s\", \"age\": %.3f, \"destination\": ",
		   si->state, si->age);
	ctl_json_str(c, si->dst ? si->dst : "-");
	ctl_printf(c, ", \"bytes_up\": %llu, \"bytes_down\": %llu",
		   (unsigned long long)si->bytes_up,
		   (unsigned long long)si->bytes_down);
	if (si->has_assoc) {
		char sa[ADDR_STRLEN], ba[ADDR_STRLEN], da[ADDR_STRLEN];
		ctl_printf(c,
			   ", \"association\": {\"id\": %u, \"ptcl\": %u, "
			   "\"source\": \"%s\", \"bound\": \"%s\", "
			   "\"destination\": \"%s\", \"state\": \"%s\", "
			   "\"age\": %.3f, \"packets_up\": %llu, "
			   "\"bytes_up\": %llu, \"packets_down\": %llu, "
			   "\"bytes_down\": %llu}",
			   ai->id, ai->proto,
			   addr_str((const struct sockaddr *)&ai->src, sa,
				    sizeof(sa)),
			   addr_str((const struct sockaddr *)&ai->bnd, ba,
				    sizeof(ba)),
			   addr_str((const struct sockaddr *)&ai->dst, da,
				    sizeof(da)),
			   ai->state, ai->age,
			   (unsigned long long)ai->packets_orig,
			   (unsigned long long)ai->bytes_orig,
			   (unsigned long long)ai->packets_reply,
			   (unsigned long long)ai->bytes_reply);
	}
	ctl_printf(c, "}");
}

static void answer_list(struct srv *srv, struct ctl_conn *c, bool json)
{
	bool first = true;

	/* Fresh counters: one conntrack dump. */
	if (srv->kagent)
		kagent_refresh(srv->kagent);
	if (json)
		ctl_printf(c, "{\"sessions\": [");
	else
		ctl_printf(c, "%-7s %-11s %-24s %-10s %-11s %-7s %9s %s\n",
			   "SESSION", "COMMAND", "CLIENT", "USER", "STATE",
			   "ASSOC", "AGE", "DETAILS");
	for (struct sess *s = srv->sessions; s; s = sess_next(s)) {
		struct sess_info si;
		sess_get_info(s, &si);
		if (json)
			list_json(c, &si, first);
		else
			list_text(c, &si);
		first = false;
	}
	if (json)
		ctl_printf(c, "\n]}\n");
}

/* --- stats ------------------------------------------------------------- */

static const char *const set_names[] = {"bound", "assoc", "dnat", "mark"};

/* Abuse resistance: the password pool, the per-source limits and
 * penalties, UDP denials and name lookups, the negative DNS cache. */
static void stats_abuse(struct srv *srv, struct ctl_conn *c, bool json)
{
	struct auth_worker_stats aw;
	struct srclimit_stats ls;
	struct dns_stats ds;

	memset(&aw, 0, sizeof(aw));
	memset(&ds, 0, sizeof(ds));
	if (srv->authw)
		auth_worker_stats(srv->authw, &aw);
	srclimit_stats(srv->limits, ev_now(srv->loop), &ls);
	if (srv->dns)
		dns_get_stats(srv->dns, &ds);
	if (!json) {
		ctl_printf(c,
			   "password checks: %u workers, %llu checked (%llu "
			   "failed), %zu queued (%zu held by penalties), %zu "
			   "running; %zu sources penalised\n",
			   aw.threads, aw.checks, aw.failures, aw.queued,
			   aw.held, aw.running, ls.penalised);
		ctl_printf(c, "sources: %zu tracked;", ls.sources);
		for (int k = 0; k < SRCLIMIT_KINDS; k++)
			ctl_printf(c, " %s %llu", srclimit_kind_str(k),
				   (unsigned long long)ls.events[k]);
		ctl_printf(c,
			   "; %llu forgotten\nudp: %llu datagrams denied, "
			   "%llu over udp-name-rate\ndns: %llu lookups, %zu "
			   "negative answers cached, %llu answered from the "
			   "cache\nlog: %llu rate-limited lines dropped\n",
			   (unsigned long long)ls.forgotten,
			   (unsigned long long)srv->stats.udp_denied,
			   (unsigned long long)ls.events[SRCLIMIT_UDP_NAMES],
			   ds.lookups, ds.negative_entries, ds.negative_hits,
			   log_limited_dropped());
		return;
	}
	ctl_printf(c,
		   ",\n \"auth\": {\"workers\": %u, \"checks\": %llu, "
		   "\"failures\": %llu, \"queued\": %zu, \"held\": %zu, "
		   "\"running\": %zu, \"penalised\": %zu},\n "
		   "\"sources\": {\"tracked\": %zu",
		   aw.threads, aw.checks, aw.failures, aw.queued, aw.held,
		   aw.running, ls.penalised, ls.sources);
	for (int k = 0; k < SRCLIMIT_KINDS; k++)
		ctl_printf(c, ", \"%s\": %llu", srclimit_kind_str(k),
			   (unsigned long long)ls.events[k]);
	ctl_printf(c,
		   ", \"forgotten\": %llu},\n \"udp\": {\"denied\": %llu, "
		   "\"name_lookups_limited\": %llu},\n \"dns\": "
		   "{\"lookups\": %llu, \"negative_entries\": %zu, "
		   "\"negative_hits\": %llu},\n \"log\": "
		   "{\"limited_dropped\": %llu}",
		   (unsigned long long)ls.forgotten,
		   (unsigned long long)srv->stats.udp_denied,
		   (unsigned long long)ls.events[SRCLIMIT_UDP_NAMES],
		   ds.lookups, ds.negative_entries, ds.negative_hits,
		   log_limited_dropped());
}

static void answer_stats(struct srv *srv, struct ctl_conn *c, bool json)
{
	const struct srv_stats *ss = &srv->stats;
	static struct assoc_stats st;
	const struct assoc_stats *as = &st;
	struct assoc_audit au;
	uint64_t count = 0;

	/* From the kernel agent: its counters and its record against the
	 * kernel's sets. */
	memset(&st, 0, sizeof(st));
	memset(&au, 0, sizeof(au));
	if (srv->kagent && kagent_stats(srv->kagent, &count, &st, &au) < 0)
		memset(&st, 0, sizeof(st));
	size_t n = (size_t)count;
	if (!json) {
		ctl_printf(c,
			   "sessions: %llu total, %u active; connect %llu "
			   "bind %llu udp %llu transparent %llu\n"
			   "refused: %llu denied by rules, %llu auth "
			   "failures, %llu malformed\n"
			   "associations: %zu in table (%zu live, %zu pending, "
			   "%zu closing, %zu quarantine), %llu opened, %llu "
			   "setup failures\n",
			   (unsigned long long)ss->sessions_total,
			   srv->nsessions,
			   (unsigned long long)ss->sessions_by_cmd[1],
			   (unsigned long long)ss->sessions_by_cmd[2],
			   (unsigned long long)ss->sessions_by_cmd[3],
			   (unsigned long long)ss->sessions_by_cmd[4],
			   (unsigned long long)ss->denied,
			   (unsigned long long)ss->auth_failures,
			   (unsigned long long)ss->bad_requests, n, au.live,
			   au.pending, au.closing, au.quarantine,
			   (unsigned long long)as->opened,
			   (unsigned long long)as->setup_failures);
		ctl_printf(c, "ended:");
		for (int i = 0; i < ASSOC_END_COUNT; i++)
			ctl_printf(c, " %s %llu", assoc_end_str(i),
				   (unsigned long long)as->ended[i]);
		ctl_printf(c, "\nkernel elements:");
		for (int k = 0; k < 4; k++)
			ctl_printf(c, " %s %llu/%llu", set_names[k],
				   (unsigned long long)au.kernel[k],
				   (unsigned long long)au.expected[k]);
		ctl_printf(c, " (kernel/record): %s; %zu unconfirmed\n",
			   !au.kernel_read ? "unreadable"
			   : au.consistent ? "consistent"
					   : "DIFFERENT",
			   au.unconfirmed);
		ctl_printf(c,
			   "source filter: %llu packets %llu bytes "
			   "dropped\nnetlink: %llu transactions, %llu "
			   "errors, %llu unanswered, %llu stale answers, %llu "
			   "removals retried\nconntrack: %llu events, %llu "
			   "overruns, %llu resyncs, %llu errors, %llu dump "
			   "failures, %llu orphans deleted\n",
			   (unsigned long long)as->dropped_packets,
			   (unsigned long long)as->dropped_bytes,
			   (unsigned long long)as->nl_transactions,
			   (unsigned long long)as->nl_errors,
			   (unsigned long long)as->nl_unanswered,
			   (unsigned long long)as->nl_stale,
			   (unsigned long long)as->kernel_retries,
			   (unsigned long long)as->events,
			   (unsigned long long)as->event_overruns,
			   (unsigned long long)as->resyncs,
			   (unsigned long long)(as->conntrack_errors +
						as->track_errors),
			   (unsigned long long)as->dump_failures,
			   (unsigned long long)as->orphans_deleted);
		stats_abuse(srv, c, false);
		return;
	}
	ctl_printf(c,
		   "{\"sessions\": {\"total\": %llu, \"active\": %u, "
		   "\"by_command\": {\"connect\": %llu, \"bind\": %llu, "
		   "\"udp\": %llu, \"transparent\": %llu}, \"denied\": %llu, "
		   "\"auth_failures\": %llu, \"malformed\": %llu},\n",
		   (unsigned long long)ss->sessions_total, srv->nsessions,
		   (unsigned long long)ss->sessions_by_cmd[1],
		   (unsigned long long)ss->sessions_by_cmd[2],
		   (unsigned long long)ss->sessions_by_cmd[3],
		   (unsigned long long)ss->sessions_by_cmd[4],
		   (unsigned long long)ss->denied,
		   (unsigned long long)ss->auth_failures,
		   (unsigned long long)ss->bad_requests);
	ctl_printf(c,
		   " \"associations\": {\"in_table\": %zu, \"live\": %zu, "
		   "\"pending\": %zu, \"closing\": %zu, \"quarantine\": %zu, "
		   "\"opened\": %llu, \"setup_failures\": %llu, \"ended\": {",
		   n, au.live, au.pending, au.closing, au.quarantine,
		   (unsigned long long)as->opened,
		   (unsigned long long)as->setup_failures);
	for (int i = 0; i < ASSOC_END_COUNT; i++)
		ctl_printf(c, "%s\"%s\": %llu", i ? ", " : "", assoc_end_str(i),
			   (unsigned long long)as->ended[i]);
	ctl_printf(c,
		   "}},\n \"kernel\": {\"readable\": %s, \"consistent\": "
		   "%s, \"unconfirmed\": %zu, \"elements\": {",
		   au.kernel_read ? "true" : "false",
		   au.consistent ? "true" : "false", au.unconfirmed);
	for (int k = 0; k < 4; k++)
		ctl_printf(c, "%s\"%s\": %llu", k ? ", " : "", set_names[k],
			   (unsigned long long)au.kernel[k]);
	ctl_printf(c, "}, \"expected\": {");
	for (int k = 0; k < 4; k++)
		ctl_printf(c, "%s\"%s\": %llu", k ? ", " : "", set_names[k],
			   (unsigned long long)au.expected[k]);
	ctl_printf(
		c,
		"}},\n \"source_filter\": {\"dropped_packets\": %llu, "
		"\"dropped_bytes\": %llu},\n \"netlink\": "
		"{\"transactions\": %llu, \"errors\": %llu, "
		"\"unanswered\": %llu, \"stale_answers\": %llu, "
		"\"removals_retried\": %llu},\n "
		"\"conntrack\": {\"events\": %llu, \"overruns\": %llu, "
		"\"resyncs\": %llu, \"errors\": %llu, \"dump_failures\": "
		"%llu, \"orphans_deleted\": %llu}",
		(unsigned long long)as->dropped_packets,
		(unsigned long long)as->dropped_bytes,
		(unsigned long long)as->nl_transactions,
		(unsigned long long)as->nl_errors,
		(unsigned long long)as->nl_unanswered,
		(unsigned long long)as->nl_stale,
		(unsigned long long)as->kernel_retries,
		(unsigned long long)as->events,
		(unsigned long long)as->event_overruns,
		(unsigned long long)as->resyncs,
		(unsigned long long)(as->conntrack_errors + as->track_errors),
		(unsigned long long)as->dump_failures,
		(unsigned long long)as->orphans_deleted);
	stats_abuse(srv, c, true);
	ctl_printf(c, "}\n");
}

/* --- close ------------------------------------------------------------- */

static void answer_close(struct srv *srv, struct ctl_conn *c, uint32_t id)
{
	if (srv->kagent == NULL ||
	    kagent_terminate_id(srv->kagent, id, ASSOC_END_OPERATOR) != 0) {
		ctl_printf(c, "error: no live association %lu\n",
			   (unsigned long)id);
		return;
	}
	log_info("control: association %lu closed by the operator",
		 (unsigned long)id);
	ctl_printf(c, "closed %lu\n", (unsigned long)id);
}

void ctl_cmd_answer(void *arg, const char *line, struct ctl_conn *c)
{
	struct srv *srv = arg;
	struct ctl_req r;

	switch (ctl_req_parse(line, strlen(line), &r)) {
	case CTL_REQ_OK:
		break;
	case CTL_REQ_BAD_ID:
		ctl_printf(c, "error: usage: close ASSOCIATION-ID\n");
		return;
	default:
		ctl_printf(c, "error: unknown request (list [json], close ID, "
			      "stats [json])\n");
		return;
	}
	switch (r.kind) {
	case CTL_REQ_LIST:
		answer_list(srv, c, r.json);
		break;
	case CTL_REQ_STATS:
		answer_stats(srv, c, r.json);
		break;
	case CTL_REQ_CLOSE:
		answer_close(srv, c, r.id);
		break;
	}
}
