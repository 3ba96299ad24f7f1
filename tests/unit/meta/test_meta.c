/* The metadata front (meta.c): the driver table, the refusal of a driver
 * built for another interface version or missing a required slot, store
 * serials, the wrappers (optional slots answer BRT_EUNSUPPORTED), and the
 * account of a repository name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/error.h"
#include "meta/meta.h"

static char db_path[128];
static brt_meta *real; /* a real SQLite store whose slots the fake borrows */
static brt_meta fake;
static int fake_frees;

static void fake_free(brt_meta *m)
{
	(void)m;
	fake_frees++;
}

/* The fake is no SQLite store: its slots that a test calls are its own. */
static int fake_repo_exists(brt_meta *m, const char *repo)
{
	return m == &fake && strcmp(repo, "t/here") == 0 ? 0 : BRT_ENOTFOUND;
}

/* What the fake driver's open hands out; set up by each test. */
static brt_meta fake_template;

static int fake_open(brt_meta **out, const char *location)
{
	(void)location;
	fake = fake_template;
	*out = &fake;
	return 0;
}

static int failing_open(brt_meta **out, const char *location)
{
	(void)location;
	*out = NULL;
	return brt_error_set(BRT_EIO, "cannot reach %s", location);
}

static void fake_reset(void)
{
	fake_template = *real;
	fake_template.free = fake_free;
	fake_template.repo_exists = fake_repo_exists;
	fake_template.serial = 0;
	fake_frees = 0;
}

static void test_table(void)
{
	brt_meta *a = (brt_meta *)1, *b = NULL;
	uint64_t a_serial = 0;

	brt_error_clear();
	CHECK_EQ_INT(brt_meta_open(&a, "postgres-someday", db_path), BRT_EUNSUPPORTED);
	CHECK(a == NULL);
	CHECK(strstr(brt_error_last(), "postgres-someday") != NULL);

	CHECK_EQ_INT(brt_meta_open(&a, "sqlite", db_path), 0);
	CHECK_EQ_INT(brt_meta_open(&b, "sqlite", db_path), 0);
	if (a && b) {
		CHECK_EQ_STR(a->name, "sqlite");
		CHECK(a->serial != 0 && b->serial != 0 && a->serial != b->serial);
		CHECK_EQ_INT(brt_meta_validate(a), 0);
		CHECK_EQ_INT(brt_meta_repo_exists(a, "t/none"), BRT_ENOTFOUND);
		a_serial = a->serial;
	}
	brt_meta_free(a);
	brt_meta_free(b);
	brt_meta_free(NULL);
	/* A store opened after a freed one never gets its serial again. */
	CHECK_EQ_INT(brt_meta_open(&b, "sqlite", db_path), 0);
	if (b)
		CHECK(b->serial > a_serial);
	brt_meta_free(b);

	a = (brt_meta *)1;
	CHECK_EQ_INT(brt_meta_open_with(&a, failing_open, "db.example:5432"), BRT_EIO);
	CHECK(a == NULL);
}

