/* The request phases (routing itself is the pure brt_api_route in
 * route.c), response helpers and the mapping of BRT_E* codes to HTTP
 * statuses and OCI error bodies. */
#include "api/api.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>

#include "api/internal.h"
#include "api/route.h"
#include "auth/auth.h"
#include "common/log.h"

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

void api_fail_retry_later(brt_request *req, const char *seconds)
{
	api_fail(req, 429, E_TOOMANYREQUESTS, "%s", brt_error_last());
	req->pending_header = "Retry-After";
	req->pending_header_value = seconds;
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
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, brt_api_allowed_methods(req->endpoint));
	if (resp && req->pending_header)
		MHD_add_response_header(resp, req->pending_header, req->pending_header_value);
	api_send(req, req->pending_status, resp, len);
}

static void method_not_allowed(brt_request *req)
{
	api_fail(req, 405, E_UNSUPPORTED, "method %s is not allowed on %s", req->method_name, req->url);
}

static void dispatch_begin(brt_request *req)
{
	brt_route route;
	int error;

	error = brt_api_route(&route, &req->pool, req->method, req->url);
	req->endpoint = route.endpoint;
	req->repo = route.repo;
	req->reference = route.reference;
	if (error == BRT_ENOTFOUND) {
		api_fail(req, 404, E_UNSUPPORTED, "no such endpoint: %s", req->url);
		return;
	}
	if (error == BRT_EINVALID) {
		api_fail(req, 400, E_NAME_INVALID, "invalid repository name");
		return;
	}
	if (error < 0) {
		api_fail_error(req, error, E_UNKNOWN);
		return;
	}
	if (route.action && (error = brt_auth_check(req, route.action, req->repo)) < 0) {
		api_fail_auth(req, error, route.action, req->repo);
		return;
	}
	switch (route.handler) {
	case BRT_HANDLER_NONE:
		method_not_allowed(req);
		break;
	case BRT_HANDLER_TOKEN:
		api_token_begin(req);
		break;
	case BRT_HANDLER_UPLOAD_POST:
	case BRT_HANDLER_UPLOAD_DATA:
		api_upload_begin(req);
		break;
	case BRT_HANDLER_MANIFEST_PUT:
		api_manifest_put_begin(req);
		break;
	default:
		/* Bodyless handlers run in brt_api_end. */
		break;
	}
}

void brt_api_begin(brt_request *req)
{
	brt_error_clear();
	dispatch_begin(req);
	/* An error before a body is read: answer now and let the connection
	 * close rather than read a body nobody wants. */
	if (req->pending_status && brt_api_has_body(brt_request_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING),
						    brt_request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH)))
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
		switch (brt_api_handler(req->endpoint, req->method)) {
		case BRT_HANDLER_BASE: base(req); break;
		case BRT_HANDLER_CATALOG: api_catalog(req); break;
		case BRT_HANDLER_TOKEN: api_token_end(req); break;
		case BRT_HANDLER_TAGS: api_tags_list(req); break;
		case BRT_HANDLER_REFERRERS: api_referrers(req); break;
		case BRT_HANDLER_BLOB_GET: api_blob_get(req); break;
		case BRT_HANDLER_BLOB_DELETE: api_blob_delete(req); break;
		case BRT_HANDLER_UPLOAD_POST:
		case BRT_HANDLER_UPLOAD_DATA: api_upload_end(req); break;
		case BRT_HANDLER_UPLOAD_STATUS: api_upload_status(req); break;
		case BRT_HANDLER_UPLOAD_CANCEL: api_upload_cancel(req); break;
		case BRT_HANDLER_MANIFEST_GET: api_manifest_get(req); break;
		case BRT_HANDLER_MANIFEST_PUT: api_manifest_put_end(req); break;
		case BRT_HANDLER_MANIFEST_DELETE: api_manifest_delete(req); break;
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
