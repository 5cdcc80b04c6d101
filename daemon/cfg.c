/*
 * cfg: see cfg.h.  The parser works on a private copy of one line at a
 * time, splits it into words and hands them to one function per directive.
 * Must not: touch sockets or the event loop.
 */
#include "cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "grow.h"
#include "s5_proto.h"

#define CFG_MAX_WORDS 32
#define CFG_MAX_LINE 4096
#define CFG_MAX_FILE (4 * 1024 * 1024)

struct cfg_ctx {
	struct cfg *c;
	const char *fname;
	int line;
	char *err;
	size_t errlen;
	size_t rules_cap;
	bool seen_auth, seen_ptcl;
};

static int cfg_error(struct cfg_ctx *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int cfg_error(struct cfg_ctx *x, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(x->err, x->errlen, "%s:%d: %s", x->fname, x->line, msg);
	return -1;
}

/* Strict unsigned parse within [lo, hi]. */
static int parse_uint(const char *s, unsigned long lo, unsigned long hi,
		      unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* "N" or "N-M" within 0..65535 (lo_min allows excluding 0). */
static int parse_port_range(const char *s, unsigned long lo_min, uint16_t *lo,
			    uint16_t *hi)
{
	char buf[32], *dash;
	unsigned long a, b;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash)
		*dash = '\0';
	if (parse_uint(buf, lo_min, 65535, &a) < 0)
		return -1;
	b = a;
	if (dash && parse_uint(dash + 1, lo_min, 65535, &b) < 0)
		return -1;
	if (b < a)
		return -1;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

/* The abuse-resistance defaults (docs/socksgated.conf.5 gives the
 * reasons). */
static void cfg_limits_defaults(struct cfg_limits *l)
{
	l->prefix4 = 32;
	l->prefix6 = 64;
	l->handshakes = 64;
	l->sessions = 256;
	l->associations = 128;
	l->auth_workers = 0;
	l->penalty_free = 3;
	l->penalty_base = 1;
	l->penalty_max = 60;
	l->udp_name_rate = 10;
	l->udp_name_burst = 20;
}

void cfg_defaults(struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->auth[0] = S5_METHOD_NOAUTH;
	c->nauth = 1;
	c->timeout_handshake = 10;
	c->timeout_connect = 10;
	c->timeout_idle = 7200;
	c->timeout_bind = 60;
	c->timeout_assoc_idle = 0;
	c->max_clients = 1024;
	/* splice: the kernel relay (sockmap) measured slower on a single
	 * stream (docs/benchmarks.md); an operator may choose it. */
	c->connect_relay = CFG_RELAY_SPLICE;
	c->log_level = LOG_LVL_INFO;
	c->relay_port_lo = 20000;
	c->relay_port_hi = 29999;
	c->snat = CFG_SNAT_MASQUERADE;
	c->ptcl_enabled[PTCL_TCP] = true;
	c->ptcl_enabled[PTCL_UDP] = true;
	c->max_associations = 100000;
	snprintf(c->session_user, sizeof(c->session_user), "%s",
		 SG_SESSION_USER);
	c->close_on_target_fin = true;
	/* A TCP (SCTP, DCCP) flow that ended is over; a UDP flow's entry
	 * also expires after a quiet spell, which need not end the relay. */
	c->close_on_flow_end[PTCL_TCP] = true;
	c->close_on_flow_end[PTCL_SCTP] = true;
	c->close_on_flow_end[PTCL_DCCP] = true;
	snprintf(c->control_path, sizeof(c->control_path), "%s",
		 CFG_DEFAULT_CONTROL);
	cfg_limits_defaults(&c->limits);
}

void cfg_free(struct cfg *c)
{
	free(c->rules);
	c->rules = NULL;
	c->nrules = 0;
}

static int d_listen(struct cfg_ctx *x, char **w, int n)
{
	unsigned long port;
	struct cfg *c = x->c;

	if (n != 3)
		return cfg_error(x, "usage: listen ADDRESS PORT");
	if (parse_uint(w[2], 1, 65535, &port) < 0)
		return cfg_error(x, "bad port '%s'", w[2]);
	if (c->nlisten == CFG_MAX_LISTEN)
		return cfg_error(x, "more than %d listen directives",
				 CFG_MAX_LISTEN);
	if (addr_parse(w[1], (uint16_t)port, &c->listen[c->nlisten]) < 0)
		return cfg_error(x, "bad address '%s' (numeric IPv4 or IPv6)",
				 w[1]);
	c->nlisten++;
	return 0;
}

static int d_auth(struct cfg_ctx *x, char **w, int n)
{
	struct cfg *c = x->c;

	if (n < 2 || n > 3)
		return cfg_error(x, "usage: auth none | password [none]");
	c->nauth = 0;
	for (int i = 1; i < n; i++) {
		uint8_t m;
		if (strcmp(w[i], "none") == 0)
			m = S5_METHOD_NOAUTH;
		else if (strcmp(w[i], "password") == 0)
			m = S5_METHOD_USERPASS;
		else
			return cfg_error(x, "unknown auth method '%s'", w[i]);
		if (c->nauth == 1 && c->auth[0] == m)
			return cfg_error(x, "auth method '%s' twice", w[i]);
		c->auth[c->nauth++] = m;
	}
	x->seen_auth = true;
	return 0;
}

static int d_users(struct cfg_ctx *x, char **w, int n)
{
	if (n != 2)
		return cfg_error(x, "usage: users FILE");
	if (strlen(w[1]) >= sizeof(x->c->users_file))
		return cfg_error(x, "path too long");
	strcpy(x->c->users_file, w[1]);
	return 0;
}

static int d_timeout(struct cfg_ctx *x, char **w, int n)
{
	static const char *const names[] = {"handshake", "connect", "idle",
					    "bind", "association-idle"};
	unsigned *slots[] = {&x->c->timeout_handshake, &x->c->timeout_connect,
			     &x->c->timeout_idle, &x->c->timeout_bind,
			     &x->c->timeout_assoc_idle};
	unsigned long v;

	_Static_assert(sizeof(names) / sizeof(names[0]) ==
			       sizeof(slots) / sizeof(slots[0]),
		       "a name per timeout");
	if (n != 3)
		return cfg_error(x, "usage: timeout KIND SECONDS");
	if (parse_uint(w[2], 0, 86400 * 7, &v) < 0)
		return cfg_error(x, "bad number of seconds '%s'", w[2]);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(w[1], names[i]) == 0) {
			/* handshake and connect must end: 0 is not "none". */
			if (v == 0 && i < 2)
				return cfg_error(x, "timeout %s must be > 0",
						 w[1]);
			*slots[i] = (unsigned)v;
			return 0;
		}
	}
	return cfg_error(x,
			 "unknown timeout '%s' (handshake, connect, idle, "
			 "bind, association-idle)",
			 w[1]);
}

