/* The S3 blob store driver against a real S3 store (Ceph RGW under the
 * test services): the shared suite (plain and with injected faults) with
 * the smallest part size, so multipart uploads run, under a key prefix
 * of this run that is emptied at the end; then what only S3 shows: two
 * attempts racing on one part number (the commit refuses the overwritten
 * part instead of publishing wrong bytes), publishing under the upload's
 * own key without a copy, presigned URLs (the AWS documentation's example
 * and a real fetch), virtual-host URLs, credentials from the AWS_*
 * environment, an unreachable endpoint failing fast after bounded
 * retries, and the backend state's size at the part limit.  Skipped (77)
 * without S3_ENDPOINT and friends. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "check.h"
#include "blobstore_suite.h"
#include "common/error.h"
#include "storage/blob_upload.h"
#include "storage/blobstore.h"
#include "storage/s3/s3.h"
#include "storage/s3/s3_internal.h"

#define MIB ((size_t)1 << 20)

static brt_s3_options base;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int env_options(brt_s3_options *o)
{
	const char *names[] = {"S3_ENDPOINT", "S3_REGION", "S3_BUCKET", "S3_ACCESS_KEY", "S3_SECRET_KEY"};
	char *fields[] = {o->endpoint, o->region, o->bucket, o->access_key, o->secret_key};
	size_t caps[] = {sizeof(o->endpoint), sizeof(o->region), sizeof(o->bucket), sizeof(o->access_key),
			 sizeof(o->secret_key)};

	brt_s3_options_defaults(o);
	for (int i = 0; i < 5; i++) {
		const char *v = getenv(names[i]);
		if (!v || !v[0] || strlen(v) >= caps[i])
			return -1;
		memcpy(fields[i], v, strlen(v) + 1);
	}
	o->path_style = 1;
	o->part_size = BRT_S3_PART_MIN;
	snprintf(o->prefix, sizeof(o->prefix), "t-%ld-%lld/", (long)getpid(), (long long)time(NULL));
	return 0;
}

/* A plain GET with libcurl, no credentials: the status and up to `cap`
 * bytes of body. */
typedef struct fetched {
	unsigned char *buf;
	size_t len, cap;
} fetched;

static size_t fetch_write(char *data, size_t size, size_t nmemb, void *payload)
{
	fetched *f = payload;
	size_t n = size * nmemb;

	if (n > f->cap - f->len)
		return 0;
	memcpy(f->buf + f->len, data, n);
	f->len += n;
	return n;
}

static long plain_get(const char *url, fetched *f)
{
	CURL *curl = curl_easy_init();
	long status = 0;

	if (!curl)
		return -1;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, fetch_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, f);
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	return status;
}

