/* The S3 blob store driver (see s3.h): objects, attempts that turn
 * appends into parts and a spill object, commit by completing the
 * multipart upload, streaming readers over ranged GETs, listings for the
 * collector and the janitor.  The store is read-only after open except
 * for its idle handle list (under a mutex), so threads share it. */
#include "storage/s3/s3_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/random.h"

/* CopyObject copies at most this much; larger objects are copied part by
 * part with UploadPartCopy. */
#define COPY_SINGLE_MAX ((uint64_t)5 << 30)
/* Part size of such a multipart copy (raised to stay within 10000 parts). */
#define COPY_PART ((uint64_t)512 << 20)
/* A reader's buffer: what curl delivered and read() has not taken yet. */
#define READER_BUF ((size_t)256 << 10)
/* Largest single delivery a reader takes (curl's are 16 KiB). */
#define READER_CHUNK_MAX ((size_t)8 << 20)
/* Most multipart uploads upload_list keeps track of at once. */
#define MPU_LIST_MAX 100000

/* ------------------------------------------------------------ keys */

static int make_key(char *out, s3_store *s3, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "<prefix>" followed by the formatted rest. */
static int make_key(char *out, s3_store *s3, const char *fmt, ...)
{
	size_t len = strlen(s3->o.prefix);
	va_list ap;
	int n;

	memcpy(out, s3->o.prefix, len + 1);
	va_start(ap, fmt);
	n = vsnprintf(out + len, S3_KEY_MAX - len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= S3_KEY_MAX - len)
		return brt_error_set(BRT_EINVALID, "S3: key too long");
	return 0;
}

static int blob_key(char *out, s3_store *s3, const char *key)
{
	int error;

	if ((error = brt_blob_key_check(key)) < 0)
		return error;
	return make_key(out, s3, "blobs/%s", key);
}

static int own_key(char *out, s3_store *s3, const char *upload_id)
{
	return make_key(out, s3, "blobs/u/%s", upload_id);
}

static int spill_key(char *out, s3_store *s3, const char *upload_id, const char *name)
{
	return make_key(out, s3, "uploads/%s/%s", upload_id, name);
}

/* A query "<fixed><encoded value><rest>" into `out` (S3_URL_MAX). */
static int query3(char *out, const char *fixed, const char *value, const char *rest)
{
	brt_dynbuf q;
	int error;

	brt_dynbuf_init(&q, S3_URL_MAX - 1);
	error = brt_dynbuf_addf(&q, "%s", fixed);
	if (error == 0 && value)
		error = s3_encode(&q, value, 0);
	if (error == 0 && rest)
		error = brt_dynbuf_addf(&q, "%s", rest);
	if (error == 0)
		memcpy(out, brt_dynbuf_ptr(&q), brt_dynbuf_len(&q) + 1);
	brt_dynbuf_free(&q);
	return error < 0 ? brt_error_set(BRT_EINVALID, "S3: query too long") : 0;
}

/* ------------------------------------------------------------ requests */

static int is_code(const s3_response *resp, const char *code)
{
	return strcmp(resp->code, code) == 0;
}

/* HEAD a full key: its size and ETag (`etag_out` may be NULL). */
static int head_object(s3_store *s3, const char *full, uint64_t *size_out, char *etag_out, const char *what)
{
	s3_request req = {.method = "HEAD", .key = full, .retry = S3_RETRY_ALL, .what = what};
	s3_response resp;
	int error;

	*size_out = 0;
	s3_response_init(&resp);
	if ((error = s3_perform(s3, &req, &resp)) < 0)
		goto done;
	if (resp.status == 404)
		error = brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", what);
	else if (resp.status != 200)
		error = s3_fail(&req, &resp);
	*size_out = resp.length;
	if (etag_out)
		memcpy(etag_out, resp.etag, sizeof(resp.etag));
done:
	s3_response_free(&resp);
	return error;
}

/* DELETE a full key; an absent one is no error. */
static int delete_object(s3_store *s3, const char *full, const char *what)
{
	s3_request req = {.method = "DELETE", .key = full, .retry = S3_RETRY_ALL, .what = what};
	s3_response resp;
	int error;

	s3_response_init(&resp);
	if ((error = s3_perform(s3, &req, &resp)) == 0 && resp.status != 204 && resp.status != 200 &&
	    resp.status != 404)
		error = s3_fail(&req, &resp);
	s3_response_free(&resp);
	return error;
}

static int put_object(s3_store *s3, const char *full, const void *data, size_t len, const char *what)
{
	s3_request req = {.method = "PUT",
			  .key = full,
			  .body = data,
			  .body_len = len,
			  .retry = S3_RETRY_ALL,
			  .what = what};
	s3_response resp;
	int error;

	s3_response_init(&resp);
	if ((error = s3_perform(s3, &req, &resp)) == 0 && resp.status != 200)
		error = s3_fail(&req, &resp);
	s3_response_free(&resp);
	return error;
}

/* A 200 answer that carries an <Error> body (CopyObject, UploadPartCopy,
 * CompleteMultipartUpload fail that way after the headers went out):
 * its code into resp->code, 1 if it is one.  Otherwise 0, and the root
 * element must be `root`, or -1. */
static int result_body(s3_response *resp, const char *root_name, xmlDoc **doc_out)
{
	xmlDoc *doc = s3_xml_parse(brt_dynbuf_ptr(&resp->body), brt_dynbuf_len(&resp->body));
	xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;

	*doc_out = NULL;
	if (s3_xml_is(root, "Error")) {
		if (s3_xml_text(root, "Code", resp->code, sizeof(resp->code)) < 0)
			memcpy(resp->code, "Error", 6);
		xmlFreeDoc(doc);
		return 1;
	}
	if (!s3_xml_is(root, root_name)) {
		xmlFreeDoc(doc);
		return -1;
	}
	*doc_out = doc;
	return 0;
}

/* CopyObject, or UploadPartCopy into part `part` of `mpu` with `range`:
 * one server-side copy request.  BRT_ENOTFOUND if the source (or the
 * multipart upload) is gone; the copy's ETag into `etag_out` (may be
 * NULL). */
static int copy_request(s3_store *s3, const char *src, const char *dst, const char *mpu, unsigned int part,
			const char *range, char *etag_out, const char *what)
{
	char query[S3_URL_MAX], number[32];
	s3_request req = {.method = "PUT",
			  .key = dst,
			  .copy_source = src,
			  .copy_range = range,
			  .retry = S3_RETRY_ALL,
			  .what = what};
	s3_response resp;
	xmlDoc *doc = NULL;
	int error, failed;

	s3_response_init(&resp);
	if (mpu) {
		snprintf(number, sizeof(number), "partNumber=%u&uploadId=", part);
		if ((error = query3(query, number, mpu, NULL)) < 0)
			goto done;
		req.query = query;
	}
	for (unsigned int attempt = 0;; attempt++) {
		if ((error = s3_perform(s3, &req, &resp)) < 0)
			goto done;
		if (resp.status != 200)
			break;
		failed = result_body(&resp, mpu ? "CopyPartResult" : "CopyObjectResult", &doc);
		/* An error after the 200 went out is worth another try when
		 * the store says it was its own. */
		if (failed == 1 && (is_code(&resp, "InternalError") || is_code(&resp, "SlowDown")) &&
		    attempt < s3->o.retries) {
			s3_backoff(attempt + 1);
			continue;
		}
		if (failed == 1) {
			resp.status = 500;
		} else if (failed < 0) {
			error = brt_error_set(BRT_EIO, "S3 %s: unreadable answer", what);
			goto done;
		}
		break;
	}
	if (resp.status == 404)
		error = brt_error_set(BRT_ENOTFOUND, "blob store: %s: the source is gone (%s)", what,
				      resp.code[0] ? resp.code : "404");
	else if (resp.status != 200)
		error = s3_fail(&req, &resp);
	else if (etag_out && (s3_xml_text(xmlDocGetRootElement(doc), "ETag", etag_out, S3_ETAG_MAX + 1) < 0 ||
			      !s3_etag_valid(etag_out)))
		error = brt_error_set(BRT_EIO, "S3 %s: no usable ETag in the answer", what);
done:
	xmlFreeDoc(doc);
	s3_response_free(&resp);
	return error;
}

static int create_mpu(s3_store *s3, const char *full, char *id_out)
{
	/* Not retried after it may have reached the store: a second
	 * multipart upload would be left for the janitor to find. */
	s3_request req = {.method = "POST",
			  .key = full,
			  .query = "uploads=",
			  .retry = S3_RETRY_CONNECT,
			  .what = "create upload"};
	s3_response resp;
	xmlDoc *doc = NULL;
	int error;

	s3_response_init(&resp);
	if ((error = s3_perform(s3, &req, &resp)) < 0)
		goto done;
	if (resp.status != 200) {
		error = s3_fail(&req, &resp);
		goto done;
	}
	if (result_body(&resp, "InitiateMultipartUploadResult", &doc) != 0 ||
	    s3_xml_text(xmlDocGetRootElement(doc), "UploadId", id_out, S3_MPU_ID_MAX + 1) < 0 ||
	    !s3_mpu_id_valid(id_out))
		error = brt_error_set(BRT_EIO, "S3 create upload: no usable upload id in the answer");
done:
	xmlFreeDoc(doc);
	s3_response_free(&resp);
	return error;
}

static int abort_mpu(s3_store *s3, const char *full, const char *mpu)
{
	char query[S3_URL_MAX];
	s3_request req = {.method = "DELETE", .key = full, .retry = S3_RETRY_ALL, .what = "abort upload"};
	s3_response resp;
	int error;

	if ((error = query3(query, "uploadId=", mpu, NULL)) < 0)
		return error;
	req.query = query;
	s3_response_init(&resp);
	if ((error = s3_perform(s3, &req, &resp)) == 0 && resp.status != 204 && resp.status != 200 &&
	    resp.status != 404)
		error = s3_fail(&req, &resp);
	s3_response_free(&resp);
	return error;
}

static int upload_part(s3_store *s3, const char *full, const char *mpu, unsigned int part, const void *data,
		       size_t len, char *etag_out)
{
	char query[S3_URL_MAX], number[32], what[64];
	s3_request req = {.method = "PUT", .key = full, .body = data, .body_len = len, .retry = S3_RETRY_ALL};
	s3_response resp;
	int error;

	snprintf(what, sizeof(what), "upload part %u", part);
	req.what = what;
	snprintf(number, sizeof(number), "partNumber=%u&uploadId=", part);
	if ((error = query3(query, number, mpu, NULL)) < 0)
		return error;
	req.query = query;
	s3_response_init(&resp);
	if ((error = s3_perform(s3, &req, &resp)) < 0)
		goto done;
	if (resp.status != 200)
		error = s3_fail(&req, &resp);
	else if (!s3_etag_valid(resp.etag))
		error = brt_error_set(BRT_EIO, "S3 %s: no usable ETag in the answer", what);
	else
		memcpy(etag_out, resp.etag, sizeof(resp.etag));
done:
	s3_response_free(&resp);
	return error;
}

/* Complete `mpu` at `full` with the parts `etags` (count), and check that
 * the object is there with `size` bytes.  BRT_ENOTFOUND when the store
 * says a part or the upload is gone (a part overwritten by a racing
 * attempt answers InvalidPart): the upload cannot be finished. */
static int complete_mpu(s3_store *s3, const char *full, const char *mpu, char (*etags)[S3_ETAG_MAX + 1],
			size_t count, uint64_t size)
{
	char query[S3_URL_MAX];
	s3_request req = {.method = "POST", .key = full, .retry = S3_RETRY_ALL, .what = "complete upload"};
	s3_response resp;
	brt_dynbuf body;
	xmlDoc *doc = NULL;
	uint64_t found = 0;
	int error, failed = 0, sent = 0;

	brt_dynbuf_init(&body, (size_t)S3_PARTS_MAX * (S3_ETAG_MAX + 64) + 128);
	s3_response_init(&resp);
	if ((error = query3(query, "uploadId=", mpu, NULL)) < 0)
		goto done;
	req.query = query;
	error = brt_dynbuf_addf(&body, "<CompleteMultipartUpload>");
	for (size_t i = 0; i < count && error == 0; i++)
		error = brt_dynbuf_addf(&body, "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>",
					i + 1, etags[i]);
	if (error == 0)
		error = brt_dynbuf_addf(&body, "</CompleteMultipartUpload>");
	if (error < 0)
		goto done;
	req.body = brt_dynbuf_ptr(&body);
	req.body_len = brt_dynbuf_len(&body);
	for (unsigned int attempt = 0;; attempt++) {
		xmlFreeDoc(doc);
		doc = NULL;
		if ((error = s3_perform(s3, &req, &resp)) < 0)
			goto done;
		sent += resp.attempts;
		if (resp.status != 200)
			break;
		failed = result_body(&resp, "CompleteMultipartUploadResult", &doc);
		if (failed == 1 && (is_code(&resp, "InternalError") || is_code(&resp, "SlowDown")) &&
		    attempt < s3->o.retries) {
			s3_backoff(attempt + 1);
			continue;
		}
		break;
	}
	if (resp.status == 200 && failed == 0) {
		error = 0;
	} else if (resp.status == 404 || is_code(&resp, "NoSuchUpload") || is_code(&resp, "InvalidPart") ||
		   is_code(&resp, "InvalidPartOrder")) {
		/* After a retry, NoSuchUpload may mean that the first try
		 * completed it: the object then tells (checked below). */
		error = BRT_ENOTFOUND;
	} else if (failed < 0) {
		error = brt_error_set(BRT_EIO, "S3 complete upload: unreadable answer");
		goto done;
	} else {
		error = s3_fail(&req, &resp);
		goto done;
	}
	if (error == BRT_ENOTFOUND && !(sent > 1 && is_code(&resp, "NoSuchUpload"))) {
		error = brt_error_set(BRT_ENOTFOUND,
				      "blob store: data of the upload is gone (%s): it cannot be finished",
				      resp.code[0] ? resp.code : "404");
		goto done;
	}
	/* The object must be there, whole: a store that answers a repeated
	 * Complete with success does so after the object went, too. */
	error = head_object(s3, full, &found, NULL, "completed upload");
	if (error == 0 && found != size)
		error = brt_error_set(BRT_ENOTFOUND,
				      "blob store: completed upload holds %llu bytes, not %llu",
				      (unsigned long long)found, (unsigned long long)size);
	if (error == BRT_ENOTFOUND)
		error = brt_error_set(BRT_ENOTFOUND,
				      "blob store: data of the upload is gone: it cannot be finished");
done:
	xmlFreeDoc(doc);
	s3_response_free(&resp);
	brt_dynbuf_free(&body);
	return error;
}

/* Publish the `size` bytes of `src` at `dst` too, atomically: CopyObject,
 * or a multipart copy past what one CopyObject takes. */
static int copy_object(s3_store *s3, const char *src, const char *dst, uint64_t size)
{
	char mpu[S3_MPU_ID_MAX + 1], range[64];
	char(*etags)[S3_ETAG_MAX + 1] = NULL;
	uint64_t part = COPY_PART;
	size_t count;
	int error;

	if (size <= COPY_SINGLE_MAX)
		return copy_request(s3, src, dst, NULL, 0, NULL, NULL, "copy");
	if (size / part >= S3_PARTS_MAX)
		part = size / (S3_PARTS_MAX - 1);
	count = (size_t)((size + part - 1) / part);
	if (!(etags = calloc(count, sizeof(*etags))))
		return brt_error_set(BRT_ENOMEM, "S3: out of memory");
	if ((error = create_mpu(s3, dst, mpu)) < 0)
		goto done;
	for (size_t i = 0; i < count && error == 0; i++) {
		uint64_t from = (uint64_t)i * part, to = from + part > size ? size : from + part;
		snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)from,
			 (unsigned long long)(to - 1));
		error = copy_request(s3, src, dst, mpu, (unsigned int)i + 1, range, etags[i], "copy part");
	}
	if (error == 0)
		error = complete_mpu(s3, dst, mpu, etags, count, size);
	if (error < 0)
		(void)abort_mpu(s3, dst, mpu);
