/* The SQL drivers' upload session slots: one row per session, created
 * under a per-account cap, updated and deleted by compare-and-swap on its
 * generation, with the blob store driver's opaque state alongside. */
#include "meta/sql/slots.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

typedef struct upload_create_args {
	const brt_upload *upload;
	unsigned int max_per_account;
} upload_create_args;

static int tx_upload_create(brt_sql_conn *c, void *ctx)
{
	const upload_create_args *a = ctx;
	const brt_upload *u = a->upload;
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_UPLOAD_COUNT);
	int64_t repo_id = 0, open_sessions = 0;
	int error, row = 0;

	if (a->max_per_account > 0) {
		/* Counted inside the write transaction: concurrent POSTs are
		 * serialised (SQLite's one writer, PostgreSQL's SERIALIZABLE
		 * retries), so the cap holds exactly. */
		if ((error = brt_sql_bind(c, st, "t", u->account_id)) == 0 &&
		    (error = brt_sql_step(c, st, &row)) == 0 && row)
			open_sessions = brt_sql_column_int64(st, 0);
		brt_sql_end(st);
		if (error < 0)
			return error;
		if (open_sessions >= (int64_t)a->max_per_account)
			return brt_error_set(BRT_ELIMIT,
					     "the account has %lld open upload sessions, the most allowed",
					     (long long)open_sessions);
	}
	if ((error = brt_sql_repo_ensure(c, u->repo, u->account_id, u->created_at, &repo_id)) < 0 ||
	    (error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_UPLOAD_INSERT), "titubuiib", u->id, repo_id,
				  u->account_id, u->offset,
				  u->hash_state_len ? (const void *)u->hash_state : NULL, u->hash_state_len,
				  u->generation, u->created_at, u->updated_at,
				  u->backend_state_len ? (const void *)u->backend_state : NULL,
				  u->backend_state_len)) < 0)
		return error;
	error = brt_sql_run(c, BRT_SQL_UPLOAD_INSERT);
	if (error < 0 && brt_sql_unique_violation(c))
		error = brt_error_set(BRT_EEXISTS, "upload %s exists", u->id);
	return error;
}

/* The parts of an upload row that upload_create and upload_update store
 * must fit their columns and the documented caps. */
static int upload_check(const brt_upload *u)
{
	int error;

	if ((error = brt_sql_field_check(u->id, sizeof(u->id), 1, "upload id")) < 0 ||
	    (error = brt_sql_field_check(u->account_id, sizeof(u->account_id), 1, "account id")) < 0 ||
	    (error = brt_sql_field_check(u->repo, sizeof(u->repo), 1, "repository name")) < 0)
		return error;
	if (u->hash_state_len > sizeof(u->hash_state))
		return brt_error_set(BRT_EINVALID, "hash state too long");
	if (u->backend_state_len > BRT_UPLOAD_BACKEND_STATE_MAX)
		return brt_error_set(BRT_ETOOBIG, "upload backend state of %zu bytes, at most %zu",
				     u->backend_state_len, BRT_UPLOAD_BACKEND_STATE_MAX);
	if (u->backend_state_len && !u->backend_state)
		return brt_error_set(BRT_EINVALID, "upload backend state without data");
	return 0;
}

static int meta_upload_create(brt_meta *m, const brt_upload *upload, unsigned int max_per_account)
{
	upload_create_args args = {upload, max_per_account};
	int error;

	if ((error = upload_check(upload)) < 0)
		return error;
	return brt_sql_run_write(m, tx_upload_create, &args);
}

/* An upload row (the first columns of BRT_SQL_UPLOAD_GET and
 * BRT_SQL_UPLOAD_LIST) into `row`, without its backend state. */
static int upload_from_row(brt_sql_conn *c, brt_sql_statement *st, void *row)
{
	brt_upload *out = row;
	const void *state;
	size_t state_len;
	int64_t offset, generation;
	int error;

	if ((error = brt_sql_column_copy_text(c, st, 0, out->id, sizeof(out->id))) < 0 ||
	    (error = brt_sql_column_copy_text(c, st, 1, out->repo, sizeof(out->repo))) < 0 ||
	    (error = brt_sql_column_copy_text(c, st, 7, out->account_id, sizeof(out->account_id))) < 0)
		return error;
	offset = brt_sql_column_int64(st, 2);
	state = brt_sql_column_blob(st, 3);
	state_len = (size_t)brt_sql_column_bytes(st, 3);
	generation = brt_sql_column_int64(st, 4);
	if (offset < 0 || generation < 0 || state_len > sizeof(out->hash_state))
		return brt_error_set(BRT_EIO, "meta: corrupt upload row %s", out->id);
	if (state_len > 0 && !state)
		return brt_error_set(BRT_ENOMEM, "out of memory");
	if (state_len > 0)
		memcpy(out->hash_state, state, state_len);
	out->hash_state_len = state_len;
	out->offset = (uint64_t)offset;
	out->generation = (uint64_t)generation;
	out->created_at = brt_sql_column_int64(st, 5);
	out->updated_at = brt_sql_column_int64(st, 6);
	out->backend_state = NULL;
	out->backend_state_len = 0;
	return 0;
}

typedef struct upload_get_row {
	brt_upload upload;
	brt_pool *pool; /* NULL: leave the backend state out */
} upload_get_row;

