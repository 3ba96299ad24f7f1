/* The blob store interface: where blob bytes live.
 *
 * A driver fills a `brt_blobstore` (which it embeds as the first member of
 * its own struct) and hands it out through its open function; callers get
 * stores through brt_blobstore_open(), which checks the version and the
 * required slots once, and call slots through the brt_blobstore_<slot>()
 * wrappers, which answer BRT_EUNSUPPORTED for an optional slot a driver
 * leaves NULL.
 *
 * Objects are addressed by a storage key, a relative path of the form
 * "<alg>/<first two hex>/<hex>" produced by brt_blob_key(), or with a
 * ".<suffix>" of its own (brt_blob_key_unique()); drivers never
 * see client input directly.  Upload data is addressed by an upload id
 * (32 lower-case hex chars, produced by the server).
 *
 * Uploads need no locks across requests (a driver may use its own to
 * extend a piece in place) and never truncate acknowledged data.  An
 * upload's acknowledged state lives in its session row: the offset and an
 * opaque *backend state* (at most BRT_BACKEND_STATE_MAX bytes) that only
 * the driver interprets, e.g. a list of segment files or of multipart
 * parts and ETags.  A request
 * that continues an upload opens an *attempt* at that state; the attempt
 * writes only new, private data, makes it durable and describes the upload
 * with its data as a new backend state.  The caller stores that state with
 * a compare-and-swap on the row; only then does the attempt's data belong
 * to the upload (adopt).  An attempt freed without adopt drops its data,
 * so racing attempts on one upload never touch what another one wrote or
 * what was acknowledged.  Commit publishes the data a backend state
 * describes under a key.
 *
 * Hashing happens in the core (storage/blob_upload.c), not in drivers. */
#ifndef BRT_BLOBSTORE_H
#define BRT_BLOBSTORE_H

#include <stddef.h>
#include <stdint.h>

#define BRT_BLOBSTORE_VERSION 4
#define BRT_BLOB_KEY_MAX 160
#define BRT_UPLOAD_ID_LEN 32
/* Largest backend state a driver may produce (it lives in a row). */
#define BRT_BACKEND_STATE_MAX ((size_t)1 << 20)

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

/* One attempt to extend an upload (see the top of the file).  Nothing it
 * does is visible to other attempts or changes acknowledged data. */
struct brt_blob_writer {
	/* The upload's size with this attempt's data: the offset it was
	 * opened at plus every byte appended. */
	uint64_t size;
	/* Append `len` bytes to the attempt's private data.  BRT_EIO on
	 * failure (the attempt is then unusable; free drops it);
	 * BRT_ETOOBIG past what the driver can hold. */
	int (*append)(brt_blob_writer *w, const void *data, size_t len);
	/* Make everything appended durable (it survives a crash of the
	 * process; a driver may leave surviving a crash of the machine to
	 * commit, if an attempt or commit at a state whose data such a crash
	 * may have lost then fails with BRT_ENOTFOUND) and point
	 * *state_out at the backend state of the upload with this attempt's
	 * data (*len_out bytes; borrowed until the next call on `w`).  An
	 * attempt that appended nothing reports the state it was opened at.
	 * BRT_EIO (the attempt is unusable), BRT_ECONFLICT if the driver sees
	 * that the upload's data was removed meanwhile (the upload ended:
	 * another request committed or removed it), BRT_ETOOBIG if the state
	 * would exceed BRT_BACKEND_STATE_MAX. */
	int (*sync)(brt_blob_writer *w, const unsigned char **state_out, size_t *len_out);
	/* The caller stored the state from the last sync (its
	 * compare-and-swap won): the attempt's data now belongs to the
	 * upload, and free keeps it. */
	void (*adopt)(brt_blob_writer *w);
	/* Close.  Unless adopted, everything the attempt wrote is dropped (a
	 * lost race, an error, a client gone); acknowledged data never is. */
	void (*free)(brt_blob_writer *w);
	/* Optional: a new read-only descriptor (the caller owns it) of the
	 * attempt's own data, its first byte at file offset 0, for readers
	 * that follow the data while it is appended (pread up to what was
	 * appended; appends go on meanwhile).  The bytes stay readable
	 * through it after commit or free.  BRT_ENOTFOUND while nothing was
	 * appended.  Called by the thread that appends. */
	int (*data_fd)(brt_blob_writer *w, int *fd_out);
	/* Optional (NULL: a driver whose adopt removes nothing): the caller
	 * does not know whether it stored the state from the last sync (the
	 * database lost the connection while it committed).  free then
	 * removes nothing: not the attempt's data (the row may name it now)
	 * and not what the previous state named (the row may name that
	 * still); the janitor's prune takes whichever the row does not name
	 * once it is old. */
	void (*keep)(brt_blob_writer *w);
};

