/* The upload ring (see upload_ring.h).  Slots are numbered by a running
 * sequence: `filled` counts the slots handed over, `hashed` and `stored`
 * what each worker finished; slot n lives at index n % SLOTS and may be
 * filled again once both workers are past it.  The receiver owns the slot
 * it fills without the lock; the lock orders the hand-over. */
#include "storage/upload_ring.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/error.h"

/* The workers only hash and write: a small stack is plenty. */
#define WORKER_STACK ((size_t)256 << 10)

static _Atomic int rings_in_use;

struct brt_upload_ring {
	pthread_mutex_t lock;
	pthread_cond_t work; /* a slot was handed over, or stop */
	pthread_cond_t done; /* a worker finished a slot */
	unsigned char *slots;
	size_t len[BRT_UPLOAD_RING_SLOTS];
	uint64_t filled, hashed, stored;
	size_t fill; /* bytes in the slot being filled */
	int stop;
	int error; /* the store's first failure */
	char detail[512];
	/* 0: no worker yet; 1: both run; -1: they could not start, the
	 * receiver hashes and stores itself. */
	int workers;
	pthread_t hasher, storer;
	brt_upload_ring_hash_cb hash;
	brt_upload_ring_store_cb store;
	void *payload;
};

static unsigned char *slot_at(brt_upload_ring *ring, uint64_t n)
{
	return ring->slots + (size_t)(n % BRT_UPLOAD_RING_SLOTS) * BRT_UPLOAD_RING_SLOT;
}

/* With the lock held. */
static void record_failure(brt_upload_ring *ring, int error)
{
	if (ring->error)
		return;
	ring->error = error;
	snprintf(ring->detail, sizeof(ring->detail), "%s", brt_error_last());
}

/* One worker: run `cb` on every slot handed over, in order, advancing
 * *done; the storer skips the work once a store failed.  Slots that are
 * ready and lie next to each other in the mapping go in one call: when
 * the disk is the slower side the ring fills up, and then it gets writes
 * of several MiB, which it takes faster than 1 MiB ones. */
static void work(brt_upload_ring *ring, uint64_t *done, int storing)
{
	pthread_mutex_lock(&ring->lock);
	for (;;) {
		uint64_t n, end;
		size_t len;
		int error = 0;

		while (*done == ring->filled && !ring->stop)
			pthread_cond_wait(&ring->work, &ring->lock);
		if (ring->stop)
			break;
		n = *done;
		len = ring->len[n % BRT_UPLOAD_RING_SLOTS];
		/* Only a full slot may be followed by another one. */
		for (end = n + 1; end < ring->filled && (end % BRT_UPLOAD_RING_SLOTS) != 0 &&
				  ring->len[(end - 1) % BRT_UPLOAD_RING_SLOTS] == BRT_UPLOAD_RING_SLOT;
		     end++)
			len += ring->len[end % BRT_UPLOAD_RING_SLOTS];
		if (storing && ring->error)
			len = 0;
		pthread_mutex_unlock(&ring->lock);
		if (len > 0) {
			if (storing)
				error = ring->store(slot_at(ring, n), len, ring->payload);
			else
				ring->hash(slot_at(ring, n), len, ring->payload);
		}
		pthread_mutex_lock(&ring->lock);
		if (error < 0)
			record_failure(ring, error);
		*done = end;
		pthread_cond_broadcast(&ring->done);
	}
	pthread_mutex_unlock(&ring->lock);
}

static void *hash_worker(void *arg)
{
	brt_upload_ring *ring = arg;

	work(ring, &ring->hashed, 0);
	return NULL;
}

static void *store_worker(void *arg)
{
	brt_upload_ring *ring = arg;

	work(ring, &ring->stored, 1);
	return NULL;
}