/* The ETag of full key `key` through a signed HEAD of our own. */
static long signed_head(const brt_s3_options *o, const char *key, char *etag, size_t cap)
{
	char url[2048], sigv4[128];
	struct curl_slist *headers = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
	CURL *curl = curl_easy_init();
	long status = 0;
	struct curl_header *h = NULL;

	etag[0] = '\0';
	if (!curl || !headers || brt_s3_object_url(url, sizeof(url), o, key) < 0)
		goto done;
	snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", o->region);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(curl, CURLOPT_USERNAME, o->access_key);
	curl_easy_setopt(curl, CURLOPT_PASSWORD, o->secret_key);
	if (curl_easy_perform(curl) == CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		if (curl_easy_header(curl, "ETag", 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
			snprintf(etag, cap, "%s", h->value);
	}
done:
	curl_slist_free_all(headers);
	if (curl)
		curl_easy_cleanup(curl);
	return status;
}

static int collect_count(const char *key, uint64_t size, void *payload)
{
	(void)key;
	(void)size;
	++*(int *)payload;
	return 0;
}

/* A one-thread HTTP server on loopback that answers each connection
 * with the next of `replies` and keeps the first request it saw: for
 * what RGW cannot show (the headers sent, answers a store never gives). */
typedef struct fake_server {
	int fd;
	unsigned int port;
	pthread_t thread;
	const char *const *replies;
	size_t count;
	char request[16384];    /* the first request */
	char requests[8][2048]; /* the first 8 requests' heads */
	size_t request_len;
} fake_server;

static void *fake_main(void *arg)
{
	fake_server *srv = arg;

	for (size_t i = 0; i < srv->count; i++) {
		char buf[16384];
		size_t len = 0;
		int c = accept(srv->fd, NULL, NULL);
		if (c < 0)
			break;
		while (len < sizeof(buf) - 1) {
			ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
			if (n <= 0)
				break;
			len += (size_t)n;
			buf[len] = '\0';
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		if (i == 0) {
			memcpy(srv->request, buf, len);
			srv->request[len] = '\0';
			srv->request_len = len;
		}
		if (i < 8) {
			size_t keep = len < sizeof(srv->requests[i]) - 1 ? len : sizeof(srv->requests[i]) - 1;
			memcpy(srv->requests[i], buf, keep);
			srv->requests[i][keep] = '\0';
		}
		if (write(c, srv->replies[i], strlen(srv->replies[i])) < 0)
			break;
		close(c);
	}
	return NULL;
}

static int fake_start(fake_server *srv, const char *const *replies, size_t count)
{
	struct sockaddr_in addr;
	socklen_t addr_len = sizeof(addr);

	memset(srv, 0, sizeof(*srv));
	srv->replies = replies;
	srv->count = count;
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((srv->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(srv->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    getsockname(srv->fd, (struct sockaddr *)&addr, &addr_len) != 0 || listen(srv->fd, 8) != 0)
		return -1;
	srv->port = ntohs(addr.sin_port);
	return pthread_create(&srv->thread, NULL, fake_main, srv) == 0 ? 0 : -1;
}

static void fake_stop(fake_server *srv)
{
	/* Unblock an accept still waiting, then collect the thread. */
	shutdown(srv->fd, SHUT_RDWR);
	pthread_join(srv->thread, NULL);
	close(srv->fd);
}

#define OK_EMPTY "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

/* The session token goes out as x-amz-security-token, signed; answers
 * that are no S3 answers fail cleanly. */
static void check_fake_server(void)
{
	static const char *const replies[] = {
		OK_EMPTY,
		/* A listing cut off in the middle of its XML (the connection
		 * broke: the store is out of service for now). */
		"HTTP/1.1 200 OK\r\nContent-Length: 40\r\nConnection: close\r\n\r\n"
		"<ListBucketResult><Contents><Key>blobs/",
		/* Not XML at all. */
		"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\n\x01\x02garbage",
		/* An entity that would pull in a file, if entities were expanded. */
		"HTTP/1.1 200 OK\r\nContent-Length: 163\r\nConnection: close\r\n\r\n"
		"<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
		"<ListBucketResult><Contents><Key>&x;</Key><Size>1</Size></Contents></ListBucketResult>  ",
		/* A HEAD answered with a status no S3 sends. */
		"HTTP/1.1 302 Found\r\nLocation: http://example.com/\r\nContent-Length: 0\r\n"
		"Connection: close\r\n\r\n",
	};
	brt_s3_options o = base;
	brt_blobstore *bs = NULL;
	fake_server srv;
	uint64_t size = 0;
	int keys = 0;

	printf("s3: a store that is no S3 store\n");
	if (fake_start(&srv, replies, sizeof(replies) / sizeof(replies[0])) < 0) {
		CHECK(!"cannot start the fake server");
		return;
	}
	snprintf(o.endpoint, sizeof(o.endpoint), "http://127.0.0.1:%u", srv.port);
	snprintf(o.session_token, sizeof(o.session_token), "a-session-token");
	o.retries = 0;
	CHECK_EQ_INT(brt_blobstore_s3_open(&bs, &o), 0);
	CHECK(strstr(srv.request, "x-amz-security-token: a-session-token\r\n") != NULL);
	CHECK(strstr(srv.request, "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n") != NULL);
	CHECK(strstr(srv.request,
		     "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token") != NULL);
	if (bs) {
		CHECK_EQ_INT(bs->list(bs, collect_count, &keys), BRT_EUNAVAILABLE);
		CHECK_EQ_INT(bs->list(bs, collect_count, &keys), BRT_EIO);
		CHECK_EQ_INT(bs->list(bs, collect_count, &keys), 0);
		CHECK_EQ_INT(keys, 0);
		CHECK_EQ_INT(bs->stat(bs, "sha256/00/none", &size), BRT_EIO);
	}
	brt_blobstore_free(bs);
	fake_stop(&srv);
}

/* 5xx answers are retried, then reported with the status; a read whose
 * connection drops resumes where it stopped, pinned to the object's
 * ETag. */
static void check_retries(void)
{
	static const char *const replies[] = {
		OK_EMPTY,
		"HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nETag: \"abc\"\r\nConnection: close\r\n\r\n",
		/* 5 of the 10 bytes promised, then the connection drops. */
		"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nContent-Range: bytes 0-9/10\r\n"
		"Connection: close\r\n\r\n01234",
		"HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\nContent-Range: bytes 5-9/10\r\n"
		"Connection: close\r\n\r\n56789",
	};
	brt_s3_options o = base;
	brt_blobstore *bs = NULL;
	brt_blob_reader *r = NULL;
	fake_server srv;
	uint64_t size = 0;
	char buf[32];
	size_t got = 0, n = 0;

	printf("s3: retries and resumed reads\n");
	if (fake_start(&srv, replies, sizeof(replies) / sizeof(replies[0])) < 0) {
		CHECK(!"cannot start the fake server");
		return;
	}
	snprintf(o.endpoint, sizeof(o.endpoint), "http://127.0.0.1:%u", srv.port);
	o.retries = 1;
	CHECK_EQ_INT(brt_blobstore_s3_open(&bs, &o), 0);
	if (bs) {
		CHECK_EQ_INT(bs->stat(bs, "sha256/00/busy", &size), BRT_EUNAVAILABLE);
		CHECK(strstr(brt_error_last(), "HTTP 503") != NULL);
		CHECK(strstr(brt_error_last(), "after 2 attempts") != NULL);
		CHECK_EQ_INT(bs->reader_open(&r, bs, "sha256/00/flaky", 0), 0);
		while (r && got < sizeof(buf) && r->read(r, buf + got, sizeof(buf) - got, &n) == 0 && n > 0)
			got += n;
		CHECK_EQ_INT(got, 10);
		CHECK(got == 10 && memcmp(buf, "0123456789", 10) == 0);
		CHECK(strstr(srv.requests[4], "Range: bytes=0-\r\n") != NULL);
		CHECK(strstr(srv.requests[5], "Range: bytes=5-\r\n") != NULL);
		CHECK(strstr(srv.requests[5], "If-Match: \"abc\"\r\n") != NULL);
		if (r)
			r->free(r);
	}
	brt_blobstore_free(bs);
	fake_stop(&srv);
}

/* ------------------------------------------------------------ checks */

/* Two attempts at a state that has a multipart upload both send part 2;
 * the winner's state names its ETag, the loser's bytes overwrote the
 * part: the commit must refuse (BRT_ENOTFOUND), never publish them. */
static void check_part_race(suite_ctx *ctx, brt_blobstore *bs)
{
	unsigned char *a = suite_make(2 * MIB * 5, 301), *b = suite_make(MIB * 5, 302);
	brt_blob_writer *wa = NULL, *wb = NULL;
	suite_row row = {0};
	char id[BRT_UPLOAD_ID_LEN + 1], key[BRT_BLOB_KEY_MAX];
	uint64_t seen, size;

	printf("s3: racing attempts on one part number\n");
	CHECK(a && b);
	if (!a || !b)
		goto done;
	suite_upload_id(ctx, id);
	/* Two first parts: each attempt creates a multipart upload of its
	 * own, and the loser's goes with it. */
	CHECK_EQ_INT(suite_attempt(&wa, bs, id, &row), 0);
	CHECK_EQ_INT(suite_attempt(&wb, bs, id, &row), 0);
	if (!wa || !wb)
		goto done;
	CHECK_EQ_INT(wa->append(wa, a, 5 * MIB), 0);
	CHECK_EQ_INT(wb->append(wb, b, 5 * MIB), 0);
	CHECK_EQ_INT(suite_upload_size(bs, id), 10 * MIB);
	CHECK_EQ_INT(suite_adopt(&row, 0, wb), 0);
	CHECK_EQ_INT(suite_adopt(&row, 0, wa), BRT_ECONFLICT);
	wa->free(wa);
	wb->free(wb);
	wa = wb = NULL;
	CHECK_EQ_INT(suite_upload_size(bs, id), 5 * MIB);
	CHECK_EQ_INT(bs->upload_remove(bs, id, row.state, row.state_len), 0);
	CHECK(suite_upload_gone(bs, id));
	suite_row_free(&row);

	suite_upload_id(ctx, id);
	/* Part 1 and a multipart upload, acknowledged. */
	CHECK_EQ_INT(suite_chunk(bs, id, &row, a, 5 * MIB, MIB), 0);
	seen = row.generation;
	CHECK_EQ_INT(suite_attempt(&wa, bs, id, &row), 0);
	CHECK_EQ_INT(suite_attempt(&wb, bs, id, &row), 0);
	if (!wa || !wb)
		goto done;
	CHECK_EQ_INT(wa->append(wa, a + 5 * MIB, 5 * MIB), 0);
	CHECK_EQ_INT(wb->append(wb, b, 5 * MIB), 0); /* overwrites part 2 */
	CHECK_EQ_INT(suite_adopt(&row, seen, wa), 0);
	CHECK_EQ_INT(suite_adopt(&row, seen, wb), BRT_ECONFLICT);
	wa->free(wa);
	wb->free(wb);
	wa = wb = NULL;
	CHECK_EQ_INT(row.offset, 10 * MIB);
	suite_key_of(key, a, 10 * MIB);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), BRT_ENOTFOUND);
	CHECK(strstr(brt_error_last(), "InvalidPart") != NULL);
	CHECK_EQ_INT(bs->stat(bs, key, &size), BRT_ENOTFOUND);
	/* The same through the upload's own key. */
	CHECK_EQ_INT(bs->upload_key(bs, id, key), 0);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), BRT_ENOTFOUND);
	CHECK_EQ_INT(bs->stat(bs, key, &size), BRT_ENOTFOUND);
	CHECK(suite_upload_size(bs, id) >= (long long)(10 * MIB));
	CHECK_EQ_INT(bs->upload_remove(bs, id, row.state, row.state_len), 0);
	CHECK(suite_upload_gone(bs, id));
done:
	if (wa)
		wa->free(wa);
	if (wb)
		wb->free(wb);
	suite_row_free(&row);
	free(a);
	free(b);
}

/* Three attempts, two full parts and a tail, committed under the upload's
 * own key: the multipart upload completes in place (its ETag says so: a
 * copy would not keep the parts' count), and nothing else is left. */
static void check_own_key(suite_ctx *ctx, brt_blobstore *bs, const brt_s3_options *o)
{
	const size_t len = 11 * MIB + 12345;
	unsigned char *data = suite_make(len, 401);
	suite_row row = {0};
	char id[BRT_UPLOAD_ID_LEN + 1], key[BRT_BLOB_KEY_MAX], other[BRT_BLOB_KEY_MAX], full[1024], etag[128];
	size_t third = len / 3;

	printf("s3: commit under the upload's own key\n");
	CHECK(data != NULL);
	if (!data)
		return;
	CHECK_EQ_INT(bs->chunk_min, o->part_size);
	suite_upload_id(ctx, id);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data, third, 65536), 0);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data + third, third, 3 * MIB), 0);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data + 2 * third, len - 2 * third, 7 * MIB), 0);
	CHECK_EQ_INT(bs->upload_key(bs, id, key), 0);
	CHECK_EQ_INT(strncmp(key, "u/", 2), 0);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_expect_content(bs, key, data, len);
	CHECK(suite_upload_gone(bs, id));
	snprintf(full, sizeof(full), "%sblobs/%s", o->prefix, key);
	CHECK_EQ_INT(signed_head(o, full, etag, sizeof(etag)), 200);
	CHECK(strstr(etag, "-3\"") != NULL);
	/* Committing it again (a retry after a lost answer) finds it
	 * published: the same key with the same size. */
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_expect_content(bs, key, data, len);
	/* A commit elsewhere that completed the upload but failed before
	 * its copy, retried: the completed object is the data, copied. */
	suite_key_of(other, data, len);
	CHECK_EQ_INT(suite_commit(bs, id, &row, other), 0);
	suite_expect_content(bs, other, data, len);
	CHECK_EQ_INT(bs->stat(bs, key, &(uint64_t){0}), BRT_ENOTFOUND);
	CHECK_EQ_INT(bs->remove(bs, other), 0);
	CHECK_EQ_INT(suite_commit(bs, id, &row, other), BRT_ENOTFOUND);
	suite_row_free(&row);
	/* Smaller than a part: its spill is published at the own key. */
	suite_upload_id(ctx, id);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data, 1000, 100), 0);
	CHECK_EQ_INT(bs->upload_key(bs, id, key), 0);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_expect_content(bs, key, data, 1000);
	CHECK(suite_upload_gone(bs, id));
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), BRT_ENOTFOUND);
	CHECK_EQ_INT(bs->remove(bs, key), 0);
	suite_row_free(&row);
	free(data);
}

