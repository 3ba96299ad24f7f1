/* The blob store test suite every driver runs: it uses nothing but the
 * brt_blobstore interface, so the same checks hold the filesystem driver
 * and any object-store driver to one contract.  blobstore_suite_run()
 * covers attempts and commit (one piece and several), racing attempts on
 * one upload where only the adopted one is ever visible, dropped attempts
 * leaving nothing, commit without replacing (same size / other size),
 * remove, copy, list, open_fd, input validation, large blobs, concurrent
 * writers and the sweep of crash leftovers; blobstore_suite_run_faults()
 * wraps the store in the fault-injecting driver (storage/faulty) and
 * checks that injected I/O failures leave acknowledged data resumable and
 * nothing half-published.  The store may already hold objects (they are left
 * alone); everything the suite creates uses fresh upload ids.  Header-only;
 * include after check.h.  Both return the number of failed checks. */
#ifndef BRT_TEST_BLOBSTORE_SUITE_H
#define BRT_TEST_BLOBSTORE_SUITE_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "common/error.h"
#include "oci/digest.h"
#include "storage/blobstore.h"
#include "storage/faulty/faulty.h"

#define SUITE_BIG_SIZE ((size_t)64 << 20)
#define SUITE_BIG_CHUNK ((size_t)256 << 10)
#define SUITE_THREADS 8
#define SUITE_THREAD_ROUNDS 3
#define SUITE_LIST_MAX 100000
/* An odd read size, so reads do not line up with how data was written. */
#define SUITE_READ_CHUNK 4093

typedef struct suite_keyset {
	char (*keys)[BRT_BLOB_KEY_MAX];
	uint64_t *sizes;
	size_t count, cap;
	int overflow;
} suite_keyset;

typedef struct suite_ctx {
	const char *label;
	unsigned long id_counter;
	suite_keyset before;   /* objects the store held when the suite began */
	suite_keyset expected; /* objects the suite committed and did not remove */
	char key_a[BRT_BLOB_KEY_MAX];
	unsigned char *data_a;
	size_t len_a;
} suite_ctx;

/* Deterministic pseudo-random bytes (xorshift64*), continuing `*state`. */
static inline void suite_fill(unsigned char *buf, size_t len, uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;

	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0) {
			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
		}
		buf[i] = (unsigned char)((x * 0x2545f4914f6cdd1dULL) >> (8 * (i % 8)));
	}
	*state = x;
}

static inline unsigned char *suite_make(size_t len, uint64_t seed)
{
	unsigned char *buf = malloc(len ? len : 1);

	if (buf)
		suite_fill(buf, len, &seed);
	return buf;
}

static inline void suite_key_of(char *key, const void *data, size_t len)
{
	brt_digest d;

	brt_digest_of(&d, BRT_DIGEST_SHA256, data, len);
	brt_blob_key(key, d.str);
}

/* A fresh upload id: the first 32 hex characters of a digest over the
 * label, pid, time and a counter, so reruns against a persistent store do
 * not collide. */
static inline void suite_upload_id(suite_ctx *ctx, char *id)
{
	char seed[256];
	struct timespec ts;
	brt_digest d;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(seed, sizeof(seed), "%s/%ld/%lld.%ld/%lu", ctx->label, (long)getpid(),
		     (long long)ts.tv_sec, ts.tv_nsec, ++ctx->id_counter);
	brt_digest_of(&d, BRT_DIGEST_SHA256, seed, n > 0 ? (size_t)n : 0);
	memcpy(id, brt_digest_hex(&d), BRT_UPLOAD_ID_LEN);
	id[BRT_UPLOAD_ID_LEN] = '\0';
}

static inline int suite_keyset_add(suite_keyset *set, const char *key, uint64_t size)
{
	size_t len = strlen(key);

	for (size_t i = 0; i < set->count; i++) {
		if (strcmp(set->keys[i], key) == 0) {
			set->sizes[i] = size;
			return 0;
		}
	}
	if (len >= BRT_BLOB_KEY_MAX || set->count >= SUITE_LIST_MAX) {
		set->overflow = 1;
		return 0;
	}
	if (set->count == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 64;
		void *keys = realloc(set->keys, cap * sizeof(*set->keys));
		void *sizes = keys ? realloc(set->sizes, cap * sizeof(*set->sizes)) : NULL;
		if (keys)
			set->keys = keys;
		if (sizes)
			set->sizes = sizes;
		if (!sizes) {
			set->overflow = 1;
			return 0;
		}
		set->cap = cap;
	}
	memcpy(set->keys[set->count], key, len + 1);
	set->sizes[set->count] = size;
	set->count++;
	return 0;
}

static inline long suite_keyset_find(const suite_keyset *set, const char *key)
{
	for (size_t i = 0; i < set->count; i++)
		if (strcmp(set->keys[i], key) == 0)
			return (long)i;
	return -1;
}

static inline void suite_keyset_del(suite_keyset *set, const char *key)
{
	long i = suite_keyset_find(set, key);

	if (i < 0)
		return;
	set->count--;
	memmove(set->keys[i], set->keys[set->count], sizeof(set->keys[0]));
	set->sizes[i] = set->sizes[set->count];
}

static inline void suite_keyset_free(suite_keyset *set)
{
	free(set->keys);
	free(set->sizes);
	memset(set, 0, sizeof(*set));
}

static inline int suite_collect_cb(const char *key, uint64_t size, void *payload)
{
	/* Listing the same key twice is a driver bug the caller detects. */
	suite_keyset *set = payload;

	if (suite_keyset_find(set, key) >= 0) {
		set->overflow = 2;
		return 0;
	}
	return suite_keyset_add(set, key, size);
}

/* What a session row holds of an upload: the acknowledged offset, the
 * store's backend state and the generation a compare-and-swap checks. */
typedef struct suite_row {
	uint64_t offset;
	unsigned char *state;
	size_t state_len;
	uint64_t generation;
} suite_row;

static inline void suite_row_free(suite_row *row)
{
	free(row->state);
	memset(row, 0, sizeof(*row));
}

/* Open an attempt at what `row` acknowledged. */
static inline int suite_attempt(brt_blob_writer **out, brt_blobstore *bs, const char *id,
				const suite_row *row)
{
	return bs->writer_open(out, bs, id, row->offset, row->state, row->state_len);
}

/* Sync `w` and store its state in `row` if the row is still at `seen`
 * (the caller's compare-and-swap), then adopt; BRT_ECONFLICT if the row
 * moved on (the attempt is then not adopted). */
static inline int suite_adopt(suite_row *row, uint64_t seen, brt_blob_writer *w)
{
	const unsigned char *state = NULL;
	unsigned char *copy;
	size_t len = 0;
	int error;

	if ((error = w->sync(w, &state, &len)) < 0)
		return error;
	if (row->generation != seen)
		return BRT_ECONFLICT;
	if (!(copy = malloc(len ? len : 1)))
		return BRT_ENOMEM;
	if (len)
		memcpy(copy, state, len);
	free(row->state);
	row->state = copy;
	row->state_len = len;
	row->offset = w->size;
	row->generation++;
	w->adopt(w);
	return 0;
}

/* Append `data` in `chunk`-byte pieces. */
static inline int suite_append_chunks(brt_blob_writer *w, const unsigned char *data, size_t len, size_t chunk)
{
	int error = 0;

	for (size_t done = 0; done < len && error == 0; done += chunk)
		error = w->append(w, data + done, len - done < chunk ? len - done : chunk);
	return error;
}

/* One chunk as a request sends it: an attempt at the row, appended in
 * `piece`-byte writes, synced and adopted. */
static inline int suite_chunk(brt_blobstore *bs, const char *id, suite_row *row, const unsigned char *data,
			      size_t len, size_t piece)
{
	brt_blob_writer *w = NULL;
	uint64_t seen = row->generation;
	int error;

	if ((error = suite_attempt(&w, bs, id, row)) < 0)
		return error;
	if ((error = suite_append_chunks(w, data, len, piece)) == 0)
		error = suite_adopt(row, seen, w);
	w->free(w);
	return error;
}

static inline int suite_commit(brt_blobstore *bs, const char *id, const suite_row *row, const char *key)
{
	return bs->commit(bs, id, row->state, row->state_len, row->offset, key);
}

/* Upload `data` under a fresh id in one attempt and commit it under its
 * content key. */
static inline int suite_put(suite_ctx *ctx, brt_blobstore *bs, char *key, const unsigned char *data,
			    size_t len)
{
	suite_row row = {0};
	char id[BRT_UPLOAD_ID_LEN + 1];
	int error;

	suite_key_of(key, data, len);
	suite_upload_id(ctx, id);
	if ((error = suite_chunk(bs, id, &row, data, len, 10007)) == 0)
		error = suite_commit(bs, id, &row, key);
	suite_row_free(&row);
	if (error == 0)
		suite_keyset_add(&ctx->expected, key, len);
	return error;
}

/* Read `key` from `offset` to the end into `buf` (`cap` bytes).  *got_out
 * is cap + 1 if the object holds more than cap bytes from there. */
