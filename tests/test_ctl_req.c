/*
 * Unit tests for daemon/ctl_req: the control socket's request lines, fed
 * whole and byte by byte, and every request and refusal.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "ctl_req.h"

/* The answer for the whole input must be what a byte-by-byte feed ends
 * with: NEED_MORE for every prefix until the first other answer. */
static enum ctl_req_status line_both_ways(const char *buf, size_t len,
					  size_t *ll, size_t *used)
{
	enum ctl_req_status whole = ctl_req_line(buf, len, ll, used), st;
	size_t l2 = 0, u2 = 0;

	for (size_t k = 0; k <= len; k++) {
		st = ctl_req_line(buf, k, &l2, &u2);
		if (st != CTL_REQ_NEED_MORE)
			break;
	}
	cr_assert_eq(st, whole, "byte by byte %d, whole %d", st, whole);
	if (whole == CTL_REQ_OK)
		cr_assert(l2 == *ll && u2 == *used);
	return whole;
}

static enum ctl_req_status req(const char *text, struct ctl_req *r)
{
	size_t ll, used;
	enum ctl_req_status st = line_both_ways(text, strlen(text), &ll, &used);

	if (st != CTL_REQ_OK)
		return st;
	return ctl_req_parse(text, ll, r);
}

Test(ctl_req, requests)
{
	struct ctl_req r;

	cr_assert_eq(req("list\n", &r), CTL_REQ_OK);
	cr_assert(r.kind == CTL_REQ_LIST && !r.json);
	cr_assert_eq(req("list json\r\n", &r), CTL_REQ_OK);
	cr_assert(r.kind == CTL_REQ_LIST && r.json);
	cr_assert_eq(req("stats\r\n", &r), CTL_REQ_OK);
	cr_assert(r.kind == CTL_REQ_STATS && !r.json);
	cr_assert_eq(req("stats json\n", &r), CTL_REQ_OK);
	cr_assert(r.kind == CTL_REQ_STATS && r.json);
	cr_assert_eq(req("close 42\n", &r), CTL_REQ_OK);
	cr_assert(r.kind == CTL_REQ_CLOSE && r.id == 42);
	cr_assert_eq(req("close 0016777215\n", &r), CTL_REQ_OK);
	cr_assert_eq(r.id, 16777215);
}

Test(ctl_req, refusals)
{
	struct ctl_req r;
	static const char *unknown[] = {
		"\n",		"lis\n",      "list  json\n",
		"list json \n", " list\n",    "LIST\n",
		"stats xml\n",	"closed 1\n", "list\rjson\n"};
	static const char *bad_id[] = {
		"close\n",    "close \n",
		"close 0\n",  "close -1\n",
		"close +1\n", "close  1\n",
		"close 1 \n", "close 16777216\n",
		"close 1x\n", "close 99999999999999999999\n"};

	for (size_t i = 0; i < sizeof(unknown) / sizeof(*unknown); i++)
		cr_assert_eq(req(unknown[i], &r), CTL_REQ_UNKNOWN, "%s",
			     unknown[i]);
	for (size_t i = 0; i < sizeof(bad_id) / sizeof(*bad_id); i++)
		cr_assert_eq(req(bad_id[i], &r), CTL_REQ_BAD_ID, "%s",
			     bad_id[i]);
}

Test(ctl_req, framing)
{
	char big[CTL_REQ_MAX + 10];
	size_t ll, used;
	const char nul[] = "list\0\n";
	const char two[] = "stats\nlist\n";

	cr_assert_eq(line_both_ways("list", 4, &ll, &used), CTL_REQ_NEED_MORE);
	cr_assert_eq(line_both_ways(nul, sizeof(nul) - 1, &ll, &used),
		     CTL_REQ_NUL);
	cr_assert_eq(line_both_ways(two, sizeof(two) - 1, &ll, &used),
		     CTL_REQ_OK);
	cr_assert(ll == 5 && used == 6);
	memset(big, 'a', sizeof(big));
	cr_assert_eq(line_both_ways(big, CTL_REQ_MAX - 1, &ll, &used),
		     CTL_REQ_NEED_MORE);
	cr_assert_eq(line_both_ways(big, CTL_REQ_MAX, &ll, &used),
		     CTL_REQ_TOO_LONG);
	/* The longest line: CTL_REQ_MAX bytes with its newline. */
	big[CTL_REQ_MAX - 1] = '\n';
	cr_assert_eq(line_both_ways(big, sizeof(big), &ll, &used), CTL_REQ_OK);
	cr_assert(ll == CTL_REQ_MAX - 1 && used == CTL_REQ_MAX);
	/* The parser refuses a NUL handed to it directly. */
	struct ctl_req r;
	cr_assert_eq(ctl_req_parse("list\0", 5, &r), CTL_REQ_NUL);
}
