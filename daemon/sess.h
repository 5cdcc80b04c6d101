/*
 * sess: one client's control connection (N1): method negotiation, RFC 1929
 * authentication, the request, then the command's own phase (CONNECT
 * relay, TRANSPARENT association...).  Parsing is done by s5_proto, the
 * decision by pol; this module sequences them and does the I/O.
 */
#ifndef SOCKSGATE_SESS_H
#define SOCKSGATE_SESS_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns.h"
#include "relay.h"
#include "s5_proto.h"

struct srv;
struct assoc;

enum sess_state {
	SESS_METHODS = 0,
	SESS_AUTH,
	SESS_REQUEST,
	SESS_RESOLVING,	  /* waiting for c-ares */
	SESS_CONNECTING,  /* CONNECT: outbound connect in progress */
	SESS_RELAY,	  /* CONNECT: relaying */
	SESS_TRANSPARENT, /* association installed, N1 held open */
	SESS_CLOSING,	  /* flushing a final reply */
};

/* Why a session ended, for the log line and the counters. */
enum sess_end {
	SESS_END_DONE = 0, /* relay finished normally */
	SESS_END_CLIENT,   /* N1 closed by the client */
	SESS_END_RESET,	   /* error on a socket */
	SESS_END_TIMEOUT,  /* handshake or connect timeout */
	SESS_END_IDLE,	   /* idle timeout */
	SESS_END_REFUSED,  /* request refused with a failure reply */
	SESS_END_PROTOCOL, /* malformed message */
	SESS_END_AUTH,	   /* authentication failed */
	SESS_END_SHUTDOWN, /* daemon stopping */
	SESS_END_ASSOC,	   /* the association ended (reason in assoc log) */
};

struct sess {
	struct srv *srv;
	struct sess *prev, *next;
	uint64_t id;
	int fd;
	struct sockaddr_storage peer, local;
	enum sess_state state;
	ev_io rd, wr;
	ev_timer timer;
	ev_tstamp started;
	uint8_t in[S5_MAX_REQUEST + 64];
	size_t inlen;
	uint8_t out[600];
	size_t outlen;
	bool half_closed; /* CLOSING: our FIN sent */
	bool authed;
	char user[256];
	struct s5_request req;
	uint8_t rep; /* reply sent, 0xff before any */
	enum sess_end end;
	/* CONNECT */
	struct dns_query *dnsq;
	struct sockaddr_storage addrs[DNS_MAX_ADDRS];
	size_t naddrs, addr_idx;
	uint8_t best_rep;
	int tfd;
	ev_io cw; /* outbound connect in progress */
	struct sockaddr_storage target;
	struct relay relay;
	/* TRANSPARENT */
	struct sockaddr_storage tp_src, tp_dst; /* resolved S and DST */
	struct assoc *assoc;
	uint32_t assoc_id; /* for the session's log line */
	int assoc_reason;  /* enum assoc_end when SESS_END_ASSOC */
};

/* Takes ownership of an accepted, non-blocking fd. */
struct sess *sess_new(struct srv *srv, int fd,
		      const struct sockaddr_storage *peer);
/* Ends the session: logs one line, frees everything it holds. */
void sess_end(struct sess *s, enum sess_end why);
/* Sends a reply (REP and BND) and, unless rep is success, closes the
 * session once it is written. */
void sess_reply(struct sess *s, uint8_t rep, const struct sockaddr *bnd);
/* Checks a destination against the rules for this session's command. */
bool sess_allowed(struct sess *s, const struct sockaddr *dst_ip,
		  const char *dst_name, uint16_t port);
const char *sess_end_str(enum sess_end e);

/* Command phases (sess_connect.c, sess_transparent.c). */
void sess_connect_start(struct sess *s);
void sess_connect_stop(struct sess *s);
void sess_transparent_start(struct sess *s);
void sess_transparent_stop(struct sess *s, enum sess_end why);

#endif
