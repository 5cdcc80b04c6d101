/*
 * ptcl: the IP protocols TRANSPARENT can relay (those with ports), by
 * name and number, for the daemon's configuration and the client's
 * command line alike.  Pure.
 */
#ifndef SOCKSGATE_PTCL_H
#define SOCKSGATE_PTCL_H

#include <stdint.h>

/* (enum name, number, name) */
#define PTCL_LIST(X)                                                           \
	X(PTCL_TCP, 6, "tcp")                                                  \
	X(PTCL_UDP, 17, "udp")                                                 \
	X(PTCL_DCCP, 33, "dccp")                                               \
	X(PTCL_SCTP, 132, "sctp")                                              \
	X(PTCL_UDPLITE, 136, "udplite")

#define PTCL_ENUM(e, num, name) e = num,
enum ptcl { PTCL_LIST(PTCL_ENUM) };
#undef PTCL_ENUM

/* "tcp", "udp"... or a number 0..255 (1..255 when !allow_zero); returns
 * the protocol number or -1. */
int ptcl_parse(const char *s, int allow_zero);
/* The name of a protocol with ports, or NULL. */
const char *ptcl_name(uint8_t p);
/* True for the protocols with ports listed above. */
int ptcl_has_ports(uint8_t p);

#endif
