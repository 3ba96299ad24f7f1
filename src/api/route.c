/* Routing of /v2/ paths (see route.h): one left-to-right look at the path,
 * then a table of which handler serves which method, and which action
 * that needs.  Upload sessions are push state: every method on them needs
 * push, reading their status included. */
#include "api/route.h"

#include <string.h>
#include <strings.h>

#include "common/error.h"
#include "oci/names.h"

/* Split /v2/<name>/<kind>/<ref> into endpoint, name and reference. */
static void split_path(brt_route *out, size_t *name_len, brt_method method, const char *path)
{
	static const struct {
		const char *suffix;
		brt_endpoint endpoint;
	} kinds[] = {
		{"/blobs/uploads", BRT_EP_UPLOAD},
		{"/blobs", BRT_EP_BLOB},
		{"/manifests", BRT_EP_MANIFEST},
		{"/referrers", BRT_EP_REFERRERS},
		{"/tags", BRT_EP_TAGS},
	};
	size_t len = strlen(path), prefix_len;
	const char *rest, *last_slash;

	if (len < 3 || strncmp(path, "/v2", 3) != 0)
		return;
	if (len == 3 || (len == 4 && path[3] == '/')) {
		out->endpoint = BRT_EP_BASE;
		return;
	}
	if (path[3] != '/')
		return;
	rest = path + 4;
	if (strcmp(rest, "_catalog") == 0) {
		out->endpoint = BRT_EP_CATALOG;
		return;
	}
	if (strcmp(rest, "token") == 0) {
		out->endpoint = BRT_EP_TOKEN;
		return;
	}
	if (!(last_slash = strrchr(rest, '/')))
		return;
	prefix_len = (size_t)(last_slash - rest);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t sl = strlen(kinds[i].suffix);
		if (prefix_len > sl && memcmp(rest + prefix_len - sl, kinds[i].suffix, sl) == 0) {
			out->endpoint = kinds[i].endpoint;
			*name_len = prefix_len - sl;
			break;
		}
	}
	if (out->endpoint == BRT_EP_NONE)
		return;
	out->reference = last_slash + 1;
	if (out->endpoint == BRT_EP_UPLOAD && out->reference[0] == '\0')
		out->endpoint = BRT_EP_UPLOADS;
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

brt_handler brt_api_handler(brt_endpoint endpoint, brt_method method)
{
	int get = method == BRT_GET || method == BRT_HEAD;

	switch (endpoint) {
	case BRT_EP_BASE: return get ? BRT_HANDLER_BASE : BRT_HANDLER_NONE;
	case BRT_EP_CATALOG: return get ? BRT_HANDLER_CATALOG : BRT_HANDLER_NONE;
	case BRT_EP_TAGS: return get ? BRT_HANDLER_TAGS : BRT_HANDLER_NONE;
	case BRT_EP_REFERRERS: return get ? BRT_HANDLER_REFERRERS : BRT_HANDLER_NONE;
	case BRT_EP_TOKEN:
		return method == BRT_GET || method == BRT_POST ? BRT_HANDLER_TOKEN : BRT_HANDLER_NONE;
	case BRT_EP_BLOB:
		if (get)
			return BRT_HANDLER_BLOB_GET;
		return method == BRT_DELETE ? BRT_HANDLER_BLOB_DELETE : BRT_HANDLER_NONE;
	case BRT_EP_UPLOADS: return method == BRT_POST ? BRT_HANDLER_UPLOAD_POST : BRT_HANDLER_NONE;
	case BRT_EP_UPLOAD:
		switch (method) {
		case BRT_PATCH:
		case BRT_PUT: return BRT_HANDLER_UPLOAD_DATA;
		case BRT_GET: return BRT_HANDLER_UPLOAD_STATUS;
		case BRT_DELETE: return BRT_HANDLER_UPLOAD_CANCEL;
		default: return BRT_HANDLER_NONE;
		}
	case BRT_EP_MANIFEST:
		if (get)
			return BRT_HANDLER_MANIFEST_GET;
		if (method == BRT_PUT)
			return BRT_HANDLER_MANIFEST_PUT;
		return method == BRT_DELETE ? BRT_HANDLER_MANIFEST_DELETE : BRT_HANDLER_NONE;
	default: return BRT_HANDLER_NONE;
	}
}

/* The action to authorise before the handler (or the 405) runs. */
static brt_action action_for(brt_endpoint endpoint, brt_method method)
{
	if (endpoint == BRT_EP_TOKEN)
		return 0;
	/* Upload sessions are push state: reading one's status reveals what
	 * is being pushed, so it needs push like every other use. */
	if (endpoint == BRT_EP_UPLOAD || endpoint == BRT_EP_UPLOADS)
		return method == BRT_OTHER_METHOD ? 0 : BRT_ACTION_PUSH;
	switch (method) {
	case BRT_GET:
	case BRT_HEAD: return endpoint == BRT_EP_CATALOG ? BRT_ACTION_CATALOG : BRT_ACTION_PULL;
	case BRT_PUT:
	case BRT_POST:
	case BRT_PATCH: return BRT_ACTION_PUSH;
	case BRT_DELETE: return BRT_ACTION_DELETE;
	default: return 0;
	}
}

int brt_api_route(brt_route *out, brt_pool *pool, brt_method method, const char *path)
{
	size_t name_len = 0;

	memset(out, 0, sizeof(*out));
	split_path(out, &name_len, method, path);
	if (out->endpoint == BRT_EP_NONE)
		return brt_error_set(BRT_ENOTFOUND, "no such endpoint");
	out->handler = brt_api_handler(out->endpoint, method);
	out->action = action_for(out->endpoint, method);
	if (!out->reference)
		return 0;
	/* The name runs from after "/v2/" to the endpoint's suffix. */
	if (!brt_name_valid(path + 4, name_len))
		return brt_error_set(BRT_EINVALID, "invalid repository name");
	if (!(out->repo = brt_pool_strndup(pool, path + 4, name_len)))
		return brt_error_set(BRT_ENOMEM, "out of request memory");
	return 0;
}

const char *brt_api_allowed_methods(brt_endpoint endpoint)
{
	switch (endpoint) {
	case BRT_EP_BLOB: return "GET, HEAD, DELETE";
	case BRT_EP_UPLOADS: return "POST";
	case BRT_EP_UPLOAD: return "GET, PATCH, PUT, DELETE";
	case BRT_EP_MANIFEST: return "GET, HEAD, PUT, DELETE";
	case BRT_EP_TOKEN: return "GET, POST";
	default: return "GET, HEAD";
	}
}

int brt_api_has_body(const char *transfer_encoding, const char *content_length)
{
	if (transfer_encoding && strcasecmp(transfer_encoding, "identity") != 0)
		return 1;
	return content_length && strcmp(content_length, "0") != 0;
}
