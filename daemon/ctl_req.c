/*
 * ctl_req: see ctl_req.h.  Exact matches only: a request the client
 * (socksgate(1)) does not send is unknown, not guessed at.
 */
#include "ctl_req.h"

#include <string.h>

enum ctl_req_status ctl_req_line(const char *buf, size_t len, size_t *linelen,
				 size_t *consumed)
{
	size_t n = len < CTL_REQ_MAX ? len : CTL_REQ_MAX;

	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\0')
			return CTL_REQ_NUL;
		if (buf[i] == '\n') {
			*consumed = i + 1;
			*linelen = i > 0 && buf[i - 1] == '\r' ? i - 1 : i;
			return CTL_REQ_OK;
		}
	}
	return len >= CTL_REQ_MAX ? CTL_REQ_TOO_LONG : CTL_REQ_NEED_MORE;
}

static bool is_word(const char *line, size_t len, const char *w)
{
	size_t wl = strlen(w);

	return len == wl && memcmp(line, w, wl) == 0;
}

/* "ID": digits only (leading zeros allowed, as strtoul took them),
 * 1..CTL_REQ_MAX_ID. */
static int parse_id(const char *s, size_t len, uint32_t *out)
{
	uint32_t v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint32_t)(s[i] - '0');
		if (v > CTL_REQ_MAX_ID)
			return -1;
	}
	if (v == 0)
		return -1;
	*out = v;
	return 0;
}

enum ctl_req_status ctl_req_parse(const char *line, size_t len,
				  struct ctl_req *out)
{
	static const struct {
		const char *text;
		enum ctl_req_kind kind;
		bool json;
	} fixed[] = {
		{"list", CTL_REQ_LIST, false},
		{"list json", CTL_REQ_LIST, true},
		{"stats", CTL_REQ_STATS, false},
		{"stats json", CTL_REQ_STATS, true},
	};

	memset(out, 0, sizeof(*out));
	if (memchr(line, '\0', len) != NULL)
		return CTL_REQ_NUL;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (is_word(line, len, fixed[i].text)) {
			out->kind = fixed[i].kind;
			out->json = fixed[i].json;
			return CTL_REQ_OK;
		}
	}
	if (len >= 5 && memcmp(line, "close", 5) == 0 &&
	    (len == 5 || line[5] == ' ')) {
		if (len == 5 || parse_id(line + 6, len - 6, &out->id) < 0)
			return CTL_REQ_BAD_ID;
		out->kind = CTL_REQ_CLOSE;
		return CTL_REQ_OK;
	}
	return CTL_REQ_UNKNOWN;
}