static inline int suite_read(brt_blobstore *bs, const char *key, uint64_t offset, unsigned char *buf,
			     size_t cap, size_t *got_out)
{
	brt_blob_reader *r = NULL;
	unsigned char probe[1];
	size_t got = 0, n = 0;
	int error;

	*got_out = 0;
	if ((error = bs->reader_open(&r, bs, key, offset)) < 0)
		return error;
	for (;;) {
		size_t want = cap - got < SUITE_READ_CHUNK ? cap - got : SUITE_READ_CHUNK;
		if (want == 0) {
			if ((error = r->read(r, probe, 1, &n)) == 0 && n > 0)
				got = cap + 1;
			break;
		}
		if ((error = r->read(r, buf + got, want, &n)) < 0 || n == 0)
			break;
		if (n > want) { /* a driver claiming more than asked */
			got = cap + 1;
			break;
		}
		got += n;
	}
	r->free(r);
	*got_out = got;
	return error;
}

/* Check that `key` holds exactly `data`, by stat and by reading it. */
static inline void suite_expect_content(brt_blobstore *bs, const char *key, const unsigned char *data,
					size_t len)
{
	unsigned char *buf = malloc(len + 1);
	uint64_t size = 0;
	size_t got = 0;

	CHECK(buf != NULL);
	if (!buf)
		return;
	CHECK_EQ_INT(bs->stat(bs, key, &size), 0);
	CHECK_EQ_INT(size, len);
	CHECK_EQ_INT(suite_read(bs, key, 0, buf, len, &got), 0);
	CHECK_EQ_INT(got, len);
	CHECK(got == len && memcmp(buf, data, len) == 0);
	free(buf);
}

typedef struct suite_upload_seen {
	const char *id;
	uint64_t size;
	int found;
} suite_upload_seen;

static inline int suite_upload_seen_cb(const char *upload_id, uint64_t size, int64_t mtime_ms, void *payload)
{
	suite_upload_seen *seen = payload;

	(void)mtime_ms;
	if (strcmp(upload_id, seen->id) == 0) {
		seen->found = 1;
		seen->size = size;
	}
	return 0;
}

/* Bytes the store holds for upload `id` (all pieces); 0 if none; -1 if
 * the store cannot list uploads. */
static inline long long suite_upload_size(brt_blobstore *bs, const char *id)
{
	suite_upload_seen seen = {id, 0, 0};

	if (!bs->upload_list || bs->upload_list(bs, suite_upload_seen_cb, &seen) != 0)
		return -1;
	return seen.found ? (long long)seen.size : 0;
}

/* Whether the store holds nothing for upload `id` (always true where it
 * cannot tell). */
static inline int suite_upload_gone(brt_blobstore *bs, const char *id)
{
	return suite_upload_size(bs, id) <= 0;
}

static inline void suite_check_interface(brt_blobstore *bs)
{
	char key[BRT_BLOB_KEY_MAX], other[BRT_BLOB_KEY_MAX], url[64];

	CHECK_EQ_INT(bs->version, BRT_BLOBSTORE_VERSION);
	CHECK(bs->name != NULL && bs->name[0] != '\0');
	CHECK_EQ_INT(brt_blobstore_check(bs), 0);
	/* An upload's own key is a valid key, its own, and refused for
	 * ids that are none. */
	if (bs->upload_key) {
		CHECK_EQ_INT(brt_blobstore_upload_key(bs, "0123456789abcdef0123456789abcdef", key), 0);
		CHECK_EQ_INT(brt_blob_key_check(key), 0);
		CHECK_EQ_INT(brt_blobstore_upload_key(bs, "0123456789abcdef0123456789abcdee", other), 0);
		CHECK(strcmp(key, other) != 0);
		CHECK_EQ_INT(brt_blobstore_upload_key(bs, "../0123456789abcdef0123456789abc", key),
			     BRT_EINVALID);
	} else {
		CHECK_EQ_INT(brt_blobstore_upload_key(bs, "0123456789abcdef0123456789abcdef", key),
			     BRT_EUNSUPPORTED);
	}
	if (bs->presign)
		CHECK_EQ_INT(brt_blobstore_presign(bs, "../x", 60, url, sizeof(url)), BRT_EINVALID);
	else
		CHECK_EQ_INT(brt_blobstore_presign(bs, "sha256/00/00", 60, url, sizeof(url)),
			     BRT_EUNSUPPORTED);
}

static inline void suite_basic(suite_ctx *ctx, brt_blobstore *bs)
{
	const size_t len = 100003;
	unsigned char *data = suite_make(len, 1), *buf = malloc(len + 1);
	unsigned char empty_data[1] = {0};
	suite_row row = {0};
	brt_blob_writer *w = NULL;
	brt_blob_reader *r = NULL;
	char id[BRT_UPLOAD_ID_LEN + 1], key[BRT_BLOB_KEY_MAX], absent[BRT_BLOB_KEY_MAX];
	char prefix[BRT_BLOB_KEY_MAX];
	uint64_t size = 0;
	size_t got = 0;
	int fd = -1;

	printf("blobstore suite [%s]: basic\n", ctx->label);
	CHECK(data && buf);
	if (!data || !buf)
		goto done;
	suite_key_of(key, data, len);
	suite_upload_id(ctx, id);

	CHECK_EQ_INT(suite_attempt(&w, bs, id, &row), 0);
	CHECK(w != NULL);
	if (!w)
		goto done;
	CHECK_EQ_INT(w->size, 0);
	CHECK_EQ_INT(suite_append_chunks(w, data, len, 4096), 0);
	CHECK_EQ_INT(w->append(w, data, 0), 0);
	CHECK_EQ_INT(w->size, len);
	CHECK_EQ_INT(suite_adopt(&row, 0, w), 0);
	w->free(w);
	w = NULL;
	CHECK_EQ_INT(row.offset, len);
	/* Not visible before the commit. */
	CHECK_EQ_INT(bs->stat(bs, key, &size), BRT_ENOTFOUND);
	/* A commit whose size is not the state's. */
	CHECK_EQ_INT(bs->commit(bs, id, row.state, row.state_len, len + 1, key), BRT_EINVALID);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_keyset_add(&ctx->expected, key, len);

	CHECK_EQ_INT(bs->stat(bs, key, &size), 0);
	CHECK_EQ_INT(size, len);
	suite_expect_content(bs, key, data, len);

	/* Readers from the middle, the last byte, the end and past it. */
	CHECK_EQ_INT(suite_read(bs, key, len / 2, buf, len, &got), 0);
	CHECK(got == len - len / 2 && memcmp(buf, data + len / 2, got) == 0);
	CHECK_EQ_INT(suite_read(bs, key, len - 1, buf, len, &got), 0);
	CHECK(got == 1 && buf[0] == data[len - 1]);
	CHECK_EQ_INT(suite_read(bs, key, len, buf, len, &got), 0);
	CHECK_EQ_INT(got, 0);
	r = (brt_blob_reader *)1;
	CHECK_EQ_INT(bs->reader_open(&r, bs, key, len + 1), BRT_ERANGE);
	CHECK(r == NULL);
	CHECK_EQ_INT(bs->reader_open(&r, bs, key, UINT64_MAX), BRT_ERANGE);
	CHECK(r == NULL);

	/* The upload's data is gone after the commit; committing it again
	 * finds nothing to publish. */
	CHECK(suite_upload_gone(bs, id));
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), BRT_ENOTFOUND);
	suite_expect_content(bs, key, data, len);

	/* Absent objects, and key prefixes that are not objects. */
	suite_key_of(absent, "absent", 6);
	CHECK_EQ_INT(bs->stat(bs, absent, &size), BRT_ENOTFOUND);
	CHECK_EQ_INT(bs->reader_open(&r, bs, absent, 0), BRT_ENOTFOUND);
	CHECK(r == NULL);
	memcpy(prefix, key, sizeof(prefix));
	for (int level = 0; level < 2; level++) {
		char *slash = strrchr(prefix, '/');
		if (!slash)
			break;
		*slash = '\0';
		CHECK_EQ_INT(bs->stat(bs, prefix, &size), BRT_ENOTFOUND);
		CHECK_EQ_INT(bs->reader_open(&r, bs, prefix, 0), BRT_ENOTFOUND);
		CHECK_EQ_INT(bs->remove(bs, prefix), BRT_ENOTFOUND);
		CHECK_EQ_INT(bs->copy(bs, prefix, "suite/copied/prefix"), BRT_ENOTFOUND);
		if (bs->open_fd)
			CHECK_EQ_INT(bs->open_fd(&fd, NULL, bs, prefix), BRT_ENOTFOUND);
	}
	suite_expect_content(bs, key, data, len);

	/* The empty blob is an object like any other, committed from an
	 * upload that never had data. */
	CHECK_EQ_INT(suite_put(ctx, bs, absent, empty_data, 0), 0);
	CHECK_EQ_INT(bs->stat(bs, absent, &size), 0);
	CHECK_EQ_INT(size, 0);
	CHECK_EQ_INT(suite_read(bs, absent, 0, buf, len, &got), 0);
	CHECK_EQ_INT(got, 0);
	CHECK_EQ_INT(bs->reader_open(&r, bs, absent, 1), BRT_ERANGE);

	memcpy(ctx->key_a, key, sizeof(ctx->key_a));
	ctx->data_a = data;
	ctx->len_a = len;
	data = NULL;
done:
	if (w)
		w->free(w);
	suite_row_free(&row);
	free(data);
	free(buf);
}

/* Several chunks, some attempts dropped in between: only adopted data
 * is ever part of the upload, and a commit of several pieces holds them
 * in order. */