int brt_upload_ring_new(brt_upload_ring **out, brt_upload_ring_hash_cb hash, brt_upload_ring_store_cb store,
			void *payload)
{
	brt_upload_ring *ring;
	void *slots;

	*out = NULL;
	if (atomic_fetch_add(&rings_in_use, 1) >= BRT_UPLOAD_RING_MAX) {
		atomic_fetch_sub(&rings_in_use, 1);
		return brt_error_set(BRT_ELIMIT, "every upload ring is in use");
	}
	/* A mapping of its own: page-aligned, and its memory goes back to the
	 * system when the upload ends, whatever the allocator keeps. */
	slots = mmap(NULL, (size_t)BRT_UPLOAD_RING_SLOTS * BRT_UPLOAD_RING_SLOT, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (slots == MAP_FAILED || !(ring = calloc(1, sizeof(*ring)))) {
		if (slots != MAP_FAILED)
			munmap(slots, (size_t)BRT_UPLOAD_RING_SLOTS * BRT_UPLOAD_RING_SLOT);
		atomic_fetch_sub(&rings_in_use, 1);
		return brt_error_set(BRT_ENOMEM, "out of memory for an upload ring");
	}
	ring->slots = slots;
	ring->hash = hash;
	ring->store = store;
	ring->payload = payload;
	pthread_mutex_init(&ring->lock, NULL);
	pthread_cond_init(&ring->work, NULL);
	pthread_cond_init(&ring->done, NULL);
	*out = ring;
	return 0;
}

static void start_workers(brt_upload_ring *ring)
{
	pthread_attr_t attr;

	ring->workers = -1;
	if (pthread_attr_init(&attr) != 0)
		return;
	pthread_attr_setstacksize(&attr, WORKER_STACK);
	if (pthread_create(&ring->hasher, &attr, hash_worker, ring) == 0) {
		if (pthread_create(&ring->storer, &attr, store_worker, ring) == 0) {
			ring->workers = 1;
		} else {
			/* Without a storer the ring runs inline: the hasher goes. */
			pthread_mutex_lock(&ring->lock);
			ring->stop = 1;
			pthread_cond_broadcast(&ring->work);
			pthread_mutex_unlock(&ring->lock);
			pthread_join(ring->hasher, NULL);
			ring->stop = 0;
		}
	}
	pthread_attr_destroy(&attr);
}

/* The store's failure, raised again in the calling thread. */
static int failure(brt_upload_ring *ring)
{
	return brt_error_set(ring->error, "%s", ring->detail);
}

/* Hand the slot being filled to the workers, started now if `start` (the
 * last slot of a body that never filled one is done inline instead). */
static int hand_over(brt_upload_ring *ring, int start)
{
	uint64_t n = ring->filled;
	int error;

	if (ring->workers == 0 && start)
		start_workers(ring);
	if (ring->workers <= 0) {
		ring->hash(slot_at(ring, n), ring->fill, ring->payload);
		if (!ring->error && (error = ring->store(slot_at(ring, n), ring->fill, ring->payload)) < 0)
			record_failure(ring, error);
		ring->filled = ring->hashed = ring->stored = n + 1;
		error = ring->error;
	} else {
		pthread_mutex_lock(&ring->lock);
		ring->len[n % BRT_UPLOAD_RING_SLOTS] = ring->fill;
		ring->filled = n + 1;
		pthread_cond_broadcast(&ring->work);
		error = ring->error;
		pthread_mutex_unlock(&ring->lock);
	}
	ring->fill = 0;
	return error ? failure(ring) : 0;
}

int brt_upload_ring_put(brt_upload_ring *ring, const void *data, size_t len)
{
	const unsigned char *p = data;
	int error;

	while (len > 0) {
		size_t n;

		if (ring->fill == 0) {
			if (ring->workers > 0) {
				/* The next slot is free once both workers are
				 * past it. */
				pthread_mutex_lock(&ring->lock);
				while (!ring->error &&
				       (ring->filled - ring->hashed >= BRT_UPLOAD_RING_SLOTS ||
					ring->filled - ring->stored >= BRT_UPLOAD_RING_SLOTS))
					pthread_cond_wait(&ring->done, &ring->lock);
				error = ring->error;
				pthread_mutex_unlock(&ring->lock);
			} else {
				error = ring->error;
			}
			if (error)
				return failure(ring);
		}
		n = BRT_UPLOAD_RING_SLOT - ring->fill;
		if (n > len)
			n = len;
		memcpy(slot_at(ring, ring->filled) + ring->fill, p, n);
		ring->fill += n;
		p += n;
		len -= n;
		if (ring->fill == BRT_UPLOAD_RING_SLOT && (error = hand_over(ring, 1)) < 0)
			return error;
	}
	return 0;
}

int brt_upload_ring_drain(brt_upload_ring *ring)
{
	int error;

	if (ring->fill > 0 && (error = hand_over(ring, 0)) < 0)
		return error;
	if (ring->workers <= 0)
		return ring->error ? failure(ring) : 0;
	pthread_mutex_lock(&ring->lock);
	while (ring->hashed < ring->filled || ring->stored < ring->filled)
		pthread_cond_wait(&ring->done, &ring->lock);
	error = ring->error;
	pthread_mutex_unlock(&ring->lock);
	return error ? failure(ring) : 0;
}

void brt_upload_ring_free(brt_upload_ring *ring)
{
	if (!ring)
		return;
	if (ring->workers > 0) {
		pthread_mutex_lock(&ring->lock);
		ring->stop = 1;
		pthread_cond_broadcast(&ring->work);
		pthread_mutex_unlock(&ring->lock);
		pthread_join(ring->hasher, NULL);
		pthread_join(ring->storer, NULL);
	}
	pthread_cond_destroy(&ring->work);
	pthread_cond_destroy(&ring->done);
	pthread_mutex_destroy(&ring->lock);
	munmap(ring->slots, (size_t)BRT_UPLOAD_RING_SLOTS * BRT_UPLOAD_RING_SLOT);
	atomic_fetch_sub(&rings_in_use, 1);
	free(ring);
}