done:
	free(etags);
	return error;
}

/* ------------------------------------------------------------ listings */

typedef int (*object_cb)(const char *full, uint64_t size, int64_t mtime_ms, void *payload);

/* Every object under full prefix `prefix`, page by page. */
static int list_objects(s3_store *s3, const char *prefix, object_cb cb, void *payload)
{
	char *query = malloc(S3_URL_MAX), token[S3_TOKEN_MAX + 1] = "", key[S3_KEY_MAX], text[64];
	s3_request req = {.method = "GET", .retry = S3_RETRY_ALL, .what = "list objects"};
	s3_response resp;
	brt_dynbuf q;
	int error = 0, more = 1;

	s3_response_init(&resp);
	brt_dynbuf_init(&q, S3_URL_MAX - 1);
	if (!query) {
		error = brt_error_set(BRT_ENOMEM, "S3: out of memory");
		goto done;
	}
	while (more && error == 0) {
		xmlDoc *doc;
		xmlNode *root, *item;

		brt_dynbuf_reset(&q);
		if (token[0]) {
			error = brt_dynbuf_addf(&q, "continuation-token=");
			if (error == 0)
				error = s3_encode(&q, token, 0);
			if (error == 0)
				error = brt_dynbuf_addf(&q, "&");
		}
		if (error == 0)
			error = brt_dynbuf_addf(&q, "list-type=2&max-keys=%u&prefix=", s3->list_page);
		if (error == 0)
			error = s3_encode(&q, prefix, 0);
		if (error < 0)
			break;
		memcpy(query, brt_dynbuf_ptr(&q), brt_dynbuf_len(&q) + 1);
		req.query = query;
		if ((error = s3_perform(s3, &req, &resp)) < 0)
			break;
		if (resp.status != 200) {
			error = s3_fail(&req, &resp);
			break;
		}
		doc = s3_xml_parse(brt_dynbuf_ptr(&resp.body), brt_dynbuf_len(&resp.body));
		root = doc ? xmlDocGetRootElement(doc) : NULL;
		if (!s3_xml_is(root, "ListBucketResult")) {
			xmlFreeDoc(doc);
			error = brt_error_set(BRT_EIO, "S3 list objects: unreadable answer");
			break;
		}
		more = s3_xml_text(root, "IsTruncated", text, sizeof(text)) == 0 && strcmp(text, "true") == 0;
		if (more &&
		    (s3_xml_text(root, "NextContinuationToken", token, sizeof(token)) < 0 || !token[0])) {
			xmlFreeDoc(doc);
			error = brt_error_set(BRT_EIO, "S3 list objects: truncated answer without a token");
			break;
		}
		for (item = s3_xml_child(root, "Contents"); item && error == 0;
		     item = s3_xml_next(item, "Contents")) {
			char *end = NULL;
			unsigned long long size;
			int64_t mtime = 0;
			/* Keys too long for this store are not its own. */
			if (s3_xml_text(item, "Key", key, sizeof(key)) < 0 ||
			    strncmp(key, prefix, strlen(prefix)) != 0 ||
			    s3_xml_text(item, "Size", text, sizeof(text)) < 0)
				continue;
			size = strtoull(text, &end, 10);
			if (!end || *end || text[0] < '0' || text[0] > '9')
				continue;
			if (s3_xml_text(item, "LastModified", text, sizeof(text)) == 0)
				mtime = s3_time_ms(text);
			error = cb(key, size, mtime, payload);
		}
		xmlFreeDoc(doc);
	}
done:
	brt_dynbuf_free(&q);
	s3_response_free(&resp);
	free(query);
	return error;
}

