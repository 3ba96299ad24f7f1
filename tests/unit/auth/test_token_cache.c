/* Tests for the per-thread cache of verified bearer tokens in auth/auth:
 * against a real SQLite store, a token is verified once and then found by
 * its bytes, and a cached token is still refused as soon as anything that
 * made it valid no longer holds: its key revoked (through this store handle
 * or another one, as `berthd key revoke` does, and in another thread that
 * had cached it too), its key expired, the token itself expired, the
 * signing secret rotated or the audience changed.  A token differing from a
 * cached one in one byte (same length) is refused, tokens of two accounts
 * used alternately never lend each other anything, a failed token is never
 * cached, and a token too long for a slot still works, uncached. */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/keys.h"
#include "auth/token.h"
#include "check.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/pool.h"
#include "meta/meta.h"

/* Test hook exported by auth/auth.c (not part of auth.h). */
uint64_t brt_auth_token_cache_hits(void);

#define ACCOUNT_A "0123456789abcdef0123456789abcdef"
#define ACCOUNT_B "fedcba9876543210fedcba9876543210"
#define SERVICE "berth"
#define POOL_CAP (1u << 20)
#define ALL_ACTIONS (BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE)

static const unsigned char secret[BRT_TOKEN_SECRET_LEN] = "0123456789abcdef0123456789abcde";
static const unsigned char rotated_secret[BRT_TOKEN_SECRET_LEN] = "rotated-0123456789abcdef0123456";

static char tmp_dir[64];
static char db_path[128];
static brt_meta *meta;
static brt_auth auth;
static brt_pool pool;

static void remove_tmp_dir(void)
{
	DIR *dir = opendir(tmp_dir);
	struct dirent *e;

	if (!dir)
		return;
	while ((e = readdir(dir)) != NULL) {
		char path[512];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmp_dir, e->d_name);
		unlink(path);
	}
	closedir(dir);
	rmdir(tmp_dir);
}

static void make_account(const char *id)
{
	brt_account account;

	memset(&account, 0, sizeof(account));
	snprintf(account.id, sizeof(account.id), "%s", id);
	account.created_at = brt_now_ms();
	CHECK_EQ_INT(brt_meta_account_create(meta, &account), 0);
}

/* A stored key of `account` into *key (its id is what tokens name). */
static void make_key(brt_access_key *key, const char *account, unsigned int permissions, int64_t expires_at)
{
	char access_key[BRT_ACCESS_KEY_LEN + 1];

	CHECK_EQ_INT(brt_key_generate(key, access_key, account, permissions, "cache test", brt_now_ms(),
				      expires_at),
		     0);
	CHECK_EQ_INT(brt_meta_key_create(meta, key), 0);
}

/* A token for `subject` of `account` granting `actions` on `repo` (NULL:
 * no grant), issued at `now` (seconds) for `ttl`, signed with `key`. */
static char *sign_at(const unsigned char *key, const char *subject, const char *account, const char *repo,
		     unsigned int actions, int64_t now, unsigned int ttl)
{
	brt_token_claims claims;
	brt_grant grant;
	char *token = NULL;

	memset(&claims, 0, sizeof(claims));
	snprintf(claims.subject, sizeof(claims.subject), "%s", subject);
	snprintf(claims.account, sizeof(claims.account), "%s", account);
	if (repo) {
		grant.repo = repo;
		grant.actions = actions;
		claims.grants = &grant;
		claims.grant_count = 1;
	}
	CHECK_EQ_INT(brt_token_sign(&token, key, SERVICE, &claims, now, ttl), 0);
	return token;
}

static char *sign_for(const brt_access_key *key, const char *repo, unsigned int actions)
{
	char subject[96];

	snprintf(subject, sizeof(subject), "key:%s", key->id);
	return sign_at(secret, subject, key->account_id, repo, actions, time(NULL), 300);
}

