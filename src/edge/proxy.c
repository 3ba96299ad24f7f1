/* The forwarding handler of berth-edge.  A request is checked against the
 * short list of pull endpoints, then forwarded once its (ignored) body is
 * in: the upstream transfer runs until its headers are in, the client's
 * response is made from them, and the body follows through the
 * response's reader, which drives the transfer (see upstream.c).  The
 * proxy speaks for itself only when it refuses a request or cannot reach
 * the upstream; upstream answers, errors included, pass through with
 * their status and body.  With a cache, a blob or manifest asked for by
 * digest is answered from disk when this repository fetched it before,
 * and a full 200 fetch of one is written to the cache as it streams
 * through (see cache.h). */
#include "edge/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "common/dynbuf.h"
#include "common/error.h"
#include "common/log.h"
#include "oci/range.h"

#define PATH_QUERY_MAX 8192

#define REPOSITORY_MAX 512

typedef struct edge_request {
	brt_upstream *upstream;
	brt_edge_cache *cache;           /* NULL: no caching */
	brt_upstream_transfer *transfer; /* until a response owns it */
	int cacheable;                   /* a blob or manifest by digest */
	brt_digest digest;
	char repository[REPOSITORY_MAX];
} edge_request;

/* A streamed upstream body, and the cache writer it feeds (if any). */
typedef struct edge_body {
	brt_upstream_transfer *transfer;
	brt_edge_cache_writer *writer;
	char media_type[BRT_EDGE_MEDIA_TYPE_MAX + 1];
	char digest[BRT_DIGEST_STR_MAX + 1];
} edge_body;

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

int brt_edge_cacheable(char *repository_out, size_t cap, brt_digest *digest_out, const char *url)
{
	static const char *const kinds[] = {"/manifests", "/blobs"};
	const char *rest = url + 4, *last;

	if (cap)
		repository_out[0] = '\0';
	if (!brt_edge_forwarded(url) || strncmp(url, "/v2/", 4) != 0 || !(last = strrchr(rest, '/')) ||
	    !strchr(last, ':') || brt_digest_parse(digest_out, last + 1, strlen(last + 1)) < 0)
		return 0;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i]), name_len;
		if ((size_t)(last - rest) <= n || memcmp(last - n, kinds[i], n) != 0)
			continue;
		name_len = (size_t)(last - n - rest);
		if (name_len + 1 > cap)
			return 0;
		memcpy(repository_out, rest, name_len);
		repository_out[name_len] = '\0';
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

/* The whole body went through: keep it if it is what was asked for. */
static void finish_cache(edge_body *body)
{
	if (brt_edge_cache_writer_commit(body->writer, body->media_type) < 0)
		brt_log_warn("cache: %s not stored: %s", body->digest, brt_error_last());
	else
		brt_log_info("cache: stored %s", body->digest);
	brt_edge_cache_writer_free(body->writer);
	body->writer = NULL;
}

