/* Tests of the SQLite metadata driver: the shared suite on a temporary
 * database file, then what only SQLite has: persistence across reopen and
 * across a crashed writer process, connection settings, the schema
 * version and the upgrade from version 1, per-account rows, access key
 * columns and query plans, server secrets shared across reopen and across
 * processes, waiting out another writer's lock, and per-thread
 * connections outliving or following a store. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "meta_suite.h"

/* Bump together with the driver's migration list. */
#define EXPECTED_SCHEMA_VERSION 7

/* Undo migrations 7 and 6, for the tests that recreate older schemas. */
#define UNDO_V7                                                                        \
	"DROP INDEX repositories_listed; ALTER TABLE repositories DROP COLUMN listed;" \
	"ALTER TABLE repositories DROP COLUMN contents;"
#define UNDO_V6                                                                             \
	UNDO_V7                                                                             \
	"DROP TABLE gc_manifest_queue; DROP TABLE gc_link_queue; DROP TABLE gc_blob_queue;" \
	"DROP TABLE gc_outbox; DROP TABLE policies; DROP INDEX blobs_storage_key;"          \
	"DROP INDEX manifests_account;"

/* Test hook exported by the driver (not part of meta.h). */
sqlite3 *brt_meta_sqlite_handle(brt_meta *m);

static char tmp_dir[64];
static char db_path[128];
static unsigned char reopen_secret[32];

static void remove_tmp_dir(void)
{
	DIR *dir = opendir(tmp_dir);
	struct dirent *e;

	if (!dir)
		return;
	while ((e = readdir(dir)) != NULL) {
		char path[512];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmp_dir, e->d_name);
		unlink(path);
	}
	closedir(dir);
	rmdir(tmp_dir);
}

static brt_meta *open_store(const char *path)
{
	brt_meta *m = NULL;
	int error = brt_meta_sqlite_open(&m, path);

	if (error)
		fprintf(stderr, "open %s: %s: %s\n", path, brt_error_name(error), brt_error_last());
	CHECK_EQ_INT(error, 0);
	return m;
}

/* One integer (or NULL -> -1) from a query on the driver's connection. */
static long long query_int(brt_meta *m, const char *sql)
{
	sqlite3 *db = brt_meta_sqlite_handle(m);
	sqlite3_stmt *st = NULL;
	long long v = -2;

	if (db && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
		else if (rc == SQLITE_DONE)
			v = -3;
	}
	if (v == -2)
		fprintf(stderr, "query failed: %s: %s\n", sql, db ? sqlite3_errmsg(db) : "no handle");
	sqlite3_finalize(st);
	return v;
}

static const char *query_text(brt_meta *m, const char *sql, char *buf, size_t size)
{
	sqlite3 *db = brt_meta_sqlite_handle(m);
	sqlite3_stmt *st = NULL;

	snprintf(buf, size, "%s", "(error)");
	if (db && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_text(st, 0))
		snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return buf;
}

/* Every repository's count of what it holds and whether the catalog
 * lists it: the number whose count is not its manifests plus its links,
 * or whose flag is not "count > 0" (0 when all are right). */
#define CONTENTS_WRONG                                                                            \
	"SELECT count(*) FROM repositories r WHERE r.listed != (r.contents > 0) OR r.contents !=" \
	" (SELECT count(*) FROM manifests m WHERE m.repository_id = r.id) +"                      \
	" (SELECT count(*) FROM repository_blobs rb WHERE rb.repository_id = r.id)"

static void test_settings(brt_meta *m)
{
	char buf[32];

	CHECK(brt_meta_sqlite_handle(m) != NULL);
	CHECK_EQ_STR(m->name, "sqlite");
	CHECK_EQ_INT(query_int(m, "PRAGMA foreign_keys"), 1);
	CHECK_EQ_STR(query_text(m, "PRAGMA journal_mode", buf, sizeof(buf)), "wal");
	CHECK_EQ_INT(query_int(m, "PRAGMA synchronous"), 2); /* FULL */
	CHECK_EQ_INT(query_int(m, "PRAGMA busy_timeout"), 5000);
	CHECK_EQ_INT(query_int(m, "PRAGMA cache_size"), -512);
	CHECK_EQ_INT(query_int(m, "PRAGMA temp_store"), 2); /* MEMORY */
	CHECK_EQ_INT(query_int(m, "PRAGMA user_version"), EXPECTED_SCHEMA_VERSION);
	CHECK_EQ_INT(query_int(m, "PRAGMA foreign_key_check"), -3); /* no violations */
	CHECK_EQ_STR(query_text(m, "PRAGMA integrity_check", buf, sizeof(buf)), "ok");
	/* Whatever the suite did, the catalog's counts are right. */
	CHECK_EQ_INT(query_int(m, CONTENTS_WRONG), 0);
}

