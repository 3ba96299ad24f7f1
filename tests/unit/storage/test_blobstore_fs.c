/* The filesystem blob store driver: the shared suite (plain and with
 * injected faults) on a fresh temporary directory, then what only a
 * filesystem can show: the on-disk layout (one segment file per attempt,
 * a one-segment commit that renames without copying), no leftovers in
 * uploads/, read-only objects, pruned fan-out directories, data surviving
 * a writer process that dies without cleaning up, a real write error (a
 * file size limit; the failed attempt gives back everything it wrote), a
 * real commit error (a file blocking the fan-out directory), planted
 * symlinks and files of the previous layout, and commits racing removals
 * that prune the directory they need.  Also brt_blob_key and the driver
 * table. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "blobstore_suite.h"
#include "common/error.h"
#include "storage/blobstore.h"

#define RACE_ITERATIONS 300

static char tmp_root[PATH_MAX];

static void path_join(char *out, const char *a, const char *b)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", a, b);

	if (n < 0 || n >= PATH_MAX) {
		fprintf(stderr, "path too long: %s/%s\n", a, b);
		exit(1);
	}
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void remove_tree(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Entries in a directory other than "." and ".."; -1 if unreadable. */
static int count_entries(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *entry;
	int count = 0;

	if (!dir)
		return -1;
	while ((entry = readdir(dir)))
		if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
			count++;
	closedir(dir);
	return count;
}

/* Walk blobs/: every name is a key component, every file is read-only. */
static int blobs_files, blobs_bad_names, blobs_writable;

static int audit_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const char *name = path + ftw->base;

	if (ftw->level == 0)
		return 0;
	for (const char *p = name; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) {
			fprintf(stderr, "unexpected name in blobs/: %s\n", path);
			blobs_bad_names++;
			break;
		}
	}
	if (type == FTW_F) {
		blobs_files++;
		if (st->st_mode & 0222) {
			fprintf(stderr, "object is writable: %s (mode %o)\n", path,
				(unsigned)st->st_mode & 0777);
			blobs_writable++;
		}
	} else if (type != FTW_D && type != FTW_DP) {
		fprintf(stderr, "unexpected entry type in blobs/: %s\n", path);
		blobs_bad_names++;
	}
	return 0;
}

static void audit_store(const char *root)
{
	char blobs[PATH_MAX], uploads[PATH_MAX];

	path_join(blobs, root, "blobs");
	path_join(uploads, root, "uploads");
	CHECK_EQ_INT(count_entries(uploads), 0);
	blobs_files = blobs_bad_names = blobs_writable = 0;
	CHECK_EQ_INT(nftw(blobs, audit_entry, 16, FTW_PHYS), 0);
	CHECK_EQ_INT(blobs_bad_names, 0);
	CHECK_EQ_INT(blobs_writable, 0);
}

