/* Tests for oci/range: the `Range` header of blob GETs (one range, suffix
 * and open-ended forms, clamping, 416 cases) and the `Content-Range`
 * header of upload PATCHes (OCI and RFC forms, overflow). */
#include <stdint.h>

#include "check.h"
#include "common/error.h"
#include "oci/range.h"

static void check_range(const char *header, uint64_t size, int want_rc, uint64_t want_start,
			uint64_t want_len)
{
	uint64_t start = 777, len = 777;
	int rc = brt_parse_range(&start, &len, header, size);

	if (rc != want_rc)
		fprintf(stderr, "range \"%s\" size %llu\n", header ? header : "(null)",
			(unsigned long long)size);
	CHECK_EQ_INT(rc, want_rc);
	if (want_rc == 0) {
		CHECK_EQ_INT(start, want_start);
		CHECK_EQ_INT(len, want_len);
	} else {
		CHECK_EQ_INT(start, 777);
		CHECK_EQ_INT(len, 777);
	}
}

static void test_range_forms(void)
{
	check_range("bytes=0-0", 10, 0, 0, 1);
	check_range("bytes=0-9", 10, 0, 0, 10);
	check_range("bytes=2-5", 10, 0, 2, 4);
	check_range("bytes=9-9", 10, 0, 9, 1);
	check_range("bytes=5-", 10, 0, 5, 5);
	check_range("bytes=0-", 10, 0, 0, 10);
	check_range("bytes=9-", 10, 0, 9, 1);
	check_range("bytes=-3", 10, 0, 7, 3);
	check_range("bytes=-10", 10, 0, 0, 10);
	check_range("bytes=-1", 1, 0, 0, 1);
	check_range("bytes=007-008", 10, 0, 7, 2);
	/* The unit is case-insensitive; whitespace around the value is OWS. */
	check_range("Bytes=1-2", 10, 0, 1, 2);
	check_range("BYTES=1-2", 10, 0, 1, 2);
	check_range("  bytes=1-2  ", 10, 0, 1, 2);
	check_range("bytes= 1-2\t", 10, 0, 1, 2);
}

static void test_range_clamping(void)
{
	/* An end past the blob is clamped to the last byte. */
	check_range("bytes=0-100", 10, 0, 0, 10);
	check_range("bytes=5-18446744073709551615", 10, 0, 5, 5);
	check_range("bytes=5-99999999999999999999999", 10, 0, 5, 5);
	/* A suffix longer than the blob is the whole blob. */
	check_range("bytes=-100", 10, 0, 0, 10);
	check_range("bytes=-99999999999999999999999", 10, 0, 0, 10);
	/* Largest sizes. */
	check_range("bytes=0-", UINT64_MAX, 0, 0, UINT64_MAX);
	check_range("bytes=18446744073709551614-", UINT64_MAX, 0, UINT64_MAX - 1, 1);
	check_range("bytes=-18446744073709551615", UINT64_MAX, 0, 0, UINT64_MAX);
}

static void test_range_unsatisfiable(void)
{
	check_range("bytes=10-", 10, BRT_ERANGE, 0, 0);
	check_range("bytes=10-20", 10, BRT_ERANGE, 0, 0);
	check_range("bytes=11-", 10, BRT_ERANGE, 0, 0);
	check_range("bytes=0-0", 0, BRT_ERANGE, 0, 0);
	check_range("bytes=0-", 0, BRT_ERANGE, 0, 0);
	check_range("bytes=-0", 10, BRT_ERANGE, 0, 0);
	check_range("bytes=-5", 0, BRT_ERANGE, 0, 0);
	check_range("bytes=99999999999999999999999-", 10, BRT_ERANGE, 0, 0);
	check_range("bytes=99999999999999999999998-99999999999999999999999", 10, BRT_ERANGE, 0, 0);
	check_range("bytes=18446744073709551615-", UINT64_MAX, BRT_ERANGE, 0, 0);
}

