/* Bearer tokens for Docker token authentication: a JWT signed with
 * HMAC-SHA256 under a secret every node shares (kept in the metadata
 * store).  The token names the key (or device) it was issued to, so
 * revoking the key also ends its tokens, and lists the granted scopes. */
#ifndef BRT_TOKEN_H
#define BRT_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "common/pool.h"

#define BRT_TOKEN_SECRET_LEN 32
#define BRT_TOKEN_MAX_GRANTS 32
#define BRT_TOKEN_MAX_LEN 16384

/* One granted repository scope. */
typedef struct brt_grant {
	const char *repo;     /* pool */
	unsigned int actions; /* enum brt_permission bits */
} brt_grant;

typedef struct brt_token_claims {
	char subject[96]; /* "key:<key id>" or "device:<name>" */
	char account[33];
	int64_t expires_at; /* seconds since the epoch */
	int catalog;        /* registry:catalog:* granted */
	brt_grant *grants;  /* pool */
	size_t grant_count;
} brt_token_claims;

/* Sign `claims` for `service`, valid `ttl` seconds from `now`.  *out is a
 * NUL-terminated string to free() with free(). */
int brt_token_sign(char **out, const unsigned char *secret, const char *service,
		   const brt_token_claims *claims, int64_t now, unsigned int ttl);

/* Check signature, audience and time; fill `out` (grants in `pool`).
 * BRT_EUNAUTHORIZED for anything wrong with the token. */
int brt_token_verify(brt_token_claims *out, brt_pool *pool, const unsigned char *secret, const char *service,
		     const char *token, size_t len, int64_t now);

/* Parse one `scope` parameter "repository:<name>:<actions>" (actions
 * comma-separated: pull, push, delete, *) into *repo_out (pool) and
 * *actions_out; "registry:catalog:*" sets *catalog_out.  BRT_EINVALID for
 * a scope of another form (callers drop it). */
int brt_scope_parse(const char **repo_out, unsigned int *actions_out, int *catalog_out, brt_pool *pool,
		    const char *scope);

#endif
