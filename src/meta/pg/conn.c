/* The PostgreSQL driver's connections and the engine the shared slots run
 * on: one connection per thread and store (the node's pool), opened on
 * first use and again after it broke, so that requests fail with BRT_EUNAVAILABLE
 * while the server is away and work again when it is back; statements
 * prepared per connection from the shared texts ("?N" read as "$N"),
 * BYTEA and results in binary; write transactions SERIALIZABLE, retried
 * as a whole when PostgreSQL reports that they lost a race. */
#include "meta/pg/internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"

/* A write transaction that keeps losing races (40001, 40P01, or another
 * node inserting the same key first) is tried this many times in all; from
 * attempt ALONE_FROM on, it runs alone: every write transaction holds the
 * writers' advisory lock shared, and such an attempt takes it exclusively,
 * so it waits for the transactions in flight and no new one starts until
 * it ends (PostgreSQL queues lock requests in order, so it is not starved
 * either).  The exclusive lock is taken at session level before BEGIN:
 * a serializable transaction's snapshot is taken by its first statement,
 * so a lock taken inside would leave it a snapshot older than the
 * transactions it waited for, and it would lose to them again.  Without
 * this, measured with four threads on two hot rows, one transaction in a
 * few hundred lost 16 races in a row. */
#define WRITE_ATTEMPTS 8
#define ALONE_FROM 4
#define WRITERS_LOCK "422777255017"
#define BEGIN_SHARED "; SELECT pg_advisory_xact_lock_shared(" WRITERS_LOCK ")"
#define ALONE_LOCK "SELECT pg_advisory_lock(" WRITERS_LOCK ")"
#define ALONE_UNLOCK "SELECT pg_advisory_unlock(" WRITERS_LOCK ")"

/* Type OIDs of pg_type, fixed since PostgreSQL 7. */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_NAME 19
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_VARCHAR 1043

static pthread_key_t conn_key;
static pthread_once_t conn_key_once = PTHREAD_ONCE_INIT;
static int conn_key_error;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

/* Bounded waits everywhere: a server that stops answering costs a
 * request thread at most these, never forever.  Later DSN settings win
 * (the DSN is processed last). */
/* Server notices (NOTICE, and the FATAL of a session the server ends)
 * are not errors of any request: the errors that matter come with the
 * results. */
static void notice_ignore(void *payload, const char *message)
{
	(void)payload;
	(void)message;
}

int brt_pg_connect(PGconn **out, const char *dsn)
{
	static const char *const keys[] = {"connect_timeout",  "keepalives",
					   "keepalives_idle",  "keepalives_interval",
					   "keepalives_count", "tcp_user_timeout",
					   "application_name", "client_encoding",
					   "dbname",           NULL};
	const char *values[] = {"5", "1", "10", "5", "3", "30000", "berthd", "UTF8", dsn, NULL};
	PGconn *db;
	PGresult *res;
	int error = 0;

	*out = NULL;
	if (!(db = PQconnectdbParams(keys, values, 1)))
		return brt_error_set(BRT_ENOMEM, "postgres: out of memory connecting");
	if (PQstatus(db) != CONNECTION_OK) {
		char message[256];

		snprintf(message, sizeof(message), "%s", PQerrorMessage(db));
		message[strcspn(message, "\n")] = '\0';
		PQfinish(db);
		return brt_error_set(BRT_EUNAVAILABLE, "postgres: cannot connect: %s", message);
	}
	PQsetNoticeProcessor(db, notice_ignore, NULL);
	/* A statement or an idle transaction that outlives these is the
	 * server's or a peer's fault: cut it rather than hang on it. */
	res = PQexec(db,
		     "SET statement_timeout = 30000; SET lock_timeout = 10000;"
		     " SET idle_in_transaction_session_timeout = 60000");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		error = brt_error_set(BRT_EIO, "postgres: session settings: %s", PQerrorMessage(db));
	PQclear(res);
	if (error < 0) {
		PQfinish(db);
		return error;
	}
	*out = db;
	return 0;
}