static void test_range_invalid(void)
{
	check_range(NULL, 10, BRT_EINVALID, 0, 0);
	check_range("", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=-", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=5", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=10-5", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=10-5", 100, BRT_EINVALID, 0, 0);
	check_range("bytes=1-0", 10, BRT_EINVALID, 0, 0);
	/* Order is checked exactly even when both ends overflow 64 bits. */
	check_range("bytes=99999999999999999999999-99999999999999999999998", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=099999999999999999999999-99999999999999999999999", 10, BRT_ERANGE, 0, 0);
	check_range("bytes=0-1,3-4", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=0-1, 3-4", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=0-1,", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=1 - 2", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=1- 2", 10, BRT_EINVALID, 0, 0);
	check_range("bytes = 1-2", 10, BRT_EINVALID, 0, 0);
	check_range("bytes:1-2", 10, BRT_EINVALID, 0, 0);
	check_range("items=1-2", 10, BRT_EINVALID, 0, 0);
	check_range("1-2", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=-1-2", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=1-2-3", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=+1-2", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=0x1-2", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=a-b", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=--3", 10, BRT_EINVALID, 0, 0);
	check_range("bytes=-+3", 10, BRT_EINVALID, 0, 0);
	/* Malformed beats unsatisfiable: the header is ignored, not 416. */
	check_range("bytes=20-10", 10, BRT_EINVALID, 0, 0);
}

static void check_content_range(const char *header, int want_rc, uint64_t want_start, uint64_t want_end)
{
	uint64_t start = 777, end = 777;
	int rc = brt_parse_content_range(&start, &end, header);

	if (rc != want_rc)
		fprintf(stderr, "content-range \"%s\"\n", header ? header : "(null)");
	CHECK_EQ_INT(rc, want_rc);
	if (want_rc == 0) {
		CHECK_EQ_INT(start, want_start);
		CHECK_EQ_INT(end, want_end);
	} else {
		CHECK_EQ_INT(start, 777);
		CHECK_EQ_INT(end, 777);
	}
}

static void test_content_range(void)
{
	check_content_range("0-0", 0, 0, 0);
	check_content_range("0-9", 0, 0, 9);
	check_content_range("10-19", 0, 10, 19);
	check_content_range("5-5", 0, 5, 5);
	check_content_range("bytes 0-9", 0, 0, 9);
	check_content_range("bytes 0-9/10", 0, 0, 9);
	check_content_range("bytes 0-9/*", 0, 0, 9);
	check_content_range("0-9/10", 0, 0, 9);
	check_content_range("0-9/*", 0, 0, 9);
	check_content_range("Bytes 0-9/100", 0, 0, 9);
	check_content_range(" 0-9 ", 0, 0, 9);
	check_content_range("bytes  0-9", 0, 0, 9);
	check_content_range("18446744073709551614-18446744073709551614", 0, UINT64_MAX - 1, UINT64_MAX - 1);
	check_content_range("0-18446744073709551615", 0, 0, UINT64_MAX);
	/* A total too large for 64 bits is still above any end. */
	check_content_range("0-9/99999999999999999999999", 0, 0, 9);

	check_content_range(NULL, BRT_EINVALID, 0, 0);
	check_content_range("", BRT_EINVALID, 0, 0);
	check_content_range("5-4", BRT_EINVALID, 0, 0);
	check_content_range("bytes 5-4/10", BRT_EINVALID, 0, 0);
	check_content_range("0-", BRT_EINVALID, 0, 0);
	check_content_range("-9", BRT_EINVALID, 0, 0);
	check_content_range("-", BRT_EINVALID, 0, 0);
	check_content_range("9", BRT_EINVALID, 0, 0);
	check_content_range("bytes", BRT_EINVALID, 0, 0);
	check_content_range("bytes ", BRT_EINVALID, 0, 0);
	check_content_range("bytes */10", BRT_EINVALID, 0, 0);
	check_content_range("bytes=0-9", BRT_EINVALID, 0, 0);
	check_content_range("0-18446744073709551616", BRT_EINVALID, 0, 0);
	check_content_range("99999999999999999999999-99999999999999999999999", BRT_EINVALID, 0, 0);
	check_content_range("0-9/", BRT_EINVALID, 0, 0);
	check_content_range("0-9/x", BRT_EINVALID, 0, 0);
	check_content_range("0-9/9", BRT_EINVALID, 0, 0);
	check_content_range("0-9/5", BRT_EINVALID, 0, 0);
	check_content_range("0-9/10/11", BRT_EINVALID, 0, 0);
	check_content_range("0-9/-1", BRT_EINVALID, 0, 0);
	check_content_range("0 -9", BRT_EINVALID, 0, 0);
	check_content_range("0- 9", BRT_EINVALID, 0, 0);
	check_content_range("+0-9", BRT_EINVALID, 0, 0);
	check_content_range("0-9,10-19", BRT_EINVALID, 0, 0);
	check_content_range("0-1-2", BRT_EINVALID, 0, 0);
}

int main(void)
{
	test_range_forms();
	test_range_clamping();
	test_range_unsatisfiable();
	test_range_invalid();
	test_content_range();
	return check_exit("test_range");
}
