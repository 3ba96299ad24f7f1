/* Authentication and authorisation: the single place where "who is this"
 * and "may they do this to this repository" are decided.  Every handler
 * passes through brt_auth_check before touching a store.
 *
 * Credentials: Basic KEY:<access key>, Bearer <access key>, Bearer <token>
 * (from /v2/token), or a TLS client certificate from the configured CA
 * (a device: pull only).  Tenancy: a repository belongs to the account
 * named by its first path component. */
#ifndef BRT_AUTH_H
#define BRT_AUTH_H

#include "auth/token.h"
#include "http/request.h"
#include "meta/meta.h"

typedef enum brt_action {
	BRT_ACTION_PULL = 1,    /* read manifests, blobs, tags, referrers */
	BRT_ACTION_PUSH = 2,    /* upload blobs, put manifests */
	BRT_ACTION_DELETE = 4,  /* delete manifests, tags, blobs */
	BRT_ACTION_CATALOG = 8, /* list repositories */
} brt_action;

typedef enum brt_principal_kind {
	BRT_PRINCIPAL_NONE = 0, /* no valid credentials */
	BRT_PRINCIPAL_OPEN,     /* authentication is switched off */
	BRT_PRINCIPAL_KEY,      /* an access key, directly */
	BRT_PRINCIPAL_TOKEN,    /* a bearer token issued for a key or device */
	BRT_PRINCIPAL_DEVICE,   /* a client certificate */
} brt_principal_kind;

typedef struct brt_principal {
	brt_principal_kind kind;
	char account[33];
	char subject[96];          /* "key:<id>" or "device:<name>" */
	unsigned int permissions;  /* what the key or device may do at all */
	brt_token_claims token;    /* kind TOKEN: the granted scopes */
} brt_principal;

typedef enum brt_credential_kind {
	BRT_CREDENTIAL_KEY = 1,   /* an access key (Basic KEY:<key> or Bearer brt_...) */
	BRT_CREDENTIAL_TOKEN = 2, /* Bearer <anything else>: a token */
} brt_credential_kind;

/* Split an Authorization header value into the kind of credential and the
 * credential itself (copied NUL-terminated into `out`, `cap` bytes).
 * BRT_EUNAUTHORIZED for another scheme, malformed base64, a Basic user
 * other than KEY, or a credential that does not fit. */
int brt_auth_parse_header(brt_credential_kind *kind_out, char *out, size_t cap, const char *value);

/* Who sent `req` (memoised in the request).  Never fails: a principal of
 * kind NONE means unauthenticated. */
const brt_principal *brt_auth_principal(brt_request *req);

/* Authenticate `user`/`password` (as in an OAuth2 password grant): the
 * user must be KEY and the password an access key.  0 or
 * BRT_EUNAUTHORIZED. */
int brt_auth_password(brt_principal *out, brt_request *req, const char *user, const char *password);

/* 0 if `req` may perform `action` on `repo` (NULL for registry-wide
 * actions).  BRT_EUNAUTHORIZED without valid credentials, or with a token
 * lacking a scope the key could be granted (a bigger token would do);
 * BRT_EDENIED when the caller can never do it (another account's
 * repository, a pull-only key pushing); BRT_EINVALID for a repository name
 * that is not of the tenant form while authentication is on. */
int brt_auth_check(brt_request *req, brt_action action, const char *repo);

/* The repository-name prefix ("<account>/") that catalog listings are
 * limited to, or NULL for everything (authentication off).  Pool. */
const char *brt_auth_catalog_prefix(brt_request *req);

/* The WWW-Authenticate value for a 401 on `req` wanting `action` on `repo`
 * (pool), or NULL when authentication is off. */
const char *brt_auth_challenge(brt_request *req, brt_action action, const char *repo);

/* What a principal may be granted for `repo` (enum brt_permission bits). */
unsigned int brt_auth_allowed(const brt_principal *p, const char *repo);

#endif
