/* A fault-injecting blob store for tests: it delegates every call to
 * another store but makes the Nth append, sync or commit (counted across
 * all writers of this store, 1-based) fail with a chosen code, once or from
 * then on.  A failing append can first pass half its bytes down, the way a
 * real disk fills up mid-write, and a failing commit can fail before or
 * after the inner commit ran, so callers can test both "nothing published"
 * and "published but reported as failed".  Header-only; test use only. */
#ifndef BRT_TEST_FAULTY_STORE_H
#define BRT_TEST_FAULTY_STORE_H

#include <stdatomic.h>
#include <stdlib.h>

#include "common/error.h"
#include "storage/blobstore.h"

typedef struct faulty_store {
	brt_blobstore base;
	brt_blobstore *inner; /* borrowed: not freed with the wrapper */

	/* Configuration; set before use, not changed while writers run. */
	int error_code;        /* what a fault returns (BRT_EIO by default) */
	long fail_append_at;   /* 0: never */
	long fail_sync_at;
	long fail_commit_at;
	int persistent;        /* every call after a fault of its kind fails too */
	int partial_append;    /* a failing append writes half its bytes first */
	int commit_after;      /* a failing commit runs the inner commit first */

	/* Calls seen so far, faulted or not. */
	atomic_long appends;
	atomic_long syncs;
	atomic_long commits;
	atomic_long faults;
} faulty_store;

typedef struct faulty_writer {
	brt_blob_writer base;
	faulty_store *store;
	brt_blob_writer *inner;
	/* After a failed append or sync the contract makes a writer
	 * unusable; the wrapper keeps to that even though the inner writer
	 * would carry on. */
	int broken;
} faulty_writer;

/* Whether call number `n` (1-based) of a kind configured to fail at `at`
 * is a fault. */
static inline int faulty_should_fail(faulty_store *fs, long at, long n)
{
	int fail = at > 0 && (n == at || (fs->persistent && n > at));

	if (fail)
		atomic_fetch_add(&fs->faults, 1);
	return fail;
}

static inline int faulty_fault(faulty_store *fs, const char *what)
{
	return brt_error_set(fs->error_code, "faulty store: injected %s failure", what);
}

static inline int faulty_writer_append(brt_blob_writer *w, const void *data, size_t len)
{
	faulty_writer *fw = (faulty_writer *)w;
	faulty_store *fs = fw->store;
	long n = atomic_fetch_add(&fs->appends, 1) + 1;
	int error;

	if (fw->broken)
		return faulty_fault(fs, "append after failure");
	if (faulty_should_fail(fs, fs->fail_append_at, n)) {
		fw->broken = 1;
		if (fs->partial_append && len / 2 > 0)
			(void)fw->inner->append(fw->inner, data, len / 2);
		/* The caller must not see the partial tail as acknowledged. */
		return faulty_fault(fs, "append");
	}
	error = fw->inner->append(fw->inner, data, len);
	w->size = fw->inner->size;
	return error;
}

static inline int faulty_writer_sync(brt_blob_writer *w)
{
	faulty_writer *fw = (faulty_writer *)w;
	faulty_store *fs = fw->store;
	long n = atomic_fetch_add(&fs->syncs, 1) + 1;

	if (fw->broken)
		return faulty_fault(fs, "sync after failure");
	if (faulty_should_fail(fs, fs->fail_sync_at, n)) {
		fw->broken = 1;
		return faulty_fault(fs, "sync");
	}
	return fw->inner->sync(fw->inner);
}

static inline int faulty_writer_commit(brt_blob_writer *w, const char *key)
{
	faulty_writer *fw = (faulty_writer *)w;
	faulty_store *fs = fw->store;
	long n = atomic_fetch_add(&fs->commits, 1) + 1;
	int error;

	if (fw->broken)
		return faulty_fault(fs, "commit after failure");
	if (!faulty_should_fail(fs, fs->fail_commit_at, n))
		return fw->inner->commit(fw->inner, key);
	if (fs->commit_after && (error = fw->inner->commit(fw->inner, key)) < 0)
		return error;
	return faulty_fault(fs, "commit");
}

static inline void faulty_writer_free(brt_blob_writer *w)
{
	faulty_writer *fw = (faulty_writer *)w;

	if (!fw)
		return;
	if (fw->inner)
		fw->inner->free(fw->inner);
	free(fw);
}

static inline int faulty_writer_rewind(brt_blob_writer *w, uint64_t offset)
{
	faulty_writer *fw = (faulty_writer *)w;
	int error = fw->inner->rewind(fw->inner, offset);

	w->size = fw->inner->size;
	return error;
}

