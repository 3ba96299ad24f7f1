/* The SQL drivers' repository slots: blobs and their links,
 * manifests, tags, referrers, the catalog, and the whole-store walks. */
#include "meta/sql/slots.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/dynbuf.h"
#include "common/error.h"

/* The repository's id, if it exists (*found_out); with an `account`, a
 * repository of another account is BRT_EINVALID: the caller's idea of the
 * tenancy and the stored one must never drift apart (usage is counted by
 * the stored account). */
static int repo_find(brt_sql_conn *c, const char *repo, const char *account, int64_t *id_out, int *found_out)
{
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_REPO_ID);
	int error;

	*found_out = 0;
	*id_out = 0;
	if ((error = brt_sql_bind(c, st, "t", repo)) == 0 && (error = brt_sql_step(c, st, found_out)) == 0 &&
	    *found_out) {
		const unsigned char *stored = brt_sql_column_text(st, 1);

		*id_out = brt_sql_column_int64(st, 0);
		if (account && (!stored || strcmp((const char *)stored, account) != 0))
			error = brt_error_set(BRT_EINVALID, "repository %s belongs to another account", repo);
	}
	brt_sql_end(st);
	return error;
}

static int repo_lookup(brt_sql_conn *c, const char *repo, const char *account, int64_t *id_out)
{
	int found;
	int error = repo_find(c, repo, account, id_out, &found);

	if (error == 0 && !found)
		error = brt_error_set(BRT_ENOTFOUND, "repository %s unknown", repo);
	return error;
}

/* An account id handed in must be there and fit the column's meaning. */
static int account_check(const char *account)
{
	if (!account || account[0] == '\0')
		return brt_error_set(BRT_EINVALID, "no account id");
	if (strnlen(account, BRT_ACCOUNT_ID_LEN + 1) > BRT_ACCOUNT_ID_LEN)
		return brt_error_set(BRT_EINVALID, "account id too long");
	return 0;
}

/* Inside a write transaction: the repository's id, creating it for
 * `account` if needed. */
int brt_sql_repo_ensure(brt_sql_conn *c, const char *repo, const char *account, int64_t now, int64_t *id_out)
{
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_REPO_INSERT);
	int found;
	int error;

	if ((error = account_check(account)) < 0 ||
	    (error = repo_find(c, repo, account, id_out, &found)) < 0 || found)
		return error;
	if ((error = brt_sql_bind(c, st, "tti", account, repo, now)) == 0 &&
	    (error = brt_sql_step(c, st, &found)) == 0) {
		if (found)
			*id_out = brt_sql_column_int64(st, 0);
		else
			error = brt_error_set(BRT_EIO, "meta: repository insert returned no id");
	}
	brt_sql_end(st);
	return error;
}

int brt_sql_repo_contents(brt_sql_conn *c, int64_t repo_id, int64_t delta)
{
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_REPO_CONTENTS);
	int64_t contents = 0;
	int error, row = 0;

	if (delta == 0)
		return 0;
	if ((error = brt_sql_bind(c, st, "ii", repo_id, delta)) == 0 &&
	    (error = brt_sql_step(c, st, &row)) == 0 && row)
		contents = brt_sql_column_int64(st, 0);
	brt_sql_end(st);
	if (error < 0)
		return error;
	/* Rows that reference the repository keep it: it is always there. */
	if (!row)
		return brt_error_set(BRT_EIO, "meta: repository %lld vanished under its contents",
				     (long long)repo_id);
	if ((contents > 0) == (contents - delta > 0))
		return 0;
	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_REPO_LISTED), "ii", repo_id,
				  (int64_t)(contents > 0))) < 0)
		return error;
	return brt_sql_run(c, BRT_SQL_REPO_LISTED);
}

/* The id of manifest `digest` in the repository, and its size unless
 * `size_out` is NULL. */
static int manifest_find(brt_sql_conn *c, int64_t repo_id, const char *digest, int64_t *id_out,
			 uint64_t *size_out, int *found_out)
{
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_MANIFEST_ID);
	int error;

	*found_out = 0;
	*id_out = 0;
	if ((error = brt_sql_bind(c, st, "it", repo_id, digest)) == 0 &&
	    (error = brt_sql_step(c, st, found_out)) == 0 && *found_out) {
		*id_out = brt_sql_column_int64(st, 0);
		if (size_out)
			*size_out = (uint64_t)brt_sql_column_int64(st, 1);
	}
	brt_sql_end(st);
	return error;
}

/* Collected strings, handed to callbacks only after the statement is reset
 * so a callback may safely call back into the store (and so no read
 * transaction stays open while the caller writes a response).  Each string
 * is stored with its NUL and found again by its offset. */
#define NO_STRING SIZE_MAX

