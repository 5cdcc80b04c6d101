/*
 * s5_proto: the SOCKS5 wire codec (RFC 1928, RFC 1929 and the TRANSPARENT
 * extension of draft-lucioni-a-socks-transparent-proxy-method-00).
 *
 * Pure code: no I/O, no allocation, no logging, no globals.  Every parser
 * takes (buf, len) holding the bytes received so far and returns S5_OK with
 * *consumed set, S5_NEED_MORE when the message is incomplete, or a specific
 * error as soon as the bytes seen prove the message is malformed.  Because a
 * parser never keeps state between calls, the answer is the same whether the
 * bytes arrive at once or one at a time.  Parsers never write into buf.
 *
 * Builders mirror parsers: they return the number of bytes written into
 * out, or -1 if cap is too small or the message is not encodable.
 */
#ifndef SOCKSGATE_S5_PROTO_H
#define SOCKSGATE_S5_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define S5_VERSION 0x05
#define S5_AUTH_VERSION 0x01 /* RFC 1929 sub-negotiation version */

/* Methods (RFC 1928 section 3). */
#define S5_METHOD_NOAUTH 0x00
#define S5_METHOD_GSSAPI 0x01
#define S5_METHOD_USERPASS 0x02
#define S5_METHOD_NONE 0xff /* NO ACCEPTABLE METHODS */

/* Commands (RFC 1928 section 4, draft section 3.1). */
#define S5_CMD_CONNECT 0x01
#define S5_CMD_BIND 0x02
#define S5_CMD_UDP 0x03
#define S5_CMD_TRANSPARENT 0x04

/* Address types. */
#define S5_ATYP_IPV4 0x01
#define S5_ATYP_DOMAIN 0x03
#define S5_ATYP_IPV6 0x04

/* Reply codes (RFC 1928 section 6, draft section 3.2). */
#define S5_REP_SUCCEEDED 0x00
#define S5_REP_GENERAL 0x01
#define S5_REP_NOT_ALLOWED 0x02
#define S5_REP_NET_UNREACH 0x03
#define S5_REP_HOST_UNREACH 0x04
#define S5_REP_REFUSED 0x05
#define S5_REP_TTL_EXPIRED 0x06
#define S5_REP_CMD_UNSUPPORTED 0x07
#define S5_REP_ATYP_UNSUPPORTED 0x08
#define S5_REP_PTCL_UNSUPPORTED 0x09

/* RFC 1929 status: 0 is success, anything else is failure. */
#define S5_AUTH_SUCCESS 0x00
#define S5_AUTH_FAILURE 0x01

/* Largest message any parser accepts, used to size receive buffers:
 * a TRANSPARENT request with two 255-byte names. */
#define S5_MAX_REQUEST (4 + 1 + 255 + 2 + 1 + 1 + 1 + 255 + 2)
#define S5_MAX_AUTH (1 + 1 + 255 + 1 + 255)
#define S5_MAX_METHODS (1 + 1 + 255)
#define S5_MAX_UDP_HEADER (4 + 1 + 255 + 2)

enum s5_status {
	S5_OK = 0,
	S5_NEED_MORE,
	S5_ERR_VERSION,	 /* VER is not 5 (or 1 in RFC 1929) */
	S5_ERR_RSV,	 /* reserved byte not zero */
	S5_ERR_CMD,	 /* unknown command */
	S5_ERR_ATYP,	 /* unknown address type (DST or BND) */
	S5_ERR_SATYP,	 /* unknown address type for S.ADDR */
	S5_ERR_DOMAIN,	 /* domain length 0 or a NUL byte in the name */
	S5_ERR_NMETHODS, /* NMETHODS is 0 */
	S5_ERR_ULEN,	 /* ULEN is 0 */
	S5_ERR_PLEN,	 /* PLEN is 0 */
};

/* An address as it is on the wire: IPv4, IPv6 or a domain name. */
struct s5_addr {
	uint8_t atyp;
	union {
		uint8_t v4[4];
		uint8_t v6[16];
		/* NUL-terminated; len is 1..255 and the name holds no NUL. */
		struct {
			uint8_t len;
			char name[256];
		} dom;
	} u;
	uint16_t port; /* host byte order */
};

/*
 * Method selection request:
 *   +----+----------+----------+
 *   |VER | NMETHODS | METHODS  |
 *   +----+----------+----------+
 *   | 1  |    1     | 1 to 255 |
 *   +----+----------+----------+
 */
struct s5_methods {
	uint8_t nmethods;
	uint8_t methods[255];
};

/*
 * RFC 1929 username/password request:
 *   +----+------+----------+------+----------+
 *   |VER | ULEN |  UNAME   | PLEN |  PASSWD  |
 *   +----+------+----------+------+----------+
 *   | 1  |  1   | 1 to 255 |  1   | 1 to 255 |
 *   +----+------+----------+------+----------+
 * uname and passwd are NUL-terminated copies; they may contain NUL bytes
 * on the wire, which is why the lengths are kept.
 */
