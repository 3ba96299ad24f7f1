/* The registry's HTTP handler: the request phases (routing itself is the
 * pure brt_api_route over the route table in route.c), response helpers,
 * and the error table that maps BRT_E* codes to HTTP statuses and OCI
 * error bodies. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "api/internal.h"
#include "api/route.h"
#include "common/log.h"

static const char *const api_version_header = "Docker-Distribution-API-Version";

/* Endpoint classes of the error table. */
#define EP(e) (1u << (e))
#define EP_ANY (~0u)
#define EP_UPLOADS (EP(BRT_EP_UPLOADS) | EP(BRT_EP_UPLOAD))
#define EP_LISTS (EP(BRT_EP_TAGS) | EP(BRT_EP_REFERRERS) | EP(BRT_EP_CATALOG))

/* The one map from an error to an answer.  The first row matching the
 * error and the request's endpoint wins; anything else is 500 UNKNOWN. */
static const struct api_error {
	int error;
	unsigned int endpoints;
	unsigned short status;
	const char *code;
	const char *retry_after; /* 429, 503: seconds */
} error_table[] = {
	{BRT_ENOTFOUND, EP(BRT_EP_BLOB), 404, "BLOB_UNKNOWN", NULL},
	{BRT_ENOTFOUND, EP_UPLOADS, 404, "BLOB_UPLOAD_UNKNOWN", NULL},
	{BRT_ENOTFOUND, EP(BRT_EP_MANIFEST), 404, "MANIFEST_UNKNOWN", NULL},
	{BRT_ENOTFOUND, EP_LISTS, 404, "NAME_UNKNOWN", NULL},
	{BRT_ENOTFOUND, EP_ANY, 404, "UNSUPPORTED", NULL}, /* no such endpoint */
	{BRT_ENOREPO, EP_ANY, 404, "NAME_UNKNOWN", NULL},
	{BRT_ENAME, EP_ANY, 400, "NAME_INVALID", NULL},
	{BRT_EINVALID, EP(BRT_EP_MANIFEST), 400, "MANIFEST_INVALID", NULL},
	{BRT_EINVALID, EP_UPLOADS | EP(BRT_EP_BLOB), 400, "BLOB_UPLOAD_INVALID", NULL},
	{BRT_EINVALID, EP_ANY, 400, "UNSUPPORTED", NULL}, /* a malformed query or form */
	{BRT_EDIGEST, EP_ANY, 400, "DIGEST_INVALID", NULL},
	{BRT_ETOOBIG, EP_ANY, 413, "SIZE_INVALID", NULL},
	{BRT_ERANGE, EP_UPLOADS, 416, "BLOB_UPLOAD_INVALID", NULL},
	{BRT_ERANGE, EP_ANY, 416, "RANGE_INVALID", NULL},
	{BRT_ECONFLICT, EP_UPLOADS, 409, "BLOB_UPLOAD_INVALID", NULL},
	{BRT_ECONFLICT, EP_ANY, 409, "DENIED", NULL},
	{BRT_EEXISTS, EP_ANY, 409, "DENIED", NULL},
	{BRT_EUNSUPPORTED, EP(BRT_EP_TOKEN), 400, "UNSUPPORTED", NULL},
	{BRT_EUNSUPPORTED, EP_ANY, 415, "UNSUPPORTED", NULL},
	{BRT_EUNAUTHORIZED, EP_ANY, 401, "UNAUTHORIZED", NULL},
	{BRT_EDENIED, EP_ANY, 403, "DENIED", NULL},
	/* Refusals by the operator's rules (rule_refusal). */
	{BRT_EIMMUTABLE, EP_ANY, 400, "TAG_INVALID", NULL},
	{BRT_EQUOTA, EP_ANY, 403, "DENIED", NULL},
	{BRT_EPROTECTED, EP_ANY, 403, "DENIED", NULL},
	{BRT_EBLOBUNKNOWN, EP_ANY, 400, "MANIFEST_BLOB_UNKNOWN", NULL},
	/* Sessions end when finished, cancelled or expired: a client that
	 * waits a little can go on. */
	{BRT_ELIMIT, EP_UPLOADS, 429, "TOOMANYREQUESTS", "60"},
	{BRT_ELIMIT, EP_ANY, 429, "TOOMANYREQUESTS", "1"},
	{BRT_EMETHOD, EP_ANY, 405, "UNSUPPORTED", NULL},
	/* The object store or the database is out of reach: the client's
	 * retry will do, once it is back. */
	{BRT_EUNAVAILABLE, EP_ANY, 503, "UNAVAILABLE", "5"},
};