static inline void suite_resume(suite_ctx *ctx, brt_blobstore *bs)
{
	const size_t len1 = 50000, len2 = 30000, len3 = 40001, len = len1 + len2 + len3;
	unsigned char *data = suite_make(len, 2), *noise = suite_make(20000, 22);
	suite_row row = {0};
	brt_blob_writer *w = NULL;
	char id[BRT_UPLOAD_ID_LEN + 1], key[BRT_BLOB_KEY_MAX];

	printf("blobstore suite [%s]: resume\n", ctx->label);
	CHECK(data && noise);
	if (!data || !noise)
		goto done;
	suite_key_of(key, data, len);
	suite_upload_id(ctx, id);

	CHECK_EQ_INT(suite_chunk(bs, id, &row, data, len1, 8192), 0);
	/* A chunk whose request ends without adopting (client gone). */
	CHECK_EQ_INT(suite_attempt(&w, bs, id, &row), 0);
	if (!w)
		goto done;
	CHECK_EQ_INT(w->size, len1);
	CHECK_EQ_INT(w->append(w, noise, 20000), 0);
	w->free(w);
	w = NULL;
	/* One that synced but lost its compare-and-swap. */
	CHECK_EQ_INT(suite_attempt(&w, bs, id, &row), 0);
	if (!w)
		goto done;
	CHECK_EQ_INT(w->append(w, noise, 20000), 0);
	CHECK_EQ_INT(suite_adopt(&row, row.generation + 1, w), BRT_ECONFLICT);
	w->free(w);
	w = NULL;
	CHECK_EQ_INT(row.offset, len1);
	if (bs->upload_list)
		CHECK_EQ_INT(suite_upload_size(bs, id), len1);
	/* An empty chunk changes nothing. */
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data, 0, 1), 0);
	CHECK_EQ_INT(row.offset, len1);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data + len1, len2, 3000), 0);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data + len1 + len2, len3, 65536), 0);
	CHECK_EQ_INT(row.offset, len);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_keyset_add(&ctx->expected, key, len);
	suite_expect_content(bs, key, data, len);
	CHECK(suite_upload_gone(bs, id));

	/* A state that does not describe the offset. */
	suite_upload_id(ctx, id);
	w = (brt_blob_writer *)1;
	CHECK_EQ_INT(bs->writer_open(&w, bs, id, 5, NULL, 0), BRT_EINVALID);
	CHECK(w == NULL);
	w = NULL;
done:
	if (w)
		w->free(w);
	suite_row_free(&row);
	free(data);
	free(noise);
}

/* Racing attempts on one upload: each writes its own data, exactly one
 * wins the compare-and-swap, and only the winner's bytes are ever in the
 * upload, whatever order they write, sync and free in. */
static inline void suite_race(suite_ctx *ctx, brt_blobstore *bs)
{
	enum { RACERS = 4 };
	const size_t head = 7000, part = 9000;
	unsigned char *data = suite_make(head + RACERS * part, 33), *result = malloc(head + part);
	brt_blob_writer *w[RACERS] = {0};
	suite_row row = {0};
	char id[BRT_UPLOAD_ID_LEN + 1], key[BRT_BLOB_KEY_MAX];
	uint64_t seen, size = 0;
	int winners = 0, winner = -1;

	printf("blobstore suite [%s]: racing attempts\n", ctx->label);
	CHECK(data && result);
	if (!data || !result)
		goto done;
	suite_upload_id(ctx, id);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data, head, 1000), 0);
	seen = row.generation;
	for (int i = 0; i < RACERS; i++)
		CHECK_EQ_INT(suite_attempt(&w[i], bs, id, &row), 0);
	/* Interleaved appends, as concurrent requests do. */
	for (size_t off = 0; off < part; off += 1000)
		for (int i = 0; i < RACERS; i++)
			if (w[i])
				CHECK_EQ_INT(w[i]->append(w[i], data + head + (size_t)i * part + off,
							  part - off < 1000 ? part - off : 1000),
					     0);
	/* Racer 2 syncs first and wins; the others lose, in any order. */
	for (int k = 0; k < RACERS; k++) {
		int i = (k + 2) % RACERS;
		int error;
		if (!w[i])
			continue;
		error = suite_adopt(&row, seen, w[i]);
		CHECK(error == 0 || error == BRT_ECONFLICT);
		if (error == 0) {
			winners++;
			winner = i;
		}
		if (i == 3) { /* a loser freed before the winner */
			w[i]->free(w[i]);
			w[i] = NULL;
		}
	}
	CHECK_EQ_INT(winners, 1);
	CHECK_EQ_INT(winner, 2);
	for (int i = 0; i < RACERS; i++)
		if (w[i])
			w[i]->free(w[i]);
	memset(w, 0, sizeof(w));
	CHECK_EQ_INT(row.offset, head + part);
	if (bs->upload_list)
		CHECK_EQ_INT(suite_upload_size(bs, id), head + part);
	memcpy(result, data, head);
	memcpy(result + head, data + head + 2 * part, part);
	suite_key_of(key, result, head + part);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	CHECK_EQ_INT(bs->stat(bs, key, &size), 0);
	suite_expect_content(bs, key, result, head + part);
	suite_keyset_add(&ctx->expected, key, head + part);
	CHECK(suite_upload_gone(bs, id));

	/* An attempt opened at a state the row has moved past loses, and
	 * dropping it leaves the adopted data alone. */
	suite_upload_id(ctx, id);
	suite_row_free(&row);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data, head, 3000), 0);
	seen = row.generation;
	CHECK_EQ_INT(suite_attempt(&w[0], bs, id, &row), 0);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data + head, part, 3000), 0);
	if (w[0]) {
		CHECK_EQ_INT(w[0]->append(w[0], data + head + part, part), 0);
		CHECK_EQ_INT(suite_adopt(&row, seen, w[0]), BRT_ECONFLICT);
		w[0]->free(w[0]);
		w[0] = NULL;
	}
	suite_key_of(key, data, head + part);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_expect_content(bs, key, data, head + part);
	suite_keyset_add(&ctx->expected, key, head + part);
done:
	for (int i = 0; i < RACERS; i++)
		if (w[i])
			w[i]->free(w[i]);
	suite_row_free(&row);
	free(data);
	free(result);
}

/* An attempt that is dropped leaves nothing behind. */
static inline void suite_abort(suite_ctx *ctx, brt_blobstore *bs)
{
	unsigned char *data = suite_make(4000, 44);
	const unsigned char *state = NULL;
	size_t len = 0;
	suite_row row = {0};
	brt_blob_writer *w = NULL;
	char id[BRT_UPLOAD_ID_LEN + 1];

	printf("blobstore suite [%s]: abort\n", ctx->label);
	CHECK(data != NULL);
	if (!data)
		return;
	suite_upload_id(ctx, id);
	CHECK_EQ_INT(suite_attempt(&w, bs, id, &row), 0);
	if (w) {
		CHECK_EQ_INT(w->append(w, data, 4000), 0);
		CHECK_EQ_INT(w->sync(w, &state, &len), 0);
		CHECK(len > 0);
		if (bs->upload_list)
			CHECK_EQ_INT(suite_upload_size(bs, id), 4000);
		w->free(w);
	}
	CHECK(suite_upload_gone(bs, id));
	/* An attempt that wrote nothing reports the state it opened at. */
	CHECK_EQ_INT(suite_attempt(&w, bs, id, &row), 0);
	if (w) {
		CHECK_EQ_INT(w->sync(w, &state, &len), 0);
		CHECK_EQ_INT(len, 0);
		w->free(w);
	}
	CHECK(suite_upload_gone(bs, id));
	free(data);
}

static inline void suite_dedupe(suite_ctx *ctx, brt_blobstore *bs)
{
	unsigned char *other = suite_make(5000, 5);
	unsigned char *same_size = ctx->data_a ? suite_make(ctx->len_a, 7) : NULL;
	suite_row row = {0};
	char id[BRT_UPLOAD_ID_LEN + 1], key_c[BRT_BLOB_KEY_MAX];

	printf("blobstore suite [%s]: commit without replacing\n", ctx->label);
	CHECK(other != NULL && same_size != NULL);
	if (!other || !same_size || !ctx->data_a)
		goto done;

	/* The same content again: 0, one object, upload gone. */
	suite_upload_id(ctx, id);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, ctx->data_a, ctx->len_a, 50000), 0);
	CHECK_EQ_INT(suite_commit(bs, id, &row, ctx->key_a), 0);
	suite_row_free(&row);
	CHECK(suite_upload_gone(bs, id));
	suite_expect_content(bs, ctx->key_a, ctx->data_a, ctx->len_a);

	/* Other bytes of the same size under an existing key, in two pieces:
	 * a store never rewrites an object that may be the same content (the
	 * core verified the upload's digest, so same key and size means same
	 * bytes). */
	suite_upload_id(ctx, id);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, same_size, ctx->len_a / 2, 50000), 0);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, same_size + ctx->len_a / 2, ctx->len_a - ctx->len_a / 2,
				 50000),
		     0);
	CHECK_EQ_INT(suite_commit(bs, id, &row, ctx->key_a), 0);
	suite_row_free(&row);
	CHECK(suite_upload_gone(bs, id));
	suite_expect_content(bs, ctx->key_a, ctx->data_a, ctx->len_a);

	/* An object whose size is not its content's is corrupt (a torn or
	 * planted file): committing the verified content replaces it, so a
	 * bad copy cannot shadow every later push of the real bytes; both
	 * for one piece and for several. */
	for (int pieces = 1; pieces <= 2; pieces++) {
		suite_key_of(key_c, (const unsigned char *)"corrupt object", 14);
		suite_upload_id(ctx, id);
		CHECK_EQ_INT(suite_chunk(bs, id, &row, other, 5000, 1000), 0);
		CHECK_EQ_INT(suite_commit(bs, id, &row, key_c), 0);
		suite_row_free(&row);
		suite_upload_id(ctx, id);
		if (pieces == 1) {
			CHECK_EQ_INT(suite_chunk(bs, id, &row, ctx->data_a, ctx->len_a, 50000), 0);
		} else {
			CHECK_EQ_INT(suite_chunk(bs, id, &row, ctx->data_a, 1000, 500), 0);
			CHECK_EQ_INT(suite_chunk(bs, id, &row, ctx->data_a + 1000, ctx->len_a - 1000, 50000),
				     0);
		}
		CHECK_EQ_INT(suite_commit(bs, id, &row, key_c), 0);
		suite_row_free(&row);
		CHECK(suite_upload_gone(bs, id));
		suite_expect_content(bs, key_c, ctx->data_a, ctx->len_a);
		if (pieces == 1)
			CHECK_EQ_INT(bs->remove(bs, key_c), 0);
	}
	suite_keyset_add(&ctx->expected, key_c, ctx->len_a);
