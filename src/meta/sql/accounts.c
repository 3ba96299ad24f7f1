/* The account slots of the SQL drivers: accounts, access keys and their
 * revocation (which bumps the key epoch row in the same transaction; each
 * engine reads the epoch its own way), and server secrets shared by every
 * node. */
#include "meta/sql/slots.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/random.h"

/* An optional time column: NULL reads as 0 ("never"). */
static int64_t column_time(brt_sql_statement *st, int col)
{
	return brt_sql_column_is_null(st, col) ? 0 : brt_sql_column_int64(st, col);
}

static int tx_account_create(brt_sql_conn *c, void *ctx)
{
	const brt_account *a = ctx;
	int error;

	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_ACCOUNT_INSERT), "tti", a->id, a->name,
				  a->created_at)) < 0)
		return error;
	error = brt_sql_run(c, BRT_SQL_ACCOUNT_INSERT);
	if (error < 0 && brt_sql_unique_violation(c))
		error = brt_error_set(BRT_EEXISTS, "account %s exists", a->id);
	if (error < 0 || (error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_USAGE_RECOUNT), "t", a->id)) < 0)
		return error;
	/* What the account's names may already hold counts from the start. */
	return brt_sql_run(c, BRT_SQL_USAGE_RECOUNT);
}

static int meta_account_create(brt_meta *m, const brt_account *account)
{
	int error;

	if ((error = brt_sql_field_check(account->id, sizeof(account->id), 1, "account id")) < 0 ||
	    (error = brt_sql_field_check(account->name, sizeof(account->name), 0, "account name")) < 0)
		return error;
	return brt_sql_run_write(m, tx_account_create, (void *)account);
}

static int emit_account(const void *row, void *ctx)
{
	const struct brt_sql_typed_cb *t = ctx;

	return t->account(row, t->payload);
}

static int emit_key(const void *row, void *ctx)
{
	const struct brt_sql_typed_cb *t = ctx;

	return t->key(row, t->payload);
}

/* Columns id, name, created_at.  Accounts made before names were
 * required may have a NULL name: it reads as "". */
static int account_from_row(brt_sql_conn *c, brt_sql_statement *st, void *row)
{
	brt_account *out = row;
	int error;

	if ((error = brt_sql_column_copy_text(c, st, 0, out->id, sizeof(out->id))) < 0)
		return error;
	if (brt_sql_column_is_null(st, 1))
		out->name[0] = '\0';
	else if ((error = brt_sql_column_copy_text(c, st, 1, out->name, sizeof(out->name))) < 0)
		return error;
	out->created_at = brt_sql_column_int64(st, 2);
	return 0;
}

static int meta_account_get(brt_meta *m, brt_account *out, const char *id)
{
	brt_account tmp;

	return brt_sql_get_by_id(m, BRT_SQL_ACCOUNT_GET, id, account_from_row, &tmp, out, sizeof(tmp),
				 "account");
}

static int meta_account_list(brt_meta *m, brt_meta_account_cb cb, void *payload)
{
	struct brt_sql_typed_cb t = {.account = cb, .payload = payload};
	brt_account tmp;
	brt_sql_conn *c;
	int error;

	if ((error = brt_sql_conn_get(&c, m)) < 0)
		return error;
	return brt_sql_list_rows(c, BRT_SQL_ACCOUNT_LIST, NULL, account_from_row, &tmp, sizeof(tmp),
				 emit_account, &t);
}

/* The account is checked first, inside the transaction, so that an unknown
 * one is a clear BRT_ENOTFOUND rather than a foreign key failure. */
static int tx_key_create(brt_sql_conn *c, void *ctx)
{
	const brt_access_key *k = ctx;
	int found;
	int error;

	if ((error = brt_sql_exists(c, BRT_SQL_ACCOUNT_EXISTS, "t", 0, k->account_id, &found)) < 0)
		return error;
	if (!found)
		return brt_error_set(BRT_ENOTFOUND, "account %s unknown", k->account_id);
	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_KEY_INSERT), "ttbitizz", k->id, k->account_id,
				  (const void *)k->secret_hash, sizeof(k->secret_hash),
				  (int64_t)k->permissions, k->label, k->created_at, k->expires_at,
				  k->revoked_at)) < 0)
		return error;
	error = brt_sql_run(c, BRT_SQL_KEY_INSERT);
	if (error < 0 && brt_sql_unique_violation(c))
		error = brt_error_set(BRT_EEXISTS, "access key %s exists", k->id);
	return error;
}

