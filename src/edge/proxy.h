/* berth-edge's HTTP handler: forwards the pull side of the registry API
 * (GET and HEAD of /v2/, manifests, blobs, tags and referrers) to the
 * upstream registry with the gateway's credentials and streams the
 * answer back; everything else is 405 UNSUPPORTED. */
#ifndef BRT_EDGE_PROXY_H
#define BRT_EDGE_PROXY_H

#include "edge/upstream.h"
#include "http/server.h"

/* Fill `out` for brt_http_server_start; `upstream` is borrowed and must
 * outlive the server. */
void brt_edge_handler(brt_http_handler *out, brt_upstream *upstream);

#endif