static int strings_add(brt_dynbuf *b, const char *s, size_t n, size_t *offset_out)
{
	size_t offset = brt_dynbuf_len(b);
	int error;

	if ((error = brt_dynbuf_add(b, s, n)) < 0 || (error = brt_dynbuf_add(b, "", 1)) < 0)
		return error;
	*offset_out = offset;
	return 0;
}

/* Column `col` (may be NULL: NO_STRING) appended to `b`. */
static int strings_add_column(brt_sql_conn *c, brt_dynbuf *b, brt_sql_statement *st, int col,
			      size_t *offset_out)
{
	const unsigned char *text;

	*offset_out = NO_STRING;
	if (brt_sql_column_is_null(st, col))
		return 0;
	if (!(text = brt_sql_column_text(st, col)))
		return c->engine->column_error(c, col);
	return strings_add(b, (const char *)text, (size_t)brt_sql_column_bytes(st, col), offset_out);
}

/* LIMIT for "at most `limit` rows, plus one to learn whether there are more". */
static int64_t limit_plus_one(size_t limit)
{
	return limit >= (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit + 1;
}

/* Read name rows (column 0) from a bound statement: at most `limit` kept;
 * a further row sets *more_out.  With a `prefix`, the first row without it
 * ends the listing. */
static int names_collect(brt_sql_conn *c, brt_sql_statement *st, size_t limit, const char *prefix,
			 brt_dynbuf *names, size_t *count_out, int *more_out)
{
	size_t prefix_len = prefix ? strlen(prefix) : 0;
	int error = 0;
	int row;

	*count_out = 0;
	*more_out = 0;
	while ((error = brt_sql_step(c, st, &row)) == 0 && row) {
		const unsigned char *text = brt_sql_column_text(st, 0);
		size_t n = (size_t)brt_sql_column_bytes(st, 0);
		size_t offset;

		if (!text) {
			error = brt_error_set(BRT_ENOMEM, "out of memory");
			break;
		}
		if (prefix && (n < prefix_len || memcmp(text, prefix, prefix_len) != 0))
			break;
		if (*count_out == limit) {
			*more_out = 1;
			break;
		}
		if ((error = strings_add(names, (const char *)text, n, &offset)) < 0)
			break;
		(*count_out)++;
	}
	return error;
}

static int names_emit(const brt_dynbuf *names, size_t count, brt_meta_name_cb cb, void *payload)
{
	size_t offset = 0;
	size_t i;
	int error = 0;

	for (i = 0; i < count && error == 0; i++) {
		const char *name = brt_dynbuf_ptr(names) + offset;

		offset += strlen(name) + 1;
		error = cb(name, payload);
	}
	return error;
}

/* Run a bound listing statement: collect at most `limit` names (those
 * starting with `prefix` when not NULL), end the statement, and only then
 * hand them to `cb`, which may call read slots itself. */
static int names_list(brt_sql_conn *c, brt_sql_statement *st, size_t limit, const char *prefix,
		      brt_meta_name_cb cb, void *payload, int *more_out)
{
	brt_dynbuf names;
	size_t count = 0;
	int more = 0;
	int error;

	brt_dynbuf_init(&names, BRT_SQL_LISTING_MAX);
	error = names_collect(c, st, limit, prefix, &names, &count, &more);
	brt_sql_end(st);
	if (error == 0 && (error = names_emit(&names, count, cb, payload)) == 0)
		*more_out = more;
	brt_dynbuf_free(&names);
	return error;
}

static int meta_repo_exists(brt_meta *m, const char *repo)
{
	brt_sql_conn *c;
	int64_t id;
	int error;

	if ((error = brt_sql_conn_get(&c, m)) < 0)
		return error;
	return repo_lookup(c, repo, NULL, &id);
}

/* One blob row (size, storage key) of statement `which` bound to
 * (`owner`, `digest`): a repository's link or an account's. */
static int blob_row(brt_meta *m, brt_blob_info *out, brt_pool *pool, enum brt_sql_stmt which,
		    const char *owner, const char *digest)
{
	brt_sql_conn *c;
	brt_sql_statement *st = NULL;
	int error;
	int row;
	int64_t size;

	if ((error = brt_sql_conn_get(&c, m)) < 0)
		goto done;
	st = brt_sql_stmt(c, which);
	if ((error = brt_sql_bind(c, st, "tt", owner, digest)) < 0 || (error = brt_sql_step(c, st, &row)) < 0)
		goto done;
	if (!row) {
		error = brt_error_set(BRT_ENOTFOUND, "blob %s not linked in %s", digest, owner);
		goto done;
	}
	size = brt_sql_column_int64(st, 0);
	if (size < 0) {
		error = brt_error_set(BRT_EIO, "meta: negative blob size");
		goto done;
	}
	if ((error = brt_sql_column_pool_text(c, st, 1, pool, &out->storage_key)) < 0)
		goto done;
	out->size = (uint64_t)size;
	out->touched_at = brt_sql_column_int64(st, 2);
done:
	brt_sql_end(st);
	return error;
}

static int meta_blob_get(brt_meta *m, brt_blob_info *out, brt_pool *pool, const char *repo,
			 const char *digest)
{
	return blob_row(m, out, pool, BRT_SQL_BLOB_GET, repo, digest);
}

static int meta_account_blob_get(brt_meta *m, brt_blob_info *out, brt_pool *pool, const char *account_id,
				 const char *digest)
{
	return blob_row(m, out, pool, BRT_SQL_ACCOUNT_BLOB_GET, account_id, digest);
}

/* Inside blob_link's transaction: make sure the digest has a blob row.
 * The object handed in is recorded if there is none (or if the recorded
 * copy is marked damaged: the verified new copy replaces it); a copy that
 * is not recorded is a duplicate and goes to the outbox.  Without an
 * object (a mount), the blob row must be there. */
static int blob_record(brt_sql_conn *c, const brt_blob_link *a)
{
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_BLOB_STATE);
	char stored[192];
	int error, row = 0, damaged = 0;
	const char *unused = NULL;

	if ((error = brt_sql_bind(c, st, "t", a->digest)) == 0 && (error = brt_sql_step(c, st, &row)) == 0 &&
	    row) {
		damaged = (int)brt_sql_column_int64(st, 1);
		error = brt_sql_column_copy_text(c, st, 0, stored, sizeof(stored));
	}
	brt_sql_end(st);
	if (error < 0)
		return error;
	if (!a->storage_key) {
		if (!row || damaged)
			return brt_error_set(BRT_ENOTFOUND, "blob %s unknown", a->digest);
		return 0;
	}
	if (!row) {
		st = brt_sql_stmt(c, BRT_SQL_BLOB_INSERT);
		if ((error = brt_sql_bind(c, st, "tuti", a->digest, a->size, a->storage_key, a->now)) < 0)
			return error;
		return brt_sql_run(c, BRT_SQL_BLOB_INSERT);
	}
	if (damaged) {
		if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_BLOB_REPLACE), "tt", a->digest,
					  a->storage_key)) < 0 ||
		    (error = brt_sql_run(c, BRT_SQL_BLOB_REPLACE)) < 0)
			return error;
		unused = stored;
	} else {
		unused = a->storage_key;
	}
	if (strcmp(stored, a->storage_key) == 0)
		return 0;
	/* Nobody has read the unused copy through a row: no read grace. */
	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_GC_OUTBOX_ADD), "tui", unused, a->size,
				  a->now)) < 0)
		return error;
	return brt_sql_run(c, BRT_SQL_GC_OUTBOX_ADD);
}