static int meta_key_create(brt_meta *m, const brt_access_key *key)
{
	const unsigned int known = BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE;
	int error;

	if ((error = brt_sql_field_check(key->id, sizeof(key->id), 1, "access key id")) < 0 ||
	    (error = brt_sql_field_check(key->account_id, sizeof(key->account_id), 1, "account id")) < 0 ||
	    (error = brt_sql_field_check(key->label, sizeof(key->label), 0, "access key label")) < 0)
		return error;
	if (key->permissions & ~known)
		return brt_error_set(BRT_EINVALID, "unknown permission bits 0x%x", key->permissions & ~known);
	return brt_sql_run_write(m, tx_key_create, (void *)key);
}

/* The columns of BRT_SQL_KEY_GET / BRT_SQL_KEY_LIST, copied without allocating
 * (the text and blob columns are read in their stored types). */
static int key_from_row(brt_sql_conn *c, brt_sql_statement *st, void *row)
{
	brt_access_key *out = row;
	const void *hash;
	int64_t permissions;
	int error;

	if ((error = brt_sql_column_copy_text(c, st, 0, out->id, sizeof(out->id))) < 0 ||
	    (error = brt_sql_column_copy_text(c, st, 1, out->account_id, sizeof(out->account_id))) < 0 ||
	    (error = brt_sql_column_copy_text(c, st, 4, out->label, sizeof(out->label))) < 0)
		return error;
	hash = brt_sql_column_blob(st, 2);
	if (brt_sql_column_bytes(st, 2) != BRT_KEY_HASH_LEN)
		return brt_error_set(BRT_EIO, "meta: corrupt hash of access key %s", out->id);
	if (!hash)
		return brt_error_set(BRT_ENOMEM, "out of memory");
	memcpy(out->secret_hash, hash, BRT_KEY_HASH_LEN);
	permissions = brt_sql_column_int64(st, 3);
	if (permissions < 0 || (uint64_t)permissions > UINT_MAX)
		return brt_error_set(BRT_EIO, "meta: corrupt permissions of access key %s", out->id);
	out->permissions = (unsigned int)permissions;
	out->created_at = brt_sql_column_int64(st, 5);
	out->expires_at = column_time(st, 6);
	out->revoked_at = column_time(st, 7);
	return 0;
}

/* On the path of every authenticated request: one primary key lookup on
 * this thread's prepared statement, copied straight into the caller's
 * struct (only on success, so a failed read leaves it untouched). */
static int meta_key_get(brt_meta *m, brt_access_key *out, const char *id)
{
	brt_access_key tmp;

	return brt_sql_get_by_id(m, BRT_SQL_KEY_GET, id, key_from_row, &tmp, out, sizeof(tmp), "access key");
}

/* BRT_ENOTFOUND for an unknown account, so that callers can tell it from an
 * account without keys. */
static int meta_key_list(brt_meta *m, const char *account_id, brt_meta_key_cb cb, void *payload)
{
	struct brt_sql_typed_cb t = {.key = cb, .payload = payload};
	brt_access_key tmp;
	brt_sql_conn *c;
	int found;
	int error;

	if ((error = brt_sql_conn_get(&c, m)) < 0 ||
	    (error = brt_sql_exists(c, BRT_SQL_ACCOUNT_EXISTS, "t", 0, account_id, &found)) < 0)
		return error;
	if (!found)
		return brt_error_set(BRT_ENOTFOUND, "account %s unknown", account_id);
	return brt_sql_list_rows(c, BRT_SQL_KEY_LIST, account_id, key_from_row, &tmp, sizeof(tmp), emit_key,
				 &t);
}

typedef struct key_revoke_args {
	const char *id;
	int64_t now;
} key_revoke_args;

