/* The PostgreSQL driver's migrations: the SQLite migrations of schema.c
 * with four mechanical substitutions (docs/postgres-schema.md), applied
 * in one transaction under an advisory lock and counted in a one-row
 * schema_version table, so that nodes starting at once migrate exactly
 * once: the first takes the lock and migrates, the others wait, then find
 * the version current. */
#include "meta/pg/internal.h"
#include "meta/pg/ddl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* pg_advisory_xact_lock's key for migrations: "berth" in ASCII. */
#define MIGRATION_LOCK "422777255016"

/* The version recorded, read under the lock. */
static int version_read(pg_conn *c, long long *out)
{
	PGresult *res = PQexec(c->db, "SELECT version FROM schema_version WHERE id = 1");
	int error = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		error = brt_pg_result_error(c, res, "schema version");
	else
		*out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return error;
}

/* READ COMMITTED, not SERIALIZABLE: each statement sees what committed
 * before it started, so the version read after the lock is granted is the
 * one the previous holder left (a serializable snapshot would predate the
 * wait). */
int brt_pg_migrate(pg_conn *c)
{
	char sql[96];
	char *ddl = NULL;
	long long version = 0;
	int error;

	/* No session timeout here: a migration's data steps may take long
	 * on a big database, and the other nodes wait for it on the lock. */
	if ((error = brt_pg_exec(c,
				 "BEGIN ISOLATION LEVEL READ COMMITTED;"
				 " SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0;"
				 " SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ");"
				 " CREATE TABLE IF NOT EXISTS schema_version ("
				 " id SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),"
				 " version BIGINT NOT NULL);"
				 " INSERT INTO schema_version (id, version) VALUES (1, 0)"
				 " ON CONFLICT (id) DO NOTHING")) < 0 ||
	    (error = version_read(c, &version)) < 0)
		goto done;
	if (version < 0 || version > BRT_SQL_SCHEMA_VERSION) {
		error = brt_error_set(BRT_EIO, "database schema version %lld is newer than %d", version,
				      BRT_SQL_SCHEMA_VERSION);
		goto done;
	}
	for (int v = (int)version; v < BRT_SQL_SCHEMA_VERSION; v++) {
		if ((error = brt_pg_ddl(&ddl, brt_sql_migrations[v])) < 0 ||
		    (error = brt_pg_exec(c, ddl)) < 0)
			goto done;
		free(ddl);
		ddl = NULL;
	}
	if (version < BRT_SQL_SCHEMA_VERSION) {
		snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d WHERE id = 1",
			 BRT_SQL_SCHEMA_VERSION);
		if ((error = brt_pg_exec(c, sql)) < 0)
			goto done;
	}
	error = brt_pg_exec(c, "COMMIT");
done:
	free(ddl);
	if (error < 0 && c->db && PQtransactionStatus(c->db) != PQTRANS_IDLE)
		(void)brt_pg_exec(c, "ROLLBACK");
	return error;
}
