/* The connection guard: admission decisions, deadlines and rates as pure
 * functions, then the watchdog cutting real loopback connections. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "tcp_pair.h"
#include "common/error.h"
#include "http/guard.h"

static void test_admission(void)
{
	brt_guard_limits l = {.max_connections = 100, .per_address = 10, .reserved = 20};

	CHECK_EQ_INT(brt_guard_admission(&l, 0, 0), BRT_GUARD_OK);
	CHECK_EQ_INT(brt_guard_admission(&l, 50, 9), BRT_GUARD_OK);
	CHECK_EQ_INT(brt_guard_admission(&l, 50, 10), BRT_GUARD_PER_ADDRESS);
	/* the last 20 slots only for addresses holding fewer than 4 */
	CHECK_EQ_INT(brt_guard_admission(&l, 79, 9), BRT_GUARD_OK);
	CHECK_EQ_INT(brt_guard_admission(&l, 80, BRT_GUARD_LIGHT_HOLDER), BRT_GUARD_RESERVED);
	CHECK_EQ_INT(brt_guard_admission(&l, 80, BRT_GUARD_LIGHT_HOLDER - 1), BRT_GUARD_OK);
	CHECK_EQ_INT(brt_guard_admission(&l, 99, 0), BRT_GUARD_OK);
	CHECK_EQ_INT(brt_guard_admission(&l, 100, 0), BRT_GUARD_FULL);
	l.per_address = 0;
	CHECK_EQ_INT(brt_guard_admission(&l, 50, 1000), BRT_GUARD_OK);
	l.reserved = 500; /* more than the limit: ignored, never underflows */
	CHECK_EQ_INT(brt_guard_admission(&l, 50, 50), BRT_GUARD_OK);
}

static void test_deadlines(void)
{
	brt_guard_limits l = {.header_ms = 2000,
			      .request_ms = 5000,
			      .min_rate = 1000,
			      .min_rate_window_ms = 10000};

	CHECK_EQ_INT(brt_guard_deadline(&l, BRT_PHASE_HEADERS, 1000, 3000), BRT_GUARD_OK);
	CHECK_EQ_INT(brt_guard_deadline(&l, BRT_PHASE_HEADERS, 1000, 3001), BRT_GUARD_HEADER_LATE);
	CHECK_EQ_INT(brt_guard_deadline(&l, BRT_PHASE_SMALL, 1000, 6000), BRT_GUARD_OK);
	CHECK_EQ_INT(brt_guard_deadline(&l, BRT_PHASE_SMALL, 1000, 6001), BRT_GUARD_REQUEST_LATE);
	/* long transfers and idle connections have no deadline here */
	CHECK_EQ_INT(brt_guard_deadline(&l, BRT_PHASE_LONG, 0, 1u << 30), BRT_GUARD_OK);
	CHECK_EQ_INT(brt_guard_deadline(&l, BRT_PHASE_IDLE, 0, 1u << 30), BRT_GUARD_OK);
	/* a clock that went nowhere */
	CHECK_EQ_INT(brt_guard_deadline(&l, BRT_PHASE_HEADERS, 5000, 1000), BRT_GUARD_OK);

	CHECK_EQ_INT(brt_guard_rate(&l, 10000, 10000), BRT_GUARD_OK);
	CHECK_EQ_INT(brt_guard_rate(&l, 9999, 10000), BRT_GUARD_TOO_SLOW);
	CHECK_EQ_INT(brt_guard_rate(&l, 0, 10000), BRT_GUARD_TOO_SLOW);
	CHECK_EQ_INT(brt_guard_rate(&l, UINT64_MAX, 10000), BRT_GUARD_OK);
	l.min_rate = 0;
	CHECK_EQ_INT(brt_guard_rate(&l, 0, 10000), BRT_GUARD_OK);
}

