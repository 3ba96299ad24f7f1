/* The SQL drivers' storage lifecycle: the review queues every mutation
 * fills, the collector that empties them one short transaction per row,
 * the storage-delete outbox, and usage and quotas per account.
 *
 * A collector step re-reads everything it decides on inside its own write
 * transaction, so a push, tag or link that lands between the due-row scan
 * and the step simply makes the step a no-op; SQLite's single writer (and
 * on PostgreSQL, SERIALIZABLE transactions) make "check, then delete"
 * atomic. */
#include "meta/sql/slots.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"

/* Due rows read per scan and taken in one transaction: random digests
 * touch a dozen B-tree pages per row, and a page written once per
 * transaction instead of once per row is most of a collector's cost
 * (measured: 64 rows per transaction, 20 000 links and blobs, 35 WAL page
 * writes per row).  256 rows hold the write lock for a few milliseconds. */
#define DUE_CHUNK 256
#define KEY_MAX 192

/* Run statement `id` bound to (n, s), (s) or (n). */
static int exec_it(brt_sql_conn *c, enum brt_sql_stmt id, int64_t n, const char *s)
{
	int error = brt_sql_bind(c, brt_sql_stmt(c, id), "it", n, s);

	return error < 0 ? error : brt_sql_run(c, id);
}

static int exec_t(brt_sql_conn *c, enum brt_sql_stmt id, const char *s)
{
	int error = brt_sql_bind(c, brt_sql_stmt(c, id), "t", s);

	return error < 0 ? error : brt_sql_run(c, id);
}

static int exec_i(brt_sql_conn *c, enum brt_sql_stmt id, int64_t n)
{
	int error = brt_sql_bind(c, brt_sql_stmt(c, id), "i", n);

	return error < 0 ? error : brt_sql_run(c, id);
}

int brt_sql_gc_queue_manifest(brt_sql_conn *c, int64_t manifest_id, int64_t now)
{
	int error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_GC_QUEUE_MANIFEST), "ii", manifest_id, now);

	return error < 0 ? error : brt_sql_run(c, BRT_SQL_GC_QUEUE_MANIFEST);
}

int brt_sql_tag_remove(brt_sql_conn *c, int64_t repo_id, const char *tag, int64_t now, int *removed_out)
{
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_TAG_TARGET);
	int64_t manifest_id = 0;
	int error;

	*removed_out = 0;
	if ((error = brt_sql_bind(c, st, "it", repo_id, tag)) == 0 &&
	    (error = brt_sql_step(c, st, removed_out)) == 0 && *removed_out)
		manifest_id = brt_sql_column_int64(st, 0);
	brt_sql_end(st);
	if (error < 0 || !*removed_out)
		return error;
	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_TAG_REMOVE), "it", repo_id, tag)) < 0 ||
	    (error = brt_sql_run(c, BRT_SQL_TAG_REMOVE)) < 0)
		return error;
	return brt_sql_gc_queue_manifest(c, manifest_id, now);
}

int brt_sql_usage_charge(brt_sql_conn *c, const char *account_id, int64_t bytes, int64_t now)
{
	brt_sql_statement *st;
	int64_t quota = 0, used = 0;
	int error, row = 0, has_quota = 0;

	(void)now;
	if (bytes == 0)
		return 0;
	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_USAGE_CHARGE), "ti", account_id, bytes)) < 0 ||
	    (error = brt_sql_run(c, BRT_SQL_USAGE_CHARGE)) < 0 || brt_sql_changes(c) > 0)
		return error;
	st = brt_sql_stmt(c, BRT_SQL_USAGE_QUOTA);
	if ((error = brt_sql_bind(c, st, "t", account_id)) == 0 && (error = brt_sql_step(c, st, &row)) == 0 &&
	    row) {
		has_quota = !brt_sql_column_is_null(st, 0);
		quota = brt_sql_column_int64(st, 0);
		used = brt_sql_column_int64(st, 1);
	}
	brt_sql_end(st);
	/* No account row (a tenant-form name with authentication off): no
	 * usage to keep; account_create counts it up if one comes. */
	if (error < 0 || !row)
		return error;
	if (!has_quota)
		return brt_error_set(BRT_EIO, "meta: usage of account %s could not be charged", account_id);
	return brt_error_set(BRT_EQUOTA,
			     "quota exceeded for account %s: limit %" PRId64 " bytes, used %" PRId64
			     " bytes, %" PRId64 " more needed",
			     account_id, quota, used, bytes);
}

