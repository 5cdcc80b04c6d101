/*
 * s5_proto: the SOCKS5 wire codec.  See s5_proto.h for the contract.
 *
 * Must not: do I/O, allocate, log, keep state between calls, or write into
 * the input buffer.  Every length is checked against len before the byte
 * it guards is read.
 */
#include "s5_proto.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/*
 * Address field shared by requests, replies and UDP headers:
 *   +------+----------+----------+
 *   | ATYP |   ADDR   |   PORT   |
 *   +------+----------+----------+
 *   |  1   | Variable |    2     |
 *   +------+----------+----------+
 * ADDR is 4 bytes (IPv4), 16 bytes (IPv6) or a length byte 1..255 and the
 * name (domain).  On success *off is advanced past the port.
 */
static enum s5_status parse_addr(const uint8_t *buf, size_t len, size_t *off,
				 struct s5_addr *a, enum s5_status bad_atyp)
{
	size_t o = *off, alen;

	if (o >= len)
		return S5_NEED_MORE;
	a->atyp = buf[o++];
	switch (a->atyp) {
	case S5_ATYP_IPV4:
		alen = 4;
		break;
	case S5_ATYP_IPV6:
		alen = 16;
		break;
	case S5_ATYP_DOMAIN:
		if (o >= len)
			return S5_NEED_MORE;
		alen = buf[o++];
		if (alen == 0)
			return S5_ERR_DOMAIN;
		break;
	default:
		return bad_atyp;
	}
	if (a->atyp == S5_ATYP_DOMAIN) {
		/* Report a NUL in the name as soon as it is seen. */
		size_t avail = len - o < alen ? len - o : alen;
		if (memchr(buf + o, '\0', avail) != NULL)
			return S5_ERR_DOMAIN;
	}
	if (len - o < alen + 2)
		return S5_NEED_MORE;
	switch (a->atyp) {
	case S5_ATYP_IPV4:
		memcpy(a->u.v4, buf + o, 4);
		break;
	case S5_ATYP_IPV6:
		memcpy(a->u.v6, buf + o, 16);
		break;
	default:
		a->u.dom.len = (uint8_t)alen;
		memcpy(a->u.dom.name, buf + o, alen);
		a->u.dom.name[alen] = '\0';
		break;
	}
	o += alen;
	a->port = (uint16_t)(buf[o] << 8 | buf[o + 1]);
	*off = o + 2;
	return S5_OK;
}

size_t s5_addr_wire_len(const struct s5_addr *a)
{
	switch (a->atyp) {
	case S5_ATYP_IPV4:
		return 1 + 4 + 2;
	case S5_ATYP_IPV6:
		return 1 + 16 + 2;
	case S5_ATYP_DOMAIN:
		if (a->u.dom.len == 0)
			return 0;
		return 1 + 1 + (size_t)a->u.dom.len + 2;
	default:
		return 0;
	}
}

/* Writes the address field; returns bytes written or -1. */
static ssize_t build_addr(const struct s5_addr *a, uint8_t *out, size_t cap)
{
	size_t n = s5_addr_wire_len(a), o = 0;

	if (n == 0 || n > cap)
		return -1;
	if (a->atyp == S5_ATYP_DOMAIN &&
	    memchr(a->u.dom.name, '\0', a->u.dom.len) != NULL)
		return -1;
	out[o++] = a->atyp;
	switch (a->atyp) {
	case S5_ATYP_IPV4:
		memcpy(out + o, a->u.v4, 4);
		o += 4;
		break;
	case S5_ATYP_IPV6:
		memcpy(out + o, a->u.v6, 16);
		o += 16;
		break;
	default:
		out[o++] = a->u.dom.len;
		memcpy(out + o, a->u.dom.name, a->u.dom.len);
		o += a->u.dom.len;
		break;
	}
	out[o++] = (uint8_t)(a->port >> 8);
	out[o++] = (uint8_t)(a->port & 0xff);
	return (ssize_t)o;
}

enum s5_status s5_methods_parse(const uint8_t *buf, size_t len,
				struct s5_methods *out, size_t *consumed)
{
	if (len < 1)
		return S5_NEED_MORE;
	if (buf[0] != S5_VERSION)
		return S5_ERR_VERSION;
	if (len < 2)
		return S5_NEED_MORE;
	if (buf[1] == 0)
		return S5_ERR_NMETHODS;
	if (len < 2 + (size_t)buf[1])
		return S5_NEED_MORE;
	out->nmethods = buf[1];
	memcpy(out->methods, buf + 2, buf[1]);
	*consumed = 2 + (size_t)buf[1];
	return S5_OK;
}

/* VER METHOD, and VER STATUS of RFC 1929: two fixed bytes. */
static enum s5_status parse_two(const uint8_t *buf, size_t len, uint8_t ver,
				uint8_t *val, size_t *consumed)
{
	if (len < 1)
		return S5_NEED_MORE;
	if (buf[0] != ver)
		return S5_ERR_VERSION;
	if (len < 2)
		return S5_NEED_MORE;
	*val = buf[1];
	*consumed = 2;
	return S5_OK;
}

