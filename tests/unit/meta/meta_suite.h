/* The metadata store test suite shared by every driver: it drives a store
 * only through the meta.h interface and checks the documented behaviour,
 * error codes and pagination edges, accounts, access keys and server
 * secrets, then hammers it from four threads.
 * Call meta_suite_run() on a freshly created, empty store. */
#ifndef BRT_TEST_META_SUITE_H
#define BRT_TEST_META_SUITE_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "common/error.h"
#include "common/pool.h"
#include "meta/meta.h"

/* The wall clock in ms: what deletes that take no time argument use. */
static int64_t brt_meta_test_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define MS_DIGEST_LEN (7 + 64)
#define MS_MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"
#define MS_INDEX_TYPE "application/vnd.oci.image.index.v1+json"
#define MS_NAMES_MAX 64

typedef struct ms_digest {
	char s[MS_DIGEST_LEN + 1];
} ms_digest;

/* A well-formed, deterministic fake digest; the store never hashes. */
static ms_digest ms_digest_of(const char *label, unsigned long n)
{
	static const char hex[] = "0123456789abcdef";
	ms_digest d;
	uint64_t h = 1469598103934665603ULL;
	const char *p;
	size_t i;

	for (p = label; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h ^= n * 0x9e3779b97f4a7c15ULL;
	memcpy(d.s, "sha256:", 7);
	for (i = 0; i < 64; i++) {
		h ^= h >> 29;
		h *= 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 32;
		d.s[7 + i] = hex[h & 15];
	}
	d.s[MS_DIGEST_LEN] = '\0';
	return d;
}

typedef struct ms_names {
	char names[MS_NAMES_MAX][BRT_NAME_MAX + 1];
	size_t count;
	int fail_at; /* return BRT_EIO on this call (1-based), 0 never */
	int overflow;
} ms_names;

static int ms_names_cb(const char *name, void *payload)
{
	ms_names *n = payload;

	if (n->fail_at && (size_t)n->fail_at == n->count + 1) {
		n->count++;
		return BRT_EIO;
	}
	if (n->count >= MS_NAMES_MAX || strlen(name) > BRT_NAME_MAX) {
		n->overflow = 1;
		return 0;
	}
	snprintf(n->names[n->count], sizeof(n->names[0]), "%s", name);
	n->count++;
	return 0;
}

/* "a,b,c" for easy comparison. */
static const char *ms_names_join(const ms_names *n)
{
	static _Thread_local char buf[MS_NAMES_MAX * 16];
	size_t used = 0;
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < n->count && i < MS_NAMES_MAX; i++) {
		int w = snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? "," : "", n->names[i]);
		if (w < 0 || (size_t)w >= sizeof(buf) - used)
			break;
		used += (size_t)w;
	}
	return buf;
}

static int ms_tags(brt_meta *m, const char *repo, const char *last, size_t limit, ms_names *out, int *more)
{
	memset(out, 0, sizeof(*out));
	*more = -1;
	return m->tags_list(m, repo, last, limit, ms_names_cb, out, more);
}

static int ms_catalog(brt_meta *m, const char *prefix, const char *last, size_t limit, ms_names *out,
		      int *more)
{
	memset(out, 0, sizeof(*out));
	*more = -1;
	return m->catalog_list(m, prefix, last, limit, ms_names_cb, out, more);
}

/* Link and unlink with the account a caller would pass: the repository
 * name's first component (brt_meta_repo_account). */
static int ms_link(brt_meta *m, const char *repo, const char *digest, uint64_t size, const char *storage_key,
		   int64_t now)
{
	char account[BRT_ACCOUNT_ID_LEN + 1];
	brt_blob_link link = {brt_meta_repo_account(account, repo), repo, digest, size, storage_key, now};

	return m->blob_link(m, &link);
}

static int ms_unlink(brt_meta *m, const char *repo, const char *digest)
{
	char account[BRT_ACCOUNT_ID_LEN + 1];
	brt_blob_link link = {brt_meta_repo_account(account, repo), repo, digest, 0, NULL, 0};

	return m->blob_unlink(m, &link);
}

/* Put a manifest whose payload mentions its digest (so it is unique). */
static int ms_put_full(brt_meta *m, const char *repo, const char *digest, const char *tag,
		       const char *const *blobs, size_t blob_count, const char *const *children,
		       size_t child_count, const char *subject, const char *artifact_type,
		       const char *annotations)
{
	char payload[256];
	char account[BRT_ACCOUNT_ID_LEN + 1];
	brt_manifest_put put;
	int n = snprintf(payload, sizeof(payload), "{\"schemaVersion\":2,\"x\":\"%s\"}", digest);

	memset(&put, 0, sizeof(put));
	put.account_id = brt_meta_repo_account(account, repo);
	put.repo = repo;
	put.digest = digest;
	put.media_type = child_count ? MS_INDEX_TYPE : MS_MANIFEST_TYPE;
	put.payload = (const unsigned char *)payload;
	put.size = n > 0 ? (size_t)n : 0;
	put.tag = tag;
	put.subject = subject;
	put.artifact_type = artifact_type;
	put.annotations = annotations;
	put.blobs = blobs;
	put.blob_count = blob_count;
	put.children = children;
	put.child_count = child_count;
	put.now = 1700000000000LL;
	return m->manifest_put(m, &put);
}

static int ms_put(brt_meta *m, const char *repo, const char *digest, const char *tag,
		  const char *const *blobs, size_t blob_count)
{
	return ms_put_full(m, repo, digest, tag, blobs, blob_count, NULL, 0, NULL, NULL, NULL);
}

/* The digest a tag points at, or "" when manifest_get fails. */
static const char *ms_tag_target(brt_meta *m, brt_pool *pool, const char *repo, const char *tag,
				 int *error_out)
{
	brt_manifest man;
	int error = m->manifest_get(m, &man, pool, repo, tag, 0);

	if (error_out)
		*error_out = error;
	return error == 0 ? man.digest : "";
}

static int ms_error_mentions(const char *text)
{
	return strstr(brt_error_last(), text) != NULL;
}

static void ms_test_blobs(brt_meta *m)
{
	ms_digest d1 = ms_digest_of("blob", 1), d2 = ms_digest_of("blob", 2);
	uint64_t big = 5ULL * 1024 * 1024 * 1024;
	brt_blob_info info;
	brt_pool pool;

	brt_pool_init(&pool, 1 << 20);
	CHECK_EQ_INT(m->version, BRT_META_VERSION);
	CHECK(m->name != NULL);
	CHECK_EQ_INT(m->repo_exists(m, "blob/a"), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->blob_get(m, &info, &pool, "blob/a", d1.s), BRT_ENOTFOUND);

	/* Linking creates the repository; linking again is fine. */
	CHECK_EQ_INT(ms_link(m, "blob/a", d1.s, 123, "key-1", 1000), 0);
	CHECK_EQ_INT(m->repo_exists(m, "blob/a"), 0);
	memset(&info, 0, sizeof(info));
	CHECK_EQ_INT(m->blob_get(m, &info, &pool, "blob/a", d1.s), 0);
	CHECK_EQ_INT(info.size, 123);
	CHECK_EQ_STR(info.storage_key, "key-1");
	CHECK_EQ_INT(ms_link(m, "blob/a", d1.s, 123, "key-1", 2000), 0);
	CHECK_EQ_INT(m->blob_get(m, &info, &pool, "blob/a", d1.s), 0);

	/* Links are per repository; the object is recorded once. */
	CHECK_EQ_INT(m->blob_get(m, &info, &pool, "blob/b", d1.s), BRT_ENOTFOUND);
	CHECK_EQ_INT(ms_link(m, "blob/b", d1.s, 123, "key-other", 3000), 0);
	CHECK_EQ_INT(m->blob_get(m, &info, &pool, "blob/b", d1.s), 0);
	CHECK_EQ_STR(info.storage_key, "key-1");
	CHECK_EQ_INT(m->blob_get(m, &info, &pool, "blob/a", d2.s), BRT_ENOTFOUND);

	/* An account holds what any of its repositories links; no other
	 * account does. */
	if (m->account_blob_get) {
		CHECK_EQ_INT(m->account_blob_get(m, &info, &pool, "blob", d1.s), 0);
		CHECK_EQ_INT(info.size, 123);
		CHECK_EQ_STR(info.storage_key, "key-1");
		CHECK_EQ_INT(m->account_blob_get(m, &info, &pool, "blobby", d1.s), BRT_ENOTFOUND);
		CHECK_EQ_INT(m->account_blob_get(m, &info, &pool, "blob", d2.s), BRT_ENOTFOUND);
	} else {
		CHECK_EQ_INT(brt_meta_account_blob_get(m, &info, &pool, "blob", d1.s), BRT_EUNSUPPORTED);
	}

	/* Sizes past 4 GiB survive. */
	CHECK_EQ_INT(ms_link(m, "blob/a", d2.s, big, "key-2", 4000), 0);
	CHECK_EQ_INT(m->blob_get(m, &info, &pool, "blob/a", d2.s), 0);
	CHECK(info.size == big);
	CHECK_EQ_STR(info.storage_key, "key-2");

	/* Unlink. */
	CHECK_EQ_INT(ms_unlink(m, "blob/missing", d1.s), BRT_ENOTFOUND);
	CHECK_EQ_INT(ms_unlink(m, "blob/b", d2.s), BRT_ENOTFOUND);
	CHECK_EQ_INT(ms_unlink(m, "blob/a", d1.s), 0);
	CHECK_EQ_INT(m->blob_get(m, &info, &pool, "blob/a", d1.s), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->blob_get(m, &info, &pool, "blob/b", d1.s), 0);
	CHECK_EQ_INT(ms_unlink(m, "blob/a", d1.s), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->repo_exists(m, "blob/a"), 0);
	if (m->account_blob_get) {
		/* Still linked in blob/b; gone from the account with its last link. */
		CHECK_EQ_INT(m->account_blob_get(m, &info, &pool, "blob", d1.s), 0);
		CHECK_EQ_INT(ms_unlink(m, "blob/b", d1.s), 0);
		CHECK_EQ_INT(m->account_blob_get(m, &info, &pool, "blob", d1.s), BRT_ENOTFOUND);
		CHECK_EQ_INT(ms_link(m, "blob/b", d1.s, 123, "key-1", 4500), 0);
	}
	CHECK_EQ_INT(ms_link(m, "blob/a", d1.s, 123, "key-1", 5000), 0);
	CHECK_EQ_INT(m->blob_get(m, &info, &pool, "blob/a", d1.s), 0);
	CHECK_EQ_STR(info.storage_key, "key-1");
	brt_pool_clear(&pool);
}