static void test_blob_key(void)
{
	char key[BRT_BLOB_KEY_MAX];
	char digest[8 + 128 + 1];
	char expected[BRT_BLOB_KEY_MAX];

	brt_blob_key(key, "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	CHECK_EQ_STR(key, "sha256/01/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");

	memcpy(digest, "sha512:", 7);
	memset(digest + 7, 'e', 128);
	digest[7 + 128] = '\0';
	memcpy(expected, "sha512/ee/", 10);
	memset(expected + 10, 'e', 128);
	expected[10 + 128] = '\0';
	brt_blob_key(key, digest);
	CHECK_EQ_STR(key, expected);

	/* Unvalidated input never yields a usable key. */
	brt_blob_key(key, "no-colon");
	CHECK_EQ_STR(key, "");
	brt_blob_key(key, ":abcd");
	CHECK_EQ_STR(key, "");
	brt_blob_key(key, "sha256:a");
	CHECK_EQ_STR(key, "");
}

static void test_driver_table(void)
{
	char root[PATH_MAX];
	brt_blobstore *bs = (brt_blobstore *)1;
	int fd = 0;
	uint64_t size;

	path_join(root, tmp_root, "table");
	CHECK_EQ_INT(brt_blobstore_open(&bs, "no-such-driver", root), BRT_ENOTFOUND);
	CHECK(bs == NULL);
	CHECK_EQ_INT(brt_blobstore_open(&bs, "filesystem", root), 0);
	CHECK(bs != NULL);
	if (!bs)
		return;
	CHECK_EQ_INT(brt_blobstore_check(bs), 0);
	/* A driver built for another version, or missing a required slot,
	 * is refused; a missing optional slot answers "unsupported". */
	bs->version--;
	CHECK_EQ_INT(brt_blobstore_check(bs), BRT_EINVALID);
	bs->version++;
	{
		int (*copy)(brt_blobstore *, const char *, const char *) = bs->copy;
		int (*open_fd)(int *, uint64_t *, brt_blobstore *, const char *) = bs->open_fd;
		bs->copy = NULL;
		CHECK_EQ_INT(brt_blobstore_check(bs), BRT_EINVALID);
		bs->copy = copy;
		bs->open_fd = NULL;
		CHECK_EQ_INT(brt_blobstore_check(bs), 0);
		CHECK_EQ_INT(brt_blobstore_open_fd(&fd, &size, bs, "sha256/00/00"), BRT_EUNSUPPORTED);
		CHECK_EQ_INT(fd, -1);
		bs->open_fd = open_fd;
	}
	brt_blobstore_free(bs);
	brt_blobstore_free(NULL);
}

static void test_open(void)
{
	char root[PATH_MAX], path[PATH_MAX];
	brt_blobstore *bs = NULL;
	struct stat st;
	int fd;

	/* mkdir -p of the root and both subdirectories. */
	path_join(root, tmp_root, "open/a/b/c");
	CHECK_EQ_INT(brt_blobstore_fs_open(&bs, root), 0);
	CHECK(bs != NULL);
	if (bs) {
		CHECK_EQ_STR(bs->name, "filesystem");
		bs->free(bs);
		bs = NULL;
	}
	path_join(path, root, "blobs");
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0755);
	path_join(path, root, "uploads");
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0755);

	/* Opening again is fine. */
	CHECK_EQ_INT(brt_blobstore_fs_open(&bs, root), 0);
	if (bs)
		bs->free(bs);
	bs = NULL;

	/* A root that is a file, or empty. */
	path_join(path, tmp_root, "open/file");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	bs = (brt_blobstore *)1;
	CHECK_EQ_INT(brt_blobstore_fs_open(&bs, path), BRT_EIO);
	CHECK(bs == NULL);
	CHECK_EQ_INT(brt_blobstore_fs_open(&bs, ""), BRT_EINVALID);
	CHECK(bs == NULL);
}

/* One chunk of `len` bytes for upload `id`, adopted into `row`. */
static int write_upload(brt_blobstore *bs, const char *id, suite_row *row, const unsigned char *data,
			size_t len)
{
	return suite_chunk(bs, id, row, data, len, len ? len : 1);
}

/* The inode of the one segment of upload `id`; 0 if there is not exactly
 * one. */
static ino_t only_segment(const char *root, const char *id)
{
	char path[PATH_MAX], dir_path[PATH_MAX];
	struct dirent *entry;
	struct stat st;
	ino_t ino = 0;
	int count = 0;
	DIR *dir;

	path_join(dir_path, root, "uploads");
	path_join(path, dir_path, id);
	if (!(dir = opendir(path)))
		return 0;
	while ((entry = readdir(dir))) {
		char file[PATH_MAX];
		if (entry->d_name[0] == '.')
			continue;
		path_join(file, path, entry->d_name);
		if (stat(file, &st) == 0) {
			ino = st.st_ino;
			count++;
		}
	}
	closedir(dir);
	return count == 1 ? ino : 0;
}

