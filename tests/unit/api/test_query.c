/* Tests for api/query: pagination parameters (n capped, last bounded,
 * empty last meaning none) and the upload parameters (mount wins over
 * digest, an invalid source repository falls back to a session, empty and
 * malformed digests refused). */
#include <string.h>

#include "api/query.h"
#include "check.h"
#include "common/error.h"

#define D256 "sha256:1111111111111111111111111111111111111111111111111111111111111111"

static void test_page(void)
{
	char long_last[BRT_QUERY_LAST_MAX + 2];
	const char *last;
	size_t n;

	CHECK_EQ_INT(brt_query_page(&n, &last, NULL, NULL, 100), 0);
	CHECK_EQ_INT(n, 100);
	CHECK(last == NULL);
	CHECK_EQ_INT(brt_query_page(&n, &last, "5", "b", 100), 0);
	CHECK_EQ_INT(n, 5);
	CHECK_EQ_STR(last, "b");
	CHECK_EQ_INT(brt_query_page(&n, &last, "0", "", 100), 0);
	CHECK_EQ_INT(n, 0);
	CHECK(last == NULL);
	CHECK_EQ_INT(brt_query_page(&n, &last, "100000000000000000000000", NULL, 100), 0);
	CHECK_EQ_INT(n, 100);
	static const char *const bad_n[] = {"", "-1", "+1", " 1", "1 ", "0x10", "1e3", "1.0", "abc"};
	for (size_t i = 0; i < sizeof(bad_n) / sizeof(bad_n[0]); i++) {
		CHECK_EQ_INT(brt_query_page(&n, &last, bad_n[i], "x", 100), BRT_EINVALID);
		CHECK_EQ_INT(n, 100);
		CHECK(last == NULL);
	}
	memset(long_last, 'a', sizeof(long_last) - 1);
	long_last[sizeof(long_last) - 1] = '\0';
	CHECK_EQ_INT(brt_query_page(&n, &last, NULL, long_last, 100), BRT_EINVALID);
	/* A good n beside a bad last: neither is used. */
	CHECK_EQ_INT(brt_query_page(&n, &last, "5", long_last, 100), BRT_EINVALID);
	CHECK_EQ_INT(n, 100);
	CHECK(last == NULL);
	long_last[BRT_QUERY_LAST_MAX] = '\0';
	CHECK_EQ_INT(brt_query_page(&n, &last, NULL, long_last, 100), 0);
	CHECK(last == long_last);
}

static void test_upload(void)
{
	brt_upload_query q;
	brt_digest d;

	CHECK_EQ_INT(brt_query_upload_post(&q, NULL, NULL, NULL), 0);
	CHECK_EQ_INT(q.kind, BRT_UPLOAD_START_SESSION);
	CHECK_EQ_INT(brt_query_upload_post(&q, NULL, NULL, "a/b"), 0);
	CHECK_EQ_INT(q.kind, BRT_UPLOAD_START_SESSION);
	CHECK_EQ_INT(brt_query_upload_post(&q, D256, NULL, NULL), 0);
	CHECK_EQ_INT(q.kind, BRT_UPLOAD_START_MONOLITHIC);
	CHECK_EQ_STR(q.digest.str, D256);
	CHECK_EQ_INT(brt_query_upload_post(&q, "", NULL, NULL), BRT_EINVALID);
	CHECK(brt_query_upload_post(&q, "sha256:abc", NULL, NULL) < 0);
	CHECK(brt_query_upload_post(&q,
				    "blake3:"
				    "1111111111111111111111111111111111111111111111111111111111111111",
				    NULL, NULL) < 0);
	/* mount wins over digest, even an invalid digest. */
	CHECK_EQ_INT(brt_query_upload_post(&q, "junk", D256, "a/b"), 0);
	CHECK_EQ_INT(q.kind, BRT_UPLOAD_START_MOUNT);
	CHECK_EQ_STR(q.from, "a/b");
	CHECK_EQ_STR(q.digest.str, D256);
	CHECK_EQ_INT(brt_query_upload_post(&q, NULL, D256, "A//b"), 0);
	CHECK(q.from == NULL);
	CHECK_EQ_INT(brt_query_upload_post(&q, NULL, D256, NULL), 0);
	CHECK(q.from == NULL);
	CHECK_EQ_INT(brt_query_upload_post(&q, D256, "", "a/b"), BRT_EINVALID);
	CHECK(brt_query_upload_post(&q, NULL, "sha256:" D256, "a/b") < 0);

	CHECK_EQ_INT(brt_query_upload_put(&d, D256), 0);
	CHECK_EQ_STR(d.str, D256);
	CHECK_EQ_INT(brt_query_upload_put(&d, NULL), BRT_EINVALID);
	CHECK_EQ_INT(brt_query_upload_put(&d, ""), BRT_EINVALID);
	CHECK(brt_query_upload_put(&d, "SHA256:1111") < 0);
}

int main(void)
{
	test_page();
	test_upload();
	return check_exit("test_query");
}
