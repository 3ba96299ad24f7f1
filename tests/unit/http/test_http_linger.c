/* Lingering close on real loopback TCP connections: the peer reads the
 * answer and then the end of the stream while it is still sending, its
 * sending never fails while the lingerer holds the socket, and every socket
 * is closed by the peer's close, the byte allowance or the deadline. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "tcp_pair.h"
#include "common/error.h"
#include "http/linger.h"

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait up to `max_ms` until the lingerer holds `held` sockets. */
static unsigned int wait_held(brt_linger *linger, unsigned int held, long max_ms)
{
	brt_linger_stats st;
	long start = now_ms();

	for (;;) {
		brt_linger_get_stats(linger, &st);
		if (st.held == held || now_ms() - start > max_ms)
			return st.held;
		usleep(10 * 1000);
	}
}

/* Send `total` bytes without blocking for more than `max_ms`; the bytes
 * sent, or -errno of the first failure. */
static long send_all(int fd, size_t total, long max_ms)
{
	static char block[64 * 1024];
	long start = now_ms();
	size_t sent = 0;

	while (sent < total && now_ms() - start < max_ms) {
		size_t n = total - sent < sizeof(block) ? total - sent : sizeof(block);
		ssize_t w = send(fd, block, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			poll(&p, 1, 50);
			continue;
		}
		if (w < 0)
			return -errno;
		sent += (size_t)w;
	}
	return (long)sent;
}

/* The answer goes out, the peer is still sending: it reads the whole
 * answer and then the end, its 8 MiB go through, and its close frees the
 * slot. */
static void test_answer_then_end(void)
{
	brt_linger_limits limits = {.slots = 4, .max_ms = 5000, .max_bytes = 64u << 20};
	brt_linger *linger = NULL;
	brt_linger_stats st;
	int client, server;
	char buf[64];
	ssize_t n;

	CHECK_EQ_INT(brt_linger_start(&linger, &limits), 0);
	CHECK_EQ_INT(tcp_pair(&client, &server, NULL), 0);
	CHECK_EQ_INT(send_all(client, 100000, 2000), 100000); /* unread by the server */
	CHECK_EQ_INT(send(server, "HTTP/1.1 401 no\r\n\r\n", 19, 0), 19);
	CHECK_EQ_INT(brt_linger_take(linger, server), 1);
	close(server); /* what libmicrohttpd does next */
	CHECK_EQ_INT(send_all(client, 8u << 20, 5000), 8u << 20);
	n = recv(client, buf, sizeof(buf), 0);
	CHECK_EQ_INT(n, 19);
	CHECK(n == 19 && memcmp(buf, "HTTP/1.1 401", 12) == 0);
	CHECK_EQ_INT(recv(client, buf, sizeof(buf), 0), 0); /* the end, not a reset */
	CHECK_EQ_INT(wait_held(linger, 1, 100), 1);
	close(client);
	CHECK_EQ_INT(wait_held(linger, 0, 2000), 0);
	brt_linger_get_stats(linger, &st);
	CHECK_EQ_INT(st.taken, 1);
	CHECK_EQ_INT(st.full, 0);
	brt_linger_free(linger);
}

/* A peer that sends past the allowance, or never closes, loses the
 * socket: the lingerer is not a sink anyone can hold. */
static void test_limits(void)
{
	brt_linger_limits limits = {.slots = 4, .max_ms = 300, .max_bytes = 1u << 20};
	brt_linger *linger = NULL;
	int client, server, client2, server2;
	long start, sent;

	CHECK_EQ_INT(brt_linger_start(&linger, &limits), 0);
	CHECK_EQ_INT(tcp_pair(&client, &server, NULL), 0);
	CHECK_EQ_INT(brt_linger_take(linger, server), 1);
	close(server);
	sent = send_all(client, 64u << 20, 3000);
	CHECK(sent == -ECONNRESET || sent == -EPIPE);
	CHECK_EQ_INT(wait_held(linger, 0, 1000), 0);
	close(client);

	CHECK_EQ_INT(tcp_pair(&client2, &server2, NULL), 0);
	start = now_ms();
	CHECK_EQ_INT(brt_linger_take(linger, server2), 1);
	close(server2);
	CHECK_EQ_INT(wait_held(linger, 0, 3000), 0);
	CHECK(now_ms() - start >= 250 && now_ms() - start < 2000);
	close(client2);
	brt_linger_free(linger);
}

/* Past the slots a socket is not taken (its owner closes it as before);
 * freeing the lingerer closes what it holds. */
static void test_slots(void)
{
	brt_linger_limits limits = {.slots = 2, .max_ms = 60000, .max_bytes = 1u << 20};
	brt_linger *linger = NULL;
	brt_linger_stats st;
	int client[3], server[3];
	char c;

	CHECK_EQ_INT(brt_linger_start(&linger, &limits), 0);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(tcp_pair(&client[i], &server[i], NULL), 0);
		CHECK_EQ_INT(brt_linger_take(linger, server[i]), i < 2);
		close(server[i]);
	}
	brt_linger_get_stats(linger, &st);
	CHECK_EQ_INT(st.taken, 2);
	CHECK_EQ_INT(st.full, 1);
	CHECK_EQ_INT(st.held, 2);
	CHECK_EQ_INT(brt_linger_take(NULL, client[0]), 0);
	brt_linger_free(linger);
	for (int i = 0; i < 3; i++) {
		struct pollfd p = {.fd = client[i], .events = POLLIN};
		CHECK_EQ_INT(poll(&p, 1, 1000), 1);
		CHECK_EQ_INT(recv(client[i], &c, 1, 0), 0);
		close(client[i]);
	}
	CHECK_EQ_INT(brt_linger_start(&linger, &(brt_linger_limits){.slots = 0, .max_ms = 1, .max_bytes = 1}),
		     BRT_EINVALID);
	CHECK(linger == NULL);
}

int main(void)
{
	test_answer_then_end();
	test_limits();
	test_slots();
	return check_exit("test_http_linger");
}
