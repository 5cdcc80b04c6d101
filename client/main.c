/*
 * socksgate: command-line client for socksgated.
 *
 *   socksgate transparent --proxy HOST[:PORT] --proto tcp|udp|N
 *             --source ADDR:PORT --dest HOST:PORT
 *             [--user NAME --password-file FILE] [--timeout SECONDS]
 *             [-- COMMAND ...]
 *
 * Prints one line once the association is up (docs/socksgate.1):
 *   bound PTCL BND.ADDR BND.PORT
 * then holds N1 open until SIGINT/SIGTERM (exit 0), until the server
 * closes N1 (exit 3), or until COMMAND exits (its status).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netdb.h>

#include "ptcl.h"
#include "sg_defaults.h"
#include "sgclient.h"

#define EXIT_ERROR 1
#define EXIT_USAGE 2
#define EXIT_N1_CLOSED 3
#define EXIT_AUTH 4
#define EXIT_REFUSED_BASE 10 /* + REP: 12 not allowed, 19 PTCL ... */

static void usage(FILE *f)
{
	fprintf(f, "usage: socksgate transparent --proxy HOST[:PORT] "
		   "--proto tcp|udp|sctp|udplite|dccp|NUMBER\n"
		   "                 --source ADDR:PORT --dest HOST:PORT\n"
		   "                 [--user NAME --password-file FILE] "
		   "[--timeout SECONDS] [-- COMMAND ...]\n"
		   "\n"
		   "Asks socksgated for a TRANSPARENT association (the kernel "
		   "relays\n"
		   "PTCL packets from --source sent to the bound address to "
		   "--dest),\n"
		   "prints \"bound PTCL ADDR PORT\" and keeps it until "
		   "interrupted,\n"
		   "until the server ends it (exit 3) or until COMMAND exits "
		   "(its\n"
		   "status; COMMAND gets SOCKSGATE_BND_ADDR, "
		   "SOCKSGATE_BND_PORT and\n"
		   "SOCKSGATE_PTCL in its environment).\n"
		   "Exit: 0 ok, 1 error, 2 usage, 3 server closed, 4 auth "
		   "failed,\n"
		   "10+REP request refused (e.g. 12 not allowed, 19 PTCL).\n"
		   "\n"
		   "       socksgate run --proxy HOST[:PORT] [--proto tcp,udp] "
		   "[--exclude CIDR ...]\n"
		   "                 [--user NAME --password-file FILE] "
		   "[--timeout SECONDS] [--verbose]\n"
		   "                 -- PROGRAM [ARGS ...]\n"
		   "Runs PROGRAM (unmodified, dynamically linked) so that its "
		   "TCP and UDP\n"
		   "flows each get a TRANSPARENT association: the gateway's "
		   "kernel relays\n"
		   "them.  Exit: PROGRAM's status; 1 error; 2 usage.\n"
		   "\n"
		   "       socksgate list [--json] [--control PATH]\n"
		   "       socksgate stats [--json] [--control PATH]\n"
		   "       socksgate close ASSOCIATION-ID [--control PATH]\n"
		   "Query socksgated's control socket (default " SG_CONTROL_PATH
		   ").\n");
}

/* A protocol for --proto: a name, or a number (0 allowed: the server
 * then says X'09'). */
static int parse_proto(const char *s)
{
	return ptcl_parse(s, 1);
}

static const char *proto_name(int p, char *buf, size_t cap)
{
	const char *n = ptcl_name((uint8_t)p);

	if (n)
		return n;
	snprintf(buf, cap, "%u", (unsigned)(uint8_t)p);
	return buf;
}

static int read_password(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "socksgate: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fgets(out, (int)cap, f) == NULL)
		out[0] = '\0';
	fclose(f);
	n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return 0;
}

