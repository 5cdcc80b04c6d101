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