static void ms_test_manifests(brt_meta *m)
{
	ms_digest config = ms_digest_of("man-config", 0), layer = ms_digest_of("man-layer", 0);
	ms_digest layer2 = ms_digest_of("man-layer", 2), missing = ms_digest_of("man-missing", 0);
	ms_digest m1 = ms_digest_of("man", 1), m2 = ms_digest_of("man", 2);
	ms_digest idx = ms_digest_of("man-index", 1), bad = ms_digest_of("man-bad", 0);
	const char *blobs1[] = {config.s, layer.s, layer.s};
	const char *blobs2[] = {config.s, layer2.s};
	const char *blobs_missing[] = {config.s, missing.s};
	const char *children[] = {m1.s, m2.s, m1.s};
	const char *children_missing[] = {m1.s, missing.s};
	const char *tag;
	brt_blob_info blob;
	brt_manifest man;
	brt_pool pool;
	ms_names names;
	int more;
	int error;

	brt_pool_init(&pool, 1 << 20);

	/* A push to a fresh repository with missing blobs leaves nothing. */
	brt_error_clear();
	CHECK_EQ_INT(ms_put(m, "man/fresh", m1.s, "v1", blobs1, 3), BRT_EBLOBUNKNOWN);
	CHECK(ms_error_mentions(config.s));
	CHECK_EQ_INT(m->repo_exists(m, "man/fresh"), BRT_ENOTFOUND);
	CHECK_EQ_INT(ms_catalog(m, "man/fresh", NULL, 10, &names, &more), 0);
	CHECK_EQ_INT(names.count, 0);

	CHECK_EQ_INT(ms_link(m, "man/app", config.s, 10, "k-config", 1), 0);
	CHECK_EQ_INT(ms_link(m, "man/app", layer.s, 20, "k-layer", 1), 0);
	CHECK_EQ_INT(ms_link(m, "man/app", layer2.s, 30, "k-layer2", 1), 0);

	/* One missing blob among present ones: nothing stored, detail names it. */
	brt_error_clear();
	CHECK_EQ_INT(ms_put(m, "man/app", bad.s, "bad", blobs_missing, 2), BRT_EBLOBUNKNOWN);
	CHECK(ms_error_mentions(missing.s));
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", bad.s, 1), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", "bad", 0), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->repo_exists(m, "man/app"), 0);

	/* Store and read back by tag and by digest (duplicate blob listed). */
	CHECK_EQ_INT(ms_put(m, "man/app", m1.s, "v1", blobs1, 3), 0);
	memset(&man, 0, sizeof(man));
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", "v1", 0), 0);
	CHECK_EQ_STR(man.digest, m1.s);
	CHECK_EQ_STR(man.media_type, MS_MANIFEST_TYPE);
	{
		char expect[256];
		int n = snprintf(expect, sizeof(expect), "{\"schemaVersion\":2,\"x\":\"%s\"}", m1.s);
		CHECK_EQ_INT(man.size, n);
		CHECK(man.payload && memcmp(man.payload, expect, (size_t)n) == 0);
	}
	memset(&man, 0, sizeof(man));
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", m1.s, 1), 0);
	CHECK_EQ_STR(man.digest, m1.s);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", m1.s, 0), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", "v1", 1), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/other", m1.s, 1), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/other", "v1", 0), BRT_ENOTFOUND);

	/* Exact bytes, including NULs, come back. */
	{
		static const unsigned char binary[] = {'{', 0, 1, 0xff, '}', 0};
		ms_digest bin = ms_digest_of("man-binary", 0);
		brt_manifest_put put;
		char put_account[BRT_ACCOUNT_ID_LEN + 1];

		memset(&put, 0, sizeof(put));
		put.account_id = brt_meta_repo_account(put_account, "man/app");
		put.repo = "man/app";
		put.digest = bin.s;
		put.media_type = "application/vnd.example+json";
		put.payload = binary;
		put.size = sizeof(binary);
		put.now = 1;
		CHECK_EQ_INT(m->manifest_put(m, &put), 0);
		CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", bin.s, 1), 0);
		CHECK_EQ_INT(man.size, sizeof(binary));
		CHECK(man.payload && memcmp(man.payload, binary, sizeof(binary)) == 0);
		CHECK_EQ_STR(man.media_type, "application/vnd.example+json");
		CHECK_EQ_INT(m->manifest_delete(m, "man/app", bin.s), 0);
	}

	/* Same digest again: only the tag changes. */
	CHECK_EQ_INT(ms_put(m, "man/app", m1.s, "stable", blobs1, 3), 0);
	CHECK_EQ_INT(ms_put(m, "man/app", m1.s, NULL, blobs1, 3), 0);
	CHECK_EQ_INT(ms_tags(m, "man/app", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "stable,v1");
	CHECK_EQ_STR(ms_tag_target(m, &pool, "man/app", "stable", NULL), m1.s);

	/* Tag move. */
	CHECK_EQ_INT(ms_put(m, "man/app", m2.s, "v1", blobs2, 2), 0);
	CHECK_EQ_STR(ms_tag_target(m, &pool, "man/app", "v1", NULL), m2.s);
	CHECK_EQ_STR(ms_tag_target(m, &pool, "man/app", "stable", NULL), m1.s);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", m1.s, 1), 0);

	/* An index needs its children in the same repository. */
	brt_error_clear();
	CHECK_EQ_INT(ms_put_full(m, "man/app", idx.s, "multi", NULL, 0, children_missing, 2, NULL, NULL,
				 NULL),
		     BRT_EBLOBUNKNOWN);
	CHECK(ms_error_mentions(missing.s));
	CHECK(ms_error_mentions("manifest"));
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", idx.s, 1), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", "multi", 0), BRT_ENOTFOUND);
	CHECK_EQ_INT(ms_link(m, "man/elsewhere", config.s, 10, "k-config", 1), 0);
	CHECK_EQ_INT(ms_put_full(m, "man/elsewhere", idx.s, NULL, NULL, 0, children, 3, NULL, NULL, NULL),
		     BRT_EBLOBUNKNOWN);
	CHECK_EQ_INT(ms_put_full(m, "man/app", idx.s, "multi", NULL, 0, children, 3, NULL, NULL, NULL), 0);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", "multi", 0), 0);
	CHECK_EQ_STR(man.media_type, MS_INDEX_TYPE);

	/* Still referenced: a child of the index cannot go before the index. */
	CHECK_EQ_INT(m->manifest_delete(m, "man/app", m1.s), BRT_ECONFLICT);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", m1.s, 1), 0);

	/* Deleting a manifest deletes its tags and releases what it listed. */
	CHECK_EQ_INT(m->manifest_delete(m, "man/app", idx.s), 0);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", "multi", 0), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->manifest_delete(m, "man/app", m1.s), 0);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", m1.s, 1), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", "stable", 0), BRT_ENOTFOUND);
	CHECK_EQ_INT(ms_tags(m, "man/app", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "v1");
	CHECK_EQ_INT(m->manifest_delete(m, "man/app", m1.s), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->manifest_delete(m, "man/missing", m1.s), BRT_ENOTFOUND);
	CHECK_EQ_INT(ms_unlink(m, "man/app", layer.s), 0);
	/* A blob a manifest (m2) still lists may be unlinked on request; the
	 * manifest stays, and its blob is then unknown to the repository. */
	CHECK_EQ_INT(ms_unlink(m, "man/app", config.s), 0);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", m2.s, 1), 0);
	CHECK_EQ_INT(m->blob_get(m, &blob, &pool, "man/app", config.s), BRT_ENOTFOUND);
	CHECK_EQ_INT(ms_link(m, "man/app", config.s, 10, "k-config", 2), 0);

	/* Tag delete leaves the manifest. */
	CHECK_EQ_INT(m->tag_delete(m, "man/app", "v1"), 0);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", "v1", 0), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", m2.s, 1), 0);
	CHECK_EQ_INT(m->tag_delete(m, "man/app", "v1"), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->tag_delete(m, "man/missing", "v1"), BRT_ENOTFOUND);
	CHECK_EQ_INT(ms_tags(m, "man/app", NULL, 10, &names, &more), 0);
	CHECK_EQ_INT(names.count, 0);
	CHECK_EQ_INT(more, 0);

	/* Re-putting a deleted manifest works (its blobs must be linked). */
	CHECK_EQ_INT(ms_put(m, "man/app", m1.s, "again", blobs1, 3), BRT_EBLOBUNKNOWN);
	CHECK_EQ_INT(ms_link(m, "man/app", layer.s, 20, "k-layer", 2), 0);
	CHECK_EQ_INT(ms_put(m, "man/app", m1.s, "again", blobs1, 3), 0);
	tag = ms_tag_target(m, &pool, "man/app", "again", &error);
	CHECK_EQ_INT(error, 0);
	CHECK_EQ_STR(tag, m1.s);

	/* A pool too small for the payload gives BRT_ENOMEM. */
	{
		unsigned char payload[4096];
		ms_digest large = ms_digest_of("man-large", 0);
		brt_manifest_put put;
		char put_account[BRT_ACCOUNT_ID_LEN + 1];
		brt_pool small;

		memset(payload, 'x', sizeof(payload));
		memset(&put, 0, sizeof(put));
		put.account_id = brt_meta_repo_account(put_account, "man/app");
		put.repo = "man/app";
		put.digest = large.s;
		put.media_type = MS_MANIFEST_TYPE;
		put.payload = payload;
		put.size = sizeof(payload);
		put.now = 1;
		CHECK_EQ_INT(m->manifest_put(m, &put), 0);
		brt_pool_init(&small, 2048);
		CHECK_EQ_INT(m->manifest_get(m, &man, &small, "man/app", large.s, 1), BRT_ENOMEM);
		brt_pool_clear(&small);
		CHECK_EQ_INT(m->manifest_get(m, &man, &pool, "man/app", large.s, 1), 0);
		CHECK_EQ_INT(man.size, sizeof(payload));
	}
	brt_pool_clear(&pool);
}