/* Layout, modes, pruning and traversal attempts on the disk itself. */
static void test_layout(brt_blobstore *bs, const char *root)
{
	const char *id = "0123456789abcdef0123456789abcdef";
	unsigned char *data = suite_make(12345, 500), buf[12345 + 1];
	char key[BRT_BLOB_KEY_MAX], path[PATH_MAX], blobs[PATH_MAX], dir[PATH_MAX], upload_dir[PATH_MAX];
	suite_row row = {0};
	struct stat st;
	uint64_t size = 0;
	ino_t segment;
	ssize_t n;
	int fd;

	CHECK(data != NULL);
	if (!data)
		return;
	suite_key_of(key, data, 12345);
	path_join(blobs, root, "blobs");
	path_join(path, blobs, key);
	path_join(dir, root, "uploads");
	path_join(upload_dir, dir, id);

	/* One attempt, one segment file in uploads/<id>/.  The next attempt
	 * appends to that segment under its lock (no file of its own); while
	 * it holds the lock a racing attempt writes a segment of its own;
	 * dropped, each takes back exactly its own bytes. */
	CHECK_EQ_INT(write_upload(bs, id, &row, data, 12345), 0);
	CHECK_EQ_INT(count_entries(dir), 1);
	CHECK_EQ_INT(count_entries(upload_dir), 1);
	segment = only_segment(root, id);
	{
		brt_blob_writer *w = NULL, *racer = NULL;
		CHECK_EQ_INT(suite_attempt(&w, bs, id, &row), 0);
		CHECK_EQ_INT(suite_attempt(&racer, bs, id, &row), 0);
		if (w && racer) {
			CHECK_EQ_INT(w->append(w, data, 100), 0);
			CHECK_EQ_INT(count_entries(upload_dir), 1);
			CHECK_EQ_INT(suite_upload_size(bs, id), 12445);
			CHECK_EQ_INT(racer->append(racer, data, 50), 0);
			CHECK_EQ_INT(count_entries(upload_dir), 2);
			w->free(w);
			racer->free(racer);
		}
		CHECK_EQ_INT(count_entries(upload_dir), 1);
		CHECK_EQ_INT(suite_upload_size(bs, id), 12345);
		CHECK(only_segment(root, id) == segment);
	}
	/* A one-segment commit renames the segment: no byte is copied. */
	CHECK(segment != 0);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_row_free(&row);
	CHECK_EQ_INT(count_entries(dir), 0);

	/* The object is a read-only regular file at blobs/<key>. */
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 12345);
	CHECK(st.st_ino == segment);
	CHECK_EQ_INT(st.st_mode & 0222, 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf));
		CHECK(n == 12345 && memcmp(buf, data, 12345) == 0);
		close(fd);
	}
	fd = -1;
	CHECK_EQ_INT(bs->open_fd(&fd, &size, bs, key), 0);
	CHECK_EQ_INT(size, 12345);
	CHECK(fd >= 0 && (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY);
	CHECK(fd >= 0 && fcntl(fd, F_GETFD) & FD_CLOEXEC);
	if (fd >= 0)
		close(fd);

	/* Removing the only object of a fan-out directory prunes it. */
	memcpy(dir, path, sizeof(dir));
	*strrchr(dir, '/') = '\0';
	CHECK(is_dir(dir));
	CHECK_EQ_INT(bs->remove(bs, key), 0);
	CHECK(!exists(path));
	CHECK(!exists(dir));
	CHECK(is_dir(blobs));

	/* A commit while an attempt appends to the segment under its lock
	 * copies out the bytes it owns instead of renaming the segment, so
	 * the attempt never writes into the object; the attempt then finds
	 * the upload ended. */
	CHECK_EQ_INT(write_upload(bs, id, &row, data, 12345), 0);
	segment = only_segment(root, id);
	{
		brt_blob_writer *w = NULL;
		const unsigned char *state;
		size_t state_len;
		CHECK_EQ_INT(suite_attempt(&w, bs, id, &row), 0);
		if (w)
			CHECK_EQ_INT(w->append(w, data, 777), 0);
		CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
		CHECK(stat(path, &st) == 0 && st.st_ino != segment && st.st_size == 12345);
		if (w) {
			CHECK_EQ_INT(w->append(w, data, 777), 0);
			CHECK_EQ_INT(w->sync(w, &state, &state_len), BRT_ECONFLICT);
			w->free(w);
		}
		CHECK(stat(path, &st) == 0 && st.st_size == 12345);
		suite_expect_content(bs, key, data, 12345);
		CHECK_EQ_INT(bs->remove(bs, key), 0);
		suite_row_free(&row);
	}

	/* Chunks continue one segment, which commit renames into place. */
	CHECK_EQ_INT(write_upload(bs, id, &row, data, 4096), 0);
	segment = only_segment(root, id);
	CHECK_EQ_INT(write_upload(bs, id, &row, data + 4096, 4096), 0);
	CHECK_EQ_INT(write_upload(bs, id, &row, data + 8192, 12345 - 8192), 0);
	CHECK(segment != 0 && only_segment(root, id) == segment);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_row_free(&row);
	CHECK(stat(path, &st) == 0 && st.st_ino == segment && st.st_size == 12345);
	suite_expect_content(bs, key, data, 12345);
	CHECK_EQ_INT(bs->remove(bs, key), 0);

	/* Two segments (the second written while an attempt that lost held
	 * the first one's lock) are joined into a new file, also read-only. */
	CHECK_EQ_INT(write_upload(bs, id, &row, data, 5000), 0);
	{
		brt_blob_writer *holder = NULL;
		CHECK_EQ_INT(suite_attempt(&holder, bs, id, &row), 0);
		if (holder)
			CHECK_EQ_INT(holder->append(holder, data, 10), 0);
		CHECK_EQ_INT(write_upload(bs, id, &row, data + 5000, 12345 - 5000), 0);
		if (holder)
			holder->free(holder);
	}
	CHECK_EQ_INT(count_entries(upload_dir), 2);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_row_free(&row);
	CHECK(!exists(upload_dir));
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 12345 && (st.st_mode & 0222) == 0);
	suite_expect_content(bs, key, data, 12345);
	CHECK_EQ_INT(bs->remove(bs, key), 0);

	/* Traversal attempts touch nothing outside the store. */
	CHECK_EQ_INT(write_upload(bs, id, &row, data, 10), 0);
	CHECK_EQ_INT(suite_commit(bs, id, &row, "../escape"), BRT_EINVALID);
	CHECK_EQ_INT(suite_commit(bs, id, &row, "sha256/../../escape"), BRT_EINVALID);
	path_join(path, root, "escape");
	CHECK(!exists(path));
	CHECK_EQ_INT(bs->upload_remove(bs, id, row.state, row.state_len), 0);
	CHECK_EQ_INT(bs->upload_remove(bs, "../../../../../../../../escape00", NULL, 0), BRT_EINVALID);

	/* Resuming an upload whose data is gone creates nothing. */
	{
		brt_blob_writer *w = NULL;
		CHECK_EQ_INT(suite_attempt(&w, bs, id, &row), BRT_ENOTFOUND);
		CHECK(w == NULL);
		path_join(dir, root, "uploads");
		CHECK_EQ_INT(count_entries(dir), 0);
	}
	suite_row_free(&row);
	CHECK_EQ_INT(bs->stat(bs, key, &size), BRT_ENOTFOUND);
	free(data);
}

