/*
 * sg_activeftp: an FTP-active-mode style client for the BIND tests, made
 * of the plain calls Dante's socksify intercepts (connect, bind, listen,
 * getsockname, accept): connect to HOST:PORT, listen on a new socket, tell
 * the server "IP PORT\n" of that socket, accept the server's connection
 * back, print what it sends.  Exit 0 if it sent something.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in srv = {.sin_family = AF_INET},
			   la = {.sin_family = AF_INET};
	socklen_t ll = sizeof(la);
	char line[64], buf[256], ip[INET_ADDRSTRLEN];
	int c, l, d;
	ssize_t n;

	if (argc != 3)
		return 2;
	inet_pton(AF_INET, argv[1], &srv.sin_addr);
	srv.sin_port = htons((uint16_t)atoi(argv[2]));
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&srv, sizeof(srv)) < 0) {
		perror("connect");
		return 1;
	}
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(l, (struct sockaddr *)&la, sizeof(la)) < 0 ||
	    listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&la, &ll) < 0) {
		perror("bind/listen");
		return 1;
	}
	inet_ntop(AF_INET, &la.sin_addr, ip, sizeof(ip));
	printf("listening %s %u\n", ip, ntohs(la.sin_port));
	fflush(stdout);
	snprintf(line, sizeof(line), "%s %u\n", ip, ntohs(la.sin_port));
	if (write(c, line, strlen(line)) < 0)
		return 1;
	/* Dante's accept() wrapper needs the address arguments. */
	struct sockaddr_in peer;
	socklen_t pl = sizeof(peer);
	d = accept(l, (struct sockaddr *)&peer, &pl);
	if (d < 0) {
		perror("accept");
		return 1;
	}
	n = read(d, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
	printf("received %s from %s\n", buf, ip);
	return 0;
}