/* Waits for a signal, N1's end, or the command's end. */
static int hold(int fd, pid_t child)
{
	sigset_t set;
	int sfd, status;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("socksgate: signalfd");
		return EXIT_ERROR;
	}
	for (;;) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
				      {.fd = sfd, .events = POLLIN}};
		if (child > 0 && waitpid(child, &status, WNOHANG) == child) {
			close(fd);
			return WIFEXITED(status) ? WEXITSTATUS(status)
						 : 128 + WTERMSIG(status);
		}
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return EXIT_ERROR;
		}
		if (p[0].revents) {
			char junk[256];
			ssize_t n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN)) {
				fprintf(stderr,
					"socksgate: the server closed the "
					"association\n");
				if (child > 0) {
					kill(child, SIGTERM);
					waitpid(child, &status, 0);
				}
				return EXIT_N1_CLOSED;
			}
		}
		if (p[1].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo == SIGCHLD)
				continue; /* reaped at the loop's top */
			if (child > 0) {
				kill(child, SIGTERM);
				waitpid(child, &status, 0);
			}
			close(fd);
			return 0;
		}
	}
}

/* --proxy: "host[:port]", "v4:port", "[v6]:port", "v6" or "[v6]". */
static void parse_proxy_host(const char *arg, char *host, size_t cap,
			     uint16_t *port)
{
	struct s5_addr a;

	if (sgc_parse_hostport(arg, &a) == 0) {
		s5_addr_str(&a, host, cap);
		*strrchr(host, ':') = '\0';
		if (host[0] == '[') {
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = '\0';
		}
		*port = a.port;
		return;
	}
	size_t l = strlen(arg);
	if (arg[0] == '[' && l > 2 && arg[l - 1] == ']') {
		arg++;
		l -= 2;
	}
	snprintf(host, cap, "%.*s", (int)l, arg);
}

struct tp_args {
	struct sgc_opts o;
	struct s5_request req;
	char proxy[300];
	const char *pwfile;
	int proto;
};

/* Parses the options of `transparent`; returns -1 when the request can
 * go, else the exit status (0 after --help). */
