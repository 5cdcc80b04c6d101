/*
 * Unit tests for proto/s5_proto: every message type round-tripped,
 * fed whole and byte by byte, and every malformed case.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "s5_proto.h"

typedef enum s5_status (*parse_fn)(const uint8_t *, size_t, void *, size_t *);

/*
 * Feeds buf one prefix at a time and checks that every strict prefix
 * answers NEED_MORE and the whole answers OK with consumed == len.
 */
static void check_incremental(parse_fn fn, const uint8_t *buf, size_t len,
			      void *out)
{
	size_t consumed = 0;

	for (size_t k = 0; k < len; k++) {
		enum s5_status st = fn(buf, k, out, &consumed);
		cr_assert_eq(st, S5_NEED_MORE, "prefix %zu of %zu: %s", k, len,
			     s5_status_str(st));
	}
	cr_assert_eq(fn(buf, len, out, &consumed), S5_OK);
	cr_assert_eq(consumed, len);
}

/* A malformed message must give err from the first byte that proves it,
 * at every longer prefix, and never OK. */
static void check_error(parse_fn fn, const uint8_t *buf, size_t len,
			size_t proof, enum s5_status err, void *out)
{
	size_t consumed;

	for (size_t k = 0; k <= len; k++) {
		enum s5_status st = fn(buf, k, out, &consumed);
		if (k < proof)
			cr_assert_eq(st, S5_NEED_MORE, "prefix %zu: %s", k,
				     s5_status_str(st));
		else
			cr_assert_eq(st, err, "prefix %zu: got %s want %s", k,
				     s5_status_str(st), s5_status_str(err));
	}
}

#define P(fn) ((parse_fn)(fn))

Test(s5_methods, roundtrip_whole_and_bytewise)
{
	struct s5_methods m = {.nmethods = 2, .methods = {0x00, 0x02}}, got;
	uint8_t buf[300];
	ssize_t n = s5_methods_build(&m, buf, sizeof(buf));

	cr_assert_eq(n, 4);
	cr_assert_arr_eq(buf, ((uint8_t[]){5, 2, 0, 2}), 4);
	check_incremental(P(s5_methods_parse), buf, (size_t)n, &got);
	cr_assert_eq(got.nmethods, 2);
	cr_assert_eq(got.methods[1], 2);
}

Test(s5_methods, max_methods)
{
	struct s5_methods m = {.nmethods = 255}, got;
	uint8_t buf[300];
	size_t c;

	for (int i = 0; i < 255; i++)
		m.methods[i] = (uint8_t)i;
	cr_assert_eq(s5_methods_build(&m, buf, sizeof(buf)), 257);
	cr_assert_eq(s5_methods_build(&m, buf, 256), -1);
	cr_assert_eq(s5_methods_parse(buf, 257, &got, &c), S5_OK);
	cr_assert_eq(got.methods[254], 254);
}

Test(s5_methods, malformed)
{
	struct s5_methods got;
	struct s5_methods zero = {.nmethods = 0};
	uint8_t buf[8];

	check_error(P(s5_methods_parse), (uint8_t[]){4, 1, 0}, 3, 1,
		    S5_ERR_VERSION, &got);
	check_error(P(s5_methods_parse), (uint8_t[]){5, 0, 0}, 3, 2,
		    S5_ERR_NMETHODS, &got);
	cr_assert_eq(s5_methods_build(&zero, buf, sizeof(buf)), -1);
}

Test(s5_methods, extra_bytes_not_consumed)
{
	struct s5_methods got;
	size_t c = 0;
	const uint8_t buf[] = {5, 1, 0, 5, 1, 0, 1, 1, 2, 3, 4, 0, 80};

	cr_assert_eq(s5_methods_parse(buf, sizeof(buf), &got, &c), S5_OK);
	cr_assert_eq(c, 3);
}

Test(s5_method_reply, roundtrip)
{
	uint8_t buf[2], m = 0x77;
	size_t c;

	cr_assert_eq(s5_method_reply_build(S5_METHOD_NONE, buf, 2), 2);
	cr_assert_eq(s5_method_reply_build(S5_METHOD_NONE, buf, 1), -1);
	check_incremental(P(s5_method_reply_parse), buf, 2, &m);
	cr_assert_eq(m, 0xff);
	cr_assert_eq(s5_method_reply_parse((uint8_t[]){4, 0}, 2, &m, &c),
		     S5_ERR_VERSION);
}

