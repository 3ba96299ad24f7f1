/* Costs that stay flat as the registry grows (issue 10): every statement
 * the SQLite driver prepares is planned on a real store, and none may scan
 * a table or an index from its start or sort in a temporary b-tree, except
 * the few whole-store walks listed below with their reason.  A request's
 * cost then depends on the rows it returns, not on the rows the store
 * holds.  Checked twice: on the fresh store (as berthd runs: it never
 * gathers statistics), and after ANALYZE of a store where one repository
 * holds most tags and manifests (an operator may run ANALYZE; the listing
 * plans must not flip to a scan then).  Then a paging walk over that
 * repository's tags and over the catalog with a small page checks what the
 * index-ordered pages return: every name once, in byte order, `more` false
 * only on the last page.  BRT_PLANS_VERBOSE=1 prints every plan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "meta/meta.h"
#include "meta/sql/schema.h"
#include "common/error.h"

/* Test hook exported by the driver (not part of meta.h). */
sqlite3 *brt_meta_sqlite_handle(brt_meta *m);

/* Statements that read the whole store by design, and why that is fine. */
static const struct {
	enum brt_sql_stmt id;
	const char *why;
} whole_store[] = {
	{BRT_SQL_BLOB_WALK, "fsck walks every blob row"},
	{BRT_SQL_MANIFEST_WALK, "fsck walks every manifest"},
	{BRT_SQL_REPO_COUNTS_WRONG, "fsck counts every repository's rows"},
	{BRT_SQL_REPO_RECOUNT, "fsck --repair counts every repository's rows"},
	{BRT_SQL_ACCOUNT_LIST, "admin CLI lists every account"},
	{BRT_SQL_POLICY_LIST, "admin CLI lists every policy"},
	{BRT_SQL_USAGE_LIST, "admin CLI: usage of every account (or one)"},
	/* Bounded by one manifest's or one repository's tags, not the store. */
	{BRT_SQL_POLICY_MANIFEST_TAGS, "sorts the tags of one manifest, all of which it returns"},
	{BRT_SQL_POLICY_TAG_CUTOFF, "retention: sorts one repository's tags by push time"},
};

static int allowed_whole(int id)
{
	size_t i;

	for (i = 0; i < sizeof(whole_store) / sizeof(whole_store[0]); i++)
		if ((int)whole_store[i].id == id)
			return 1;
	return 0;
}

/* A plan row that reads rows the result does not need: a SCAN of a table or
 * index (SQLite says "SCAN t" or "SCAN t USING ... INDEX" for a walk from
 * the start; "SEARCH" is a bounded range), or a sort. */
static int row_grows(const char *detail)
{
	return strncmp(detail, "SCAN ", 5) == 0 || strstr(detail, "USE TEMP B-TREE") != NULL;
}

/* Plan statement `id`; 1 if some row grows with the store, 0 if none, -1
 * if it cannot be planned. */
static int plan_grows(sqlite3 *db, int id, int verbose)
{
	const char *sql = brt_sql_text[id];
	sqlite3_stmt *st = NULL;
	char *explain;
	int grows = 0;
	int rc;

	if (!sql || strncmp(sql, "BEGIN", 5) == 0 || strcmp(sql, "COMMIT") == 0 ||
	    strcmp(sql, "ROLLBACK") == 0 || strncmp(sql, "PRAGMA", 6) == 0)
		return 0;
	if (!(explain = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql)))
		return -1;
	rc = sqlite3_prepare_v2(db, explain, -1, &st, NULL);
	sqlite3_free(explain);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "statement %d: cannot plan: %s\n", id, sqlite3_errmsg(db));
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *detail = (const char *)sqlite3_column_text(st, 3);

		if (!detail)
			continue;
		if (verbose)
			printf("  %3d %s%s\n", id, detail, row_grows(detail) ? "   <-- grows" : "");
		if (row_grows(detail))
			grows = 1;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (grows && !allowed_whole(id))
		fprintf(stderr, "statement %d reads more than it returns:\n  %s\n", id, sql);
	return grows;
}