static int tp_parse(int argc, char **argv, struct tp_args *a)
{
	static const struct option longopts[] = {
		{"proxy", required_argument, NULL, 'x'},
		{"proto", required_argument, NULL, 'p'},
		{"source", required_argument, NULL, 's'},
		{"dest", required_argument, NULL, 'd'},
		{"user", required_argument, NULL, 'u'},
		{"password-file", required_argument, NULL, 'P'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	bool have_src = false, have_dst = false;
	int ch;

	memset(a, 0, sizeof(*a));
	a->req.cmd = S5_CMD_TRANSPARENT;
	a->proto = -1;
	while ((ch = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'x':
			parse_proxy_host(optarg, a->proxy, sizeof(a->proxy),
					 &a->o.proxy_port);
			break;
		case 'p':
			a->proto = parse_proto(optarg);
			break;
		case 's':
		case 'd':
			if (sgc_parse_hostport(optarg,
					       ch == 's' ? &a->req.src
							 : &a->req.dst) < 0) {
				fprintf(stderr, "socksgate: bad --%s '%s'\n",
					ch == 's' ? "source" : "dest", optarg);
				return EXIT_USAGE;
			}
			*(ch == 's' ? &have_src : &have_dst) = true;
			break;
		case 'u':
			a->o.user = optarg;
			break;
		case 'P':
			a->pwfile = optarg;
			break;
		case 't':
			a->o.timeout_ms = atoi(optarg) * 1000;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (a->proxy[0] == '\0' || a->proto < 0 || !have_src || !have_dst ||
	    (a->o.user && !a->pwfile)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	a->o.proxy_host = a->proxy;
	a->req.ptcl = (uint8_t)a->proto;
	return -1;
}

/* The exit status of a request that did not succeed. */
static int tp_failure_status(enum sgc_result r, const struct s5_reply *rep,
			     const char *err)
{
	fprintf(stderr, "socksgate: %s\n", err);
	switch (r) {
	case SGC_ERR_REFUSED:
		return EXIT_REFUSED_BASE + rep->rep;
	case SGC_ERR_AUTH:
	case SGC_ERR_METHOD:
		return EXIT_AUTH;
	default:
		return EXIT_ERROR;
	}
}

/* Runs COMMAND with the association's BND in its environment; N1 (fd)
 * stays with us.  Returns the child, or -1. */
static pid_t tp_spawn(char **cmd, int fd, const char *ip, const char *port,
		      const char *ptcl, const sigset_t *blocked)
{
	pid_t child = fork();

	if (child < 0) {
		perror("socksgate: fork");
		return -1;
	}
	if (child > 0)
		return child;
	sigprocmask(SIG_UNBLOCK, blocked, NULL);
	close(fd);
	setenv("SOCKSGATE_BND_ADDR", ip, 1);
	setenv("SOCKSGATE_BND_PORT", port, 1);
	setenv("SOCKSGATE_PTCL", ptcl, 1);
	execvp(cmd[0], cmd);
	fprintf(stderr, "socksgate: %s: %s\n", cmd[0], strerror(errno));
	_exit(127);
}

static int cmd_transparent(int argc, char **argv)
{
	struct tp_args a;
	struct s5_reply rep;
	char password[256] = "", err[256], pbuf[8], ip[64], port[8];
	enum sgc_result r;
	int fd, status;
	sigset_t set;
	pid_t child = -1;

	if ((status = tp_parse(argc, argv, &a)) >= 0)
		return status;
	if (a.pwfile) {
		if (read_password(a.pwfile, password, sizeof(password)) < 0)
			return EXIT_ERROR;
		a.o.password = password;
	}
	/* Block the signals first: they are read through a signalfd. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	r = sgc_request(&a.o, &a.req, &rep, &fd, err, sizeof(err));
	explicit_bzero(password, sizeof(password));
	if (r != SGC_OK)
		return tp_failure_status(r, &rep, err);
	inet_ntop(rep.bnd.atyp == S5_ATYP_IPV6 ? AF_INET6 : AF_INET,
		  rep.bnd.u.v6, ip, sizeof(ip));
	snprintf(port, sizeof(port), "%u", rep.bnd.port);
	printf("bound %s %s %s\n", proto_name(a.proto, pbuf, sizeof(pbuf)), ip,
	       port);
	fflush(stdout);
	if (optind < argc) {
		child = tp_spawn(argv + optind, fd, ip, port,
				 proto_name(a.proto, pbuf, sizeof(pbuf)), &set);
		if (child < 0)
			return EXIT_ERROR;
	}
	return hold(fd, child);
}

/* socksgate list|stats [--json] | close ID  [--control PATH] */
#ifndef SG_PRELOAD_PATH /* set by the build to where it is installed */
#define SG_PRELOAD_PATH "/usr/local/lib/socksgate/libsocksgate-run.so"
#endif

/* The preload library: $SOCKSGATE_PRELOAD, else next to this program
 * (a build tree), else where it is installed. */
static int find_preload(char *out, size_t cap)
{
	const char *env = getenv("SOCKSGATE_PRELOAD");
	char self[PATH_MAX];
	ssize_t n;

	if (env && env[0]) {
		snprintf(out, cap, "%s", env);
		return access(out, R_OK);
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if ((size_t)snprintf(out, cap, "%s/libsocksgate-run.so",
					     self) < cap &&
			    access(out, R_OK) == 0)
				return 0;
		}
	}
	snprintf(out, cap, "%s", SG_PRELOAD_PATH);
	return access(out, R_OK);
}

/* The proxy as a numeric HOST:PORT for the preload library (which must
 * not look names up inside the program). */
static int numeric_proxy(const char *arg, char *out, size_t cap)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	char host[300], port[8], ip[INET6_ADDRSTRLEN];
	uint16_t p = 0;
	int rc;

	parse_proxy_host(arg, host, sizeof(host), &p);
	snprintf(port, sizeof(port), "%u", p ? p : SG_SOCKS_PORT);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "socksgate: %s: %s\n", host, gai_strerror(rc));
		return -1;
	}
	if (res->ai_family == AF_INET6) {
		inet_ntop(AF_INET6,
			  &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, ip,
			  sizeof(ip));
		snprintf(out, cap, "[%s]:%s", ip, port);
	} else {
		inet_ntop(AF_INET,
			  &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip,
			  sizeof(ip));
		snprintf(out, cap, "%s:%s", ip, port);
	}
	freeaddrinfo(res);
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"proxy", required_argument, NULL, 'x'},
		{"proto", required_argument, NULL, 'p'},
		{"exclude", required_argument, NULL, 'e'},
		{"user", required_argument, NULL, 'u'},
		{"password-file", required_argument, NULL, 'P'},
		{"timeout", required_argument, NULL, 't'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	char proxy[320] = "", preload[PATH_MAX], exclude[1024] = "",
	     ld[PATH_MAX * 2], ms[16];
	const char *proto = "tcp,udp", *user = NULL, *pwfile = NULL;
	int ch, timeout = 5;
	bool verbose = false;

	while ((ch = getopt_long(argc, argv, "+hv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'x':
			if (numeric_proxy(optarg, proxy, sizeof(proxy)) < 0)
				return EXIT_ERROR;
			break;
		case 'p':
			if (strcmp(optarg, "tcp") && strcmp(optarg, "udp") &&
			    strcmp(optarg, "tcp,udp") &&
			    strcmp(optarg, "udp,tcp")) {
				fprintf(stderr,
					"socksgate: --proto tcp, udp or "
					"tcp,udp\n");
				return EXIT_USAGE;
			}
			proto = optarg;
			break;
		case 'e': {
			size_t l = strlen(exclude);
			snprintf(exclude + l, sizeof(exclude) - l, "%s%s",
				 l ? "," : "", optarg);
			break;
		}
		case 'u':
			user = optarg;
			break;
		case 'P':
			pwfile = optarg;
			break;
		case 't':
			timeout = atoi(optarg);
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (proxy[0] == '\0' || optind >= argc || (user && !pwfile) ||
	    timeout <= 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (find_preload(preload, sizeof(preload)) < 0) {
		fprintf(stderr, "socksgate: cannot find libsocksgate-run.so "
				"(set SOCKSGATE_PRELOAD)\n");
		return EXIT_ERROR;
	}
	const char *old = getenv("LD_PRELOAD");
	snprintf(ld, sizeof(ld), "%s%s%s", preload, old && old[0] ? ":" : "",
		 old ? old : "");
	snprintf(ms, sizeof(ms), "%d", timeout * 1000);
	setenv("LD_PRELOAD", ld, 1);
	setenv("SOCKSGATE_PROXY", proxy, 1);
	setenv("SOCKSGATE_PROTO", proto, 1);
	setenv("SOCKSGATE_TIMEOUT_MS", ms, 1);
	if (exclude[0])
		setenv("SOCKSGATE_EXCLUDE", exclude, 1);
	if (user) {
		setenv("SOCKSGATE_USER", user, 1);
		setenv("SOCKSGATE_PASSWORD_FILE", pwfile, 1);
	}
	if (verbose)
		setenv("SOCKSGATE_VERBOSE", "1", 1);
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "socksgate: %s: %s\n", argv[optind], strerror(errno));
	return 127;
}

static int cmd_control(int argc, char **argv)
{
	const char *path = SG_CONTROL_PATH, *id = NULL;
	bool json = false;
	char req[128], buf[65536];
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd, rc = 0;
	ssize_t n;
	bool first = true;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 && strcmp(argv[0], "close"))
			json = true;
		else if (strcmp(argv[i], "--control") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[0], "close") == 0 && id == NULL &&
			 argv[i][0] != '-')
			id = argv[i];
		else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (strcmp(argv[0], "close") == 0 && id == NULL) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (id)
		snprintf(req, sizeof(req), "close %s\n", id);
	else
		snprintf(req, sizeof(req), "%s%s\n", argv[0],
			 json ? " json" : "");
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "socksgate: control path too long\n");
		return EXIT_USAGE;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "socksgate: %s: %s\n", path, strerror(errno));
		return EXIT_ERROR;
	}
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0) {
		fprintf(stderr, "socksgate: %s: %s\n", path, strerror(errno));
		close(fd);
		return EXIT_ERROR;
	}
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		if (first && n >= 7 && strncmp(buf, "error: ", 7) == 0)
			rc = EXIT_ERROR;
		first = false;
		fwrite(buf, 1, (size_t)n, rc ? stderr : stdout);
	}
	close(fd);
	if (first) {
		fprintf(stderr, "socksgate: no answer from %s\n", path);
		return EXIT_ERROR;
	}
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (strcmp(argv[1], "transparent") == 0)
		return cmd_transparent(argc - 1, argv + 1);
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "stats") == 0 ||
	    strcmp(argv[1], "close") == 0)
		return cmd_control(argc - 1, argv + 1);
	fprintf(stderr, "socksgate: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
