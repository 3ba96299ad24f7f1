/* Routing of /v2/ paths to handlers, the request phases, response helpers
 * and the mapping of BRT_E* codes to HTTP statuses and OCI error bodies. */
#include "api/api.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>

#include "api/internal.h"
#include "auth/auth.h"
#include "common/log.h"
#include "oci/names.h"

static const char *const api_version_header = "Docker-Distribution-API-Version";

int api_random_id(char *id)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[16];

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return brt_error_set(BRT_EIO, "no randomness");
	for (int i = 0; i < 16; i++) {
		id[2 * i] = digits[raw[i] >> 4];
		id[2 * i + 1] = digits[raw[i] & 15];
	}
	id[32] = '\0';
	return 0;
}

struct MHD_Response *api_response_empty(void)
{
	return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
}

struct MHD_Response *api_response_json(const char *json, size_t len, int copy)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		len, (void *)json, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);

	if (resp)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	return resp;
}

void api_send(brt_request *req, unsigned int status, struct MHD_Response *resp, uint64_t body_len)
{
	if (req->responded) {
		if (resp)
			MHD_destroy_response(resp);
		return;
	}
	req->responded = 1;
	/* Release the upload (and its lock) before the client can see the
	 * answer and send the next request for the same session. */
	api_upload_cleanup(req);
	if (!resp) {
		/* Out of memory: let libmicrohttpd drop the connection. */
		brt_log_error("cannot create a response for %s %s", req->method_name, req->url);
		req->status = 500;
		return;
	}
	MHD_add_response_header(resp, api_version_header, "registry/2.0");
	req->status = status;
	req->bytes_out = body_len;
	MHD_queue_response(req->conn, status, resp);
	MHD_destroy_response(resp);
}

static const char *error_message(const char *code)
{
	static const struct { const char *code, *message; } messages[] = {
		{E_BLOB_UNKNOWN, "blob unknown to registry"},
		{E_BLOB_UPLOAD_INVALID, "blob upload invalid"},
		{E_BLOB_UPLOAD_UNKNOWN, "blob upload unknown to registry"},
		{E_DIGEST_INVALID, "provided digest did not match uploaded content"},
		{E_MANIFEST_BLOB_UNKNOWN, "manifest references a blob unknown to the repository"},
		{E_MANIFEST_INVALID, "manifest invalid"},
		{E_MANIFEST_UNKNOWN, "manifest unknown to registry"},
		{E_NAME_INVALID, "invalid repository name"},
		{E_NAME_UNKNOWN, "repository name not known to registry"},
		{E_SIZE_INVALID, "provided length did not match content length"},
		{E_UNAUTHORIZED, "authentication required"},
		{E_DENIED, "requested access to the resource is denied"},
		{E_UNSUPPORTED, "the operation is unsupported"},
		{"TOOMANYREQUESTS", "too many requests"},
	};

	for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++)
		if (strcmp(messages[i].code, code) == 0)
			return messages[i].message;
	return "internal error";
}

void api_fail(brt_request *req, unsigned int status, const char *code, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	if (api_done(req))
		return;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	req->pending_status = status;
	req->pending_code = code;
	/* The detail must outlive this call: keep it in the pool. */
	req->pending_detail = brt_pool_strdup(&req->pool, detail);
	if (!req->pending_detail)
		req->pending_detail = "";
	if (req->body_kind != BRT_BODY_NONE)
		req->body_kind = BRT_BODY_DISCARD;
}

void api_fail_auth(brt_request *req, int error, int action, const char *repo)
{
	if (error == BRT_EUNAUTHORIZED) {
		api_fail(req, 401, E_UNAUTHORIZED, "%s", brt_error_last());
		req->pending_header = "WWW-Authenticate";
		req->pending_header_value = brt_auth_challenge(req, (brt_action)action, repo);
		if (!req->pending_header_value)
			req->pending_header = NULL;
	} else if (error == BRT_EINVALID) {
		api_fail(req, 400, E_NAME_INVALID, "%s", brt_error_last());
	} else {
		api_fail_error(req, error, E_DENIED);
	}
}

void api_fail_error(brt_request *req, int error, const char *not_found_code)
{
	const char *detail = brt_error_last();

	switch (error) {
	case BRT_ENOTFOUND:
		api_fail(req, 404, not_found_code, "%s", detail);
		break;
	case BRT_EINVALID:
		api_fail(req, 400, E_BLOB_UPLOAD_INVALID, "%s", detail);
		break;
	case BRT_EDIGEST:
		api_fail(req, 400, E_DIGEST_INVALID, "%s", detail);
		break;
	case BRT_ETOOBIG:
		api_fail(req, 413, E_SIZE_INVALID, "%s", detail);
		break;
	case BRT_ECONFLICT:
		api_fail(req, 409, E_DENIED, "%s", detail);
		break;
	case BRT_EUNSUPPORTED:
		api_fail(req, 415, E_UNSUPPORTED, "%s", detail);
		break;
	case BRT_EUNAUTHORIZED:
		api_fail(req, 401, E_UNAUTHORIZED, "%s", detail);
		break;
	case BRT_EDENIED:
		api_fail(req, 403, E_DENIED, "%s", detail);
		break;
	case BRT_ERANGE:
		api_fail(req, 416, E_BLOB_UPLOAD_INVALID, "%s", detail);
		break;
	case BRT_EBLOBUNKNOWN:
		api_fail(req, 400, E_MANIFEST_BLOB_UNKNOWN, "%s", detail);
		break;
	default:
		brt_log_error("%s %s: %s: %s", req->method_name, req->url, brt_error_name(error), detail);
		api_fail(req, 500, E_UNKNOWN, "internal error");
		break;
	}
}

