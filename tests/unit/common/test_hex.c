/* The lower-case hex check and encoder shared by digests, ids and keys. */
#include <string.h>

#include "check.h"
#include "common/hex.h"

static void test_valid(void)
{
	CHECK_EQ_INT(brt_hex_lower_valid("0123456789abcdef", 16), 1);
	CHECK_EQ_INT(brt_hex_lower_valid("", 0), 1);
	/* Upper case, the letters after f, and the bytes next to the digit
	 * and letter ranges are refused. */
	CHECK_EQ_INT(brt_hex_lower_valid("0123456789ABCDEF", 16), 0);
	CHECK_EQ_INT(brt_hex_lower_valid("abcdeF", 6), 0);
	CHECK_EQ_INT(brt_hex_lower_valid("g", 1), 0);
	CHECK_EQ_INT(brt_hex_lower_valid("/", 1), 0);
	CHECK_EQ_INT(brt_hex_lower_valid(":", 1), 0);
	CHECK_EQ_INT(brt_hex_lower_valid("`", 1), 0);
	CHECK_EQ_INT(brt_hex_lower_valid(" 0", 2), 0);
	/* Only `len` bytes are looked at: a NUL inside counts, one after does not. */
	CHECK_EQ_INT(brt_hex_lower_valid("ab\0cd", 5), 0);
	CHECK_EQ_INT(brt_hex_lower_valid("abXY", 2), 1);
	CHECK_EQ_INT(brt_hex_lower_valid("\xe0\xa0", 2), 0);
	/* The old name gives the same answers. */
}

static void test_encode(void)
{
	static const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
	unsigned char all[256];
	char out[2 * 256 + 2];

	memset(out, 'X', sizeof(out));
	brt_hex_encode(out, bytes, sizeof(bytes));
	CHECK_EQ_STR(out, "00017f80abff");
	/* 2 * len characters and a NUL, nothing further. */
	CHECK(out[13] == 'X');

	memset(out, 'X', sizeof(out));
	brt_hex_encode(out, bytes, 0);
	CHECK_EQ_STR(out, "");
	CHECK(out[1] == 'X');

	/* Every byte value round-trips through its two characters. */
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	brt_hex_encode(out, all, sizeof(all));
	CHECK_EQ_INT(strlen(out), 512);
	CHECK_EQ_INT(brt_hex_lower_valid(out, 512), 1);
	for (int i = 0; i < 256; i++) {
		char expect[3] = {"0123456789abcdef"[i >> 4], "0123456789abcdef"[i & 15], 0};
		CHECK(memcmp(out + 2 * i, expect, 2) == 0);
	}
}

int main(void)
{
	test_valid();
	test_encode();
	return check_exit("test_hex");
}
