/* The per-request memory pool (common/pool.h): every allocation aligned for
 * any type and usable to its full length without touching another, the
 * hard cap (a failed allocation is NULL and leaves the pool usable), the
 * string helpers, and clear-then-reuse with the whole cap available again. */
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/pool.h"

#define KIB ((size_t)1024)

static int aligned(const void *p)
{
	return (uintptr_t)p % alignof(max_align_t) == 0;
}

/* Sizes that straddle the in-struct buffer, the chunk size and odd lengths. */
static const size_t sizes[] = {1,    3,    7,    16,   17,   31,   100,  255,
			       1000, 1024, 1025, 4000, 8191, 8192, 8193, 20000};
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))

static void test_alloc_aligned_and_disjoint(void)
{
	brt_pool pool;
	unsigned char *blocks[3 * N_SIZES];
	size_t lens[3 * N_SIZES];
	size_t n = 0;

	brt_pool_init(&pool, 4 * KIB * KIB);
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < N_SIZES; i++) {
			unsigned char *p = brt_pool_alloc(&pool, sizes[i]);

			CHECK(p != NULL);
			if (!p)
				continue;
			CHECK(aligned(p));
			/* every byte promised is writable (ASan would see
			 * an overrun), and the fill checks overlaps below */
			memset(p, (int)(n & 0xff), sizes[i]);
			blocks[n] = p;
			lens[n] = sizes[i];
			n++;
		}
	}
	for (size_t i = 0; i < n; i++) {
		size_t bad = 0;

		for (size_t j = 0; j < lens[i]; j++)
			bad += blocks[i][j] != (unsigned char)(i & 0xff);
		CHECK_EQ_INT(bad, 0);
	}

	/* any type may live in pool memory */
	{
		long double *ld = brt_pool_alloc(&pool, sizeof(*ld));
		uint64_t *u = brt_pool_alloc(&pool, 3 * sizeof(*u));
		double *d;

		CHECK(ld && u);
		(void)brt_pool_alloc(&pool, 1);
		d = brt_pool_alloc(&pool, sizeof(*d));
		CHECK(d && aligned(d));
		if (ld && u && d) {
			*ld = 1.5L;
			u[0] = UINT64_MAX;
			u[2] = 42;
			*d = 2.25;
			CHECK(*ld == 1.5L && u[0] == UINT64_MAX && u[2] == 42 && *d == 2.25);
		}
	}
	brt_pool_clear(&pool);
}

/* Past the cap: NULL, never a partial block; what was handed out stays
 * intact and a smaller request that fits still succeeds. */
static void test_cap(void)
{
	brt_pool pool;
	const size_t cap = 256 * KIB;
	size_t handed_out = 0;
	unsigned char *first;
	int blocks = 0;

	brt_pool_init(&pool, cap);
	first = brt_pool_alloc(&pool, 100);
	CHECK(first != NULL);
	if (first)
		memset(first, 0xab, 100);
	handed_out += 100;
	/* 4 KiB at a time until the pool says no */
	for (;;) {
		unsigned char *p = brt_pool_alloc(&pool, 4 * KIB);

		if (!p)
			break;
		memset(p, 0x5a, 4 * KIB);
		handed_out += 4 * KIB;
		if (++blocks > 1000)
			break;
	}
	CHECK(blocks <= 1000); /* the loop ended on NULL, not on the guard */
	/* The cap bounds the heap; only the pool's own 1 KiB in-struct
	 * buffer (pool.c) comes on top of it. */
	CHECK(handed_out <= cap + sizeof(pool.inline_buf));
	/* ...and the pool does not give up far below it either */
	CHECK(handed_out >= cap / 2);
	/* a request larger than the whole cap fails at once */
	CHECK(brt_pool_alloc(&pool, cap + 1) == NULL);
	CHECK(brt_pool_alloc(&pool, 64 * KIB) == NULL);
	/* absurd sizes fail cleanly instead of wrapping around */
	CHECK(brt_pool_alloc(&pool, SIZE_MAX) == NULL);
	CHECK(brt_pool_alloc(&pool, SIZE_MAX / 2 + 1) == NULL);
	CHECK(brt_pool_alloc(&pool, SIZE_MAX - 15) == NULL);
	/* earlier blocks are untouched by the failures */
	if (first) {
		size_t bad = 0;

		for (size_t i = 0; i < 100; i++)
			bad += first[i] != 0xab;
		CHECK_EQ_INT(bad, 0);
	}
	/* the string helpers fail the same way at the cap */
	{
		char *big = malloc(64 * KIB);

		CHECK(big != NULL);
		if (big) {
			memset(big, 'x', 64 * KIB - 1);
			big[64 * KIB - 1] = '\0';
			CHECK(brt_pool_strdup(&pool, big) == NULL);
			CHECK(brt_pool_strndup(&pool, big, 64 * KIB - 1) == NULL);
			CHECK(brt_pool_printf(&pool, "%s%s", big, big) == NULL);
			free(big);
		}
	}
	brt_pool_clear(&pool);

	/* a pool whose cap allows no heap at all still fails cleanly once
	 * the request is larger than anything it could hold */
	brt_pool_init(&pool, 0);
	CHECK(brt_pool_alloc(&pool, 2 * KIB) == NULL);
	CHECK(brt_pool_alloc(&pool, 16 * KIB) == NULL);
	brt_pool_clear(&pool);
}