/* The core's upload path (storage/blob_upload.c): a body streamed
 * through the upload ring is published under the store's upload_key;
 * with a digest of another algorithm than the one hashed while
 * streaming, through the re-hash path (staging key and copy). */
static void check_core_upload(suite_ctx *ctx, brt_blobstore *bs)
{
	const size_t total = 12 * MIB + 3;
	unsigned char *data = suite_make(total, 501), *back = malloc(total);
	unsigned char hash_state[BRT_HASHER_STATE_MAX];
	char id[BRT_UPLOAD_ID_LEN + 1], key[BRT_BLOB_KEY_MAX], own[BRT_BLOB_KEY_MAX];
	const unsigned char *state;
	size_t hash_len, state_len;
	brt_blob_upload *upload = NULL;
	brt_digest want;
	uint64_t size = 0;
	size_t got = 0;

	printf("s3: the core's uploads\n");
	CHECK(data && back);
	if (!data || !back)
		goto done;
	for (int rehash = 0; rehash <= 1; rehash++) {
		brt_digest_of(&want, rehash ? BRT_DIGEST_SHA512 : BRT_DIGEST_SHA256, data, total);
		suite_upload_id(ctx, id);
		CHECK_EQ_INT(brt_blob_upload_open(&upload, bs, id, (uint64_t)1 << 40, BRT_DIGEST_SHA256,
						  NULL),
			     0);
		if (!upload)
			goto done;
		brt_blob_upload_expect(upload, -1);
		for (size_t at = 0; at < total; at += 100000)
			CHECK_EQ_INT(brt_blob_upload_write(upload, data + at,
							   total - at < 100000 ? total - at : 100000),
				     0);
		CHECK_EQ_INT(brt_blob_upload_save(upload, hash_state, &hash_len, &state, &state_len), 0);
		CHECK_EQ_INT(brt_blob_upload_check(upload, &want), rehash);
		CHECK_EQ_INT(brt_blob_upload_commit(upload, &want, key, &size), 0);
		CHECK_EQ_INT(size, total);
		CHECK_EQ_INT(bs->upload_key(bs, id, own), 0);
		CHECK_EQ_STR(key, own);
		CHECK_EQ_INT(suite_read(bs, key, 0, back, total, &got), 0);
		CHECK(got == total && memcmp(back, data, total) == 0);
		brt_blob_upload_free(upload);
		upload = NULL;
		CHECK(suite_upload_gone(bs, id));
		snprintf(own, sizeof(own), "staging/%s", id);
		CHECK_EQ_INT(bs->stat(bs, own, &size), BRT_ENOTFOUND);
		CHECK_EQ_INT(bs->remove(bs, key), 0);
	}
done:
	brt_blob_upload_free(upload);
	free(data);
	free(back);
}

