/* The upstream client of berth-edge.  Each forwarded request is one
 * libcurl easy handle in a multi handle of its own, so that the caller
 * can drive it one step at a time from the thread that serves the
 * client: first until the response headers are in, then, from the
 * response's reader, until the body buffer has bytes.  When the buffer
 * is full the write callback pauses the transfer and the reader resumes
 * it once the client took the bytes, so memory per request stays at one
 * buffer whatever the body's size.  Connections, TLS sessions and DNS
 * answers are kept in one share object for the whole process, locked per
 * kind of data, so that any thread (a server thread, a download's own
 * thread) reuses what another opened. */
#include "edge/upstream.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/error.h"
#include "common/log.h"
#include "edge/token.h"

#define BODY_BUFFER (256 * 1024)
#define HEADER_SPACE 16384
#define MAX_HEADERS 48
#define ACCESS_KEY_MAX 4096
/* Seconds without a byte from the upstream before a transfer is given up. */
#define IDLE_TIMEOUT 60
#define CONNECT_TIMEOUT 10
#define BEARER "Authorization: Bearer "
/* Tokens kept at once: one per repository pulled recently is plenty. */
#define TOKEN_CACHE_SLOTS 32
/* A token service's answer is small; anything longer is not one. */
#define TOKEN_ANSWER_MAX (64 * 1024)
/* Seconds for a whole token request. */
#define TOKEN_TIMEOUT 30
/* A refused request's body kept while a token is fetched: a 401's body
 * is one short error. */
#define SETTLE_MAX (64 * 1024)

struct brt_upstream {
	char *url;
	char *origin;
	char *authorization; /* BEARER "<access key>" or NULL */
	char *cert, *key, *ca;
	brt_edge_token_cache *tokens;
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	int share_locks_ready; /* how many of share_locks are initialised */
};

