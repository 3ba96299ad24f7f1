/* The SQLite driver's connections: one per thread and store, opened on
 * first use with every statement prepared once, found again through a
 * process-wide registry, and closed when the thread or the store ends;
 * plus binding and stepping statements and running a write transaction
 * with retries.  WAL lets readers run, without any lock of ours, while one
 * writer commits, and this process's writers queue for that one write lock
 * in arrival order (see write_gate). */
#include "meta/sqlite/internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"

/* Acknowledged writes must survive power loss, so every commit syncs the
 * WAL.  Overridable at build time only to measure what FULL costs. */
#ifndef BRT_META_SQLITE_SYNCHRONOUS
#define BRT_META_SQLITE_SYNCHRONOUS "FULL"
#endif

/* A write that still finds the database locked after busy_timeout is tried
 * again this many times in all before the caller gets BRT_EIO. */
#define WRITE_ATTEMPTS 3

static void gate_enter(write_gate *g)
{
	uint64_t ticket;

	pthread_mutex_lock(&g->lock);
	ticket = g->next_ticket++;
	while (ticket != g->now_serving)
		pthread_cond_wait(&g->turn, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void gate_leave(write_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->now_serving++;
	pthread_cond_broadcast(&g->turn);
	pthread_mutex_unlock(&g->lock);
}

/* One process-wide key whose value is the thread's list of connections.
 * Stores are matched by their serial (brt_meta.serial), which is never
 * reused, so a store opened after another was freed never picks up a
 * stale connection (a pthread key per store could be reused by the next
 * store while threads still hold values for the old one). */
static pthread_key_t conn_key;
static pthread_once_t conn_key_once = PTHREAD_ONCE_INIT;
static int conn_key_error;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

void brt_sqlite_conn_close(sqlite_conn *c)
{
	size_t i;

	for (i = 0; i < BRT_SQL_COUNT; i++) {
		sqlite3_finalize(c->stmt[i].st);
		c->stmt[i].st = NULL;
	}
	sqlite3_close_v2(c->db);
	c->db = NULL;
}

static void store_forget_conn(sqlite_store *s, sqlite_conn *c)
{
	sqlite_conn **p;

	for (p = &s->conns; *p; p = &(*p)->store_next) {
		if (*p == c) {
			*p = c->store_next;
			break;
		}
	}
}

/* Thread exit: close this thread's connections to stores still open. */
static void conn_key_destroy(void *value)
{
	sqlite_conn *c = value;

	while (c) {
		sqlite_conn *next = c->thread_next;

		pthread_mutex_lock(&registry_lock);
		if (c->store) {
			store_forget_conn(c->store, c);
			brt_sqlite_conn_close(c);
		}
		pthread_mutex_unlock(&registry_lock);
		free(c);
		c = next;
	}
}

static void conn_key_init(void)
{
	conn_key_error = pthread_key_create(&conn_key, conn_key_destroy);
}

int brt_sqlite_db_error(sqlite_conn *c, int rc)
{
	int primary = rc & 0xff;

	c->last_rc = rc;
	c->busy = primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
	if (primary == SQLITE_NOMEM)
		return brt_error_set(BRT_ENOMEM, "sqlite: out of memory");
	return brt_error_set(BRT_EIO, "sqlite: %s", sqlite3_errmsg(c->db));
}

int brt_sqlite_db_exec(sqlite3 *db, const char *sql)
{
	char *message = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &message);
	int error = 0;

	if (rc != SQLITE_OK)
		error = brt_error_set(BRT_EIO, "sqlite: %s", message ? message : sqlite3_errstr(rc));
	sqlite3_free(message);
	return error;
}

/* brt_sql_engine.bind: see engine.h. */
static int engine_bind(brt_sql_conn *conn, brt_sql_statement *statement, const char *types, va_list ap)
{
	sqlite_conn *c = (sqlite_conn *)conn;
	sqlite3_stmt *st;
	int error = 0;
	int rc = SQLITE_OK;
	int i;

	if (!statement)
		return c->prepare_error;
	st = ((sqlite_statement *)statement)->st;
	for (i = 0; types[i] && rc == SQLITE_OK; i++) {
		int index = i + 1;

		switch (types[i]) {
		case 't': {
			const char *s = va_arg(ap, const char *);
			rc = s ? sqlite3_bind_text(st, index, s, -1, SQLITE_STATIC)
			       : sqlite3_bind_null(st, index);
			break;
		}
		case 'i':
			rc = sqlite3_bind_int64(st, index, va_arg(ap, int64_t));
			break;
		case 'z': {
			int64_t v = va_arg(ap, int64_t);
			rc = v ? sqlite3_bind_int64(st, index, v) : sqlite3_bind_null(st, index);
			break;
		}
		case 'u': {
			uint64_t v = va_arg(ap, uint64_t);
			if (v > INT64_MAX)
				return brt_error_set(BRT_ETOOBIG, "value %llu too large for the database",
						     (unsigned long long)v);
			rc = sqlite3_bind_int64(st, index, (sqlite3_int64)v);
			break;
		}
		case 'b': {
			const void *p = va_arg(ap, const void *);
			size_t n = va_arg(ap, size_t);
			rc = p ? sqlite3_bind_blob64(st, index, p, n, SQLITE_STATIC)
			       : sqlite3_bind_null(st, index);
			break;
		}
		default:
			return brt_error_set(BRT_EIO, "sqlite: bad bind type '%c'", types[i]);
		}
	}
	if (rc != SQLITE_OK)
		error = brt_sqlite_db_error(c, rc);
	return error;
}

/* One step; *row_out says whether a row is there to read. */
int brt_sqlite_step(sqlite_conn *c, sqlite3_stmt *st, int *row_out)
{
	int rc;

	*row_out = 0;
	if (!st)
		return c->prepare_error;
	rc = sqlite3_step(st);
	*row_out = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return 0;
	return brt_sqlite_db_error(c, rc);
}

/* Make a statement reusable and drop the borrowed bindings; resetting also
 * ends the statement's implicit read transaction, which would otherwise
 * hold back WAL checkpoints. */
void brt_sqlite_end(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

int brt_sqlite_run(sqlite_conn *c, enum brt_sql_stmt id)
{
	int row;
	sqlite3_stmt *st = brt_sqlite_stmt(c, id);
	int error = brt_sqlite_step(c, st, &row);

	brt_sqlite_end(st);
	return error;
}

/* Prepare statement `id` unless it is; 0 or the error (also kept in
 * c->prepare_error). */
static int prepare_one(sqlite_conn *c, size_t id)
{
	int rc;

	if (c->stmt[id].st)
		return 0;
	rc = sqlite3_prepare_v3(c->db, brt_sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[id].st,
				NULL);
	if (rc == SQLITE_OK)
		return 0;
	c->stmt[id].st = NULL;
	c->prepare_error = (rc & 0xff) == SQLITE_NOMEM
				   ? brt_error_set(BRT_ENOMEM, "sqlite: out of memory preparing a statement")
				   : brt_error_set(BRT_EIO, "sqlite: prepare \"%s\": %s", brt_sql_text[id],
						   sqlite3_errmsg(c->db));
	return c->prepare_error;
}

sqlite3_stmt *brt_sqlite_stmt(sqlite_conn *c, enum brt_sql_stmt id)
{
	return prepare_one(c, (size_t)id) < 0 ? NULL : c->stmt[id].st;
}

int brt_sqlite_conn_open(sqlite_conn **out, const char *path, uint64_t serial)
{
	sqlite_conn *c = NULL;
	int error = 0;
	int rc;

	*out = NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return brt_error_set(BRT_ENOMEM, "out of memory");
	c->base.engine = &brt_sqlite_engine;
	for (size_t i = 0; i < BRT_SQL_COUNT; i++)
		c->stmt[i].base.engine = &brt_sqlite_engine;
	c->serial = serial;
	rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		error = brt_error_set(BRT_EIO, "sqlite: open %s: %s", path,
				      c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		goto done;
	}
	sqlite3_extended_result_codes(c->db, 1);
	/* busy_timeout first: some pragmas read the schema, and another
	 * process may hold the lock for a moment (the last connection to close
	 * checkpoints and removes the WAL), which without it fails at once.
	 * cache_size is per connection: 512 KiB each keeps idle memory small. */
	if ((error = brt_sqlite_db_exec(c->db,
					"PRAGMA busy_timeout = 5000;"
					"PRAGMA synchronous = " BRT_META_SQLITE_SYNCHRONOUS ";"
					"PRAGMA foreign_keys = ON;"
					"PRAGMA cache_size = -512;"
					"PRAGMA temp_store = MEMORY;")) < 0)
		goto done;
	*out = c;
	c = NULL;
done:
	if (c) {
		sqlite3_close_v2(c->db);
		free(c);
	}
	return error;
}

int brt_sqlite_conn_prepare(sqlite_conn *c)
{
	size_t i;
	int error;

	for (i = 0; i < BRT_SQL_COUNT; i++)
		if ((error = prepare_one(c, i)) < 0)
			return error;
	return 0;
}

/* The calling thread's connection to `m`, opened on first use. */
int brt_sqlite_conn_get(sqlite_conn **out, brt_meta *m)
{
	sqlite_store *s = (sqlite_store *)m;
	sqlite_conn *head = pthread_getspecific(conn_key);
	sqlite_conn *c;
	int error = 0;

	for (c = head; c; c = c->thread_next) {
		if (c->serial == s->base.base.serial) {
			*out = c;
			return 0;
		}
	}
	if ((error = brt_sqlite_conn_open(&c, s->path, s->base.base.serial)) < 0)
		return error;
	brt_sqlite_checkpoint_watch(s, c->db);
	/* Statements are prepared on first use (brt_sqlite_stmt): a thread
	 * runs a few of the ~110, and each prepared one costs ~3 KiB. */
	c->thread_next = head;
	if (pthread_setspecific(conn_key, c) != 0) {
		error = brt_error_set(BRT_ENOMEM, "pthread_setspecific failed");
		goto fail;
	}
	pthread_mutex_lock(&registry_lock);
	c->store = s;
	c->store_next = s->conns;
	s->conns = c;
	pthread_mutex_unlock(&registry_lock);
	*out = c;
	return 0;
fail:
	brt_sqlite_conn_close(c);
	free(c);
	return error;
}

/* Back to syncing every commit after a lazy write (run_write_lazy). */
static int restore_sync(sqlite_conn *c)
{
	if (sqlite3_exec(c->db, "PRAGMA synchronous = " BRT_META_SQLITE_SYNCHRONOUS, NULL, NULL, NULL) !=
	    SQLITE_OK)
		return brt_error_set(BRT_EIO, "sqlite: cannot set synchronous: %s", sqlite3_errmsg(c->db));
	c->lazy_sync = 0;
	return 0;
}

/* Run `fn` in one write transaction, again if the database stayed locked;
 * `commit`: 0 rolls back, 1 commits, 2 commits with synchronous as the
 * caller set it. */
static int run_transaction(brt_meta *m, brt_sql_tx_fn fn, void *ctx, int commit)
{
	sqlite_conn *c;
	int error;
	int attempt;

	if ((error = brt_sqlite_conn_get(&c, m)) < 0)
		return error;
	if (c->lazy_sync && commit == 1 && (error = restore_sync(c)) < 0)
		return error;
	for (attempt = 1;; attempt++) {
		c->busy = 0;
		gate_enter(&((sqlite_store *)m)->gate);
		if ((error = brt_sqlite_run(c, BRT_SQL_BEGIN)) == 0) {
			error = fn(&c->base, ctx);
			if (error == 0 && commit)
				error = brt_sqlite_run(c, BRT_SQL_COMMIT);
			else if (error == 0)
				error = brt_sqlite_run(c, BRT_SQL_ROLLBACK);
			/* Some errors already rolled back; ROLLBACK then fails. */
			if (error != 0 && !sqlite3_get_autocommit(c->db)) {
				int keep_busy = c->busy;
				brt_sqlite_run(c, BRT_SQL_ROLLBACK);
				c->busy = keep_busy;
			}
		}
		gate_leave(&((sqlite_store *)m)->gate);
		if (error == 0 || !c->busy || attempt >= WRITE_ATTEMPTS)
			return error;
		{
			struct timespec pause = {0, 10000000L * attempt};
			nanosleep(&pause, NULL);
		}
	}
}

static int run_write_lazy(brt_meta *m, brt_sql_tx_fn fn, void *ctx)
{
	sqlite_conn *c;
	int error;

	/* In WAL mode only the commit's sync of the log differs; the next
	 * synced commit makes this one durable too, as the log is written in
	 * order. */
	if ((error = brt_sqlite_conn_get(&c, m)) < 0)
		return error;
	if (sqlite3_exec(c->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK)
		return run_transaction(m, fn, ctx, 1);
	c->lazy_sync = 1;
	error = run_transaction(m, fn, ctx, 2);
	(void)restore_sync(c);
	return error;
}

static int engine_run_write(brt_meta *m, brt_sql_tx_fn fn, void *ctx, enum brt_sql_tx_mode mode)
{
	switch (mode) {
	case BRT_SQL_TX_LAZY:
		return run_write_lazy(m, fn, ctx);
	case BRT_SQL_TX_DRY:
		return run_transaction(m, fn, ctx, 0);
	default:
		return run_transaction(m, fn, ctx, 1);
	}
}

/* Close every thread's connection: all threads are done with the store,
 * but some may live on and hold it in their lists. */
void brt_sqlite_conns_release(sqlite_store *s)
{
	sqlite_conn *head;
	sqlite_conn **p;
	sqlite_conn *c;

	pthread_mutex_lock(&registry_lock);
	for (c = s->conns; c; c = c->store_next) {
		brt_sqlite_conn_close(c);
		c->store = NULL;
	}
	s->conns = NULL;
	/* Other threads drop their dead entries when they exit; this one
	 * (typically the one that opened the store) does it now. */
	head = pthread_getspecific(conn_key);
	for (p = &head; *p;) {
		if (!(*p)->store) {
			sqlite_conn *dead = *p;
			*p = dead->thread_next;
			free(dead);
		} else {
			p = &(*p)->thread_next;
		}
	}
	pthread_setspecific(conn_key, head);
	pthread_mutex_unlock(&registry_lock);
}

/* Once per process: the key of the per-thread connection lists. */
int brt_sqlite_registry_init(void)
{
	pthread_once(&conn_key_once, conn_key_init);
	return conn_key_error ? brt_error_set(BRT_EIO, "pthread_key_create failed") : 0;
}

/* --- the engine table of the shared slots --- */

static int engine_conn_get(brt_sql_conn **out, brt_meta *m)
{
	sqlite_conn *c;
	int error = brt_sqlite_conn_get(&c, m);

	*out = error < 0 ? NULL : &c->base;
	return error;
}

static brt_sql_statement *engine_stmt(brt_sql_conn *conn, enum brt_sql_stmt id)
{
	sqlite_conn *c = (sqlite_conn *)conn;

	return prepare_one(c, (size_t)id) < 0 ? NULL : &c->stmt[id].base;
}

static int engine_step(brt_sql_conn *c, brt_sql_statement *st, int *row_out)
{
	if (!st) {
		*row_out = 0;
		return ((sqlite_conn *)c)->prepare_error;
	}
	return brt_sqlite_step((sqlite_conn *)c, ((sqlite_statement *)st)->st, row_out);
}

static void engine_end(brt_sql_statement *st)
{
	brt_sqlite_end(((sqlite_statement *)st)->st);
}

static int64_t engine_column_int64(brt_sql_statement *st, int col)
{
	return sqlite3_column_int64(((sqlite_statement *)st)->st, col);
}

static const unsigned char *engine_column_text(brt_sql_statement *st, int col)
{
	return sqlite3_column_text(((sqlite_statement *)st)->st, col);
}

static const void *engine_column_blob(brt_sql_statement *st, int col)
{
	return sqlite3_column_blob(((sqlite_statement *)st)->st, col);
}

static int engine_column_bytes(brt_sql_statement *st, int col)
{
	return sqlite3_column_bytes(((sqlite_statement *)st)->st, col);
}

static int engine_column_is_null(brt_sql_statement *st, int col)
{
	return sqlite3_column_type(((sqlite_statement *)st)->st, col) == SQLITE_NULL;
}

/* A NULL from sqlite3_column_text or _blob is a NULL value or a failed
 * allocation. */
static int engine_column_error(brt_sql_conn *conn, int col)
{
	sqlite_conn *c = (sqlite_conn *)conn;

	if (sqlite3_errcode(c->db) == SQLITE_NOMEM)
		return brt_sqlite_db_error(c, SQLITE_NOMEM);
	return brt_error_set(BRT_EIO, "sqlite: unexpected NULL in column %d", col);
}

static int64_t engine_changes(brt_sql_conn *c)
{
	return sqlite3_changes(((sqlite_conn *)c)->db);
}

static int engine_unique_violation(brt_sql_conn *conn)
{
	sqlite_conn *c = (sqlite_conn *)conn;

	return c->last_rc == SQLITE_CONSTRAINT_PRIMARYKEY || c->last_rc == SQLITE_CONSTRAINT_UNIQUE;
}

/* A collector's page cache (the default one, 512 KiB, is sized for
 * requests), and back. */
static void engine_workload(brt_sql_conn *conn, enum brt_sql_workload work)
{
	sqlite_conn *c = (sqlite_conn *)conn;

	sqlite3_exec(c->db,
		     work == BRT_SQL_WORK_COLLECT ? "PRAGMA cache_size = -16384" : "PRAGMA cache_size = -512",
		     NULL, NULL, NULL);
}

/* PRAGMA data_version does not see this connection's own commits, so its
 * epoch cache is dropped in the revoking transaction. */
static int engine_key_revoked(brt_sql_conn *conn)
{
	((sqlite_conn *)conn)->epoch_known = 0;
	return 0;
}

static void engine_key_revoke_committed(brt_meta *m)
{
	sqlite_store *s = (sqlite_store *)m;

	if (s->epoch_hint)
		atomic_fetch_add(s->epoch_hint, 1);
}

const brt_sql_engine brt_sqlite_engine = {
	.name = "sqlite",
	.conn_get = engine_conn_get,
	.stmt = engine_stmt,
	.bind = engine_bind,
	.step = engine_step,
	.end = engine_end,
	.column_int64 = engine_column_int64,
	.column_text = engine_column_text,
	.column_blob = engine_column_blob,
	.column_bytes = engine_column_bytes,
	.column_is_null = engine_column_is_null,
	.column_error = engine_column_error,
	.changes = engine_changes,
	.unique_violation = engine_unique_violation,
	.run_write = engine_run_write,
	.workload = engine_workload,
	.key_revoked = engine_key_revoked,
	.key_revoke_committed = engine_key_revoke_committed,
};
