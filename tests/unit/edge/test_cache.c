/* Tests for edge/cache: an object becomes visible only after a verified
 * write and only to the repository that fetched it; a wrong digest, a
 * short body or an abandoned writer leave nothing behind; the bound
 * evicts the least recently used object; start-up clears temp files. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "common/error.h"
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

static int store(brt_edge_cache *cache, const char *repo, const char *data, size_t len, const char *claimed,
		 int64_t announced)
{
	brt_edge_cache_writer *w = NULL;
	brt_digest d;
	int error;

	if (claimed)
		CHECK(brt_digest_parse(&d, claimed, strlen(claimed)) == 0);
	else
		brt_digest_of(&d, BRT_DIGEST_SHA256, data, len);
	if ((error = brt_edge_cache_writer_open(&w, cache, repo, &d, announced)) < 0)
		return error;
	CHECK(brt_edge_cache_writer_add(w, data, len) == 0);
	error = brt_edge_cache_writer_commit(w, "application/x-test");
	brt_edge_cache_writer_free(w);
	return error;
}

static int lookup(brt_edge_cache *cache, const char *repo, const char *data, size_t len)
{
	char media_type[BRT_EDGE_MEDIA_TYPE_MAX + 1];
	uint64_t size;
	brt_digest d;
	int fd, error;

	brt_digest_of(&d, BRT_DIGEST_SHA256, data, len);
	error = brt_edge_cache_lookup(&fd, &size, media_type, cache, repo, &d);
	if (error == 0) {
		CHECK(size == len);
		CHECK_EQ_STR(media_type, "application/x-test");
		close(fd);
	}
	return error;
}

static void test_grants_and_verification(brt_edge_cache *cache)
{
	static const char wrong[] = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	brt_edge_cache_writer *w = NULL;
	brt_digest d;

	CHECK_EQ_INT(lookup(cache, "a/app", "hello", 5), BRT_ENOTFOUND);
	CHECK_EQ_INT(store(cache, "a/app", "hello", 5, NULL, 5), 0);
	CHECK_EQ_INT(lookup(cache, "a/app", "hello", 5), 0);
	/* Same digest, a repository that never fetched it. */
	CHECK_EQ_INT(lookup(cache, "a/other", "hello", 5), BRT_ENOTFOUND);
	CHECK_EQ_INT(store(cache, "a/x", "other", 5, wrong, 5), BRT_EDIGEST);
	CHECK_EQ_INT(store(cache, "a/x", "short", 5, NULL, 6), BRT_EDIGEST);
	CHECK_EQ_INT(store(cache, "a/x", "unannounced", 11, NULL, -1), 0);
	CHECK_EQ_INT(entries("objects/sha256"), 4); /* two objects, two media types */
	CHECK_EQ_INT(entries("tmp"), 0);
	/* A client gone mid-body: the writer is freed unfinished. */
	brt_digest_of(&d, BRT_DIGEST_SHA256, "abandoned", 9);
	CHECK(brt_edge_cache_writer_open(&w, cache, "a/x", &d, 9) == 0);
	CHECK(brt_edge_cache_writer_add(w, "aban", 4) == 0);
	CHECK(!brt_edge_cache_writer_complete(w));
	CHECK_EQ_INT(entries("tmp"), 1);
	brt_edge_cache_writer_free(w);
	CHECK_EQ_INT(entries("tmp"), 0);
	CHECK_EQ_INT(lookup(cache, "a/x", "abandoned", 9), BRT_ENOTFOUND);
}

static void test_eviction(void)
{
	char dir[256], a[60], b[60], c[60], big[200];
	brt_edge_cache *cache = NULL;
	struct timespec past[2] = {{1000, 0}, {1000, 0}};
	char path[PATH_MAX];
	brt_digest d;

	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	memset(c, 'c', sizeof(c));
	memset(big, 'z', sizeof(big));
	snprintf(dir, sizeof(dir), "%s/bounded", root);
	CHECK(brt_edge_cache_open(&cache, dir, 130) == 0);
	CHECK_EQ_INT(store(cache, "r", a, sizeof(a), NULL, sizeof(a)), 0);
	CHECK_EQ_INT(store(cache, "r", b, sizeof(b), NULL, sizeof(b)), 0);
	/* Make b the older one, then use a: b goes first. */
	brt_digest_of(&d, BRT_DIGEST_SHA256, b, sizeof(b));
	snprintf(path, sizeof(path), "%s/objects/sha256/%s", dir, brt_digest_hex(&d));
	CHECK(utimensat(AT_FDCWD, path, past, 0) == 0);
	CHECK_EQ_INT(lookup(cache, "r", a, sizeof(a)), 0);
	CHECK_EQ_INT(store(cache, "r", c, sizeof(c), NULL, sizeof(c)), 0);
	CHECK_EQ_INT(lookup(cache, "r", a, sizeof(a)), 0);
	CHECK_EQ_INT(lookup(cache, "r", b, sizeof(b)), BRT_ENOTFOUND);
	CHECK_EQ_INT(lookup(cache, "r", c, sizeof(c)), 0);
	/* Larger than the bound: never stored, nothing evicted for it. */
	CHECK_EQ_INT(store(cache, "r", big, sizeof(big), NULL, sizeof(big)), BRT_ETOOBIG);
	CHECK_EQ_INT(lookup(cache, "r", a, sizeof(a)), 0);
	brt_edge_cache_free(cache);
}

int main(void)
{
	brt_edge_cache *cache = NULL;
	char path[PATH_MAX];
	FILE *f;

	CHECK(mkdtemp(root) != NULL);
	CHECK(brt_edge_cache_open(&cache, root, 0) == 0);
	test_grants_and_verification(cache);
	brt_edge_cache_free(cache);
	/* A temp file left by a killed run is gone after the next start. */
	snprintf(path, sizeof(path), "%s/tmp/leftover", root);
	CHECK((f = fopen(path, "w")) != NULL);
	if (f)
		fclose(f);
	CHECK_EQ_INT(entries("tmp"), 1);
	CHECK(brt_edge_cache_open(&cache, root, 0) == 0);
	CHECK_EQ_INT(entries("tmp"), 0);
	CHECK_EQ_INT(lookup(cache, "a/app", "hello", 5), 0);
	brt_edge_cache_free(cache);
	test_eviction();
	{
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
		CHECK(system(cmd) == 0);
	}
	return check_exit("test_cache");
}
