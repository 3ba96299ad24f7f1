/* Tests for oci/names: repository names (OCI and tenant grammar), tags and
 * the pagination `n` parameter, with emphasis on the edges of each grammar
 * and on lengths right at the limits. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "common/error.h"
#include "oci/names.h"

#define TENANT "0123456789abcdef0123456789abcdef"

static int name_ok(const char *s)
{
	return brt_name_valid(s, strlen(s));
}

static int tenant_ok(const char *s)
{
	return brt_name_tenant_valid(s, strlen(s));
}

static int tag_ok(const char *s)
{
	return brt_tag_valid(s, strlen(s));
}

/* A string of `len` copies of `c` in `buf` (which holds len + 1). */
static const char *repeat(char *buf, char c, size_t len)
{
	memset(buf, c, len);
	buf[len] = '\0';
	return buf;
}

static void test_names_basic(void)
{
	CHECK(name_ok("a"));
	CHECK(name_ok("library/ubuntu"));
	CHECK(name_ok("a/b/c/d"));
	CHECK(name_ok("0"));
	CHECK(name_ok("my.app"));
	CHECK(name_ok("my_app"));
	CHECK(name_ok("my__app"));
	CHECK(name_ok("my-app"));
	CHECK(name_ok("my--app"));
	CHECK(name_ok("my-----app"));
	CHECK(name_ok("a.b_c__d-e--f/g"));

	CHECK(!name_ok(""));
	CHECK(!brt_name_valid(NULL, 0));
	CHECK(!name_ok("A"));
	CHECK(!name_ok("library/Ubuntu"));
	CHECK(!name_ok("my___app"));
	CHECK(!name_ok("my..app"));
	CHECK(!name_ok("my._app"));
	CHECK(!name_ok("my-_app"));
	CHECK(!name_ok("my_-app"));
	CHECK(!name_ok("my.-app"));
	CHECK(!name_ok("a/"));
	CHECK(!name_ok("/a"));
	CHECK(!name_ok("a//b"));
	CHECK(!name_ok("/"));
	CHECK(!name_ok("-a"));
	CHECK(!name_ok("a-"));
	CHECK(!name_ok("_a"));
	CHECK(!name_ok("a_"));
	CHECK(!name_ok(".a"));
	CHECK(!name_ok("a."));
	CHECK(!name_ok("a/-b"));
	CHECK(!name_ok("a/b-"));
	CHECK(!name_ok("a b"));
	CHECK(!name_ok("a:b"));
	CHECK(!name_ok("a@b"));
	CHECK(!name_ok("a/../b"));
	CHECK(!name_ok(".."));
	CHECK(!name_ok("a\xc3\xa9"));
}

static void test_names_length(void)
{
	char buf[300];

	CHECK(name_ok(repeat(buf, 'a', 255)));
	CHECK(!name_ok(repeat(buf, 'a', 256)));
	/* Length counts the whole path, not a component. */
	repeat(buf, 'a', 255);
	buf[100] = '/';
	CHECK(name_ok(buf));
	/* Only `len` bytes are read: a valid prefix of a longer buffer. */
	CHECK(brt_name_valid("abc/def!!!", 7));
	CHECK(!brt_name_valid("abc/def!!!", 8));
	/* An embedded NUL is just an invalid byte. */
	CHECK(!brt_name_valid("ab\0c", 4));
}

static void test_tenant_names(void)
{
	char buf[300];

	CHECK(tenant_ok(TENANT "/app"));
	CHECK(tenant_ok(TENANT "/team/app"));
	CHECK(tenant_ok(TENANT "/my.app"));
	CHECK(tenant_ok(TENANT "/my_app"));
	CHECK(tenant_ok(TENANT "/my-app"));
	CHECK(tenant_ok(TENANT "/a.b_c-d/e"));

	CHECK(!tenant_ok(TENANT));
	CHECK(!tenant_ok(TENANT "/"));
	CHECK(!tenant_ok(TENANT "//app"));
	CHECK(!tenant_ok(TENANT "/app/"));
	CHECK(!tenant_ok(TENANT "/my__app"));
	CHECK(!tenant_ok(TENANT "/my--app"));
	CHECK(!tenant_ok(TENANT "/my-.app"));
	CHECK(!tenant_ok(TENANT "/App"));
	CHECK(!tenant_ok(TENANT "/-app"));
	CHECK(!tenant_ok(TENANT "/app-"));
	CHECK(!tenant_ok(TENANT "app"));
	CHECK(!tenant_ok("0123456789abcdef0123456789abcde/app"));   /* 31 hex */
	CHECK(!tenant_ok("0123456789abcdef0123456789abcdef0/app")); /* 33 hex */
	CHECK(!tenant_ok("0123456789ABCDEF0123456789abcdef/app"));  /* upper hex */
	CHECK(!tenant_ok("0123456789abcdeg0123456789abcdef/app"));  /* not hex */
	CHECK(!tenant_ok("/" TENANT "/app"));
	CHECK(!tenant_ok("library/ubuntu"));
	CHECK(!tenant_ok(""));
	CHECK(!brt_name_tenant_valid(NULL, 0));

	/* 255 bytes in all is the limit. */
	memcpy(buf, TENANT "/", 33);
	repeat(buf + 33, 'a', 255 - 33);
	CHECK(tenant_ok(buf));
	repeat(buf + 33, 'a', 256 - 33);
	CHECK(!tenant_ok(buf));
	/* Every tenant name is also an OCI name. */
	CHECK(name_ok(TENANT "/a.b_c-d/e"));
}

