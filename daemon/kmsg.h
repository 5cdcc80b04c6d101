/*
 * kmsg: the messages between the session process (unprivileged, parses
 * the network) and the kernel agent (CAP_NET_ADMIN, owns nftables and
 * conntrack), and between the supervisor and the agent.  docs/privsep.md.
 *
 * Transport: a SOCK_SEQPACKET socketpair, one message per packet.  Every
 * message is a fixed-size struct that starts with a kmsg_hdr; its size is
 * fixed per type and checked exactly.  Both ends are the same binary, so
 * fields are in host order; the version in every header still refuses a
 * peer built from other sources.
 *
 * kmsg_check() is the whole syntactic check of what arrives: size,
 * version, type allowed in that direction, addresses of a known family,
 * strings terminated and printable, enums in range.  What a field may
 * mean (which BND, how many associations, whose id) the agent decides
 * against its own configuration (agent.c).  Pure: no I/O, no state.
 *
 * Must not: include libev or know the association table's internals.
 */
#ifndef SOCKSGATE_KMSG_H
#define SOCKSGATE_KMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "assoc.h"
#include "cfg.h"

#define KMSG_VERSION 1
#define KMSG_USER_MAX 256 /* user name, with its NUL */

/* (enum, name, direction): S session -> agent, A agent -> session,
 * P supervisor -> agent, R agent -> supervisor. */
#define KMSG_TYPE_LIST(X)                                                      \
	X(KMSG_OPEN, "open", 'S')	    /* install an association */       \
	X(KMSG_CLOSE, "close", 'S')	    /* the session ended it */         \
	X(KMSG_TERMINATE, "terminate", 'S') /* end id: operator, policy */     \
	X(KMSG_LIST, "list", 'S')	    /* refresh, then INFO... END */    \
	X(KMSG_STATS, "stats", 'S')	    /* counters and audit */           \
	X(KMSG_WELCOME, "welcome", 'A')	    /* first message of the agent */   \
	X(KMSG_READY, "ready", 'A')	    /* setup done or refused */        \
	X(KMSG_ENDED, "ended", 'A')	    /* ended by the kernel's side */   \
	X(KMSG_RESULT, "result", 'A')	    /* answer to TERMINATE */          \
	X(KMSG_INFO, "info", 'A')	    /* one association (LIST) */       \
	X(KMSG_LIST_END, "list-end", 'A')   /* end of the LIST answer */       \
	X(KMSG_STATS_REPLY, "stats-reply", 'A')                                \
	X(KMSG_SESSION, "session", 'P')	  /* a new session channel (fd) */     \
	X(KMSG_RELOAD, "reload", 'P')	  /* configuration (and users) fds */  \
	X(KMSG_AGENT_UP, "agent-up", 'R') /* table claimed, privs dropped */   \
	X(KMSG_RELOADED, "reloaded", 'Q') /* session -> supervisor */

#define KMSG_TYPE_ENUM(e, name, dir) e,
enum kmsg_type {
	KMSG_NONE = 0,
	KMSG_TYPE_LIST(KMSG_TYPE_ENUM) KMSG_TYPE_COUNT
};
#undef KMSG_TYPE_ENUM

struct kmsg_hdr {
	uint16_t version;
	uint16_t type;
	uint32_t size; /* of the whole message */
};

/* An IPv4 or IPv6 endpoint. */
struct kmsg_addr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t pad;
	uint16_t port; /* host order */
	uint8_t ip[16];
};

struct kmsg_open {
	struct kmsg_hdr h;
	uint64_t tag; /* the session's handle; unique while it lives */
	uint64_t session_id;
	uint8_t proto;
	uint8_t pad[7];
	struct kmsg_addr src, bnd, dst, client; /* bnd: port 0 */
	char user[KMSG_USER_MAX];		/* "" when none */
};

struct kmsg_close {
	struct kmsg_hdr h;
	uint64_t tag;
	uint32_t why; /* enum assoc_end: n1-closed or shutdown */
	uint32_t pad;
};

struct kmsg_terminate {
	struct kmsg_hdr h;
	uint32_t id;
	uint32_t why; /* enum assoc_end: operator or policy */
};

/* LIST and STATS carry nothing but the header. */
struct kmsg_query {
	struct kmsg_hdr h;
};

struct kmsg_welcome {
	struct kmsg_hdr h;
	uint8_t available; /* nftables and conntrack are usable */
	uint8_t pad[7];
};

struct kmsg_ready {
	struct kmsg_hdr h;
	uint64_t tag;
	uint32_t id;
	uint8_t rep; /* S5_REP_* */
	uint8_t pad[3];
	struct kmsg_addr bnd; /* with the port, when rep is X'00' */
};

struct kmsg_ended {
	struct kmsg_hdr h;
	uint64_t tag;
	uint32_t why; /* enum assoc_end */
	uint32_t pad;
};

struct kmsg_result {
	struct kmsg_hdr h;
	int32_t rc; /* 0, or -1: no live association with that id */
	uint32_t pad;
};

struct kmsg_info {
	struct kmsg_hdr h;
	uint64_t tag;
	uint32_t id;
	char state[20]; /* struct assoc_info's, printable */
	double age;
	uint64_t packets_orig, bytes_orig, packets_reply, bytes_reply;
};

struct kmsg_stats_reply {
	struct kmsg_hdr h;
	uint64_t count; /* associations in the table */
	struct assoc_stats stats;
	struct assoc_audit audit;
};

/* Supervisor -> agent: the new session process's channel travels as
 * SCM_RIGHTS with this message. */
struct kmsg_session {
	struct kmsg_hdr h;
	int32_t pid;
	uint32_t generation;
};

