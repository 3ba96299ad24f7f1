/* The upload ring: both workers see every byte, in order, whatever the
 * sizes of the puts; a store failure surfaces at the next put or drain
 * with its detail and stops further stores; a ring freed mid-body stops
 * its workers; rings beyond the server-wide limit are refused; and a
 * large upload through the filesystem store (O_DIRECT where the
 * filesystem has it) hashes and stores byte-exact, also when the body
 * does not end on a page. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/error.h"
#include "storage/blob_upload.h"
#include "storage/upload_ring.h"

typedef struct sink {
	uint64_t hashed, stored;
	uint32_t hash_sum, store_sum; /* order-sensitive checksums */
	uint64_t fail_at;             /* store fails once stored would pass this (0: never) */
	int stores;
} sink;

static uint32_t mix(uint32_t sum, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		sum = sum * 31u + p[i];
	return sum;
}

static void sink_hash(const void *data, size_t len, void *payload)
{
	sink *s = payload;

	s->hash_sum = mix(s->hash_sum, data, len);
	s->hashed += len;
}

static int sink_store(const void *data, size_t len, void *payload)
{
	sink *s = payload;

	s->stores++;
	if ((uintptr_t)data % 4096 != 0)
		return brt_error_set(BRT_EINVALID, "slot not page-aligned");
	if (s->fail_at && s->stored + len > s->fail_at)
		return brt_error_set(BRT_EIO, "disk on fire at %llu", (unsigned long long)s->stored);
	s->store_sum = mix(s->store_sum, data, len);
	s->stored += len;
	return 0;
}

static unsigned char *pattern(size_t len, unsigned seed)
{
	unsigned char *p = malloc(len);

	for (size_t i = 0; p && i < len; i++)
		p[i] = (unsigned char)((i * 2654435761u + seed) >> 13);
	return p;
}

/* Put `total` bytes in pieces of `piece`, drain, compare. */
static void round_trip(size_t total, size_t piece)
{
	unsigned char *data = pattern(total, (unsigned)piece);
	brt_upload_ring *ring = NULL;
	sink s = {0};
	uint32_t want = mix(0, data, total);

	CHECK_EQ_INT(brt_upload_ring_new(&ring, sink_hash, sink_store, &s), 0);
	for (size_t at = 0; at < total; at += piece)
		CHECK_EQ_INT(brt_upload_ring_put(ring, data + at, total - at < piece ? total - at : piece),
			     0);
	CHECK_EQ_INT(brt_upload_ring_drain(ring), 0);
	CHECK_EQ_INT(s.hashed, total);
	CHECK_EQ_INT(s.stored, total);
	CHECK(s.hash_sum == want);
	CHECK(s.store_sum == want);
	/* Drain twice is harmless; more after a drain still arrives. */
	CHECK_EQ_INT(brt_upload_ring_drain(ring), 0);
	CHECK_EQ_INT(brt_upload_ring_put(ring, data, total < 100 ? total : 100), 0);
	CHECK_EQ_INT(brt_upload_ring_drain(ring), 0);
	CHECK_EQ_INT(s.stored, total + (total < 100 ? total : 100));
	brt_upload_ring_free(ring);
	free(data);
}

static void test_orders(void)
{
	round_trip(10, 3);                                /* never a full slot: done inline at drain */
	round_trip(BRT_UPLOAD_RING_SLOT, 65536);          /* exactly one slot */
	round_trip(9 * BRT_UPLOAD_RING_SLOT + 17, 65519); /* wraps the ring twice, odd pieces */
	round_trip(3 * BRT_UPLOAD_RING_SLOT + 1, 3 * BRT_UPLOAD_RING_SLOT + 1); /* one put */
}

static void test_store_failure(void)
{
	size_t total = 12 * BRT_UPLOAD_RING_SLOT;
	unsigned char *data = pattern(total, 7);
	brt_upload_ring *ring = NULL;
	sink s = {.fail_at = 5 * BRT_UPLOAD_RING_SLOT};
	int error = 0, stores;
	size_t at;

	CHECK_EQ_INT(brt_upload_ring_new(&ring, sink_hash, sink_store, &s), 0);
	for (at = 0; at < total && error == 0; at += 65536)
		error = brt_upload_ring_put(ring, data + at, 65536);
	if (error == 0)
		error = brt_upload_ring_drain(ring);
	CHECK_EQ_INT(error, BRT_EIO);
	CHECK(strstr(brt_error_last(), "disk on fire") != NULL);
	/* Stores come in whole slots (several at once when ready), none
	 * past the failure. */
	CHECK(s.stored <= 5 * BRT_UPLOAD_RING_SLOT && s.stored % BRT_UPLOAD_RING_SLOT == 0);
	/* The receiver stops within a ring's length of the failure. */
	CHECK(at <= (5 + BRT_UPLOAD_RING_SLOTS + 1) * BRT_UPLOAD_RING_SLOT);
	/* Later calls keep failing, and nothing more is stored. */
	CHECK_EQ_INT(brt_upload_ring_put(ring, data, 65536), BRT_EIO);
	CHECK_EQ_INT(brt_upload_ring_drain(ring), BRT_EIO);
	stores = s.stores;
	brt_upload_ring_free(ring);
	CHECK_EQ_INT(s.stores, stores);
	free(data);
}