static void check_presign(suite_ctx *ctx, brt_blobstore *bs)
{
	static const char expected[] =
		"https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
		"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
		"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
	brt_s3_options o;
	unsigned char body[4096];
	fetched f = {body, 0, sizeof(body)};
	char url[4096], key[BRT_BLOB_KEY_MAX], *sig;

	printf("s3: presigned URLs\n");
	/* The example of the AWS documentation (query-string SigV4). */
	brt_s3_options_defaults(&o);
	snprintf(o.endpoint, sizeof(o.endpoint), "https://s3.amazonaws.com");
	snprintf(o.bucket, sizeof(o.bucket), "examplebucket");
	snprintf(o.access_key, sizeof(o.access_key), "AKIAIOSFODNN7EXAMPLE");
	snprintf(o.secret_key, sizeof(o.secret_key), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
	CHECK_EQ_INT(brt_s3_presign_url(url, sizeof(url), &o, "test.txt", 86400, 1369353600), 0);
	CHECK_EQ_STR(url, expected);
	CHECK_EQ_INT(brt_s3_presign_url(url, 40, &o, "test.txt", 86400, 1369353600), BRT_ETOOBIG);
	CHECK_EQ_INT(brt_s3_presign_url(url, sizeof(url), &o, "test.txt", 0, 1369353600), BRT_EINVALID);
	CHECK_EQ_INT(brt_s3_presign_url(url, sizeof(url), &o, "test.txt", 604801, 1369353600), BRT_EINVALID);

	/* A real fetch from the store, with nothing but the URL. */
	CHECK_EQ_INT(suite_put(ctx, bs, key, (const unsigned char *)"presigned content", 17), 0);
	CHECK_EQ_INT(brt_blobstore_presign(bs, key, 300, url, sizeof(url)), 0);
	CHECK_EQ_INT(plain_get(url, &f), 200);
	CHECK(f.len == 17 && memcmp(body, "presigned content", 17) == 0);
	/* A tampered signature is refused. */
	if ((sig = strstr(url, "X-Amz-Signature="))) {
		sig += 16;
		*sig = *sig == '0' ? '1' : '0';
		f.len = 0;
		CHECK_EQ_INT(plain_get(url, &f), 403);
	}
	CHECK_EQ_INT(brt_blobstore_presign(bs, key, 300, url, 16), BRT_ETOOBIG);
	CHECK_EQ_INT(bs->remove(bs, key), 0);
	suite_keyset_del(&ctx->expected, key);
}

static void check_urls(void)
{
	brt_s3_options o;
	char url[512];

	printf("s3: URLs\n");
	brt_s3_options_defaults(&o);
	snprintf(o.endpoint, sizeof(o.endpoint), "https://s3.example.com:8443/");
	snprintf(o.bucket, sizeof(o.bucket), "bkt");
	CHECK_EQ_INT(brt_s3_object_url(url, sizeof(url), &o, "p/blobs/sha256/ab/x"), 0);
	CHECK_EQ_STR(url, "https://bkt.s3.example.com:8443/p/blobs/sha256/ab/x");
	o.path_style = 1;
	CHECK_EQ_INT(brt_s3_object_url(url, sizeof(url), &o, "p/blobs/sha256/ab/x"), 0);
	CHECK_EQ_STR(url, "https://s3.example.com:8443/bkt/p/blobs/sha256/ab/x");
	CHECK_EQ_INT(brt_s3_object_url(url, sizeof(url), &o, "a b+c~"), 0);
	CHECK_EQ_STR(url, "https://s3.example.com:8443/bkt/a%20b%2Bc~");
	o.path_style = 0;
	o.endpoint[0] = '\0';
	snprintf(o.region, sizeof(o.region), "eu-west-1");
	CHECK_EQ_INT(brt_s3_object_url(url, sizeof(url), &o, "k"), 0);
	CHECK_EQ_STR(url, "https://bkt.s3.eu-west-1.amazonaws.com/k");
	CHECK_EQ_INT(brt_s3_object_url(url, 20, &o, "k"), BRT_ETOOBIG);
	snprintf(o.endpoint, sizeof(o.endpoint), "ftp://x");
	CHECK_EQ_INT(brt_s3_object_url(url, sizeof(url), &o, "k"), BRT_EINVALID);
	snprintf(o.endpoint, sizeof(o.endpoint), "http://x/path");
	CHECK_EQ_INT(brt_s3_object_url(url, sizeof(url), &o, "k"), BRT_EINVALID);
}

static void check_env_credentials(void)
{
	brt_s3_options o = base;
	brt_blobstore *bs = NULL;
	uint64_t size = 0;

	printf("s3: credentials from the environment\n");
	setenv("AWS_ACCESS_KEY_ID", base.access_key, 1);
	setenv("AWS_SECRET_ACCESS_KEY", base.secret_key, 1);
	unsetenv("AWS_SESSION_TOKEN");
	o.access_key[0] = o.secret_key[0] = '\0';
	CHECK_EQ_INT(brt_blobstore_s3_open(&bs, &o), 0);
	if (bs)
		CHECK_EQ_INT(bs->stat(bs, "sha256/00/none", &size), BRT_ENOTFOUND);
	brt_blobstore_free(bs);
	bs = NULL;
	/* A wrong secret: refused at open, with a detail that says why. */
	setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret", 1);
	CHECK_EQ_INT(brt_blobstore_s3_open(&bs, &o), BRT_EIO);
	CHECK(strstr(brt_error_last(), "access denied") != NULL);
	CHECK(bs == NULL);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	CHECK_EQ_INT(brt_blobstore_s3_open(&bs, &o), BRT_EINVALID);
	CHECK(bs == NULL);
}

static void check_unreachable(void)
{
	brt_s3_options o = base;
	struct sockaddr_in addr;
	socklen_t addr_len = sizeof(addr);
	brt_blobstore *bs = NULL;
	double started;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	printf("s3: unreachable endpoint\n");
	/* A port that was just free: nothing listens there. */
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
	      getsockname(fd, (struct sockaddr *)&addr, &addr_len) == 0);
	close(fd);
	snprintf(o.endpoint, sizeof(o.endpoint), "http://127.0.0.1:%u", (unsigned)ntohs(addr.sin_port));
	o.retries = 2;
	o.timeout_ms = 1000;
	started = now_s();
	CHECK_EQ_INT(brt_blobstore_s3_open(&bs, &o), BRT_EUNAVAILABLE);
	CHECK(strstr(brt_error_last(), "after 3 attempts") != NULL);
	CHECK(now_s() - started < 5.0);
	CHECK(bs == NULL);
	printf("s3: unreachable endpoint failed in %.2f s: %s\n", now_s() - started, brt_error_last());
	/* Options checked before anything is sent. */
	o = base;
	o.part_size = BRT_S3_PART_MIN - 1;
	CHECK_EQ_INT(brt_blobstore_s3_open(&bs, &o), BRT_EINVALID);
	o = base;
	snprintf(o.prefix, sizeof(o.prefix), "no-slash");
	CHECK_EQ_INT(brt_blobstore_s3_open(&bs, &o), BRT_EINVALID);
	o = base;
	snprintf(o.bucket, sizeof(o.bucket), "Bad_Bucket");
	CHECK_EQ_INT(brt_blobstore_s3_open(&bs, &o), BRT_EINVALID);
	o = base;
	snprintf(o.bucket, sizeof(o.bucket), "no-such-bucket-here");
	CHECK_EQ_INT(brt_blobstore_s3_open(&bs, &o), BRT_EIO);
}