static int tx_blob_link(brt_sql_conn *c, void *ctx)
{
	const brt_blob_link *a = ctx;
	brt_sql_statement *st = NULL;
	int64_t repo_id;
	int error;
	int inserted;

	if ((error = account_check(a->account_id)) < 0 || (error = blob_record(c, a)) < 0 ||
	    (error = brt_sql_repo_ensure(c, a->repo, a->account_id, a->now, &repo_id)) < 0)
		goto done;
	st = brt_sql_stmt(c, BRT_SQL_LINK_INSERT);
	if ((error = brt_sql_bind(c, st, "itti", repo_id, a->digest, a->account_id, a->now)) < 0 ||
	    (error = brt_sql_step(c, st, &inserted)) < 0)
		goto done;
	brt_sql_end(st);
	st = NULL;
	/* A new link counts once more towards the account's use of the blob,
	 * and is reviewed after the grace period (a blob no manifest lists
	 * by then goes); linking again is a sign of a manifest PUT to come:
	 * keep it fresh. */
	if (inserted) {
		if ((error = brt_sql_repo_contents(c, repo_id, 1)) < 0 ||
		    (error = brt_sql_account_blob_add(c, a->account_id, a->digest, a->now)) < 0 ||
		    (error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_GC_QUEUE_LINK), "itti", repo_id,
					  a->digest, a->account_id, a->now)) < 0)
			goto done;
		error = brt_sql_run(c, BRT_SQL_GC_QUEUE_LINK);
	} else if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_LINK_TOUCH), "iti", repo_id, a->digest,
					 a->now)) == 0) {
		error = brt_sql_run(c, BRT_SQL_LINK_TOUCH);
	}
done:
	brt_sql_end(st);
	return error;
}

static int meta_blob_link(brt_meta *m, const brt_blob_link *link)
{
	return brt_sql_run_write(m, tx_blob_link, (void *)link);
}

