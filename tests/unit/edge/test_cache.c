/* Tests for edge/cache: an object is served only to repositories it was
 * granted to; grants, tags and the LRU order survive a restart; what an
 * unfinished download wrote is dropped at start; the bound evicts the
 * least recently used object that is not pinned and never one in use. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/error.h"
#include "common/random.h"
#include "edge/cache.h"

static char root[] = "/tmp/berth-edge-cache-XXXXXX";

static int entries(const char *sub)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", root, sub);
	if (!(d = opendir(path)))
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* What a download does: reserve, write through the store, commit.  With
 * `keep_upload`, stop after syncing (a process killed before commit). */
static int put(brt_edge_cache *cache, const char *repo, const char *data, int keep_upload)
{
	brt_blobstore *bs = brt_edge_cache_store(cache);
	brt_blob_writer *w = NULL;
	char id[BRT_UPLOAD_ID_LEN + 1];
	const unsigned char *state;
	size_t len = strlen(data), state_len;
	brt_digest d;
	int error;

	brt_digest_of(&d, BRT_DIGEST_SHA256, data, len);
	if ((error = brt_edge_cache_reserve(cache, len)) < 0)
		return error;
	CHECK_EQ_INT(brt_random_hex(id, BRT_UPLOAD_ID_LEN), 0);
	CHECK_EQ_INT(brt_blobstore_writer_open(&w, bs, id, 0, NULL, 0), 0);
	if (!w)
		return BRT_EIO;
	CHECK_EQ_INT(w->append(w, data, len), 0);
	CHECK_EQ_INT(w->sync(w, &state, &state_len), 0);
	w->adopt(w);
	if (keep_upload) {
		w->free(w);
		brt_edge_cache_unreserve(cache, len);
		return 0;
	}
	error = brt_edge_cache_commit(cache, id, state, state_len, len, &d, repo, "application/x-test");
	w->free(w);
	return error;
}

/* 0 and the object's content for a hit (pinned: unpinned unless `keep_pin`). */
static int lookup(brt_edge_cache *cache, const char *repo, const char *data, int keep_pin)
{
	const char *media_type = NULL;
	char buf[256];
	uint64_t size;
	brt_digest d;
	int fd, error;

	brt_digest_of(&d, BRT_DIGEST_SHA256, data, strlen(data));
	if ((error = brt_edge_cache_lookup(&fd, &size, &media_type, cache, repo, &d)) < 0)
		return error;
	CHECK_EQ_INT(size, strlen(data));
	CHECK(media_type && strcmp(media_type, "application/x-test") == 0);
	CHECK_EQ_INT(pread(fd, buf, sizeof(buf), 0), (long)strlen(data));
	CHECK(memcmp(buf, data, strlen(data)) == 0);
	close(fd);
	if (!keep_pin)
		brt_edge_cache_unpin(cache, &d);
	return 0;
}