/* The part buffers of all attempts together stay within buffer_memory:
 * past it a write fails with BRT_EUNAVAILABLE (503, retry), and the room
 * comes back as attempts end. */
static void check_buffer_memory(suite_ctx *ctx)
{
	brt_s3_options o = base;
	brt_blobstore *bs = NULL;
	brt_blob_writer *w[3] = {NULL, NULL, NULL};
	const size_t almost = (size_t)o.part_size - 1;
	unsigned char *data = suite_make(almost, 71);
	char id[BRT_UPLOAD_ID_LEN + 1];

	printf("s3: buffer memory\n");
	o.buffer_memory = 2 * o.part_size;
	CHECK(data != NULL);
	if (!data || brt_blobstore_s3_open(&bs, &o) < 0) {
		CHECK(0);
		free(data);
		return;
	}
	for (int i = 0; i < 3; i++) {
		suite_upload_id(ctx, id);
		CHECK_EQ_INT(bs->writer_open(&w[i], bs, id, 0, NULL, 0), 0);
	}
	if (w[0] && w[1] && w[2]) {
		CHECK_EQ_INT(w[0]->append(w[0], data, almost), 0);
		CHECK_EQ_INT(w[1]->append(w[1], data, almost), 0);
		CHECK_EQ_INT(w[2]->append(w[2], data, 1), BRT_EUNAVAILABLE);
		CHECK(strstr(brt_error_last(), "buffermemory") != NULL);
		w[2]->free(w[2]);
		w[0]->free(w[0]);
		suite_upload_id(ctx, id);
		w[0] = w[2] = NULL;
		CHECK_EQ_INT(bs->writer_open(&w[2], bs, id, 0, NULL, 0), 0);
		if (w[2])
			CHECK_EQ_INT(w[2]->append(w[2], data, almost), 0);
	}
	for (int i = 0; i < 3; i++)
		if (w[i])
			w[i]->free(w[i]);
	CHECK(atomic_load(&((s3_store *)bs)->buffered) == 0);
	o.buffer_memory = o.part_size - 1;
	brt_blobstore_free(bs);
	bs = NULL;
	CHECK_EQ_INT(brt_blobstore_s3_open(&bs, &o), BRT_EINVALID);
	free(data);
}