/* list() reports only names that can be keys. */
static void test_list_skips_foreign(brt_blobstore *bs, const char *root)
{
	static const char *const foreign[] = {
		"blobs/sha256/ab/.tmp-1234",
		"blobs/UPPER",
		"blobs/.a.b",
		"blobs/sha256/ab/x~",
	};
	suite_keyset got = {0};
	char path[PATH_MAX];
	int fd;

	path_join(path, root, "blobs/sha256");
	mkdir(path, 0755);
	path_join(path, root, "blobs/sha256/ab");
	mkdir(path, 0755);
	for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
		path_join(path, root, foreign[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		CHECK(fd >= 0);
		if (fd >= 0)
			close(fd);
	}
	path_join(path, root, "blobs/sha256/ab/real");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
	CHECK(fd >= 0 && write(fd, "xyz", 3) == 3);
	if (fd >= 0)
		close(fd);

	CHECK_EQ_INT(bs->list(bs, suite_collect_cb, &got), 0);
	CHECK_EQ_INT(got.count, 1);
	CHECK(got.count >= 1 && strcmp(got.keys[0], "sha256/ab/real") == 0 && got.sizes[0] == 3);
	suite_keyset_free(&got);

	for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
		path_join(path, root, foreign[i]);
		unlink(path);
	}
	CHECK_EQ_INT(bs->remove(bs, "sha256/ab/real"), 0);
}

/* A symlink planted as an upload, or a plain file of the previous layout,
 * is not followed and never taken for acknowledged data. */
