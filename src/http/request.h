/* One HTTP request as the HTTP layer sees it: the libmicrohttpd
 * connection, a memory pool that dies with the request, method and path,
 * what was answered, and a body held in memory on request.  The embedding
 * program keeps its own per-request state in `state` (allocated from the
 * pool by its on_headers handler); nothing here knows what a registry is. */
#ifndef BRT_HTTP_REQUEST_H
#define BRT_HTTP_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <microhttpd.h>

#include "common/pool.h"
#include "http/body.h"

typedef struct brt_http_server brt_http_server;

typedef enum brt_method {
	BRT_GET = 1,
	BRT_HEAD,
	BRT_PUT,
	BRT_POST,
	BRT_PATCH,
	BRT_DELETE,
	BRT_OTHER_METHOD,
} brt_method;

typedef struct brt_http_request {
	brt_pool pool;
	brt_method method;
	const char *method_name; /* as received */
	const char *url;         /* percent-decoded path, without the query */
	void *state;             /* the handler's, from the pool; NULL until it sets one */
	/* The handler's own "key=value" for the access line (static or from
	 * the pool, never client bytes); NULL for none. */
	const char *log_note;

	/* read-only for handlers */
	struct MHD_Connection *conn;
	brt_http_server *server;
	int responded;       /* a response was queued */
	unsigned int status; /* sent status, for the access log */
	uint64_t bytes_out;  /* response body size, for the access log */

	/* private to src/http */
	int discard;   /* the rest of the body is read and dropped */
	int streaming; /* a long transfer: held to the minimum rate, not the deadline */
	int has_body;  /* the headers announce a body (read with the framing checks) */
	uint64_t discarded;
	struct timespec started;
	struct brt_guard_conn *guard_conn;
	brt_http_body body; /* see brt_http_body_append */
} brt_http_request;

/* A request header or query argument, or NULL.  Borrowed from libmicrohttpd
 * for the life of the request. */
const char *brt_http_header(brt_http_request *req, const char *name);
const char *brt_http_query(brt_http_request *req, const char *name);

/* 1 if the request's headers announce a body (Transfer-Encoding other than
 * identity, or a Content-Length other than 0). */
int brt_http_has_body(brt_http_request *req);

/* Queue `resp` with `status` (at most one response per request; a later
 * call only destroys `resp`) and release our reference.  `body_len` is
 * for the access log.  A NULL `resp` (out of memory) drops the connection. */
void brt_http_respond(brt_http_request *req, unsigned int status, struct MHD_Response *resp,
		      uint64_t body_len);

/* Read and drop whatever body is still coming: on_body is not called any
 * more.  For a request answered with an error before its body is in. */
void brt_http_discard_body(brt_http_request *req);

/* Mark the request as a long transfer (a large upload or download), held
 * to the minimum transfer rate instead of the request deadline.  Only
 * effective from on_headers. */
void brt_http_stream(brt_http_request *req);

/* The connection's memory of brt_http_handler.conn_data_size bytes, zeroed
 * when the connection opened and shared by all its requests (e.g. what a
 * TLS client certificate proved); NULL if none was asked for. */
void *brt_http_conn_data(brt_http_request *req);

/* The GnuTLS session (gnutls_session_t) of a TLS connection, else NULL. */
void *brt_http_tls_session(brt_http_request *req);

/* 1 if the server speaks HTTPS. */
int brt_http_is_tls(const brt_http_request *req);

/* Append `len` bytes to the request's in-memory body (req->body), which
 * may grow to `max` bytes, charged to the server-wide body budget (see
 * body.h).  BRT_ETOOBIG, BRT_ELIMIT, BRT_ENOMEM; detail in brt_error_last. */
int brt_http_body_add(brt_http_request *req, const void *data, size_t len, size_t max);

#endif