static int d_count(struct cfg_ctx *x, char **w, int n, unsigned *slot)
{
	unsigned long v;

	if (n != 2)
		return cfg_error(x, "usage: %s N", w[0]);
	if (parse_uint(w[1], 1, 10000000, &v) < 0)
		return cfg_error(x, "bad number '%s'", w[1]);
	*slot = (unsigned)v;
	return 0;
}

static int d_rule(struct cfg_ctx *x, char **w, int n)
{
	struct cfg *c = x->c;
	struct pol_rule r;
	int i;

	memset(&r, 0, sizeof(r));
	r.line = x->line;
	r.port_hi = 65535;
	r.cmds = POL_CMD_ANY;
	if (n < 2)
		return cfg_error(x, "usage: rule allow|deny [from CIDR] [to "
				    "CIDR|NAME|self|any] [port N|N-M] [command "
				    "CMD] [user NAME]");
	if (strcmp(w[1], "allow") == 0)
		r.allow = true;
	else if (strcmp(w[1], "deny") != 0)
		return cfg_error(x, "rule must start with allow or deny");
	for (i = 2; i < n; i += 2) {
		if (i + 1 >= n)
			return cfg_error(x, "'%s' needs a value", w[i]);
		const char *k = w[i], *v = w[i + 1];
		if (strcmp(k, "from") == 0) {
			if (addr_cidr_parse(v, &r.from) < 0)
				return cfg_error(x, "bad CIDR '%s'", v);
			r.has_from = true;
		} else if (strcmp(k, "to") == 0) {
			if (strcmp(v, "any") == 0) {
				r.to_kind = POL_TO_ANY;
			} else if (strcmp(v, "self") == 0) {
				/* A keyword, not the single-label name. */
				r.to_kind = POL_TO_SELF;
			} else if (addr_cidr_parse(v, &r.to) == 0) {
				r.to_kind = POL_TO_CIDR;
			} else if (strlen(v) < sizeof(r.to_name) &&
				   strspn(v, "abcdefghijklmnopqrstuvwxyz"
					     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					     "0123456789.-_") == strlen(v) &&
				   strcmp(v, ".") != 0) {
				r.to_kind = v[0] == '.' ? POL_TO_SUFFIX
							: POL_TO_NAME;
				strcpy(r.to_name, v);
			} else {
				return cfg_error(x, "bad destination '%s'", v);
			}
		} else if (strcmp(k, "port") == 0) {
			if (parse_port_range(v, 0, &r.port_lo, &r.port_hi) < 0)
				return cfg_error(x, "bad port range '%s'", v);
		} else if (strcmp(k, "command") == 0) {
			r.cmds = pol_cmd_parse(v);
			if (r.cmds == 0)
				return cfg_error(x, "unknown command '%s'", v);
		} else if (strcmp(k, "user") == 0) {
			if (strlen(v) > 255)
				return cfg_error(x, "user name too long");
			strcpy(r.user, v);
		} else {
			return cfg_error(x, "unknown rule keyword '%s'", k);
		}
	}
	if (grow(&c->rules, &x->rules_cap, c->nrules + 1, sizeof(*c->rules),
		 16) < 0)
		return cfg_error(x, "out of memory");
	c->rules[c->nrules++] = r;
	return 0;
}