static void test_address_keys(void)
{
	struct sockaddr_in a4 = {.sin_family = AF_INET}, b4 = {.sin_family = AF_INET};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6}, b6 = {.sin6_family = AF_INET6},
			    m6 = {.sin6_family = AF_INET6};
	struct sockaddr other = {.sa_family = AF_UNIX};
	unsigned char ka[16], kb[16];

	inet_pton(AF_INET, "127.0.0.2", &a4.sin_addr);
	inet_pton(AF_INET, "127.0.0.3", &b4.sin_addr);
	a4.sin_port = 1;
	b4.sin_port = 1;
	CHECK_EQ_INT(brt_guard_address_key(ka, (struct sockaddr *)&a4, sizeof(a4)), 0);
	CHECK_EQ_INT(brt_guard_address_key(kb, (struct sockaddr *)&b4, sizeof(b4)), 0);
	CHECK(memcmp(ka, kb, 16) != 0);
	/* the port does not matter */
	b4.sin_addr = a4.sin_addr;
	b4.sin_port = 2;
	brt_guard_address_key(kb, (struct sockaddr *)&b4, sizeof(b4));
	CHECK(memcmp(ka, kb, 16) == 0);
	/* IPv4-mapped IPv6 is the IPv4 address */
	inet_pton(AF_INET6, "::ffff:127.0.0.2", &m6.sin6_addr);
	CHECK_EQ_INT(brt_guard_address_key(kb, (struct sockaddr *)&m6, sizeof(m6)), 0);
	CHECK(memcmp(ka, kb, 16) == 0);
	/* one /64 is one client; another /64 is another */
	inet_pton(AF_INET6, "2001:db8:1:2::1", &a6.sin6_addr);
	inet_pton(AF_INET6, "2001:db8:1:2:ffff:1:2:3", &b6.sin6_addr);
	brt_guard_address_key(ka, (struct sockaddr *)&a6, sizeof(a6));
	brt_guard_address_key(kb, (struct sockaddr *)&b6, sizeof(b6));
	CHECK(memcmp(ka, kb, 16) == 0);
	inet_pton(AF_INET6, "2001:db8:1:3::1", &b6.sin6_addr);
	brt_guard_address_key(kb, (struct sockaddr *)&b6, sizeof(b6));
	CHECK(memcmp(ka, kb, 16) != 0);
	CHECK_EQ_INT(brt_guard_address_key(ka, &other, sizeof(other)), BRT_EINVALID);
	CHECK_EQ_INT(brt_guard_address_key(ka, (struct sockaddr *)&a4, 4), BRT_EINVALID);
}

/* Milliseconds until the peer of `fd` is shut down (EOF), or -1 if it is
 * still open after `max_ms`.  Data that arrives is read and dropped. */
static long ms_until_eof(int fd, long max_ms)
{
	uint64_t start = brt_guard_now_ms();
	char buf[256];

	for (;;) {
		long left = max_ms - (long)(brt_guard_now_ms() - start);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0)
			return -1;
		if (poll(&p, 1, (int)left) > 0) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			if (n <= 0)
				return (long)(brt_guard_now_ms() - start);
		}
	}
}