typedef int (*mpu_cb)(const char *full, const char *mpu, int64_t initiated_ms, void *payload);

/* Every multipart upload in progress under full prefix `prefix`. */
static int list_mpus(s3_store *s3, const char *prefix, mpu_cb cb, void *payload)
{
	char *query = malloc(S3_URL_MAX), key_marker[S3_KEY_MAX] = "", id_marker[S3_MPU_ID_MAX + 1] = "";
	char key[S3_KEY_MAX], mpu[S3_MPU_ID_MAX + 1], text[64];
	s3_request req = {.method = "GET", .retry = S3_RETRY_ALL, .what = "list uploads"};
	s3_response resp;
	brt_dynbuf q;
	int error = 0, more = 1;

	s3_response_init(&resp);
	brt_dynbuf_init(&q, S3_URL_MAX - 1);
	if (!query) {
		error = brt_error_set(BRT_ENOMEM, "S3: out of memory");
		goto done;
	}
	while (more && error == 0) {
		xmlDoc *doc;
		xmlNode *root, *item;

		brt_dynbuf_reset(&q);
		if (key_marker[0]) {
			error = brt_dynbuf_addf(&q, "key-marker=");
			if (error == 0)
				error = s3_encode(&q, key_marker, 0);
			if (error == 0)
				error = brt_dynbuf_addf(&q, "&");
		}
		if (error == 0)
			error = brt_dynbuf_addf(&q, "max-uploads=%u&prefix=", s3->list_page);
		if (error == 0)
			error = s3_encode(&q, prefix, 0);
		if (error == 0 && id_marker[0]) {
			error = brt_dynbuf_addf(&q, "&upload-id-marker=");
			if (error == 0)
				error = s3_encode(&q, id_marker, 0);
		}
		if (error == 0)
			error = brt_dynbuf_addf(&q, "&uploads=");
		if (error < 0)
			break;
		memcpy(query, brt_dynbuf_ptr(&q), brt_dynbuf_len(&q) + 1);
		req.query = query;
		if ((error = s3_perform(s3, &req, &resp)) < 0)
			break;
		if (resp.status != 200) {
			error = s3_fail(&req, &resp);
			break;
		}
		doc = s3_xml_parse(brt_dynbuf_ptr(&resp.body), brt_dynbuf_len(&resp.body));
		root = doc ? xmlDocGetRootElement(doc) : NULL;
		if (!s3_xml_is(root, "ListMultipartUploadsResult")) {
			xmlFreeDoc(doc);
			error = brt_error_set(BRT_EIO, "S3 list uploads: unreadable answer");
			break;
		}
		more = s3_xml_text(root, "IsTruncated", text, sizeof(text)) == 0 && strcmp(text, "true") == 0;
		if (more && (s3_xml_text(root, "NextKeyMarker", key_marker, sizeof(key_marker)) < 0 ||
			     s3_xml_text(root, "NextUploadIdMarker", id_marker, sizeof(id_marker)) < 0 ||
			     !key_marker[0])) {
			xmlFreeDoc(doc);
			error = brt_error_set(BRT_EIO, "S3 list uploads: truncated answer without markers");
			break;
		}
		for (item = s3_xml_child(root, "Upload"); item && error == 0;
		     item = s3_xml_next(item, "Upload")) {
			int64_t initiated = 0;
			if (s3_xml_text(item, "Key", key, sizeof(key)) < 0 ||
			    strncmp(key, prefix, strlen(prefix)) != 0 ||
			    s3_xml_text(item, "UploadId", mpu, sizeof(mpu)) < 0 || !s3_mpu_id_valid(mpu))
				continue;
			if (s3_xml_text(item, "Initiated", text, sizeof(text)) == 0)
				initiated = s3_time_ms(text);
			error = cb(key, mpu, initiated, payload);
		}
		xmlFreeDoc(doc);
	}
done:
	brt_dynbuf_free(&q);
	s3_response_free(&resp);
	free(query);
	return error;
}

/* The bytes the parts of `mpu` hold and their newest upload. */
static int mpu_measure(s3_store *s3, const char *full, const char *mpu, uint64_t *size_out,
		       int64_t *mtime_out)
{
	char *query = malloc(S3_URL_MAX), marker[32] = "", text[64], fixed[128];
	s3_request req = {.method = "GET", .key = full, .retry = S3_RETRY_ALL, .what = "list parts"};
	s3_response resp;
	int error = 0, more = 1;

	s3_response_init(&resp);
	if (!query) {
		error = brt_error_set(BRT_ENOMEM, "S3: out of memory");
		goto done;
	}
	for (unsigned int pages = 0; more && error == 0 && pages <= S3_PARTS_MAX / s3->list_page + 1;
	     pages++) {
		xmlDoc *doc;
		xmlNode *root, *item;

		snprintf(fixed, sizeof(fixed), "max-parts=%u&part-number-marker=%s&uploadId=", s3->list_page,
			 marker[0] ? marker : "0");
		if ((error = query3(query, fixed, mpu, NULL)) < 0)
			break;
		req.query = query;
		if ((error = s3_perform(s3, &req, &resp)) < 0)
			break;
		if (resp.status == 404)
			break; /* completed or aborted meanwhile */
		if (resp.status != 200) {
			error = s3_fail(&req, &resp);
			break;
		}
		doc = s3_xml_parse(brt_dynbuf_ptr(&resp.body), brt_dynbuf_len(&resp.body));
		root = doc ? xmlDocGetRootElement(doc) : NULL;
		if (!s3_xml_is(root, "ListPartsResult")) {
			xmlFreeDoc(doc);
			error = brt_error_set(BRT_EIO, "S3 list parts: unreadable answer");
			break;
		}
		more = s3_xml_text(root, "IsTruncated", text, sizeof(text)) == 0 && strcmp(text, "true") == 0;
		if (more && s3_xml_text(root, "NextPartNumberMarker", marker, sizeof(marker)) < 0)
			more = 0;
		for (item = s3_xml_child(root, "Part"); item; item = s3_xml_next(item, "Part")) {
			char *end = NULL;
			unsigned long long n;
			if (s3_xml_text(item, "Size", text, sizeof(text)) < 0)
				continue;
			n = strtoull(text, &end, 10);
			if (end && *end == '\0' && text[0] >= '0' && text[0] <= '9')
				*size_out += n;
			if (s3_xml_text(item, "LastModified", text, sizeof(text)) == 0 &&
			    s3_time_ms(text) > *mtime_out)
				*mtime_out = s3_time_ms(text);
		}
		xmlFreeDoc(doc);
	}
done:
	s3_response_free(&resp);
	free(query);
	return error;
}

/* ------------------------------------------------------------ objects */

static int s3_stat(brt_blobstore *bs, const char *key, uint64_t *size_out)
{
	s3_store *s3 = (s3_store *)bs;
	char full[S3_KEY_MAX];
	int error;

	*size_out = 0;
	if ((error = blob_key(full, s3, key)) < 0)
		return error;
	if ((error = head_object(s3, full, size_out, NULL, key)) == BRT_ENOTFOUND)
		error = brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", key);
	return error;
}

static int s3_remove(brt_blobstore *bs, const char *key)
{
	s3_store *s3 = (s3_store *)bs;
	char full[S3_KEY_MAX];
	uint64_t size;
	int error;

	/* S3 answers a DELETE of an absent key with success: ask first. */
	if ((error = blob_key(full, s3, key)) < 0)
		return error;
	if ((error = head_object(s3, full, &size, NULL, key)) < 0) {
		if (error == BRT_ENOTFOUND)
			error = brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", key);
		return error;
	}
	return delete_object(s3, full, key);
}

