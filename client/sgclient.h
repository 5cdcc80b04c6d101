/*
 * sgclient: a small blocking C client library for socksgated, for
 * programs that want a TRANSPARENT association (or any SOCKS5 request)
 * without an event loop.  Link with libsocksgate (pkg-config socksgate).
 *
 * Every call is bounded by opts->timeout_ms, from start to return: the
 * proxy's name lookup, the connect, each write and each read share that
 * one deadline.  A numeric proxy_host is used as it is, without any
 * lookup.  A name is looked up with the system resolver (getaddrinfo(3):
 * /etc/hosts, DNS, NSS) on a helper thread (POSIX threads: glibc and
 * musl alike); if the deadline passes first the call returns
 * SGC_ERR_TIMEOUT at once and the lookup finishes (and frees its memory)
 * in the background.
 */
#ifndef SOCKSGATE_SGCLIENT_H
#define SOCKSGATE_SGCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "s5_proto.h"

struct sgc_opts {
	const char *proxy_host; /* name or numeric address */
	uint16_t proxy_port;	/* 0: 1080 */
	const char *user;	/* NULL: offer NO AUTH only */
	const char *password;
	int timeout_ms; /* the whole call; 0: 10 s */
};

enum sgc_result {
	SGC_OK = 0,
	SGC_ERR_CONNECT,  /* cannot reach the proxy */
	SGC_ERR_PROTOCOL, /* malformed answer, or the proxy closed */
	SGC_ERR_METHOD,	  /* no acceptable method (X'FF') */
	SGC_ERR_AUTH,	  /* RFC 1929 status != 0 */
	SGC_ERR_REFUSED,  /* the reply code was not X'00' */
	SGC_ERR_TIMEOUT,  /* timeout_ms passed (lookup, connect or exchange) */
	SGC_ERR_ARG,
};

/*
 * Connects to the proxy, negotiates, sends req and reads the reply, within
 * o->timeout_ms.  On SGC_OK *fd is the open control connection (N1), in
 * blocking mode (O_NONBLOCK clear; set it yourself for an event loop) and
 * close-on-exec, owned by the caller: for TRANSPARENT, keep it open as
 * long as the relay is wanted; close() ends it.  Bytes that follow the
 * reply are left unread on it (CONNECT data).  *reply holds the reply
 * whenever one was received (also for SGC_ERR_REFUSED).  Otherwise no
 * descriptor is left open and err says what failed.
 */
enum sgc_result sgc_request(const struct sgc_opts *o,
			    const struct s5_request *req,
			    struct s5_reply *reply, int *fd, char *err,
			    size_t errlen);
const char *sgc_result_str(enum sgc_result r);
/* Parses "host:port", "[v6]:port" into a wire address (numeric -> IPv4 or
 * IPv6, anything else -> domain).  Returns 0 or -1. */
int sgc_parse_hostport(const char *s, struct s5_addr *out);

#endif
