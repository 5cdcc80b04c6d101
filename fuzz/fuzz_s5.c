/*
 * libFuzzer target for the SOCKS5 parsers a server exposes to the
 * network: the first byte picks the parser (request, auth, methods, UDP
 * header); the rest is the input.  Besides memory safety (ASan/UBSan) it
 * checks the codec's promises: consumed never exceeds the input, every
 * strict prefix of an accepted message answers NEED_MORE, and an accepted
 * request, built again, gives back the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s5_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const uint8_t *d, size_t n)
{
	struct s5_request r, r2;
	uint8_t out[S5_MAX_REQUEST + 8];
	size_t used = 0, u2;
	enum s5_status st = s5_request_parse(d, n, &r, &used);

	if (st != S5_OK)
		return;
	if (used > n || used > S5_MAX_REQUEST)
		abort();
	for (size_t k = 0; k < used; k++)
		if (s5_request_parse(d, k, &r2, &u2) != S5_NEED_MORE)
			abort();
	ssize_t b = s5_request_build(&r, out, sizeof(out));
	if (b != (ssize_t)used || memcmp(out, d, used) != 0)
		abort();
}

static void check_auth(const uint8_t *d, size_t n)
{
	struct s5_auth a, a2;
	uint8_t out[S5_MAX_AUTH];
	size_t used = 0, u2;

	if (s5_auth_parse(d, n, &a, &used) != S5_OK)
		return;
	if (used > n || used > S5_MAX_AUTH)
		abort();
	for (size_t k = 0; k < used; k++)
		if (s5_auth_parse(d, k, &a2, &u2) != S5_NEED_MORE)
			abort();
	ssize_t b = s5_auth_build(&a, out, sizeof(out));
	if (b != (ssize_t)used || memcmp(out, d, used) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s5_methods m;
	struct s5_udp_header h;
	struct s5_reply rep;
	size_t used;

	if (size < 1)
		return 0;
	switch (data[0] % 5) {
	case 0:
		check_request(data + 1, size - 1);
		break;
	case 1:
		check_auth(data + 1, size - 1);
		break;
	case 2:
		if (s5_methods_parse(data + 1, size - 1, &m, &used) == S5_OK &&
		    used > size - 1)
			abort();
		break;
	case 3:
		if (s5_udp_header_parse(data + 1, size - 1, &h, &used) ==
			    S5_OK &&
		    used > size - 1)
			abort();
		break;
	default:
		if (s5_reply_parse(data + 1, size - 1, &rep, &used) == S5_OK &&
		    used > size - 1)
			abort();
		break;
	}
	return 0;
}