done:
	suite_row_free(&row);
	free(other);
	free(same_size);
}

static inline void suite_upload_remove(suite_ctx *ctx, brt_blobstore *bs)
{
	unsigned char *data = suite_make(3000, 6);
	suite_row row = {0};
	brt_blob_writer *w = NULL;
	char id[BRT_UPLOAD_ID_LEN + 1], key[BRT_BLOB_KEY_MAX];

	printf("blobstore suite [%s]: upload_remove\n", ctx->label);
	CHECK(data != NULL);
	if (!data)
		return;
	suite_key_of(key, data, 3000);
	suite_upload_id(ctx, id);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data, 1000, 1000), 0);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data + 1000, 2000, 1000), 0);
	if (bs->upload_list)
		CHECK_EQ_INT(suite_upload_size(bs, id), 3000);
	CHECK_EQ_INT(bs->upload_remove(bs, id, row.state, row.state_len), 0);
	CHECK(suite_upload_gone(bs, id));
	CHECK_EQ_INT(bs->upload_remove(bs, id, row.state, row.state_len), 0);
	/* The data is gone: a commit or an attempt at the row says so, or
	 * (a driver need not look) the commit does. */
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), BRT_ENOTFOUND);
	if (suite_attempt(&w, bs, id, &row) == 0)
		w->free(w);
	CHECK_EQ_INT(bs->stat(bs, key, &(uint64_t){0}), BRT_ENOTFOUND);
	suite_row_free(&row);

	/* The id can start over from nothing. */
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data, 3000, 1000), 0);
	CHECK_EQ_INT(bs->upload_remove(bs, id, NULL, 0), 0);
	CHECK(suite_upload_gone(bs, id));

	suite_upload_id(ctx, id);
	CHECK_EQ_INT(bs->upload_remove(bs, id, NULL, 0), 0);
	suite_row_free(&row);
	free(data);
}

static inline void suite_remove(suite_ctx *ctx, brt_blobstore *bs)
{
	unsigned char *data = suite_make(7000, 7);
	brt_blob_reader *r = NULL;
	char key[BRT_BLOB_KEY_MAX];
	uint64_t size = 0;

	printf("blobstore suite [%s]: remove\n", ctx->label);
	CHECK(data != NULL);
	if (!data)
		return;
	CHECK_EQ_INT(suite_put(ctx, bs, key, data, 7000), 0);
	suite_expect_content(bs, key, data, 7000);
	CHECK_EQ_INT(bs->remove(bs, key), 0);
	suite_keyset_del(&ctx->expected, key);
	CHECK_EQ_INT(bs->stat(bs, key, &size), BRT_ENOTFOUND);
	CHECK_EQ_INT(bs->reader_open(&r, bs, key, 0), BRT_ENOTFOUND);
	CHECK(r == NULL);
	CHECK_EQ_INT(bs->remove(bs, key), BRT_ENOTFOUND);

	/* Committing it again works (a driver may have pruned directories). */
	CHECK_EQ_INT(suite_put(ctx, bs, key, data, 7000), 0);
	suite_expect_content(bs, key, data, 7000);
	CHECK_EQ_INT(bs->remove(bs, key), 0);
	suite_keyset_del(&ctx->expected, key);
	CHECK_EQ_INT(bs->stat(bs, key, &size), BRT_ENOTFOUND);
	free(data);
}

static inline void suite_copy(suite_ctx *ctx, brt_blobstore *bs)
{
	unsigned char *data = suite_make(9000, 8);
	char key[BRT_BLOB_KEY_MAX], same_dir[BRT_BLOB_KEY_MAX], other_dir[BRT_BLOB_KEY_MAX];
	char nested[BRT_BLOB_KEY_MAX], longest[BRT_BLOB_KEY_MAX];
	const char *targets[4];
	size_t key_len;

	printf("blobstore suite [%s]: copy\n", ctx->label);
	CHECK(data != NULL);
	if (!data || !ctx->data_a)
		goto done;
	CHECK_EQ_INT(suite_put(ctx, bs, key, data, 9000), 0);
	key_len = strlen(key);
	CHECK(key_len > 12);
	if (key_len <= 12)
		goto done;

	/* Targets: same fan-out directory, another one, a deeper new
	 * prefix, and the longest key allowed. */
	memcpy(same_dir, key, key_len + 1);
	same_dir[key_len - 1] = same_dir[key_len - 1] == '0' ? '1' : '0';
	memcpy(other_dir, key, key_len + 1);
	other_dir[7] = other_dir[7] == 'f' ? 'e' : 'f';
	other_dir[10] = other_dir[7];
	CHECK(snprintf(nested, sizeof(nested), "suite/trash/%s", key) < (int)sizeof(nested));
	memset(longest, 'z', BRT_BLOB_KEY_MAX - 1);
	memcpy(longest, "suite/", 6);
	longest[BRT_BLOB_KEY_MAX - 1] = '\0';
	targets[0] = same_dir;
	targets[1] = other_dir;
	targets[2] = nested;
	targets[3] = longest;

	for (int i = 0; i < 4; i++) {
		CHECK_EQ_INT(bs->copy(bs, i ? targets[i - 1] : key, targets[i]), 0);
		suite_expect_content(bs, targets[i], data, 9000);
	}
	suite_expect_content(bs, key, data, 9000);
	/* A copy outlives its source, and the source its copy. */
	CHECK_EQ_INT(bs->remove(bs, same_dir), 0);
	suite_expect_content(bs, other_dir, data, 9000);
	for (int i = 1; i < 4; i++)
		CHECK_EQ_INT(bs->remove(bs, targets[i]), 0);
	suite_expect_content(bs, key, data, 9000);

	/* Absent source; existing target (both stay intact); onto itself. */
	CHECK_EQ_INT(bs->copy(bs, same_dir, other_dir), BRT_ENOTFOUND);
	CHECK_EQ_INT(bs->copy(bs, key, ctx->key_a), BRT_EEXISTS);
	suite_expect_content(bs, key, data, 9000);
	suite_expect_content(bs, ctx->key_a, ctx->data_a, ctx->len_a);
	CHECK_EQ_INT(bs->copy(bs, key, key), BRT_EEXISTS);
	suite_expect_content(bs, key, data, 9000);
	/* `key` stays for the list check. */
done:
	free(data);
}