/* upload_get's row: upload_from_row, then the backend state into the pool. */
static int upload_get_from_row(brt_sql_conn *c, brt_sql_statement *st, void *row)
{
	upload_get_row *r = row;
	const void *state;
	size_t len;
	unsigned char *copy;
	int error;

	if ((error = upload_from_row(c, st, &r->upload)) < 0 || !r->pool)
		return error;
	state = brt_sql_column_blob(st, 8);
	len = (size_t)brt_sql_column_bytes(st, 8);
	if (len == 0)
		return 0;
	if (!state)
		return brt_error_set(BRT_ENOMEM, "out of memory");
	if (len > BRT_UPLOAD_BACKEND_STATE_MAX)
		return brt_error_set(BRT_EIO, "meta: corrupt upload row %s", r->upload.id);
	if (!(copy = brt_pool_alloc(r->pool, len)))
		return brt_error_set(BRT_ENOMEM, "request pool exhausted");
	memcpy(copy, state, len);
	r->upload.backend_state = copy;
	r->upload.backend_state_len = len;
	return 0;
}

static int meta_upload_get(brt_meta *m, brt_upload *out, brt_pool *pool, const char *id)
{
	upload_get_row tmp;

	tmp.pool = pool;
	return brt_sql_get_by_id(m, BRT_SQL_UPLOAD_GET, id, upload_get_from_row, &tmp, out, sizeof(*out),
				 "upload");
}

static int emit_upload(const void *row, void *ctx)
{
	const struct brt_sql_typed_cb *t = ctx;

	return t->upload(row, t->payload);
}

/* Rows are read first and the statement reset before the callbacks, so
 * they may write (the janitor deletes what it lists). */
static int meta_upload_list(brt_meta *m, int64_t updated_before, size_t limit, brt_meta_upload_cb cb,
			    void *payload)
{
	struct brt_sql_typed_cb t = {.upload = cb, .payload = payload};
	brt_upload tmp;
	brt_sql_conn *c;
	int error;

	if ((error = brt_sql_conn_get(&c, m)) < 0)
		return error;
	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_UPLOAD_LIST), "ii", updated_before,
				  limit == 0 || limit > INT64_MAX ? INT64_MAX : (int64_t)limit)) < 0)
		return error;
	return brt_sql_list_rows(c, BRT_SQL_UPLOAD_LIST, NULL, upload_from_row, &tmp, sizeof(tmp),
				 emit_upload, &t);
}

static int tx_upload_update(brt_sql_conn *c, void *ctx)
{
	const brt_upload *u = ctx;
	int found;
	int error;

	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_UPLOAD_UPDATE), "tubiub", u->id, u->offset,
				  u->hash_state_len ? (const void *)u->hash_state : NULL, u->hash_state_len,
				  u->updated_at, u->generation,
				  u->backend_state_len ? (const void *)u->backend_state : NULL,
				  u->backend_state_len)) < 0 ||
	    (error = brt_sql_run(c, BRT_SQL_UPLOAD_UPDATE)) < 0)
		return error;
	if (brt_sql_changes(c) > 0)
		return 0;
	if ((error = brt_sql_exists(c, BRT_SQL_UPLOAD_EXISTS, "t", 0, u->id, &found)) < 0)
		return error;
	if (found)
		return brt_error_set(BRT_ECONFLICT, "upload %s was updated concurrently", u->id);
	return brt_error_set(BRT_ENOTFOUND, "upload %s unknown", u->id);
}

static int meta_upload_update(brt_meta *m, const brt_upload *upload)
{
	int error;

	if ((error = upload_check(upload)) < 0)
		return error;
	/* A row lost to a power cut only rewinds the session (the client
	 * resends from the Range it gets): a chunk's data is synced before
	 * its row names it, or the row's backend state says which boot wrote
	 * it unsynced and the session ends after a restart of the machine
	 * (docs/drivers.md, Crash safety).  No need to wait for the disk per
	 * chunk, unless the caller asks (a blob store that removes what the
	 * previous state named).  Creating and ending sessions stay synced. */
	return upload->durable ? brt_sql_run_write(m, tx_upload_update, (void *)upload)
			       : brt_sql_run_write_lazy(m, tx_upload_update, (void *)upload);
}

typedef struct upload_delete_args {
	const char *id;
	uint64_t generation;
} upload_delete_args;

static int tx_upload_delete(brt_sql_conn *c, void *ctx)
{
	const upload_delete_args *a = ctx;
	int found;
	int error;

	if (a->generation == BRT_META_ANY_GENERATION)
		error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_UPLOAD_DELETE), "tt", a->id,
				     (const char *)NULL);
	else
		error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_UPLOAD_DELETE), "tu", a->id, a->generation);
	if (error < 0 || (error = brt_sql_run(c, BRT_SQL_UPLOAD_DELETE)) < 0)
		return error;
	if (brt_sql_changes(c) > 0)
		return 0;
	if ((error = brt_sql_exists(c, BRT_SQL_UPLOAD_EXISTS, "t", 0, a->id, &found)) < 0)
		return error;
	if (found)
		return brt_error_set(BRT_ECONFLICT, "upload %s was updated concurrently", a->id);
	return brt_error_set(BRT_ENOTFOUND, "upload %s unknown", a->id);
}

static int meta_upload_delete(brt_meta *m, const char *id, uint64_t generation)
{
	upload_delete_args a = {id, generation};

	return brt_sql_run_write(m, tx_upload_delete, &a);
}

void brt_sql_uploads_slots(brt_meta *m)
{
	m->upload_create = meta_upload_create;
	m->upload_get = meta_upload_get;
	m->upload_update = meta_upload_update;
	m->upload_delete = meta_upload_delete;
	m->upload_list = meta_upload_list;
}
