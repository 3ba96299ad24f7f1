/* Bodies held in memory: the per-request cap and the server-wide budget,
 * which every request charges and gives back. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/error.h"
#include "http/request.h"
#include "http/server.h"

static char chunk[1 << 20];

int main(void)
{
	brt_config config;
	struct brt_server server;
	brt_request a, b, c;
	size_t max = 1 << 20;

	memset(chunk, 'x', sizeof(chunk));
	brt_config_defaults(&config);
	config.body_memory = 2 << 20;
	memset(&server, 0, sizeof(server));
	server.config = &config;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	a.server = b.server = c.server = &server;

	/* small pieces are charged by capacity, which grows by doubling */
	CHECK_EQ_INT(brt_request_body_append(&a, "{}", 2, max), 0);
	CHECK_EQ_INT(a.body_len, 2);
	CHECK(memcmp(a.body, "{}", 2) == 0);
	CHECK_EQ_INT(atomic_load(&server.body_memory_used), a.body_cap);
	CHECK(a.body_cap >= 2 && a.body_cap <= 16384);
	CHECK_EQ_INT(brt_request_body_append(&a, chunk, 40000, max), 0);
	CHECK_EQ_INT(a.body_len, 40002);
	CHECK(a.body_cap >= 40002 && a.body_cap < 2 * 40002 + 16384);
	CHECK_EQ_INT(atomic_load(&server.body_memory_used), a.body_cap);

	/* the per-request cap: exactly max is fine, one more byte is not */
	CHECK_EQ_INT(brt_request_body_append(&b, chunk, max, max), 0);
	CHECK_EQ_INT(b.body_cap, max);
	CHECK_EQ_INT(brt_request_body_append(&b, "y", 1, max), BRT_ETOOBIG);
	CHECK_EQ_INT(b.body_len, max);
	CHECK_EQ_INT(brt_request_body_append(&b, "y", SIZE_MAX, max), BRT_ETOOBIG);

	/* the budget (2 MiB) is now nearly spent: c cannot grow to 1 MiB */
	CHECK_EQ_INT(brt_request_body_append(&c, chunk, 1000, max), 0);
	CHECK_EQ_INT(brt_request_body_append(&c, chunk, max - 1000, max), BRT_ELIMIT);
	CHECK(atomic_load(&server.body_memory_used) <= config.body_memory);
	CHECK_EQ_INT(c.body_len, 1000);

	/* giving memory back lets it through; free is idempotent */
	brt_request_body_free(&b);
	brt_request_body_free(&b);
	CHECK(b.body == NULL && b.body_len == 0);
	CHECK_EQ_INT(brt_request_body_append(&c, chunk, max - 1000, max), 0);
	CHECK_EQ_INT(c.body_len, max);
	CHECK(memcmp(c.body, chunk, max) == 0);
	brt_request_body_free(&a);
	brt_request_body_free(&c);
	CHECK_EQ_INT(atomic_load(&server.body_memory_used), 0);

	/* large bodies may use only three quarters of the budget; small
	 * ones (up to 64 KiB) the rest too */
	CHECK_EQ_INT(brt_request_body_append(&a, chunk, max, max), 0);
	CHECK_EQ_INT(brt_request_body_append(&b, chunk, 300 * 1024, max), 0);
	CHECK_EQ_INT(b.body_cap, 512 * 1024);
	CHECK_EQ_INT(brt_request_body_append(&c, chunk, 200 * 1024, max), BRT_ELIMIT);
	CHECK_EQ_INT(brt_request_body_append(&c, chunk, 60 * 1024, max), 0);
	CHECK_EQ_INT(c.body_cap, 64 * 1024);
	brt_request_body_free(&a);
	brt_request_body_free(&b);
	brt_request_body_free(&c);
	CHECK_EQ_INT(atomic_load(&server.body_memory_used), 0);

	/* a cap below the first allocation size */
	CHECK_EQ_INT(brt_request_body_append(&a, chunk, 1024, 1024), 0);
	CHECK_EQ_INT(a.body_cap, 1024);
	brt_request_body_free(&a);
	CHECK_EQ_INT(atomic_load(&server.body_memory_used), 0);
	return check_exit("test_http_body");
}