static void test_free_mid_body(void)
{
	size_t total = 6 * BRT_UPLOAD_RING_SLOT + 5;
	unsigned char *data = pattern(total, 9);
	brt_upload_ring *ring = NULL;
	sink s = {0};

	CHECK_EQ_INT(brt_upload_ring_new(&ring, sink_hash, sink_store, &s), 0);
	CHECK_EQ_INT(brt_upload_ring_put(ring, data, total), 0);
	brt_upload_ring_free(ring); /* no drain: the client went away */
	CHECK(s.stored <= total);
	CHECK(s.stored % BRT_UPLOAD_RING_SLOT == 0);
	free(data);
}

static void test_limit(void)
{
	brt_upload_ring *rings[BRT_UPLOAD_RING_MAX + 1];
	sink s = {0};
	int n = 0;

	memset(rings, 0, sizeof(rings));
	while (n < BRT_UPLOAD_RING_MAX && brt_upload_ring_new(&rings[n], sink_hash, sink_store, &s) == 0)
		n++;
	CHECK_EQ_INT(n, BRT_UPLOAD_RING_MAX);
	CHECK_EQ_INT(brt_upload_ring_new(&rings[n], sink_hash, sink_store, &s), BRT_ELIMIT);
	brt_upload_ring_free(rings[0]);
	CHECK_EQ_INT(brt_upload_ring_new(&rings[0], sink_hash, sink_store, &s), 0);
	for (int i = 0; i < n; i++)
		brt_upload_ring_free(rings[i]);
}

/* A 5 MiB + 3 byte body through brt_blob_upload over the filesystem
 * store: committed, it reads back byte-exact and hashes to its digest. */
static void test_blob_upload_fs(void)
{
	char root[] = "/tmp/berth-ring-XXXXXX", key[BRT_BLOB_KEY_MAX];
	size_t total = 5 * BRT_UPLOAD_RING_SLOT + 3;
	unsigned char *data = pattern(total, 11), *back = malloc(total);
	unsigned char hash_state[BRT_HASHER_STATE_MAX];
	const unsigned char *state;
	size_t hash_len, state_len;
	brt_blobstore *store = NULL;
	brt_blob_upload *upload = NULL;
	brt_blob_reader *reader = NULL;
	brt_hasher h;
	brt_digest want, got;
	uint64_t size = 0, len = 0;
	size_t n;

	brt_hasher_init(&h, BRT_DIGEST_SHA256);
	brt_hasher_update(&h, data, total);
	brt_hasher_final(&h, &want);
	CHECK(mkdtemp(root) != NULL);
	CHECK_EQ_INT(brt_blobstore_fs_open(&store, root), 0);
	CHECK_EQ_INT(brt_blob_upload_open(&upload, store, "0123456789abcdef0123456789abcdef",
					  (uint64_t)1 << 40, BRT_DIGEST_SHA256, NULL),
		     0);
	brt_blob_upload_expect(upload, (int64_t)total);
	for (size_t at = 0; at < total; at += 40000)
		CHECK_EQ_INT(brt_blob_upload_write(upload, data + at,
						   total - at < 40000 ? total - at : 40000),
			     0);
	CHECK_EQ_INT(brt_blob_upload_size(upload), total);
	CHECK_EQ_INT(brt_blob_upload_save(upload, hash_state, &hash_len, &state, &state_len), 0);
	CHECK_EQ_INT(brt_blob_upload_check(upload, &want), 0);
	CHECK_EQ_INT(brt_blob_upload_commit(upload, &want, key, &size), 0);
	CHECK_EQ_INT(size, total);
	CHECK_EQ_INT(brt_blobstore_reader_open(&reader, store, key, 0), 0);
	while (reader && len < total && reader->read(reader, back + len, total - len, &n) == 0 && n > 0)
		len += n;
	if (reader)
		reader->free(reader);
	CHECK_EQ_INT(len, total);
	CHECK(memcmp(back, data, total) == 0);
	CHECK_EQ_INT(brt_blob_rehash(&got, NULL, store, key, BRT_DIGEST_SHA256, back, total), 0);
	CHECK_EQ_STR(got.str, want.str);
	brt_blob_upload_free(upload);
	brt_blobstore_free(store);
	free(data);
	free(back);
	{
		char cmd[64];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
		CHECK_EQ_INT(system(cmd), 0);
	}
}

int main(void)
{
	test_orders();
	test_store_failure();
	test_free_mid_body();
	test_limit();
	test_blob_upload_fs();
	return check_exit("test_upload_ring");
}
