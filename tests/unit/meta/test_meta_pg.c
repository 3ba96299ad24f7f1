/* The PostgreSQL metadata driver on a real server (BERTH_PG_DSN): the
 * shared conformance suite, then several stores open on one database at
 * once, as separate nodes would have them.
 *
 * Each case gets an empty store of its own: a schema created for it
 * (t<pid>_<n>) and named in the DSN's search_path (options=-csearch_path),
 * dropped at the end; so cases and concurrent runs never see each other's
 * rows.  The suites are the drivers' shared ones (meta_suite.h,
 * policies_suite.h). */
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
#include "policies_suite.h"

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

static long long admin_int(const char *sql)
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
	/* application_name finds the store's sessions in pg_stat_activity. */
	snprintf(t->dsn, sizeof(t->dsn), "%s%soptions=-csearch_path%%3D%s&application_name=%s", base_dsn,
		 strchr(base_dsn, '?') ? "&" : "?", t->name, t->name);
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

static int count_problem(const char *problem, void *payload)
{
	fprintf(stderr, "check: %s\n", problem);
	(*(int *)payload)++;
	return 0;
}

static void admin_schema_exec(const test_schema *t, const char *sql)
{
	char query[512];

	snprintf(query, sizeof(query), "SET search_path = %s; %s; SET search_path = public", t->name, sql);
	admin_exec(query);
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
		unsigned long fixed = 99;
		int problems = 0;

		meta_suite_lifecycle(m);
		/* What the lifecycle left is consistent; a count knocked off is
		 * reported by check and put right by recount. */
		CHECK_EQ_INT(m->check(m, count_problem, &problems), 0);
		CHECK_EQ_INT(problems, 0);
		admin_schema_exec(&t, "UPDATE repositories SET contents = contents + 5");
		CHECK_EQ_INT(m->check(m, count_problem, &problems), 0);
		CHECK(problems > 0);
		CHECK_EQ_INT(m->recount(m, &fixed), 0);
		CHECK(fixed > 0);
		problems = 0;
		CHECK_EQ_INT(m->check(m, count_problem, &problems), 0);
		CHECK_EQ_INT(problems, 0);
		m->free(m);
	}
	schema_drop(&t);
	fprintf(stderr, "lifecycle: %lld ms\n", (long long)(brt_monotonic_coarse_ms() - start));
	start = brt_monotonic_coarse_ms();
	schema_new(&t);
	if ((m = open_store(&t)) != NULL) {
		policies_suite_run(m);
		m->free(m);
	}
	schema_drop(&t);
	fprintf(stderr, "policies: %lld ms\n", (long long)(brt_monotonic_coarse_ms() - start));
}

/* A query on the case's schema through the admin connection. */
__attribute__((format(printf, 2, 0))) static long long schema_int(const test_schema *t, const char *fmt,
								  const char *arg)
{
	char sql[512], query[640];

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(sql, sizeof(sql), fmt, arg ? arg : "");
#pragma GCC diagnostic pop
	snprintf(query, sizeof(query), "SET search_path = %s; %s", t->name, sql);
	{
		long long v = admin_int(query);

		admin_exec("SET search_path = public");
		return v;
	}
}

#define NODES 3

/* --- several nodes opening an empty schema at once --- */

typedef struct opener {
	const test_schema *t;
	pthread_barrier_t *go;
	brt_meta *m;
	int error;
} opener;

static void *opener_run(void *arg)
{
	opener *o = arg;

	pthread_barrier_wait(o->go);
	o->error = brt_meta_open(&o->m, "postgres", o->t->dsn);
	return NULL;
}