static int s3_copy(brt_blobstore *bs, const char *from, const char *to)
{
	s3_store *s3 = (s3_store *)bs;
	char src[S3_KEY_MAX], dst[S3_KEY_MAX];
	uint64_t size = 0, existing = 0;
	int error;

	if ((error = blob_key(src, s3, from)) < 0 || (error = blob_key(dst, s3, to)) < 0)
		return error;
	if ((error = head_object(s3, src, &size, NULL, from)) < 0) {
		if (error == BRT_ENOTFOUND)
			error = brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", from);
		return error;
	}
	/* S3 has no copy that refuses to replace: a concurrent copy to the
	 * same key may both pass this check, which for content-addressed
	 * objects means both write the same bytes. */
	if ((error = head_object(s3, dst, &existing, NULL, to)) == 0)
		return brt_error_set(BRT_EEXISTS, "blob store: %s exists", to);
	if (error != BRT_ENOTFOUND)
		return error;
	brt_error_clear();
	if ((error = copy_object(s3, src, dst, size)) == BRT_ENOTFOUND)
		error = brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", from);
	return error;
}

typedef struct list_walk {
	size_t strip;
	brt_object_list_cb cb;
	int (*undated)(const char *key, uint64_t size, void *payload);
	void *payload;
} list_walk;

static int list_walk_cb(const char *full, uint64_t size, int64_t mtime_ms, void *payload)
{
	list_walk *walk = payload;
	const char *key = full + walk->strip;

	/* Only what could be a key: anything else is not the store's. */
	if (brt_blob_key_check(key) < 0) {
		brt_error_clear();
		return 0;
	}
	if (walk->cb)
		return walk->cb(key, size, mtime_ms, walk->payload);
	return walk->undated(key, size, walk->payload);
}

static int s3_list_dated(brt_blobstore *bs, brt_object_list_cb cb, void *payload)
{
	s3_store *s3 = (s3_store *)bs;
	char prefix[S3_KEY_MAX];
	list_walk walk = {0, cb, NULL, payload};
	int error;

	if ((error = make_key(prefix, s3, "blobs/")) < 0)
		return error;
	walk.strip = strlen(prefix);
	return list_objects(s3, prefix, list_walk_cb, &walk);
}

static int s3_list(brt_blobstore *bs, int (*cb)(const char *key, uint64_t size, void *payload), void *payload)
{
	s3_store *s3 = (s3_store *)bs;
	char prefix[S3_KEY_MAX];
	list_walk walk = {0, NULL, cb, payload};
	int error;

	if ((error = make_key(prefix, s3, "blobs/")) < 0)
		return error;
	walk.strip = strlen(prefix);
	return list_objects(s3, prefix, list_walk_cb, &walk);
}

static int s3_presign(brt_blobstore *bs, const char *key, unsigned int ttl_seconds, char *url_out, size_t cap)
{
	s3_store *s3 = (s3_store *)bs;
	char full[S3_KEY_MAX];
	int error;

	if (cap > 0)
		url_out[0] = '\0';
	if ((error = blob_key(full, s3, key)) < 0)
		return error;
	return brt_s3_presign_url(url_out, cap, &s3->o, full, ttl_seconds, brt_now_ms() / 1000);
}

static int s3_upload_key(brt_blobstore *bs, const char *upload_id, char *key_out)
{
	int error;

	(void)bs;
	key_out[0] = '\0';
	if ((error = brt_upload_id_check(upload_id)) < 0)
		return error;
	snprintf(key_out, BRT_BLOB_KEY_MAX, "u/%s", upload_id);
	return 0;
}

/* ------------------------------------------------------------ readers */

typedef struct s3_reader {
	brt_blob_reader base;
	s3_store *s3;
	CURLM *multi;
	CURL *curl; /* the transfer under way, or NULL */
	struct curl_slist *headers;
	char url[S3_URL_MAX];
	char etag[S3_ETAG_MAX + 1];
	char key[BRT_BLOB_KEY_MAX];
	uint64_t pos;  /* offset of the next byte read() hands out */
	uint64_t end;  /* the object's size */
	uint64_t from; /* where the transfer under way started */
	unsigned char *buf;
	size_t start, len, cap;
	int paused, finished, progress;
	CURLcode result;
	long bad_status;
	unsigned int failures;
} s3_reader;

static size_t reader_on_write(char *data, size_t size, size_t nmemb, void *payload)
{
	s3_reader *r = payload;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 206 && !(status == 200 && r->from == 0)) {
		/* Not the bytes asked for: stop here rather than read them. */
		r->bad_status = status;
		return 0;
	}
	if (r->start > 0 && n > r->cap - r->start - r->len) {
		memmove(r->buf, r->buf + r->start, r->len);
		r->start = 0;
	}
	if (n > r->cap - r->len) {
		if (r->len > 0) {
			r->paused = 1;
			return CURL_WRITEFUNC_PAUSE;
		}
		/* Empty, yet too small for one delivery: grow, within a cap. */
		unsigned char *grown;
		if (n > READER_CHUNK_MAX || !(grown = realloc(r->buf, n)))
			return 0;
		r->buf = grown;
		r->cap = n;
	}
	memcpy(r->buf + r->start + r->len, data, n);
	r->len += n;
	r->progress = 1;
	return n;
}

static void reader_stop(s3_reader *r)
{
	if (r->curl) {
		curl_multi_remove_handle(r->multi, r->curl);
		curl_easy_cleanup(r->curl);
		r->curl = NULL;
	}
	curl_slist_free_all(r->headers);
	r->headers = NULL;
}

/* Start a GET of the rest of the object from r->pos. */
static int reader_start(s3_reader *r)
{
	char line[S3_ETAG_MAX + 64];
	struct curl_slist *next;

	reader_stop(r);
	r->from = r->pos;
	r->finished = 0;
	r->paused = 0;
	r->progress = 0;
	r->bad_status = 0;
	r->result = CURLE_OK;
	if (!(r->headers = s3_base_headers(r->s3)) || !(r->curl = curl_easy_init()))
		return brt_error_set(BRT_ENOMEM, "S3: out of memory");
	snprintf(line, sizeof(line), "Range: bytes=%llu-", (unsigned long long)r->pos);
	if (!(next = curl_slist_append(r->headers, line)))
		return brt_error_set(BRT_ENOMEM, "S3: out of memory");
	r->headers = next;
	/* Objects never change, but a key can be removed and committed
	 * again: a resumed read must not splice two objects. */
	if (r->etag[0]) {
		snprintf(line, sizeof(line), "If-Match: %s", r->etag);
		if (!(next = curl_slist_append(r->headers, line)))
			return brt_error_set(BRT_ENOMEM, "S3: out of memory");
		r->headers = next;
	}
	s3_handle_setup(r->s3, r->curl);
	curl_easy_setopt(r->curl, CURLOPT_URL, r->url);
	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, reader_on_write);
	curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, r);
	/* Deliveries of half the buffer, not curl's 16 KiB: fewer pauses
	 * and fewer, larger writes to the client. */
	curl_easy_setopt(r->curl, CURLOPT_BUFFERSIZE, (long)(READER_BUF / 2));
	if (curl_multi_add_handle(r->multi, r->curl) != CURLM_OK)
		return brt_error_set(BRT_EIO, "S3 read %s: cannot start the transfer", r->key);
	return 0;
}

static int reader_failed(s3_reader *r)
{
	long status = r->bad_status;

	if (!status && r->curl)
		curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status == 404)
		return brt_error_set(BRT_ENOTFOUND, "blob store: %s was removed while read", r->key);
	if (status == 412)
		return brt_error_set(BRT_EIO, "blob store: %s was replaced while read", r->key);
	/* Out of retries on a transport failure or a store that is busy or
	 * down: an outage, as for every other request to the store. */
	if (r->result != CURLE_OK && !r->bad_status)
		return brt_error_set(BRT_EUNAVAILABLE, "S3 read %s at %llu: %s", r->key,
				     (unsigned long long)r->pos, curl_easy_strerror(r->result));
	return brt_error_set(status >= 500 || status == 429 ? BRT_EUNAVAILABLE : BRT_EIO,
			     "S3 read %s at %llu: HTTP %ld", r->key, (unsigned long long)r->pos, status);
}

