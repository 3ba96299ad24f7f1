/* The route table and routing of /v2/ paths (see route.h): one
 * left-to-right look at the path finds the endpoint by the suffix of the
 * table's rows, then the row serving the method gives the handler steps
 * and the action to authorise.  Upload sessions are push state: every
 * method on them needs push, reading their status included. */
#include "api/route.h"

#include <stdio.h>
#include <string.h>

#include "api/internal.h"
#include "common/error.h"
#include "oci/names.h"

#define M(m) BRT_METHOD_BIT(BRT_##m)
#define PULL BRT_ACTION_PULL
#define PUSH BRT_ACTION_PUSH
#define DELETE BRT_ACTION_DELETE

/* Repository rows first, their suffixes longest first where one ends
 * another ("/blobs/uploads" before "/blobs").  `streams` marks answers
 * that are blobs; an upload marks itself once it takes a blob body. */
static const brt_route_def routes[] = {
	/* suffix, endpoint, methods, action, streams, begin, body, end, name */
	{"/blobs/uploads", BRT_EP_UPLOADS, M(POST), PUSH, 0, api_upload_post_begin, api_upload_body,
	 api_upload_post_end, "upload-start"},
	{"/blobs/uploads", BRT_EP_UPLOAD, M(PATCH) | M(PUT), PUSH, 0, api_upload_data_begin, api_upload_body,
	 api_upload_data_end, "upload-data"},
	{"/blobs/uploads", BRT_EP_UPLOAD, M(GET), PUSH, 0, NULL, NULL, api_upload_status, "upload-status"},
	{"/blobs/uploads", BRT_EP_UPLOAD, M(DELETE), PUSH, 0, NULL, NULL, api_upload_cancel, "upload-cancel"},
	{"/blobs", BRT_EP_BLOB, M(GET) | M(HEAD), PULL, 1, NULL, NULL, api_blob_get, "blob-get"},
	{"/blobs", BRT_EP_BLOB, M(DELETE), DELETE, 0, NULL, NULL, api_blob_delete, "blob-delete"},
	{"/manifests", BRT_EP_MANIFEST, M(GET) | M(HEAD), PULL, 0, NULL, NULL, api_manifest_get,
	 "manifest-get"},
	{"/manifests", BRT_EP_MANIFEST, M(PUT), PUSH, 0, api_manifest_put_begin, api_manifest_put_body,
	 api_manifest_put_end, "manifest-put"},
	{"/manifests", BRT_EP_MANIFEST, M(DELETE), DELETE, 0, NULL, NULL, api_manifest_delete,
	 "manifest-delete"},
	{"/referrers", BRT_EP_REFERRERS, M(GET) | M(HEAD), PULL, 0, NULL, NULL, api_referrers, "referrers"},
	{"/tags", BRT_EP_TAGS, M(GET) | M(HEAD), PULL, 0, NULL, NULL, api_tags_list, "tags-list"},
	/* Registry-wide: the whole path after /v2/. */
	{"", BRT_EP_BASE, M(GET) | M(HEAD), PULL, 0, NULL, NULL, api_base, "base"},
	{"_catalog", BRT_EP_CATALOG, M(GET) | M(HEAD), BRT_ACTION_CATALOG, 0, NULL, NULL, api_catalog,
	 "catalog"},
	/* The caller's own account: any valid credentials of it. */
	{"_berth/usage", BRT_EP_USAGE, M(GET) | M(HEAD), PULL, 0, NULL, NULL, api_usage, "usage"},
	{"token", BRT_EP_TOKEN, M(GET) | M(POST), 0, 0, api_token_begin, api_token_body, api_token_end,
	 "token"},
};

#define ROUTES (sizeof(routes) / sizeof(routes[0]))

const brt_route_def *brt_api_routes(size_t *count_out)
{
	*count_out = ROUTES;
	return routes;
}

static int registry_wide(const brt_route_def *r)
{
	return r->suffix[0] != '/';
}

