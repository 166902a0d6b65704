/* net-http: HTTP requests over a new TCP connection each, to IP:PORT; prints {"requests":N,"us_per_request":X}. */
/*
 * Usage: net-http IP PORT MS   (requests for at least MS milliseconds, after 50 to warm up)
 * Each request: socket, connect (blocking), one write of a GET, reads to end of file, close:
 * what a client without keep-alive does, and every step of it that the sentry mediates (connect).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void request(const struct sockaddr_in *a)
{
	static const char get[] = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
	char buf[4096];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)a, sizeof *a) < 0) {
		perror("net-http: connect");
		exit(1);
	}
	if (write(fd, get, sizeof get - 1) != (ssize_t)(sizeof get - 1)) {
		perror("net-http: write");
		exit(1);
	}
	size_t got = 0;
	for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) got += (size_t)n;
	if (got == 0 || strncmp(buf, "HTTP/1.1 200", 12) != 0) {
		fprintf(stderr, "net-http: no 200 answer\n");
		exit(1);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: net-http IP PORT MS\n");
		return 2;
	}
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2]))};
	if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) return 2;
	double ms = atof(argv[3]);
	for (int i = 0; i < 50; i++) request(&a);
	long n = 0;
	double t0 = now_us(), t;
	do {
		for (int i = 0; i < 20; i++) request(&a);
		n += 20;
		t = now_us();
	} while (t - t0 < ms * 1000.0);
	printf("{\"requests\":%ld,\"us_per_request\":%.1f}\n", n, (t - t0) / (double)n);
	return 0;
}