/* A catalog page is one range of the listed names' own index, which
 * answers the query alone: no probe of manifests or links per name. */
static void check_catalog_plan(sqlite3 *db, int id)
{
	char *explain = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", brt_sql_text[id]);
	sqlite3_stmt *st = NULL;
	int rows = 0, covered = 0;

	CHECK(explain != NULL);
	if (explain && sqlite3_prepare_v2(db, explain, -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *detail = (const char *)sqlite3_column_text(st, 3);

			rows++;
			if (detail &&
			    strncmp(detail, "SEARCH r USING COVERING INDEX repositories_listed", 49) == 0)
				covered++;
			else
				fprintf(stderr, "catalog statement %d: %s\n", id, detail ? detail : "?");
		}
	}
	sqlite3_finalize(st);
	sqlite3_free(explain);
	CHECK_EQ_INT(rows, 1);
	CHECK_EQ_INT(covered, 1);
}

static void check_plans(brt_meta *m, const char *when, int verbose)
{
	sqlite3 *db = brt_meta_sqlite_handle(m);
	int id;

	CHECK(db != NULL);
	if (!db)
		return;
	if (verbose)
		printf("plans (%s):\n", when);
	for (id = 0; id < BRT_SQL_COUNT; id++) {
		int grows = plan_grows(db, id, verbose);

		CHECK(grows >= 0);
		if (!allowed_whole(id))
			CHECK_EQ_INT(grows, 0);
	}
	check_catalog_plan(db, BRT_SQL_CATALOG_AFTER);
	check_catalog_plan(db, BRT_SQL_CATALOG_AFTER_BELOW);
	check_catalog_plan(db, BRT_SQL_CATALOG_FROM);
	check_catalog_plan(db, BRT_SQL_CATALOG_FROM_BELOW);
}

static int exec(brt_meta *m, const char *sql)
{
	char *message = NULL;
	int rc = sqlite3_exec(brt_meta_sqlite_handle(m), sql, NULL, NULL, &message);

	if (rc != SQLITE_OK)
		fprintf(stderr, "%s: %s\n", sql, message ? message : "?");
	sqlite3_free(message);
	return rc == SQLITE_OK ? 0 : -1;
}

/* A store where repository 1 ("big/many") holds TAGS tagged manifests and
 * REPOS - 1 other repositories one manifest each, written straight into the
 * tables (as bench/scale_fill.py does, at a size a unit test can afford). */
enum { TAGS = 3000, REPOS = 1500 };

static int fill(brt_meta *m)
{
	return exec(m,
		    "BEGIN;"
		    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)"
		    " INSERT INTO repositories (id, account_id, name, created_at)"
		    " SELECT i, 'acct' || (i % 100), CASE i WHEN 1 THEN 'big/many'"
		    "  ELSE 'r' || (i % 10) || '/app-' || i END, 1 FROM n;"
		    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4499)"
		    " INSERT INTO manifests (id, repository_id, account_id, digest, media_type, size,"
		    " payload, created_at)"
		    " SELECT i, CASE WHEN i <= 3000 THEN 1 ELSE i - 2999 END,"
		    "  'acct' || ((CASE WHEN i <= 3000 THEN 1 ELSE i - 2999 END) % 100),"
		    "  'sha256:' || printf('%064x', i), 'application/vnd.oci.image.manifest.v1+json', 2,"
		    "  '{}', 1 FROM n;"
		    /* tags of the big repository: "1.<k/100>.<k%100>", so byte order
		     * is not insertion order; "v0" in every other repository */
		    "INSERT INTO tags (repository_id, name, manifest_id, updated_at)"
		    " SELECT repository_id, CASE WHEN repository_id = 1"
		    "  THEN '1.' || ((id - 1) / 100) || '.' || ((id - 1) % 100) ELSE 'v0' END, id, 1"
		    " FROM manifests;"
		    /* what the inserts above would have counted (migration 7's
		     * backfill), and as many repositories again that only ever had
		     * an upload session, among the others in name order */
		    "UPDATE repositories SET contents ="
		    " (SELECT count(*) FROM manifests m WHERE m.repository_id = repositories.id);"
		    "UPDATE repositories SET listed = 1 WHERE contents > 0;"
		    "WITH RECURSIVE n(i) AS (SELECT 1501 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)"
		    " INSERT INTO repositories (id, account_id, name, created_at)"
		    " SELECT i, 'acct' || (i % 100), 'r' || (i % 10) || '/app-' || i, 1 FROM n;"
		    "COMMIT;");
}

