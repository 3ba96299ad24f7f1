/* The filesystem blob store driver.  Objects live at ROOT/blobs/<key>, the
 * data of unfinished uploads at ROOT/uploads/<upload id>.  An upload file
 * is appended to in place, made durable with fdatasync, and published by
 * renaming it into blobs/ without replacing anything (so a concurrent
 * commit of the same content dedupes instead of clobbering), after which
 * both directories are fsynced so the rename survives a crash.  All paths
 * are resolved relative to two directory descriptors opened once; the store
 * is read-only after open, so threads share it without locks. */
#include "storage/blobstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"

/* A mkdir/rename race with a concurrent remove() pruning an empty fan-out
 * directory is retried this many times. */
#define FS_PLACE_ATTEMPTS 8
/* Deepest directory nesting list() descends into. */
#define FS_LIST_DEPTH_MAX 32

typedef struct fs_store {
	brt_blobstore base;
	int blobs_fd;
	int uploads_fd;
} fs_store;

typedef struct fs_writer {
	brt_blob_writer base;
	fs_store *fs;
	int fd;
	/* The file may be new and its directory entry not yet durable: the
	 * first sync also fsyncs uploads/ (see fs_writer_rewind). */
	int dir_sync_pending;
	int failed;    /* an append or sync failed: the writer is unusable */
	int committed; /* commit succeeded: only free may follow */
	/* Data up to here was there at open (or rewind) or made durable by
	 * a sync: a failed writer is cut back to it when freed. */
	uint64_t synced_size;
	uint64_t writeback_from; /* data before this offset is being written back */
	/* The file locked at open, to tell it from a later one of that name. */
	dev_t dev;
	ino_t ino;
	char upload_id[BRT_UPLOAD_ID_LEN + 1];
} fs_writer;

/* Start writeback of dirty upload data every this many bytes, so the disk
 * works while the rest of the body is still arriving and the fdatasync at
 * commit has little left to do. */
#define WRITEBACK_STEP ((uint64_t)8 << 20)

typedef struct fs_reader {
	brt_blob_reader base;
	int fd;
	char key[BRT_BLOB_KEY_MAX];
} fs_reader;

/* Error details name the upload id or key, never the absolute path: the
 * API layer may show them to clients. */
static int fs_io_error(int errnum, const char *what, const char *name)
{
	char buf[128];

	return brt_error_set(BRT_EIO, "blob store: %s %s: %s", what, name,
			     strerror_r(errnum, buf, sizeof(buf)));
}

static int is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Keys are relative paths of [a-z0-9]+ components joined by single '/'.
 * Excluding '.' rules out "..", "." and hidden temp names outright. */
static int check_key(const char *key)
{
	size_t len = 0;
	int at_component_start = 1;

	if (!key)
		return brt_error_set(BRT_EINVALID, "blob store: missing key");
	for (; key[len] != '\0'; len++) {
		if (len + 1 >= BRT_BLOB_KEY_MAX)
			return brt_error_set(BRT_EINVALID, "blob store: key too long");
		if (key[len] == '/') {
			if (at_component_start)
				return brt_error_set(BRT_EINVALID, "blob store: key has an empty path component");
			at_component_start = 1;
		} else if (is_key_char(key[len])) {
			at_component_start = 0;
		} else {
			return brt_error_set(BRT_EINVALID, "blob store: key has a character outside [a-z0-9/]");
		}
	}
	if (at_component_start)
		return brt_error_set(BRT_EINVALID, "blob store: key is empty or ends with '/'");
	return 0;
}

