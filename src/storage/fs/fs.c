/* The filesystem blob store driver.  Objects live at ROOT/blobs/<key>; the
 * data of an unfinished upload is a set of segment files under
 * ROOT/uploads/<upload id>/, each created O_EXCL under a fresh random
 * name.  The backend state of an upload lists its adopted segments in
 * order with their lengths ("<16 hex> <length>\n" each), after a line
 * "boot <id>\n" naming the boot of the machine that wrote them when they
 * were not synced (see fs_writer_sync).  An attempt appends past the end of the last
 * segment when it can take that file's flock and the file holds exactly
 * what the state names (the usual sequence of PATCHes builds one file);
 * otherwise (a racing attempt holds it) it writes a segment of its own.
 * Either way no byte any state names is ever written again, so racing
 * attempts cannot corrupt each other or what was acknowledged.
 * Page-aligned appends go to the disk with O_DIRECT.
 * Commit publishes one segment by renaming it into blobs/ without
 * replacing anything (a concurrent commit of the same content dedupes
 * instead of clobbering), several by concatenating them in the kernel
 * (copy_file_range) into a temporary file that is synced and renamed the
 * same way; then the directories are fsynced so the rename survives a
 * crash.  All paths are resolved relative to two directory descriptors
 * opened once; the store is read-only after open, so threads share it
 * without locks. */
#include "storage/blobstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"

/* A mkdir/rename race with a concurrent remove() pruning an empty fan-out
 * directory is retried this many times. */
#define FS_PLACE_ATTEMPTS 8
/* Deepest directory nesting list() descends into. */
#define FS_LIST_DEPTH_MAX 32

/* The kernel's id of the running boot: 36 characters (a UUID). */
#define BOOT_ID_LEN 36
/* The backend state's optional first line: "boot <id>\n". */
#define BOOT_LINE_LEN (5 + BOOT_ID_LEN + 1)

typedef struct fs_store {
	brt_blobstore base;
	int blobs_fd;
	int uploads_fd;
	/* The running boot's id, or "" when the kernel does not say. */
	char boot[BOOT_ID_LEN + 1];
	/* Every chunk is synced before it is acknowledged (see
	 * fs_writer_sync): without a boot id, or when asked to. */
	int sync_chunks;
} fs_store;

/* Segment files are named by 16 random lower-case hex characters. */
#define SEG_NAME_LEN 16
/* One entry of the backend state: name, space, length, newline. */
#define SEG_ENTRY_MAX (SEG_NAME_LEN + 1 + 20 + 1)

/* An adopted segment as a backend state names it. */
typedef struct fs_segment {
	char name[SEG_NAME_LEN + 1];
	uint64_t len;
} fs_segment;

/* One attempt: a segment file of its own, created at the first byte. */
typedef struct fs_writer {
	brt_blob_writer base;
	fs_store *fs;
	int dir_fd; /* uploads/<id>, or -1 */
	int fd;     /* the attempt's segment, or -1 while nothing was appended */
	/* The segment opened with O_DIRECT, for page-aligned appends (-1 until
	 * one comes); `direct_off` once the filesystem refused it. */
	int direct_fd;
	int direct_off;
	/* The upload had no segment when the attempt opened, so uploads/<id>
	 * may be new: its entry in uploads/ is made durable at sync too. */
	int first;
	int entry_synced; /* the segment's directory entry is durable */
	/* The attempt appends to the upload's last segment (see
	 * continue_last) instead of a file of its own. */
	int continuing;
	fs_segment last;         /* the state's last segment, if any */
	size_t last_entry;       /* where its entry starts in `state` */
	uint64_t file_start;     /* the file offset of the attempt's first byte */
	int failed;              /* an append or sync failed: the attempt is unusable */
	int adopted;             /* the upload owns the segment: free keeps it */
	uint64_t start;          /* the upload's size when the attempt opened */
	uint64_t writeback_from; /* file offset: data before it is being written back */
	char name[SEG_NAME_LEN + 1];
	/* The state the attempt opened at (base_len bytes, with the running
	 * boot's line), followed by the attempt's own entry once it synced;
	 * the state exactly as opened starts at `opened_at`. */
	unsigned char *state;
	size_t base_len, state_len, opened_at;
	char upload_id[BRT_UPLOAD_ID_LEN + 1];
} fs_writer;

/* Start writeback of dirty upload data every this many bytes of a
 * segment file, whichever attempts wrote them, so the disk works while the
 * rest of the upload is still arriving and the fdatasync at commit has
 * little left to do. */
#define WRITEBACK_STEP ((uint64_t)8 << 20)

/* Appends of whole pages from a page-aligned buffer at a page-aligned
 * offset (what the upload ring hands over) bypass the page cache: the
 * device reads them straight from the buffer, which spares the kernel a
 * copy of every byte and the page cache a gigabyte of dirty pages it
 * would write back later anyway.  4096 covers the logical block size of
 * common devices; one that needs more refuses with EINVAL, and the
 * attempt writes through the page cache from then on. */
#define DIRECT_ALIGN ((uint64_t)4096)

typedef struct fs_reader {
	brt_blob_reader base;
	int fd;
	char key[BRT_BLOB_KEY_MAX];
} fs_reader;

/* Error details name the upload id or key, never the absolute path: the
 * API layer may show them to clients. */