/* Authenticate "Bearer <token>" with `a` into *p. */
static void authenticate_with(brt_principal *p, const brt_auth *a, const char *token)
{
	char header[BRT_TOKEN_MAX_LEN + 16];
	brt_credentials credentials;

	/* The principal lives until the next call. */
	brt_pool_clear(&pool);
	snprintf(header, sizeof(header), "Bearer %s", token);
	memset(&credentials, 0, sizeof(credentials));
	credentials.authorization = header;
	brt_auth_authenticate(p, a, &pool, &credentials);
}

static void authenticate(brt_principal *p, const char *token)
{
	authenticate_with(p, &auth, token);
}

/* `token` authenticates as a token of `key` that may pull (and, by the
 * grant, `actions`) on `repo`, and nothing of the other account; returns
 * 1 if it came from the cache. */
static int expect_token_of(const char *token, const brt_access_key *key, const char *repo,
			   unsigned int actions, const char *other_repo)
{
	uint64_t hits = brt_auth_token_cache_hits();
	brt_principal p;
	char subject[96];

	snprintf(subject, sizeof(subject), "key:%s", key->id);
	authenticate(&p, token);
	CHECK_EQ_INT(p.kind, BRT_PRINCIPAL_TOKEN);
	CHECK_EQ_STR(p.account, key->account_id);
	CHECK_EQ_STR(p.subject, subject);
	CHECK_EQ_STR(p.token.account, key->account_id);
	CHECK_EQ_STR(p.token.subject, subject);
	CHECK_EQ_INT(p.permissions, key->permissions);
	CHECK_EQ_INT(p.token.grant_count, 1);
	if (p.token.grant_count == 1) {
		CHECK_EQ_STR(p.token.grants[0].repo, repo);
		CHECK_EQ_INT(p.token.grants[0].actions, actions);
	}
	CHECK_EQ_INT(brt_auth_check(&p, BRT_ACTION_PULL, repo), 0);
	CHECK_EQ_INT(brt_auth_check(&p, BRT_ACTION_PULL, other_repo), BRT_EDENIED);
	CHECK_EQ_INT(brt_auth_check(&p, BRT_ACTION_CATALOG, NULL), BRT_EUNAUTHORIZED);
	return brt_auth_token_cache_hits() > hits;
}

static int refused_with(const brt_auth *a, const char *token)
{
	brt_principal p;

	authenticate_with(&p, a, token);
	return p.kind == BRT_PRINCIPAL_NONE && p.account[0] == '\0' && p.permissions == 0 &&
	       brt_auth_check(&p, BRT_ACTION_PULL, ACCOUNT_A "/app") == BRT_EUNAUTHORIZED;
}

static int refused(const char *token)
{
	return refused_with(&auth, token);
}

/* Verified once, then served from the cache, with everything it grants. */
static void test_hit(void)
{
	brt_access_key key;
	char *token;

	make_key(&key, ACCOUNT_A, ALL_ACTIONS, 0);
	token = sign_for(&key, ACCOUNT_A "/app", BRT_PERM_PULL | BRT_PERM_PUSH);
	CHECK(!expect_token_of(token, &key, ACCOUNT_A "/app", BRT_PERM_PULL | BRT_PERM_PUSH,
			       ACCOUNT_B "/app"));
	for (int i = 0; i < 3; i++)
		CHECK(expect_token_of(token, &key, ACCOUNT_A "/app", BRT_PERM_PULL | BRT_PERM_PUSH,
				      ACCOUNT_B "/app"));
	free(token);
}

/* Tokens of two accounts alternately on one thread (as on one keep-alive
 * connection): each answers with its own account, key and grants. */
static void test_two_accounts(void)
{
	brt_access_key key_a, key_b;
	char *token_a, *token_b;
	int hits = 0;

	make_key(&key_a, ACCOUNT_A, ALL_ACTIONS, 0);
	make_key(&key_b, ACCOUNT_B, BRT_PERM_PULL, 0);
	token_a = sign_for(&key_a, ACCOUNT_A "/app", ALL_ACTIONS);
	token_b = sign_for(&key_b, ACCOUNT_B "/app", BRT_PERM_PULL);
	for (int i = 0; i < 6; i++) {
		hits += expect_token_of(token_a, &key_a, ACCOUNT_A "/app", ALL_ACTIONS, ACCOUNT_B "/app");
		hits += expect_token_of(token_b, &key_b, ACCOUNT_B "/app", BRT_PERM_PULL, ACCOUNT_A "/app");
	}
	CHECK_EQ_INT(hits, 10);
	free(token_a);
	free(token_b);
}