static int check_upload_id(const char *id)
{
	size_t i;

	if (!id)
		return brt_error_set(BRT_EINVALID, "blob store: missing upload id");
	for (i = 0; i < BRT_UPLOAD_ID_LEN; i++) {
		char c = id[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return brt_error_set(BRT_EINVALID, "blob store: upload id must be %d lower-case hex characters",
					     BRT_UPLOAD_ID_LEN);
	}
	if (id[i] != '\0')
		return brt_error_set(BRT_EINVALID, "blob store: upload id must be %d lower-case hex characters",
				     BRT_UPLOAD_ID_LEN);
	return 0;
}

/* Copy the directory part of a valid `key` into `dir`; 0 if it has none. */
static int key_parent(char *dir, const char *key)
{
	const char *slash = strrchr(key, '/');
	size_t len;

	if (!slash)
		return 0;
	len = (size_t)(slash - key);
	memcpy(dir, key, len);
	dir[len] = '\0';
	return 1;
}

static int fsync_fd_dir(int fd, const char *name)
{
	/* Some filesystems cannot fsync directories and say EINVAL; there is
	 * nothing better to do there. */
	if (fsync(fd) != 0 && errno != EINVAL)
		return fs_io_error(errno, "fsync directory of", name);
	return 0;
}

/* fsync the directory holding `key` (blobs/ itself for a top-level key). */
static int fsync_key_parent(fs_store *fs, const char *key)
{
	char dir[BRT_BLOB_KEY_MAX];
	int fd, error;

	if (!key_parent(dir, key))
		return fsync_fd_dir(fs->blobs_fd, key);
	fd = openat(fs->blobs_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* Gone means a concurrent remove() pruned it once empty: there is
	 * no entry left in it to make durable. */
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return fs_io_error(errno, "open directory of", key);
	error = fsync_fd_dir(fd, key);
	close(fd);
	return error;
}

/* mkdir -p for the directories of `key` below blobs/.  A directory made
 * here is only durable once its own parent is fsynced. */
static int make_key_parents(fs_store *fs, const char *key)
{
	char dir[BRT_BLOB_KEY_MAX];
	size_t i;
	int error;

	for (i = 0; key[i] != '\0'; i++) {
		if (key[i] != '/')
			continue;
		memcpy(dir, key, i);
		dir[i] = '\0';
		if (mkdirat(fs->blobs_fd, dir, 0755) == 0) {
			if ((error = fsync_key_parent(fs, dir)) < 0)
				return error;
		} else if (errno != EEXIST) {
			return fs_io_error(errno, "create directory for", key);
		}
	}
	return 0;
}

/* rename without replacing an existing target; -1 with errno on failure.
 * Filesystems without RENAME_NOREPLACE still refuse to link() over an
 * existing name, which gives the same guarantee in two steps. */
static int rename_noreplace(int from_dirfd, const char *from, int to_dirfd, const char *to)
{
	if (renameat2(from_dirfd, from, to_dirfd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return -1;
	if (linkat(from_dirfd, from, to_dirfd, to, 0) != 0)
		return -1;
	return unlinkat(from_dirfd, from, 0);
}

/* Move `from` (relative to from_dirfd) to object `key`.  BRT_EEXISTS if
 * the key is taken, BRT_ENOTFOUND if `from` vanished. */
static int place_object(fs_store *fs, int from_dirfd, const char *from, const char *key)
{
	struct stat st;
	int error, attempt;

	for (attempt = 0; attempt < FS_PLACE_ATTEMPTS; attempt++) {
		if ((error = make_key_parents(fs, key)) < 0)
			return error;
		if (rename_noreplace(from_dirfd, from, fs->blobs_fd, key) == 0)
			return 0;
		if (errno == EEXIST)
			return brt_error_set(BRT_EEXISTS, "blob store: %s exists", key);
		if (errno != ENOENT)
			return fs_io_error(errno, "rename to", key);
		/* Either the source is gone or remove() pruned the fan-out
		 * directory between our mkdir and the rename. */
		if (fstatat(from_dirfd, from, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
			return brt_error_set(BRT_ENOTFOUND, "blob store: source of %s vanished", key);
	}
	return brt_error_set(BRT_EIO, "blob store: directory of %s keeps disappearing", key);
}

static int fs_stat(brt_blobstore *bs, const char *key, uint64_t *size_out)
{
	fs_store *fs = (fs_store *)bs;
	struct stat st;
	int error;

	*size_out = 0;
	if ((error = check_key(key)) < 0)
		return error;
	if (fstatat(fs->blobs_fd, key, &st, 0) != 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", key);
		return fs_io_error(errno, "stat", key);
	}
	/* A fan-out directory is not an object. */
	if (!S_ISREG(st.st_mode))
		return brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", key);
	*size_out = (uint64_t)st.st_size;
	return 0;
}

/* Open object `key` read-only and fstat it; BRT_ENOTFOUND if absent. */
static int open_object(int *fd_out, struct stat *st, fs_store *fs, const char *key)
{
	int fd, error = 0;

	*fd_out = -1;
	memset(st, 0, sizeof(*st));
	if ((error = check_key(key)) < 0)
		return error;
	fd = openat(fs->blobs_fd, key, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", key);
		return fs_io_error(errno, "open", key);
	}
	if (fstat(fd, st) != 0) {
		error = fs_io_error(errno, "stat", key);
		goto done;
	}
	if (!S_ISREG(st->st_mode)) {
		error = brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", key);
		goto done;
	}
	*fd_out = fd;
	fd = -1;
done:
	if (fd >= 0)
		close(fd);
	return error;
}

static int fs_reader_read(brt_blob_reader *r, void *buf, size_t len, size_t *read_out)
{
	fs_reader *reader = (fs_reader *)r;
	ssize_t n;

	*read_out = 0;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	do {
		n = read(reader->fd, buf, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return fs_io_error(errno, "read", reader->key);
	*read_out = (size_t)n;
	return 0;
}

static void fs_reader_free(brt_blob_reader *r)
{
	fs_reader *reader = (fs_reader *)r;

	if (!reader)
		return;
	if (reader->fd >= 0)
		close(reader->fd);
	free(reader);
}

static int fs_reader_open(brt_blob_reader **out, brt_blobstore *bs, const char *key, uint64_t offset)
{
	fs_reader *reader = NULL;
	struct stat st;
	int fd = -1, error = 0;

	*out = NULL;
	if ((error = open_object(&fd, &st, (fs_store *)bs, key)) < 0)
		goto done;
	if (offset > (uint64_t)st.st_size) {
		error = brt_error_set(BRT_ERANGE, "blob store: offset %llu is past the end of %s",
				      (unsigned long long)offset, key);
		goto done;
	}
	if (lseek(fd, (off_t)offset, SEEK_SET) < 0) {
		error = fs_io_error(errno, "seek in", key);
		goto done;
	}
	if (!(reader = calloc(1, sizeof(*reader)))) {
		error = brt_error_set(BRT_ENOMEM, "blob store: out of memory");
		goto done;
	}
	reader->base.read = fs_reader_read;
	reader->base.free = fs_reader_free;
	reader->fd = fd;
	/* check_key bounded the length. */
	memcpy(reader->key, key, strlen(key) + 1);
	fd = -1;
	*out = &reader->base;
done:
	if (fd >= 0)
		close(fd);
	return error;
}

static int fs_open_fd(int *fd_out, brt_blobstore *bs, const char *key)
{
	struct stat st;

	return open_object(fd_out, &st, (fs_store *)bs, key);
}

static int fs_writer_append(brt_blob_writer *w, const void *data, size_t len)
{
	fs_writer *writer = (fs_writer *)w;
	const unsigned char *p = data;
	size_t left = len;
	uint64_t new_size;

	if (writer->failed || writer->committed)
		return brt_error_set(BRT_EIO, "blob store: upload %s: writer is no longer usable", writer->upload_id);
	if (__builtin_add_overflow(w->size, (uint64_t)len, &new_size) || new_size > (uint64_t)INT64_MAX)
		return brt_error_set(BRT_ETOOBIG, "blob store: upload %s would exceed the maximum file size",
				     writer->upload_id);
	while (left > 0) {
		ssize_t n = write(writer->fd, p, left > SSIZE_MAX ? SSIZE_MAX : left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* A partial tail may be on disk; it was never
			 * acknowledged and free() cuts it off. */
			writer->failed = 1;
			return fs_io_error(n < 0 ? errno : EIO, "write upload", writer->upload_id);
		}
		p += n;
		left -= (size_t)n;
	}
	w->size = new_size;
	if (new_size - writer->writeback_from >= WRITEBACK_STEP) {
		/* Only a hint: errors surface at the fdatasync that follows. */
		(void)sync_file_range(writer->fd, (off64_t)writer->writeback_from,
				      (off64_t)(new_size - writer->writeback_from), SYNC_FILE_RANGE_WRITE);
		writer->writeback_from = new_size;
	}
	return 0;
}

static int fs_writer_sync(brt_blob_writer *w)
{
	fs_writer *writer = (fs_writer *)w;
	int error;

	if (writer->failed || writer->committed)
		return brt_error_set(BRT_EIO, "blob store: upload %s: writer is no longer usable", writer->upload_id);
	if (fdatasync(writer->fd) != 0) {
		/* After a failed fsync the page cache may have dropped the
		 * dirty pages, so a retry could falsely succeed. */
		writer->failed = 1;
		return fs_io_error(errno, "sync upload", writer->upload_id);
	}
	if (writer->dir_sync_pending) {
		if ((error = fsync_fd_dir(writer->fs->uploads_fd, writer->upload_id)) < 0) {
			writer->failed = 1;
			return error;
		}
		writer->dir_sync_pending = 0;
	}
	writer->synced_size = w->size;
	return 0;
}

/* Put the verified upload data over object `key`, whose size `found` is
 * wrong, in one atomic rename: readers see the old file or the new one. */
static int replace_corrupt(fs_store *fs, fs_writer *writer, const char *key, uint64_t found)
{
	brt_log_warn("blob store: %s has %llu bytes, not the %llu of its verified content: replacing it", key,
		     (unsigned long long)found, (unsigned long long)writer->base.size);
	if (renameat(fs->uploads_fd, writer->upload_id, fs->blobs_fd, key) != 0)
		return fs_io_error(errno, "replace", key);
	return 0;
}

static int fs_writer_commit(brt_blob_writer *w, const char *key)
{
	fs_writer *writer = (fs_writer *)w;
	fs_store *fs = writer->fs;
	struct stat st;
	int error = 0;

	if (writer->committed)
		return brt_error_set(BRT_EINVALID, "blob store: upload %s is already committed", writer->upload_id);
	if (writer->failed)
		return brt_error_set(BRT_EIO, "blob store: upload %s: writer is no longer usable", writer->upload_id);
	if ((error = check_key(key)) < 0)
		return error;
	if (fdatasync(writer->fd) != 0) {
		writer->failed = 1;
		return fs_io_error(errno, "sync upload", writer->upload_id);
	}

	/* Content-addressed: an existing object of the same size holds these
	 * bytes.  One of another size is not what its key says (a torn or
	 * tampered file): the data here was verified, so it takes its place. */
	if (fstatat(fs->blobs_fd, key, &st, 0) == 0 && S_ISREG(st.st_mode)) {
		if ((uint64_t)st.st_size == w->size)
			goto drop_upload;
		if ((error = replace_corrupt(fs, writer, key, (uint64_t)st.st_size)) < 0)
			return error;
	} else {
		error = place_object(fs, fs->uploads_fd, writer->upload_id, key);
		if (error == BRT_EEXISTS) {
			/* Another commit won the race: check it the same way. */
			if (fstatat(fs->blobs_fd, key, &st, 0) != 0 || !S_ISREG(st.st_mode))
				return brt_error_set(BRT_EIO, "blob store: %s exists but is not an object", key);
			brt_error_clear();
			error = 0;
			if ((uint64_t)st.st_size == w->size)
				goto drop_upload;
			error = replace_corrupt(fs, writer, key, (uint64_t)st.st_size);
		}
		if (error == BRT_ENOTFOUND)
			error = brt_error_set(BRT_EIO, "blob store: data of upload %s vanished", writer->upload_id);
		if (error < 0)
			return error;
	}

	writer->committed = 1;
	/* Objects never change once published; the mode records that
	 * (best effort: the object is already there). */
	(void)fchmod(writer->fd, 0444);
	if ((error = fsync_key_parent(fs, key)) < 0)
		goto done;
	error = fsync_fd_dir(fs->uploads_fd, writer->upload_id);
	goto done;

drop_upload:
	writer->committed = 1;
	if (unlinkat(fs->uploads_fd, writer->upload_id, 0) != 0 && errno != ENOENT)
		error = fs_io_error(errno, "remove upload", writer->upload_id);
done:
	close(writer->fd);
	writer->fd = -1;
	return error;
}

static void fs_writer_free(brt_blob_writer *w)
{
	fs_writer *writer = (fs_writer *)w;
	struct stat st;
	uint64_t stored;

	if (!writer)
		return;
	if (writer->fd >= 0) {
		/* The file holds w->size bytes (every append, rewind and
		 * truncate keeps that true) unless a failure left a tail. */
		stored = w->size;
		if (writer->failed) {
			/* What a failed append or sync left past the last synced
			 * point was never acknowledged.  Cut it now, still under
			 * the lock, rather than at the next writer_open: the
			 * session may never come back, and on a full disk those
			 * bytes are the space every other upload needs. */
			if (ftruncate(writer->fd, (off_t)writer->synced_size) == 0)
				stored = writer->synced_size;
			else
				stored = fstat(writer->fd, &st) == 0 ? (uint64_t)st.st_size : UINT64_MAX;
		}
		/* An empty upload file says nothing a session row does not, and
		 * writer_open makes a new one on demand: drop it (still under
		 * the lock) rather than leave one behind for every probe.
		 * Only if the name is still this file: after a remove without
		 * the lock (cancel), it may be another writer's by now. */
		if (stored == 0 &&
		    fstatat(writer->fs->uploads_fd, writer->upload_id, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_ino == writer->ino && st.st_dev == writer->dev)
			(void)unlinkat(writer->fs->uploads_fd, writer->upload_id, 0);
		close(writer->fd);
	}
	free(writer);
}

/* Discard the unacknowledged tail past `offset` (see blobstore.h). */
static int fs_writer_rewind(brt_blob_writer *w, uint64_t offset)
{
	fs_writer *writer = (fs_writer *)w;

	if (writer->failed || writer->committed)
		return brt_error_set(BRT_EIO, "blob store: upload %s: writer is no longer usable", writer->upload_id);
	if (offset > w->size)
		return brt_error_set(BRT_ERANGE, "blob store: upload %s has %llu bytes, cannot resume at %llu",
				     writer->upload_id, (unsigned long long)w->size, (unsigned long long)offset);
	if (offset < w->size && ftruncate(writer->fd, (off_t)offset) != 0) {
		writer->failed = 1;
		return fs_io_error(errno, "truncate upload", writer->upload_id);
	}
	/* Set before the seek: should it fail, free's cut-back must not grow
	 * the file back to a size it no longer has. */
	w->size = offset;
	writer->writeback_from = offset;
	writer->synced_size = offset;
	if (lseek(writer->fd, (off_t)offset, SEEK_SET) < 0) {
		writer->failed = 1;
		return fs_io_error(errno, "seek in upload", writer->upload_id);
	}
	/* Bytes up to an acknowledged offset were made durable by a sync that
	 * also made the file's directory entry durable: only a start from 0
	 * may be on a new file.  Resumed chunks skip the directory fsync. */
	if (offset > 0)
		writer->dir_sync_pending = 0;
	return 0;
}

static int fs_writer_open(brt_blob_writer **out, brt_blobstore *bs, const char *upload_id)
{
	fs_store *fs = (fs_store *)bs;
	fs_writer *writer = NULL;
	struct stat st, linked;
	int fd = -1, error = 0;

	*out = NULL;
	if ((error = check_upload_id(upload_id)) < 0)
		return error;
	fd = openat(fs->uploads_fd, upload_id, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return fs_io_error(errno, "open upload", upload_id);
	/* One writer per upload at a time: two requests appending to the same
	 * file would leave bytes that differ from what either one hashed.
	 * Nothing is truncated here: only the lock holder may learn the
	 * acknowledged offset and cut what lies past it. */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		error = errno == EWOULDBLOCK
				? brt_error_set(BRT_ECONFLICT, "blob store: upload %s is in use", upload_id)
				: fs_io_error(errno, "lock upload", upload_id);
		goto done;
	}
	if (fstat(fd, &st) != 0) {
		error = fs_io_error(errno, "stat upload", upload_id);
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		error = brt_error_set(BRT_EIO, "blob store: upload %s is not a regular file", upload_id);
		goto done;
	}
	/* The lock must be on the file that is still the upload's: the one
	 * opened may since have been committed (renamed into blobs/, where
	 * appending would change a published object) or removed. */
	if (fstatat(fs->uploads_fd, upload_id, &linked, AT_SYMLINK_NOFOLLOW) != 0 ||
	    linked.st_ino != st.st_ino || linked.st_dev != st.st_dev) {
		error = brt_error_set(BRT_ECONFLICT, "blob store: upload %s changed while being opened", upload_id);
		goto done;
	}
	if (!(writer = calloc(1, sizeof(*writer)))) {
		error = brt_error_set(BRT_ENOMEM, "blob store: out of memory");
		goto done;
	}
	writer->base.size = (uint64_t)st.st_size;
	writer->writeback_from = (uint64_t)st.st_size;
	writer->synced_size = (uint64_t)st.st_size;
	writer->base.append = fs_writer_append;
	writer->base.sync = fs_writer_sync;
	writer->base.commit = fs_writer_commit;
	writer->base.free = fs_writer_free;
	writer->base.rewind = fs_writer_rewind;
	writer->fs = fs;
	writer->fd = fd;
	writer->dev = st.st_dev;
	writer->ino = st.st_ino;
	writer->dir_sync_pending = 1;
	memcpy(writer->upload_id, upload_id, BRT_UPLOAD_ID_LEN + 1);
	fd = -1;
	*out = &writer->base;
done:
	if (fd >= 0)
		close(fd);
	return error;
}

static int fs_upload_remove(brt_blobstore *bs, const char *upload_id)
{
	fs_store *fs = (fs_store *)bs;
	int error;

	if ((error = check_upload_id(upload_id)) < 0)
		return error;
	if (unlinkat(fs->uploads_fd, upload_id, 0) != 0 && errno != ENOENT)
		return fs_io_error(errno, "remove upload", upload_id);
	return 0;
}

/* Drop the fan-out directory of `key` if it is now empty; a directory
 * that is not empty (or already gone) is exactly what rmdir leaves alone. */
static void prune_key_parent(fs_store *fs, const char *key)
{
	char dir[BRT_BLOB_KEY_MAX];

	if (key_parent(dir, key))
		(void)unlinkat(fs->blobs_fd, dir, AT_REMOVEDIR);
}

static int fs_remove(brt_blobstore *bs, const char *key)
{
	fs_store *fs = (fs_store *)bs;
	int error;

	if ((error = check_key(key)) < 0)
		return error;
	if (unlinkat(fs->blobs_fd, key, 0) != 0) {
		/* EISDIR/EPERM: a fan-out directory, which is not an object. */
		if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR || errno == EPERM)
			return brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", key);
		return fs_io_error(errno, "remove", key);
	}
	prune_key_parent(fs, key);
	return 0;
}

static int fs_move(brt_blobstore *bs, const char *from, const char *to)
{
	fs_store *fs = (fs_store *)bs;
	struct stat st;
	char from_dir[BRT_BLOB_KEY_MAX], to_dir[BRT_BLOB_KEY_MAX];
	int has_from_dir, has_to_dir, error;

	if ((error = check_key(from)) < 0 || (error = check_key(to)) < 0)
		return error;
	if (fstatat(fs->blobs_fd, from, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", from);
		return fs_io_error(errno, "stat", from);
	}
	if (!S_ISREG(st.st_mode))
		return brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", from);
	if ((error = place_object(fs, fs->blobs_fd, from, to)) < 0)
		return error;
	if ((error = fsync_key_parent(fs, to)) < 0)
		return error;
	/* The old name's removal must be durable too, or a crash could
	 * resurrect it. */
	has_from_dir = key_parent(from_dir, from);
	has_to_dir = key_parent(to_dir, to);
	if ((has_from_dir != has_to_dir || (has_from_dir && strcmp(from_dir, to_dir) != 0)) &&
	    (error = fsync_key_parent(fs, from)) < 0)
		return error;
	prune_key_parent(fs, from);
	return 0;
}

/* Walk the directory `dir_fd` (owned: closed here) whose key prefix is
 * key[0..key_len). */
static int list_dir(int dir_fd, char *key, size_t key_len, int depth,
		    int (*cb)(const char *key, uint64_t size, void *payload), void *payload)
{
	DIR *dir = fdopendir(dir_fd);
	struct dirent *entry;
	int error = 0;

	if (!dir) {
		error = fs_io_error(errno, "list", key_len ? key : "blobs");
		close(dir_fd);
		return error;
	}
	for (;;) {
		struct stat st;
		size_t name_len, len = key_len, i;
		int valid = 1;

		errno = 0;
		if (!(entry = readdir(dir))) {
			if (errno != 0)
				error = fs_io_error(errno, "list", key_len ? key : "blobs");
			break;
		}
		/* Only names that can be key components: this skips ".",
		 * "..", and anything temporary or foreign. */
		name_len = strlen(entry->d_name);
		for (i = 0; i < name_len; i++)
			valid = valid && is_key_char(entry->d_name[i]);
		if (!valid || name_len == 0)
			continue;
		if (key_len > 0)
			len++;
		if (len + name_len >= BRT_BLOB_KEY_MAX)
			continue;
		if (key_len > 0)
			key[key_len] = '/';
		memcpy(key + len, entry->d_name, name_len + 1);

		if (fstatat(dir_fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT) /* removed while we walk */
				goto next;
			error = fs_io_error(errno, "stat", key);
			break;
		}
		if (S_ISREG(st.st_mode)) {
			if ((error = cb(key, (uint64_t)st.st_size, payload)) != 0)
				break;
		} else if (S_ISDIR(st.st_mode) && depth < FS_LIST_DEPTH_MAX) {
			int sub = openat(dir_fd, entry->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
			if (sub < 0) {
				if (errno == ENOENT)
					goto next;
				error = fs_io_error(errno, "list", key);
				break;
			}
			if ((error = list_dir(sub, key, len + name_len, depth + 1, cb, payload)) != 0)
				break;
		}
next:
		key[key_len] = '\0';
	}
	closedir(dir);
	return error;
}

static int fs_list(brt_blobstore *bs, int (*cb)(const char *key, uint64_t size, void *payload), void *payload)
{
	fs_store *fs = (fs_store *)bs;
	char key[BRT_BLOB_KEY_MAX];
	/* A new open file description: readdir's position must not be shared
	 * with other threads walking at the same time. */
	int fd = openat(fs->blobs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return fs_io_error(errno, "list", "blobs");
	key[0] = '\0';
	return list_dir(fd, key, 0, 0, cb, payload);
}

static int fs_upload_list(brt_blobstore *bs,
			  int (*cb)(const char *upload_id, uint64_t size, int64_t mtime_ms, void *payload),
			  void *payload)
{
	fs_store *fs = (fs_store *)bs;
	int fd = openat(fs->uploads_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir;
	struct dirent *entry;
	int error = 0;

	if (fd < 0)
		return fs_io_error(errno, "list", "uploads");
	if (!(dir = fdopendir(fd))) {
		error = fs_io_error(errno, "list", "uploads");
		close(fd);
		return error;
	}
	for (;;) {
		struct stat st;

		errno = 0;
		if (!(entry = readdir(dir))) {
			if (errno != 0)
				error = fs_io_error(errno, "list", "uploads");
			break;
		}
		/* Only names that can be upload ids; anything else is foreign. */
		if (check_upload_id(entry->d_name) < 0) {
			brt_error_clear();
			continue;
		}
		if (fstatat(fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
			continue; /* removed while we walk, or not ours */
		if ((error = cb(entry->d_name, (uint64_t)st.st_size,
				(int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000, payload)) != 0)
			break;
	}
	closedir(dir);
	return error;
}

static void fs_free(brt_blobstore *bs)
{
	fs_store *fs = (fs_store *)bs;

	if (!fs)
		return;
	if (fs->blobs_fd >= 0)
		close(fs->blobs_fd);
	if (fs->uploads_fd >= 0)
		close(fs->uploads_fd);
	free(fs);
}

/* mkdir -p `path` (modified in place and restored). */
static int make_dirs(char *path)
{
	size_t i;
	struct stat st;

	for (i = 1; path[i] != '\0'; i++) {
		if (path[i] != '/')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			path[i] = '/';
			return brt_error_set(BRT_EIO, "blob store: cannot create %s", path);
		}
		path[i] = '/';
	}
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return brt_error_set(BRT_EIO, "blob store: cannot create %s", path);
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return brt_error_set(BRT_EIO, "blob store: %s is not a directory", path);
	return 0;
}

static int open_store_dir(int *fd_out, const char *root, const char *leaf)
{
	size_t root_len = strlen(root), leaf_len = strlen(leaf), size;
	char *path = NULL;
	int error = 0;

	*fd_out = -1;
	if (__builtin_add_overflow(root_len, leaf_len + 2, &size) || !(path = malloc(size)))
		return brt_error_set(BRT_ENOMEM, "blob store: out of memory");
	memcpy(path, root, root_len);
	path[root_len] = '/';
	memcpy(path + root_len + 1, leaf, leaf_len + 1);
	if ((error = make_dirs(path)) < 0)
		goto done;
	if ((*fd_out = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		error = fs_io_error(errno, "cannot open", path);
done:
	free(path);
	return error;
}

int brt_blobstore_fs_open(brt_blobstore **out, const char *root)
{
	fs_store *fs = NULL;
	int error = 0;

	*out = NULL;
	if (!root || root[0] == '\0')
		return brt_error_set(BRT_EINVALID, "blob store: empty root directory");
	if (!(fs = calloc(1, sizeof(*fs))))
		return brt_error_set(BRT_ENOMEM, "blob store: out of memory");
	fs->blobs_fd = -1;
	fs->uploads_fd = -1;
	if ((error = open_store_dir(&fs->blobs_fd, root, "blobs")) < 0 ||
	    (error = open_store_dir(&fs->uploads_fd, root, "uploads")) < 0)
		goto done;

	fs->base.version = BRT_BLOBSTORE_VERSION;
	fs->base.name = "filesystem";
	fs->base.stat = fs_stat;
	fs->base.reader_open = fs_reader_open;
	fs->base.open_fd = fs_open_fd;
	fs->base.writer_open = fs_writer_open;
	fs->base.upload_remove = fs_upload_remove;
	fs->base.remove = fs_remove;
	fs->base.move = fs_move;
	fs->base.list = fs_list;
	fs->base.free = fs_free;
	fs->base.upload_list = fs_upload_list;
	*out = &fs->base;
	fs = NULL;
done:
	fs_free(fs ? &fs->base : NULL);
	return error;
}
