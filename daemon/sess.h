/*
 * sess: one client's control connection (N1): method negotiation, RFC 1929
 * authentication, the request, then the command's own phase (CONNECT
 * relay, TRANSPARENT association...).  Parsing is done by s5_proto, the
 * decision by pol; this module sequences them and does the I/O.
 *
 * A session is opaque outside the session files (sess*.c, which share
 * sess_int.h): the server creates and ends them, the control socket reads
 * what it shows through sess_get_info().
 */
#ifndef SOCKSGATE_SESS_H
#define SOCKSGATE_SESS_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "assoc.h"

struct srv;
struct sess;
struct srclimit_src;

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

/* What `socksgate list` shows of a session. */
struct sess_info {
	uint64_t id;
	const char *command; /* "connect", ... ("none" before a request) */
	const char *state;
	struct sockaddr_storage peer;
	const char *user; /* NULL without RFC 1929 */
	const char *dst;  /* DST as requested, or NULL */
	double age;
	uint64_t bytes_up, bytes_down; /* CONNECT and BIND relays */
	bool has_assoc;
	struct assoc_info assoc; /* TRANSPARENT, when has_assoc */
};

/* Takes ownership of an accepted, non-blocking fd, and of src's session
 * count (srclimit_session_open(); NULL: not limited), which it gives back
 * when it ends. */
struct sess *sess_new(struct srv *srv, int fd,
		      const struct sockaddr_storage *peer,
		      struct srclimit_src *src);
/* Ends the session: logs one line, frees everything it holds. */
void sess_end(struct sess *s, enum sess_end why);
/* The next session of the server's list (srv->sessions is the first). */
struct sess *sess_next(const struct sess *s);
void sess_get_info(const struct sess *s, struct sess_info *out);
const char *sess_end_str(enum sess_end e);
const char *sess_state_str(enum sess_state st);
/* After a reload, or a change of the gateway's own addresses: ends
 * (reason policy) the associations the rules no longer allow. */
void sess_transparent_recheck(struct srv *srv);

#endif
