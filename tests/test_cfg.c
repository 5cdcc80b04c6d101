/*
 * Unit tests for daemon/cfg: every directive, defaults, and the
 * "file:line: message" errors.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>

#include "addr.h"
#include "cfg.h"
#include "s5_proto.h"

static int parse(const char *text, struct cfg *c, char *err)
{
	return cfg_parse_buf(text, strlen(text), "t.conf", c, err, 256);
}

static void expect_error(const char *text, const char *want)
{
	struct cfg c;
	char err[256];

	cr_assert_eq(parse(text, &c, err), -1, "accepted: %s", text);
	cr_assert(strstr(err, want) != NULL, "error '%s' lacks '%s'", err,
		  want);
}

Test(cfg, defaults)
{
	struct cfg c;
	char err[256];

	cr_assert_eq(parse("", &c, err), 0);
	cr_assert_eq(c.nlisten, 1); /* 127.0.0.1:1080 */
	cr_assert_eq(addr_port((struct sockaddr *)&c.listen[0]), 1080);
	cr_assert_eq(c.nauth, 1);
	cr_assert_eq(c.auth[0], S5_METHOD_NOAUTH);
	cr_assert_eq(c.nrules, 0); /* default deny */
	cr_assert_eq(c.relay_port_lo, 20000);
	cr_assert_eq(c.relay_port_hi, 29999);
	cr_assert_eq(c.snat, CFG_SNAT_MASQUERADE);
	cr_assert(c.ptcl_enabled[6] && c.ptcl_enabled[17]);
	cr_assert(!c.ptcl_enabled[132]);
	cr_assert(!c.transparent_source_any);
	cr_assert_str_eq(c.control_path, CFG_DEFAULT_CONTROL);
	cfg_free(&c);
}

Test(cfg, every_directive)
{
	struct cfg c;
	char err[256];
	const char *text =
		"# comment\n"
		"listen 198.18.0.1 1080   # trailing comment\n"
		"listen 2001:db8::1 1081\n"
		"auth password none\n"
		"users /etc/socksgate/users\n"
		"timeout handshake 5\n"
		"timeout connect 7\n"
		"timeout idle 0\n"
		"timeout bind 30\n"
		"timeout association-idle 120\n"
		"max-clients 500\n"
		"\t rule allow from 198.18.0.0/15 to any port 80-443 command "
		"connect user alice\r\n"
		"rule deny to .example command any\n"
		"log-level debug\n"
		"relay-address 198.18.0.1\n"
		"relay-address 2001:db8::1\n"
		"relay-ports 30000-30099\n"
		"snat 198.18.1.1\n"
		"transparent-protocols tcp udp sctp udplite dccp\n"
		"transparent-source any\n"
		"max-associations 10\n"
		"control /run/x.sock\n";

	cr_assert_eq(parse(text, &c, err), 0, "%s", err);
	cr_assert_eq(c.nlisten, 2);
	cr_assert_eq(c.listen[1].ss_family, AF_INET6);
	cr_assert_eq(c.nauth, 2);
	cr_assert_eq(c.auth[0], S5_METHOD_USERPASS);
	cr_assert_eq(c.auth[1], S5_METHOD_NOAUTH);
	cr_assert_eq(c.timeout_handshake, 5);
	cr_assert_eq(c.timeout_connect, 7);
	cr_assert_eq(c.timeout_idle, 0);
	cr_assert_eq(c.timeout_bind, 30);
	cr_assert_eq(c.timeout_assoc_idle, 120);
	cr_assert_eq(c.max_clients, 500);
	cr_assert_eq(c.nrules, 2);
	cr_assert(c.rules[0].allow);
	cr_assert_eq(c.rules[0].line, 12);
	cr_assert_eq(c.rules[0].port_lo, 80);
	cr_assert_eq(c.rules[0].port_hi, 443);
	cr_assert_str_eq(c.rules[0].user, "alice");
	cr_assert_eq(c.rules[1].to_kind, POL_TO_SUFFIX);
	cr_assert_eq(c.log_level, 3);
	cr_assert_eq(c.relay4.ss_family, AF_INET);
	cr_assert_eq(c.relay6.ss_family, AF_INET6);
	cr_assert_eq(c.relay_port_lo, 30000);
	cr_assert_eq(c.snat, CFG_SNAT_ADDRESS);
	cr_assert(c.ptcl_enabled[132] && c.ptcl_enabled[136] &&
		  c.ptcl_enabled[33]);
	cr_assert(c.transparent_source_any);
	cr_assert_eq(c.max_associations, 10);
	cr_assert_str_eq(c.control_path, "/run/x.sock");
	cfg_free(&c);
}

