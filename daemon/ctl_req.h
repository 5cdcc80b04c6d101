/*
 * ctl_req: the control socket's request, parsed without I/O (the codec
 * of ctl.c's lines and ctl_cmd.c's commands).  A request is one line:
 *
 *   +-----------------------------------------+--------+
 *   | list [json] | stats [json] | close ID   | \r? \n |
 *   +-----------------------------------------+--------+
 *   |       at most CTL_REQ_MAX bytes in all           |
 *   +--------------------------------------------------+
 *
 * words separated by one space, ID a decimal association id 1..16777215
 * (digits only: no sign, no space).  Pure: never writes into buf; the same
 * answer whether the bytes come at once or one at a time.
 */
#ifndef SOCKSGATE_CTL_REQ_H
#define SOCKSGATE_CTL_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_REQ_MAX 255		 /* line and newline */
#define CTL_REQ_MAX_ID 0xffffffu /* association ids: 24 bits */

enum ctl_req_status {
	CTL_REQ_OK = 0,
	CTL_REQ_NEED_MORE, /* no newline yet */
	CTL_REQ_TOO_LONG,  /* no newline within CTL_REQ_MAX bytes */
	CTL_REQ_NUL,	   /* a NUL byte before the newline */
	CTL_REQ_UNKNOWN,   /* not one of the requests above */
	CTL_REQ_BAD_ID,	   /* close without a valid id */
};

enum ctl_req_kind { CTL_REQ_LIST = 1, CTL_REQ_STATS, CTL_REQ_CLOSE };

struct ctl_req {
	enum ctl_req_kind kind;
	bool json;   /* list, stats */
	uint32_t id; /* close */
};

/* Finds the request line in the len bytes received so far: CTL_REQ_OK
 * with *linelen (without "\n" or "\r\n") and *consumed (with it),
 * CTL_REQ_NEED_MORE, CTL_REQ_TOO_LONG or CTL_REQ_NUL. */
enum ctl_req_status ctl_req_line(const char *buf, size_t len, size_t *linelen,
				 size_t *consumed);
/* Parses a line (no newline; len bytes, NULs not allowed): CTL_REQ_OK with
 * *out filled, CTL_REQ_UNKNOWN, CTL_REQ_BAD_ID or CTL_REQ_NUL. */
enum ctl_req_status ctl_req_parse(const char *line, size_t len,
				  struct ctl_req *out);

#endif
