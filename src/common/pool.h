/* A per-request memory pool: many small allocations, freed in one go when
 * the request ends.  Every pool has a hard cap so a client cannot make a
 * request grow without bound; allocation past the cap fails (NULL). */
#ifndef BRT_POOL_H
#define BRT_POOL_H

#include <stdarg.h>
#include <stddef.h>

typedef struct brt_pool_chunk brt_pool_chunk;

typedef struct brt_pool {
	brt_pool_chunk *chunks;
	size_t used_total; /* bytes handed out plus chunk overhead */
	size_t cap;        /* hard limit on used_total */
	_Alignas(max_align_t) char inline_buf[1024];
	size_t inline_used;
} brt_pool;

/* Prepare `pool` with a hard cap of `cap` bytes.  Never fails. */
void brt_pool_init(brt_pool *pool, size_t cap);

/* Free everything allocated from `pool`; it may be used again after. */
void brt_pool_clear(brt_pool *pool);

/* `len` bytes aligned for any type, or NULL past the cap / out of memory.
 * Owned by the pool. */
void *brt_pool_alloc(brt_pool *pool, size_t len);

/* A NUL-terminated copy of `len` bytes of `s`; NULL on failure. */
char *brt_pool_strndup(brt_pool *pool, const char *s, size_t len);
char *brt_pool_strdup(brt_pool *pool, const char *s);

/* printf into pool memory; NULL on failure. */
char *brt_pool_printf(brt_pool *pool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
