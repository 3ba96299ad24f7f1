/* The PostgreSQL driver of the metadata store (meta.h): opening a store
 * (the schema migrated once across nodes, every statement prepared once
 * so that a broken one fails here, the key epoch listener started),
 * freeing it, and its consistency checks.  The slots are the shared ones
 * of src/meta/sql/, run on the engine of conn.c. */
#include "meta/pg/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* A query's rows, each as "<what>: col col ...", to `cb`. */
static int query_rows(pg_conn *c, const char *sql, const char *what, brt_meta_problem_cb cb, void *payload)
{
	PGresult *res = PQexec(c->db, sql);
	char line[512];
	int error = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		error = brt_pg_result_error(c, res, what);
		PQclear(res);
		return error;
	}
	for (int r = 0; r < PQntuples(res) && error == 0; r++) {
		size_t len = (size_t)snprintf(line, sizeof(line), "%s:", what);

		for (int i = 0; i < PQnfields(res) && len < sizeof(line); i++)
			len += (size_t)snprintf(line + len, sizeof(line) - len, " %s",
						PQgetisnull(res, r, i) ? "NULL" : PQgetvalue(res, r, i));
		error = cb(line, payload);
	}
	PQclear(res);
	return error;
}

/* PostgreSQL keeps its own tables and enforces foreign keys on every
 * statement, so there is no integrity_check or foreign_key_check to run.
 * What can still be wrong: the recorded schema version, an index left
 * invalid (a failed concurrent build), and the counts shared with SQLite. */
static int meta_check(brt_meta *m, brt_meta_problem_cb cb, void *payload)
{
	char sql[160];
	pg_conn *c;
	int error;

	if ((error = brt_pg_conn_get(&c, m)) < 0)
		return error;
	snprintf(sql, sizeof(sql), "SELECT version FROM schema_version WHERE version <> %d",
		 BRT_SQL_SCHEMA_VERSION);
	if ((error = query_rows(c, sql, "schema_version", cb, payload)) != 0 ||
	    (error = query_rows(c,
				"SELECT i.indexrelid::regclass::text FROM pg_index i"
				" JOIN pg_class t ON t.oid = i.indrelid"
				" WHERE t.relnamespace = current_schema()::regnamespace"
				" AND NOT (i.indisvalid AND i.indisready)",
				"invalid index", cb, payload)) != 0)
		return error;
	return brt_sql_counts_check(&c->base, cb, payload);
}

static void store_free(pg_store *s)
{
	brt_pg_listener_stop(s);
	brt_pg_conns_release(s);
	free(s->dsn);
	free(s);
}

static void meta_free(brt_meta *m)
{
	if (m)
		store_free((pg_store *)m);
}

/* Statements PostgreSQL does not prepare: the transaction's own, which
 * conn.c sends as they are. */
static int preparable(int id)
{
	return id != BRT_SQL_BEGIN && id != BRT_SQL_COMMIT && id != BRT_SQL_ROLLBACK;
}

int brt_meta_pg_open(brt_meta **out, const char *dsn)
{
	pg_store *s = NULL;
	pg_conn *c;
	int error = 0;

	*out = NULL;
	if ((error = brt_pg_registry_init()) < 0)
		return error;
	if (!(s = calloc(1, sizeof(*s))))
		return brt_error_set(BRT_ENOMEM, "out of memory");
	if (!(s->dsn = strdup(dsn ? dsn : ""))) {
		free(s);
		return brt_error_set(BRT_ENOMEM, "out of memory");
	}
	s->base.engine = &brt_pg_engine;
	s->base.base.version = BRT_META_VERSION;
	s->base.base.name = "postgres";
	s->base.base.free = meta_free;
	s->base.base.check = meta_check;
	s->base.base.recount = brt_sql_recount;
	brt_sql_repos_slots(&s->base.base);
	brt_sql_uploads_slots(&s->base.base);
	brt_sql_accounts_slots(&s->base.base);
	brt_sql_gc_slots(&s->base.base);
	brt_sql_policies_slots(&s->base.base);
	s->base.base.key_epoch = brt_pg_key_epoch;
	/* Connections are found by serial: it must be set before the first. */
	s->base.base.serial = brt_meta_serial_next();
	if ((error = brt_pg_conn_get(&c, &s->base.base)) < 0 || (error = brt_pg_migrate(c)) < 0)
		goto done;
	for (int id = 0; id < BRT_SQL_COUNT; id++)
		if (preparable(id) && !brt_sql_stmt(&c->base, (enum brt_sql_stmt)id)) {
			error = c->prepare_error;
			goto done;
		}
	if ((error = brt_pg_listener_start(s)) < 0)
		goto done;
	*out = &s->base.base;
	s = NULL;
done:
	if (s)
		store_free(s);
	return error;
}
