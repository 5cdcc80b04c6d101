/*
 * sgrun: the preload library of `socksgate run` (libsocksgate-run.so).
 * It gives an unmodified, dynamically linked program's TCP and UDP flows
 * a TRANSPARENT association each, so that the gateway's kernel relays
 * them (no byte passes through a user-space proxy):
 *
 *   connect(s, DST)            TCP or UDP: bind s to the local address
 *                              that reaches the gateway (port 0: the
 *                              kernel picks one) unless it is bound, ask
 *                              for (PTCL, S -> DST), connect s to BND.
 *   sendto/sendmsg/sendmmsg    unconnected UDP: one association per DST,
 *                              made on first use; the datagram goes to
 *                              that DST's BND.
 *   recvfrom/recvmsg/recvmmsg  an answer from BND is reported as coming
 *                              from its DST; getpeername() says DST.
 *   close(s), dup2/dup3 over s the associations of s end (their N1s are
 *                              closed).
 *
 * The control connections (N1) are moved to high descriptor numbers,
 * close-on-exec, and hidden from the program: a close(), dup2() or
 * close_range() of the program's never touches them.  After fork() the
 * child shares them (an association lives while any process holds its
 * N1; a child's copies close when it exits or execs).
 *
 * Configuration comes from the environment `socksgate run` sets:
 *   SOCKSGATE_PROXY        numeric HOST:PORT (v6 as [addr]:port)
 *   SOCKSGATE_USER, SOCKSGATE_PASSWORD_FILE   RFC 1929, optional
 *   SOCKSGATE_PROTO        "tcp", "udp" or "tcp,udp"
 *   SOCKSGATE_EXCLUDE      CIDRs relayed directly, comma separated
 *                          (loopback, multicast, broadcast and the proxy
 *                          itself always are)
 *   SOCKSGATE_TIMEOUT_MS   bound of one association's setup (5000)
 *   SOCKSGATE_VERBOSE      1: one line on stderr per association/refusal
 *
 * A refused association fails the call with the errno that fits the
 * reply code; nothing is ever sent directly instead (no silent bypass).
 * Not covered (docs/socksgate.1): statically linked programs, raw
 * sockets, io_uring, vectored syscalls made without libc.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/close_range.h>

#include "sgclient.h"

#define SGR_EXPORT __attribute__((visibility("default")))
/* The flags of sendmmsg/recvmmsg: int in glibc, unsigned int in musl. */
#ifdef __GLIBC__
typedef int sgr_mmsg_flags;
#else
typedef unsigned int sgr_mmsg_flags;
#endif
#define SGR_MAX_EXCLUDE 32
#define SGR_MAX_ASSOC_PER_SOCK 64

struct sgr_cidr {
	int family;
	uint8_t addr[16];
	unsigned bits;
};

/* One association of a socket: DST (what the program asked for) and the
 * BND the gateway gave; n1 holds it. */
struct sgr_assoc {
	struct sockaddr_storage dst, bnd;
	int n1;
};

struct sgr_sock {
	bool used;
	uint8_t proto; /* IPPROTO_TCP/UDP: what relayed_proto() said */
	int family;    /* the socket's family */
	size_t n;
	struct sgr_assoc v[SGR_MAX_ASSOC_PER_SOCK];
};

static struct {
	pthread_once_t once;
	pthread_mutex_t lock;
	bool enabled, tcp, udp, verbose;
	struct sgc_opts opts;
	char proxy_host[64];
	char password[256];
	struct sockaddr_storage proxy;
	struct sgr_cidr exclude[SGR_MAX_EXCLUDE];
	size_t nexclude;
	int n1_base; /* N1s live at or above this number */
	struct sgr_sock **socks;
	size_t nsocks;
	/* libc's own functions */
	int (*connect)(int, const struct sockaddr *, socklen_t);
	ssize_t (*sendto)(int, const void *, size_t, int,
			  const struct sockaddr *, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *,
			    socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned int, sgr_mmsg_flags,
			struct timespec *);
	int (*close)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*close_range)(unsigned int, unsigned int, int);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
} G = {.once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER};

/* Set while this library is working: its own socket calls (the client
 * library's connect, close...) go straight to libc. */
static __thread bool inside;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (!G.verbose)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(2, line, (size_t)n) < 0)
		return;
}