static int d_log_level(struct cfg_ctx *x, char **w, int n)
{
	int l;

	if (n != 2 || (l = log_level_parse(w[1])) < 0)
		return cfg_error(x, "usage: log-level error|warn|info|debug");
	x->c->log_level = l;
	return 0;
}

static int d_relay_address(struct cfg_ctx *x, char **w, int n)
{
	struct sockaddr_storage ss;
	struct sockaddr_storage *slot;

	if (n != 2)
		return cfg_error(x, "usage: relay-address ADDRESS");
	if (addr_parse(w[1], 0, &ss) < 0)
		return cfg_error(x, "bad address '%s'", w[1]);
	if (addr_is_unusable_bnd((struct sockaddr *)&ss))
		return cfg_error(x,
				 "relay-address '%s' is not a usable "
				 "address (unspecified or IPv4-mapped)",
				 w[1]);
	slot = ss.ss_family == AF_INET ? &x->c->relay4 : &x->c->relay6;
	if (slot->ss_family != 0)
		return cfg_error(x, "relay-address given twice for the same "
				    "family");
	*slot = ss;
	return 0;
}

static int d_relay_ports(struct cfg_ctx *x, char **w, int n)
{
	if (n != 2 || parse_port_range(w[1], 1, &x->c->relay_port_lo,
				       &x->c->relay_port_hi) < 0)
		return cfg_error(x, "usage: relay-ports LOW-HIGH (1-65535)");
	return 0;
}

static int d_snat(struct cfg_ctx *x, char **w, int n)
{
	struct cfg *c = x->c;
	struct sockaddr_storage ss;

	if (n != 2)
		return cfg_error(x, "usage: snat masquerade|none|ADDRESS");
	if (strcmp(w[1], "masquerade") == 0) {
		c->snat = CFG_SNAT_MASQUERADE;
	} else if (strcmp(w[1], "none") == 0) {
		c->snat = CFG_SNAT_NONE;
	} else if (addr_parse(w[1], 0, &ss) == 0 &&
		   !addr_is_unusable_bnd((struct sockaddr *)&ss)) {
		c->snat = CFG_SNAT_ADDRESS;
		if (ss.ss_family == AF_INET)
			c->snat4 = ss;
		else
			c->snat6 = ss;
	} else {
		return cfg_error(x, "bad snat '%s'", w[1]);
	}
	return 0;
}

static int d_ptcl(struct cfg_ctx *x, char **w, int n)
{
	static const int ported[] = {PTCL_TCP, PTCL_UDP, PTCL_SCTP,
				     PTCL_UDPLITE, PTCL_DCCP};
	if (n < 2)
		return cfg_error(x, "usage: transparent-protocols tcp udp "
				    "sctp udplite dccp");
	memset(x->c->ptcl_enabled, 0, sizeof(x->c->ptcl_enabled));
	for (int i = 1; i < n; i++) {
		int p = ptcl_parse(w[i], 0);
		bool ok = false;
		for (size_t j = 0; j < sizeof(ported) / sizeof(ported[0]); j++)
			ok |= p == ported[j];
		if (!ok)
			return cfg_error(x,
					 "protocol '%s' has no ports; only "
					 "tcp udp sctp udplite dccp",
					 w[i]);
		x->c->ptcl_enabled[p] = true;
	}
	return 0;
}

