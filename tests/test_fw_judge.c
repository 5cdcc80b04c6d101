/*
 * Unit tests for nft/fw_model.c and nft/fw_judge.c: recorded dumps of
 * real rulesets (tests/fixtures/firewalls/: the rulesets and regen.sh,
 * which loads each into a namespace and records what socksgated reads)
 * are judged as socksgated judges the live kernel.  No kernel needed.
 */
#include <criterion/criterion.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>

#include "fw_judge.h"

static char *load(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	/* Netlink headers are in host order: these recordings were made on
	 * a little-endian kernel.  The judge's own byte-order handling is
	 * covered by the golden netlink-builder tests on this host. */
	cr_skip_test("the recorded dumps are little-endian netlink");
#endif
	snprintf(path, sizeof(path), "%s/%s.nlmsg", SG_FIXTURE_DIR, name);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	cr_assert_gt(n, 0);
	rewind(f);
	buf = malloc((size_t)n);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Feeds a recorded dump to a model; returns how many messages. */
static size_t feed(struct fw_model *m, char *buf, size_t len)
{
	int left = (int)len;
	size_t n = 0;

	for (struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	     mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
		cr_assert_eq(fw_model_add(m, nlh), 0, "message %zu", n);
		n++;
	}
	cr_assert_eq(left, 0, "trailing bytes in the recording");
	return n;
}

static void judge(const char *name, struct fw_report *r)
{
	size_t len;
	char *buf = load(name, &len);
	struct fw_model *m = fw_model_new();

	cr_assert_not_null(m);
	cr_assert_gt(feed(m, buf, len), 0);
	memset(r, 0, sizeof(*r));
	cr_assert_eq(fw_judge(m, r), 0);
	fw_model_free(m);
	free(buf);
}

static const struct fw_finding *find(const struct fw_report *r, int family,
				     const char *table, const char *chain)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->f[i].family == family &&
		    strcmp(r->f[i].table, table) == 0 &&
		    strcmp(r->f[i].chain, chain) == 0)
			return &r->f[i];
	cr_assert_fail("no finding for %s %s", table, chain);
	return NULL;
}

static void expect(const struct fw_finding *f, enum fw_fate fnew,
		   enum fw_fate fest)
{
	cr_expect_eq(f->fate[FW_PKT_NEW], fnew, "%s %s new: %s (%s)", f->table,
		     f->chain, fw_judge_fate_str(f->fate[FW_PKT_NEW]),
		     f->why[FW_PKT_NEW]);
	cr_expect_eq(f->fate[FW_PKT_EST], fest, "%s %s est: %s (%s)", f->table,
		     f->chain, fw_judge_fate_str(f->fate[FW_PKT_EST]),
		     f->why[FW_PKT_EST]);
}

static void expect_fix(const struct fw_finding *f, const char *want)
{
	char fix[256];

	fw_judge_fix(f, fix, sizeof(fix));
	cr_expect_str_eq(fix, want);
}

/* OpenWrt's default: LAN->WAN works (not visible to the judge: it
 * depends on interfaces), anything else is rejected by handle_reject;
 * replies are accepted (ct state vmap). */
Test(fw_judge, fw4_default_rejects_new_flows)
{
	struct fw_report r;
	const struct fw_finding *f;

	judge("fw4-default", &r);
	f = find(&r, NFPROTO_INET, "fw4", "forward");
	expect(f, FW_FATE_DROPPED, FW_FATE_ACCEPTED);
	cr_expect(f->policy_drop);
	cr_expect_eq(f->kind, FW_KIND_FW4);
	cr_expect(strstr(f->why[FW_PKT_NEW], "-> handle_reject [handle") &&
			  strstr(f->why[FW_PKT_NEW], "]: reject"),
		  "%s", f->why[FW_PKT_NEW]);
	cr_expect(strstr(f->why[FW_PKT_EST], "accept (ct state)"), "%s",
		  f->why[FW_PKT_EST]);
	expect_fix(f, "nft insert rule inet fw4 forward ct mark and "
		      "0xff000000 == 0x5a000000 accept");
	cr_expect(strstr(fw_judge_keep(f), "chain-pre/forward"));
	/* fw4's mangle_forward is a forward chain too; it drops nothing. */
	expect(find(&r, NFPROTO_INET, "fw4", "mangle_forward"), FW_FATE_PASS,
	       FW_FATE_PASS);
	cr_expect(r.blocks[FW_PKT_NEW]);
	cr_expect(!r.blocks[FW_PKT_EST]);
}

Test(fw_judge, fw4_with_the_include_accepts_our_mark)
{
	struct fw_report r;
	const struct fw_finding *f;

	judge("fw4-include", &r);
	f = find(&r, NFPROTO_INET, "fw4", "forward");
	expect(f, FW_FATE_ACCEPTED, FW_FATE_ACCEPTED);
	cr_expect(strstr(f->why[FW_PKT_NEW], "accept (ct mark)"), "%s",
		  f->why[FW_PKT_NEW]);
	cr_expect(!r.blocks[FW_PKT_NEW] && !r.blocks[FW_PKT_EST]);
}