/* One more (`add`) or one fewer link of the account to the blob: the
 * count after, and the blob's size. */
static int account_blob_count(brt_sql_conn *c, int add, const char *account, const char *digest,
			      int64_t *nlinks_out, int64_t *size_out, int *row_out)
{
	enum brt_sql_stmt id = add ? BRT_SQL_ACCOUNT_BLOB_ADD : BRT_SQL_ACCOUNT_BLOB_RELEASE;
	brt_sql_statement *st = brt_sql_stmt(c, id);
	int error;

	*row_out = 0;
	if ((error = brt_sql_bind(c, st, "tt", account, digest)) == 0 &&
	    (error = brt_sql_step(c, st, row_out)) == 0 && *row_out) {
		*nlinks_out = brt_sql_column_int64(st, 0);
		*size_out = brt_sql_column_int64(st, 1);
	}
	brt_sql_end(st);
	return error;
}

int brt_sql_account_blob_add(brt_sql_conn *c, const char *account, const char *digest, int64_t now)
{
	int64_t nlinks = 0, size = 0;
	int row, error = account_blob_count(c, 1, account, digest, &nlinks, &size, &row);

	if (error < 0 || !row || nlinks != 1)
		return error;
	return brt_sql_usage_charge(c, account, size, now);
}

int brt_sql_account_blob_release(brt_sql_conn *c, const char *account, const char *digest, int64_t now)
{
	int64_t nlinks = 1, size = 0;
	int row, error = account_blob_count(c, 0, account, digest, &nlinks, &size, &row);

	if (error < 0 || !row || nlinks > 0)
		return error;
	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_ACCOUNT_BLOB_PRUNE), "tt", account, digest)) <
		    0 ||
	    (error = brt_sql_run(c, BRT_SQL_ACCOUNT_BLOB_PRUNE)) < 0)
		return error;
	return brt_sql_usage_charge(c, account, -size, now);
}

int brt_sql_manifest_find(brt_sql_conn *c, int64_t manifest_id, brt_sql_manifest_row *out, int *found_out)
{
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_GC_MANIFEST_ROW);
	int error;

	if ((error = brt_sql_bind(c, st, "i", manifest_id)) == 0 &&
	    (error = brt_sql_step(c, st, found_out)) == 0 && *found_out) {
		out->repository_id = brt_sql_column_int64(st, 0);
		out->size = (uint64_t)brt_sql_column_int64(st, 3);
		if ((error = brt_sql_column_copy_text(c, st, 1, out->account_id, sizeof(out->account_id))) ==
			    0 &&
		    (error = brt_sql_column_copy_text(c, st, 2, out->digest, sizeof(out->digest))) == 0)
			error = brt_sql_column_copy_text(c, st, 4, out->repo, sizeof(out->repo));
	}
	brt_sql_end(st);
	return error;
}

int brt_sql_manifest_drop(brt_sql_conn *c, int64_t manifest_id, const brt_sql_manifest_row *row,
			  int64_t queued_at)
{
	int error;

	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_GC_QUEUE_CHILDREN), "iti", manifest_id,
				  row->account_id, queued_at)) < 0 ||
	    (error = brt_sql_run(c, BRT_SQL_GC_QUEUE_CHILDREN)) < 0 ||
	    (error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_GC_QUEUE_REFERRERS), "iti", row->repository_id,
				  row->digest, queued_at)) < 0 ||
	    (error = brt_sql_run(c, BRT_SQL_GC_QUEUE_REFERRERS)) < 0 ||
	    (error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_GC_QUEUE_MANIFEST_LINKS), "iti", manifest_id,
				  row->account_id, queued_at)) < 0 ||
	    (error = brt_sql_run(c, BRT_SQL_GC_QUEUE_MANIFEST_LINKS)) < 0 ||
	    (error = exec_i(c, BRT_SQL_MANIFEST_DELETE, manifest_id)) < 0 ||
	    (error = brt_sql_repo_contents(c, row->repository_id, -(int64_t)brt_sql_changes(c))) < 0 ||
	    (error = exec_i(c, BRT_SQL_GC_MANIFEST_UNQUEUE, manifest_id)) < 0)
		return error;
	return brt_sql_usage_charge(c, row->account_id, -(int64_t)row->size, queued_at);
}