static int d_tsource(struct cfg_ctx *x, char **w, int n)
{
	if (n != 2 || (strcmp(w[1], "peer") != 0 && strcmp(w[1], "any") != 0))
		return cfg_error(x, "usage: transparent-source peer|any");
	x->c->transparent_source_any = strcmp(w[1], "any") == 0;
	return 0;
}

static int d_control(struct cfg_ctx *x, char **w, int n)
{
	if (n != 2 || w[1][0] != '/')
		return cfg_error(x, "usage: control /ABSOLUTE/PATH");
	if (strlen(w[1]) >= 108) /* sun_path */
		return cfg_error(x, "control path too long");
	strcpy(x->c->control_path, w[1]);
	return 0;
}

/* user NAME: a login name as useradd(8) takes it (looked up at start,
 * not here: the parser is pure). */
/* `user NAME` (the kernel agent's) and `session-user NAME`. */
static int d_user(struct cfg_ctx *x, char **w, int n)
{
	const char *v = w[1];
	bool session = strcmp(w[0], "session-user") == 0;
	size_t l;

	if (n != 2)
		return cfg_error(x, "usage: %s NAME", w[0]);
	l = strlen(v);
	if (l > CFG_MAX_USER || v[0] == '-' ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyz"
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != l)
		return cfg_error(x, "bad user name '%s'", v);
	strcpy(session ? x->c->session_user : x->c->user, v);
	return 0;
}

static int parse_yes_no(const char *s, bool *out)
{
	if (strcmp(s, "yes") == 0)
		*out = true;
	else if (strcmp(s, "no") == 0)
		*out = false;
	else
		return -1;
	return 0;
}

static int d_target_fin(struct cfg_ctx *x, char **w, int n)
{
	if (n != 2 || parse_yes_no(w[1], &x->c->close_on_target_fin) < 0)
		return cfg_error(x, "usage: close-on-target-fin yes|no");
	return 0;
}

/* close-on-flow-end yes|no [PROTO ...]: all protocols, or those named. */
static int d_flow_end(struct cfg_ctx *x, char **w, int n)
{
	bool v;

	if (n < 2 || parse_yes_no(w[1], &v) < 0)
		return cfg_error(x, "usage: close-on-flow-end yes|no "
				    "[tcp|udp|sctp|udplite|dccp ...]");
	if (n == 2) {
		for (int p = 0; p < 256; p++)
			x->c->close_on_flow_end[p] = v;
		return 0;
	}
	for (int i = 2; i < n; i++) {
		int p = ptcl_parse(w[i], 0);
		if (p < 0)
			return cfg_error(x, "unknown protocol '%s'", w[i]);
		x->c->close_on_flow_end[p] = v;
	}
	return 0;
}

static int d_rcvbuf(struct cfg_ctx *x, char **w, int n)
{
	unsigned long v;

	if (n != 2 || parse_uint(w[1], 4096, 1024UL * 1024 * 1024, &v) < 0)
		return cfg_error(x, "usage: conntrack-rcvbuf BYTES "
				    "(4096..1073741824)");
	x->c->conntrack_rcvbuf = (unsigned)v;
	return 0;
}

static int d_set_size(struct cfg_ctx *x, char **w, int n)
{
	unsigned long v;

	if (n != 2 || parse_uint(w[1], 0, 16 * 1024 * 1024, &v) < 0)
		return cfg_error(x, "usage: kernel-set-size N (0..16777216; "
				    "0: no limit)");
	x->c->kernel_set_size = (unsigned)v;
	return 0;
}

/* --- abuse resistance (struct cfg_limits) ----------------------------- */

/* source-prefix IPV4-BITS IPV6-BITS */
static int d_source_prefix(struct cfg_ctx *x, char **w, int n)
{
	unsigned long v4, v6;

	if (n != 3 || parse_uint(w[1], 1, 32, &v4) < 0 ||
	    parse_uint(w[2], 1, 128, &v6) < 0)
		return cfg_error(x, "usage: source-prefix IPV4-BITS (1..32) "
				    "IPV6-BITS (1..128)");
	x->c->limits.prefix4 = (uint8_t)v4;
	x->c->limits.prefix6 = (uint8_t)v6;
	return 0;
}

/* max-handshakes-per-source, max-sessions-per-source,
 * max-associations-per-source N: 0 is no limit. */
static int d_per_source(struct cfg_ctx *x, char **w, int n, unsigned *slot)
{
	unsigned long v;

	if (n != 2 || parse_uint(w[1], 0, 10000000, &v) < 0)
		return cfg_error(x, "usage: %s N (0: no limit)", w[0]);
	*slot = (unsigned)v;
	return 0;
}