static void test_upload_planted(brt_blobstore *bs, const char *root)
{
	const char *id = "fedcba9876543210fedcba9876543210", *old = "fedcba9876543210fedcba98765432ff";
	char target[PATH_MAX], dir[PATH_MAX], link_path[PATH_MAX], old_path[PATH_MAX], key[BRT_BLOB_KEY_MAX];
	char buf[16];
	suite_row row = {0};
	unsigned long removed = 0;
	int fd;

	path_join(target, root, "victim");
	fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0 && write(fd, "precious", 8) == 8);
	if (fd >= 0)
		close(fd);
	path_join(dir, root, "uploads");
	path_join(link_path, dir, id);
	CHECK_EQ_INT(symlink(target, link_path), 0);

	CHECK_EQ_INT(write_upload(bs, id, &row, (const unsigned char *)"fresh", 5), 0);
	fd = open(target, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == 8 && memcmp(buf, "precious", 8) == 0);
	if (fd >= 0)
		close(fd);
	CHECK(is_dir(link_path));
	suite_key_of(key, "fresh", 5);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_expect_content(bs, key, (const unsigned char *)"fresh", 5);
	CHECK_EQ_INT(bs->remove(bs, key), 0);
	suite_row_free(&row);
	/* upload_remove unlinks a link, not its target. */
	CHECK_EQ_INT(symlink(target, link_path), 0);
	CHECK_EQ_INT(bs->upload_remove(bs, id, NULL, 0), 0);
	CHECK(!exists(link_path));
	CHECK(exists(target));
	unlink(target);

	/* uploads/<id> as a plain file (the layout before segments): listed,
	 * pruned once old, removed with the upload. */
	path_join(old_path, dir, old);
	fd = open(old_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0 && write(fd, "leftover", 8) == 8);
	if (fd >= 0)
		close(fd);
	CHECK_EQ_INT(suite_upload_size(bs, old), 8);
	CHECK_EQ_INT(bs->upload_prune(&removed, bs, old, NULL, 0, 0), 0);
	CHECK_EQ_INT(removed, 0);
	CHECK_EQ_INT(bs->upload_prune(&removed, bs, old, NULL, 0, INT64_MAX), 0);
	CHECK_EQ_INT(removed, 1);
	CHECK(!exists(old_path));
	fd = open(old_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	CHECK_EQ_INT(bs->upload_remove(bs, old, NULL, 0), 0);
	CHECK(!exists(old_path));
	/* A new upload under such a name starts from nothing. */
	fd = open(old_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0 && write(fd, "leftover", 8) == 8);
	if (fd >= 0)
		close(fd);
	CHECK_EQ_INT(write_upload(bs, old, &row, (const unsigned char *)"new", 3), 0);
	CHECK_EQ_INT(suite_upload_size(bs, old), 3);
	CHECK_EQ_INT(bs->upload_remove(bs, old, row.state, row.state_len), 0);
	suite_row_free(&row);
}

/* A writer process that dies without free() loses nothing adopted; what
 * it synced but never adopted is swept. */
static void test_crash(brt_blobstore *bs)
{
	const char *id = "00000000000000000000000000c0ffee";
	unsigned char *data = suite_make(25000, 600);
	unsigned char state[256];
	char key[BRT_BLOB_KEY_MAX];
	suite_row row = {0};
	unsigned long removed = 0;
	int status = 0, pipefd[2];
	ssize_t got;
	pid_t pid;

	CHECK(data != NULL && pipe(pipefd) == 0);
	if (!data)
		return;
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		brt_blob_writer *w = NULL;
		suite_row child = {0};
		close(pipefd[0]);
		if (write_upload(bs, id, &child, data, 20000) != 0 ||
		    write(pipefd[1], child.state, child.state_len) != (ssize_t)child.state_len)
			_exit(2);
		/* Appended and synced but never adopted. */
		if (suite_attempt(&w, bs, id, &child) != 0 || w->append(w, data + 20000, 5000) != 0)
			_exit(3);
		_exit(0);
	}
	close(pipefd[1]);
	if (pid < 0)
		goto done;
	got = read(pipefd[0], state, sizeof(state));
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(got > 0);
	if (got <= 0)
		goto done;
	row.state = malloc((size_t)got);
	if (!row.state)
		goto done;
	memcpy(row.state, state, (size_t)got);
	row.state_len = (size_t)got;
	row.offset = 20000;

	CHECK_EQ_INT(suite_upload_size(bs, id), 25000);
	CHECK_EQ_INT(bs->upload_prune(&removed, bs, id, row.state, row.state_len, INT64_MAX), 0);
	CHECK_EQ_INT(removed, 1);
	suite_key_of(key, data, 20000);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_expect_content(bs, key, data, 20000);
	CHECK_EQ_INT(bs->remove(bs, key), 0);
done:
	close(pipefd[0]);
	suite_row_free(&row);
	free(data);
}

/* A real write error: a file size limit makes write() fail with EFBIG
 * after a short write.  Runs in a child so the limit stays there. */
