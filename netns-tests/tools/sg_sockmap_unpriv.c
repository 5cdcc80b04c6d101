/*
 * sg_sockmap_unpriv: checks that the kernel relay (daemon/sockmap.c)
 * needs no privilege once sockmap_init() ran: loads it as root, drops to
 * uid/gid 65534 with no capability at all (and no_new_privs), then, on
 * loopback, relays a pair of TCP connections both ways, byte-exact, sees
 * each FIN, counts, and removes the pair.  Prints "ok ..." and exits 0;
 * 1 on any failure (with why); 77 if the program cannot be loaded.
 * Run it under `strace -f -c` to list what the relay calls after start.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sockmap.h"

/* Below SOCKMAP_BACKLOG: the program never holds data back here (this
 * tool does not move held-back data; the relay's tests do). */
#define SZ (256 * 1024 + 1)

static int eofs[2];

static void on_event(void *arg, int side, unsigned events)
{
	(void)arg;
	if (events & SOCKMAP_EV_EOF)
		eofs[side] = 1;
	if (events & SOCKMAP_EV_ERR) {
		fprintf(stderr, "error event on side %d\n", side);
		exit(1);
	}
}

static void die(const char *what)
{
	fprintf(stderr, "sg_sockmap_unpriv: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* A connected pair through a listener: *out is ours, *in the accepted. */
static void tcp_pair(int l, const struct sockaddr_in *a, int *out, int *in)
{
	*out = socket(AF_INET, SOCK_STREAM, 0);
	if (*out < 0 || connect(*out, (const void *)a, sizeof(*a)) < 0)
		die("connect");
	*in = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	if (*in < 0)
		die("accept");
}

/* Writes n bytes into w while reading them from r; checks them. */
static void through(int w, int r, const unsigned char *buf, size_t n)
{
	unsigned char *got = malloc(n ? n : 1);
	size_t sent = 0, rcvd = 0;

	while (rcvd < n) {
		struct pollfd p[2] = {{w, sent < n ? POLLOUT : 0, 0},
				      {r, POLLIN, 0}};
		if (poll(p, 2, 10000) <= 0)
			die("stalled");
		if (p[0].revents & POLLOUT) {
			ssize_t k = send(w, buf + sent, n - sent, MSG_DONTWAIT);
			if (k > 0)
				sent += (size_t)k;
		}
		if (p[1].revents & POLLIN) {
			ssize_t k = recv(r, got + rcvd, n - rcvd, MSG_DONTWAIT);
			if (k <= 0)
				die("recv");
			rcvd += (size_t)k;
		}
	}
	if (memcmp(buf, got, n) != 0) {
		fprintf(stderr, "sg_sockmap_unpriv: bytes differ\n");
		exit(1);
	}
	free(got);
}

static void drop_all(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	gid_t g = 65534;

	if (setgroups(1, &g) < 0 || setresgid(g, g, g) < 0 ||
	    setresuid(65534, 65534, 65534) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("drop");
	if (syscall(SYS_capget, &h, d) < 0)
		die("capget");
	if (d[0].effective || d[0].permitted || d[1].effective ||
	    d[1].permitted) {
		fprintf(stderr, "sg_sockmap_unpriv: capabilities left\n");
		exit(1);
	}
}

int main(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	struct sockmap_pair pair = {.cb = on_event};
	unsigned char *buf = malloc(SZ);
	struct sockmap_state st[2];
	char err[256];
	int l, c1, c2, t1, t2;

	struct sockmap *sm = sockmap_init(err, sizeof(err));
	if (sm == NULL) {
		fprintf(stderr, "sg_sockmap_unpriv: %s\n", err);
		return 77;
	}
	drop_all();
	for (size_t i = 0; i < SZ; i++)
		buf[i] = (unsigned char)(i * 7 + i / 251);
	l = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || bind(l, (void *)&a, sizeof(a)) < 0 || listen(l, 4) < 0 ||
	    getsockname(l, (void *)&a, &alen) < 0)
		die("listen");
	tcp_pair(l, &a, &c1, &c2); /* c1: "client", c2: daemon's side */
	tcp_pair(l, &a, &t1, &t2); /* t1: "target", t2: daemon's side */
	/* Queued before the pair goes in: must come out first, in order. */
	if (send(c1, buf, 1000, 0) != 1000)
		die("send");
	if (sockmap_add(sm, &pair, c2, t2) != 0)
		die("sockmap_add as uid 65534 without capabilities");
	through(c1, t1, buf, 0);
	{
		unsigned char got[1000];
		size_t n = 0;
		while (n < sizeof(got)) {
			ssize_t k = recv(t1, got + n, sizeof(got) - n, 0);
			if (k <= 0)
				die("queued bytes");
			n += (size_t)k;
		}
		if (memcmp(got, buf, sizeof(got)) != 0)
			die("queued bytes differ");
	}
	through(c1, t1, buf, SZ);
	through(t1, c1, buf, SZ);
	if (sockmap_state(sm, &pair, 0, &st[0]) < 0 ||
	    sockmap_state(sm, &pair, 1, &st[1]) < 0)
		die("sockmap_state");
	if (st[0].taken != SZ + 1000 || st[1].taken != SZ || st[0].passed ||
	    st[1].passed) {
		fprintf(stderr, "sg_sockmap_unpriv: taken %llu %llu\n",
			(unsigned long long)st[0].taken,
			(unsigned long long)st[1].taken);
		return 1;
	}
	if (sockmap_set_done(sm, &pair, 0, 0, 0) < 0)
		die("sockmap_set_done");
	shutdown(c1, SHUT_WR);
	shutdown(t1, SHUT_WR);
	for (int i = 0; i < 100 && !(eofs[0] && eofs[1]); i++) {
		struct pollfd p = {sockmap_fd(sm), POLLIN, 0};
		poll(&p, 1, 100);
		sockmap_process(sm);
	}
	if (!eofs[0] || !eofs[1]) {
		fprintf(stderr, "sg_sockmap_unpriv: FIN not seen\n");
		return 1;
	}
	sockmap_remove(sm, &pair);
	close(c2);
	close(t2);
	sockmap_free(sm);
	free(buf);
	printf("ok: uid %u, no capabilities: pair added, 1000 queued + %d "
	       "bytes each way byte-exact, both FINs seen, removed\n",
	       (unsigned)getuid(), SZ);
	return 0;
}