Test(s5_auth, roundtrip)
{
	struct s5_auth a = {.ulen = 5, .plen = 6}, got;
	uint8_t buf[600];
	ssize_t n;

	memcpy(a.uname, "alice", 5);
	memcpy(a.passwd, "s3cret", 6);
	n = s5_auth_build(&a, buf, sizeof(buf));
	cr_assert_eq(n, 14);
	check_incremental(P(s5_auth_parse), buf, (size_t)n, &got);
	cr_assert_str_eq(got.uname, "alice");
	cr_assert_str_eq(got.passwd, "s3cret");
	cr_assert_eq(got.plen, 6);
}

Test(s5_auth, max_lengths)
{
	struct s5_auth a = {.ulen = 255, .plen = 255}, got;
	uint8_t buf[600];
	ssize_t n;

	memset(a.uname, 'u', 255);
	memset(a.passwd, 'p', 255);
	n = s5_auth_build(&a, buf, sizeof(buf));
	cr_assert_eq(n, 513);
	cr_assert_eq(s5_auth_build(&a, buf, 512), -1);
	check_incremental(P(s5_auth_parse), buf, (size_t)n, &got);
	cr_assert_eq(strlen(got.uname), 255);
	cr_assert_eq(strlen(got.passwd), 255);
}

Test(s5_auth, malformed)
{
	struct s5_auth got;

	/* RFC 1929 version is 1; 5 is a client confusing the two. */
	check_error(P(s5_auth_parse), (uint8_t[]){5, 1, 'a', 1, 'b'}, 5, 1,
		    S5_ERR_VERSION, &got);
	check_error(P(s5_auth_parse), (uint8_t[]){1, 0, 1, 'b'}, 4, 2,
		    S5_ERR_ULEN, &got);
	check_error(P(s5_auth_parse), (uint8_t[]){1, 1, 'a', 0, 'x'}, 5, 4,
		    S5_ERR_PLEN, &got);
}

Test(s5_auth_reply, roundtrip)
{
	uint8_t buf[2], st = 9;

	cr_assert_eq(s5_auth_reply_build(S5_AUTH_FAILURE, buf, 2), 2);
	cr_assert_arr_eq(buf, ((uint8_t[]){1, 1}), 2);
	check_incremental(P(s5_auth_reply_parse), buf, 2, &st);
	cr_assert_eq(st, 1);
}

static struct s5_addr addr4(uint8_t a, uint8_t b, uint8_t c, uint8_t d,
			    uint16_t port)
{
	struct s5_addr x = {.atyp = S5_ATYP_IPV4, .port = port};
	x.u.v4[0] = a;
	x.u.v4[1] = b;
	x.u.v4[2] = c;
	x.u.v4[3] = d;
	return x;
}

static struct s5_addr addr6(uint16_t port)
{
	struct s5_addr x = {.atyp = S5_ATYP_IPV6, .port = port};
	x.u.v6[0] = 0x20;
	x.u.v6[1] = 0x01;
	x.u.v6[2] = 0x0d;
	x.u.v6[3] = 0xb8;
	x.u.v6[15] = 1;
	return x;
}

static struct s5_addr addrname(const char *name, uint16_t port)
{
	struct s5_addr x = {.atyp = S5_ATYP_DOMAIN, .port = port};
	x.u.dom.len = (uint8_t)strlen(name);
	memcpy(x.u.dom.name, name, x.u.dom.len);
	return x;
}

static void request_roundtrip(const struct s5_request *r, size_t want_len)
{
	uint8_t buf[S5_MAX_REQUEST + 8];
	struct s5_request got;
	ssize_t n = s5_request_build(r, buf, sizeof(buf));
	char a[300], b[300];

	cr_assert_eq(n, (ssize_t)want_len);
	check_incremental(P(s5_request_parse), buf, (size_t)n, &got);
	cr_assert_eq(got.cmd, r->cmd);
	cr_assert_str_eq(s5_addr_str(&got.dst, a, sizeof(a)),
			 s5_addr_str(&r->dst, b, sizeof(b)));
	if (r->cmd == S5_CMD_TRANSPARENT) {
		cr_assert_eq(got.ptcl, r->ptcl);
		cr_assert_str_eq(s5_addr_str(&got.src, a, sizeof(a)),
				 s5_addr_str(&r->src, b, sizeof(b)));
	}
	/* Too small an output buffer, at every size, fails cleanly. */
	for (size_t cap = 0; cap < (size_t)n; cap++)
		cr_assert_eq(s5_request_build(r, buf, cap), -1);
}

Test(s5_request, connect_ipv4)
{
	struct s5_request r = {.cmd = S5_CMD_CONNECT,
			       .dst = addr4(198, 18, 2, 2, 8080)};
	request_roundtrip(&r, 10);
}

