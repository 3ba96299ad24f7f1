/* Shared downloads into the edge cache.  The first request for an
 * uncached object starts a download of its own thread: one upstream GET
 * whose body is hashed and written through the cache's blob store and
 * committed when size and digest match.  Every request for the same
 * object (same repository and digest) while it runs joins it and streams
 * the bytes from the file as they arrive, the first requester included,
 * so a client never waits for the whole download and the upstream sends
 * the object once.  Nobody gets the last byte before the digest checked
 * out: a bad download ends every stream with an error, and the cache
 * keeps nothing of it.  A client that goes away does not stop the
 * download for the others. */
#ifndef BRT_EDGE_DOWNLOAD_H
#define BRT_EDGE_DOWNLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "edge/cache.h"
#include "edge/upstream.h"
#include "oci/digest.h"

typedef struct brt_edge_downloads brt_edge_downloads;
typedef struct brt_edge_download brt_edge_download;

/* A reader parked until bytes come: `wake` is called once, from the
 * download's thread with the download's lock held, after `park` was
 * called (same lock) by brt_edge_download_read.  Zeroed by the caller
 * before first use; lives as long as the reader. */
typedef struct brt_edge_waiter {
	void (*park)(void *payload);
	void (*wake)(void *payload);
	void *payload;
	struct brt_edge_waiter *next;
	int queued;
} brt_edge_waiter;

/* What downloads count, for /metrics (read without locks). */
typedef struct brt_edge_download_counts {
	uint64_t started, shared, failed, bytes;
} brt_edge_download_counts;

int brt_edge_downloads_new(brt_edge_downloads **out, brt_edge_cache *cache, brt_upstream *upstream);

/* End every download (their streams end with an error), wake every
 * parked reader and refuse new downloads.  For the server's stop, before
 * its connections close. */
void brt_edge_downloads_stop(brt_edge_downloads *downloads);

/* After stop and once the server is gone: wait (briefly) for download
 * threads to finish, then release.  NULL is fine. */
void brt_edge_downloads_free(brt_edge_downloads *downloads);

void brt_edge_downloads_counts(brt_edge_download_counts *out, brt_edge_downloads *downloads);
unsigned int brt_edge_downloads_running(brt_edge_downloads *downloads);

/* Join the download of `digest` for `repository` (a manifest if
 * `manifest`), starting one if none runs, and wait for the upstream's
 * answer.  0: *out streams it (*shared_out is 1 if it was running
 * already).  BRT_EUNSUPPORTED: this cannot be a shared download (the
 * upstream answered other than 200 with a length, the object does not
 * fit in the cache, the proxy is stopping): forward the request on its
 * own.  BRT_EIO: the upstream is unreachable.  BRT_EDIGEST: the
 * download failed before this request could stream it (cut short, wrong
 * digest).  The caller releases *out with brt_edge_download_leave. */
int brt_edge_download_join(brt_edge_download **out, int *shared_out, brt_edge_downloads *downloads,
			   const char *repository, const brt_digest *digest, int manifest);

/* The object's size and media type (borrowed from the download). */
uint64_t brt_edge_download_size(const brt_edge_download *download);
const char *brt_edge_download_media_type(const brt_edge_download *download);

/* Copy up to `len` bytes of the object from `offset` into `buf`:
 * *read_out is the count, 0 at the end of a verified object.  When no
 * byte is ready yet, waiter->park is called and *read_out is 0 with
 * *parked_out 1; waiter->wake follows when there is news.  BRT_EIO if
 * the download failed (cut short, wrong digest, stopped). */
int brt_edge_download_read(size_t *read_out, int *parked_out, brt_edge_download *download, void *buf,
			   size_t len, uint64_t offset, brt_edge_waiter *waiter);

/* Let go of a joined download (taking `waiter` off its queue if it is
 * there; NULL is fine).  NULL download is fine. */
void brt_edge_download_leave(brt_edge_download *download, brt_edge_waiter *waiter);

#endif