Test(cfg, errors_name_file_and_line)
{
	expect_error("listen 1.2.3.4 1080\nbogus 1\n",
		     "t.conf:2: unknown directive 'bogus'");
	expect_error("listen 1.2.3.4\n", "t.conf:1: usage: listen");
	expect_error("listen 1.2.3.4 0\n", "bad port");
	expect_error("listen 1.2.3.4 65536\n", "bad port");
	expect_error("listen host.example 1080\n", "bad address");
	expect_error("auth kerberos\n", "unknown auth method");
	expect_error("auth password\n", "needs a users file");
	expect_error("auth none none\n", "twice");
	expect_error("timeout handshake 0\n", "must be > 0");
	expect_error("timeout forever 3\n", "unknown timeout");
	expect_error("timeout idle -1\n", "bad number");
	expect_error("max-clients 0\n", "bad number");
	expect_error("max-clients 12x\n", "bad number");
	expect_error("rule maybe\n", "allow or deny");
	expect_error("rule allow from 300.1.1.1/8\n", "bad CIDR");
	expect_error("rule allow from 10.0.0.0/33\n", "bad CIDR");
	expect_error("rule allow to bad/name!\n", "bad destination");
	expect_error("rule allow port 90-80\n", "bad port range");
	expect_error("rule allow command dance\n", "unknown command");
	expect_error("rule allow from\n", "needs a value");
	expect_error("rule allow color red\n", "unknown rule keyword");
	expect_error("log-level loud\n", "usage: log-level");
	expect_error("relay-address 0.0.0.0\n", "not a usable");
	expect_error("relay-address ::ffff:1.2.3.4\n", "not a usable");
	expect_error("relay-address 1.1.1.1\nrelay-address 1.1.1.2\n",
		     "t.conf:2: relay-address given twice");
	expect_error("relay-ports 30000-\n", "usage: relay-ports");
	expect_error("relay-ports 30010-30000\n", "usage: relay-ports");
	expect_error("relay-ports 0-10\n", "usage: relay-ports");
	expect_error("snat sometimes\n", "bad snat");
	expect_error("transparent-protocols tcp icmp\n", "has no ports");
	expect_error("transparent-protocols 47\n", "has no ports");
	expect_error("transparent-source nobody\n", "usage");
	expect_error("control relative.sock\n", "ABSOLUTE");
}

Test(cfg, user)
{
	struct cfg c;
	char err[256];

	cr_assert_eq(parse("", &c, err), 0);
	cr_assert_str_eq(c.user, ""); /* stay as started */
	cr_assert_eq(parse("user socksgate\n", &c, err), 0, "%s", err);
	cr_assert_str_eq(c.user, "socksgate");
	cr_assert_eq(parse("user _sg-gate.1\n", &c, err), 0, "%s", err);
	cr_assert_str_eq(c.user, "_sg-gate.1");
	expect_error("user\n", "t.conf:1: usage: user NAME");
	expect_error("user a b\n", "usage: user NAME");
	expect_error("user -rf\n", "bad user name");
	expect_error("user a/b\n", "bad user name");
	expect_error("user abcdefghijklmnopqrstuvwxyz0123456\n",
		     "bad user name");
}

Test(cfg, nul_and_long_lines)
{
	struct cfg c;
	char err[256];
	char big[5000];
	const char nul[] = "listen 1.2.3.4 1080\0\n";

	cr_assert_eq(cfg_parse_buf(nul, sizeof(nul) - 1, "t.conf", &c, err,
				   sizeof(err)),
		     -1);
	cr_assert(strstr(err, "t.conf:1: NUL") != NULL, "%s", err);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_error(big, "line too long");
}

Test(cfg, ptcl_names)
{
	cr_assert_eq(ptcl_parse("tcp", 0), 6);
	cr_assert_eq(ptcl_parse("udplite", 0), 136);
	cr_assert_eq(ptcl_parse("132", 0), 132);
	cr_assert_eq(ptcl_parse("256", 0), -1);
	cr_assert_eq(ptcl_parse("gre", 0), -1);
}

Test(cfg, abuse_limits)
{
	struct cfg c;
	char err[256];
	const char *text = "source-prefix 24 48\n"
			   "max-handshakes-per-source 8\n"
			   "max-sessions-per-source 0\n"
			   "max-associations-per-source 5\n"
			   "auth-workers 3\n"
			   "auth-penalty 2 5 300\n"
			   "udp-name-rate 4 9\n";

	cr_assert_eq(parse(text, &c, err), 0, "%s", err);
	cr_assert_eq(c.limits.prefix4, 24);
	cr_assert_eq(c.limits.prefix6, 48);
	cr_assert_eq(c.limits.handshakes, 8);
	cr_assert_eq(c.limits.sessions, 0);
	cr_assert_eq(c.limits.associations, 5);
	cr_assert_eq(c.limits.auth_workers, 3);
	cr_assert_eq(c.limits.penalty_free, 2);
	cr_assert_float_eq(c.limits.penalty_base, 5, 1e-9);
	cr_assert_float_eq(c.limits.penalty_max, 300, 1e-9);
	cr_assert_float_eq(c.limits.udp_name_rate, 4, 1e-9);
	cr_assert_eq(c.limits.udp_name_burst, 9);
	cfg_free(&c);
	cr_assert_eq(parse("auth-penalty off\nudp-name-rate off\n", &c, err), 0,
		     "%s", err);
	cr_assert_float_eq(c.limits.penalty_max, 0, 0);
	cr_assert_float_eq(c.limits.udp_name_rate, 0, 0);
	cfg_free(&c);
}

Test(cfg, abuse_limit_errors)
{
	expect_error("source-prefix 33 64\n", "t.conf:1: usage: source-prefix");
	expect_error("source-prefix 32\n", "usage: source-prefix");
	expect_error("max-handshakes-per-source -1\n",
		     "usage: max-handshakes-per-source N");
	expect_error("max-sessions-per-source x\n",
		     "usage: max-sessions-per-source N");
	expect_error("auth-workers 65\n", "usage: auth-workers");
	expect_error("auth-penalty 3 10 5\n", "BASE <= MAX");
	expect_error("auth-penalty on\n", "usage: auth-penalty");
	expect_error("udp-name-rate 0 5\n", "usage: udp-name-rate");
}
