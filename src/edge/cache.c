/* The edge cache on disk (see cache.h for the layout and its rules).
 * Commits and eviction run under one lock so that the total size they
 * work from stays right; lookups take no lock: a rename makes an object
 * appear whole, and an object evicted while being served stays readable
 * through the descriptor already open. */
#include "edge/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"

struct brt_edge_cache {
	char *dir;
	uint64_t max_bytes;
	pthread_mutex_t lock;
};

struct brt_edge_cache_writer {
	brt_edge_cache *cache;
	char repository_hex[65];
	brt_digest digest;
	int64_t expected_length;
	uint64_t written;
	brt_hasher hasher;
	int fd;
	int failed;
	char temp_path[PATH_MAX];
};

static const char *alg_name(const brt_digest *digest)
{
	return digest->alg == BRT_DIGEST_SHA512 ? "sha512" : "sha256";
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return brt_error_set(BRT_EIO, "cannot create %s: %s", path, strerror(errno));
	return 0;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), error = 0;

	if (fd < 0 || fsync(fd) < 0)
		error = brt_error_set(BRT_EIO, "cannot sync %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return error;
}

static int clear_temp(const char *tmp)
{
	DIR *d = opendir(tmp);
	struct dirent *e;
	char path[PATH_MAX];

	if (!d)
		return brt_error_set(BRT_EIO, "cannot open %s: %s", tmp, strerror(errno));
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", tmp, e->d_name) >= (int)sizeof(path))
			continue;
		if (unlink(path) == 0)
			brt_log_info("cache: removed leftover temp file %s", path);
	}
	closedir(d);
	return 0;
}

int brt_edge_cache_open(brt_edge_cache **out, const char *dir, uint64_t max_bytes)
{
	static const char *const subdirs[] = {"objects", "objects/sha256", "objects/sha512", "repos", "tmp"};
	brt_edge_cache *cache = NULL;
	char path[PATH_MAX];
	int error = 0;

	*out = NULL;
	if (strlen(dir) > PATH_MAX - 300) {
		error = brt_error_set(BRT_EINVALID, "cache directory path too long");
		goto done;
	}
	if (!(cache = calloc(1, sizeof(*cache))) || !(cache->dir = strdup(dir))) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	cache->max_bytes = max_bytes;
	pthread_mutex_init(&cache->lock, NULL);
	if ((error = make_dir(dir)) < 0)
		goto done;
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);
		if ((error = make_dir(path)) < 0)
			goto done;
	}
	snprintf(path, sizeof(path), "%s/tmp", dir);
	if ((error = clear_temp(path)) < 0)
		goto done;
	*out = cache;
	cache = NULL;
done:
	brt_edge_cache_free(cache);
	return error;
}

void brt_edge_cache_free(brt_edge_cache *cache)
{
	if (!cache)
		return;
	if (cache->dir)
		pthread_mutex_destroy(&cache->lock);
	free(cache->dir);
	free(cache);
}

static void repository_hex(char *out, const char *repository)
{
	brt_digest d;

	brt_digest_of(&d, BRT_DIGEST_SHA256, repository, strlen(repository));
	snprintf(out, 65, "%s", brt_digest_hex(&d));
}

static void object_path(char *out, const brt_edge_cache *cache, const brt_digest *digest, const char *suffix)
{
	snprintf(out, PATH_MAX, "%s/objects/%s/%s%s", cache->dir, alg_name(digest), brt_digest_hex(digest),
		 suffix);
}

static void grant_path(char *out, const brt_edge_cache *cache, const char *repo_hex, const brt_digest *digest)
{
	snprintf(out, PATH_MAX, "%s/repos/%s/%s-%s", cache->dir, repo_hex, alg_name(digest),
		 brt_digest_hex(digest));
}