static int s3_reader_read(brt_blob_reader *base, void *buf, size_t len, size_t *read_out)
{
	s3_reader *r = (s3_reader *)base;
	int error;

	*read_out = 0;
	for (;;) {
		/* Less than asked for while the transfer runs: take in what
		 * has arrived meanwhile (no waiting) before handing it over. */
		if (r->len > 0 && r->len < len && r->curl && !r->finished && !r->paused) {
			int running = 0;
			(void)curl_multi_perform(r->multi, &running);
		}
		if (r->len > 0) {
			size_t n = len < r->len ? len : r->len;
			memcpy(buf, r->buf + r->start, n);
			r->start += n;
			r->len -= n;
			if (r->len == 0)
				r->start = 0;
			r->pos += n;
			*read_out = n;
			return 0;
		}
		if (len == 0 || r->pos >= r->end)
			return 0;
		if (!r->curl || r->finished) {
			/* Ended short of the object: a dropped connection or a
			 * store error.  Continue from where it stopped, within
			 * the retries (reset by every transfer that moved). */
			if (r->curl) {
				long status = r->bad_status;
				if (!status)
					curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
				if (r->progress)
					r->failures = 0;
				if (++r->failures > r->s3->o.retries + 1 ||
				    (status >= 400 && status < 500 && status != 429))
					return reader_failed(r);
				s3_backoff(r->failures);
			}
			if ((error = reader_start(r)) < 0)
				return error;
			continue;
		}
		if (r->paused) {
			r->paused = 0;
			curl_easy_pause(r->curl, CURLPAUSE_CONT);
			continue;
		}
		{
			int running = 0, queued = 0;
			CURLMsg *msg;
			if (curl_multi_perform(r->multi, &running) != CURLM_OK)
				return brt_error_set(BRT_EIO, "S3 read %s: transfer failed", r->key);
			while ((msg = curl_multi_info_read(r->multi, &queued))) {
				if (msg->msg == CURLMSG_DONE && msg->easy_handle == r->curl) {
					r->finished = 1;
					r->result = msg->data.result;
				}
			}
			if (r->len == 0 && !r->finished && !r->paused &&
			    curl_multi_poll(r->multi, NULL, 0, 1000, NULL) != CURLM_OK)
				return brt_error_set(BRT_EIO, "S3 read %s: transfer failed", r->key);
		}
	}
}

static void s3_reader_free(brt_blob_reader *base)
{
	s3_reader *r = (s3_reader *)base;

	if (!r)
		return;
	reader_stop(r);
	if (r->multi)
		curl_multi_cleanup(r->multi);
	free(r->buf);
	free(r);
}

static int s3_reader_open(brt_blob_reader **out, brt_blobstore *bs, const char *key, uint64_t offset)
{
	s3_store *s3 = (s3_store *)bs;
	s3_reader *r = NULL;
	char full[S3_KEY_MAX];
	int error;

	*out = NULL;
	if ((error = blob_key(full, s3, key)) < 0)
		return error;
	if (!(r = calloc(1, sizeof(*r)))) {
		error = brt_error_set(BRT_ENOMEM, "S3: out of memory");
		goto done;
	}
	r->base.read = s3_reader_read;
	r->base.free = s3_reader_free;
	r->s3 = s3;
	memcpy(r->key, key, strlen(key) + 1);
	/* The size first: S3 answers a range at the end with 416, and the
	 * ETag pins the object for resumed transfers. */
	if ((error = head_object(s3, full, &r->end, r->etag, key)) < 0) {
		if (error == BRT_ENOTFOUND)
			error = brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", key);
		goto done;
	}
	if (offset > r->end) {
		error = brt_error_set(BRT_ERANGE, "blob store: offset %llu is past the end of %s",
				      (unsigned long long)offset, key);
		goto done;
	}
	r->pos = offset;
	if ((error = s3_url(r->url, sizeof(r->url), &s3->o, full, NULL)) < 0)
		goto done;
	if (!(r->buf = malloc(READER_BUF)) || !(r->multi = curl_multi_init())) {
		error = brt_error_set(BRT_ENOMEM, "S3: out of memory");
		goto done;
	}
	r->cap = READER_BUF;
	*out = &r->base;
	r = NULL;
done:
	s3_reader_free(r ? &r->base : NULL);
	return error;
}

/* ------------------------------------------------------------ attempts */

typedef struct s3_writer {
	brt_blob_writer base;
	s3_store *s3;
	/* The upload with this attempt's parts; its spill is the last
	 * synced one (or the opened state's). */
	s3_state st;
	uint64_t start;                         /* the size the acknowledged state describes */
	int created_mpu;                        /* st.mpu is this attempt's own, not adopted yet */
	char base_spill[S3_SPILL_NAME_LEN + 1]; /* spill of the acknowledged state */
	char own_spill[S3_SPILL_NAME_LEN + 1];  /* spill of the last sync, not adopted yet */
	unsigned char *buf;                     /* the tail: bytes after the last full part */
	size_t buf_len, buf_cap;
	int failed, dirty;
	brt_dynbuf out;
	char upload_id[BRT_UPLOAD_ID_LEN + 1];
	char mpu_key[S3_KEY_MAX];
} s3_writer;

/* Grow the part buffer to hold `need` bytes, within what the part
 * buffers of all uploads may hold together. */
static int writer_grow(s3_writer *w, size_t need)
{
	size_t cap = w->buf_cap ? w->buf_cap : (size_t)256 << 10;
	unsigned char *grown;
	size_t more;

	if (need <= w->buf_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > w->st.part_size)
		cap = (size_t)w->st.part_size;
	more = cap - w->buf_cap;
	if (atomic_fetch_add(&w->s3->buffered, more) + more > w->s3->o.buffer_memory) {
		atomic_fetch_sub(&w->s3->buffered, more);
		return brt_error_set(BRT_EUNAVAILABLE,
				     "S3: the part buffers of the uploads in progress hold what "
				     "storage.s3.buffermemory allows (%llu bytes); retry shortly",
				     (unsigned long long)w->s3->o.buffer_memory);
	}
	if (!(grown = realloc(w->buf, cap))) {
		atomic_fetch_sub(&w->s3->buffered, more);
		return brt_error_set(BRT_ENOMEM, "S3: out of memory for a part buffer");
	}
	w->buf = grown;
	w->buf_cap = cap;
	return 0;
}

/* Send one full part from `data`. */
static int writer_send_part(s3_writer *w, const void *data)
{
	char etag[S3_ETAG_MAX + 1];
	int error;

	if (w->st.parts >= S3_PARTS_MAX)
		return brt_error_set(BRT_ETOOBIG, "blob store: upload %s has %d parts, the most S3 takes",
				     w->upload_id, S3_PARTS_MAX);
	if (!w->st.mpu[0]) {
		if ((error = create_mpu(w->s3, w->mpu_key, w->st.mpu)) < 0)
			return error;
		w->created_mpu = 1;
	}
	if ((error = upload_part(w->s3, w->mpu_key, w->st.mpu, (unsigned int)w->st.parts + 1, data,
				 (size_t)w->st.part_size, etag)) < 0)
		return error;
	return s3_state_add_part(&w->st, etag);
}

static int s3_writer_append(brt_blob_writer *base, const void *data, size_t len)
{
	s3_writer *w = (s3_writer *)base;
	const unsigned char *p = data;
	uint64_t end;
	int error = 0;

	if (w->failed)
		return brt_error_set(BRT_EIO, "blob store: upload %s: an earlier write failed", w->upload_id);
	if (len == 0)
		return 0;
	if (__builtin_add_overflow(w->base.size, (uint64_t)len, &end) ||
	    end > (uint64_t)S3_PARTS_MAX * w->st.part_size)
		return brt_error_set(BRT_ETOOBIG,
				     "blob store: S3 uploads hold at most %d parts of %llu bytes",
				     S3_PARTS_MAX, (unsigned long long)w->st.part_size);
	while (len > 0) {
		size_t room = (size_t)w->st.part_size - w->buf_len, n = len < room ? len : room;
		if (w->buf_len == 0 && len >= w->st.part_size) {
			/* A whole part in the caller's buffer: no copy. */
			if ((error = writer_send_part(w, p)) < 0)
				break;
			n = (size_t)w->st.part_size;
		} else {
			if ((error = writer_grow(w, w->buf_len + n)) < 0)
				break;
			memcpy(w->buf + w->buf_len, p, n);
			w->buf_len += n;
			if (w->buf_len == w->st.part_size) {
				if ((error = writer_send_part(w, w->buf)) < 0)
					break;
				w->buf_len = 0;
			}
		}
		p += n;
		len -= n;
		w->base.size += n;
		w->dirty = 1;
	}
	if (error < 0 && error != BRT_ETOOBIG) {
		w->failed = 1;
		if (error != BRT_EIO && error != BRT_EUNAVAILABLE)
			error = brt_error_set(BRT_EIO, "%s", brt_error_last());
	}
	return error;
}

static void writer_drop_spill(s3_writer *w, const char *name)
{
	char full[S3_KEY_MAX];

	/* A failure leaves an object no state names: the janitor's prune
	 * finds it. */
	if (name[0] && spill_key(full, w->s3, w->upload_id, name) == 0)
		(void)delete_object(w->s3, full, "remove spill");
	brt_error_clear();
}

static int s3_writer_sync(brt_blob_writer *base, const unsigned char **state_out, size_t *len_out)
{
	s3_writer *w = (s3_writer *)base;
	char name[S3_SPILL_NAME_LEN + 1] = "", full[S3_KEY_MAX];
	int error;

	*state_out = NULL;
	*len_out = 0;
	if (w->failed)
		return brt_error_set(BRT_EIO, "blob store: upload %s: an earlier write failed", w->upload_id);
	if (w->base.size == 0)
		return 0;
	if (w->dirty) {
		if (w->buf_len > 0) {
			if ((error = brt_random_hex(name, S3_SPILL_NAME_LEN)) < 0 ||
			    (error = spill_key(full, w->s3, w->upload_id, name)) < 0 ||
			    (error = put_object(w->s3, full, w->buf, w->buf_len, "write spill")) < 0) {
				w->failed = 1;
				return error;
			}
		}
		/* The previous sync's spill was never adopted: nobody names it. */
		if (strcmp(w->own_spill, w->base_spill) != 0)
			writer_drop_spill(w, w->own_spill);
		memcpy(w->own_spill, name, sizeof(name));
		memcpy(w->st.spill, name, sizeof(name));
		w->st.spill_len = w->buf_len;
		w->dirty = 0;
	}
	if ((error = s3_state_format(&w->out, &w->st)) < 0)
		return error;
	*state_out = (const unsigned char *)brt_dynbuf_ptr(&w->out);
	*len_out = brt_dynbuf_len(&w->out);
	return 0;
}