static void test_grants_and_tags(void)
{
	brt_edge_cache *cache = NULL;
	brt_edge_cache_stats stats;
	brt_digest d, got;

	CHECK_EQ_INT(brt_edge_cache_open(&cache, root, 0), 0);
	if (!cache)
		return;
	CHECK_EQ_INT(lookup(cache, "a/app", "hello", 0), BRT_ENOTFOUND);
	CHECK_EQ_INT(put(cache, "a/app", "hello", 0), 0);
	CHECK_EQ_INT(lookup(cache, "a/app", "hello", 0), 0);
	/* Stored, but not for b/app until the upstream says so. */
	CHECK_EQ_INT(lookup(cache, "b/app", "hello", 0), BRT_ENOTFOUND);
	brt_digest_of(&d, BRT_DIGEST_SHA256, "hello", 5);
	CHECK(brt_edge_cache_has(cache, &d));
	CHECK_EQ_INT(brt_edge_cache_grant(cache, "a/other", &d, "application/x-test"), 0);
	CHECK_EQ_INT(lookup(cache, "a/other", "hello", 0), 0);
	/* The same object fetched again for another repository is stored once. */
	CHECK_EQ_INT(put(cache, "c/app", "hello", 0), 0);
	brt_edge_cache_stats_get(&stats, cache);
	CHECK_EQ_INT(stats.objects, 1);
	CHECK_EQ_INT(stats.bytes, 5);
	/* Tags. */
	CHECK_EQ_INT(brt_edge_cache_tag_get(&got, cache, "a/app", "v1"), BRT_ENOTFOUND);
	CHECK_EQ_INT(brt_edge_cache_tag_set(cache, "a/app", "v1", &d), 0);
	CHECK_EQ_INT(brt_edge_cache_tag_get(&got, cache, "a/app", "v1"), 0);
	CHECK(strcmp(got.str, d.str) == 0);
	CHECK_EQ_INT(brt_edge_cache_tag_get(&got, cache, "b/app", "v1"), BRT_ENOTFOUND);
	CHECK_EQ_INT(brt_edge_cache_tag_set(cache, "a/app", "../x", &d), BRT_EINVALID);
	CHECK_EQ_INT(brt_edge_cache_tag_set(cache, "a/app", ".hidden", &d), BRT_EINVALID);
	/* An unfinished download (killed before its commit). */
	CHECK_EQ_INT(put(cache, "a/app", "unfinished", 1), 0);
	CHECK_EQ_INT(entries("uploads"), 1);
	brt_edge_cache_free(cache);

	/* After a restart: objects, grants and tags are back; the upload is gone. */
	CHECK_EQ_INT(brt_edge_cache_open(&cache, root, 0), 0);
	if (!cache)
		return;
	CHECK_EQ_INT(entries("uploads"), 0);
	CHECK_EQ_INT(lookup(cache, "a/app", "hello", 0), 0);
	CHECK_EQ_INT(lookup(cache, "a/other", "hello", 0), 0);
	CHECK_EQ_INT(lookup(cache, "b/app", "hello", 0), BRT_ENOTFOUND);
	CHECK_EQ_INT(lookup(cache, "a/app", "unfinished", 0), BRT_ENOTFOUND);
	CHECK_EQ_INT(brt_edge_cache_tag_get(&got, cache, "a/app", "v1"), 0);
	CHECK(strcmp(got.str, d.str) == 0);
	brt_edge_cache_stats_get(&stats, cache);
	CHECK_EQ_INT(stats.objects, 1);
	CHECK_EQ_INT(stats.bytes, 5);
	brt_edge_cache_free(cache);
}

static void test_eviction(void)
{
	char dir[PATH_MAX + 16], cmd[PATH_MAX + 64];
	brt_edge_cache *cache = NULL;
	brt_edge_cache_stats stats;

	snprintf(dir, sizeof(dir), "%s/bounded", root);
	CHECK_EQ_INT(brt_edge_cache_open(&cache, dir, 30), 0);
	if (!cache)
		return;
	CHECK_EQ_INT(put(cache, "a/app", "object-one", 0), 0); /* 10 bytes each */
	usleep(5000);
	CHECK_EQ_INT(put(cache, "a/app", "object-two", 0), 0);
	usleep(5000);
	CHECK_EQ_INT(put(cache, "a/app", "object-333", 0), 0);
	usleep(5000);
	/* Used last, so "object-two" is now the oldest; "object-one" is
	 * being read (pinned). */
	CHECK_EQ_INT(lookup(cache, "a/app", "object-one", 1), 0);
	CHECK_EQ_INT(put(cache, "a/app", "object-444", 0), 0);
	CHECK_EQ_INT(lookup(cache, "a/app", "object-two", 0), BRT_ENOTFOUND);
	CHECK_EQ_INT(lookup(cache, "a/app", "object-one", 0), 0);
	brt_edge_cache_stats_get(&stats, cache);
	CHECK(stats.bytes <= 30);
	CHECK_EQ_INT(stats.evictions, 1);
	/* Larger than the bound: refused, nothing evicted for it. */
	CHECK_EQ_INT(brt_edge_cache_reserve(cache, 31), BRT_ETOOBIG);
	/* Everything pinned: no room. */
	CHECK_EQ_INT(lookup(cache, "a/app", "object-333", 1), 0);
	CHECK_EQ_INT(lookup(cache, "a/app", "object-444", 1), 0);
	CHECK_EQ_INT(brt_edge_cache_reserve(cache, 10), BRT_ETOOBIG);
	brt_edge_cache_stats_get(&stats, cache);
	CHECK(stats.bytes <= 30);
	CHECK_EQ_INT(stats.objects, 3);
	brt_edge_cache_free(cache);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

int main(void)
{
	char cmd[PATH_MAX + 16];

	CHECK(mkdtemp(root) != NULL);
	test_grants_and_tags();
	test_eviction();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	CHECK(system(cmd) == 0);
	return check_exit("test_cache");
}
