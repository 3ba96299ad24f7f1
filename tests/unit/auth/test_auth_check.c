/* The authorisation decision as a table: every action for every kind of
 * principal (authentication off, full key, pull-only key, token with and
 * without the scope, device, nobody) on every kind of repository (own,
 * another account's, an invalid name, none), with the answer the registry
 * must give.  brt_auth_check is pure, so the table is the whole truth. */
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "check.h"
#include "common/error.h"

#define OWN_ACCOUNT "0123456789abcdef0123456789abcdef"
#define OTHER_ACCOUNT "fedcba9876543210fedcba9876543210"
#define OWN OWN_ACCOUNT "/app"
#define OTHER OTHER_ACCOUNT "/app"
#define UNSCOPED OWN_ACCOUNT "/other" /* own account, but not in the token's scope */
#define INVALID "app"                 /* not of the tenant form */

enum principal_kind_index { OPEN, FULL, PULL_ONLY, TOKEN_SCOPED, TOKEN_PULL_SCOPED, DEVICE, NOBODY, KINDS };
static const char *const kind_names[KINDS] = {"open",       "full key", "pull-only key", "token",
					      "pull token", "device",   "nobody"};

static brt_principal principals[KINDS];
static brt_grant grants_full[] = {{OWN, BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE}};
static brt_grant grants_pull[] = {{OWN, BRT_PERM_PULL}};

static void make_principals(void)
{
	const unsigned int all = BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE;

	memset(principals, 0, sizeof(principals));
	principals[OPEN].kind = BRT_PRINCIPAL_OPEN;
	principals[OPEN].permissions = all;
	principals[FULL].kind = BRT_PRINCIPAL_KEY;
	principals[FULL].permissions = all;
	principals[PULL_ONLY].kind = BRT_PRINCIPAL_KEY;
	principals[PULL_ONLY].permissions = BRT_PERM_PULL;
	/* A token for a full key: push and delete granted on OWN only. */
	principals[TOKEN_SCOPED].kind = BRT_PRINCIPAL_TOKEN;
	principals[TOKEN_SCOPED].permissions = all;
	principals[TOKEN_SCOPED].token.grants = grants_full;
	principals[TOKEN_SCOPED].token.grant_count = 1;
	principals[TOKEN_SCOPED].token.catalog = 1;
	/* A token for a full key that was granted pull only (and no catalog). */
	principals[TOKEN_PULL_SCOPED].kind = BRT_PRINCIPAL_TOKEN;
	principals[TOKEN_PULL_SCOPED].permissions = all;
	principals[TOKEN_PULL_SCOPED].token.grants = grants_pull;
	principals[TOKEN_PULL_SCOPED].token.grant_count = 1;
	principals[DEVICE].kind = BRT_PRINCIPAL_DEVICE;
	principals[DEVICE].permissions = BRT_PERM_PULL;
	principals[NOBODY].kind = BRT_PRINCIPAL_NONE;
	for (int k = FULL; k < NOBODY; k++)
		memcpy(principals[k].account, OWN_ACCOUNT, sizeof(principals[k].account));
}

#define OK 0
#define UNAUTH BRT_EUNAUTHORIZED
#define DENIED BRT_EDENIED
#define NAME BRT_ENAME

static const struct row {
	brt_action action;
	const char *repo;
	int want[KINDS]; /* open, full, pull-only, token, pull token, device, nobody */
} table[] = {
	{BRT_ACTION_PULL, OWN, {OK, OK, OK, OK, OK, OK, UNAUTH}},
	{BRT_ACTION_PUSH, OWN, {OK, OK, DENIED, OK, UNAUTH, DENIED, UNAUTH}},
	{BRT_ACTION_DELETE, OWN, {OK, OK, DENIED, OK, UNAUTH, DENIED, UNAUTH}},
	/* Own account, outside the token's scope: a bigger token would do. */
	{BRT_ACTION_PULL, UNSCOPED, {OK, OK, OK, UNAUTH, UNAUTH, OK, UNAUTH}},
	{BRT_ACTION_PUSH, UNSCOPED, {OK, OK, DENIED, UNAUTH, UNAUTH, DENIED, UNAUTH}},
	/* Another account: never, and the same answer whatever exists. */
	{BRT_ACTION_PULL, OTHER, {OK, DENIED, DENIED, DENIED, DENIED, DENIED, UNAUTH}},
	{BRT_ACTION_PUSH, OTHER, {OK, DENIED, DENIED, DENIED, DENIED, DENIED, UNAUTH}},
	{BRT_ACTION_DELETE, OTHER, {OK, DENIED, DENIED, DENIED, DENIED, DENIED, UNAUTH}},
	/* Not of the tenant form: invalid for anyone authenticated. */
	{BRT_ACTION_PULL, INVALID, {OK, NAME, NAME, NAME, NAME, NAME, UNAUTH}},
	{BRT_ACTION_PUSH, INVALID, {OK, NAME, NAME, NAME, NAME, NAME, UNAUTH}},
	{BRT_ACTION_DELETE, INVALID, {OK, NAME, NAME, NAME, NAME, NAME, UNAUTH}},
	/* Registry-wide: /v2/ needs credentials, the catalog a token scope. */
	{BRT_ACTION_PULL, NULL, {OK, OK, OK, OK, OK, OK, UNAUTH}},
	{BRT_ACTION_CATALOG, NULL, {OK, OK, OK, OK, UNAUTH, OK, UNAUTH}},
};

