/* A blob upload in progress: one attempt of the blob store (see
 * blobstore.h) plus the running digest.  Bytes are hashed as they stream
 * in; the hash state is saved with the acknowledged offset and the
 * store's backend state in the session row, so the upload can resume in
 * another request, after a restart or on another node.  Nothing here
 * locks: the caller makes an attempt part of the upload by storing what
 * brt_blob_upload_save reports with a compare-and-swap, and then calls
 * brt_blob_upload_adopt; an attempt freed without that is dropped.  Commit
 * publishes the object only when the digest the client names matches. */
#ifndef BRT_BLOB_UPLOAD_H
#define BRT_BLOB_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "oci/digest.h"
#include "storage/blobstore.h"

typedef struct brt_blob_upload brt_blob_upload;

/* Where an upload stands, as its session row says (all borrowed). */
typedef struct brt_upload_point {
	uint64_t offset;
	const unsigned char *hash_state; /* brt_hasher_save(); 0 bytes: nothing hashed yet */
	size_t hash_state_len;
	const unsigned char *backend_state; /* the store's; 0 bytes: no data yet */
	size_t backend_state_len;
} brt_upload_point;

/* Open an attempt on upload `upload_id` that continues at `at` (NULL: a
 * new upload hashed with `alg`; with an empty hash state `alg` is used
 * too, and the offset must be 0).  Data must not grow past `max_size`
 * bytes (brt_blob_upload_write then fails with BRT_ETOOBIG).  BRT_EINVALID
 * if the hash state or backend state does not fit the offset; errors of
 * the store's writer_open (BRT_ENOTFOUND: the data is gone) pass up. */
int brt_blob_upload_open(brt_blob_upload **out, brt_blobstore *store, const char *upload_id,
			 uint64_t max_size, brt_digest_alg alg, const brt_upload_point *at);

/* The upload's size with what this attempt received. */
uint64_t brt_blob_upload_size(const brt_blob_upload *upload);

/* The body this request sends is `len` bytes long (-1: not known, e.g.
 * chunked transfer coding).  A large or unknown one is hashed and stored
 * by workers of an upload ring (storage/upload_ring.h) while it arrives;
 * without this call everything runs in the calling thread.  Call before
 * the first write. */
void brt_blob_upload_expect(brt_blob_upload *upload, int64_t len);

/* Hash and append (or hand over to the ring's workers; a store failure
 * then surfaces at a later write, save or check).  BRT_ETOOBIG past the limit, BRT_EIO from the store. */
int brt_blob_upload_write(brt_blob_upload *upload, const void *data, size_t len);

/* Make the attempt's data durable; serialise the hash state into
 * `hash_state_out` (BRT_HASHER_STATE_MAX bytes, *hash_len_out its length)
 * and point *backend_state_out (*backend_len_out bytes) at the backend
 * state, borrowed until the next write, save or free.  What to store in
 * the row for the offset brt_blob_upload_size. */
int brt_blob_upload_save(brt_blob_upload *upload, unsigned char *hash_state_out, size_t *hash_len_out,
			 const unsigned char **backend_state_out, size_t *backend_len_out);

/* The state from the last save is stored (the caller's compare-and-swap
 * won, or the caller owns the upload outright): keep the attempt's data. */
void brt_blob_upload_adopt(brt_blob_upload *upload);

/* Whether the state from the last save was stored is unknown (the
 * metadata store failed while it committed): keep the attempt's data and
 * what the previous state named; the janitor removes what the row does
 * not name. */
void brt_blob_upload_keep(brt_blob_upload *upload);

/* After a save: 0 if the data hashes to `expected`, BRT_EDIGEST if not
 * (detail: the digest received); 1 if `expected` uses another algorithm
 * than the one hashed while streaming (commit then verifies by reading
 * the data back); a store failure of the ring's workers passes up. */
int brt_blob_upload_check(brt_blob_upload *upload, const brt_digest *expected);

/* After a save and a check that did not fail, with the upload owned by the
 * caller (its session claimed, or none): adopt and publish it as blob
 * `expected`, under a storage key of its own (the store's upload_key
 * where it has one, else brt_blob_key_unique), so it never lands on a
 * copy of the same blob awaiting deletion.  On
 * success `key_out` (BRT_BLOB_KEY_MAX bytes) holds the storage key and
 * *size_out the size, and the upload's data is gone; the caller records
 * the key or removes the object.
 * BRT_EDIGEST if a re-read shows the content does not match (the data is
 * gone then too); the store's commit errors pass up (BRT_ENOTFOUND: the
 * data is gone; other errors: it is still there under the saved state). */
int brt_blob_upload_commit(brt_blob_upload *upload, const brt_digest *expected, char *key_out,
			   uint64_t *size_out);

/* The digest (with `alg`) and length of committed object `key`, read back
 * through the store with `buf` (`buf_len` bytes) as the read buffer;
 * `len_out` may be NULL.  Errors from the store's reader pass up. */
int brt_blob_rehash(brt_digest *out, uint64_t *len_out, brt_blobstore *store, const char *key,
		    brt_digest_alg alg, void *buf, size_t buf_len);

/* Close; unless adopted, the attempt's data is dropped.  Accepts NULL. */
void brt_blob_upload_free(brt_blob_upload *upload);

/* Throw away all data of `upload_id` (`backend_state` as the row holds
 * it, if any). */
int brt_blob_upload_discard(brt_blobstore *store, const char *upload_id, const unsigned char *backend_state,
			    size_t backend_state_len);

#endif
