/* The HTTP layer as a library: a handler registered by the embedding
 * program (nothing of the registry here) sees on_headers, on_body,
 * on_complete and on_cleanup in order, keeps its state in the request
 * pool and per-connection memory across keep-alive requests, can answer
 * early and have the body dropped, and answers ambiguous framing through
 * on_refused on a connection that then closes.  Real sockets on
 * loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "common/error.h"
#include "http/server.h"

struct test_state {
	int headers, bodies, completes;
	int too_big;
	size_t body_bytes;
};

struct conn_data {
	unsigned int requests;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int cleanups, refusals, out_of_order;
static brt_http_refusal last_refusal;

static void respond_text(brt_http_request *req, unsigned int status, const char *text)
{
	size_t len = strlen(text);

	brt_http_respond(req, status,
			 MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY), len);
}

static void on_headers(brt_http_request *req, void *payload)
{
	struct test_state *st = brt_pool_alloc(&req->pool, sizeof(*st));
	struct conn_data *cd = brt_http_conn_data(req);

	(void)payload;
	memset(st, 0, sizeof(*st));
	st->headers = 1;
	req->state = st;
	if (cd)
		cd->requests++;
	/* Answer before the body: the body must then never reach on_body. */
	if (strcmp(req->url, "/early") == 0)
		respond_text(req, 403, "early\n");
}

static void on_body(brt_http_request *req, const char *data, size_t len, void *payload)
{
	struct test_state *st = req->state;

	(void)payload;
	if (!st->headers || st->completes)
		out_of_order++;
	st->bodies++;
	st->body_bytes += len;
	/* An error in the body is answered once the body is over. */
	if (brt_http_body_add(req, data, len, 1 << 16) < 0) {
		st->too_big = 1;
		brt_http_discard_body(req);
	}
}

static void on_complete(brt_http_request *req, void *payload)
{
	struct test_state *st = req->state;
	struct conn_data *cd = brt_http_conn_data(req);
	char text[128];

	(void)payload;
	st->completes++;
	if (st->too_big) {
		respond_text(req, 413, "too big\n");
		return;
	}
	if (strcmp(req->url, "/echo") == 0) {
		size_t len = req->body.len;
		brt_http_respond(req, 200,
				 MHD_create_response_from_buffer(len, len ? req->body.data : (void *)"",
								 MHD_RESPMEM_MUST_COPY),
				 len);
		return;
	}
	snprintf(text, sizeof(text), "%s %s n=%u\n", req->method_name, req->url, cd ? cd->requests : 0u);
	respond_text(req, 200, text);
}

static void on_cleanup(brt_http_request *req, void *payload)
{
	(void)payload;
	pthread_mutex_lock(&lock);
	cleanups++;
	pthread_mutex_unlock(&lock);
	(void)req;
}

static void on_refused(brt_http_request *req, unsigned int status, brt_http_refusal why, const char *detail,
		       void *payload)
{
	(void)payload;
	(void)detail;
	pthread_mutex_lock(&lock);
	refusals++;
	last_refusal = why;
	pthread_mutex_unlock(&lock);
	respond_text(req, status, "refused\n");
}