static inline void suite_open_fd(suite_ctx *ctx, brt_blobstore *bs)
{
	unsigned char *buf = NULL;
	char absent[BRT_BLOB_KEY_MAX];
	uint64_t size = 0;
	size_t got = 0;
	int fd = -1;

	if (!bs->open_fd || !ctx->data_a) {
		printf("blobstore suite [%s]: open_fd not supported, skipped\n", ctx->label);
		CHECK_EQ_INT(brt_blobstore_open_fd(&fd, &size, bs, "sha256/00/00"), BRT_EUNSUPPORTED);
		return;
	}
	printf("blobstore suite [%s]: open_fd\n", ctx->label);
	buf = malloc(ctx->len_a + 1);
	CHECK(buf != NULL);
	if (!buf)
		return;
	CHECK_EQ_INT(bs->open_fd(&fd, &size, bs, ctx->key_a), 0);
	CHECK(fd >= 0);
	CHECK_EQ_INT(size, ctx->len_a);
	if (fd >= 0) {
		for (int i = 0; i < 100000 && got <= ctx->len_a; i++) {
			ssize_t n = pread(fd, buf + got, ctx->len_a + 1 - got, (off_t)got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		CHECK_EQ_INT(got, ctx->len_a);
		CHECK(got == ctx->len_a && memcmp(buf, ctx->data_a, got) == 0);
		close(fd);
	}
	suite_key_of(absent, "no such blob", 12);
	CHECK_EQ_INT(bs->open_fd(&fd, NULL, bs, absent), BRT_ENOTFOUND);
	CHECK_EQ_INT(bs->open_fd(&fd, &size, bs, "../etc/passwd"), BRT_EINVALID);
	free(buf);
}

/* A writer's data followed while it is appended (the optional data_fd
 * slot): what was appended so far reads back at once, more after the
 * next append, and all of it after commit and free. */
static inline void suite_data_fd(suite_ctx *ctx, brt_blobstore *bs)
{
	char id[BRT_UPLOAD_ID_LEN + 1], key[BRT_BLOB_KEY_MAX], buf[16];
	brt_blob_writer *w = NULL;
	suite_row row;
	int fd = -1;

	memset(&row, 0, sizeof(row));
	suite_upload_id(ctx, id);
	CHECK_EQ_INT(suite_attempt(&w, bs, id, &row), 0);
	if (!w)
		return;
	if (!w->data_fd) {
		printf("blobstore suite [%s]: data_fd not supported, skipped\n", ctx->label);
		CHECK_EQ_INT(brt_blob_writer_data_fd(w, &fd), BRT_EUNSUPPORTED);
		w->free(w);
		return;
	}
	printf("blobstore suite [%s]: data_fd\n", ctx->label);
	CHECK_EQ_INT(brt_blob_writer_data_fd(w, &fd), BRT_ENOTFOUND);
	CHECK_EQ_INT(w->append(w, "follow", 6), 0);
	CHECK_EQ_INT(brt_blob_writer_data_fd(w, &fd), 0);
	CHECK(fd >= 0);
	if (fd < 0) {
		w->free(w);
		return;
	}
	CHECK_EQ_INT(pread(fd, buf, sizeof(buf), 0), 6);
	CHECK(memcmp(buf, "follow", 6) == 0);
	CHECK_EQ_INT(w->append(w, " me", 3), 0);
	CHECK_EQ_INT(pread(fd, buf, sizeof(buf), 0), 9);
	CHECK_EQ_INT(write(fd, "x", 1), -1); /* read-only */
	CHECK_EQ_INT(suite_adopt(&row, row.generation, w), 0);
	w->free(w);
	suite_key_of(key, "follow me", 9);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	CHECK_EQ_INT(pread(fd, buf, sizeof(buf), 0), 9);
	CHECK(memcmp(buf, "follow me", 9) == 0);
	close(fd);
	CHECK_EQ_INT(bs->remove(bs, key), 0);
	suite_row_free(&row);
}

static inline void suite_invalid(suite_ctx *ctx, brt_blobstore *bs)
{
	static const char *const bad_ids[] = {
		"",
		"0123456789abcdef0123456789abcde",   /* 31 */
		"0123456789abcdef0123456789abcdef0", /* 33 */
		"0123456789ABCDEF0123456789ABCDEF",
		"0123456789abcdef0123456789abcdeg",
		"0123456789abcdef0123456789abcd/x",
		"../0123456789abcdef0123456789abc",
		"..",
	};
	static const char *const bad_keys[] = {
		"",           "../x",         "/abs",           "/",    "sha256/../x",
		"sha256/./x", "SHA256/AB/CD", "sha256/ab/ABCD", "a//b", "a/",
		".",          "..",           "sha256:abcd",    "a b",  "a\\b",
		"a/..b",      ".hidden",      "a/.tmp",         "a\nb", "caf\xc3\xa9",
	};
	static const char *const bad_states[] = {
		"x",
		"0123456789abcdef",
		"0123456789abcdef 5",
		"0123456789abcdef 5\n0",
		"0123456789ABCDEF 5\n",
		"0123456789abcdef -5\n",
		"0123456789abcdef 0\n",
		"../../../../etc/ 5\n",
	};
	char too_long[BRT_BLOB_KEY_MAX + 1];
	suite_row row = {0};
	brt_blob_writer *w = NULL;
	brt_blob_reader *r = NULL;
	char id[BRT_UPLOAD_ID_LEN + 1];
	unsigned long removed = 0;
	uint64_t size = 0;
	int fd = -1;

	printf("blobstore suite [%s]: invalid ids, keys and states\n", ctx->label);
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		w = (brt_blob_writer *)1;
		CHECK_EQ_INT(bs->writer_open(&w, bs, bad_ids[i], 0, NULL, 0), BRT_EINVALID);
		CHECK(w == NULL);
		CHECK_EQ_INT(bs->upload_remove(bs, bad_ids[i], NULL, 0), BRT_EINVALID);
		CHECK_EQ_INT(bs->commit(bs, bad_ids[i], NULL, 0, 0, "sha256/00/00"), BRT_EINVALID);
	}
	suite_upload_id(ctx, id);
	for (size_t i = 0; i < sizeof(bad_states) / sizeof(bad_states[0]); i++) {
		const unsigned char *st = (const unsigned char *)bad_states[i];
		w = (brt_blob_writer *)1;
		CHECK(bs->writer_open(&w, bs, id, 5, st, strlen(bad_states[i])) == BRT_EINVALID);
		CHECK(w == NULL);
		CHECK_EQ_INT(bs->commit(bs, id, st, strlen(bad_states[i]), 5, "sha256/00/00"), BRT_EINVALID);
		if (bs->upload_prune)
			CHECK_EQ_INT(bs->upload_prune(&removed, bs, id, st, strlen(bad_states[i]), 0),
				     BRT_EINVALID);
	}
	w = NULL;

	memset(too_long, 'a', BRT_BLOB_KEY_MAX);
	too_long[BRT_BLOB_KEY_MAX] = '\0';
	suite_upload_id(ctx, id);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, (const unsigned char *)"x", 1, 1), 0);
	for (size_t i = 0; i <= sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
		const char *key = i < sizeof(bad_keys) / sizeof(bad_keys[0]) ? bad_keys[i] : too_long;
		CHECK_EQ_INT(bs->stat(bs, key, &size), BRT_EINVALID);
		r = (brt_blob_reader *)1;
		CHECK_EQ_INT(bs->reader_open(&r, bs, key, 0), BRT_EINVALID);
		CHECK(r == NULL);
		CHECK_EQ_INT(bs->remove(bs, key), BRT_EINVALID);
		if (ctx->data_a) {
			CHECK_EQ_INT(bs->copy(bs, key, ctx->key_a), BRT_EINVALID);
			CHECK_EQ_INT(bs->copy(bs, ctx->key_a, key), BRT_EINVALID);
		}
		if (bs->open_fd)
			CHECK_EQ_INT(bs->open_fd(&fd, &size, bs, key), BRT_EINVALID);
		CHECK_EQ_INT(suite_commit(bs, id, &row, key), BRT_EINVALID);
	}
	/* The upload survived every refused commit. */
	if (bs->upload_list)
		CHECK_EQ_INT(suite_upload_size(bs, id), 1);
	CHECK_EQ_INT(bs->upload_remove(bs, id, row.state, row.state_len), 0);
	suite_row_free(&row);
	if (ctx->data_a)
		suite_expect_content(bs, ctx->key_a, ctx->data_a, ctx->len_a);
}

/* 64 MiB in one attempt (published without a copy where the driver can:
 * under the store's upload_key when it has one, as the core commits)
 * and in 4 attempts of 16 MiB (joined at commit, under the content key). */
static inline void suite_big(suite_ctx *ctx, brt_blobstore *bs)
{
	unsigned char *chunk = malloc(SUITE_BIG_CHUNK), *buf = malloc(1 << 20);
	brt_blob_writer *w = NULL;
	brt_blob_reader *r = NULL;
	brt_hasher hasher;
	brt_digest written, read_back;
	char id[BRT_UPLOAD_ID_LEN + 1], key[BRT_BLOB_KEY_MAX];
	suite_row row = {0};

	printf("blobstore suite [%s]: 64 MiB streamed\n", ctx->label);
	CHECK(chunk && buf);
	if (!chunk || !buf)
		goto done;
	for (int attempts = 1; attempts <= 4; attempts *= 4) {
		uint64_t state = 9, size = 0, total = 0, seen = 0;
		size_t per_attempt = SUITE_BIG_SIZE / (size_t)attempts;
		int error = 0;

		suite_upload_id(ctx, id);
		/* Hash while streaming, as the core does; the key is known only
		 * at the end. */
		brt_hasher_init(&hasher, BRT_DIGEST_SHA256);
		for (size_t done = 0; done < SUITE_BIG_SIZE && error == 0; done += SUITE_BIG_CHUNK) {
			if (done % per_attempt == 0) {
				seen = row.generation;
				if ((error = suite_attempt(&w, bs, id, &row)) < 0)
					break;
			}
			suite_fill(chunk, SUITE_BIG_CHUNK, &state);
			brt_hasher_update(&hasher, chunk, SUITE_BIG_CHUNK);
			error = w->append(w, chunk, SUITE_BIG_CHUNK);
			if (error == 0 && (done + SUITE_BIG_CHUNK) % per_attempt == 0) {
				error = suite_adopt(&row, seen, w);
				w->free(w);
				w = NULL;
			}
		}
		CHECK_EQ_INT(error, 0);
		CHECK_EQ_INT(row.offset, SUITE_BIG_SIZE);
		brt_hasher_final(&hasher, &written);
		brt_blob_key(key, written.str);
		if (attempts == 1 && bs->upload_key)
			CHECK_EQ_INT(bs->upload_key(bs, id, key), 0);
		CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
		suite_row_free(&row);

		CHECK_EQ_INT(bs->stat(bs, key, &size), 0);
		CHECK_EQ_INT(size, SUITE_BIG_SIZE);
		CHECK_EQ_INT(bs->reader_open(&r, bs, key, 0), 0);
		if (!r)
			goto done;
		brt_hasher_init(&hasher, BRT_DIGEST_SHA256);
		/* Bounded: every pass reads at least one byte or stops. */
		for (long pass = 0; pass < (long)(SUITE_BIG_SIZE + 1); pass++) {
			size_t n = 0;
			if ((error = r->read(r, buf, 1 << 20, &n)) < 0 || n == 0)
				break;
			brt_hasher_update(&hasher, buf, n);
			total += n;
		}
		CHECK_EQ_INT(error, 0);
		CHECK_EQ_INT(total, SUITE_BIG_SIZE);
		brt_hasher_final(&hasher, &read_back);
		CHECK_EQ_STR(read_back.str, written.str);
		r->free(r);
		r = NULL;
		CHECK_EQ_INT(bs->remove(bs, key), 0);
		CHECK_EQ_INT(bs->stat(bs, key, &size), BRT_ENOTFOUND);
		CHECK(suite_upload_gone(bs, id));
	}
done:
	if (w)
		w->free(w);
	suite_row_free(&row);
	free(chunk);
	free(buf);
}

