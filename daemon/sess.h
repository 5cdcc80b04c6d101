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
#include <netinet/in.h>
#include <sys/socket.h>

#include "dns.h"
#include "relay.h"
#include "s5_proto.h"

struct srv;
struct assoc;
struct sess_udp;
struct auth_job;

/* Session states: (enum name, name in `socksgate list`). */
#define SESS_STATE_LIST(X)                                                     \
	X(SESS_METHODS, "methods")                                             \
	X(SESS_AUTH, "auth")                                                   \
	X(SESS_REQUEST, "request")                                             \
	X(SESS_RESOLVING, "resolving")	   /* waiting for c-ares */            \
	X(SESS_CONNECTING, "connecting")   /* CONNECT: connect in progress */  \
	X(SESS_RELAY, "relay")		   /* CONNECT: relaying */             \
	X(SESS_TRANSPARENT, "transparent") /* association up, N1 held */       \
	X(SESS_UDP, "udp")	       /* UDP ASSOCIATE relaying, N1 held */   \
	X(SESS_BIND_WAIT, "bind-wait") /* BIND: waiting for the peer */        \
	X(SESS_CLOSING, "closing")     /* flushing a final reply */

/* Why a session ended, for the log line and the counters. */
#define SESS_END_LIST(X)                                                       \
	X(SESS_END_DONE, "done")	    /* relay finished normally */      \
	X(SESS_END_CLIENT, "client-closed") /* N1 closed by the client */      \
	X(SESS_END_RESET, "reset")	    /* error on a socket */            \
	X(SESS_END_TIMEOUT, "timeout")	    /* handshake or connect timeout */ \
	X(SESS_END_IDLE, "idle")	    /* idle timeout */                 \
	X(SESS_END_REFUSED, "refused")	    /* request refused with a reply */ \
	X(SESS_END_PROTOCOL, "protocol")    /* malformed message */            \
	X(SESS_END_AUTH, "auth-failed")	    /* authentication failed */        \
	X(SESS_END_SHUTDOWN, "shutdown")    /* daemon stopping */              \
	X(SESS_END_ASSOC, "association-ended") /* reason in the assoc log */

#define SESS_ENUM(e, name) e,
enum sess_state { SESS_STATE_LIST(SESS_ENUM) SESS_STATE_COUNT };
enum sess_end { SESS_END_LIST(SESS_ENUM) SESS_END_COUNT };
#undef SESS_ENUM

/* An IPv4 or IPv6 socket address, sized for those two only. */
union sess_addr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

/* What only the handshake and the command's setup need; freed once the
 * session settles (relay running, association live), so that a
 * long-lived session costs a few hundred bytes. */
struct sess_setup {
	uint8_t in[S5_MAX_REQUEST + 64];
	size_t inlen;
	struct s5_request req;
	struct sockaddr_storage tp_src, tp_dst; /* TRANSPARENT: resolved */
};

/* CONNECT's and BIND's state (the other connection and the relay). */
struct sess_conn {
	struct sockaddr_storage addrs[DNS_MAX_ADDRS];
	size_t naddrs, addr_idx;
	uint8_t best_rep;
	int tfd;
	ev_io cw; /* outbound connect in progress */
	int lfd;  /* BIND: the listening socket */
	ev_io lw;
	ev_timer lretry; /* BIND: accept paused after EMFILE */
	struct sockaddr_storage target;
	struct relay relay;
};

struct sess {
	struct srv *srv;
	struct sess *prev, *next;
	uint64_t id;
	int fd;
	union sess_addr peer, local;
	enum sess_state state;
	ev_io rd, wr;
	ev_timer timer;
	ev_tstamp started;
	uint8_t out[32]; /* the longest reply is 22 bytes */
	uint8_t outlen;
	bool half_closed; /* CLOSING: our FIN sent */
	bool authed;
	uint8_t cmd; /* the request's CMD, 0 before it */
	uint8_t rep; /* reply sent, 0xff before any */
	enum sess_end end;
	char *user;		  /* authenticated user name, or NULL */
	char *dst;		  /* DST as requested ("name:port"), for logs */
	char *dst_name;		  /* DST's name when the request gave one */
	struct sess_setup *setup; /* NULL once settled */
	struct sess_conn *conn;	  /* CONNECT and BIND */
	struct sess_udp *udp;	  /* UDP ASSOCIATE */
	struct dns_query *dnsq;
	struct auth_job *auth_job; /* RFC 1929 check on the worker */
	/* TRANSPARENT */
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
/* Frees the setup state (the session has settled). */
void sess_settle(struct sess *s);
/* Checks a destination against the rules for this session's command. */
bool sess_allowed(struct sess *s, const struct sockaddr *dst_ip,
		  const char *dst_name, uint16_t port);
const char *sess_end_str(enum sess_end e);
const char *sess_state_str(enum sess_state st);

/* Command phases (sess_connect.c, sess_transparent.c). */
void sess_connect_start(struct sess *s);
void sess_connect_stop(struct sess *s);
void sess_transparent_start(struct sess *s);
void sess_transparent_stop(struct sess *s, enum sess_end why);
/* After a reload: ends (reason policy) the associations the new
 * configuration no longer allows. */
void sess_transparent_recheck(struct srv *srv);
void sess_udp_start(struct sess *s);
void sess_udp_stop(struct sess *s);
void sess_bind_start(struct sess *s);
/* Starts the byte relay between N1 and the connected conn->tfd (CONNECT
 * once connected, BIND once the peer came). */
void sess_connect_relay(struct sess *s);

#endif