/* Split /v2/<name>/<kind>/<ref> into endpoint, name and reference. */
static void split_path(brt_route *out, size_t *name_len, brt_method method, const char *path)
{
	size_t len = strlen(path), prefix_len;
	const char *rest, *last_slash;

	if (len < 3 || strncmp(path, "/v2", 3) != 0 || (len > 3 && path[3] != '/'))
		return;
	rest = len == 3 ? "" : path + 4;
	for (size_t i = 0; i < ROUTES; i++) {
		if (registry_wide(&routes[i]) && strcmp(rest, routes[i].suffix) == 0) {
			out->endpoint = routes[i].endpoint;
			return;
		}
	}
	if (!(last_slash = strrchr(rest, '/')))
		return;
	prefix_len = (size_t)(last_slash - rest);
	for (size_t i = 0; i < ROUTES && !registry_wide(&routes[i]); i++) {
		size_t sl = strlen(routes[i].suffix);
		if (prefix_len > sl && memcmp(rest + prefix_len - sl, routes[i].suffix, sl) == 0) {
			out->endpoint = routes[i].endpoint;
			*name_len = prefix_len - sl;
			break;
		}
	}
	if (out->endpoint == BRT_EP_NONE)
		return;
	out->reference = last_slash + 1;
	/* One suffix, two endpoints: the session list and a session. */
	if (out->endpoint == BRT_EP_UPLOADS && out->reference[0] != '\0')
		out->endpoint = BRT_EP_UPLOAD;
	/* POST /v2/<name>/blobs/uploads without the trailing slash */
	if (out->endpoint == BRT_EP_BLOB && method == BRT_POST && strcmp(out->reference, "uploads") == 0)
		out->endpoint = BRT_EP_UPLOADS;
	if ((out->endpoint == BRT_EP_TAGS && strcmp(out->reference, "list") != 0) ||
	    ((out->endpoint == BRT_EP_BLOB || out->endpoint == BRT_EP_MANIFEST ||
	      out->endpoint == BRT_EP_REFERRERS || out->endpoint == BRT_EP_UPLOAD) &&
	     out->reference[0] == '\0')) {
		out->endpoint = BRT_EP_NONE;
		out->reference = NULL;
	}
}

/* The action to authorise before a 405: what the method would need. */
static brt_action action_for_refusal(brt_endpoint endpoint, brt_method method)
{
	if (endpoint == BRT_EP_TOKEN || method == BRT_OTHER_METHOD)
		return 0;
	if (endpoint == BRT_EP_UPLOAD || endpoint == BRT_EP_UPLOADS)
		return BRT_ACTION_PUSH;
	switch (method) {
	case BRT_GET:
	case BRT_HEAD:
		return endpoint == BRT_EP_CATALOG ? BRT_ACTION_CATALOG : BRT_ACTION_PULL;
	case BRT_DELETE:
		return BRT_ACTION_DELETE;
	default:
		return BRT_ACTION_PUSH;
	}
}

int brt_api_route(brt_route *out, brt_pool *pool, brt_method method, const char *path)
{
	size_t name_len = 0;

	memset(out, 0, sizeof(*out));
	split_path(out, &name_len, method, path);
	if (out->endpoint == BRT_EP_NONE)
		return brt_error_set(BRT_ENOTFOUND, "no such endpoint");
	for (size_t i = 0; i < ROUTES; i++) {
		if (routes[i].endpoint == out->endpoint && (routes[i].methods & BRT_METHOD_BIT(method))) {
			out->def = &routes[i];
			break;
		}
	}
	out->action = out->def ? out->def->action : action_for_refusal(out->endpoint, method);
	if (!out->reference)
		return 0;
	/* The name runs from after "/v2/" to the endpoint's suffix. */
	if (!brt_name_valid(path + 4, name_len))
		return brt_error_set(BRT_ENAME, "invalid repository name");
	if (!(out->repo = brt_pool_strndup(pool, path + 4, name_len)))
		return brt_error_set(BRT_ENOMEM, "out of request memory");
	return 0;
}

const char *brt_api_allowed_methods(brt_endpoint endpoint)
{
	/* From the table, in a fixed order; built once (the table is constant). */
	static const char *const names[] = {NULL, "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"};
	static _Thread_local char cache[BRT_EP_TOKEN + 1][48];
	char *s = cache[endpoint];
	unsigned int methods = 0;
	size_t used = 0;

	if (s[0])
		return s;
	for (size_t i = 0; i < ROUTES; i++)
		if (routes[i].endpoint == endpoint)
			methods |= routes[i].methods;
	for (int m = BRT_GET; m <= BRT_DELETE; m++) {
		if (!(methods & BRT_METHOD_BIT(m)))
			continue;
		int n = snprintf(s + used, sizeof(cache[0]) - used, "%s%s", used ? ", " : "", names[m]);
		if (n < 0 || (size_t)n >= sizeof(cache[0]) - used)
			break;
		used += (size_t)n;
	}
	return s;
}
