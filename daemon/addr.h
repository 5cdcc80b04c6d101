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
/* Raw address bytes and their length (4 or 16). */
const uint8_t *addr_bytes(const struct sockaddr *sa, size_t *len);

/* "198.18.0.0/15", "2001:db8::/32" or a bare address; 0 or -1. */
int addr_cidr_parse(const char *s, struct addr_cidr *out);
bool addr_cidr_match(const struct addr_cidr *c, const struct sockaddr *sa);

#endif
