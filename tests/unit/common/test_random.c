/* Kernel randomness: lengths, hex form, odd lengths, large requests that
 * getrandom answers in several short reads, and that draws differ. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/error.h"
#include "common/hex.h"
#include "common/random.h"

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void test_bytes(void)
{
	unsigned char a[64], b[64];
	/* More than getrandom's 32 MiB per call: only the short-read loop
	 * can fill it. */
	size_t big_len = 40u << 20;
	unsigned char *big = calloc(1, big_len);

	CHECK_EQ_INT(brt_random_bytes(a, 0), 0);
	CHECK_EQ_INT(brt_random_bytes(a, sizeof(a)), 0);
	CHECK_EQ_INT(brt_random_bytes(b, sizeof(b)), 0);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
	CHECK(!all_zero(a, sizeof(a)));

	CHECK(big != NULL);
	if (big) {
		CHECK_EQ_INT(brt_random_bytes(big, big_len), 0);
		/* The tail, past the first call's 32 MiB, was written too. */
		CHECK(!all_zero(big + big_len - 4096, 4096));
		CHECK(!all_zero(big + (33u << 20), 4096));
		free(big);
	}
}

static void test_hex(void)
{
	static const size_t lengths[] = {0, 1, 2, 31, 32, 33, 63, 64, 65, 128, 129, 300};
	char buf[310], prev[310];
	int seen_odd[16] = {0};

	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		size_t len = lengths[i];

		memset(buf, 'X', sizeof(buf));
		CHECK_EQ_INT(brt_random_hex(buf, len), 0);
		CHECK_EQ_INT(strlen(buf), len);
		CHECK_EQ_INT(brt_hex_lower_valid(buf, len), 1);
		CHECK(buf[len + 1] == 'X');
	}

	/* Past the 64 characters of one chunk the draw goes on: no repeat
	 * of the first chunk, and two draws differ. */
	CHECK_EQ_INT(brt_random_hex(buf, 300), 0);
	CHECK(memcmp(buf, buf + 64, 64) != 0);
	CHECK_EQ_INT(brt_random_hex(prev, 300), 0);
	CHECK(memcmp(buf, prev, 300) != 0);

	/* The last character of an odd length is random, not a fixed nibble:
	 * over 200 draws every digit turns up. */
	for (int round = 0; round < 200; round++) {
		CHECK_EQ_INT(brt_random_hex(buf, 65), 0);
		char c = buf[64];
		seen_odd[c <= '9' ? c - '0' : c - 'a' + 10]++;
	}
	for (int d = 0; d < 16; d++)
		CHECK(seen_odd[d] > 0);
}

int main(void)
{
	test_bytes();
	test_hex();
	return check_exit("test_random");
}