static void test_concurrent_open(void)
{
	enum { OPENERS = 4 };
	test_schema t;
	opener o[OPENERS];
	pthread_t th[OPENERS];
	pthread_barrier_t go;

	schema_new(&t);
	pthread_barrier_init(&go, NULL, OPENERS);
	for (int i = 0; i < OPENERS; i++) {
		o[i] = (opener){&t, &go, NULL, 0};
		pthread_create(&th[i], NULL, opener_run, &o[i]);
	}
	for (int i = 0; i < OPENERS; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(o[i].error, 0);
	}
	pthread_barrier_destroy(&go);
	CHECK_EQ_INT(schema_int(&t, "SELECT version FROM schema_version", NULL), 7);
	CHECK_EQ_INT(schema_int(&t, "SELECT count(*) FROM schema_version", NULL), 1);
	CHECK_EQ_INT(schema_int(&t, "SELECT count(*) FROM settings WHERE name = 'key_epoch'", NULL), 1);
	/* Every node works on the one schema. */
	if (o[0].m && o[1].m) {
		brt_account a = ms_account("0146e9b57080961e2c835363000000a1", "open", 1);

		CHECK_EQ_INT(o[0].m->account_create(o[0].m, &a), 0);
		CHECK_EQ_INT(o[1].m->account_create(o[1].m, &a), BRT_EEXISTS);
	}
	for (int i = 0; i < OPENERS; i++)
		if (o[i].m)
			o[i].m->free(o[i].m);
	/* A schema newer than this build is refused. */
	admin_schema_exec(&t, "UPDATE schema_version SET version = 99");
	{
		brt_meta *m = NULL;

		CHECK_EQ_INT(brt_meta_open(&m, "postgres", t.dsn), BRT_EIO);
		CHECK(m == NULL);
	}
	schema_drop(&t);
}

/* New sessions to the database refused (the owner may set that), as
 * while the server is away; existing ones (the admin's) stay. */
static void database_refuse(int refuse)
{
	admin_exec(refuse ? "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I CONNECTION LIMIT 0',"
			    " current_database()); END $$"
			  : "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I CONNECTION LIMIT -1',"
			    " current_database()); END $$");
}

/* --- a revocation through one node reaches the others --- */

static void test_epoch_across_nodes(void)
{
	test_schema t;
	brt_meta *a, *b;
	brt_account acct = ms_account("0146e9b57080961e2c835363000000a2", "epoch", 1);
	brt_access_key k = ms_key("00000000000000f1", acct.id, BRT_PERM_PULL, "x", 1, 0);
	uint64_t before, after;
	int64_t start_us, waited_us;
	struct timespec ts;
	long spins = 0;
	char sql[256];

	schema_new(&t);
	a = open_store(&t);
	b = open_store(&t);
	if (!a || !b)
		goto done;
	CHECK_EQ_INT(a->account_create(a, &acct), 0);
	CHECK_EQ_INT(a->key_create(a, &k), 0);
	/* Both listeners connected (a store listens from its open on). */
	for (int i = 0;
	     i < 200 && schema_int(&t,
				   "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'"
				   " AND query LIKE 'LISTEN%%'",
				   t.name) < 2;
	     i++)
		usleep(10000);
	before = b->key_epoch(b);
	CHECK(b->key_epoch(b) == before);
	CHECK_EQ_INT(a->key_revoke(a, k.id, 5), 0);
	/* The notice is asynchronous: B sees it as soon as it arrives,
	 * without reading the row.  No sleep: spin on key_epoch. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	start_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	do {
		after = b->key_epoch(b);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		waited_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - start_us;
		spins++;
	} while (after == before && waited_us < 2000000);
	CHECK(after != before);
	fprintf(stderr, "epoch: node B saw node A's revocation after %lld us (%ld reads)\n",
		(long long)waited_us, spins);
	CHECK(b->key_epoch(b) == after);

	/* The key epoch's cost when nothing changed. */
	{
		int64_t t0, t1;
		enum { READS = 100000 };

		clock_gettime(CLOCK_MONOTONIC, &ts);
		t0 = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		for (int i = 0; i < READS; i++)
			(void)b->key_epoch(b);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t1 = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		fprintf(stderr, "epoch: %lld ns per key_epoch (cached)\n", (long long)((t1 - t0) / READS));
	}
	/* With B's listener away (killed, and kept from coming back), B
	 * reads the row on every call: it sees the next revocation at once. */
	database_refuse(1);
	snprintf(sql, sizeof(sql),
		 "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '%s'"
		 " AND query LIKE 'LISTEN%%'",
		 t.name);
	CHECK_EQ_INT(admin_int(sql), 2);
	usleep(100000); /* the listeners wake on their closed sockets */
	before = b->key_epoch(b);
	CHECK_EQ_INT(a->key_revoke(a, k.id, 6), 0);
	after = b->key_epoch(b);
	CHECK(after != before);
	CHECK(after < UINT64_MAX / 2);
	{
		int64_t t0, t1;
		enum { READS = 2000 };

		clock_gettime(CLOCK_MONOTONIC, &ts);
		t0 = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		for (int i = 0; i < READS; i++)
			CHECK(b->key_epoch(b) == after);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t1 = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		fprintf(stderr, "epoch: %lld ns per key_epoch (listener away: the row each time)\n",
			(long long)((t1 - t0) / READS));
	}
	database_refuse(0);
done:
	if (a)
		a->free(a);
	if (b)
		b->free(b);
	schema_drop(&t);
}

