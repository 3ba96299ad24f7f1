/* An HTTP/1.1 server library: libmicrohttpd daemons (epoll; one per
 * thread, each on its own socket of one SO_REUSEPORT group so that the
 * kernel spreads connections evenly, or one daemon with a pool of threads
 * where that cannot be had; a per-connection memory limit), behind a guard
 * against hostile clients (connection limits, deadlines, minimum rates,
 * framing checks, a budget for bodies held in memory).  It knows nothing
 * of what it serves: the embedding program registers a handler, in the
 * manner of h2o's handlers, and keeps its own per-request state in
 * req->state.
 *
 * Per request the handler sees on_headers once, on_body for each chunk of
 * body (unless it answered or asked to discard the body), on_complete once
 * the body is in (unless it answered already), and on_cleanup once the
 * request is over, answered or aborted. */
#ifndef BRT_HTTP_SERVER_H
#define BRT_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "http/request.h"

/* Why the server refused a request before the handler saw it. */
typedef enum brt_http_refusal {
	BRT_HTTP_REFUSED_LENGTH = 1, /* an ambiguous or malformed Content-Length */
	BRT_HTTP_REFUSED_FRAMING,    /* another framing fault (transfer coding, header name) */
} brt_http_refusal;

typedef struct brt_http_handler {
	/* Headers are in: route, authorise, answer a bodyless request or get
	 * ready for the body.  Answering here with a body announced makes the
	 * connection close once the answer is sent. */
	void (*on_headers)(brt_http_request *req, void *payload);
	/* A chunk of body, borrowed for the call.  Not the place to answer:
	 * record an error, call brt_http_discard_body and answer from
	 * on_complete once the rest of the body is read and dropped. */
	void (*on_body)(brt_http_request *req, const char *data, size_t len, void *payload);
	/* The body (if any) is complete: answer.  A request left unanswered
	 * has its connection closed. */
	void (*on_complete)(brt_http_request *req, void *payload);
	/* The request is over (answered or aborted): release what it holds. */
	void (*on_cleanup)(brt_http_request *req, void *payload);
	/* Answer a request the server refuses with `status` (the connection
	 * then closes); `detail` says why.  NULL: a plain-text answer. */
	void (*on_refused)(brt_http_request *req, unsigned int status, brt_http_refusal why,
			   const char *detail, void *payload);
	/* Optional: the server is stopping and in-flight requests finished or
	 * the drain timeout passed; connections close next.  Resume every
	 * connection the handler suspended (see allow_suspend) here. */
	void (*on_drained)(void *payload);
	/* Bytes of per-connection memory (brt_http_conn_data). */
	size_t conn_data_size;
	/* Bytes the request pool may hand out (fixed chunks; a handler that
	 * keeps more per request must allocate elsewhere). */
	size_t pool_size;
	void *payload;
} brt_http_handler;

typedef struct brt_http_options {
	const char *listen; /* "HOST:PORT" or "[V6]:PORT" */
	unsigned int threads;
	size_t connection_memory;        /* libmicrohttpd's per-connection buffer */
	unsigned int connection_timeout; /* idle keep-alive connections (seconds) */
	unsigned int max_connections;    /* 0: as many as the fd limit allows, at most 4096 */
	unsigned int per_address;        /* connections per client address (IPv6: per /64); 0: no limit */
	unsigned int reserved;           /* BRT_HTTP_AUTO: 1/8 of max_connections */
	unsigned int header_timeout;     /* seconds to receive a request's headers */
	unsigned int request_timeout;    /* seconds for a whole request that is not a long transfer */
	uint64_t min_rate;               /* bytes/s of a long transfer; 0: off */
	unsigned int min_rate_window;    /* seconds over which min_rate is measured */
	unsigned int drain_timeout;      /* seconds in-flight requests get at stop */
	size_t body_memory;              /* the budget for bodies held in memory */
	int access_log;                  /* log one line per request */
	/* The handler may park a connection whose response has no bytes ready:
	 * its content reader calls MHD_suspend_connection and returns 0, and
	 * MHD_resume_connection (from any thread) wakes it when bytes come. */
	int allow_suspend;
	const char *tls_cert, *tls_key; /* PEM files; NULL or "" for plain HTTP */
	const char *client_ca;          /* PEM file of CAs for client certificates; NULL or "" for none */
} brt_http_options;

#define BRT_HTTP_AUTO 0xffffffffu

/* Bind and start serving with `handler` (copied; its payload must outlive
 * the server).  BRT_EINVALID for a bad listen address or TLS setting,
 * BRT_EIO if a file cannot be read or the address cannot be bound (the
 * detail says "in use" when something listens there already, another
 * server of ours included: SO_REUSEPORT never makes two share it).  The
 * connection limits hold for all threads together. */
int brt_http_server_start(brt_http_server **out, const brt_http_options *options,
			  const brt_http_handler *handler);

/* The TCP port the server listens on (useful when asked for port 0). */
unsigned int brt_http_server_port(const brt_http_server *server);

/* Stop accepting, let in-flight requests finish for up to the drain
 * timeout, then stop and free.  NULL is fine. */
void brt_http_server_stop(brt_http_server *server);

#endif