static int tx_blob_unlink(brt_sql_conn *c, void *ctx)
{
	const brt_blob_link *a = ctx;
	int64_t repo_id;
	int found;
	int error;

	if ((error = account_check(a->account_id)) < 0 ||
	    (error = repo_lookup(c, a->repo, a->account_id, &repo_id)) < 0 ||
	    (error = brt_sql_exists(c, BRT_SQL_LINK_EXISTS, "it", repo_id, a->digest, &found)) < 0)
		return error;
	if (!found)
		return brt_error_set(BRT_ENOTFOUND, "blob %s not linked in %s", a->digest, a->repo);
	/* A manifest may still list the blob: the client asked for it to go
	 * all the same (as distribution allows), and the manifest's reference
	 * rows go with the link (ON DELETE CASCADE). */
	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_LINK_DELETE), "it", repo_id, a->digest)) < 0 ||
	    (error = brt_sql_run(c, BRT_SQL_LINK_DELETE)) < 0 ||
	    (error = brt_sql_repo_contents(c, repo_id, -(int64_t)brt_sql_changes(c))) < 0 ||
	    (error = brt_sql_account_blob_release(c, a->account_id, a->digest, a->now)) < 0 ||
	    (error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_GC_QUEUE_BLOB), "ti", a->digest, a->now)) < 0)
		return error;
	return brt_sql_run(c, BRT_SQL_GC_QUEUE_BLOB);
}

static int meta_blob_unlink(brt_meta *m, const brt_blob_link *link)
{
	return brt_sql_run_write(m, tx_blob_unlink, (void *)link);
}

/* A blob or child a manifest lists: BRT_EBLOBUNKNOWN if not `found`,
 * BRT_EINVALID if the size its descriptor claims (when given) is not the
 * stored one. */
static int reference_check(int found, uint64_t stored, const uint64_t *claimed, const char *what,
			   const char *digest, const char *lister)
{
	if (!found)
		return brt_error_set(BRT_EBLOBUNKNOWN, "%s %s unknown", what, digest);
	if (claimed && *claimed != stored)
		return brt_error_set(BRT_EINVALID, "%s %s is %llu bytes, the %s says %llu", what, digest,
				     (unsigned long long)stored, lister, (unsigned long long)*claimed);
	return 0;
}

/* Inside manifest_put's transaction: check the references of a manifest
 * new to the repository and store it with them. */
static int manifest_insert(brt_sql_conn *c, const brt_manifest_put *put, int64_t repo_id, const char *account,
			   int64_t *id_out)
{
	brt_sql_statement *st = NULL;
	int64_t manifest_id = 0;
	int found;
	int error = 0;
	size_t i;

	for (i = 0; i < put->blob_count; i++) {
		brt_sql_statement *link = brt_sql_stmt(c, BRT_SQL_LINK_SIZE);
		uint64_t stored = 0;

		if ((error = brt_sql_bind(c, link, "it", repo_id, put->blobs[i])) == 0 &&
		    (error = brt_sql_step(c, link, &found)) == 0 && found)
			stored = (uint64_t)brt_sql_column_int64(link, 0);
		brt_sql_end(link);
		if (error < 0)
			goto done;
		if ((error = reference_check(found, stored, put->blob_sizes ? &put->blob_sizes[i] : NULL,
					     "blob", put->blobs[i], "manifest")) < 0)
			goto done;
	}
	st = brt_sql_stmt(c, BRT_SQL_MANIFEST_INSERT);
	if ((error = brt_sql_bind(c, st, "itttubttti", repo_id, account, put->digest, put->media_type,
				  (uint64_t)put->size, (const void *)put->payload, put->size, put->subject,
				  put->artifact_type, put->annotations, put->now)) < 0 ||
	    (error = brt_sql_step(c, st, &found)) < 0)
		goto done;
	if (!found) {
		error = brt_error_set(BRT_EIO, "meta: manifest insert returned no id");
		goto done;
	}
	manifest_id = brt_sql_column_int64(st, 0);
	brt_sql_end(st);
	st = NULL;
	if ((error = brt_sql_repo_contents(c, repo_id, 1)) < 0 ||
	    (error = brt_sql_usage_charge(c, account, (int64_t)put->size, put->now)) < 0)
		goto done;
	/* ON CONFLICT DO NOTHING: a digest listed twice is stored once. */
	for (i = 0; i < put->blob_count; i++) {
		if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_MANIFEST_BLOB_INSERT), "iit",
					  manifest_id, repo_id, put->blobs[i])) < 0 ||
		    (error = brt_sql_run(c, BRT_SQL_MANIFEST_BLOB_INSERT)) < 0)
			goto done;
	}
	for (i = 0; i < put->child_count; i++) {
		int64_t child_id = 0;
		uint64_t child_size = 0;

		if ((error = manifest_find(c, repo_id, put->children[i], &child_id, &child_size, &found)) <
			    0 ||
		    (error = reference_check(found, child_size,
					     put->child_sizes ? &put->child_sizes[i] : NULL, "manifest",
					     put->children[i], "index")) < 0)
			goto done;
		if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_MANIFEST_REF_INSERT), "ii", manifest_id,
					  child_id)) < 0 ||
		    (error = brt_sql_run(c, BRT_SQL_MANIFEST_REF_INSERT)) < 0)
			goto done;
	}
	*id_out = manifest_id;