static void *real(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static int parse_cidr(const char *s, struct sgr_cidr *c)
{
	char buf[64], *slash;
	long bits;

	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, c->addr) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, c->addr) == 1)
		c->family = AF_INET6;
	else
		return -1;
	bits = slash ? strtol(slash, NULL, 10)
		     : (c->family == AF_INET ? 32 : 128);
	if (bits < 0 || bits > (c->family == AF_INET ? 32 : 128))
		return -1;
	c->bits = (unsigned)bits;
	return 0;
}

static void add_exclude(const char *s)
{
	if (G.nexclude < SGR_MAX_EXCLUDE &&
	    parse_cidr(s, &G.exclude[G.nexclude]) == 0)
		G.nexclude++;
}

static int parse_proxy(const char *s)
{
	struct s5_addr a;
	char host[64];

	if (sgc_parse_hostport(s, &a) < 0 || a.atyp == S5_ATYP_DOMAIN)
		return -1;
	memset(&G.proxy, 0, sizeof(G.proxy));
	if (a.atyp == S5_ATYP_IPV4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&G.proxy;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a.u.v4, 4);
		sin->sin_port = htons(a.port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&G.proxy;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a.u.v6, 16);
		sin6->sin6_port = htons(a.port);
	}
	inet_ntop(a.atyp == S5_ATYP_IPV4 ? AF_INET : AF_INET6, a.u.v6, host,
		  sizeof(host));
	snprintf(G.proxy_host, sizeof(G.proxy_host), "%s", host);
	G.opts.proxy_host = G.proxy_host;
	G.opts.proxy_port = a.port;
	return 0;
}

static void init(void)
{
	const char *p = getenv("SOCKSGATE_PROXY"), *v;
	struct rlimit rl;

	G.connect = real("connect");
	G.sendto = real("sendto");
	G.sendmsg = real("sendmsg");
	G.recvfrom = real("recvfrom");
	G.recvmsg = real("recvmsg");
	G.recvmmsg = real("recvmmsg");
	G.close = real("close");
	G.dup2 = real("dup2");
	G.dup3 = real("dup3");
	G.close_range = real("close_range");
	G.getpeername = real("getpeername");
	G.verbose = (v = getenv("SOCKSGATE_VERBOSE")) && strcmp(v, "0");
	if (p == NULL || parse_proxy(p) < 0) {
		if (p)
			fprintf(stderr,
				"socksgate run: bad SOCKSGATE_PROXY "
				"'%s': nothing is relayed\n",
				p);
		return;
	}
	v = getenv("SOCKSGATE_PROTO");
	G.tcp = v == NULL || strstr(v, "tcp") != NULL;
	G.udp = v == NULL || strstr(v, "udp") != NULL;
	add_exclude("127.0.0.0/8");
	add_exclude("::1/128");
	add_exclude("224.0.0.0/4");
	add_exclude("255.255.255.255/32");
	add_exclude("ff00::/8");
	if ((v = getenv("SOCKSGATE_EXCLUDE")) != NULL) {
		char buf[1024], *save = NULL;
		snprintf(buf, sizeof(buf), "%s", v);
		for (char *t = strtok_r(buf, ",", &save); t;
		     t = strtok_r(NULL, ",", &save))
			add_exclude(t);
	}
	G.opts.user = getenv("SOCKSGATE_USER");
	if ((v = getenv("SOCKSGATE_PASSWORD_FILE")) != NULL) {
		FILE *f = fopen(v, "re");
		if (f && fgets(G.password, sizeof(G.password), f))
			G.password[strcspn(G.password, "\r\n")] = '\0';
		if (f)
			fclose(f);
		G.opts.password = G.password;
	}
	G.opts.timeout_ms = (v = getenv("SOCKSGATE_TIMEOUT_MS")) ? atoi(v) : 0;
	if (G.opts.timeout_ms <= 0)
		G.opts.timeout_ms = 5000;
	G.n1_base = 512;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 1024)
		G.n1_base = (int)(rl.rlim_cur / 2);
	G.enabled = true;
}

/* fork() while another thread holds the lock would leave the child's
 * copy locked forever. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&G.lock);
}

static void fork_done(void)
{
	pthread_mutex_unlock(&G.lock);
}

static void init_once(void)
{
	init();
	pthread_atfork(fork_prepare, fork_done, fork_done);
}

static bool ready(void)
{
	pthread_once(&G.once, init_once);
	return G.enabled;
}

/* --- addresses ------------------------------------------------------- */

