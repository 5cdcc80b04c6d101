/*
 * libFuzzer target for the UDP ASSOCIATE datagram header (RFC 1928
 * section 7), which every datagram from a client carries, followed by
 * what sess_udp.c does with it before any rule: an address literal sent
 * as a name is rewritten as the address (addr_s5_literal).  Checks:
 * consumed within the input and S5_MAX_UDP_HEADER, the same answer byte
 * by byte, build(parse(x)) == x, and a rewritten destination is an IPv4
 * or IPv6 address with the port kept.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "s5_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s5_udp_header h, h2;
	uint8_t out[S5_MAX_UDP_HEADER];
	size_t used = 0, u2;
	enum s5_status st = s5_udp_header_parse(data, size, &h, &used), st2;

	for (size_t k = 0; k <= size; k++) {
		st2 = s5_udp_header_parse(data, k, &h2, &u2);
		if (st2 != S5_NEED_MORE) {
			if (st2 != st || (st == S5_OK && u2 != used))
				abort();
			break;
		}
	}
	if (st != S5_OK)
		return 0;
	if (used > size || used > S5_MAX_UDP_HEADER)
		abort();
	ssize_t b = s5_udp_header_build(&h, out, sizeof(out));
	if (b != (ssize_t)used || memcmp(out, data, used) != 0)
		abort();
	uint16_t port = h.dst.port;
	uint8_t atyp = h.dst.atyp;
	enum addr_literal k = addr_s5_literal(&h.dst);
	if (atyp != S5_ATYP_DOMAIN && k != ADDR_LITERAL_NONE)
		abort();
	if (k == ADDR_LITERAL_ADDR) {
		struct sockaddr_storage ss;
		if ((h.dst.atyp != S5_ATYP_IPV4 &&
		     h.dst.atyp != S5_ATYP_IPV6) ||
		    h.dst.port != port || addr_from_s5(&h.dst, &ss) < 0 ||
		    addr_port((struct sockaddr *)&ss) != port)
			abort();
	}
	return 0;
}
