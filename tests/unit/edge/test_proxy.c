/* Tests for edge/proxy: which paths berth-edge forwards upstream and
 * which it refuses (pushes, uploads, catalog, token, anything that could
 * leave /v2/ or would need re-encoding), and which answers it may cache
 * (blobs and manifests by digest only). */
#include <string.h>

#include "check.h"
#include "edge/proxy.h"

#define NAME "/v2/0123456789abcdef0123456789abcdef/app"
#define DIGEST "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void test_forwarded(void)
{
	CHECK(brt_edge_forwarded("/v2/"));
	CHECK(brt_edge_forwarded(NAME "/manifests/v1"));
	CHECK(brt_edge_forwarded(NAME "/manifests/" DIGEST));
	CHECK(brt_edge_forwarded(NAME "/blobs/" DIGEST));
	CHECK(brt_edge_forwarded(NAME "/referrers/" DIGEST));
	CHECK(brt_edge_forwarded(NAME "/tags/list"));
	CHECK(brt_edge_forwarded("/v2/a/b/c/manifests/1.0_rc-2"));
	/* A name with a component that looks like an endpoint. */
	CHECK(brt_edge_forwarded("/v2/a/manifests/b/blobs/" DIGEST));
	CHECK(brt_edge_forwarded("/v2/a/blobs/b/manifests/v1"));
}

static void test_refused(void)
{
	CHECK(!brt_edge_forwarded("/"));
	CHECK(!brt_edge_forwarded("/v2"));
	CHECK(!brt_edge_forwarded("/v2/_catalog"));
	CHECK(!brt_edge_forwarded("/v2/token"));
	CHECK(!brt_edge_forwarded("/v2/_berth/usage"));
	CHECK(!brt_edge_forwarded("/metrics"));
	CHECK(!brt_edge_forwarded(NAME "/blobs/uploads/"));
	CHECK(!brt_edge_forwarded(NAME "/blobs/uploads/0123abcd"));
	CHECK(!brt_edge_forwarded(NAME "/manifests/"));
	CHECK(!brt_edge_forwarded("/v2/manifests/v1"));
	CHECK(!brt_edge_forwarded("/v2//manifests/v1"));
	CHECK(!brt_edge_forwarded("/v2/tags/list"));
	CHECK(!brt_edge_forwarded(NAME "/tags/list/x"));
	CHECK(!brt_edge_forwarded(NAME "/../../etc/manifests/v1"));
	CHECK(!brt_edge_forwarded(NAME "/manifests/v1?x"));
	CHECK(!brt_edge_forwarded(NAME "/manifests/v 1"));
	CHECK(!brt_edge_forwarded(NAME "/manifests/v%201"));
	CHECK(!brt_edge_forwarded(NAME "/manifests/v1\r\nX: y"));
	CHECK(!brt_edge_forwarded("/v3/x/manifests/v1"));
}

static void test_cacheable(void)
{
	char repo[64];
	brt_digest d;

	CHECK(brt_edge_cacheable(repo, sizeof(repo), &d, NAME "/blobs/" DIGEST));
	CHECK(strcmp(repo, &NAME[4]) == 0);
	CHECK(strcmp(d.str, DIGEST) == 0);
	CHECK(brt_edge_cacheable(repo, sizeof(repo), &d, "/v2/a/blobs/b/manifests/" DIGEST));
	CHECK(strcmp(repo, "a/blobs/b") == 0);
	CHECK(!brt_edge_cacheable(repo, sizeof(repo), &d, NAME "/manifests/v1"));
	CHECK(!brt_edge_cacheable(repo, sizeof(repo), &d, NAME "/referrers/" DIGEST));
	CHECK(!brt_edge_cacheable(repo, sizeof(repo), &d, NAME "/tags/list"));
	CHECK(!brt_edge_cacheable(repo, sizeof(repo), &d, NAME "/blobs/sha256:abc"));
	CHECK(!brt_edge_cacheable(repo, sizeof(repo), &d, NAME "/blobs/SHA256:e3b0"));
	CHECK(!brt_edge_cacheable(repo, sizeof(repo), &d, "/v2/"));
	/* A name longer than the buffer is not cached (it is still forwarded). */
	CHECK(!brt_edge_cacheable(repo, 8, &d, NAME "/blobs/" DIGEST));
}

int main(void)
{
	test_forwarded();
	test_refused();
	test_cacheable();
	return check_exit("test_proxy");
}
