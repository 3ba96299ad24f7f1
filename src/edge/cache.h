/* berth-edge's cache of content fetched by digest.  The objects live in
 * a blob store (the filesystem driver under the cache directory: the
 * same code and layout as berthd's blobs/ and uploads/), written through
 * its upload interface and published by its commit once size and digest
 * were verified.  Beside them the cache keeps what only the edge knows,
 * as small files loaded at start and held in memory from then on:
 *
 *   repos/<sha256 of the repository>/<alg>-<hex>: a grant, holding the
 *     media type.  An object is served to a repository only after a
 *     verified fetch for that repository (or the upstream's yes to a
 *     HEAD of it), so no account sees what another one pulled;
 *   tags/<sha256 of the repository>/<tag>: the digest the upstream last
 *     gave for the tag, served while the upstream is unreachable.
 *
 * A bound on the objects' total size is kept by evicting the least
 * recently used objects that nothing reads or writes; an object's last
 * use is its modification time, so the order survives a restart.
 * Downloads reserve their announced size before the first byte, so that
 * the bound holds while they run. */
#ifndef BRT_EDGE_CACHE_H
#define BRT_EDGE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "oci/digest.h"
#include "storage/blobstore.h"

#define BRT_EDGE_MEDIA_TYPE_MAX 255
#define BRT_EDGE_TAG_MAX 128

typedef struct brt_edge_cache brt_edge_cache;

typedef struct brt_edge_cache_stats {
	uint64_t bytes;     /* stored objects plus space reserved by downloads */
	uint64_t objects;   /* stored objects */
	uint64_t evictions; /* objects evicted since start */
	uint64_t max_bytes; /* the bound; 0: none */
} brt_edge_cache_stats;

/* Open (creating as needed) the cache in `dir`, drop what downloads that
 * were cut short left behind and load the index.  `max_bytes` bounds the
 * objects' total size (0: unbounded).  BRT_EIO if the directory cannot
 * be made or used, BRT_ENOMEM.  The caller owns *out. */
int brt_edge_cache_open(brt_edge_cache **out, const char *dir, uint64_t max_bytes);
void brt_edge_cache_free(brt_edge_cache *cache);

/* The blob store the objects live in, borrowed. */
brt_blobstore *brt_edge_cache_store(brt_edge_cache *cache);

/* A hit: object `digest` is stored and granted to `repository`.
 * *fd_out is an open descriptor of it (the caller closes it), *size_out
 * its size and *media_type_out its media type (borrowed, valid while the
 * cache is open).  The object counts as used now and is pinned (never
 * evicted) until brt_edge_cache_unpin.  BRT_ENOTFOUND otherwise. */
int brt_edge_cache_lookup(int *fd_out, uint64_t *size_out, const char **media_type_out, brt_edge_cache *cache,
			  const char *repository, const brt_digest *digest);
void brt_edge_cache_unpin(brt_edge_cache *cache, const brt_digest *digest);

/* 1 if object `digest` is stored, whatever repositories it is granted
 * to. */
int brt_edge_cache_has(brt_edge_cache *cache, const brt_digest *digest);

/* Grant stored object `digest` to `repository` with `media_type` (the
 * upstream said yes to this repository).  BRT_ENOTFOUND if the object is
 * not stored, BRT_EIO. */
int brt_edge_cache_grant(brt_edge_cache *cache, const char *repository, const brt_digest *digest,
			 const char *media_type);

/* Reserve room for `size` bytes a download is about to write, evicting
 * least recently used objects that are not pinned.  BRT_ETOOBIG if they
 * cannot fit; BRT_EIO. */
int brt_edge_cache_reserve(brt_edge_cache *cache, uint64_t size);
void brt_edge_cache_unreserve(brt_edge_cache *cache, uint64_t size);

/* Publish the verified upload `upload_id` (backend state `state`,
 * `size` bytes, reserved before) as object `digest`, granted to
 * `repository` with `media_type`; the reservation becomes the object.
 * BRT_EIO (the reservation is released and the upload's data is
 * dropped either way). */
int brt_edge_cache_commit(brt_edge_cache *cache, const char *upload_id, const unsigned char *state,
			  size_t state_len, uint64_t size, const brt_digest *digest, const char *repository,
			  const char *media_type);

/* Remember that the upstream resolved `tag` of `repository` to `digest`;
 * look it up while the upstream is unreachable (BRT_ENOTFOUND if never
 * seen).  Tags longer than BRT_EDGE_TAG_MAX or with characters outside
 * the tag grammar are BRT_EINVALID. */
int brt_edge_cache_tag_set(brt_edge_cache *cache, const char *repository, const char *tag,
			   const brt_digest *digest);
int brt_edge_cache_tag_get(brt_digest *out, brt_edge_cache *cache, const char *repository, const char *tag);

void brt_edge_cache_stats_get(brt_edge_cache_stats *out, brt_edge_cache *cache);

#endif