done:
	brt_sql_end(st);
	return error;
}

/* Inside manifest_put's transaction: point the tag at the manifest, as
 * `tag_expected` allows (see meta.h), unless a policy makes it immutable;
 * the manifest it leaves is queued for review. */
static int tag_set(brt_sql_conn *c, const brt_manifest_put *put, int64_t repo_id, int64_t manifest_id)
{
	enum brt_sql_stmt id = !put->tag_expected     ? BRT_SQL_TAG_UPSERT
			       : put->tag_expected[0] ? BRT_SQL_TAG_MOVE_FROM
						      : BRT_SQL_TAG_INSERT_NEW;
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_TAG_TARGET);
	int64_t old_id = 0;
	int error, row = 0;

	if ((error = brt_sql_bind(c, st, "it", repo_id, put->tag)) == 0 &&
	    (error = brt_sql_step(c, st, &row)) == 0 && row)
		old_id = brt_sql_column_int64(st, 0);
	brt_sql_end(st);
	if (error < 0)
		return error;
	if (row && old_id != manifest_id &&
	    (error = brt_sql_tag_guard(c, put->account_id, put->repo, put->tag, BRT_EIMMUTABLE)) < 0)
		return error;
	if (id == BRT_SQL_TAG_MOVE_FROM)
		error = brt_sql_bind(c, brt_sql_stmt(c, id), "itiit", repo_id, put->tag, manifest_id,
				     put->now, put->tag_expected);
	else
		error = brt_sql_bind(c, brt_sql_stmt(c, id), "itii", repo_id, put->tag, manifest_id,
				     put->now);
	if (error < 0 || (error = brt_sql_run(c, id)) < 0)
		return error;
	if (id != BRT_SQL_TAG_UPSERT && brt_sql_changes(c) == 0)
		return brt_error_set(BRT_ECONFLICT, "tag %s in %s is not %s", put->tag, put->repo,
				     put->tag_expected[0] ? put->tag_expected : "new");
	return row && old_id != manifest_id ? brt_sql_gc_queue_manifest(c, old_id, put->now) : 0;
}

/* A failure anywhere rolls back everything, including a repository this
 * call created and a manifest stored before the tag lost its race. */

static int tx_manifest_put(brt_sql_conn *c, void *ctx)
{
	const brt_manifest_put *put = ctx;
	int64_t repo_id = 0;
	int64_t manifest_id = 0;
	int found;
	int error;

	if ((error = brt_sql_repo_ensure(c, put->repo, put->account_id, put->now, &repo_id)) < 0 ||
	    (error = manifest_find(c, repo_id, put->digest, &manifest_id, NULL, &found)) < 0)
		return error;
	/* Same digest, same bytes: the stored manifest and its references
	 * stand, only the tag moves.  Pushed again by digest, it is wanted:
	 * a review it awaited (it lost its tag or its index) is called off. */
	if (!found && (error = manifest_insert(c, put, repo_id, put->account_id, &manifest_id)) < 0)
		return error;
	if (put->tag)
		return tag_set(c, put, repo_id, manifest_id);
	if (!found)
		return 0;
	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_GC_MANIFEST_UNQUEUE), "i", manifest_id)) < 0)
		return error;
	return brt_sql_run(c, BRT_SQL_GC_MANIFEST_UNQUEUE);
}

static int meta_manifest_put(brt_meta *m, const brt_manifest_put *put)
{
	if (put->tag_expected && !put->tag)
		return brt_error_set(BRT_EINVALID, "an expected tag target without a tag");
	return brt_sql_run_write(m, tx_manifest_put, (void *)put);
}

static int meta_manifest_get(brt_meta *m, brt_manifest *out, brt_pool *pool, const char *repo,
			     const char *reference, int is_digest)
{
	brt_sql_conn *c;
	brt_sql_statement *st = NULL;
	const void *blob;
	unsigned char *payload;
	size_t size;
	int error;
	int row;

	if ((error = brt_sql_conn_get(&c, m)) < 0)
		goto done;
	st = brt_sql_stmt(c, is_digest ? BRT_SQL_MANIFEST_GET_DIGEST : BRT_SQL_MANIFEST_GET_TAG);
	if ((error = brt_sql_bind(c, st, "tt", repo, reference)) < 0 ||
	    (error = brt_sql_step(c, st, &row)) < 0)
		goto done;
	if (!row) {
		error = brt_error_set(BRT_ENOTFOUND, "manifest %s unknown in %s", reference, repo);
		goto done;
	}
	if ((error = brt_sql_column_pool_text(c, st, 0, pool, &out->digest)) < 0 ||
	    (error = brt_sql_column_pool_text(c, st, 1, pool, &out->media_type)) < 0)
		goto done;
	blob = brt_sql_column_blob(st, 2);
	size = (size_t)brt_sql_column_bytes(st, 2);
	if (!blob && size > 0) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	if (!(payload = brt_pool_alloc(pool, size))) {
		error = brt_error_set(BRT_ENOMEM, "request pool exhausted");
		goto done;
	}
	if (size > 0)
		memcpy(payload, blob, size);
	out->payload = payload;
	out->size = size;
done:
	brt_sql_end(st);
	return error;
}

