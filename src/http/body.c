/* Request bodies held in memory (see body.h). */
#include "http/body.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define BODY_FIRST_CAP 16384
/* Bodies up to this size (nearly every real manifest) may use the whole
 * budget; larger ones only the first three quarters, so that clients that
 * stall large bodies cannot keep ordinary pushes out. */
#define BODY_SMALL_MAX (64 * 1024)

/* Take `n` bytes from the budget for a body growing to `cap` bytes, or
 * fail if that would exceed what such a body may use. */
static int budget_take(brt_http_budget *budget, size_t n, size_t cap)
{
	size_t limit = budget->limit;
	size_t used = atomic_load(&budget->used);
	size_t want;

	if (cap > BODY_SMALL_MAX)
		limit -= limit / 4;
	do {
		if (__builtin_add_overflow(used, n, &want) || want > limit)
			return brt_error_set(BRT_ELIMIT,
					     "the server holds as many request bodies in memory as it "
					     "may (http.body_memory_limit); retry shortly");
	} while (!atomic_compare_exchange_weak(&budget->used, &used, want));
	return 0;
}

static void budget_give(brt_http_budget *budget, size_t n)
{
	atomic_fetch_sub(&budget->used, n);
}

int brt_http_body_append(brt_http_body *body, brt_http_budget *budget, const void *data, size_t len,
			 size_t max)
{
	size_t need, cap;
	unsigned char *p;
	int error;

	if (__builtin_add_overflow(body->len, len, &need) || need > max)
		return brt_error_set(BRT_ETOOBIG, "body is larger than the limit of %zu bytes", max);
	if (body->budget && body->budget != budget)
		return brt_error_set(BRT_EINVALID, "a body is charged to one budget");
	if (need > body->cap) {
		/* Grow by doubling so a client is charged for about what it sent,
		 * not for what it announced. */
		cap = body->cap ? body->cap : BODY_FIRST_CAP;
		while (cap < need && cap <= max / 2)
			cap *= 2;
		if (cap < need || cap > max)
			cap = max;
		if ((error = budget_take(budget, cap - body->charged, cap)) < 0)
			return error;
		p = realloc(body->data, cap);
		if (!p) {
			budget_give(budget, cap - body->charged);
			return brt_error_set(BRT_ENOMEM, "out of memory for a request body of %zu bytes",
					     cap);
		}
		body->data = p;
		body->budget = budget;
		body->cap = cap;
		body->charged = cap;
	}
	if (len)
		memcpy(body->data + body->len, data, len);
	body->len = need;
	return 0;
}

void brt_http_body_free(brt_http_body *body)
{
	free(body->data);
	if (body->charged)
		budget_give(body->budget, body->charged);
	memset(body, 0, sizeof(*body));
}