/* The newer fw4 template (ct state established,related accept, ct state
 * invalid drop) judges the same. */
Test(fw_judge, fw4_newer_template)
{
	struct fw_report r;

	judge("fw4-2024", &r);
	expect(find(&r, NFPROTO_INET, "fw4", "forward"), FW_FATE_DROPPED,
	       FW_FATE_ACCEPTED);
}

/* firewalld accepts DNAT'd forwarded flows, which relayed flows are;
 * StrictForwardPorts=yes sends them to a chain that rejects. */
Test(fw_judge, firewalld_accepts_dnat)
{
	struct fw_report r;
	const struct fw_finding *f;

	judge("firewalld", &r);
	f = find(&r, NFPROTO_INET, "firewalld", "filter_FORWARD");
	expect(f, FW_FATE_ACCEPTED, FW_FATE_ACCEPTED);
	cr_expect(strstr(f->why[FW_PKT_NEW], "accept (ct status)"), "%s",
		  f->why[FW_PKT_NEW]);
	cr_expect_eq(f->prio, 10);
	cr_expect(!r.blocks[FW_PKT_NEW]);
}

Test(fw_judge, firewalld_strict_forward_ports_rejects)
{
	struct fw_report r;
	const struct fw_finding *f;

	judge("firewalld-strict", &r);
	f = find(&r, NFPROTO_INET, "firewalld", "filter_FORWARD");
	expect(f, FW_FATE_DROPPED, FW_FATE_ACCEPTED);
	cr_expect(!f->policy_drop);
	cr_expect(strstr(f->why[FW_PKT_NEW], "filter_FORWARD_dnat"), "%s",
		  f->why[FW_PKT_NEW]);
	cr_expect_eq(f->kind, FW_KIND_FIREWALLD);
	cr_expect(strstr(fw_judge_keep(f), "StrictForwardPorts=no"));
}

Test(fw_judge, iptables_forward_policy_drop)
{
	struct fw_report r;
	const struct fw_finding *f;

	judge("iptables-drop", &r);
	f = find(&r, NFPROTO_IPV4, "filter", "FORWARD");
	expect(f, FW_FATE_DROPPED, FW_FATE_DROPPED);
	cr_expect_eq(f->kind, FW_KIND_IPTABLES);
	cr_expect_str_eq(f->why[FW_PKT_NEW], "FORWARD: policy drop");
	expect_fix(f, "iptables -I FORWARD 1 -m connmark --mark "
		      "0x5a000000/0xff000000 -j ACCEPT");
	f = find(&r, NFPROTO_IPV6, "filter", "FORWARD");
	expect(f, FW_FATE_DROPPED, FW_FATE_DROPPED);
	expect_fix(f, "ip6tables -I FORWARD 1 -m connmark --mark "
		      "0x5a000000/0xff000000 -j ACCEPT");
}

/* The shipped script's rule (xtables connmark and comment matches). */
Test(fw_judge, iptables_with_the_rule)
{
	struct fw_report r;

	judge("iptables-rule", &r);
	expect(find(&r, NFPROTO_IPV4, "filter", "FORWARD"), FW_FATE_ACCEPTED,
	       FW_FATE_ACCEPTED);
	expect(find(&r, NFPROTO_IPV6, "filter", "FORWARD"), FW_FATE_ACCEPTED,
	       FW_FATE_ACCEPTED);
	cr_expect(!r.blocks[FW_PKT_NEW] && !r.blocks[FW_PKT_EST]);
}

/* Docker: the isolation stages and the docker0 rules depend on
 * interfaces; the policy drops; the fix goes to DOCKER-USER. */
Test(fw_judge, docker)
{
	struct fw_report r;
	const struct fw_finding *f;

	judge("docker", &r);
	f = find(&r, NFPROTO_IPV4, "filter", "FORWARD");
	expect(f, FW_FATE_DROPPED, FW_FATE_DROPPED);
	cr_expect_eq(f->kind, FW_KIND_DOCKER);
	expect_fix(f, "iptables -I DOCKER-USER 1 -m connmark --mark "
		      "0x5a000000/0xff000000 -j ACCEPT");
	judge("docker-rule", &r);
	f = find(&r, NFPROTO_IPV4, "filter", "FORWARD");
	expect(f, FW_FATE_ACCEPTED, FW_FATE_ACCEPTED);
	cr_expect(strstr(f->why[FW_PKT_NEW], "-> DOCKER-USER [handle"), "%s",
		  f->why[FW_PKT_NEW]);
}

