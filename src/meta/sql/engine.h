/* The SQL engine interface under the shared metadata logic: what a driver
 * on SQLite or PostgreSQL provides so that the slots in src/meta/sql/
 * (repos.c, uploads.c, accounts.c, gc.c, policies.c) run unchanged on it.
 * A store, a connection and a statement each start with a pointer to their
 * engine's table; the inline functions below dispatch through it (one
 * indirect call per bind, step or column read, no allocation).
 *
 * Contract, as the slots rely on it:
 * - brt_sql_conn_get gives the calling thread its own connection to the
 *   store (opened on first use), so statements need no lock;
 * - a statement is bound (parameters 1.., borrowed until brt_sql_end),
 *   stepped row by row, its columns read between steps, then ended;
 * - brt_sql_run_write runs a function in one write transaction in which
 *   the slots' read-check-write sequences are serialisable, retried as a
 *   whole (bounded) when the engine says the attempt lost a race, so the
 *   function must be idempotent except for what it leaves in the database. */
#ifndef BRT_META_SQL_ENGINE_H
#define BRT_META_SQL_ENGINE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "meta/meta.h"
#include "meta/sql/schema.h"

typedef struct brt_sql_engine brt_sql_engine;

/* The first member of an engine's connection. */
typedef struct brt_sql_conn {
	const brt_sql_engine *engine;
} brt_sql_conn;

/* The first member of an engine's prepared statement. */
typedef struct brt_sql_statement {
	const brt_sql_engine *engine;
} brt_sql_statement;

/* The first member of an engine's store. */
typedef struct brt_sql_store {
	brt_meta base;
	const brt_sql_engine *engine;
} brt_sql_store;

typedef int (*brt_sql_tx_fn)(brt_sql_conn *c, void *ctx);

/* How brt_sql_engine.run_write ends the transaction. */
enum brt_sql_tx_mode {
	BRT_SQL_TX_DRY = 0,     /* roll back whatever fn did */
	BRT_SQL_TX_DURABLE = 1, /* commit, durable when it returns */
	BRT_SQL_TX_LAZY = 2     /* commit without waiting for the disk */
};

/* Which work the connection is about to do, for engines that size caches. */
enum brt_sql_workload { BRT_SQL_WORK_REQUEST, BRT_SQL_WORK_COLLECT };

struct brt_sql_engine {
	const char *name;
	int (*conn_get)(brt_sql_conn **out, brt_meta *m);
	/* NULL when it cannot be prepared; bind and step on that NULL then
	 * return the preparation's error. */
	brt_sql_statement *(*stmt)(brt_sql_conn *c, enum brt_sql_stmt id);
	int (*bind)(brt_sql_conn *c, brt_sql_statement *st, const char *types, va_list ap);
	int (*step)(brt_sql_conn *c, brt_sql_statement *st, int *row_out);
	void (*end)(brt_sql_statement *st);
	int64_t (*column_int64)(brt_sql_statement *st, int col);
	/* Text and blob columns stay valid until the next step or end. */
	const unsigned char *(*column_text)(brt_sql_statement *st, int col);
	const void *(*column_blob)(brt_sql_statement *st, int col);
	int (*column_bytes)(brt_sql_statement *st, int col);
	int (*column_is_null)(brt_sql_statement *st, int col);
	/* The error for a NULL read from a column that must not be NULL. */
	int (*column_error)(brt_sql_conn *c, int col);
	/* Rows changed by the last INSERT, UPDATE or DELETE on `c`. */
	int64_t (*changes)(brt_sql_conn *c);
	/* Whether the last failure was a unique (or primary key) violation;
	 * asking marks it as handled by the caller (an engine may otherwise
	 * retry the transaction, as another node may have won a race). */
	int (*unique_violation)(brt_sql_conn *c);
	int (*run_write)(brt_meta *m, brt_sql_tx_fn fn, void *ctx, enum brt_sql_tx_mode mode);
	/* Optional: size the connection's caches for what comes next. */
	void (*workload)(brt_sql_conn *c, enum brt_sql_workload work);
	/* Optional: inside key_revoke's transaction, after the epoch bump
	 * (tell other nodes on commit), and after its commit. */
	int (*key_revoked)(brt_sql_conn *c);
	void (*key_revoke_committed)(brt_meta *m);
};