static int connect_to(unsigned int port)
{
	struct sockaddr_in addr;
	struct timeval tv = {5, 0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send `text` and read until the response of `want` bytes of body is in,
 * or until EOF when `want` is -1.  Returns the bytes read into `out`. */
static size_t exchange(int fd, const char *text, char *out, size_t cap, int until_eof)
{
	size_t got = 0;

	if (text && write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return 0;
	while (got + 1 < cap) {
		ssize_t n = read(fd, out + got, cap - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		out[got] = '\0';
		if (!until_eof) {
			const char *end = strstr(out, "\r\n\r\n");
			const char *cl = strstr(out, "Content-Length: ");
			if (end && cl && got >= (size_t)(end + 4 - out) + strtoul(cl + 16, NULL, 10))
				break;
		}
	}
	out[got] = '\0';
	return got;
}

int main(void)
{
	brt_http_handler handler;
	brt_http_options options;
	brt_http_server *server = NULL;
	char buf[8192];
	unsigned int port;
	int fd;

	memset(&handler, 0, sizeof(handler));
	handler.on_headers = on_headers;
	handler.on_body = on_body;
	handler.on_complete = on_complete;
	handler.on_cleanup = on_cleanup;
	handler.on_refused = on_refused;
	handler.conn_data_size = sizeof(struct conn_data);
	memset(&options, 0, sizeof(options));
	options.listen = "127.0.0.1:0";
	options.threads = 2;
	options.connection_memory = 64 * 1024;
	options.connection_timeout = 10;
	options.per_address = 64;
	options.reserved = BRT_HTTP_AUTO;
	options.header_timeout = 10;
	options.request_timeout = 30;
	options.drain_timeout = 1;
	options.body_memory = 1 << 20;

	/* A handler without its required steps is refused. */
	{
		brt_http_handler incomplete = handler;
		incomplete.on_body = NULL;
		CHECK_EQ_INT(brt_http_server_start(&server, &options, &incomplete), BRT_EINVALID);
		CHECK(server == NULL);
	}
	CHECK_EQ_INT(brt_http_server_start(&server, &options, &handler), 0);
	if (!server)
		return check_exit("test_http_server");
	port = brt_http_server_port(server);
	CHECK(port > 0);

	/* Two keep-alive requests on one connection: the per-connection
	 * memory counts both; a body is echoed through the body buffer. */
	fd = connect_to(port);
	CHECK(fd >= 0);
	exchange(fd, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n", buf, sizeof(buf), 0);
	CHECK(strstr(buf, "HTTP/1.1 200") == buf);
	CHECK(strstr(buf, "GET /a n=1\n") != NULL);
	exchange(fd, "GET /b%20c HTTP/1.1\r\nHost: t\r\n\r\n", buf, sizeof(buf), 0);
	CHECK(strstr(buf, "GET /b c n=2\n") != NULL);
	exchange(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world", buf,
		 sizeof(buf), 0);
	CHECK(strstr(buf, "HTTP/1.1 200") == buf);
	CHECK(strstr(buf, "\r\n\r\nhello world") != NULL);
	exchange(fd,
		 "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
		 "chunked\r\n\r\n5\r\nchunk\r\n3\r\ned!\r\n0\r\n\r\n",
		 buf, sizeof(buf), 0);
	CHECK(strstr(buf, "\r\n\r\nchunked!") != NULL);
	close(fd);

	/* An answer given with the headers, a body announced: the body is
	 * never handed over and the connection closes after the answer. */
	fd = connect_to(port);
	exchange(fd, "PUT /early HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n", buf, sizeof(buf), 1);
	CHECK(strstr(buf, "HTTP/1.1 403") == buf);
	close(fd);

	/* Two Content-Length headers: refused through on_refused with the
	 * length reason, and the connection closes. */
	fd = connect_to(port);
	exchange(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
		 buf, sizeof(buf), 1);
	CHECK(strstr(buf, "HTTP/1.1 400") == buf);
	CHECK(strstr(buf, "refused") != NULL);
	close(fd);
	/* A transfer coding other than chunked: the framing reason. */
	fd = connect_to(port);
	exchange(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		 buf, sizeof(buf), 1);
	CHECK(strstr(buf, "HTTP/1.1 400") == buf);
	close(fd);

	/* A body over what the handler allows: its own answer. */
	{
		static char big[70000 + 128];
		int n = snprintf(big, sizeof(big),
				 "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n");
		memset(big + n, 'x', 70000);
		big[n + 70000] = '\0';
		fd = connect_to(port);
		exchange(fd, big, buf, sizeof(buf), 0);
		CHECK(strstr(buf, "HTTP/1.1 413") == buf);
		close(fd);
	}

	brt_http_server_stop(server);
	pthread_mutex_lock(&lock);
	CHECK_EQ_INT(refusals, 2);
	CHECK_EQ_INT(last_refusal, BRT_HTTP_REFUSED_FRAMING);
	/* Every request that reached the handler or was refused is cleaned up once. */
	CHECK_EQ_INT(cleanups, 8);
	CHECK_EQ_INT(out_of_order, 0);
	pthread_mutex_unlock(&lock);
	return check_exit("test_http_server");
}