static const struct api_error internal_error = {0, EP_ANY, 500, "UNKNOWN", NULL};

static const struct api_error *error_lookup(int error, brt_endpoint endpoint)
{
	for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
		if (error_table[i].error == error && (error_table[i].endpoints & EP(endpoint)))
			return &error_table[i];
	return &internal_error;
}

/* The message of each OCI code (the spec's wording). */
static const char *error_message(const char *code)
{
	static const struct {
		const char *code, *message;
	} messages[] = {
		{"BLOB_UNKNOWN", "blob unknown to registry"},
		{"BLOB_UPLOAD_INVALID", "blob upload invalid"},
		{"BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry"},
		{"DIGEST_INVALID", "provided digest did not match uploaded content"},
		{"MANIFEST_BLOB_UNKNOWN", "manifest references a blob unknown to the repository"},
		{"MANIFEST_INVALID", "manifest invalid"},
		{"MANIFEST_UNKNOWN", "manifest unknown to registry"},
		{"TAG_INVALID", "manifest tag did not match URI"},
		{"NAME_INVALID", "invalid repository name"},
		{"NAME_UNKNOWN", "repository name not known to registry"},
		{"SIZE_INVALID", "provided length did not match content length"},
		{"UNAUTHORIZED", "authentication required"},
		{"DENIED", "requested access to the resource is denied"},
		{"UNSUPPORTED", "the operation is unsupported"},
		{"TOOMANYREQUESTS", "too many requests"},
		{"RANGE_INVALID", "requested range not satisfiable"},
		{"UNAVAILABLE", "service unavailable"},
	};

	for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++)
		if (strcmp(messages[i].code, code) == 0)
			return messages[i].message;
	return "internal error";
}

struct MHD_Response *api_response_empty(void)
{
	return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
}

struct MHD_Response *api_response_json(const char *json, size_t len, int copy)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)json,
						copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);

	if (resp)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	return resp;
}

void api_send(brt_api_request *req, unsigned int status, struct MHD_Response *resp, uint64_t body_len)
{
	if (req->http->responded) {
		if (resp)
			MHD_destroy_response(resp);
		return;
	}
	/* Release the upload (and its lock) before the client can see the
	 * answer and send the next request for the same session. */
	api_upload_cleanup(req);
	if (resp)
		MHD_add_response_header(resp, api_version_header, "registry/2.0");
	brt_http_respond(req->http, status, resp, body_len);
}

int api_done(const brt_api_request *req)
{
	return req->http->responded || req->pending_status != 0;
}

static void fail_with(brt_api_request *req, int error, unsigned int status, const char *code,
		      const char *detail)
{
	req->pending_error = error;
	req->pending_status = status;
	req->pending_code = code;
	/* The detail must outlive this call: keep it in the pool. */
	req->pending_detail = brt_pool_strdup(req->pool, detail);
	if (!req->pending_detail)
		req->pending_detail = "";
	brt_http_discard_body(req->http);
}

int api_fail(brt_api_request *req, int error)
{
	const struct api_error *e;

	if (api_done(req))
		return error;
	e = error_lookup(error, req->endpoint);
	if (e->status >= 500) {
		/* The detail names our own machinery (hosts, paths): the log
		 * gets it, the client a word. */
		brt_log_error("%s %s: %s: %s", req->http->method_name, req->http->url, brt_error_name(error),
			      brt_error_last());
		fail_with(req, error, e->status, e->code,
			  e->status == 503 ? "storage or database unavailable; retry later"
					   : "internal error");
	} else {
		fail_with(req, error, e->status, e->code, brt_error_last());
	}
	return error;
}

