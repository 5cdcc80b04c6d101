/*
 * sg_blast: traffic generator and sink for socksgate's benchmarks.
 *
 *   sg_blast sink tcp|udp PORT SECONDS          count what arrives, print JSON
 *   sg_blast send tcp HOST PORT SECONDS [--src ADDR:PORT] [--socks PROXY:PORT]
 *   sg_blast send udp HOST PORT SECONDS [--src ADDR:PORT] [--size BYTES]
 *                     [--socks PROXY:PORT]   (through UDP ASSOCIATE)
 *
 * TCP: one stream, 128 KiB writes.  UDP: datagrams of --size (default 64)
 * as fast as the socket takes them.  With --socks, TCP goes through a
 * SOCKS5 CONNECT (NO AUTH) to HOST:PORT first.  Every run is bounded by
 * SECONDS (max 120).  The sink reports bytes, packets and the rate over
 * the time between its first and last packet.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_addr(const char *host, const char *port,
		      struct sockaddr_storage *ss, socklen_t *len, int type)
{
	struct addrinfo hints = {.ai_socktype = type}, *res;
	char h[256];
	size_t l = strlen(host);

	if (host[0] == '[' && l > 2) {
		snprintf(h, sizeof(h), "%.*s", (int)l - 2, host + 1);
		host = h;
	}
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int split(const char *hp, struct sockaddr_storage *ss, socklen_t *len,
		 int type)
{
	char buf[300];
	char *colon;

	snprintf(buf, sizeof(buf), "%s", hp);
	colon = strrchr(buf, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	return parse_addr(buf, colon + 1, ss, len, type);
}

static int sink(int udp, const char *port, double secs)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6,
				 .sin6_port = htons((uint16_t)atoi(port))};
	int zero = 0, one = 1, big = 8 << 20;
	int s = socket(AF_INET6, udp ? SOCK_DGRAM : SOCK_STREAM, 0), c;
	static char buf[1 << 17];
	unsigned long long bytes = 0, pkts = 0;
	double first = 0, last = 0, end;

	setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("bind");
		return 1;
	}
	c = s;
	if (!udp) {
		listen(s, 4);
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, (int)(secs * 1000)) <= 0)
			goto report;
		c = accept(s, NULL, NULL);
	}
	end = now() + secs;
	for (;;) {
		struct pollfd p = {.fd = c, .events = POLLIN};
		double left = end - now();
		if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			break;
		ssize_t n = recv(c, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		last = now();
		if (first == 0)
			first = last;
		bytes += (unsigned long long)n;
		pkts++;
	}
report:;
	double dur = last > first ? last - first : 0;
	printf("{\"bytes\": %llu, \"packets\": %llu, \"seconds\": %.3f, "
	       "\"bits_per_s\": %.0f, \"packets_per_s\": %.0f}\n",
	       bytes, pkts, dur, dur > 0 ? bytes * 8 / dur : 0,
	       dur > 0 ? pkts / dur : 0);
	return 0;
}

static int socks_connect(int s, const char *host, const char *port)
{
	unsigned char b[300];
	struct in_addr a4;
	struct in6_addr a6;
	size_t n = 0;
	char h[256];
	size_t l = strlen(host);

	if (host[0] == '[' && l > 2) {
		snprintf(h, sizeof(h), "%.*s", (int)l - 2, host + 1);
		host = h;
	}
	if (send(s, "\x05\x01\x00", 3, 0) != 3 ||
	    recv(s, b, 2, MSG_WAITALL) != 2 || b[1] != 0)
		return -1;
	b[n++] = 5;
	b[n++] = 1;
	b[n++] = 0;
	if (inet_pton(AF_INET, host, &a4) == 1) {
		b[n++] = 1;
		memcpy(b + n, &a4, 4);
		n += 4;
	} else if (inet_pton(AF_INET6, host, &a6) == 1) {
		b[n++] = 4;
		memcpy(b + n, &a6, 16);
		n += 16;
	} else {
		b[n++] = 3;
		b[n++] = (unsigned char)strlen(host);
		memcpy(b + n, host, strlen(host));
		n += strlen(host);
	}
	uint16_t p = htons((uint16_t)atoi(port));
	memcpy(b + n, &p, 2);
	n += 2;
	if (send(s, b, n, 0) != (ssize_t)n || recv(s, b, 4, MSG_WAITALL) != 4 ||
	    b[1] != 0)
		return -1;
	size_t rest = (b[3] == 4 ? 16 : 4) + 2;
	return recv(s, b, rest, MSG_WAITALL) == (ssize_t)rest ? 0 : -1;
}

/* UDP ASSOCIATE (NO AUTH), then datagrams with the RFC 1928 header to
 * BND for SECONDS.  IPv4 only. */