static void test_accounts(brt_meta *m)
{
	ms_digest d = ms_digest_of("acct", 0), d2 = ms_digest_of("acct", 1);
	ms_digest man = ms_digest_of("acct-man", 0);
	const char *blobs[] = {d.s};
	char buf[64];
	char sql[256];
	brt_upload u;

	CHECK_EQ_INT(ms_link(m, "acme/a", d.s, 100, "k-acct", 1000), 0);
	CHECK_EQ_INT(ms_link(m, "acme/a", d.s, 100, "k-acct", 900), 0);
	CHECK_EQ_INT(ms_link(m, "acme/team/b", d.s, 100, "k-acct", 1000), 0);
	CHECK_EQ_INT(ms_link(m, "solo", d.s, 100, "k-acct", 1000), 0);
	CHECK_EQ_INT(ms_link(m, "acme/a", d2.s, 50, "k-acct2", 1000), 0);
	CHECK_EQ_STR(query_text(m, "SELECT account_id FROM repositories WHERE name = 'acme/team/b'", buf,
				sizeof(buf)),
		     "acme");
	CHECK_EQ_STR(query_text(m, "SELECT account_id FROM repositories WHERE name = 'solo'", buf,
				sizeof(buf)),
		     "solo");
	snprintf(sql, sizeof(sql),
		 "SELECT nlinks FROM account_blobs WHERE account_id = 'acme' AND digest = '%s'", d.s);
	/* Linked twice into acme/a, once into acme/team/b: two links. */
	CHECK_EQ_INT(query_int(m, sql), 2);
	snprintf(sql, sizeof(sql),
		 "SELECT size FROM account_blobs WHERE account_id = 'acme' AND digest = '%s'", d.s);
	CHECK_EQ_INT(query_int(m, sql), 100);
	CHECK_EQ_INT(query_int(m, "SELECT sum(size) FROM account_blobs WHERE account_id = 'acme'"), 150);
	snprintf(sql, sizeof(sql),
		 "SELECT nlinks FROM account_blobs WHERE account_id = 'solo' AND digest = '%s'", d.s);
	CHECK_EQ_INT(query_int(m, sql), 1);
	/* Re-linking refreshes touched_at but never moves it back. */
	snprintf(sql, sizeof(sql),
		 "SELECT touched_at FROM repository_blobs rb JOIN repositories r ON r.id = "
		 "rb.repository_id WHERE r.name = 'acme/a' AND rb.digest = '%s'",
		 d.s);
	CHECK_EQ_INT(query_int(m, sql), 1000);
	CHECK_EQ_INT(ms_link(m, "acme/a", d.s, 100, "k-acct", 5000), 0);
	CHECK_EQ_INT(query_int(m, sql), 5000);
	snprintf(sql, sizeof(sql),
		 "SELECT account_id = 'acme' FROM repository_blobs WHERE digest = '%s' LIMIT 1", d.s);
	CHECK_EQ_INT(query_int(m, sql), 1);

	CHECK_EQ_INT(ms_put(m, "acme/a", man.s, "v1", blobs, 1), 0);
	snprintf(sql, sizeof(sql), "SELECT account_id = 'acme' FROM manifests WHERE digest = '%s'", man.s);
	CHECK_EQ_INT(query_int(m, sql), 1);

	/* Unlinking counts down; the row goes at zero; the blob row stays. */
	CHECK_EQ_INT(ms_unlink(m, "acme/team/b", d.s), 0);
	snprintf(sql, sizeof(sql),
		 "SELECT nlinks FROM account_blobs WHERE account_id = 'acme' AND digest = '%s'", d.s);
	CHECK_EQ_INT(query_int(m, sql), 1);
	CHECK_EQ_INT(m->manifest_delete(m, "acme/a", man.s), 0);
	CHECK_EQ_INT(ms_unlink(m, "acme/a", d.s), 0);
	CHECK_EQ_INT(query_int(m, sql), -3);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM blobs WHERE digest = '%s'", d.s);
	CHECK_EQ_INT(query_int(m, sql), 1);

	memset(&u, 0, sizeof(u));
	snprintf(u.id, sizeof(u.id), "%s", "00000000000000000000000000000001");
	snprintf(u.repo, sizeof(u.repo), "%s", "acme/up");
	brt_meta_repo_account(u.account_id, u.repo);
	CHECK_EQ_INT(m->upload_create(m, &u, 0), 0);
	CHECK_EQ_INT(m->upload_create(m, &u, 0), BRT_EEXISTS);
	CHECK_EQ_STR(query_text(m,
				"SELECT account_id FROM uploads WHERE id = "
				"'00000000000000000000000000000001'",
				buf, sizeof(buf)),
		     "acme");
	CHECK_EQ_INT(m->upload_delete(m, u.id, BRT_META_ANY_GENERATION), 0);
	CHECK_EQ_INT(query_int(m, "PRAGMA foreign_key_check"), -3);
}

/* Whether any row of EXPLAIN QUERY PLAN for `sql` mentions `text`
 * (-1 if the plan cannot be had). */
