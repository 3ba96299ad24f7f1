/* Tests for api/route: every endpoint with every method goes to the
 * handler the API table promises and asks authorisation for the right
 * action (upload sessions need push for every method, status included),
 * names and references are split where the OCI paths put them, and paths
 * that are not endpoints are refused. */
#include <string.h>

#include "api/route.h"
#include "check.h"
#include "common/error.h"

#define NAME "0123456789abcdef0123456789abcdef/app/sub"
#define DIGEST "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define UPLOAD_ID "0123456789abcdef0123456789abcdef"

static const brt_method methods[] = {BRT_GET,   BRT_HEAD,   BRT_PUT,         BRT_POST,
				     BRT_PATCH, BRT_DELETE, BRT_OTHER_METHOD};
static const char *const method_names[] = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OTHER"};
#define METHODS (sizeof(methods) / sizeof(methods[0]))

static brt_pool pool;

/* One row per endpoint: its path, and per method (in `methods` order) the
 * name of the route-table row serving it (NULL: 405) and the action. */
struct row {
	const char *path;
	brt_endpoint endpoint;
	const char *repo, *reference;
	const char *handler[METHODS];
	brt_action action[METHODS];
};

#define NONE NULL
#define PULL BRT_ACTION_PULL
#define PUSH BRT_ACTION_PUSH
#define DEL BRT_ACTION_DELETE
#define CAT BRT_ACTION_CATALOG

static const struct row table[] = {
	{"/v2/",
	 BRT_EP_BASE,
	 NULL,
	 NULL,
	 {"base", "base", NONE, NONE, NONE, NONE, NONE},
	 {PULL, PULL, PUSH, PUSH, PUSH, DEL, 0}},
	{"/v2",
	 BRT_EP_BASE,
	 NULL,
	 NULL,
	 {"base", "base", NONE, NONE, NONE, NONE, NONE},
	 {PULL, PULL, PUSH, PUSH, PUSH, DEL, 0}},
	{"/v2/_catalog",
	 BRT_EP_CATALOG,
	 NULL,
	 NULL,
	 {"catalog", "catalog", NONE, NONE, NONE, NONE, NONE},
	 {CAT, CAT, PUSH, PUSH, PUSH, DEL, 0}},
	{"/v2/token",
	 BRT_EP_TOKEN,
	 NULL,
	 NULL,
	 {"token", NONE, NONE, "token", NONE, NONE, NONE},
	 {0, 0, 0, 0, 0, 0, 0}},
	{"/v2/" NAME "/tags/list",
	 BRT_EP_TAGS,
	 NAME,
	 "list",
	 {"tags-list", "tags-list", NONE, NONE, NONE, NONE, NONE},
	 {PULL, PULL, PUSH, PUSH, PUSH, DEL, 0}},
	{"/v2/" NAME "/referrers/" DIGEST,
	 BRT_EP_REFERRERS,
	 NAME,
	 DIGEST,
	 {"referrers", "referrers", NONE, NONE, NONE, NONE, NONE},
	 {PULL, PULL, PUSH, PUSH, PUSH, DEL, 0}},
	{"/v2/" NAME "/blobs/" DIGEST,
	 BRT_EP_BLOB,
	 NAME,
	 DIGEST,
	 {"blob-get", "blob-get", NONE, NONE, NONE, "blob-delete", NONE},
	 {PULL, PULL, PUSH, PUSH, PUSH, DEL, 0}},
	{"/v2/" NAME "/blobs/uploads/",
	 BRT_EP_UPLOADS,
	 NAME,
	 "",
	 {NONE, NONE, NONE, "upload-start", NONE, NONE, NONE},
	 {PUSH, PUSH, PUSH, PUSH, PUSH, PUSH, 0}},
	/* The upload session: push for everything, reading its status too. */
	{"/v2/" NAME "/blobs/uploads/" UPLOAD_ID,
	 BRT_EP_UPLOAD,
	 NAME,
	 UPLOAD_ID,
	 {"upload-status", NONE, "upload-data", NONE, "upload-data", "upload-cancel", NONE},
	 {PUSH, PUSH, PUSH, PUSH, PUSH, PUSH, 0}},
	{"/v2/" NAME "/manifests/v1",
	 BRT_EP_MANIFEST,
	 NAME,
	 "v1",
	 {"manifest-get", "manifest-get", "manifest-put", NONE, NONE, "manifest-delete", NONE},
	 {PULL, PULL, PUSH, PUSH, PUSH, DEL, 0}},
	{"/v2/" NAME "/manifests/" DIGEST,
	 BRT_EP_MANIFEST,
	 NAME,
	 DIGEST,
	 {"manifest-get", "manifest-get", "manifest-put", NONE, NONE, "manifest-delete", NONE},
	 {PULL, PULL, PUSH, PUSH, PUSH, DEL, 0}},
};