static void s3_writer_adopt(brt_blob_writer *base)
{
	s3_writer *w = (s3_writer *)base;

	/* The state of the last sync is the upload's now: the spill it
	 * replaced is named by no state any more. */
	if (w->base_spill[0] && strcmp(w->base_spill, w->st.spill) != 0)
		writer_drop_spill(w, w->base_spill);
	memcpy(w->base_spill, w->st.spill, sizeof(w->base_spill));
	w->own_spill[0] = '\0';
	w->created_mpu = 0;
	w->start = w->base.size;
}

static void s3_writer_keep(brt_blob_writer *base)
{
	s3_writer *w = (s3_writer *)base;

	/* Nothing is removed: the prune takes the spill and the multipart
	 * upload the row does not name. */
	w->own_spill[0] = '\0';
	w->created_mpu = 0;
}

static void s3_writer_free(brt_blob_writer *base)
{
	s3_writer *w = (s3_writer *)base;

	if (!w)
		return;
	if (w->own_spill[0] && strcmp(w->own_spill, w->base_spill) != 0)
		writer_drop_spill(w, w->own_spill);
	/* A multipart upload this attempt created and lost: no state names
	 * it (one it continued is the upload's, whatever parts it added). */
	if (w->created_mpu && w->st.mpu[0]) {
		(void)abort_mpu(w->s3, w->mpu_key, w->st.mpu);
		brt_error_clear();
	}
	s3_state_free(&w->st);
	brt_dynbuf_free(&w->out);
	atomic_fetch_sub(&w->s3->buffered, w->buf_cap);
	free(w->buf);
	free(w);
}

static int s3_writer_open(brt_blob_writer **out, brt_blobstore *bs, const char *upload_id, uint64_t offset,
			  const unsigned char *state, size_t state_len)
{
	s3_store *s3 = (s3_store *)bs;
	s3_writer *w = NULL;
	char full[S3_KEY_MAX];
	int error;

	*out = NULL;
	if ((error = brt_upload_id_check(upload_id)) < 0)
		return error;
	if (!(w = calloc(1, sizeof(*w))))
		return brt_error_set(BRT_ENOMEM, "S3: out of memory");
	w->base.append = s3_writer_append;
	w->base.sync = s3_writer_sync;
	w->base.adopt = s3_writer_adopt;
	w->base.keep = s3_writer_keep;
	w->base.free = s3_writer_free;
	w->s3 = s3;
	memcpy(w->upload_id, upload_id, BRT_UPLOAD_ID_LEN + 1);
	brt_dynbuf_init(&w->out, BRT_BACKEND_STATE_MAX);
	if ((error = s3_state_parse(&w->st, state, state_len, s3->o.part_size)) < 0 ||
	    (error = own_key(w->mpu_key, s3, upload_id)) < 0)
		goto done;
	if (s3_state_size(&w->st) != offset) {
		error = brt_error_set(BRT_EINVALID, "blob store: upload %s: state holds %llu bytes, not %llu",
				      upload_id, (unsigned long long)s3_state_size(&w->st),
				      (unsigned long long)offset);
		goto done;
	}
	w->base.size = offset;
	w->start = offset;
	memcpy(w->base_spill, w->st.spill, sizeof(w->base_spill));
	memcpy(w->own_spill, w->st.spill, sizeof(w->own_spill));
	if (w->st.spill_len > 0) {
		/* The acknowledged tail comes back into the part buffer, so
		 * the next full part holds it. */
		s3_request req = {.method = "GET", .retry = S3_RETRY_ALL, .what = "read spill"};
		s3_response resp;
		if ((error = writer_grow(w, (size_t)w->st.spill_len)) < 0 ||
		    (error = spill_key(full, s3, upload_id, w->st.spill)) < 0)
			goto done;
		req.key = full;
		req.sink = w->buf;
		req.sink_cap = (size_t)w->st.spill_len;
		s3_response_init(&resp);
		error = s3_perform(s3, &req, &resp);
		if (error == 0 && resp.status == 404)
			error = brt_error_set(BRT_ENOTFOUND, "blob store: data of upload %s is gone",
					      upload_id);
		else if (error == 0 && resp.status != 200)
			error = s3_fail(&req, &resp);
		else if (error == 0 && resp.sink_len != w->st.spill_len)
			error = brt_error_set(BRT_EIO,
					      "blob store: upload %s: spill holds %zu bytes, not %llu",
					      upload_id, resp.sink_len, (unsigned long long)w->st.spill_len);
		s3_response_free(&resp);
		if (error < 0)
			goto done;
		w->buf_len = (size_t)w->st.spill_len;
	}
	*out = &w->base;
	w = NULL;
done:
	if (w) {
		/* Nothing was written yet: nothing to drop. */
		w->own_spill[0] = '\0';
		w->created_mpu = 0;
		s3_writer_free(&w->base);
	}
	return error;
}

/* ------------------------------------------------------------ commit */

typedef struct sweep {
	s3_store *s3;
	const char *keep_spill; /* full key kept, or NULL */
	const char *keep_mpu;   /* multipart upload id kept, or NULL */
	const char *mpu_key;    /* the upload's own key: only its uploads */
	int64_t before_ms;
	unsigned long removed;
} sweep;

static int sweep_object(const char *full, uint64_t size, int64_t mtime_ms, void *payload)
{
	sweep *s = payload;
	int error;

	(void)size;
	if ((s->keep_spill && strcmp(full, s->keep_spill) == 0) || mtime_ms >= s->before_ms)
		return 0;
	if ((error = delete_object(s->s3, full, "remove upload data")) == 0)
		s->removed++;
	return error;
}

static int sweep_mpu(const char *full, const char *mpu, int64_t initiated_ms, void *payload)
{
	sweep *s = payload;
	int error;

	if (strcmp(full, s->mpu_key) != 0 || (s->keep_mpu && strcmp(mpu, s->keep_mpu) == 0) ||
	    initiated_ms >= s->before_ms)
		return 0;
	if ((error = abort_mpu(s->s3, full, mpu)) == 0)
		s->removed++;
	return error;
}

/* Remove what upload `id` has in the store and `keep` does not name
 * (spill objects; multipart uploads too with `mpus`), older than
 * `before_ms`. */
static int sweep_upload(unsigned long *removed_out, s3_store *s3, const char *id, const s3_state *keep,
			int64_t before_ms, int mpus)
{
	char prefix[S3_KEY_MAX], kept[S3_KEY_MAX], mpu_key[S3_KEY_MAX];
	sweep s = {s3, NULL, NULL, mpu_key, before_ms, 0};
	int error;

	if ((error = make_key(prefix, s3, "uploads/%s/", id)) < 0 || (error = own_key(mpu_key, s3, id)) < 0)
		return error;
	if (keep && keep->spill[0]) {
		if ((error = spill_key(kept, s3, id, keep->spill)) < 0)
			return error;
		s.keep_spill = kept;
	}
	if (keep && keep->mpu[0])
		s.keep_mpu = keep->mpu;
	error = list_objects(s3, prefix, sweep_object, &s);
	if (error == 0 && mpus)
		error = list_mpus(s3, mpu_key, sweep_mpu, &s);
	if (removed_out)
		*removed_out = s.removed;
	return error;
}