static ssize_t read_body(void *payload, uint64_t pos, char *buf, size_t max)
{
	edge_body *body = payload;
	ssize_t n;

	(void)pos;
	n = brt_upstream_read(body->transfer, buf, max);
	if (n > 0) {
		/* A failed write only costs the caching, never the download;
		 * the writer remembers the failure and stores nothing. */
		if (body->writer && brt_edge_cache_writer_add(body->writer, buf, (size_t)n) == 0 &&
		    brt_edge_cache_writer_complete(body->writer))
			finish_cache(body);
		return n;
	}
	if (n == 0) {
		if (body->writer)
			finish_cache(body);
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	brt_log_warn("%s", brt_error_last());
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* Also when the client went away mid-body: an unfinished writer drops
 * its temp file. */
static void free_body(void *payload)
{
	edge_body *body = payload;

	brt_edge_cache_writer_free(body->writer);
	brt_upstream_transfer_free(body->transfer);
	free(body);
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
	edge_body *body = NULL;
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
	else if (!(body = calloc(1, sizeof(*body))))
		resp = NULL;
	else {
		body->transfer = req->transfer;
		resp = MHD_create_response_from_callback(length >= 0 ? (uint64_t)length : MHD_SIZE_UNKNOWN,
							 64 * 1024, read_body, body, free_body);
	}
	if (!resp) {
		free(body);
		brt_http_respond(http, 500, NULL, 0);
		return;
	}
	/* Only a whole 200 body can be the object asked for. */
	if (body && req->cache && req->cacheable && status == 200 && !brt_http_header(http, "Range")) {
		if (brt_edge_cache_writer_open(&body->writer, req->cache, req->repository, &req->digest,
					       length) < 0)
			brt_log_warn("cache: %s", brt_error_last());
		snprintf(body->digest, sizeof(body->digest), "%s", req->digest.str);
	}
	for (size_t i = 0; brt_upstream_header(req->transfer, i, &name, &value); i++)
		for (size_t j = 0; j < sizeof(passed_headers) / sizeof(passed_headers[0]); j++) {
			if (strcasecmp(name, passed_headers[j]) != 0)
				continue;
			if (strcasecmp(name, "Link") == 0 || strcasecmp(name, "Location") == 0)
				value = rewrite_location(http, origin, value);
			if (value)
				MHD_add_response_header(resp, passed_headers[j], value);
			if (value && body && strcasecmp(name, "Content-Type") == 0)
				snprintf(body->media_type, sizeof(body->media_type), "%s", value);
		}
	MHD_add_response_header(resp, api_version_header, "registry/2.0");
	/* The response's reader owns a streamed transfer from here on. */
	if (http->method != BRT_HEAD && status != 204 && status != 304)
		req->transfer = NULL;
	brt_http_respond(http, status, resp, length > 0 ? (uint64_t)length : 0);
}

/* A hit: the object from disk, whole, one range of it, or its headers. */
static void serve_cached(brt_http_request *http, int fd, uint64_t size, const char *media_type,
			 const brt_digest *digest)
{
	uint64_t start = 0, len = size;
	unsigned int status = 200;
	const char *range = http->method == BRT_GET ? brt_http_header(http, "Range") : NULL;
	struct MHD_Response *resp;
	char text[BRT_DIGEST_STR_MAX + 64];
	int error;

	if (range) {
		error = brt_parse_range(&start, &len, range, size);
		if (error == BRT_ERANGE) {
			close(fd);
			respond_error(http, 416, "RANGE_INVALID", "invalid content range",
				      "range not satisfiable");
			return;
		}
		if (error < 0) { /* malformed or several ranges: all of it */
			start = 0;
			len = size;
		} else {
			status = 206;
		}
	}
	if (http->method == BRT_HEAD) {
		resp = MHD_create_response_from_callback(size, 4096, no_body, NULL, NULL);
		close(fd);
	} else if (!(resp = MHD_create_response_from_fd_at_offset64(len, fd, start))) {
		close(fd);
	}
	if (!resp) {
		brt_http_respond(http, 500, NULL, 0);
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, media_type);
	MHD_add_response_header(resp, "Docker-Content-Digest", digest->str);
	snprintf(text, sizeof(text), "\"%s\"", digest->str);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, text);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	MHD_add_response_header(resp, api_version_header, "registry/2.0");
	if (status == 206) {
		snprintf(text, sizeof(text), "bytes %llu-%llu/%llu", (unsigned long long)start,
			 (unsigned long long)(start + len - 1), (unsigned long long)size);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, text);
	}
	brt_http_respond(http, status, resp, http->method == BRT_HEAD ? 0 : len);
}

static void on_headers(brt_http_request *http, void *payload)
{
	brt_edge_context *context = payload;
	edge_request *req = brt_pool_alloc(&http->pool, sizeof(*req));

	if (!req) {
		brt_log_error("out of request memory for %s %s", http->method_name, http->url);
		return;
	}
	memset(req, 0, sizeof(*req));
	req->upstream = context->upstream;
	req->cache = context->cache;
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
	if (req->cache) {
		char media_type[BRT_EDGE_MEDIA_TYPE_MAX + 1];
		uint64_t size;
		int fd;

		req->cacheable =
			brt_edge_cacheable(req->repository, sizeof(req->repository), &req->digest, http->url);
		if (req->cacheable && brt_edge_cache_lookup(&fd, &size, media_type, req->cache,
							    req->repository, &req->digest) == 0) {
			brt_log_info("cache hit: %s %s", http->method_name, http->url);
			serve_cached(http, fd, size, media_type, &req->digest);
			return;
		}
		brt_log_info("cache %s: %s %s", req->cacheable ? "miss" : "forward", http->method_name,
			     http->url);
	}
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

void brt_edge_handler(brt_http_handler *out, brt_edge_context *context)
{
	memset(out, 0, sizeof(*out));
	out->on_headers = on_headers;
	out->on_body = on_body;
	out->on_complete = on_complete;
	out->on_cleanup = on_cleanup;
	out->on_refused = on_refused;
	out->pool_size = 64 * 1024;
	out->payload = context;
}