static void test_refusals(void)
{
	brt_meta *m;

	/* Built for another interface version: refused before any slot is
	 * trusted (not even free). */
	fake_reset();
	fake_template.version = BRT_META_VERSION - 1;
	m = (brt_meta *)1;
	brt_error_clear();
	CHECK_EQ_INT(brt_meta_open_with(&m, fake_open, "x"), BRT_EINVALID);
	CHECK(m == NULL);
	CHECK(strstr(brt_error_last(), "version") != NULL);
	CHECK_EQ_INT(fake_frees, 0);
	fake_template.version = BRT_META_VERSION + 1;
	CHECK_EQ_INT(brt_meta_open_with(&m, fake_open, "x"), BRT_EINVALID);

	/* A required slot missing: refused, named, and the store freed. */
	fake_reset();
	fake_template.key_get = NULL;
	brt_error_clear();
	CHECK_EQ_INT(brt_meta_open_with(&m, fake_open, "x"), BRT_EINVALID);
	CHECK(m == NULL);
	CHECK(strstr(brt_error_last(), "key_get") != NULL);
	CHECK_EQ_INT(fake_frees, 1);
	fake_reset();
	fake_template.upload_delete = NULL;
	CHECK_EQ_INT(brt_meta_open_with(&m, fake_open, "x"), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "upload_delete") != NULL);
	fake_reset();
	fake_template.free = NULL;
	CHECK_EQ_INT(brt_meta_open_with(&m, fake_open, "x"), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "free") != NULL);

	/* Optional slots may be missing; their wrappers say unsupported,
	 * and a store without a serial gets one. */
	fake_reset();
	fake_template.key_epoch = NULL;
	fake_template.check = NULL;
	fake_template.upload_list = NULL;
	fake_template.blob_walk = NULL;
	fake_template.manifest_walk = NULL;
	fake_template.blob_mark_damaged = NULL;
	CHECK_EQ_INT(brt_meta_open_with(&m, fake_open, "x"), 0);
	CHECK(m == &fake);
	if (m == &fake) {
		uint64_t epoch = 99;

		CHECK(m->serial != 0 && m->serial != real->serial);
		CHECK_EQ_INT(brt_meta_key_epoch(m, &epoch), BRT_EUNSUPPORTED);
		CHECK_EQ_INT(epoch, 99);
		CHECK_EQ_INT(brt_meta_check(m, NULL, NULL), BRT_EUNSUPPORTED);
		CHECK_EQ_INT(brt_meta_upload_list(m, 0, 0, NULL, NULL), BRT_EUNSUPPORTED);
		CHECK_EQ_INT(brt_meta_blob_walk(m, NULL, NULL), BRT_EUNSUPPORTED);
		CHECK_EQ_INT(brt_meta_manifest_walk(m, NULL, NULL), BRT_EUNSUPPORTED);
		CHECK_EQ_INT(brt_meta_blob_mark_damaged(m, "sha256:x", 1), BRT_EUNSUPPORTED);
		/* The required ones pass through to the driver. */
		CHECK_EQ_INT(brt_meta_repo_exists(m, "t/here"), 0);
		CHECK_EQ_INT(brt_meta_repo_exists(m, "t/none"), BRT_ENOTFOUND);
		brt_meta_free(m);
		CHECK_EQ_INT(fake_frees, 1);
	}
	/* A driver's own serial is kept. */
	fake_reset();
	fake_template.serial = 12345;
	CHECK_EQ_INT(brt_meta_open_with(&m, fake_open, "x"), 0);
	if (m)
		CHECK_EQ_INT(m->serial, 12345);
}

static void test_wrappers(void)
{
	uint64_t e0 = 0, e1 = 0;
	brt_account account;
	brt_access_key key;

	memset(&account, 0, sizeof(account));
	snprintf(account.id, sizeof(account.id), "%s", "0146e9b57080961e2c83536300000077");
	account.created_at = 1;
	memset(&key, 0, sizeof(key));
	snprintf(key.id, sizeof(key.id), "%s", "7070707070707070");
	snprintf(key.account_id, sizeof(key.account_id), "%s", account.id);
	key.permissions = BRT_PERM_PULL;
	key.created_at = 1;
	CHECK_EQ_INT(brt_meta_account_create(real, &account), 0);
	CHECK_EQ_INT(brt_meta_key_create(real, &key), 0);
	CHECK_EQ_INT(brt_meta_key_epoch(real, &e0), 0);
	CHECK_EQ_INT(brt_meta_key_revoke(real, key.id, 5), 0);
	CHECK_EQ_INT(brt_meta_key_epoch(real, &e1), 0);
	CHECK(e0 != e1);
	CHECK_EQ_INT(brt_meta_key_get(real, &key, key.id), 0);
	CHECK_EQ_INT(key.revoked_at, 5);
	CHECK_EQ_INT(brt_meta_upload_delete(real, "00000000000000000000000000000000",
					    BRT_META_ANY_GENERATION),
		     BRT_ENOTFOUND);
}

static void test_repo_account(void)
{
	char out[BRT_ACCOUNT_ID_LEN + 1];

	CHECK_EQ_STR(brt_meta_repo_account(out, "0146e9b57080961e2c83536300000000/app/sub"),
		     "0146e9b57080961e2c83536300000000");
	CHECK_EQ_STR(brt_meta_repo_account(out, "library/alpine"), "library");
	CHECK_EQ_STR(brt_meta_repo_account(out, "solo"), "solo");
	/* A first component longer than an account id is cut to fit. */
	CHECK_EQ_STR(brt_meta_repo_account(out, "abcdefghijklmnopqrstuvwxyz0123456789/app"),
		     "abcdefghijklmnopqrstuvwxyz012345");
	CHECK(brt_meta_repo_account(out, "x/y") == out);
}

int main(void)
{
	char dir[64];

	snprintf(dir, sizeof(dir), "%s", "/tmp/berth-meta-front-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(db_path, sizeof(db_path), "%s/meta.db", dir);
	CHECK_EQ_INT(brt_meta_open(&real, "sqlite", db_path), 0);
	if (real) {
		test_table();
		test_refusals();
		test_wrappers();
		brt_meta_free(real);
	}
	test_repo_account();
	{
		char path[160];
		static const char *const suffixes[] = {"", "-wal", "-shm"};

		for (size_t i = 0; i < 3; i++) {
			snprintf(path, sizeof(path), "%s%s", db_path, suffixes[i]);
			unlink(path);
		}
		rmdir(dir);
	}
	return check_exit("test_meta");
}
