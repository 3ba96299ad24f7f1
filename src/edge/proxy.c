/* The forwarding handler of berth-edge.  A request is checked against the
 * short list of pull endpoints, then answered once its (ignored) body is
 * in.  Without a cache every request is forwarded: the upstream transfer
 * runs until its headers are in, the client's response is made from
 * them, and the body follows through the response's reader, which drives
 * the transfer (see upstream.c).  Upstream answers, errors included, pass
 * through with their status and body; the proxy speaks for itself only
 * when it refuses a request or cannot reach the upstream.
 *
 * With a cache, a blob or manifest asked for by digest is answered from
 * disk when this repository fetched it before, and otherwise joins (or
 * starts) the shared download of it (see download.h).  A manifest asked
 * for by tag is resolved upstream first with a HEAD, then served by
 * digest the same way; when the upstream cannot be reached (no
 * connection, a timeout, a 5xx), the digest it gave last for the tag is
 * served from the cache with a Warning: 110. */
#include "edge/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "common/clock.h"
#include "common/dynbuf.h"
#include "common/error.h"
#include "common/log.h"
#include "edge/download.h"
#include "oci/range.h"

#define PATH_QUERY_MAX 8192
#define REPOSITORY_MAX 512
#define METRICS_MAX 8192
/* How long a /healthz verdict on the upstream is reused, and how long
 * the check may take (ms). */
#define HEALTH_TTL_MS 2000
#define HEALTH_TIMEOUT_MS 3000

typedef struct edge_request {
	brt_edge_context *context;
	brt_upstream_transfer *transfer; /* until a response owns it */
	int pinned;                      /* a hit: the object is pinned until cleanup */
	int pushing;                     /* a push forwarded with its body (allow_push) */
	int push_failed;                 /* the body could not be passed on */
	brt_digest digest;
	char repository[REPOSITORY_MAX];
} edge_request;

/* A forwarded upstream body. */
typedef struct edge_body {
	brt_upstream_transfer *transfer;
	brt_edge_context *context;
} edge_body;

/* A body streamed from a shared download. */
typedef struct shared_body {
	brt_edge_download *download;
	struct MHD_Connection *conn;
	brt_edge_waiter waiter;
} shared_body;

static const char *const result_names[BRT_EDGE_RESULTS] = {
	"hit", "miss", "shared", "offline", "forward", "unavailable", "refused", "local",
};

static const char *const result_notes[BRT_EDGE_RESULTS] = {
	"cache=hit",     "cache=miss",        "cache=shared",  "cache=offline",
	"cache=forward", "cache=unavailable", "cache=refused", "cache=local",
};

static const char api_version_header[] = "Docker-Distribution-API-Version";

/* Upstream headers a pulling client needs; everything else (notably
 * WWW-Authenticate: the proxy authenticates itself) stays behind. */
static const char *const passed_headers[] = {
	"Content-Type",
	"Docker-Content-Digest",
	"ETag",
	"Content-Range",
	"Accept-Ranges",
	"Link",
	"Location",
	"OCI-Filters-Applied",
	"Last-Modified",
	"Retry-After",
	"Range",
	"Docker-Upload-UUID",
	"OCI-Chunk-Min-Length",
	"OCI-Subject",
};

/* An OCI error answer, with one extra header if `header` is set. */
static void respond_error_with(brt_http_request *http, unsigned int status, const char *code,
			       const char *message, const char *detail, const char *header,
			       const char *header_value)
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
	if (header)
		MHD_add_response_header(resp, header, header_value);
	brt_http_respond(http, status, resp, len);
}

static void respond_error(brt_http_request *http, unsigned int status, const char *code, const char *message,
			  const char *detail)
{
	respond_error_with(http, status, code, message, detail, NULL, NULL);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* 1 if `url` is under /v2/ and holds only characters that names,
 * references and digests may have, with no ".." and no empty segment:
 * it needs no re-encoding and cannot climb out of /v2/. */
static int plain_v2_path(const char *url)
{
	if (strncmp(url, "/v2/", 4) != 0 || strstr(url, "..") || strstr(url, "//"))
		return 0;
	for (const char *p = url + 4; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("._-/:", *p)))
			return 0;
	return 1;
}