typedef struct suite_thread {
	brt_blobstore *bs;
	pthread_barrier_t *barrier;
	const unsigned char *shared;
	size_t shared_len;
	const char *shared_key;
	unsigned char *own;
	size_t own_len;
	char own_key[BRT_BLOB_KEY_MAX];
	char id_shared[BRT_UPLOAD_ID_LEN + 1];
	char id_own[BRT_UPLOAD_ID_LEN + 1];
	int error_shared, error_own;
	char detail[256];
} suite_thread;

static inline void *suite_thread_main(void *arg)
{
	suite_thread *t = arg;
	suite_row shared = {0}, own = {0};

	/* Two chunks each, so commits join pieces. */
	t->error_shared = suite_chunk(t->bs, t->id_shared, &shared, t->shared, t->shared_len / 3, 32768);
	if (t->error_shared == 0)
		t->error_shared = suite_chunk(t->bs, t->id_shared, &shared, t->shared + t->shared_len / 3,
					      t->shared_len - t->shared_len / 3, 32768);
	t->error_own = suite_chunk(t->bs, t->id_own, &own, t->own, t->own_len, 32768);
	if (t->error_shared < 0 || t->error_own < 0)
		snprintf(t->detail, sizeof(t->detail), "%s", brt_error_last());
	/* Everyone commits at once to make the same-key race likely. */
	pthread_barrier_wait(t->barrier);
	if (t->error_shared == 0)
		t->error_shared = suite_commit(t->bs, t->id_shared, &shared, t->shared_key);
	if (t->error_own == 0)
		t->error_own = suite_commit(t->bs, t->id_own, &own, t->own_key);
	if ((t->error_shared < 0 || t->error_own < 0) && !t->detail[0])
		snprintf(t->detail, sizeof(t->detail), "%s", brt_error_last());
	suite_row_free(&shared);
	suite_row_free(&own);
	return NULL;
}

static inline void suite_threads(suite_ctx *ctx, brt_blobstore *bs)
{
	const size_t shared_len = 300000, own_len = 100000;
	suite_thread threads[SUITE_THREADS];
	pthread_t tids[SUITE_THREADS];
	pthread_barrier_t barrier;
	char shared_key[BRT_BLOB_KEY_MAX];

	printf("blobstore suite [%s]: %d concurrent writers\n", ctx->label, SUITE_THREADS);
	for (int round = 0; round < SUITE_THREAD_ROUNDS; round++) {
		unsigned char *shared = suite_make(shared_len, 100 + (uint64_t)round);
		int started = 0;

		CHECK(shared != NULL);
		if (!shared)
			return;
		suite_key_of(shared_key, shared, shared_len);
		memset(threads, 0, sizeof(threads));
		pthread_barrier_init(&barrier, NULL, SUITE_THREADS);
		for (int i = 0; i < SUITE_THREADS; i++) {
			suite_thread *t = &threads[i];
			t->bs = bs;
			t->barrier = &barrier;
			t->shared = shared;
			t->shared_len = shared_len;
			t->shared_key = shared_key;
			t->own_len = own_len;
			t->own = suite_make(own_len, 1000 + (uint64_t)round * 100 + (uint64_t)i);
			if (t->own)
				suite_key_of(t->own_key, t->own, own_len);
			suite_upload_id(ctx, t->id_shared);
			suite_upload_id(ctx, t->id_own);
		}
		for (int i = 0; i < SUITE_THREADS; i++) {
			CHECK(threads[i].own != NULL);
			if (!threads[i].own)
				break;
			if (pthread_create(&tids[i], NULL, suite_thread_main, &threads[i]) != 0)
				break;
			started++;
		}
		CHECK_EQ_INT(started, SUITE_THREADS);
		/* Threads wait at the barrier for all SUITE_THREADS; if some
		 * never started the suite cannot recover, so give up loudly. */
		if (started != SUITE_THREADS) {
			fprintf(stderr, "blobstore suite: could not start threads\n");
			exit(1);
		}
		for (int i = 0; i < SUITE_THREADS; i++)
			pthread_join(tids[i], NULL);
		pthread_barrier_destroy(&barrier);

		for (int i = 0; i < SUITE_THREADS; i++) {
			suite_thread *t = &threads[i];
			if (t->error_shared != 0 || t->error_own != 0)
				fprintf(stderr, "blobstore suite [%s]: thread %d: %d/%d: %s\n", ctx->label, i,
					t->error_shared, t->error_own, t->detail);
			CHECK_EQ_INT(t->error_shared, 0);
			CHECK_EQ_INT(t->error_own, 0);
			CHECK(suite_upload_gone(bs, t->id_shared));
			CHECK(suite_upload_gone(bs, t->id_own));
			suite_expect_content(bs, t->own_key, t->own, own_len);
			suite_keyset_add(&ctx->expected, t->own_key, own_len);
			free(t->own);
		}
		suite_expect_content(bs, shared_key, shared, shared_len);
		suite_keyset_add(&ctx->expected, shared_key, shared_len);
		free(shared);
	}
}

/* An attempt kept (the caller cannot tell whether its row update was
 * stored): whichever state the row turns out to hold, the upload goes on
 * from it and commits the right bytes, and the prune then takes only what
 * that state does not name.  The kept attempt's data is more than one of
 * the store's parts where it has them, so it created a multipart upload. */
static inline void suite_keep(suite_ctx *ctx, brt_blobstore *bs)
{
	const size_t len1 = 30000, len2 = (bs->chunk_min ? (size_t)bs->chunk_min : 40000) + 5000,
		     len3 = 20000, len = len1 + len2 + len3;
	unsigned char *data = suite_make(len, 61), *other = suite_make(len2, 62), *want = malloc(len);
	char id[BRT_UPLOAD_ID_LEN + 1], key[BRT_BLOB_KEY_MAX];

	printf("blobstore suite [%s]: keep\n", ctx->label);
	CHECK(data && other && want);
	if (!data || !other || !want)
		goto done;
	for (int stored = 0; stored < 2; stored++) {
		suite_row row = {0};
		brt_blob_writer *w = NULL;
		const unsigned char *state = NULL;
		size_t state_len = 0;
		unsigned long removed = 0;

		suite_upload_id(ctx, id);
		CHECK_EQ_INT(suite_chunk(bs, id, &row, data, len1, 4096), 0);
		CHECK_EQ_INT(suite_attempt(&w, bs, id, &row), 0);
		if (!w) {
			suite_row_free(&row);
			break;
		}
		CHECK_EQ_INT(suite_append_chunks(w, data + len1, len2, 65536), 0);
		CHECK_EQ_INT(w->sync(w, &state, &state_len), 0);
		if (stored) { /* the row took the new state after all */
			unsigned char *copy = malloc(state_len ? state_len : 1);
			CHECK(copy != NULL);
			if (copy && state_len)
				memcpy(copy, state, state_len);
			free(row.state);
			row.state = copy;
			row.state_len = copy ? state_len : 0;
			row.offset = w->size;
			row.generation++;
		}
		if (w->keep)
			w->keep(w);
		else
			w->adopt(w);
		w->free(w);
		/* The next chunk continues whatever the row holds. */
		memcpy(want, data, len);
		if (!stored)
			memcpy(want + len1, other, len2);
		if (!stored)
			CHECK_EQ_INT(suite_chunk(bs, id, &row, other, len2, 65536), 0);
		if (bs->upload_prune) {
			CHECK_EQ_INT(bs->upload_prune(&removed, bs, id, row.state, row.state_len, INT64_MAX),
				     0);
			printf("blobstore suite [%s]: keep (row %s): prune removed %lu\n", ctx->label,
			       stored ? "stored" : "not stored", removed);
			CHECK(stored || removed >= 1);
		}
		CHECK_EQ_INT(suite_chunk(bs, id, &row, data + len1 + len2, len3, 4096), 0);
		CHECK_EQ_INT(row.offset, len);
		suite_key_of(key, want, len);
		CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
		suite_expect_content(bs, key, want, len);
		suite_keyset_add(&ctx->expected, key, len);
		CHECK(suite_upload_gone(bs, id));
		suite_row_free(&row);
	}
done:
	free(data);
	free(other);
	free(want);
}

/* What a writer killed mid-attempt leaves (synced, never adopted nor
 * freed) is swept by upload_prune, and what was adopted stays. */