int brt_edge_cache_lookup(int *fd_out, uint64_t *size_out, char *media_type_out, brt_edge_cache *cache,
			  const char *repository, const brt_digest *digest)
{
	char path[PATH_MAX], repo_hex[65];
	struct stat st;
	ssize_t n;
	int fd = -1, type_fd;

	*fd_out = -1;
	*size_out = 0;
	snprintf(media_type_out, BRT_EDGE_MEDIA_TYPE_MAX + 1, "application/octet-stream");
	repository_hex(repo_hex, repository);
	grant_path(path, cache, repo_hex, digest);
	if (access(path, F_OK) < 0)
		return brt_error_set(BRT_ENOTFOUND, "no grant for this repository");
	object_path(path, cache, digest, "");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return brt_error_set(BRT_ENOTFOUND, "not cached");
	if (fstat(fd, &st) < 0) {
		close(fd);
		return brt_error_set(BRT_EIO, "cannot stat %s: %s", path, strerror(errno));
	}
	/* Recently used: eviction goes by modification time. */
	futimens(fd, NULL);
	object_path(path, cache, digest, ".type");
	if ((type_fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(type_fd, media_type_out, BRT_EDGE_MEDIA_TYPE_MAX);
		if (n > 0) {
			media_type_out[n] = '\0';
			media_type_out[strcspn(media_type_out, "\r\n")] = '\0';
		}
		close(type_fd);
	}
	*fd_out = fd;
	*size_out = (uint64_t)st.st_size;
	return 0;
}

int brt_edge_cache_writer_open(brt_edge_cache_writer **out, brt_edge_cache *cache, const char *repository,
			       const brt_digest *digest, int64_t expected_length)
{
	brt_edge_cache_writer *w;
	unsigned char random[8];

	*out = NULL;
	if (!(w = calloc(1, sizeof(*w))))
		return brt_error_set(BRT_ENOMEM, "out of memory");
	w->cache = cache;
	w->digest = *digest;
	w->expected_length = expected_length;
	w->fd = -1;
	repository_hex(w->repository_hex, repository);
	brt_hasher_init(&w->hasher, digest->alg);
	if (getrandom(random, sizeof(random), 0) != (ssize_t)sizeof(random)) {
		free(w);
		return brt_error_set(BRT_EIO, "no random bytes: %s", strerror(errno));
	}
	snprintf(w->temp_path, sizeof(w->temp_path), "%s/tmp/%02x%02x%02x%02x%02x%02x%02x%02x", cache->dir,
		 random[0], random[1], random[2], random[3], random[4], random[5], random[6], random[7]);
	if ((w->fd = open(w->temp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		int error = brt_error_set(BRT_EIO, "cannot create %s: %s", w->temp_path, strerror(errno));
		free(w);
		return error;
	}
	*out = w;
	return 0;
}

int brt_edge_cache_writer_add(brt_edge_cache_writer *w, const void *data, size_t len)
{
	const char *p = data;

	if (w->failed)
		return BRT_EIO;
	brt_hasher_update(&w->hasher, data, len);
	w->written += len;
	while (len > 0) {
		ssize_t n = write(w->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			w->failed = 1;
			return brt_error_set(BRT_EIO, "cannot write %s: %s", w->temp_path, strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int brt_edge_cache_writer_complete(const brt_edge_cache_writer *w)
{
	return w->expected_length >= 0 && w->written == (uint64_t)w->expected_length;
}

/* Remove least recently used objects until `incoming` more bytes fit,
 * sparing `keep`.  Called with the lock held. */
static int make_room(brt_edge_cache *cache, uint64_t incoming, const brt_digest *keep)
{
	static const char *const algs[] = {"sha256", "sha512"};
	char dir[PATH_MAX], path[PATH_MAX];
	uint64_t total;

	for (;;) {
		char oldest[PATH_MAX] = "";
		struct timespec oldest_time = {0, 0};
		total = 0;
		for (size_t i = 0; i < 2; i++) {
			DIR *d;
			struct dirent *e;
			struct stat st;

			snprintf(dir, sizeof(dir), "%s/objects/%s", cache->dir, algs[i]);
			if (!(d = opendir(dir)))
				return brt_error_set(BRT_EIO, "cannot open %s: %s", dir, strerror(errno));
			while ((e = readdir(d))) {
				if (e->d_name[0] == '.' || strchr(e->d_name, '.'))
					continue;
				if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >=
					    (int)sizeof(path) ||
				    stat(path, &st) < 0)
					continue;
				total += (uint64_t)st.st_size;
				if (strcmp(algs[i], alg_name(keep)) == 0 &&
				    strcmp(e->d_name, brt_digest_hex(keep)) == 0)
					continue;
				if (!oldest[0] || st.st_mtim.tv_sec < oldest_time.tv_sec ||
				    (st.st_mtim.tv_sec == oldest_time.tv_sec &&
				     st.st_mtim.tv_nsec < oldest_time.tv_nsec)) {
					snprintf(oldest, sizeof(oldest), "%s", path);
					oldest_time = st.st_mtim;
				}
			}
			closedir(d);
		}
		if (total + incoming <= cache->max_bytes || !oldest[0])
			return 0;
		brt_log_info("cache: evicting %s", oldest);
		unlink(oldest);
		if (snprintf(path, sizeof(path), "%s.type", oldest) < (int)sizeof(path))
			unlink(path);
	}
}

static int write_small_file(const char *path, const char *temp_path, const char *text)
{
	int fd = open(temp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), error = 0;
	size_t len = strlen(text);

	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fdatasync(fd) < 0 ||
	    rename(temp_path, path) < 0)
		error = brt_error_set(BRT_EIO, "cannot write %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (error < 0)
		unlink(temp_path);
	return error;
}

int brt_edge_cache_writer_commit(brt_edge_cache_writer *w, const char *media_type)
{
	brt_edge_cache *cache = w->cache;
	char path[PATH_MAX], side_temp[PATH_MAX + 8], dir[PATH_MAX];
	brt_digest got;
	int error = 0, locked = 0, fd;

	if (w->failed) {
		error = BRT_EIO;
		goto done;
	}
	if (w->expected_length >= 0 && w->written != (uint64_t)w->expected_length) {
		error = brt_error_set(BRT_EDIGEST, "%llu bytes instead of the announced %lld",
				      (unsigned long long)w->written, (long long)w->expected_length);
		goto done;
	}
	brt_hasher_final(&w->hasher, &got);
	if (strcmp(got.str, w->digest.str) != 0) {
		error = brt_error_set(BRT_EDIGEST, "content is %s, not %s", got.str, w->digest.str);
		goto done;
	}
	if (cache->max_bytes && w->written > cache->max_bytes) {
		error = brt_error_set(BRT_ETOOBIG, "%llu bytes exceed the cache bound",
				      (unsigned long long)w->written);
		goto done;
	}
	if (fdatasync(w->fd) < 0) {
		error = brt_error_set(BRT_EIO, "cannot sync %s: %s", w->temp_path, strerror(errno));
		goto done;
	}
	pthread_mutex_lock(&cache->lock);
	locked = 1;
	if (cache->max_bytes && (error = make_room(cache, w->written, &w->digest)) < 0)
		goto done;
	object_path(path, cache, &w->digest, ".type");
	snprintf(side_temp, sizeof(side_temp), "%s.type", w->temp_path);
	if ((error = write_small_file(path, side_temp,
				      media_type ? media_type : "application/octet-stream")) < 0)
		goto done;
	object_path(path, cache, &w->digest, "");
	if (rename(w->temp_path, path) < 0) {
		error = brt_error_set(BRT_EIO, "cannot rename into %s: %s", path, strerror(errno));
		goto done;
	}
	w->temp_path[0] = '\0';
	snprintf(dir, sizeof(dir), "%s/objects/%s", cache->dir, alg_name(&w->digest));
	if ((error = fsync_dir(dir)) < 0)
		goto done;
	/* The grant comes last: it is what makes the object visible. */
	snprintf(dir, sizeof(dir), "%s/repos/%s", cache->dir, w->repository_hex);
	if ((error = make_dir(dir)) < 0)
		goto done;
	grant_path(path, cache, w->repository_hex, &w->digest);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		error = brt_error_set(BRT_EIO, "cannot create %s: %s", path, strerror(errno));
		goto done;
	}
	close(fd);
	error = fsync_dir(dir);
done:
	if (locked)
		pthread_mutex_unlock(&cache->lock);
	if (w->temp_path[0]) {
		unlink(w->temp_path);
		w->temp_path[0] = '\0';
	}
	return error;
}

void brt_edge_cache_writer_free(brt_edge_cache_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->temp_path[0])
		unlink(w->temp_path);
	free(w);
}