/* IPv4-mapped IPv6 to IPv4, in place (the association is IPv4 then). */
static void unmap(struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in s4;

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	s4.sin_port = s6->sin6_port;
	memcpy(&s4.sin_addr, s6->sin6_addr.s6_addr + 12, 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &s4, sizeof(s4));
}

/* The same address expressed for a socket of family `family` (an IPv4
 * BND for an AF_INET6 socket becomes ::ffff:a.b.c.d). */
static socklen_t for_socket(const struct sockaddr_storage *in, int family,
			    struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (in->ss_family == AF_INET && family == AF_INET6) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)in;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = s4->sin_port;
		s6->sin6_addr.s6_addr[10] = s6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(s6->sin6_addr.s6_addr + 12, &s4->sin_addr, 4);
		return sizeof(*s6);
	}
	memcpy(out, in,
	       in->ss_family == AF_INET ? sizeof(struct sockaddr_in)
					: sizeof(struct sockaddr_in6));
	return in->ss_family == AF_INET ? sizeof(struct sockaddr_in)
					: sizeof(struct sockaddr_in6);
}

static const uint8_t *ip_bytes(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET
		       ? (const uint8_t *)&((const struct sockaddr_in *)ss)
				 ->sin_addr
		       : ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET
			     ? ((const struct sockaddr_in *)ss)->sin_port
			     : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

static bool same_endpoint(const struct sockaddr_storage *a,
			  const struct sockaddr_storage *b)
{
	return a->ss_family == b->ss_family && port_of(a) == port_of(b) &&
	       memcmp(ip_bytes(a), ip_bytes(b),
		      a->ss_family == AF_INET ? 4 : 16) == 0;
}

static bool excluded(const struct sockaddr_storage *ss)
{
	const uint8_t *ip = ip_bytes(ss);

	if (ss->ss_family == G.proxy.ss_family &&
	    memcmp(ip, ip_bytes(&G.proxy), ss->ss_family == AF_INET ? 4 : 16) ==
		    0)
		return true;
	for (size_t i = 0; i < G.nexclude; i++) {
		const struct sgr_cidr *c = &G.exclude[i];
		unsigned full = c->bits / 8, rest = c->bits % 8;
		if (c->family != ss->ss_family)
			continue;
		if (memcmp(ip, c->addr, full) != 0)
			continue;
		if (rest && ((ip[full] ^ c->addr[full]) & (0xff00 >> rest)))
			continue;
		return true;
	}
	return false;
}

static void str_of(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];

	inet_ntop(ss->ss_family, ip_bytes(ss), ip, sizeof(ip));
	snprintf(out, cap, ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
		 port_of(ss));
}

/* --- the socket table (under G.lock) ---------------------------------- */

static struct sgr_sock *sock_get(int fd, bool create)
{
	if (fd < 0)
		return NULL;
	if ((size_t)fd >= G.nsocks) {
		if (!create)
			return NULL;
		size_t n = (size_t)fd + 64;
		struct sgr_sock **v = realloc(G.socks, n * sizeof(*v));
		if (v == NULL)
			return NULL;
		memset(v + G.nsocks, 0, (n - G.nsocks) * sizeof(*v));
		G.socks = v;
		G.nsocks = n;
	}
	if (G.socks[fd] == NULL && create)
		G.socks[fd] = calloc(1, sizeof(struct sgr_sock));
	return G.socks[fd];
}

/* Is fd one of our N1s? */
static bool is_n1(int fd)
{
	for (size_t i = 0; i < G.nsocks; i++) {
		struct sgr_sock *s = G.socks[i];
		for (size_t j = 0; s && j < s->n; j++)
			if (s->v[j].n1 == fd)
				return true;
	}
	return false;
}

/* Ends the associations of fd (closes their N1s). */
static void sock_forget(int fd)
{
	struct sgr_sock *s = sock_get(fd, false);

	if (s == NULL)
		return;
	for (size_t j = 0; j < s->n; j++)
		G.close(s->v[j].n1);
	free(s);
	G.socks[fd] = NULL;
}

/* Moves an N1 out of the program's way: a high number, close-on-exec. */
static int hide_n1(int fd)
{
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, G.n1_base);

	if (hi < 0)
		return fd; /* keep it where it is: still close-on-exec */
	G.close(fd);
	return hi;
}

