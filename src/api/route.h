/* The request dispatcher's decision as a pure function: method and path
 * to endpoint, repository, reference, the handler that serves it and the
 * action authorisation must allow.  No server, connection or store is
 * needed, so unit tests and the fuzz target run the very code that
 * brt_api_begin uses. */
#ifndef BRT_ROUTE_H
#define BRT_ROUTE_H

#include "auth/auth.h"
#include "common/pool.h"
#include "http/request.h"

/* Which handler serves a request. */
typedef enum brt_handler {
	BRT_HANDLER_NONE = 0,    /* the method is not allowed on the endpoint (405) */
	BRT_HANDLER_BASE,        /* GET, HEAD /v2/ */
	BRT_HANDLER_CATALOG,     /* GET, HEAD /v2/_catalog */
	BRT_HANDLER_TOKEN,       /* GET, POST /v2/token */
	BRT_HANDLER_TAGS,        /* GET, HEAD tags/list */
	BRT_HANDLER_REFERRERS,   /* GET, HEAD referrers/<digest> */
	BRT_HANDLER_BLOB_GET,    /* GET, HEAD blobs/<digest> */
	BRT_HANDLER_BLOB_DELETE, /* DELETE blobs/<digest> */
	BRT_HANDLER_UPLOAD_POST, /* POST blobs/uploads/ (session, monolithic, mount) */
	BRT_HANDLER_UPLOAD_DATA, /* PATCH, PUT blobs/uploads/<id> */
	BRT_HANDLER_UPLOAD_STATUS, /* GET blobs/uploads/<id> */
	BRT_HANDLER_UPLOAD_CANCEL, /* DELETE blobs/uploads/<id> */
	BRT_HANDLER_MANIFEST_GET,  /* GET, HEAD manifests/<ref> */
	BRT_HANDLER_MANIFEST_PUT,  /* PUT manifests/<ref> */
	BRT_HANDLER_MANIFEST_DELETE, /* DELETE manifests/<ref> */
} brt_handler;

typedef struct brt_route {
	brt_endpoint endpoint;
	brt_handler handler;   /* BRT_HANDLER_NONE: answer 405 (after authorisation) */
	/* What the caller must be allowed before anything else happens; 0
	 * for no check (the token endpoint authenticates by itself, and an
	 * unknown method is refused with 405 at once). */
	brt_action action;
	const char *repo;      /* pool; a valid name; NULL for registry-wide endpoints */
	const char *reference; /* in `path`: tag, digest or upload id (unvalidated); NULL if none */
} brt_route;

/* Route `method` on the decoded request path `path` (NUL-terminated, no
 * query string) into `out`.  `out` is filled on every return; allocations
 * come from `pool`.
 *   BRT_ENOTFOUND  no such endpoint (404)
 *   BRT_EINVALID   the repository name is invalid (400 NAME_INVALID);
 *                  out->endpoint is set
 *   BRT_ENOMEM     the pool is exhausted */
int brt_api_route(brt_route *out, brt_pool *pool, brt_method method, const char *path);

/* The handler for `method` on `endpoint` (BRT_HANDLER_NONE if the method
 * is not allowed there). */
brt_handler brt_api_handler(brt_endpoint endpoint, brt_method method);

/* The methods `endpoint` supports, for the Allow header of a 405. */
const char *brt_api_allowed_methods(brt_endpoint endpoint);

/* 1 if a request with these Transfer-Encoding and Content-Length header
 * values (each NULL when absent) carries a body. */
int brt_api_has_body(const char *transfer_encoding, const char *content_length);

#endif
