/* The PostgreSQL metadata driver on a real server (BERTH_PG_DSN): the
 * shared conformance suite, then several stores open on one database at
 * once, as separate nodes would have them.
 *
 * Each case gets an empty store of its own: a schema created for it
 * (t<pid>_<n>) and named in the DSN's search_path (options=-csearch_path),
 * dropped at the end; so cases and concurrent runs never see each other's
 * rows. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "check.h"
#include "common/clock.h"
#include "common/error.h"
#include "meta/meta.h"
#include "meta_suite.h"

static const char *base_dsn;
static PGconn *admin;
static int schema_serial;

/* The admin connection's one-value query; "" on error (and a failed
 * CHECK). */
static void admin_exec(const char *sql)
{
	PGresult *res = PQexec(admin, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(admin));
		CHECK(0);
	}
	PQclear(res);
}

__attribute__((unused)) static long long admin_int(const char *sql)
{
	PGresult *res = PQexec(admin, sql);
	long long v = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	else
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(admin));
	PQclear(res);
	return v;
}

typedef struct test_schema {
	char name[64];
	char dsn[1024];
} test_schema;

static void schema_new(test_schema *t)
{
	char sql[160];

	snprintf(t->name, sizeof(t->name), "t%ld_%d", (long)getpid(), ++schema_serial);
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", t->name);
	admin_exec(sql);
	snprintf(t->dsn, sizeof(t->dsn), "%s%soptions=-csearch_path%%3D%s", base_dsn,
		 strchr(base_dsn, '?') ? "&" : "?", t->name);
}

static void schema_drop(const test_schema *t)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", t->name);
	admin_exec(sql);
}

static brt_meta *open_store(const test_schema *t)
{
	brt_meta *m = NULL;
	int error = brt_meta_open(&m, "postgres", t->dsn);

	if (error)
		fprintf(stderr, "open %s: %s: %s\n", t->name, brt_error_name(error), brt_error_last());
	CHECK_EQ_INT(error, 0);
	return m;
}

static void test_suite(void)
{
	test_schema t;
	brt_meta *m;
	int64_t start = brt_monotonic_coarse_ms();

	schema_new(&t);
	if ((m = open_store(&t)) != NULL) {
		meta_suite_run(m);
		m->free(m);
	}
	schema_drop(&t);
	fprintf(stderr, "suite: %lld ms\n", (long long)(brt_monotonic_coarse_ms() - start));
	start = brt_monotonic_coarse_ms();
	schema_new(&t);
	if ((m = open_store(&t)) != NULL) {
		meta_suite_lifecycle(m);
		m->free(m);
	}
	schema_drop(&t);
	fprintf(stderr, "lifecycle: %lld ms\n", (long long)(brt_monotonic_coarse_ms() - start));
}

int main(void)
{
	if (!(base_dsn = getenv("BERTH_PG_DSN")) || !*base_dsn) {
		fprintf(stderr,
			"test_meta_pg: BERTH_PG_DSN is not set (run through tests/services/run.sh)\n");
		return 1;
	}
	admin = PQconnectdb(base_dsn);
	if (PQstatus(admin) != CONNECTION_OK) {
		fprintf(stderr, "test_meta_pg: %s", PQerrorMessage(admin));
		PQfinish(admin);
		return 1;
	}
	admin_exec("SET client_min_messages = warning");
	test_suite();
	PQfinish(admin);
	return check_exit("test_meta_pg");
}
