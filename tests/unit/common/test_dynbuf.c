/* The capped growable buffer: appends, the NUL after the content, the
 * cap (exactly at it, one past it, and arithmetic that would wrap),
 * printf appends, reset, take and free. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/dynbuf.h"
#include "common/error.h"

static void test_add(void)
{
	brt_dynbuf b;
	char big[1000];

	brt_dynbuf_init(&b, 1 << 20);
	CHECK(brt_dynbuf_ptr(&b) == NULL);
	CHECK_EQ_INT(brt_dynbuf_len(&b), 0);
	CHECK_EQ_INT(brt_dynbuf_add(&b, "abc", 3), 0);
	CHECK_EQ_INT(brt_dynbuf_add(&b, "", 0), 0);
	CHECK_EQ_INT(brt_dynbuf_add(&b, "def", 3), 0);
	CHECK_EQ_STR(brt_dynbuf_ptr(&b), "abcdef");
	CHECK_EQ_INT(brt_dynbuf_len(&b), 6);

	/* Binary content with NULs of its own, and growth past the first
	 * allocation keeps what was there. */
	CHECK_EQ_INT(brt_dynbuf_add(&b, "x\0y", 3), 0);
	CHECK_EQ_INT(brt_dynbuf_len(&b), 9);
	CHECK(memcmp(brt_dynbuf_ptr(&b), "abcdefx\0y", 10) == 0);
	memset(big, 'z', sizeof(big));
	CHECK_EQ_INT(brt_dynbuf_add(&b, big, sizeof(big)), 0);
	CHECK_EQ_INT(brt_dynbuf_len(&b), 1009);
	CHECK(memcmp(brt_dynbuf_ptr(&b), "abcdefx\0y", 9) == 0);
	CHECK(brt_dynbuf_ptr(&b)[1008] == 'z' && brt_dynbuf_ptr(&b)[1009] == '\0');

	/* Reset empties but keeps the memory. */
	{
		char *before = brt_dynbuf_ptr(&b);

		brt_dynbuf_reset(&b);
		CHECK_EQ_INT(brt_dynbuf_len(&b), 0);
		CHECK_EQ_STR(brt_dynbuf_ptr(&b), "");
		CHECK_EQ_INT(brt_dynbuf_add(&b, "q", 1), 0);
		CHECK(brt_dynbuf_ptr(&b) == before);
		CHECK_EQ_STR(brt_dynbuf_ptr(&b), "q");
	}
	brt_dynbuf_free(&b);
	CHECK(brt_dynbuf_ptr(&b) == NULL);
	CHECK_EQ_INT(brt_dynbuf_len(&b), 0);
	/* Usable again after free, with the same cap. */
	CHECK_EQ_INT(brt_dynbuf_add(&b, "again", 5), 0);
	CHECK_EQ_STR(brt_dynbuf_ptr(&b), "again");
	brt_dynbuf_free(&b);
	brt_dynbuf_free(&b);
}

static void test_cap(void)
{
	brt_dynbuf b;

	/* Exactly the cap fits; one byte more is BRT_ETOOBIG and leaves the
	 * content as it was. */
	brt_dynbuf_init(&b, 10);
	CHECK_EQ_INT(brt_dynbuf_add(&b, "0123456", 7), 0);
	CHECK_EQ_INT(brt_dynbuf_add(&b, "7890", 4), BRT_ETOOBIG);
	CHECK_EQ_INT(brt_dynbuf_len(&b), 7);
	CHECK_EQ_STR(brt_dynbuf_ptr(&b), "0123456");
	CHECK_EQ_INT(brt_dynbuf_add(&b, "789", 3), 0);
	CHECK_EQ_STR(brt_dynbuf_ptr(&b), "0123456789");
	CHECK_EQ_INT(brt_dynbuf_add(&b, "x", 1), BRT_ETOOBIG);
	CHECK_EQ_INT(brt_dynbuf_add(&b, "", 0), 0);
	/* The allocation never outgrows the cap and its NUL. */
	CHECK(b.alloc <= 11);
	brt_dynbuf_free(&b);

	/* A length that would wrap size_t is refused before any arithmetic
	 * can wrap, even with no cap to speak of. */
	brt_dynbuf_init(&b, SIZE_MAX);
	CHECK_EQ_INT(brt_dynbuf_add(&b, "ab", 2), 0);
	CHECK_EQ_INT(brt_dynbuf_add(&b, "ab", SIZE_MAX - 1), BRT_ETOOBIG);
	CHECK_EQ_INT(brt_dynbuf_add(&b, "ab", SIZE_MAX), BRT_ETOOBIG);
	CHECK_EQ_STR(brt_dynbuf_ptr(&b), "ab");
	brt_dynbuf_free(&b);

	/* A cap of zero holds nothing at all. */
	brt_dynbuf_init(&b, 0);
	CHECK_EQ_INT(brt_dynbuf_add(&b, "a", 1), BRT_ETOOBIG);
	CHECK_EQ_INT(brt_dynbuf_add(&b, "", 0), 0);
	CHECK_EQ_INT(brt_dynbuf_len(&b), 0);
	brt_dynbuf_free(&b);
}

static void test_addf(void)
{
	brt_dynbuf b;
	char *p;
	size_t len = 99;

	brt_dynbuf_init(&b, 16);
	CHECK_EQ_INT(brt_dynbuf_addf(&b, "%s-%d", "ab", 42), 0);
	CHECK_EQ_INT(brt_dynbuf_addf(&b, "%c", 'z'), 0);
	CHECK_EQ_STR(brt_dynbuf_ptr(&b), "ab-42z");
	CHECK_EQ_INT(brt_dynbuf_len(&b), 6);
	/* Formatted text past the cap: refused whole, nothing half-written. */
	CHECK_EQ_INT(brt_dynbuf_addf(&b, "%0*d", 11, 7), BRT_ETOOBIG);
	CHECK_EQ_STR(brt_dynbuf_ptr(&b), "ab-42z");
	CHECK_EQ_INT(brt_dynbuf_addf(&b, "%0*d", 10, 7), 0);
	CHECK_EQ_STR(brt_dynbuf_ptr(&b), "ab-42z0000000007");
	CHECK_EQ_INT(brt_dynbuf_addf(&b, "%s", ""), 0);

	/* take hands over the memory and leaves an empty buffer. */
	p = brt_dynbuf_take(&b, &len);
	CHECK_EQ_STR(p, "ab-42z0000000007");
	CHECK_EQ_INT(len, 16);
	CHECK(brt_dynbuf_ptr(&b) == NULL);
	CHECK_EQ_INT(brt_dynbuf_len(&b), 0);
	free(p);
	CHECK(brt_dynbuf_take(&b, &len) == NULL);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(brt_dynbuf_addf(&b, "%d", 5), 0);
	CHECK_EQ_STR(brt_dynbuf_ptr(&b), "5");
	brt_dynbuf_free(&b);
}

int main(void)
{
	test_add();
	test_cap();
	test_addf();
	return check_exit("test_dynbuf");
}