static void test_write_error(brt_blobstore *bs)
{
	const char *id = "0000000000000000000000000000efb1";
	const size_t part = 48 << 10;
	unsigned char *data = suite_make(3 * part, 700);
	unsigned char state[256];
	char key[BRT_BLOB_KEY_MAX];
	suite_row row = {0};
	int status = 0, pipefd[2];
	ssize_t got = 0;
	pid_t pid;

	CHECK(data != NULL && pipe(pipefd) == 0);
	if (!data)
		return;
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct rlimit limit = {64 << 10, 64 << 10};
		brt_blob_writer *w = NULL;
		const unsigned char *st;
		size_t len;
		int bad = 0;

		close(pipefd[0]);
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &limit) != 0)
			_exit(10);
		if (write_upload(bs, id, &row, data, part) != 0 ||
		    write(pipefd[1], row.state, row.state_len) != (ssize_t)row.state_len)
			_exit(11);
		if (suite_attempt(&w, bs, id, &row) != 0)
			_exit(12);
		bad += w->append(w, data + part, 2 * part) != BRT_EIO;
		if (!strstr(brt_error_last(), id) || !strstr(brt_error_last(), "File too large")) {
			fprintf(stderr, "unexpected detail: %s\n", brt_error_last());
			bad++;
		}
		bad += w->size != part;
		bad += w->append(w, data + part, 1) != BRT_EIO;
		bad += w->sync(w, &st, &len) != BRT_EIO;
		w->free(w);
		_exit(bad);
	}
	close(pipefd[1]);
	if (pid < 0)
		goto done;
	got = read(pipefd[0], state, sizeof(state));
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ_INT(WEXITSTATUS(status), 0);
	CHECK(got > 0);
	if (got <= 0 || !(row.state = malloc((size_t)got)))
		goto done;
	memcpy(row.state, state, (size_t)got);
	row.state_len = (size_t)got;
	row.offset = part;

	/* The failed attempt gave back all it wrote, short write and all: on
	 * a full disk that is space others need. */
	CHECK_EQ_INT(suite_upload_size(bs, id), part);
	suite_key_of(key, data, part);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_expect_content(bs, key, data, part);
	CHECK_EQ_INT(bs->remove(bs, key), 0);
done:
	close(pipefd[0]);
	suite_row_free(&row);
	free(data);
}

/* A real commit error: a file sits where the fan-out directory must go.
 * Nothing is published and the upload survives for a retry. */
static void test_commit_error(brt_blobstore *bs, const char *root)
{
	const char *id = "00000000000000000000000000000bad";
	unsigned char *data = suite_make(4000, 800);
	suite_keyset got = {0};
	suite_row row = {0};
	char key[BRT_BLOB_KEY_MAX], blocker[PATH_MAX], path[PATH_MAX];
	uint64_t size = 0;
	int fd;

	CHECK(data != NULL);
	if (!data)
		return;
	suite_key_of(key, data, 4000);
	path_join(path, root, "blobs/sha256");
	mkdir(path, 0755);
	path_join(path, root, "blobs");
	path_join(blocker, path, key);
	*strrchr(blocker, '/') = '\0';
	fd = open(blocker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);

	for (int pieces = 1; pieces <= 2; pieces++) {
		CHECK_EQ_INT(write_upload(bs, id, &row, data, 4000 / (size_t)pieces), 0);
		if (pieces == 2)
			CHECK_EQ_INT(write_upload(bs, id, &row, data + 2000, 2000), 0);
		CHECK_EQ_INT(suite_commit(bs, id, &row, key), BRT_EIO);
		CHECK(brt_error_last()[0] != '\0');
		CHECK(strstr(brt_error_last(), tmp_root) == NULL);
		CHECK_EQ_INT(bs->stat(bs, key, &size), BRT_ENOTFOUND);
		CHECK_EQ_INT(bs->list(bs, suite_collect_cb, &got), 0);
		CHECK(suite_keyset_find(&got, key) < 0);
		suite_keyset_free(&got);
		/* Nothing of the failed commit stays behind. */
		CHECK_EQ_INT(suite_upload_size(bs, id), 4000);
		if (pieces == 1) {
			CHECK_EQ_INT(bs->upload_remove(bs, id, row.state, row.state_len), 0);
			suite_row_free(&row);
		}
	}
	unlink(blocker);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_expect_content(bs, key, data, 4000);
	CHECK(suite_upload_gone(bs, id));
	CHECK_EQ_INT(bs->remove(bs, key), 0);
	suite_row_free(&row);
	free(data);
}

/* Two threads commit, copy and remove objects in shared directories, so
 * each one's remove prunes directories the other is about to use. */
