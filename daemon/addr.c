/*
 * addr: see addr.h.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

socklen_t addr_len(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in);
}

uint16_t addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

void addr_set_port(struct sockaddr *sa, uint16_t port)
{
	if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)sa)->sin_port = htons(port);
}

const uint8_t *addr_bytes(const struct sockaddr *sa, size_t *len)
{
	if (sa->sa_family == AF_INET6) {
		*len = 16;
		return ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	}
	*len = 4;
	return (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
}

const char *addr_ip_str(const struct sockaddr *sa, char *out, size_t cap)
{
	size_t n;
	const uint8_t *b;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
		snprintf(out, cap, "?");
		return out;
	}
	b = addr_bytes(sa, &n);
	if (inet_ntop(sa->sa_family, b, out, (socklen_t)cap) == NULL)
		snprintf(out, cap, "?");
	return out;
}

const char *addr_str(const struct sockaddr *sa, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];

	addr_ip_str(sa, ip, sizeof(ip));
	if (sa->sa_family == AF_INET6)
		snprintf(out, cap, "[%s]:%u", ip, addr_port(sa));
	else
		snprintf(out, cap, "%s:%u", ip, addr_port(sa));
	return out;
}

int addr_parse(const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		return 0;
	}
	return -1;
}

enum addr_literal addr_literal_parse(const char *name,
				     struct sockaddr_storage *ss)
{
	struct sockaddr_storage tmp;
	char buf[INET6_ADDRSTRLEN];
	size_t n = strlen(name);
	bool numeric = n > 0;

	if (ss == NULL)
		ss = &tmp;
	if (name[0] == '[' || strchr(name, ':') != NULL) {
		/* IPv6, optionally bracketed as in a URL; no zone id. */
		if (name[0] == '[') {
			if (n < 3 || name[n - 1] != ']')
				return ADDR_LITERAL_BAD;
			name++;
			n -= 2;
		}
		if (n >= sizeof(buf) || memchr(name, '%', n) != NULL)
			return ADDR_LITERAL_BAD;
		memcpy(buf, name, n);
		buf[n] = '\0';
		memset(ss, 0, sizeof(*ss));
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, buf, &s6->sin6_addr) != 1)
			return ADDR_LITERAL_BAD;
		s6->sin6_family = AF_INET6;
		return ADDR_LITERAL_ADDR;
	}
	for (size_t i = 0; i < n && numeric; i++)
		numeric = (name[i] >= '0' && name[i] <= '9') || name[i] == '.';
	if (!numeric)
		return ADDR_LITERAL_NONE;
	/* glibc's inet_pton(AF_INET) takes exactly a.b.c.d, each 0-255
	 * without leading zeros. */
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	if (inet_pton(AF_INET, name, &s4->sin_addr) != 1)
		return ADDR_LITERAL_BAD;
	s4->sin_family = AF_INET;
	return ADDR_LITERAL_ADDR;
}

enum addr_literal addr_s5_literal(struct s5_addr *a)
{
	struct sockaddr_storage ss;
	enum addr_literal k;
	uint16_t port = a->port;

	if (a->atyp != S5_ATYP_DOMAIN)
		return ADDR_LITERAL_NONE;
	k = addr_literal_parse(a->u.dom.name, &ss);
	if (k == ADDR_LITERAL_ADDR) {
		addr_to_s5((struct sockaddr *)&ss, a);
		a->port = port;
	}
	return k;
}

void addr_unmap(struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in s4;

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	s4.sin_port = s6->sin6_port;
	memcpy(&s4.sin_addr, s6->sin6_addr.s6_addr + 12, 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &s4, sizeof(s4));
}

int addr_from_s5(const struct s5_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->atyp == S5_ATYP_IPV4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a->u.v4, 4);
		s4->sin_port = htons(a->port);
		return 0;
	}
	if (a->atyp == S5_ATYP_IPV6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a->u.v6, 16);
		s6->sin6_port = htons(a->port);
		return 0;
	}
	return -1;
}

void addr_to_s5(const struct sockaddr *sa, struct s5_addr *a)
{
	size_t n;
	const uint8_t *b = addr_bytes(sa, &n);

	memset(a, 0, sizeof(*a));
	a->atyp = n == 16 ? S5_ATYP_IPV6 : S5_ATYP_IPV4;
	memcpy(n == 16 ? a->u.v6 : a->u.v4, b, n);
	a->port = addr_port(sa);
}

bool addr_eq_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	size_t la, lb;
	const uint8_t *ba, *bb;

	if (a->sa_family != b->sa_family)
		return false;
	ba = addr_bytes(a, &la);
	bb = addr_bytes(b, &lb);
	return la == lb && memcmp(ba, bb, la) == 0;
}

bool addr_is_unusable_bnd(const struct sockaddr *sa)
{
	static const uint8_t zero[16];
	size_t n;
	const uint8_t *b = addr_bytes(sa, &n);

	if (memcmp(b, zero, n) == 0)
		return true;
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_V4MAPPED(
		       &((const struct sockaddr_in6 *)sa)->sin6_addr);
}