Test(s5_request, bind_ipv6)
{
	struct s5_request r = {.cmd = S5_CMD_BIND, .dst = addr6(21)};
	request_roundtrip(&r, 22);
}

Test(s5_request, udp_domain)
{
	struct s5_request r = {.cmd = S5_CMD_UDP,
			       .dst = addrname("target.test", 53)};
	request_roundtrip(&r, 7 + 11);
}

Test(s5_request, domain_255)
{
	char name[256];
	memset(name, 'a', 255);
	name[255] = '\0';
	struct s5_request r = {.cmd = S5_CMD_CONNECT,
			       .dst = addrname(name, 443)};
	request_roundtrip(&r, 7 + 255);
}

Test(s5_request, transparent_all_families)
{
	struct s5_request r = {.cmd = S5_CMD_TRANSPARENT,
			       .dst = addr4(198, 18, 2, 2, 5001),
			       .ptcl = 17,
			       .src = addr4(198, 18, 0, 2, 40000)};
	request_roundtrip(&r, 10 + 1 + 7);
	r.dst = addr6(5001);
	r.src = addr6(40000);
	r.ptcl = 6;
	request_roundtrip(&r, 22 + 1 + 19);
	r.dst = addrname("target.test", 80);
	r.src = addrname("client.test", 0);
	request_roundtrip(&r, 18 + 1 + 15);
}

Test(s5_request, transparent_two_255_names)
{
	char name[256];
	memset(name, 'z', 255);
	name[255] = '\0';
	struct s5_request r = {.cmd = S5_CMD_TRANSPARENT,
			       .dst = addrname(name, 1),
			       .ptcl = 132,
			       .src = addrname(name, 2)};
	request_roundtrip(&r, S5_MAX_REQUEST);
}

Test(s5_request, malformed)
{
	struct s5_request got;

	check_error(P(s5_request_parse),
		    (uint8_t[]){4, 1, 0, 1, 1, 2, 3, 4, 0, 80}, 10, 1,
		    S5_ERR_VERSION, &got);
	check_error(P(s5_request_parse),
		    (uint8_t[]){5, 1, 1, 1, 1, 2, 3, 4, 0, 80}, 10, 3,
		    S5_ERR_RSV, &got);
	check_error(P(s5_request_parse),
		    (uint8_t[]){5, 0, 0, 1, 1, 2, 3, 4, 0, 80}, 10, 2,
		    S5_ERR_CMD, &got);
	check_error(P(s5_request_parse),
		    (uint8_t[]){5, 5, 0, 1, 1, 2, 3, 4, 0, 80}, 10, 2,
		    S5_ERR_CMD, &got);
	check_error(P(s5_request_parse),
		    (uint8_t[]){5, 1, 0, 2, 1, 2, 3, 4, 0, 80}, 10, 4,
		    S5_ERR_ATYP, &got);
	check_error(P(s5_request_parse), (uint8_t[]){5, 1, 0, 3, 0, 0, 80}, 7,
		    5, S5_ERR_DOMAIN, &got);
	/* A NUL inside a name is refused as soon as it is seen. */
	check_error(P(s5_request_parse),
		    (uint8_t[]){5, 1, 0, 3, 3, 'a', 0, 'b', 0, 80}, 10, 7,
		    S5_ERR_DOMAIN, &got);
	/* TRANSPARENT with a bad S.ATYP. */
	check_error(P(s5_request_parse),
		    (uint8_t[]){5, 4, 0, 1, 1, 2, 3, 4, 0, 80, 6, 9, 1, 2, 3, 4,
				0, 1},
		    18, 12, S5_ERR_SATYP, &got);
	/* TRANSPARENT with an empty source name. */
	check_error(P(s5_request_parse),
		    (uint8_t[]){5, 4, 0, 1, 1, 2, 3, 4, 0, 80, 6, 3, 0, 0, 1},
		    15, 13, S5_ERR_DOMAIN, &got);
}

Test(s5_request, status_to_reply_code)
{
	cr_assert_eq(s5_status_to_rep(S5_ERR_CMD), S5_REP_CMD_UNSUPPORTED);
	cr_assert_eq(s5_status_to_rep(S5_ERR_ATYP), S5_REP_ATYP_UNSUPPORTED);
	cr_assert_eq(s5_status_to_rep(S5_ERR_SATYP), S5_REP_ATYP_UNSUPPORTED);
	cr_assert_eq(s5_status_to_rep(S5_ERR_RSV), S5_REP_GENERAL);
}