typedef struct manifest_delete_args {
	const char *repo;
	const char *digest;
} manifest_delete_args;

static int tx_manifest_delete(brt_sql_conn *c, void *ctx)
{
	const manifest_delete_args *a = ctx;
	brt_sql_manifest_row row;
	int64_t repo_id;
	int64_t manifest_id;
	int found;
	int error;

	if ((error = repo_lookup(c, a->repo, NULL, &repo_id)) < 0 ||
	    (error = manifest_find(c, repo_id, a->digest, &manifest_id, NULL, &found)) < 0)
		return error;
	if (!found)
		return brt_error_set(BRT_ENOTFOUND, "manifest %s unknown in %s", a->digest, a->repo);
	if ((error = brt_sql_exists(c, BRT_SQL_MANIFEST_REFERENCED, "i", manifest_id, NULL, &found)) < 0)
		return error;
	if (found)
		return brt_error_set(BRT_ECONFLICT, "manifest %s is listed by an index of %s", a->digest,
				     a->repo);
	if ((error = brt_sql_manifest_find(c, manifest_id, &row, &found)) < 0 ||
	    (error = brt_sql_manifest_tags_guard(c, row.account_id, a->repo, manifest_id)) < 0)
		return error;
	return brt_sql_manifest_drop(c, manifest_id, &row, brt_now_ms());
}

static int meta_manifest_delete(brt_meta *m, const char *repo, const char *digest)
{
	manifest_delete_args a = {repo, digest};

	return brt_sql_run_write(m, tx_manifest_delete, &a);
}

typedef struct tag_delete_args {
	const char *repo;
	const char *tag;
} tag_delete_args;

static int tx_tag_delete(brt_sql_conn *c, void *ctx)
{
	const tag_delete_args *a = ctx;
	char account[BRT_ACCOUNT_ID_LEN + 1];
	int64_t repo_id;
	int error, found = 0, removed = 0;

	if ((error = repo_lookup(c, a->repo, NULL, &repo_id)) == BRT_ENOTFOUND)
		return brt_error_set(BRT_ENOTFOUND, "tag %s unknown in %s", a->tag, a->repo);
	if (error == 0 &&
	    (error = brt_sql_exists(c, BRT_SQL_TAG_TARGET, "it", repo_id, a->tag, &found)) == 0 && !found)
		return brt_error_set(BRT_ENOTFOUND, "tag %s unknown in %s", a->tag, a->repo);
	/* Only an existing tag is protected: an absent one is a 404. */
	if (error < 0 ||
	    (error = brt_sql_tag_guard(c, brt_meta_repo_account(account, a->repo), a->repo, a->tag,
				       BRT_EPROTECTED)) < 0 ||
	    (error = brt_sql_tag_remove(c, repo_id, a->tag, brt_now_ms(), &removed)) < 0)
		return error;
	return removed ? 0 : brt_error_set(BRT_ENOTFOUND, "tag %s unknown in %s", a->tag, a->repo);
}

static int meta_tag_delete(brt_meta *m, const char *repo, const char *tag)
{
	tag_delete_args a = {repo, tag};

	return brt_sql_run_write(m, tx_tag_delete, &a);
}

static int meta_tags_list(brt_meta *m, const char *repo, const char *last, size_t limit, brt_meta_name_cb cb,
			  void *payload, int *more_out)
{
	brt_sql_conn *c;
	brt_sql_statement *st;
	int64_t repo_id;
	int error;

	*more_out = 0;
	if ((error = brt_sql_conn_get(&c, m)) < 0 || (error = repo_lookup(c, repo, NULL, &repo_id)) < 0)
		return error;
	st = brt_sql_stmt(c, BRT_SQL_TAGS_LIST);
	if ((error = brt_sql_bind(c, st, "iti", repo_id, last ? last : "", limit_plus_one(limit))) < 0) {
		brt_sql_end(st);
		return error;
	}
	return names_list(c, st, limit, NULL, cb, payload, more_out);
}

typedef struct referrer_row {
	size_t media_type;
	size_t digest;
	size_t artifact_type;
	size_t annotations;
	uint64_t size;
} referrer_row;

