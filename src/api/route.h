/* The registry's one route table and the dispatcher's decision as a pure
 * function: method and path to endpoint, repository, reference, the row
 * of the table that serves the request and the action authorisation must
 * allow.  No server, connection or store is needed, so unit tests and the
 * fuzz target run the very code that the dispatcher uses. */
#ifndef BRT_ROUTE_H
#define BRT_ROUTE_H

#include <stddef.h>

#include "auth/auth.h"
#include "common/pool.h"
#include "http/request.h"

typedef enum brt_endpoint {
	BRT_EP_NONE = 0,
	BRT_EP_BASE,      /* /v2/ */
	BRT_EP_CATALOG,   /* /v2/_catalog */
	BRT_EP_BLOB,      /* /v2/<name>/blobs/<digest> */
	BRT_EP_UPLOADS,   /* /v2/<name>/blobs/uploads/ */
	BRT_EP_UPLOAD,    /* /v2/<name>/blobs/uploads/<id> */
	BRT_EP_MANIFEST,  /* /v2/<name>/manifests/<reference> */
	BRT_EP_TAGS,      /* /v2/<name>/tags/list */
	BRT_EP_REFERRERS, /* /v2/<name>/referrers/<digest> */
	BRT_EP_TOKEN,     /* /v2/token */
	BRT_EP_USAGE,     /* /v2/_berth/usage */
} brt_endpoint;

#define BRT_METHOD_BIT(m) (1u << (m))

struct brt_api_request;

/* One row: who serves `methods` on `endpoint`.  Steps return 0 or a
 * BRT_E* code, which the error table turns into the answer. */
typedef struct brt_route_def {
	const char *suffix; /* the path after /v2/<name> (or after /v2/ for registry-wide rows) */
	brt_endpoint endpoint;
	unsigned int methods; /* BRT_METHOD_BIT() of each method served */
	/* What the caller must be allowed before anything else happens; 0
	 * for no check (the token endpoint authenticates by itself). */
	brt_action action;
	int streams; /* the body or the answer is a blob: a long transfer */
	/* Headers are in (NULL: nothing to do before the body). */
	int (*begin)(struct brt_api_request *req);
	/* A chunk of body (NULL: a body is read and dropped). */
	int (*body)(struct brt_api_request *req, const char *data, size_t len);
	/* The body is in: answer. */
	int (*end)(struct brt_api_request *req);
	const char *name; /* for tests and logs */
} brt_route_def;

typedef struct brt_route {
	brt_endpoint endpoint;
	const brt_route_def
		*def; /* NULL: the method is not allowed on the endpoint (405, after authorisation) */
	/* What the caller must be allowed (the row's, or for a 405 what the
	 * method would need), 0 for no check. */
	brt_action action;
	const char *repo;      /* pool; a valid name; NULL for registry-wide endpoints */
	const char *reference; /* in `path`: tag, digest or upload id (unvalidated); NULL if none */
} brt_route;

/* Route `method` on the decoded request path `path` (NUL-terminated, no
 * query string) into `out`.  `out` is filled on every return; allocations
 * come from `pool`.
 *   BRT_ENOTFOUND  no such endpoint (404)
 *   BRT_ENAME      the repository name is invalid (400 NAME_INVALID);
 *                  out->endpoint is set
 *   BRT_ENOMEM     the pool is exhausted */
int brt_api_route(brt_route *out, brt_pool *pool, brt_method method, const char *path);

/* The methods `endpoint` supports, for the Allow header of a 405. */
const char *brt_api_allowed_methods(brt_endpoint endpoint);

/* The route table, for documentation and tests: *count_out rows. */
const brt_route_def *brt_api_routes(size_t *count_out);

#endif