/* The state stays within BRT_BACKEND_STATE_MAX at 10000 parts with the
 * longest ETags, parses back, and rejects what it must. */
static void check_state_limits(void)
{
	char etag[S3_ETAG_MAX + 1];
	s3_state st, back;
	brt_dynbuf out;

	printf("s3: backend state at the part limit\n");
	memset(&st, 0, sizeof(st));
	brt_dynbuf_init(&out, BRT_BACKEND_STATE_MAX);
	st.part_size = BRT_S3_PART_MAX;
	memset(st.mpu, 'm', S3_MPU_ID_MAX);
	st.mpu[S3_MPU_ID_MAX] = '\0';
	memset(etag, 'e', S3_ETAG_MAX);
	etag[S3_ETAG_MAX] = '\0';
	for (int i = 0; i < S3_PARTS_MAX; i++)
		CHECK_EQ_INT(s3_state_add_part(&st, etag), 0);
	CHECK_EQ_INT(s3_state_add_part(&st, etag), BRT_ETOOBIG);
	memcpy(st.spill, "0123456789abcdef", 17);
	st.spill_len = BRT_S3_PART_MAX - 1;
	CHECK_EQ_INT(s3_state_format(&out, &st), 0);
	CHECK(brt_dynbuf_len(&out) <= BRT_BACKEND_STATE_MAX);
	printf("s3: state of %d parts: %zu bytes\n", S3_PARTS_MAX, brt_dynbuf_len(&out));
	CHECK_EQ_INT(s3_state_parse(&back, (const unsigned char *)brt_dynbuf_ptr(&out), brt_dynbuf_len(&out),
				    BRT_S3_PART_MIN),
		     0);
	CHECK_EQ_INT(back.parts, S3_PARTS_MAX);
	CHECK_EQ_INT(s3_state_size(&back), s3_state_size(&st));
	s3_state_free(&back);
	CHECK_EQ_INT(s3_state_parse(&back,
				    (const unsigned char *)"berth-s3 1\npart-size 5242880\nspill "
							   "0123456789abcdef 5242880\n",
				    58, BRT_S3_PART_MIN),
		     BRT_EINVALID);
	CHECK_EQ_INT(s3_state_parse(&back, (const unsigned char *)"berth-s3 1\npart-size 5242880\n\"etag\"\n",
				    36, BRT_S3_PART_MIN),
		     BRT_EINVALID);
	s3_state_free(&st);
	brt_dynbuf_free(&out);
}