/* --- associations ------------------------------------------------------ */

static int rep_errno(enum sgc_result r, uint8_t rep)
{
	if (r == SGC_ERR_TIMEOUT)
		return ETIMEDOUT;
	if (r != SGC_ERR_REFUSED)
		return ECONNREFUSED;
	switch (rep) {
	case S5_REP_NOT_ALLOWED:
		return EACCES;
	case S5_REP_NET_UNREACH:
		return ENETUNREACH;
	case S5_REP_HOST_UNREACH:
		return EHOSTUNREACH;
	case S5_REP_CMD_UNSUPPORTED:
	case S5_REP_ATYP_UNSUPPORTED:
	case S5_REP_PTCL_UNSUPPORTED:
		return EAFNOSUPPORT;
	default:
		return ECONNREFUSED;
	}
}

/* The local address the gateway sees N1 come from (S.ADDR must be it),
 * in the family of dst; -1 if the proxy is not reached in that family. */
static int local_toward_proxy(int family, struct sockaddr_storage *out)
{
	socklen_t l = sizeof(*out);
	int fd, rc = -1;

	if (G.proxy.ss_family != family)
		return -1;
	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (G.connect(fd, (struct sockaddr *)&G.proxy,
		      G.proxy.ss_family == AF_INET
			      ? sizeof(struct sockaddr_in)
			      : sizeof(struct sockaddr_in6)) == 0 &&
	    getsockname(fd, (struct sockaddr *)out, &l) == 0)
		rc = 0;
	G.close(fd);
	return rc;
}

/* S for socket fd toward dst (both unmapped): fd's own address if bound
 * to one, else the address toward the proxy; fd is bound (port 0: the
 * kernel picks) if it was not.  Returns 0 or -1 with errno. */
static int source_of(int fd, int sock_family,
		     const struct sockaddr_storage *dst,
		     struct sockaddr_storage *src)
{
	struct sockaddr_storage cur, local, b;
	socklen_t l = sizeof(cur);

	if (local_toward_proxy(dst->ss_family, &local) < 0) {
		errno = EAFNOSUPPORT; /* mixed families cannot be NATed */
		return -1;
	}
	if (getsockname(fd, (struct sockaddr *)&cur, &l) < 0)
		return -1;
	unmap(&cur);
	if (port_of(&cur) == 0) {
		/* Unbound: bind to the address toward the gateway. */
		socklen_t bl = for_socket(&local, sock_family, &b);
		((struct sockaddr_in *)&b)->sin_port = 0;
		if (b.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&b)->sin6_port = 0;
		if (bind(fd, (struct sockaddr *)&b, bl) < 0)
			return -1;
		l = sizeof(cur);
		if (getsockname(fd, (struct sockaddr *)&cur, &l) < 0)
			return -1;
		unmap(&cur);
	}
	*src = local;
	if (src->ss_family == AF_INET)
		((struct sockaddr_in *)src)->sin_port = htons(port_of(&cur));
	else
		((struct sockaddr_in6 *)src)->sin6_port = htons(port_of(&cur));
	return 0;
}

static void s5_of(const struct sockaddr_storage *ss, struct s5_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->atyp = ss->ss_family == AF_INET ? S5_ATYP_IPV4 : S5_ATYP_IPV6;
	memcpy(a->u.v6, ip_bytes(ss), ss->ss_family == AF_INET ? 4 : 16);
	a->port = port_of(ss);
}