int api_done(const brt_request *req)
{
	return req->responded || req->pending_status != 0;
}

/* The methods an endpoint supports, for the Allow header of a 405. */
static const char *allowed_methods(brt_endpoint endpoint)
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

static void send_pending(brt_request *req)
{
	json_t *body;
	char *text;
	struct MHD_Response *resp = NULL;
	size_t len = 0;

	body = json_pack("{s:[{s:s,s:s,s:s}]}", "errors", "code", req->pending_code, "message",
			 error_message(req->pending_code), "detail", req->pending_detail);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (text) {
		len = strlen(text);
		resp = api_response_json(text, len, 1);
		free(text);
	}
	if (resp && req->pending_status == 416 && req->session) {
		/* Tell the client where the upload really stands. */
		char range[64];
		uint64_t off = req->session->offset;
		snprintf(range, sizeof(range), "0-%llu", (unsigned long long)(off ? off - 1 : 0));
		MHD_add_response_header(resp, "Range", range);
	}
	if (resp && req->pending_status == 405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allowed_methods(req->endpoint));
	if (resp && req->pending_header)
		MHD_add_response_header(resp, req->pending_header, req->pending_header_value);
	api_send(req, req->pending_status, resp, len);
}

/* Split /v2/<name>/<kind>/<ref> into the route fields. */
static void route(brt_request *req)
{
	const char *url = req->url;
	size_t len = strlen(url);
	const char *rest, *last_slash;
	size_t prefix_len, name_len = 0;
	static const struct { const char *suffix; brt_endpoint ep; } kinds[] = {
		{"/blobs/uploads", BRT_EP_UPLOAD},
		{"/blobs", BRT_EP_BLOB},
		{"/manifests", BRT_EP_MANIFEST},
		{"/referrers", BRT_EP_REFERRERS},
		{"/tags", BRT_EP_TAGS},
	};

	if (len < 3 || strncmp(url, "/v2", 3) != 0)
		return;
	if (len == 3 || (len == 4 && url[3] == '/')) {
		req->endpoint = BRT_EP_BASE;
		return;
	}
	if (url[3] != '/')
		return;
	rest = url + 4;
	if (strcmp(rest, "_catalog") == 0) {
		req->endpoint = BRT_EP_CATALOG;
		return;
	}
	if (strcmp(rest, "token") == 0) {
		req->endpoint = BRT_EP_TOKEN;
		return;
	}
	last_slash = strrchr(rest, '/');
	if (!last_slash)
		return;
	prefix_len = (size_t)(last_slash - rest);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t sl = strlen(kinds[i].suffix);
		if (prefix_len > sl && memcmp(rest + prefix_len - sl, kinds[i].suffix, sl) == 0) {
			req->endpoint = kinds[i].ep;
			name_len = prefix_len - sl;
			break;
		}
	}
	if (req->endpoint == BRT_EP_NONE)
		return;
	req->reference = last_slash + 1;
	if (req->endpoint == BRT_EP_UPLOAD && req->reference[0] == '\0')
		req->endpoint = BRT_EP_UPLOADS;
	if (req->endpoint == BRT_EP_TAGS && strcmp(req->reference, "list") != 0) {
		req->endpoint = BRT_EP_NONE;
		return;
	}
	/* POST /v2/<name>/blobs/uploads without the trailing slash */
	if (req->endpoint == BRT_EP_BLOB && req->method == BRT_POST && strcmp(req->reference, "uploads") == 0)
		req->endpoint = BRT_EP_UPLOADS;
	if (req->endpoint == BRT_EP_BLOB || req->endpoint == BRT_EP_MANIFEST ||
	    req->endpoint == BRT_EP_REFERRERS || req->endpoint == BRT_EP_UPLOAD) {
		if (req->reference[0] == '\0') {
			req->endpoint = BRT_EP_NONE;
			return;
		}
	}
	req->repo = brt_pool_strndup(&req->pool, rest, name_len);
}

static int has_body(brt_request *req)
{
	const char *te = brt_request_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	const char *cl = brt_request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (te && strcasecmp(te, "identity") != 0)
		return 1;
	return cl && strcmp(cl, "0") != 0;
}

static void method_not_allowed(brt_request *req)
{
	api_fail(req, 405, E_UNSUPPORTED, "method %s is not allowed on %s", req->method_name, req->url);
}

