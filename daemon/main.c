/*
 * socksgated: SOCKS5 gateway daemon (RFC 1928, RFC 1929, TRANSPARENT).
 * main parses options, loads the configuration, and runs srv.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "auth.h"
#include "cfg.h"
#include "ct_probe.h"
#include "log.h"
#include "ctl_cmd.h"
#include "fwcheck.h"
#include "srv.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: socksgated [-fnd] [-c FILE]\n"
		"  -c FILE  configuration file (default " CFG_DEFAULT_PATH ")\n"
		"  -f       stay in the foreground, log to stderr\n"
		"  -n       check the configuration and exit 0 or 1\n"
		"  -d       debug logging (overrides log-level)\n"
		"  -V       print the version\n");
}

/* Warns about each enabled PTCL the kernel cannot relay (refused X'09'). */
static void warn_unrelayable(const struct cfg *c)
{
	for (int p = 1; p < 256; p++) {
		const char *why = c->ptcl_enabled[p]
					  ? ct_relay_unsupported((uint8_t)p)
					  : NULL;
		if (why)
			log_warnx("transparent-protocols: PTCL %d is refused "
				  "(X'09'): %s",
				  p, why);
	}
}

int main(int argc, char **argv)
{
	static struct srv srv; /* large; one per process */
	const char *path = CFG_DEFAULT_PATH;
	bool foreground = false, check = false, debug = false;
	char err[512];
	int ch;

	while ((ch = getopt(argc, argv, "c:fndVh")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'n':
			check = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'V':
			printf("socksgated %s\n", SOCKSGATE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	log_init(1, LOG_LVL_INFO, "socksgated");
	if (cfg_load(path, &srv.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (check) {
		struct auth_db *db;
		if (srv_load_users(&srv.cfg, &db) < 0)
			return 1;
		auth_free(db);
		warn_unrelayable(&srv.cfg);
		fwcheck_once();
		cfg_free(&srv.cfg);
		printf("%s: configuration OK\n", path);
		return 0;
	}
	snprintf(srv.cfg_path, sizeof(srv.cfg_path), "%s", path);
	srv.debug = debug;
	srv.ctl_handler = ctl_cmd_answer;
	log_init(foreground,
		 debug ? LOG_LVL_DEBUG : (enum log_level)srv.cfg.log_level,
		 "socksgated");
	if (!foreground && daemon(0, 0) < 0)
		fatal("daemon");
	struct ev_loop *loop = ev_default_loop(EVBACKEND_EPOLL);
	if (loop == NULL)
		fatalx("cannot initialise libev with epoll");
	if (srv_init(&srv, loop) < 0) {
		srv_free(&srv);
		return 1;
	}
	log_info("socksgated %s started", SOCKSGATE_VERSION);
	warn_unrelayable(&srv.cfg);
	srv_run(&srv);
	srv_free(&srv);
	ev_loop_destroy(loop);
	log_info("socksgated stopped");
	return 0;
}