typedef struct race_thread {
	brt_blobstore *bs;
	int index;
	int failures;
	char detail[256]; /* the first failure */
} race_thread;

static void *race_main(void *arg)
{
	race_thread *t = arg;
	char id[BRT_UPLOAD_ID_LEN + 1], key[BRT_BLOB_KEY_MAX], copied[BRT_BLOB_KEY_MAX];

	snprintf(key, sizeof(key), "race/aa/t%d", t->index);
	snprintf(copied, sizeof(copied), "race/bb/t%d", t->index);
	for (int i = 0; i < RACE_ITERATIONS; i++) {
		suite_row row = {0};
		int error;

		snprintf(id, sizeof(id), "%016x%016x", (unsigned)t->index + 1, (unsigned)i);
		if ((error = write_upload(t->bs, id, &row, (const unsigned char *)"data", 4)) == 0)
			error = suite_commit(t->bs, id, &row, key);
		suite_row_free(&row);
		if (error == 0)
			error = t->bs->copy(t->bs, key, copied);
		if (error == 0)
			error = t->bs->remove(t->bs, key);
		if (error == 0)
			error = t->bs->remove(t->bs, copied);
		if (error != 0 && t->failures++ == 0) {
			snprintf(t->detail, sizeof(t->detail), "iteration %d: %s: %s", i,
				 brt_error_name(error), brt_error_last());
		}
	}
	return NULL;
}

static void test_prune_race(brt_blobstore *bs)
{
	race_thread threads[2];
	pthread_t tids[2];
	int started = 0;

	memset(threads, 0, sizeof(threads));
	for (int i = 0; i < 2; i++) {
		threads[i].bs = bs;
		threads[i].index = i;
		if (pthread_create(&tids[i], NULL, race_main, &threads[i]) == 0)
			started++;
	}
	CHECK_EQ_INT(started, 2);
	for (int i = 0; i < started; i++) {
		pthread_join(tids[i], NULL);
		if (threads[i].failures)
			fprintf(stderr, "race thread %d: %d failures, first %s\n", i, threads[i].failures,
				threads[i].detail);
		CHECK_EQ_INT(threads[i].failures, 0);
	}
}

/* Chunks stay in the page cache until commit; the state names the boot
 * that wrote them, and an upload written in another boot (a power cut or
 * a kernel crash since) is unknown, never resumed or committed. */