/* Called once per upload that has data in the store: its id, the bytes
 * it holds (all pieces, adopted or not) and its last write (ms since the
 * epoch).  A non-zero return stops the walk and is returned. */
typedef int (*brt_upload_list_cb)(const char *upload_id, uint64_t size, int64_t mtime_ms, void *payload);

/* Called once per committed object: its key (borrowed for the call), its
 * size and when it was last published (committed or copied; ms since the
 * epoch), however old its bytes. */
typedef int (*brt_object_list_cb)(const char *key, uint64_t size, int64_t changed_ms, void *payload);

struct brt_blobstore {
	unsigned int version; /* BRT_BLOBSTORE_VERSION the driver was built for */
	const char *name;     /* driver name for logs, e.g. "filesystem" */

	/* Required.  Size of the committed object `key`.  BRT_ENOTFOUND if
	 * absent. */
	int (*stat)(brt_blobstore *bs, const char *key, uint64_t *size_out);

	/* Required.  Open `key` for reading from `offset`.  BRT_ENOTFOUND if
	 * absent; BRT_ERANGE if offset is past the end. */
	int (*reader_open)(brt_blob_reader **out, brt_blobstore *bs, const char *key, uint64_t offset);

	/* Optional: a read-only file descriptor of `key` for zero-copy
	 * sending, and the object's size (`size_out` may be NULL).  The caller
	 * owns and closes the descriptor.  BRT_ENOTFOUND if absent. */
	int (*open_fd)(int *fd_out, uint64_t *size_out, brt_blobstore *bs, const char *key);

	/* Required.  Open an attempt that continues upload `upload_id` at its
	 * acknowledged state: `offset` bytes described by `state` (`state_len`
	 * bytes; 0 for an upload that has no data yet).  Writes nothing yet.
	 * BRT_EINVALID if the state is malformed or does not describe exactly
	 * `offset` bytes; BRT_ENOTFOUND if the driver can tell that data the
	 * state names is gone (a driver need not look). */
	int (*writer_open)(brt_blob_writer **out, brt_blobstore *bs, const char *upload_id, uint64_t offset,
			   const unsigned char *state, size_t state_len);

	/* Required.  Publish the `size` bytes that `state` describes for
	 * upload `upload_id` as object `key`, atomically and durably: readers
	 * see no object or the whole object.  The caller verified the digest
	 * and owns the upload (no attempt can be adopted any more).  If `key`
	 * exists with the same size the upload's data is dropped and 0 is
	 * returned (blobs are content-addressed); an existing object of
	 * another size is corrupt and is replaced atomically.  On success the
	 * upload's data is gone.  On failure nothing is published and the
	 * data is still there for another commit, except BRT_ENOTFOUND: data
	 * the state names is gone (the upload cannot be finished).
	 * BRT_EINVALID if the state does not describe `size` bytes. */
	int (*commit)(brt_blobstore *bs, const char *upload_id, const unsigned char *state, size_t state_len,
		      uint64_t size, const char *key);