static int udp_associate_sender(const char *host, const char *port, double secs,
				const char *socks, int size)
{
	struct sockaddr_storage ps;
	socklen_t pl;
	struct sockaddr_in bnd = {.sin_family = AF_INET};
	unsigned char b[64];
	static char buf[65536];
	unsigned long long pkts = 0, errs = 0;
	struct in_addr d;
	int c, u;
	double t0, end;

	if (split(socks, &ps, &pl, SOCK_STREAM) < 0 ||
	    inet_pton(AF_INET, host, &d) != 1)
		return 1;
	c = socket(ps.ss_family, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&ps, pl) < 0 ||
	    send(c, "\x05\x01\x00", 3, 0) != 3 ||
	    recv(c, b, 2, MSG_WAITALL) != 2 ||
	    send(c, "\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00", 10, 0) != 10 ||
	    recv(c, b, 10, MSG_WAITALL) != 10 || b[1] != 0) {
		fprintf(stderr, "UDP ASSOCIATE failed\n");
		return 1;
	}
	memcpy(&bnd.sin_addr, b + 4, 4);
	memcpy(&bnd.sin_port, b + 8, 2);
	if (bnd.sin_addr.s_addr == 0) /* some servers answer 0.0.0.0 */
		bnd.sin_addr = ((struct sockaddr_in *)&ps)->sin_addr;
	u = socket(AF_INET, SOCK_DGRAM, 0);
	if (connect(u, (struct sockaddr *)&bnd, sizeof(bnd)) < 0)
		return 1;
	memset(buf, 'x', sizeof(buf));
	buf[0] = buf[1] = buf[2] = 0;
	buf[3] = 1;
	memcpy(buf + 4, &d, 4);
	uint16_t p = htons((uint16_t)atoi(port));
	memcpy(buf + 8, &p, 2);
	t0 = now();
	end = t0 + secs;
	while (now() < end) {
		if (send(u, buf, (size_t)(10 + size), 0) < 0)
			errs++;
		else
			pkts++;
	}
	printf("{\"sent_packets\": %llu, \"send_errors\": %llu, "
	       "\"seconds\": %.3f}\n",
	       pkts, errs, now() - t0);
	close(u);
	close(c);
	return 0;
}

static int sender(int udp, const char *host, const char *port, double secs,
		  const char *src, const char *socks, int size)
{
	struct sockaddr_storage dst, sa;
	socklen_t dl, sl;
	int one = 1, big = 8 << 20;
	static char buf[1 << 17];
	unsigned long long bytes = 0, pkts = 0, errs = 0;
	double t0, end;
	int s;

	if (udp && socks)
		return udp_associate_sender(host, port, secs, socks, size);
	if ((socks ? split(socks, &dst, &dl, SOCK_STREAM)
		   : parse_addr(host, port, &dst, &dl,
				udp ? SOCK_DGRAM : SOCK_STREAM)) < 0) {
		fprintf(stderr, "bad address\n");
		return 1;
	}
	s = socket(dst.ss_family, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	if (src) {
		if (split(src, &sa, &sl, udp ? SOCK_DGRAM : SOCK_STREAM) < 0 ||
		    bind(s, (struct sockaddr *)&sa, sl) < 0) {
			perror("bind source");
			return 1;
		}
	}
	if (connect(s, (struct sockaddr *)&dst, dl) < 0) {
		perror("connect");
		return 1;
	}
	if (socks && socks_connect(s, host, port) < 0) {
		fprintf(stderr, "SOCKS CONNECT failed\n");
		return 1;
	}
	memset(buf, 'x', sizeof(buf));
	t0 = now();
	end = t0 + secs;
	while (now() < end) {
		ssize_t n = send(s, buf, udp ? (size_t)size : sizeof(buf), 0);
		if (n < 0) {
			if (errno == ENOBUFS || errno == EAGAIN ||
			    errno == ECONNREFUSED) {
				errs++;
				continue;
			}
			perror("send");
			break;
		}
		bytes += (unsigned long long)n;
		pkts++;
	}
	double dur = now() - t0;
	printf("{\"sent_bytes\": %llu, \"sent_packets\": %llu, "
	       "\"send_errors\": %llu, \"seconds\": %.3f}\n",
	       bytes, pkts, errs, dur);
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	const char *src = NULL, *socks = NULL;
	int size = 64;

	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--src") == 0)
			src = argv[i + 1];
		else if (strcmp(argv[i], "--socks") == 0)
			socks = argv[i + 1];
		else if (strcmp(argv[i], "--size") == 0)
			size = atoi(argv[i + 1]);
	}
	if (size < 1 || size > 65000)
		size = 64;
	if (argc >= 5 && strcmp(argv[1], "sink") == 0) {
		double secs = atof(argv[4]);
		return sink(strcmp(argv[2], "udp") == 0, argv[3],
			    secs > 0 && secs <= 120 ? secs : 10);
	}
	if (argc >= 6 && strcmp(argv[1], "send") == 0) {
		double secs = atof(argv[5]);
		return sender(strcmp(argv[2], "udp") == 0, argv[3], argv[4],
			      secs > 0 && secs <= 120 ? secs : 5, src, socks,
			      size);
	}
	fprintf(stderr, "usage: sg_blast sink tcp|udp PORT SECONDS\n"
			"       sg_blast send tcp|udp HOST PORT SECONDS "
			"[--src A:P] [--socks P:P] [--size B]\n");
	return 2;
}
