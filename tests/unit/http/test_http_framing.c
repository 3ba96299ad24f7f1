/* Request framing checks: every way a body length could be read two ways
 * is refused, and ordinary requests pass. */
#include "check.h"
#include "common/error.h"
#include "http/framing.h"

/* Headers as name, value pairs ending with NULL. */
static int check_headers(int http10, int *length_problem, const char *const *headers)
{
	brt_framing f = {0};

	for (size_t i = 0; headers[i]; i += 2)
		brt_framing_add(&f, headers[i], headers[i + 1]);
	return brt_framing_check(&f, http10, length_problem);
}

#define H(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Which requests carry a body. */
static void test_has_body(void)
{
	CHECK_EQ_INT(brt_framing_has_body(NULL, NULL), 0);
	CHECK_EQ_INT(brt_framing_has_body(NULL, "0"), 0);
	CHECK_EQ_INT(brt_framing_has_body(NULL, "1"), 1);
	CHECK_EQ_INT(brt_framing_has_body("chunked", NULL), 1);
	CHECK_EQ_INT(brt_framing_has_body("identity", NULL), 0);
	CHECK_EQ_INT(brt_framing_has_body("IDENTITY", "0"), 0);
	CHECK_EQ_INT(brt_framing_has_body("identity", "12"), 1);
}

int main(void)
{
	int lp = -1;

	test_has_body();

	/* accepted */
	CHECK_EQ_INT(check_headers(0, &lp, H("Host", "a")), 0);
	CHECK_EQ_INT(check_headers(0, &lp, H("Host", "a", "Content-Length", "0")), 0);
	CHECK_EQ_INT(check_headers(0, &lp, H("content-length", "12345")), 0);
	CHECK_EQ_INT(check_headers(0, &lp, H("Content-Length", "0018446744073709551615")), 0);
	CHECK_EQ_INT(check_headers(0, &lp, H("Transfer-Encoding", "chunked")), 0);
	CHECK_EQ_INT(check_headers(0, &lp, H("transfer-encoding", "CHUNKED")), 0);
	CHECK_EQ_INT(check_headers(1, &lp, H("Content-Length", "3")), 0);
	CHECK_EQ_INT(check_headers(0, &lp, H("X-Odd_name.with!tokens~", "v")), 0);

	/* two lengths, also equal ones */
	CHECK_EQ_INT(check_headers(0, &lp, H("Content-Length", "2", "Content-Length", "40")), BRT_EINVALID);
	CHECK_EQ_INT(lp, 1);
	CHECK_EQ_INT(check_headers(0, &lp, H("Content-Length", "2", "content-length", "2")), BRT_EINVALID);
	/* length and chunked, in either order */
	CHECK_EQ_INT(check_headers(0, &lp, H("Content-Length", "5", "Transfer-Encoding", "chunked")),
		     BRT_EINVALID);
	CHECK_EQ_INT(lp, 1);
	CHECK_EQ_INT(check_headers(0, &lp, H("Transfer-Encoding", "chunked", "Content-Length", "5")),
		     BRT_EINVALID);
	/* codings other than exactly chunked */
	CHECK_EQ_INT(check_headers(0, &lp, H("Transfer-Encoding", "gzip, chunked")), BRT_EINVALID);
	CHECK_EQ_INT(lp, 0);
	CHECK_EQ_INT(check_headers(0, &lp, H("Transfer-Encoding", "chunked, gzip")), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("Transfer-Encoding", "identity")), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("Transfer-Encoding", "chunked;q=1")), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("Transfer-Encoding", "")), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("Transfer-Encoding", NULL)), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("Transfer-Encoding", "xchunked")), BRT_EINVALID);
	/* duplicate codings, even both chunked */
	CHECK_EQ_INT(check_headers(0, &lp, H("Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked")),
		     BRT_EINVALID);
	/* HTTP/1.0 has no transfer codings */
	CHECK_EQ_INT(check_headers(1, &lp, H("Transfer-Encoding", "chunked")), BRT_EINVALID);
	/* lengths that are not plain decimal */
	CHECK_EQ_INT(check_headers(0, &lp, H("Content-Length", "+3")), BRT_EINVALID);
	CHECK_EQ_INT(lp, 1);
	CHECK_EQ_INT(check_headers(0, &lp, H("Content-Length", "-1")), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("Content-Length", "0x10")), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("Content-Length", "3 ")), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("Content-Length", "3,3")), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("Content-Length", "")), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("Content-Length", NULL)), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("Content-Length", "18446744073709551616")), BRT_EINVALID);
	/* header names a proxy may read differently */
	CHECK_EQ_INT(check_headers(0, &lp, H("Content-Length ", "3")), BRT_EINVALID);
	CHECK_EQ_INT(lp, 0);
	CHECK_EQ_INT(check_headers(0, &lp, H(" Content-Length", "3")), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("Transfer-Encoding\t", "chunked")), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("", "x")), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("X-A\x01", "x")), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("X\xc3\xa9", "x")), BRT_EINVALID);
	CHECK_EQ_INT(check_headers(0, &lp, H("Content:Length", "3")), BRT_EINVALID);
	return check_exit("test_http_framing");
}