static int is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
static int fs_io_error(int errnum, const char *what, const char *name)
{
	char buf[128];

	return brt_error_set(BRT_EIO, "blob store: %s %s: %s", what, name,
			     strerror_r(errnum, buf, sizeof(buf)));
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
	if ((error = brt_blob_key_check(key)) < 0)
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
	if ((error = brt_blob_key_check(key)) < 0)
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

static int fs_open_fd(int *fd_out, uint64_t *size_out, brt_blobstore *bs, const char *key)
{
	struct stat st;
	int error = open_object(fd_out, &st, (fs_store *)bs, key);

	if (size_out)
		*size_out = error == 0 ? (uint64_t)st.st_size : 0;
	return error;
}

/* ------------------------------------------------------------ segments */

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int is_segment_name(const char *name)
{
	size_t i;

	for (i = 0; i < SEG_NAME_LEN; i++)
		if (!is_hex(name[i]))
			return 0;
	return name[i] == '\0';
}

static int is_boot_id(const char *p)
{
	for (size_t i = 0; i < BOOT_ID_LEN; i++)
		if (!is_hex(p[i]) && p[i] != '-')
			return 0;
	return 1;
}

/* Parse a backend state into a new array (NULL when empty); *total_out is
 * the bytes it describes, *boot_out the boot its unsynced data was
 * written in ("" if all of it was synced).  BRT_EINVALID if malformed. */
static int parse_state(fs_segment **out, size_t *count_out, uint64_t *total_out,
		       char boot_out[BOOT_ID_LEN + 1], const unsigned char *state, size_t len)
{
	const char *p = (const char *)state, *end = p + len;
	fs_segment *segs = NULL;
	size_t count = 0, cap = len / (SEG_NAME_LEN + 3) + 1;
	uint64_t total = 0;
	int error = 0;

	*out = NULL;
	*count_out = 0;
	*total_out = 0;
	boot_out[0] = '\0';
	if (len == 0)
		return 0;
	if (len > BRT_BACKEND_STATE_MAX)
		return brt_error_set(BRT_EINVALID, "blob store: upload state is too large");
	if (!(segs = calloc(cap, sizeof(*segs))))
		return brt_error_set(BRT_ENOMEM, "blob store: out of memory");
	if (len >= BOOT_LINE_LEN && memcmp(p, "boot ", 5) == 0) {
		if (!is_boot_id(p + 5) || p[BOOT_LINE_LEN - 1] != '\n')
			goto bad;
		memcpy(boot_out, p + 5, BOOT_ID_LEN);
		boot_out[BOOT_ID_LEN] = '\0';
		p += BOOT_LINE_LEN;
	}
	while (p < end) {
		uint64_t n = 0;
		size_t digits = 0;

		if (count == cap || end - p < SEG_NAME_LEN + 3)
			goto bad;
		memcpy(segs[count].name, p, SEG_NAME_LEN);
		segs[count].name[SEG_NAME_LEN] = '\0';
		if (!is_segment_name(segs[count].name) || p[SEG_NAME_LEN] != ' ')
			goto bad;
		for (p += SEG_NAME_LEN + 1; p < end && *p >= '0' && *p <= '9'; p++, digits++)
			if (__builtin_mul_overflow(n, 10, &n) ||
			    __builtin_add_overflow(n, (uint64_t)(*p - '0'), &n))
				goto bad;
		if (digits == 0 || p == end || *p != '\n' || n == 0)
			goto bad;
		p++;
		segs[count++].len = n;
		if (__builtin_add_overflow(total, n, &total) || total > (uint64_t)INT64_MAX)
			goto bad;
	}
	*out = segs;
	*count_out = count;
	*total_out = total;
	return 0;
bad:
	error = brt_error_set(BRT_EINVALID, "blob store: malformed upload state");
	free(segs);
	return error;
}

/* BRT_ENOTFOUND if the state names data written, and not yet synced, in
 * an earlier boot of the machine: a power cut or a kernel crash may have
 * lost any of it while the row naming it survived. */
static int check_boot(const fs_store *fs, const char *boot, const char *upload_id)
{
	if (boot[0] != '\0' && strcmp(boot, fs->boot) != 0)
		return brt_error_set(BRT_ENOTFOUND,
				     "blob store: data of upload %s was not yet on disk when the machine "
				     "restarted",
				     upload_id);
	return 0;
}

/* 16 random hex characters. */
static int random_name(char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char bytes[SEG_NAME_LEN / 2];

	if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes))
		return brt_error_set(BRT_EIO, "blob store: no randomness for a segment name");
	for (size_t i = 0; i < sizeof(bytes); i++) {
		out[2 * i] = hex[bytes[i] >> 4];
		out[2 * i + 1] = hex[bytes[i] & 15];
	}
	out[SEG_NAME_LEN] = '\0';
	return 0;
}

