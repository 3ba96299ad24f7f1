/* Streaming, resumable, digest-verified uploads over any blob store (see
 * blob_upload.h).  Hashing lives here so drivers only move bytes. */
#include "storage/blob_upload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "storage/upload_ring.h"

struct brt_blob_upload {
	brt_blobstore *store;
	brt_blob_writer *writer;
	brt_hasher hasher;
	/* Large bodies go through a ring: hashed and stored by workers while
	 * the next bytes arrive.  NULL for small ones, or when every ring of
	 * the server is busy: then the caller's thread hashes and stores. */
	brt_upload_ring *ring;
	int use_ring;
	uint64_t size; /* bytes received: the offset opened at plus all written */
	uint64_t max_size;
	/* From the last save: what the row stores and commit publishes. */
	const unsigned char *backend_state;
	size_t backend_state_len;
	int saved;
	char upload_id[BRT_UPLOAD_ID_LEN + 1];
};

int brt_blob_upload_open(brt_blob_upload **out, brt_blobstore *store, const char *upload_id,
			 uint64_t max_size, brt_digest_alg alg, const brt_upload_point *at)
{
	static const brt_upload_point fresh;
	brt_blob_upload *u = NULL;
	int error = 0;

	*out = NULL;
	if (!at)
		at = &fresh;
	if (!(u = calloc(1, sizeof(*u))))
		return brt_error_set(BRT_ENOMEM, "out of memory");
	u->store = store;
	u->max_size = max_size;
	snprintf(u->upload_id, sizeof(u->upload_id), "%s", upload_id);
	if (at->hash_state_len == 0) {
		if (at->offset != 0) {
			error = brt_error_set(BRT_EINVALID, "upload has data but no hash state");
			goto done;
		}
		brt_hasher_init(&u->hasher, alg);
	} else {
		if ((error = brt_hasher_load(&u->hasher, at->hash_state, at->hash_state_len)) < 0)
			goto done;
		if (brt_hasher_length(&u->hasher) != at->offset) {
			error = brt_error_set(BRT_EINVALID, "upload hash state does not match its offset");
			goto done;
		}
	}
	error = brt_blobstore_writer_open(&u->writer, store, upload_id, at->offset, at->backend_state,
					  at->backend_state_len);
	u->size = at->offset;
done:
	if (error < 0) {
		free(u);
		return error;
	}
	*out = u;
	return 0;
}

uint64_t brt_blob_upload_size(const brt_blob_upload *upload)
{
	return upload->size;
}

void brt_blob_upload_expect(brt_blob_upload *upload, int64_t len)
{
	/* A body of a slot or two gains nothing from workers. */
	upload->use_ring = len < 0 || (uint64_t)len > 2 * BRT_UPLOAD_RING_SLOT;
}

static void ring_hash(const void *data, size_t len, void *payload)
{
	brt_blob_upload *upload = payload;

	brt_hasher_update(&upload->hasher, data, len);
}

static int ring_store(const void *data, size_t len, void *payload)
{
	brt_blob_upload *upload = payload;

	return upload->writer->append(upload->writer, data, len);
}

int brt_blob_upload_write(brt_blob_upload *upload, const void *data, size_t len)
{
	uint64_t end;
	int error;

	if (__builtin_add_overflow(upload->size, (uint64_t)len, &end) || end > upload->max_size)
		return brt_error_set(BRT_ETOOBIG, "blob is larger than the limit of %llu bytes",
				     (unsigned long long)upload->max_size);
	upload->saved = 0;
	if (upload->use_ring) {
		upload->use_ring = 0;
		/* Without a ring (all busy), this body streams inline. */
		(void)brt_upload_ring_new(&upload->ring, ring_hash, ring_store, upload);
	}
	if (upload->ring) {
		error = brt_upload_ring_put(upload->ring, data, len);
	} else {
		brt_hasher_update(&upload->hasher, data, len);
		error = upload->writer->append(upload->writer, data, len);
	}
	if (error == 0)
		upload->size = end;
	return error;
}

