/* The forwarding handler of berth-edge.  A request is checked against the
 * short list of pull endpoints, then forwarded once its (ignored) body is
 * in: the upstream transfer runs until its headers are in, the client's
 * response is made from them, and the body follows through the
 * response's reader, which drives the transfer (see upstream.c).  The
 * proxy speaks for itself only when it refuses a request or cannot reach
 * the upstream; upstream answers, errors included, pass through with
 * their status and body. */
#include "edge/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <microhttpd.h>

#include "common/dynbuf.h"
#include "common/error.h"
#include "common/log.h"

#define PATH_QUERY_MAX 8192

typedef struct edge_request {
	brt_upstream *upstream;
	brt_upstream_transfer *transfer; /* until a response owns it */
} edge_request;

static const char api_version_header[] = "Docker-Distribution-API-Version";

/* Upstream headers a pulling client needs; everything else (notably
 * WWW-Authenticate: the proxy authenticates itself) stays behind. */
static const char *const passed_headers[] = {
	"Content-Type", "Docker-Content-Digest", "ETag",          "Content-Range", "Accept-Ranges", "Link",
	"Location",     "OCI-Filters-Applied",   "Last-Modified", "Retry-After",
};

static void respond_error(brt_http_request *http, unsigned int status, const char *code, const char *message,
			  const char *detail)
{
	json_t *body = json_pack("{s:[{s:s,s:s,s:s}]}", "errors", "code", code, "message", message, "detail",
				 detail ? detail : "");
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct MHD_Response *resp = NULL;
	size_t len = text ? strlen(text) : 0;

	json_decref(body);
	if (text)
		resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		brt_http_respond(http, status, NULL, 0);
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, api_version_header, "registry/2.0");
	brt_http_respond(http, status, resp, len);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int brt_edge_forwarded(const char *url)
{
	static const char *const kinds[] = {"/manifests", "/blobs", "/referrers"};
	const char *rest, *last;

	if (strcmp(url, "/v2/") == 0)
		return 1;
	if (strncmp(url, "/v2/", 4) != 0 || strstr(url, "..") || strstr(url, "//"))
		return 0;
	rest = url + 4;
	for (const char *p = rest; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("._-/:", *p)))
			return 0;
	if (ends_with(rest, "/tags/list"))
		return strlen(rest) > strlen("/tags/list");
	/* <name>/<kind>/<reference>: the kind is the second-last segment, so
	 * a name may itself contain "manifests" or "blobs". */
	if (!(last = strrchr(rest, '/')) || last[1] == '\0')
		return 0;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i]);
		if ((size_t)(last - rest) > n && memcmp(last - n, kinds[i], n) == 0)
			return 1;
	}
	return 0;
}

static int add_escaped(brt_dynbuf *buf, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int error = 0;

	for (; *s && error == 0; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~", c))
			error = brt_dynbuf_add(buf, s, 1);
		else {
			char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
			error = brt_dynbuf_add(buf, esc, 3);
		}
	}
	return error;
}

typedef struct query_builder {
	brt_dynbuf *buf;
	int arguments;
	int error;
} query_builder;

static enum MHD_Result add_argument(void *payload, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	query_builder *q = payload;

	(void)kind;
	if (q->error == 0)
		q->error = brt_dynbuf_add(q->buf, q->arguments++ ? "&" : "?", 1);
	if (q->error == 0)
		q->error = add_escaped(q->buf, key);
	if (q->error == 0 && value) {
		if ((q->error = brt_dynbuf_add(q->buf, "=", 1)) == 0)
			q->error = add_escaped(q->buf, value);
	}
	return q->error == 0 ? MHD_YES : MHD_NO;
}

/* The path and the query, re-encoded from libmicrohttpd's decoded
 * arguments (from the request's pool), or NULL if too long. */
static const char *path_and_query(brt_http_request *http)
{
	brt_dynbuf buf;
	query_builder q = {&buf, 0, 0};
	const char *out = NULL;

	brt_dynbuf_init(&buf, PATH_QUERY_MAX);
	if ((q.error = brt_dynbuf_add(&buf, http->url, strlen(http->url))) == 0)
		MHD_get_connection_values(http->conn, MHD_GET_ARGUMENT_KIND, add_argument, &q);
	if (q.error == 0 && brt_dynbuf_add(&buf, "", 1) == 0)
		out = brt_pool_strdup(&http->pool, brt_dynbuf_ptr(&buf));
	brt_dynbuf_free(&buf);
	return out;
}

