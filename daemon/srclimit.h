/*
 * srclimit: what each source may hold and what it has done, for abuse
 * resistance.  A source is a client address under `source-prefix` (/32
 * and /64 by default), as OpenSSH's srclimit.c counts per
 * PerSourceNetBlockSize.  Per source it keeps:
 *   - sessions and handshakes at once (max-sessions-per-source,
 *     max-handshakes-per-source; checked at accept);
 *   - TRANSPARENT associations at once (max-associations-per-source);
 *   - failed password checks, as a score that forgets one failure per
 *     MAX seconds: beyond FREE failures its checks are spaced BASE, 2 BASE,
 *     4 BASE ... up to MAX seconds apart (auth-penalty; OpenSSH's
 *     PerSourcePenalties refuse a penalised source, this delays it);
 *   - a token bucket for the names its UDP datagrams make the gateway
 *     look up (udp-name-rate).
 * Refusals and failures are logged in summary: the first at once, then
 * at most one line per source and kind every SRCLIMIT_LOG_INTERVAL
 * seconds (srclimit_sweep() writes the pending ones), all through
 * log_limited().
 *
 * Pure: no sockets, no loop; the caller passes the time (seconds on a
 * monotonic clock).  Memory: an entry per source that holds a session, or
 * still has state (a penalty, a bucket refilling, a summary pending);
 * beyond SRCLIMIT_IDLE_MAX entries without sessions the oldest is
 * forgotten (counted), as OpenSSH's permissive overflow does.  Entries are
 * hashed with a per-process random seed.
 */
#ifndef SOCKSGATE_SRCLIMIT_H
#define SOCKSGATE_SRCLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cfg.h"

#define SRCLIMIT_LOG_INTERVAL 10.0
#define SRCLIMIT_IDLE_MAX 4096
#define SRCLIMIT_KEY_LEN 18 /* family, prefix bits, 16 address bytes */

struct srclimit;
struct srclimit_src;

/* What a source was refused, or did, for the counters and summaries. */
#define SRCLIMIT_KIND_LIST(X)                                                  \
	X(SRCLIMIT_HANDSHAKES, "refused_handshakes")                           \
	X(SRCLIMIT_SESSIONS, "refused_sessions")                               \
	X(SRCLIMIT_ASSOCIATIONS, "refused_associations")                       \
	X(SRCLIMIT_AUTH_FAILED, "auth_failures")                               \
	X(SRCLIMIT_UDP_NAMES, "udp_names_limited")

#define SRCLIMIT_ENUM(e, name) e,
enum srclimit_kind { SRCLIMIT_KIND_LIST(SRCLIMIT_ENUM) SRCLIMIT_KINDS };
#undef SRCLIMIT_ENUM

struct srclimit_stats {
	size_t sources;	  /* entries now */
	size_t penalised; /* sources whose password checks are spaced now */
	uint64_t events[SRCLIMIT_KINDS]; /* since the start */
	uint64_t forgotten;		 /* idle entries dropped for room */
};

/* Returns NULL when out of memory.  seed: random, for the hash. */
struct srclimit *srclimit_new(const struct cfg_limits *lim, uint64_t seed);
/* Frees every entry; sources still referenced must not be used after. */
void srclimit_free(struct srclimit *t);
/* New limits (reload).  A changed source-prefix applies to sessions that
 * start afterwards; existing sessions stay counted where they were. */
void srclimit_configure(struct srclimit *t, const struct cfg_limits *lim);
const char *srclimit_kind_str(enum srclimit_kind k);

/*
 * A connection accepted from peer.  Returns 0 with *src set (the session
 * is counted, in its handshake), or -1 when a limit refuses it (*why says
 * which; counted and summarised).  When the table cannot grow (no memory)
 * it returns 0 with *src NULL: that session is not limited.  Every
 * function below accepts a NULL src and then does nothing (or allows).
 */
int srclimit_session_open(struct srclimit *t, const struct sockaddr *peer,
			  double now, struct srclimit_src **src,
			  enum srclimit_kind *why);
/* The session's request is complete: no longer a handshake. */
void srclimit_handshake_done(struct srclimit *t, struct srclimit_src *src);
/* The session ended (in_handshake: before its request was complete). */
void srclimit_session_close(struct srclimit *t, struct srclimit_src *src,
			    bool in_handshake, double now);
/* A TRANSPARENT association for src: 0, or -1 when its quota is full
 * (counted and summarised). */
int srclimit_assoc_open(struct srclimit *t, struct srclimit_src *src,
			double now);
void srclimit_assoc_close(struct srclimit *t, struct srclimit_src *src);

/* The source's key (for auth's fair queue); returns its length (0 for a
 * NULL src). */
size_t srclimit_key(const struct srclimit_src *src,
		    uint8_t key[SRCLIMIT_KEY_LEN]);
/* Seconds the source's next password check must wait after its last one
 * started (0: none). */
double srclimit_auth_spacing(struct srclimit *t, struct srclimit_src *src,
			     double now);
/* A finished password check of the source with key (the source may have
 * no session left).  A failure raises its score and is summarised (user:
 * the name tried).  Returns the spacing its checks must keep now. */
double srclimit_auth_result(struct srclimit *t, const uint8_t *key,
			    size_t keylen, const char *user, bool ok,
			    double now);
/* True if src may look up one more new name for its UDP datagrams now
 * (takes a token); false: counted and summarised. */
bool srclimit_udp_name(struct srclimit *t, struct srclimit_src *src,
		       double now);

/* Writes the summaries due, forgets entries whose state is over.  Call
 * every second or so. */
void srclimit_sweep(struct srclimit *t, double now);
void srclimit_stats(struct srclimit *t, double now, struct srclimit_stats *out);

#endif