struct s5_auth {
	uint8_t ulen;
	char uname[256];
	uint8_t plen;
	char passwd[256];
};

/*
 * Request (RFC 1928 section 4, extended by the draft section 3.1):
 *   +----+-----+-------+------+----------+----------+
 *   |VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
 *   +----+-----+-------+------+----------+----------+
 *   | 1  |  1  | X'00' |  1   | Variable |    2     |
 *   +----+-----+-------+------+----------+----------+
 * followed, only when CMD = X'04' TRANSPARENT, by:
 *   +------+--------+----------+--------+
 *   | PTCL | S.ATYP |  S.ADDR  | S.PORT |
 *   +------+--------+----------+--------+
 *   |  1   |   1    | Variable |   2    |
 *   +------+--------+----------+--------+
 */
struct s5_request {
	uint8_t cmd;
	struct s5_addr dst;
	/* TRANSPARENT only; zero otherwise. */
	uint8_t ptcl;
	struct s5_addr src;
};

/*
 * Reply:
 *   +----+-----+-------+------+----------+----------+
 *   |VER | REP |  RSV  | ATYP | BND.ADDR | BND.PORT |
 *   +----+-----+-------+------+----------+----------+
 *   | 1  |  1  | X'00' |  1   | Variable |    2     |
 *   +----+-----+-------+------+----------+----------+
 */
struct s5_reply {
	uint8_t rep;
	struct s5_addr bnd;
};

/*
 * UDP request header (RFC 1928 section 7):
 *   +----+------+------+----------+----------+----------+
 *   |RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
 *   +----+------+------+----------+----------+----------+
 *   | 2  |  1   |  1   | Variable |    2     | Variable |
 *   +----+------+------+----------+----------+----------+
 * *consumed is the header length; DATA follows.  FRAG is returned as is,
 * the caller decides (socksgated drops FRAG != 0).
 */
struct s5_udp_header {
	uint8_t frag;
	struct s5_addr dst;
};

/* Parsers (server side). */
enum s5_status s5_methods_parse(const uint8_t *buf, size_t len,
				struct s5_methods *out, size_t *consumed);
enum s5_status s5_auth_parse(const uint8_t *buf, size_t len,
			     struct s5_auth *out, size_t *consumed);
enum s5_status s5_request_parse(const uint8_t *buf, size_t len,
				struct s5_request *out, size_t *consumed);
enum s5_status s5_udp_header_parse(const uint8_t *buf, size_t len,
				   struct s5_udp_header *out, size_t *consumed);

/* Parsers (client side). */
enum s5_status s5_method_reply_parse(const uint8_t *buf, size_t len,
				     uint8_t *method, size_t *consumed);
enum s5_status s5_auth_reply_parse(const uint8_t *buf, size_t len,
				   uint8_t *status, size_t *consumed);
enum s5_status s5_reply_parse(const uint8_t *buf, size_t len,
			      struct s5_reply *out, size_t *consumed);

/* Builders: bytes written, or -1 if cap is too small or the input is not
 * encodable (unknown ATYP, domain length 0, NMETHODS 0, ULEN/PLEN 0). */
ssize_t s5_methods_build(const struct s5_methods *m, uint8_t *out, size_t cap);
ssize_t s5_method_reply_build(uint8_t method, uint8_t *out, size_t cap);
ssize_t s5_auth_build(const struct s5_auth *a, uint8_t *out, size_t cap);
ssize_t s5_auth_reply_build(uint8_t status, uint8_t *out, size_t cap);
ssize_t s5_request_build(const struct s5_request *r, uint8_t *out, size_t cap);
ssize_t s5_reply_build(const struct s5_reply *r, uint8_t *out, size_t cap);
ssize_t s5_udp_header_build(const struct s5_udp_header *h, uint8_t *out,
			    size_t cap);

/* Address helpers. */
/* Wire length of an address field (ATYP byte + address + port), or 0 for
 * an unknown ATYP. */
size_t s5_addr_wire_len(const struct s5_addr *a);
/* Human-readable "1.2.3.4:80", "[2001:db8::1]:80", "name:80"; returns out. */
const char *s5_addr_str(const struct s5_addr *a, char *out, size_t cap);
/* Short English name of a status, for logs. */
const char *s5_status_str(enum s5_status st);
/* Short English name of a reply code, for logs. */
const char *s5_rep_str(uint8_t rep);
/* "connect", "bind", "udp", "transparent"; "none" for 0 (no request
 * yet); "?" otherwise. */
const char *s5_cmd_str(uint8_t cmd);
/* The reply code a server sends for a request that failed to parse. */
uint8_t s5_status_to_rep(enum s5_status st);

#endif
