/* Authentication and authorisation, with no HTTP in sight.
 *
 * Authentication turns what a request presented (an Authorization header
 * value, a TLS client certificate) into a principal: Basic KEY:<access
 * key>, Bearer <access key>, Bearer <token> (from /v2/token), or a client
 * certificate from the configured CA (a device: pull only).
 *
 * Authorisation is a pure function of the principal, the action and the
 * repository: a repository belongs to the account named by its first path
 * component, and every handler passes through brt_auth_check before it
 * touches a store. */
#ifndef BRT_AUTH_H
#define BRT_AUTH_H

#include <stddef.h>

#include "auth/token.h"
#include "common/pool.h"
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
	char subject[96];         /* "key:<id>" or "device:<name>" */
	unsigned int permissions; /* what the key or device may do at all */
	brt_token_claims token;   /* kind TOKEN: the granted scopes */
	/* Kind NONE because the credentials could not be checked (the
	 * metadata store is out of reach): 503, not 401, so that clients
	 * retry instead of asking for a login. */
	int unavailable;
} brt_principal;

typedef enum brt_credential_kind {
	BRT_CREDENTIAL_KEY = 1,   /* an access key (Basic KEY:<key> or Bearer brt_...) */
	BRT_CREDENTIAL_TOKEN = 2, /* Bearer <anything else>: a token */
} brt_credential_kind;

/* What authentication needs from the server, fixed while it runs. */
typedef struct brt_auth {
	int enabled;                       /* 0: everyone may do everything (BRT_PRINCIPAL_OPEN) */
	brt_meta *meta;                    /* access keys and accounts */
	const unsigned char *token_secret; /* BRT_TOKEN_SECRET_LEN bytes */
	const char *service;               /* token audience */
	const char *device_account_field;  /* subject field of a device certificate naming its account */
} brt_auth;

/* What a TLS connection's client certificate proved, worked out on the
 * connection's first request and kept for the rest (a certificate check
 * costs a signature verification).  Start zeroed. */
typedef struct brt_auth_device {
	int checked;
	int state; /* 0: no certificate, 1: a valid device, -1: refused */
	char account[33];
	char name[65];
} brt_auth_device;

/* What one request presented; every member may be NULL. */
typedef struct brt_credentials {
	const char *authorization; /* the Authorization header value */
	brt_auth_device *device;   /* the connection's certificate verdict (TLS only) */
	void *tls_session;         /* its gnutls_session_t, to check the certificate once */
} brt_credentials;

/* Split an Authorization header value into the kind of credential and the
 * credential itself (copied NUL-terminated into `out`, `cap` bytes).
 * BRT_EUNAUTHORIZED for another scheme, malformed base64, a Basic user
 * other than KEY, or a credential that does not fit. */
int brt_auth_parse_header(brt_credential_kind *kind_out, char *out, size_t cap, const char *value);

/* Who presented `credentials` into `out` (token grants in `pool`).  Never
 * fails: a principal of kind NONE means unauthenticated (`unavailable` set
 * if the store could not be asked). */
void brt_auth_authenticate(brt_principal *out, const brt_auth *auth, brt_pool *pool,
			   const brt_credentials *credentials);

/* Authenticate `user`/`password` (as in an OAuth2 password grant): the
 * user must be KEY and the password an access key.  0,
 * BRT_EUNAUTHORIZED, or BRT_EUNAVAILABLE if the store could not be asked. */
int brt_auth_password(brt_principal *out, const brt_auth *auth, const char *user, const char *password);

/* 0 if `principal` may perform `action` on `repo` (NULL for registry-wide
 * actions).  BRT_EUNAUTHORIZED without valid credentials, or with a token
 * lacking a scope the key could be granted (a bigger token would do);
 * BRT_EDENIED when the caller can never do it (another account's
 * repository, a pull-only key pushing); BRT_ENAME for a repository name
 * that is not of the tenant form while authentication is on.  Pure: no
 * store, no clock, no request. */
int brt_auth_check(const brt_principal *principal, brt_action action, const char *repo);

/* The repository-name prefix ("<account>/", from `pool`) that catalog
 * listings are limited to, or NULL for everything (authentication off). */
const char *brt_auth_catalog_prefix(const brt_principal *principal, brt_pool *pool);

/* The WWW-Authenticate value (from `pool`) for a 401 on a request wanting
 * `action` on `repo`, whose token endpoint is `realm` (an absolute URL),
 * or NULL when authentication is off. */
const char *brt_auth_challenge(brt_pool *pool, const brt_auth *auth, const char *realm, brt_action action,
			       const char *repo);

/* What a principal may be granted for `repo` (enum brt_permission bits). */
unsigned int brt_auth_allowed(const brt_principal *p, const char *repo);

#endif