/* Bind parameters 1.. in order.  Types: 't' text (NULL binds NULL),
 * 'i' int64_t, 'z' int64_t where 0 binds NULL (an optional time),
 * 'u' uint64_t (must fit int64: BRT_ETOOBIG), 'b' blob as pointer and
 * size_t (NULL pointer binds NULL).  Values are borrowed until
 * brt_sql_end; parameters not bound are NULL. */
static inline int brt_sql_bind(brt_sql_conn *c, brt_sql_statement *st, const char *types, ...)
{
	va_list ap;
	int error;

	va_start(ap, types);
	error = c->engine->bind(c, st, types, ap);
	va_end(ap);
	return error;
}

static inline int brt_sql_conn_get(brt_sql_conn **out, brt_meta *m)
{
	return ((brt_sql_store *)m)->engine->conn_get(out, m);
}

/* Statement `id` of `c`, prepared on first use and kept with the
 * connection.  Borrowed; see brt_sql_engine.stmt for NULL. */
static inline brt_sql_statement *brt_sql_stmt(brt_sql_conn *c, enum brt_sql_stmt id)
{
	return c->engine->stmt(c, id);
}

/* One step; *row_out says whether a row is there to read. */
static inline int brt_sql_step(brt_sql_conn *c, brt_sql_statement *st, int *row_out)
{
	return c->engine->step(c, st, row_out);
}

/* Make a statement reusable and drop the borrowed bindings (and any read
 * it holds open). */
static inline void brt_sql_end(brt_sql_statement *st)
{
	if (st)
		st->engine->end(st);
}

static inline int64_t brt_sql_column_int64(brt_sql_statement *st, int col)
{
	return st->engine->column_int64(st, col);
}

static inline const unsigned char *brt_sql_column_text(brt_sql_statement *st, int col)
{
	return st->engine->column_text(st, col);
}

static inline const void *brt_sql_column_blob(brt_sql_statement *st, int col)
{
	return st->engine->column_blob(st, col);
}

static inline int brt_sql_column_bytes(brt_sql_statement *st, int col)
{
	return st->engine->column_bytes(st, col);
}

static inline int brt_sql_column_is_null(brt_sql_statement *st, int col)
{
	return st->engine->column_is_null(st, col);
}

static inline int64_t brt_sql_changes(brt_sql_conn *c)
{
	return c->engine->changes(c);
}

static inline int brt_sql_unique_violation(brt_sql_conn *c)
{
	return c->engine->unique_violation(c);
}

/* Run `fn` in one write transaction (retried as the engine needs). */
static inline int brt_sql_run_write(brt_meta *m, brt_sql_tx_fn fn, void *ctx)
{
	return ((brt_sql_store *)m)->engine->run_write(m, fn, ctx, BRT_SQL_TX_DURABLE);
}

/* brt_sql_run_write whose commit does not wait for the disk: a power loss
 * may take it back (never half of it), a crash of the process does not.
 * For writes whose loss only rewinds a state the client can redo, never
 * for anything acknowledged as stored. */
static inline int brt_sql_run_write_lazy(brt_meta *m, brt_sql_tx_fn fn, void *ctx)
{
	return ((brt_sql_store *)m)->engine->run_write(m, fn, ctx, BRT_SQL_TX_LAZY);
}

/* brt_sql_run_write, rolled back at the end whatever `fn` did (dry runs:
 * what `fn` counted is what a real run would do). */
static inline int brt_sql_run_dry(brt_meta *m, brt_sql_tx_fn fn, void *ctx)
{
	return ((brt_sql_store *)m)->engine->run_write(m, fn, ctx, BRT_SQL_TX_DRY);
}

#endif
