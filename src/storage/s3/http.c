/* One S3 request over libcurl: the URL (path or virtual-host style), the
 * headers every request carries (curl signs them with SigV4; the payload
 * hash is ours to send), retries with backoff for what may succeed on a
 * second try, and answers read into a capped buffer.  Easy handles are
 * kept idle per store, so a thread's next request reuses a connection. */
#include "storage/s3/s3_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/random.h"

void s3_response_init(s3_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	brt_dynbuf_init(&resp->body, S3_RESPONSE_MAX);
}

void s3_response_free(s3_response *resp)
{
	brt_dynbuf_free(&resp->body);
}

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_' || c == '.' || c == '~';
}

int s3_encode(brt_dynbuf *out, const char *in, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	int error = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p && error == 0; p++) {
		if (is_unreserved(*p) || (keep_slash && *p == '/')) {
			error = brt_dynbuf_add(out, p, 1);
		} else {
			char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			error = brt_dynbuf_add(out, esc, 3);
		}
	}
	return error;
}

/* Split "http(s)://host[:port][/]" into scheme and host[:port]. */
static int split_endpoint(const char *endpoint, const char **scheme_end, const char **host, size_t *host_len)
{
	const char *p = strstr(endpoint, "://");
	size_t len;

	if (!p || !((p - endpoint == 4 && strncmp(endpoint, "http", 4) == 0) ||
		    (p - endpoint == 5 && strncmp(endpoint, "https", 5) == 0)))
		return brt_error_set(BRT_EINVALID, "S3 endpoint must start with http:// or https://");
	*scheme_end = p;
	*host = p + 3;
	len = strlen(*host);
	if (len > 0 && (*host)[len - 1] == '/')
		len--;
	if (len == 0 || memchr(*host, '/', len) || memchr(*host, '?', len) || memchr(*host, '@', len))
		return brt_error_set(BRT_EINVALID, "S3 endpoint must be scheme://host[:port] without a path");
	*host_len = len;
	return 0;
}

int s3_url(char *out, size_t cap, const brt_s3_options *o, const char *key, const char *query)
{
	char aws[128];
	const char *endpoint = o->endpoint, *scheme_end = NULL, *host = NULL;
	brt_dynbuf url;
	size_t host_len = 0;
	int error;

	if (cap > 0)
		out[0] = '\0';
	if (endpoint[0] == '\0') {
		snprintf(aws, sizeof(aws), "https://s3.%s.amazonaws.com", o->region);
		endpoint = aws;
	}
	if ((error = split_endpoint(endpoint, &scheme_end, &host, &host_len)) < 0)
		return error;
	brt_dynbuf_init(&url, cap > 0 ? cap - 1 : 0);
	error = brt_dynbuf_add(&url, endpoint, (size_t)(scheme_end - endpoint) + 3);
	if (error == 0 && o->path_style)
		error = brt_dynbuf_addf(&url, "%.*s/%s", (int)host_len, host, o->bucket);
	else if (error == 0)
		error = brt_dynbuf_addf(&url, "%s.%.*s", o->bucket, (int)host_len, host);
	if (error == 0)
		error = brt_dynbuf_add(&url, "/", 1);
	if (error == 0 && key)
		error = s3_encode(&url, key, 1);
	if (error == 0 && query && query[0])
		error = brt_dynbuf_addf(&url, "?%s", query);
	if (error == 0)
		memcpy(out, brt_dynbuf_ptr(&url), brt_dynbuf_len(&url) + 1);
	else if (error == BRT_ETOOBIG)
		error = brt_error_set(BRT_ETOOBIG, "S3 URL longer than %zu bytes", cap);
	brt_dynbuf_free(&url);
	return error;
}

int brt_s3_object_url(char *out, size_t cap, const brt_s3_options *o, const char *key)
{
	return s3_url(out, cap, o, key, NULL);
}