static void test_watchdog(void)
{
	brt_guard_limits l = {.max_connections = 10,
			      .per_address = 2,
			      .reserved = 0,
			      .header_ms = 600,
			      .request_ms = 1500,
			      .min_rate = 1000,
			      .min_rate_window_ms = 1000};
	brt_guard *guard = NULL;
	brt_guard_conn *c1 = NULL, *c2 = NULL, *c3 = NULL, *c4 = NULL;
	struct sockaddr_in peer;
	int cl1, sv1, cl2, sv2, cl3, sv3, cl4, sv4;
	brt_guard_stats stats;
	long t;

	CHECK_EQ_INT(brt_guard_new(&guard, &l), 0);
	if (!guard)
		return;
	CHECK_EQ_INT(tcp_pair(&cl1, &sv1, &peer), 0);
	CHECK_EQ_INT(tcp_pair(&cl2, &sv2, &peer), 0);
	CHECK_EQ_INT(tcp_pair(&cl3, &sv3, &peer), 0);
	CHECK_EQ_INT(tcp_pair(&cl4, &sv4, &peer), 0);

	/* per-address limit: two from 127.0.0.1 are in, a third is refused */
	CHECK_EQ_INT(brt_guard_admit(guard, (struct sockaddr *)&peer, sizeof(peer)), BRT_GUARD_OK);
	CHECK_EQ_INT(brt_guard_open(&c1, guard, sv1, (struct sockaddr *)&peer, sizeof(peer), 16), 0);
	CHECK_EQ_INT(brt_guard_open(&c2, guard, sv2, (struct sockaddr *)&peer, sizeof(peer), 0), 0);
	CHECK_EQ_INT(brt_guard_admit(guard, (struct sockaddr *)&peer, sizeof(peer)), BRT_GUARD_PER_ADDRESS);
	CHECK(brt_guard_conn_state(c1) != NULL);
	CHECK_EQ_INT(((unsigned char *)brt_guard_conn_state(c1))[15], 0);

	/* c1 never sends its headers: cut after the header deadline (0.6 s),
	 * not before.  c2 sends a request in time and goes idle: kept. */
	brt_guard_request_begin(c2, 0, 0);
	brt_guard_request_end(c2);
	t = ms_until_eof(cl1, 3000);
	CHECK(t >= 450 && t <= 1500);
	CHECK_EQ_INT(ms_until_eof(cl2, 1200), -1);

	/* c2 idles, then a byte of its next request arrives and nothing
	 * more: the header deadline runs from that byte. */
	CHECK_EQ_INT(send(cl2, "G", 1, 0), 1);
	t = ms_until_eof(cl2, 3000);
	CHECK(t >= 350 && t <= 1600);

	/* a small request past the request deadline (1.5 s) is cut */
	brt_guard_close(guard, c1);
	brt_guard_close(guard, c2);
	CHECK_EQ_INT(brt_guard_open(&c3, guard, sv3, (struct sockaddr *)&peer, sizeof(peer), 0), 0);
	brt_guard_request_begin(c3, 0, 0);
	t = ms_until_eof(cl3, 4000);
	CHECK(t >= 1000 && t <= 2600);

	/* a blob transfer is not held to the request deadline but to the
	 * rate: 2 KiB/s passes, then a trickle is cut */
	CHECK_EQ_INT(brt_guard_open(&c4, guard, sv4, (struct sockaddr *)&peer, sizeof(peer), 0), 0);
	brt_guard_request_begin(c4, 1, 1);
	{
		char kb[1024];
		uint64_t start = brt_guard_now_ms();
		int alive = 1;
		memset(kb, 'x', sizeof(kb));
		while (brt_guard_now_ms() - start < 2500 && alive) {
			char drain[4096];
			struct pollfd p = {.fd = cl4, .events = POLLIN};
			alive = send(cl4, kb, sizeof(kb), MSG_NOSIGNAL) == (ssize_t)sizeof(kb);
			while (recv(sv4, drain, sizeof(drain), MSG_DONTWAIT) > 0)
				;
			if (poll(&p, 1, 0) > 0 && recv(cl4, drain, sizeof(drain), MSG_DONTWAIT) == 0)
				alive = 0;
			usleep(500 * 1000);
		}
		CHECK(alive);
	}
	t = ms_until_eof(cl4, 4000);
	CHECK(t >= 0 && t <= 3000);

	brt_guard_get_stats(guard, &stats);
	CHECK_EQ_INT(stats.cut_header, 2);
	CHECK_EQ_INT(stats.cut_request, 1);
	CHECK_EQ_INT(stats.cut_slow, 1);
	CHECK_EQ_INT(stats.refused_per_address, 1);
	CHECK_EQ_INT(stats.open, 2);
	brt_guard_close(guard, c3);
	brt_guard_close(guard, c4);
	brt_guard_get_stats(guard, &stats);
	CHECK_EQ_INT(stats.open, 0);
	/* the address entry went with its last connection */
	CHECK_EQ_INT(brt_guard_admit(guard, (struct sockaddr *)&peer, sizeof(peer)), BRT_GUARD_OK);
	brt_guard_free(guard);
	close(cl1), close(sv1), close(cl2), close(sv2), close(cl3), close(sv3), close(cl4), close(sv4);
}

/* Waits up to `max_ms` for the guard to have cut `want` connections of
 * clients that went away; the count reached. */
static uint64_t wait_gone(brt_guard *guard, uint64_t want, long max_ms)
{
	uint64_t start = brt_guard_now_ms();
	brt_guard_stats stats;

	for (;;) {
		brt_guard_get_stats(guard, &stats);
		if (stats.cut_gone >= want || (long)(brt_guard_now_ms() - start) > max_ms)
			return stats.cut_gone;
		usleep(20 * 1000);
	}
}