	/* Required.  Discard all data of an upload: what `state` describes
	 * and, where the driver can find them, pieces of attempts that were
	 * never adopted.  0 if there was none.  The caller has ended the
	 * session (or there never was one). */
	int (*upload_remove)(brt_blobstore *bs, const char *upload_id, const unsigned char *state,
			     size_t state_len);

	/* Required.  Remove a committed object; BRT_ENOTFOUND if absent. */
	int (*remove)(brt_blobstore *bs, const char *key);

	/* Required.  Publish the bytes of committed object `from` under `to`
	 * too (atomically, as commit does), leaving `from` in place.
	 * BRT_ENOTFOUND if `from` is absent, BRT_EEXISTS if `to` exists.  A
	 * move is a copy and then a remove. */
	int (*copy)(brt_blobstore *bs, const char *from, const char *to);

	/* Required.  Call `cb` for every committed object key (borrowed for
	 * the call only), in no particular order; a non-zero return from `cb`
	 * stops the walk and is returned. */
	int (*list)(brt_blobstore *bs, int (*cb)(const char *key, uint64_t size, void *payload),
		    void *payload);

	/* Required.  Release the store and everything it holds. */
	void (*free)(brt_blobstore *bs);

	/* Optional: call `cb` for the data of every upload in the store, in
	 * no particular order, for sweeping data no session owns.  Drivers
	 * that cannot enumerate uploads (object stores without listing) leave
	 * that to the store's own expiry rules. */
	int (*upload_list)(brt_blobstore *bs, brt_upload_list_cb cb, void *payload);

	/* Optional: remove the pieces of upload `upload_id` that `keep` (its
	 * session's current backend state, `keep_len` bytes; 0 for none) does
	 * not name and that were last written before `before_ms` (ms since
	 * the epoch): what attempts that were never adopted left behind (a
	 * crash, a kill -9), including bytes past the named length of a piece
	 * `keep` names.  *removed_out counts the pieces removed or cut.
	 * BRT_EINVALID if `keep` is malformed (nothing is removed then). */
	int (*upload_prune)(unsigned long *removed_out, brt_blobstore *bs, const char *upload_id,
			    const unsigned char *keep, size_t keep_len, int64_t before_ms);

	/* Optional: `list` with each object's publication time, for the
	 * collector's orphan scan (objects stored but never recorded, from a
	 * crash between commit and link, are taken only once older than the
	 * grace period). */
	int (*list_dated)(brt_blobstore *bs, brt_object_list_cb cb, void *payload);

	/* Since version 4. */

	/* The smallest chunk (bytes) the store takes without extra cost,
	 * e.g. the part size of a multipart upload; 0 for none.  Clients are
	 * told so (OCI-Chunk-Min-Length); smaller chunks still work. */
	uint64_t chunk_min;

	/* Optional: the key (BRT_BLOB_KEY_MAX bytes into `key_out`) that
	 * `commit` publishes upload `upload_id` under without copying data:
	 * unique to the upload id, valid as a key, and no other upload's.
	 * Stores whose upload data already lives at its final home (an object
	 * store's multipart upload) have it; committing to another key then
	 * costs a server-side copy.  BRT_EINVALID for a malformed id. */
	int (*upload_key)(brt_blobstore *bs, const char *upload_id, char *key_out);

	/* Optional: a URL (NUL-terminated, into `url_out` of `cap` bytes)
	 * from which anyone holding it can GET committed object `key` for
	 * `ttl_seconds`, without other credentials.  Nothing is checked
	 * against the store: an absent key gives a URL that answers 404.
	 * BRT_EINVALID for a bad key or a TTL the store refuses, BRT_ETOOBIG
	 * if `cap` is too small. */
	int (*presign)(brt_blobstore *bs, const char *key, unsigned int ttl_seconds, char *url_out,
		       size_t cap);

	/* 1 if adopt removes pieces that only the previous backend state
	 * named (an object store replaces its tail object): the row update
	 * before adopt must then survive a crash of the database, or the row
	 * could come back naming what is gone. */
	int adopt_replaces;
};

