/* The edge proxy's client of the upstream registry, over libcurl: one
 * transfer per forwarded request, driven step by step by its reader so
 * that a body flows through a small fixed buffer (the transfer pauses
 * while the buffer is full), with the gateway's credentials added and
 * connections to the upstream kept across requests and threads. */
#ifndef BRT_EDGE_UPSTREAM_H
#define BRT_EDGE_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct brt_upstream_options {
	const char *url;             /* "https://host[:port]", no trailing path */
	const char *access_key_file; /* sent as "Authorization: Bearer <key>"; NULL for none */
	const char *cert, *key;      /* client certificate (mutual TLS); NULL for none */
	const char *ca;              /* CA bundle for the upstream; NULL: the system's */
} brt_upstream_options;

typedef struct brt_upstream brt_upstream;
typedef struct brt_upstream_transfer brt_upstream_transfer;

/* Check the options and read the access key.  BRT_EINVALID for a bad URL
 * or missing credentials, BRT_EIO for an unreadable file, BRT_ENOMEM. */
int brt_upstream_new(brt_upstream **out, const brt_upstream_options *options);
/* Once every transfer is freed.  NULL is fine. */
void brt_upstream_free(brt_upstream *upstream);

/* "scheme://host[:port]" of the upstream, borrowed: what a Link or
 * Location pointing at the upstream starts with. */
const char *brt_upstream_origin(const brt_upstream *upstream);

/* Start `method` ("GET" or "HEAD") of `path_and_query` (from "/v2/")
 * with the client's header lines `headers` (NULL-terminated "Name: value"
 * strings, copied), and wait until the upstream's response headers are
 * in.  BRT_EIO (detail says why) if the upstream cannot be reached or
 * answers no HTTP; BRT_ENOMEM.  The caller owns *out. */
int brt_upstream_start(brt_upstream_transfer **out, brt_upstream *upstream, const char *method,
		       const char *path_and_query, const char *const *headers);

/* A request with a body (a push): start `method` of `path_and_query`
 * with `headers`, announcing `body_length` bytes (-1: unknown, sent
 * chunked), without waiting.  The body follows through brt_upstream_send
 * (which returns once libcurl took the bytes, so memory stays at one
 * buffer) and brt_upstream_send_end, which waits for the response
 * headers.  No 401 challenge is answered (a body is not sent twice); a
 * token cached for the scope is used.  BRT_ENOMEM. */
int brt_upstream_send_start(brt_upstream_transfer **out, brt_upstream *upstream, const char *method,
			    const char *path_and_query, const char *const *headers, int64_t body_length);
/* Pass `len` bytes of the body on.  Returns early, dropping the rest,
 * once the upstream answered (it may refuse before the body is in).
 * BRT_EIO if the transfer failed or stalled. */
int brt_upstream_send(brt_upstream_transfer *transfer, const char *data, size_t len);
/* The body is complete: wait for the response headers.  BRT_EIO. */
int brt_upstream_send_end(brt_upstream_transfer *transfer, const brt_upstream *upstream);

/* The upstream's status, and its response headers one at a time: index
 * 0, 1, ... until it returns 0 (name and value borrowed until the
 * transfer is freed).  `content_length` is -1 when not announced. */
unsigned int brt_upstream_status(const brt_upstream_transfer *transfer);
int64_t brt_upstream_content_length(const brt_upstream_transfer *transfer);
int brt_upstream_header(const brt_upstream_transfer *transfer, size_t index, const char **name_out,
			const char **value_out);

/* Up to `len` bytes of body into `buf`, waiting for the upstream.
 * Returns the count, 0 at the end of the body, or BRT_EIO if the
 * transfer failed. */
ssize_t brt_upstream_read(brt_upstream_transfer *transfer, char *buf, size_t len);

/* Whether the upstream is reachable, for a health check: GET /v2/ with
 * the gateway's credentials, over the shared connections, giving up
 * after `timeout_ms` (connecting included).  0 if it answered any HTTP
 * status below 500 (401 and 403 too: it is up, whatever it thinks of the
 * credentials); BRT_EIO (detail says why) if it could not be reached, did
 * not answer in time or answered 5xx; BRT_ENOMEM.  Safe to call from any
 * thread, alongside transfers. */
int brt_upstream_probe(brt_upstream *upstream, unsigned int timeout_ms);

/* Abort if still running and release.  NULL is fine. */
void brt_upstream_transfer_free(brt_upstream_transfer *transfer);

#endif