/* A client that closes its side can send nothing more.  Mid-headers,
 * mid-body or idle, its connection is cut once everything it sent has
 * been read (the server's reader may miss the end otherwise); with its
 * request all in, or before that is read, it is left to finish. */
static void test_gone(void)
{
	brt_guard_limits l = {.max_connections = 10,
			      .header_ms = 60000,
			      .request_ms = 60000,
			      .min_rate = 1,
			      .min_rate_window_ms = 60000};
	brt_guard *guard = NULL;
	brt_guard_conn *c = NULL;
	struct sockaddr_in peer;
	int cl, sv;
	char buf[256];

	CHECK_EQ_INT(brt_guard_new(&guard, &l), 0);
	if (!guard)
		return;
	for (int kind = 0; kind < 2; kind++) {
		/* a blob body and a small one: 100 bytes, then the client is
		 * gone.  While the bytes wait unread the connection stays. */
		CHECK_EQ_INT(tcp_pair(&cl, &sv, &peer), 0);
		CHECK_EQ_INT(brt_guard_open(&c, guard, sv, (struct sockaddr *)&peer, sizeof(peer), 0), 0);
		brt_guard_request_begin(c, kind == 0, 1);
		memset(buf, 'x', 100);
		CHECK_EQ_INT(send(cl, buf, 100, 0), 100);
		close(cl);
		CHECK_EQ_INT(wait_gone(guard, (uint64_t)kind + 1, 700), kind);
		CHECK_EQ_INT(recv(sv, buf, sizeof(buf), 0), 100);
		CHECK_EQ_INT(wait_gone(guard, (uint64_t)kind + 1, 2000), kind + 1);
		brt_guard_close(guard, c);
		close(sv);
	}
	/* the body is all in and the client half-closes, waiting for the
	 * answer: kept; a request without a body alike */
	for (int kind = 0; kind < 2; kind++) {
		CHECK_EQ_INT(tcp_pair(&cl, &sv, &peer), 0);
		CHECK_EQ_INT(brt_guard_open(&c, guard, sv, (struct sockaddr *)&peer, sizeof(peer), 0), 0);
		brt_guard_request_begin(c, 0, kind == 0);
		if (kind == 0)
			brt_guard_request_received(c);
		shutdown(cl, SHUT_WR);
		CHECK_EQ_INT(recv(sv, buf, sizeof(buf), 0), 0);
		CHECK_EQ_INT(wait_gone(guard, 3, 700), 2);
		CHECK_EQ_INT(send(sv, "answer", 6, MSG_NOSIGNAL), 6);
		CHECK_EQ_INT(recv(cl, buf, sizeof(buf), 0), 6);
		brt_guard_close(guard, c);
		close(cl), close(sv);
	}
	/* idle between requests, then gone: cut */
	CHECK_EQ_INT(tcp_pair(&cl, &sv, &peer), 0);
	CHECK_EQ_INT(brt_guard_open(&c, guard, sv, (struct sockaddr *)&peer, sizeof(peer), 0), 0);
	brt_guard_request_begin(c, 0, 0);
	brt_guard_request_end(c);
	usleep(400 * 1000); /* the watchdog sees it idle first */
	close(cl);
	CHECK_EQ_INT(wait_gone(guard, 3, 2000), 3);
	brt_guard_close(guard, c);
	close(sv);
	/* part of the headers, then gone: cut once they are read, long before
	 * the header deadline */
	CHECK_EQ_INT(tcp_pair(&cl, &sv, &peer), 0);
	CHECK_EQ_INT(brt_guard_open(&c, guard, sv, (struct sockaddr *)&peer, sizeof(peer), 0), 0);
	CHECK_EQ_INT(send(cl, "GET /v2/ HTT", 12, 0), 12);
	close(cl);
	CHECK_EQ_INT(wait_gone(guard, 4, 700), 3);
	CHECK_EQ_INT(recv(sv, buf, sizeof(buf), 0), 12);
	CHECK_EQ_INT(wait_gone(guard, 4, 2000), 4);
	brt_guard_close(guard, c);
	close(sv);
	brt_guard_free(guard);
}

int main(void)
{
	test_admission();
	test_deadlines();
	test_address_keys();
	test_watchdog();
	test_gone();
	return check_exit("test_http_guard");
}