int brt_edge_forwarded(const char *url)
{
	static const char *const kinds[] = {"/manifests", "/blobs", "/referrers"};
	const char *rest, *last;

	if (strcmp(url, "/v2/") == 0)
		return 1;
	if (!plain_v2_path(url))
		return 0;
	rest = url + 4;
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

int brt_edge_pushable(const char *url)
{
	static const char uploads[] = "/blobs/uploads";
	const char *rest, *last;
	size_t n = sizeof(uploads) - 1;

	if (strcmp(url, "/v2/_catalog") == 0 || brt_edge_forwarded(url))
		return 1;
	/* /v2/<name>/blobs/uploads/ and /v2/<name>/blobs/uploads/<id>. */
	if (!plain_v2_path(url) || !(last = strrchr(rest = url + 4, '/')))
		return 0;
	return (size_t)(last - rest) > n && memcmp(last - n, uploads, n) == 0;
}

/* /v2/<name>/<kind>/<reference> (`kind` like "/blobs"), a forwarded
 * path: 1 with the name in `name_out` (`cap` bytes) and *reference_out
 * borrowed from `url`. */
static int split_path(char *name_out, size_t cap, const char **reference_out, const char *url,
		      const char *kind)
{
	const char *rest = url + 4, *last;
	size_t n = strlen(kind), name_len;

	if (!brt_edge_forwarded(url) || strcmp(url, "/v2/") == 0 || !(last = strrchr(rest, '/')) ||
	    (size_t)(last - rest) <= n || memcmp(last - n, kind, n) != 0)
		return 0;
	name_len = (size_t)(last - n - rest);
	if (name_len + 1 > cap)
		return 0;
	memcpy(name_out, rest, name_len);
	name_out[name_len] = '\0';
	*reference_out = last + 1;
	return 1;
}

int brt_edge_cacheable(char *repository_out, size_t cap, brt_digest *digest_out, const char *url)
{
	const char *reference;

	if ((split_path(repository_out, cap, &reference, url, "/manifests") ||
	     split_path(repository_out, cap, &reference, url, "/blobs")) &&
	    strchr(reference, ':') && brt_digest_parse(digest_out, reference, strlen(reference)) == 0)
		return 1;
	if (cap)
		repository_out[0] = '\0';
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

static void note(brt_http_request *http, brt_edge_context *context, brt_edge_result result)
{
	http->log_note = result_notes[result];
	atomic_fetch_add(&context->results[result], 1);
}

static void respond_unreachable(brt_http_request *http, brt_edge_context *context, const char *detail)
{
	note(http, context, BRT_EDGE_UNAVAILABLE);
	atomic_fetch_add(&context->upstream_errors, 1);
	respond_error(http, 503, "UNAVAILABLE", "the upstream registry is unreachable", detail);
}

/* ------------------------------------------------------------ forwarding */

static ssize_t read_forwarded(void *payload, uint64_t pos, char *buf, size_t max)
{
	edge_body *body = payload;
	ssize_t n;

	(void)pos;
	n = brt_upstream_read(body->transfer, buf, max);
	if (n > 0) {
		atomic_fetch_add(&body->context->bytes_forwarded, (uint64_t)n);
		return n;
	}
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	brt_log_warn("%s", brt_error_last());
	atomic_fetch_add(&body->context->upstream_errors, 1);
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void free_forwarded(void *payload)
{
	edge_body *body = payload;

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

typedef struct header_joiner {
	const char *name;
	brt_dynbuf *buf;
	int count, error;
} header_joiner;

static enum MHD_Result join_header(void *payload, enum MHD_ValueKind kind, const char *key, const char *value)
{
	header_joiner *j = payload;

	(void)kind;
	if (strcasecmp(key, j->name) != 0 || !value)
		return MHD_YES;
	if (j->error == 0 && j->count++)
		j->error = brt_dynbuf_add(j->buf, ", ", 2);
	if (j->error == 0)
		j->error = brt_dynbuf_add(j->buf, value, strlen(value));
	return j->error == 0 ? MHD_YES : MHD_NO;
}

/* "Name: value" with every value the client sent for `name`, joined
 * with commas (clients send Accept once per media type), from the pool;
 * NULL if there is none or it is too long. */
static const char *client_header(brt_http_request *http, const char *name)
{
	brt_dynbuf buf;
	header_joiner j = {name, &buf, 0, 0};
	const char *out = NULL;

	brt_dynbuf_init(&buf, PATH_QUERY_MAX);
	if ((j.error = brt_dynbuf_add(&buf, name, strlen(name))) == 0)
		j.error = brt_dynbuf_add(&buf, ": ", 2);
	if (j.error == 0)
		MHD_get_connection_values(http->conn, MHD_HEADER_KIND, join_header, &j);
	if (j.error == 0 && j.count && brt_dynbuf_add(&buf, "", 1) == 0)
		out = brt_pool_strdup(&http->pool, brt_dynbuf_ptr(&buf));
	brt_dynbuf_free(&buf);
	return out;
}

/* Start `method` of `target` upstream with the client's negotiation
 * headers, into req->transfer.  0, or BRT_EIO (unreachable), BRT_ENOMEM. */
static int start_upstream(brt_http_request *http, edge_request *req, const char *method, const char *target)
{
	static const char *const client_headers[] = {"Accept", "Range", "If-None-Match"};
	const char *headers[4] = {NULL}, *value;
	size_t count = 0;

	for (size_t i = 0; i < sizeof(client_headers) / sizeof(client_headers[0]); i++)
		if ((value = client_header(http, client_headers[i])))
			headers[count++] = value;
	brt_upstream_transfer_free(req->transfer);
	req->transfer = NULL;
	return brt_upstream_start(&req->transfer, req->context->upstream, method, target, headers);
}

/* Answer the client from the upstream answer in req->transfer: status,
 * the headers a client needs and, unless HEAD or bodyless, the body. */
static void respond_from_upstream(brt_http_request *http, edge_request *req)
{
	const char *name, *value, *origin = brt_upstream_origin(req->context->upstream);
	unsigned int status = brt_upstream_status(req->transfer);
	int64_t length = brt_upstream_content_length(req->transfer);
	int bodyless = http->method == BRT_HEAD || status == 204 || status == 304;
	struct MHD_Response *resp;
	edge_body *body = NULL;

	if (bodyless)
		resp = MHD_create_response_from_callback(length >= 0 && status != 204 && status != 304
								 ? (uint64_t)length
								 : 0,
							 4096, no_body, NULL, NULL);
	else if (!(body = calloc(1, sizeof(*body))))
		resp = NULL;
	else {
		body->transfer = req->transfer;
		body->context = req->context;
		resp = MHD_create_response_from_callback(length >= 0 ? (uint64_t)length : MHD_SIZE_UNKNOWN,
							 64 * 1024, read_forwarded, body, free_forwarded);
	}
	if (!resp) {
		free(body);
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
	if (body)
		req->transfer = NULL;
	brt_http_respond(http, status, resp, length > 0 ? (uint64_t)length : 0);
}

/* Pass the request to the upstream as it is and its answer back. */
static void forward(brt_http_request *http, edge_request *req)
{
	const char *target = path_and_query(http);

	note(http, req->context, BRT_EDGE_FORWARD);
	if (!target) {
		respond_error(http, 414, "UNSUPPORTED", "the operation is unsupported",
			      "request URL too long");
		return;
	}
	if (start_upstream(http, req, http->method == BRT_HEAD ? "HEAD" : "GET", target) < 0) {
		brt_log_warn("%s %s: %s", http->method_name, target, brt_error_last());
		respond_unreachable(http, req->context, brt_error_last());
		return;
	}
	respond_from_upstream(http, req);
}

/* ------------------------------------------------------------ the cache */

static void add_object_headers(struct MHD_Response *resp, const char *media_type, const brt_digest *digest)
{
	char etag[BRT_DIGEST_STR_MAX + 3];

	snprintf(etag, sizeof(etag), "\"%s\"", digest->str);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, media_type);
	MHD_add_response_header(resp, "Docker-Content-Digest", digest->str);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	MHD_add_response_header(resp, api_version_header, "registry/2.0");
}

/* A hit: the object from disk (sendfile), whole, one range of it, or its
 * headers.  Takes `fd`. */
static void serve_cached(brt_http_request *http, edge_request *req, int fd, uint64_t size,
			 const char *media_type, const char *warning)
{
	uint64_t start = 0, len = size;
	unsigned int status = 200;
	const char *range = http->method == BRT_GET ? brt_http_header(http, "Range") : NULL;
	struct MHD_Response *resp;
	char text[96];
	int error;

	if (range) {
		error = brt_parse_range(&start, &len, range, size);
		if (error == BRT_ERANGE) {
			close(fd);
			snprintf(text, sizeof(text), "bytes */%llu", (unsigned long long)size);
			respond_error_with(http, 416, "RANGE_INVALID", "invalid content range",
					   "range not satisfiable", MHD_HTTP_HEADER_CONTENT_RANGE, text);
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
	add_object_headers(resp, media_type, &req->digest);
	if (status == 206) {
		snprintf(text, sizeof(text), "bytes %llu-%llu/%llu", (unsigned long long)start,
			 (unsigned long long)(start + len - 1), (unsigned long long)size);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, text);
	}
	if (warning)
		MHD_add_response_header(resp, "Warning", warning);
	if (http->method == BRT_GET)
		atomic_fetch_add(&req->context->bytes_from_cache, len);
	brt_http_respond(http, status, resp, http->method == BRT_HEAD ? 0 : len);
}

/* Look req->digest up for req->repository and serve it if there. */
static int try_cached(brt_http_request *http, edge_request *req, const char *warning)
{
	const char *media_type;
	uint64_t size;
	int fd;

	if (brt_edge_cache_lookup(&fd, &size, &media_type, req->context->cache, req->repository,
				  &req->digest) < 0)
		return 0;
	req->pinned = 1;
	serve_cached(http, req, fd, size, media_type, warning);
	return 1;
}

static void park_connection(void *payload)
{
	MHD_suspend_connection(((shared_body *)payload)->conn);
}

static void wake_connection(void *payload)
{
	MHD_resume_connection(((shared_body *)payload)->conn);
}

static ssize_t read_shared(void *payload, uint64_t pos, char *buf, size_t max)
{
	shared_body *body = payload;
	size_t n;
	int parked;

	if (brt_edge_download_read(&n, &parked, body->download, buf, max, pos, &body->waiter) < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (n > 0)
		return (ssize_t)n;
	/* Parked: libmicrohttpd calls again once the download woke it. */
	return parked ? 0 : MHD_CONTENT_READER_END_OF_STREAM;
}

static void free_shared(void *payload)
{
	shared_body *body = payload;

	brt_edge_download_leave(body->download, &body->waiter);
	free(body);
}

/* Stream a joined download to the client. */
static void serve_download(brt_http_request *http, edge_request *req, brt_edge_download *download)
{
	uint64_t size = brt_edge_download_size(download);
	shared_body *body = calloc(1, sizeof(*body));
	struct MHD_Response *resp = NULL;

	if (body) {
		body->download = download;
		body->conn = http->conn;
		body->waiter.park = park_connection;
		body->waiter.wake = wake_connection;
		body->waiter.payload = body;
		resp = MHD_create_response_from_callback(size, 64 * 1024, read_shared, body, free_shared);
	}
	if (!resp) {
		brt_edge_download_leave(download, NULL);
		free(body);
		brt_http_respond(http, 500, NULL, 0);
		return;
	}
	add_object_headers(resp, brt_edge_download_media_type(download), &req->digest);
	brt_http_respond(http, 200, resp, size);
}

/* A blob or manifest by digest (req->repository, req->digest), with a
 * cache: a hit, a grant after the upstream's yes, a shared download, or
 * the request forwarded as it is. */
static void serve_digest(brt_http_request *http, edge_request *req, int manifest)
{
	brt_edge_context *context = req->context;
	brt_edge_download *download;
	const char *name, *value;
	char target[REPOSITORY_MAX + 64 + BRT_DIGEST_STR_MAX];
	int shared, error;

	if (try_cached(http, req, NULL)) {
		note(http, context, BRT_EDGE_HIT);
		return;
	}
	snprintf(target, sizeof(target), "/v2/%s/%s/%s", req->repository, manifest ? "manifests" : "blobs",
		 req->digest.str);
	/* Stored for another repository: one HEAD asks whether this one
	 * may have it too, instead of downloading it again. */
	if (brt_edge_cache_has(context->cache, &req->digest) &&
	    start_upstream(http, req, "HEAD", target) == 0) {
		unsigned int status = brt_upstream_status(req->transfer);
		const char *media_type = NULL;

		for (size_t i = 0; brt_upstream_header(req->transfer, i, &name, &value); i++)
			if (strcasecmp(name, "Content-Type") == 0)
				media_type = value;
		if (status == 200 &&
		    brt_edge_cache_grant(context->cache, req->repository, &req->digest, media_type) == 0 &&
		    try_cached(http, req, NULL)) {
			note(http, context, BRT_EDGE_HIT);
			return;
		}
		if (status != 200 && status < 500) { /* no: the upstream's answer goes back */
			if (http->method == BRT_HEAD) {
				note(http, context, BRT_EDGE_FORWARD);
				respond_from_upstream(http, req);
			} else {
				forward(http, req);
			}
			return;
		}
	}
	/* A range, or a HEAD, of an object not here goes to the upstream. */
	if (http->method != BRT_GET || brt_http_header(http, "Range")) {
		forward(http, req);
		return;
	}
	error = brt_edge_download_join(&download, &shared, context->downloads, req->repository, &req->digest,
				       manifest);
	if (error == BRT_EIO) {
		respond_unreachable(http, context,
				    "the upstream registry is unreachable and this object is not cached");
		return;
	}
	if (error == BRT_EDIGEST) {
		note(http, context, BRT_EDGE_UNAVAILABLE);
		atomic_fetch_add(&context->upstream_errors, 1);
		respond_error(http, 502, "UNKNOWN", "the upstream registry sent a broken object",
			      brt_error_last());
		return;
	}
	if (error < 0) {
		brt_log_info("%s %s: forwarded as it is (%s)", http->method_name, http->url,
			     brt_error_last());
		forward(http, req);
		return;
	}
	note(http, context, shared ? BRT_EDGE_SHARED : BRT_EDGE_MISS);
	serve_download(http, req, download);
}

/* The upstream unreachable for a manifest by tag: the digest it gave
 * last for the tag, from the cache, marked stale. */
static void serve_offline(brt_http_request *http, edge_request *req, const char *tag, const char *detail)
{
	atomic_fetch_add(&req->context->upstream_errors, 1);
	if (brt_edge_cache_tag_get(&req->digest, req->context->cache, req->repository, tag) == 0 &&
	    try_cached(http, req,
		       "110 berth-edge \"Response is Stale: the upstream registry is unreachable\"")) {
		brt_log_warn("upstream unreachable (%s): %s:%s served as %s from the cache", detail,
			     req->repository, tag, req->digest.str);
		note(http, req->context, BRT_EDGE_OFFLINE);
		return;
	}
	note(http, req->context, BRT_EDGE_UNAVAILABLE);
	respond_error(http, 503, "UNAVAILABLE", "the upstream registry is unreachable",
		      brt_pool_printf(&http->pool, "%s:%s is not cached here (%s)", req->repository, tag,
				      detail));
}

/* A manifest by tag, with a cache: resolved upstream with a HEAD, then
 * served by digest. */
static void serve_tag(brt_http_request *http, edge_request *req, const char *tag)
{
	const char *name, *value, *digest = NULL, *target = path_and_query(http);
	unsigned int status;

	if (!target) {
		respond_error(http, 414, "UNSUPPORTED", "the operation is unsupported",
			      "request URL too long");
		return;
	}
	if (start_upstream(http, req, "HEAD", target) < 0) {
		serve_offline(http, req, tag, brt_error_last());
		return;
	}
	status = brt_upstream_status(req->transfer);
	if (status >= 500) {
		serve_offline(http, req, tag, brt_pool_printf(&http->pool, "status %u", status));
		return;
	}
	for (size_t i = 0; brt_upstream_header(req->transfer, i, &name, &value); i++)
		if (strcasecmp(name, "Docker-Content-Digest") == 0)
			digest = value;
	if (status != 200 || !digest || brt_digest_parse(&req->digest, digest, strlen(digest)) < 0) {
		/* An error (its body comes with a GET), or no digest to go by. */
		if (http->method == BRT_HEAD) {
			note(http, req->context, BRT_EDGE_FORWARD);
			respond_from_upstream(http, req);
		} else {
			forward(http, req);
		}
		return;
	}
	if (brt_edge_cache_tag_set(req->context->cache, req->repository, tag, &req->digest) < 0)
		brt_log_warn("cannot remember %s:%s: %s", req->repository, tag, brt_error_last());
	if (http->method == BRT_HEAD && !brt_edge_cache_has(req->context->cache, &req->digest)) {
		note(http, req->context, BRT_EDGE_FORWARD);
		respond_from_upstream(http, req);
		return;
	}
	brt_upstream_transfer_free(req->transfer);
	req->transfer = NULL;
	serve_digest(http, req, 1);
}

/* /v2/<name>/manifests/<tag>: 1 with the name in req->repository and
 * the tag in *tag_out (borrowed from `url`). */
static int manifest_tag(edge_request *req, const char **tag_out, const char *url)
{
	return split_path(req->repository, sizeof(req->repository), tag_out, url, "/manifests") &&
	       !strchr(*tag_out, ':');
}

/* ------------------------------------------------------------ local endpoints */

size_t brt_edge_metrics_text(char *buf, size_t cap, brt_edge_context *context)
{
	brt_edge_cache_stats stats;
	brt_edge_download_counts downloads;
	size_t len = 0;
	int n;

#define EMIT(...)                                                \
	do {                                                     \
		n = snprintf(buf + len, cap - len, __VA_ARGS__); \
		if (n < 0 || (size_t)n >= cap - len)             \
			return 0;                                \
		len += (size_t)n;                                \
	} while (0)

	memset(&stats, 0, sizeof(stats));
	memset(&downloads, 0, sizeof(downloads));
	if (context->cache)
		brt_edge_cache_stats_get(&stats, context->cache);
	if (context->downloads)
		brt_edge_downloads_counts(&downloads, context->downloads);
	EMIT("# HELP berth_edge_requests_total Requests by how they were answered.\n"
	     "# TYPE berth_edge_requests_total counter\n");
	for (size_t i = 0; i < BRT_EDGE_RESULTS; i++)
		EMIT("berth_edge_requests_total{result=\"%s\"} %llu\n", result_names[i],
		     (unsigned long long)atomic_load(&context->results[i]));
	EMIT("# HELP berth_edge_bytes_total Body bytes sent to clients from the cache, and received from "
	     "the upstream (downloads into the cache, and forwarded bodies).\n"
	     "# TYPE berth_edge_bytes_total counter\n"
	     "berth_edge_bytes_total{source=\"cache\"} %llu\n"
	     "berth_edge_bytes_total{source=\"upstream\"} %llu\n",
	     (unsigned long long)atomic_load(&context->bytes_from_cache),
	     (unsigned long long)(downloads.bytes + atomic_load(&context->bytes_forwarded)));
	EMIT("# HELP berth_edge_upstream_errors_total Upstream unreachable, 5xx answers and broken "
	     "transfers.\n# TYPE berth_edge_upstream_errors_total counter\nberth_edge_upstream_errors_total "
	     "%llu\n",
	     (unsigned long long)(atomic_load(&context->upstream_errors) + downloads.failed));
	EMIT("# HELP berth_edge_downloads_total Downloads into the cache: started, joined by another "
	     "request, failed.\n# TYPE berth_edge_downloads_total counter\n"
	     "berth_edge_downloads_total{event=\"started\"} %llu\n"
	     "berth_edge_downloads_total{event=\"shared\"} %llu\n"
	     "berth_edge_downloads_total{event=\"failed\"} %llu\n",
	     (unsigned long long)downloads.started, (unsigned long long)downloads.shared,
	     (unsigned long long)downloads.failed);
	EMIT("# HELP berth_edge_cache_bytes Bytes of cached objects (with space reserved by downloads).\n"
	     "# TYPE berth_edge_cache_bytes gauge\nberth_edge_cache_bytes %llu\n"
	     "# HELP berth_edge_cache_max_bytes The cache's bound (0: none).\n"
	     "# TYPE berth_edge_cache_max_bytes gauge\nberth_edge_cache_max_bytes %llu\n"
	     "# HELP berth_edge_cache_objects Cached objects.\n"
	     "# TYPE berth_edge_cache_objects gauge\nberth_edge_cache_objects %llu\n"
	     "# HELP berth_edge_cache_evictions_total Objects evicted to keep the bound.\n"
	     "# TYPE berth_edge_cache_evictions_total counter\nberth_edge_cache_evictions_total %llu\n",
	     (unsigned long long)stats.bytes, (unsigned long long)stats.max_bytes,
	     (unsigned long long)stats.objects, (unsigned long long)stats.evictions);
	EMIT("# HELP berth_edge_upstream_up Whether the upstream answered the last health check.\n"
	     "# TYPE berth_edge_upstream_up gauge\nberth_edge_upstream_up %d\n",
	     atomic_load(&context->upstream_reachable));
#undef EMIT
	return len;
}

static void respond_text(brt_http_request *http, unsigned int status, const char *type, const char *text)
{
	size_t len = strlen(text);
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);

	if (resp)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	brt_http_respond(http, status, resp, len);
}

static void serve_metrics(brt_http_request *http, brt_edge_context *context)
{
	char *text = brt_pool_alloc(&http->pool, METRICS_MAX);

	if (!text || brt_edge_metrics_text(text, METRICS_MAX, context) == 0) {
		brt_http_respond(http, 500, NULL, 0);
		return;
	}
	respond_text(http, 200, "text/plain; version=0.0.4; charset=utf-8", text);
}

/* Whether the upstream answers (any status below 500 to GET /v2/),
 * checked at most every HEALTH_TTL_MS. */
static void serve_health(brt_http_request *http, brt_edge_context *context)
{
	int64_t now = brt_monotonic_ms();
	int up;

	if (now - atomic_load(&context->health_checked_ms) >= HEALTH_TTL_MS) {
		up = brt_upstream_probe(context->upstream, HEALTH_TIMEOUT_MS) == 0;
		atomic_store(&context->upstream_reachable, up);
		atomic_store(&context->health_checked_ms, now);
	}
	up = atomic_load(&context->upstream_reachable);
	respond_text(http, up ? 200 : 503, "application/json",
		     up ? "{\"status\":\"ok\",\"upstream\":\"reachable\"}\n"
			: brt_pool_printf(&http->pool,
					  "{\"status\":\"degraded\",\"upstream\":\"unreachable\",\"cache\":"
					  "\"%s\"}\n",
					  context->cache ? "serving" : "none"));
}

/* ------------------------------------------------------------ handler */

/* A push, delete or catalog request with allow_push: the upstream
 * transfer starts now and the body streams into it (on_body); the
 * answer comes once it is all sent (on_complete). */
static void start_push(brt_http_request *http, edge_request *req)
{
	static const char *const client_headers[] = {"Content-Type", "Content-Range", "Accept"};
	const char *headers[4] = {NULL}, *value, *target = path_and_query(http);
	const char *length_text = brt_http_header(http, MHD_HTTP_HEADER_CONTENT_LENGTH);
	int64_t length = brt_http_has_body(http) ? -1 : 0;
	size_t count = 0;

	note(http, req->context, BRT_EDGE_FORWARD);
	req->pushing = 1;
	brt_http_stream(http);
	if (length_text && brt_http_has_body(http)) {
		char *end;
		unsigned long long v = strtoull(length_text, &end, 10);
		if (*end == '\0' && v <= INT64_MAX)
			length = (int64_t)v;
	}
	for (size_t i = 0; i < sizeof(client_headers) / sizeof(client_headers[0]); i++)
		if ((value = client_header(http, client_headers[i])))
			headers[count++] = value;
	if (!target || brt_upstream_send_start(&req->transfer, req->context->upstream, http->method_name,
					       target, headers, http->method == BRT_GET ? -2 : length) < 0) {
		req->push_failed = 1;
		brt_http_discard_body(http);
	}
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
	req->context = context;
	http->state = req;
	if ((http->method == BRT_GET || http->method == BRT_HEAD) &&
	    (strcmp(http->url, "/metrics") == 0 || strcmp(http->url, "/healthz") == 0))
		return;
	if (context->allow_push && http->method != BRT_GET && http->method != BRT_HEAD &&
	    http->method != BRT_OTHER_METHOD && brt_edge_pushable(http->url)) {
		start_push(http, req);
		return;
	}
	if ((http->method != BRT_GET && http->method != BRT_HEAD) ||
	    !(brt_edge_forwarded(http->url) ||
	      (context->allow_push && strcmp(http->url, "/v2/_catalog") == 0))) {
		note(http, context, BRT_EDGE_REFUSED);
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
	edge_request *req = http->state;

	(void)payload;
	if (!req || !req->pushing || req->push_failed) {
		brt_http_discard_body(http);
		return;
	}
	if (brt_upstream_send(req->transfer, data, len) < 0) {
		brt_log_warn("%s %s: %s", http->method_name, http->url, brt_error_last());
		req->push_failed = 1;
		brt_http_discard_body(http);
	}
}

static void on_complete(brt_http_request *http, void *payload)
{
	edge_request *req = http->state;
	const char *tag;

	(void)payload;
	if (!req || http->responded)
		return;
	if (req->pushing) {
		if (!req->push_failed && brt_upstream_send_end(req->transfer, req->context->upstream) == 0)
			respond_from_upstream(http, req);
		else
			respond_unreachable(http, req->context, brt_error_last());
		return;
	}
	if (http->url[0] != '/' || http->url[1] != 'v') {
		note(http, req->context, BRT_EDGE_LOCAL);
		if (strcmp(http->url, "/metrics") == 0)
			serve_metrics(http, req->context);
		else
			serve_health(http, req->context);
		return;
	}
	if (req->context->cache) {
		if (brt_edge_cacheable(req->repository, sizeof(req->repository), &req->digest, http->url)) {
			serve_digest(http, req, strstr(http->url, "/manifests/") != NULL);
			return;
		}
		if (manifest_tag(req, &tag, http->url)) {
			serve_tag(http, req, tag);
			return;
		}
	}
	forward(http, req);
}

static void on_cleanup(brt_http_request *http, void *payload)
{
	edge_request *req = http->state;

	(void)payload;
	if (!req)
		return;
	brt_upstream_transfer_free(req->transfer);
	req->transfer = NULL;
	if (req->pinned)
		brt_edge_cache_unpin(req->context->cache, &req->digest);
	req->pinned = 0;
}

static void on_refused(brt_http_request *http, unsigned int status, brt_http_refusal why, const char *detail,
		       void *payload)
{
	(void)why;
	(void)payload;
	respond_error(http, status, "UNSUPPORTED", "malformed request",
		      detail && detail[0] ? detail : "malformed request framing");
}

static void on_drained(void *payload)
{
	brt_edge_context *context = payload;

	/* Parked readers must be awake before the connections close. */
	brt_edge_downloads_stop(context->downloads);
}

int brt_edge_context_init(brt_edge_context *context)
{
	for (size_t i = 0; i < BRT_EDGE_RESULTS; i++)
		atomic_store(&context->results[i], 0);
	atomic_store(&context->bytes_from_cache, 0);
	atomic_store(&context->bytes_forwarded, 0);
	atomic_store(&context->upstream_errors, 0);
	atomic_store(&context->health_checked_ms, INT64_MIN / 2);
	atomic_store(&context->upstream_reachable, 0);
	context->downloads = NULL;
	if (context->cache)
		return brt_edge_downloads_new(&context->downloads, context->cache, context->upstream);
	return 0;
}

void brt_edge_context_free(brt_edge_context *context)
{
	brt_edge_downloads_free(context->downloads);
	context->downloads = NULL;
}

void brt_edge_handler(brt_http_handler *out, brt_edge_context *context)
{
	memset(out, 0, sizeof(*out));
	out->on_headers = on_headers;
	out->on_body = on_body;
	out->on_complete = on_complete;
	out->on_cleanup = on_cleanup;
	out->on_refused = on_refused;
	out->on_drained = on_drained;
	out->pool_size = 64 * 1024;
	out->payload = context;
}
