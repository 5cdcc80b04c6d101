/*
 * cfg: the configuration file.  One directive per line, `#` comments.
 * cfg_parse_buf() is pure (text in, struct out, "file:line: message" on
 * error); cfg_load() reads a file and calls it.  The daemon swaps a whole
 * new struct cfg in on SIGHUP only when it parsed cleanly.
 */
#ifndef SOCKSGATE_CFG_H
#define SOCKSGATE_CFG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "pol.h"
#include "ptcl.h"
#include "sg_defaults.h"

#define CFG_DEFAULT_PATH SG_CONFIG_PATH
#define CFG_DEFAULT_CONTROL SG_CONTROL_PATH
#define CFG_MAX_LISTEN 16
#define CFG_MAX_USER 32 /* useradd's limit */

enum cfg_snat { CFG_SNAT_MASQUERADE = 0, CFG_SNAT_ADDRESS, CFG_SNAT_NONE };

/* Abuse resistance (docs/security.md, "Abuse resistance").  A source is
 * the client's address under prefix4/prefix6.  For the counts, 0 means
 * no limit. */
struct cfg_limits {
	uint8_t prefix4, prefix6; /* source-prefix */
	unsigned handshakes;	  /* max-handshakes-per-source */
	unsigned sessions;	  /* max-sessions-per-source */
	unsigned associations;	  /* max-associations-per-source */
	unsigned auth_workers;	  /* auth-workers; 0: one per CPU (>= 2) */
	/* auth-penalty: FREE failed checks without delay, then checks spaced
	 * BASE, 2 BASE, 4 BASE ... up to MAX seconds; one failure forgotten
	 * per MAX seconds.  MAX 0: off. */
	unsigned penalty_free;
	double penalty_base, penalty_max;
	/* udp-name-rate: new names looked up per second per source, with a
	 * burst; rate 0: no limit. */
	double udp_name_rate;
	unsigned udp_name_burst;
};

/* connect-relay: who moves a CONNECT's bytes. */
enum cfg_relay {
	CFG_RELAY_AUTO = 0, /* sockmap if it loaded at start, else splice */
	CFG_RELAY_SOCKMAP,
	CFG_RELAY_SPLICE, /* the default */
};

struct cfg {
	struct sockaddr_storage listen[CFG_MAX_LISTEN];
	size_t nlisten;
	uint8_t auth[2]; /* methods offered, in preference order */
	size_t nauth;
	char users_file[PATH_MAX];
	unsigned timeout_handshake, timeout_connect, timeout_idle;
	unsigned timeout_bind, timeout_assoc_idle; /* 0 = none */
	unsigned max_clients;
	enum cfg_relay connect_relay;
	struct pol_rule *rules;
	size_t nrules;
	int log_level;
	/* TRANSPARENT */
	struct sockaddr_storage relay4, relay6; /* ss_family 0 when unset */
	uint16_t relay_port_lo, relay_port_hi;
	enum cfg_snat snat;
	struct sockaddr_storage snat4, snat6; /* CFG_SNAT_ADDRESS */
	bool ptcl_enabled[256];
	bool transparent_source_any;
	unsigned max_associations;
	unsigned kernel_set_size; /* elements per nftables set; 0: no limit */
	char control_path[PATH_MAX];
	/* `user NAME`: the account to run as once listeners, files and
	 * netlink sockets are open (priv.c); "" to stay as started. */
	char user[CFG_MAX_USER + 1];
	/* `session-user NAME`: the account of the session process, which
	 * parses the network and holds no capability (docs/privsep.md). */
	char session_user[CFG_MAX_USER + 1];
	/* conntrack tracking */
	bool close_on_target_fin;
	bool close_on_flow_end[256]; /* per PTCL */
	unsigned conntrack_rcvbuf;   /* bytes; 0 = default (4 MiB) */
	struct cfg_limits limits;    /* abuse resistance */
};

/* Fills *c with the defaults (no listeners, no rules). */
void cfg_defaults(struct cfg *c);
/* Parses text; fname is used in messages only.  On error returns -1 and
 * writes "fname:line: message" into err; *c is then freed and zeroed. */
int cfg_parse_buf(const char *buf, size_t len, const char *fname, struct cfg *c,
		  char *err, size_t errlen);
/* Reads and parses path; -1 with err set on failure. */
int cfg_load(const char *path, struct cfg *c, char *err, size_t errlen);
/* The same from an open file (read with pread from offset 0; not closed);
 * name is for messages. */
int cfg_load_fd(int fd, const char *name, struct cfg *c, char *err,
		size_t errlen);
/* Frees what cfg_parse_buf allocated. */
void cfg_free(struct cfg *c);
/* "tcp" -> 6 ...; -1 if unknown. Also accepts a number 1..255. */

#endif