static inline void suite_crash_leftovers(suite_ctx *ctx, brt_blobstore *bs)
{
	unsigned char *data = suite_make(6000, 55);
	suite_row row = {0};
	char id[BRT_UPLOAD_ID_LEN + 1], key[BRT_BLOB_KEY_MAX];
	unsigned long removed = 0;
	int status = 0;
	pid_t pid;

	if (!bs->upload_prune) {
		printf("blobstore suite [%s]: upload_prune not supported, skipped\n", ctx->label);
		return;
	}
	printf("blobstore suite [%s]: crash leftovers\n", ctx->label);
	CHECK(data != NULL);
	if (!data)
		return;
	suite_upload_id(ctx, id);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data, 4000, 1000), 0);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		brt_blob_writer *w = NULL;
		const unsigned char *state;
		size_t len;
		if (suite_attempt(&w, bs, id, &row) != 0 || w->append(w, data + 4000, 2000) != 0 ||
		    w->sync(w, &state, &len) != 0)
			_exit(2);
		_exit(0); /* as kill -9 would: no free */
	}
	if (pid > 0) {
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* The leftover counts: at least the 2000 new bytes (a driver whose
	 * attempts rewrite the unfinished tail holds more). */
	if (bs->upload_list)
		CHECK(suite_upload_size(bs, id) >= 6000);
	/* Too young to judge: nothing goes. */
	CHECK_EQ_INT(bs->upload_prune(&removed, bs, id, row.state, row.state_len, 0), 0);
	CHECK_EQ_INT(removed, 0);
	CHECK_EQ_INT(bs->upload_prune(&removed, bs, id, row.state, row.state_len, INT64_MAX), 0);
	CHECK_EQ_INT(removed, 1);
	if (bs->upload_list)
		CHECK_EQ_INT(suite_upload_size(bs, id), 4000);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data + 4000, 2000, 1000), 0);
	suite_key_of(key, data, 6000);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_expect_content(bs, key, data, 6000);
	suite_keyset_add(&ctx->expected, key, 6000);
	/* With no session left, pruning removes everything old. */
	suite_upload_id(ctx, id);
	suite_row_free(&row);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data, 3000, 1000), 0);
	CHECK_EQ_INT(bs->upload_prune(&removed, bs, id, NULL, 0, INT64_MAX), 0);
	CHECK_EQ_INT(removed, 1);
	CHECK(suite_upload_gone(bs, id));
	suite_row_free(&row);
	free(data);
}

static inline int suite_stop_cb(const char *key, uint64_t size, void *payload)
{
	(void)key;
	(void)size;
	++*(int *)payload;
	return 42;
}

/* The listing holds every expected key once with its size, and nothing
 * else that was not there before the suite ran. */
static inline void suite_list(suite_ctx *ctx, brt_blobstore *bs)
{
	suite_keyset got = {0};
	size_t matched = 0;
	int calls = 0;

	printf("blobstore suite [%s]: list\n", ctx->label);
	CHECK_EQ_INT(bs->list(bs, suite_collect_cb, &got), 0);
	CHECK_EQ_INT(got.overflow, 0);
	for (size_t i = 0; i < got.count; i++) {
		long e = suite_keyset_find(&ctx->expected, got.keys[i]);
		if (e >= 0) {
			matched++;
			if (got.sizes[i] != ctx->expected.sizes[e])
				fprintf(stderr, "blobstore suite [%s]: list size of %s\n", ctx->label,
					got.keys[i]);
			CHECK_EQ_INT(got.sizes[i], ctx->expected.sizes[e]);
		} else if (suite_keyset_find(&ctx->before, got.keys[i]) < 0) {
			fprintf(stderr, "blobstore suite [%s]: list has unexpected %s\n", ctx->label,
				got.keys[i]);
			CHECK(!"unexpected key in list");
		}
	}
	CHECK_EQ_INT(matched, ctx->expected.count);
	for (size_t e = 0; e < ctx->expected.count; e++)
		if (suite_keyset_find(&got, ctx->expected.keys[e]) < 0)
			fprintf(stderr, "blobstore suite [%s]: list misses %s\n", ctx->label,
				ctx->expected.keys[e]);

	/* A non-zero callback result stops the walk and comes back. */
	CHECK_EQ_INT(bs->list(bs, suite_stop_cb, &calls), got.count ? 42 : 0);
	CHECK_EQ_INT(calls, got.count ? 1 : 0);
	suite_keyset_free(&got);
}

static inline int blobstore_suite_run(brt_blobstore *bs, const char *label)
{
	int failures_before = check_failures;
	suite_ctx ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.label = label;
	suite_check_interface(bs);
	CHECK_EQ_INT(bs->list(bs, suite_collect_cb, &ctx.before), 0);
	CHECK_EQ_INT(ctx.before.overflow, 0);

	suite_basic(&ctx, bs);
	suite_resume(&ctx, bs);
	suite_race(&ctx, bs);
	suite_abort(&ctx, bs);
	suite_dedupe(&ctx, bs);
	suite_upload_remove(&ctx, bs);
	suite_remove(&ctx, bs);
	suite_copy(&ctx, bs);
	suite_open_fd(&ctx, bs);
	suite_data_fd(&ctx, bs);
	suite_invalid(&ctx, bs);
	suite_big(&ctx, bs);
	suite_threads(&ctx, bs);
	suite_crash_leftovers(&ctx, bs);
	suite_keep(&ctx, bs);
	suite_list(&ctx, bs);

	free(ctx.data_a);
	suite_keyset_free(&ctx.before);
	suite_keyset_free(&ctx.expected);
	printf("blobstore suite [%s]: %d failed checks\n", label, check_failures - failures_before);
	return check_failures - failures_before;
}

/* One fault rule for `ops`, as the parser would build it. */
static inline brt_fault_spec suite_fault(unsigned int ops, uint64_t after)
{
	brt_fault_spec spec;

	memset(&spec, 0, sizeof(spec));
	spec.count = 1;
	spec.rules[0].ops = ops;
	spec.rules[0].after = after;
	return spec;
}

/* Injected failures, through the fault-injecting driver wrapped around
 * `inner`: a failed attempt never changes what was acknowledged, a failed
 * commit publishes nothing and leaves the data for a retry. */
