/* Shared between the API's handler files: the per-request state, response
 * helpers, the error table's entry points and the handler steps named by
 * the route table.  Not for use outside src/api. */
#ifndef BRT_API_INTERNAL_H
#define BRT_API_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "api/api.h"
#include "api/route.h"
#include "auth/auth.h"
#include "common/clock.h"
#include "common/error.h"
#include "http/request.h"
#include "oci/digest.h"
#include "storage/blob_upload.h"

/* The registry's state for one request, from the request pool. */
typedef struct brt_api_request {
	brt_http_request *http;
	brt_api *api;
	brt_pool *pool;             /* &http->pool */
	const brt_route_def *route; /* NULL until routed, or for a 405 */
	brt_endpoint endpoint;
	brt_action action;                    /* what was authorised (for a 401's challenge) */
	const char *repo;                     /* pool; validated */
	const char *reference;                /* pool; tag, digest or upload id (unvalidated) */
	char account[BRT_ACCOUNT_ID_LEN + 1]; /* the account `repo` belongs to ("" without a repo) */
	const brt_principal *principal;       /* pool; see api_principal */

	/* the answer to give once the body is read, if an error came first */
	int pending_error; /* 0: none */
	unsigned int pending_status;
	const char *pending_code;
	const char *pending_detail;

	/* uploads */
	brt_blob_upload *upload;
	brt_upload *session;    /* pool; the upload row being extended */
	int monolithic;         /* POST ?digest=: no session row */
	int mount;              /* POST ?mount=: link req->digest from mount_from */
	const char *mount_from; /* ?from= when a valid name, else NULL (borrowed) */
	brt_digest digest;      /* the digest the client named, if any */
	uint64_t blob_size;     /* blob GET: the blob's size (for a 416's Content-Range) */

	/* token endpoint */
	struct brt_token_form *form; /* pool */
} brt_api_request;

/* A request header or query argument (borrowed), or NULL. */
static inline const char *api_header(brt_api_request *req, const char *name)
{
	return brt_http_header(req->http, name);
}

static inline const char *api_query(brt_api_request *req, const char *name)
{
	return brt_http_query(req->http, name);
}

/* Who sent the request (authenticated on first use, then memoised). */
const brt_principal *api_principal(brt_api_request *req);

/* Record `error` (a BRT_E* code; the detail is brt_error_last) as the
 * answer, mapped by the error table for this endpoint; the first one
 * recorded wins, and any body still coming is read and dropped.  Returns
 * `error`, so a step can `return api_fail(req, error)`. */
int api_fail(brt_api_request *req, int error);

/* 1 once an error is pending or a response was queued. */
int api_done(const brt_api_request *req);

/* Add the headers every response carries, queue `resp` with `status` and
 * release our reference.  `body_len` is for the access log. */
void api_send(brt_api_request *req, unsigned int status, struct MHD_Response *resp, uint64_t body_len);

/* An empty response (Content-Length: 0). */
struct MHD_Response *api_response_empty(void);

/* A JSON response of `len` bytes at `json`; `copy` 1 to copy, 0 if `json`
 * outlives the response (a constant). */
struct MHD_Response *api_response_json(const char *json, size_t len, int copy);

/* Steps named by the route table (route.c).  Each returns 0 or a BRT_E*
 * code for the error table. */
int api_base(brt_api_request *req);

/* blobs.c */
int api_blob_get(brt_api_request *req);
int api_blob_delete(brt_api_request *req);

/* uploads.c */
int api_upload_post_begin(brt_api_request *req);
int api_upload_post_end(brt_api_request *req);
int api_upload_data_begin(brt_api_request *req);
int api_upload_data_end(brt_api_request *req);
int api_upload_body(brt_api_request *req, const char *data, size_t len);
int api_upload_status(brt_api_request *req);
int api_upload_cancel(brt_api_request *req);
/* Release the upload (and its data when nothing can come back to it). */
void api_upload_cleanup(brt_api_request *req);

/* manifests.c */
int api_manifest_get(brt_api_request *req);
int api_manifest_put_begin(brt_api_request *req);
int api_manifest_put_body(brt_api_request *req, const char *data, size_t len);
int api_manifest_put_end(brt_api_request *req);
int api_manifest_delete(brt_api_request *req);

/* token.c */
int api_token_begin(brt_api_request *req);
int api_token_body(brt_api_request *req, const char *data, size_t len);
int api_token_end(brt_api_request *req);
void api_token_cleanup(brt_api_request *req);

/* lists.c */
int api_tags_list(brt_api_request *req);
int api_catalog(brt_api_request *req);
/* GET /v2/_berth/usage: the caller's account's usage and quota. */
int api_usage(brt_api_request *req);
int api_referrers(brt_api_request *req);

#endif