static void test_restart(const char *root)
{
	const char *id = "00000000000000000000000000b007ed";
	const char *other = "boot 00000000-1111-2222-3333-444444444444\n";
	unsigned char *data = suite_make(30000, 610);
	char boot[64] = "", key[BRT_BLOB_KEY_MAX];
	brt_blobstore *bs = NULL, *eager = NULL;
	brt_blob_writer *w = NULL;
	suite_row row = {0}, moved = {0};
	unsigned long removed = 0;
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");

	CHECK(data != NULL && f != NULL);
	if (f) {
		CHECK(fgets(boot, sizeof(boot), f) != NULL);
		fclose(f);
	}
	CHECK_EQ_INT(strlen(boot), 37);
	CHECK_EQ_INT(brt_blobstore_fs_open(&bs, root), 0);
	if (!bs || !data || strlen(boot) != 37)
		goto done;
	CHECK_EQ_INT(write_upload(bs, id, &row, data, 20000), 0);
	/* "boot <id>\n" first, then the one segment. */
	CHECK(row.state_len > 42 && memcmp(row.state, "boot ", 5) == 0 &&
	      memcmp(row.state + 5, boot, 37) == 0);

	/* The same state as another boot wrote it. */
	moved.offset = row.offset;
	moved.state_len = row.state_len;
	CHECK((moved.state = malloc(row.state_len)) != NULL);
	if (!moved.state)
		goto done;
	memcpy(moved.state, row.state, row.state_len);
	memcpy(moved.state, other, strlen(other));
	CHECK_EQ_INT(suite_attempt(&w, bs, id, &moved), BRT_ENOTFOUND);
	CHECK(w == NULL);
	CHECK(strstr(brt_error_last(), "restarted") != NULL);
	suite_key_of(key, data, 20000);
	CHECK_EQ_INT(suite_commit(bs, id, &moved, key), BRT_ENOTFOUND);
	/* Sweeps still read it: they remove nothing the state names. */
	CHECK_EQ_INT(bs->upload_prune(&removed, bs, id, moved.state, moved.state_len, INT64_MAX), 0);
	CHECK_EQ_INT(removed, 0);
	/* A malformed boot line is a malformed state. */
	moved.state[10] = 'x';
	CHECK_EQ_INT(suite_attempt(&w, bs, id, &moved), BRT_EINVALID);
	suite_row_free(&moved);

	/* A state of the synced kind (no boot line) continues, and its next
	 * state names this boot again. */
	moved.offset = row.offset;
	moved.state_len = row.state_len - 42;
	CHECK((moved.state = malloc(moved.state_len)) != NULL);
	if (!moved.state)
		goto done;
	memcpy(moved.state, row.state + 42, moved.state_len);
	CHECK_EQ_INT(suite_chunk(bs, id, &moved, data + 20000, 5000, 5000), 0);
	CHECK(moved.state_len > 42 && memcmp(moved.state + 5, boot, 37) == 0);

	/* BERTH_FS_SYNC_CHUNKS=1: chunks are synced before their 202; the
	 * store still takes this boot's unsynced data (and keeps saying so),
	 * and writes states without the line for uploads of its own. */
	setenv("BERTH_FS_SYNC_CHUNKS", "1", 1);
	CHECK_EQ_INT(brt_blobstore_fs_open(&eager, root), 0);
	unsetenv("BERTH_FS_SYNC_CHUNKS");
	if (!eager)
		goto done;
	CHECK_EQ_INT(suite_chunk(eager, id, &moved, data + 25000, 5000, 5000), 0);
	CHECK(moved.state_len > 42 && memcmp(moved.state + 5, boot, 37) == 0);
	suite_key_of(key, data, 30000);
	CHECK_EQ_INT(suite_commit(eager, id, &moved, key), 0);
	suite_expect_content(eager, key, data, 30000);
	CHECK_EQ_INT(eager->remove(eager, key), 0);
	suite_row_free(&row);
	CHECK_EQ_INT(write_upload(eager, id, &row, data, 20000), 0);
	CHECK(row.state_len > 0 && memcmp(row.state, "boot ", 5) != 0);
	CHECK_EQ_INT(eager->upload_remove(eager, id, row.state, row.state_len), 0);
done:
	if (eager)
		eager->free(eager);
	if (bs)
		bs->free(bs);
	suite_row_free(&row);
	suite_row_free(&moved);
	free(data);
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	char root[PATH_MAX];
	brt_blobstore *bs = NULL;
	int n;

	n = snprintf(tmp_root, sizeof(tmp_root), "%s/berth-blobstore-fs-XXXXXX",
		     base && *base ? base : "/tmp");
	if (n < 0 || (size_t)n >= sizeof(tmp_root) || !mkdtemp(tmp_root)) {
		fprintf(stderr, "cannot create a temporary directory\n");
		return 1;
	}
	/* Objects must come out read-only whatever the umask. */
	umask(0);

	test_blob_key();
	test_driver_table();
	test_open();

	path_join(root, tmp_root, "suite");
	CHECK_EQ_INT(brt_blobstore_fs_open(&bs, root), 0);
	if (bs) {
		CHECK_EQ_INT(blobstore_suite_run(bs, "filesystem"), 0);
		CHECK_EQ_INT(blobstore_suite_run_faults(bs, "filesystem"), 0);
		audit_store(root);
		bs->free(bs);
		bs = NULL;
	}

	path_join(root, tmp_root, "fs");
	CHECK_EQ_INT(brt_blobstore_fs_open(&bs, root), 0);
	if (bs) {
		test_layout(bs, root);
		test_list_skips_foreign(bs, root);
		test_upload_planted(bs, root);
		test_crash(bs);
		test_write_error(bs);
		test_commit_error(bs, root);
		test_prune_race(bs);
		audit_store(root);
		bs->free(bs);
		bs = NULL;
	}

	path_join(root, tmp_root, "restart");
	test_restart(root);

	/* A second store on the same root sees what the first committed. */
	path_join(root, tmp_root, "suite");
	CHECK_EQ_INT(brt_blobstore_fs_open(&bs, root), 0);
	if (bs) {
		suite_keyset got = {0};
		CHECK_EQ_INT(bs->list(bs, suite_collect_cb, &got), 0);
		CHECK(got.count > 0);
		suite_keyset_free(&got);
		bs->free(bs);
	}

	remove_tree(tmp_root);
	CHECK(!exists(tmp_root));
	return check_exit("test_blobstore_fs");
}
