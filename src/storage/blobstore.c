/* Helpers over the blob store interface (see blobstore.h) that every
 * caller would otherwise repeat. */
#include "storage/blobstore.h"

#include <stddef.h>

int brt_blobstore_writer_open_at(brt_blob_writer **out, brt_blobstore *bs, const char *upload_id,
				 uint64_t offset)
{
	brt_blob_writer *w = NULL;
	int error;

	*out = NULL;
	if ((error = bs->writer_open(&w, bs, upload_id)) < 0)
		return error;
	if ((error = w->rewind(w, offset)) < 0) {
		w->free(w);
		return error;
	}
	*out = w;
	return 0;
}
