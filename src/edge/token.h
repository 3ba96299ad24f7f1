/* Docker token authentication on the edge's side: reading a Bearer
 * challenge from the upstream, deciding whether its realm may receive
 * the gateway's credentials, building the token request, reading the
 * token service's answer, and a small cache of tokens by (realm, service,
 * scope) so that one token serves many requests until shortly before it
 * expires. */
#ifndef BRT_EDGE_TOKEN_H
#define BRT_EDGE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define BRT_EDGE_REALM_MAX 1024
#define BRT_EDGE_SERVICE_MAX 256
#define BRT_EDGE_SCOPE_MAX 1024
/* berthd's tokens are at most 16 KiB (BRT_TOKEN_MAX_LEN). */
#define BRT_EDGE_TOKEN_MAX 16384
/* Seconds a token lives when the answer does not say (the spec's default). */
#define BRT_EDGE_TOKEN_DEFAULT_TTL 60

typedef struct brt_edge_challenge {
	char realm[BRT_EDGE_REALM_MAX];
	char service[BRT_EDGE_SERVICE_MAX]; /* "" when absent */
	char scope[BRT_EDGE_SCOPE_MAX];     /* "" when absent; several are space-separated */
} brt_edge_challenge;

/* Parse a WWW-Authenticate value `Bearer realm="...",service="...",
 * scope="..."` (scheme and parameter names in any case, values quoted
 * or not, unknown parameters skipped).  BRT_EINVALID if it is another
 * scheme, has no realm, is malformed, or a value does not fit. */
int brt_edge_challenge_parse(brt_edge_challenge *out, const char *value);

/* 1 if `realm` is on the upstream's own origin ("scheme://host[:port]",
 * as brt_upstream_origin gives it): same scheme, host and port, the
 * authority ending right there (no "@other-host", no ":other-port").
 * Only then may the gateway's credentials go to it. */
int brt_edge_realm_allowed(const char *realm, const char *origin);

/* The token request's URL: the realm with service= and one scope= per
 * space-separated scope, each percent-encoded, appended to its query.
 * BRT_EINVALID if it does not fit in `cap`. */
int brt_edge_token_url(char *out, size_t cap, const brt_edge_challenge *challenge);

/* The scope a client's request needs, as a registry's challenge names it:
 * "" for /v2/, "repository:<name>:pull" for a GET or HEAD under
 * /v2/<name>/, "repository:<name>:pull,push" for any other method.
 * BRT_EINVALID if the path is none of these or does not fit. */
int brt_edge_token_scope(char *out, size_t cap, const char *method, const char *path_and_query);

/* Read a token service's JSON answer: "token" (else "access_token") into
 * `out` and "expires_in" (BRT_EDGE_TOKEN_DEFAULT_TTL when absent or not a
 * positive number; at most a day) into *expires_in_out.  BRT_EINVALID if
 * it is not JSON, has no token, or the token is empty, too long or not
 * printable ASCII without spaces (it becomes a header value). */
int brt_edge_token_parse(char *out, size_t cap, unsigned int *expires_in_out, const char *body, size_t len);

typedef struct brt_edge_token_cache brt_edge_token_cache;

/* A cache of at most `capacity` tokens, all its memory taken here.  Safe
 * for concurrent use.  BRT_EINVALID for 0, BRT_ENOMEM. */
int brt_edge_token_cache_new(brt_edge_token_cache **out, size_t capacity);
void brt_edge_token_cache_free(brt_edge_token_cache *cache);

/* Copy into `out` the token for `scope` that is still fresh at `now_ms`
 * (milliseconds on a monotonic clock); `realm` and `service` must match too
 * unless NULL.  1 if found, 0 if not (or if it does not fit). */
int brt_edge_token_cache_get(char *out, size_t cap, brt_edge_token_cache *cache, const char *realm,
			     const char *service, const char *scope, uint64_t now_ms);

/* Keep `token`, obtained at `now_ms` and living `expires_in` seconds, for
 * (realm, service, scope): it is handed out until a tenth of its life
 * (at least 1 s, at most 30 s) before it expires.  Replaces the key's
 * previous token; when full, takes the slot of an expired token, else of
 * the least recently used one.  Tokens, realms, services or scopes that
 * do not fit are not kept. */
void brt_edge_token_cache_put(brt_edge_token_cache *cache, const char *realm, const char *service,
			      const char *scope, const char *token, unsigned int expires_in, uint64_t now_ms);

/* Forget `token` wherever it is kept: the upstream refused it. */
void brt_edge_token_cache_drop(brt_edge_token_cache *cache, const char *token);

#endif