CURL *s3_handle_get(s3_store *s3)
{
	CURL *curl = NULL;

	pthread_mutex_lock(&s3->lock);
	/* A forked child must not talk over its parent's connections: it
	 * leaves the parent's handles alone (never cleaned up here, which
	 * would close or, with TLS, end the parent's sessions). */
	if (s3->pid != getpid()) {
		s3->idle_count = 0;
		s3->pid = getpid();
	}
	if (s3->idle_count > 0)
		curl = s3->idle[--s3->idle_count];
	pthread_mutex_unlock(&s3->lock);
	if (!curl)
		curl = curl_easy_init();
	return curl;
}

void s3_handle_put(s3_store *s3, CURL *curl)
{
	if (!curl)
		return;
	pthread_mutex_lock(&s3->lock);
	if (s3->pid == getpid() && s3->idle_count < S3_IDLE_HANDLES) {
		s3->idle[s3->idle_count++] = curl;
		curl = NULL;
	}
	pthread_mutex_unlock(&s3->lock);
	if (curl)
		curl_easy_cleanup(curl);
}

void s3_handle_setup(s3_store *s3, CURL *curl)
{
	long stall = s3->o.timeout_ms >= 1000 ? (long)(s3->o.timeout_ms / 1000) : 1;

	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)s3->o.timeout_ms);
	/* A stall (no byte either way for the timeout) fails the request;
	 * a slow but moving transfer of a large part does not. */
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, stall);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, s3->o.verify_tls ? 1L : 0L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, s3->o.verify_tls ? 2L : 0L);
	if (s3->o.ca_file[0])
		curl_easy_setopt(curl, CURLOPT_CAINFO, s3->o.ca_file);
	curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, s3->sigv4);
	curl_easy_setopt(curl, CURLOPT_USERNAME, s3->o.access_key);
	curl_easy_setopt(curl, CURLOPT_PASSWORD, s3->o.secret_key);
}

struct curl_slist *s3_base_headers(s3_store *s3)
{
	struct curl_slist *list = NULL, *next;

	/* curl's SigV4 signs the payload hash it finds here but does not
	 * add one of its own; the body is protected by TLS (and the ETag
	 * checks of multipart uploads), not by a hash computed up front. */
	if (!(next = curl_slist_append(list, "x-amz-content-sha256: UNSIGNED-PAYLOAD")))
		return NULL;
	list = next;
	if (s3->token_header[0]) {
		if (!(next = curl_slist_append(list, s3->token_header))) {
			curl_slist_free_all(list);
			return NULL;
		}
		list = next;
	}
	return list;
}

typedef struct transfer {
	CURL *curl;
	const s3_request *req;
	s3_response *resp;
	size_t sent;
	int overflow;
} transfer;

static size_t on_read(char *buf, size_t size, size_t nmemb, void *payload)
{
	transfer *t = payload;
	size_t want = size * nmemb, left = t->req->body_len - t->sent;

	if (want > left)
		want = left;
	memcpy(buf, (const char *)t->req->body + t->sent, want);
	t->sent += want;
	return want;
}

static int on_seek(void *payload, curl_off_t offset, int origin)
{
	transfer *t = payload;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > t->req->body_len)
		return CURL_SEEKFUNC_FAIL;
	t->sent = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *payload)
{
	transfer *t = payload;
	size_t len = size * nmemb;
	long status = 0;

	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
	if (t->req->sink) {
		/* Error bodies of a sink request go to memory, for their code. */
		if (status >= 200 && status < 300) {
			if (len > t->req->sink_cap - t->resp->sink_len) {
				t->overflow = 1;
				return 0;
			}
			memcpy(t->req->sink + t->resp->sink_len, data, len);
			t->resp->sink_len += len;
			return len;
		}
	}
	if (brt_dynbuf_add(&t->resp->body, data, len) < 0) {
		t->overflow = 1;
		return 0;
	}
	return len;
}