int brt_blob_upload_save(brt_blob_upload *upload, unsigned char *hash_state_out, size_t *hash_len_out,
			 const unsigned char **backend_state_out, size_t *backend_len_out)
{
	int error;

	upload->saved = 0;
	if ((upload->ring && (error = brt_upload_ring_drain(upload->ring)) < 0) ||
	    (error = upload->writer->sync(upload->writer, &upload->backend_state,
					  &upload->backend_state_len)) < 0)
		return error;
	upload->saved = 1;
	*hash_len_out = brt_hasher_save(&upload->hasher, hash_state_out);
	*backend_state_out = upload->backend_state;
	*backend_len_out = upload->backend_state_len;
	return 0;
}

void brt_blob_upload_adopt(brt_blob_upload *upload)
{
	upload->writer->adopt(upload->writer);
}

void brt_blob_upload_keep(brt_blob_upload *upload)
{
	if (upload->writer->keep)
		upload->writer->keep(upload->writer);
	else
		upload->writer->adopt(upload->writer);
}

int brt_blob_upload_check(brt_blob_upload *upload, const brt_digest *expected)
{
	brt_hasher copy;
	brt_digest got;
	int error;

	/* Every byte written must be hashed first. */
	if (upload->ring && (error = brt_upload_ring_drain(upload->ring)) < 0)
		return error;
	copy = upload->hasher;
	if (upload->hasher.alg != expected->alg)
		return 1;
	/* A copy: finalising must not end the running state. */
	brt_hasher_final(&copy, &got);
	if (got.len != expected->len || memcmp(got.str, expected->str, got.len) != 0)
		return brt_error_set(BRT_EDIGEST, "content digest is %s", got.str);
	return 0;
}

/* Read buffer for re-hashing a committed object. */
#define REHASH_BUF (256 * 1024)

int brt_blob_rehash(brt_digest *out, uint64_t *len_out, brt_blobstore *store, const char *key,
		    brt_digest_alg alg, void *buf, size_t buf_len)
{
	brt_blob_reader *reader = NULL;
	brt_hasher h;
	uint64_t len = 0;
	size_t n;
	int error;

	if (len_out)
		*len_out = 0;
	if ((error = brt_blobstore_reader_open(&reader, store, key, 0)) < 0)
		return error;
	brt_hasher_init(&h, alg);
	for (;;) {
		if ((error = reader->read(reader, buf, buf_len, &n)) < 0)
			goto done;
		if (n == 0)
			break;
		brt_hasher_update(&h, buf, n);
		len += n;
	}
	brt_hasher_final(&h, out);
	if (len_out)
		*len_out = len;
done:
	reader->free(reader);
	return error;
}

/* Re-hash committed object `key` with `expected`'s algorithm: 0 if it
 * holds that content, BRT_EDIGEST (detail: the digest found) if not. */
static int rehash_check(brt_blobstore *store, const char *key, const brt_digest *expected)
{
	brt_digest got;
	void *buf = malloc(REHASH_BUF);
	int error;

	if (!buf)
		return brt_error_set(BRT_ENOMEM, "out of memory");
	error = brt_blob_rehash(&got, NULL, store, key, expected->alg, buf, REHASH_BUF);
	free(buf);
	if (error == 0 && (got.len != expected->len || memcmp(got.str, expected->str, got.len) != 0))
		error = brt_error_set(BRT_EDIGEST, "content digest is %s", got.str);
	return error;
}

/* Publish the upload under a private key, re-hash it with the algorithm
 * the client named, and copy it to `key` only if it matches. */