/* Asks for (proto, S -> dst) for socket fd; fills *as.  0 or -1/errno. */
static int associate(int fd, int sock_family, uint8_t proto,
		     const struct sockaddr_storage *dst, struct sgr_assoc *as)
{
	struct s5_request req;
	struct s5_reply rep;
	struct sockaddr_storage src;
	char err[256], d[64], s[64], b[64];
	enum sgc_result r;
	int n1;

	if (source_of(fd, sock_family, dst, &src) < 0) {
		int e = errno;
		str_of(dst, d, sizeof(d));
		say("socksgate: %s %s: no source address: %s",
		    proto == IPPROTO_TCP ? "tcp" : "udp", d, strerror(e));
		errno = e;
		return -1;
	}
	memset(&req, 0, sizeof(req));
	req.cmd = S5_CMD_TRANSPARENT;
	req.ptcl = proto;
	s5_of(&src, &req.src);
	s5_of(dst, &req.dst);
	memset(&rep, 0, sizeof(rep));
	r = sgc_request(&G.opts, &req, &rep, &n1, err, sizeof(err));
	str_of(dst, d, sizeof(d));
	str_of(&src, s, sizeof(s));
	if (r != SGC_OK) {
		say("socksgate: %s %s -> %s refused: %s",
		    proto == IPPROTO_TCP ? "tcp" : "udp", s, d, err);
		errno = rep_errno(r, rep.rep);
		return -1;
	}
	memset(as, 0, sizeof(*as));
	as->dst = *dst;
	as->bnd.ss_family = rep.bnd.atyp == S5_ATYP_IPV6 ? AF_INET6 : AF_INET;
	if (as->bnd.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&as->bnd;
		memcpy(&sin->sin_addr, rep.bnd.u.v4, 4);
		sin->sin_port = htons(rep.bnd.port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&as->bnd;
		memcpy(&sin6->sin6_addr, rep.bnd.u.v6, 16);
		sin6->sin6_port = htons(rep.bnd.port);
	}
	as->n1 = hide_n1(n1);
	str_of(&as->bnd, b, sizeof(b));
	say("socksgate: %s %s -> %s relayed by the kernel via %s",
	    proto == IPPROTO_TCP ? "tcp" : "udp", s, d, b);
	return 0;
}

/* What kind of socket fd is, for us: IPPROTO_TCP, IPPROTO_UDP (when
 * enabled and AF_INET/AF_INET6), or 0 (not ours to relay). */
static uint8_t relayed_proto(int fd, int *family)
{
	int type, proto;
	struct sockaddr_storage ss;
	socklen_t l = sizeof(type), sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return 0;
	*family = ss.ss_family;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0)
		return 0;
	l = sizeof(proto);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) < 0)
		return 0;
	if (type == SOCK_STREAM && proto == IPPROTO_TCP && G.tcp)
		return IPPROTO_TCP;
	if (type == SOCK_DGRAM && proto == IPPROTO_UDP && G.udp)
		return IPPROTO_UDP;
	return 0;
}

/* Unconnected UDP's per-datagram path: a socket that has associations
 * already is known (its kind was recorded); only an unknown one costs the
 * three system calls of relayed_proto(). */
static uint8_t udp_kind(int fd, int *family)
{
	struct sgr_sock *s;
	uint8_t proto = 0;

	pthread_mutex_lock(&G.lock);
	s = sock_get(fd, false);
	if (s && s->n > 0) {
		proto = s->proto;
		*family = s->family;
	}
	pthread_mutex_unlock(&G.lock);
	return proto ? proto : relayed_proto(fd, family);
}

/* Copies a program's address into a sockaddr_storage, unmapped; false if
 * it is not an IPv4/IPv6 address to relay. */
static bool take_dst(const struct sockaddr *a, socklen_t len,
		     struct sockaddr_storage *out)
{
	if (a == NULL || len > sizeof(*out) ||
	    (a->sa_family != AF_INET && a->sa_family != AF_INET6) ||
	    (a->sa_family == AF_INET && len < sizeof(struct sockaddr_in)) ||
	    (a->sa_family == AF_INET6 && len < sizeof(struct sockaddr_in6)))
		return false;
	memset(out, 0, sizeof(*out));
	memcpy(out, a, len);
	unmap(out);
	return !excluded(out) && port_of(out) != 0;
}

/* The association of socket fd for dst, made if needed (unconnected UDP).
 * Returns BND (in *bnd, for the socket's family) or -1 with errno. */
static int bnd_for(int fd, int family, uint8_t proto,
		   const struct sockaddr_storage *dst,
		   struct sockaddr_storage *bnd, socklen_t *bl, bool connecting)
{
	struct sgr_sock *s;
	struct sgr_assoc as;
	int rc = -1;

	pthread_mutex_lock(&G.lock);
	s = sock_get(fd, true);
	if (s == NULL) {
		errno = ENOMEM;
		goto out;
	}
	if (connecting) {
		/* A new connect() replaces what the socket had. */
		for (size_t j = 0; j < s->n; j++)
			G.close(s->v[j].n1);
		s->n = 0;
	}
	for (size_t j = 0; j < s->n; j++) {
		if (same_endpoint(&s->v[j].dst, dst)) {
			*bl = for_socket(&s->v[j].bnd, family, bnd);
			rc = 0;
			goto out;
		}
	}
	if (s->n == SGR_MAX_ASSOC_PER_SOCK) {
		errno = ENOBUFS;
		goto out;
	}
	if (associate(fd, family, proto, dst, &as) < 0)
		goto out;
	s->v[s->n++] = as;
	s->proto = proto;
	s->family = family;
	*bl = for_socket(&as.bnd, family, bnd);
	rc = 0;
out:
	pthread_mutex_unlock(&G.lock);
	return rc;
}