static int tx_key_revoke(brt_sql_conn *c, void *ctx)
{
	const key_revoke_args *a = ctx;
	int error;

	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_KEY_REVOKE), "ti", a->id, a->now)) < 0 ||
	    (error = brt_sql_run(c, BRT_SQL_KEY_REVOKE)) < 0)
		return error;
	if (brt_sql_changes(c) == 0)
		return brt_error_set(BRT_ENOTFOUND, "access key %s unknown", a->id);
	/* Same transaction: no crash can leave a revocation without its new
	 * epoch.  The engine may add its own notice to other nodes. */
	if ((error = brt_sql_run(c, BRT_SQL_EPOCH_BUMP)) < 0 || !c->engine->key_revoked)
		return error;
	return c->engine->key_revoked(c);
}

static int meta_key_revoke(brt_meta *m, const char *id, int64_t now)
{
	key_revoke_args a = {id, now};
	const brt_sql_engine *engine = ((brt_sql_store *)m)->engine;
	int error;

	/* 0 means "not revoked" in brt_access_key. */
	if (now <= 0)
		return brt_error_set(BRT_EINVALID, "revocation time must be positive");
	if ((error = brt_sql_run_write(m, tx_key_revoke, &a)) == 0 && engine->key_revoke_committed)
		engine->key_revoke_committed(m);
	return error;
}

/* Server secrets are small keys, never a bulk store. */
#define SECRET_MAX 4096

/* Read secret `name` into `out` if it exists (*found_out), insisting on
 * `len` bytes: another length means the caller and the store disagree on
 * what the secret is, and a truncated or padded key would be worse. */
static int secret_read(brt_sql_conn *c, const char *name, unsigned char *out, size_t len, int *found_out)
{
	brt_sql_statement *st = brt_sql_stmt(c, BRT_SQL_SECRET_GET);
	const void *value;
	size_t n;
	int error;

	if ((error = brt_sql_bind(c, st, "t", name)) < 0 || (error = brt_sql_step(c, st, found_out)) < 0 ||
	    !*found_out)
		goto done;
	value = brt_sql_column_blob(st, 0);
	n = (size_t)brt_sql_column_bytes(st, 0);
	if (n != len) {
		error = brt_error_set(BRT_EINVALID, "server secret %s has %zu bytes, not %zu", name, n, len);
		goto done;
	}
	if (!value) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	memcpy(out, value, len);
done:
	brt_sql_end(st);
	return error;
}

typedef struct secret_args {
	const char *name;
	unsigned char *out; /* holds the candidate value on entry */
	size_t len;
	int64_t now;
} secret_args;

/* Offer our candidate and take whatever is stored afterwards: with
 * several nodes starting at once, the first insert wins and every node
 * reads the winner. */
static int tx_secret_create(brt_sql_conn *c, void *ctx)
{
	const secret_args *a = ctx;
	int found;
	int error;

	if ((error = brt_sql_bind(c, brt_sql_stmt(c, BRT_SQL_SECRET_INSERT), "tbi", a->name,
				  (const void *)a->out, a->len, a->now)) < 0 ||
	    (error = brt_sql_run(c, BRT_SQL_SECRET_INSERT)) < 0 ||
	    (error = secret_read(c, a->name, a->out, a->len, &found)) < 0)
		return error;
	if (!found)
		return brt_error_set(BRT_EIO, "meta: server secret %s vanished", a->name);
	return 0;
}

static int meta_secret_get(brt_meta *m, const char *name, unsigned char *out, size_t len)
{
	secret_args a = {name, out, len, 0};
	brt_sql_conn *c;
	int found;
	int error;

	if (len == 0 || len > SECRET_MAX)
		return brt_error_set(BRT_EINVALID, "server secret length %zu out of range", len);
	if ((error = brt_sql_conn_get(&c, m)) < 0 || (error = secret_read(c, name, out, len, &found)) < 0)
		return error;
	if (found)
		return 0;
	/* If a retry of the transaction runs, `out` may hold a value read by
	 * the failed attempt: still random bytes, still a fine candidate. */
	if ((error = brt_random_bytes(out, len)) < 0)
		return error;
	a.now = brt_now_ms();
	return brt_sql_run_write(m, tx_secret_create, &a);
}

void brt_sql_accounts_slots(brt_meta *m)
{
	m->account_create = meta_account_create;
	m->account_get = meta_account_get;
	m->account_list = meta_account_list;
	m->key_create = meta_key_create;
	m->key_get = meta_key_get;
	m->key_list = meta_key_list;
	m->key_revoke = meta_key_revoke;
	m->secret_get = meta_secret_get;
}