/* The host clients reach us by: the configured public host, else the
 * request's Host header when it looks like a host name. */
static const char *public_host(brt_api_request *req)
{
	const char *host = req->api->config->public_host;
	size_t i;

	if (host[0])
		return host;
	host = api_header(req, MHD_HTTP_HEADER_HOST);
	if (!host || !host[0] || strlen(host) > 255)
		return "localhost";
	for (i = 0; host[i]; i++) {
		char c = host[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
			return "localhost";
	}
	return host;
}

/* Headers that come with some errors: the 401 challenge, the 405 Allow,
 * where an upload stands on a 416, when to retry a 429. */
static void add_error_headers(brt_api_request *req, struct MHD_Response *resp)
{
	const struct api_error *e = error_lookup(req->pending_error, req->endpoint);

	switch (req->pending_status) {
	case 401:
		if (req->endpoint == BRT_EP_TOKEN) {
			const char *challenge =
				brt_pool_printf(req->pool, "Basic realm=\"%s\"", req->api->auth.service);
			if (challenge)
				MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge);
		} else if (req->action) {
			const char *realm =
				brt_pool_printf(req->pool, "%s://%s/v2/token",
						req->api->tls ? "https" : "http", public_host(req));
			const char *challenge = realm ? brt_auth_challenge(req->pool, &req->api->auth, realm,
									   req->action, req->repo)
						      : NULL;
			if (challenge)
				MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge);
		}
		break;
	case 405:
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, brt_api_allowed_methods(req->endpoint));
		break;
	case 416:
		if (req->endpoint == BRT_EP_BLOB) {
			char content_range[48];
			snprintf(content_range, sizeof(content_range), "bytes */%llu",
				 (unsigned long long)req->blob_size);
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, content_range);
		} else if (req->session) {
			char range[64];
			uint64_t off = req->session->offset;
			snprintf(range, sizeof(range), "0-%llu", (unsigned long long)(off ? off - 1 : 0));
			MHD_add_response_header(resp, "Range", range);
		}
		break;
	case 429:
	case 503:
		if (e->retry_after)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, e->retry_after);
		break;
	}
}

/* Refusals by the operator's rules (quota, immutable tags): the detail
 * names the limit or the rule, and is what docker and other clients show,
 * so it is the message too. */
static int rule_refusal(int error)
{
	return error == BRT_EQUOTA || error == BRT_EIMMUTABLE || error == BRT_EPROTECTED;
}

static void send_pending(brt_api_request *req)
{
	json_t *body;
	char *text;
	struct MHD_Response *resp = NULL;
	size_t len = 0;

	body = json_pack("{s:[{s:s,s:s,s:s}]}", "errors", "code", req->pending_code, "message",
			 rule_refusal(req->pending_error) && req->pending_detail[0]
				 ? req->pending_detail
				 : error_message(req->pending_code),
			 "detail", req->pending_detail);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (text) {
		len = strlen(text);
		resp = api_response_json(text, len, 1);
		free(text);
	}
	if (resp)
		add_error_headers(req, resp);
	api_send(req, req->pending_status, resp, len);
}

const brt_principal *api_principal(brt_api_request *req)
{
	static const brt_principal nobody;
	brt_credentials credentials;
	brt_principal *p;

	if (req->principal)
		return req->principal;
	if (!(p = brt_pool_alloc(req->pool, sizeof(*p))))
		return &nobody;
	credentials.authorization = api_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
	credentials.device = brt_http_conn_data(req->http);
	credentials.tls_session = credentials.device ? brt_http_tls_session(req->http) : NULL;
	brt_auth_authenticate(p, &req->api->auth, req->pool, &credentials);
	req->principal = p;
	return p;
}

int api_base(brt_api_request *req)
{
	api_send(req, 200, api_response_json("{}", 2, 0), 2);
	return 0;
}