/* Rewrites a source address BND (answer) into its DST. */
static void src_to_dst(int fd, struct sockaddr *from, socklen_t *fromlen)
{
	struct sockaddr_storage ss;
	struct sgr_sock *s;
	int family;

	if (from == NULL || fromlen == NULL || *fromlen > sizeof(ss) ||
	    *fromlen < sizeof(struct sockaddr_in))
		return;
	family = from->sa_family;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, from, *fromlen);
	unmap(&ss);
	pthread_mutex_lock(&G.lock);
	s = sock_get(fd, false);
	for (size_t j = 0; s && j < s->n; j++) {
		if (same_endpoint(&s->v[j].bnd, &ss)) {
			struct sockaddr_storage out;
			socklen_t l = for_socket(&s->v[j].dst, family, &out);
			if (l <= *fromlen) {
				memcpy(from, &out, l);
				*fromlen = l;
			}
			break;
		}
	}
	pthread_mutex_unlock(&G.lock);
}

static bool has_assocs(int fd)
{
	bool yes;

	pthread_mutex_lock(&G.lock);
	struct sgr_sock *s = sock_get(fd, false);
	yes = s && s->n > 0;
	pthread_mutex_unlock(&G.lock);
	return yes;
}

/* --- the interposed calls ------------------------------------------- */

SGR_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_storage dst, bnd;
	socklen_t bl;
	uint8_t proto;
	int family, rc;

	if (!ready())
		return G.connect ? G.connect(fd, addr, len)
				 : (errno = ENOSYS, -1);
	if (inside || !take_dst(addr, len, &dst) ||
	    (proto = relayed_proto(fd, &family)) == 0)
		return G.connect(fd, addr, len);
	inside = true;
	rc = bnd_for(fd, family, proto, &dst, &bnd, &bl, true);
	inside = false;
	if (rc < 0)
		return -1; /* nothing is sent directly */
	return G.connect(fd, (struct sockaddr *)&bnd, bl);
}

SGR_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
			  const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_storage dst, bnd;
	socklen_t bl;
	uint8_t proto;
	int family, rc;

	if (!ready() || inside || addr == NULL || !take_dst(addr, len, &dst) ||
	    (proto = udp_kind(fd, &family)) != IPPROTO_UDP)
		return G.sendto(fd, buf, n, flags, addr, len);
	inside = true;
	rc = bnd_for(fd, family, proto, &dst, &bnd, &bl, false);
	inside = false;
	if (rc < 0)
		return -1;
	return G.sendto(fd, buf, n, flags, (struct sockaddr *)&bnd, bl);
}

SGR_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct sockaddr_storage dst, bnd;
	struct msghdr m;
	socklen_t bl;
	uint8_t proto;
	int family, rc;

	if (!ready() || inside || msg->msg_name == NULL ||
	    !take_dst(msg->msg_name, msg->msg_namelen, &dst) ||
	    (proto = udp_kind(fd, &family)) != IPPROTO_UDP)
		return G.sendmsg(fd, msg, flags);
	inside = true;
	rc = bnd_for(fd, family, proto, &dst, &bnd, &bl, false);
	inside = false;
	if (rc < 0)
		return -1;
	m = *msg;
	m.msg_name = &bnd;
	m.msg_namelen = bl;
	return G.sendmsg(fd, &m, flags);
}

SGR_EXPORT int sendmmsg(int fd, struct mmsghdr *v, unsigned int vlen,
			sgr_mmsg_flags flags)
{
	unsigned int i;

	/* One message at a time through sendmsg(): each may need its own
	 * association.  Stops at the first failure, as sendmmsg(2) does. */
	for (i = 0; i < vlen; i++) {
		ssize_t r = sendmsg(fd, &v[i].msg_hdr, (int)flags);
		if (r < 0)
			return i > 0 ? (int)i : -1;
		v[i].msg_len = (unsigned int)r;
	}
	return (int)i;
}