/* Copy a header's value (trimmed) into `out`; 0 if `line` is not it. */
static int header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
	size_t name_len = strlen(name), start, end;

	if (len <= name_len || strncasecmp(line, name, name_len) != 0 || line[name_len] != ':')
		return 0;
	start = name_len + 1;
	end = len;
	while (start < end && (line[start] == ' ' || line[start] == '\t'))
		start++;
	while (end > start && (line[end - 1] == '\r' || line[end - 1] == '\n' || line[end - 1] == ' '))
		end--;
	if (end - start >= cap)
		return -1;
	memcpy(out, line + start, end - start);
	out[end - start] = '\0';
	return 1;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *payload)
{
	transfer *t = payload;
	size_t len = size * nmemb;
	char value[128];

	/* A new status line (after "100 Continue") starts the headers anew. */
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		t->resp->etag[0] = '\0';
		t->resp->mtime_ms = 0;
		t->resp->length = 0;
		return len;
	}
	if (header_value(data, len, "ETag", t->resp->etag, sizeof(t->resp->etag)) < 0)
		t->resp->etag[0] = '\0';
	if (header_value(data, len, "Last-Modified", value, sizeof(value)) > 0)
		t->resp->mtime_ms = s3_time_ms(value);
	if (header_value(data, len, "Content-Length", value, sizeof(value)) > 0) {
		char *end = NULL;
		unsigned long long n = strtoull(value, &end, 10);
		if (end && *end == '\0' && value[0] >= '0' && value[0] <= '9')
			t->resp->length = n;
	}
	return len;
}

