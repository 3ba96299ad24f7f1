/* berth-edge's local cache of content fetched by digest.  Objects are
 * stored once by digest (objects/<alg>/<hex>, with <hex>.type holding the
 * media type); a per-repository grant (repos/<sha256 of the name>/<alg>-<hex>)
 * is written after a verified fetch for that repository, and a hit needs
 * both, so content is served only under names the upstream allowed.  An
 * object enters the cache only through a writer that hashes what streams
 * in and commits (fdatasync, rename, fsync of the directory) when size and
 * digest match; anything else leaves no trace. */
#ifndef BRT_EDGE_CACHE_H
#define BRT_EDGE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "oci/digest.h"

#define BRT_EDGE_MEDIA_TYPE_MAX 255

typedef struct brt_edge_cache brt_edge_cache;
typedef struct brt_edge_cache_writer brt_edge_cache_writer;

/* Open (creating as needed) the cache in `dir` and remove temp files a
 * previous run left behind.  `max_bytes` bounds the objects' total size
 * (0: unbounded).  BRT_EIO if the directory cannot be made or used,
 * BRT_ENOMEM.  The caller owns *out. */
int brt_edge_cache_open(brt_edge_cache **out, const char *dir, uint64_t max_bytes);
void brt_edge_cache_free(brt_edge_cache *cache);

/* A hit: *fd_out is an open descriptor of the object (the caller owns it),
 * *size_out its size and `media_type_out` (BRT_EDGE_MEDIA_TYPE_MAX + 1
 * bytes) its media type; the object counts as recently used.
 * BRT_ENOTFOUND unless both the grant for `repository` and the object are
 * there. */
int brt_edge_cache_lookup(int *fd_out, uint64_t *size_out, char *media_type_out, brt_edge_cache *cache,
			  const char *repository, const brt_digest *digest);

/* Start caching the body of a fetch of `digest` for `repository`;
 * `expected_length` is the announced length or -1.  BRT_EIO, BRT_ENOMEM.
 * The caller owns *out; freeing an uncommitted writer drops its temp
 * file. */
int brt_edge_cache_writer_open(brt_edge_cache_writer **out, brt_edge_cache *cache, const char *repository,
			       const brt_digest *digest, int64_t expected_length);

/* Append body bytes.  BRT_EIO on a write failure (the writer then drops
 * everything at commit). */
int brt_edge_cache_writer_add(brt_edge_cache_writer *writer, const void *data, size_t len);

/* 1 once as many bytes as announced have been added, else 0. */
int brt_edge_cache_writer_complete(const brt_edge_cache_writer *writer);

/* Verify size and digest, make room, store the object and its media type
 * (`media_type` may be NULL) and write the grant.  BRT_EDIGEST for a size
 * or digest mismatch, BRT_ETOOBIG for an object over the bound, BRT_EIO.
 * The temp file is gone afterwards in every case. */
int brt_edge_cache_writer_commit(brt_edge_cache_writer *writer, const char *media_type);

/* NULL is fine. */
void brt_edge_cache_writer_free(brt_edge_cache_writer *writer);

#endif