/* The collector's own clock for what it queues: one level's removal makes
 * the next level due at once (the grace was served by the first level;
 * links still get their touch check). */
static int64_t cascade_time(const brt_gc_params *p)
{
	return p->now - p->grace_ms;
}

static int report(const brt_gc_params *p, const char *kind, const char *repo, const char *name, uint64_t size,
		  const char *storage_key)
{
	brt_gc_item item = {kind, repo, name, size, NULL, storage_key};

	return p->cb ? p->cb(&item, p->payload) : 0;
}

int brt_sql_gc_manifest_remove(brt_sql_conn *c, int64_t manifest_id, const brt_gc_params *params,
			       brt_gc_counts *counts, int *removed_out)
{
	brt_sql_manifest_row row;
	int found = 0, held = 0, error;

	*removed_out = 0;
	if ((error = brt_sql_manifest_find(c, manifest_id, &row, &found)) < 0)
		return error;
	if (found && (error = brt_sql_exists(c, BRT_SQL_GC_MANIFEST_HELD, "i", manifest_id, NULL, &held)) < 0)
		return error;
	if (!found || held) {
		return exec_i(c, BRT_SQL_GC_MANIFEST_UNQUEUE, manifest_id);
	}
	if ((error = brt_sql_manifest_drop(c, manifest_id, &row, cascade_time(params))) < 0)
		return error;
	*removed_out = 1;
	counts->manifests++;
	counts->manifest_bytes += row.size;
	return report(params, "manifest", row.repo, row.digest, row.size, NULL);
}

/* One queue row, identified by a manifest id, or a repository id and a
 * digest, or a digest. */
typedef struct due_row {
	int64_t id;
	char digest[160];
} due_row;

typedef enum gc_level { LEVEL_MANIFEST, LEVEL_LINK, LEVEL_BLOB } gc_level;

typedef struct collect_ctx {
	const brt_gc_params *params;
	brt_gc_counts *counts;
	const due_row *row;
	gc_level level;
} collect_ctx;

/* Whether the queue row is still there and due (a refreshed row is not). */
static int still_due(brt_sql_conn *c, const collect_ctx *x, int *due_out)
{
	static const enum brt_sql_stmt which[] = {BRT_SQL_GC_MANIFEST_QUEUED, BRT_SQL_GC_LINK_QUEUED,
						  BRT_SQL_GC_BLOB_QUEUED};
	brt_sql_statement *st = brt_sql_stmt(c, which[x->level]);
	int error, row = 0;

	*due_out = 0;
	if (x->level == LEVEL_MANIFEST)
		error = brt_sql_bind(c, st, "i", x->row->id);
	else if (x->level == LEVEL_LINK)
		error = brt_sql_bind(c, st, "it", x->row->id, x->row->digest);
	else
		error = brt_sql_bind(c, st, "t", x->row->digest);
	if (error == 0 && (error = brt_sql_step(c, st, &row)) == 0 && row)
		*due_out = brt_sql_column_int64(st, 0) <= x->params->now - x->params->grace_ms;
	brt_sql_end(st);
	return error;
}

/* A link goes when no manifest lists it and nobody touched it within the
 * grace period; the account's count of the blob drops, and with the last
 * link of the account the blob's bytes go back to it. */