static void dispatch_begin(brt_request *req)
{
	brt_action action = BRT_ACTION_PULL;
	int error;

	route(req);
	if (req->endpoint == BRT_EP_NONE) {
		api_fail(req, 404, E_UNSUPPORTED, "no such endpoint: %s", req->url);
		return;
	}
	if (req->repo && !brt_name_valid(req->repo, strlen(req->repo))) {
		api_fail(req, 400, E_NAME_INVALID, "invalid repository name");
		return;
	}
	switch (req->method) {
	case BRT_GET:
	case BRT_HEAD:
		action = req->endpoint == BRT_EP_CATALOG ? BRT_ACTION_CATALOG : BRT_ACTION_PULL;
		break;
	case BRT_PUT:
	case BRT_POST:
	case BRT_PATCH:
		action = BRT_ACTION_PUSH;
		break;
	case BRT_DELETE:
		action = req->endpoint == BRT_EP_UPLOAD ? BRT_ACTION_PUSH : BRT_ACTION_DELETE;
		break;
	default:
		method_not_allowed(req);
		return;
	}
	if (req->endpoint == BRT_EP_TOKEN) {
		if (req->method == BRT_GET || req->method == BRT_POST)
			api_token_begin(req);
		else
			method_not_allowed(req);
		return;
	}
	if ((error = brt_auth_check(req, action, req->repo)) < 0) {
		api_fail_auth(req, error, action, req->repo);
		return;
	}
	switch (req->endpoint) {
	case BRT_EP_UPLOADS:
		if (req->method == BRT_POST)
			api_upload_begin(req);
		else
			method_not_allowed(req);
		break;
	case BRT_EP_UPLOAD:
		if (req->method == BRT_PATCH || req->method == BRT_PUT)
			api_upload_begin(req);
		else if (req->method != BRT_GET && req->method != BRT_DELETE)
			method_not_allowed(req);
		break;
	case BRT_EP_MANIFEST:
		if (req->method == BRT_PUT)
			api_manifest_put_begin(req);
		else if (req->method == BRT_POST || req->method == BRT_PATCH)
			method_not_allowed(req);
		break;
	case BRT_EP_BLOB:
		if (req->method != BRT_GET && req->method != BRT_HEAD && req->method != BRT_DELETE)
			method_not_allowed(req);
		break;
	case BRT_EP_BASE:
	case BRT_EP_CATALOG:
	case BRT_EP_TAGS:
	case BRT_EP_REFERRERS:
		if (req->method != BRT_GET && req->method != BRT_HEAD)
			method_not_allowed(req);
		break;
	default:
		break;
	}
}

void brt_api_begin(brt_request *req)
{
	brt_error_clear();
	dispatch_begin(req);
	/* An error before a body is read: answer now and let the connection
	 * close rather than read a body nobody wants. */
	if (req->pending_status && has_body(req))
		send_pending(req);
}

void brt_api_body(brt_request *req, const char *data, size_t len)
{
	switch (req->body_kind) {
	case BRT_BODY_BLOB:
		api_upload_body(req, data, len);
		break;
	case BRT_BODY_MANIFEST:
		api_manifest_put_body(req, data, len);
		break;
	case BRT_BODY_FORM:
		api_token_body(req, data, len);
		break;
	case BRT_BODY_NONE:
		/* A body nobody asked for (e.g. on GET): ignore it. */
		req->body_kind = BRT_BODY_DISCARD;
		break;
	case BRT_BODY_DISCARD:
		break;
	}
}

static void base(brt_request *req)
{
	api_send(req, 200, api_response_json("{}", 2, 0), 2);
}

void brt_api_end(brt_request *req)
{
	if (!api_done(req)) {
		switch (req->endpoint) {
		case BRT_EP_BASE: base(req); break;
		case BRT_EP_CATALOG: api_catalog(req); break;
		case BRT_EP_TOKEN: api_token_end(req); break;
		case BRT_EP_TAGS: api_tags_list(req); break;
		case BRT_EP_REFERRERS: api_referrers(req); break;
		case BRT_EP_BLOB:
			if (req->method == BRT_DELETE)
				api_blob_delete(req);
			else
				api_blob_get(req);
			break;
		case BRT_EP_UPLOADS:
			api_upload_end(req);
			break;
		case BRT_EP_UPLOAD:
			if (req->method == BRT_GET)
				api_upload_status(req);
			else if (req->method == BRT_DELETE)
				api_upload_cancel(req);
			else
				api_upload_end(req);
			break;
		case BRT_EP_MANIFEST:
			if (req->method == BRT_PUT)
				api_manifest_put_end(req);
			else if (req->method == BRT_DELETE)
				api_manifest_delete(req);
			else
				api_manifest_get(req);
			break;
		default:
			api_fail(req, 404, E_UNSUPPORTED, "no such endpoint");
			break;
		}
	}
	if (!req->responded && req->pending_status)
		send_pending(req);
}

void brt_api_cleanup(brt_request *req)
{
	api_upload_cleanup(req);
	api_token_cleanup(req);
}
