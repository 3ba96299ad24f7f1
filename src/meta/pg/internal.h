/* What the files of the PostgreSQL metadata driver share: the store, its
 * per-thread connections and their prepared statements (conn.c, the
 * engine the shared slots of src/meta/sql/ run on), and the key epoch
 * listener (epoch.c). */
#ifndef BRT_META_PG_INTERNAL_H
#define BRT_META_PG_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "meta/meta.h"
#include "meta/sql/engine.h"
#include "meta/sql/schema.h"
#include "meta/sql/slots.h"

typedef struct pg_store pg_store;
typedef struct pg_conn pg_conn;

/* The most parameters a statement of schema.c takes. */
#define PG_PARAMS_MAX 16

/* A statement prepared on one connection, and its current result: the
 * whole result arrives with the first step (statements here return pages,
 * never whole tables), and the steps walk its rows. */
typedef struct pg_statement {
	brt_sql_statement base;
	pg_conn *conn;
	int id;
	uint64_t session; /* of the connection it was prepared on */
	int nparams;
	/* Read integers by parsing text (a column type without a binary
	 * reader here, such as numeric). */
	int text_results;
	const char *values[PG_PARAMS_MAX];
	int lengths[PG_PARAMS_MAX];
	int formats[PG_PARAMS_MAX];
	char numbers[PG_PARAMS_MAX][24];
	PGresult *result;
	int row; /* -1 before the first step */
	int rows;
} pg_statement;

/* One thread's connection to one store (the lists as in the SQLite
 * driver: its thread's, and its store's under the registry lock). */
struct pg_conn {
	brt_sql_conn base;
	pg_conn *thread_next;
	pg_conn *store_next; /* registry lock */
	pg_store *store;     /* registry lock; NULL once the store is gone */
	uint64_t serial;     /* of the store; immutable */
	PGconn *db;
	/* Bumped by every (re)connection: statements prepared in an older
	 * session are prepared again. */
	uint64_t session;
	pg_statement *stmt[BRT_SQL_COUNT];
	int prepare_error;
	int64_t changes;
	int unique; /* the last failure was 23505 and no slot claimed it */
	int retry;  /* the last failure was 40001 or 40P01 */
	/* key_epoch's cache: the epoch row, read when the listener's notice
	 * count was `notices_seen`, at `checked_ms` (coarse monotonic). */
	int epoch_known;
	uint64_t epoch;
	uint64_t notices_seen;
	int64_t checked_ms;
};

/* The store's LISTEN connection (epoch.c). */
typedef struct pg_listener {
	pthread_t thread;
	int started;
	int wake[2]; /* a pipe: one byte wakes the thread to stop */
	/* 1 while LISTEN is in place on a live connection. */
	_Atomic int up;
	/* Bumped by each notice, and by each loss or gain of the
	 * connection (which may have hidden notices). */
	_Atomic uint64_t notices;
} pg_listener;

struct pg_store {
	brt_sql_store base;
	char *dsn;
	pg_conn *conns; /* registry lock */
	pg_listener listener;
};

/* The notice a revocation sends on commit. */
#define PG_EPOCH_CHANNEL "berth_key_epoch"

extern const brt_sql_engine brt_pg_engine;

/* --- conn.c --- */

/* A new connection to `dsn` with the driver's session settings
 * (timeouts, keepalives, UTF-8).  BRT_EUNAVAILABLE if the server cannot
 * be reached, BRT_EIO if it refuses the settings. */
int brt_pg_connect(PGconn **out, const char *dsn);

/* The calling thread's connection to `m`, opened on first use and opened
 * again if it broke.  BRT_EUNAVAILABLE if the server cannot be reached. */
int brt_pg_conn_get(pg_conn **out, brt_meta *m);

/* Run a statement without parameters or results (the simple protocol:
 * several ;-separated statements may be sent at once). */
int brt_pg_exec(pg_conn *c, const char *sql);

/* An error for a failed result (NULL: the connection's), with the
 * SQLSTATE mapped: unique violation, serialization failure or deadlock
 * noted for the transaction loop, bad text BRT_EINVALID, a server away,
 * shutting down, overloaded or timing out BRT_EUNAVAILABLE, else BRT_EIO. */
int brt_pg_result_error(pg_conn *c, const PGresult *res, const char *what);

void brt_pg_conns_release(pg_store *s);
int brt_pg_registry_init(void);

/* --- migrate.c --- */

/* Bring the schema up to date once, whichever node gets there first. */
int brt_pg_migrate(pg_conn *c);

/* --- epoch.c --- */

int brt_pg_listener_start(pg_store *s);
void brt_pg_listener_stop(pg_store *s);
uint64_t brt_pg_key_epoch(brt_meta *m);

#endif
