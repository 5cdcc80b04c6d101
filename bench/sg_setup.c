/*
 * sg_setup: TRANSPARENT association setup benchmark.
 *
 *   sg_setup PROXY PORT SRC DST DPORT COUNT CONCURRENCY [FIRST_SPORT] [PTCL]
 *
 * Keeps CONCURRENCY control connections busy until COUNT associations were
 * set up: connect, NO AUTH, then the TRANSPARENT request for
 * (PTCL, SRC:FIRST_SPORT+i -> DST:DPORT); the latency is from sending the
 * request to receiving the whole reply.  Each N1 is closed right after the
 * reply (which ends the association).  Prints JSON: ok, failures,
 * setups/s, latency median/p90/p99/max in ms.  Bounded: COUNT <= 200000,
 * 60 s overall.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum st { IDLE, CONNECTING, METHOD, REQUEST };

struct slot {
	int fd;
	enum st st;
	int idx;
	double t_req;
	unsigned char buf[64];
	size_t got, want;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static struct sockaddr_storage proxy;
static socklen_t proxy_len;
static unsigned char req[64];
static size_t req_len, sport_off;

static int start(struct slot *s, int idx)
{
	int one = 1;

	s->fd = socket(proxy.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (s->fd < 0)
		return -1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->idx = idx;
	s->got = 0;
	if (connect(s->fd, (struct sockaddr *)&proxy, proxy_len) < 0 &&
	    errno != EINPROGRESS) {
		close(s->fd);
		return -1;
	}
	s->st = CONNECTING;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 8) {
		fprintf(stderr,
			"usage: sg_setup PROXY PORT SRC DST DPORT COUNT "
			"CONCURRENCY [FIRST_SPORT] [PTCL]\n");
		return 2;
	}
	int count = atoi(argv[6]), conc = atoi(argv[7]);
	int first = argc > 8 ? atoi(argv[8]) : 30000;
	int ptcl = argc > 9 ? atoi(argv[9]) : 6;
	struct in6_addr s6, d6;
	struct in_addr s4, d4;
	int v6 = strchr(argv[3], ':') != NULL;

	if (count < 1 || count > 200000 || conc < 1 || conc > 1000)
		return 2;
	memset(&proxy, 0, sizeof(proxy));
	if (strchr(argv[1], ':')) {
		struct sockaddr_in6 *p = (struct sockaddr_in6 *)&proxy;
		p->sin6_family = AF_INET6;
		inet_pton(AF_INET6, argv[1], &p->sin6_addr);
		p->sin6_port = htons((uint16_t)atoi(argv[2]));
		proxy_len = sizeof(*p);
	} else {
		struct sockaddr_in *p = (struct sockaddr_in *)&proxy;
		p->sin_family = AF_INET;
		inet_pton(AF_INET, argv[1], &p->sin_addr);
		p->sin_port = htons((uint16_t)atoi(argv[2]));
		proxy_len = sizeof(*p);
	}
	uint16_t dp = htons((uint16_t)atoi(argv[5]));
	req[req_len++] = 5;
	req[req_len++] = 4;
	req[req_len++] = 0;
	req[req_len++] = v6 ? 4 : 1;
	if (v6) {
		inet_pton(AF_INET6, argv[4], &d6);
		memcpy(req + req_len, &d6, 16);
		req_len += 16;
	} else {
		inet_pton(AF_INET, argv[4], &d4);
		memcpy(req + req_len, &d4, 4);
		req_len += 4;
	}
	memcpy(req + req_len, &dp, 2);
	req_len += 2;
	req[req_len++] = (unsigned char)ptcl;
	req[req_len++] = v6 ? 4 : 1;
	if (v6) {
		inet_pton(AF_INET6, argv[3], &s6);
		memcpy(req + req_len, &s6, 16);
		req_len += 16;
	} else {
		inet_pton(AF_INET, argv[3], &s4);
		memcpy(req + req_len, &s4, 4);
		req_len += 4;
	}
	sport_off = req_len;
	req_len += 2;

	struct slot *slots = calloc((size_t)conc, sizeof(*slots));
	struct pollfd *pfd = calloc((size_t)conc, sizeof(*pfd));
	double *lat = calloc((size_t)count, sizeof(double));
	int next = 0, done = 0, ok = 0, failed = 0;
	double t0 = now(), deadline = t0 + 60;

	for (int i = 0; i < conc; i++)
		slots[i].st = IDLE;
	while (done < count && now() < deadline) {
		for (int i = 0; i < conc; i++) {
			struct slot *s = &slots[i];
			if (s->st == IDLE && next < count) {
				if (start(s, next++) < 0) {
					failed++;
					done++;
				}
			}
			pfd[i].fd = s->st == IDLE ? -1 : s->fd;
			pfd[i].events = s->st == CONNECTING ? POLLOUT : POLLIN;
		}
		if (poll(pfd, (nfds_t)conc, 1000) <= 0)
			continue;
		for (int i = 0; i < conc; i++) {
			struct slot *s = &slots[i];
			if (s->st == IDLE || !pfd[i].revents)
				continue;
			if (s->st == CONNECTING) {
				int e = 0;
				socklen_t el = sizeof(e);
				getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e,
					   &el);
				if (e || send(s->fd, "\x05\x01\x00", 3, 0) != 3)
					goto fail;
				s->st = METHOD;
				s->got = 0;
				s->want = 2;
				continue;
			}
			ssize_t n = recv(s->fd, s->buf + s->got,
					 s->want - s->got, 0);
			if (n <= 0)
				goto fail;
			s->got += (size_t)n;
			if (s->st == REQUEST && s->got >= 4)
				s->want = 4 + (s->buf[3] == 4 ? 16 : 4) + 2;
			if (s->got < s->want)
				continue;
			if (s->st == METHOD) {
				if (s->buf[1] != 0)
					goto fail;
				uint16_t sp = htons((uint16_t)(first + s->idx));
				memcpy(req + sport_off, &sp, 2);
				s->t_req = now();
				if (send(s->fd, req, req_len, 0) !=
				    (ssize_t)req_len)
					goto fail;
				s->st = REQUEST;
				s->got = 0;
				s->want = 4;
				continue;
			}
			if (s->buf[1] != 0)
				goto fail;
			lat[ok++] = (now() - s->t_req) * 1000;
			close(s->fd);
			s->st = IDLE;
			done++;
			continue;
		fail:
			close(s->fd);
			s->st = IDLE;
			failed++;
			done++;
		}
	}
	double el = now() - t0;
	qsort(lat, (size_t)ok, sizeof(double), cmp);
#define PCT(p) (ok ? lat[(int)((ok - 1) * (p))] : 0)
	printf("{\"count\": %d, \"concurrency\": %d, \"ok\": %d, \"failed\": "
	       "%d, "
	       "\"seconds\": %.3f, \"setups_per_s\": %.0f, "
	       "\"latency_ms\": {\"median\": %.3f, \"p90\": %.3f, "
	       "\"p99\": %.3f, \"max\": %.3f}}\n",
	       count, conc, ok, failed, el, ok / el, PCT(0.5), PCT(0.9),
	       PCT(0.99), ok ? lat[ok - 1] : 0);
	free(slots);
	free(pfd);
	free(lat);
	return failed ? 1 : 0;
}
