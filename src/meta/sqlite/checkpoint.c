/* WAL checkpoints off the request path.  SQLite's automatic checkpoint
 * runs inside the commit that finds the log over 1 000 pages, and syncs
 * the database file there: measured on a chunked push, one PATCH in ~500
 * waited 250-460 ms for it.  Here every connection of the store reports
 * the log's size after its commits (sqlite3_wal_hook, which also turns
 * the automatic checkpoint off), and past the threshold one thread of the
 * store, started on first need with a connection of its own, runs a
 * PASSIVE checkpoint: it copies what it can without waiting for readers
 * or writers, so commits go on meanwhile.  Once everything is copied, the
 * next writer starts the log over from its beginning. */
#include "meta/sqlite/internal.h"

#include <string.h>

#include "common/error.h"
#include "common/log.h"

/* Log pages after which a checkpoint is wanted (SQLite's own default). */
#define CHECKPOINT_PAGES 1000

static void checkpoint_once(sqlite_store *s, sqlite3 **db)
{
	int rc;

	if (!*db) {
		rc = sqlite3_open_v2(s->path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
		if (rc != SQLITE_OK) {
			brt_log_warn("sqlite: cannot open %s to checkpoint: %s", s->path,
				     *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
			sqlite3_close_v2(*db);
			*db = NULL;
			return;
		}
		/* It reads log frames and writes database pages: no cache. */
		(void)brt_sqlite_db_exec(*db, "PRAGMA cache_size = -64");
	}
	rc = sqlite3_wal_checkpoint_v2(*db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
		brt_log_warn("sqlite: checkpoint of %s: %s", s->path, sqlite3_errmsg(*db));
}

static void *checkpointer(void *arg)
{
	sqlite_store *s = arg;
	checkpoint_state *k = &s->checkpoint;
	sqlite3 *db = NULL;

	pthread_mutex_lock(&k->lock);
	for (;;) {
		while (!k->pending && !k->stopping)
			pthread_cond_wait(&k->wake, &k->lock);
		if (k->stopping)
			break;
		k->pending = 0;
		pthread_mutex_unlock(&k->lock);
		checkpoint_once(s, &db);
		pthread_mutex_lock(&k->lock);
	}
	pthread_mutex_unlock(&k->lock);
	sqlite3_close_v2(db);
	return NULL;
}

/* After every commit on a connection of the store, with the log's size. */
static int on_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
	sqlite_store *s = arg;
	checkpoint_state *k = &s->checkpoint;
	int inline_checkpoint = 0;

	(void)name;
	if (pages < CHECKPOINT_PAGES)
		return SQLITE_OK;
	pthread_mutex_lock(&k->lock);
	if (!k->stopping) {
		k->pending = 1;
		if (!k->started)
			k->started = pthread_create(&k->thread, NULL, checkpointer, s) == 0 ? 1 : -1;
		if (k->started > 0)
			pthread_cond_signal(&k->wake);
		else
			inline_checkpoint = 1; /* no thread: as SQLite would */
	}
	pthread_mutex_unlock(&k->lock);
	if (inline_checkpoint)
		(void)sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

void brt_sqlite_checkpoint_init(sqlite_store *s)
{
	memset(&s->checkpoint, 0, sizeof(s->checkpoint));
	pthread_mutex_init(&s->checkpoint.lock, NULL);
	pthread_cond_init(&s->checkpoint.wake, NULL);
}

void brt_sqlite_checkpoint_watch(sqlite_store *s, sqlite3 *db)
{
	sqlite3_wal_hook(db, on_commit, s);
}

void brt_sqlite_checkpoint_stop(sqlite_store *s)
{
	checkpoint_state *k = &s->checkpoint;

	pthread_mutex_lock(&k->lock);
	k->stopping = 1;
	pthread_cond_signal(&k->wake);
	pthread_mutex_unlock(&k->lock);
	if (k->started > 0)
		pthread_join(k->thread, NULL);
	pthread_cond_destroy(&k->wake);
	pthread_mutex_destroy(&k->lock);
}