static int plan_mentions(brt_meta *m, const char *sql, const char *text)
{
	sqlite3 *db = brt_meta_sqlite_handle(m);
	sqlite3_stmt *st = NULL;
	char explain[512];
	int found = 0;
	int rc;

	snprintf(explain, sizeof(explain), "EXPLAIN QUERY PLAN %s", sql);
	if (!db || sqlite3_prepare_v2(db, explain, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "plan failed: %s\n", sql);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *detail = sqlite3_column_text(st, 3);

		if (detail && strstr((const char *)detail, text))
			found = 1;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? found : -1;
}

/* What the shared suite cannot ask of every driver: how the rows look,
 * the plans of the hot and listing queries, and the refusals of input
 * that does not fit the store's fields. */
static void test_keys_sqlite(brt_meta *m)
{
	brt_access_key key;
	brt_account account;
	unsigned char secret[8];

	/* Times 0 are stored as NULL ("never"). */
	CHECK_EQ_INT(query_int(m,
			       "SELECT count(*) FROM access_keys WHERE id = '00000000000000c3'"
			       " AND expires_at IS NULL AND revoked_at IS NULL"),
		     1);
	CHECK_EQ_INT(query_int(m, "SELECT expires_at FROM access_keys WHERE id = '00000000000000ff'"),
		     1700000000000LL + 90 * 86400000LL);
	CHECK_EQ_INT(query_int(m,
			       "SELECT length(secret_hash) FROM access_keys"
			       " WHERE id = '00000000000000ff'"),
		     BRT_KEY_HASH_LEN);
	CHECK_EQ_INT(query_int(m, "SELECT typeof(secret_hash) = 'blob' FROM access_keys LIMIT 1"), 1);
	CHECK_EQ_INT(query_int(m, "SELECT length(value) FROM server_secrets WHERE name = 'suite-long'"), 64);

	/* key_get is one primary key lookup; key_list needs no sort. */
	CHECK_EQ_INT(plan_mentions(m, "SELECT * FROM access_keys WHERE id = 'x'", "SCAN"), 0);
	CHECK_EQ_INT(plan_mentions(m,
				   "SELECT * FROM access_keys WHERE account_id = 'x'"
				   " ORDER BY created_at, id",
				   "TEMP B-TREE"),
		     0);
	CHECK_EQ_INT(plan_mentions(m,
				   "SELECT * FROM access_keys WHERE account_id = 'x'"
				   " ORDER BY created_at, id",
				   "SCAN"),
		     0);

	/* Strings that do not end within their fields, empty ids, unknown
	 * permission bits, a revocation at time 0 (which would read as "not
	 * revoked") and absurd secret lengths are refused. */
	account = ms_account("0146e9b57080961e2c835363000000dd", "", 1);
	memset(account.name, 'x', sizeof(account.name));
	CHECK_EQ_INT(m->account_create(m, &account), BRT_EINVALID);
	account = ms_account("", "empty", 1);
	CHECK_EQ_INT(m->account_create(m, &account), BRT_EINVALID);
	CHECK_EQ_INT(m->account_get(m, &account, ""), BRT_ENOTFOUND);
	key = ms_key("4444444444444444", MS_ACCOUNT_A, BRT_PERM_PULL, "", 1, 0);
	memset(key.label, 'x', sizeof(key.label));
	CHECK_EQ_INT(m->key_create(m, &key), BRT_EINVALID);
	key = ms_key("4444444444444444", MS_ACCOUNT_A, BRT_PERM_PULL | 8, "", 1, 0);
	CHECK_EQ_INT(m->key_create(m, &key), BRT_EINVALID);
	key = ms_key("", MS_ACCOUNT_A, BRT_PERM_PULL, "", 1, 0);
	CHECK_EQ_INT(m->key_create(m, &key), BRT_EINVALID);
	CHECK_EQ_INT(m->key_get(m, &key, "4444444444444444"), BRT_ENOTFOUND);
	CHECK_EQ_INT(m->key_revoke(m, "00000000000000c3", 0), BRT_EINVALID);
	CHECK_EQ_INT(m->key_get(m, &key, "00000000000000c3"), 0);
	CHECK_EQ_INT(key.revoked_at, 0);
	CHECK_EQ_INT(m->secret_get(m, "zero", secret, 0), BRT_EINVALID);
	CHECK_EQ_INT(query_int(m, "SELECT count(*) FROM server_secrets WHERE name = 'zero'"), 0);

	/* A corrupt row is an I/O error, never a short hash handed out. */
	CHECK_EQ_INT(query_int(m,
			       "INSERT INTO access_keys (id, account_id, secret_hash, permissions,"
			       " created_at) VALUES ('5555555555555555',"
			       " '" MS_ACCOUNT_C "', x'00', 1, 1) RETURNING 1"),
		     1);
	CHECK_EQ_INT(m->key_get(m, &key, "5555555555555555"), BRT_EIO);
	CHECK_EQ_INT(query_int(m, "DELETE FROM access_keys WHERE id = '5555555555555555' RETURNING 1"), 1);

	CHECK_EQ_INT(m->secret_get(m, "reopen", reopen_secret, sizeof(reopen_secret)), 0);
	CHECK_EQ_INT(query_int(m, "PRAGMA foreign_key_check"), -3);
}

/* Several processes (nodes sharing the file) ask for the same fresh
 * secret at once: all must come back with the same bytes. */
static void test_secret_processes(void)
{
	enum { NODES = 3 };
	unsigned char values[NODES][32];
	pid_t pids[NODES];
	int results[NODES][2];
	int go[2];
	int i;

	CHECK(pipe(go) == 0);
	fflush(NULL);
	for (i = 0; i < NODES; i++) {
		CHECK(pipe(results[i]) == 0);
		pids[i] = fork();
		CHECK(pids[i] >= 0);
		if (pids[i] == 0) {
			brt_meta *child = NULL;
			unsigned char value[32];
			char start;

			close(go[1]);
			close(results[i][0]);
			int error = brt_meta_sqlite_open(&child, db_path);

			if (error == 0 && read(go[0], &start, 1) != 0)
				error = -100;
			if (error == 0)
				error = child->secret_get(child, "nodes", value, sizeof(value));
			if (error == 0 &&
			    write(results[i][1], value, sizeof(value)) != (ssize_t)sizeof(value))
				error = -101;
			if (error != 0)
				fprintf(stderr, "node %d: error %d: %s\n", i, error, brt_error_last());
			_exit(error != 0);
		}
		close(results[i][1]);
	}
	/* Every child is blocked in read(go): closing the pipe starts them. */
	close(go[0]);
	close(go[1]);
	for (i = 0; i < NODES; i++) {
		int status = -1;

		memset(values[i], 0, sizeof(values[i]));
		CHECK(read(results[i][0], values[i], sizeof(values[i])) == (ssize_t)sizeof(values[i]));
		close(results[i][0]);
		if (pids[i] > 0)
			CHECK(waitpid(pids[i], &status, 0) == pids[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	for (i = 1; i < NODES; i++)
		CHECK(memcmp(values[0], values[i], sizeof(values[0])) == 0);
	CHECK(ms_bytes_nonzero(values[0], sizeof(values[0])));
}

/* A database made before version 2 (migration 1 only, with data) is
 * brought up to date on open and keeps its data. */
static void test_upgrade_from_v1(void)
{
	char path[160];
	brt_account account;
	brt_access_key key;
	unsigned char secret[32];
	sqlite3 *db = NULL;
	brt_meta *m;

	snprintf(path, sizeof(path), "%s/v1.db", tmp_dir);
	if (!(m = open_store(path)))
		return;
	CHECK_EQ_INT(ms_link(m, MS_ACCOUNT_A "/app", ms_digest_of("v1", 0).s, 1, "k", 1), 0);
	m->free(m);
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db,
				  UNDO_V6
				  "DROP TABLE access_keys; DROP TABLE server_secrets;"
				  "DROP INDEX uploads_account; DROP INDEX uploads_updated;"
				  "ALTER TABLE blobs DROP COLUMN damaged_at;"
				  "ALTER TABLE uploads DROP COLUMN backend_state; DROP TABLE settings;"
				  "INSERT INTO accounts (id, name, created_at) VALUES ('" MS_ACCOUNT_A
				  "', NULL, 77);"
				  "PRAGMA user_version = 1",
				  NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(db);

	if (!(m = open_store(path)))
		return;
	CHECK_EQ_INT(query_int(m, "PRAGMA user_version"), EXPECTED_SCHEMA_VERSION);
	CHECK_EQ_INT(m->repo_exists(m, MS_ACCOUNT_A "/app"), 0);
	/* A NULL name from before reads as "". */
	CHECK_EQ_INT(m->account_get(m, &account, MS_ACCOUNT_A), 0);
	CHECK_EQ_STR(account.name, "");
	CHECK_EQ_INT(account.created_at, 77);
	key = ms_key("6666666666666666", MS_ACCOUNT_A, BRT_PERM_PULL, "after upgrade", 5, 0);
	CHECK_EQ_INT(m->key_create(m, &key), 0);
	CHECK_EQ_INT(m->key_get(m, &key, "6666666666666666"), 0);
	CHECK_EQ_STR(key.label, "after upgrade");
	CHECK_EQ_INT(m->secret_get(m, "upgraded", secret, sizeof(secret)), 0);
	CHECK_EQ_INT(query_int(m, "PRAGMA foreign_key_check"), -3);
	m->free(m);
}

/* The catalog as it was defined before migration 7, all in one string. */
#define CATALOG_BY_PROBES                                                                    \
	"SELECT COALESCE(group_concat(name, ','), '') FROM (SELECT name FROM repositories r" \
	" WHERE EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)"             \
	" OR EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.repository_id = r.id) ORDER BY name)"

/* The whole catalog through the driver, paged by 2, joined by ",". */
static const char *catalog_all(brt_meta *m, char *buf, size_t size)
{
	char last[BRT_NAME_MAX + 1] = "";
	size_t used = 0;
	int rounds = 0, more = 1;

	buf[0] = '\0';
	while (more && rounds++ < 1000) {
		ms_names page;
		size_t i;

		CHECK_EQ_INT(ms_catalog(m, NULL, last[0] ? last : NULL, 2, &page, &more), 0);
		for (i = 0; i < page.count; i++) {
			int w = snprintf(buf + used, size - used, "%s%s", used ? "," : "", page.names[i]);

			if (w < 0 || (size_t)w >= size - used)
				return "(overflow)";
			used += (size_t)w;
		}
		if (page.count == 0)
			break;
		snprintf(last, sizeof(last), "%s", page.names[page.count - 1]);
	}
	return buf;
}

/* A version 6 database (the catalog probed manifests and links per name)
 * is counted on open: the same catalog, every count right, and the counts
 * move with the next link. */
static void test_upgrade_from_v6(void)
{
	ms_digest a = ms_digest_of("v6", 0), b = ms_digest_of("v6", 1), man = ms_digest_of("v6-man", 0);
	const char *blobs[] = {a.s, b.s};
	char path[160], before[4096], after[4096], text[4096];
	sqlite3 *db = NULL;
	brt_upload u;
	brt_meta *m;
	ms_names names;
	int more;

	snprintf(path, sizeof(path), "%s/v6.db", tmp_dir);
	if (!(m = open_store(path)))
		return;
	CHECK_EQ_INT(ms_link(m, MS_ACCOUNT_A "/links", a.s, 1, "k/a", 1), 0);
	CHECK_EQ_INT(ms_link(m, MS_ACCOUNT_A "/links", b.s, 1, "k/b", 1), 0);
	CHECK_EQ_INT(ms_link(m, MS_ACCOUNT_A "/both", a.s, 1, NULL, 1), 0);
	CHECK_EQ_INT(ms_link(m, MS_ACCOUNT_A "/both", b.s, 1, NULL, 1), 0);
	CHECK_EQ_INT(ms_put(m, MS_ACCOUNT_A "/both", man.s, "t", blobs, 2), 0);
	CHECK_EQ_INT(ms_link(m, MS_ACCOUNT_B "/manifest-only", a.s, 1, NULL, 1), 0);
	CHECK_EQ_INT(ms_link(m, MS_ACCOUNT_B "/manifest-only", b.s, 1, NULL, 1), 0);
	CHECK_EQ_INT(ms_put(m, MS_ACCOUNT_B "/manifest-only", man.s, "t", blobs, 2), 0);
	CHECK_EQ_INT(ms_unlink(m, MS_ACCOUNT_B "/manifest-only", a.s), 0);
	CHECK_EQ_INT(ms_unlink(m, MS_ACCOUNT_B "/manifest-only", b.s), 0);
	CHECK_EQ_INT(ms_link(m, MS_ACCOUNT_B "/emptied", a.s, 1, NULL, 1), 0);
	CHECK_EQ_INT(ms_unlink(m, MS_ACCOUNT_B "/emptied", a.s), 0);
	memset(&u, 0, sizeof(u));
	snprintf(u.id, sizeof(u.id), "%s", "60000000000000000000000000000006");
	snprintf(u.repo, sizeof(u.repo), "%s", MS_ACCOUNT_C "/upload-only");
	brt_meta_repo_account(u.account_id, u.repo);
	CHECK_EQ_INT(m->upload_create(m, &u, 0), 0);
	m->free(m);
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db, UNDO_V7 "PRAGMA user_version = 6", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	if (!(m = open_store(path)))
		return;
	CHECK_EQ_INT(query_int(m, "PRAGMA user_version"), EXPECTED_SCHEMA_VERSION);
	snprintf(before, sizeof(before), "%s", query_text(m, CATALOG_BY_PROBES, text, sizeof(text)));
	CHECK_EQ_STR(before, MS_ACCOUNT_A "/both," MS_ACCOUNT_A "/links," MS_ACCOUNT_B "/manifest-only");
	CHECK_EQ_STR(catalog_all(m, after, sizeof(after)), before);
	CHECK_EQ_INT(query_int(m, CONTENTS_WRONG), 0);
	CHECK_EQ_INT(query_int(m, "SELECT contents FROM repositories WHERE name = '" MS_ACCOUNT_A "/both'"),
		     3);
	CHECK_EQ_INT(query_int(m, "SELECT contents FROM repositories WHERE name = '" MS_ACCOUNT_C
				  "/upload-only'"),
		     0);
	CHECK_EQ_INT(ms_link(m, MS_ACCOUNT_C "/upload-only", a.s, 1, NULL, 2), 0);
	CHECK_EQ_INT(ms_catalog(m, MS_ACCOUNT_C "/", NULL, 10, &names, &more), 0);
	CHECK_EQ_STR(ms_names_join(&names), MS_ACCOUNT_C "/upload-only");
	CHECK_EQ_INT(query_int(m, CONTENTS_WRONG), 0);
	CHECK_EQ_INT(query_int(m, "PRAGMA foreign_key_check"), -3);
	m->free(m);
}

/* A version 4 database (before upload backend state and the epoch row),
 * with an open session and a key, is brought up to date on open: the
 * session reads back without backend state and can take one, and
 * revocations move the epoch. */
static void test_upgrade_from_v4(void)
{
	char path[160];
	unsigned char state[3] = {1, 0, 2};
	brt_access_key key;
	brt_account account;
	brt_upload u;
	brt_pool pool;
	sqlite3 *db = NULL;
	brt_meta *m;
	uint64_t e0;

	snprintf(path, sizeof(path), "%s/v4.db", tmp_dir);
	if (!(m = open_store(path)))
		return;
	account = ms_account(MS_ACCOUNT_A, "v4", 1);
	key = ms_key("7777777777777777", MS_ACCOUNT_A, BRT_PERM_PULL, "v4", 2, 0);
	memset(&u, 0, sizeof(u));
	snprintf(u.id, sizeof(u.id), "%s", "40000000000000000000000000000004");
	snprintf(u.repo, sizeof(u.repo), "%s", MS_ACCOUNT_A "/app");
	brt_meta_repo_account(u.account_id, u.repo);
	u.offset = 9;
	CHECK_EQ_INT(m->account_create(m, &account), 0);
	CHECK_EQ_INT(m->key_create(m, &key), 0);
	CHECK_EQ_INT(m->upload_create(m, &u, 0), 0);
	m->free(m);
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db,
				  UNDO_V6
				  "ALTER TABLE uploads DROP COLUMN backend_state; DROP TABLE settings;"
				  "PRAGMA user_version = 4",
				  NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(db);

	brt_pool_init(&pool, 1 << 16);
	if (!(m = open_store(path)))
		return;
	CHECK_EQ_INT(query_int(m, "PRAGMA user_version"), EXPECTED_SCHEMA_VERSION);
	CHECK_EQ_INT(query_int(m, "SELECT value FROM settings WHERE name = 'key_epoch'"), 0);
	memset(&u, 0x5a, sizeof(u));
	CHECK_EQ_INT(m->upload_get(m, &u, &pool, "40000000000000000000000000000004"), 0);
	CHECK_EQ_INT(u.offset, 9);
	CHECK_EQ_STR(u.account_id, MS_ACCOUNT_A);
	CHECK(u.backend_state == NULL && u.backend_state_len == 0);
	u.backend_state = state;
	u.backend_state_len = sizeof(state);
	CHECK_EQ_INT(m->upload_update(m, &u), 0);
	CHECK_EQ_INT(m->upload_get(m, &u, &pool, u.id), 0);
	CHECK(u.backend_state_len == 3 && memcmp(u.backend_state, state, 3) == 0);
	e0 = m->key_epoch(m);
	CHECK_EQ_INT(m->key_revoke(m, key.id, 3), 0);
	CHECK(m->key_epoch(m) != e0);
	CHECK_EQ_INT(query_int(m, "SELECT value FROM settings WHERE name = 'key_epoch'"), 1);
	CHECK_EQ_INT(query_int(m, "PRAGMA foreign_key_check"), -3);
	m->free(m);
	brt_pool_clear(&pool);
}

/* A revocation by another process (the admin CLI) is seen by a running
 * store's next key_epoch, with no file of its own beside the database. */
static void test_epoch_processes(void)
{
	char path[160];
	brt_access_key key;
	brt_meta *m;
	uint64_t e0;
	pid_t pid;
	int status = -1;

	if (!(m = open_store(db_path)))
		return;
	key = ms_key("8888888888888888", MS_ACCOUNT_B, BRT_PERM_PULL, "cli", 3, 0);
	CHECK_EQ_INT(m->key_create(m, &key), 0);
	e0 = m->key_epoch(m);
	CHECK(m->key_epoch(m) == e0);
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		brt_meta *child = NULL;

		if (brt_meta_sqlite_open(&child, db_path) != 0 || child->key_revoke(child, key.id, 4) != 0)
			_exit(1);
		child->free(child);
		_exit(0);
	}
	if (pid > 0) {
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	CHECK(m->key_epoch(m) != e0);
	CHECK_EQ_INT(m->key_get(m, &key, "8888888888888888"), 0);
	CHECK_EQ_INT(key.revoked_at, 4);
	snprintf(path, sizeof(path), "%s-epoch", db_path);
	CHECK(access(path, F_OK) != 0);
	m->free(m);
}

static double elapsed_ns(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec);
}

/* What key_epoch costs on every request: with nothing written since the
 * last call (the common case), and right after another connection
 * committed (the epoch row is read again).  Printed for the record; the
 * bounds only catch a call that went to disk every time. */
static void test_epoch_cost(void)
{
	enum { QUIET = 200000, WRITES = 300 };
	struct timespec t0, t1;
	double quiet_ns, written_ns = 0;
	sqlite3 *other = NULL;
	brt_meta *m;
	uint64_t sum = 0;
	int i;

	if (!(m = open_store(db_path)))
		return;
	sum += m->key_epoch(m);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < QUIET; i++)
		sum += m->key_epoch(m);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	quiet_ns = elapsed_ns(&t0, &t1) / QUIET;

	CHECK_EQ_INT(sqlite3_open(db_path, &other), SQLITE_OK);
	sqlite3_busy_timeout(other, 5000);
	for (i = 0; i < WRITES; i++) {
		CHECK_EQ_INT(sqlite3_exec(other,
					  "UPDATE accounts SET name = name || '' WHERE id = '" MS_ACCOUNT_C
					  "'",
					  NULL, NULL, NULL),
			     SQLITE_OK);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		sum += m->key_epoch(m);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		written_ns += elapsed_ns(&t0, &t1);
	}
	written_ns /= WRITES;
	sqlite3_close(other);
	printf("key_epoch: %.0f ns per call with no writes, %.0f ns after another connection's commit"
	       " (checksum %llu)\n",
	       quiet_ns, written_ns, (unsigned long long)sum);
	CHECK(quiet_ns < 50000);
	CHECK(written_ns < 1000000);
	m->free(m);
}

static int put_persist(brt_meta *m, const char *repo, const char *tag, const char *label)
{
	ms_digest d = ms_digest_of(label, 0), man = ms_digest_of(label, 1);
	const char *blobs[] = {d.s};
	int error;

	if ((error = ms_link(m, repo, d.s, 3, "k", 1)) < 0)
		return error;
	return ms_put(m, repo, man.s, tag, blobs, 1);
}

static void test_reopen(void)
{
	ms_digest man = ms_digest_of("persist", 1);
	brt_manifest got;
	brt_meta *m;
	brt_pool pool;

	brt_pool_init(&pool, 1 << 16);
	if (!(m = open_store(db_path)))
		return;
	CHECK_EQ_INT(m->manifest_get(m, &got, &pool, "persist/app", "keep", 0), 0);
	CHECK_EQ_STR(got.digest, man.s);
	CHECK_EQ_INT(m->repo_exists(m, "blob/a"), 0);
	CHECK_EQ_INT(query_int(m, "PRAGMA user_version"), EXPECTED_SCHEMA_VERSION);
	/* Server secrets and keys outlive the process that made them. */
	{
		unsigned char secret[sizeof(reopen_secret)];
		brt_access_key key;

		memset(secret, 0, sizeof(secret));
		CHECK_EQ_INT(m->secret_get(m, "reopen", secret, sizeof(secret)), 0);
		CHECK(memcmp(secret, reopen_secret, sizeof(secret)) == 0);
		CHECK_EQ_INT(m->key_get(m, &key, "00000000000000b2"), 0);
		CHECK_EQ_INT(key.revoked_at, 5000);
	}
	m->free(m);
	brt_pool_clear(&pool);
}

/* The writer dies right after its call returns, without closing. */
static void test_crashed_writer(void)
{
	ms_digest man = ms_digest_of("crash", 1);
	brt_manifest got;
	brt_pool pool;
	brt_meta *m;
	pid_t pid;
	int status = -1;

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		brt_meta *child = NULL;

		if (brt_meta_sqlite_open(&child, db_path) != 0 ||
		    put_persist(child, "crash/app", "crash", "crash") != 0)
			_exit(1);
		_exit(0);
	}
	if (pid < 0)
		return;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	brt_pool_init(&pool, 1 << 16);
	if (!(m = open_store(db_path)))
		return;
	CHECK_EQ_INT(m->manifest_get(m, &got, &pool, "crash/app", "crash", 0), 0);
	CHECK_EQ_STR(got.digest, man.s);
	m->free(m);
	brt_pool_clear(&pool);
}

static void test_refused_opens(void)
{
	char path[160];
	sqlite3 *db = NULL;
	brt_meta *m = (brt_meta *)1;

	CHECK_EQ_INT(brt_meta_sqlite_open(&m, "/nonexistent-berth-dir/meta.db"), BRT_EIO);
	CHECK(m == NULL);

	/* A database from a newer Berth is left alone. */
	snprintf(path, sizeof(path), "%s/newer.db", tmp_dir);
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	m = (brt_meta *)1;
	CHECK_EQ_INT(brt_meta_sqlite_open(&m, path), BRT_EIO);
	CHECK(m == NULL);
	CHECK(strstr(brt_error_last(), "99") != NULL);
}

typedef struct lock_holder {
	sqlite3 *db;
	int rc;
} lock_holder;

static void *release_lock_later(void *arg)
{
	lock_holder *h = arg;
	struct timespec pause = {0, 300000000L};

	nanosleep(&pause, NULL);
	h->rc = sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
	return NULL;
}

/* Another process or connection holding the write lock is waited out. */
static void test_waits_for_writer(brt_meta *m)
{
	ms_digest d = ms_digest_of("busy", 0);
	lock_holder h = {NULL, -1};
	pthread_t thread;
	double start;

	CHECK_EQ_INT(sqlite3_open(db_path, &h.db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(h.db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	CHECK(pthread_create(&thread, NULL, release_lock_later, &h) == 0);
	start = ms_now();
	CHECK_EQ_INT(ms_link(m, "busy/app", d.s, 1, "k", 1), 0);
	CHECK(ms_now() - start > 0.2);
	pthread_join(thread, NULL);
	CHECK_EQ_INT(h.rc, SQLITE_OK);
	sqlite3_close(h.db);
}

/* A thread that used one store, outlives it and then uses the next one
 * (which may get the same memory or key) must get a fresh connection. */
typedef struct relay {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	brt_meta *m;
	int step;
	int error_first;
	int error_second;
} relay;

static void relay_wait(relay *r, int step)
{
	pthread_mutex_lock(&r->lock);
	while (r->step < step)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
}

static void relay_set(relay *r, int step)
{
	pthread_mutex_lock(&r->lock);
	r->step = step;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void *relay_thread(void *arg)
{
	relay *r = arg;
	ms_digest d = ms_digest_of("relay", 0);

	relay_wait(r, 1);
	r->error_first = ms_link(r->m, "relay/one", d.s, 1, "k", 1);
	relay_set(r, 2);
	relay_wait(r, 3);
	r->error_second = ms_link(r->m, "relay/two", d.s, 1, "k", 1);
	if (r->error_second == 0)
		r->error_second = r->m->repo_exists(r->m, "relay/one");
	relay_set(r, 4);
	return NULL;
}

static void test_thread_outlives_store(void)
{
	relay r;
	pthread_t thread;
	brt_meta *m;

	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	r.error_first = r.error_second = -100;
	CHECK(pthread_create(&thread, NULL, relay_thread, &r) == 0);
	r.m = open_store(db_path);
	relay_set(&r, 1);
	relay_wait(&r, 2);
	if (r.m)
		r.m->free(r.m);
	r.m = m = open_store(db_path);
	relay_set(&r, 3);
	relay_wait(&r, 4);
	pthread_join(thread, NULL);
	CHECK_EQ_INT(r.error_first, 0);
	CHECK_EQ_INT(r.error_second, 0);
	if (m)
		m->free(m);
	pthread_cond_destroy(&r.cond);
	pthread_mutex_destroy(&r.lock);
}

/* Commits do not checkpoint the WAL themselves (that would make one
 * request in a few hundred wait for the database file's sync); the store's
 * checkpointer does, so the log stays near the 1 000-page threshold
 * however many commits come.  6 000 session updates (each at least one
 * log page) in bursts leave a log of at most 3 000 pages; without
 * checkpoints it would hold 6 000 or more. */
static void test_checkpoints(void)
{
	char path[PATH_MAX], wal[PATH_MAX + 8];
	brt_meta *m;
	brt_upload u;
	struct stat st;
	long long page;

	snprintf(path, sizeof(path), "%s/ckpt.db", tmp_dir);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (!(m = open_store(path)))
		return;
	page = query_int(m, "PRAGMA page_size");
	memset(&u, 0, sizeof(u));
	snprintf(u.id, sizeof(u.id), "%s", "0123456789abcdef0123456789abcdef");
	snprintf(u.repo, sizeof(u.repo), "%s", "ckpt/app");
	brt_meta_repo_account(u.account_id, u.repo);
	u.hash_state_len = 40;
	CHECK_EQ_INT(m->upload_create(m, &u, 0), 0);
	for (int i = 0; i < 6000; i++) {
		u.offset = (uint64_t)i;
		u.hash_state[i % 40] ^= 1;
		if (m->upload_update(m, &u) != 0) {
			CHECK_EQ_INT(m->upload_update(m, &u), 0);
			break;
		}
		u.generation++;
		if (i % 500 == 499)
			usleep(100 * 1000); /* let the checkpointer's sync finish */
	}
	usleep(500 * 1000);
	CHECK_EQ_INT(stat(wal, &st), 0);
	CHECK(page > 0 && (long long)st.st_size <= 3000 * (page + 24) + 32);
	if ((long long)st.st_size > 3000 * (page + 24) + 32)
		fprintf(stderr, "WAL of %lld bytes after 6000 commits\n", (long long)st.st_size);
	CHECK_EQ_INT(m->upload_get(m, &u, NULL, u.id), 0);
	CHECK_EQ_INT(u.offset, 5999);
	m->free(m);
}

int main(void)
{
	brt_meta *m;

	snprintf(tmp_dir, sizeof(tmp_dir), "%s", "/tmp/berth-meta-XXXXXX");
	if (!mkdtemp(tmp_dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(db_path, sizeof(db_path), "%s/meta.db", tmp_dir);

	{
		char gc_path[PATH_MAX + 16];

		snprintf(gc_path, sizeof(gc_path), "%s/gc.db", tmp_dir);
		if ((m = open_store(gc_path)) != NULL) {
			meta_suite_lifecycle(m);
			CHECK_EQ_INT(query_int(m, CONTENTS_WRONG), 0);
			m->free(m);
		}
	}
	if ((m = open_store(db_path)) != NULL) {
		test_settings(m);
		meta_suite_run(m);
		test_accounts(m);
		test_keys_sqlite(m);
		test_waits_for_writer(m);
		CHECK_EQ_INT(put_persist(m, "persist/app", "keep", "persist"), 0);
		test_settings(m);
		m->free(m);
	}
	test_reopen();
	test_secret_processes();
	test_upgrade_from_v1();
	test_upgrade_from_v4();
	test_upgrade_from_v6();
	test_epoch_processes();
	test_epoch_cost();
	test_crashed_writer();
	test_refused_opens();
	test_thread_outlives_store();
	test_checkpoints();
	remove_tmp_dir();
	return check_exit("test_meta_sqlite");
}