/* auth-workers N: 0 is one per CPU (at least 2). */
static int d_auth_workers(struct cfg_ctx *x, char **w, int n)
{
	unsigned long v;

	if (n != 2 || parse_uint(w[1], 0, 64, &v) < 0)
		return cfg_error(x, "usage: auth-workers N (1..64; 0: one per "
				    "CPU)");
	x->c->limits.auth_workers = (unsigned)v;
	return 0;
}

/* auth-penalty FREE BASE-SECONDS MAX-SECONDS | auth-penalty off */
static int d_auth_penalty(struct cfg_ctx *x, char **w, int n)
{
	struct cfg_limits *l = &x->c->limits;
	unsigned long f, b, m;

	if (n == 2 && strcmp(w[1], "off") == 0) {
		l->penalty_max = 0;
		return 0;
	}
	if (n != 4 || parse_uint(w[1], 0, 1000, &f) < 0 ||
	    parse_uint(w[2], 1, 3600, &b) < 0 ||
	    parse_uint(w[3], 1, 86400, &m) < 0 || m < b)
		return cfg_error(x, "usage: auth-penalty FREE BASE-SECONDS "
				    "MAX-SECONDS (BASE <= MAX) | auth-penalty "
				    "off");
	l->penalty_free = (unsigned)f;
	l->penalty_base = (double)b;
	l->penalty_max = (double)m;
	return 0;
}

/* udp-name-rate PER-SECOND BURST | udp-name-rate off */
static int d_udp_name_rate(struct cfg_ctx *x, char **w, int n)
{
	struct cfg_limits *l = &x->c->limits;
	unsigned long r, b;

	if (n == 2 && strcmp(w[1], "off") == 0) {
		l->udp_name_rate = 0;
		return 0;
	}
	if (n != 3 || parse_uint(w[1], 1, 100000, &r) < 0 ||
	    parse_uint(w[2], 1, 1000000, &b) < 0)
		return cfg_error(x, "usage: udp-name-rate PER-SECOND BURST | "
				    "udp-name-rate off");
	l->udp_name_rate = (double)r;
	l->udp_name_burst = (unsigned)b;
	return 0;
}

static int d_connect_relay(struct cfg_ctx *x, char **w, int n)
{
	static const char *const names[] = {"auto", "sockmap", "splice"};

	for (size_t i = 0; n == 2 && i < 3; i++)
		if (strcmp(w[1], names[i]) == 0) {
			x->c->connect_relay = (enum cfg_relay)i;
			return 0;
		}
	return cfg_error(x, "usage: connect-relay auto|sockmap|splice");
}

/* The directives above; 1 if w[0] is none of them. */
static int cfg_limits_directive(struct cfg_ctx *x, char **w, int n)
{
	struct cfg_limits *l = &x->c->limits;
	const char *d = w[0];

	if (strcmp(d, "source-prefix") == 0)
		return d_source_prefix(x, w, n);
	if (strcmp(d, "max-handshakes-per-source") == 0)
		return d_per_source(x, w, n, &l->handshakes);
	if (strcmp(d, "max-sessions-per-source") == 0)
		return d_per_source(x, w, n, &l->sessions);
	if (strcmp(d, "max-associations-per-source") == 0)
		return d_per_source(x, w, n, &l->associations);
	if (strcmp(d, "auth-workers") == 0)
		return d_auth_workers(x, w, n);
	if (strcmp(d, "auth-penalty") == 0)
		return d_auth_penalty(x, w, n);
	if (strcmp(d, "udp-name-rate") == 0)
		return d_udp_name_rate(x, w, n);
	return 1;
}