static const char *row_name(const brt_route *route)
{
	return route->def ? route->def->name : NULL;
}

static int same_name(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static void test_table(void)
{
	for (size_t r = 0; r < sizeof(table) / sizeof(table[0]); r++) {
		for (size_t m = 0; m < METHODS; m++) {
			brt_route route;
			int error = brt_api_route(&route, &pool, methods[m], table[r].path);

			if (error != 0 || route.endpoint != table[r].endpoint ||
			    !same_name(row_name(&route), table[r].handler[m]) ||
			    route.action != table[r].action[m])
				fprintf(stderr, "%s %s: error %d endpoint %d handler %s action %d\n",
					method_names[m], table[r].path, error, route.endpoint,
					row_name(&route) ? row_name(&route) : "-", route.action);
			CHECK_EQ_INT(error, 0);
			CHECK_EQ_INT(route.endpoint, table[r].endpoint);
			CHECK(same_name(row_name(&route), table[r].handler[m]));
			CHECK_EQ_INT(route.action, table[r].action[m]);
			/* A row serves the endpoint it was found for, with an end step. */
			if (route.def) {
				CHECK_EQ_INT(route.def->endpoint, route.endpoint);
				CHECK(route.def->end != NULL);
				CHECK(route.def->methods & BRT_METHOD_BIT(methods[m]));
			}
			if (table[r].repo)
				CHECK_EQ_STR(route.repo, table[r].repo);
			else
				CHECK(route.repo == NULL);
			if (table[r].reference)
				CHECK_EQ_STR(route.reference, table[r].reference);
			else
				CHECK(route.reference == NULL);
		}
	}
}

/* Every (endpoint, method) is served by at most one row, and the Allow
 * header of a 405 lists exactly the methods the table serves. */
static void test_rows_unique(void)
{
	size_t count;
	const brt_route_def *rows = brt_api_routes(&count);

	CHECK(count > 0);
	for (size_t i = 0; i < count; i++) {
		CHECK(rows[i].methods != 0 && rows[i].end && rows[i].name);
		for (size_t j = i + 1; j < count; j++)
			CHECK(rows[i].endpoint != rows[j].endpoint ||
			      (rows[i].methods & rows[j].methods) == 0);
	}
	CHECK_EQ_STR(brt_api_allowed_methods(BRT_EP_BLOB), "GET, HEAD, DELETE");
	CHECK_EQ_STR(brt_api_allowed_methods(BRT_EP_UPLOAD), "GET, PUT, PATCH, DELETE");
	CHECK_EQ_STR(brt_api_allowed_methods(BRT_EP_UPLOADS), "POST");
	CHECK_EQ_STR(brt_api_allowed_methods(BRT_EP_MANIFEST), "GET, HEAD, PUT, DELETE");
	CHECK_EQ_STR(brt_api_allowed_methods(BRT_EP_TOKEN), "GET, POST");
	CHECK_EQ_STR(brt_api_allowed_methods(BRT_EP_TAGS), "GET, HEAD");
}

/* Upload status, by name: a pull-only credential must be refused. */
static void test_upload_status_needs_push(void)
{
	brt_route route;

	CHECK_EQ_INT(brt_api_route(&route, &pool, BRT_GET, "/v2/" NAME "/blobs/uploads/" UPLOAD_ID), 0);
	CHECK_EQ_STR(row_name(&route), "upload-status");
	CHECK_EQ_INT(route.action, BRT_ACTION_PUSH);
}

static void test_special_paths(void)
{
	brt_route route;

	/* POST without the trailing slash starts an upload too. */
	CHECK_EQ_INT(brt_api_route(&route, &pool, BRT_POST, "/v2/" NAME "/blobs/uploads"), 0);
	CHECK_EQ_INT(route.endpoint, BRT_EP_UPLOADS);
	CHECK_EQ_STR(row_name(&route), "upload-start");
	CHECK_EQ_STR(route.repo, NAME);
	/* ... but GET of it is a blob named "uploads". */
	CHECK_EQ_INT(brt_api_route(&route, &pool, BRT_GET, "/v2/" NAME "/blobs/uploads"), 0);
	CHECK_EQ_INT(route.endpoint, BRT_EP_BLOB);
	CHECK_EQ_STR(route.reference, "uploads");
	/* Names that contain the endpoint words. */
	CHECK_EQ_INT(brt_api_route(&route, &pool, BRT_GET, "/v2/a/blobs/b/manifests/v1"), 0);
	CHECK_EQ_INT(route.endpoint, BRT_EP_MANIFEST);
	CHECK_EQ_STR(route.repo, "a/blobs/b");
	CHECK_EQ_INT(brt_api_route(&route, &pool, BRT_GET, "/v2/tags/tags/list"), 0);
	CHECK_EQ_STR(route.repo, "tags");
	CHECK_EQ_INT(brt_api_route(&route, &pool, BRT_GET, "/v2/_catalog/tags/list"), BRT_ENAME);
	CHECK_EQ_INT(route.endpoint, BRT_EP_TAGS);
}

static void test_refused(void)
{
	static const char *const not_found[] = {
		"",
		"/",
		"/v1/",
		"/v2x",
		"/v20/",
		"/v2//",
		"/v2/_catalog/",
		"/v2/token/",
		"/v2/app",
		"/v2/app/",
		"/v2/app/tags/other",
		"/v2/app/tags/",
		"/v2/app/blobs/",
		"/v2/app/manifests/",
		"/v2/app/referrers/",
		"/v2/blobs/x",
		"/v2//blobs/x",
		"/v2/app/unknown/x",
		"v2/app/tags/list",
	};
	static const char *const bad_names[] = {
		"/v2/App/tags/list",      "/v2/a//b/tags/list", "/v2/a/../b/manifests/v1",
		("/v2/-a/blobs/" DIGEST), "/v2/a b/tags/list",  "/v2/a\xff/tags/list",
		"/v2/a_/blobs/uploads/",
	};
	brt_route route;

	for (size_t i = 0; i < sizeof(not_found) / sizeof(not_found[0]); i++) {
		for (size_t m = 0; m < METHODS; m++) {
			int error = brt_api_route(&route, &pool, methods[m], not_found[i]);
			if (error != BRT_ENOTFOUND)
				fprintf(stderr, "%s \"%s\" routed (%d)\n", method_names[m], not_found[i],
					error);
			CHECK_EQ_INT(error, BRT_ENOTFOUND);
			CHECK_EQ_INT(route.endpoint, BRT_EP_NONE);
			CHECK(route.repo == NULL && route.reference == NULL);
		}
	}
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		CHECK_EQ_INT(brt_api_route(&route, &pool, BRT_GET, bad_names[i]), BRT_ENAME);
		CHECK(route.endpoint != BRT_EP_NONE);
		CHECK(route.repo == NULL);
	}
}

int main(void)
{
	brt_pool_init(&pool, 1 << 16);
	test_table();
	test_upload_status_needs_push();
	test_special_paths();
	test_refused();
	test_rows_unique();
	brt_pool_clear(&pool);
	return check_exit("test_route");
}