static int s3_commit(brt_blobstore *bs, const char *upload_id, const unsigned char *state, size_t state_len,
		     uint64_t size, const char *key)
{
	s3_store *s3 = (s3_store *)bs;
	char dst[S3_KEY_MAX], home[S3_KEY_MAX], spill[S3_KEY_MAX] = "";
	char(*etags)[S3_ETAG_MAX + 1] = NULL;
	s3_state st;
	uint64_t existing = 0;
	int error;

	memset(&st, 0, sizeof(st));
	if ((error = brt_upload_id_check(upload_id)) < 0 || (error = blob_key(dst, s3, key)) < 0 ||
	    (error = own_key(home, s3, upload_id)) < 0 ||
	    (error = s3_state_parse(&st, state, state_len, s3->o.part_size)) < 0)
		return error;
	if (s3_state_size(&st) != size) {
		error = brt_error_set(BRT_EINVALID, "blob store: upload %s: state holds %llu bytes, not %llu",
				      upload_id, (unsigned long long)s3_state_size(&st),
				      (unsigned long long)size);
		goto done;
	}
	if (st.spill[0] && (error = spill_key(spill, s3, upload_id, st.spill)) < 0)
		goto done;

	if (st.parts == 0) {
		/* Smaller than a part: no multipart upload, the spill is the
		 * whole upload. */
		if (spill[0] && (error = head_object(s3, spill, &existing, NULL, "spill")) < 0) {
			if (error == BRT_ENOTFOUND)
				error = brt_error_set(BRT_ENOTFOUND, "blob store: data of upload %s is gone",
						      upload_id);
			goto done;
		}
		/* Nothing but this upload publishes at its own key: there, no
		 * earlier copy can be waiting. */
		error = strcmp(dst, home) == 0 ? BRT_ENOTFOUND : head_object(s3, dst, &existing, NULL, key);
		if (error == 0 && existing == size)
			goto published; /* the same content is there */
		if (error < 0 && error != BRT_ENOTFOUND)
			goto done;
		brt_error_clear();
		if (existing != size && error == 0)
			brt_log_warn(
				"blob store: %s has %llu bytes, not the %llu of its verified content: "
				"replacing it",
				key, (unsigned long long)existing, (unsigned long long)size);
		if (spill[0])
			error = copy_request(s3, spill, dst, NULL, 0, NULL, NULL, "publish spill");
		else
			error = put_object(s3, dst, "", 0, "publish empty object");
		if (error == BRT_ENOTFOUND)
			error = brt_error_set(BRT_ENOTFOUND, "blob store: data of upload %s is gone",
					      upload_id);
		if (error < 0)
			goto done;
		goto published;
	}

	/* The tail becomes the last part, copied inside the store. */
	if (!(etags = calloc(st.parts + 1, sizeof(*etags)))) {
		error = brt_error_set(BRT_ENOMEM, "S3: out of memory");
		goto done;
	}
	memcpy(etags, st.etags, st.parts * sizeof(*etags));
	error = 0;
	if (spill[0] && st.parts >= S3_PARTS_MAX) {
		error = brt_error_set(BRT_EINVALID, "blob store: upload %s has too many parts", upload_id);
		goto done;
	}
	if (spill[0])
		error = copy_request(s3, spill, home, st.mpu, (unsigned int)st.parts + 1, NULL,
				     etags[st.parts], "copy spill into the last part");
	if (error == 0)
		error = complete_mpu(s3, home, st.mpu, etags, st.parts + (spill[0] ? 1 : 0), size);
	if (error == BRT_ENOTFOUND) {
		/* An earlier commit of this upload may have completed it and
		 * then failed (copying it elsewhere, or before it could tell):
		 * the object at the upload's own key is then its data. */
		char detail[512];
		snprintf(detail, sizeof(detail), "%s", brt_error_last());
		if (head_object(s3, home, &existing, NULL, "completed upload") == 0 && existing == size)
			error = 0;
		else
			error = brt_error_set(BRT_ENOTFOUND, "%s", detail);
	}
	if (error < 0)
		goto done;
	if (strcmp(home, dst) != 0) {
		/* Published under another key than the upload's own: the rare
		 * path (a re-verified digest), at the cost of a copy. */
		error = head_object(s3, dst, &existing, NULL, key);
		if (error == 0 && existing != size)
			brt_log_warn(
				"blob store: %s has %llu bytes, not the %llu of its verified content: "
				"replacing it",
				key, (unsigned long long)existing, (unsigned long long)size);
		if (error == BRT_ENOTFOUND || (error == 0 && existing != size)) {
			brt_error_clear();
			error = copy_object(s3, home, dst, size);
		}
		if (error < 0)
			goto done;
		if ((error = delete_object(s3, home, "remove the completed upload")) < 0)
			goto done;
	}
published:
	/* Published: the upload's data goes, with whatever attempts that
	 * lost left.  A failure here leaves objects no session names, which
	 * the janitor sweeps; the commit itself succeeded. */
	if (spill[0])
		(void)delete_object(s3, spill, "remove spill");
	(void)sweep_upload(NULL, s3, upload_id, NULL, INT64_MAX, 0);
	brt_error_clear();
	error = 0;
done:
	free(etags);
	s3_state_free(&st);
	return error;
}

static int s3_upload_remove(brt_blobstore *bs, const char *upload_id, const unsigned char *state,
			    size_t state_len)
{
	s3_store *s3 = (s3_store *)bs;
	char home[S3_KEY_MAX];
	s3_state st;
	int error;

	if ((error = brt_upload_id_check(upload_id)) < 0 ||
	    (error = s3_state_parse(&st, state, state_len, s3->o.part_size)) < 0)
		return error;
	if (st.mpu[0] && (error = own_key(home, s3, upload_id)) == 0)
		error = abort_mpu(s3, home, st.mpu);
	/* Then everything else of the upload, the state's spill included. */
	if (error == 0)
		error = sweep_upload(NULL, s3, upload_id, NULL, INT64_MAX, 1);
	s3_state_free(&st);
	return error;
}

static int s3_upload_prune(unsigned long *removed_out, brt_blobstore *bs, const char *upload_id,
			   const unsigned char *keep, size_t keep_len, int64_t before_ms)
{
	s3_store *s3 = (s3_store *)bs;
	s3_state st;
	int error;

	*removed_out = 0;
	if ((error = brt_upload_id_check(upload_id)) < 0 ||
	    (error = s3_state_parse(&st, keep, keep_len, s3->o.part_size)) < 0)
		return error;
	error = sweep_upload(removed_out, s3, upload_id, &st, before_ms, 1);
	s3_state_free(&st);
	return error;
}

/* ------------------------------------------------------------ upload listing */

typedef struct mpu_entry {
	char id[BRT_UPLOAD_ID_LEN + 1];
	uint64_t size;
	int64_t mtime_ms;
	int reported;
} mpu_entry;

typedef struct upload_walk {
	s3_store *s3;
	size_t strip; /* length of the listing's prefix */
	mpu_entry *mpus;
	size_t count, cap;
	/* The group of spill objects being summed. */
	char id[BRT_UPLOAD_ID_LEN + 1];
	uint64_t size;
	int64_t mtime_ms;
	brt_upload_list_cb cb;
	void *payload;
} upload_walk;

static int collect_mpu(const char *full, const char *mpu, int64_t initiated_ms, void *payload)
{
	upload_walk *walk = payload;
	const char *id = full + walk->strip;
	mpu_entry *e;
	int error;

	if (brt_upload_id_check(id) < 0) {
		brt_error_clear();
		return 0;
	}
	/* Listed in key order: uploads of one id come together. */
	if (walk->count == 0 || strcmp(walk->mpus[walk->count - 1].id, id) != 0) {
		if (walk->count == walk->cap) {
			size_t cap = walk->cap ? walk->cap * 2 : 64;
			void *grown;
			if (walk->count >= MPU_LIST_MAX)
				return brt_error_set(BRT_EIO, "S3: more than %d uploads in progress",
						     MPU_LIST_MAX);
			if (!(grown = realloc(walk->mpus, cap * sizeof(*walk->mpus))))
				return brt_error_set(BRT_ENOMEM, "S3: out of memory");
			walk->mpus = grown;
			walk->cap = cap;
		}
		e = &walk->mpus[walk->count++];
		memset(e, 0, sizeof(*e));
		memcpy(e->id, id, BRT_UPLOAD_ID_LEN + 1);
	}
	e = &walk->mpus[walk->count - 1];
	if (initiated_ms > e->mtime_ms)
		e->mtime_ms = initiated_ms;
	if ((error = mpu_measure(walk->s3, full, mpu, &e->size, &e->mtime_ms)) < 0)
		return error;
	return 0;
}