enum s5_status s5_method_reply_parse(const uint8_t *buf, size_t len,
				     uint8_t *method, size_t *consumed)
{
	return parse_two(buf, len, S5_VERSION, method, consumed);
}

enum s5_status s5_auth_reply_parse(const uint8_t *buf, size_t len,
				   uint8_t *status, size_t *consumed)
{
	return parse_two(buf, len, S5_AUTH_VERSION, status, consumed);
}

enum s5_status s5_auth_parse(const uint8_t *buf, size_t len,
			     struct s5_auth *out, size_t *consumed)
{
	size_t ulen, plen;

	if (len < 1)
		return S5_NEED_MORE;
	if (buf[0] != S5_AUTH_VERSION)
		return S5_ERR_VERSION;
	if (len < 2)
		return S5_NEED_MORE;
	ulen = buf[1];
	if (ulen == 0)
		return S5_ERR_ULEN;
	if (len < 2 + ulen + 1)
		return S5_NEED_MORE;
	plen = buf[2 + ulen];
	if (plen == 0)
		return S5_ERR_PLEN;
	if (len < 3 + ulen + plen)
		return S5_NEED_MORE;
	out->ulen = (uint8_t)ulen;
	memcpy(out->uname, buf + 2, ulen);
	out->uname[ulen] = '\0';
	out->plen = (uint8_t)plen;
	memcpy(out->passwd, buf + 3 + ulen, plen);
	out->passwd[plen] = '\0';
	*consumed = 3 + ulen + plen;
	return S5_OK;
}

enum s5_status s5_request_parse(const uint8_t *buf, size_t len,
				struct s5_request *out, size_t *consumed)
{
	size_t off = 3;
	enum s5_status st;

	if (len < 1)
		return S5_NEED_MORE;
	if (buf[0] != S5_VERSION)
		return S5_ERR_VERSION;
	if (len < 2)
		return S5_NEED_MORE;
	if (buf[1] < S5_CMD_CONNECT || buf[1] > S5_CMD_TRANSPARENT)
		return S5_ERR_CMD;
	if (len < 3)
		return S5_NEED_MORE;
	if (buf[2] != 0)
		return S5_ERR_RSV;
	memset(out, 0, sizeof(*out));
	out->cmd = buf[1];
	st = parse_addr(buf, len, &off, &out->dst, S5_ERR_ATYP);
	if (st != S5_OK)
		return st;
	if (out->cmd == S5_CMD_TRANSPARENT) {
		if (off >= len)
			return S5_NEED_MORE;
		out->ptcl = buf[off++];
		st = parse_addr(buf, len, &off, &out->src, S5_ERR_SATYP);
		if (st != S5_OK)
			return st;
	}
	*consumed = off;
	return S5_OK;
}

enum s5_status s5_reply_parse(const uint8_t *buf, size_t len,
			      struct s5_reply *out, size_t *consumed)
{
	size_t off = 3;
	enum s5_status st;

	if (len < 1)
		return S5_NEED_MORE;
	if (buf[0] != S5_VERSION)
		return S5_ERR_VERSION;
	if (len < 3)
		return S5_NEED_MORE;
	if (buf[2] != 0)
		return S5_ERR_RSV;
	out->rep = buf[1];
	st = parse_addr(buf, len, &off, &out->bnd, S5_ERR_ATYP);
	if (st != S5_OK)
		return st;
	*consumed = off;
	return S5_OK;
}

enum s5_status s5_udp_header_parse(const uint8_t *buf, size_t len,
				   struct s5_udp_header *out, size_t *consumed)
{
	size_t off = 3;
	enum s5_status st;

	if (len < 1)
		return S5_NEED_MORE;
	if (buf[0] != 0)
		return S5_ERR_RSV;
	if (len < 2)
		return S5_NEED_MORE;
	if (buf[1] != 0)
		return S5_ERR_RSV;
	if (len < 3)
		return S5_NEED_MORE;
	out->frag = buf[2];
	st = parse_addr(buf, len, &off, &out->dst, S5_ERR_ATYP);
	if (st != S5_OK)
		return st;
	*consumed = off;
	return S5_OK;
}

ssize_t s5_methods_build(const struct s5_methods *m, uint8_t *out, size_t cap)
{
	if (m->nmethods == 0 || cap < 2 + (size_t)m->nmethods)
		return -1;
	out[0] = S5_VERSION;
	out[1] = m->nmethods;
	memcpy(out + 2, m->methods, m->nmethods);
	return 2 + (ssize_t)m->nmethods;
}

static ssize_t build_two(uint8_t a, uint8_t b, uint8_t *out, size_t cap)
{
	if (cap < 2)
		return -1;
	out[0] = a;
	out[1] = b;
	return 2;
}

ssize_t s5_method_reply_build(uint8_t method, uint8_t *out, size_t cap)
{
	return build_two(S5_VERSION, method, out, cap);
}

ssize_t s5_auth_reply_build(uint8_t status, uint8_t *out, size_t cap)
{
	return build_two(S5_AUTH_VERSION, status, out, cap);
}

