/* berth-edge's HTTP handler: forwards the pull side of the registry API
 * (GET and HEAD of /v2/, manifests, blobs, tags and referrers) to the
 * upstream registry with the gateway's credentials and streams the
 * answer back; everything else is 405 UNSUPPORTED. */
#ifndef BRT_EDGE_PROXY_H
#define BRT_EDGE_PROXY_H

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

/* 1 if `url` is a forwarded GET/HEAD target whose answer may be cached:
 * /v2/<name>/blobs/<digest> or /v2/<name>/manifests/<digest> (digests are
 * immutable; tags are not).  Then `repository_out` (`cap` bytes) holds
 * the name and `digest_out` the parsed digest; otherwise 0. */
int brt_edge_cacheable(char *repository_out, size_t cap, brt_digest *digest_out, const char *url);

/* What the handler works with; borrowed, must outlive the server.
 * `cache` is NULL when there is none.  `allow_push`: forward pushes and
 * deletes too (the upstream decides whether the credentials may). */
typedef struct brt_edge_context {
	brt_upstream *upstream;
	brt_edge_cache *cache;
	int allow_push;
} brt_edge_context;

/* Fill `out` for brt_http_server_start. */
void brt_edge_handler(brt_http_handler *out, brt_edge_context *context);

#endif
