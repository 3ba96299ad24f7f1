/* The blob store interface: where blob bytes live.
 *
 * A driver fills a `brt_blobstore` (which it embeds as the first member of
 * its own struct) and hands it out through its open function.  The struct
 * is versioned and only ever grows by appending slots; a NULL slot means
 * "not supported" and the core falls back (e.g. no open_fd: stream through
 * a reader instead of zero-copy).
 *
 * Objects are addressed by a storage key, a relative path of the form
 * "<alg>/<first two hex>/<hex>" produced by brt_blob_key(); drivers never
 * see client input directly.  Upload data is addressed by an upload id
 * (32 lower-case hex chars, produced by the server).
 *
 * Hashing happens in the core (storage/blob_upload.c), not in drivers: a
 * driver writer only appends bytes, makes them durable, and commits them
 * under a key. */
#ifndef BRT_BLOBSTORE_H
#define BRT_BLOBSTORE_H

#include <stddef.h>
#include <stdint.h>

#define BRT_BLOBSTORE_VERSION 2
#define BRT_BLOB_KEY_MAX 160
#define BRT_UPLOAD_ID_LEN 32

typedef struct brt_blobstore brt_blobstore;
typedef struct brt_blob_reader brt_blob_reader;
typedef struct brt_blob_writer brt_blob_writer;

/* A sequential reader over one object, from an offset. */
struct brt_blob_reader {
	/* Read up to `len` bytes; *read_out = 0 at end of object. */
	int (*read)(brt_blob_reader *r, void *buf, size_t len, size_t *read_out);
	/* Close and free; accepts a reader in any state. */
	void (*free)(brt_blob_reader *r);
};

/* An append-only writer for the data of one upload session. */
struct brt_blob_writer {
	/* Bytes stored for this upload so far (including earlier sessions). */
	uint64_t size;
	/* Append `len` bytes.  BRT_EIO on failure (the writer is then unusable;
	 * what was made durable before stays). */
	int (*append)(brt_blob_writer *w, const void *data, size_t len);
	/* Make everything appended so far durable (survives a crash). */
	int (*sync)(brt_blob_writer *w);
	/* Make the data durable and publish it atomically as object `key`.
	 * The caller has verified the data's digest.  If `key` already exists
	 * with the same size the data is dropped and 0 is returned (blobs are
	 * content-addressed); an existing object of another size is corrupt
	 * and is replaced atomically by the verified data.  Afterwards the
	 * upload's data is gone; only free() may follow. */
	int (*commit)(brt_blob_writer *w, const char *key);
	/* Close.  Data not committed stays for a later writer_open of the same
	 * upload id unless upload_remove is called; but a writer whose append
	 * or sync failed drops what it appended after its last successful
	 * sync (never acknowledged, and on a full disk the space others need). */
	void (*free)(brt_blob_writer *w);
	/* Discard stored data past `offset` (a tail that was appended but
	 * never acknowledged) so the next append lands at `offset`; the
	 * caller must have read the acknowledged offset after writer_open
	 * returned, so no acknowledged byte is ever cut.  BRT_ERANGE if fewer
	 * than `offset` bytes are stored (nothing changes then). */
	int (*rewind)(brt_blob_writer *w, uint64_t offset);
};

struct brt_blobstore {
	unsigned int version; /* BRT_BLOBSTORE_VERSION the driver was built for */
	const char *name;     /* driver name for logs, e.g. "filesystem" */

	/* Size of the committed object `key`.  BRT_ENOTFOUND if absent. */
	int (*stat)(brt_blobstore *bs, const char *key, uint64_t *size_out);

	/* Open `key` for reading from `offset`.  BRT_ENOTFOUND if absent;
	 * BRT_ERANGE if offset is past the end. */
	int (*reader_open)(brt_blob_reader **out, brt_blobstore *bs, const char *key, uint64_t offset);

	/* Optional: a read-only file descriptor for zero-copy sending.  The
	 * caller owns and closes it. BRT_ENOTFOUND if absent. */
	int (*open_fd)(int *fd_out, brt_blobstore *bs, const char *key);

	/* Take exclusive use of an upload's data (created empty if absent)
	 * against every other writer in any process, and change nothing else:
	 * w->size is what is stored, possibly with a tail that was never
	 * acknowledged.  The caller reads the acknowledged offset only now
	 * (a value read before could be stale) and calls rewind() before the
	 * first append.  BRT_ECONFLICT if another writer has the upload. */
	int (*writer_open)(brt_blob_writer **out, brt_blobstore *bs, const char *upload_id);

	/* Discard an upload's data; 0 if there was none. */
	int (*upload_remove)(brt_blobstore *bs, const char *upload_id);

	/* Remove a committed object; BRT_ENOTFOUND if absent. */
	int (*remove)(brt_blobstore *bs, const char *key);

	/* Atomically rename a committed object; BRT_ENOTFOUND if `from` is
	 * absent, BRT_EEXISTS if `to` exists. */
	int (*move)(brt_blobstore *bs, const char *from, const char *to);

	/* Call `cb` for every committed object key (borrowed for the call
	 * only), in no particular order;
	 * a non-zero return from `cb` stops the walk and is returned. */
	int (*list)(brt_blobstore *bs, int (*cb)(const char *key, uint64_t size, void *payload), void *payload);

	/* Release the store and everything it holds. */
	void (*free)(brt_blobstore *bs);

	/* --- version 2 --- */

	/* Call `cb` for the data of every unfinished upload: its id, stored
	 * size and last modification (ms since the epoch), in no particular
	 * order; a non-zero return from `cb` stops the walk and is returned.
	 * For sweeping data no session owns. */
	int (*upload_list)(brt_blobstore *bs,
			   int (*cb)(const char *upload_id, uint64_t size, int64_t mtime_ms, void *payload),
			   void *payload);
};

/* writer_open, then rewind to `offset`; on failure nothing is open. */
int brt_blobstore_writer_open_at(brt_blob_writer **out, brt_blobstore *bs, const char *upload_id,
				 uint64_t offset);

/* Write the storage key of `digest_str` ("sha256:<hex>") into `out`
 * (at least BRT_BLOB_KEY_MAX bytes).  The digest must be validated. */
void brt_blob_key(char *out, const char *digest_str);

/* The filesystem driver: objects under ROOT/blobs/<key>, upload data under
 * ROOT/uploads/<id>.  Creates the directories.  BRT_EIO on failure. */
int brt_blobstore_fs_open(brt_blobstore **out, const char *root);

#endif