static int collect_link(brt_sql_conn *c, const collect_ctx *x)
{
	const brt_gc_params *p = x->params;
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_GC_LINK_ROW);
	char account[BRT_ACCOUNT_ID_LEN + 1], repo[BRT_NAME_MAX + 1];
	int64_t touched = 0;
	int error, row = 0, listed = 0;

	if ((error = brt_sql_bind(c, st, "it", x->row->id, x->row->digest)) == 0 &&
	    (error = brt_sql_step(c, st, &row)) == 0 && row) {
		touched = brt_sql_column_int64(st, 0);
		listed = (int)brt_sql_column_int64(st, 3);
		if ((error = brt_sql_column_copy_text(c, st, 1, account, sizeof(account))) == 0)
			error = brt_sql_column_copy_text(c, st, 2, repo, sizeof(repo));
	}
	brt_sql_end(st);
	if (error < 0)
		return error;
	if (!row || listed)
		return exec_it(c, BRT_SQL_GC_LINK_UNQUEUE, x->row->id, x->row->digest);
	if (touched > p->now - p->grace_ms) {
		/* Due again one grace period after the touch. */
		if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_GC_LINK_REQUEUE), "iti", x->row->id,
					  x->row->digest, touched)) < 0)
			return error;
		return brt_sql_run(c, BRT_SQL_GC_LINK_REQUEUE);
	}
	if ((error = exec_it(c, BRT_SQL_LINK_DELETE, x->row->id, x->row->digest)) < 0 ||
	    (error = brt_sql_repo_contents(c, x->row->id, -(int64_t)brt_sql_changes(c))) < 0 ||
	    (error = brt_sql_account_blob_release(c, account, x->row->digest, p->now)) < 0)
		return error;
	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_GC_QUEUE_BLOB), "ti", x->row->digest,
				  cascade_time(p))) < 0 ||
	    (error = brt_sql_run(c, BRT_SQL_GC_QUEUE_BLOB)) < 0 ||
	    (error = exec_it(c, BRT_SQL_GC_LINK_UNQUEUE, x->row->id, x->row->digest)) < 0)
		return error;
	x->counts->links++;
	return report(p, "link", repo, x->row->digest, 0, NULL);
}

/* A blob row goes when no repository links it; its object is deleted
 * through the outbox, after the read grace. */
static int collect_blob(brt_sql_conn *c, const collect_ctx *x)
{
	const brt_gc_params *p = x->params;
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_GC_BLOB_ROW);
	char key[KEY_MAX];
	int64_t size = 0;
	int error, row = 0, linked = 0;

	if ((error = brt_sql_bind(c, st, "t", x->row->digest)) == 0 &&
	    (error = brt_sql_step(c, st, &row)) == 0 && row) {
		size = brt_sql_column_int64(st, 0);
		linked = (int)brt_sql_column_int64(st, 2);
		error = brt_sql_column_copy_text(c, st, 1, key, sizeof(key));
	}
	brt_sql_end(st);
	if (error < 0)
		return error;
	if (!row || linked)
		return exec_t(c, BRT_SQL_GC_BLOB_UNQUEUE, x->row->digest);
	if ((error = exec_t(c, BRT_SQL_GC_BLOB_ACCOUNTS_PRUNE, x->row->digest)) < 0 ||
	    (error = exec_t(c, BRT_SQL_GC_BLOB_DELETE, x->row->digest)) < 0 ||
	    (error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_GC_OUTBOX_ADD), "tii", key, size,
				  p->now + p->read_grace_ms)) < 0 ||
	    (error = brt_sql_run(c, BRT_SQL_GC_OUTBOX_ADD)) < 0 ||
	    (error = exec_t(c, BRT_SQL_GC_BLOB_UNQUEUE, x->row->digest)) < 0)
		return error;
	x->counts->blobs++;
	x->counts->blob_bytes += (uint64_t)size;
	return report(p, "blob", NULL, x->row->digest, (uint64_t)size, key);
}

static int tx_collect_row(brt_sql_conn *c, void *ctx)
{
	collect_ctx *x = ctx;
	int due, removed, error;

	if ((error = still_due(c, x, &due)) < 0 || !due)
		return error;
	if (x->level == LEVEL_MANIFEST)
		return brt_sql_gc_manifest_remove(c, x->row->id, x->params, x->counts, &removed);
	return x->level == LEVEL_LINK ? collect_link(c, x) : collect_blob(c, x);
}

/* A row whose step failed goes to the back of its queue (due again one
 * grace period later), so that one row the collector cannot take never
 * blocks the rest. */
static int tx_requeue(brt_sql_conn *c, void *ctx)
{
	const collect_ctx *x = ctx;
	int64_t now = x->params->now + 1; /* not due again in this run */
	int error;

	if (x->level == LEVEL_MANIFEST) {
		if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_GC_MANIFEST_REQUEUE), "ii", x->row->id,
					  now)) < 0)
			return error;
		return brt_sql_run(c, BRT_SQL_GC_MANIFEST_REQUEUE);
	}
	if (x->level == LEVEL_LINK) {
		if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_GC_LINK_REQUEUE), "iti", x->row->id,
					  x->row->digest, now)) < 0)
			return error;
		return brt_sql_run(c, BRT_SQL_GC_LINK_REQUEUE);
	}
	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_GC_BLOB_REQUEUE), "ti", x->row->digest, now)) <
	    0)
		return error;
	return brt_sql_run(c, BRT_SQL_GC_BLOB_REQUEUE);
}

