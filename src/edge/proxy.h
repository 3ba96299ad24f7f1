/* berth-edge's HTTP handler: forwards the pull side of the registry API
 * (GET and HEAD of /v2/, manifests, blobs, tags and referrers) to the
 * upstream registry with the gateway's credentials and streams the
 * answer back; everything else is 405 UNSUPPORTED. */
#ifndef BRT_EDGE_PROXY_H
#define BRT_EDGE_PROXY_H

#include <stdatomic.h>
#include <stdint.h>

#include "edge/cache.h"
#include "edge/upstream.h"
#include "http/server.h"
#include "oci/digest.h"

/* 1 if `url` (a decoded path without the query) is one of the forwarded
 * endpoints: /v2/, or /v2/<name>/ followed by manifests/<ref>,
 * blobs/<digest>, referrers/<digest> or tags/list.  The name and the
 * reference are the upstream's to validate; only characters that their
 * grammars allow pass, so the path needs no re-encoding and cannot climb
 * out of /v2/. */
int brt_edge_forwarded(const char *url);

/* 1 if `url` may be forwarded with allow_push: a forwarded endpoint, an
 * upload (/v2/<name>/blobs/uploads/ and .../uploads/<id>) or
 * /v2/_catalog. */
int brt_edge_pushable(const char *url);

/* 1 if `url` is a forwarded GET/HEAD target whose answer may be cached:
 * /v2/<name>/blobs/<digest> or /v2/<name>/manifests/<digest> (digests are
 * immutable; tags are not).  Then `repository_out` (`cap` bytes) holds
 * the name and `digest_out` the parsed digest; otherwise 0. */
int brt_edge_cacheable(char *repository_out, size_t cap, brt_digest *digest_out, const char *url);

/* How requests were answered, for the access line and /metrics. */
typedef enum brt_edge_result {
	BRT_EDGE_HIT,         /* from the cache */
	BRT_EDGE_MISS,        /* started a download into the cache */
	BRT_EDGE_SHARED,      /* joined a download another request started */
	BRT_EDGE_OFFLINE,     /* the upstream unreachable: from the cache, last known digest */
	BRT_EDGE_FORWARD,     /* passed to the upstream and back, not cached */
	BRT_EDGE_UNAVAILABLE, /* the upstream unreachable and nothing cached */
	BRT_EDGE_REFUSED,     /* not a pull: refused by the proxy */
	BRT_EDGE_LOCAL,       /* /metrics, /healthz */
	BRT_EDGE_RESULTS
} brt_edge_result;

/* What the handler works with.  Set upstream, cache (NULL: none) and
 * allow_push (forward pushes and deletes too; the upstream decides
 * whether the credentials may), then call brt_edge_context_init; the
 * upstream and cache are borrowed and must outlive the server. */
typedef struct brt_edge_context {
	brt_upstream *upstream;
	brt_edge_cache *cache;
	int allow_push;
	/* set by brt_edge_context_init */
	struct brt_edge_downloads *downloads;
	_Atomic uint64_t results[BRT_EDGE_RESULTS];
	_Atomic uint64_t bytes_from_cache, bytes_forwarded, upstream_errors;
	_Atomic int64_t health_checked_ms;
	_Atomic int upstream_reachable;
} brt_edge_context;

/* BRT_ENOMEM.  brt_edge_context_free after the server stopped. */
int brt_edge_context_init(brt_edge_context *context);
void brt_edge_context_free(brt_edge_context *context);

/* The Prometheus text of /metrics into `buf` (`cap` bytes, NUL
 * terminated); returns its length, or 0 if it did not fit. */
size_t brt_edge_metrics_text(char *buf, size_t cap, brt_edge_context *context);

/* Fill `out` for brt_http_server_start. */
void brt_edge_handler(brt_http_handler *out, brt_edge_context *context);

#endif