static int commit_rehashed(brt_blob_upload *upload, const brt_digest *expected, const char *key,
			   uint64_t size)
{
	brt_blobstore *store = upload->store;
	char staging[BRT_BLOB_KEY_MAX], detail[512];
	int error;

	snprintf(staging, sizeof(staging), "staging/%s", upload->upload_id);
	/* A leftover from an interrupted commit would be taken for this one. */
	brt_blobstore_remove(store, staging);
	if ((error = brt_blobstore_commit(store, upload->upload_id, upload->backend_state,
					  upload->backend_state_len, size, staging)) < 0)
		goto discard;
	if ((error = rehash_check(store, staging, expected)) < 0)
		goto discard;
	error = brt_blobstore_copy(store, staging, key);
	if (error == BRT_EEXISTS) {
		/* Content-addressed: an object of the same size is this content;
		 * one of another size is corrupt and gives way to the verified
		 * copy. */
		uint64_t existing = 0;
		if ((error = brt_blobstore_stat(store, key, &existing)) == 0 && existing != size) {
			brt_log_warn(
				"blob store: %s has %llu bytes, not the %llu of its verified content: "
				"replacing it",
				key, (unsigned long long)existing, (unsigned long long)size);
			if ((error = brt_blobstore_remove(store, key)) == 0 || error == BRT_ENOTFOUND)
				error = brt_blobstore_copy(store, staging, key);
		}
		if (error == BRT_EEXISTS) /* a concurrent commit of the same content */
			error = 0;
	}
discard:
	/* The staging object must not outlive this call, whatever failed.
	 * The cleanup's own outcome must not replace the detail of the error
	 * being returned. */
	snprintf(detail, sizeof(detail), "%s", brt_error_last());
	brt_blobstore_remove(store, staging);
	if (error < 0)
		brt_error_set(error, "%s", detail);
	else
		brt_error_clear();
	return error;
}

/* Re-hash published object `key`; remove it and fail with BRT_EDIGEST if
 * it is not `expected`. */
static int verify_published(brt_blob_upload *upload, const brt_digest *expected, const char *key)
{
	int error = rehash_check(upload->store, key, expected);

	if (error == BRT_EDIGEST) {
		brt_log_error("upload %s: published object %s: %s, not %s: removed", upload->upload_id, key,
			      brt_error_last(), expected->str);
		error = brt_error_set(BRT_EDIGEST, "the stored content does not match the digest");
	}
	if (error < 0) {
		char detail[512];
		snprintf(detail, sizeof(detail), "%s", brt_error_last());
		brt_blobstore_remove(upload->store, key);
		brt_error_set(error, "%s", detail);
	}
	return error;
}

int brt_blob_upload_commit(brt_blob_upload *upload, const brt_digest *expected, char *key_out,
			   uint64_t *size_out)
{
	int checked, error;

	*size_out = upload->size;
	/* A store that publishes an upload where its data already lives
	 * names that key (unique to the upload id, so as fresh as a random
	 * suffix); any other key would cost it a copy. */
	if (upload->store->upload_key)
		error = brt_blobstore_upload_key(upload->store, upload->upload_id, key_out);
	else
		error = brt_blob_key_unique(key_out, expected->str);
	if (error < 0)
		return error;
	if (!upload->saved)
		return brt_error_set(BRT_EINVALID, "upload %s: commit before save", upload->upload_id);
	if ((checked = brt_blob_upload_check(upload, expected)) < 0)
		return checked;
	brt_blob_upload_adopt(upload);
	if (checked == 1)
		return commit_rehashed(upload, expected, key_out, *size_out);
	if ((error = brt_blobstore_commit(upload->store, upload->upload_id, upload->backend_state,
					  upload->backend_state_len, *size_out, key_out)) < 0 ||
	    !upload->store->upload_key)
		return error;
	/* What such a store publishes is the pieces other requests wrote
	 * too (an S3 part is found by its number, checked only by its MD5
	 * ETag, and a racing request may have overwritten it with other
	 * bytes of the same MD5): read it back and check its digest before
	 * anyone can be linked to it. */
	return verify_published(upload, expected, key_out);
}

void brt_blob_upload_free(brt_blob_upload *upload)
{
	if (!upload)
		return;
	/* The workers stop before the writer they append to goes. */
	brt_upload_ring_free(upload->ring);
	if (upload->writer)
		upload->writer->free(upload->writer);
	free(upload);
}

int brt_blob_upload_discard(brt_blobstore *store, const char *upload_id, const unsigned char *backend_state,
			    size_t backend_state_len)
{
	return brt_blobstore_upload_remove(store, upload_id, backend_state, backend_state_len);
}