/* Up to `limit` due rows of one level. */
static int due_rows(brt_sql_conn *c, const brt_gc_params *p, gc_level level, due_row *rows, size_t limit,
		    size_t *count_out)
{
	static const enum brt_sql_stmt which[] = {BRT_SQL_GC_MANIFEST_DUE, BRT_SQL_GC_LINK_DUE,
						  BRT_SQL_GC_BLOB_DUE};
	brt_sql_statement *st = brt_sql_stmt(c, which[level]);
	int64_t due_before = p->now - p->grace_ms;
	int error, row;

	*count_out = 0;
	if (level == LEVEL_BLOB)
		error = brt_sql_bind(c, st, "ii", due_before, (int64_t)limit);
	else
		error = brt_sql_bind(c, st, "iti", due_before, p->account_id, (int64_t)limit);
	while (error == 0 && (error = brt_sql_step(c, st, &row)) == 0 && row) {
		due_row *r = &rows[(*count_out)++];

		r->id = 0;
		r->digest[0] = '\0';
		if (level == LEVEL_MANIFEST)
			r->id = brt_sql_column_int64(st, 0);
		else if (level == LEVEL_LINK) {
			r->id = brt_sql_column_int64(st, 0);
			error = brt_sql_column_copy_text(c, st, 1, r->digest, sizeof(r->digest));
		} else
			error = brt_sql_column_copy_text(c, st, 0, r->digest, sizeof(r->digest));
	}
	brt_sql_end(st);
	return error;
}

typedef struct chunk_report chunk_report;

typedef struct collect_run {
	brt_meta *m;
	const brt_gc_params *params;
	brt_gc_counts *counts;
	due_row *rows;          /* DUE_CHUNK */
	chunk_report *report;   /* one chunk's, until it commits */
	brt_gc_counts at_start; /* *counts before a dry run */
} collect_run;

/* Every level in turn, again while a level found work (a removal makes
 * the next level due), until nothing is due or the batch is spent.
 * Inside a dry run's transaction (`in_tx`), rows are taken on `c`
 * directly; otherwise each is a transaction of its own. */
/* What one transaction over a chunk of due rows removed: counted and
 * reported only once it committed (a transaction retried after a busy
 * database starts again from nothing). */
struct chunk_report {
	brt_gc_counts counts;
	size_t count;
	struct {
		char kind[16], repo[BRT_NAME_MAX + 1], name[160], key[KEY_MAX];
		uint64_t size;
		int has_repo, has_key;
	} items[DUE_CHUNK];
};

static int defer_item(const brt_gc_item *item, void *payload)
{
	chunk_report *r = payload;

	if (r->count < DUE_CHUNK) {
		snprintf(r->items[r->count].kind, sizeof(r->items[0].kind), "%s", item->kind);
		snprintf(r->items[r->count].repo, sizeof(r->items[0].repo), "%s",
			 item->repo ? item->repo : "");
		snprintf(r->items[r->count].name, sizeof(r->items[0].name), "%s", item->name);
		r->items[r->count].size = item->size;
		r->items[r->count].has_repo = item->repo != NULL;
		snprintf(r->items[r->count].key, sizeof(r->items[0].key), "%s",
			 item->storage_key ? item->storage_key : "");
		r->items[r->count].has_key = item->storage_key != NULL;
		r->count++;
	}
	return 0;
}

typedef struct chunk_ctx {
	const brt_gc_params *params; /* the caller's */
	brt_gc_params deferred;      /* the same, reporting into `report` */
	chunk_report *report;
	const due_row *rows;
	size_t count;
	gc_level level;
} chunk_ctx;

/* Every row of a chunk in one transaction: short (a chunk is at most
 * DUE_CHUNK rows, each a few indexed statements), and one commit, one
 * WAL sync, for all of them. */