int brt_pg_result_error(pg_conn *c, const PGresult *res, const char *what)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *message = res ? PQresultErrorMessage(res) : c->db ? PQerrorMessage(c->db) : "";
	size_t len = strcspn(message, "\n");
	int code = BRT_EIO;

	if (state && strcmp(state, "23505") == 0)
		c->unique = 1;
	else if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0))
		c->retry = 1;
	/* Text PostgreSQL cannot hold (invalid UTF-8, NUL): the client sent
	 * it, so it is the client's error. */
	else if (state && (strcmp(state, "22021") == 0 || strcmp(state, "22P05") == 0))
		code = BRT_EINVALID;
	/* The server is away, shutting down, out of connections or too slow
	 * (a statement or lock timeout): the request may be retried later. */
	else if ((state && (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
			    strncmp(state, "57P0", 4) == 0 || strcmp(state, "57014") == 0 ||
			    strcmp(state, "55P03") == 0)) ||
		 (!state && (!c->db || PQstatus(c->db) == CONNECTION_BAD)))
		code = BRT_EUNAVAILABLE;
	return brt_error_set(code, "postgres: %s: %.*s%s%s", what, (int)len, message,
			     state ? " SQLSTATE " : "", state ? state : "");
}

int brt_pg_exec(pg_conn *c, const char *sql)
{
	PGresult *res;
	int error = 0;

	if (!c->db)
		return brt_error_set(BRT_EUNAVAILABLE, "postgres: not connected");
	res = PQexec(c->db, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		error = brt_pg_result_error(c, res, sql);
	PQclear(res);
	return error;
}

static void statement_clear(pg_statement *st)
{
	PQclear(st->result);
	st->result = NULL;
	st->row = -1;
	st->rows = 0;
	for (int i = 0; i < PG_PARAMS_MAX; i++) {
		st->values[i] = NULL;
		st->lengths[i] = 0;
		st->formats[i] = 0;
	}
}

static void conn_close(pg_conn *c)
{
	for (size_t i = 0; i < BRT_SQL_COUNT; i++) {
		if (c->stmt[i]) {
			PQclear(c->stmt[i]->result);
			free(c->stmt[i]);
			c->stmt[i] = NULL;
		}
	}
	PQfinish(c->db);
	c->db = NULL;
}

static void store_forget_conn(pg_store *s, pg_conn *c)
{
	pg_conn **p;

	for (p = &s->conns; *p; p = &(*p)->store_next) {
		if (*p == c) {
			*p = c->store_next;
			break;
		}
	}
}

static void conn_key_destroy(void *value)
{
	pg_conn *c = value;

	while (c) {
		pg_conn *next = c->thread_next;

		pthread_mutex_lock(&registry_lock);
		if (c->store) {
			store_forget_conn(c->store, c);
			conn_close(c);
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

int brt_pg_registry_init(void)
{
	pthread_once(&conn_key_once, conn_key_init);
	return conn_key_error ? brt_error_set(BRT_EIO, "pthread_key_create failed") : 0;
}

/* (Re)connect `c`: a new session, in which every statement is prepared
 * again. */
static int conn_connect(pg_conn *c, const char *dsn)
{
	int error;

	/* Results already read stay valid (they live in this process); the
	 * statements are prepared again in the new session. */
	PQfinish(c->db);
	c->db = NULL;
	c->epoch_known = 0;
	if ((error = brt_pg_connect(&c->db, dsn)) < 0)
		return error;
	c->session++;
	return 0;
}

int brt_pg_conn_get(pg_conn **out, brt_meta *m)
{
	pg_store *s = (pg_store *)m;
	pg_conn *head = pthread_getspecific(conn_key);
	pg_conn *c;
	int error;

	for (c = head; c; c = c->thread_next) {
		if (c->serial == s->base.base.serial) {
			/* Broken (server restarted, connection killed): a new one,
			 * or BRT_EUNAVAILABLE while the server is away. */
			if ((!c->db || PQstatus(c->db) == CONNECTION_BAD) &&
			    (error = conn_connect(c, s->dsn)) < 0)
				return error;
			*out = c;
			return 0;
		}
	}
	if (!(c = calloc(1, sizeof(*c))))
		return brt_error_set(BRT_ENOMEM, "out of memory");
	c->base.engine = &brt_pg_engine;
	c->serial = s->base.base.serial;
	if ((error = conn_connect(c, s->dsn)) < 0) {
		free(c);
		return error;
	}
	c->thread_next = head;
	if (pthread_setspecific(conn_key, c) != 0) {
		conn_close(c);
		free(c);
		return brt_error_set(BRT_ENOMEM, "pthread_setspecific failed");
	}
	pthread_mutex_lock(&registry_lock);
	c->store = s;
	c->store_next = s->conns;
	s->conns = c;
	pthread_mutex_unlock(&registry_lock);
	*out = c;
	return 0;
}

void brt_pg_conns_release(pg_store *s)
{
	pg_conn *head;
	pg_conn **p;
	pg_conn *c;

	pthread_mutex_lock(&registry_lock);
	for (c = s->conns; c; c = c->store_next) {
		conn_close(c);
		c->store = NULL;
	}
	s->conns = NULL;
	head = pthread_getspecific(conn_key);
	for (p = &head; *p;) {
		if (!(*p)->store) {
			pg_conn *dead = *p;
			*p = dead->thread_next;
			free(dead);
		} else {
			p = &(*p)->thread_next;
		}
	}
	pthread_setspecific(conn_key, head);
	pthread_mutex_unlock(&registry_lock);
}

/* "?N" becomes "$N"; no statement has a "?" in a string literal. */
static char *placeholders(const char *sql)
{
	size_t n = strlen(sql);
	char *out = malloc(n + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; i <= n; i++)
		out[i] = sql[i] == '?' && sql[i + 1] >= '0' && sql[i + 1] <= '9' ? '$' : sql[i];
	return out;
}

static int result_type_binary(Oid type)
{
	return type == OID_BOOL || type == OID_BYTEA || type == OID_NAME || type == OID_INT8 ||
	       type == OID_INT2 || type == OID_INT4 || type == OID_TEXT || type == OID_VARCHAR;
}

/* Prepare statement `st` in the connection's current session, and learn
 * how many parameters it takes and whether its results read in binary. */
static int statement_prepare(pg_conn *c, pg_statement *st)
{
	const char *text = brt_sql_text_pg[st->id] ? brt_sql_text_pg[st->id] : brt_sql_text[st->id];
	char name[16];
	char *sql = NULL;
	PGresult *res = NULL;
	int error = 0;

	if (!c->db) {
		error = brt_error_set(BRT_EUNAVAILABLE, "postgres: not connected");
		goto done;
	}
	snprintf(name, sizeof(name), "s%d", st->id);
	if (!(sql = placeholders(text))) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	res = PQprepare(c->db, name, sql, 0, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		error = brt_pg_result_error(c, res, "prepare");
		goto done;
	}
	PQclear(res);
	res = PQdescribePrepared(c->db, name);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		error = brt_pg_result_error(c, res, "describe");
		goto done;
	}
	if (PQnparams(res) > PG_PARAMS_MAX) {
		error = brt_error_set(BRT_EIO, "postgres: statement %d takes %d parameters", st->id,
				      PQnparams(res));
		goto done;
	}
	st->nparams = PQnparams(res);
	st->text_results = 0;
	for (int i = 0; i < PQnfields(res); i++)
		if (!result_type_binary(PQftype(res, i)))
			st->text_results = 1;
	st->session = c->session;
done:
	PQclear(res);
	free(sql);
	if (error < 0)
		c->prepare_error = error;
	return error;
}

/* Whether a failure on `c` may be tried again on a new connection, made
 * here: the connection broke, and no transaction was open before (`before`)
 * — a read on its own, which running again cannot harm.  A transaction's
 * statements are never tried again here (engine_run_write runs the whole
 * transaction again, or not at all). */
static int reconnected_for_retry(pg_conn *c, PGTransactionStatusType before)
{
	if (before != PQTRANS_IDLE || !c->db || PQstatus(c->db) != CONNECTION_BAD || !c->store)
		return 0;
	return conn_connect(c, c->store->dsn) == 0;
}

static brt_sql_statement *engine_stmt(brt_sql_conn *conn, enum brt_sql_stmt id)
{
	pg_conn *c = (pg_conn *)conn;
	pg_statement *st = c->stmt[id];

	if (!st) {
		if (!(st = calloc(1, sizeof(*st)))) {
			c->prepare_error = brt_error_set(BRT_ENOMEM, "out of memory");
			return NULL;
		}
		st->base.engine = &brt_pg_engine;
		st->conn = c;
		st->id = (int)id;
		st->row = -1;
		c->stmt[id] = st;
	}
	if (st->session != c->session) {
		PGTransactionStatusType before = c->db ? PQtransactionStatus(c->db) : PQTRANS_UNKNOWN;

		if (statement_prepare(c, st) < 0 &&
		    (!reconnected_for_retry(c, before) || statement_prepare(c, st) < 0))
			return NULL;
	}
	return &st->base;
}

static int engine_bind(brt_sql_conn *conn, brt_sql_statement *statement, const char *types, va_list ap)
{
	pg_conn *c = (pg_conn *)conn;
	pg_statement *st = (pg_statement *)statement;
	int i;

	if (!st)
		return c->prepare_error;
	statement_clear(st);
	for (i = 0; types[i]; i++) {
		if (i >= st->nparams)
			return brt_error_set(BRT_EIO, "postgres: statement %d takes %d parameters", st->id,
					     st->nparams);
		/* Integers go as text: the server reads them as whatever type it
		 * inferred for the parameter (bigint, smallint). */
		switch (types[i]) {
		case 't':
			st->values[i] = va_arg(ap, const char *);
			break;
		case 'i':
			snprintf(st->numbers[i], sizeof(st->numbers[i]), "%lld",
				 (long long)va_arg(ap, int64_t));
			st->values[i] = st->numbers[i];
			break;
		case 'z': {
			int64_t v = va_arg(ap, int64_t);
			if (v) {
				snprintf(st->numbers[i], sizeof(st->numbers[i]), "%lld", (long long)v);
				st->values[i] = st->numbers[i];
			}
			break;
		}
		case 'u': {
			uint64_t v = va_arg(ap, uint64_t);
			if (v > INT64_MAX)
				return brt_error_set(BRT_ETOOBIG, "value %llu too large for the database",
						     (unsigned long long)v);
			snprintf(st->numbers[i], sizeof(st->numbers[i]), "%llu", (unsigned long long)v);
			st->values[i] = st->numbers[i];
			break;
		}
		case 'b': {
			const void *p = va_arg(ap, const void *);
			size_t n = va_arg(ap, size_t);
			if (n > INT_MAX)
				return brt_error_set(BRT_ETOOBIG,
						     "value of %zu bytes too large for the database", n);
			if (p) {
				/* An empty non-NULL value must not read as NULL. */
				st->values[i] = n ? p : "";
				st->lengths[i] = (int)n;
				st->formats[i] = 1;
			}
			break;
		}
		default:
			return brt_error_set(BRT_EIO, "postgres: bad bind type '%c'", types[i]);
		}
	}
	return 0;
}

/* Rows changed, as SQLite counts them: only INSERT, UPDATE and DELETE set
 * it (a SELECT in between leaves it). */
static void note_changes(pg_conn *c, const PGresult *res)
{
	const char *tag = PQcmdStatus((PGresult *)res);

	if (strncmp(tag, "INSERT", 6) == 0 || strncmp(tag, "UPDATE", 6) == 0 ||
	    strncmp(tag, "DELETE", 6) == 0)
		c->changes = strtoll(PQcmdTuples((PGresult *)res), NULL, 10);
}

/* Run a bound statement.  Outside a transaction, a connection found
 * broken is replaced and the statement run once more on the new one, so
 * that a restarted server or a killed session costs no request anything. */
static int statement_run(pg_conn *c, pg_statement *st)
{
	char name[16];
	ExecStatusType status;
	PGTransactionStatusType before = c->db ? PQtransactionStatus(c->db) : PQTRANS_UNKNOWN;
	int error;

	snprintf(name, sizeof(name), "s%d", st->id);
	for (int tries = 0;; tries++) {
		if (!c->db)
			return brt_error_set(BRT_EUNAVAILABLE, "postgres: not connected");
		/* Prepared in a session that ended since: inside a transaction,
		 * that transaction is gone with it. */
		if (st->session != c->session &&
		    (before != PQTRANS_IDLE || (error = statement_prepare(c, st)) < 0))
			return before != PQTRANS_IDLE
				       ? brt_error_set(BRT_EUNAVAILABLE, "postgres: connection lost")
				       : error;
		st->result = PQexecPrepared(c->db, name, st->nparams, st->values, st->lengths, st->formats,
					    st->text_results ? 0 : 1);
		status = PQresultStatus(st->result);
		if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
			break;
		error = brt_pg_result_error(c, st->result, "statement");
		PQclear(st->result);
		st->result = NULL;
		if (tries > 0 || !reconnected_for_retry(c, before))
			return error;
	}
	note_changes(c, st->result);
	st->rows = PQntuples(st->result);
	st->row = 0;
	return 0;
}

static int engine_step(brt_sql_conn *conn, brt_sql_statement *statement, int *row_out)
{
	pg_conn *c = (pg_conn *)conn;
	pg_statement *st = (pg_statement *)statement;
	int error;

	*row_out = 0;
	if (!st)
		return c->prepare_error;
	if (!st->result) {
		if ((error = statement_run(c, st)) < 0)
			return error;
	} else if (st->row < st->rows) {
		st->row++;
	}
	*row_out = st->row < st->rows;
	return 0;
}

static void engine_end(brt_sql_statement *statement)
{
	statement_clear((pg_statement *)statement);
}

static int64_t engine_column_int64(brt_sql_statement *statement, int col)
{
	const pg_statement *st = (const pg_statement *)statement;
	const unsigned char *v;

	if (PQgetisnull(st->result, st->row, col))
		return 0;
	v = (const unsigned char *)PQgetvalue(st->result, st->row, col);
	if (st->text_results)
		return v[0] == 't' ? 1 : v[0] == 'f' ? 0 : strtoll((const char *)v, NULL, 10);
	switch (PQftype(st->result, col)) {
	case OID_INT8: {
		uint64_t u = 0;
		for (int i = 0; i < 8; i++)
			u = u << 8 | v[i];
		return (int64_t)u;
	}
	case OID_INT4:
		return (int32_t)((uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3]);
	case OID_INT2:
		return (int16_t)(uint16_t)((unsigned)v[0] << 8 | v[1]);
	case OID_BOOL:
		return v[0] != 0;
	default:
		return 0;
	}
}

/* libpq ends every value with a NUL, binary ones too, and PostgreSQL
 * text holds no NUL: a text column reads as a C string. */
static const unsigned char *engine_column_text(brt_sql_statement *statement, int col)
{
	const pg_statement *st = (const pg_statement *)statement;

	if (PQgetisnull(st->result, st->row, col))
		return NULL;
	return (const unsigned char *)PQgetvalue(st->result, st->row, col);
}

static const void *engine_column_blob(brt_sql_statement *statement, int col)
{
	const pg_statement *st = (const pg_statement *)statement;

	if (st->text_results || PQgetisnull(st->result, st->row, col))
		return NULL;
	return PQgetvalue(st->result, st->row, col);
}

static int engine_column_bytes(brt_sql_statement *statement, int col)
{
	const pg_statement *st = (const pg_statement *)statement;

	return PQgetlength(st->result, st->row, col);
}

static int engine_column_is_null(brt_sql_statement *statement, int col)
{
	const pg_statement *st = (const pg_statement *)statement;

	return PQgetisnull(st->result, st->row, col);
}

static int engine_column_error(brt_sql_conn *conn, int col)
{
	(void)conn;
	return brt_error_set(BRT_EIO, "postgres: unexpected NULL in column %d", col);
}

static int64_t engine_changes(brt_sql_conn *conn)
{
	return ((pg_conn *)conn)->changes;
}

static int engine_unique_violation(brt_sql_conn *conn)
{
	pg_conn *c = (pg_conn *)conn;
	int unique = c->unique;

	c->unique = 0;
	return unique;
}

static int engine_conn_get(brt_sql_conn **out, brt_meta *m)
{
	pg_conn *c;
	int error = brt_pg_conn_get(&c, m);

	*out = error < 0 ? NULL : &c->base;
	return error;
}

/* A pause before the next attempt, growing and jittered so that the
 * transactions that collided do not collide again. */
static void retry_pause(int attempt)
{
	static _Thread_local unsigned int seed;
	struct timespec pause;
	long max_us = 1000L << (attempt < 6 ? attempt : 6);

	if (!seed)
		seed = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)&seed;
	seed = seed * 1103515245u + 12345u;
	pause.tv_sec = 0;
	pause.tv_nsec = (long)(seed >> 8) % max_us * 1000L;
	nanosleep(&pause, NULL);
}

static int engine_run_write(brt_meta *m, brt_sql_tx_fn fn, void *ctx, enum brt_sql_tx_mode mode)
{
	pg_conn *c;
	int error;
	int fresh = 0; /* a new connection was taken for a broken one */

	for (int attempt = 1;; attempt++) {
		char begin[256];
		int retry, unique, alone;

		if ((error = brt_pg_conn_get(&c, m)) < 0)
			return error;
		c->retry = c->unique = 0;
		alone = attempt >= ALONE_FROM;
		if (alone && (error = brt_pg_exec(c, ALONE_LOCK)) < 0)
			return error;
		/* One round trip: BEGIN, the writers' lock, the commit mode. */
		snprintf(begin, sizeof(begin), "%s%s%s", brt_sql_text_pg[BRT_SQL_BEGIN],
			 alone ? "" : BEGIN_SHARED,
			 mode == BRT_SQL_TX_LAZY ? "; SET LOCAL synchronous_commit = off" : "");
		error = brt_pg_exec(c, begin);
		/* A connection found broken at BEGIN did nothing yet: once, a
		 * new one, without counting an attempt. */
		if (error < 0 && !fresh && c->db && PQstatus(c->db) == CONNECTION_BAD) {
			fresh = 1;
			attempt--;
			continue;
		}
		if (error == 0) {
			error = fn(&c->base, ctx);
			/* A failed statement whose error the slot did not pass up
			 * still aborted the transaction: COMMIT would roll back. */
			if (error == 0 && PQtransactionStatus(c->db) == PQTRANS_INERROR)
				error = brt_error_set(BRT_EIO, "postgres: transaction aborted");
			if (error == 0)
				error = brt_pg_exec(c, mode == BRT_SQL_TX_DRY ? brt_sql_text[BRT_SQL_ROLLBACK]
									      : brt_sql_text[BRT_SQL_COMMIT]);
		}
		retry = c->retry;
		unique = c->unique;
		if (error != 0 && c->db && PQstatus(c->db) == CONNECTION_OK &&
		    PQtransactionStatus(c->db) != PQTRANS_IDLE)
			(void)brt_pg_exec(c, brt_sql_text[BRT_SQL_ROLLBACK]);
		/* A broken connection took the lock with its session. */
		if (alone && c->db && PQstatus(c->db) == CONNECTION_OK)
			(void)brt_pg_exec(c, ALONE_UNLOCK);
		if (error == 0 || !(retry || unique) || attempt >= WRITE_ATTEMPTS)
			return error;
		retry_pause(attempt);
	}
}

/* The notice is delivered to every listening node when the revoking
 * transaction commits, never before, never without it. */
static int engine_key_revoked(brt_sql_conn *conn)
{
	pg_conn *c = (pg_conn *)conn;

	c->epoch_known = 0;
	return brt_pg_exec(c, "NOTIFY " PG_EPOCH_CHANNEL);
}

/* This node's other threads need not wait for the notice to come back
 * from the server. */
static void engine_key_revoke_committed(brt_meta *m)
{
	atomic_fetch_add(&((pg_store *)m)->listener.notices, 1);
}

const brt_sql_engine brt_pg_engine = {
	.name = "postgres",
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
	.workload = NULL,
	.key_revoked = engine_key_revoked,
	.key_revoke_committed = engine_key_revoke_committed,
};
