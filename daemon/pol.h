/*
 * pol: access policy.  The `rule` lines of the config, first match wins,
 * default deny.  Pure: a decision is a function of the rules and a query,
 * so it is unit-tested without sockets.
 *
 * The destination is normalised before any rule sees it
 * (addr_dst_normalise): rules match what the kernel will really reach,
 * not the form the client wrote (docs/security.md, "Destination forms").
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
	POL_TO_SELF,	/* `to self`: the gateway's own addresses and the
			 * loopback networks (127.0.0.0/8, ::1) */
};

/*
 * The gateway's own addresses, as the caller knows them (the daemon: the
 * kernel's local routing table, kept current by rtnl/selfaddr; tests: a
 * fixed list).  match() must be a pure lookup: it runs per request and
 * per datagram.
 */
struct pol_self {
	bool (*match)(const void *ctx, const struct sockaddr *sa);
	const void *ctx;
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
 * address when known (NULL before resolution), in any form (pol_check
 * normalises it); dst_name the requested name when the request carried
 * one (NULL otherwise).  user is NULL without authentication.  self may be
 * NULL: `to self` then matches the loopback networks only. */
struct pol_query {
	const struct sockaddr *client;
	const struct sockaddr *dst_ip;
	const char *dst_name;
	uint16_t dst_port;
	uint8_t cmd; /* one POL_CMD_* bit */
	const char *user;
	const struct pol_self *self;
};

struct pol_decision {
	bool allow;
	int line;	    /* the deciding rule's line, 0 for the default deny
			     * or a refused form */
	enum addr_dst form; /* not ADDR_DST_OK: refused for its form */
	bool embedded;	    /* denied for the IPv4 address it carries */
};

/*
 * Evaluates rules[0..n) in order.  A rule with `to CIDR` or `to self` does
 * not match a query without dst_ip, and `to NAME` does not match one
 * without dst_name.  dst_ip is normalised first: a form the kernel would
 * take for the gateway itself (or for no one unicast) is denied whatever
 * the rules say (d.form); an IPv4-mapped address is matched as IPv4; an
 * address carrying an IPv4 address (NAT64, 6to4, Teredo) is allowed only
 * if the rules allow both it and the IPv4 address (with the same name,
 * port, command and user).
 */
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
