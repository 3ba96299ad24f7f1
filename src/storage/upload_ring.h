/* The ring that carries a large upload body from the thread receiving it
 * to two workers: one hashes, one appends to the blob store, each in
 * order, both at once, on other cores than the receiver.  The receiver
 * only copies into page-aligned slots (what O_DIRECT writes need), so a
 * body costs one copy in user space and none in the page cache; memory
 * stays at the ring's size however large the body, and a full ring holds
 * the receiver back (the disk paces the client).  A bounded number of
 * rings exist server-wide; an upload that finds none streams without one.
 * Used by storage/blob_upload.c only. */
#ifndef BRT_STORAGE_UPLOAD_RING_H
#define BRT_STORAGE_UPLOAD_RING_H

#include <stddef.h>

/* One slot: the unit handed to the workers and the size of each store
 * append (a multiple of the page size). */
#define BRT_UPLOAD_RING_SLOT ((size_t)1 << 20)
/* Slots per ring. */
#define BRT_UPLOAD_RING_SLOTS 4
/* Rings in use at once, server-wide (each BRT_UPLOAD_RING_SLOT *
 * BRT_UPLOAD_RING_SLOTS bytes and two threads while in use). */
#define BRT_UPLOAD_RING_MAX 32

typedef struct brt_upload_ring brt_upload_ring;

/* Run on the hashing worker for each slot, in order. */
typedef void (*brt_upload_ring_hash_cb)(const void *data, size_t len, void *payload);
/* Run on the storing worker for each slot, in order; a negative code
 * stops the ring (every later put and drain returns it, with the
 * detail). */
typedef int (*brt_upload_ring_store_cb)(const void *data, size_t len, void *payload);

/* A ring that feeds `hash` and `store`.  No thread starts before a slot
 * is full, so a small body costs one mapping.  BRT_ELIMIT when every ring
 * of the server is in use (stream without one), BRT_ENOMEM. */
int brt_upload_ring_new(brt_upload_ring **out, brt_upload_ring_hash_cb hash, brt_upload_ring_store_cb store,
			void *payload);

/* Copy `len` bytes in, waiting for free slots.  The store's error if it
 * failed (now or on an earlier slot). */
int brt_upload_ring_put(brt_upload_ring *ring, const void *data, size_t len);

/* Hand over the partial slot and wait until every byte put was hashed and
 * stored.  The store's error if it failed. */
int brt_upload_ring_drain(brt_upload_ring *ring);

/* Stop the workers (a slot being stored is finished first) and free the
 * ring.  Accepts NULL. */
void brt_upload_ring_free(brt_upload_ring *ring);

#endif
