/*
 * libFuzzer target for the control socket's requests: the framing ctl.c
 * runs on the bytes a connection sends (ctl_req_line) and the command
 * ctl_cmd.c dispatches on (ctl_req_parse).  A pure parse was factored
 * out of both rather than driving ctl_cmd_answer with a stub server: the
 * answers only format counters, the bytes from outside meet the parser.
 * Checks: the same answer byte by byte, consumed within the input and
 * CTL_REQ_MAX, and an accepted request written back canonically is the
 * line (leading zeros of an id aside).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t ll = 0, used = 0, l2, u2;
	enum ctl_req_status st = ctl_req_line(buf, size, &ll, &used), st2;
	struct ctl_req r;
	char canon[64];

	for (size_t k = 0; k <= size; k++) {
		st2 = ctl_req_line(buf, k, &l2, &u2);
		if (st2 != CTL_REQ_NEED_MORE) {
			if (st2 != st ||
			    (st == CTL_REQ_OK && (l2 != ll || u2 != used)))
				abort();
			break;
		}
	}
	if (st == CTL_REQ_TOO_LONG && size < CTL_REQ_MAX)
		abort();
	if (st != CTL_REQ_OK)
		return 0;
	if (used > size || used > CTL_REQ_MAX || ll >= used ||
	    buf[used - 1] != '\n')
		abort();
	if (memchr(buf, '\n', used - 1) != NULL)
		abort();
	switch (ctl_req_parse(buf, ll, &r)) {
	case CTL_REQ_OK:
		break;
	case CTL_REQ_UNKNOWN:
	case CTL_REQ_BAD_ID:
		return 0;
	default:
		abort();
	}
	if (r.kind == CTL_REQ_CLOSE) {
		if (r.id == 0 || r.id > CTL_REQ_MAX_ID)
			abort();
		const char *p = buf + 6, *end = buf + ll;
		while (p < end - 1 && *p == '0')
			p++;
		snprintf(canon, sizeof(canon), "close %u", (unsigned)r.id);
		if (ll < 6 || memcmp(buf, "close ", 6) != 0 ||
		    strlen(canon) - 6 != (size_t)(end - p) ||
		    memcmp(canon + 6, p, (size_t)(end - p)) != 0)
			abort();
		return 0;
	}
	snprintf(canon, sizeof(canon), "%s%s",
		 r.kind == CTL_REQ_LIST ? "list" : "stats",
		 r.json ? " json" : "");
	if (r.kind != CTL_REQ_LIST && r.kind != CTL_REQ_STATS)
		abort();
	if (strlen(canon) != ll || memcmp(canon, buf, ll) != 0)
		abort();
	return 0;
}
