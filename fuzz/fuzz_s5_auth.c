/*
 * libFuzzer target for the RFC 1929 username/password request, the
 * second thing an unauthenticated client sends when `auth password` is
 * on.  Checks the codec's promises: consumed within the input and
 * S5_MAX_AUTH, NEED_MORE for every strict prefix of an accepted message
 * and the same answer byte by byte, the copies NUL-terminated at their
 * lengths (what auth_check relies on), and build(parse(x)) == x.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s5_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s5_auth a, a2;
	uint8_t out[S5_MAX_AUTH];
	size_t used = 0, u2;
	enum s5_status st = s5_auth_parse(data, size, &a, &used), st2;

	/* Byte by byte: NEED_MORE until the first other answer, which is
	 * the whole input's. */
	for (size_t k = 0; k <= size; k++) {
		st2 = s5_auth_parse(data, k, &a2, &u2);
		if (st2 != S5_NEED_MORE) {
			if (st2 != st || (st == S5_OK && u2 != used))
				abort();
			break;
		}
	}
	if (st != S5_OK)
		return 0;
	if (used > size || used > S5_MAX_AUTH || a.ulen == 0 || a.plen == 0)
		abort();
	if (a.uname[a.ulen] != '\0' || a.passwd[a.plen] != '\0')
		abort();
	if (used != 3u + a.ulen + a.plen ||
	    memcmp(a.uname, data + 2, a.ulen) != 0 ||
	    memcmp(a.passwd, data + 3 + a.ulen, a.plen) != 0)
		abort();
	ssize_t b = s5_auth_build(&a, out, sizeof(out));
	if (b != (ssize_t)used || memcmp(out, data, used) != 0)
		abort();
	return 0;
}