static void ms_test_tags_pagination(brt_meta *m)
{
	/* Inserted out of order; byte order puts '-' < '.' < digits <
	 * upper case < '_' < lower case. */
	static const char *const tags[] = {"b", "a", "B", "A", "_x", "1.0", "1.10", "1-0", "z"};
	ms_digest config = ms_digest_of("pag-config", 0), man = ms_digest_of("pag", 0);
	const char *blobs[] = {config.s};
	ms_names names;
	size_t i;
	int more;

	CHECK_EQ_INT(ms_tags(m, "pag/none", NULL, 10, &names, &more), BRT_ENOTFOUND);
	CHECK_EQ_INT(ms_link(m, "pag/tags", config.s, 1, "k", 1), 0);
	/* An existing repository without tags. */
	CHECK_EQ_INT(ms_tags(m, "pag/tags", NULL, 10, &names, &more), 0);
	CHECK_EQ_INT(names.count, 0);
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(ms_tags(m, "pag/tags", NULL, 0, &names, &more), 0);
	CHECK_EQ_INT(more, 0);
	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		CHECK_EQ_INT(ms_put(m, "pag/tags", man.s, tags[i], blobs, 1), 0);

	CHECK_EQ_INT(ms_tags(m, "pag/tags", NULL, 100, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "1-0,1.0,1.10,A,B,_x,a,b,z");
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(ms_tags(m, "pag/tags", NULL, 9, &names, &more), 0); /* exact */
	CHECK_EQ_INT(names.count, 9);
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(ms_tags(m, "pag/tags", NULL, 8, &names, &more), 0);
	CHECK_EQ_INT(names.count, 8);
	CHECK_EQ_INT(more, 1);
	CHECK_EQ_INT(ms_tags(m, "pag/tags", NULL, 0, &names, &more), 0);
	CHECK_EQ_INT(names.count, 0);
	CHECK_EQ_INT(more, 1);
	CHECK_EQ_INT(ms_tags(m, "pag/tags", "b", 0, &names, &more), 0);
	CHECK_EQ_INT(names.count, 0);
	CHECK_EQ_INT(more, 1);
	CHECK_EQ_INT(ms_tags(m, "pag/tags", "z", 0, &names, &more), 0);
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(ms_tags(m, "pag/tags", "z", 5, &names, &more), 0);
	CHECK_EQ_INT(names.count, 0);
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(ms_tags(m, "pag/tags", "zz", 5, &names, &more), 0);
	CHECK_EQ_INT(names.count, 0);
	CHECK_EQ_INT(more, 0);
	/* `last` between two names, not itself a tag. */
	CHECK_EQ_INT(ms_tags(m, "pag/tags", "Aa", 2, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "B,_x");
	CHECK_EQ_INT(more, 1);
	CHECK_EQ_INT(ms_tags(m, "pag/tags", "_x", 3, &names, &more), 0); /* exact */
	CHECK_EQ_STR(ms_names_join(&names), "a,b,z");
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(ms_tags(m, "pag/tags", "", 2, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "1-0,1.0");
	CHECK_EQ_INT(more, 1);

	/* Paging through with limit 4. */
	CHECK_EQ_INT(ms_tags(m, "pag/tags", NULL, 4, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "1-0,1.0,1.10,A");
	CHECK_EQ_INT(more, 1);
	CHECK_EQ_INT(ms_tags(m, "pag/tags", "A", 4, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "B,_x,a,b");
	CHECK_EQ_INT(more, 1);
	CHECK_EQ_INT(ms_tags(m, "pag/tags", "b", 4, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "z");
	CHECK_EQ_INT(more, 0);

	/* A callback's error stops the listing and is returned unchanged. */
	memset(&names, 0, sizeof(names));
	names.fail_at = 2;
	CHECK_EQ_INT(m->tags_list(m, "pag/tags", NULL, 100, ms_names_cb, &names, &more), BRT_EIO);
	CHECK_EQ_INT(names.count, 2);
}

static void ms_test_catalog(brt_meta *m)
{
	static const char *const repos[] = {"cat/b/c", "cat/a", "cat-x/y", "cat0/z", "ca/t", "cat/b"};
	ms_digest d = ms_digest_of("cat", 0);
	ms_names all, page, names;
	size_t i;
	int more;

	for (i = 0; i < sizeof(repos) / sizeof(repos[0]); i++)
		CHECK_EQ_INT(ms_link(m, repos[i], d.s, 1, "k", 1), 0);

	CHECK_EQ_INT(ms_catalog(m, "cat/", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "cat/a,cat/b,cat/b/c");
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(ms_catalog(m, "cat/", NULL, 3, &names, &more), 0); /* exact */
	CHECK_EQ_INT(names.count, 3);
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(ms_catalog(m, "cat/", NULL, 2, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "cat/a,cat/b");
	CHECK_EQ_INT(more, 1);
	CHECK_EQ_INT(ms_catalog(m, "cat/", "cat/b", 2, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "cat/b/c");
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(ms_catalog(m, "cat/", NULL, 0, &names, &more), 0);
	CHECK_EQ_INT(names.count, 0);
	CHECK_EQ_INT(more, 1);
	CHECK_EQ_INT(ms_catalog(m, "cat/", "cat/b/c", 0, &names, &more), 0);
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(ms_catalog(m, "cat/", "cat/b/c", 5, &names, &more), 0);
	CHECK_EQ_INT(names.count, 0);
	CHECK_EQ_INT(more, 0);
	/* `last` before the prefix range, between names, after it. */
	CHECK_EQ_INT(ms_catalog(m, "cat/", "ca", 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "cat/a,cat/b,cat/b/c");
	CHECK_EQ_INT(ms_catalog(m, "cat/", "cat/aa", 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "cat/b,cat/b/c");
	CHECK_EQ_INT(ms_catalog(m, "cat/", "zzz", 10, &names, &more), 0);
	CHECK_EQ_INT(names.count, 0);
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(ms_catalog(m, "nomatch/", NULL, 10, &names, &more), 0);
	CHECK_EQ_INT(names.count, 0);
	CHECK_EQ_INT(more, 0);
	/* A prefix is a string prefix, not a path component. */
	CHECK_EQ_INT(ms_catalog(m, "cat", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "cat-x/y,cat/a,cat/b,cat/b/c,cat0/z");
	CHECK_EQ_INT(ms_catalog(m, "cat", NULL, 4, &names, &more), 0);
	CHECK_EQ_INT(more, 1);
	CHECK_EQ_INT(ms_catalog(m, "cat", "cat/b/c", 4, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "cat0/z");
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(ms_catalog(m, "cat/b", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "cat/b,cat/b/c");

	/* Without a prefix: sorted, complete, and paging gives the same. */
	CHECK_EQ_INT(ms_catalog(m, NULL, NULL, MS_NAMES_MAX, &all, &more), 0);
	CHECK_EQ_INT(more, 0);
	CHECK_EQ_INT(all.overflow, 0);
	CHECK(all.count >= sizeof(repos) / sizeof(repos[0]));
	for (i = 1; i < all.count; i++)
		CHECK(strcmp(all.names[i - 1], all.names[i]) < 0);
	{
		ms_names joined;
		const char *last = NULL;
		char last_buf[BRT_NAME_MAX + 1];
		int rounds = 0;

		memset(&joined, 0, sizeof(joined));
		do {
			CHECK_EQ_INT(ms_catalog(m, NULL, last, 2, &page, &more), 0);
			for (i = 0; i < page.count; i++)
				ms_names_cb(page.names[i], &joined);
			if (page.count) {
				snprintf(last_buf, sizeof(last_buf), "%s", page.names[page.count - 1]);
				last = last_buf;
			}
		} while (more == 1 && page.count && ++rounds < MS_NAMES_MAX);
		CHECK_EQ_INT(joined.count, all.count);
		for (i = 0; i < joined.count && i < all.count; i++)
			CHECK_EQ_STR(joined.names[i], all.names[i]);
	}
	CHECK_EQ_INT(ms_catalog(m, NULL, NULL, 0, &names, &more), 0);
	CHECK_EQ_INT(names.count, 0);
	CHECK_EQ_INT(more, 1);
	if (all.count > 0) {
		CHECK_EQ_INT(ms_catalog(m, NULL, all.names[all.count - 1], 0, &names, &more), 0);
		CHECK_EQ_INT(more, 0);
	}
	CHECK_EQ_INT(ms_catalog(m, "", "cat0/z", 100, &names, &more), 0);
	for (i = 0; i < names.count; i++)
		CHECK(strcmp(names.names[i], "cat0/z") > 0);
}

/* Who is listed: a repository appears iff it holds a manifest or a blob
 * link, whatever came and went before; an upload session alone never
 * lists it.  "lst/" names sort among others, so the prefix range and the
 * unbounded walk both see each change. */
static void ms_test_catalog_listing(brt_meta *m)
{
	ms_digest a = ms_digest_of("lst-blob", 0), b = ms_digest_of("lst-blob", 1);
	ms_digest man = ms_digest_of("lst-man", 0), man2 = ms_digest_of("lst-man", 1);
	const char *one[] = {a.s}, *two[] = {a.s, b.s};
	ms_names names;
	brt_upload u;
	int more;

	/* An open upload session creates the repository, unlisted. */
	memset(&u, 0, sizeof(u));
	snprintf(u.id, sizeof(u.id), "%s", "6c730000000000000000000000000001");
	snprintf(u.repo, sizeof(u.repo), "%s", "lst/upload");
	brt_meta_repo_account(u.account_id, u.repo);
	CHECK_EQ_INT(m->upload_create(m, &u, 0), 0);
	CHECK_EQ_INT(m->repo_exists(m, "lst/upload"), 0);
	CHECK_EQ_INT(ms_catalog(m, "lst/", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "");
	CHECK_EQ_INT(ms_catalog(m, NULL, "lst", 1, &names, &more), 0);
	CHECK(names.count == 0 || strncmp(names.names[0], "lst/", 4) != 0);

	/* A link lists it; linking the same blob again counts once. */
	CHECK_EQ_INT(ms_link(m, "lst/link", a.s, 1, "k/lst-a", 1), 0);
	CHECK_EQ_INT(ms_link(m, "lst/link", a.s, 1, NULL, 2), 0);
	CHECK_EQ_INT(ms_link(m, "lst/upload", b.s, 1, "k/lst-b", 1), 0);
	CHECK_EQ_INT(ms_catalog(m, "lst/", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "lst/link,lst/upload");
	CHECK_EQ_INT(ms_catalog(m, NULL, "lst", 1, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "lst/link");
	CHECK_EQ_INT(ms_unlink(m, "lst/link", a.s), 0);
	CHECK_EQ_INT(ms_unlink(m, "lst/upload", b.s), 0);
	CHECK_EQ_INT(ms_catalog(m, "lst/", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "");
	CHECK_EQ_INT(m->upload_delete(m, u.id, BRT_META_ANY_GENERATION), 0);

	/* A manifest holds it without any link (its blobs' links deleted
	 * after the push), and only the last of manifest and links unlists. */
	CHECK_EQ_INT(ms_link(m, "lst/man", a.s, 1, NULL, 3), 0);
	CHECK_EQ_INT(ms_link(m, "lst/man", b.s, 1, NULL, 3), 0);
	CHECK_EQ_INT(ms_put(m, "lst/man", man.s, "t", two, 2), 0);
	CHECK_EQ_INT(ms_put(m, "lst/man", man.s, "t2", two, 2), 0); /* stored once */
	CHECK_EQ_INT(ms_put(m, "lst/man", man2.s, NULL, one, 1), 0);
	CHECK_EQ_INT(ms_unlink(m, "lst/man", a.s), 0);
	CHECK_EQ_INT(ms_unlink(m, "lst/man", b.s), 0);
	CHECK_EQ_INT(ms_catalog(m, "lst/", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "lst/man");
	CHECK_EQ_INT(m->tag_delete(m, "lst/man", "t"), 0);
	CHECK_EQ_INT(m->tag_delete(m, "lst/man", "t2"), 0);
	CHECK_EQ_INT(m->manifest_delete(m, "lst/man", man.s), 0);
	CHECK_EQ_INT(ms_catalog(m, "lst/", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "lst/man");
	CHECK_EQ_INT(ms_link(m, "lst/man", b.s, 1, NULL, 4), 0);
	CHECK_EQ_INT(m->manifest_delete(m, "lst/man", man2.s), 0);
	CHECK_EQ_INT(ms_catalog(m, "lst/", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "lst/man"); /* the link of b */
	CHECK_EQ_INT(ms_unlink(m, "lst/man", b.s), 0);
	CHECK_EQ_INT(ms_catalog(m, "lst/", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "");
	CHECK_EQ_INT(ms_catalog(m, NULL, "lst", 1, &names, &more), 0);
	CHECK(names.count == 0 || strncmp(names.names[0], "lst/", 4) != 0);
	/* A failed push (a manifest whose blob is not linked) lists nothing. */
	CHECK_EQ_INT(ms_put(m, "lst/failed", man.s, "t", one, 1), BRT_EBLOBUNKNOWN);
	CHECK_EQ_INT(ms_catalog(m, "lst/", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "");
	/* And it comes back with the next link. */
	CHECK_EQ_INT(ms_link(m, "lst/man", a.s, 1, NULL, 5), 0);
	CHECK_EQ_INT(ms_catalog(m, "lst/", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "lst/man");
}

#define MS_REFS_MAX 8

typedef struct ms_refs {
	size_t count;
	char digest[MS_REFS_MAX][MS_DIGEST_LEN + 1];
	char media_type[MS_REFS_MAX][128];
	char artifact_type[MS_REFS_MAX][128]; /* "(null)" for NULL */
	char annotations[MS_REFS_MAX][128];   /* "(null)" for NULL */
	uint64_t size[MS_REFS_MAX];
} ms_refs;

static int ms_refs_cb(const brt_referrer *ref, void *payload)
{
	ms_refs *r = payload;

	if (r->count < MS_REFS_MAX) {
		snprintf(r->digest[r->count], sizeof(r->digest[0]), "%s", ref->digest);
		snprintf(r->media_type[r->count], sizeof(r->media_type[0]), "%s", ref->media_type);
		snprintf(r->artifact_type[r->count], sizeof(r->artifact_type[0]), "%s",
			 ref->artifact_type ? ref->artifact_type : "(null)");
		snprintf(r->annotations[r->count], sizeof(r->annotations[0]), "%s",
			 ref->annotations ? ref->annotations : "(null)");
		r->size[r->count] = ref->size;
	}
	r->count++;
	return 0;
}

static int ms_cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void ms_test_referrers(brt_meta *m)
{
	ms_digest config = ms_digest_of("ref-config", 0), subject = ms_digest_of("ref-subject", 0);
	ms_digest sbom = ms_digest_of("ref-sbom", 0), sig = ms_digest_of("ref-sig", 0);
	ms_digest plain = ms_digest_of("ref-plain", 0), unknown = ms_digest_of("ref-unknown", 0);
	const char *blobs[] = {config.s};
	const char *sorted[] = {sbom.s, sig.s, plain.s};
	ms_refs refs;
	size_t i;

	CHECK_EQ_INT(ms_link(m, "ref/app", config.s, 7, "k", 1), 0);
	CHECK_EQ_INT(ms_put(m, "ref/app", subject.s, "v1", blobs, 1), 0);
	/* The subject need not exist: referrers may arrive first. */
	CHECK_EQ_INT(ms_put_full(m, "ref/app", sbom.s, NULL, blobs, 1, NULL, 0, subject.s,
				 "application/vnd.example.sbom", "{\"a\":\"1\"}"),
		     0);
	CHECK_EQ_INT(ms_put_full(m, "ref/app", sig.s, NULL, blobs, 1, NULL, 0, subject.s,
				 "application/vnd.example.sig", NULL),
		     0);
	CHECK_EQ_INT(ms_put_full(m, "ref/app", plain.s, NULL, blobs, 1, NULL, 0, subject.s, NULL, NULL), 0);
	CHECK_EQ_INT(ms_put_full(m, "ref/app", unknown.s, NULL, blobs, 1, NULL, 0, config.s,
				 "application/vnd.example.sbom", NULL),
		     0);
	/* Same subject in another repository: not listed in ref/app. */
	CHECK_EQ_INT(ms_link(m, "ref/other", config.s, 7, "k", 1), 0);
	CHECK_EQ_INT(ms_put_full(m, "ref/other", sbom.s, NULL, blobs, 1, NULL, 0, subject.s,
				 "application/vnd.example.sbom", NULL),
		     0);

	qsort(sorted, 3, sizeof(sorted[0]), ms_cmp_str);
	memset(&refs, 0, sizeof(refs));
	CHECK_EQ_INT(m->referrers_list(m, "ref/app", subject.s, NULL, ms_refs_cb, &refs), 0);
	CHECK_EQ_INT(refs.count, 3);
	for (i = 0; i < 3 && i < refs.count; i++) {
		char expect[256];
		int n = snprintf(expect, sizeof(expect), "{\"schemaVersion\":2,\"x\":\"%s\"}",
				 refs.digest[i]);

		CHECK_EQ_STR(refs.digest[i], sorted[i]);
		CHECK_EQ_STR(refs.media_type[i], MS_MANIFEST_TYPE);
		CHECK_EQ_INT(refs.size[i], n);
		if (strcmp(refs.digest[i], sbom.s) == 0) {
			CHECK_EQ_STR(refs.artifact_type[i], "application/vnd.example.sbom");
			CHECK_EQ_STR(refs.annotations[i], "{\"a\":\"1\"}");
		} else if (strcmp(refs.digest[i], sig.s) == 0) {
			CHECK_EQ_STR(refs.artifact_type[i], "application/vnd.example.sig");
			CHECK_EQ_STR(refs.annotations[i], "(null)");
		} else {
			CHECK_EQ_STR(refs.artifact_type[i], "(null)");
		}
	}

	memset(&refs, 0, sizeof(refs));
	CHECK_EQ_INT(m->referrers_list(m, "ref/app", subject.s, "application/vnd.example.sbom", ms_refs_cb,
				       &refs),
		     0);
	CHECK_EQ_INT(refs.count, 1);
	CHECK_EQ_STR(refs.digest[0], sbom.s);
	memset(&refs, 0, sizeof(refs));
	CHECK_EQ_INT(m->referrers_list(m, "ref/app", subject.s, "application/none", ms_refs_cb, &refs), 0);
	CHECK_EQ_INT(refs.count, 0);
	memset(&refs, 0, sizeof(refs));
	CHECK_EQ_INT(m->referrers_list(m, "ref/app", unknown.s, NULL, ms_refs_cb, &refs), 0);
	CHECK_EQ_INT(refs.count, 0);
	CHECK_EQ_INT(m->referrers_list(m, "ref/missing", subject.s, NULL, ms_refs_cb, &refs), 0);
	CHECK_EQ_INT(refs.count, 0);
	memset(&refs, 0, sizeof(refs));
	CHECK_EQ_INT(m->referrers_list(m, "ref/other", subject.s, NULL, ms_refs_cb, &refs), 0);
	CHECK_EQ_INT(refs.count, 1);

	/* Deleting a referrer removes it from the list. */
	CHECK_EQ_INT(m->manifest_delete(m, "ref/app", sig.s), 0);
	memset(&refs, 0, sizeof(refs));
	CHECK_EQ_INT(m->referrers_list(m, "ref/app", subject.s, NULL, ms_refs_cb, &refs), 0);
	CHECK_EQ_INT(refs.count, 2);
}

static void ms_test_uploads(brt_meta *m)
{
	brt_upload u, got, stale;
	size_t i;

	memset(&u, 0, sizeof(u));
	snprintf(u.id, sizeof(u.id), "%s", "0123456789abcdef0123456789abcdef");
	snprintf(u.repo, sizeof(u.repo), "%s", "up/app");
	brt_meta_repo_account(u.account_id, u.repo);
	for (i = 0; i < 40; i++)
		u.hash_state[i] = (unsigned char)(i * 7); /* includes zero bytes */
	u.hash_state_len = 40;
	u.offset = 0;
	u.generation = 0;
	u.created_at = 1000;
	u.updated_at = 1000;

	CHECK_EQ_INT(m->upload_get(m, &got, NULL, u.id), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->repo_exists(m, "up/app"), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->upload_create(m, &u, 0), 0);
	CHECK_EQ_INT(m->repo_exists(m, "up/app"), 0);
	/* Garbage in, so stale fields cannot pass; strings stay printable. */
	memset(&got, 0x5a, sizeof(got));
	got.id[sizeof(got.id) - 1] = '\0';
	got.repo[sizeof(got.repo) - 1] = '\0';
	CHECK_EQ_INT(m->upload_get(m, &got, NULL, u.id), 0);
	CHECK_EQ_STR(got.id, u.id);
	CHECK_EQ_STR(got.repo, "up/app");
	CHECK_EQ_INT(got.offset, 0);
	CHECK_EQ_INT(got.generation, 0);
	CHECK_EQ_INT(got.hash_state_len, 40);
	CHECK(memcmp(got.hash_state, u.hash_state, 40) == 0);
	CHECK_EQ_INT(got.created_at, 1000);
	CHECK_EQ_INT(got.updated_at, 1000);

	/* Compare-and-swap on the generation. */
	stale = got;
	got.offset = 5ULL * 1024 * 1024 * 1024;
	got.hash_state[0] ^= 0xff;
	got.updated_at = 2000;
	CHECK_EQ_INT(m->upload_update(m, &got), 0);
	stale.offset = 7;
	stale.updated_at = 3000;
	CHECK_EQ_INT(m->upload_update(m, &stale), BRT_ECONFLICT);
	memset(&u, 0, sizeof(u));
	CHECK_EQ_INT(m->upload_get(m, &u, NULL, got.id), 0);
	CHECK(u.offset == 5ULL * 1024 * 1024 * 1024);
	CHECK_EQ_INT(u.generation, 1);
	CHECK_EQ_INT(u.updated_at, 2000);
	CHECK_EQ_INT(u.created_at, 1000);
	CHECK_EQ_INT(u.hash_state[0], got.hash_state[0]);
	CHECK_EQ_INT(u.hash_state_len, 40);

	/* The winner's next update, with an empty hash state. */
	u.hash_state_len = 0;
	u.offset = 6;
	CHECK_EQ_INT(m->upload_update(m, &u), 0);
	CHECK_EQ_INT(m->upload_get(m, &got, NULL, u.id), 0);
	CHECK_EQ_INT(got.generation, 2);
	CHECK_EQ_INT(got.hash_state_len, 0);
	CHECK_EQ_INT(got.offset, 6);

	/* A second session in the same repository is independent. */
	{
		brt_upload other = u;

		snprintf(other.id, sizeof(other.id), "%s", "ffffffffffffffffffffffffffffffff");
		other.generation = 0;
		CHECK_EQ_INT(m->upload_create(m, &other, 0), 0);
		CHECK_EQ_INT(m->upload_delete(m, other.id, BRT_META_ANY_GENERATION), 0);
		CHECK_EQ_INT(m->upload_get(m, &got, NULL, u.id), 0);
	}

	CHECK_EQ_INT(m->upload_delete(m, u.id, BRT_META_ANY_GENERATION), 0);
	CHECK_EQ_INT(m->upload_delete(m, u.id, BRT_META_ANY_GENERATION), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->upload_get(m, &got, NULL, u.id), BRT_ENOTFOUND);
	got.generation = 2;
	CHECK_EQ_INT(m->upload_update(m, &got), BRT_ENOTFOUND);
}

typedef struct ms_worker {
	brt_meta *m;
	int id;
	double seconds;
	unsigned long ops;
	int errors;
	int first_error;
	char first_detail[256];
} ms_worker;

static double ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ms_worker_fail(ms_worker *w, int error)
{
	if (!w->errors++) {
		w->first_error = error;
		snprintf(w->first_detail, sizeof(w->first_detail), "%s", brt_error_last());
	}
}

static void *ms_worker_run(void *arg)
{
	ms_worker *w = arg;
	brt_meta *m = w->m;
	char repo[32];
	char tag[32];
	double end = ms_now() + w->seconds;
	ms_digest shared = ms_digest_of("conc-shared", 0);
	unsigned long k;
	brt_pool pool;

	brt_pool_init(&pool, 1 << 20);
	/* Two threads per repository, so they race on the same rows. */
	snprintf(repo, sizeof(repo), "conc/r%d", w->id % 2);
	for (k = 0; k < 1000000 && ms_now() < end; k++) {
		ms_digest blob = ms_digest_of("conc-blob", (unsigned long)w->id * 10000000UL + k);
		ms_digest man = ms_digest_of("conc-man", (unsigned long)w->id * 10000000UL + k);
		const char *blobs[] = {shared.s, blob.s};
		brt_manifest got;
		ms_names names;
		int more;
		int error;

		snprintf(tag, sizeof(tag), "t%d-%lu", w->id, k % 5);
		if ((error = ms_link(m, repo, shared.s, 1, "k-shared", (int64_t)k)) < 0 ||
		    (error = ms_link(m, repo, blob.s, 2, "k", (int64_t)k)) < 0 ||
		    (error = ms_put(m, repo, man.s, tag, blobs, 2)) < 0 ||
		    (error = ms_tags(m, repo, NULL, 10, &names, &more)) < 0 ||
		    (error = m->manifest_get(m, &got, &pool, repo, tag, 0)) < 0) {
			ms_worker_fail(w, error);
			break;
		}
		if (strcmp(got.digest, man.s) != 0 || names.count == 0) {
			ms_worker_fail(w, 1);
			break;
		}
		w->ops++;
		brt_pool_clear(&pool);
	}
	brt_pool_clear(&pool);
	return NULL;
}

static void ms_test_concurrency(brt_meta *m)
{
	ms_worker workers[4];
	pthread_t threads[4];
	unsigned long total = 0;
	ms_names names;
	int started[4];
	int more;
	int i;

	for (i = 0; i < 4; i++) {
		memset(&workers[i], 0, sizeof(workers[i]));
		workers[i].m = m;
		workers[i].id = i;
		workers[i].seconds = 2.0;
		started[i] = pthread_create(&threads[i], NULL, ms_worker_run, &workers[i]) == 0;
		CHECK(started[i]);
	}
	for (i = 0; i < 4; i++) {
		if (!started[i])
			continue;
		pthread_join(threads[i], NULL);
		CHECK_EQ_INT(workers[i].errors, 0);
		CHECK(workers[i].ops > 0);
		if (workers[i].errors)
			fprintf(stderr, "worker %d: error %d (%s): %s\n", i, workers[i].first_error,
				brt_error_name(workers[i].first_error), workers[i].first_detail);
		total += workers[i].ops;
	}
	fprintf(stderr, "meta suite: %lu concurrent iterations in 2 s (4 threads)\n", total);
	/* Every thread's 5 tags are there, two threads per repository. */
	CHECK_EQ_INT(ms_tags(m, "conc/r0", NULL, 100, &names, &more), 0);
	CHECK_EQ_INT(names.count, 10);
	CHECK_EQ_INT(ms_tags(m, "conc/r1", NULL, 100, &names, &more), 0);
	CHECK_EQ_INT(names.count, 10);
}

/* --- version 2: accounts, access keys, server secrets --- */

#define MS_ACCOUNT_A "0146e9b57080961e2c835363000000aa"
#define MS_ACCOUNT_B "0146e9b57080961e2c835363000000bb"
#define MS_ACCOUNT_C "0146e9b57080961e2c835363000000cc"
#define MS_ACCOUNT_NONE "0146e9b57080961e2c835363000000ff"
#define MS_LIST_MAX 16

typedef struct ms_accounts {
	brt_account items[MS_LIST_MAX];
	size_t count;
	int fail_at; /* return BRT_EIO on this call (1-based), 0 never */
} ms_accounts;

static int ms_accounts_cb(const brt_account *account, void *payload)
{
	ms_accounts *a = payload;

	a->count++;
	if (a->fail_at && (size_t)a->fail_at == a->count)
		return BRT_EIO;
	if (a->count <= MS_LIST_MAX)
		a->items[a->count - 1] = *account;
	return 0;
}

typedef struct ms_keys {
	brt_access_key items[MS_LIST_MAX];
	size_t count;
	int fail_at;
	brt_meta *reenter; /* if set, key_get each listed key from the callback */
	int reenter_errors;
} ms_keys;

static int ms_keys_cb(const brt_access_key *key, void *payload)
{
	ms_keys *k = payload;

	k->count++;
	if (k->fail_at && (size_t)k->fail_at == k->count)
		return BRT_EIO;
	if (k->reenter) {
		brt_access_key again;

		if (k->reenter->key_get(k->reenter, &again, key->id) != 0 || strcmp(again.id, key->id) != 0)
			k->reenter_errors++;
	}
	if (k->count <= MS_LIST_MAX)
		k->items[k->count - 1] = *key;
	return 0;
}

/* "a,b,c" of the ids listed. */
static const char *ms_keys_join(const ms_keys *k)
{
	static _Thread_local char buf[MS_LIST_MAX * (BRT_KEY_ID_LEN + 1) + 1];
	size_t used = 0;
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < k->count && i < MS_LIST_MAX; i++) {
		int w = snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? "," : "", k->items[i].id);
		if (w < 0 || (size_t)w >= sizeof(buf) - used)
			break;
		used += (size_t)w;
	}
	return buf;
}

static brt_account ms_account(const char *id, const char *name, int64_t created_at)
{
	brt_account a;

	memset(&a, 0, sizeof(a));
	snprintf(a.id, sizeof(a.id), "%s", id);
	snprintf(a.name, sizeof(a.name), "%s", name);
	a.created_at = created_at;
	return a;
}

/* A key whose hash is derived from its id and contains zero bytes. */
static brt_access_key ms_key(const char *id, const char *account, unsigned int permissions, const char *label,
			     int64_t created_at, int64_t expires_at)
{
	ms_digest d = ms_digest_of(id, 7);
	brt_access_key k;
	size_t i;

	memset(&k, 0, sizeof(k));
	snprintf(k.id, sizeof(k.id), "%s", id);
	snprintf(k.account_id, sizeof(k.account_id), "%s", account);
	for (i = 0; i < BRT_KEY_HASH_LEN; i++)
		k.secret_hash[i] = (unsigned char)(d.s[7 + i] * 31 + i);
	k.secret_hash[3] = 0;
	k.secret_hash[BRT_KEY_HASH_LEN - 1] = 0;
	k.permissions = permissions;
	snprintf(k.label, sizeof(k.label), "%s", label);
	k.created_at = created_at;
	k.expires_at = expires_at;
	return k;
}

static void ms_check_key(const brt_access_key *got, const brt_access_key *want)
{
	CHECK_EQ_STR(got->id, want->id);
	CHECK_EQ_STR(got->account_id, want->account_id);
	CHECK(memcmp(got->secret_hash, want->secret_hash, BRT_KEY_HASH_LEN) == 0);
	CHECK_EQ_INT(got->permissions, want->permissions);
	CHECK_EQ_STR(got->label, want->label);
	CHECK_EQ_INT(got->created_at, want->created_at);
	CHECK_EQ_INT(got->expires_at, want->expires_at);
	CHECK_EQ_INT(got->revoked_at, want->revoked_at);
}

/* Garbage in, so that fields the store forgets to fill cannot pass;
 * strings stay terminated. */
static void ms_key_garbage(brt_access_key *k)
{
	memset(k, 0x5a, sizeof(*k));
	k->id[sizeof(k->id) - 1] = '\0';
	k->account_id[sizeof(k->account_id) - 1] = '\0';
	k->label[sizeof(k->label) - 1] = '\0';
}

static void ms_test_accounts(brt_meta *m)
{
	char long_name[129];
	brt_account a, b, c, got;
	ms_accounts list;
	size_t i;

	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	a = ms_account(MS_ACCOUNT_A, "acme corp", 1000);
	b = ms_account(MS_ACCOUNT_B, "", 2000);
	c = ms_account(MS_ACCOUNT_C, long_name, 1500);

	CHECK_EQ_INT(m->account_get(m, &got, MS_ACCOUNT_A), BRT_ENOTFOUND);
	memset(&list, 0, sizeof(list));
	CHECK_EQ_INT(m->account_list(m, ms_accounts_cb, &list), 0);
	CHECK_EQ_INT(list.count, 0);

	/* Created out of id order. */
	CHECK_EQ_INT(m->account_create(m, &c), 0);
	CHECK_EQ_INT(m->account_create(m, &a), 0);
	CHECK_EQ_INT(m->account_create(m, &b), 0);

	/* A taken id: refused, and the first account is left as it was. */
	{
		brt_account dup = ms_account(MS_ACCOUNT_A, "impostor", 9999);

		brt_error_clear();
		CHECK_EQ_INT(m->account_create(m, &dup), BRT_EEXISTS);
		CHECK(ms_error_mentions(MS_ACCOUNT_A));
	}

	memset(&got, 0x5a, sizeof(got));
	got.id[sizeof(got.id) - 1] = got.name[sizeof(got.name) - 1] = '\0';
	CHECK_EQ_INT(m->account_get(m, &got, MS_ACCOUNT_A), 0);
	CHECK_EQ_STR(got.id, MS_ACCOUNT_A);
	CHECK_EQ_STR(got.name, "acme corp");
	CHECK_EQ_INT(got.created_at, 1000);
	memset(got.name, 'x', sizeof(got.name) - 1);
	CHECK_EQ_INT(m->account_get(m, &got, MS_ACCOUNT_B), 0);
	CHECK_EQ_STR(got.name, "");
	CHECK_EQ_INT(got.created_at, 2000);
	CHECK_EQ_INT(m->account_get(m, &got, MS_ACCOUNT_C), 0);
	CHECK_EQ_STR(got.name, long_name);
	CHECK_EQ_INT(m->account_get(m, &got, MS_ACCOUNT_NONE), BRT_ENOTFOUND);

	/* Ordered by id, every field. */
	memset(&list, 0, sizeof(list));
	CHECK_EQ_INT(m->account_list(m, ms_accounts_cb, &list), 0);
	CHECK_EQ_INT(list.count, 3);
	{
		const brt_account *want[] = {&a, &b, &c};

		for (i = 0; i < 3 && i < list.count; i++) {
			CHECK_EQ_STR(list.items[i].id, want[i]->id);
			CHECK_EQ_STR(list.items[i].name, want[i]->name);
			CHECK_EQ_INT(list.items[i].created_at, want[i]->created_at);
		}
	}

	/* A callback's error stops the listing and is returned unchanged. */
	memset(&list, 0, sizeof(list));
	list.fail_at = 2;
	CHECK_EQ_INT(m->account_list(m, ms_accounts_cb, &list), BRT_EIO);
	CHECK_EQ_INT(list.count, 2);
}

/* Needs ms_test_accounts' accounts. */
static void ms_test_keys(brt_meta *m)
{
	const int64_t day = 86400000LL;
	char long_label[129];
	brt_access_key k_c3, k_ff, k_a1, k_b2, k_other, got;
	ms_keys keys;
	size_t i;

	memset(long_label, 'l', sizeof(long_label) - 1);
	long_label[sizeof(long_label) - 1] = '\0';
	k_c3 = ms_key("00000000000000c3", MS_ACCOUNT_A, BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE, "ci",
		      300, 0);
	k_ff = ms_key("00000000000000ff", MS_ACCOUNT_A, BRT_PERM_PULL, "", 100, 1700000000000LL + 90 * day);
	k_a1 = ms_key("00000000000000a1", MS_ACCOUNT_A, BRT_PERM_PULL, long_label, 200, 0);
	k_b2 = ms_key("00000000000000b2", MS_ACCOUNT_A, BRT_PERM_PULL | BRT_PERM_PUSH, "laptop", 100, 1);
	k_other = ms_key("1111111111111111", MS_ACCOUNT_B, BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE,
			 "b", 50, 0);

	CHECK_EQ_INT(m->key_get(m, &got, k_c3.id), BRT_ENOTFOUND);

	/* Unknown account: a clear BRT_ENOTFOUND naming it, nothing stored. */
	{
		brt_access_key orphan = ms_key("2222222222222222", MS_ACCOUNT_NONE, BRT_PERM_PULL, "", 10, 0);

		brt_error_clear();
		CHECK_EQ_INT(m->key_create(m, &orphan), BRT_ENOTFOUND);
		CHECK(ms_error_mentions(MS_ACCOUNT_NONE));
		CHECK_EQ_INT(m->key_get(m, &got, orphan.id), BRT_ENOTFOUND);
	}

	/* Inserted out of order: the listing is by creation time, then id. */
	CHECK_EQ_INT(m->key_create(m, &k_c3), 0);
	CHECK_EQ_INT(m->key_create(m, &k_ff), 0);
	CHECK_EQ_INT(m->key_create(m, &k_a1), 0);
	CHECK_EQ_INT(m->key_create(m, &k_b2), 0);
	CHECK_EQ_INT(m->key_create(m, &k_other), 0);

	/* A taken id, even for another account: refused, the first stays. */
	{
		brt_access_key dup = ms_key(k_c3.id, MS_ACCOUNT_B, BRT_PERM_PULL, "dup", 1, 0);

		brt_error_clear();
		CHECK_EQ_INT(m->key_create(m, &dup), BRT_EEXISTS);
		CHECK(ms_error_mentions(k_c3.id));
		CHECK_EQ_INT(m->key_create(m, &k_c3), BRT_EEXISTS);
	}

	/* Every field comes back, expiry included (0 stays "never"). */
	{
		const brt_access_key *all[] = {&k_c3, &k_ff, &k_a1, &k_b2, &k_other};

		for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
			ms_key_garbage(&got);
			CHECK_EQ_INT(m->key_get(m, &got, all[i]->id), 0);
			ms_check_key(&got, all[i]);
		}
	}

	memset(&keys, 0, sizeof(keys));
	CHECK_EQ_INT(m->key_list(m, MS_ACCOUNT_A, ms_keys_cb, &keys), 0);
	CHECK_EQ_STR(ms_keys_join(&keys),
		     "00000000000000b2,00000000000000ff,00000000000000a1,"
		     "00000000000000c3");
	CHECK_EQ_INT(keys.count, 4);
	if (keys.count == 4) {
		ms_check_key(&keys.items[0], &k_b2);
		ms_check_key(&keys.items[1], &k_ff);
		ms_check_key(&keys.items[2], &k_a1);
		ms_check_key(&keys.items[3], &k_c3);
	}
	memset(&keys, 0, sizeof(keys));
	CHECK_EQ_INT(m->key_list(m, MS_ACCOUNT_B, ms_keys_cb, &keys), 0);
	CHECK_EQ_STR(ms_keys_join(&keys), "1111111111111111");
	/* An account without keys lists nothing; an unknown account is
	 * BRT_ENOTFOUND, so that callers can tell the two apart. */
	memset(&keys, 0, sizeof(keys));
	CHECK_EQ_INT(m->key_list(m, MS_ACCOUNT_C, ms_keys_cb, &keys), 0);
	CHECK_EQ_INT(keys.count, 0);
	CHECK_EQ_INT(m->key_list(m, MS_ACCOUNT_NONE, ms_keys_cb, &keys), BRT_ENOTFOUND);
	CHECK_EQ_INT(keys.count, 0);

	/* Revocation keeps the first time; the key is still readable. */
	CHECK_EQ_INT(m->key_revoke(m, k_b2.id, 5000), 0);
	ms_key_garbage(&got);
	CHECK_EQ_INT(m->key_get(m, &got, k_b2.id), 0);
	k_b2.revoked_at = 5000;
	ms_check_key(&got, &k_b2);
	CHECK_EQ_INT(m->key_revoke(m, k_b2.id, 6000), 0);
	CHECK_EQ_INT(m->key_get(m, &got, k_b2.id), 0);
	CHECK_EQ_INT(got.revoked_at, 5000);
	CHECK_EQ_INT(m->key_revoke(m, "3333333333333333", 5000), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->key_get(m, &got, k_c3.id), 0);
	CHECK_EQ_INT(got.revoked_at, 0);

	/* Revoked keys are still listed, with their time; callbacks may call
	 * back into the store. */
	memset(&keys, 0, sizeof(keys));
	keys.reenter = m;
	CHECK_EQ_INT(m->key_list(m, MS_ACCOUNT_A, ms_keys_cb, &keys), 0);
	CHECK_EQ_INT(keys.count, 4);
	CHECK_EQ_INT(keys.reenter_errors, 0);
	CHECK_EQ_INT(keys.items[0].revoked_at, 5000);
	CHECK_EQ_INT(keys.items[1].revoked_at, 0);

	/* A callback's error stops the listing and is returned unchanged. */
	memset(&keys, 0, sizeof(keys));
	keys.fail_at = 3;
	CHECK_EQ_INT(m->key_list(m, MS_ACCOUNT_A, ms_keys_cb, &keys), BRT_EIO);
	CHECK_EQ_INT(keys.count, 3);
}

static int ms_bytes_nonzero(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i])
			return 1;
	}
	return 0;
}

static void ms_test_secrets(brt_meta *m)
{
	unsigned char a1[32], a2[32], b[32], short_buf[16], long_buf[64], long2[64];

	memset(a1, 0, sizeof(a1));
	memset(a2, 0xee, sizeof(a2));
	CHECK_EQ_INT(m->secret_get(m, "suite-a", a1, sizeof(a1)), 0);
	CHECK(ms_bytes_nonzero(a1, sizeof(a1)));
	CHECK_EQ_INT(m->secret_get(m, "suite-a", a2, sizeof(a2)), 0);
	CHECK(memcmp(a1, a2, sizeof(a1)) == 0);

	/* Another name, another value. */
	CHECK_EQ_INT(m->secret_get(m, "suite-b", b, sizeof(b)), 0);
	CHECK(memcmp(a1, b, sizeof(a1)) != 0);

	/* A stored secret is never truncated or padded to another length. */
	CHECK_EQ_INT(m->secret_get(m, "suite-a", short_buf, sizeof(short_buf)), BRT_EINVALID);
	CHECK_EQ_INT(m->secret_get(m, "suite-a", long_buf, sizeof(long_buf)), BRT_EINVALID);
	memset(a2, 0, sizeof(a2));
	CHECK_EQ_INT(m->secret_get(m, "suite-a", a2, sizeof(a2)), 0);
	CHECK(memcmp(a1, a2, sizeof(a1)) == 0);

	CHECK_EQ_INT(m->secret_get(m, "suite-long", long_buf, sizeof(long_buf)), 0);
	CHECK_EQ_INT(m->secret_get(m, "suite-long", long2, sizeof(long2)), 0);
	CHECK(memcmp(long_buf, long2, sizeof(long_buf)) == 0);
	CHECK(memcmp(long_buf, a1, sizeof(a1)) != 0);
}

#define MS_RACE_THREADS 4
#define MS_RACE_NAMES 25

typedef struct ms_racer {
	brt_meta *m;
	pthread_barrier_t *start;
	unsigned char values[MS_RACE_NAMES][32];
	int errors;
	int first_error;
	char first_detail[256];
} ms_racer;

/* All threads ask for the same fresh name at the same moment. */
static void *ms_racer_run(void *arg)
{
	ms_racer *r = arg;
	char name[32];
	int i;

	for (i = 0; i < MS_RACE_NAMES; i++) {
		int error;

		snprintf(name, sizeof(name), "race-%d", i);
		pthread_barrier_wait(r->start);
		if ((error = r->m->secret_get(r->m, name, r->values[i], 32)) != 0 && !r->errors++) {
			r->first_error = error;
			snprintf(r->first_detail, sizeof(r->first_detail), "%s", brt_error_last());
		}
	}
	return NULL;
}

static void ms_test_secret_race(brt_meta *m)
{
	static ms_racer racers[MS_RACE_THREADS];
	pthread_t threads[MS_RACE_THREADS];
	pthread_barrier_t start;
	int t, i;

	/* Without every thread at the barrier the others would wait forever. */
	if (pthread_barrier_init(&start, NULL, MS_RACE_THREADS) != 0) {
		CHECK(0);
		return;
	}
	for (t = 0; t < MS_RACE_THREADS; t++) {
		memset(&racers[t], 0, sizeof(racers[t]));
		racers[t].m = m;
		racers[t].start = &start;
	}
	for (t = 0; t < MS_RACE_THREADS; t++) {
		if (pthread_create(&threads[t], NULL, ms_racer_run, &racers[t]) != 0) {
			fprintf(stderr, "meta suite: cannot start racer threads\n");
			abort();
		}
	}
	for (t = 0; t < MS_RACE_THREADS; t++) {
		pthread_join(threads[t], NULL);
		CHECK_EQ_INT(racers[t].errors, 0);
		if (racers[t].errors)
			fprintf(stderr, "racer %d: error %d (%s): %s\n", t, racers[t].first_error,
				brt_error_name(racers[t].first_error), racers[t].first_detail);
	}
	pthread_barrier_destroy(&start);
	for (i = 0; i < MS_RACE_NAMES; i++) {
		for (t = 1; t < MS_RACE_THREADS; t++)
			CHECK(memcmp(racers[0].values[i], racers[t].values[i], 32) == 0);
		if (i > 0)
			CHECK(memcmp(racers[0].values[i], racers[0].values[i - 1], 32) != 0);
	}
}

static int ms_upload_names_cb(const brt_upload *u, void *payload)
{
	return ms_names_cb(u->id, payload);
}

/* upload_list never hands out a backend state. */
static int ms_upload_state_cb(const brt_upload *u, void *payload)
{
	if (u->backend_state || u->backend_state_len)
		((ms_names *)payload)->overflow = 1;
	return ms_names_cb(u->id, payload);
}

static int ms_blob_names_cb(const brt_blob_row *b, void *payload)
{
	return ms_names_cb(b->digest, payload);
}

static int ms_manifest_count_cb(const char *repo, const brt_manifest *mf, void *payload)
{
	unsigned long *count = payload;

	CHECK(repo[0] != '\0' && strncmp(mf->digest, "sha256:", 7) == 0 && mf->media_type[0] != '\0');
	CHECK(mf->size > 0 && mf->payload != NULL);
	(*count)++;
	return 0;
}

static int ms_problem_cb(const char *problem, void *payload)
{
	printf("meta check: %s\n", problem);
	(*(unsigned long *)payload)++;
	return 0;
}

/* Sessions are capped per account, listed oldest first for expiry, and a
 * repository that holds nothing but sessions stays out of the catalog. */
static void ms_test_upload_bounds(brt_meta *m)
{
	brt_upload u;
	ms_names names;
	unsigned long count = 0, problems = 0;
	int more = 0;

	memset(&u, 0, sizeof(u));
	snprintf(u.repo, sizeof(u.repo), "%s", "cap/app");
	brt_meta_repo_account(u.account_id, u.repo);
	for (int i = 0; i < 3; i++) {
		snprintf(u.id, sizeof(u.id), "c000000000000000000000000000000%d", i);
		u.created_at = u.updated_at = 100 + i;
		CHECK_EQ_INT(m->upload_create(m, &u, 3), 0);
	}
	snprintf(u.id, sizeof(u.id), "%s", "c0000000000000000000000000000009");
	CHECK_EQ_INT(m->upload_create(m, &u, 3), BRT_ELIMIT);
	CHECK_EQ_INT(m->upload_get(m, &u, NULL, u.id), BRT_ENOTFOUND);
	/* Another account has its own count; 0 means no cap. */
	snprintf(u.repo, sizeof(u.repo), "%s", "cap2/app");
	brt_meta_repo_account(u.account_id, u.repo);
	CHECK_EQ_INT(m->upload_create(m, &u, 3), 0);
	CHECK_EQ_INT(m->upload_delete(m, u.id, BRT_META_ANY_GENERATION), 0);
	snprintf(u.repo, sizeof(u.repo), "%s", "cap/other");
	brt_meta_repo_account(u.account_id, u.repo);
	CHECK_EQ_INT(m->upload_create(m, &u, 3), BRT_ELIMIT);
	CHECK_EQ_INT(m->upload_create(m, &u, 0), 0);
	CHECK_EQ_INT(m->upload_delete(m, u.id, BRT_META_ANY_GENERATION), 0);

	CHECK_EQ_INT(ms_catalog(m, "cap/", NULL, 100, &names, &more), 0);
	CHECK_EQ_INT(names.count, 0);
	CHECK_EQ_INT(m->repo_exists(m, "cap/app"), 0);

	/* Oldest first, strictly before the cut-off, at most `limit`. */
	memset(&names, 0, sizeof(names));
	CHECK_EQ_INT(m->upload_list(m, 102, 0, ms_upload_names_cb, &names), 0);
	CHECK_EQ_STR(ms_names_join(&names),
		     "c0000000000000000000000000000000,c0000000000000000000000000000001");
	memset(&names, 0, sizeof(names));
	CHECK_EQ_INT(m->upload_list(m, INT64_MAX, 1, ms_upload_names_cb, &names), 0);
	CHECK_EQ_STR(ms_names_join(&names), "c0000000000000000000000000000000");
	memset(&names, 0, sizeof(names));
	names.fail_at = 2;
	CHECK_EQ_INT(m->upload_list(m, INT64_MAX, 0, ms_upload_names_cb, &names), BRT_EIO);

	/* Ending a session frees its place under the cap. */
	CHECK_EQ_INT(m->upload_delete(m, "c0000000000000000000000000000000", BRT_META_ANY_GENERATION), 0);
	snprintf(u.repo, sizeof(u.repo), "%s", "cap/app");
	brt_meta_repo_account(u.account_id, u.repo);
	CHECK_EQ_INT(m->upload_create(m, &u, 3), 0);
	for (int i = 1; i < 3; i++) {
		char id[33];
		snprintf(id, sizeof(id), "c000000000000000000000000000000%d", i);
		CHECK_EQ_INT(m->upload_delete(m, id, BRT_META_ANY_GENERATION), 0);
	}
	CHECK_EQ_INT(m->upload_delete(m, u.id, BRT_META_ANY_GENERATION), 0);

	/* Once it holds a blob, the repository is listed. */
	CHECK_EQ_INT(ms_link(m, "cap/app", ms_digest_of("cap", 1).s, 5, "sha256/ca/cap", 1), 0);
	CHECK_EQ_INT(ms_catalog(m, "cap/", NULL, 100, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), "cap/app");

	/* A damaged blob is unknown until a verified commit links it again. */
	{
		brt_blob_info info;
		brt_pool pool;
		ms_digest blob = ms_digest_of("cap", 1);

		brt_pool_init(&pool, 1 << 12);
		CHECK_EQ_INT(m->blob_mark_damaged(m, blob.s, 7), 0);
		CHECK_EQ_INT(m->blob_get(m, &info, &pool, "cap/app", blob.s), BRT_ENOTFOUND);
		CHECK_EQ_INT(m->blob_mark_damaged(m, blob.s, 8), 0);
		CHECK_EQ_INT(m->blob_mark_damaged(m, ms_digest_of("cap", 99).s, 8), BRT_ENOTFOUND);
		CHECK_EQ_INT(ms_link(m, "cap/app", blob.s, 5, "sha256/ca/cap", 9), 0);
		CHECK_EQ_INT(m->blob_get(m, &info, &pool, "cap/app", blob.s), 0);
		CHECK_EQ_INT(info.size, 5);
		brt_pool_clear(&pool);
	}

	/* A descriptor must claim the stored size. */
	{
		brt_manifest_put put;
		char put_account[BRT_ACCOUNT_ID_LEN + 1];
		ms_digest blob = ms_digest_of("cap", 1), man = ms_digest_of("cap-manifest", 1);
		const char *blobs[1] = {blob.s};
		uint64_t sizes[1] = {6};
		brt_manifest mf;
		brt_pool pool;

		brt_pool_init(&pool, 1 << 16);
		memset(&put, 0, sizeof(put));
		put.account_id = brt_meta_repo_account(put_account, "cap/app");
		put.repo = "cap/app";
		put.digest = man.s;
		put.media_type = "application/vnd.oci.image.manifest.v1+json";
		put.payload = (const unsigned char *)"{}";
		put.size = 2;
		put.blobs = blobs;
		put.blob_sizes = sizes;
		put.blob_count = 1;
		put.now = 5;
		CHECK_EQ_INT(m->manifest_put(m, &put), BRT_EINVALID);
		CHECK_EQ_INT(m->manifest_get(m, &mf, &pool, "cap/app", man.s, 1), BRT_ENOTFOUND);
		sizes[0] = 5;
		CHECK_EQ_INT(m->manifest_put(m, &put), 0);
		CHECK_EQ_INT(m->manifest_delete(m, "cap/app", man.s), 0);
		brt_pool_clear(&pool);
	}

	/* Whole-store walks, for fsck. */
	memset(&names, 0, sizeof(names));
	CHECK_EQ_INT(m->blob_walk(m, ms_blob_names_cb, &names), 0);
	CHECK(names.count > 0 || names.overflow);
	for (size_t i = 1; i < names.count && i < MS_NAMES_MAX; i++)
		CHECK(strcmp(names.names[i - 1], names.names[i]) < 0);
	CHECK_EQ_INT(m->manifest_walk(m, ms_manifest_count_cb, &count), 0);
	CHECK(count > 0);
	CHECK_EQ_INT(m->check(m, ms_problem_cb, &problems), 0);
	CHECK_EQ_INT(problems, 0);
}

/* v5: an upload row carries the blob store driver's opaque state, up to
 * the documented cap, and is deleted by compare-and-swap. */
static void ms_test_upload_state(brt_meta *m)
{
	size_t big_len = BRT_UPLOAD_BACKEND_STATE_MAX;
	unsigned char *big = malloc(big_len + 1);
	unsigned char small_state[100];
	brt_upload u, got, before;
	brt_pool pool, tiny;
	ms_names names;
	size_t i;

	CHECK(big != NULL);
	if (!big)
		return;
	for (i = 0; i < big_len + 1; i++)
		big[i] = (unsigned char)(i * 131 + (i >> 9));
	for (i = 0; i < sizeof(small_state); i++)
		small_state[i] = (unsigned char)(i % 3 == 0 ? 0 : i); /* zero bytes too */
	brt_pool_init(&pool, 4u << 20);

	memset(&u, 0, sizeof(u));
	snprintf(u.id, sizeof(u.id), "%s", "5e000000000000000000000000000001");
	snprintf(u.repo, sizeof(u.repo), "%s", "state/app");
	brt_meta_repo_account(u.account_id, u.repo);
	u.created_at = u.updated_at = 10;
	u.backend_state = small_state;
	u.backend_state_len = sizeof(small_state);
	CHECK_EQ_INT(m->upload_create(m, &u, 0), 0);

	/* Round trip through the pool; without a pool the state is left out. */
	memset(&got, 0x5a, sizeof(got));
	CHECK_EQ_INT(m->upload_get(m, &got, &pool, u.id), 0);
	CHECK_EQ_STR(got.account_id, "state");
	CHECK_EQ_INT(got.backend_state_len, sizeof(small_state));
	CHECK(got.backend_state && memcmp(got.backend_state, small_state, sizeof(small_state)) == 0);
	memset(&got, 0x5a, sizeof(got));
	CHECK_EQ_INT(m->upload_get(m, &got, NULL, u.id), 0);
	CHECK(got.backend_state == NULL);
	CHECK_EQ_INT(got.backend_state_len, 0);
	CHECK_EQ_INT(got.offset, 0);

	/* The largest state allowed is stored whole, with the CAS. */
	CHECK_EQ_INT(m->upload_get(m, &got, &pool, u.id), 0);
	got.backend_state = big;
	got.backend_state_len = big_len;
	got.offset = 42;
	CHECK_EQ_INT(m->upload_update(m, &got), 0);
	memset(&before, 0, sizeof(before));
	CHECK_EQ_INT(m->upload_get(m, &before, &pool, u.id), 0);
	CHECK_EQ_INT(before.generation, 1);
	CHECK_EQ_INT(before.offset, 42);
	CHECK_EQ_INT(before.backend_state_len, big_len);
	CHECK(before.backend_state && memcmp(before.backend_state, big, big_len) == 0);
	/* A pool too small for the state: BRT_ENOMEM, `out` untouched. */
	brt_pool_init(&tiny, 64);
	got.offset = 777;
	CHECK_EQ_INT(m->upload_get(m, &got, &tiny, u.id), BRT_ENOMEM);
	CHECK_EQ_INT(got.offset, 777);
	brt_pool_clear(&tiny);

	/* One byte over the cap: refused, nothing changes. */
	got = before;
	got.backend_state = big;
	got.backend_state_len = big_len + 1;
	got.offset = 43;
	CHECK_EQ_INT(m->upload_update(m, &got), BRT_ETOOBIG);
	{
		brt_upload over = u;

		snprintf(over.id, sizeof(over.id), "%s", "5e000000000000000000000000000002");
		over.backend_state = big;
		over.backend_state_len = big_len + 1;
		CHECK_EQ_INT(m->upload_create(m, &over, 0), BRT_ETOOBIG);
		CHECK_EQ_INT(m->upload_get(m, &got, NULL, over.id), BRT_ENOTFOUND);
		/* A length without data is a caller's mistake. */
		over.backend_state = NULL;
		over.backend_state_len = 5;
		CHECK_EQ_INT(m->upload_create(m, &over, 0), BRT_EINVALID);
		/* So is a session without its account. */
		over.backend_state_len = 0;
		over.account_id[0] = '\0';
		CHECK_EQ_INT(m->upload_create(m, &over, 0), BRT_EINVALID);
		CHECK_EQ_INT(m->upload_get(m, &got, NULL, over.id), BRT_ENOTFOUND);
	}
	CHECK_EQ_INT(m->upload_get(m, &got, &pool, u.id), 0);
	CHECK_EQ_INT(got.generation, 1);
	CHECK_EQ_INT(got.offset, 42);
	CHECK_EQ_INT(got.backend_state_len, big_len);

	/* Listings leave the state out. */
	memset(&names, 0, sizeof(names));
	CHECK_EQ_INT(m->upload_list(m, INT64_MAX, 0, ms_upload_state_cb, &names), 0);
	CHECK(names.count >= 1);
	CHECK_EQ_INT(names.overflow, 0);

	/* An update without state clears it. */
	got.backend_state = NULL;
	got.backend_state_len = 0;
	CHECK_EQ_INT(m->upload_update(m, &got), 0);
	CHECK_EQ_INT(m->upload_get(m, &got, &pool, u.id), 0);
	CHECK_EQ_INT(got.generation, 2);
	CHECK(got.backend_state == NULL);
	CHECK_EQ_INT(got.backend_state_len, 0);

	/* Compare-and-swap delete: a stale generation loses and the row
	 * stays; the current one wins; then it is gone for every generation. */
	CHECK_EQ_INT(m->upload_delete(m, u.id, 1), BRT_ECONFLICT);
	CHECK_EQ_INT(m->upload_delete(m, u.id, 3), BRT_ECONFLICT);
	CHECK_EQ_INT(m->upload_get(m, &got, NULL, u.id), 0);
	CHECK_EQ_INT(m->upload_delete(m, u.id, 2), 0);
	CHECK_EQ_INT(m->upload_get(m, &got, NULL, u.id), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->upload_delete(m, u.id, 2), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->upload_delete(m, u.id, BRT_META_ANY_GENERATION), BRT_ENOTFOUND);
	/* A generation past INT64_MAX never matches a stored one. */
	u.backend_state = NULL;
	u.backend_state_len = 0;
	CHECK_EQ_INT(m->upload_create(m, &u, 0), 0);
	CHECK(m->upload_delete(m, u.id, (uint64_t)INT64_MAX + 1) < 0);
	CHECK_EQ_INT(m->upload_delete(m, u.id, 0), 0);

	brt_pool_clear(&pool);
	free(big);
}

/* v5: the caller says which account a repository and a session belong
 * to, whatever the name looks like, and the store holds it to that. */
static void ms_test_account_ids(brt_meta *m)
{
	ms_digest d = ms_digest_of("acctid", 0);
	brt_blob_link link;
	brt_upload u;
	int i;

	/* Three sessions in repositories whose names share nothing, all of
	 * account "shared": one cap of 2 covers them. */
	memset(&u, 0, sizeof(u));
	snprintf(u.account_id, sizeof(u.account_id), "%s", "shared");
	for (i = 0; i < 3; i++) {
		snprintf(u.repo, sizeof(u.repo), "acctid-%d/app", i);
		snprintf(u.id, sizeof(u.id), "a1d0000000000000000000000000000%d", i);
		CHECK_EQ_INT(m->upload_create(m, &u, 2), i < 2 ? 0 : BRT_ELIMIT);
	}
	snprintf(u.account_id, sizeof(u.account_id), "%s", "acctid-2");
	CHECK_EQ_INT(m->upload_create(m, &u, 2), 0);
	for (i = 0; i < 3; i++) {
		snprintf(u.id, sizeof(u.id), "a1d0000000000000000000000000000%d", i);
		CHECK_EQ_INT(m->upload_delete(m, u.id, BRT_META_ANY_GENERATION), 0);
	}

	/* A repository stays with the account that made it. */
	memset(&link, 0, sizeof(link));
	link.account_id = "shared";
	link.repo = "acctid-0/app";
	link.digest = d.s;
	link.size = 1;
	link.storage_key = "k-acctid";
	link.now = 1;
	CHECK_EQ_INT(m->blob_link(m, &link), 0);
	link.account_id = "acctid-0";
	CHECK_EQ_INT(m->blob_link(m, &link), BRT_EINVALID);
	CHECK_EQ_INT(m->blob_unlink(m, &link), BRT_EINVALID);
	link.account_id = NULL;
	CHECK_EQ_INT(m->blob_link(m, &link), BRT_EINVALID);
	link.account_id = "";
	link.repo = "acctid-new/app";
	CHECK_EQ_INT(m->blob_link(m, &link), BRT_EINVALID);
	CHECK_EQ_INT(m->repo_exists(m, "acctid-new/app"), BRT_ENOTFOUND);
	link.account_id = "shared";
	link.repo = "acctid-0/app";
	CHECK_EQ_INT(m->blob_unlink(m, &link), 0);
}

/* v5: a tag moves only from where the caller saw it, and a put that loses
 * that race stores nothing. */
static void ms_test_tag_cas(brt_meta *m)
{
	ms_digest blob = ms_digest_of("cas-blob", 0);
	ms_digest m1 = ms_digest_of("cas", 1), m2 = ms_digest_of("cas", 2), m3 = ms_digest_of("cas", 3);
	const char *blobs[] = {blob.s};
	brt_manifest_put put;
	brt_manifest got;
	brt_pool pool;
	char payload[128];

	brt_pool_init(&pool, 1 << 16);
	CHECK_EQ_INT(ms_link(m, "cas/app", blob.s, 4, "k-cas", 1), 0);
	memset(&put, 0, sizeof(put));
	put.account_id = "cas";
	put.repo = "cas/app";
	put.media_type = MS_MANIFEST_TYPE;
	put.payload = (const unsigned char *)payload;
	put.blobs = blobs;
	put.blob_count = 1;
	put.tag = "t";
	put.now = 2;
#define MS_CAS_PUT(target, expected)                                                          \
	(put.digest = (target), put.tag_expected = (expected),                                \
	 put.size = (size_t)snprintf(payload, sizeof(payload), "{\"cas\":\"%s\"}", (target)), \
	 m->manifest_put(m, &put))

	/* "": only a new tag. */
	CHECK_EQ_INT(MS_CAS_PUT(m1.s, ""), 0);
	CHECK_EQ_STR(ms_tag_target(m, &pool, "cas/app", "t", NULL), m1.s);
	CHECK_EQ_INT(MS_CAS_PUT(m2.s, ""), BRT_ECONFLICT);
	CHECK_EQ_STR(ms_tag_target(m, &pool, "cas/app", "t", NULL), m1.s);
	/* The losing put left no manifest behind. */
	CHECK_EQ_INT(m->manifest_get(m, &got, &pool, "cas/app", m2.s, 1), BRT_ENOTFOUND);

	/* A digest: the tag must point there now. */
	CHECK_EQ_INT(MS_CAS_PUT(m2.s, m3.s), BRT_ECONFLICT);
	CHECK_EQ_INT(MS_CAS_PUT(m2.s, m2.s), BRT_ECONFLICT);
	CHECK_EQ_INT(m->manifest_get(m, &got, &pool, "cas/app", m2.s, 1), BRT_ENOTFOUND);
	CHECK_EQ_INT(MS_CAS_PUT(m2.s, m1.s), 0);
	CHECK_EQ_STR(ms_tag_target(m, &pool, "cas/app", "t", NULL), m2.s);
	/* The loser of two movers from m2 changes nothing. */
	CHECK_EQ_INT(MS_CAS_PUT(m3.s, m2.s), 0);
	CHECK_EQ_INT(MS_CAS_PUT(m1.s, m2.s), BRT_ECONFLICT);
	CHECK_EQ_STR(ms_tag_target(m, &pool, "cas/app", "t", NULL), m3.s);
	/* Moving to where it already is succeeds. */
	CHECK_EQ_INT(MS_CAS_PUT(m3.s, m3.s), 0);
	/* An expected target for a tag that does not exist. */
	put.tag = "u";
	CHECK_EQ_INT(MS_CAS_PUT(m1.s, m1.s), BRT_ECONFLICT);
	CHECK_EQ_INT(m->manifest_get(m, &got, &pool, "cas/app", "u", 0), BRT_ENOTFOUND);
	/* NULL: the tag moves whatever it pointed at (an HTTP PUT). */
	put.tag = "t";
	CHECK_EQ_INT(MS_CAS_PUT(m1.s, NULL), 0);
	CHECK_EQ_STR(ms_tag_target(m, &pool, "cas/app", "t", NULL), m1.s);
	/* An expectation without a tag is meaningless. */
	put.tag = NULL;
	CHECK_EQ_INT(MS_CAS_PUT(m2.s, ""), BRT_EINVALID);
#undef MS_CAS_PUT
	brt_pool_clear(&pool);
}

typedef struct ms_epoch_reader {
	brt_meta *m;
	pthread_barrier_t *step;
	uint64_t before, after, again;
} ms_epoch_reader;

static void *ms_epoch_reader_run(void *arg)
{
	ms_epoch_reader *r = arg;

	r->before = r->m->key_epoch(r->m);
	pthread_barrier_wait(r->step); /* the main thread revokes */
	pthread_barrier_wait(r->step);
	r->after = r->m->key_epoch(r->m);
	r->again = r->m->key_epoch(r->m);
	return NULL;
}

/* Needs ms_test_accounts' accounts.  The epoch is stable while nothing is
 * revoked and changes with every revocation, for this thread and for
 * another thread (another connection) alike. */
static void ms_test_key_epoch(brt_meta *m)
{
	brt_access_key k = ms_key("00000000000000e1", MS_ACCOUNT_A, BRT_PERM_PULL, "epoch", 1, 0);
	ms_epoch_reader r;
	pthread_barrier_t step;
	pthread_t thread;
	uint64_t e0, e1, e2;

	CHECK_EQ_INT(m->key_create(m, &k), 0);
	e0 = m->key_epoch(m);
	CHECK(m->key_epoch(m) == e0);
	CHECK(m->key_epoch(m) == e0);
	CHECK_EQ_INT(m->key_revoke(m, k.id, 10), 0);
	e1 = m->key_epoch(m);
	CHECK(e1 != e0);
	CHECK(m->key_epoch(m) == e1);
	/* A failed revocation is no revocation. */
	CHECK_EQ_INT(m->key_revoke(m, "00000000000000e9", 10), BRT_ENOTFOUND);
	CHECK(m->key_epoch(m) == e1);

	memset(&r, 0, sizeof(r));
	r.m = m;
	r.step = &step;
	if (pthread_barrier_init(&step, NULL, 2) != 0 ||
	    pthread_create(&thread, NULL, ms_epoch_reader_run, &r) != 0) {
		CHECK(0);
		return;
	}
	pthread_barrier_wait(&step);
	CHECK_EQ_INT(m->key_revoke(m, k.id, 20), 0); /* revoking again: still a bump */
	e2 = m->key_epoch(m);
	pthread_barrier_wait(&step);
	pthread_join(thread, NULL);
	pthread_barrier_destroy(&step);
	CHECK(r.before == e1);
	CHECK(e2 != e1);
	CHECK(r.after == e2);
	CHECK(r.again == e2);
}

/* --- storage lifecycle: review queues, collection, outbox, usage --- */

#define MS_ACCOUNT_D "0146e9b57080961e2c835363000000dd"
#define MS_ACCOUNT_E "0146e9b57080961e2c835363000000ee"
#define MS_HOUR ((int64_t)3600 * 1000)

typedef struct ms_gc_log {
	char items[64][200];
	size_t count;
} ms_gc_log;

static int ms_gc_item_cb(const brt_gc_item *item, void *payload)
{
	ms_gc_log *log = payload;

	if (log->count < 64)
		snprintf(log->items[log->count++], sizeof(log->items[0]), "%s %s %s", item->kind,
			 item->repo ? item->repo : "-", item->name);
	return 0;
}

/* One collection at `now` with `grace_ms`; the counts it reports. */
static brt_gc_counts ms_collect(brt_meta *m, int64_t now, int64_t grace_ms, size_t batch, int dry_run,
				const char *account, ms_gc_log *log)
{
	brt_gc_params p;
	brt_gc_counts c;

	memset(&p, 0, sizeof(p));
	memset(&c, 0, sizeof(c));
	p.now = now;
	p.grace_ms = grace_ms;
	p.read_grace_ms = 0;
	p.batch = batch;
	p.dry_run = dry_run;
	p.account_id = account;
	p.cb = log ? ms_gc_item_cb : NULL;
	p.payload = log;
	CHECK_EQ_INT(m->gc_collect(m, &p, &c), 0);
	return c;
}

typedef struct ms_keyset {
	char keys[16][64];
	size_t count;
} ms_keyset;

static int ms_outbox_cb(const char *key, uint64_t size, void *payload)
{
	ms_keyset *k = payload;

	(void)size;
	if (k->count < 16)
		snprintf(k->keys[k->count++], sizeof(k->keys[0]), "%s", key);
	return 0;
}

/* Drain the outbox as the collector does; how many keys were due. */
static size_t ms_outbox_drain(brt_meta *m, int64_t now, ms_keyset *k)
{
	ms_keyset got;
	size_t total = 0;

	do {
		memset(&got, 0, sizeof(got));
		CHECK_EQ_INT(m->gc_outbox_list(m, now, 16, ms_outbox_cb, &got), 0);
		for (size_t i = 0; i < got.count; i++) {
			const char *key = got.keys[i];

			CHECK_EQ_INT(m->gc_outbox_done(m, &key, 1), 0);
			if (k && k->count < 16)
				snprintf(k->keys[k->count++], sizeof(k->keys[0]), "%s", got.keys[i]);
		}
		total += got.count;
	} while (got.count > 0 && total < 1000);
	return total;
}

static int ms_keyset_has(const ms_keyset *k, const char *key)
{
	for (size_t i = 0; i < k->count; i++)
		if (strcmp(k->keys[i], key) == 0)
			return 1;
	return 0;
}

static uint64_t ms_used(brt_meta *m, const char *account)
{
	brt_usage u;

	memset(&u, 0, sizeof(u));
	CHECK_EQ_INT(m->usage_get(m, &u, account), 0);
	return u.bytes;
}

static void ms_test_lifecycle(brt_meta *m)
{
	const char *ra = MS_ACCOUNT_D "/gc/a", *rb = MS_ACCOUNT_D "/gc/b", *rx = MS_ACCOUNT_E "/gc/x";
	ms_digest base = ms_digest_of("gc-base", 0), own = ms_digest_of("gc-own", 0);
	ms_digest other = ms_digest_of("gc-other", 0), stray = ms_digest_of("gc-stray", 0);
	ms_digest m1 = ms_digest_of("gc-m", 1), m2 = ms_digest_of("gc-m", 2), m3 = ms_digest_of("gc-m", 3);
	ms_digest child = ms_digest_of("gc-child", 0), index = ms_digest_of("gc-index", 0);
	ms_digest sig = ms_digest_of("gc-sig", 0);
	const char *l1[] = {base.s, own.s}, *l2[] = {base.s, other.s}, *l3[] = {base.s};
	const char *children[] = {child.s};
	brt_account acc_d = ms_account(MS_ACCOUNT_D, "gc", 1), acc_e = ms_account(MS_ACCOUNT_E, "gc2", 1);
	int64_t t0 = brt_meta_test_now(); /* links are pushed hours before */
	brt_gc_counts c;
	ms_gc_log log;
	ms_keyset out;
	brt_usage u;
	brt_blob_link dup;
	uint64_t used;
	int known;

	if (!m->gc_collect || !m->usage_get || !m->quota_set) {
		printf("meta suite: no lifecycle slots, skipped\n");
		return;
	}
	CHECK_EQ_INT(m->account_create(m, &acc_d), 0);
	CHECK_EQ_INT(m->account_create(m, &acc_e), 0);

	/* Two images sharing a layer in two repositories, one by digest. */
	CHECK_EQ_INT(ms_link(m, ra, base.s, 1000, "k/base", t0 - 10 * MS_HOUR), 0);
	CHECK_EQ_INT(ms_link(m, ra, own.s, 200, "k/own", t0 - 10 * MS_HOUR), 0);
	CHECK_EQ_INT(ms_link(m, rb, base.s, 1000, "k/base-dup", t0 - 10 * MS_HOUR), 0);
	CHECK_EQ_INT(ms_link(m, rb, other.s, 300, "k/other", t0 - 10 * MS_HOUR), 0);
	CHECK_EQ_INT(ms_put(m, ra, m1.s, "v1", l1, 2), 0);
	CHECK_EQ_INT(ms_put(m, rb, m2.s, "v1", l2, 2), 0);
	CHECK_EQ_INT(ms_put(m, ra, m3.s, NULL, l3, 1), 0); /* pushed by digest */
	/* The second copy of base was a duplicate: it awaits deletion. */
	CHECK_EQ_INT(m->storage_key_known(m, "k/base-dup", &known), 0);
	CHECK_EQ_INT(known, 1);
	memset(&out, 0, sizeof(out));
	CHECK_EQ_INT((int)ms_outbox_drain(m, t0, &out), 1);
	CHECK(ms_keyset_has(&out, "k/base-dup"));
	CHECK_EQ_INT(m->storage_key_known(m, "k/base-dup", &known), 0);
	CHECK_EQ_INT(known, 0);
	CHECK_EQ_INT(m->storage_key_known(m, "k/base", &known), 0);
	CHECK_EQ_INT(known, 1);
	/* Mounting (no key) links what is recorded; an unknown digest is not. */
	CHECK_EQ_INT(ms_link(m, rb, own.s, 200, NULL, t0 - 10 * MS_HOUR), 0);
	CHECK_EQ_INT(ms_link(m, rb, stray.s, 5, NULL, t0), BRT_ENOTFOUND);

	/* Usage: base, own and other once each, plus three manifests. */
	memset(&u, 0, sizeof(u));
	CHECK_EQ_INT(m->usage_get(m, &u, MS_ACCOUNT_D), 0);
	CHECK_EQ_INT((int)u.blobs, 3);
	CHECK_EQ_INT((int)u.blob_bytes, 1500);
	CHECK_EQ_INT((int)u.manifests, 3);
	CHECK_EQ_INT((int)u.repositories, 2);
	CHECK_EQ_INT((int)u.bytes, (int)(u.blob_bytes + u.manifest_bytes));
	used = u.bytes;

	/* Nothing is due while everything is referenced: the links queued
	 * at link time are dropped as listed. */
	memset(&log, 0, sizeof(log));
	c = ms_collect(m, t0, 0, 0, 0, NULL, &log);
	CHECK_EQ_INT((int)(c.manifests + c.links + c.blobs), 1); /* only rb's mounted own: unlisted */
	CHECK_EQ_INT((int)c.links, 1);
	CHECK(log.count == 1 && strstr(log.items[0], "link") && strstr(log.items[0], own.s));
	CHECK_EQ_INT((int)ms_used(m, MS_ACCOUNT_D), (int)used); /* ra still links own */

	/* Deleting ra's tag: within the grace nothing goes, after it the
	 * manifest and the link only it listed (own), not the shared base,
	 * nor m3 pushed by digest, which lists base too. */
	CHECK_EQ_INT(m->tag_delete(m, ra, "v1"), 0);
	c = ms_collect(m, brt_meta_test_now(), MS_HOUR, 0, 0, NULL, NULL);
	CHECK_EQ_INT((int)(c.manifests + c.links + c.blobs), 0);
	memset(&log, 0, sizeof(log));
	c = ms_collect(m, brt_meta_test_now() + 2 * MS_HOUR, MS_HOUR, 0, 1, NULL, &log); /* dry run */
	CHECK_EQ_INT((int)c.manifests, 1);
	CHECK_EQ_INT((int)c.links, 1);
	CHECK_EQ_INT((int)c.blobs, 1);
	c = ms_collect(m, brt_meta_test_now() + 2 * MS_HOUR, MS_HOUR, 0, 0, NULL, NULL);
	CHECK_EQ_INT((int)c.manifests, 1);
	CHECK_EQ_INT((int)c.links, 1);
	CHECK_EQ_INT((int)c.blobs, 1);
	CHECK_EQ_INT((int)c.blob_bytes, 200);
	{
		brt_pool pool;
		brt_blob_info info;
		brt_manifest man;

		brt_pool_init(&pool, 1 << 16);
		CHECK_EQ_INT(m->manifest_get(m, &man, &pool, ra, m1.s, 1), BRT_ENOTFOUND);
		CHECK_EQ_INT(m->manifest_get(m, &man, &pool, ra, m3.s, 1), 0);
		CHECK_EQ_INT(m->blob_get(m, &info, &pool, ra, own.s), BRT_ENOTFOUND);
		CHECK_EQ_INT(m->blob_get(m, &info, &pool, ra, base.s), 0);
		CHECK_EQ_INT(m->blob_get(m, &info, &pool, rb, base.s), 0);
		brt_pool_clear(&pool);
	}
	memset(&out, 0, sizeof(out));
	CHECK_EQ_INT((int)ms_outbox_drain(m, t0 + 10 * MS_HOUR, &out), 1);
	CHECK(ms_keyset_has(&out, "k/own"));
	memset(&u, 0, sizeof(u));
	CHECK_EQ_INT(m->usage_get(m, &u, MS_ACCOUNT_D), 0);
	CHECK_EQ_INT((int)u.blobs, 2);
	CHECK_EQ_INT((int)u.bytes, (int)(u.blob_bytes + u.manifest_bytes));

	/* A touch keeps an unlisted link for another grace period. */
	CHECK_EQ_INT(ms_link(m, rb, stray.s, 5, "k/stray", brt_meta_test_now()), 0);
	CHECK_EQ_INT(m->blob_touch(m, rb, stray.s, brt_meta_test_now() + 3 * MS_HOUR), 0);
	c = ms_collect(m, brt_meta_test_now() + 3 * MS_HOUR, MS_HOUR, 0, 0, NULL, NULL);
	CHECK_EQ_INT((int)c.links, 0);
	c = ms_collect(m, brt_meta_test_now() + 5 * MS_HOUR, MS_HOUR, 0, 0, NULL, NULL);
	CHECK_EQ_INT((int)c.links, 1);
	CHECK_EQ_INT(m->blob_touch(m, rb, stray.s, brt_meta_test_now()), BRT_ENOTFOUND);

	/* An index and its child go together; a referrer goes with its
	 * subject; a manifest pushed again by digest is wanted again. */
	CHECK_EQ_INT(ms_put(m, rb, child.s, NULL, l3, 1), 0);
	CHECK_EQ_INT(ms_put_full(m, rb, index.s, "multi", NULL, 0, children, 1, NULL, NULL, NULL), 0);
	CHECK_EQ_INT(ms_put_full(m, rb, sig.s, NULL, l3, 1, NULL, 0, index.s, "sig", NULL), 0);
	CHECK_EQ_INT(ms_put(m, rb, m2.s, "v2", l2, 2), 0);
	CHECK_EQ_INT(m->tag_delete(m, rb, "v2"), 0);
	CHECK_EQ_INT(ms_put(m, rb, m2.s, NULL, l2, 2), 0); /* by digest: the review is called off */
	CHECK_EQ_INT(m->tag_delete(m, rb, "multi"), 0);
	c = ms_collect(m, brt_meta_test_now() + 2 * MS_HOUR, MS_HOUR, 0, 0, MS_ACCOUNT_E, NULL);
	CHECK_EQ_INT((int)c.manifests, 0); /* another account's only */
	c = ms_collect(m, brt_meta_test_now() + 2 * MS_HOUR, MS_HOUR, 1, 0, NULL, NULL);
	CHECK_EQ_INT((int)c.manifests, 1);
	CHECK_EQ_INT(c.more, 1);
	c = ms_collect(m, brt_meta_test_now() + 2 * MS_HOUR, MS_HOUR, 0, 0, NULL, NULL);
	CHECK_EQ_INT((int)c.manifests, 2); /* the child and the referrer */
	{
		brt_pool pool;
		brt_manifest man;

		brt_pool_init(&pool, 1 << 16);
		CHECK_EQ_INT(m->manifest_get(m, &man, &pool, rb, index.s, 1), BRT_ENOTFOUND);
		CHECK_EQ_INT(m->manifest_get(m, &man, &pool, rb, child.s, 1), BRT_ENOTFOUND);
		CHECK_EQ_INT(m->manifest_get(m, &man, &pool, rb, sig.s, 1), BRT_ENOTFOUND);
		CHECK_EQ_INT(m->manifest_get(m, &man, &pool, rb, m2.s, 1), 0);
		CHECK_EQ_INT(m->manifest_get(m, &man, &pool, rb, "v1", 0), 0);
		brt_pool_clear(&pool);
	}

	/* Quota: the first link of a digest and a new manifest are charged,
	 * refused past the limit with nothing changed. */
	used = ms_used(m, MS_ACCOUNT_D);
	CHECK_EQ_INT(m->quota_set(m, MS_ACCOUNT_D, (int64_t)used + 100), 0);
	CHECK_EQ_INT(m->quota_set(m, MS_ACCOUNT_NONE, 5), BRT_ENOTFOUND);
	brt_error_clear();
	CHECK_EQ_INT(ms_link(m, ra, ms_digest_of("gc-big", 0).s, 101, "k/big", t0), BRT_EQUOTA);
	CHECK(ms_error_mentions("quota") && ms_error_mentions("limit"));
	CHECK_EQ_INT(m->storage_key_known(m, "k/big", &known), 0);
	CHECK_EQ_INT(known, 0);
	CHECK_EQ_INT((int)ms_used(m, MS_ACCOUNT_D), (int)used);
	CHECK_EQ_INT(ms_link(m, ra, ms_digest_of("gc-fit", 0).s, 100, "k/fit", t0), 0);
	CHECK_EQ_INT((int)ms_used(m, MS_ACCOUNT_D), (int)used + 100);
	CHECK_EQ_INT(ms_link(m, rb, ms_digest_of("gc-fit", 0).s, 100, NULL, t0), 0); /* held: free */
	CHECK_EQ_INT(ms_put(m, ra, ms_digest_of("gc-m", 9).s, NULL, l3, 1), BRT_EQUOTA);
	/* Another account pays for its own link of the same blob. */
	CHECK_EQ_INT(ms_link(m, rx, ms_digest_of("gc-fit", 0).s, 100, NULL, t0), 0);
	CHECK_EQ_INT((int)ms_used(m, MS_ACCOUNT_E), 100);
	CHECK_EQ_INT(ms_unlink(m, ra, ms_digest_of("gc-fit", 0).s), 0);
	CHECK_EQ_INT((int)ms_used(m, MS_ACCOUNT_D), (int)used + 100); /* rb still links it */
	CHECK_EQ_INT(ms_unlink(m, rb, ms_digest_of("gc-fit", 0).s), 0);
	CHECK_EQ_INT((int)ms_used(m, MS_ACCOUNT_D), (int)used);
	CHECK_EQ_INT(m->quota_get(m, &u, MS_ACCOUNT_D), 0);
	CHECK(u.has_quota && u.quota_bytes == used + 100 && u.bytes == used);
	CHECK_EQ_INT(m->quota_set(m, MS_ACCOUNT_D, -1), 0);
	CHECK_EQ_INT(m->quota_get(m, &u, MS_ACCOUNT_D), 0);
	CHECK_EQ_INT(u.has_quota, 0);

	/* A damaged blob is replaced by a verified copy; the bad one goes. */
	CHECK_EQ_INT(m->blob_mark_damaged(m, base.s, t0), 0);
	memset(&dup, 0, sizeof(dup));
	dup.account_id = MS_ACCOUNT_D;
	dup.repo = ra;
	dup.digest = base.s;
	dup.size = 1000;
	dup.storage_key = "k/base-new";
	dup.now = t0;
	CHECK_EQ_INT(m->blob_link(m, &dup), 0);
	memset(&out, 0, sizeof(out));
	ms_outbox_drain(m, t0 + 10 * MS_HOUR, &out);
	CHECK(ms_keyset_has(&out, "k/base"));
	CHECK_EQ_INT(m->storage_key_known(m, "k/base-new", &known), 0);
	CHECK_EQ_INT(known, 1);
}

/* The collector unlists what it empties: a repository whose only link no
 * manifest listed, and one whose untagged manifest and then its links go,
 * leave the catalog; one that keeps a manifest stays. */
static void ms_test_catalog_gc(brt_meta *m)
{
	const char *keep = MS_ACCOUNT_E "/lst/keep", *stray = MS_ACCOUNT_E "/lst/stray";
	const char *untag = MS_ACCOUNT_E "/lst/untag";
	ms_digest l1 = ms_digest_of("lst-gc", 1), l2 = ms_digest_of("lst-gc", 2),
		  l3 = ms_digest_of("lst-gc", 3);
	ms_digest mk = ms_digest_of("lst-gc-m", 1), mu = ms_digest_of("lst-gc-m", 2);
	const char *keep_blobs[] = {l1.s}, *untag_blobs[] = {l1.s, l3.s};
	int64_t t0 = brt_meta_test_now() - 10 * MS_HOUR;
	ms_names names;
	brt_gc_counts c;
	int more;

	if (!m->gc_collect)
		return;
	CHECK_EQ_INT(ms_link(m, keep, l1.s, 10, "k/lst-gc-1", t0), 0);
	CHECK_EQ_INT(ms_put(m, keep, mk.s, "v1", keep_blobs, 1), 0);
	CHECK_EQ_INT(ms_link(m, stray, l2.s, 10, "k/lst-gc-2", t0), 0);
	CHECK_EQ_INT(ms_link(m, untag, l1.s, 10, NULL, t0), 0);
	CHECK_EQ_INT(ms_link(m, untag, l3.s, 10, "k/lst-gc-3", t0), 0);
	CHECK_EQ_INT(ms_put(m, untag, mu.s, "v1", untag_blobs, 2), 0);
	CHECK_EQ_INT(ms_catalog(m, MS_ACCOUNT_E "/lst/", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names),
		     MS_ACCOUNT_E "/lst/keep," MS_ACCOUNT_E "/lst/stray," MS_ACCOUNT_E "/lst/untag");
	CHECK_EQ_INT(m->tag_delete(m, untag, "v1"), 0);
	/* A dry run changes nothing. */
	(void)ms_collect(m, brt_meta_test_now() + 2 * MS_HOUR, MS_HOUR, 0, 1, MS_ACCOUNT_E, NULL);
	CHECK_EQ_INT(ms_catalog(m, MS_ACCOUNT_E "/lst/", NULL, 10, &names, &more), 0);
	CHECK_EQ_INT((int)names.count, 3);
	c = ms_collect(m, brt_meta_test_now() + 2 * MS_HOUR, MS_HOUR, 0, 0, MS_ACCOUNT_E, NULL);
	CHECK_EQ_INT((int)c.manifests, 1); /* untag's */
	CHECK((int)c.links >= 3);          /* stray's, untag's two (and the lifecycle's leftovers) */
	CHECK_EQ_INT(ms_catalog(m, MS_ACCOUNT_E "/lst/", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), MS_ACCOUNT_E "/lst/keep");
	CHECK_EQ_INT(more, 0);
	/* Pushed again, it is listed again. */
	CHECK_EQ_INT(ms_link(m, stray, l2.s, 10, "k/lst-gc-2b", brt_meta_test_now()), 0);
	CHECK_EQ_INT(ms_catalog(m, MS_ACCOUNT_E "/lst/", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), MS_ACCOUNT_E "/lst/keep," MS_ACCOUNT_E "/lst/stray");
}

static void meta_suite_run(brt_meta *m)
{
	ms_test_blobs(m);
	ms_test_manifests(m);
	ms_test_tags_pagination(m);
	ms_test_catalog(m);
	ms_test_catalog_listing(m);
	ms_test_referrers(m);
	ms_test_uploads(m);
	ms_test_upload_bounds(m);
	ms_test_upload_state(m);
	ms_test_account_ids(m);
	ms_test_tag_cas(m);
	ms_test_accounts(m);
	ms_test_keys(m);
	ms_test_key_epoch(m);
	ms_test_secrets(m);
	ms_test_secret_race(m);
	ms_test_concurrency(m);
}

/* The lifecycle checks count everything a collection removes: they need a
 * store of their own, fresh and empty. */
static void meta_suite_lifecycle(brt_meta *m)
{
	ms_test_lifecycle(m);
	ms_test_catalog_gc(m);
}

#endif
