/*
 * libFuzzer target for addr_literal_parse, which classifies every name a
 * client sends (DST, S.ADDR, each UDP datagram's destination) before any
 * resolver sees it.  The input is the name (as on the wire: up to 255
 * bytes, no NUL).  Checks what addr.h promises: an IPv4 literal is a
 * strict dotted quad, so printing it back gives the name; an IPv6 literal
 * parses back to the same address; a name classified ordinary (NONE) has
 * neither ':' nor a leading '[' and is not made of digits and dots alone.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[256], back[INET6_ADDRSTRLEN + 2];
	struct sockaddr_storage ss, ss2;
	size_t n = size < 255 ? size : 255;

	if (memchr(data, '\0', n) != NULL)
		return 0; /* s5_proto refuses a name with a NUL */
	memcpy(name, data, n);
	name[n] = '\0';
	memset(&ss, 0xa5, sizeof(ss));
	switch (addr_literal_parse(name, &ss)) {
	case ADDR_LITERAL_ADDR:
		if (addr_port((struct sockaddr *)&ss) != 0)
			abort();
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			if (inet_ntop(AF_INET, &s4->sin_addr, back,
				      sizeof(back)) == NULL ||
			    strcmp(back, name) != 0)
				abort();
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			if (inet_ntop(AF_INET6, &s6->sin6_addr, back,
				      sizeof(back)) == NULL ||
			    addr_literal_parse(back, &ss2) !=
				    ADDR_LITERAL_ADDR ||
			    !addr_eq_ip((struct sockaddr *)&ss,
					(struct sockaddr *)&ss2))
				abort();
		} else {
			abort();
		}
		break;
	case ADDR_LITERAL_NONE:
		if (strchr(name, ':') != NULL || name[0] == '[' ||
		    (n > 0 && strspn(name, "0123456789.") == n))
			abort();
		break;
	case ADDR_LITERAL_BAD:
		if (n == 0)
			abort();
		break;
	default:
		abort();
	}
	return 0;
}
