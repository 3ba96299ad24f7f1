/* berth-edge's HTTP handler: forwards the pull side of the registry API
 * (GET and HEAD of /v2/, manifests, blobs, tags and referrers) to the
 * upstream registry with the gateway's credentials and streams the
 * answer back; everything else is 405 UNSUPPORTED. */
#ifndef BRT_EDGE_PROXY_H
#define BRT_EDGE_PROXY_H

#include "edge/upstream.h"
#include "http/server.h"

/* 1 if `url` (a decoded path without the query) is one of the forwarded
 * endpoints: /v2/, or /v2/<name>/ followed by manifests/<ref>,
 * blobs/<digest>, referrers/<digest> or tags/list.  The name and the
 * reference are the upstream's to validate; only characters that their
 * grammars allow pass, so the path needs no re-encoding and cannot climb
 * out of /v2/. */
int brt_edge_forwarded(const char *url);

/* Fill `out` for brt_http_server_start; `upstream` is borrowed and must
 * outlive the server. */
void brt_edge_handler(brt_http_handler *out, brt_upstream *upstream);

#endif