static int tx_collect_chunk(brt_sql_conn *c, void *ctx)
{
	chunk_ctx *k = ctx;
	int error = 0;

	memset(&k->report->counts, 0, sizeof(k->report->counts));
	k->report->count = 0;
	for (size_t i = 0; i < k->count && error == 0; i++) {
		collect_ctx x = {&k->deferred, &k->report->counts, &k->rows[i], k->level};

		error = tx_collect_row(c, &x);
	}
	return error;
}

void brt_sql_gc_counts_add(brt_gc_counts *to, const brt_gc_counts *from)
{
	to->tags += from->tags;
	to->manifests += from->manifests;
	to->links += from->links;
	to->blobs += from->blobs;
	to->manifest_bytes += from->manifest_bytes;
	to->blob_bytes += from->blob_bytes;
	to->more |= from->more;
}

/* A committed chunk: its counts and its reports reach the caller. */
static int chunk_publish(const chunk_ctx *k, brt_gc_counts *counts)
{
	int error = 0;

	brt_sql_gc_counts_add(counts, &k->report->counts);
	for (size_t i = 0; i < k->report->count && error == 0 && k->params->cb; i++) {
		brt_gc_item item = {k->report->items[i].kind,
				    k->report->items[i].has_repo ? k->report->items[i].repo : NULL,
				    k->report->items[i].name,
				    k->report->items[i].size,
				    NULL,
				    k->report->items[i].has_key ? k->report->items[i].key : NULL};

		error = k->params->cb(&item, k->params->payload);
	}
	return error;
}

/* One chunk of due rows, in one transaction; if that fails, row by row,
 * and a row that still fails goes to the back of its queue, so that one
 * row the collector cannot take never blocks the rest.  The first
 * failure is returned after the others were done. */
static int collect_chunk(const collect_run *run, const due_row *rows, size_t count, gc_level level)
{
	chunk_ctx k = {run->params, *run->params, run->report, rows, count, level};
	int error, first_failure = 0;

	k.deferred.cb = defer_item;
	k.deferred.payload = run->report;
	if ((error = brt_sql_run_write(run->m, tx_collect_chunk, &k)) == 0)
		return chunk_publish(&k, run->counts);
	for (size_t i = 0; i < count; i++) {
		k.rows = &rows[i];
		k.count = 1;
		if ((error = brt_sql_run_write(run->m, tx_collect_chunk, &k)) == 0) {
			if ((error = chunk_publish(&k, run->counts)) != 0)
				return error;
			continue;
		}
		if (!first_failure)
			first_failure = error;
		{
			collect_ctx x = {run->params, run->counts, &rows[i], level};

			if ((error = brt_sql_run_write(run->m, tx_requeue, &x)) < 0)
				return error;
		}
	}
	return first_failure;
}

static int collect(brt_sql_conn *c, const collect_run *run, int in_tx)
{
	const brt_gc_params *p = run->params;
	due_row *rows = run->rows;
	size_t done = 0, count, i;
	int error = 0, first_failure = 0, progress = 1;

	while (progress && error == 0) {
		progress = 0;
		for (gc_level level = LEVEL_MANIFEST; level <= LEVEL_BLOB && error == 0; level++) {
			size_t want = DUE_CHUNK;

			if (p->batch > 0) {
				if (done >= p->batch) {
					run->counts->more = 1;
					return first_failure;
				}
				if (p->batch - done < want)
					want = p->batch - done;
			}
			if ((error = due_rows(c, p, level, rows, want, &count)) < 0)
				break;
			if (in_tx) {
				for (i = 0; i < count && error == 0; i++) {
					collect_ctx x = {p, run->counts, &rows[i], level};

					error = tx_collect_row(c, &x);
				}
			} else if (count > 0 && (error = collect_chunk(run, rows, count, level)) < 0) {
				if (!first_failure)
					first_failure = error;
				error = 0;
			}
			done += count;
			progress |= count > 0;
		}
	}
	return error < 0 ? error : first_failure;
}

/* A dry run sees, in its one transaction, what retention would delete
 * and then what that would orphan. */
static int tx_collect_dry(brt_sql_conn *c, void *ctx)
{
	const collect_run *run = ctx;
	int error;

	/* An engine may run the transaction again: count from the start. */
	*run->counts = run->at_start;
	if (run->params->with_retention && (error = brt_sql_retention_in_tx(c, run->params, run->counts)) < 0)
		return error;
	return collect(c, run, 1);
}