Test(s5_request, builder_refuses_unencodable)
{
	uint8_t buf[600];
	struct s5_request r = {.cmd = S5_CMD_CONNECT,
			       .dst = {.atyp = 2, .port = 1}};

	cr_assert_eq(s5_request_build(&r, buf, sizeof(buf)), -1);
	r.dst = addrname("x", 1);
	r.dst.u.dom.len = 0;
	cr_assert_eq(s5_request_build(&r, buf, sizeof(buf)), -1);
	r.dst = addr4(1, 2, 3, 4, 5);
	r.cmd = 9;
	cr_assert_eq(s5_request_build(&r, buf, sizeof(buf)), -1);
}

Test(s5_reply, roundtrip_all_codes)
{
	uint8_t buf[300];
	struct s5_reply got;

	for (uint8_t rep = 0; rep <= S5_REP_PTCL_UNSUPPORTED; rep++) {
		struct s5_reply r = {.rep = rep,
				     .bnd = addr4(198, 18, 1, 1, 20000)};
		ssize_t n = s5_reply_build(&r, buf, sizeof(buf));
		cr_assert_eq(n, 10);
		check_incremental(P(s5_reply_parse), buf, (size_t)n, &got);
		cr_assert_eq(got.rep, rep);
		cr_assert_eq(got.bnd.port, 20000);
	}
	struct s5_reply r6 = {.rep = S5_REP_PTCL_UNSUPPORTED, .bnd = addr6(1)};
	cr_assert_eq(s5_reply_build(&r6, buf, sizeof(buf)), 22);
	cr_assert_eq(buf[1], 0x09);
	check_incremental(P(s5_reply_parse), buf, 22, &got);
	cr_assert_eq(got.bnd.u.v6[15], 1);
	cr_assert_str_eq(s5_rep_str(9), "PTCL type not supported");
	cr_assert_str_eq(s5_rep_str(200), "unassigned");
}

Test(s5_reply, malformed)
{
	struct s5_reply got;

	check_error(P(s5_reply_parse),
		    (uint8_t[]){4, 0, 0, 1, 1, 2, 3, 4, 0, 80}, 10, 1,
		    S5_ERR_VERSION, &got);
	check_error(P(s5_reply_parse),
		    (uint8_t[]){5, 0, 7, 1, 1, 2, 3, 4, 0, 80}, 10, 3,
		    S5_ERR_RSV, &got);
	check_error(P(s5_reply_parse),
		    (uint8_t[]){5, 0, 0, 7, 1, 2, 3, 4, 0, 80}, 10, 4,
		    S5_ERR_ATYP, &got);
}

Test(s5_udp, roundtrip)
{
	uint8_t buf[300];
	struct s5_udp_header h = {.frag = 0, .dst = addr6(53)}, got;
	ssize_t n = s5_udp_header_build(&h, buf, sizeof(buf));

	cr_assert_eq(n, 22);
	check_incremental(P(s5_udp_header_parse), buf, (size_t)n, &got);
	cr_assert_eq(got.dst.port, 53);
	h.frag = 3;
	h.dst = addrname("target.test", 7);
	n = s5_udp_header_build(&h, buf, sizeof(buf));
	cr_assert_eq(n, 3 + 1 + 1 + 11 + 2);
	check_incremental(P(s5_udp_header_parse), buf, (size_t)n, &got);
	cr_assert_eq(got.frag, 3);
	cr_assert_str_eq(got.dst.u.dom.name, "target.test");
}

Test(s5_udp, malformed)
{
	struct s5_udp_header got;

	check_error(P(s5_udp_header_parse),
		    (uint8_t[]){1, 0, 0, 1, 1, 2, 3, 4, 0, 80}, 10, 1,
		    S5_ERR_RSV, &got);
	check_error(P(s5_udp_header_parse),
		    (uint8_t[]){0, 1, 0, 1, 1, 2, 3, 4, 0, 80}, 10, 2,
		    S5_ERR_RSV, &got);
	check_error(P(s5_udp_header_parse),
		    (uint8_t[]){0, 0, 0, 5, 1, 2, 3, 4, 0, 80}, 10, 4,
		    S5_ERR_ATYP, &got);
	check_error(P(s5_udp_header_parse), (uint8_t[]){0, 0, 0, 3, 0, 0, 80},
		    7, 5, S5_ERR_DOMAIN, &got);
}

Test(s5_addr, str)
{
	char out[300];
	struct s5_addr a = addr4(198, 18, 0, 1, 1080);

	cr_assert_str_eq(s5_addr_str(&a, out, sizeof(out)), "198.18.0.1:1080");
	a = addr6(80);
	cr_assert_str_eq(s5_addr_str(&a, out, sizeof(out)), "[2001:db8::1]:80");
	a = addrname("x.test", 0);
	cr_assert_str_eq(s5_addr_str(&a, out, sizeof(out)), "x.test:0");
}
