/* The SQLite driver of the metadata store (meta.h): opening a store
 * (WAL, the schema migrated to the current version in one transaction),
 * freeing it, and the driver's own consistency checks.  Connections, the
 * engine under the shared slots and write transactions are in conn.c; the
 * slots and the SQL are the shared ones of src/meta/sql/. */
#include "meta/sqlite/internal.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* The single integer a PRAGMA query returns. */
static int db_pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int error = 0;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		error = brt_error_set(BRT_EIO, "sqlite: %s: %s", sql, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return error;
}

/* Run a checking pragma and hand every row it returns, as text, to `cb`
 * (integrity_check answers the single row "ok" when all is well). */
static int pragma_rows(sqlite_conn *c, const char *sql, const char *what, brt_meta_problem_cb cb,
		       void *payload)
{
	sqlite3_stmt *st = NULL;
	char line[512];
	int rc, error = 0;

	if ((rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL)) != SQLITE_OK)
		return brt_sqlite_db_error(c, rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t len = 0;
		int cols = sqlite3_column_count(st);
		const unsigned char *first = sqlite3_column_text(st, 0);

		if (cols == 1 && first && strcmp((const char *)first, "ok") == 0)
			continue;
		len = (size_t)snprintf(line, sizeof(line), "%s:", what);
		for (int i = 0; i < cols && len < sizeof(line); i++) {
			const unsigned char *v = sqlite3_column_text(st, i);
			len += (size_t)snprintf(line + len, sizeof(line) - len, " %s",
						v ? (const char *)v : "NULL");
		}
		if ((error = cb(line, payload)) != 0)
			break;
	}
	if (error == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		error = brt_sqlite_db_error(c, rc);
	sqlite3_finalize(st);
	return error;
}

static int meta_check(brt_meta *m, brt_meta_problem_cb cb, void *payload)
{
	sqlite_conn *c;
	int error;

	if ((error = brt_sqlite_conn_get(&c, m)) < 0)
		return error;
	if ((error = pragma_rows(c, "PRAGMA integrity_check", "integrity_check", cb, payload)) != 0 ||
	    (error = pragma_rows(c, "PRAGMA foreign_key_check", "foreign_key_check", cb, payload)) != 0)
		return error;
	return brt_sql_counts_check(&c->base, cb, payload);
}

static void meta_free(brt_meta *m)
{
	sqlite_store *s = (sqlite_store *)m;

	if (!s)
		return;
	brt_sqlite_checkpoint_stop(s);
	brt_sqlite_conns_release(s);
	brt_sqlite_epoch_hint_unmap(s);
	pthread_cond_destroy(&s->gate.turn);
	pthread_mutex_destroy(&s->gate.lock);
	free(s->path);
	free(s);
}

/* Switch to WAL (a property of the file, set once) and bring the schema up
 * to date in one transaction, so a crash leaves the old version or the new
 * one.  BEGIN IMMEDIATE serialises processes opening the file together. */
static int schema_migrate(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	char sql[64];
	int64_t version = 0;
	int error = 0;
	int rc;
	int v;

	rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		error = brt_error_set(BRT_EIO, "sqlite: journal_mode: %s", sqlite3_errmsg(db));
		goto done;
	}
	mode = sqlite3_column_text(st, 0);
	if (!mode || strcmp((const char *)mode, "wal") != 0) {
		error = brt_error_set(BRT_EIO, "sqlite: cannot use WAL (journal mode %s)",
				      mode ? (const char *)mode : "unknown");
		goto done;
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((error = brt_sqlite_db_exec(db, "BEGIN IMMEDIATE")) < 0)
		goto done;
	if ((error = db_pragma_int(db, "PRAGMA user_version", &version)) < 0)
		goto done;
	if (version < 0 || version > BRT_SQL_SCHEMA_VERSION) {
		error = brt_error_set(BRT_EIO, "database schema version %lld is newer than %d",
				      (long long)version, BRT_SQL_SCHEMA_VERSION);
		goto done;
	}
	for (v = (int)version; v < BRT_SQL_SCHEMA_VERSION; v++) {
		if ((error = brt_sqlite_db_exec(db, brt_sql_migrations[v])) < 0)
			goto done;
	}
	if (version < BRT_SQL_SCHEMA_VERSION) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", BRT_SQL_SCHEMA_VERSION);
		if ((error = brt_sqlite_db_exec(db, sql)) < 0)
			goto done;
	}
	error = brt_sqlite_db_exec(db, "COMMIT");
done:
	sqlite3_finalize(st);
	if (error < 0 && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return error;
}

int brt_meta_sqlite_open(brt_meta **out, const char *path)
{
	sqlite_store *s = NULL;
	sqlite_conn *c = NULL;
	int error = 0;

	*out = NULL;
	if ((error = brt_sqlite_registry_init()) < 0)
		return error;
	if (!(s = calloc(1, sizeof(*s))))
		return brt_error_set(BRT_ENOMEM, "out of memory");
	pthread_mutex_init(&s->gate.lock, NULL);
	pthread_cond_init(&s->gate.turn, NULL);
	brt_sqlite_checkpoint_init(s);
	if (!(s->path = strdup(path))) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	s->base.engine = &brt_sqlite_engine;
	s->base.base.version = BRT_META_VERSION;
	s->base.base.name = "sqlite";
	s->base.base.free = meta_free;
	s->base.base.check = meta_check;
	s->base.base.recount = brt_sql_recount;
	brt_sql_repos_slots(&s->base.base);
	brt_sql_uploads_slots(&s->base.base);
	brt_sql_accounts_slots(&s->base.base);
	brt_sql_gc_slots(&s->base.base);
	brt_sql_policies_slots(&s->base.base);
	s->base.base.key_epoch = brt_sqlite_key_epoch;
	/* Migrate, and prepare every statement once so that a broken one fails
	 * here rather than on some request; the connection is then closed:
	 * threads open their own when they first need one. */
	if ((error = brt_sqlite_conn_open(&c, path, 0)) < 0 || (error = schema_migrate(c->db)) < 0 ||
	    (error = brt_sqlite_conn_prepare(c)) < 0)
		goto done;
	brt_sqlite_epoch_hint_map(s);
	s->base.base.serial = brt_meta_serial_next();
	*out = &s->base.base;
	s = NULL;
done:
	if (c) {
		brt_sqlite_conn_close(c);
		free(c);
	}
	if (s) {
		brt_sqlite_checkpoint_stop(s);
		pthread_cond_destroy(&s->gate.turn);
		pthread_mutex_destroy(&s->gate.lock);
		free(s->path);
		free(s);
	}
	return error;
}

/* For tests only (not part of meta.h): the calling thread's connection to
 * the store, so they can inspect its settings.  NULL on failure. */
sqlite3 *brt_meta_sqlite_handle(brt_meta *m);

sqlite3 *brt_meta_sqlite_handle(brt_meta *m)
{
	sqlite_conn *c;

	return brt_sqlite_conn_get(&c, m) < 0 ? NULL : c->db;
}
