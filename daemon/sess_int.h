/*
 * sess_int: a session's state, shared by the session files only (sess.c,
 * the command files sess_connect.c, sess_bind.c, sess_udp.c,
 * sess_transparent.c and the TCP relay sess_tcp.c).  Other modules use
 * sess.h.
 */
#ifndef SOCKSGATE_SESS_INT_H
#define SOCKSGATE_SESS_INT_H

#include "dns.h"
#include "relay.h"
#include "s5_proto.h"
#include "sess.h"

struct sess_udp;
struct auth_job;
struct srclimit_src;

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

/* CONNECT: the addresses to try and the connection in progress. */
struct sess_connect {
	struct sockaddr_storage addrs[DNS_MAX_ADDRS];
	size_t naddrs, addr_idx;
	uint8_t best_rep;
	int fd;	  /* connecting; -1 */
	ev_io cw; /* outbound connect in progress */
	struct sockaddr_storage target;
};

/* BIND: the listener toward DST. */
struct sess_bind {
	int lfd;
	ev_io lw;
	ev_timer lretry; /* accept paused after EMFILE */
	struct sockaddr_storage target;
};

/* CONNECT's and BIND's byte relay (sess_tcp.c). */
struct sess_tcp {
	int fd; /* the target, or BIND's peer */
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
	struct sess_connect *connect; /* CONNECT, until connected */
	struct sess_bind *bind;	      /* BIND, until the peer came */
	struct sess_tcp *tcp;	      /* CONNECT and BIND relays */
	struct sess_udp *udp;	      /* UDP ASSOCIATE */
	struct dns_query *dnsq;
	struct auth_job *auth_job; /* RFC 1929 check on the worker */
	struct srclimit_src *src;  /* its source's counts (srclimit) */
	bool in_handshake;	   /* counted as a handshake of src */
	bool assoc_counted;	   /* counted as an association of src */
	/* TRANSPARENT */
	struct kassoc *assoc; /* TRANSPARENT, through the agent */
	uint32_t assoc_id;    /* for the session's log line */
	int assoc_reason;     /* enum assoc_end when SESS_END_ASSOC */
};

/* Sends a reply (REP and BND) and, unless rep is success, closes the
 * session once it is written. */
void sess_reply(struct sess *s, uint8_t rep, const struct sockaddr *bnd);
/* Frees the setup state (the session has settled). */
void sess_settle(struct sess *s);
/* Checks a destination against the rules for this session's command;
 * a denial is logged. */
bool sess_allowed(struct sess *s, const struct sockaddr *dst_ip,
		  const char *dst_name, uint16_t port);
/* The same without the log line: *line is the deciding rule's line (0:
 * the default).  For UDP, whose denials are summarised. */
bool sess_allowed_quiet(struct sess *s, const struct sockaddr *dst_ip,
			const char *dst_name, uint16_t port, int *line);

/* Command phases (sess_connect.c, sess_transparent.c). */
void sess_connect_start(struct sess *s);
void sess_connect_stop(struct sess *s);
void sess_transparent_start(struct sess *s);
void sess_transparent_stop(struct sess *s, enum sess_end why);
void sess_udp_start(struct sess *s);
void sess_udp_stop(struct sess *s);
void sess_bind_start(struct sess *s);
void sess_bind_stop(struct sess *s);
/* The TCP relay (sess_tcp.c): takes fd, connected to the target (CONNECT)
 * or BIND's peer, sends the bytes the client pipelined after its request,
 * settles the session and relays until either side is done; the session
 * ends with the relay. */
void sess_tcp_start(struct sess *s, int fd);
void sess_tcp_stop(struct sess *s);
/* Bytes relayed so far each way (0 without a relay). */
void sess_tcp_bytes(const struct sess *s, uint64_t *up, uint64_t *down);

#endif
