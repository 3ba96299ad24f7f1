/* What the files of the SQLite metadata driver share: the store and
 * per-thread connection structs, the connection registry and write
 * machinery (conn.c), row helpers (rows.c), and the functions each slot
 * family file uses to fill its slots of brt_meta. */
#ifndef BRT_META_SQLITE_INTERNAL_H
#define BRT_META_SQLITE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "meta/meta.h"
#include "meta/sql/schema.h"

typedef struct sqlite_store sqlite_store;
typedef struct sqlite_conn sqlite_conn;

/* One thread's connection to one store.  It sits on two lists: its
 * thread's (walked without a lock, only by that thread) and its store's
 * (under registry_lock, so that freeing the store can close connections of
 * threads that are still alive). */
struct sqlite_conn {
	sqlite_conn *thread_next;
	sqlite_conn *store_next; /* registry_lock */
	sqlite_store *store;     /* registry_lock; NULL once the store is gone */
	uint64_t serial;         /* of the store; immutable */
	sqlite3 *db;
	int busy;    /* the last error was SQLITE_BUSY/LOCKED */
	int last_rc; /* extended code of the last error */
	/* synchronous is NORMAL (brt_sqlite_run_write_lazy could not set it
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
	sqlite3_stmt *stmt[BRT_SQL_COUNT];
	/* The error of the last failed prepare, which brt_sqlite_bind and
	 * brt_sqlite_step return when handed its NULL statement. */
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
	brt_meta base;
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

/* What one listing may collect in memory before it gives up. */
#define BRT_SQLITE_LISTING_MAX ((size_t)64 << 20)

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

/* Bind parameters 1.. in order.  Types: 't' text (NULL binds NULL),
 * 'i' int64_t, 'z' int64_t where 0 binds NULL (an optional time),
 * 'u' uint64_t (must fit int64), 'b' blob as pointer and size_t (NULL
 * pointer binds NULL).  Values are borrowed until reset. */
int brt_sqlite_bind(sqlite_conn *c, sqlite3_stmt *st, const char *types, ...);

/* One step; *row_out says whether a row is there to read. */
int brt_sqlite_step(sqlite_conn *c, sqlite3_stmt *st, int *row_out);

/* Make a statement reusable and drop the borrowed bindings; resetting also
 * ends the statement's implicit read transaction, which would otherwise
 * hold back WAL checkpoints. */
void brt_sqlite_end(sqlite3_stmt *st);

int brt_sqlite_run(sqlite_conn *c, enum brt_sql_stmt id);

/* Statement `id` of `c`, prepared on first use and kept until the
 * connection closes (one connection per thread, so no lock).  NULL if it
 * cannot be prepared: the detail is the thread's last error, and
 * brt_sqlite_bind and brt_sqlite_step handed that NULL return its code
 * (BRT_EIO, BRT_ENOMEM), so `brt_sqlite_bind(c, brt_sqlite_stmt(c, id),
 * ...)` needs no check of its own.  Borrowed. */
sqlite3_stmt *brt_sqlite_stmt(sqlite_conn *c, enum brt_sql_stmt id);

int brt_sqlite_conn_open(sqlite_conn **out, const char *path, uint64_t serial);

/* Prepare every statement now (the store's open does, so that a broken one
 * fails there rather than on some request). */
int brt_sqlite_conn_prepare(sqlite_conn *c);

void brt_sqlite_conn_close(sqlite_conn *c);

/* The calling thread's connection to `m`, opened on first use. */
int brt_sqlite_conn_get(sqlite_conn **out, brt_meta *m);

/* Run `fn` in one write transaction, again if the database stayed locked. */
int brt_sqlite_run_write(brt_meta *m, int (*fn)(sqlite_conn *c, void *ctx), void *ctx);

/* brt_sqlite_run_write whose commit does not wait for the disk: a power
 * loss may take it back (never half of it), a crash of the process does
 * not.  For writes whose loss only rewinds a state the client can redo,
 * never for anything acknowledged as stored. */
int brt_sqlite_run_write_lazy(brt_meta *m, int (*fn)(sqlite_conn *c, void *ctx), void *ctx);

/* brt_sqlite_run_write, rolled back at the end whatever `fn` did (dry
 * runs: what `fn` counted is what a real run would do). */
int brt_sqlite_run_dry(brt_meta *m, int (*fn)(sqlite_conn *c, void *ctx), void *ctx);

/* Close every thread's connection: all threads are done with the store,
 * but some may live on and hold it in their lists. */
void brt_sqlite_conns_release(sqlite_store *s);

/* Once per process: the key of the per-thread connection lists. */
int brt_sqlite_registry_init(void);

/* --- rows.c: reading rows --- */

/* Decodes the current row of a statement into a struct of the caller's. */
typedef int (*brt_sqlite_row_decoder)(sqlite_conn *c, sqlite3_stmt *st, void *out);

/* Whether a query with the given int/text parameters returns a row. */
int brt_sqlite_exists(sqlite_conn *c, enum brt_sql_stmt id, const char *types, int64_t n, const char *s,
		      int *found_out);

/* A NOT NULL text column copied into `pool`. */
int brt_sqlite_column_pool_text(sqlite_conn *c, sqlite3_stmt *st, int col, brt_pool *pool, const char **out);

/* Copy a text column into a fixed buffer; BRT_EIO if it does not fit. */
int brt_sqlite_column_copy_text(sqlite_conn *c, sqlite3_stmt *st, int col, char *out, size_t out_size);

/* A fixed-size string field of a struct handed in must end within it;
 * ids must not be empty either. */
int brt_sqlite_field_check(const char *s, size_t size, int is_id, const char *what);

/* The one row `stmt` yields for `id`, decoded into `out` (`size` bytes)
 * through `tmp` first, so a failed read leaves `out` untouched.
 * BRT_ENOTFOUND ("<what> <id> unknown") when there is none. */
int brt_sqlite_get_by_id(brt_meta *m, int stmt, const char *id, brt_sqlite_row_decoder decode, void *tmp,
			 void *out, size_t size, const char *what);

/* Every row of `stmt` (already bound, or bound to `arg` when not NULL),
 * decoded through `tmp` into an array of `size`-byte structs; then, with the statement
 * reset so the callback may use the store, `cb` for each until one
 * returns non-zero (returned unchanged). */
int brt_sqlite_list_rows(sqlite_conn *c, int stmt, const char *arg, brt_sqlite_row_decoder decode, void *tmp,
			 size_t size, int (*cb)(const void *row, void *payload), void *payload);

/* A listing's typed callback and its payload, for brt_sqlite_list_rows. */
struct brt_sqlite_typed_cb {
	brt_meta_account_cb account;
	brt_meta_key_cb key;
	brt_meta_upload_cb upload;
	void *payload;
};

/* --- repos.c, uploads.c, accounts.c: the slots, by family --- */

/* Inside a write transaction: the repository's id, creating it for
 * `account` if needed. */
int brt_sqlite_repo_ensure(sqlite_conn *c, const char *repo, const char *account, int64_t now,
			   int64_t *id_out);

/* Inside a write transaction: `delta` manifests or blob links (+1 on an
 * insert, minus the rows a delete removed) came to or left repository
 * `repo_id`.  Its `contents` must move in the same transaction as every
 * such row (a cascade from repositories takes the count with the row);
 * `listed`, which puts it in the catalog, follows when the count leaves
 * or reaches 0.  BRT_EIO if the repository is gone. */
int brt_sqlite_repo_contents(sqlite_conn *c, int64_t repo_id, int64_t delta);

/* --- gc.c: review queues, collection, the outbox, usage and quotas.
 * The queue and charge helpers run inside the caller's write
 * transaction. --- */

/* Queue manifest `manifest_id` for review (it lost a tag or a parent). */
int brt_sqlite_gc_queue_manifest(sqlite_conn *c, int64_t manifest_id, int64_t now);

/* What a manifest row says, for the collector and deletes. */
typedef struct brt_sqlite_manifest_row {
	int64_t repository_id;
	char account_id[BRT_ACCOUNT_ID_LEN + 1];
	char digest[160];
	char repo[BRT_NAME_MAX + 1];
	uint64_t size;
} brt_sqlite_manifest_row;

/* The manifest's row; *found_out = 0 if there is none. */
int brt_sqlite_manifest_find(sqlite_conn *c, int64_t manifest_id, brt_sqlite_manifest_row *out,
			     int *found_out);

/* Delete manifest `manifest_id` (`row` is what it was; its tags cascade),
 * queueing its children, referrers and links at `queued_at` and giving
 * its bytes back to its account.  The caller checked that it may go. */
int brt_sqlite_manifest_drop(sqlite_conn *c, int64_t manifest_id, const brt_sqlite_manifest_row *row,
			     int64_t queued_at);

/* Delete tag `tag` of repository `repo_id` and queue the manifest it
 * pointed at; *removed_out = 0 if there was no such tag. */
int brt_sqlite_tag_remove(sqlite_conn *c, int64_t repo_id, const char *tag, int64_t now, int *removed_out);

/* Remove manifest `manifest_id` if no tag and no index of its repository
 * points at it (else *removed_out = 0): its children, referrers and links
 * are queued, its bytes returned to its account, and it is reported
 * through params->cb and `counts`. */
int brt_sqlite_gc_manifest_remove(sqlite_conn *c, int64_t manifest_id, const brt_gc_params *params,
				  brt_gc_counts *counts, int *removed_out);

/* Charge `bytes` to `account_id` (creating its row if needed), or give
 * them back (negative).  BRT_EQUOTA, naming limit and usage, if a charge
 * would go over the account's quota. */
int brt_sqlite_usage_charge(sqlite_conn *c, const char *account_id, int64_t bytes, int64_t now);

/* Add what one collection step removed to a running total. */
void brt_sqlite_gc_counts_add(brt_gc_counts *to, const brt_gc_counts *from);

/* One more link of the account to the blob (its first one charges the
 * blob's size: BRT_EQUOTA over the quota), or one fewer (its last one
 * gives the size back). */
int brt_sqlite_account_blob_add(sqlite_conn *c, const char *account, const char *digest, int64_t now);
int brt_sqlite_account_blob_release(sqlite_conn *c, const char *account, const char *digest, int64_t now);

/* --- policies.c: retention and immutable tags --- */

/* Inside a write transaction: whether a policy of `account_id` makes tag
 * `tag` of `repo` immutable.  0 if not; otherwise `code` (BRT_EIMMUTABLE
 * for a PUT that would move it, BRT_EPROTECTED for a delete) with a detail
 * naming the tag and the rule. */
int brt_sqlite_tag_guard(sqlite_conn *c, const char *account_id, const char *repo, const char *tag, int code);

/* The same for every tag pointing at manifest `manifest_id` (deleting a
 * manifest deletes its tags): BRT_EPROTECTED if one is immutable. */
int brt_sqlite_manifest_tags_guard(sqlite_conn *c, const char *account_id, const char *repo,
				   int64_t manifest_id);

/* retention_apply inside a transaction the caller holds (a dry run's). */
int brt_sqlite_retention_in_tx(sqlite_conn *c, const brt_gc_params *params, brt_gc_counts *out);

/* Each fills its family's slots of `m`. */
void brt_sqlite_repos_slots(brt_meta *m);
void brt_sqlite_gc_slots(brt_meta *m);
void brt_sqlite_policies_slots(brt_meta *m);
void brt_sqlite_uploads_slots(brt_meta *m);
void brt_sqlite_accounts_slots(brt_meta *m);

/* Map the store's epoch hint (s->epoch_hint stays NULL if the file cannot
 * be mapped: key_epoch then reads the database every time), and unmap it. */
void brt_sqlite_epoch_hint_map(sqlite_store *s);
void brt_sqlite_epoch_hint_unmap(sqlite_store *s);

#endif
