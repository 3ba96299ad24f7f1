/* Blob reads and deletes: HEAD and GET (from a file descriptor when the
 * store offers one, with single-range support) and DELETE of a blob's link
 * from a repository. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/internal.h"
#include "common/log.h"
#include "oci/range.h"

/* HEAD: libmicrohttpd sends the size as Content-Length and never calls us. */
static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	(void)pos;
	(void)buf;
	(void)max;
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* Streaming through a store reader when there is no file descriptor.  The
 * first block is read before the response is created: once the status
 * line is out, a read error can only cut the connection, so a store that
 * fails at once (the common case: a missing or unreadable object) gets a
 * proper error response instead. */
#define BLOB_HEAD_MAX (64 * 1024)

typedef struct blob_stream {
	brt_blob_reader *reader;
	size_t head_len, head_pos;
	char head[BLOB_HEAD_MAX];
} blob_stream;

static ssize_t read_blob(void *cls, uint64_t pos, char *buf, size_t max)
{
	blob_stream *stream = cls;
	size_t n = 0;

	(void)pos;
	if (stream->head_pos < stream->head_len) {
		n = stream->head_len - stream->head_pos;
		if (n > max)
			n = max;
		memcpy(buf, stream->head + stream->head_pos, n);
		stream->head_pos += n;
		return (ssize_t)n;
	}
	if (stream->reader->read(stream->reader, buf, max, &n) < 0) {
		/* The status is sent: all that is left is to cut the body
		 * short, so the client sees a truncated transfer, not a
		 * complete-looking wrong blob. */
		brt_log_error("blob read failed mid-stream: %s", brt_error_last());
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

/* A body read from the store's descriptor with pread(2) into the
 * response's buffer and sent with send(2), rather than handed to
 * libmicrohttpd for sendfile(2): measured on loopback (Linux 6.18, 1 GiB
 * GET with curl), sendfile cost the server more CPU per GiB (0.74-0.88 s
 * against 0.44-0.62 s) and the transfer took longer (0.92 s against
 * 0.62 s median), because libmicrohttpd sends at most 128 KiB per
 * sendfile call in its epoll mode and the client then copies from cold
 * page-cache pages; read into a buffer that stays in the CPU cache, the
 * data is warm for both copies (BENCHMARKS.md, issue 10). */
#define BLOB_BLOCK (256 * 1024)

typedef struct fd_body {
	int fd;
	uint64_t offset; /* of the response's first byte in the object */
} fd_body;

static ssize_t read_fd(void *cls, uint64_t pos, char *buf, size_t max)
{
	fd_body *body = cls;
	ssize_t n;

	do
		n = pread(body->fd, buf, max, (off_t)(body->offset + pos));
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		/* The status is sent: cut the body short (see read_blob).  An
		 * end of file here is an object that shrank after its size was
		 * checked; libmicrohttpd would take 0 for "try again". */
		brt_log_error("blob read failed mid-stream: %s",
			      n < 0 ? strerror(errno) : "unexpected end of file");
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	return n;
}

static void free_fd_body(void *cls)
{
	fd_body *body = cls;

	close(body->fd);
	free(body);
}

static void free_stream(void *cls)
{
	blob_stream *stream = cls;

	stream->reader->free(stream->reader);
	free(stream);
}

/* The digest in the path; its parse error (detail kept) is a 400
 * DIGEST_INVALID whatever made it invalid. */
static int parse_digest(brt_api_request *req)
{
	return brt_digest_parse(&req->digest, req->reference, strlen(req->reference)) < 0 ? BRT_EDIGEST : 0;
}

/* An object of another size than recorded (torn, truncated) is not there
 * to serve: 404 BLOB_UNKNOWN, so that a client pushes it again (a verified
 * push puts a fresh object in place) rather than pulling bytes that cannot
 * match.  A missing one fails to open with the same answer. */
static int check_object_size(brt_api_request *req, const char *key, uint64_t stored, uint64_t expected)
{
	if (stored == expected)
		return 0;
	brt_log_warn("blob %s in %s: object %s has %llu bytes, %llu recorded", req->digest.str, req->repo,
		     key, (unsigned long long)stored, (unsigned long long)expected);
	return brt_error_set(BRT_ENOTFOUND, "the stored copy of this blob is damaged; push it again");
}

/* The response body: `len` bytes of object `key` (`size` bytes recorded)
 * from `offset`, into *out. */
static int open_body(struct MHD_Response **out, brt_api_request *req, const char *key, uint64_t size,
		     uint64_t offset, uint64_t len)
{
	brt_blobstore *bs = req->api->blobs;
	brt_blob_reader *reader = NULL;
	blob_stream *stream;
	fd_body *body;
	size_t head_max;
	uint64_t stored = 0;
	int fd = -1;
	int error;

	*out = NULL;
	/* From a descriptor when the store has one (see read_fd). */
	error = brt_blobstore_open_fd(&fd, &stored, bs, key);
	if (error == 0) {
		error = check_object_size(req, key, stored, size);
		if (error == 0 && !(body = malloc(sizeof(*body))))
			error = brt_error_set(BRT_ENOMEM, "out of memory");
		if (error < 0) {
			close(fd);
			return error;
		}
		body->fd = fd;
		body->offset = offset;
		/* A large body is read front to back once: ask for big
		 * readahead.  Uploads bypass the page cache (O_DIRECT), so a
		 * blob's first GET after its push reads from the disk. */
		if (len >= BLOB_BLOCK)
			(void)posix_fadvise(fd, (off_t)offset, (off_t)len, POSIX_FADV_SEQUENTIAL);
		*out = MHD_create_response_from_callback(len, len < BLOB_BLOCK ? (size_t)len + 1 : BLOB_BLOCK,
							 read_fd, body, free_fd_body);
		if (!*out) {
			free_fd_body(body);
			return brt_error_set(BRT_ENOMEM, "cannot create a response");
		}
		return 0;
	}
	if (error != BRT_EUNSUPPORTED)
		return error;
	if ((error = brt_blobstore_reader_open(&reader, bs, key, offset)) < 0)
		return error;
	if (!(stream = malloc(sizeof(*stream)))) {
		reader->free(reader);
		return brt_error_set(BRT_ENOMEM, "out of memory");
	}
	stream->reader = reader;
	stream->head_len = 0;
	stream->head_pos = 0;
	/* Fill the head as far as the object goes: a reader may return
	 * less than asked before the end. */
	head_max = len < BLOB_HEAD_MAX ? (size_t)len : BLOB_HEAD_MAX;
	while (stream->head_len < head_max) {
		size_t n = 0;
		if ((error = reader->read(reader, stream->head + stream->head_len,
					  head_max - stream->head_len, &n)) < 0) {
			/* Answer with the read's detail, not the free's. */
			api_fail(req, error);
			free_stream(stream);
			return error;
		}
		if (n == 0)
			break;
		stream->head_len += n;
	}
	*out = MHD_create_response_from_callback(len, BLOB_BLOCK, read_blob, stream, free_stream);
	if (!*out) {
		free_stream(stream);
		return brt_error_set(BRT_ENOMEM, "cannot create a response");
	}
	return 0;
}

/* storage.s3.redirect: 307 to a presigned URL of the object, so its bytes
 * go from the object store straight to the client (who sends its Range
 * there).  The access was checked here; the URL grants that one object for
 * redirectttl. */
static int redirect(brt_api_request *req, const char *key)
{
	struct MHD_Response *resp;
	/* Endpoint, bucket, prefix and key, the signature's query and a
	 * session token if there is one. */
	char url[8192];
	int error;

	if ((error = brt_blobstore_presign(req->api->blobs, key, req->api->config->s3.redirect_ttl, url,
					   sizeof(url))) < 0)
		return error;
	if (!(resp = api_response_empty()))
		return brt_error_set(BRT_ENOMEM, "cannot create a response");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, url);
	MHD_add_response_header(resp, "Docker-Content-Digest", req->digest.str);
	api_send(req, 307, resp, 0);
	return 0;
}

int api_blob_get(brt_api_request *req)
{
	brt_blob_info info;
	struct MHD_Response *resp;
	uint64_t start = 0, len;
	unsigned int status = 200;
	const char *range;
	char content_range[96];
	int error;

	if ((error = parse_digest(req)) < 0 ||
	    (error = brt_meta_blob_get(req->api->meta, &info, req->pool, req->repo, req->digest.str)) < 0)
		return error;
	/* A client that just asked whether the blob is there is likely to
	 * list it in a manifest next: keep the link out of GC's reach, at
	 * most hourly (or twice per grace period, when that is shorter; with
	 * no grace period nothing is spared, and nothing is written). */
	if (req->api->config->gc_grace > 0) {
		int64_t now = brt_now_ms(), every = (int64_t)req->api->config->gc_grace * 1000 / 2;

		if (every > BRT_LINK_TOUCH_INTERVAL_MS)
			every = BRT_LINK_TOUCH_INTERVAL_MS;
		if (now - info.touched_at >= every)
			brt_meta_blob_touch(req->api->meta, req->repo, req->digest.str, now);
	}
	len = info.size;
	req->blob_size = info.size;
	range = req->http->method == BRT_GET ? api_header(req, MHD_HTTP_HEADER_RANGE) : NULL;
	if (range) {
		error = brt_parse_range(&start, &len, range, info.size);
		if (error == BRT_ERANGE)
			return brt_error_set(BRT_ERANGE, "range not satisfiable for a blob of %llu bytes",
					     (unsigned long long)info.size);
		if (error < 0) { /* malformed or multi-range: send it all */
			start = 0;
			len = info.size;
		} else {
			status = 206;
		}
	}
	/* HEAD answers from the metadata alone (a blob fsck found damaged is
	 * unknown there); GET checks the object it opens. */
	if (req->http->method == BRT_GET && req->api->config->s3.redirect)
		return redirect(req, info.storage_key);
	if (req->http->method == BRT_HEAD) {
		if (!(resp = MHD_create_response_from_callback(info.size, 4096, no_body, NULL, NULL)))
			return brt_error_set(BRT_ENOMEM, "cannot create a response");
	} else if ((error = open_body(&resp, req, info.storage_key, info.size, start, len)) < 0) {
		return error;
	}
	MHD_add_response_header(resp, "Docker-Content-Digest", req->digest.str);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	{
		char etag[BRT_DIGEST_STR_MAX + 3];
		snprintf(etag, sizeof(etag), "\"%s\"", req->digest.str);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "max-age=31536000");
	if (status == 206) {
		snprintf(content_range, sizeof(content_range), "bytes %llu-%llu/%llu",
			 (unsigned long long)start, (unsigned long long)(start + len - 1),
			 (unsigned long long)info.size);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, content_range);
	}
	api_send(req, status, resp, req->http->method == BRT_HEAD ? 0 : len);
	return 0;
}

int api_blob_delete(brt_api_request *req)
{
	int error;

	if ((error = parse_digest(req)) < 0 ||
	    (error = brt_meta_blob_unlink(req->api->meta, &(brt_blob_link){.account_id = req->account,
									   .repo = req->repo,
									   .digest = req->digest.str,
									   .now = brt_now_ms()})) < 0)
		return error;
	api_send(req, 202, api_response_empty(), 0);
	return 0;
}