/* ------------------------------------------------------------ cleanup */

static int collect_key(const char *key, uint64_t size, void *payload)
{
	(void)size;
	return suite_keyset_add(payload, key, 0);
}

static int collect_upload(const char *id, uint64_t size, int64_t mtime_ms, void *payload)
{
	(void)size;
	(void)mtime_ms;
	return suite_keyset_add(payload, id, 0);
}

/* Empty this run's prefix: objects, then upload data. */
static void cleanup(brt_blobstore *bs)
{
	suite_keyset keys = {0}, ids = {0};

	CHECK_EQ_INT(bs->list(bs, collect_key, &keys), 0);
	for (size_t i = 0; i < keys.count; i++)
		CHECK_EQ_INT(bs->remove(bs, keys.keys[i]), 0);
	CHECK_EQ_INT(bs->upload_list(bs, collect_upload, &ids), 0);
	for (size_t i = 0; i < ids.count; i++)
		CHECK_EQ_INT(bs->upload_remove(bs, ids.keys[i], NULL, 0), 0);
	suite_keyset_free(&keys);
	suite_keyset_free(&ids);
	memset(&keys, 0, sizeof(keys));
	CHECK_EQ_INT(bs->list(bs, collect_key, &keys), 0);
	CHECK_EQ_INT(keys.count, 0);
	suite_keyset_free(&keys);
	memset(&ids, 0, sizeof(ids));
	CHECK_EQ_INT(bs->upload_list(bs, collect_upload, &ids), 0);
	CHECK_EQ_INT(ids.count, 0);
	suite_keyset_free(&ids);
}

