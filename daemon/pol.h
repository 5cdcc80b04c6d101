/*
 * pol: access policy.  The `rule` lines of the config, first match wins,
 * default deny.  Pure: a decision is a function of the rules and a query,
 * so it is unit-tested without sockets.
 */
#ifndef SOCKSGATE_POL_H
#define SOCKSGATE_POL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"

/* Command bits, so that one rule can name any of them. */
#define POL_CMD_CONNECT 0x01
#define POL_CMD_BIND 0x02
#define POL_CMD_UDP 0x04
#define POL_CMD_TRANSPARENT 0x08
#define POL_CMD_ANY 0x0f

enum pol_to_kind {
	POL_TO_ANY = 0, /* no `to`, or `to any` */
	POL_TO_CIDR,	/* `to 198.18.2.0/24`: matches resolved addresses */
	POL_TO_NAME,	/* `to host.example`: matches that name exactly */
	POL_TO_SUFFIX,	/* `to .example`: the name and names under it */
};

struct pol_rule {
	bool allow;
	int line; /* config line, for logs */
	bool has_from;
	struct addr_cidr from;
	enum pol_to_kind to_kind;
	struct addr_cidr to;
	char to_name[256];
	uint16_t port_lo, port_hi; /* 0-65535 when absent */
	uint8_t cmds;		   /* POL_CMD_* bits */
	char user[256];		   /* empty: any user, or none */
};

/* What is asked.  client is the N1 peer.  dst_ip is the destination
 * address when known (NULL before resolution); dst_name the requested name
 * when the request carried one (NULL otherwise).  user is NULL without
 * authentication. */
struct pol_query {
	const struct sockaddr *client;
	const struct sockaddr *dst_ip;
	const char *dst_name;
	uint16_t dst_port;
	uint8_t cmd; /* one POL_CMD_* bit */
	const char *user;
};

struct pol_decision {
	bool allow;
	int line; /* the matching rule's line, 0 for the default deny */
};

/* Evaluates rules[0..n) in order.  A rule with `to CIDR` does not match a
 * query without dst_ip, and `to NAME` does not match one without dst_name. */
struct pol_decision pol_check(const struct pol_rule *rules, size_t n,
			      const struct pol_query *q);
/* For commands whose destinations come later (UDP ASSOCIATE: one per
 * datagram): true if some rule could allow this client, command and user
 * for some destination.  Rules with `to` or `port` are taken as matching
 * when they allow, and as not matching when they deny; q->dst_* are
 * ignored.  Each datagram is then checked with pol_check(). */
bool pol_may_allow(const struct pol_rule *rules, size_t n,
		   const struct pol_query *q);
/* Maps a SOCKS command byte to its POL_CMD_* bit, 0 if unknown. */
uint8_t pol_cmd_bit(uint8_t s5_cmd);
/* Parses "connect|bind|udp|transparent|any"; 0 if unknown. */
uint8_t pol_cmd_parse(const char *s);

#endif