/* Route, authorise, run the row's begin step. */
static int begin(brt_api_request *req)
{
	brt_route route;
	int error;

	error = brt_api_route(&route, req->pool, req->http->method, req->http->url);
	req->endpoint = route.endpoint;
	req->repo = route.repo;
	req->reference = route.reference;
	if (error < 0)
		return error;
	if (req->repo)
		brt_meta_repo_account(req->account, req->repo);
	if (route.action) {
		req->action = route.action;
		if ((error = brt_auth_check(api_principal(req), route.action, req->repo)) < 0)
			return error;
	}
	if (!route.def)
		return brt_error_set(BRT_EMETHOD, "method %s is not allowed on %s", req->http->method_name,
				     req->http->url);
	req->route = route.def;
	if (route.def->streams)
		brt_http_stream(req->http);
	return route.def->begin ? route.def->begin(req) : 0;
}

/* The request's state, made on first use (from the request pool). */
static brt_api_request *request_state(brt_http_request *http, brt_api *api)
{
	brt_api_request *req = http->state;

	if (req || !(req = brt_pool_alloc(&http->pool, sizeof(*req))))
		return req;
	memset(req, 0, sizeof(*req));
	req->http = http;
	req->api = api;
	req->pool = &http->pool;
	http->state = req;
	return req;
}

static void on_headers(brt_http_request *http, void *payload)
{
	brt_api_request *req = request_state(http, payload);
	int error;

	if (!req) {
		/* Unanswered, the connection closes. */
		brt_log_error("out of request memory for %s %s", http->method_name, http->url);
		return;
	}
	brt_error_clear();
	if ((error = begin(req)) < 0)
		api_fail(req, error);
	/* An error before a body is read: answer now and let the connection
	 * close rather than read a body nobody wants. */
	if (req->pending_status && brt_http_has_body(http))
		send_pending(req);
}

static void on_body(brt_http_request *http, const char *data, size_t len, void *payload)
{
	brt_api_request *req = http->state;
	int error;

	(void)payload;
	if (!req || api_done(req))
		return;
	/* A body nobody asked for (e.g. on GET) is ignored. */
	if (!req->route || !req->route->body) {
		brt_http_discard_body(http);
		return;
	}
	if ((error = req->route->body(req, data, len)) < 0)
		api_fail(req, error);
}

static void on_complete(brt_http_request *http, void *payload)
{
	brt_api_request *req = http->state;
	int error;

	(void)payload;
	if (!req)
		return;
	if (!api_done(req) && req->route && (error = req->route->end(req)) < 0)
		api_fail(req, error);
	if (!req->http->responded && req->pending_status)
		send_pending(req);
}

static void on_cleanup(brt_http_request *http, void *payload)
{
	brt_api_request *req = http->state;

	(void)payload;
	if (!req)
		return;
	api_upload_cleanup(req);
	api_token_cleanup(req);
}

/* A request the HTTP layer refuses (ambiguous framing): the OCI error
 * format, like every other error. */
static void on_refused(brt_http_request *http, unsigned int status, brt_http_refusal why, const char *detail,
		       void *payload)
{
	brt_api_request *req = request_state(http, payload);

	if (!req)
		return;
	fail_with(req, why == BRT_HTTP_REFUSED_LENGTH ? BRT_ETOOBIG : BRT_EINVALID, status,
		  why == BRT_HTTP_REFUSED_LENGTH ? "SIZE_INVALID" : "UNSUPPORTED",
		  detail && detail[0] ? detail : "malformed request framing");
	send_pending(req);
}

void brt_api_handler(brt_http_handler *out, brt_api *api)
{
	memset(out, 0, sizeof(*out));
	out->on_headers = on_headers;
	out->on_body = on_body;
	out->on_complete = on_complete;
	out->on_cleanup = on_cleanup;
	out->on_refused = on_refused;
	/* The device verdict of a TLS connection. */
	out->conn_data_size = api->tls ? sizeof(brt_auth_device) : 0;
	out->pool_size = api->config->manifest_max + (1u << 20);
	out->payload = api;
}
