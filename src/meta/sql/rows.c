/* Row helpers of the SQL drivers: existence probes, copying columns
 * into pools and fixed buffers, reading one row by id, and collecting a
 * listing before its callbacks run (so they may call back into the store
 * and no read transaction stays open while the caller works). */
#include "meta/sql/slots.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynbuf.h"
#include "common/error.h"

int brt_sql_run(brt_sql_conn *c, enum brt_sql_stmt id)
{
	int row;
	brt_sql_statement *st = brt_sql_stmt(c, id);
	int error = brt_sql_step(c, st, &row);

	brt_sql_end(st);
	return error;
}

int brt_sql_counts_check(brt_sql_conn *c, brt_meta_problem_cb cb, void *payload)
{
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_REPO_COUNTS_WRONG);
	char line[BRT_NAME_MAX + 128];
	int row, error;

	while ((error = brt_sql_step(c, st, &row)) == 0 && row) {
		snprintf(line, sizeof(line),
			 "counts: repository %s records %lld (listed %lld) but holds %lld",
			 (const char *)brt_sql_column_text(st, 0), (long long)brt_sql_column_int64(st, 1),
			 (long long)brt_sql_column_int64(st, 2), (long long)brt_sql_column_int64(st, 3));
		if ((error = cb(line, payload)) != 0)
			break;
	}
	brt_sql_end(st);
	return error;
}

static int tx_recount(brt_sql_conn *c, void *ctx)
{
	int error = brt_sql_run(c, BRT_SQL_REPO_RECOUNT);

	if (error == 0)
		*(unsigned long *)ctx = (unsigned long)brt_sql_changes(c);
	return error;
}

int brt_sql_recount(brt_meta *m, unsigned long *fixed_out)
{
	return brt_sql_run_write(m, tx_recount, fixed_out);
}

/* Whether a query with the given int/text parameters returns a row. */
int brt_sql_exists(brt_sql_conn *c, enum brt_sql_stmt id, const char *types, int64_t n, const char *s,
		   int *found_out)
{
	brt_sql_statement *st = brt_sql_stmt(c, id);
	int error;

	*found_out = 0;
	if (types[0] == 'i')
		error = s ? brt_sql_bind(c, st, "it", n, s) : brt_sql_bind(c, st, "i", n);
	else
		error = brt_sql_bind(c, st, "t", s);
	if (error == 0)
		error = brt_sql_step(c, st, found_out);
	brt_sql_end(st);
	return error;
}

/* A NOT NULL text column copied into `pool`. */
int brt_sql_column_pool_text(brt_sql_conn *c, brt_sql_statement *st, int col, brt_pool *pool,
			     const char **out)
{
	const unsigned char *text = brt_sql_column_text(st, col);
	char *copy;

	if (!text)
		return c->engine->column_error(c, col);
	if (!(copy = brt_pool_strndup(pool, (const char *)text, (size_t)brt_sql_column_bytes(st, col))))
		return brt_error_set(BRT_ENOMEM, "request pool exhausted");
	*out = copy;
	return 0;
}

/* Copy a text column into a fixed buffer; BRT_EIO if it does not fit. */
int brt_sql_column_copy_text(brt_sql_conn *c, brt_sql_statement *st, int col, char *out, size_t out_size)
{
	const unsigned char *text = brt_sql_column_text(st, col);
	size_t n = (size_t)brt_sql_column_bytes(st, col);

	if (!text)
		return c->engine->column_error(c, col);
	if (n >= out_size)
		return brt_error_set(BRT_EIO, "meta: column %d too long", col);
	memcpy(out, text, n);
	out[n] = '\0';
	return 0;
}

/* A fixed-size string field of a struct handed in must end within it;
 * ids must not be empty either. */
int brt_sql_field_check(const char *s, size_t size, int is_id, const char *what)
{
	if (!memchr(s, '\0', size))
		return brt_error_set(BRT_EINVALID, "%s too long", what);
	if (is_id && s[0] == '\0')
		return brt_error_set(BRT_EINVALID, "empty %s", what);
	return 0;
}

/* The one row `stmt` yields for `id`, decoded into `out` (`size` bytes)
 * through `tmp` first, so a failed read leaves `out` untouched.
 * BRT_ENOTFOUND ("<what> <id> unknown") when there is none. */
int brt_sql_get_by_id(brt_meta *m, int stmt, const char *id, brt_sql_row_decoder decode, void *tmp, void *out,
		      size_t size, const char *what)
{
	brt_sql_conn *c;
	brt_sql_statement *st = NULL;
	int error;
	int row;

	if ((error = brt_sql_conn_get(&c, m)) < 0)
		goto done;
	st = brt_sql_stmt(c, stmt);
	if ((error = brt_sql_bind(c, st, "t", id)) < 0 || (error = brt_sql_step(c, st, &row)) < 0)
		goto done;
	if (!row) {
		error = brt_error_set(BRT_ENOTFOUND, "%s %s unknown", what, id);
		goto done;
	}
	if ((error = decode(c, st, tmp)) < 0)
		goto done;
	memcpy(out, tmp, size);
done:
	brt_sql_end(st);
	return error;
}

/* Every row of `stmt` (already bound, or bound to `arg` when not NULL),
 * decoded through `tmp` into an array of `size`-byte structs; then, with the statement
 * reset so the callback may use the store, `cb` for each until one
 * returns non-zero (returned unchanged). */
int brt_sql_list_rows(brt_sql_conn *c, int stmt, const char *arg, brt_sql_row_decoder decode, void *tmp,
		      size_t size, int (*cb)(const void *row, void *payload), void *payload)
{
	brt_sql_statement *st = brt_sql_stmt(c, stmt);
	brt_dynbuf rows;
	size_t count = 0, i;
	int error = 0;
	int row;

	brt_dynbuf_init(&rows, BRT_SQL_LISTING_MAX);
	if (arg && (error = brt_sql_bind(c, st, "t", arg)) < 0)
		goto done;
	while ((error = brt_sql_step(c, st, &row)) == 0 && row) {
		if ((error = decode(c, st, tmp)) < 0 || (error = brt_dynbuf_add(&rows, tmp, size)) < 0)
			goto done;
		count++;
	}
	if (error < 0)
		goto done;
	brt_sql_end(st);
	st = NULL;
	/* The buffer is malloc'd, so aligned for any struct, and rows are
	 * whole structs apart. */
	for (i = 0; i < count; i++)
		if ((error = cb(brt_dynbuf_ptr(&rows) + i * size, payload)) != 0)
			goto done;
done:
	brt_sql_end(st);
	brt_dynbuf_free(&rows);
	return error;
}
