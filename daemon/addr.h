/*
 * addr: socket address helpers shared by the daemon's modules: formatting,
 * numeric parsing, conversion to and from SOCKS5 wire addresses, CIDR
 * prefixes.  Pure: no I/O, no allocation.
 */
#ifndef SOCKSGATE_ADDR_H
#define SOCKSGATE_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "s5_proto.h"

/* Enough for "[ffff:...:ffff]:65535". */
#define ADDR_STRLEN 64

struct addr_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t bytes[16];
	unsigned plen;
};

socklen_t addr_len(const struct sockaddr *sa);
uint16_t addr_port(const struct sockaddr *sa);
void addr_set_port(struct sockaddr *sa, uint16_t port);
/* "198.18.0.1:80" or "[2001:db8::1]:80". Returns out. */
const char *addr_str(const struct sockaddr *sa, char *out, size_t cap);
/* The address alone, without port or brackets. Returns out. */
const char *addr_ip_str(const struct sockaddr *sa, char *out, size_t cap);
/* Numeric IPv4 or IPv6 text to a sockaddr; 0 or -1. */
int addr_parse(const char *ip, uint16_t port, struct sockaddr_storage *ss);

/* What a requested name is, before anyone resolves it. */
enum addr_literal {
	ADDR_LITERAL_NONE = 0, /* an ordinary name: resolve it */
	ADDR_LITERAL_ADDR,     /* an address literal: *ss holds it, port 0 */
	ADDR_LITERAL_BAD,      /* shaped like an address but not one we use:
				* "not found", without asking DNS */
};
/*
 * Classifies a name (NUL-terminated, as a client sent it) so that address
 * literals never reach a resolver:
 *   "198.18.1.2"            strict dotted quad (inet_pton)    -> ADDR
 *   "2001:db8::5", "[2001:db8::5]"  IPv6 (inet_pton)          -> ADDR
 *   "::ffff:198.18.1.2"     IPv6, IPv4-mapped, kept as written -> ADDR
 *   "fe80::1%eth0"          zone id: the rules cannot name an
 *                           interface, and a wire address has none -> BAD
 *   other names with ':' or '[': not host names (RFC 1123)    -> BAD
 *   digits and dots only, not a strict quad ("198.18.1",
 *   "010.0.0.1", "3221225985"): inet_aton forms that a resolver
 *   might read otherwise, and never a DNS name (RFC 3696 2)   -> BAD
 *   anything else                                             -> NONE
 * ss may be NULL.  Pure.
 */
enum addr_literal addr_literal_parse(const char *name,
				     struct sockaddr_storage *ss);
/*
 * If a is a name (ATYP X'03') holding an address literal, rewrites it in
 * place as the IPv4 or IPv6 wire address, port kept, so that the request
 * is handled exactly as if the client had sent the literal.  Returns the
 * classification of the name; ADDR_LITERAL_NONE for a non-name.
 */
enum addr_literal addr_s5_literal(struct s5_addr *a);
/* Rewrites an IPv4-mapped IPv6 address (::ffff:a.b.c.d) as plain IPv4. */
void addr_unmap(struct sockaddr_storage *ss);
/* IPv4/IPv6 wire address to sockaddr; -1 for a domain name. */
int addr_from_s5(const struct s5_addr *a, struct sockaddr_storage *ss);
/* sockaddr to wire address (IPv4 or IPv6). */
void addr_to_s5(const struct sockaddr *sa, struct s5_addr *a);
/* True if the two addresses are equal (ports ignored). */
bool addr_eq_ip(const struct sockaddr *a, const struct sockaddr *b);
/* True for 0.0.0.0, ::, and IPv4-mapped addresses: never a BND.ADDR. */
bool addr_is_unusable_bnd(const struct sockaddr *sa);
/*
 * What the kernel does with a destination, for the rules (the table in
 * docs/security.md, "Destination forms").  A request or datagram whose
 * destination is not ADDR_DST_OK is refused whatever the rules say.
 */
enum addr_dst {
	ADDR_DST_OK = 0,     /* an address the rules decide on */
	ADDR_DST_THIS_HOST,  /* 0.0.0.0/8, ::: the kernel means the gateway */
	ADDR_DST_V4COMPAT,   /* ::a.b.c.d (IPv4-compatible, deprecated):
			      * sit0 carries it to a.b.c.d over IPv4 */
	ADDR_DST_MULTICAST,  /* 224.0.0.0/4, ff00::/8: loops back to the
			      * gateway's own group members, and out */
	ADDR_DST_BROADCAST,  /* 255.255.255.255 */
	ADDR_DST_LINK_LOCAL, /* fe80::/10: a wire address has no zone,
			      * so no link is named */
	ADDR_DST_INVALID,    /* neither IPv4 nor IPv6 */
};
/*
 * Normalises a destination (after name resolution) into what the rules
 * must see.  *out: dst as the kernel uses it, port kept; an IPv4-mapped
 * address (::ffff:a.b.c.d) becomes a.b.c.d.  *embedded: the IPv4 address
 * that a NAT64 (64:ff9b::/96, RFC 6052), 6to4 (2002::/16, RFC 3056) or
 * Teredo (2001::/32, RFC 4380: the client's, de-obfuscated) address
 * carries, port kept; a translator or tunnel on the way delivers there,
 * so both addresses must pass the rules.  ss_family 0 for other
 * addresses.  Returns ADDR_DST_OK, or why the address (or the IPv4
 * address it carries) is refused.  out and embedded may not alias dst.
 */
enum addr_dst addr_dst_normalise(const struct sockaddr *dst,
				 struct sockaddr_storage *out,
				 struct sockaddr_storage *embedded);
/* "unspecified address (this host)" ...: for log lines. */
const char *addr_dst_str(enum addr_dst r);
/* True for 127.0.0.0/8 and ::1 (the kernel's loopback, whatever lo has). */
bool addr_is_loopback(const struct sockaddr *sa);
/* True for 224.0.0.0/4, 255.255.255.255 and ff00::/8. */
bool addr_is_multicast_or_broadcast(const struct sockaddr *sa);

/* Raw address bytes and their length (4 or 16). */
const uint8_t *addr_bytes(const struct sockaddr *sa, size_t *len);

/* "198.18.0.0/15", "2001:db8::/32" or a bare address; 0 or -1. */
int addr_cidr_parse(const char *s, struct addr_cidr *out);
bool addr_cidr_match(const struct addr_cidr *c, const struct sockaddr *sa);

#endif
