/* Streaming, resumable, digest-verified uploads over any blob store (see
 * blob_upload.h).  Hashing lives here so drivers only move bytes. */
#include "storage/blob_upload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"

struct brt_blob_upload {
	brt_blobstore *store;
	brt_blob_writer *writer;
	brt_hasher hasher;
	uint64_t max_size;
	char upload_id[BRT_UPLOAD_ID_LEN + 1];
};

int brt_blob_upload_open(brt_blob_upload **out, brt_blobstore *store, const char *upload_id,
			 uint64_t max_size)
{
	int error = 0;
	brt_blob_upload *u = calloc(1, sizeof(*u));

	*out = NULL;
	if (!u)
		return brt_error_set(BRT_ENOMEM, "out of memory");
	u->store = store;
	u->max_size = max_size;
	snprintf(u->upload_id, sizeof(u->upload_id), "%s", upload_id);
	if ((error = store->writer_open(&u->writer, store, upload_id)) < 0) {
		free(u);
		return error;
	}
	*out = u;
	return 0;
}

int brt_blob_upload_resume(brt_blob_upload *upload, uint64_t offset, const unsigned char *state,
			   size_t state_len, brt_digest_alg alg)
{
	int error;

	if (state_len == 0) {
		if (offset != 0)
			return brt_error_set(BRT_EINVALID, "upload has data but no hash state");
		brt_hasher_init(&upload->hasher, alg);
	} else {
		if ((error = brt_hasher_load(&upload->hasher, state, state_len)) < 0)
			return error;
		if (brt_hasher_length(&upload->hasher) != offset)
			return brt_error_set(BRT_EINVALID, "upload hash state does not match its offset");
	}
	return upload->writer->rewind(upload->writer, offset);
}

uint64_t brt_blob_upload_size(const brt_blob_upload *upload)
{
	return upload->writer->size;
}

int brt_blob_upload_write(brt_blob_upload *upload, const void *data, size_t len)
{
	uint64_t end;

	if (__builtin_add_overflow(upload->writer->size, (uint64_t)len, &end) || end > upload->max_size)
		return brt_error_set(BRT_ETOOBIG, "blob is larger than the limit of %llu bytes",
				     (unsigned long long)upload->max_size);
	brt_hasher_update(&upload->hasher, data, len);
	return upload->writer->append(upload->writer, data, len);
}

int brt_blob_upload_save(brt_blob_upload *upload, unsigned char *state_out, size_t *len_out)
{
	int error = upload->writer->sync(upload->writer);

	if (error < 0)
		return error;
	*len_out = brt_hasher_save(&upload->hasher, state_out);
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
	if ((error = store->reader_open(&reader, store, key, 0)) < 0)
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

int brt_blob_upload_commit(brt_blob_upload *upload, const brt_digest *expected, char *key_out,
			   uint64_t *size_out)
{
	int error = 0;
	brt_blobstore *store = upload->store;
	brt_digest got;
	char staging[BRT_BLOB_KEY_MAX], detail[512];
	void *buf;

	*size_out = upload->writer->size;
	brt_blob_key(key_out, expected->str);
	if (upload->hasher.alg == expected->alg) {
		brt_hasher_final(&upload->hasher, &got);
		if (got.len != expected->len || memcmp(got.str, expected->str, got.len) != 0) {
			store->upload_remove(store, upload->upload_id);
			return brt_error_set(BRT_EDIGEST, "content digest is %s", got.str);
		}
		return upload->writer->commit(upload->writer, key_out);
	}
	/* The client named another algorithm than the one hashed while
	 * streaming: publish under a private key, re-hash, then move. */
	snprintf(staging, sizeof(staging), "staging/%s", upload->upload_id);
	/* A leftover from an interrupted commit would be taken for this one. */
	store->remove(store, staging);
	if ((error = upload->writer->commit(upload->writer, staging)) < 0)
		goto discard;
	if (!(buf = malloc(REHASH_BUF))) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto discard;
	}
	error = brt_blob_rehash(&got, NULL, store, staging, expected->alg, buf, REHASH_BUF);
	free(buf);
	if (error < 0)
		goto discard;
	if (got.len != expected->len || memcmp(got.str, expected->str, got.len) != 0) {
		error = brt_error_set(BRT_EDIGEST, "content digest is %s", got.str);
		goto discard;
	}
	error = store->move(store, staging, key_out);
	if (error == BRT_EEXISTS) {
		/* Content-addressed: an object of the same size is this content;
		 * one of another size is corrupt and gives way to the verified
		 * copy. */
		uint64_t existing = 0;
		if ((error = store->stat(store, key_out, &existing)) == 0 && existing != *size_out) {
			brt_log_warn("blob store: %s has %llu bytes, not the %llu of its verified content: "
				     "replacing it", key_out, (unsigned long long)existing,
				     (unsigned long long)*size_out);
			if ((error = store->remove(store, key_out)) == 0 || error == BRT_ENOTFOUND)
				error = store->move(store, staging, key_out);
		}
		if (error == BRT_EEXISTS) /* a concurrent commit of the same content */
			error = 0;
	}
discard:
	/* The staging object must not outlive this call, whatever failed
	 * (a failed move or a commit that published and then reported an
	 * error would leave it under blobs/ for good); it is gone already
	 * when it was moved into place.  The cleanup's own outcome must not
	 * replace the detail of the error being returned. */
	snprintf(detail, sizeof(detail), "%s", brt_error_last());
	store->remove(store, staging);
	if (error < 0)
		brt_error_set(error, "%s", detail);
	else
		brt_error_clear();
	return error;
}

void brt_blob_upload_free(brt_blob_upload *upload)
{
	if (!upload)
		return;
	if (upload->writer)
		upload->writer->free(upload->writer);
	free(upload);
}

int brt_blob_upload_discard(brt_blobstore *store, const char *upload_id)
{
	return store->upload_remove(store, upload_id);
}