/* One allocation as large as the cap allows minus bookkeeping (a manifest
 * body of the largest accepted size is copied into a request's pool). */
static void test_one_large_block(void)
{
	brt_pool pool;
	const size_t max = 4 * KIB * KIB;
	unsigned char *p;

	brt_pool_init(&pool, max + KIB * KIB); /* as src/http/server.c sizes it */
	p = brt_pool_alloc(&pool, max + 1);
	CHECK(p != NULL);
	if (p) {
		CHECK(aligned(p));
		memset(p, 1, max + 1);
	}
	/* smaller allocations still fit in the remaining budget */
	CHECK(brt_pool_alloc(&pool, 100) != NULL);
	CHECK(brt_pool_strdup(&pool, "after a large block") != NULL);
	brt_pool_clear(&pool);
}

static void test_strings(void)
{
	brt_pool pool;
	char raw[5] = {'a', 'b', '\0', 'd', 'e'}; /* no terminator of its own */
	char long_src[3000];
	char *s;

	brt_pool_init(&pool, KIB * KIB);

	s = brt_pool_strdup(&pool, "registry");
	CHECK_EQ_STR(s, "registry");
	s = brt_pool_strdup(&pool, "");
	CHECK(s != NULL && s[0] == '\0');

	/* exactly len bytes of s, then a NUL: bytes past a NUL included,
	 * nothing read past len */
	s = brt_pool_strndup(&pool, raw, sizeof(raw));
	CHECK(s != NULL);
	if (s) {
		CHECK(memcmp(s, raw, sizeof(raw)) == 0);
		CHECK(s[sizeof(raw)] == '\0');
	}
	s = brt_pool_strndup(&pool, "abcdef", 3);
	CHECK_EQ_STR(s, "abc");
	s = brt_pool_strndup(&pool, "abcdef", 0);
	CHECK_EQ_STR(s, "");
	/* a copy, not the original */
	{
		char buf[] = "mutable";

		s = brt_pool_strdup(&pool, buf);
		buf[0] = 'M';
		CHECK_EQ_STR(s, "mutable");
	}
	/* longer than the in-struct buffer */
	memset(long_src, 'q', sizeof(long_src) - 1);
	long_src[sizeof(long_src) - 1] = '\0';
	s = brt_pool_strdup(&pool, long_src);
	CHECK(s != NULL && strlen(s) == sizeof(long_src) - 1 && s[0] == 'q');

	s = brt_pool_printf(&pool, "%s/%s:%d", "acct", "app", 42);
	CHECK_EQ_STR(s, "acct/app:42");
	s = brt_pool_printf(&pool, "%s", "");
	CHECK(s != NULL && s[0] == '\0');
	s = brt_pool_printf(&pool, "%zu-%llu", (size_t)7, 18446744073709551615ull);
	CHECK_EQ_STR(s, "7-18446744073709551615");
	/* output longer than the in-struct buffer: sized exactly */
	s = brt_pool_printf(&pool, "<%s>", long_src);
	CHECK(s != NULL && strlen(s) == sizeof(long_src) + 1 && s[0] == '<' && s[sizeof(long_src)] == '>');
	/* every string helper returns memory aligned like alloc does, so
	 * odd lengths do not misalign what follows */
	(void)brt_pool_strdup(&pool, "odd");
	CHECK(aligned(brt_pool_alloc(&pool, sizeof(double))));
	brt_pool_clear(&pool);
}

/* clear gives everything back: the whole cap is available again, as often
 * as the pool is reused; clearing a fresh or cleared pool is harmless. */
static void test_clear_and_reuse(void)
{
	brt_pool pool;
	const size_t cap = 128 * KIB;
	size_t first_round = 0;

	brt_pool_init(&pool, cap);
	brt_pool_clear(&pool);
	brt_pool_clear(&pool);
	for (int round = 0; round < 5; round++) {
		size_t got = 0;
		char *s;

		while (brt_pool_alloc(&pool, 2 * KIB))
			got += 2 * KIB;
		CHECK(got > 0);
		if (round == 0)
			first_round = got;
		CHECK_EQ_INT(got, first_round);
		brt_pool_clear(&pool);
		s = brt_pool_printf(&pool, "round %d", round);
		CHECK(s != NULL && strncmp(s, "round ", 6) == 0);
		brt_pool_clear(&pool);
	}
	/* after clear the pool is as good as new */
	CHECK(brt_pool_alloc(&pool, 64 * KIB) != NULL);
	brt_pool_clear(&pool);
}

int main(void)
{
	test_alloc_aligned_and_disjoint();
	test_cap();
	test_one_large_block();
	test_strings();
	test_clear_and_reuse();
	return check_exit("test_pool");
}
