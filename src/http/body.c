/* Request bodies held in memory (manifests): a buffer per request with a
 * hard cap, charged against one budget for the whole server. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "http/request.h"
#include "http/server.h"

#define BODY_FIRST_CAP 16384
/* Bodies up to this size (nearly every real manifest) may use the whole
 * budget; larger ones only the first three quarters, so that clients that
 * stall large bodies cannot keep ordinary pushes out. */
#define BODY_SMALL_MAX (64 * 1024)

/* Take `n` bytes from the budget for a body growing to `cap` bytes, or
 * fail if that would exceed what such a body may use. */
static int budget_take(brt_server *server, size_t n, size_t cap)
{
	size_t limit = server->config->body_memory;
	size_t used = atomic_load(&server->body_memory_used);
	size_t want;

	if (cap > BODY_SMALL_MAX)
		limit -= limit / 4;
	do {
		if (__builtin_add_overflow(used, n, &want) || want > limit)
			return brt_error_set(BRT_ELIMIT, "the server holds as many request bodies in memory as it "
							 "may (http.body_memory_limit); retry shortly");
	} while (!atomic_compare_exchange_weak(&server->body_memory_used, &used, want));
	return 0;
}

static void budget_give(brt_server *server, size_t n)
{
	atomic_fetch_sub(&server->body_memory_used, n);
}

int brt_request_body_append(brt_request *req, const void *data, size_t len, size_t max)
{
	size_t need, cap;
	unsigned char *p;
	int error;

	if (__builtin_add_overflow(req->body_len, len, &need) || need > max)
		return brt_error_set(BRT_ETOOBIG, "body is larger than the limit of %zu bytes", max);
	if (need > req->body_cap) {
		/* Grow by doubling so a client is charged for about what it sent,
		 * not for what it announced. */
		cap = req->body_cap ? req->body_cap : BODY_FIRST_CAP;
		while (cap < need && cap <= max / 2)
			cap *= 2;
		if (cap < need || cap > max)
			cap = max;
		if ((error = budget_take(req->server, cap - req->body_charged, cap)) < 0)
			return error;
		p = realloc(req->body, cap);
		if (!p) {
			budget_give(req->server, cap - req->body_charged);
			return brt_error_set(BRT_ENOMEM, "out of memory for a request body of %zu bytes", cap);
		}
		req->body = p;
		req->body_cap = cap;
		req->body_charged = cap;
	}
	if (len)
		memcpy(req->body + req->body_len, data, len);
	req->body_len = need;
	return 0;
}

void brt_request_body_free(brt_request *req)
{
	free(req->body);
	if (req->body_charged)
		budget_give(req->server, req->body_charged);
	req->body = NULL;
	req->body_len = 0;
	req->body_cap = 0;
	req->body_charged = 0;
}
