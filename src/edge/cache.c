/* The edge cache (see cache.h): objects in a blob store, and an index in
 * memory of objects (size, last use, pins), grants and tags, mirrored by
 * small files for the next start.  One mutex guards the index; it is
 * held for table operations only, never across I/O on objects. */
#include "edge/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/random.h"
#include "oci/names.h"

/* Persist an object's last use at most this often (ms). */
#define TOUCH_INTERVAL_MS 60000
/* Distinct media types remembered (a registry serves a handful). */
#define MEDIA_TYPES_MAX 64

/* One entry of a table: an object (key: its digest), a grant (key:
 * "<repository hash>/<digest>", value: the media type) or a tag (key:
 * "<repository hash>/<tag>", value: the digest). */
typedef struct entry {
	struct entry *next;
	uint64_t size;      /* objects */
	int64_t used_ms;    /* objects: last use */
	int64_t touched_ms; /* objects: last use written to the file */
	unsigned int pins;  /* objects: readers and downloads holding it */
	const char *value;  /* grants: interned media type; tags: the digest (in key's allocation) */
	char key[];
} entry;

typedef struct table {
	entry **slots;
	size_t count, cap; /* cap is a power of two */
} table;

struct brt_edge_cache {
	char *dir;
	brt_blobstore *store;
	uint64_t max_bytes;
	pthread_mutex_t lock;
	uint64_t bytes; /* objects plus reservations */
	uint64_t evictions;
	table objects, grants, tags;
	char *media_types[MEDIA_TYPES_MAX];
	size_t media_type_count;
};

/* ------------------------------------------------------------- tables */

static uint64_t hash_of(const char *key)
{
	uint64_t h = 1469598103934665603ull;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ull;
	return h;
}

