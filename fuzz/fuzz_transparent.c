/*
 * libFuzzer target for the TRANSPARENT request (draft-lucioni-a-socks-
 * transparent-proxy-method-00 section 3.1), from the bytes to the
 * decision.  The input follows a fixed VER CMD RSV (05 04 00), so every
 * run is a TRANSPARENT request and the fuzzer's bytes go to what the
 * draft adds: DST, then PTCL, S.ATYP, S.ADDR, S.PORT.  Then, as the
 * session does: address literals sent as names rewritten
 * (addr_s5_literal, X'04' for a bad one), names "resolved" to fixed
 * addresses, and the pure decision (sess_check_transparent) against a
 * fixed configuration with rules by address, by name and by port.
 * Checks: the codec's promises (byte by byte, build(parse(x)) == x), a
 * documented reply code, and a success's BND in S.ADDR's family, port 0,
 * encodable in a reply that parses back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "cfg.h"
#include "s5_proto.h"
#include "sess_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char conf[] =
	"rule deny to .blocked.example command transparent\n"
	"rule allow from 198.18.0.0/24 to 198.18.1.0/24 port 1-9999 command "
	"transparent\n"
	"rule allow from 2001:db8::/64 to target.example command "
	"transparent\n"
	"rule allow from 2001:db8::/64 to 2001:db8:1::/64 command "
	"transparent\n"
	"transparent-protocols tcp udp sctp udplite dccp\n"
	"relay-address 2001:db8::1\n";

static const struct cfg *config(void)
{
	static struct cfg c;
	static bool ready;
	char err[256];

	if (!ready) {
		if (cfg_parse_buf(conf, sizeof(conf) - 1, "fuzz.conf", &c, err,
				  sizeof(err)) < 0)
			abort();
		ready = true;
	}
	return &c;
}

/* A name "resolves" to a fixed address of the family wanted. */
static void resolve(const struct s5_addr *a, int family, const char *v4,
		    const char *v6, struct sockaddr_storage *ss)
{
	if (addr_from_s5(a, ss) == 0)
		return;
	if (addr_parse(family == AF_INET6 ? v6 : v4, a->port, ss) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *msg = malloc(size + 3), out[S5_MAX_REQUEST + 8];
	struct s5_request r, r2;
	struct s5_reply rep_msg, rep_back;
	size_t n = size + 3, used = 0, u2;
	enum s5_status st, st2;

	if (msg == NULL)
		return 0;
	msg[0] = S5_VERSION;
	msg[1] = S5_CMD_TRANSPARENT;
	msg[2] = 0;
	memcpy(msg + 3, data, size);
	st = s5_request_parse(msg, n, &r, &used);
	for (size_t k = 0; k <= n; k++) {
		st2 = s5_request_parse(msg, k, &r2, &u2);
		if (st2 != S5_NEED_MORE) {
			if (st2 != st || (st == S5_OK && u2 != used))
				abort();
			break;
		}
	}
	if (st != S5_OK)
		goto out;
	if (used > n || used > S5_MAX_REQUEST || r.cmd != S5_CMD_TRANSPARENT)
		abort();
	ssize_t b = s5_request_build(&r, out, sizeof(out));
	if (b != (ssize_t)used || memcmp(out, msg, used) != 0)
		abort();

	/* The session: literals first (a bad one is X'04' at once). */
	if (addr_s5_literal(&r.dst) == ADDR_LITERAL_BAD ||
	    addr_s5_literal(&r.src) == ADDR_LITERAL_BAD)
		goto out;
	bool dst_is_name = r.dst.atyp == S5_ATYP_DOMAIN;
	int fam = r.src.atyp == S5_ATYP_IPV6   ? AF_INET6
		  : r.src.atyp == S5_ATYP_IPV4 ? AF_INET
		  : r.dst.atyp == S5_ATYP_IPV6 ? AF_INET6
					       : AF_INET;
	struct sockaddr_storage src, dst, peer, local;
	resolve(&r.src, fam, "198.18.0.2", "2001:db8::2", &src);
	resolve(&r.dst, fam, "198.18.1.2", "2001:db8:1::2", &dst);
	addr_parse(fam == AF_INET6 ? "2001:db8::2" : "198.18.0.2", 40000,
		   &peer);
	addr_parse(fam == AF_INET6 ? "2001:db8::1" : "198.18.0.1", 1080,
		   &local);
	addr_unmap(&peer);
	struct tp_check_in in = {
		.cfg = config(),
		.peer = (struct sockaddr *)&peer,
		.local = (struct sockaddr *)&local,
		.ptcl = r.ptcl,
		.src = (struct sockaddr *)&src,
		.dst = (struct sockaddr *)&dst,
		.dst_name = dst_is_name ? r.dst.u.dom.name : NULL,
	};
	struct tp_check_out o;
	uint8_t rep = sess_check_transparent(&in, &o);
	switch (rep) {
	case S5_REP_SUCCEEDED:
		if (o.bnd.ss_family != src.ss_family ||
		    addr_port((struct sockaddr *)&o.bnd) != 0 ||
		    addr_port((struct sockaddr *)&src) == 0 ||
		    addr_port((struct sockaddr *)&dst) == 0 ||
		    addr_is_unusable_bnd((struct sockaddr *)&o.bnd))
			abort();
		memset(&rep_msg, 0, sizeof(rep_msg));
		addr_to_s5((struct sockaddr *)&o.bnd, &rep_msg.bnd);
		b = s5_reply_build(&rep_msg, out, sizeof(out));
		if (b < 0 ||
		    s5_reply_parse(out, (size_t)b, &rep_back, &u2) != S5_OK ||
		    u2 != (size_t)b ||
		    memcmp(&rep_back.bnd.u, &rep_msg.bnd.u,
			   rep_msg.bnd.atyp == S5_ATYP_IPV4 ? 4 : 16) != 0)
			abort();
		break;
	case S5_REP_NOT_ALLOWED:
	case S5_REP_HOST_UNREACH:
	case S5_REP_ATYP_UNSUPPORTED:
	case S5_REP_PTCL_UNSUPPORTED:
		if (o.why == NULL)
			abort();
		break;
	default:
		abort();
	}
out:
	free(msg);
	return 0;
}