static inline int faulty_writer_open(brt_blob_writer **out, brt_blobstore *bs, const char *upload_id)
{
	faulty_store *fs = (faulty_store *)bs;
	faulty_writer *fw;
	int error;

	*out = NULL;
	if (!(fw = calloc(1, sizeof(*fw))))
		return brt_error_set(BRT_ENOMEM, "faulty store: out of memory");
	if ((error = fs->inner->writer_open(&fw->inner, fs->inner, upload_id)) < 0) {
		free(fw);
		return error;
	}
	fw->store = fs;
	fw->base.size = fw->inner->size;
	fw->base.append = faulty_writer_append;
	fw->base.sync = faulty_writer_sync;
	fw->base.commit = faulty_writer_commit;
	fw->base.free = faulty_writer_free;
	fw->base.rewind = faulty_writer_rewind;
	*out = &fw->base;
	return 0;
}

static inline int faulty_stat(brt_blobstore *bs, const char *key, uint64_t *size_out)
{
	brt_blobstore *inner = ((faulty_store *)bs)->inner;
	return inner->stat(inner, key, size_out);
}

static inline int faulty_reader_open(brt_blob_reader **out, brt_blobstore *bs, const char *key, uint64_t offset)
{
	brt_blobstore *inner = ((faulty_store *)bs)->inner;
	return inner->reader_open(out, inner, key, offset);
}

static inline int faulty_open_fd(int *fd_out, brt_blobstore *bs, const char *key)
{
	brt_blobstore *inner = ((faulty_store *)bs)->inner;
	return inner->open_fd(fd_out, inner, key);
}

static inline int faulty_upload_remove(brt_blobstore *bs, const char *upload_id)
{
	brt_blobstore *inner = ((faulty_store *)bs)->inner;
	return inner->upload_remove(inner, upload_id);
}

static inline int faulty_remove(brt_blobstore *bs, const char *key)
{
	brt_blobstore *inner = ((faulty_store *)bs)->inner;
	return inner->remove(inner, key);
}

static inline int faulty_move(brt_blobstore *bs, const char *from, const char *to)
{
	brt_blobstore *inner = ((faulty_store *)bs)->inner;
	return inner->move(inner, from, to);
}

static inline int faulty_upload_list(brt_blobstore *bs,
				     int (*cb)(const char *upload_id, uint64_t size, int64_t mtime_ms, void *payload),
				     void *payload)
{
	brt_blobstore *inner = ((faulty_store *)bs)->inner;
	return inner->upload_list(inner, cb, payload);
}

static inline int faulty_list(brt_blobstore *bs, int (*cb)(const char *key, uint64_t size, void *payload),
			      void *payload)
{
	brt_blobstore *inner = ((faulty_store *)bs)->inner;
	return inner->list(inner, cb, payload);
}

static inline void faulty_free(brt_blobstore *bs)
{
	free(bs);
}

/* Wrap `inner` (borrowed; must outlive the wrapper) with no faults
 * configured.  Free with ->base.free(). */
static inline int faulty_store_new(faulty_store **out, brt_blobstore *inner)
{
	faulty_store *fs;

	*out = NULL;
	if (!(fs = calloc(1, sizeof(*fs))))
		return brt_error_set(BRT_ENOMEM, "faulty store: out of memory");
	fs->inner = inner;
	fs->error_code = BRT_EIO;
	atomic_init(&fs->appends, 0);
	atomic_init(&fs->syncs, 0);
	atomic_init(&fs->commits, 0);
	atomic_init(&fs->faults, 0);
	fs->base.version = BRT_BLOBSTORE_VERSION;
	fs->base.name = "faulty";
	fs->base.stat = faulty_stat;
	fs->base.reader_open = faulty_reader_open;
	/* Keep "not supported" visible through the wrapper. */
	fs->base.open_fd = inner->open_fd ? faulty_open_fd : NULL;
	fs->base.writer_open = faulty_writer_open;
	fs->base.upload_remove = faulty_upload_remove;
	fs->base.remove = faulty_remove;
	fs->base.move = faulty_move;
	fs->base.list = faulty_list;
	fs->base.free = faulty_free;
	fs->base.upload_list = faulty_upload_list;
	*out = fs;
	return 0;
}

/* Reset counters and faults (between test cases). */
static inline void faulty_store_reset(faulty_store *fs)
{
	fs->error_code = BRT_EIO;
	fs->fail_append_at = fs->fail_sync_at = fs->fail_commit_at = 0;
	fs->persistent = fs->partial_append = fs->commit_after = 0;
	atomic_store(&fs->appends, 0);
	atomic_store(&fs->syncs, 0);
	atomic_store(&fs->commits, 0);
	atomic_store(&fs->faults, 0);
}

#endif
