/* The driver table and the slot wrappers of the blob store interface (see
 * blobstore.h): a store is checked once when it is opened, so callers can
 * call the required slots without testing them, and the optional ones
 * answer BRT_EUNSUPPORTED instead of crashing on NULL. */
#include "storage/blobstore.h"

#include <stddef.h>
#include <string.h>

#include "common/error.h"

static const struct {
	const char *name;
	int (*open)(brt_blobstore **out, const char *location);
} drivers[] = {
	{"filesystem", brt_blobstore_fs_open},
};

int brt_blobstore_check(const brt_blobstore *bs)
{
	if (!bs)
		return brt_error_set(BRT_EINVALID, "blob store: no store");
	if (bs->version != BRT_BLOBSTORE_VERSION)
		return brt_error_set(BRT_EINVALID, "blob store %s: built for interface version %u, not %d",
				     bs->name ? bs->name : "(unnamed)", bs->version, BRT_BLOBSTORE_VERSION);
	if (!bs->name || !bs->stat || !bs->reader_open || !bs->writer_open || !bs->commit ||
	    !bs->upload_remove || !bs->remove || !bs->copy || !bs->list || !bs->free)
		return brt_error_set(BRT_EINVALID, "blob store %s: a required operation is missing",
				     bs->name ? bs->name : "(unnamed)");
	return 0;
}

int brt_blobstore_open(brt_blobstore **out, const char *driver, const char *location)
{
	brt_blobstore *bs = NULL;
	int error;

	*out = NULL;
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		if (!driver || strcmp(driver, drivers[i].name) != 0)
			continue;
		if ((error = drivers[i].open(&bs, location)) < 0)
			return error;
		if ((error = brt_blobstore_check(bs)) < 0) {
			if (bs->free)
				bs->free(bs);
			return error;
		}
		*out = bs;
		return 0;
	}
	return brt_error_set(BRT_ENOTFOUND, "no blob store driver \"%s\"", driver ? driver : "");
}

static int unsupported(brt_blobstore *bs, const char *what)
{
	return brt_error_set(BRT_EUNSUPPORTED, "the %s blob store cannot %s", bs->name, what);
}

int brt_blobstore_stat(brt_blobstore *bs, const char *key, uint64_t *size_out)
{
	return bs->stat(bs, key, size_out);
}

int brt_blobstore_reader_open(brt_blob_reader **out, brt_blobstore *bs, const char *key, uint64_t offset)
{
	return bs->reader_open(out, bs, key, offset);
}

int brt_blobstore_open_fd(int *fd_out, uint64_t *size_out, brt_blobstore *bs, const char *key)
{
	*fd_out = -1;
	if (!bs->open_fd)
		return unsupported(bs, "hand out file descriptors");
	return bs->open_fd(fd_out, size_out, bs, key);
}

int brt_blobstore_writer_open(brt_blob_writer **out, brt_blobstore *bs, const char *upload_id,
			      uint64_t offset, const unsigned char *state, size_t state_len)
{
	return bs->writer_open(out, bs, upload_id, offset, state, state_len);
}

int brt_blobstore_commit(brt_blobstore *bs, const char *upload_id, const unsigned char *state,
			 size_t state_len, uint64_t size, const char *key)
{
	return bs->commit(bs, upload_id, state, state_len, size, key);
}

int brt_blobstore_upload_remove(brt_blobstore *bs, const char *upload_id, const unsigned char *state,
				size_t state_len)
{
	return bs->upload_remove(bs, upload_id, state, state_len);
}

int brt_blobstore_remove(brt_blobstore *bs, const char *key)
{
	return bs->remove(bs, key);
}

int brt_blobstore_copy(brt_blobstore *bs, const char *from, const char *to)
{
	return bs->copy(bs, from, to);
}

int brt_blobstore_list(brt_blobstore *bs, int (*cb)(const char *key, uint64_t size, void *payload),
		       void *payload)
{
	return bs->list(bs, cb, payload);
}

int brt_blobstore_upload_list(brt_blobstore *bs, brt_upload_list_cb cb, void *payload)
{
	if (!bs->upload_list)
		return unsupported(bs, "list upload data");
	return bs->upload_list(bs, cb, payload);
}

int brt_blobstore_upload_prune(unsigned long *removed_out, brt_blobstore *bs, const char *upload_id,
			       const unsigned char *keep, size_t keep_len, int64_t before_ms)
{
	*removed_out = 0;
	if (!bs->upload_prune)
		return unsupported(bs, "prune upload data");
	return bs->upload_prune(removed_out, bs, upload_id, keep, keep_len, before_ms);
}

void brt_blobstore_free(brt_blobstore *bs)
{
	if (bs)
		bs->free(bs);
}

int brt_blob_writer_data_fd(brt_blob_writer *w, int *fd_out)
{
	*fd_out = -1;
	if (!w->data_fd)
		return brt_error_set(BRT_EUNSUPPORTED,
				     "blob store: this writer cannot be read while written");
	return w->data_fd(w, fd_out);
}

int brt_blobstore_list_dated(brt_blobstore *bs, brt_object_list_cb cb, void *payload)
{
	if (!bs->list_dated)
		return brt_error_set(BRT_EUNSUPPORTED, "the %s blob store cannot list objects with dates",
				     bs->name);
	return bs->list_dated(bs, cb, payload);
}

int brt_blobstore_upload_key(brt_blobstore *bs, const char *upload_id, char *key_out)
{
	key_out[0] = '\0';
	if (!bs->upload_key)
		return unsupported(bs, "name an upload's own key");
	return bs->upload_key(bs, upload_id, key_out);
}

int brt_blobstore_presign(brt_blobstore *bs, const char *key, unsigned int ttl_seconds, char *url_out,
			  size_t cap)
{
	if (cap > 0)
		url_out[0] = '\0';
	if (!bs->presign)
		return unsupported(bs, "presign URLs");
	return bs->presign(bs, key, ttl_seconds, url_out, cap);
}
