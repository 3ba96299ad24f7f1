/* Bodies held in memory: the per-request cap and the server-wide budget,
 * which every request charges and gives back. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/error.h"
#include "http/body.h"

static char chunk[1 << 20];

int main(void)
{
	brt_http_budget budget, other;
	brt_http_body a, b, c;
	size_t max = 1 << 20;

	memset(chunk, 'x', sizeof(chunk));
	memset(&budget, 0, sizeof(budget));
	memset(&other, 0, sizeof(other));
	budget.limit = 2 << 20;
	other.limit = 2 << 20;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));

	/* small pieces are charged by capacity, which grows by doubling */
	CHECK_EQ_INT(brt_http_body_append(&a, &budget, "{}", 2, max), 0);
	CHECK_EQ_INT(a.len, 2);
	CHECK(memcmp(a.data, "{}", 2) == 0);
	CHECK_EQ_INT(atomic_load(&budget.used), a.cap);
	CHECK(a.cap >= 2 && a.cap <= 16384);
	CHECK_EQ_INT(brt_http_body_append(&a, &budget, chunk, 40000, max), 0);
	CHECK_EQ_INT(a.len, 40002);
	CHECK(a.cap >= 40002 && a.cap < 2 * 40002 + 16384);
	CHECK_EQ_INT(atomic_load(&budget.used), a.cap);

	/* the per-request cap: exactly max is fine, one more byte is not */
	CHECK_EQ_INT(brt_http_body_append(&b, &budget, chunk, max, max), 0);
	CHECK_EQ_INT(b.cap, max);
	CHECK_EQ_INT(brt_http_body_append(&b, &budget, "y", 1, max), BRT_ETOOBIG);
	CHECK_EQ_INT(b.len, max);
	CHECK_EQ_INT(brt_http_body_append(&b, &budget, "y", SIZE_MAX, max), BRT_ETOOBIG);

	/* the budget (2 MiB) is now nearly spent: c cannot grow to 1 MiB */
	CHECK_EQ_INT(brt_http_body_append(&c, &budget, chunk, 1000, max), 0);
	CHECK_EQ_INT(brt_http_body_append(&c, &budget, chunk, max - 1000, max), BRT_ELIMIT);
	CHECK(atomic_load(&budget.used) <= budget.limit);
	CHECK_EQ_INT(c.len, 1000);

	/* giving memory back lets it through; free is idempotent */
	brt_http_body_free(&b);
	brt_http_body_free(&b);
	CHECK(b.data == NULL && b.len == 0);
	CHECK_EQ_INT(brt_http_body_append(&c, &budget, chunk, max - 1000, max), 0);
	CHECK_EQ_INT(c.len, max);
	CHECK(memcmp(c.data, chunk, max) == 0);
	brt_http_body_free(&a);
	brt_http_body_free(&c);
	CHECK_EQ_INT(atomic_load(&budget.used), 0);

	/* large bodies may use only three quarters of the budget; small
	 * ones (up to 64 KiB) the rest too */
	CHECK_EQ_INT(brt_http_body_append(&a, &budget, chunk, max, max), 0);
	CHECK_EQ_INT(brt_http_body_append(&b, &budget, chunk, 300 * 1024, max), 0);
	CHECK_EQ_INT(b.cap, 512 * 1024);
	CHECK_EQ_INT(brt_http_body_append(&c, &budget, chunk, 200 * 1024, max), BRT_ELIMIT);
	CHECK_EQ_INT(brt_http_body_append(&c, &budget, chunk, 60 * 1024, max), 0);
	CHECK_EQ_INT(c.cap, 64 * 1024);
	brt_http_body_free(&a);
	brt_http_body_free(&b);
	brt_http_body_free(&c);
	CHECK_EQ_INT(atomic_load(&budget.used), 0);

	/* a cap below the first allocation size */
	CHECK_EQ_INT(brt_http_body_append(&a, &budget, chunk, 1024, 1024), 0);
	CHECK_EQ_INT(a.cap, 1024);
	brt_http_body_free(&a);
	CHECK_EQ_INT(atomic_load(&budget.used), 0);

	/* a body stays with the budget it was first charged to */
	CHECK_EQ_INT(brt_http_body_append(&a, &budget, "x", 1, max), 0);
	CHECK_EQ_INT(brt_http_body_append(&a, &other, "y", 1, max), BRT_EINVALID);
	CHECK_EQ_INT(atomic_load(&other.used), 0);
	brt_http_body_free(&a);
	CHECK_EQ_INT(atomic_load(&budget.used), 0);
	return check_exit("test_http_body");
}