static int cfg_directive(struct cfg_ctx *x, char **w, int n)
{
	const char *d = w[0];

	if (strcmp(d, "listen") == 0)
		return d_listen(x, w, n);
	if (strcmp(d, "auth") == 0)
		return d_auth(x, w, n);
	if (strcmp(d, "users") == 0)
		return d_users(x, w, n);
	if (strcmp(d, "timeout") == 0)
		return d_timeout(x, w, n);
	if (strcmp(d, "connect-relay") == 0)
		return d_connect_relay(x, w, n);
	if (strcmp(d, "max-clients") == 0)
		return d_count(x, w, n, &x->c->max_clients);
	if (strcmp(d, "max-associations") == 0)
		return d_count(x, w, n, &x->c->max_associations);
	if (strcmp(d, "kernel-set-size") == 0)
		return d_set_size(x, w, n);
	if (strcmp(d, "rule") == 0)
		return d_rule(x, w, n);
	if (strcmp(d, "log-level") == 0)
		return d_log_level(x, w, n);
	if (strcmp(d, "relay-address") == 0)
		return d_relay_address(x, w, n);
	if (strcmp(d, "relay-ports") == 0)
		return d_relay_ports(x, w, n);
	if (strcmp(d, "snat") == 0)
		return d_snat(x, w, n);
	if (strcmp(d, "transparent-protocols") == 0)
		return d_ptcl(x, w, n);
	if (strcmp(d, "transparent-source") == 0)
		return d_tsource(x, w, n);
	if (strcmp(d, "control") == 0)
		return d_control(x, w, n);
	if (strcmp(d, "user") == 0 || strcmp(d, "session-user") == 0)
		return d_user(x, w, n);
	if (strcmp(d, "close-on-target-fin") == 0)
		return d_target_fin(x, w, n);
	if (strcmp(d, "close-on-flow-end") == 0)
		return d_flow_end(x, w, n);
	if (strcmp(d, "conntrack-rcvbuf") == 0)
		return d_rcvbuf(x, w, n);
	int rc = cfg_limits_directive(x, w, n);
	if (rc <= 0)
		return rc;
	return cfg_error(x, "unknown directive '%s'", d);
}

/* Checks that need the whole file. */
static int cfg_finish(struct cfg_ctx *x)
{
	struct cfg *c = x->c;
	bool pw = false;

	for (size_t i = 0; i < c->nauth; i++)
		pw |= c->auth[i] == S5_METHOD_USERPASS;
	if (pw && c->users_file[0] == '\0')
		return cfg_error(x, "auth password needs a users file");
	if (c->nlisten == 0) {
		addr_parse("127.0.0.1", 1080, &c->listen[0]);
		c->nlisten = 1;
	}
	if (c->snat == CFG_SNAT_ADDRESS && c->snat4.ss_family == 0 &&
	    c->snat6.ss_family == 0)
		return cfg_error(x, "snat address missing");
	if (strcmp(c->user, c->session_user) == 0)
		return cfg_error(x,
				 "session-user %s is also the kernel "
				 "agent's user: name another account",
				 c->session_user);
	return 0;
}

int cfg_parse_buf(const char *buf, size_t len, const char *fname, struct cfg *c,
		  char *err, size_t errlen)
{
	struct cfg_ctx x = {
		.c = c, .fname = fname, .err = err, .errlen = errlen};
	char line[CFG_MAX_LINE];
	size_t pos = 0;

	cfg_defaults(c);
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		char *w[CFG_MAX_WORDS], *p, *hash;
		int n = 0;

		x.line++;
		if (ll >= sizeof(line)) {
			cfg_error(&x, "line too long");
			goto fail;
		}
		memcpy(line, buf + pos, ll);
		line[ll] = '\0';
		pos += ll + (nl ? 1 : 0);
		if (memchr(line, '\0', ll) != NULL) {
			cfg_error(&x, "NUL byte in line");
			goto fail;
		}
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		for (p = strtok(line, " \t\r"); p; p = strtok(NULL, " \t\r")) {
			if (n == CFG_MAX_WORDS) {
				cfg_error(&x, "too many words");
				goto fail;
			}
			w[n++] = p;
		}
		if (n == 0)
			continue;
		if (cfg_directive(&x, w, n) < 0)
			goto fail;
	}
	if (cfg_finish(&x) < 0)
		goto fail;
	return 0;
fail:
	cfg_free(c);
	memset(c, 0, sizeof(*c));
	return -1;
}

int cfg_load_fd(int fd, const char *name, struct cfg *c, char *err,
		size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	ssize_t got;
	size_t off = 0;
	int rc = -1;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > CFG_MAX_FILE) {
		snprintf(err, errlen, "%s: not a regular file under 4 MiB",
			 name);
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	/* pread: the description may be shared with another process. */
	while (off < (size_t)st.st_size &&
	       (got = pread(fd, buf + off, (size_t)st.st_size - off,
			    (off_t)off)) > 0)
		off += (size_t)got;
	rc = cfg_parse_buf(buf, off, name, c, err, errlen);
	free(buf);
	return rc;
}

int cfg_load(const char *path, struct cfg *c, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = cfg_load_fd(fd, path, c, err, errlen);
	close(fd);
	return rc;
}