static void test_tags(void)
{
	char buf[200];

	CHECK(tag_ok("latest"));
	CHECK(tag_ok("v1.2.3"));
	CHECK(tag_ok("1.0.0_build.5")); /* Helm writes '+' as '_' */
	CHECK(tag_ok("_private"));
	CHECK(tag_ok("A-Z_a-z.0-9"));
	CHECK(tag_ok("0"));
	CHECK(tag_ok("sha256-0123abcd.sig")); /* cosign-style tags */
	CHECK(tag_ok(repeat(buf, 'a', 128)));
	CHECK(!tag_ok(repeat(buf, 'a', 129)));
	CHECK(!tag_ok(""));
	CHECK(!brt_tag_valid(NULL, 0));
	CHECK(!tag_ok(".hidden"));
	CHECK(!tag_ok("-dash"));
	CHECK(!tag_ok("1.0.0+build"));
	CHECK(!tag_ok("a/b"));
	CHECK(!tag_ok("a:b"));
	CHECK(!tag_ok("a b"));
	CHECK(!tag_ok("sha256:abc"));
	CHECK(!brt_tag_valid("ab\0", 3));
	CHECK(brt_tag_valid("ab!", 2));
}

static void check_page(const char *s, size_t max, int want_rc, size_t want)
{
	size_t n = 12345;
	int rc = brt_parse_page_size(&n, s, max);

	CHECK_EQ_INT(rc, want_rc);
	if (want_rc == 0)
		CHECK_EQ_INT(n, want);
	else
		CHECK_EQ_INT(n, 12345); /* untouched on failure */
}

static void test_page_size(void)
{
	check_page("0", 1000, 0, 0);
	check_page("00", 1000, 0, 0);
	check_page("1", 1000, 0, 1);
	check_page("999", 1000, 0, 999);
	check_page("1000", 1000, 0, 1000);
	check_page("1001", 1000, 0, 1000);
	check_page("007", 1000, 0, 7);
	check_page("99999999999999999999999", 1000, 0, 1000);
	check_page("18446744073709551615", 1000, 0, 1000);
	check_page("18446744073709551616", SIZE_MAX, 0, SIZE_MAX);
	check_page("18446744073709551615", SIZE_MAX, 0, SIZE_MAX);
	check_page("18446744073709551614", SIZE_MAX, 0, SIZE_MAX - 1);
	check_page("5", 0, 0, 0);
	check_page("0", 0, 0, 0);
	check_page("19", 10, 0, 10);
	check_page("10", 10, 0, 10);
	check_page("11", 10, 0, 10);

	check_page("", 1000, BRT_EINVALID, 0);
	check_page(NULL, 1000, BRT_EINVALID, 0);
	check_page("-1", 1000, BRT_EINVALID, 0);
	check_page("+1", 1000, BRT_EINVALID, 0);
	check_page(" 1", 1000, BRT_EINVALID, 0);
	check_page("1 ", 1000, BRT_EINVALID, 0);
	check_page("1x", 1000, BRT_EINVALID, 0);
	check_page("0x10", 1000, BRT_EINVALID, 0);
	check_page("1e3", 1000, BRT_EINVALID, 0);
	check_page("1.5", 1000, BRT_EINVALID, 0);
	/* Still rejected after the value has saturated. */
	check_page("99999999999999999999999x", 1000, BRT_EINVALID, 0);
}

int main(void)
{
	test_names_basic();
	test_names_length();
	test_tenant_names();
	test_tags();
	test_page_size();
	return check_exit("test_names");
}