static int meta_referrers_list(brt_meta *m, const char *repo, const char *subject, const char *artifact_type,
			       brt_meta_referrer_cb cb, void *payload)
{
	brt_sql_conn *c;
	brt_sql_statement *st = NULL;
	brt_dynbuf strings, rows;
	size_t count = 0;
	size_t i;
	int error;
	int row;

	brt_dynbuf_init(&strings, BRT_SQL_LISTING_MAX);
	brt_dynbuf_init(&rows, BRT_SQL_LISTING_MAX);
	if ((error = brt_sql_conn_get(&c, m)) < 0)
		goto done;
	st = brt_sql_stmt(c, BRT_SQL_REFERRERS);
	if ((error = brt_sql_bind(c, st, "ttt", repo, subject, artifact_type)) < 0)
		goto done;
	while ((error = brt_sql_step(c, st, &row)) == 0 && row) {
		referrer_row r;
		int64_t size = brt_sql_column_int64(st, 2);

		if (size < 0) {
			error = brt_error_set(BRT_EIO, "meta: negative manifest size");
			goto done;
		}
		r.size = (uint64_t)size;
		if ((error = strings_add_column(c, &strings, st, 0, &r.media_type)) < 0 ||
		    (error = strings_add_column(c, &strings, st, 1, &r.digest)) < 0 ||
		    (error = strings_add_column(c, &strings, st, 3, &r.artifact_type)) < 0 ||
		    (error = strings_add_column(c, &strings, st, 4, &r.annotations)) < 0)
			goto done;
		if (r.media_type == NO_STRING || r.digest == NO_STRING) {
			error = brt_error_set(BRT_EIO, "meta: unexpected NULL in manifests");
			goto done;
		}
		if ((error = brt_dynbuf_add(&rows, &r, sizeof(r))) < 0)
			goto done;
		count++;
	}
	if (error < 0)
		goto done;
	brt_sql_end(st);
	st = NULL;
	for (i = 0; i < count; i++) {
		const char *text = brt_dynbuf_ptr(&strings);
		referrer_row r;
		brt_referrer ref;

		memcpy(&r, brt_dynbuf_ptr(&rows) + i * sizeof(r), sizeof(r));
		ref.media_type = text + r.media_type;
		ref.digest = text + r.digest;
		ref.size = r.size;
		ref.artifact_type = r.artifact_type == NO_STRING ? NULL : text + r.artifact_type;
		ref.annotations = r.annotations == NO_STRING ? NULL : text + r.annotations;
		if ((error = cb(&ref, payload)) != 0)
			goto done;
	}
done:
	brt_sql_end(st);
	brt_dynbuf_free(&rows);
	brt_dynbuf_free(&strings);
	return error;
}

/* The least string above every string that starts with `prefix` (the
 * prefix with its last byte below 0xff incremented); *has_out = 0 when
 * there is none. */
static void prefix_upper(char *out, size_t out_size, const char *prefix, int *has_out)
{
	size_t n = strlen(prefix);

	while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
		n--;
	*has_out = n > 0 && n < out_size;
	if (*has_out) {
		memcpy(out, prefix, n);
		out[n - 1] = (char)((unsigned char)out[n - 1] + 1);
		out[n] = '\0';
	}
}

static int meta_catalog_list(brt_meta *m, const char *prefix, const char *last, size_t limit,
			     brt_meta_name_cb cb, void *payload, int *more_out)
{
	brt_sql_conn *c;
	brt_sql_statement *st;
	char upper[BRT_NAME_MAX + 2];
	const char *lower;
	int has_upper = 0;
	int inclusive = 0;
	int error;

	*more_out = 0;
	if (prefix && prefix[0] == '\0')
		prefix = NULL;
	if (prefix && strlen(prefix) > BRT_NAME_MAX)
		return 0; /* no repository name is that long */
	if ((error = brt_sql_conn_get(&c, m)) < 0)
		return error;
	/* Start at whichever is later: just after `last`, or at `prefix`. */
	lower = last ? last : "";
	if (prefix) {
		prefix_upper(upper, sizeof(upper), prefix, &has_upper);
		if (!last || strcmp(last, prefix) < 0) {
			lower = prefix;
			inclusive = 1;
		}
	}
	if (has_upper) {
		st = brt_sql_stmt(c, inclusive ? BRT_SQL_CATALOG_FROM_BELOW : BRT_SQL_CATALOG_AFTER_BELOW);
		error = brt_sql_bind(c, st, "tti", lower, upper, limit_plus_one(limit));
	} else {
		st = brt_sql_stmt(c, inclusive ? BRT_SQL_CATALOG_FROM : BRT_SQL_CATALOG_AFTER);
		error = brt_sql_bind(c, st, "ti", lower, limit_plus_one(limit));
	}
	if (error < 0) {
		brt_sql_end(st);
		return error;
	}
	return names_list(c, st, limit, prefix, cb, payload, more_out);
}

