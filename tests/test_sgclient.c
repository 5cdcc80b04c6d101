/*
 * Unit tests for client/sgclient against local listeners on 127.0.0.1: a
 * proxy that accepts but never answers costs timeout_ms (plus slack), not
 * forever; a proxy that answers hands back a blocking N1 with the bytes
 * after the reply unread, by address or by name; no descriptor is left
 * behind on failure.  (A write that must wait cannot be provoked through
 * the API: a request is far smaller than the smallest socket buffer.)
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sgclient.h"

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert_not_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* A listener on 127.0.0.1 with a kernel-chosen port. */
static int listener(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 8), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static struct s5_request connect_req(void)
{
	struct s5_request r = {.cmd = S5_CMD_CONNECT};

	r.dst.atyp = S5_ATYP_IPV4;
	memcpy(r.dst.u.v4, "\xc6\x12\x01\x02", 4);
	r.dst.port = 7000;
	return r;
}

static enum sgc_result request(const char *host, uint16_t port, int timeout_ms,
			       const struct s5_request *req,
			       struct s5_reply *rep, int *fd, long *took)
{
	struct sgc_opts o = {.proxy_host = host,
			     .proxy_port = port,
			     .timeout_ms = timeout_ms};
	char err[256];
	long t0 = now_ms();
	enum sgc_result r = sgc_request(&o, req, rep, fd, err, sizeof(err));

	*took = now_ms() - t0;
	cr_log_info("%s after %ld ms: %s", sgc_result_str(r), *took, err);
	return r;
}

Test(sgclient, silent_proxy_times_out)
{
	uint16_t port;
	int l = listener(&port), fd = -1, before = open_fds();
	struct s5_request req = connect_req();
	struct s5_reply rep;
	long took;

	/* The kernel completes the handshake (backlog); nobody answers. */
	cr_assert_eq(request("127.0.0.1", port, 300, &req, &rep, &fd, &took),
		     SGC_ERR_TIMEOUT);
	cr_assert_geq(took, 290);
	cr_assert_lt(took, 300 + 500, "took %ld ms", took);
	cr_assert_eq(fd, -1);
	cr_assert_eq(open_fds(), before, "a descriptor leaked");
	close(l);
}

struct fake {
	int l;
	uint8_t rep;
};

/* Answers NO AUTH, reads a CONNECT IPv4 request, replies, then sends
 * "hello" as relayed data would come. */
static void *fake_proxy(void *arg)
{
	struct fake *f = arg;
	uint8_t buf[64];
	uint8_t reply[] = {5, f->rep, 0, 1, 198, 18, 0, 1, 0x4e, 0x20};
	int c = accept(f->l, NULL, NULL);

	if (c < 0)
		return NULL;
	if (recv(c, buf, 3, MSG_WAITALL) == 3 && send(c, "\x05\x00", 2, 0) &&
	    recv(c, buf, 10, MSG_WAITALL) == 10) {
		send(c, reply, sizeof(reply), 0);
		if (f->rep == 0)
			send(c, "hello", 5, 0);
	}
	usleep(200 * 1000);
	close(c);
	return NULL;
}

static void answered(const char *host)
{
	struct fake f = {.rep = 0};
	uint16_t port;
	pthread_t th;
	struct s5_request req = connect_req();
	struct s5_reply rep;
	char got[6] = "";
	int fd = -1;
	long took;

	f.l = listener(&port);
	pthread_create(&th, NULL, fake_proxy, &f);
	cr_assert_eq(request(host, port, 2000, &req, &rep, &fd, &took), SGC_OK);
	cr_assert_eq(rep.rep, 0);
	cr_assert_eq(rep.bnd.port, 20000);
	cr_assert_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0,
		     "N1 is handed over non-blocking");
	cr_assert_neq(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	/* A plain blocking read gets the data after the reply. */
	cr_assert_eq(recv(fd, got, 5, MSG_WAITALL), 5);
	cr_assert_str_eq(got, "hello");
	close(fd);
	pthread_join(th, NULL);
	close(f.l);
}

Test(sgclient, answered_request_gives_blocking_n1)
{
	answered("127.0.0.1");
}

/* A name goes through the resolver thread (localhost: /etc/hosts). */
Test(sgclient, proxy_by_name)
{
	answered("localhost");
}

Test(sgclient, refused_request_leaves_no_descriptor)
{
	struct fake f = {.rep = 2};
	uint16_t port;
	pthread_t th;
	struct s5_request req = connect_req();
	struct s5_reply rep;
	int fd = -1, before = open_fds();
	long took;

	f.l = listener(&port);
	before++; /* the listener */
	pthread_create(&th, NULL, fake_proxy, &f);
	cr_assert_eq(request("127.0.0.1", port, 2000, &req, &rep, &fd, &took),
		     SGC_ERR_REFUSED);
	cr_assert_eq(rep.rep, 2);
	cr_assert_eq(fd, -1);
	pthread_join(th, NULL);
	cr_assert_eq(open_fds(), before, "a descriptor leaked");
	close(f.l);
}

Test(sgclient, nobody_listening)
{
	uint16_t port;
	int l = listener(&port), fd = -1;
	struct s5_request req = connect_req();
	struct s5_reply rep;
	long took;

	close(l); /* the port is now closed: connection refused */
	cr_assert_eq(request("127.0.0.1", port, 2000, &req, &rep, &fd, &took),
		     SGC_ERR_CONNECT);
	cr_assert_lt(took, 1000);
}
