/*
 * fwcheck: see fwcheck.h.
 */
#include "fwcheck.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fw_scan.h"
#include "log.h"

/* A run-time hint reads the ruleset again if the last read is older. */
#define FWCHECK_FRESH 10.0
/* The fix is logged again for run-time hints at most this often. */
#define FWCHECK_REPEAT 60.0

struct fwcheck {
	struct fw_report last;
	bool valid;	     /* last holds a successful read */
	double read_at;	     /* when (the loop's clock) */
	double explained_at; /* when a hint last logged the fix */
};

struct fwcheck *fwcheck_new(void)
{
	return calloc(1, sizeof(struct fwcheck));
}

void fwcheck_free(struct fwcheck *fc)
{
	free(fc);
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Logs one chain that drops relayed flows and what lets them through. */
static void log_finding(const struct fw_finding *f)
{
	char fix[256];

	fw_judge_fix(f, fix, sizeof(fix));
	log_warnx(
		"firewall: table %s %s chain %s (hook forward, priority %d%s) "
		"drops relayed flows: first packet %s: %s; later packets %s: "
		"%s",
		fw_judge_family(f->family), f->table, f->chain, f->prio,
		f->policy_drop ? ", policy drop" : "",
		fw_judge_fate_str(f->fate[FW_PKT_NEW]), f->why[FW_PKT_NEW],
		fw_judge_fate_str(f->fate[FW_PKT_EST]), f->why[FW_PKT_EST]);
	log_warnx("firewall: TRANSPARENT relays through it time out or are "
		  "refused until it accepts socksgate's ct mark: %s; to keep "
		  "it, %s (docs/firewalls.md)",
		  fix, fw_judge_keep(f));
}

static bool drops(const struct fw_finding *f)
{
	return f->fate[FW_PKT_NEW] == FW_FATE_DROPPED ||
	       f->fate[FW_PKT_EST] == FW_FATE_DROPPED;
}

static void log_report(const struct fw_report *r, const char *when)
{
	size_t bad = 0;

	for (size_t i = 0; i < r->n; i++) {
		const struct fw_finding *f = &r->f[i];
		if (drops(f)) {
			log_finding(f);
			bad++;
		} else {
			log_debug("firewall: table %s %s chain %s lets "
				  "relayed flows through: first packet %s: %s; "
				  "later packets %s",
				  fw_judge_family(f->family), f->table,
				  f->chain,
				  fw_judge_fate_str(f->fate[FW_PKT_NEW]),
				  f->why[FW_PKT_NEW],
				  fw_judge_fate_str(f->fate[FW_PKT_EST]));
		}
	}
	if (r->more)
		log_warnx("firewall: %zu more forward chains not judged",
			  r->more);
	for (int v = 0; v < 2; v++)
		if (r->legacy[v])
			log_info(
				"firewall: an iptables-legacy filter table "
				"(%s) is loaded; socksgated cannot read it: if "
				"its FORWARD chain drops, add: %s -I FORWARD 1 "
				"-m connmark --mark 0x5a000000/0xff000000 -j "
				"ACCEPT",
				v ? "IPv6" : "IPv4",
				v ? "ip6tables-legacy" : "iptables-legacy");
	if (bad == 0)
		log_info("firewall (%s): %zu forward chain%s in other tables, "
			 "none drops relayed flows",
			 when, r->n, r->n == 1 ? "" : "s");
}

static int read_ruleset(struct fwcheck *fc, char *err, size_t errlen)
{
	struct fw_report r;

	if (fw_scan(&r, err, errlen) < 0)
		return -1;
	fc->last = r;
	fc->valid = true;
	fc->read_at = mono_now();
	return 0;
}

void fwcheck_run(struct fwcheck *fc, const char *when)
{
	char err[256];

	if (read_ruleset(fc, err, sizeof(err)) < 0) {
		fc->valid = false;
		log_info("firewall (%s): not checked: %s%s", when, err,
			 errno == EPERM ? " (reading the ruleset needs "
					  "CAP_NET_ADMIN)"
					: "");
		return;
	}
	log_report(&fc->last, when);
}

void fwcheck_once(void)
{
	struct fwcheck *fc = fwcheck_new();

	if (fc == NULL)
		return;
	fwcheck_run(fc, "check");
	fwcheck_free(fc);
}

void fwcheck_explain(struct fwcheck *fc, enum fw_pkt k, double now)
{
	char err[256];

	if (fc->explained_at > 0 && now - fc->explained_at < FWCHECK_REPEAT)
		return;
	fc->explained_at = now;
	if ((!fc->valid || mono_now() - fc->read_at > FWCHECK_FRESH) &&
	    read_ruleset(fc, err, sizeof(err)) < 0) {
		log_warnx("firewall: cannot read the ruleset to say which "
			  "chain: %s",
			  err);
		return;
	}
	for (size_t i = 0; i < fc->last.n; i++)
		if (fc->last.f[i].fate[k] == FW_FATE_DROPPED) {
			log_finding(&fc->last.f[i]);
			return;
		}
	log_warnx("firewall: no forward chain socksgated can judge drops "
		  "them: look for a drop it cannot see (a rule that depends on "
		  "interfaces or addresses, iptables-legacy), or no route to "
		  "the destination (docs/firewalls.md)");
}