ssize_t s5_auth_build(const struct s5_auth *a, uint8_t *out, size_t cap)
{
	size_t n = 3 + (size_t)a->ulen + a->plen;

	if (a->ulen == 0 || a->plen == 0 || cap < n)
		return -1;
	out[0] = S5_AUTH_VERSION;
	out[1] = a->ulen;
	memcpy(out + 2, a->uname, a->ulen);
	out[2 + a->ulen] = a->plen;
	memcpy(out + 3 + a->ulen, a->passwd, a->plen);
	return (ssize_t)n;
}

ssize_t s5_request_build(const struct s5_request *r, uint8_t *out, size_t cap)
{
	ssize_t n, m;

	if (r->cmd < S5_CMD_CONNECT || r->cmd > S5_CMD_TRANSPARENT || cap < 3)
		return -1;
	out[0] = S5_VERSION;
	out[1] = r->cmd;
	out[2] = 0;
	n = build_addr(&r->dst, out + 3, cap - 3);
	if (n < 0)
		return -1;
	n += 3;
	if (r->cmd != S5_CMD_TRANSPARENT)
		return n;
	if ((size_t)n + 1 > cap)
		return -1;
	out[n++] = r->ptcl;
	m = build_addr(&r->src, out + n, cap - (size_t)n);
	if (m < 0)
		return -1;
	return n + m;
}

ssize_t s5_reply_build(const struct s5_reply *r, uint8_t *out, size_t cap)
{
	ssize_t n;

	if (cap < 3)
		return -1;
	out[0] = S5_VERSION;
	out[1] = r->rep;
	out[2] = 0;
	n = build_addr(&r->bnd, out + 3, cap - 3);
	return n < 0 ? -1 : n + 3;
}

ssize_t s5_udp_header_build(const struct s5_udp_header *h, uint8_t *out,
			    size_t cap)
{
	ssize_t n;

	if (cap < 3)
		return -1;
	out[0] = 0;
	out[1] = 0;
	out[2] = h->frag;
	n = build_addr(&h->dst, out + 3, cap - 3);
	return n < 0 ? -1 : n + 3;
}

const char *s5_addr_str(const struct s5_addr *a, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];

	switch (a->atyp) {
	case S5_ATYP_IPV4:
		inet_ntop(AF_INET, a->u.v4, ip, sizeof(ip));
		snprintf(out, cap, "%s:%u", ip, a->port);
		break;
	case S5_ATYP_IPV6:
		inet_ntop(AF_INET6, a->u.v6, ip, sizeof(ip));
		snprintf(out, cap, "[%s]:%u", ip, a->port);
		break;
	case S5_ATYP_DOMAIN:
		snprintf(out, cap, "%.*s:%u", (int)a->u.dom.len, a->u.dom.name,
			 a->port);
		break;
	default:
		snprintf(out, cap, "?");
		break;
	}
	return out;
}

const char *s5_status_str(enum s5_status st)
{
	switch (st) {
	case S5_OK:
		return "ok";
	case S5_NEED_MORE:
		return "incomplete";
	case S5_ERR_VERSION:
		return "bad version";
	case S5_ERR_RSV:
		return "reserved byte not zero";
	case S5_ERR_CMD:
		return "unknown command";
	case S5_ERR_ATYP:
		return "unknown address type";
	case S5_ERR_SATYP:
		return "unknown source address type";
	case S5_ERR_DOMAIN:
		return "bad domain name";
	case S5_ERR_NMETHODS:
		return "no methods";
	case S5_ERR_ULEN:
		return "empty user name";
	case S5_ERR_PLEN:
		return "empty password";
	}
	return "?";
}

const char *s5_cmd_str(uint8_t cmd)
{
	static const char *const names[] = {
		[0] = "none",
		[S5_CMD_CONNECT] = "connect",
		[S5_CMD_BIND] = "bind",
		[S5_CMD_UDP] = "udp",
		[S5_CMD_TRANSPARENT] = "transparent",
	};
	_Static_assert(sizeof(names) / sizeof(names[0]) ==
			       S5_CMD_TRANSPARENT + 1,
		       "a name per command");
	return cmd < sizeof(names) / sizeof(names[0]) ? names[cmd] : "?";
}

const char *s5_rep_str(uint8_t rep)
{
	static const char *const names[] = {
		"succeeded",
		"general failure",
		"not allowed by ruleset",
		"network unreachable",
		"host unreachable",
		"connection refused",
		"TTL expired",
		"command not supported",
		"address type not supported",
		"PTCL type not supported",
	};
	return rep < sizeof(names) / sizeof(names[0]) ? names[rep]
						      : "unassigned";
}

uint8_t s5_status_to_rep(enum s5_status st)
{
	switch (st) {
	case S5_ERR_CMD:
		return S5_REP_CMD_UNSUPPORTED;
	case S5_ERR_ATYP:
	case S5_ERR_SATYP:
		return S5_REP_ATYP_UNSUPPORTED;
	default:
		return S5_REP_GENERAL;
	}
}