static int meta_gc_collect(brt_meta *m, const brt_gc_params *params, brt_gc_counts *out)
{
	collect_run run = {m, params, out, NULL, NULL, *out};
	brt_sql_conn *c;
	int error;

	if ((error = brt_sql_conn_get(&c, m)) < 0)
		return error;
	if (!(run.rows = malloc(DUE_CHUNK * sizeof(*run.rows))) ||
	    !(run.report = malloc(sizeof(*run.report)))) {
		error = brt_error_set(BRT_ENOMEM, "collector: out of memory");
		goto done;
	}
	if (c->engine->workload)
		c->engine->workload(c, BRT_SQL_WORK_COLLECT);
	if (params->dry_run)
		error = brt_sql_run_dry(m, tx_collect_dry, &run);
	else
		error = collect(c, &run, 0);
	if (c->engine->workload)
		c->engine->workload(c, BRT_SQL_WORK_REQUEST);
done:
	free(run.report);
	free(run.rows);
	return error;
}

typedef struct outbox_row {
	char key[KEY_MAX];
	uint64_t size;
} outbox_row;

static int meta_gc_outbox_list(brt_meta *m, int64_t now, size_t limit, brt_meta_outbox_cb cb, void *payload)
{
	outbox_row rows[DUE_CHUNK];
	brt_sql_conn *c;
	brt_sql_statement *st;
	size_t count = 0, i;
	int error, row;

	if ((error = brt_sql_conn_get(&c, m)) < 0)
		return error;
	if (limit == 0 || limit > DUE_CHUNK)
		limit = DUE_CHUNK;
	st = brt_sql_stmt(c, BRT_SQL_GC_OUTBOX_DUE);
	error = brt_sql_bind(c, st, "ii", now, (int64_t)limit);
	while (error == 0 && count < limit && (error = brt_sql_step(c, st, &row)) == 0 && row) {
		rows[count].size = (uint64_t)brt_sql_column_int64(st, 1);
		error = brt_sql_column_copy_text(c, st, 0, rows[count].key, sizeof(rows[count].key));
		count++;
	}
	brt_sql_end(st);
	for (i = 0; i < count && error == 0; i++)
		error = cb(rows[i].key, rows[i].size, payload);
	return error;
}

typedef struct outbox_keys {
	const char *const *keys;
	size_t count;
} outbox_keys;

static int tx_outbox_done(brt_sql_conn *c, void *ctx)
{
	const outbox_keys *k = ctx;
	int error = 0;

	for (size_t i = 0; i < k->count && error == 0; i++)
		error = exec_t(c, BRT_SQL_GC_OUTBOX_DONE, k->keys[i]);
	return error;
}

static int meta_gc_outbox_done(brt_meta *m, const char *const *storage_keys, size_t count)
{
	outbox_keys k = {storage_keys, count};

	return count ? brt_sql_run_write(m, tx_outbox_done, &k) : 0;
}

static int meta_storage_key_known(brt_meta *m, const char *storage_key, int *known_out)
{
	brt_sql_conn *c;
	int error;

	if ((error = brt_sql_conn_get(&c, m)) < 0)
		return error;
	return brt_sql_exists(c, BRT_SQL_GC_KEY_KNOWN, "t", 0, storage_key, known_out);
}

static int meta_quota_get(brt_meta *m, brt_usage *out, const char *account_id)
{
	brt_sql_conn *c;
	brt_sql_statement *st = NULL;
	int error, row = 0;

	memset(out, 0, sizeof(*out));
	if ((error = brt_sql_conn_get(&c, m)) < 0)
		return error;
	st = brt_sql_stmt(c, BRT_SQL_USAGE_QUOTA);
	if ((error = brt_sql_bind(c, st, "t", account_id)) == 0 && (error = brt_sql_step(c, st, &row)) == 0 &&
	    row) {
		out->has_quota = !brt_sql_column_is_null(st, 0);
		out->quota_bytes = (uint64_t)brt_sql_column_int64(st, 0);
		out->bytes = (uint64_t)brt_sql_column_int64(st, 1);
		snprintf(out->account_id, sizeof(out->account_id), "%s", account_id);
	}
	brt_sql_end(st);
	if (error == 0 && !row)
		error = brt_error_set(BRT_ENOTFOUND, "account %s unknown", account_id);
	return error;
}