/* Supervisor -> agent and session process, on SIGHUP once the
 * supervisor parsed the configuration: the files travel as descriptors
 * (SCM_RIGHTS: the configuration, then the users file if users_fd), opened
 * by the supervisor, so that neither child needs the right to open them.
 * Read with pread: the descriptions are shared. */
struct kmsg_reload {
	struct kmsg_hdr h;
	uint8_t users_fd; /* a second descriptor: the users file */
	uint8_t pad[7];
};

/* Session process -> supervisor: the RELOAD was applied (ok 1) or the
 * running configuration kept (ok 0).  Only then does the agent get it:
 * both run the same configuration. */
struct kmsg_reloaded {
	struct kmsg_hdr h;
	int32_t ok;
	uint32_t pad;
};

struct kmsg_agent_up {
	struct kmsg_hdr h;
	int32_t rc; /* 0 */
	uint32_t pad;
};

/* No message is longer (kmsg.c asserts it): a receive buffer of this
 * size plus one byte (to see a message that is too long) takes any. */
#define KMSG_MAX 1024

/* Fills a header. */
void kmsg_hdr_init(struct kmsg_hdr *h, enum kmsg_type type, size_t size);
/* Checks what arrived on a channel whose sender is `from` ('S', 'A', 'P',
 * 'R' or 'Q').  Returns the type, or KMSG_NONE with *why set to a static
 * string naming the fault. */
enum kmsg_type kmsg_check(const void *buf, size_t len, char from,
			  const char **why);
const char *kmsg_type_str(unsigned type);
/* Is this OPEN (kmsg_check passed) acceptable under c?  S5_REP_SUCCEEDED,
 * or the reply code with *why set.  The agent's own checks, whatever the
 * session process decided: families agree; BND's port 0 (the agent
 * allocates it in relay-ports) and its address the relay-address when one
 * is configured; S and DST of usable forms (no loopback, multicast,
 * broadcast, unspecified, mapped; no destination form docs/security.md
 * refuses) with ports; PTCL enabled. */
uint8_t kmsg_check_open(const struct cfg *c, const struct kmsg_open *m,
			const char **why);

/* sockaddr <-> kmsg_addr.  kmsg_addr_from: -1 if not IPv4/IPv6. */
int kmsg_addr_from(const struct sockaddr *sa, struct kmsg_addr *ka);
void kmsg_addr_to(const struct kmsg_addr *ka, struct sockaddr_storage *ss);

/* Sends one message (blocking up to timeout_ms when the socket is
 * full; -1 waits forever).  0, or -1 with errno (EAGAIN on timeout). */
int kmsg_send(int fd, const void *msg, size_t len, int timeout_ms);
/* Several messages may travel in one packet, back to back (what one loop
 * iteration produced: the receiver handles them in one wakeup, so the
 * agent still makes one kernel transaction of them).  A packet is taken
 * whole or not at all: kmsg_check_packet() checks every message in it and
 * that they fill it exactly. */
#define KMSG_PACKET 32768
#define KMSG_BATCH 256 /* messages per kmsg_send_many() */
/* Sends msgs[0..n) (n <= KMSG_BATCH) packed into packets of at most
 * KMSG_PACKET bytes, in one system call (sendmmsg), without blocking.
 * Returns how many messages went (whole packets: >= 1), or -1 with errno
 * (EAGAIN: none fits now). */
int kmsg_send_many(int fd, const struct iovec *msgs, unsigned n);
/* A queue of messages to send, in order (both ends of the session
 * channel keep one and flush it before their loop sleeps). */
struct kmsg_out {
	struct kmsg_out *next;
	size_t len;
	unsigned char msg[];
};
struct kmsg_queue {
	struct kmsg_out *head, **tail;
	size_t bytes;
};
void kmsg_queue_init(struct kmsg_queue *q);
/* Appends a copy; 0, or -1 when out of memory. */
int kmsg_queue_push(struct kmsg_queue *q, const void *msg, size_t len);
/* Sends what the socket takes now (kmsg_send_many).  0: all sent; 1: some
 * left (EAGAIN); -1 with errno: the channel failed. */
int kmsg_queue_flush(struct kmsg_queue *q, int fd);
void kmsg_queue_clear(struct kmsg_queue *q);
/* Checks a received packet: returns how many messages it holds (>= 1),
 * or -1 with *why set. */
int kmsg_check_packet(const void *buf, size_t len, char from, const char **why);
/* Sends one message with up to KMSG_MAX_FDS descriptors attached
 * (SCM_RIGHTS), without blocking.  0, or -1 with errno (EAGAIN: the
 * receiver does not read). */
#define KMSG_MAX_FDS 2
int kmsg_send_fds(int fd, const void *msg, size_t len, const int *fds,
		  size_t nfds);
/* The receiving end of a channel from the session process takes no
 * descriptor: SO_PASSRIGHTS 0 (Linux 6.16+; the sender's sendmsg then
 * fails).  On older kernels kmsg_recv() still closes any that comes, after
 * SO_LINGER 0 (a TCP socket with unsent data and a long linger would
 * otherwise hold the closing process in close()).  0, or -1 if the kernel
 * has no SO_PASSRIGHTS. */
int kmsg_refuse_fds(int fd);
/* Receives one message into buf (KMSG_MAX + 1 bytes).  Descriptors that
 * came with it fill fds[0..maxfds) (the rest -1; any beyond maxfds are
 * closed; fds NULL: all closed).  Returns the length, 0 on end of file,
 * -1 with errno. */
ssize_t kmsg_recv(int fd, void *buf, size_t cap, int *fds, size_t maxfds);

#endif