static entry *table_find(const table *t, const char *key)
{
	if (!t->cap)
		return NULL;
	for (entry *e = t->slots[hash_of(key) & (t->cap - 1)]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static int table_grow(table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 256;
	entry **slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return brt_error_set(BRT_ENOMEM, "out of memory");
	for (size_t i = 0; i < t->cap; i++)
		for (entry *e = t->slots[i], *next; e; e = next) {
			next = e->next;
			e->next = slots[hash_of(e->key) & (cap - 1)];
			slots[hash_of(e->key) & (cap - 1)] = e;
		}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

/* The entry for `key`, made (zeroed, with room for `value_len` + 1 more
 * bytes after the key) if absent. */
static entry *table_get(table *t, const char *key, size_t value_len)
{
	entry *e = table_find(t, key);
	size_t key_len = strlen(key);

	if (e)
		return e;
	if (t->count + 1 > t->cap / 2 && table_grow(t) < 0)
		return NULL;
	if (!(e = calloc(1, sizeof(*e) + key_len + 1 + value_len + 1))) {
		brt_error_set(BRT_ENOMEM, "out of memory");
		return NULL;
	}
	memcpy(e->key, key, key_len + 1);
	e->next = t->slots[hash_of(key) & (t->cap - 1)];
	t->slots[hash_of(key) & (t->cap - 1)] = e;
	t->count++;
	return e;
}

static void table_remove(table *t, const char *key)
{
	if (!t->cap)
		return;
	for (entry **p = &t->slots[hash_of(key) & (t->cap - 1)]; *p; p = &(*p)->next)
		if (strcmp((*p)->key, key) == 0) {
			entry *e = *p;
			*p = e->next;
			free(e);
			t->count--;
			return;
		}
}

static void table_free(table *t)
{
	for (size_t i = 0; i < t->cap; i++)
		for (entry *e = t->slots[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------------- helpers */

static void repository_hash(char *out, const char *repository)
{
	brt_digest d;

	brt_digest_of(&d, BRT_DIGEST_SHA256, repository, strlen(repository));
	snprintf(out, 65, "%s", brt_digest_hex(&d));
}

static const char *alg_name(const brt_digest *digest)
{
	return digest->alg == BRT_DIGEST_SHA512 ? "sha512" : "sha256";
}

/* The interned copy of `media_type` (NULL when out of room or memory:
 * then the generic type). */
static const char *intern(brt_edge_cache *cache, const char *media_type)
{
	static const char generic[] = "application/octet-stream";
	char *copy;

	if (!media_type || !media_type[0] || strlen(media_type) > BRT_EDGE_MEDIA_TYPE_MAX)
		return generic;
	for (size_t i = 0; i < cache->media_type_count; i++)
		if (strcmp(cache->media_types[i], media_type) == 0)
			return cache->media_types[i];
	if (cache->media_type_count == MEDIA_TYPES_MAX || !(copy = strdup(media_type)))
		return generic;
	cache->media_types[cache->media_type_count++] = copy;
	return copy;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return brt_error_set(BRT_EIO, "edge cache: cannot create %s: %s", path, strerror(errno));
	return 0;
}

/* Write `text` to DIR/<sub>/<name> through a temp file and a rename, so
 * that a reader sees the old or the new content; the directory is made
 * if needed.  No sync: losing one of these files costs one fetch. */
static int write_side_file(brt_edge_cache *cache, const char *sub, const char *name, const char *text)
{
	char dir[PATH_MAX], path[PATH_MAX], temp[PATH_MAX], suffix[17];
	size_t len = strlen(text);
	int fd, error = 0;

	if (brt_random_hex(suffix, 16) < 0)
		return brt_error_set(BRT_EIO, "edge cache: no random bytes");
	/* The cache directory's length was checked at open; sub and name
	 * are short. */
	if (snprintf(dir, sizeof(dir), "%s/%s", cache->dir, sub) >= (int)sizeof(dir) ||
	    snprintf(path, sizeof(path), "%s/%s/%s", cache->dir, sub, name) >= (int)sizeof(path) ||
	    snprintf(temp, sizeof(temp), "%s/tmp/%s", cache->dir, suffix) >= (int)sizeof(temp))
		return brt_error_set(BRT_EINVALID, "edge cache: path too long");
	if ((error = make_dir(dir)) < 0)
		return error;
	if ((fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
		return brt_error_set(BRT_EIO, "edge cache: cannot create %s: %s", temp, strerror(errno));
	if (write(fd, text, len) != (ssize_t)len || rename(temp, path) < 0) {
		error = brt_error_set(BRT_EIO, "edge cache: cannot write %s: %s", path, strerror(errno));
		unlink(temp);
	}
	close(fd);
	return error;
}

/* Read a side file's first line into `out` (`cap` bytes); 0 or -1. */
static int read_side_file(char *out, size_t cap, int dir_fd, const char *name)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, out, cap - 1);
	close(fd);
	if (n <= 0)
		return -1;
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	return out[0] ? 0 : -1;
}

/* "<repository hash>/<tag>" into `key` (TAG_KEY_MAX bytes); BRT_EINVALID
 * for a tag outside the grammar (tags name files here). */
#define TAG_KEY_MAX (64 + 1 + BRT_EDGE_TAG_MAX + 1)
static int tag_key(char *key, const char *repository, const char *tag)
{
	if (!brt_tag_valid(tag, strlen(tag)) || strlen(tag) > BRT_EDGE_TAG_MAX)
		return brt_error_set(BRT_EINVALID, "not a tag");
	repository_hash(key, repository);
	snprintf(key + 64, TAG_KEY_MAX - 64, "/%s", tag);
	return 0;
}

/* ------------------------------------------------------------- loading */

static int drop_upload_cb(const char *upload_id, uint64_t size, int64_t mtime_ms, void *payload)
{
	brt_edge_cache *cache = payload;

	(void)mtime_ms;
	if (brt_blobstore_upload_remove(cache->store, upload_id, NULL, 0) == 0)
		brt_log_info("edge cache: dropped %llu bytes of an unfinished download",
			     (unsigned long long)size);
	return 0;
}

static int load_object_cb(const char *key, uint64_t size, void *payload)
{
	brt_edge_cache *cache = payload;
	char text[BRT_DIGEST_STR_MAX + 1];
	const char *alg_end = strchr(key, '/'), *hex = strrchr(key, '/');
	brt_digest digest;
	struct stat st;
	entry *e;
	int fd;

	if (!alg_end || !hex || (size_t)(alg_end - key) > 6 ||
	    snprintf(text, sizeof(text), "%.*s:%s", (int)(alg_end - key), key, hex + 1) >=
		    (int)sizeof(text) ||
	    brt_digest_parse(&digest, text, strlen(text)) < 0)
		return 0;
	if (!(e = table_get(&cache->objects, digest.str, 0)))
		return BRT_ENOMEM;
	e->size = size;
	if (brt_blobstore_open_fd(&fd, NULL, cache->store, key) == 0) {
		if (fstat(fd, &st) == 0)
			e->used_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
		close(fd);
	}
	e->touched_ms = e->used_ms;
	cache->bytes += size;
	return 0;
}

/* Load DIR/<sub>/<repository hash>/<name> files: grants (objects still
 * stored) or tags.  Files that name nothing valid are removed. */
static int load_side_files(brt_edge_cache *cache, const char *sub, int grants)
{
	char path[PATH_MAX], key[PATH_MAX], value[BRT_EDGE_MEDIA_TYPE_MAX + 2];
	DIR *top, *d;
	struct dirent *r, *f;
	int error = 0;

	snprintf(path, sizeof(path), "%s/%s", cache->dir, sub);
	if (!(top = opendir(path)))
		return brt_error_set(BRT_EIO, "edge cache: cannot open %s: %s", path, strerror(errno));
	while (error == 0 && (r = readdir(top))) {
		if (r->d_name[0] == '.' || strlen(r->d_name) != 64)
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", cache->dir, sub, r->d_name);
		if (!(d = opendir(path)))
			continue;
		while (error == 0 && (f = readdir(d))) {
			brt_digest digest;
			char *dash = strchr(f->d_name, '-');
			entry *e;
			int valid;

			if (f->d_name[0] == '.')
				continue;
			valid = read_side_file(value, sizeof(value), dirfd(d), f->d_name) == 0;
			if (grants) {
				char text[BRT_DIGEST_STR_MAX + 1];
				valid = valid && dash &&
					snprintf(text, sizeof(text), "%.*s:%s", (int)(dash - f->d_name),
						 f->d_name, dash + 1) < (int)sizeof(text) &&
					brt_digest_parse(&digest, text, strlen(text)) == 0 &&
					table_find(&cache->objects, digest.str);
				if (valid)
					snprintf(key, sizeof(key), "%s/%s", r->d_name, digest.str);
			} else {
				valid = valid && brt_tag_valid(f->d_name, strlen(f->d_name)) &&
					brt_digest_parse(&digest, value, strlen(value)) == 0;
				snprintf(key, sizeof(key), "%s/%s", r->d_name, f->d_name);
			}
			if (!valid) {
				unlinkat(dirfd(d), f->d_name, 0);
				continue;
			}
			if (grants) {
				if (!(e = table_get(&cache->grants, key, 0)))
					error = BRT_ENOMEM;
				else
					e->value = intern(cache, value);
			} else if (!(e = table_get(&cache->tags, key, BRT_DIGEST_STR_MAX))) {
				error = BRT_ENOMEM;
			} else {
				char *copy = e->key + strlen(e->key) + 1;
				snprintf(copy, BRT_DIGEST_STR_MAX + 1, "%s", digest.str);
				e->value = copy;
			}
		}
		closedir(d);
	}
	closedir(top);
	return error;
}

static int clear_temp(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/tmp", dir);
	if (!(d = opendir(path)))
		return brt_error_set(BRT_EIO, "edge cache: cannot open %s: %s", path, strerror(errno));
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	return 0;
}

int brt_edge_cache_open(brt_edge_cache **out, const char *dir, uint64_t max_bytes)
{
	static const char *const subdirs[] = {"repos", "tags", "tmp"};
	brt_edge_cache *cache = NULL;
	char path[PATH_MAX];
	int error = 0;

	*out = NULL;
	if (strlen(dir) > PATH_MAX - 512)
		return brt_error_set(BRT_EINVALID, "edge cache: directory path too long");
	if (!(cache = calloc(1, sizeof(*cache))) || !(cache->dir = strdup(dir))) {
		free(cache);
		return brt_error_set(BRT_ENOMEM, "out of memory");
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
	if ((error = clear_temp(dir)) < 0 ||
	    (error = brt_blobstore_open(&cache->store, "filesystem", dir)) < 0)
		goto done;
	/* No download survives a restart: what one wrote is dropped. */
	if ((error = brt_blobstore_upload_list(cache->store, drop_upload_cb, cache)) < 0 &&
	    error != BRT_EUNSUPPORTED)
		goto done;
	if ((error = brt_blobstore_list(cache->store, load_object_cb, cache)) < 0 ||
	    (error = load_side_files(cache, "repos", 1)) < 0 ||
	    (error = load_side_files(cache, "tags", 0)) < 0)
		goto done;
	brt_log_info("edge cache: %zu objects (%llu bytes), %zu grants, %zu tags in %s", cache->objects.count,
		     (unsigned long long)cache->bytes, cache->grants.count, cache->tags.count, dir);
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
	brt_blobstore_free(cache->store);
	table_free(&cache->objects);
	table_free(&cache->grants);
	table_free(&cache->tags);
	for (size_t i = 0; i < cache->media_type_count; i++)
		free(cache->media_types[i]);
	pthread_mutex_destroy(&cache->lock);
	free(cache->dir);
	free(cache);
}

brt_blobstore *brt_edge_cache_store(brt_edge_cache *cache)
{
	return cache->store;
}

/* ------------------------------------------------------------- lookups */

int brt_edge_cache_lookup(int *fd_out, uint64_t *size_out, const char **media_type_out, brt_edge_cache *cache,
			  const char *repository, const brt_digest *digest)
{
	char key[64 + 1 + BRT_DIGEST_STR_MAX + 1], blob_key[BRT_BLOB_KEY_MAX];
	int64_t now = brt_now_ms(), touch = 0;
	entry *grant, *object;
	int error;

	*fd_out = -1;
	*size_out = 0;
	*media_type_out = NULL;
	repository_hash(key, repository);
	snprintf(key + 64, sizeof(key) - 64, "/%s", digest->str);
	pthread_mutex_lock(&cache->lock);
	grant = table_find(&cache->grants, key);
	object = grant ? table_find(&cache->objects, digest->str) : NULL;
	if (object) {
		object->pins++;
		object->used_ms = now;
		if (now - object->touched_ms >= TOUCH_INTERVAL_MS)
			touch = object->touched_ms = now;
		*media_type_out = grant->value;
		*size_out = object->size;
	}
	pthread_mutex_unlock(&cache->lock);
	if (!object)
		return brt_error_set(BRT_ENOTFOUND, "not cached for this repository");
	brt_blob_key(blob_key, digest->str);
	if ((error = brt_blobstore_open_fd(fd_out, size_out, cache->store, blob_key)) < 0) {
		/* Removed behind the cache's back: forget it. */
		brt_log_warn("edge cache: %s is indexed but unreadable: %s", digest->str, brt_error_last());
		pthread_mutex_lock(&cache->lock);
		if ((object = table_find(&cache->objects, digest->str)) && --object->pins == 0) {
			cache->bytes -= object->size;
			table_remove(&cache->objects, digest->str);
		}
		pthread_mutex_unlock(&cache->lock);
		return brt_error_set(BRT_ENOTFOUND, "not cached");
	}
	/* The use survives a restart; a failure only costs LRU order. */
	if (touch)
		(void)futimens(*fd_out, NULL);
	return 0;
}

void brt_edge_cache_unpin(brt_edge_cache *cache, const brt_digest *digest)
{
	entry *object;

	pthread_mutex_lock(&cache->lock);
	if ((object = table_find(&cache->objects, digest->str)) && object->pins > 0)
		object->pins--;
	pthread_mutex_unlock(&cache->lock);
}

int brt_edge_cache_has(brt_edge_cache *cache, const brt_digest *digest)
{
	int found;

	pthread_mutex_lock(&cache->lock);
	found = table_find(&cache->objects, digest->str) != NULL;
	pthread_mutex_unlock(&cache->lock);
	return found;
}

/* Record the grant in memory (lock held) and return 0, or an error. */
static int add_grant(brt_edge_cache *cache, const char *repo_hash, const brt_digest *digest,
		     const char *media_type)
{
	char key[64 + 1 + BRT_DIGEST_STR_MAX + 1];
	entry *e;

	snprintf(key, sizeof(key), "%s/%s", repo_hash, digest->str);
	if (!(e = table_get(&cache->grants, key, 0)))
		return BRT_ENOMEM;
	e->value = intern(cache, media_type);
	return 0;
}

static int write_grant(brt_edge_cache *cache, const char *repo_hash, const brt_digest *digest,
		       const char *media_type)
{
	char sub[80], name[8 + BRT_DIGEST_STR_MAX];

	snprintf(sub, sizeof(sub), "repos/%s", repo_hash);
	snprintf(name, sizeof(name), "%s-%s", alg_name(digest), brt_digest_hex(digest));
	return write_side_file(cache, sub, name,
			       media_type && media_type[0] ? media_type : "application/octet-stream");
}

int brt_edge_cache_grant(brt_edge_cache *cache, const char *repository, const brt_digest *digest,
			 const char *media_type)
{
	char repo_hash[65];
	int error;

	repository_hash(repo_hash, repository);
	pthread_mutex_lock(&cache->lock);
	error = table_find(&cache->objects, digest->str) ? add_grant(cache, repo_hash, digest, media_type)
							 : brt_error_set(BRT_ENOTFOUND, "not cached");
	pthread_mutex_unlock(&cache->lock);
	return error < 0 ? error : write_grant(cache, repo_hash, digest, media_type);
}

/* ------------------------------------------------------------- room */

/* Evict least recently used unpinned objects until `size` more bytes fit
 * under the bound.  Lock held. */
static int make_room(brt_edge_cache *cache, uint64_t size)
{
	char blob_key[BRT_BLOB_KEY_MAX];
	int error;

	if (!cache->max_bytes)
		return 0;
	if (size > cache->max_bytes)
		return brt_error_set(BRT_ETOOBIG, "%llu bytes exceed the cache bound of %llu",
				     (unsigned long long)size, (unsigned long long)cache->max_bytes);
	while (cache->bytes + size > cache->max_bytes) {
		entry *oldest = NULL;
		for (size_t i = 0; i < cache->objects.cap; i++)
			for (entry *e = cache->objects.slots[i]; e; e = e->next)
				if (e->pins == 0 && (!oldest || e->used_ms < oldest->used_ms))
					oldest = e;
		if (!oldest)
			return brt_error_set(BRT_ETOOBIG, "the cache is full of objects in use");
		brt_blob_key(blob_key, oldest->key);
		if ((error = brt_blobstore_remove(cache->store, blob_key)) < 0 && error != BRT_ENOTFOUND)
			return brt_error_set(BRT_EIO, "edge cache: cannot evict %s: %s", oldest->key,
					     brt_error_last());
		brt_log_info("edge cache: evicted %s (%llu bytes)", oldest->key,
			     (unsigned long long)oldest->size);
		cache->bytes -= oldest->size;
		cache->evictions++;
		/* Its grants stay until looked up: a grant without an
		 * object is a miss. */
		table_remove(&cache->objects, oldest->key);
	}
	return 0;
}

int brt_edge_cache_reserve(brt_edge_cache *cache, uint64_t size)
{
	int error;

	pthread_mutex_lock(&cache->lock);
	if ((error = make_room(cache, size)) == 0)
		cache->bytes += size;
	pthread_mutex_unlock(&cache->lock);
	return error;
}

void brt_edge_cache_unreserve(brt_edge_cache *cache, uint64_t size)
{
	pthread_mutex_lock(&cache->lock);
	cache->bytes -= size < cache->bytes ? size : cache->bytes;
	pthread_mutex_unlock(&cache->lock);
}

int brt_edge_cache_commit(brt_edge_cache *cache, const char *upload_id, const unsigned char *state,
			  size_t state_len, uint64_t size, const brt_digest *digest, const char *repository,
			  const char *media_type)
{
	char blob_key[BRT_BLOB_KEY_MAX], repo_hash[65];
	entry *object;
	int error;

	brt_blob_key(blob_key, digest->str);
	repository_hash(repo_hash, repository);
	/* Atomic and durable; an object already stored under the key (the
	 * same bytes, fetched for another repository) stays as it is. */
	if ((error = brt_blobstore_commit(cache->store, upload_id, state, state_len, size, blob_key)) < 0) {
		brt_blobstore_upload_remove(cache->store, upload_id, state, state_len);
		brt_edge_cache_unreserve(cache, size);
		return error;
	}
	pthread_mutex_lock(&cache->lock);
	if ((object = table_find(&cache->objects, digest->str))) {
		cache->bytes -= size; /* stored once: the reservation goes */
	} else if ((object = table_get(&cache->objects, digest->str, 0))) {
		object->size = size;
	} else {
		cache->bytes -= size;
		error = BRT_ENOMEM;
	}
	if (object) {
		object->used_ms = object->touched_ms = brt_now_ms();
		error = add_grant(cache, repo_hash, digest, media_type);
	}
	pthread_mutex_unlock(&cache->lock);
	return error < 0 ? error : write_grant(cache, repo_hash, digest, media_type);
}

/* ------------------------------------------------------------- tags */

int brt_edge_cache_tag_set(brt_edge_cache *cache, const char *repository, const char *tag,
			   const brt_digest *digest)
{
	char key[TAG_KEY_MAX], sub[80];
	int changed = 1, error;
	entry *e;

	if ((error = tag_key(key, repository, tag)) < 0)
		return error;
	pthread_mutex_lock(&cache->lock);
	if ((e = table_get(&cache->tags, key, BRT_DIGEST_STR_MAX))) {
		char *value = e->key + strlen(e->key) + 1;
		changed = strcmp(value, digest->str) != 0;
		snprintf(value, BRT_DIGEST_STR_MAX + 1, "%s", digest->str);
		e->value = value;
	}
	pthread_mutex_unlock(&cache->lock);
	if (!e)
		return BRT_ENOMEM;
	if (!changed)
		return 0;
	snprintf(sub, sizeof(sub), "tags/%.64s", key);
	return write_side_file(cache, sub, tag, digest->str);
}

int brt_edge_cache_tag_get(brt_digest *out, brt_edge_cache *cache, const char *repository, const char *tag)
{
	char key[TAG_KEY_MAX];
	int error;
	entry *e;

	if ((error = tag_key(key, repository, tag)) < 0)
		return error;
	pthread_mutex_lock(&cache->lock);
	if (!(e = table_find(&cache->tags, key)))
		error = brt_error_set(BRT_ENOTFOUND, "tag never resolved here");
	else
		error = brt_digest_parse(out, e->value, strlen(e->value));
	pthread_mutex_unlock(&cache->lock);
	return error;
}

void brt_edge_cache_stats_get(brt_edge_cache_stats *out, brt_edge_cache *cache)
{
	pthread_mutex_lock(&cache->lock);
	out->bytes = cache->bytes;
	out->objects = cache->objects.count;
	out->evictions = cache->evictions;
	out->max_bytes = cache->max_bytes;
	pthread_mutex_unlock(&cache->lock);
}