typedef struct {
	char **names;
	size_t count;
	size_t cap;
} name_list;

static int collect(const char *name, void *payload)
{
	name_list *l = payload;

	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		char **grown = realloc(l->names, cap * sizeof(*grown));

		if (!grown)
			return BRT_ENOMEM;
		l->names = grown;
		l->cap = cap;
	}
	if (!(l->names[l->count] = strdup(name)))
		return BRT_ENOMEM;
	l->count++;
	return 0;
}

static void names_free(name_list *l)
{
	size_t i;

	for (i = 0; i < l->count; i++)
		free(l->names[i]);
	free(l->names);
	memset(l, 0, sizeof(*l));
}

/* Walk a listing in pages of `page`, each starting after the last name of
 * the one before, as clients follow the Link header. */
static void walk(brt_meta *m, int tags, size_t page, size_t expect)
{
	name_list all = {0};
	char last[256] = "";
	size_t pages = 0;
	size_t i;
	int more = 1;

	while (more && pages < expect + 2) {
		size_t before = all.count;
		int error =
			tags ? m->tags_list(m, "big/many", last[0] ? last : NULL, page, collect, &all, &more)
			     : m->catalog_list(m, NULL, last[0] ? last : NULL, page, collect, &all, &more);

		CHECK_EQ_INT(error, 0);
		if (error)
			break;
		pages++;
		/* a full page unless it is the last one */
		if (more)
			CHECK_EQ_INT(all.count - before, page);
		else
			CHECK(all.count - before <= page);
		if (all.count == before)
			break;
		snprintf(last, sizeof(last), "%s", all.names[all.count - 1]);
	}
	CHECK_EQ_INT(all.count, expect);
	CHECK_EQ_INT(pages, (expect + page - 1) / page);
	for (i = 1; i < all.count; i++)
		CHECK(strcmp(all.names[i - 1], all.names[i]) < 0);
	names_free(&all);
}

int main(void)
{
	char dir[] = "/tmp/berth-plans-XXXXXX";
	char path[128];
	brt_meta *m = NULL;
	const char *v = getenv("BRT_PLANS_VERBOSE");
	int verbose = v && strcmp(v, "1") == 0;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/meta.db", dir);
	CHECK_EQ_INT(brt_meta_sqlite_open(&m, path), 0);
	if (m) {
		check_plans(m, "fresh store", verbose);
		CHECK_EQ_INT(fill(m), 0);
		walk(m, 1, 1000, TAGS);
		walk(m, 1, 7, TAGS);
		walk(m, 0, 100, REPOS);
		CHECK_EQ_INT(exec(m, "ANALYZE"), 0);
		check_plans(m, "after ANALYZE", verbose);
		walk(m, 1, 1000, TAGS);
		walk(m, 0, 7, REPOS);
		brt_meta_free(m);
	}
	snprintf(path, sizeof(path), "%s/meta.db", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/meta.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/meta.db-shm", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/meta.db-keys", dir);
	unlink(path);
	rmdir(dir);
	return check_exit("test_meta_sqlite_plans");
}
