/* Request bodies held in memory (e.g. manifests): a buffer with a hard cap
 * per body, charged against one budget shared by every connection, so that
 * clients that stall many bodies cannot pin memory without bound. */
#ifndef BRT_HTTP_BODY_H
#define BRT_HTTP_BODY_H

#include <stdatomic.h>
#include <stddef.h>

/* Bytes of bodies held at once, across the server. */
typedef struct brt_http_budget {
	_Atomic size_t used;
	size_t limit;
} brt_http_budget;

/* One body.  Start zeroed; the budget is remembered on the first append. */
typedef struct brt_http_body {
	unsigned char *data; /* malloc'd */
	size_t len, cap;
	size_t charged; /* bytes of cap taken from the budget */
	brt_http_budget *budget;
} brt_http_body;

/* Append `len` bytes; the body grows (by doubling) up to `max` bytes.
 * BRT_ETOOBIG past `max`; BRT_ELIMIT when the budget is spent, a transient
 * condition worth a retry; BRT_ENOMEM.  Detail in brt_error_last.  On
 * failure the body is unchanged. */
int brt_http_body_append(brt_http_body *body, brt_http_budget *budget, const void *data, size_t len,
			 size_t max);

/* Free the memory and give it back to the budget; the body is zeroed and
 * may be used again.  Safe to call more than once. */
void brt_http_body_free(brt_http_body *body);

#endif