static inline int blobstore_suite_run_faults(brt_blobstore *inner, const char *label)
{
	int failures_before = check_failures;
	const size_t len = 30000;
	unsigned char *data = suite_make(len, 77);
	brt_blobstore *bs = NULL;
	brt_blob_writer *w = NULL;
	brt_blob_reader *r = NULL;
	brt_fault_spec spec;
	suite_keyset got = {0};
	suite_row row = {0};
	char id[BRT_UPLOAD_ID_LEN + 1], key[BRT_BLOB_KEY_MAX];
	const unsigned char *state = NULL;
	unsigned char buf[64];
	unsigned long removed = 0;
	uint64_t size = 0;
	size_t n = 0;
	int fd = -1;
	suite_ctx ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.label = label;
	printf("blobstore suite [%s]: injected faults\n", label);
	CHECK(data != NULL);
	spec = suite_fault(0, 0);
	spec.count = 0;
	CHECK_EQ_INT(brt_blobstore_faulty_wrap(&bs, inner, &spec), 0);
	if (!data || !bs)
		goto done;
	suite_check_interface(bs);
	suite_key_of(key, data, len);

	/* A failed append, half-written: the attempt is unusable and dropped,
	 * the acknowledged prefix resumes. */
	spec = suite_fault(BRT_FAULT_APPEND, 1);
	spec.rules[0].partial = 1;
	CHECK_EQ_INT(brt_blobstore_faulty_set(bs, &spec), 0);
	suite_upload_id(&ctx, id);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data, 10000, 10000), 0);
	CHECK_EQ_INT(suite_attempt(&w, bs, id, &row), 0);
	if (!w)
		goto done;
	CHECK_EQ_INT(w->append(w, data + 10000, 10000), BRT_EIO);
	CHECK(strstr(brt_error_last(), "injected") != NULL);
	CHECK(strstr(brt_error_last(), "input/output error") != NULL);
	CHECK(strstr(brt_error_last(), id) != NULL);
	CHECK_EQ_INT(w->append(w, data + 10000, 10000), BRT_EIO);
	CHECK_EQ_INT(w->sync(w, &state, &n), BRT_EIO);
	CHECK_EQ_INT(w->size, 10000);
	w->free(w);
	w = NULL;
	CHECK_EQ_INT(brt_blobstore_faulty_injected(bs), 1);
	if (inner->upload_list)
		CHECK_EQ_INT(suite_upload_size(bs, id), 10000);
	spec.count = 0;
	CHECK_EQ_INT(brt_blobstore_faulty_set(bs, &spec), 0);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data + 10000, len - 10000, 7000), 0);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
	suite_row_free(&row);
	suite_expect_content(bs, key, data, len);
	CHECK_EQ_INT(bs->remove(bs, key), 0);

	/* A disk that fills after 12000 bytes: the append crossing the limit
	 * writes up to it, fails with "no space", and nothing of the attempt
	 * stays. */
	spec = suite_fault(BRT_FAULT_APPEND, 0);
	spec.rules[0].by_bytes = 1;
	spec.rules[0].after_bytes = 12000;
	spec.rules[0].partial = 1;
	spec.rules[0].nospace = 1;
	spec.rules[0].persistent = 1;
	CHECK_EQ_INT(brt_blobstore_faulty_set(bs, &spec), 0);
	suite_upload_id(&ctx, id);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data, 8000, 8000), 0);
	CHECK_EQ_INT(suite_attempt(&w, bs, id, &row), 0);
	if (!w)
		goto done;
	CHECK_EQ_INT(w->append(w, data + 8000, 3000), 0);
	CHECK_EQ_INT(w->append(w, data + 11000, 3000), BRT_EIO);
	CHECK(strstr(brt_error_last(), "no space left on device") != NULL);
	CHECK_EQ_INT(w->size, 11000);
	w->free(w);
	w = NULL;
	if (inner->upload_list)
		CHECK_EQ_INT(suite_upload_size(bs, id), 8000);
	/* Persistent: the next attempt fails at once, also for one byte. */
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data + 8000, 1, 1), BRT_EIO);
	CHECK_EQ_INT(row.offset, 8000);
	CHECK_EQ_INT(brt_blobstore_faulty_injected(bs), 2);
	CHECK_EQ_INT(bs->upload_remove(bs, id, row.state, row.state_len), 0);
	suite_row_free(&row);

	/* A failed sync (before or after the inner one ran): the attempt is
	 * unusable, the row never hears of it, nothing of it stays. */
	for (int phase_after = 0; phase_after <= 1; phase_after++) {
		spec = suite_fault(BRT_FAULT_SYNC, 1);
		spec.rules[0].phase_after = phase_after;
		CHECK_EQ_INT(brt_blobstore_faulty_set(bs, &spec), 0);
		suite_upload_id(&ctx, id);
		CHECK_EQ_INT(suite_chunk(bs, id, &row, data, 5000, 5000), 0);
		CHECK_EQ_INT(suite_chunk(bs, id, &row, data + 5000, 5000, 5000), BRT_EIO);
		CHECK_EQ_INT(row.offset, 5000);
		if (inner->upload_list)
			CHECK_EQ_INT(suite_upload_size(bs, id), 5000);
		CHECK_EQ_INT(suite_chunk(bs, id, &row, data + 5000, len - 5000, 5000), 0);
		CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
		suite_row_free(&row);
		suite_expect_content(bs, key, data, len);
		CHECK_EQ_INT(bs->remove(bs, key), 0);
	}

	/* A failed commit publishes nothing, and the upload can retry: of one
	 * piece and of several. */
	for (int pieces = 1; pieces <= 2; pieces++) {
		spec = suite_fault(BRT_FAULT_COMMIT, 0);
		CHECK_EQ_INT(brt_blobstore_faulty_set(bs, &spec), 0);
		suite_upload_id(&ctx, id);
		CHECK_EQ_INT(suite_chunk(bs, id, &row, data, len / (size_t)pieces, 4096), 0);
		if (pieces == 2)
			CHECK_EQ_INT(suite_chunk(bs, id, &row, data + len / 2, len - len / 2, 4096), 0);
		CHECK_EQ_INT(suite_commit(bs, id, &row, key), BRT_EIO);
		CHECK_EQ_INT(bs->stat(bs, key, &size), BRT_ENOTFOUND);
		CHECK_EQ_INT(bs->list(bs, suite_collect_cb, &got), 0);
		CHECK(suite_keyset_find(&got, key) < 0);
		suite_keyset_free(&got);
		if (inner->upload_list)
			CHECK_EQ_INT(suite_upload_size(bs, id), len);
		CHECK_EQ_INT(suite_commit(bs, id, &row, key), 0);
		suite_row_free(&row);
		suite_expect_content(bs, key, data, len);
		CHECK(suite_upload_gone(bs, id));
		CHECK_EQ_INT(bs->remove(bs, key), 0);
	}

	/* A commit that ran but reported failure (say the directory fsync
	 * failed after the rename): the object may be visible, the data is
	 * gone, and a fresh upload of the same content still succeeds. */
	spec = suite_fault(BRT_FAULT_COMMIT, 0);
	spec.rules[0].phase_after = 1;
	CHECK_EQ_INT(brt_blobstore_faulty_set(bs, &spec), 0);
	suite_upload_id(&ctx, id);
	CHECK_EQ_INT(suite_chunk(bs, id, &row, data, len, 4096), 0);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), BRT_EIO);
	suite_expect_content(bs, key, data, len);
	CHECK(suite_upload_gone(bs, id));
	spec.count = 0;
	CHECK_EQ_INT(brt_blobstore_faulty_set(bs, &spec), 0);
	CHECK_EQ_INT(suite_commit(bs, id, &row, key), BRT_ENOTFOUND);
	suite_row_free(&row);
	CHECK_EQ_INT(suite_put(&ctx, bs, key, data, len), 0);
	suite_expect_content(bs, key, data, len);

	/* Reads: a failed open, then a failed read after one good one; while
	 * reads can fail there is no zero-copy path around them. */
	spec = suite_fault(BRT_FAULT_READER_OPEN | BRT_FAULT_READ, 2);
	CHECK_EQ_INT(brt_blobstore_faulty_set(bs, &spec), 0);
	CHECK(bs->open_fd == NULL);
	CHECK_EQ_INT(bs->reader_open(&r, bs, key, 0), 0);
	if (!r)
		goto done;
	CHECK_EQ_INT(r->read(r, buf, sizeof(buf), &n), 0);
	CHECK_EQ_INT(n, sizeof(buf));
	CHECK_EQ_INT(r->read(r, buf, sizeof(buf), &n), BRT_EIO);
	CHECK_EQ_INT(n, 0);
	r->free(r);
	r = NULL;
	/* Transient: it fired once and is spent. */
	CHECK_EQ_INT(bs->reader_open(&r, bs, key, 0), 0);
	if (r)
		r->free(r);
	r = NULL;
	spec = suite_fault(BRT_FAULT_OPEN_FD | BRT_FAULT_READER_OPEN | BRT_FAULT_WRITER_OPEN, 0);
	spec.rules[0].persistent = 1;
	CHECK_EQ_INT(brt_blobstore_faulty_set(bs, &spec), 0);
	CHECK_EQ_INT(bs->open_fd != NULL, inner->open_fd != NULL);
	if (bs->open_fd)
		CHECK_EQ_INT(bs->open_fd(&fd, &size, bs, key), BRT_EIO);
	CHECK_EQ_INT(fd, -1);
	CHECK_EQ_INT(bs->reader_open(&r, bs, key, 0), BRT_EIO);
	CHECK(r == NULL);
	CHECK_EQ_INT(suite_attempt(&w, bs, id, &row), BRT_EIO);
	CHECK(w == NULL);
	/* Other calls still pass. */
	CHECK_EQ_INT(bs->stat(bs, key, &size), 0);
	CHECK_EQ_INT(size, len);

	/* Copies and removes, before and after the inner call. */
	spec = suite_fault(BRT_FAULT_COPY | BRT_FAULT_REMOVE, 0);
	spec.rules[0].persistent = 1;
	CHECK_EQ_INT(brt_blobstore_faulty_set(bs, &spec), 0);
	CHECK_EQ_INT(bs->copy(bs, key, "faults/copied"), BRT_EIO);
	CHECK_EQ_INT(bs->stat(bs, "faults/copied", &size), BRT_ENOTFOUND);
	CHECK_EQ_INT(bs->remove(bs, key), BRT_EIO);
	suite_expect_content(bs, key, data, len);
	spec.rules[0].phase_after = 1;
	CHECK_EQ_INT(brt_blobstore_faulty_set(bs, &spec), 0);
	CHECK_EQ_INT(bs->copy(bs, key, "faults/copied"), BRT_EIO);
	suite_expect_content(bs, "faults/copied", data, len);
	CHECK_EQ_INT(bs->remove(bs, "faults/copied"), BRT_EIO);
	CHECK_EQ_INT(bs->stat(bs, "faults/copied", &size), BRT_ENOTFOUND);
	/* The inner error wins over an injected one. */
	CHECK_EQ_INT(bs->remove(bs, "faults/copied"), BRT_ENOTFOUND);

	/* Listings fail before they start; so do removes and prunes. */
	spec = suite_fault(BRT_FAULT_LIST | BRT_FAULT_UPLOAD_LIST | BRT_FAULT_STAT | BRT_FAULT_UPLOAD_REMOVE |
				   BRT_FAULT_UPLOAD_PRUNE,
			   0);
	spec.rules[0].persistent = 1;
	CHECK_EQ_INT(brt_blobstore_faulty_set(bs, &spec), 0);
	CHECK_EQ_INT(bs->list(bs, suite_collect_cb, &got), BRT_EIO);
	if (inner->upload_list)
		CHECK_EQ_INT(bs->upload_list(bs, NULL, NULL), BRT_EIO);
	if (inner->upload_prune)
		CHECK_EQ_INT(bs->upload_prune(&removed, bs, id, NULL, 0, INT64_MAX), BRT_EIO);
	CHECK_EQ_INT(bs->stat(bs, key, &size), BRT_EIO);
	CHECK_EQ_INT(bs->upload_remove(bs, id, NULL, 0), BRT_EIO);

	/* Persistent faults hit every later attempt too, with the code the
	 * rule names. */
	spec = suite_fault(BRT_FAULT_APPEND, 0);
	spec.rules[0].persistent = 1;
	spec.rules[0].error = BRT_ETOOBIG;
	CHECK_EQ_INT(brt_blobstore_faulty_set(bs, &spec), 0);
	for (int i = 0; i < 3; i++) {
		suite_upload_id(&ctx, id);
		CHECK_EQ_INT(suite_chunk(bs, id, &row, data, 100, 100), BRT_ETOOBIG);
		CHECK(suite_upload_gone(bs, id));
	}
	CHECK_EQ_INT(brt_blobstore_faulty_injected(bs), 3);
done:
	if (w)
		w->free(w);
	if (r)
		r->free(r);
	if (bs)
		bs->free(bs);
	suite_row_free(&row);
	suite_keyset_free(&got);
	suite_keyset_free(&ctx.expected);
	free(data);
	printf("blobstore suite [%s]: faults: %d failed checks\n", label, check_failures - failures_before);
	return check_failures - failures_before;
}

#endif