static int usage_from_row(brt_sql_conn *c, brt_sql_statement *st, void *out)
{
	brt_usage *u = out;

	memset(u, 0, sizeof(*u));
	u->bytes = (uint64_t)brt_sql_column_int64(st, 1);
	u->has_quota = !brt_sql_column_is_null(st, 2);
	u->quota_bytes = (uint64_t)brt_sql_column_int64(st, 2);
	u->blobs = (uint64_t)brt_sql_column_int64(st, 3);
	u->blob_bytes = (uint64_t)brt_sql_column_int64(st, 4);
	u->manifests = (uint64_t)brt_sql_column_int64(st, 5);
	u->manifest_bytes = (uint64_t)brt_sql_column_int64(st, 6);
	u->repositories = (uint64_t)brt_sql_column_int64(st, 7);
	return brt_sql_column_copy_text(c, st, 0, u->account_id, sizeof(u->account_id));
}

typedef struct usage_list_ctx {
	brt_meta_usage_cb cb;
	void *payload;
} usage_list_ctx;

static int usage_row_cb(const void *row, void *payload)
{
	usage_list_ctx *x = payload;

	return x->cb(row, x->payload);
}

static int usage_rows(brt_meta *m, const char *account_id, brt_meta_usage_cb cb, void *payload)
{
	usage_list_ctx x = {cb, payload};
	brt_usage tmp;
	brt_sql_conn *c;
	int error;

	if ((error = brt_sql_conn_get(&c, m)) < 0)
		return error;
	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_USAGE_LIST), "t", account_id)) < 0) {
		brt_sql_end(brt_sql_stmt(c, BRT_SQL_USAGE_LIST));
		return error;
	}
	return brt_sql_list_rows(c, BRT_SQL_USAGE_LIST, NULL, usage_from_row, &tmp, sizeof(tmp), usage_row_cb,
				 &x);
}

static int usage_copy(const brt_usage *u, void *payload)
{
	brt_usage *out = payload;

	*out = *u;
	out->account_id[BRT_ACCOUNT_ID_LEN] = '\0';
	return 1; /* one row is all */
}

static int meta_usage_get(brt_meta *m, brt_usage *out, const char *account_id)
{
	int error;

	memset(out, 0, sizeof(*out));
	if ((error = usage_rows(m, account_id, usage_copy, out)) < 0)
		return error;
	if (error == 0)
		return brt_error_set(BRT_ENOTFOUND, "account %s unknown", account_id);
	return 0;
}

static int meta_usage_list(brt_meta *m, brt_meta_usage_cb cb, void *payload)
{
	return usage_rows(m, NULL, cb, payload);
}

typedef struct quota_args {
	const char *account_id;
	int64_t quota;
} quota_args;

static int tx_quota_set(brt_sql_conn *c, void *ctx)
{
	const quota_args *a = ctx;
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_QUOTA_SET);
	int error;

	/* A negative quota means none: NULL. */
	if ((error = a->quota < 0 ? brt_sql_bind(c, st, "tt", a->account_id, (const char *)NULL)
				  : brt_sql_bind(c, st, "ti", a->account_id, a->quota)) < 0)
		return error;
	if ((error = brt_sql_run(c, BRT_SQL_QUOTA_SET)) < 0)
		return error;
	return brt_sql_changes(c) > 0 ? 0 : brt_error_set(BRT_ENOTFOUND, "account %s unknown", a->account_id);
}

static int meta_quota_set(brt_meta *m, const char *account_id, int64_t quota_bytes)
{
	quota_args a = {account_id, quota_bytes};

	return brt_sql_run_write(m, tx_quota_set, &a);
}

void brt_sql_gc_slots(brt_meta *m)
{
	m->gc_collect = meta_gc_collect;
	m->gc_outbox_list = meta_gc_outbox_list;
	m->gc_outbox_done = meta_gc_outbox_done;
	m->storage_key_known = meta_storage_key_known;
	m->quota_get = meta_quota_get;
	m->usage_get = meta_usage_get;
	m->usage_list = meta_usage_list;
	m->quota_set = meta_quota_set;
}