int addr_cidr_parse(const char *s, struct addr_cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned long plen;
	unsigned max;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->bytes) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->bytes) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	out->plen = max;
	if (slash) {
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		plen = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || plen > max)
			return -1;
		out->plen = (unsigned)plen;
	}
	/* Clear host bits so that matching is a plain prefix compare. */
	for (unsigned i = out->plen; i < max; i++)
		out->bytes[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
	return 0;
}

bool addr_cidr_match(const struct addr_cidr *c, const struct sockaddr *sa)
{
	size_t n;
	const uint8_t *b;
	unsigned full, rest;

	if (sa->sa_family != c->family)
		return false;
	b = addr_bytes(sa, &n);
	full = c->plen / 8;
	rest = c->plen % 8;
	if (memcmp(b, c->bytes, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff00u >> rest);
	return (b[full] & mask) == c->bytes[full];
}

/* What an IPv4 address (network order bytes) is to the kernel. */
static enum addr_dst dst_v4(const uint8_t *b)
{
	if (b[0] == 0)
		return ADDR_DST_THIS_HOST; /* RFC 1122 3.2.1.3: 0/8 */
	if ((b[0] & 0xf0) == 0xe0)
		return ADDR_DST_MULTICAST;
	if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
		return ADDR_DST_BROADCAST;
	return ADDR_DST_OK;
}

static void set_v4(struct sockaddr_storage *ss, const uint8_t *b,
		   in_port_t port, bool invert)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	uint8_t *a = (uint8_t *)&s4->sin_addr;

	memset(ss, 0, sizeof(*ss));
	s4->sin_family = AF_INET;
	s4->sin_port = port;
	for (int i = 0; i < 4; i++)
		a[i] = invert ? (uint8_t)~b[i] : b[i];
}

enum addr_dst addr_dst_normalise(const struct sockaddr *dst,
				 struct sockaddr_storage *out,
				 struct sockaddr_storage *embedded)
{
	static const uint8_t zero[12];
	static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)dst;
	const uint8_t *b;

	memset(embedded, 0, sizeof(*embedded));
	memset(out, 0, sizeof(*out));
	if (dst->sa_family == AF_INET) {
		memcpy(out, dst, sizeof(struct sockaddr_in));
		return dst_v4(
			(const uint8_t *)&((const struct sockaddr_in *)dst)
				->sin_addr);
	}
	if (dst->sa_family != AF_INET6)
		return ADDR_DST_INVALID;
	b = s6->sin6_addr.s6_addr;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		/* The kernel sends it as IPv4 from an IPv4 source. */
		set_v4(out, b + 12, s6->sin6_port, false);
		return dst_v4(b + 12);
	}
	memcpy(out, dst, sizeof(struct sockaddr_in6));
	if (memcmp(b, zero, 12) == 0) {
		if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
			return ADDR_DST_THIS_HOST;
		if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return ADDR_DST_OK; /* ::1: the rules decide */
		return ADDR_DST_V4COMPAT;
	}
	if (b[0] == 0xff)
		return ADDR_DST_MULTICAST;
	if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
		return ADDR_DST_LINK_LOCAL;
	if (memcmp(b, nat64, 12) == 0)
		set_v4(embedded, b + 12, s6->sin6_port, false);
	else if (b[0] == 0x20 && b[1] == 0x02)
		set_v4(embedded, b + 2, s6->sin6_port, false);
	else if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0)
		set_v4(embedded, b + 12, s6->sin6_port, true);
	else
		return ADDR_DST_OK;
	/* What the translator or tunnel would be asked to reach. */
	return dst_v4(
		(const uint8_t *)&((struct sockaddr_in *)embedded)->sin_addr);
}

const char *addr_dst_str(enum addr_dst r)
{
	switch (r) {
	case ADDR_DST_OK:
		return "ordinary address";
	case ADDR_DST_THIS_HOST:
		return "unspecified address (this host)";
	case ADDR_DST_V4COMPAT:
		return "IPv4-compatible IPv6 address";
	case ADDR_DST_MULTICAST:
		return "multicast address";
	case ADDR_DST_BROADCAST:
		return "broadcast address";
	case ADDR_DST_LINK_LOCAL:
		return "link-local address without a zone";
	case ADDR_DST_INVALID:
		return "not an IPv4 or IPv6 address";
	}
	return "?";
}

bool addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const uint8_t *)&((const struct sockaddr_in *)sa)
				->sin_addr)[0] == 127;
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(
		       &((const struct sockaddr_in6 *)sa)->sin6_addr);
}

bool addr_is_multicast_or_broadcast(const struct sockaddr *sa)
{
	size_t n;
	const uint8_t *b = addr_bytes(sa, &n);

	if (n == 16)
		return b[0] == 0xff;
	return (b[0] & 0xf0) == 0xe0 ||
	       (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255);
}