static void test_table(void)
{
	for (size_t r = 0; r < sizeof(table) / sizeof(table[0]); r++) {
		for (int k = 0; k < KINDS; k++) {
			int got = brt_auth_check(&principals[k], table[r].action, table[r].repo);
			if (got != table[r].want[k])
				fprintf(stderr, "action %d on %s by %s: %d, want %d\n", table[r].action,
					table[r].repo ? table[r].repo : "(registry)", kind_names[k], got,
					table[r].want[k]);
			CHECK_EQ_INT(got, table[r].want[k]);
		}
	}
}

/* The catalog is limited to the caller's account, unless auth is off. */
static void test_catalog_prefix(void)
{
	brt_pool pool;

	brt_pool_init(&pool, 4096);
	CHECK(brt_auth_catalog_prefix(&principals[OPEN], &pool) == NULL);
	for (int k = FULL; k < NOBODY; k++)
		CHECK_EQ_STR(brt_auth_catalog_prefix(&principals[k], &pool), OWN_ACCOUNT "/");
	brt_pool_clear(&pool);
}

/* What a token may be granted: the key's permissions on its own account. */
static void test_allowed(void)
{
	CHECK_EQ_INT(brt_auth_allowed(&principals[FULL], OWN),
		     BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE);
	CHECK_EQ_INT(brt_auth_allowed(&principals[PULL_ONLY], OWN), BRT_PERM_PULL);
	CHECK_EQ_INT(brt_auth_allowed(&principals[DEVICE], OWN), BRT_PERM_PULL);
	CHECK_EQ_INT(brt_auth_allowed(&principals[FULL], OTHER), 0);
	CHECK_EQ_INT(brt_auth_allowed(&principals[FULL], INVALID), 0);
	CHECK_EQ_INT(brt_auth_allowed(&principals[NOBODY], OWN), 0);
}

/* The challenge names the token endpoint, the service and the scope. */
static void test_challenge(void)
{
	brt_auth auth;
	brt_pool pool;

	memset(&auth, 0, sizeof(auth));
	auth.enabled = 1;
	auth.service = "berth";
	brt_pool_init(&pool, 4096);
	CHECK_EQ_STR(brt_auth_challenge(&pool, &auth, "https://r.example/v2/token", BRT_ACTION_PUSH, OWN),
		     "Bearer realm=\"https://r.example/v2/token\",service=\"berth\",scope=\"repository:" OWN
		     ":pull,push\"");
	CHECK_EQ_STR(brt_auth_challenge(&pool, &auth, "https://r.example/v2/token", BRT_ACTION_CATALOG, NULL),
		     "Bearer "
		     "realm=\"https://r.example/v2/token\",service=\"berth\",scope=\"registry:catalog:*\"");
	CHECK_EQ_STR(brt_auth_challenge(&pool, &auth, "http://h/v2/token", BRT_ACTION_PULL, NULL),
		     "Bearer realm=\"http://h/v2/token\",service=\"berth\"");
	auth.enabled = 0;
	CHECK(brt_auth_challenge(&pool, &auth, "http://h/v2/token", BRT_ACTION_PULL, OWN) == NULL);
	brt_pool_clear(&pool);
}

int main(void)
{
	make_principals();
	test_table();
	test_catalog_prefix();
	test_allowed();
	test_challenge();
	return check_exit("test_auth_check");
}