/* Open a store with driver `driver` ("filesystem") at `location` (for the
 * filesystem: the root directory).  BRT_ENOTFOUND for an unknown driver;
 * BRT_EINVALID if the driver was built for another interface version or
 * lacks a required slot; errors of the driver's open pass up. */
int brt_blobstore_open(brt_blobstore **out, const char *driver, const char *location);

/* Check that `bs` has this interface's version and every required slot;
 * BRT_EINVALID if not. */
int brt_blobstore_check(const brt_blobstore *bs);

/* The slots, called through the store; an optional slot the driver does
 * not have answers BRT_EUNSUPPORTED. */
int brt_blobstore_stat(brt_blobstore *bs, const char *key, uint64_t *size_out);
int brt_blobstore_reader_open(brt_blob_reader **out, brt_blobstore *bs, const char *key, uint64_t offset);
int brt_blobstore_open_fd(int *fd_out, uint64_t *size_out, brt_blobstore *bs, const char *key);
int brt_blobstore_writer_open(brt_blob_writer **out, brt_blobstore *bs, const char *upload_id,
			      uint64_t offset, const unsigned char *state, size_t state_len);
int brt_blobstore_commit(brt_blobstore *bs, const char *upload_id, const unsigned char *state,
			 size_t state_len, uint64_t size, const char *key);
int brt_blobstore_upload_remove(brt_blobstore *bs, const char *upload_id, const unsigned char *state,
				size_t state_len);
int brt_blobstore_remove(brt_blobstore *bs, const char *key);
int brt_blobstore_copy(brt_blobstore *bs, const char *from, const char *to);
int brt_blobstore_list(brt_blobstore *bs, int (*cb)(const char *key, uint64_t size, void *payload),
		       void *payload);
int brt_blobstore_upload_list(brt_blobstore *bs, brt_upload_list_cb cb, void *payload);
int brt_blobstore_upload_prune(unsigned long *removed_out, brt_blobstore *bs, const char *upload_id,
			       const unsigned char *keep, size_t keep_len, int64_t before_ms);
int brt_blobstore_list_dated(brt_blobstore *bs, brt_object_list_cb cb, void *payload);
int brt_blobstore_upload_key(brt_blobstore *bs, const char *upload_id, char *key_out);
int brt_blobstore_presign(brt_blobstore *bs, const char *key, unsigned int ttl_seconds, char *url_out,
			  size_t cap);
/* Accepts NULL. */
void brt_blobstore_free(brt_blobstore *bs);

/* The writer's optional data_fd slot; BRT_EUNSUPPORTED without it. */
int brt_blob_writer_data_fd(brt_blob_writer *w, int *fd_out);

/* Write the storage key of `digest_str` ("sha256:<hex>") into `out`
 * (at least BRT_BLOB_KEY_MAX bytes).  The digest must be validated. */
void brt_blob_key(char *out, const char *digest_str);

/* A key of its own for one stored copy of `digest_str`:
 * "<alg>/<xx>/<hex>.<16 random hex>", so that a new copy never lands on
 * one awaiting deletion.  BRT_EIO if no randomness is to be had. */
int brt_blob_key_unique(char *out, const char *digest_str);

/* Whether `key` is a valid storage key: relative, components of
 * [a-z0-9.] not starting with '.', joined by single '/', shorter than
 * BRT_BLOB_KEY_MAX.  BRT_EINVALID naming the problem if not. */
int brt_blob_key_check(const char *key);

/* Whether `id` is an upload id (BRT_UPLOAD_ID_LEN lower-case hex
 * characters); BRT_EINVALID if not. */
int brt_upload_id_check(const char *id);

/* The filesystem driver: objects under ROOT/blobs/<key>, the data of an
 * upload as segment files under ROOT/uploads/<id>/.  Creates the
 * directories.  BRT_EIO on failure. */
int brt_blobstore_fs_open(brt_blobstore **out, const char *root);

#endif