static int tx_blob_touch(brt_sql_conn *c, void *ctx)
{
	const brt_blob_link *a = ctx;
	int64_t repo_id;
	int error, found = 0;

	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_BLOB_TOUCH), "tti", a->repo, a->digest,
				  a->now)) < 0 ||
	    (error = brt_sql_run(c, BRT_SQL_BLOB_TOUCH)) < 0 || brt_sql_changes(c) > 0)
		return error;
	if ((error = repo_lookup(c, a->repo, NULL, &repo_id)) < 0 ||
	    (error = brt_sql_exists(c, BRT_SQL_LINK_EXISTS, "it", repo_id, a->digest, &found)) < 0)
		return error == BRT_ENOTFOUND
			       ? brt_error_set(BRT_ENOTFOUND, "blob %s not linked in %s", a->digest, a->repo)
			       : error;
	return found ? 0 : brt_error_set(BRT_ENOTFOUND, "blob %s not linked in %s", a->digest, a->repo);
}

static int meta_blob_touch(brt_meta *m, const char *repo, const char *digest, int64_t now)
{
	brt_blob_link args;

	memset(&args, 0, sizeof(args));
	args.repo = repo;
	args.digest = digest;
	args.now = now;
	return brt_sql_run_write(m, tx_blob_touch, &args);
}

static int tx_blob_mark_damaged(brt_sql_conn *c, void *ctx)
{
	const brt_blob_link *a = ctx;
	int found = 0, error;

	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_BLOB_MARK_DAMAGED), "ti", a->digest, a->now)) <
		    0 ||
	    (error = brt_sql_run(c, BRT_SQL_BLOB_MARK_DAMAGED)) < 0)
		return error;
	if (brt_sql_changes(c) > 0)
		return 0;
	if ((error = brt_sql_exists(c, BRT_SQL_BLOB_EXISTS, "t", 0, a->digest, &found)) < 0)
		return error;
	return found ? 0 : brt_error_set(BRT_ENOTFOUND, "blob %s unknown", a->digest);
}

static int meta_blob_mark_damaged(brt_meta *m, const char *digest, int64_t now)
{
	brt_blob_link args;

	memset(&args, 0, sizeof(args));
	args.digest = digest;
	args.now = now;
	return brt_sql_run_write(m, tx_blob_mark_damaged, &args);
}

static int meta_blob_walk(brt_meta *m, brt_meta_blob_cb cb, void *payload)
{
	brt_sql_conn *c;
	brt_sql_statement *st;
	brt_blob_row b;
	int error, row;

	if ((error = brt_sql_conn_get(&c, m)) < 0)
		return error;
	st = brt_sql_stmt(c, BRT_SQL_BLOB_WALK);
	while ((error = brt_sql_step(c, st, &row)) == 0 && row) {
		b.digest = (const char *)brt_sql_column_text(st, 0);
		b.size = (uint64_t)brt_sql_column_int64(st, 1);
		b.storage_key = (const char *)brt_sql_column_text(st, 2);
		b.created_at = brt_sql_column_int64(st, 3);
		if (!b.digest || !b.storage_key) {
			error = brt_error_set(BRT_EIO, "meta: blob row without digest or key");
			break;
		}
		if ((error = cb(&b, payload)) != 0)
			break;
	}
	brt_sql_end(st);
	return error;
}

static int meta_manifest_walk(brt_meta *m, brt_meta_manifest_cb cb, void *payload)
{
	brt_sql_conn *c;
	brt_sql_statement *st;
	brt_manifest mf;
	const char *repo;
	int error, row;

	if ((error = brt_sql_conn_get(&c, m)) < 0)
		return error;
	st = brt_sql_stmt(c, BRT_SQL_MANIFEST_WALK);
	while ((error = brt_sql_step(c, st, &row)) == 0 && row) {
		repo = (const char *)brt_sql_column_text(st, 0);
		mf.digest = (const char *)brt_sql_column_text(st, 1);
		mf.media_type = (const char *)brt_sql_column_text(st, 2);
		mf.payload = brt_sql_column_blob(st, 3);
		mf.size = (size_t)brt_sql_column_bytes(st, 3);
		if (!repo || !mf.digest || !mf.media_type) {
			error = brt_error_set(BRT_EIO,
					      "meta: manifest row without repository, digest or type");
			break;
		}
		if (!mf.payload)
			mf.payload = (const unsigned char *)"";
		if ((error = cb(repo, &mf, payload)) != 0)
			break;
	}
	brt_sql_end(st);
	return error;
}

void brt_sql_repos_slots(brt_meta *m)
{
	m->repo_exists = meta_repo_exists;
	m->blob_get = meta_blob_get;
	m->account_blob_get = meta_account_blob_get;
	m->blob_link = meta_blob_link;
	m->blob_unlink = meta_blob_unlink;
	m->manifest_put = meta_manifest_put;
	m->manifest_get = meta_manifest_get;
	m->manifest_delete = meta_manifest_delete;
	m->tag_delete = meta_tag_delete;
	m->tags_list = meta_tags_list;
	m->referrers_list = meta_referrers_list;
	m->catalog_list = meta_catalog_list;
	m->blob_walk = meta_blob_walk;
	m->manifest_walk = meta_manifest_walk;
	m->blob_mark_damaged = meta_blob_mark_damaged;
	m->blob_touch = meta_blob_touch;
}
