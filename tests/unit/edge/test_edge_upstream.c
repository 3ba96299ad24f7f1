/* Tests for brt_upstream_probe against a scripted HTTP server on
 * loopback: any status below 500 means reachable (401 too), 5xx, a
 * closed port and a server that never answers do not, the request is
 * GET /v2/ with the gateway's key, the timeout holds, and probes from
 * several threads at once share the upstream safely. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "common/error.h"
#include "edge/upstream.h"

static int listener = -1;
static unsigned short port;
static volatile int answer_status = 200; /* 0: read the request, never answer */
static char last_request[4096];
static pthread_mutex_t request_lock = PTHREAD_MUTEX_INITIALIZER;

static void *serve(void *payload)
{
	(void)payload;
	for (;;) {
		char buf[4096], reply[160];
		size_t used = 0;
		ssize_t n;
		int fd = accept(listener, NULL, NULL);

		if (fd < 0)
			return NULL;
		while (used < sizeof(buf) - 1 && (n = read(fd, buf + used, sizeof(buf) - 1 - used)) > 0) {
			used += (size_t)n;
			buf[used] = '\0';
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		buf[used] = '\0';
		pthread_mutex_lock(&request_lock);
		memcpy(last_request, buf, used + 1);
		pthread_mutex_unlock(&request_lock);
		if (answer_status) {
			n = snprintf(reply, sizeof(reply),
				     "HTTP/1.1 %d Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
				     answer_status);
			if (write(fd, reply, (size_t)n) != n)
				fprintf(stderr, "test_edge_upstream: short write\n");
		} else {
			usleep(800 * 1000);
		}
		close(fd);
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *probe_thread(void *payload)
{
	brt_upstream *up = payload;
	return (void *)(intptr_t)brt_upstream_probe(up, 5000);
}

int main(void)
{
	struct sockaddr_in addr;
	socklen_t len = sizeof(addr);
	pthread_t server, threads[4];
	brt_upstream_options options;
	brt_upstream *up = NULL, *closed = NULL;
	char key_path[] = "/tmp/berth-edge-key-XXXXXX", url[64];
	int fd;
	double start;

	listener = socket(AF_INET, SOCK_STREAM, 0);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(listener, 16) < 0 || getsockname(listener, (struct sockaddr *)&addr, &len) < 0) {
		fprintf(stderr, "test_edge_upstream: no listening socket\n");
		return 1;
	}
	port = ntohs(addr.sin_port);
	pthread_create(&server, NULL, serve, NULL);
	fd = mkstemp(key_path);
	CHECK(fd >= 0 && write(fd, "brt_probe_key\n", 14) == 14);
	close(fd);

	memset(&options, 0, sizeof(options));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
	options.url = url;
	options.access_key_file = key_path;
	CHECK_EQ_INT(brt_upstream_new(&up, &options), 0);
	if (!up)
		return check_exit("test_edge_upstream");

	static const struct {
		int status, want;
	} cases[] = {{200, 0}, {401, 0}, {403, 0}, {404, 0}, {499, 0}, {500, BRT_EIO}, {503, BRT_EIO}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		answer_status = cases[i].status;
		CHECK_EQ_INT(brt_upstream_probe(up, 2000), cases[i].want);
	}
	pthread_mutex_lock(&request_lock);
	CHECK(strncmp(last_request, "GET /v2/ HTTP/1.1\r\n", 19) == 0);
	CHECK(strstr(last_request, "\r\nAuthorization: Bearer brt_probe_key\r\n") != NULL);
	pthread_mutex_unlock(&request_lock);

	/* several threads at once */
	answer_status = 200;
	for (int i = 0; i < 4; i++)
		pthread_create(&threads[i], NULL, probe_thread, up);
	for (int i = 0; i < 4; i++) {
		void *result;
		pthread_join(threads[i], &result);
		CHECK_EQ_INT((int)(intptr_t)result, 0);
	}

	/* a server that never answers: given up after the timeout */
	answer_status = 0;
	start = now();
	CHECK_EQ_INT(brt_upstream_probe(up, 300), BRT_EIO);
	CHECK(now() - start < 0.75);
	CHECK(strstr(brt_error_last(), "127.0.0.1") != NULL);
	usleep(900 * 1000); /* let the server finish with that connection */

	/* nothing listening */
	/* shutdown wakes the server's accept; close alone would not */
	shutdown(listener, SHUT_RDWR);
	pthread_join(server, NULL);
	close(listener);
	CHECK_EQ_INT(brt_upstream_new(&closed, &options), 0);
	if (closed)
		CHECK_EQ_INT(brt_upstream_probe(closed, 2000), BRT_EIO);

	brt_upstream_free(closed);
	brt_upstream_free(up);
	unlink(key_path);
	return check_exit("test_edge_upstream");
}