/* One byte changed anywhere (same length), the original cached: refused,
 * and the original still works afterwards. */
static void test_tampered(void)
{
	brt_access_key key;
	char *token, *tampered;
	size_t len;
	uint64_t hits;

	make_key(&key, ACCOUNT_A, ALL_ACTIONS, 0);
	token = sign_for(&key, ACCOUNT_A "/app", BRT_PERM_PULL);
	len = strlen(token);
	tampered = malloc(len + 1);
	CHECK(tampered != NULL);
	if (!tampered)
		return;
	expect_token_of(token, &key, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app");
	for (size_t i = 0; i < len; i++) {
		memcpy(tampered, token, len + 1);
		if (tampered[i] == '.')
			continue;
		tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
		hits = brt_auth_token_cache_hits();
		if (!refused(tampered))
			fprintf(stderr, "byte %zu changed: accepted\n", i);
		CHECK(refused(tampered));
		CHECK(brt_auth_token_cache_hits() == hits);
		/* The original is still there, and still good. */
		if (i % 64 == 0)
			CHECK(expect_token_of(token, &key, ACCOUNT_A "/app", BRT_PERM_PULL,
					      ACCOUNT_B "/app"));
	}
	/* A refused token stays refused: it was not cached. */
	memcpy(tampered, token, len + 1);
	tampered[len - 1] = tampered[len - 1] == 'A' ? 'B' : 'A';
	for (int i = 0; i < 3; i++)
		CHECK(refused(tampered));
	CHECK(expect_token_of(token, &key, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app"));
	free(tampered);
	free(token);
}

/* Revocation ends a cached token on the very next request, whether it goes
 * through this store handle or another one (as `berthd key revoke` does
 * from its own process). */
static void test_revoked(void)
{
	brt_access_key key, other;
	brt_meta *second = NULL;
	char *token, *other_token;

	make_key(&key, ACCOUNT_A, ALL_ACTIONS, 0);
	make_key(&other, ACCOUNT_A, ALL_ACTIONS, 0);
	token = sign_for(&key, ACCOUNT_A "/app", BRT_PERM_PULL);
	other_token = sign_for(&other, ACCOUNT_A "/app", BRT_PERM_PULL);
	expect_token_of(token, &key, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app");
	expect_token_of(other_token, &other, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app");
	CHECK(expect_token_of(token, &key, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app"));
	CHECK_EQ_INT(brt_meta_key_revoke(meta, key.id, brt_now_ms()), 0);
	CHECK(refused(token));
	CHECK(refused(token));
	/* Other keys' tokens are unaffected (verified again, then cached). */
	expect_token_of(other_token, &other, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app");
	CHECK(expect_token_of(other_token, &other, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app"));

	CHECK_EQ_INT(brt_meta_sqlite_open(&second, db_path), 0);
	if (second) {
		CHECK_EQ_INT(brt_meta_key_revoke(second, other.id, brt_now_ms()), 0);
		CHECK(refused(other_token));
		brt_meta_free(second);
	}
	free(token);
	free(other_token);
}

/* A thread that cached a token refuses it once the key is revoked
 * elsewhere: each thread's table answers to the same epoch. */
struct worker {
	pthread_barrier_t step;
	const char *token;
	int before; /* principal kind on the worker, before and after */
	int after;
	uint64_t hits;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	brt_principal p;
	brt_pool own;

	brt_pool_init(&own, POOL_CAP);
	for (int i = 0; i < 2; i++) {
		char header[BRT_TOKEN_MAX_LEN + 16];
		brt_credentials credentials;

		snprintf(header, sizeof(header), "Bearer %s", w->token);
		memset(&credentials, 0, sizeof(credentials));
		credentials.authorization = header;
		brt_auth_authenticate(&p, &auth, &own, &credentials);
		w->before = p.kind;
	}
	w->hits = brt_auth_token_cache_hits();
	pthread_barrier_wait(&w->step); /* cached */
	pthread_barrier_wait(&w->step); /* revoked */
	{
		char header[BRT_TOKEN_MAX_LEN + 16];
		brt_credentials credentials;

		snprintf(header, sizeof(header), "Bearer %s", w->token);
		memset(&credentials, 0, sizeof(credentials));
		credentials.authorization = header;
		brt_auth_authenticate(&p, &auth, &own, &credentials);
		w->after = p.kind;
	}
	brt_pool_clear(&own);
	return NULL;
}

static void test_revoked_other_thread(void)
{
	brt_access_key key;
	struct worker w;
	pthread_t thread;
	char *token;

	make_key(&key, ACCOUNT_A, ALL_ACTIONS, 0);
	token = sign_for(&key, ACCOUNT_A "/app", BRT_PERM_PULL);
	memset(&w, 0, sizeof(w));
	w.token = token;
	pthread_barrier_init(&w.step, NULL, 2);
	CHECK_EQ_INT(pthread_create(&thread, NULL, worker_main, &w), 0);
	pthread_barrier_wait(&w.step);
	CHECK_EQ_INT(w.before, BRT_PRINCIPAL_TOKEN);
	CHECK_EQ_INT(w.hits, 1);
	CHECK_EQ_INT(brt_meta_key_revoke(meta, key.id, brt_now_ms()), 0);
	pthread_barrier_wait(&w.step);
	pthread_join(thread, NULL);
	pthread_barrier_destroy(&w.step);
	CHECK_EQ_INT(w.after, BRT_PRINCIPAL_NONE);
	free(token);
}

/* Wait (bounded) until the wall clock reaches `ms`. */
static void sleep_until_ms(int64_t ms)
{
	for (int i = 0; i < 100 && brt_now_ms() < ms; i++)
		usleep(50000);
}

/* The token's own expiry and its key's are checked on every hit. */
static void test_expiry(void)
{
	brt_access_key key, short_key;
	char subject[96], *token, *key_token;
	int64_t now = time(NULL);

	/* exp = now + 4 s, after the key below has expired */
	make_key(&key, ACCOUNT_A, ALL_ACTIONS, 0);
	snprintf(subject, sizeof(subject), "key:%s", key.id);
	token = sign_at(secret, subject, ACCOUNT_A, ACCOUNT_A "/app", BRT_PERM_PULL, now - 296, 300);
	/* The key expires in 1.5 s; its token would last 300 s. */
	make_key(&short_key, ACCOUNT_A, ALL_ACTIONS, brt_now_ms() + 1500);
	key_token = sign_for(&short_key, ACCOUNT_A "/app", BRT_PERM_PULL);
	expect_token_of(token, &key, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app");
	CHECK(expect_token_of(token, &key, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app"));
	expect_token_of(key_token, &short_key, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app");
	CHECK(expect_token_of(key_token, &short_key, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app"));
	sleep_until_ms(short_key.expires_at);
	CHECK(refused(key_token));
	CHECK(expect_token_of(token, &key, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app"));
	sleep_until_ms((now + 4) * 1000);
	CHECK(refused(token));
	CHECK(refused(token));
	free(token);
	free(key_token);
}

/* A cached token is not valid under another signing secret or audience;
 * going back re-verifies it.  A token signed with the rotated secret is
 * refused by a server still on the old one, and accepted by one on the new
 * secret. */
static void test_rotated_secret(void)
{
	brt_access_key key;
	brt_auth rotated = auth, other_service = auth;
	char subject[96], *token, *new_token;

	rotated.token_secret = rotated_secret;
	other_service.service = "other-service";
	make_key(&key, ACCOUNT_A, ALL_ACTIONS, 0);
	snprintf(subject, sizeof(subject), "key:%s", key.id);
	token = sign_for(&key, ACCOUNT_A "/app", BRT_PERM_PULL);
	new_token =
		sign_at(rotated_secret, subject, ACCOUNT_A, ACCOUNT_A "/app", BRT_PERM_PULL, time(NULL), 300);
	expect_token_of(token, &key, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app");
	CHECK(expect_token_of(token, &key, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app"));
	CHECK(refused(new_token));
	CHECK(refused_with(&rotated, token));
	CHECK(refused_with(&other_service, token));
	{
		uint64_t hits = brt_auth_token_cache_hits();
		brt_principal p;

		authenticate_with(&p, &rotated, new_token);
		CHECK_EQ_INT(p.kind, BRT_PRINCIPAL_TOKEN);
		authenticate_with(&p, &rotated, new_token);
		CHECK_EQ_INT(p.kind, BRT_PRINCIPAL_TOKEN);
		CHECK(brt_auth_token_cache_hits() == hits + 1);
		CHECK(refused_with(&rotated, token));
	}
	CHECK(!expect_token_of(token, &key, ACCOUNT_A "/app", BRT_PERM_PULL, ACCOUNT_B "/app"));
	CHECK(refused(new_token));
	free(token);
	free(new_token);
}

/* Tokens whose key is of another account, or unknown, are refused and not
 * cached; a device token is cached (pull only). */
static void test_subjects(void)
{
	brt_access_key key;
	char subject[96], *token;
	uint64_t hits;
	brt_principal p;

	make_key(&key, ACCOUNT_A, ALL_ACTIONS, 0);
	snprintf(subject, sizeof(subject), "key:%s", key.id);
	token = sign_at(secret, subject, ACCOUNT_B, ACCOUNT_B "/app", BRT_PERM_PULL, time(NULL), 300);
	hits = brt_auth_token_cache_hits();
	for (int i = 0; i < 3; i++)
		CHECK(refused(token));
	free(token);
	token = sign_at(secret, "key:00000000deadbeef", ACCOUNT_A, ACCOUNT_A "/app", BRT_PERM_PULL,
			time(NULL), 300);
	for (int i = 0; i < 3; i++)
		CHECK(refused(token));
	free(token);
	token = sign_at(secret, "user:someone", ACCOUNT_A, ACCOUNT_A "/app", BRT_PERM_PULL, time(NULL), 300);
	for (int i = 0; i < 3; i++)
		CHECK(refused(token));
	free(token);
	CHECK(brt_auth_token_cache_hits() == hits);

	token = sign_at(secret, "device:edge-1", ACCOUNT_A, ACCOUNT_A "/app", ALL_ACTIONS, time(NULL), 300);
	for (int i = 0; i < 2; i++) {
		authenticate(&p, token);
		CHECK_EQ_INT(p.kind, BRT_PRINCIPAL_TOKEN);
		CHECK_EQ_STR(p.subject, "device:edge-1");
		CHECK_EQ_INT(p.permissions, BRT_PERM_PULL);
		CHECK_EQ_INT(brt_auth_check(&p, BRT_ACTION_PULL, ACCOUNT_A "/app"), 0);
		CHECK_EQ_INT(brt_auth_check(&p, BRT_ACTION_PUSH, ACCOUNT_A "/app"), BRT_EDENIED);
	}
	CHECK(brt_auth_token_cache_hits() == hits + 1);
	free(token);
}

/* Many grants with long names: too big for a slot, verified every time,
 * and all grants and the catalog come through. */
static void test_big_token(void)
{
	brt_access_key key;
	brt_token_claims claims;
	brt_grant grants[BRT_TOKEN_MAX_GRANTS];
	char names[BRT_TOKEN_MAX_GRANTS][128], *token = NULL;
	uint64_t hits;
	brt_principal p;

	make_key(&key, ACCOUNT_A, ALL_ACTIONS, 0);
	memset(&claims, 0, sizeof(claims));
	snprintf(claims.subject, sizeof(claims.subject), "key:%s", key.id);
	snprintf(claims.account, sizeof(claims.account), "%s", ACCOUNT_A);
	for (int i = 0; i < BRT_TOKEN_MAX_GRANTS; i++) {
		snprintf(names[i], sizeof(names[i]), "%s/%080d", ACCOUNT_A, i);
		grants[i].repo = names[i];
		grants[i].actions = BRT_PERM_PULL;
	}
	claims.grants = grants;
	claims.grant_count = BRT_TOKEN_MAX_GRANTS;
	claims.catalog = 1;
	CHECK_EQ_INT(brt_token_sign(&token, secret, SERVICE, &claims, time(NULL), 300), 0);
	CHECK(token && strlen(token) > 2048);
	hits = brt_auth_token_cache_hits();
	for (int i = 0; token && i < 3; i++) {
		authenticate(&p, token);
		CHECK_EQ_INT(p.kind, BRT_PRINCIPAL_TOKEN);
		CHECK_EQ_INT(p.token.grant_count, BRT_TOKEN_MAX_GRANTS);
		CHECK_EQ_INT(brt_auth_check(&p, BRT_ACTION_PULL, names[BRT_TOKEN_MAX_GRANTS - 1]), 0);
		CHECK_EQ_INT(brt_auth_check(&p, BRT_ACTION_CATALOG, NULL), 0);
	}
	CHECK(brt_auth_token_cache_hits() == hits);
	free(token);
	/* A few grants and the catalog fit, and come back from the cache. */
	claims.grant_count = 3;
	CHECK_EQ_INT(brt_token_sign(&token, secret, SERVICE, &claims, time(NULL), 300), 0);
	for (int i = 0; token && i < 2; i++) {
		authenticate(&p, token);
		CHECK_EQ_INT(p.kind, BRT_PRINCIPAL_TOKEN);
		CHECK_EQ_INT(p.token.grant_count, 3);
		for (size_t g = 0; g < p.token.grant_count && g < 3; g++)
			CHECK_EQ_STR(p.token.grants[g].repo, names[g]);
		CHECK_EQ_INT(brt_auth_check(&p, BRT_ACTION_PULL, names[2]), 0);
		CHECK_EQ_INT(brt_auth_check(&p, BRT_ACTION_PULL, names[3]), BRT_EUNAUTHORIZED);
		CHECK_EQ_INT(brt_auth_check(&p, BRT_ACTION_CATALOG, NULL), 0);
	}
	CHECK(brt_auth_token_cache_hits() == hits + 1);
	free(token);
}

/* More distinct tokens than a thread keeps: every one still authenticates
 * as itself. */
static void test_many_tokens(void)
{
	enum { N = 40 };
	brt_access_key key;
	char *tokens[N], repo[64];

	make_key(&key, ACCOUNT_A, ALL_ACTIONS, 0);
	for (int i = 0; i < N; i++) {
		snprintf(repo, sizeof(repo), "%s/r%d", ACCOUNT_A, i);
		tokens[i] = sign_for(&key, repo, BRT_PERM_PULL);
	}
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < N; i++) {
			snprintf(repo, sizeof(repo), "%s/r%d", ACCOUNT_A, i);
			expect_token_of(tokens[i], &key, repo, BRT_PERM_PULL, ACCOUNT_B "/app");
		}
	for (int i = 0; i < N; i++)
		free(tokens[i]);
}

int main(void)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/berth-token-cache-XXXXXX");
	if (!mkdtemp(tmp_dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(db_path, sizeof(db_path), "%s/meta.db", tmp_dir);
	brt_pool_init(&pool, POOL_CAP);
	if (brt_meta_sqlite_open(&meta, db_path) < 0) {
		fprintf(stderr, "open %s: %s\n", db_path, brt_error_last());
		remove_tmp_dir();
		return 1;
	}
	memset(&auth, 0, sizeof(auth));
	auth.enabled = 1;
	auth.meta = meta;
	auth.token_secret = secret;
	auth.service = SERVICE;
	make_account(ACCOUNT_A);
	make_account(ACCOUNT_B);

	test_hit();
	test_two_accounts();
	test_tampered();
	test_revoked();
	test_revoked_other_thread();
	test_rotated_secret();
	test_subjects();
	test_big_token();
	test_many_tokens();
	test_expiry();

	brt_meta_free(meta);
	brt_pool_clear(&pool);
	remove_tmp_dir();
	return check_exit("test_token_cache");
}
