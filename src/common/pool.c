/* Chunked bump allocator behind brt_pool (see pool.h).  The first 1 KiB
 * lives inside the pool struct, so most small requests never call malloc. */
#include "common/pool.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct brt_pool_chunk {
	brt_pool_chunk *next;
	size_t size;
	size_t used;
	max_align_t data[]; /* aligned storage */
};

#define POOL_ALIGN (sizeof(max_align_t))
#define POOL_CHUNK_MIN 8192

static size_t align_up(size_t n)
{
	return (n + POOL_ALIGN - 1) & ~(POOL_ALIGN - 1);
}

void brt_pool_init(brt_pool *pool, size_t cap)
{
	pool->chunks = NULL;
	pool->used_total = 0;
	pool->cap = cap;
	pool->inline_used = 0;
}

void brt_pool_clear(brt_pool *pool)
{
	brt_pool_chunk *c = pool->chunks;

	while (c) {
		brt_pool_chunk *next = c->next;
		free(c);
		c = next;
	}
	pool->chunks = NULL;
	pool->used_total = 0;
	pool->inline_used = 0;
}

void *brt_pool_alloc(brt_pool *pool, size_t len)
{
	size_t need;
	brt_pool_chunk *c;

	if (len == 0)
		len = 1;
	if (len > SIZE_MAX / 2)
		return NULL;
	need = align_up(len);
	if (pool->inline_used + need <= sizeof(pool->inline_buf)) {
		void *p = pool->inline_buf + pool->inline_used;
		pool->inline_used += need;
		return p;
	}
	c = pool->chunks;
	if (!c || c->size - c->used < need) {
		size_t size = need > POOL_CHUNK_MIN ? need : POOL_CHUNK_MIN;
		size_t total = sizeof(*c) + size;
		if (pool->used_total + total > pool->cap)
			return NULL;
		c = malloc(total);
		if (!c)
			return NULL;
		c->next = pool->chunks;
		c->size = size;
		c->used = 0;
		pool->chunks = c;
		pool->used_total += total;
	}
	{
		void *p = (char *)c->data + c->used;
		c->used += need;
		return p;
	}
}

char *brt_pool_strndup(brt_pool *pool, const char *s, size_t len)
{
	char *p = brt_pool_alloc(pool, len + 1);

	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *brt_pool_strdup(brt_pool *pool, const char *s)
{
	return brt_pool_strndup(pool, s, strlen(s));
}

char *brt_pool_printf(brt_pool *pool, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	p = brt_pool_alloc(pool, (size_t)n + 1);
	if (!p)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}
