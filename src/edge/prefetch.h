/* berth-edge prefetch: fill the cache of a running berth-edge with an
 * image before a deployment, while the gateway's link is up.  It is a
 * client of the local proxy: it pulls the manifest by tag (so the proxy
 * also remembers the tag for offline use), every platform's manifest of
 * an index (or the one asked for), and every blob they reference, and
 * throws the bytes away; the proxy caches them on the way.  One writer
 * of the cache, and the same code path as any pull. */
#ifndef BRT_EDGE_PREFETCH_H
#define BRT_EDGE_PREFETCH_H

#include <stdint.h>
#include <stdio.h>

typedef struct brt_prefetch_result {
	unsigned int manifests, blobs;
	uint64_t bytes;
} brt_prefetch_result;

/* Pull `reference` ("<repository>:<tag>" or "<repository>@<digest>")
 * through the proxy at `proxy_url` ("http://127.0.0.1:8080").
 * `platform` ("os/arch[/variant]") picks one platform of an index; NULL
 * takes them all.  Progress goes to `progress` (redrawn in place when it
 * is a terminal).  BRT_EINVALID for a bad reference or platform,
 * BRT_ENOTFOUND if no platform of an index matches, BRT_EIO if the proxy
 * cannot be reached or answers an error (detail says which object). */
int brt_edge_prefetch(brt_prefetch_result *out, const char *proxy_url, const char *reference,
		      const char *platform, FILE *progress);

#endif