void s3_backoff(unsigned int attempt)
{
	unsigned int ms = 100u << (attempt > 5 ? 5 : attempt - 1), jitter = 0;
	struct timespec ts;

	if (ms > 2000)
		ms = 2000;
	/* Jitter spreads the retries of many clients hit by one outage. */
	if (brt_random_bytes(&jitter, sizeof(jitter)) == 0)
		ms += jitter % (ms / 2 + 1);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Failures after which the server cannot have acted on the request. */
static int never_reached(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
	       rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_SSL_CONNECT_ERROR;
}

static int transient(CURLcode rc)
{
	return never_reached(rc) || rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SEND_ERROR ||
	       rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE ||
	       rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
}

static CURLcode perform_once(s3_store *s3, CURL *curl, const s3_request *req, s3_response *resp,
			     const char *url, struct curl_slist *headers, transfer *t)
{
	CURLcode rc;

	s3_handle_setup(s3, curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, t);
	if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	} else if (strcmp(req->method, "PUT") == 0) {
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(curl, CURLOPT_READDATA, t);
		curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(curl, CURLOPT_SEEKDATA, t);
	} else if (strcmp(req->method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
	} else if (strcmp(req->method, "GET") != 0) {
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
	}
	brt_dynbuf_reset(&resp->body);
	resp->sink_len = 0;
	resp->status = 0;
	resp->etag[0] = '\0';
	resp->code[0] = '\0';
	resp->length = 0;
	resp->mtime_ms = 0;
	t->sent = 0;
	t->overflow = 0;
	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
	return rc;
}

int s3_perform(s3_store *s3, const s3_request *req, s3_response *resp)
{
	char *url = malloc(S3_URL_MAX);
	struct curl_slist *headers = NULL, *next;
	char line[S3_KEY_MAX * 3 + 300];
	CURL *curl = NULL;
	transfer t = {NULL, req, resp, 0, 0};
	CURLcode rc = CURLE_OK;
	int error = 0;

	resp->attempts = 0;
	if (!url || !(headers = s3_base_headers(s3)) || !(curl = s3_handle_get(s3))) {
		error = brt_error_set(BRT_ENOMEM, "S3: out of memory");
		goto done;
	}
	t.curl = curl;
	if ((error = s3_url(url, S3_URL_MAX, &s3->o, req->key, req->query)) < 0)
		goto done;
	if (req->copy_source) {
		brt_dynbuf src;
		brt_dynbuf_init(&src, sizeof(line) - 1);
		error = brt_dynbuf_addf(&src, "x-amz-copy-source: /%s/", s3->o.bucket);
		if (error == 0)
			error = s3_encode(&src, req->copy_source, 1);
		if (error == 0)
			memcpy(line, brt_dynbuf_ptr(&src), brt_dynbuf_len(&src) + 1);
		brt_dynbuf_free(&src);
		if (error < 0 || !(next = curl_slist_append(headers, line))) {
			error = brt_error_set(BRT_ENOMEM, "S3: copy source header");
			goto done;
		}
		headers = next;
	}
	if (req->copy_range) {
		snprintf(line, sizeof(line), "x-amz-copy-source-range: %s", req->copy_range);
		if (!(next = curl_slist_append(headers, line))) {
			error = brt_error_set(BRT_ENOMEM, "S3: out of memory");
			goto done;
		}
		headers = next;
	}
	if (strcmp(req->method, "POST") == 0) {
		if (!(next = curl_slist_append(headers, "Content-Type: application/xml"))) {
			error = brt_error_set(BRT_ENOMEM, "S3: out of memory");
			goto done;
		}
		headers = next;
	}
	for (unsigned int attempt = 0;; attempt++) {
		int retry;

		if (attempt > 0)
			s3_backoff(attempt);
		resp->attempts++;
		rc = perform_once(s3, curl, req, resp, url, headers, &t);
		if (rc == CURLE_WRITE_ERROR && t.overflow) {
			error = brt_error_set(BRT_EIO, "S3 %s: the answer is larger than expected",
					      req->what);
			goto done;
		}
		if (rc == CURLE_OK && resp->status >= 300 && brt_dynbuf_len(&resp->body) > 0)
			s3_xml_error_code(brt_dynbuf_ptr(&resp->body), brt_dynbuf_len(&resp->body),
					  resp->code, sizeof(resp->code));
		if (rc == CURLE_OK)
			retry = req->retry == S3_RETRY_ALL && (resp->status >= 500 || resp->status == 429);
		else
			retry = never_reached(rc) || (req->retry == S3_RETRY_ALL && transient(rc));
		if (!retry || attempt >= s3->o.retries)
			break;
	}
	/* A store that cannot be reached or does not answer is out of service
	 * (503 to clients, who retry); anything else is an I/O error. */
	if (rc != CURLE_OK)
		error = brt_error_set(transient(rc) ? BRT_EUNAVAILABLE : BRT_EIO,
				      "S3 %s: %s (after %d attempts)", req->what, curl_easy_strerror(rc),
				      resp->attempts);
	else if (resp->status >= 500)
		error = s3_fail(req, resp);
done:
	/* A handle whose transfer failed may hold a broken connection;
	 * curl drops that one by itself and keeps the others. */
	s3_handle_put(s3, curl);
	curl_slist_free_all(headers);
	free(url);
	return error;
}

int s3_fail(const s3_request *req, const s3_response *resp)
{
	if (resp->status == 403 || resp->status == 401)
		return brt_error_set(BRT_EIO,
				     "S3 %s: access denied (HTTP %ld%s%s): check the access key, secret key, "
				     "session token and the bucket's permissions",
				     req->what, resp->status, resp->code[0] ? " " : "", resp->code);
	return brt_error_set(resp->status >= 500 || resp->status == 429 ? BRT_EUNAVAILABLE : BRT_EIO,
			     "S3 %s: HTTP %ld%s%s (after %d attempts)", req->what, resp->status,
			     resp->code[0] ? " " : "", resp->code, resp->attempts);
}

static int parse_digits(const char *p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

int64_t s3_time_ms(const char *text)
{
	struct tm tm;
	int year, mon, day, hour, min, sec, ms = 0;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	/* ISO 8601 as listings send it: 2026-12-01T06:13:08.928Z */
	if (strlen(text) >= 20 && text[4] == '-' && text[10] == 'T') {
		if (parse_digits(text, 4, &year) || parse_digits(text + 5, 2, &mon) ||
		    parse_digits(text + 8, 2, &day) || parse_digits(text + 11, 2, &hour) ||
		    parse_digits(text + 14, 2, &min) || parse_digits(text + 17, 2, &sec))
			return -1;
		if (text[19] == '.' && strlen(text) >= 23 && parse_digits(text + 20, 3, &ms))
			return -1;
		tm.tm_year = year - 1900;
		tm.tm_mon = mon - 1;
		tm.tm_mday = day;
		tm.tm_hour = hour;
		tm.tm_min = min;
		tm.tm_sec = sec;
		if ((t = timegm(&tm)) == (time_t)-1)
			return -1;
		return (int64_t)t * 1000 + ms;
	}
	/* RFC 1123 as headers send it. */
	if ((t = curl_getdate(text, NULL)) == (time_t)-1)
		return -1;
	return (int64_t)t * 1000;
}
