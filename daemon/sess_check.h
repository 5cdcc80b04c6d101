/*
 * sess_check: the pure decision for a TRANSPARENT request, taken after
 * names are resolved and before anything is installed.  Unit-tested
 * without sockets (smtpd's check-then-act).
 */
#ifndef SOCKSGATE_SESS_CHECK_H
#define SOCKSGATE_SESS_CHECK_H

#include <stdint.h>
#include <sys/socket.h>

#include "cfg.h"

struct tp_check_in {
	const struct cfg *cfg;
	const struct sockaddr *peer; /* N1 peer, IPv4-mapped already unmapped */
	const struct sockaddr *local; /* N1 local address */
	uint8_t ptcl;
	const struct sockaddr *src;  /* S.ADDR:S.PORT, resolved */
	const struct sockaddr *dst;  /* DST.ADDR:DST.PORT, resolved */
	const char *dst_name;	     /* DST as the client named it, or NULL */
	const char *user;	     /* NULL without authentication */
	const struct pol_self *self; /* for `to self`; may be NULL */
	/* NULL, or why the kernel cannot relay PTCL (ct_relay_unsupported):
	 * refused like a PTCL that is not enabled. */
	const char *ptcl_unsupported;
};

struct tp_check_out {
	struct sockaddr_storage bnd; /* BND.ADDR, port 0 (allocated later) */
	const char *why;	     /* for the log when refused */
	int rule_line;
};

/* Returns the reply code: S5_REP_SUCCEEDED with out->bnd set, or the
 * failure code (X'09' PTCL not enabled or not relayable, X'08' family, X'02'
 * policy/source or a destination form the rules may not allow, X'04'
 * unusable destination) with out->why set. */
uint8_t sess_check_transparent(const struct tp_check_in *in,
			       struct tp_check_out *out);

#endif