SGR_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
			    struct sockaddr *from, socklen_t *fromlen)
{
	ssize_t r;

	if (!ready())
		return G.recvfrom(fd, buf, n, flags, from, fromlen);
	r = G.recvfrom(fd, buf, n, flags, from, fromlen);
	if (r >= 0 && !inside && has_assocs(fd))
		src_to_dst(fd, from, fromlen);
	return r;
}

SGR_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t r;

	if (!ready())
		return G.recvmsg(fd, msg, flags);
	r = G.recvmsg(fd, msg, flags);
	if (r >= 0 && !inside && has_assocs(fd))
		src_to_dst(fd, msg->msg_name, &msg->msg_namelen);
	return r;
}

SGR_EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned int vlen,
			sgr_mmsg_flags flags, struct timespec *timeout)
{
	int r;

	if (!ready())
		return G.recvmmsg(fd, v, vlen, flags, timeout);
	r = G.recvmmsg(fd, v, vlen, flags, timeout);
	if (r > 0 && !inside && has_assocs(fd))
		for (int i = 0; i < r; i++)
			src_to_dst(fd, v[i].msg_hdr.msg_name,
				   &v[i].msg_hdr.msg_namelen);
	return r;
}

SGR_EXPORT int getpeername(int fd, struct sockaddr *a, socklen_t *len)
{
	int r;

	if (!ready())
		return G.getpeername(fd, a, len);
	r = G.getpeername(fd, a, len);
	if (r == 0 && !inside && has_assocs(fd))
		src_to_dst(fd, a, len);
	return r;
}

SGR_EXPORT int close(int fd)
{
	if (!ready())
		return G.close ? G.close(fd) : (errno = ENOSYS, -1);
	if (inside)
		return G.close(fd);
	pthread_mutex_lock(&G.lock);
	if (is_n1(fd)) {
		/* Not the program's descriptor: it only thinks it has one
		 * there (e.g. closing every fd before exec). */
		pthread_mutex_unlock(&G.lock);
		return 0;
	}
	sock_forget(fd);
	pthread_mutex_unlock(&G.lock);
	return G.close(fd);
}

/* Makes room at newfd if one of our N1s is there. */
static void evict(int newfd)
{
	for (size_t i = 0; i < G.nsocks; i++) {
		struct sgr_sock *s = G.socks[i];
		for (size_t j = 0; s && j < s->n; j++) {
			if (s->v[j].n1 != newfd)
				continue;
			int hi = fcntl(newfd, F_DUPFD_CLOEXEC, newfd + 1);
			if (hi >= 0)
				s->v[j].n1 = hi; /* newfd is closed by dup2 */
		}
	}
}

SGR_EXPORT int dup2(int oldfd, int newfd)
{
	if (!ready() || inside || oldfd == newfd)
		return G.dup2(oldfd, newfd);
	pthread_mutex_lock(&G.lock);
	evict(newfd);
	sock_forget(newfd);
	pthread_mutex_unlock(&G.lock);
	return G.dup2(oldfd, newfd);
}

SGR_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	if (!ready() || inside || oldfd == newfd)
		return G.dup3(oldfd, newfd, flags);
	pthread_mutex_lock(&G.lock);
	evict(newfd);
	sock_forget(newfd);
	pthread_mutex_unlock(&G.lock);
	return G.dup3(oldfd, newfd, flags);
}

SGR_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	unsigned int from = first;

	if (!ready() || inside || G.close_range == NULL)
		return G.close_range ? G.close_range(first, last, flags)
				     : (errno = ENOSYS, -1);
	/* Close the program's descriptors of the range around ours. */
	pthread_mutex_lock(&G.lock);
	for (unsigned int fd = first;
	     fd <= last && fd < (unsigned)G.n1_base * 4; fd++) {
		if (!is_n1((int)fd)) {
			if (!(flags & CLOSE_RANGE_CLOEXEC))
				sock_forget((int)fd);
			continue;
		}
		if (fd > from && G.close_range(from, fd - 1, flags) < 0) {
			pthread_mutex_unlock(&G.lock);
			return -1;
		}
		from = fd + 1;
		if (fd == last)
			break;
	}
	pthread_mutex_unlock(&G.lock);
	if (from > last)
		return 0;
	return G.close_range(from, last, flags);
}