/* --- upload generation compare-and-swap across nodes --- */

typedef struct cas_racer {
	brt_meta *m;
	pthread_barrier_t *go;
	brt_upload u;
	int result;
} cas_racer;

static void *cas_run(void *arg)
{
	cas_racer *r = arg;

	pthread_barrier_wait(r->go);
	r->result = r->m->upload_update(r->m, &r->u);
	return NULL;
}

static void test_upload_cas_across_nodes(void)
{
	enum { ROUNDS = 30 };
	test_schema t;
	brt_meta *n[2];
	brt_upload u;
	pthread_barrier_t go;
	int wins = 0, conflicts = 0;

	schema_new(&t);
	n[0] = open_store(&t);
	n[1] = open_store(&t);
	if (!n[0] || !n[1])
		goto done;
	memset(&u, 0, sizeof(u));
	snprintf(u.id, sizeof(u.id), "%s", "cafe0000000000000000000000000001");
	snprintf(u.repo, sizeof(u.repo), "%s", "0146e9b57080961e2c835363000000a3/up");
	brt_meta_repo_account(u.account_id, u.repo);
	u.created_at = u.updated_at = 1;
	CHECK_EQ_INT(n[0]->upload_create(n[0], &u, 0), 0);
	pthread_barrier_init(&go, NULL, 2);
	for (int round = 0; round < ROUNDS; round++) {
		cas_racer r[2];
		pthread_t th[2];
		brt_upload seen;

		CHECK_EQ_INT(n[round % 2]->upload_get(n[round % 2], &seen, NULL, u.id), 0);
		for (int i = 0; i < 2; i++) {
			r[i].m = n[i];
			r[i].go = &go;
			r[i].u = seen;
			r[i].u.offset = seen.offset + (uint64_t)i + 1;
			r[i].u.updated_at = seen.updated_at + 1;
			pthread_create(&th[i], NULL, cas_run, &r[i]);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		CHECK((r[0].result == 0) != (r[1].result == 0));
		for (int i = 0; i < 2; i++) {
			wins += r[i].result == 0;
			conflicts += r[i].result == BRT_ECONFLICT;
		}
		{
			brt_upload now;

			CHECK_EQ_INT(n[1]->upload_get(n[1], &now, NULL, u.id), 0);
			CHECK(now.generation == seen.generation + 1);
		}
	}
	pthread_barrier_destroy(&go);
	CHECK_EQ_INT(wins, ROUNDS);
	CHECK_EQ_INT(conflicts, ROUNDS);
done:
	for (int i = 0; i < 2; i++)
		if (n[i])
			n[i]->free(n[i]);
	schema_drop(&t);
}

/* --- the same digest committed on several nodes at once --- */

typedef struct link_racer {
	brt_meta *m;
	pthread_barrier_t *go;
	char repo[96];
	char key[32];
	const char *digest;
	int result;
} link_racer;

static void *link_run(void *arg)
{
	link_racer *r = arg;

	pthread_barrier_wait(r->go);
	r->result = ms_link(r->m, r->repo, r->digest, 42, r->key, 1000);
	return NULL;
}

static void test_blob_link_across_nodes(void)
{
	enum { ROUNDS = 10 };
	test_schema t;
	brt_meta *n[NODES] = {NULL};
	pthread_barrier_t go;

	schema_new(&t);
	for (int i = 0; i < NODES; i++)
		if (!(n[i] = open_store(&t)))
			goto done;
	pthread_barrier_init(&go, NULL, NODES);
	for (int round = 0; round < ROUNDS; round++) {
		ms_digest d = ms_digest_of("race-link", (unsigned long)round);
		link_racer r[NODES];
		pthread_t th[NODES];

		for (int i = 0; i < NODES; i++) {
			r[i].m = n[i];
			r[i].go = &go;
			r[i].digest = d.s;
			snprintf(r[i].repo, sizeof(r[i].repo), "0146e9b57080961e2c835363000000a4/r%d", i);
			snprintf(r[i].key, sizeof(r[i].key), "k-%d-%d", round, i);
			pthread_create(&th[i], NULL, link_run, &r[i]);
		}
		for (int i = 0; i < NODES; i++) {
			pthread_join(th[i], NULL);
			CHECK_EQ_INT(r[i].result, 0);
		}
		CHECK_EQ_INT(schema_int(&t, "SELECT count(*) FROM blobs WHERE digest = '%s'", d.s), 1);
		CHECK_EQ_INT(schema_int(&t, "SELECT count(*) FROM repository_blobs WHERE digest = '%s'", d.s),
			     NODES);
	}
	pthread_barrier_destroy(&go);
	/* Every key but the winner's awaits deletion. */
	CHECK_EQ_INT(schema_int(&t, "SELECT count(*) FROM gc_outbox", NULL), ROUNDS * (NODES - 1));
	CHECK_EQ_INT(schema_int(&t,
				"SELECT count(*) FROM blobs b JOIN gc_outbox o ON o.storage_key = "
				"b.storage_key",
				NULL),
		     0);
	/* Each digest counts once towards the account's use. */
	CHECK_EQ_INT(schema_int(&t, "SELECT count(*) FROM account_blobs", NULL), ROUNDS);
	CHECK_EQ_INT(schema_int(&t, "SELECT sum(nlinks) FROM account_blobs", NULL), ROUNDS * NODES);
done:
	for (int i = 0; i < NODES; i++)
		if (n[i])
			n[i]->free(n[i]);
	schema_drop(&t);
}

/* --- two collectors at once --- */

typedef struct gc_racer {
	brt_meta *m;
	pthread_barrier_t *go;
	brt_gc_counts counts;
	int result;
} gc_racer;

static void *gc_run(void *arg)
{
	gc_racer *r = arg;
	brt_gc_params p;

	memset(&p, 0, sizeof(p));
	p.now = (int64_t)1 << 50;
	memset(&r->counts, 0, sizeof(r->counts));
	pthread_barrier_wait(r->go);
	r->result = r->m->gc_collect(r->m, &p, &r->counts);
	return NULL;
}

static void test_gc_across_nodes(void)
{
	enum { BLOBS = 600 };
	test_schema t;
	brt_meta *n[2] = {NULL};
	gc_racer r[2];
	pthread_t th[2];
	pthread_barrier_t go;

	schema_new(&t);
	for (int i = 0; i < 2; i++)
		if (!(n[i] = open_store(&t)))
			goto done;
	for (int i = 0; i < BLOBS; i++) {
		ms_digest d = ms_digest_of("race-gc", (unsigned long)i);
		char key[32];

		snprintf(key, sizeof(key), "gc-%d", i);
		CHECK_EQ_INT(ms_link(n[i % 2], "0146e9b57080961e2c835363000000a5/gc", d.s, 10, key, 1000), 0);
	}
	pthread_barrier_init(&go, NULL, 2);
	for (int i = 0; i < 2; i++) {
		r[i].m = n[i];
		r[i].go = &go;
		pthread_create(&th[i], NULL, gc_run, &r[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(r[i].result, 0);
	}
	pthread_barrier_destroy(&go);
	fprintf(stderr, "gc: collectors took %llu + %llu links, %llu + %llu blobs\n",
		(unsigned long long)r[0].counts.links, (unsigned long long)r[1].counts.links,
		(unsigned long long)r[0].counts.blobs, (unsigned long long)r[1].counts.blobs);
	CHECK_EQ_INT(r[0].counts.links + r[1].counts.links, BLOBS);
	CHECK_EQ_INT(r[0].counts.blobs + r[1].counts.blobs, BLOBS);
	CHECK_EQ_INT(schema_int(&t, "SELECT count(*) FROM blobs", NULL), 0);
	CHECK_EQ_INT(schema_int(&t, "SELECT count(*) FROM repository_blobs", NULL), 0);
	CHECK_EQ_INT(schema_int(&t, "SELECT count(*) FROM gc_outbox", NULL), BLOBS);
	CHECK_EQ_INT(schema_int(&t, "SELECT count(*) FROM account_blobs", NULL), 0);
done:
	for (int i = 0; i < 2; i++)
		if (n[i])
			n[i]->free(n[i]);
	schema_drop(&t);
}

/* --- quota charges racing on several nodes --- */

#define QUOTA_ACCOUNT "0146e9b57080961e2c835363000000a6"

typedef struct quota_racer {
	brt_meta *m;
	pthread_barrier_t *go;
	int id;
	int ok, over, other;
} quota_racer;

static void *quota_run(void *arg)
{
	quota_racer *r = arg;

	pthread_barrier_wait(r->go);
	for (int i = 0; i < 20; i++) {
		ms_digest d = ms_digest_of("race-quota", (unsigned long)(r->id * 1000 + i));
		char key[32];
		int error;

		snprintf(key, sizeof(key), "q-%d-%d", r->id, i);
		error = ms_link(r->m, QUOTA_ACCOUNT "/q", d.s, 100, key, 1000);
		r->ok += error == 0;
		r->over += error == BRT_EQUOTA;
		r->other += error != 0 && error != BRT_EQUOTA;
	}
	return NULL;
}

static void test_quota_across_nodes(void)
{
	enum { RACERS = 6 };
	test_schema t;
	brt_meta *n[NODES] = {NULL};
	quota_racer r[RACERS];
	pthread_t th[RACERS];
	pthread_barrier_t go;
	brt_account acct = ms_account(QUOTA_ACCOUNT, "quota", 1);
	int ok = 0, over = 0, other = 0;

	schema_new(&t);
	for (int i = 0; i < NODES; i++)
		if (!(n[i] = open_store(&t)))
			goto done;
	CHECK_EQ_INT(n[0]->account_create(n[0], &acct), 0);
	CHECK_EQ_INT(n[1]->quota_set(n[1], QUOTA_ACCOUNT, 2550), 0);
	pthread_barrier_init(&go, NULL, RACERS);
	for (int i = 0; i < RACERS; i++) {
		r[i] = (quota_racer){n[i % NODES], &go, i, 0, 0, 0};
		pthread_create(&th[i], NULL, quota_run, &r[i]);
	}
	for (int i = 0; i < RACERS; i++) {
		pthread_join(th[i], NULL);
		ok += r[i].ok;
		over += r[i].over;
		other += r[i].other;
	}
	pthread_barrier_destroy(&go);
	/* 25 blobs of 100 bytes fit in 2550, not one more. */
	CHECK_EQ_INT(ok, 25);
	CHECK_EQ_INT(over, RACERS * 20 - 25);
	CHECK_EQ_INT(other, 0);
	CHECK_EQ_INT(schema_int(&t, "SELECT used_bytes FROM accounts", NULL), 2500);
	CHECK_EQ_INT(schema_int(&t, "SELECT count(*) FROM repository_blobs", NULL), 25);
done:
	for (int i = 0; i < NODES; i++)
		if (n[i])
			n[i]->free(n[i]);
	schema_drop(&t);
}

/* --- connections killed under an open store, and a server away --- */

typedef struct killed_thread {
	brt_meta *m;
	pthread_barrier_t *step;
	int before, after;
} killed_thread;

static int probe(brt_meta *m)
{
	brt_account a;
	int error = m->account_get(m, &a, "0146e9b57080961e2c835363000000a7");

	return error == BRT_ENOTFOUND ? 0 : error;
}

static void *killed_run(void *arg)
{
	killed_thread *k = arg;

	k->before = probe(k->m);
	pthread_barrier_wait(k->step); /* the main thread kills the sessions */
	pthread_barrier_wait(k->step);
	k->after = probe(k->m);
	return NULL;
}

static long long kill_sessions(const test_schema *t)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = "
		 "'%s'",
		 t->name);
	return admin_int(sql);
}

static void test_connections_killed(void)
{
	test_schema t;
	brt_meta *m;
	killed_thread k;
	pthread_t th;
	pthread_barrier_t step;
	brt_account acct = ms_account("0146e9b57080961e2c835363000000a8", "after", 1);
	brt_account b = ms_account("0146e9b57080961e2c835363000000a9", "b", 1);
	uint64_t epoch;

	schema_new(&t);
	if (!(m = open_store(&t)))
		goto done;
	pthread_barrier_init(&step, NULL, 2);
	k = (killed_thread){m, &step, -1, -1};
	pthread_create(&th, NULL, killed_run, &k);
	CHECK_EQ_INT(probe(m), 0);
	pthread_barrier_wait(&step);
	/* Both threads' sessions, and the listener's once it connected. */
	CHECK(kill_sessions(&t) >= 2);
	pthread_barrier_wait(&step);
	/* A read finds its connection dead, and runs on a new one. */
	CHECK_EQ_INT(probe(m), 0);
	pthread_join(th, NULL);
	pthread_barrier_destroy(&step);
	CHECK_EQ_INT(k.before, 0);
	CHECK_EQ_INT(k.after, 0);
	/* So does a write transaction found dead at BEGIN. */
	CHECK(kill_sessions(&t) >= 1);
	CHECK_EQ_INT(m->account_create(m, &acct), 0);
	epoch = m->key_epoch(m);
	CHECK(epoch < UINT64_MAX / 2);

	/* While no session can be opened, every slot fails cleanly with
	 * BRT_EUNAVAILABLE (the API's 503), and key_epoch with a value that matches
	 * no epoch; once sessions are accepted again, the same store works. */
	database_refuse(1);
	CHECK(kill_sessions(&t) >= 1);
	CHECK_EQ_INT(probe(m), BRT_EUNAVAILABLE);
	CHECK_EQ_INT(m->account_create(m, &b), BRT_EUNAVAILABLE);
	CHECK(m->key_epoch(m) > UINT64_MAX / 2);
	CHECK_EQ_INT(probe(m), BRT_EUNAVAILABLE);
	database_refuse(0);
	CHECK_EQ_INT(probe(m), 0);
	CHECK_EQ_INT(m->account_create(m, &b), 0);
	CHECK(m->key_epoch(m) == epoch);
	m->free(m);
done:
	schema_drop(&t);
}

/* --- text PostgreSQL cannot hold --- */

static void test_bad_text(void)
{
	test_schema t;
	brt_meta *m;

	schema_new(&t);
	if ((m = open_store(&t)) != NULL) {
		brt_account a = ms_account("0146e9b57080961e2c835363000000aa", "bad\xff\xfe name", 1);

		CHECK_EQ_INT(m->account_create(m, &a), BRT_EINVALID);
		a = ms_account("0146e9b57080961e2c835363000000aa", "good", 1);
		CHECK_EQ_INT(m->account_create(m, &a), 0);
		m->free(m);
	}
	schema_drop(&t);
}

/* --- what a typical slot costs --- */

static void test_costs(void)
{
	test_schema t;
	brt_meta *m;
	struct timespec ts;
	int64_t t0, t1;
	enum { N = 2000 };

	schema_new(&t);
	if ((m = open_store(&t)) != NULL) {
		brt_account a = ms_account("0146e9b57080961e2c835363000000ab", "cost", 1), got;
		brt_access_key k = ms_key("00000000000000c1", a.id, BRT_PERM_PULL, "c", 1, 0), kg;

		CHECK_EQ_INT(m->account_create(m, &a), 0);
		CHECK_EQ_INT(m->key_create(m, &k), 0);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t0 = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		for (int i = 0; i < N; i++)
			CHECK_EQ_INT(m->key_get(m, &kg, k.id), 0);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t1 = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		fprintf(stderr, "cost: key_get %lld us\n", (long long)((t1 - t0) / N / 1000));
		t0 = t1;
		for (int i = 0; i < N / 4; i++) {
			ms_digest d = ms_digest_of("cost", (unsigned long)i);

			CHECK_EQ_INT(ms_link(m, "0146e9b57080961e2c835363000000ab/c", d.s, 1, d.s + 7, 1000),
				     0);
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t1 = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		fprintf(stderr, "cost: blob_link (a write transaction) %lld us\n",
			(long long)((t1 - t0) / (N / 4) / 1000));
		CHECK_EQ_INT(m->account_get(m, &got, a.id), 0);
		m->free(m);
	}
	schema_drop(&t);
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
	/* In case an earlier run died while refusing sessions. */
	database_refuse(0);
	test_suite();
	test_concurrent_open();
	test_epoch_across_nodes();
	test_upload_cas_across_nodes();
	test_blob_link_across_nodes();
	test_gc_across_nodes();
	test_quota_across_nodes();
	test_bad_text();
	test_connections_killed();
	test_costs();
	PQfinish(admin);
	return check_exit("test_meta_pg");
}