/* Open uploads/<id> as a directory; -1 with errno as openat leaves it. */
static int open_upload_dir(fs_store *fs, const char *upload_id)
{
	return openat(fs->uploads_fd, upload_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Create a file of a fresh random name in uploads/<id>/ (made if needed),
 * O_EXCL: nobody else ever has it open.  *dir_fd may hold the directory
 * already; *made_dir_out (may be NULL) is set if this call created it. */
static int create_piece(int *fd_out, int *dir_fd, char *name, fs_store *fs, const char *upload_id, int flags)
{
	int error;

	*fd_out = -1;
	for (int attempt = 0; attempt < FS_PLACE_ATTEMPTS; attempt++) {
		if (*dir_fd < 0) {
			if (mkdirat(fs->uploads_fd, upload_id, 0755) != 0 && errno != EEXIST)
				return fs_io_error(errno, "create directory of upload", upload_id);
			if ((*dir_fd = open_upload_dir(fs, upload_id)) < 0) {
				if (errno == ENOENT) /* removed between the two calls */
					continue;
				if (errno != ENOTDIR && errno != ELOOP)
					return fs_io_error(errno, "open upload", upload_id);
				/* A plain file of the previous layout (or a planted
				 * link) under the id: it holds nothing acknowledged,
				 * since no backend state can name it. */
				if (unlinkat(fs->uploads_fd, upload_id, 0) != 0 && errno != ENOENT)
					return fs_io_error(errno, "remove old upload file", upload_id);
				continue;
			}
		}
		if ((error = random_name(name)) < 0)
			return error;
		*fd_out = openat(*dir_fd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (*fd_out >= 0)
			return 0;
		if (errno == EEXIST)
			continue;
		if (errno != ENOENT)
			return fs_io_error(errno, "create segment of upload", upload_id);
		/* The directory was removed while open (the upload ended, or
		 * a losing attempt dropped an empty one): make it again. */
		close(*dir_fd);
		*dir_fd = -1;
	}
	return brt_error_set(BRT_EIO, "blob store: directory of upload %s keeps disappearing", upload_id);
}

/* ------------------------------------------------------------ attempts */

static int writer_unusable(fs_writer *writer)
{
	return brt_error_set(BRT_EIO, "blob store: upload %s: attempt is no longer usable",
			     writer->upload_id);
}

/* pwrite all of `len` bytes at `offset` of the segment. */
static int write_at(fs_writer *writer, int fd, const unsigned char *p, size_t len, uint64_t offset)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len > SSIZE_MAX ? SSIZE_MAX : len, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && fd == writer->direct_fd)
			return BRT_EINVALID; /* the device wants other alignment */
		if (n <= 0)
			return fs_io_error(n < 0 ? errno : EIO, "write upload", writer->upload_id);
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

/* Write the whole pages at the start of *p with O_DIRECT when buffer and
 * offset allow it, advancing *p and *left past them. */
static int append_direct(fs_writer *writer, const unsigned char **p, size_t *left)
{
	uint64_t offset = writer->file_start + (writer->base.size - writer->start);
	size_t pages = *left & ~(size_t)(DIRECT_ALIGN - 1);
	int error;

	if (writer->direct_off || pages == 0 || offset % DIRECT_ALIGN != 0 ||
	    (uintptr_t)*p % DIRECT_ALIGN != 0)
		return 0;
	if (writer->direct_fd < 0 &&
	    (writer->direct_fd = openat(writer->dir_fd, writer->name,
					O_WRONLY | O_DIRECT | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		/* EINVAL: the filesystem has no O_DIRECT.  Whatever else, the
		 * buffered descriptor carries on, and sync finds out if the
		 * segment was removed. */
		writer->direct_off = 1;
		return 0;
	}
	error = write_at(writer, writer->direct_fd, *p, pages, offset);
	if (error == BRT_EINVALID) {
		/* Nothing of a refused direct write is on disk that the
		 * buffered write of the same bytes does not replace. */
		writer->direct_off = 1;
		return 0;
	}
	if (error < 0)
		return error;
	*p += pages;
	*left -= pages;
	return 0;
}

/* Segment `name` in `dir_fd` opened for writing with its flock taken
 * (non-blocking) and still linked under that name, its stat in *st_out;
 * -1 if any of that fails (another attempt holds it, a commit renamed it
 * away, it is gone or not a regular file). */
static int lock_segment(struct stat *st_out, int dir_fd, const char *name)
{
	struct stat by_name;
	int fd = openat(dir_fd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, st_out) != 0 ||
	    fstatat(dir_fd, name, &by_name, AT_SYMLINK_NOFOLLOW) != 0 || by_name.st_ino != st_out->st_ino ||
	    by_name.st_dev != st_out->st_dev || !S_ISREG(st_out->st_mode)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Take the upload's last segment for this attempt, if it can be had: a
 * chunked push of many PATCHes then builds one file, which commit renames
 * into place, instead of a file per chunk that commit must copy together.
 * The attempt holds an exclusive flock on the segment from here until it
 * is freed, appends only past every byte the file holds, and a segment
 * that holds more than the state the attempt opened at names (another
 * attempt's acknowledged bytes, or what a crashed one left) is not taken:
 * acknowledged bytes are never written over.  Commit takes the same lock
 * before it renames a segment, and the name is checked to still be the
 * locked file once the lock is held, so no attempt ever appends to a
 * published object.  1 if taken, 0 to write a segment of its own. */
static int continue_last(fs_writer *writer)
{
	struct stat st;
	int fd;

	if (writer->last.len == 0 || writer->dir_fd < 0 ||
	    (fd = lock_segment(&st, writer->dir_fd, writer->last.name)) < 0)
		return 0;
	if ((st.st_mode & 0200) == 0 || (uint64_t)st.st_size != writer->last.len) {
		close(fd);
		return 0;
	}
	writer->fd = fd;
	writer->continuing = 1;
	writer->entry_synced = 1; /* made durable by the attempt that created it */
	writer->file_start = writer->last.len;
	memcpy(writer->name, writer->last.name, sizeof(writer->name));
	return 1;
}

static int fs_writer_append(brt_blob_writer *w, const void *data, size_t len)
{
	fs_writer *writer = (fs_writer *)w;
	const unsigned char *p = data;
	size_t left = len;
	uint64_t new_size, end;
	int error;

	if (writer->failed)
		return writer_unusable(writer);
	if (__builtin_add_overflow(w->size, (uint64_t)len, &new_size) || new_size > (uint64_t)INT64_MAX)
		return brt_error_set(BRT_ETOOBIG, "blob store: upload %s would exceed the maximum file size",
				     writer->upload_id);
	if (len == 0)
		return 0;
	if (writer->fd < 0) {
		if (!continue_last(writer) &&
		    (error = create_piece(&writer->fd, &writer->dir_fd, writer->name, writer->fs,
					  writer->upload_id, O_WRONLY)) < 0) {
			writer->failed = 1;
			return error;
		}
		/* From the step the earlier attempts' unsynced tail starts in. */
		writer->writeback_from = writer->file_start - writer->file_start % WRITEBACK_STEP;
	}
	if ((error = append_direct(writer, &p, &left)) < 0 ||
	    (error = write_at(writer, writer->fd, p, left,
			      writer->file_start + w->size + (len - left) - writer->start)) < 0) {
		/* The attempt is dropped when freed, partial tail and all. */
		writer->failed = 1;
		return error;
	}
	w->size = new_size;
	end = writer->file_start + new_size - writer->start;
	if (end - writer->writeback_from >= WRITEBACK_STEP) {
		/* Only a hint: errors surface at the fdatasync that follows. */
		(void)sync_file_range(writer->fd, (off64_t)writer->writeback_from,
				      (off64_t)(end - writer->writeback_from), SYNC_FILE_RANGE_WRITE);
		writer->writeback_from = end;
	}
	return 0;
}

static int fs_writer_sync(brt_blob_writer *w, const unsigned char **state_out, size_t *len_out)
{
	fs_writer *writer = (fs_writer *)w;
	struct stat st;
	size_t at;
	int error, n;

	*state_out = NULL;
	*len_out = 0;
	if (writer->failed)
		return writer_unusable(writer);
	if (writer->fd < 0) {
		*state_out = writer->state + writer->opened_at;
		*len_out = writer->base_len - writer->opened_at;
		return 0;
	}
	/* Unless chunks are synced, the data stays in the page cache: it
	 * survives the process (a kill -9), and the state says in which boot
	 * it was written, so after a power cut or a kernel crash the upload
	 * is unknown (check_boot) instead of resumed over bytes the disk may
	 * have lost.  Commit syncs it all at once, and writeback started
	 * every WRITEBACK_STEP leaves that sync little to do. */
	if (writer->fs->sync_chunks && fdatasync(writer->fd) != 0) {
		/* After a failed fsync the page cache may have dropped the
		 * dirty pages, so a retry could falsely succeed. */
		writer->failed = 1;
		return fs_io_error(errno, "sync upload", writer->upload_id);
	}
	if (writer->fs->sync_chunks && !writer->entry_synced) {
		if ((error = fsync_fd_dir(writer->dir_fd, writer->upload_id)) < 0 ||
		    (writer->first &&
		     (error = fsync_fd_dir(writer->fs->uploads_fd, writer->upload_id)) < 0)) {
			writer->failed = 1;
			return error;
		}
		writer->entry_synced = 1;
	}
	/* The upload ended meanwhile (another request committed or cancelled
	 * it and removed its data), or a sweep judged the attempt abandoned:
	 * its bytes must not be described as stored. */
	if (fstat(writer->fd, &st) != 0 || st.st_nlink == 0) {
		writer->failed = 1;
		return brt_error_set(BRT_ECONFLICT,
				     "blob store: upload %s ended while this request wrote to it",
				     writer->upload_id);
	}
	if (writer->base_len + SEG_ENTRY_MAX > BRT_BACKEND_STATE_MAX)
		return brt_error_set(BRT_ETOOBIG, "blob store: upload %s has too many chunks",
				     writer->upload_id);
	/* A continued segment's entry is replaced, a new one appended. */
	at = writer->continuing ? writer->last_entry : writer->base_len;
	n = snprintf((char *)writer->state + at, SEG_ENTRY_MAX + 1, "%s %llu\n", writer->name,
		     (unsigned long long)(writer->file_start + w->size - writer->start));
	writer->state_len = at + (size_t)n;
	*state_out = writer->state;
	*len_out = writer->state_len;
	return 0;
}

static void fs_writer_adopt(brt_blob_writer *w)
{
	((fs_writer *)w)->adopted = 1;
}

static void fs_writer_free(brt_blob_writer *w)
{
	fs_writer *writer = (fs_writer *)w;

	if (!writer)
		return;
	if (writer->direct_fd >= 0)
		close(writer->direct_fd);
	if (writer->fd >= 0 && writer->continuing) {
		/* Under the lock, past what any state names: only this
		 * attempt's own bytes go. */
		if (!writer->adopted)
			(void)ftruncate(writer->fd, (off_t)writer->file_start);
		close(writer->fd);
	} else if (writer->fd >= 0) {
		close(writer->fd);
		if (!writer->adopted) {
			(void)unlinkat(writer->dir_fd, writer->name, 0);
			/* The first attempt of an upload may leave an empty
			 * directory; rmdir keeps one that holds anything. */
			if (writer->first)
				(void)unlinkat(writer->fs->uploads_fd, writer->upload_id, AT_REMOVEDIR);
		}
	}
	if (writer->dir_fd >= 0)
		close(writer->dir_fd);
	free(writer->state);
	free(writer);
}

static int fs_writer_data_fd(brt_blob_writer *w, int *fd_out)
{
	fs_writer *writer = (fs_writer *)w;

	*fd_out = -1;
	if (writer->fd < 0)
		return brt_error_set(BRT_ENOTFOUND, "blob store: upload %s: nothing appended yet",
				     writer->upload_id);
	if (writer->continuing) /* its bytes do not start at offset 0 */
		return brt_error_set(BRT_EUNSUPPORTED, "blob store: upload %s: attempt continues a segment",
				     writer->upload_id);
	/* By name, while the attempt still owns it: a descriptor of its own
	 * (read-only, its own offset), valid after a rename or unlink. */
	if ((*fd_out = openat(writer->dir_fd, writer->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return fs_io_error(errno, "reopen segment of upload", writer->upload_id);
	return 0;
}

/* Whether every segment `segs` names is stored with at least its length
 * (a file is never shorter than what was adopted of it, unless the disk
 * lost it).  `*dir_fd` is the opened directory on success. */
static int check_segments(int *dir_fd, fs_store *fs, const char *upload_id, const fs_segment *segs,
			  size_t count)
{
	struct stat st;

	*dir_fd = -1;
	if (count == 0)
		return 0;
	if ((*dir_fd = open_upload_dir(fs, upload_id)) < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return brt_error_set(BRT_ENOTFOUND, "blob store: data of upload %s is gone",
					     upload_id);
		return fs_io_error(errno, "open upload", upload_id);
	}
	for (size_t i = 0; i < count; i++) {
		if (fstatat(*dir_fd, segs[i].name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno != ENOENT)
				return fs_io_error(errno, "stat segment of upload", upload_id);
			st.st_mode = 0;
		}
		if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < segs[i].len)
			return brt_error_set(BRT_ENOTFOUND, "blob store: data of upload %s is gone",
					     upload_id);
	}
	return 0;
}

static int fs_writer_open(brt_blob_writer **out, brt_blobstore *bs, const char *upload_id, uint64_t offset,
			  const unsigned char *state, size_t state_len)
{
	fs_store *fs = (fs_store *)bs;
	fs_writer *writer = NULL;
	fs_segment *segs = NULL;
	size_t count = 0, prefix = 0, skip;
	uint64_t total = 0;
	char boot[BOOT_ID_LEN + 1];
	int dir_fd = -1, error = 0;

	*out = NULL;
	if ((error = brt_upload_id_check(upload_id)) < 0 ||
	    (error = parse_state(&segs, &count, &total, boot, state, state_len)) < 0)
		return error;
	if ((error = check_boot(fs, boot, upload_id)) < 0)
		goto done;
	if (total != offset) {
		error = brt_error_set(BRT_EINVALID, "blob store: upload %s: state holds %llu bytes, not %llu",
				      upload_id, (unsigned long long)total, (unsigned long long)offset);
		goto done;
	}
	if ((error = check_segments(&dir_fd, fs, upload_id, segs, count)) < 0)
		goto done;
	if (!(writer = calloc(1, sizeof(*writer))) ||
	    !(writer->state = malloc(BOOT_LINE_LEN + state_len + SEG_ENTRY_MAX + 1))) {
		error = brt_error_set(BRT_ENOMEM, "blob store: out of memory");
		goto done;
	}
	/* The attempt's states say which boot wrote their unsynced data
	 * (for all of it, the earlier chunks' too: one line per state). */
	skip = boot[0] != '\0' ? BOOT_LINE_LEN : 0;
	if (!fs->sync_chunks || skip)
		prefix = (size_t)snprintf((char *)writer->state, BOOT_LINE_LEN + 1, "boot %s\n", fs->boot);
	if (state_len > skip)
		memcpy(writer->state + prefix, state + skip, state_len - skip);
	writer->base_len = writer->state_len = prefix + state_len - skip;
	writer->opened_at = skip ? 0 : prefix;
	writer->base.size = offset;
	writer->base.append = fs_writer_append;
	writer->base.sync = fs_writer_sync;
	writer->base.adopt = fs_writer_adopt;
	writer->base.free = fs_writer_free;
	writer->base.data_fd = fs_writer_data_fd;
	writer->fs = fs;
	writer->fd = -1;
	writer->direct_fd = -1;
	writer->dir_fd = dir_fd;
	writer->first = count == 0;
	writer->start = offset;
	if (count > 0) {
		writer->last = segs[count - 1];
		writer->last_entry = writer->base_len;
		/* The last entry starts after the newline that ends the line
		 * before it (the state parsed, so it ends in a newline). */
		while (writer->last_entry > 0 && (writer->last_entry == writer->base_len ||
						  writer->state[writer->last_entry - 1] != '\n'))
			writer->last_entry--;
	}
	memcpy(writer->upload_id, upload_id, BRT_UPLOAD_ID_LEN + 1);
	dir_fd = -1;
	*out = &writer->base;
	writer = NULL;
done:
	if (writer) {
		free(writer->state);
		free(writer);
	}
	if (dir_fd >= 0)
		close(dir_fd);
	free(segs);
	return error;
}

/* ------------------------------------------------------------ upload data */

/* Remove every file in uploads/<id>/ and the directory (or the plain file
 * of the previous layout).  Files an attempt creates meanwhile may stay:
 * that attempt drops them itself, or a sweep does. */
static int remove_upload_data(fs_store *fs, const char *upload_id)
{
	int fd = open_upload_dir(fs, upload_id), error = 0;
	struct dirent *entry;
	DIR *dir;

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno != ENOTDIR && errno != ELOOP)
			return fs_io_error(errno, "open upload", upload_id);
		if (unlinkat(fs->uploads_fd, upload_id, 0) != 0 && errno != ENOENT)
			return fs_io_error(errno, "remove upload", upload_id);
		return 0;
	}
	if (!(dir = fdopendir(fd))) {
		error = fs_io_error(errno, "list upload", upload_id);
		close(fd);
		return error;
	}
	while ((entry = readdir(dir))) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, entry->d_name, 0) != 0 && errno != ENOENT && error == 0)
			error = fs_io_error(errno, "remove upload", upload_id);
	}
	closedir(dir);
	if (unlinkat(fs->uploads_fd, upload_id, AT_REMOVEDIR) != 0 && errno != ENOENT && errno != ENOTEMPTY &&
	    error == 0)
		error = fs_io_error(errno, "remove upload", upload_id);
	return error;
}

static int fs_upload_remove(brt_blobstore *bs, const char *upload_id, const unsigned char *state,
			    size_t state_len)
{
	int error;

	/* The directory holds every piece, named in the state or not. */
	(void)state;
	(void)state_len;
	if ((error = brt_upload_id_check(upload_id)) < 0)
		return error;
	return remove_upload_data((fs_store *)bs, upload_id);
}

static int64_t mtime_ms(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

/* A segment the state names but that holds more (an attempt that
 * continued it was killed before it could take its bytes back), last
 * written before `before_ms`, is cut back to the named length, under the
 * lock attempts take (see continue_last).  1 if it was cut. */
static int trim_segment(int dir_fd, const fs_segment *seg, int64_t before_ms)
{
	struct stat st;
	int fd, cut;

	/* A cheap look first: almost every named segment is exactly its
	 * length. */
	if (fstatat(dir_fd, seg->name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size <= seg->len || mtime_ms(&st) >= before_ms)
		return 0;
	if ((fd = lock_segment(&st, dir_fd, seg->name)) < 0)
		return 0;
	cut = (uint64_t)st.st_size > seg->len && mtime_ms(&st) < before_ms &&
	      ftruncate(fd, (off_t)seg->len) == 0;
	close(fd);
	return cut;
}

static int fs_upload_prune(unsigned long *removed_out, brt_blobstore *bs, const char *upload_id,
			   const unsigned char *keep, size_t keep_len, int64_t before_ms)
{
	fs_store *fs = (fs_store *)bs;
	fs_segment *segs = NULL;
	size_t count = 0;
	uint64_t total = 0;
	struct dirent *entry;
	struct stat st;
	char boot[BOOT_ID_LEN + 1];
	DIR *dir = NULL;
	int fd = -1, error;

	*removed_out = 0;
	if ((error = brt_upload_id_check(upload_id)) < 0 ||
	    (error = parse_state(&segs, &count, &total, boot, keep, keep_len)) < 0)
		return error;
	if ((fd = open_upload_dir(fs, upload_id)) < 0) {
		if (errno == ENOENT)
			goto done;
		if (errno != ENOTDIR && errno != ELOOP) {
			error = fs_io_error(errno, "open upload", upload_id);
			goto done;
		}
		/* The plain file of the previous layout: no state names it. */
		if (fstatat(fs->uploads_fd, upload_id, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    mtime_ms(&st) < before_ms && unlinkat(fs->uploads_fd, upload_id, 0) == 0)
			*removed_out = 1;
		goto done;
	}
	if (!(dir = fdopendir(fd))) {
		error = fs_io_error(errno, "list upload", upload_id);
		close(fd);
		goto done;
	}
	while ((entry = readdir(dir))) {
		size_t i;

		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		for (i = 0; i < count && strcmp(segs[i].name, entry->d_name) != 0; i++)
			;
		if (i < count) {
			if (trim_segment(fd, &segs[i], before_ms))
				(*removed_out)++;
			continue;
		}
		if (fstatat(fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISDIR(st.st_mode) ||
		    mtime_ms(&st) >= before_ms)
			continue;
		if (unlinkat(fd, entry->d_name, 0) == 0)
			(*removed_out)++;
	}
	closedir(dir);
	/* An upload with nothing adopted keeps no empty directory. */
	if (count == 0)
		(void)unlinkat(fs->uploads_fd, upload_id, AT_REMOVEDIR);
done:
	free(segs);
	return error;
}

/* ------------------------------------------------------------ commit */

/* Copy `len` bytes from the start of `in` to the end of `out`, in the
 * kernel where it can (copy_file_range: no data through user space, and
 * on filesystems with reflinks no data copied at all). */
static int copy_bytes(int out, int in, uint64_t len, const char *upload_id)
{
	off64_t in_off = 0;
	char *buf = NULL;
	int error = 0;

	while (len > 0) {
		size_t want = len > ((size_t)1 << 30) ? (size_t)1 << 30 : (size_t)len;
		ssize_t n = copy_file_range(in, &in_off, out, NULL, want, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
			break;
		if (n < 0)
			return fs_io_error(errno, "copy segment of upload", upload_id);
		if (n == 0)
			return brt_error_set(BRT_ENOTFOUND, "blob store: data of upload %s is gone",
					     upload_id);
		len -= (uint64_t)n;
	}
	if (len == 0)
		return 0;
	/* No in-kernel copy here: through a buffer. */
	if (!(buf = malloc((size_t)1 << 20)))
		return brt_error_set(BRT_ENOMEM, "blob store: out of memory");
	while (len > 0 && error == 0) {
		ssize_t n = pread(in, buf, len > ((size_t)1 << 20) ? (size_t)1 << 20 : (size_t)len, in_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			error = n < 0 ? fs_io_error(errno, "read segment of upload", upload_id)
				      : brt_error_set(BRT_ENOTFOUND, "blob store: data of upload %s is gone",
						      upload_id);
			break;
		}
		for (ssize_t done = 0; done < n && error == 0;) {
			ssize_t w = write(out, buf + done, (size_t)(n - done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				error = fs_io_error(w < 0 ? errno : EIO, "write object of upload", upload_id);
			else
				done += w;
		}
		in_off += n;
		len -= (uint64_t)n;
	}
	free(buf);
	return error;
}

/* Open segment `seg` read-only; BRT_ENOTFOUND if gone or short.  *exact_out
 * says whether the file holds exactly the adopted bytes. */
static int open_segment(int *fd_out, int *exact_out, int dir_fd, const fs_segment *seg, const char *upload_id)
{
	struct stat st;
	int fd = openat(dir_fd, seg->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	*fd_out = -1;
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP)
			return brt_error_set(BRT_ENOTFOUND, "blob store: data of upload %s is gone",
					     upload_id);
		return fs_io_error(errno, "open segment of upload", upload_id);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < seg->len) {
		close(fd);
		return brt_error_set(BRT_ENOTFOUND, "blob store: data of upload %s is gone", upload_id);
	}
	*exact_out = (uint64_t)st.st_size == seg->len;
	*fd_out = fd;
	return 0;
}

/* Put the verified file `name` (in `dir_fd`) in place as object `key` of
 * `size` bytes.  An existing object of the same size is these bytes: ours
 * is left for the caller to drop (*published_out 0).  One of another size
 * is not what its key says (a torn or tampered file): the verified data
 * takes its place in one atomic rename. */
static int publish(int *published_out, fs_store *fs, int dir_fd, const char *name, const char *key,
		   uint64_t size)
{
	struct stat st;
	int error;

	*published_out = 0;
	if (fstatat(fs->blobs_fd, key, &st, 0) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size)
		return 0;
	error = place_object(fs, dir_fd, name, key);
	if (error == BRT_EEXISTS) {
		brt_error_clear();
		if (fstatat(fs->blobs_fd, key, &st, 0) != 0 || !S_ISREG(st.st_mode))
			return brt_error_set(BRT_EIO, "blob store: %s exists but is not an object", key);
		if ((uint64_t)st.st_size == size)
			return 0;
		brt_log_warn(
			"blob store: %s has %llu bytes, not the %llu of its verified content: replacing it",
			key, (unsigned long long)st.st_size, (unsigned long long)size);
		if (renameat(dir_fd, name, fs->blobs_fd, key) != 0)
			return fs_io_error(errno, "replace", key);
		error = 0;
	}
	if (error == BRT_ENOTFOUND)
		error = brt_error_set(BRT_ENOTFOUND, "blob store: data for %s vanished", key);
	if (error == 0)
		*published_out = 1;
	return error;
}

static int fs_commit(brt_blobstore *bs, const char *upload_id, const unsigned char *state, size_t state_len,
		     uint64_t size, const char *key)
{
	fs_store *fs = (fs_store *)bs;
	fs_segment *segs = NULL;
	size_t count = 0;
	uint64_t total = 0;
	char temp[SEG_NAME_LEN + 1] = "", boot[BOOT_ID_LEN + 1];
	const char *source;
	int dir_fd = -1, fd = -1, seg_fd = -1, exact = 0, published = 0, error;

	if ((error = brt_upload_id_check(upload_id)) < 0 || (error = brt_blob_key_check(key)) < 0 ||
	    (error = parse_state(&segs, &count, &total, boot, state, state_len)) < 0)
		return error;
	if ((error = check_boot(fs, boot, upload_id)) < 0)
		goto done;
	if (total != size) {
		error = brt_error_set(BRT_EINVALID, "blob store: upload %s: state holds %llu bytes, not %llu",
				      upload_id, (unsigned long long)total, (unsigned long long)size);
		goto done;
	}
	if (count > 0 && (dir_fd = open_upload_dir(fs, upload_id)) < 0) {
		error = errno == ENOENT || errno == ENOTDIR || errno == ELOOP
				? brt_error_set(BRT_ENOTFOUND, "blob store: data of upload %s is gone",
						upload_id)
				: fs_io_error(errno, "open upload", upload_id);
		goto done;
	}
	if (count == 1 && (error = open_segment(&fd, &exact, dir_fd, &segs[0], upload_id)) < 0)
		goto done;
	if (count == 1 && exact) {
		/* An attempt continuing the segment holds its lock (see
		 * continue_last) and may append past what this commit owns:
		 * then copy out the owned bytes.  Held until the rename is
		 * done, the lock keeps such an attempt out of the object. */
		struct stat st;
		exact = flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 &&
			(uint64_t)st.st_size == segs[0].len;
	}
	if (count == 1 && exact) {
		/* The common case (a monolithic push, one PATCH): the segment
		 * itself becomes the object, no byte is copied. */
		source = segs[0].name;
	} else {
		/* Several segments (or none, or one longer than adopted):
		 * their adopted bytes, in order, into a new file. */
		if (fd >= 0) {
			seg_fd = fd;
			fd = -1;
		}
		if ((error = create_piece(&fd, &dir_fd, temp, fs, upload_id, O_WRONLY)) < 0)
			goto done;
		for (size_t i = 0; i < count; i++) {
			if (seg_fd < 0 &&
			    (error = open_segment(&seg_fd, &exact, dir_fd, &segs[i], upload_id)) < 0)
				goto done;
			error = copy_bytes(fd, seg_fd, segs[i].len, upload_id);
			close(seg_fd);
			seg_fd = -1;
			if (error < 0)
				goto done;
		}
		source = temp;
	}
	if (fdatasync(fd) != 0) {
		error = fs_io_error(errno, "sync upload", upload_id);
		goto done;
	}
	/* Objects never change once published; the mode records that. */
	if (fchmod(fd, 0444) != 0) {
		error = fs_io_error(errno, "protect object of upload", upload_id);
		goto done;
	}
	if ((error = publish(&published, fs, dir_fd, source, key, size)) < 0)
		goto done;
	if (published) {
		if ((error = fsync_key_parent(fs, key)) < 0 || (error = fsync_fd_dir(dir_fd, upload_id)) < 0)
			goto done;
		if (source == temp)
			temp[0] = '\0';
	}
	/* Published (or deduped): the upload's data goes, whatever else an
	 * attempt that lost to this commit left.  Leftovers a failure here
	 * leaves behind belong to no session and are swept. */
	(void)remove_upload_data(fs, upload_id);
	temp[0] = '\0';
done:
	if (temp[0] != '\0' && dir_fd >= 0)
		(void)unlinkat(dir_fd, temp, 0);
	if (fd >= 0)
		close(fd);
	if (seg_fd >= 0)
		close(seg_fd);
	if (dir_fd >= 0)
		close(dir_fd);
	free(segs);
	return error;
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

	if ((error = brt_blob_key_check(key)) < 0)
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

static int fs_copy(brt_blobstore *bs, const char *from, const char *to)
{
	fs_store *fs = (fs_store *)bs;
	struct stat st;
	int error;

	if ((error = brt_blob_key_check(from)) < 0 || (error = brt_blob_key_check(to)) < 0)
		return error;
	for (int attempt = 0; attempt < FS_PLACE_ATTEMPTS; attempt++) {
		if (fstatat(fs->blobs_fd, from, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				return brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", from);
			return fs_io_error(errno, "stat", from);
		}
		if (!S_ISREG(st.st_mode))
			return brt_error_set(BRT_ENOTFOUND, "blob store: %s not found", from);
		if ((error = make_key_parents(fs, to)) < 0)
			return error;
		/* Objects never change, so a second name for the same file is
		 * a copy; link() never replaces an existing name. */
		if (linkat(fs->blobs_fd, from, fs->blobs_fd, to, 0) == 0)
			return fsync_key_parent(fs, to);
		if (errno == EEXIST)
			return brt_error_set(BRT_EEXISTS, "blob store: %s exists", to);
		if (errno != ENOENT)
			return fs_io_error(errno, "copy to", to);
		/* `from` went, or remove() pruned the directory of `to`. */
	}
	return brt_error_set(BRT_EIO, "blob store: directory of %s keeps disappearing", to);
}

/* Walk the directory `dir_fd` (owned: closed here) whose key prefix is
 * key[0..key_len), calling `cb` with each object's size and its last
 * change (ctime: publishing an object renames or links it, which sets
 * it, whatever the age of the data). */
static int list_dir(int dir_fd, char *key, size_t key_len, int depth, brt_object_list_cb cb, void *payload)
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
			valid = valid &&
				(is_key_char(entry->d_name[i]) || (i > 0 && entry->d_name[i] == '.'));
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
			int64_t changed = (int64_t)st.st_ctim.tv_sec * 1000 + st.st_ctim.tv_nsec / 1000000;

			if ((error = cb(key, (uint64_t)st.st_size, changed, payload)) != 0)
				break;
		} else if (S_ISDIR(st.st_mode) && depth < FS_LIST_DEPTH_MAX) {
			int sub = openat(dir_fd, entry->d_name,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
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

static int fs_list_dated(brt_blobstore *bs, brt_object_list_cb cb, void *payload)
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

typedef struct undated_list {
	int (*cb)(const char *key, uint64_t size, void *payload);
	void *payload;
} undated_list;

static int undated(const char *key, uint64_t size, int64_t changed_ms, void *payload)
{
	undated_list *u = payload;

	(void)changed_ms;
	return u->cb(key, size, u->payload);
}

static int fs_list(brt_blobstore *bs, int (*cb)(const char *key, uint64_t size, void *payload), void *payload)
{
	undated_list u = {cb, payload};

	return fs_list_dated(bs, undated, &u);
}

/* Bytes and newest modification of the upload directory `fd` (owned). */
static int measure_upload(uint64_t *size_out, int64_t *mtime_out, int fd, const char *upload_id)
{
	struct dirent *entry;
	struct stat st;
	DIR *dir = fdopendir(fd);

	if (!dir) {
		close(fd);
		return fs_io_error(errno, "list upload", upload_id);
	}
	while ((entry = readdir(dir))) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		if (fstatat(fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
			continue;
		*size_out += (uint64_t)st.st_size;
		if (mtime_ms(&st) > *mtime_out)
			*mtime_out = mtime_ms(&st);
	}
	closedir(dir);
	return 0;
}

static int fs_upload_list(brt_blobstore *bs, brt_upload_list_cb cb, void *payload)
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
		uint64_t size = 0;
		int64_t mtime;

		errno = 0;
		if (!(entry = readdir(dir))) {
			if (errno != 0)
				error = fs_io_error(errno, "list", "uploads");
			break;
		}
		/* Only names that can be upload ids; anything else is foreign. */
		if (brt_upload_id_check(entry->d_name) < 0) {
			brt_error_clear();
			continue;
		}
		if (fstatat(fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue; /* removed while we walk */
		mtime = mtime_ms(&st);
		if (S_ISREG(st.st_mode)) {
			/* A plain file: the layout before segments. */
			size = (uint64_t)st.st_size;
		} else if (S_ISDIR(st.st_mode)) {
			int sub = openat(fd, entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				continue;
			if ((error = measure_upload(&size, &mtime, sub, entry->d_name)) < 0)
				break;
		} else {
			continue;
		}
		if ((error = cb(entry->d_name, size, mtime, payload)) != 0)
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

/* The running boot's id into `out` ("" if unknown). */
static void read_boot_id(char out[BOOT_ID_LEN + 1])
{
	char buf[BOOT_ID_LEN + 2];
	ssize_t n;
	int fd;

	out[0] = '\0';
	if ((fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n == BOOT_ID_LEN + 1 && buf[BOOT_ID_LEN] == '\n' && is_boot_id(buf)) {
		memcpy(out, buf, BOOT_ID_LEN);
		out[BOOT_ID_LEN] = '\0';
	}
}

int brt_blobstore_fs_open(brt_blobstore **out, const char *root)
{
	fs_store *fs = NULL;
	const char *env;
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
	read_boot_id(fs->boot);
	env = getenv("BERTH_FS_SYNC_CHUNKS");
	fs->sync_chunks = fs->boot[0] == '\0' || (env && strcmp(env, "1") == 0);

	fs->base.version = BRT_BLOBSTORE_VERSION;
	fs->base.name = "filesystem";
	fs->base.stat = fs_stat;
	fs->base.reader_open = fs_reader_open;
	fs->base.open_fd = fs_open_fd;
	fs->base.writer_open = fs_writer_open;
	fs->base.commit = fs_commit;
	fs->base.upload_remove = fs_upload_remove;
	fs->base.remove = fs_remove;
	fs->base.copy = fs_copy;
	fs->base.list = fs_list;
	fs->base.list_dated = fs_list_dated;
	fs->base.free = fs_free;
	fs->base.upload_list = fs_upload_list;
	fs->base.upload_prune = fs_upload_prune;
	*out = &fs->base;
	fs = NULL;
done:
	fs_free(fs ? &fs->base : NULL);
	return error;
}