static ssize_t read_body(void *payload, uint64_t pos, char *buf, size_t max)
{
	ssize_t n;

	(void)pos;
	n = brt_upstream_read(payload, buf, max);
	if (n > 0)
		return n;
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	brt_log_warn("%s", brt_error_last());
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void free_body(void *payload)
{
	brt_upstream_transfer_free(payload);
}

static ssize_t no_body(void *payload, uint64_t pos, char *buf, size_t max)
{
	(void)payload;
	(void)pos;
	(void)buf;
	(void)max;
	return MHD_CONTENT_READER_END_OF_STREAM;
}

/* A Link or Location naming the upstream, made relative: the client
 * reaches it through the proxy.  Link values look like <URL>; rel=... */
static const char *rewrite_location(brt_http_request *http, const char *origin, const char *value)
{
	size_t n = strlen(origin);
	int bracket = value[0] == '<';
	const char *v = value + bracket;

	if (strncasecmp(v, origin, n) != 0 || v[n] != '/')
		return value;
	return bracket ? brt_pool_printf(&http->pool, "<%s", v + n) : v + n;
}

static void forward(brt_http_request *http, edge_request *req)
{
	const char *headers[4] = {NULL};
	static const char *const client_headers[] = {"Accept", "Range", "If-None-Match"};
	const char *target, *name, *value, *origin = brt_upstream_origin(req->upstream);
	struct MHD_Response *resp;
	unsigned int status;
	int64_t length;
	size_t count = 0;

	for (size_t i = 0; i < sizeof(client_headers) / sizeof(client_headers[0]); i++)
		if ((value = brt_http_header(http, client_headers[i])) &&
		    !(headers[count++] = brt_pool_printf(&http->pool, "%s: %s", client_headers[i], value))) {
			brt_http_respond(http, 500, NULL, 0);
			return;
		}
	if (!(target = path_and_query(http))) {
		respond_error(http, 414, "UNSUPPORTED", "the operation is unsupported",
			      "request URL too long");
		return;
	}
	if (brt_upstream_start(&req->transfer, req->upstream, http->method == BRT_HEAD ? "HEAD" : "GET",
			       target, headers) < 0) {
		brt_log_warn("%s %s: %s", http->method_name, target, brt_error_last());
		respond_error(http, 503, "UNKNOWN", "the upstream registry is unreachable", brt_error_last());
		return;
	}
	status = brt_upstream_status(req->transfer);
	length = brt_upstream_content_length(req->transfer);
	if (http->method == BRT_HEAD || status == 204 || status == 304)
		resp = MHD_create_response_from_callback(length >= 0 && status != 204 && status != 304
								 ? (uint64_t)length
								 : 0,
							 4096, no_body, NULL, NULL);
	else
		resp = MHD_create_response_from_callback(length >= 0 ? (uint64_t)length : MHD_SIZE_UNKNOWN,
							 64 * 1024, read_body, req->transfer, free_body);
	if (!resp) {
		brt_http_respond(http, 500, NULL, 0);
		return;
	}
	for (size_t i = 0; brt_upstream_header(req->transfer, i, &name, &value); i++)
		for (size_t j = 0; j < sizeof(passed_headers) / sizeof(passed_headers[0]); j++) {
			if (strcasecmp(name, passed_headers[j]) != 0)
				continue;
			if (strcasecmp(name, "Link") == 0 || strcasecmp(name, "Location") == 0)
				value = rewrite_location(http, origin, value);
			if (value)
				MHD_add_response_header(resp, passed_headers[j], value);
		}
	MHD_add_response_header(resp, api_version_header, "registry/2.0");
	/* The response's reader owns a streamed transfer from here on. */
	if (http->method != BRT_HEAD && status != 204 && status != 304)
		req->transfer = NULL;
	brt_http_respond(http, status, resp, length > 0 ? (uint64_t)length : 0);
}

static void on_headers(brt_http_request *http, void *payload)
{
	edge_request *req = brt_pool_alloc(&http->pool, sizeof(*req));

	if (!req) {
		brt_log_error("out of request memory for %s %s", http->method_name, http->url);
		return;
	}
	memset(req, 0, sizeof(*req));
	req->upstream = payload;
	http->state = req;
	if ((http->method != BRT_GET && http->method != BRT_HEAD) || !brt_edge_forwarded(http->url)) {
		respond_error(http, 405, "UNSUPPORTED", "the operation is unsupported",
			      "berth-edge forwards only pulls: GET and HEAD of /v2/, manifests, blobs, tags "
			      "and referrers");
		brt_http_discard_body(http);
		return;
	}
	/* A download runs as long as the upstream sends; the upstream's own
	 * stall timeout bounds it. */
	brt_http_stream(http);
}

static void on_body(brt_http_request *http, const char *data, size_t len, void *payload)
{
	(void)data;
	(void)len;
	(void)payload;
	brt_http_discard_body(http);
}

static void on_complete(brt_http_request *http, void *payload)
{
	edge_request *req = http->state;

	(void)payload;
	if (!req || http->responded)
		return;
	forward(http, req);
}

static void on_cleanup(brt_http_request *http, void *payload)
{
	edge_request *req = http->state;

	(void)payload;
	if (req) {
		brt_upstream_transfer_free(req->transfer);
		req->transfer = NULL;
	}
}

static void on_refused(brt_http_request *http, unsigned int status, brt_http_refusal why, const char *detail,
		       void *payload)
{
	(void)why;
	(void)payload;
	respond_error(http, status, "UNSUPPORTED", "malformed request",
		      detail && detail[0] ? detail : "malformed request framing");
}

void brt_edge_handler(brt_http_handler *out, brt_upstream *upstream)
{
	memset(out, 0, sizeof(*out));
	out->on_headers = on_headers;
	out->on_body = on_body;
	out->on_complete = on_complete;
	out->on_cleanup = on_cleanup;
	out->on_refused = on_refused;
	out->pool_size = 64 * 1024;
	out->payload = upstream;
}