struct brt_upstream_transfer {
	CURLM *multi;
	CURL *easy;
	struct curl_slist *request_headers;
	unsigned int status;
	int64_t content_length;
	int headers_done, finished, paused;
	CURLcode result;
	char error[CURL_ERROR_SIZE];
	size_t header_count, header_used;
	const char *names[MAX_HEADERS], *values[MAX_HEADERS];
	char header_space[HEADER_SPACE];
	char *buffer;
	size_t start, end; /* unread bytes are buffer[start, end) */
	/* A request body (brt_upstream_send_start): bytes not yet taken by
	 * libcurl are send_buffer[send_start, send_end). */
	char *send_buffer;
	size_t send_start, send_end;
	int send_eof, send_paused;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result;

static void global_init(void)
{
	global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s)
{
	return s && s[0] ? strdup(s) : NULL;
}

static void share_lock(CURL *easy, curl_lock_data data, curl_lock_access access, void *payload)
{
	brt_upstream *up = payload;

	(void)easy;
	(void)access; /* one mutex per kind: shared access is not worth a rwlock here */
	pthread_mutex_lock(&up->share_locks[data]);
}

static void share_unlock(CURL *easy, curl_lock_data data, void *payload)
{
	brt_upstream *up = payload;

	(void)easy;
	pthread_mutex_unlock(&up->share_locks[data]);
}

/* The process's connection cache, with a mutex per kind of shared data. */
static int share_init(brt_upstream *up)
{
	for (; up->share_locks_ready < CURL_LOCK_DATA_LAST; up->share_locks_ready++)
		if (pthread_mutex_init(&up->share_locks[up->share_locks_ready], NULL) != 0)
			return brt_error_set(BRT_ENOMEM, "no mutex for the connection cache");
	if (!(up->share = curl_share_init()) ||
	    curl_share_setopt(up->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(up->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(up->share, CURLSHOPT_USERDATA, up) != CURLSHE_OK ||
	    curl_share_setopt(up->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
	    curl_share_setopt(up->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(up->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
		return brt_error_set(BRT_ENOMEM, "cannot make the connection cache");
	return 0;
}

static void upstream_release(brt_upstream *up)
{
	/* Every transfer is gone: no lock is held while the share goes. */
	if (up->share)
		curl_share_cleanup(up->share);
	while (up->share_locks_ready > 0)
		pthread_mutex_destroy(&up->share_locks[--up->share_locks_ready]);
	brt_edge_token_cache_free(up->tokens);
	if (up->authorization) {
		memset(up->authorization, 0, strlen(up->authorization));
		free(up->authorization);
	}
	free(up->url);
	free(up->origin);
	free(up->cert);
	free(up->key);
	free(up->ca);
	free(up);
}

static int read_access_key(char **out, const char *path)
{
	char buf[ACCESS_KEY_MAX + 2];
	FILE *f = fopen(path, "r");
	size_t len, start = 0;
	int error = 0;

	if (!f)
		return brt_error_set(BRT_EIO, "cannot read access key file %s: %s", path, strerror(errno));
	len = fread(buf, 1, sizeof(buf) - 1, f);
	if (ferror(f)) {
		error = brt_error_set(BRT_EIO, "cannot read access key file %s", path);
		goto done;
	}
	buf[len] = '\0';
	while (start < len && isspace((unsigned char)buf[start]))
		start++;
	while (len > start && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	if (len == start || len - start > ACCESS_KEY_MAX) {
		error = brt_error_set(BRT_EINVALID, "access key file %s: empty or too long", path);
		goto done;
	}
	for (size_t i = start; i < len; i++)
		if (!isgraph((unsigned char)buf[i])) {
			error = brt_error_set(BRT_EINVALID, "access key file %s: not a single token", path);
			goto done;
		}
	if (!(*out = malloc(len - start + 32))) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	snprintf(*out, len - start + 32, BEARER "%s", buf + start);
done:
	fclose(f);
	return error;
}

int brt_upstream_new(brt_upstream **out, const brt_upstream_options *options)
{
	brt_upstream *up = NULL;
	const char *authority;
	size_t len;
	int error = 0;

	*out = NULL;
	pthread_once(&global_once, global_init);
	if (global_result != CURLE_OK)
		return brt_error_set(BRT_EIO, "libcurl: %s", curl_easy_strerror(global_result));
	if (!options->url ||
	    (strncmp(options->url, "http://", 7) != 0 && strncmp(options->url, "https://", 8) != 0))
		return brt_error_set(BRT_EINVALID, "the upstream URL must start with http:// or https://");
	authority = strstr(options->url, "://") + 3;
	if (!*authority || *authority == '/' || strchr(authority, '?') || strchr(authority, '#'))
		return brt_error_set(BRT_EINVALID, "upstream URL %s: no host, or a query", options->url);
	if (!options->access_key_file && !(options->cert && options->key))
		return brt_error_set(BRT_EINVALID,
				     "no upstream credentials: an access key file, or a certificate and key");
	if (!(up = calloc(1, sizeof(*up))))
		return brt_error_set(BRT_ENOMEM, "out of memory");
	if (!(up->url = strdup(options->url)))
		goto nomem;
	len = strlen(up->url);
	while (len > 0 && up->url[len - 1] == '/')
		up->url[--len] = '\0';
	len = strcspn(authority, "/");
	if (!(up->origin = strndup(options->url, (size_t)(authority - options->url) + len)))
		goto nomem;
	if (options->access_key_file &&
	    (error = read_access_key(&up->authorization, options->access_key_file)) < 0)
		goto done;
	if ((options->cert && !(up->cert = dup_or_null(options->cert))) ||
	    (options->key && !(up->key = dup_or_null(options->key))) ||
	    (options->ca && !(up->ca = dup_or_null(options->ca))))
		goto nomem;
	if ((error = share_init(up)) < 0 ||
	    (error = brt_edge_token_cache_new(&up->tokens, TOKEN_CACHE_SLOTS)) < 0)
		goto done;
	*out = up;
	up = NULL;
	goto done;
nomem:
	error = brt_error_set(BRT_ENOMEM, "out of memory");
done:
	if (up)
		upstream_release(up);
	return error;
}

void brt_upstream_free(brt_upstream *upstream)
{
	if (upstream)
		upstream_release(upstream);
}

const char *brt_upstream_origin(const brt_upstream *upstream)
{
	return upstream->origin;
}

static size_t on_header(char *data, size_t size, size_t count, void *payload)
{
	brt_upstream_transfer *t = payload;
	size_t len = size * count, name_len, value_start, value_end;

	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* A new response (after a 1xx): forget the previous one's headers. */
		size_t i = strcspn(data, " ");
		t->status = 0;
		if (i + 4 <= len && isdigit((unsigned char)data[i + 1]) &&
		    isdigit((unsigned char)data[i + 2]) && isdigit((unsigned char)data[i + 3]))
			t->status = (unsigned int)((data[i + 1] - '0') * 100 + (data[i + 2] - '0') * 10 +
						   (data[i + 3] - '0'));
		t->header_count = 0;
		t->header_used = 0;
		t->content_length = -1;
		return len;
	}
	if (len <= 2 && (len == 0 || data[0] == '\r' || data[0] == '\n')) {
		if (t->status >= 200)
			t->headers_done = 1;
		return len;
	}
	name_len = 0;
	while (name_len < len && data[name_len] != ':')
		name_len++;
	if (name_len == 0 || name_len == len)
		return len;
	value_start = name_len + 1;
	while (value_start < len && (data[value_start] == ' ' || data[value_start] == '\t'))
		value_start++;
	value_end = len;
	while (value_end > value_start && isspace((unsigned char)data[value_end - 1]))
		value_end--;
	if (name_len == 14 && strncasecmp(data, "Content-Length", 14) == 0) {
		char digits[24];
		size_t n = value_end - value_start;
		char *end;
		if (n > 0 && n < sizeof(digits)) {
			memcpy(digits, data + value_start, n);
			digits[n] = '\0';
			errno = 0;
			long long v = strtoll(digits, &end, 10);
			if (!errno && *end == '\0' && v >= 0)
				t->content_length = v;
		}
		return len;
	}
	/* Headers that do not fit are dropped: the ones a client needs are few
	 * and short. */
	if (t->header_count < MAX_HEADERS &&
	    t->header_used + name_len + (value_end - value_start) + 2 <= HEADER_SPACE) {
		char *name = t->header_space + t->header_used;
		char *value = name + name_len + 1;
		memcpy(name, data, name_len);
		name[name_len] = '\0';
		memcpy(value, data + value_start, value_end - value_start);
		value[value_end - value_start] = '\0';
		t->names[t->header_count] = name;
		t->values[t->header_count] = value;
		t->header_count++;
		t->header_used += name_len + (value_end - value_start) + 2;
	}
	return len;
}

static size_t on_data(char *data, size_t size, size_t count, void *payload)
{
	brt_upstream_transfer *t = payload;
	size_t len = size * count;

	/* Only a transfer with a body needs the buffer (a HEAD, a 304 never
	 * do); 0 makes libcurl fail the transfer. */
	if (!t->buffer && !(t->buffer = malloc(BODY_BUFFER)))
		return 0;
	if (t->start == t->end)
		t->start = t->end = 0;
	if (BODY_BUFFER - t->end < len && t->start > 0) {
		memmove(t->buffer, t->buffer + t->start, t->end - t->start);
		t->end -= t->start;
		t->start = 0;
	}
	if (BODY_BUFFER - t->end < len) {
		/* libcurl keeps this chunk and hands it over again on resume. */
		t->paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	memcpy(t->buffer + t->end, data, len);
	t->end += len;
	return len;
}

/* One round of the transfer: let libcurl work, note the end, and wait
 * up to `wait_ms` for the socket when nothing is ready for the caller. */
static void step(brt_upstream_transfer *t, int wait_ms)
{
	int running = 0, queued;
	CURLMsg *msg;

	if (curl_multi_perform(t->multi, &running) != CURLM_OK) {
		t->finished = 1;
		t->result = CURLE_FAILED_INIT;
		return;
	}
	while ((msg = curl_multi_info_read(t->multi, &queued)))
		if (msg->msg == CURLMSG_DONE) {
			t->finished = 1;
			t->result = msg->data.result;
		}
	if (t->finished || t->start < t->end || t->paused)
		return;
	if (!t->headers_done || t->start == t->end)
		curl_multi_poll(t->multi, NULL, 0, wait_ms, NULL);
}

static time_t now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* What every request to the upstream has: the connection cache, the
 * protocols, the timeouts, the TLS checks and the device certificate. */
static void easy_setup(brt_upstream *up, CURL *easy, const char *url, char *error_buffer)
{
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_SHARE, up->share);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error_buffer);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (up->ca)
		curl_easy_setopt(easy, CURLOPT_CAINFO, up->ca);
	if (up->cert) {
		curl_easy_setopt(easy, CURLOPT_SSLCERT, up->cert);
		curl_easy_setopt(easy, CURLOPT_SSLKEY, up->key);
	}
}

/* "<upstream URL><path_and_query>", malloc'd. */
static char *upstream_url(const brt_upstream *up, const char *path_and_query)
{
	size_t len = strlen(up->url) + strlen(path_and_query) + 1;
	char *url = malloc(len);

	if (url)
		snprintf(url, len, "%s%s", up->url, path_and_query);
	return url;
}

static size_t on_read(char *data, size_t size, size_t count, void *payload)
{
	brt_upstream_transfer *t = payload;
	size_t len = size * count, n = t->send_end - t->send_start;

	if (n == 0) {
		if (t->send_eof)
			return 0;
		t->send_paused = 1;
		return CURL_READFUNC_PAUSE;
	}
	if (n > len)
		n = len;
	memcpy(data, t->send_buffer + t->send_start, n);
	t->send_start += n;
	return n;
}

/* Run the transfer until its response headers are in. */
static int wait_headers(brt_upstream_transfer *t, const brt_upstream *upstream)
{
	time_t last = now_seconds();

	while (!t->headers_done && !t->finished) {
		step(t, 1000);
		if (now_seconds() - last > IDLE_TIMEOUT + CONNECT_TIMEOUT)
			return brt_error_set(BRT_EIO, "upstream %s: no response headers in time",
					     upstream->origin);
	}
	if (!t->headers_done || t->status == 0)
		return brt_error_set(BRT_EIO, "upstream %s: %s", upstream->origin,
				     t->error[0] ? t->error : curl_easy_strerror(t->result));
	return 0;
}

/* One attempt: the client's headers and `authorization` (a whole header
 * line, or NULL).  `body_length` < -1: no request body, and wait for the
 * response headers; otherwise a body of that length (-1: unknown) is to
 * follow through brt_upstream_send. */
static int transfer_start(brt_upstream_transfer **out, brt_upstream *upstream, const char *method,
			  const char *path_and_query, const char *const *headers, const char *authorization,
			  int64_t body_length)
{
	brt_upstream_transfer *t = NULL;
	struct curl_slist *list;
	char *url = NULL;
	int error = 0;

	*out = NULL;
	if (!(t = calloc(1, sizeof(*t)))) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	t->content_length = -1;
	if (!(url = upstream_url(upstream, path_and_query)) || !(t->multi = curl_multi_init()) ||
	    !(t->easy = curl_easy_init())) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; headers && headers[i]; i++) {
		if (!(list = curl_slist_append(t->request_headers, headers[i]))) {
			error = brt_error_set(BRT_ENOMEM, "out of memory");
			goto done;
		}
		t->request_headers = list;
	}
	if (authorization) {
		if (!(list = curl_slist_append(t->request_headers, authorization))) {
			error = brt_error_set(BRT_ENOMEM, "out of memory");
			goto done;
		}
		t->request_headers = list;
	}
	easy_setup(upstream, t->easy, url, t->error);
	curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->request_headers);
	curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(t->easy, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "GET") != 0)
		curl_easy_setopt(t->easy, CURLOPT_CUSTOMREQUEST, method);
	if (body_length >= -1) {
		/* No "Expect: 100-continue" round trip: the body follows at once. */
		if (!(t->send_buffer = malloc(BODY_BUFFER)) ||
		    !(list = curl_slist_append(t->request_headers, "Expect:"))) {
			error = brt_error_set(BRT_ENOMEM, "out of memory");
			goto done;
		}
		t->request_headers = list;
		curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->request_headers);
		curl_easy_setopt(t->easy, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(t->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_length);
		curl_easy_setopt(t->easy, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(t->easy, CURLOPT_READDATA, t);
	}
	if (curl_multi_add_handle(t->multi, t->easy) != CURLM_OK) {
		error = brt_error_set(BRT_ENOMEM, "cannot start the upstream transfer");
		goto done;
	}
	if (body_length < -1 && (error = wait_headers(t, upstream)) < 0)
		goto done;
	*out = t;
	t = NULL;
done:
	free(url);
	brt_upstream_transfer_free(t);
	return error;
}

/* Let a started transfer run on until its (short) body is in, so that
 * its connection goes back to the cache before the token request and the
 * body is still there to pass on if no token comes. */
static void settle(brt_upstream_transfer *t)
{
	time_t last = now_seconds();

	while (!t->finished && !t->paused && t->end - t->start < SETTLE_MAX &&
	       now_seconds() - last <= CONNECT_TIMEOUT) {
		step(t, 1000);
		/* step returns at once while bytes wait in the buffer: wait here
		 * for the rest instead of spinning. */
		if (!t->finished && !t->paused)
			curl_multi_poll(t->multi, NULL, 0, 100, NULL);
	}
}

/* The first Bearer challenge of a 401 whose realm is on the upstream's own
 * origin; 0 if there is none (the 401 then passes through as it is). */
static int followable_challenge(brt_edge_challenge *out, const brt_upstream *up,
				const brt_upstream_transfer *t)
{
	for (size_t i = 0; i < t->header_count; i++) {
		if (strcasecmp(t->names[i], "WWW-Authenticate") != 0 ||
		    brt_edge_challenge_parse(out, t->values[i]) < 0)
			continue;
		if (brt_edge_realm_allowed(out->realm, up->origin))
			return 1;
		brt_log_warn("upstream challenge names the realm %s, not on %s: not following it", out->realm,
			     up->origin);
		return 0;
	}
	return 0;
}

struct answer {
	char *data;
	size_t len;
};

static size_t on_token_data(char *data, size_t size, size_t count, void *payload)
{
	struct answer *a = payload;
	size_t len = size * count;

	if (len > TOKEN_ANSWER_MAX - a->len)
		return 0; /* fails the transfer */
	memcpy(a->data + a->len, data, len);
	a->len += len;
	return len;
}

/* GET the challenge's realm with the gateway's credentials (the access
 * key as Basic KEY:<key>, or the device certificate alone) and read the
 * token.  Never follows a redirect: the credentials stay on the realm. */
static int fetch_token(char *out, size_t cap, unsigned int *expires_in_out, brt_upstream *up,
		       const brt_edge_challenge *challenge)
{
	CURL *easy = NULL;
	struct answer answer = {NULL, 0};
	char url[BRT_EDGE_REALM_MAX + BRT_EDGE_SERVICE_MAX * 3 + BRT_EDGE_SCOPE_MAX * 3 + 64];
	char error_buffer[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode result;
	int error = 0;

	if ((error = brt_edge_token_url(url, sizeof(url), challenge)) < 0)
		goto done;
	if (!(answer.data = malloc(TOKEN_ANSWER_MAX)) || !(easy = curl_easy_init())) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	easy_setup(up, easy, url, error_buffer);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT, (long)TOKEN_TIMEOUT);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_token_data);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, &answer);
	if (up->authorization) {
		curl_easy_setopt(easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(easy, CURLOPT_USERNAME, "KEY");
		curl_easy_setopt(easy, CURLOPT_PASSWORD, up->authorization + strlen(BEARER));
	}
	result = curl_easy_perform(easy);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (result != CURLE_OK) {
		error = brt_error_set(BRT_EIO, "token request to %s: %s", challenge->realm,
				      error_buffer[0] ? error_buffer : curl_easy_strerror(result));
		goto done;
	}
	if (status != 200) {
		error = brt_error_set(BRT_EUNAUTHORIZED, "token request to %s: status %ld", challenge->realm,
				      status);
		goto done;
	}
	error = brt_edge_token_parse(out, cap, expires_in_out, answer.data, answer.len);
done:
	curl_easy_cleanup(easy);
	free(answer.data);
	return error;
}

/* The Authorization line a request of `method` on `path_and_query` goes
 * with first: a token fetched earlier for its scope, written into
 * `line` (AUTH_LINE_MAX bytes; wipe it after use), or else the gateway's
 * own credential (NULL for a device certificate). */
#define AUTH_LINE_MAX (sizeof(BEARER) + BRT_EDGE_TOKEN_MAX)
static const char *first_authorization(char *line, brt_upstream *upstream, const char *method,
				       const char *path_and_query)
{
	char scope[BRT_EDGE_SCOPE_MAX];

	memcpy(line, BEARER, strlen(BEARER));
	line[strlen(BEARER)] = '\0';
	if (brt_edge_token_scope(scope, sizeof(scope), method, path_and_query) == 0 &&
	    brt_edge_token_cache_get(line + strlen(BEARER), AUTH_LINE_MAX - strlen(BEARER), upstream->tokens,
				     NULL, NULL, scope, now_ms()))
		return line;
	return upstream->authorization;
}

int brt_upstream_start(brt_upstream_transfer **out, brt_upstream *upstream, const char *method,
		       const char *path_and_query, const char *const *headers)
{
	brt_upstream_transfer *first = NULL, *retry = NULL;
	brt_edge_challenge challenge;
	/* The header line, its token read in place after the prefix. */
	char authorization[AUTH_LINE_MAX];
	char *token = authorization + strlen(BEARER);
	size_t token_cap = sizeof(authorization) - strlen(BEARER);
	unsigned int expires_in;
	const char *first_line = first_authorization(authorization, upstream, method, path_and_query);
	int used_token = first_line == authorization, error = 0;

	*out = NULL;
	if ((error = transfer_start(&first, upstream, method, path_and_query, headers, first_line, -2)) < 0)
		goto done;
	if (first->status != 401 || !followable_challenge(&challenge, upstream, first))
		goto done;
	settle(first);
	if (used_token)
		brt_edge_token_cache_drop(upstream->tokens, token);
	if (!brt_edge_token_cache_get(token, token_cap, upstream->tokens, challenge.realm, challenge.service,
				      challenge.scope, now_ms())) {
		if (fetch_token(token, token_cap, &expires_in, upstream, &challenge) < 0) {
			/* The refusal stands: the client sees the upstream's 401. */
			brt_log_warn("upstream %s: %s", upstream->origin, brt_error_last());
			goto done;
		}
		brt_edge_token_cache_put(upstream->tokens, challenge.realm, challenge.service,
					 challenge.scope, token, expires_in, now_ms());
	}
	/* Once: a 401 to a fresh token is the upstream's answer. */
	if ((error = transfer_start(&retry, upstream, method, path_and_query, headers, authorization, -2)) <
	    0)
		goto done;
	brt_upstream_transfer_free(first);
	first = retry;
done:
	if (error == 0)
		*out = first;
	else
		brt_upstream_transfer_free(first);
	memset(token, 0, strlen(token));
	return error;
}

int brt_upstream_send_start(brt_upstream_transfer **out, brt_upstream *upstream, const char *method,
			    const char *path_and_query, const char *const *headers, int64_t body_length)
{
	char authorization[AUTH_LINE_MAX];
	int error;

	*out = NULL;
	/* A body cannot be sent twice, so no challenge is answered here; a
	 * token fetched earlier for the scope goes if there is one. */
	error = transfer_start(out, upstream, method, path_and_query, headers,
			       first_authorization(authorization, upstream, method, path_and_query),
			       body_length < 0 ? -1 : body_length);
	memset(authorization, 0, sizeof(authorization));
	return error;
}

/* Let libcurl take what waits in the send buffer (or see the end). */
static int drain_send(brt_upstream_transfer *t)
{
	time_t last = now_seconds();
	size_t left = t->send_end - t->send_start;

	while ((t->send_start < t->send_end || t->send_eof) && !t->finished && !t->headers_done) {
		if (t->send_paused) {
			t->send_paused = 0;
			curl_easy_pause(t->easy, CURLPAUSE_CONT);
		}
		if (t->send_eof && t->send_start == t->send_end)
			return 0; /* the rest is the response's */
		step(t, 1000);
		if (t->send_end - t->send_start < left) {
			left = t->send_end - t->send_start;
			last = now_seconds();
		} else if (now_seconds() - last > IDLE_TIMEOUT) {
			return brt_error_set(BRT_EIO, "upstream stopped taking the request body");
		}
	}
	if (t->finished && t->result != CURLE_OK && !t->headers_done)
		return brt_error_set(BRT_EIO, "upstream transfer failed: %s",
				     t->error[0] ? t->error : curl_easy_strerror(t->result));
	return 0;
}

int brt_upstream_send(brt_upstream_transfer *t, const char *data, size_t len)
{
	int error;

	while (len > 0 && !t->headers_done && !t->finished) {
		size_t room, n;
		if (t->send_start > 0) {
			memmove(t->send_buffer, t->send_buffer + t->send_start, t->send_end - t->send_start);
			t->send_end -= t->send_start;
			t->send_start = 0;
		}
		room = BODY_BUFFER - t->send_end;
		n = len < room ? len : room;
		memcpy(t->send_buffer + t->send_end, data, n);
		t->send_end += n;
		data += n;
		len -= n;
		if ((error = drain_send(t)) < 0)
			return error;
	}
	return 0;
}

int brt_upstream_send_end(brt_upstream_transfer *t, const brt_upstream *upstream)
{
	int error;

	t->send_eof = 1;
	if ((error = drain_send(t)) < 0)
		return error;
	if (t->send_paused) {
		t->send_paused = 0;
		curl_easy_pause(t->easy, CURLPAUSE_CONT);
	}
	return wait_headers(t, upstream);
}

static size_t discard(char *data, size_t size, size_t count, void *payload)
{
	(void)data;
	(void)payload;
	return size * count;
}

int brt_upstream_probe(brt_upstream *upstream, unsigned int timeout_ms)
{
	CURL *easy = NULL;
	struct curl_slist *headers = NULL;
	char *url = NULL, error_buffer[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode result;
	int error = 0;

	if (!(url = upstream_url(upstream, "/v2/")) || !(easy = curl_easy_init()) ||
	    (upstream->authorization && !(headers = curl_slist_append(NULL, upstream->authorization)))) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	easy_setup(upstream, easy, url, error_buffer);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)(timeout_ms ? timeout_ms : 1));
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms ? timeout_ms : 1));
	result = curl_easy_perform(easy);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (result != CURLE_OK || status <= 0 || status >= 500)
		error = brt_error_set(BRT_EIO, "upstream %s: %s", upstream->origin,
				      result != CURLE_OK
					      ? (error_buffer[0] ? error_buffer : curl_easy_strerror(result))
					      : "answered with a server error");
done:
	curl_easy_cleanup(easy);
	curl_slist_free_all(headers);
	free(url);
	return error;
}

