/* The SQLite driver's key epoch: the row every revocation bumps in its
 * own transaction, cached per connection and re-read only when PRAGMA
 * data_version or the store's shared hint counter says something
 * changed. */
#include "meta/sqlite/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

/* The epoch row is the truth: a revocation bumps it in its own
 * transaction, so no crash can separate the two.  Reading it costs a read
 * transaction (PRAGMA data_version takes and drops a lock: several system
 * calls), too much for every request, so a connection keeps the epoch it
 * read and trusts it while the store's hint counter (bumped by the
 * revoking process right after its commit, in shared memory) has not moved
 * and for at most EPOCH_RECHECK_MS.  A revocation is thus seen on the next
 * request; if the revoking process died between its commit and the bump,
 * within EPOCH_RECHECK_MS. */
#define EPOCH_RECHECK_MS 1000

void brt_sqlite_epoch_hint_map(sqlite_store *s)
{
	char path[4096];
	struct stat st;
	void *p;
	int fd;

	if (snprintf(path, sizeof(path), "%s-keys", s->path) >= (int)sizeof(path))
		return;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		goto fail;
	if (fstat(fd, &st) != 0 || (st.st_size < (off_t)sizeof(uint64_t) && ftruncate(fd, 4096) != 0)) {
		close(fd);
		goto fail;
	}
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		goto fail;
	s->epoch_hint = p;
	return;
fail:
	brt_log_warn("sqlite: no key epoch hint at %s (%s): every authentication reads the database", path,
		     strerror(errno));
}

void brt_sqlite_epoch_hint_unmap(sqlite_store *s)
{
	if (s->epoch_hint)
		munmap((void *)s->epoch_hint, 4096);
	s->epoch_hint = NULL;
}

static int key_epoch_read(sqlite_conn *c, uint64_t *out)
{
	sqlite_store *s = c->store;
	sqlite3_stmt *st = brt_sqlite_stmt(c, BRT_SQL_DATA_VERSION);
	int64_t version = 0, value = 0, now = brt_monotonic_coarse_ms();
	uint64_t hint = 0;
	int error, row;

	if (s && s->epoch_hint) {
		/* Loaded before any read: a bump after it is seen next time. */
		hint = atomic_load(s->epoch_hint);
		if (c->epoch_known && hint == c->hint_seen && now - c->checked_ms < EPOCH_RECHECK_MS) {
			*out = c->epoch;
			return 0;
		}
	}
	if ((error = brt_sqlite_step(c, st, &row)) == 0 && row)
		version = sqlite3_column_int64(st, 0);
	brt_sqlite_end(st);
	if (error < 0)
		return error;
	c->hint_seen = hint;
	c->checked_ms = now;
	if (c->epoch_known && version == c->data_version) {
		*out = c->epoch;
		return 0;
	}
	/* Read after the version: the epoch is at least as new as it, so a
	 * commit in between costs one more read, never a stale epoch. */
	st = brt_sqlite_stmt(c, BRT_SQL_EPOCH_GET);
	if ((error = brt_sqlite_step(c, st, &row)) == 0 && row)
		value = sqlite3_column_int64(st, 0);
	brt_sqlite_end(st);
	if (error < 0)
		return error;
	c->data_version = version;
	c->epoch = (uint64_t)value;
	c->epoch_known = 1;
	*out = c->epoch;
	return 0;
}

uint64_t brt_sqlite_key_epoch(brt_meta *m)
{
	/* Epochs from the store stay far below 2^63; failures count down
	 * from the top, so none repeats and none equals a real epoch. */
	static uint64_t failures;
	sqlite_conn *c;
	uint64_t epoch;

	if (brt_sqlite_conn_get(&c, m) == 0 && key_epoch_read(c, &epoch) == 0)
		return epoch;
	return UINT64_MAX - __atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
}
