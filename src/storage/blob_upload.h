/* A blob upload in progress: a blob-store writer plus the running digest.
 * Bytes are hashed as they stream in; the hash state is saved with the
 * acknowledged offset so the upload can resume in another request, after a
 * restart or on another node; commit publishes the object only when the
 * digest the client names matches what was received. */
#ifndef BRT_BLOB_UPLOAD_H
#define BRT_BLOB_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "oci/digest.h"
#include "storage/blobstore.h"

typedef struct brt_blob_upload brt_blob_upload;

/* Take exclusive use of upload `upload_id`'s data (see the store's
 * writer_open: BRT_ECONFLICT if another request has it).  Data must not
 * grow past `max_size` bytes (brt_blob_upload_write then fails with
 * BRT_ETOOBIG).  Read the session's acknowledged offset and hash state
 * only after this returns, then call brt_blob_upload_resume. */
int brt_blob_upload_open(brt_blob_upload **out, brt_blobstore *store, const char *upload_id,
			 uint64_t max_size);

/* Continue at the acknowledged `offset`, dropping any unacknowledged tail.
 * With `state_len` 0 the upload starts fresh (offset must be 0) hashing
 * with `alg`; otherwise `state` is a saved hash state that must cover
 * exactly `offset` bytes (BRT_EINVALID if not).  BRT_ERANGE if less than
 * `offset` bytes are stored. */
int brt_blob_upload_resume(brt_blob_upload *upload, uint64_t offset, const unsigned char *state,
			   size_t state_len, brt_digest_alg alg);

/* Bytes received so far. */
uint64_t brt_blob_upload_size(const brt_blob_upload *upload);

/* Hash and append.  BRT_ETOOBIG past the limit, BRT_EIO from the store. */
int brt_blob_upload_write(brt_blob_upload *upload, const void *data, size_t len);

/* Make the data durable and serialise the hash state into `state_out`
 * (BRT_HASHER_STATE_MAX bytes); *len_out is its length. */
int brt_blob_upload_save(brt_blob_upload *upload, unsigned char *state_out, size_t *len_out);

/* Verify the data against `expected` and publish it as that blob.  On
 * success `key_out` (BRT_BLOB_KEY_MAX bytes) holds the storage key and
 * *size_out the size.  BRT_EDIGEST if the content does not match, and the
 * received data is then discarded.  Either way the upload is finished: only
 * brt_blob_upload_free may follow. */
int brt_blob_upload_commit(brt_blob_upload *upload, const brt_digest *expected, char *key_out,
			   uint64_t *size_out);

/* The digest (with `alg`) and length of committed object `key`, read back
 * through the store with `buf` (`buf_len` bytes) as the read buffer;
 * `len_out` may be NULL.  Errors from the store's reader pass up. */
int brt_blob_rehash(brt_digest *out, uint64_t *len_out, brt_blobstore *store, const char *key,
		    brt_digest_alg alg, void *buf, size_t buf_len);

/* Close; uncommitted data stays for a later open unless discarded. */
void brt_blob_upload_free(brt_blob_upload *upload);

/* Throw away the data of `upload_id`. */
int brt_blob_upload_discard(brt_blobstore *store, const char *upload_id);

#endif