unsigned int brt_upstream_status(const brt_upstream_transfer *transfer)
{
	return transfer->status;
}

int64_t brt_upstream_content_length(const brt_upstream_transfer *transfer)
{
	return transfer->content_length;
}

int brt_upstream_header(const brt_upstream_transfer *transfer, size_t index, const char **name_out,
			const char **value_out)
{
	if (index >= transfer->header_count)
		return 0;
	*name_out = transfer->names[index];
	*value_out = transfer->values[index];
	return 1;
}

ssize_t brt_upstream_read(brt_upstream_transfer *t, char *buf, size_t len)
{
	time_t last = now_seconds();
	size_t n;

	while (t->start == t->end) {
		if (t->finished) {
			if (t->result == CURLE_OK)
				return 0;
			return brt_error_set(BRT_EIO, "upstream transfer failed: %s",
					     t->error[0] ? t->error : curl_easy_strerror(t->result));
		}
		if (t->paused) {
			/* Resuming may deliver the held chunk right here. */
			t->paused = 0;
			curl_easy_pause(t->easy, CURLPAUSE_CONT);
			continue;
		}
		step(t, 1000);
		if (t->start == t->end && now_seconds() - last > IDLE_TIMEOUT)
			return brt_error_set(BRT_EIO, "upstream transfer stalled");
	}
	n = t->end - t->start;
	if (n > len)
		n = len;
	memcpy(buf, t->buffer + t->start, n);
	t->start += n;
	return (ssize_t)n;
}

void brt_upstream_transfer_free(brt_upstream_transfer *transfer)
{
	if (!transfer)
		return;
	if (transfer->multi && transfer->easy)
		curl_multi_remove_handle(transfer->multi, transfer->easy);
	if (transfer->easy)
		curl_easy_cleanup(transfer->easy);
	if (transfer->multi)
		curl_multi_cleanup(transfer->multi);
	curl_slist_free_all(transfer->request_headers);
	free(transfer->buffer);
	free(transfer->send_buffer);
	free(transfer);
}
