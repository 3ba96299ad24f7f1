/* The metadata slots shared by the SQL drivers, written once against the
 * engine interface (engine.h): row helpers (rows.c) and the slot families
 * (repos.c, uploads.c, accounts.c, gc.c, policies.c), and what those files
 * share with each other. */
#ifndef BRT_META_SQL_SLOTS_H
#define BRT_META_SQL_SLOTS_H

#include <stddef.h>
#include <stdint.h>

#include "meta/meta.h"
#include "meta/sql/engine.h"
#include "meta/sql/schema.h"

/* What one listing may collect in memory before it gives up. */
#define BRT_SQL_LISTING_MAX ((size_t)64 << 20)

/* --- rows.c: reading rows --- */

/* Run statement `id` (bound already, or without parameters) to its end. */
int brt_sql_run(brt_sql_conn *c, enum brt_sql_stmt id);

/* The `check` slot's part shared by the engines: repositories whose count
 * of manifests and links, or catalog flag, is not what their rows say. */
int brt_sql_counts_check(brt_sql_conn *c, brt_meta_problem_cb cb, void *payload);

/* The `recount` slot. */
int brt_sql_recount(brt_meta *m, unsigned long *fixed_out);

/* Decodes the current row of a statement into a struct of the caller's. */
typedef int (*brt_sql_row_decoder)(brt_sql_conn *c, brt_sql_statement *st, void *out);

/* Whether a query with the given int/text parameters returns a row. */
int brt_sql_exists(brt_sql_conn *c, enum brt_sql_stmt id, const char *types, int64_t n, const char *s,
		   int *found_out);

/* A NOT NULL text column copied into `pool`. */
int brt_sql_column_pool_text(brt_sql_conn *c, brt_sql_statement *st, int col, brt_pool *pool,
			     const char **out);

/* Copy a text column into a fixed buffer; BRT_EIO if it does not fit. */
int brt_sql_column_copy_text(brt_sql_conn *c, brt_sql_statement *st, int col, char *out, size_t out_size);

/* A fixed-size string field of a struct handed in must end within it;
 * ids must not be empty either. */
int brt_sql_field_check(const char *s, size_t size, int is_id, const char *what);

/* The one row `stmt` yields for `id`, decoded into `out` (`size` bytes)
 * through `tmp` first, so a failed read leaves `out` untouched.
 * BRT_ENOTFOUND ("<what> <id> unknown") when there is none. */
int brt_sql_get_by_id(brt_meta *m, int stmt, const char *id, brt_sql_row_decoder decode, void *tmp, void *out,
		      size_t size, const char *what);

/* Every row of `stmt` (already bound, or bound to `arg` when not NULL),
 * decoded through `tmp` into an array of `size`-byte structs; then, with the statement
 * reset so the callback may use the store, `cb` for each until one
 * returns non-zero (returned unchanged). */
int brt_sql_list_rows(brt_sql_conn *c, int stmt, const char *arg, brt_sql_row_decoder decode, void *tmp,
		      size_t size, int (*cb)(const void *row, void *payload), void *payload);

/* A listing's typed callback and its payload, for brt_sql_list_rows. */
struct brt_sql_typed_cb {
	brt_meta_account_cb account;
	brt_meta_key_cb key;
	brt_meta_upload_cb upload;
	void *payload;
};

/* --- repos.c, uploads.c, accounts.c: the slots, by family --- */

/* Inside a write transaction: the repository's id, creating it for
 * `account` if needed. */
int brt_sql_repo_ensure(brt_sql_conn *c, const char *repo, const char *account, int64_t now, int64_t *id_out);

/* Inside a write transaction: `delta` manifests or blob links (+1 on an
 * insert, minus the rows a delete removed) came to or left repository
 * `repo_id`.  Its `contents` must move in the same transaction as every
 * such row (a cascade from repositories takes the count with the row);
 * `listed`, which puts it in the catalog, follows when the count leaves
 * or reaches 0.  BRT_EIO if the repository is gone. */
int brt_sql_repo_contents(brt_sql_conn *c, int64_t repo_id, int64_t delta);