static mpu_entry *find_mpu(upload_walk *walk, const char *id)
{
	size_t lo = 0, hi = walk->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(walk->mpus[mid].id, id);
		if (c == 0)
			return &walk->mpus[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int report_group(upload_walk *walk)
{
	char id[BRT_UPLOAD_ID_LEN + 1];
	mpu_entry *e;

	if (!walk->id[0])
		return 0;
	memcpy(id, walk->id, sizeof(id));
	walk->id[0] = '\0';
	if ((e = find_mpu(walk, id))) {
		e->reported = 1;
		walk->size += e->size;
		if (e->mtime_ms > walk->mtime_ms)
			walk->mtime_ms = e->mtime_ms;
	}
	return walk->cb(id, walk->size, walk->mtime_ms, walk->payload);
}

static int collect_spill(const char *full, uint64_t size, int64_t mtime_ms, void *payload)
{
	upload_walk *walk = payload;
	const char *rest = full + walk->strip;
	char id[BRT_UPLOAD_ID_LEN + 1];
	int error;

	if (strlen(rest) <= BRT_UPLOAD_ID_LEN || rest[BRT_UPLOAD_ID_LEN] != '/')
		return 0;
	memcpy(id, rest, BRT_UPLOAD_ID_LEN);
	id[BRT_UPLOAD_ID_LEN] = '\0';
	if (brt_upload_id_check(id) < 0) {
		brt_error_clear();
		return 0;
	}
	if (strcmp(id, walk->id) != 0) {
		if ((error = report_group(walk)) != 0)
			return error;
		memcpy(walk->id, id, sizeof(id));
		walk->size = 0;
		walk->mtime_ms = 0;
	}
	walk->size += size;
	if (mtime_ms > walk->mtime_ms)
		walk->mtime_ms = mtime_ms;
	return 0;
}

static int s3_upload_list(brt_blobstore *bs, brt_upload_list_cb cb, void *payload)
{
	s3_store *s3 = (s3_store *)bs;
	char prefix[S3_KEY_MAX];
	upload_walk walk;
	int error;

	memset(&walk, 0, sizeof(walk));
	walk.s3 = s3;
	walk.cb = cb;
	walk.payload = payload;
	/* Multipart uploads first (few: one per upload past its first
	 * part), then spill objects, each id reported once with both. */
	if ((error = make_key(prefix, s3, "blobs/u/")) < 0)
		goto done;
	walk.strip = strlen(prefix);
	if ((error = list_mpus(s3, prefix, collect_mpu, &walk)) != 0)
		goto done;
	if ((error = make_key(prefix, s3, "uploads/")) < 0)
		goto done;
	walk.strip = strlen(prefix);
	if ((error = list_objects(s3, prefix, collect_spill, &walk)) != 0 ||
	    (error = report_group(&walk)) != 0)
		goto done;
	for (size_t i = 0; i < walk.count && error == 0; i++)
		if (!walk.mpus[i].reported)
			error = cb(walk.mpus[i].id, walk.mpus[i].size, walk.mpus[i].mtime_ms, payload);
done:
	free(walk.mpus);
	return error;
}

/* ------------------------------------------------------------ the store */

static void s3_free(brt_blobstore *bs)
{
	s3_store *s3 = (s3_store *)bs;

	if (!s3)
		return;
	if (s3->pid == getpid())
		for (size_t i = 0; i < s3->idle_count; i++)
			curl_easy_cleanup(s3->idle[i]);
	pthread_mutex_destroy(&s3->lock);
	explicit_bzero(s3->o.secret_key, sizeof(s3->o.secret_key));
	explicit_bzero(s3->o.session_token, sizeof(s3->o.session_token));
	free(s3);
	curl_global_cleanup();
}

void brt_s3_options_defaults(brt_s3_options *o)
{
	memset(o, 0, sizeof(*o));
	memcpy(o->region, "us-east-1", sizeof("us-east-1"));
	o->verify_tls = 1;
	o->part_size = BRT_S3_PART_DEFAULT;
	o->retries = 3;
	o->timeout_ms = 30000;
	o->redirect_ttl = 20 * 60;
	o->buffer_memory = (uint64_t)1 << 30;
}

/* Copy environment variable `name` into `out` if it is set and fits. */
static int from_env(char *out, size_t cap, const char *name)
{
	const char *value = getenv(name);
	size_t len = value ? strlen(value) : 0;

	if (!value)
		return 0;
	if (len >= cap)
		return brt_error_set(BRT_EINVALID, "S3: %s is too long", name);
	memcpy(out, value, len + 1);
	return 0;
}

static int check_options(const brt_s3_options *o)
{
	size_t len = strlen(o->bucket);

	if (len < 3 || len > 63 || strspn(o->bucket, "abcdefghijklmnopqrstuvwxyz0123456789.-") != len)
		return brt_error_set(BRT_EINVALID, "S3: bucket name must be 3-63 characters of [a-z0-9.-]");
	len = strlen(o->region);
	if (len == 0 ||
	    strspn(o->region, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != len)
		return brt_error_set(BRT_EINVALID, "S3: region must be a name like us-east-1");
	len = strlen(o->prefix);
	if (len > 0 &&
	    (strspn(o->prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/") != len ||
	     o->prefix[0] == '/' || o->prefix[len - 1] != '/' || strstr(o->prefix, "//")))
		return brt_error_set(BRT_EINVALID,
				     "S3: key prefix must be empty or end in '/', of [A-Za-z0-9._-/] without "
				     "'//'");
	if (o->part_size < BRT_S3_PART_MIN || o->part_size > BRT_S3_PART_MAX)
		return brt_error_set(BRT_EINVALID, "S3: part size must be %llu..%llu bytes",
				     (unsigned long long)BRT_S3_PART_MIN,
				     (unsigned long long)BRT_S3_PART_MAX);
	if (o->buffer_memory < o->part_size)
		return brt_error_set(BRT_EINVALID, "S3: buffer memory (%llu bytes) must hold a part (%llu)",
				     (unsigned long long)o->buffer_memory, (unsigned long long)o->part_size);
	if (o->retries > 10)
		return brt_error_set(BRT_EINVALID, "S3: at most 10 retries");
	if (o->timeout_ms < 100)
		return brt_error_set(BRT_EINVALID, "S3: timeout must be at least 100 ms");
	return 0;
}

int brt_blobstore_s3_open(brt_blobstore **out, const brt_s3_options *options)
{
	s3_request req = {.method = "HEAD", .key = NULL, .retry = S3_RETRY_ALL, .what = "check bucket"};
	char url[S3_URL_MAX];
	s3_store *s3 = NULL;
	s3_response resp;
	int error = 0, curl_up = 0;

	*out = NULL;
	s3_response_init(&resp);
	if (!(s3 = calloc(1, sizeof(*s3)))) {
		error = brt_error_set(BRT_ENOMEM, "S3: out of memory");
		goto done;
	}
	s3->o = *options;
	s3->o.endpoint[sizeof(s3->o.endpoint) - 1] = '\0';
	s3->o.region[sizeof(s3->o.region) - 1] = '\0';
	s3->o.bucket[sizeof(s3->o.bucket) - 1] = '\0';
	s3->o.prefix[sizeof(s3->o.prefix) - 1] = '\0';
	s3->o.access_key[sizeof(s3->o.access_key) - 1] = '\0';
	s3->o.secret_key[sizeof(s3->o.secret_key) - 1] = '\0';
	s3->o.session_token[sizeof(s3->o.session_token) - 1] = '\0';
	s3->o.ca_file[sizeof(s3->o.ca_file) - 1] = '\0';
	/* Credentials all from the options or all from the environment:
	 * never a key from one and a secret from the other. */
	if (!s3->o.access_key[0] && !s3->o.secret_key[0]) {
		if ((error = from_env(s3->o.access_key, sizeof(s3->o.access_key), "AWS_ACCESS_KEY_ID")) < 0 ||
		    (error = from_env(s3->o.secret_key, sizeof(s3->o.secret_key), "AWS_SECRET_ACCESS_KEY")) <
			    0 ||
		    (!s3->o.session_token[0] &&
		     (error = from_env(s3->o.session_token, sizeof(s3->o.session_token),
				       "AWS_SESSION_TOKEN")) < 0))
			goto done;
	}
	if (!s3->o.access_key[0] || !s3->o.secret_key[0]) {
		error = brt_error_set(BRT_EINVALID,
				      "S3: no credentials (options or AWS_ACCESS_KEY_ID and "
				      "AWS_SECRET_ACCESS_KEY)");
		goto done;
	}
	if ((error = check_options(&s3->o)) < 0 || (error = s3_url(url, sizeof(url), &s3->o, NULL, NULL)) < 0)
		goto done;
	if (s3->o.session_token[0])
		snprintf(s3->token_header, sizeof(s3->token_header), "x-amz-security-token: %s",
			 s3->o.session_token);
	snprintf(s3->sigv4, sizeof(s3->sigv4), "aws:amz:%s:s3", s3->o.region);
	if (pthread_mutex_init(&s3->lock, NULL) != 0) {
		error = brt_error_set(BRT_ENOMEM, "S3: cannot create a mutex");
		goto done;
	}
	s3->pid = getpid();
	s3->list_page = 1000;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		pthread_mutex_destroy(&s3->lock);
		error = brt_error_set(BRT_EIO, "S3: cannot initialise libcurl");
		goto done;
	}
	curl_up = 1;
	xmlInitParser();

	s3->base.version = BRT_BLOBSTORE_VERSION;
	s3->base.name = "s3";
	s3->base.stat = s3_stat;
	s3->base.reader_open = s3_reader_open;
	s3->base.writer_open = s3_writer_open;
	s3->base.commit = s3_commit;
	s3->base.upload_remove = s3_upload_remove;
	s3->base.remove = s3_remove;
	s3->base.copy = s3_copy;
	s3->base.list = s3_list;
	s3->base.free = s3_free;
	s3->base.upload_list = s3_upload_list;
	s3->base.upload_prune = s3_upload_prune;
	s3->base.list_dated = s3_list_dated;
	s3->base.chunk_min = s3->o.part_size;
	s3->base.adopt_replaces = 1; /* the spill object */
	s3->base.upload_key = s3_upload_key;
	s3->base.presign = s3_presign;

	/* The bucket must answer, and the credentials must be good. */
	if ((error = s3_perform(s3, &req, &resp)) < 0)
		goto done;
	if (resp.status == 404) {
		error = brt_error_set(BRT_EIO, "S3: bucket %s does not exist", s3->o.bucket);
		goto done;
	}
	if (resp.status != 200) {
		error = s3_fail(&req, &resp);
		goto done;
	}
	*out = &s3->base;
	s3 = NULL;
done:
	s3_response_free(&resp);
	if (s3 && curl_up) {
		s3_free(&s3->base);
	} else if (s3) {
		explicit_bzero(s3->o.secret_key, sizeof(s3->o.secret_key));
		free(s3);
	}
	return error;
}
