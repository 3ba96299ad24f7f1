/* What the files of the SQLite metadata driver share: the store and
 * per-thread connection structs, the connection registry, the engine
 * (brt_sql_engine) and write machinery (conn.c), the WAL checkpointer
 * (checkpoint.c) and the key epoch cache (epoch.c).  The slots themselves
 * are the shared ones of src/meta/sql/. */
#ifndef BRT_META_SQLITE_INTERNAL_H
#define BRT_META_SQLITE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "meta/meta.h"
#include "meta/sql/schema.h"
#include "meta/sql/slots.h"

typedef struct sqlite_store sqlite_store;
typedef struct sqlite_conn sqlite_conn;

/* A prepared statement as the shared slots see it. */
typedef struct sqlite_statement {
	brt_sql_statement base;
	sqlite3_stmt *st; /* NULL until prepared */
} sqlite_statement;

/* One thread's connection to one store.  It sits on two lists: its
 * thread's (walked without a lock, only by that thread) and its store's
 * (under registry_lock, so that freeing the store can close connections of
 * threads that are still alive). */
struct sqlite_conn {
	brt_sql_conn base;
	sqlite_conn *thread_next;
	sqlite_conn *store_next; /* registry_lock */
	sqlite_store *store;     /* registry_lock; NULL once the store is gone */
	uint64_t serial;         /* of the store; immutable */
	sqlite3 *db;
	int busy;    /* the last error was SQLITE_BUSY/LOCKED */
	int last_rc; /* extended code of the last error */
	/* synchronous is NORMAL (run_write_lazy in conn.c could not set it
	 * back): the next durable write sets it first or fails. */
	int lazy_sync;
	/* key_epoch's cache: the epoch row as read when PRAGMA data_version
	 * was `data_version` and the store's change hint was `hint_seen`, at
	 * `checked_ms` (coarse monotonic); epoch_known = 0 forces a read. */
	int epoch_known;
	int64_t data_version;
	uint64_t epoch;
	uint64_t hint_seen;
	int64_t checked_ms;
	/* Prepared statements by id, NULL until brt_sqlite_stmt() (or
	 * brt_sqlite_conn_prepare) prepares them. */
	sqlite_statement stmt[BRT_SQL_COUNT];
	/* The error of the last failed prepare, which the engine's bind and
	 * step return when handed its NULL statement. */
	int prepare_error;
};

/* SQLite admits one writer at a time, and a writer that finds the lock
 * taken sleep-polls (naps of up to 100 ms) while the thread that just
 * committed takes it straight back: measured with 4 threads, two of them
 * waited over 2 s and would hit busy_timeout under sustained load.  So the
 * threads of this process queue for the write lock in arrival order; this
 * serialises nothing that SQLite does not already serialise, and readers
 * never touch it.  Other processes are still waited out by busy_timeout. */
typedef struct write_gate {
	pthread_mutex_t lock;
	pthread_cond_t turn;
	uint64_t next_ticket;
	uint64_t now_serving;
} write_gate;

/* The store's checkpointer (checkpoint.c). */
typedef struct checkpoint_state {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	int started; /* 1: the thread runs; -1: it could not start; 0: not yet */
	int pending; /* a checkpoint is wanted */
	int stopping;
} checkpoint_state;

struct sqlite_store {
	brt_sql_store base;
	char *path;
	/* A counter in a file mapped by every process using the database
	 * (<path>-keys), bumped after each revocation commits: a hint that
	 * lets key_epoch skip the database while nothing changed.  The epoch
	 * row stays the truth (see accounts.c).  NULL: no hint, always ask. */
	_Atomic uint64_t *epoch_hint;
	sqlite_conn *conns; /* registry_lock */
	write_gate gate;
	checkpoint_state checkpoint;
};

/* --- checkpoint.c: WAL checkpoints in a thread of their own --- */
void brt_sqlite_checkpoint_init(sqlite_store *s);
/* Report `db`'s commits to the checkpointer instead of checkpointing in
 * them. */
void brt_sqlite_checkpoint_watch(sqlite_store *s, sqlite3 *db);
/* Stop the checkpointer (before the store's connections close). */
void brt_sqlite_checkpoint_stop(sqlite_store *s);

/* --- conn.c: connections, statements, write transactions --- */

int brt_sqlite_db_error(sqlite_conn *c, int rc);

int brt_sqlite_db_exec(sqlite3 *db, const char *sql);

/* One step; *row_out says whether a row is there to read. */
int brt_sqlite_step(sqlite_conn *c, sqlite3_stmt *st, int *row_out);

/* Make a statement reusable and drop the borrowed bindings; resetting also
 * ends the statement's implicit read transaction, which would otherwise
 * hold back WAL checkpoints. */
void brt_sqlite_end(sqlite3_stmt *st);

int brt_sqlite_run(sqlite_conn *c, enum brt_sql_stmt id);

/* Statement `id` of `c`, prepared on first use and kept until the
 * connection closes (one connection per thread, so no lock).  NULL if it
 * cannot be prepared: the detail is the thread's last error (also kept
 * in c->prepare_error, which the engine's bind and step return when
 * handed the NULL).  Borrowed. */
sqlite3_stmt *brt_sqlite_stmt(sqlite_conn *c, enum brt_sql_stmt id);

int brt_sqlite_conn_open(sqlite_conn **out, const char *path, uint64_t serial);

/* Prepare every statement now (the store's open does, so that a broken one
 * fails there rather than on some request). */
int brt_sqlite_conn_prepare(sqlite_conn *c);

void brt_sqlite_conn_close(sqlite_conn *c);

/* The calling thread's connection to `m`, opened on first use. */
int brt_sqlite_conn_get(sqlite_conn **out, brt_meta *m);

/* The engine the shared slots run on (brt_sql_engine): write
 * transactions with retries while the database stays locked, lazy commits
 * through synchronous = NORMAL, the cache sizes, the epoch hint. */
extern const brt_sql_engine brt_sqlite_engine;

/* Close every thread's connection: all threads are done with the store,
 * but some may live on and hold it in their lists. */
void brt_sqlite_conns_release(sqlite_store *s);

/* Once per process: the key of the per-thread connection lists. */
int brt_sqlite_registry_init(void);

/* --- epoch.c: the key epoch --- */

/* The key_epoch slot. */
uint64_t brt_sqlite_key_epoch(brt_meta *m);

/* Map the store's epoch hint (s->epoch_hint stays NULL if the file cannot
 * be mapped: key_epoch then reads the database every time), and unmap it. */
void brt_sqlite_epoch_hint_map(sqlite_store *s);
void brt_sqlite_epoch_hint_unmap(sqlite_store *s);

#endif