int main(void)
{
	brt_blobstore *bs = NULL;
	suite_ctx ctx;
	double t0, t1;

	if (env_options(&base) < 0) {
		printf("test_blobstore_s3: S3_ENDPOINT, S3_REGION, S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY "
		       "not set: "
		       "skipped\n");
		return 77;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.label = "s3";
	printf("s3: prefix %s\n", base.prefix);
	check_urls();
	check_state_limits();
	if (brt_blobstore_s3_open(&bs, &base) < 0) {
		fprintf(stderr, "cannot open the S3 store: %s\n", brt_error_last());
		return 1;
	}
	/* Small pages: every listing (objects, multipart uploads, parts)
	 * runs over several. */
	((s3_store *)bs)->list_page = 7;
	t0 = now_s();
	CHECK_EQ_INT(blobstore_suite_run(bs, "s3"), 0);
	t1 = now_s();
	printf("s3: suite took %.1f s\n", t1 - t0);
	CHECK_EQ_INT(blobstore_suite_run_faults(bs, "s3"), 0);
	printf("s3: faults took %.1f s\n", now_s() - t1);
	/* One entry a page: the race's two multipart uploads and their
	 * parts are listed a page each. */
	((s3_store *)bs)->list_page = 1;
	check_part_race(&ctx, bs);
	((s3_store *)bs)->list_page = 1000;
	check_own_key(&ctx, bs, &base);
	check_core_upload(&ctx, bs);
	check_presign(&ctx, bs);
	check_buffer_memory(&ctx);
	check_env_credentials();
	check_unreachable();
	check_fake_server();
	check_retries();
	cleanup(bs);
	brt_blobstore_free(bs);
	suite_keyset_free(&ctx.expected);
	printf("s3: all took %.1f s\n", now_s() - t0);
	return check_exit("test_blobstore_s3");
}
