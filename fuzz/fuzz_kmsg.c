/*
 * libFuzzer target for the kernel agent's message decoder: kmsg_check()
 * on whatever a (compromised) session process could send, from every
 * sender position, then kmsg_check_open() on what passes as an OPEN.
 * Also the input as a packet of several messages (kmsg_check_packet).
 * Checks: a message passes only with the exact size of its type and the
 * current version; an OPEN that passes has terminated printable strings,
 * known families, and the agent's decision never grants a BND port of
 * the sender's choosing.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "kmsg.h"
#include "s5_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char senders[] = {'S', 'A', 'P', 'R'};
	static struct cfg c;
	static int init;
	union {
		unsigned char b[KMSG_MAX + 1];
		struct kmsg_hdr h;
		struct kmsg_open open;
	} u;

	if (!init) {
		cfg_defaults(&c);
		init = 1;
	}
	/* The whole input as a packet: taken only if every message in it
	 * passes on its own and they fill it exactly. */
	const char *pwhy = NULL;
	int nmsg = kmsg_check_packet(data, size, 'S', &pwhy);
	if (nmsg < 0 && pwhy == NULL)
		abort();
	for (size_t off = 0; nmsg > 0 && off < size;) {
		struct kmsg_hdr h;
		const char *w;
		memcpy(&h, data + off, sizeof(h));
		if (h.size > size - off ||
		    kmsg_check(data + off, h.size, 'S', &w) == KMSG_NONE)
			abort();
		off += h.size;
		if (--nmsg == 0 && off != size)
			abort();
	}
	if (size > sizeof(u.b))
		size = sizeof(u.b);
	memset(&u, 0, sizeof(u));
	memcpy(u.b, data, size);
	for (size_t i = 0; i < sizeof(senders); i++) {
		const char *why = NULL;
		enum kmsg_type t = kmsg_check(u.b, size, senders[i], &why);
		if (t == KMSG_NONE) {
			if (why == NULL)
				abort();
			continue;
		}
		if (size < sizeof(u.h) || u.h.version != KMSG_VERSION ||
		    u.h.size != size || u.h.type != t)
			abort();
		if (t != KMSG_OPEN)
			continue;
		if (senders[i] != 'S' || size != sizeof(u.open))
			abort();
		if (memchr(u.open.user, '\0', sizeof(u.open.user)) == NULL)
			abort();
		if (u.open.src.family != AF_INET &&
		    u.open.src.family != AF_INET6)
			abort();
		uint8_t rep = kmsg_check_open(&c, &u.open, &why);
		if (rep == S5_REP_SUCCEEDED &&
		    (u.open.bnd.port != 0 || !c.ptcl_enabled[u.open.proto] ||
		     u.open.dst.port == 0 || u.open.src.port == 0))
			abort();
		if (rep != S5_REP_SUCCEEDED && why == NULL)
			abort();
	}
	return 0;
}