/* --- gc.c: review queues, collection, the outbox, usage and quotas.
 * The queue and charge helpers run inside the caller's write
 * transaction. --- */

/* Queue manifest `manifest_id` for review (it lost a tag or a parent). */
int brt_sql_gc_queue_manifest(brt_sql_conn *c, int64_t manifest_id, int64_t now);

/* What a manifest row says, for the collector and deletes. */
typedef struct brt_sql_manifest_row {
	int64_t repository_id;
	char account_id[BRT_ACCOUNT_ID_LEN + 1];
	char digest[160];
	char repo[BRT_NAME_MAX + 1];
	uint64_t size;
} brt_sql_manifest_row;

/* The manifest's row; *found_out = 0 if there is none. */
int brt_sql_manifest_find(brt_sql_conn *c, int64_t manifest_id, brt_sql_manifest_row *out, int *found_out);

/* Delete manifest `manifest_id` (`row` is what it was; its tags cascade),
 * queueing its children, referrers and links at `queued_at` and giving
 * its bytes back to its account.  The caller checked that it may go. */
int brt_sql_manifest_drop(brt_sql_conn *c, int64_t manifest_id, const brt_sql_manifest_row *row,
			  int64_t queued_at);

/* Delete tag `tag` of repository `repo_id` and queue the manifest it
 * pointed at; *removed_out = 0 if there was no such tag. */
int brt_sql_tag_remove(brt_sql_conn *c, int64_t repo_id, const char *tag, int64_t now, int *removed_out);

/* Remove manifest `manifest_id` if no tag and no index of its repository
 * points at it (else *removed_out = 0): its children, referrers and links
 * are queued, its bytes returned to its account, and it is reported
 * through params->cb and `counts`. */
int brt_sql_gc_manifest_remove(brt_sql_conn *c, int64_t manifest_id, const brt_gc_params *params,
			       brt_gc_counts *counts, int *removed_out);

/* Charge `bytes` to `account_id` (creating its row if needed), or give
 * them back (negative).  BRT_EQUOTA, naming limit and usage, if a charge
 * would go over the account's quota. */
int brt_sql_usage_charge(brt_sql_conn *c, const char *account_id, int64_t bytes, int64_t now);

/* Add what one collection step removed to a running total. */
void brt_sql_gc_counts_add(brt_gc_counts *to, const brt_gc_counts *from);

/* One more link of the account to the blob (its first one charges the
 * blob's size: BRT_EQUOTA over the quota), or one fewer (its last one
 * gives the size back). */
int brt_sql_account_blob_add(brt_sql_conn *c, const char *account, const char *digest, int64_t now);
int brt_sql_account_blob_release(brt_sql_conn *c, const char *account, const char *digest, int64_t now);

/* --- policies.c: retention and immutable tags --- */

/* Inside a write transaction: whether a policy of `account_id` makes tag
 * `tag` of `repo` immutable.  0 if not; otherwise `code` (BRT_EIMMUTABLE
 * for a PUT that would move it, BRT_EPROTECTED for a delete) with a detail
 * naming the tag and the rule. */
int brt_sql_tag_guard(brt_sql_conn *c, const char *account_id, const char *repo, const char *tag, int code);

/* The same for every tag pointing at manifest `manifest_id` (deleting a
 * manifest deletes its tags): BRT_EPROTECTED if one is immutable. */
int brt_sql_manifest_tags_guard(brt_sql_conn *c, const char *account_id, const char *repo,
				int64_t manifest_id);

/* retention_apply inside a transaction the caller holds (a dry run's). */
int brt_sql_retention_in_tx(brt_sql_conn *c, const brt_gc_params *params, brt_gc_counts *out);

/* Each fills its family's slots of `m`. */
void brt_sql_repos_slots(brt_meta *m);
void brt_sql_gc_slots(brt_meta *m);
void brt_sql_policies_slots(brt_meta *m);
void brt_sql_uploads_slots(brt_meta *m);
void brt_sql_accounts_slots(brt_meta *m);

#endif