/* The evaluator's corners (tests/fixtures/firewalls/cases.nft). */
Test(fw_judge, corner_cases)
{
	struct fw_report r;

	judge("cases", &r);
	/* Another tag in the mark's high byte: never ours. */
	expect(find(&r, NFPROTO_INET, "c_other_tag", "fwd_c"), FW_FATE_DROPPED,
	       FW_FATE_DROPPED);
	/* A test of the low 24 bits (one association): not all of ours. */
	expect(find(&r, NFPROTO_INET, "c_low_bits", "fwd_c"), FW_FATE_DROPPED,
	       FW_FATE_DROPPED);
	/* ct state in an anonymous set. */
	expect(find(&r, NFPROTO_INET, "c_anon_set", "fwd_c"), FW_FATE_DROPPED,
	       FW_FATE_ACCEPTED);
	/* The end of a goto's chain returns past the caller: policy. */
	expect(find(&r, NFPROTO_INET, "c_goto", "fwd_c"), FW_FATE_DROPPED,
	       FW_FATE_DROPPED);
	/* Drops that depend on interfaces or protocols, or exclude our
	 * mark, are not ours. */
	expect(find(&r, NFPROTO_INET, "c_conditional_drop", "fwd_c"),
	       FW_FATE_PASS, FW_FATE_PASS);
	expect(find(&r, NFPROTO_INET, "c_status", "fwd_c"), FW_FATE_ACCEPTED,
	       FW_FATE_ACCEPTED);
	/* A verdict map on ct state that jumps for new flows. */
	const struct fw_finding *f =
		find(&r, NFPROTO_INET, "c_vmap_jump", "fwd_c");
	expect(f, FW_FATE_DROPPED, FW_FATE_ACCEPTED);
	cr_expect(strstr(f->why[FW_PKT_NEW], "-> fresh [handle"), "%s",
		  f->why[FW_PKT_NEW]);
	/* return from a jumped-to chain: back to the caller. */
	expect(find(&r, NFPROTO_IPV4, "c_return", "fwd_c"), FW_FATE_DROPPED,
	       FW_FATE_DROPPED);
	/* Our accept after a reject is never reached. */
	expect(find(&r, NFPROTO_INET, "c_mark_after_reject", "fwd_c"),
	       FW_FATE_DROPPED, FW_FATE_DROPPED);
	/* Dormant tables, our own table and other hooks are not judged. */
	for (size_t i = 0; i < r.n; i++) {
		cr_expect_str_neq(r.f[i].table, "c_dormant");
		cr_expect_str_neq(r.f[i].table, "socksgate");
		cr_expect_str_neq(r.f[i].table, "c_not_forward");
	}
	cr_expect_eq(r.n, 9);
}

/* The kinds of messages in any order give the same judgement (rules
 * before their chains, sets and tables; elements before their set), as
 * long as each chain's rules keep their order. */
Test(fw_judge, order_does_not_matter)
{
	size_t len;
	char *buf = load("fw4-default", &len);
	struct nlmsghdr *msgs[512];
	size_t n = 0;
	int left = (int)len;
	struct fw_model *m = fw_model_new();
	struct fw_report r = {0};

	for (struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	     mnl_nlmsg_ok(nlh, left) && n < 512;
	     nlh = mnl_nlmsg_next(nlh, &left))
		msgs[n++] = nlh;
	/* Rules first, in their order; then everything else backwards. */
	for (size_t i = 0; i < n; i++)
		if ((msgs[i]->nlmsg_type & 0xff) == NFT_MSG_NEWRULE)
			cr_assert_eq(fw_model_add(m, msgs[i]), 0);
	for (size_t i = n; i-- > 0;)
		if ((msgs[i]->nlmsg_type & 0xff) != NFT_MSG_NEWRULE)
			cr_assert_eq(fw_model_add(m, msgs[i]), 0);
	cr_assert_eq(fw_judge(m, &r), 0);
	expect(find(&r, NFPROTO_INET, "fw4", "forward"), FW_FATE_DROPPED,
	       FW_FATE_ACCEPTED);
	fw_model_free(m);
	free(buf);
}

/* Messages that are not ruleset objects (the dump's NLMSG_DONE, a
 * generation message, another subsystem's) are ignored.  (A malformed
 * attribute makes libnftnl exit the process, as it makes nft exit: the
 * kernel's messages are trusted the way nft trusts them.) */
Test(fw_judge, other_messages_ignored)
{
	struct fw_model *m = fw_model_new();
	struct fw_report r = {0};
	char buf[64] = {0};
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;

	nlh->nlmsg_len = NLMSG_HDRLEN + 4;
	nlh->nlmsg_type = NLMSG_DONE;
	cr_assert_eq(fw_model_add(m, nlh), 0);
	nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN;
	cr_assert_eq(fw_model_add(m, nlh), 0);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | NFT_MSG_NEWRULE;
	cr_assert_eq(fw_model_add(m, nlh), 0);
	cr_assert_eq(fw_judge(m, &r), 0);
	cr_assert_eq(r.n, 0);
	cr_assert_eq(r.rules, 0);
	fw_model_free(m);
}
