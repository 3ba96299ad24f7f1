/* Shared between the API's handler files: response helpers, error mapping
 * and the handler entry points.  Not for use outside src/api. */
#ifndef BRT_API_INTERNAL_H
#define BRT_API_INTERNAL_H

#include <stdint.h>

#include <microhttpd.h>

#include "common/clock.h"
#include "common/error.h"
#include "http/request.h"
#include "http/server.h"

/* OCI error codes */
#define E_BLOB_UNKNOWN "BLOB_UNKNOWN"
#define E_BLOB_UPLOAD_INVALID "BLOB_UPLOAD_INVALID"
#define E_BLOB_UPLOAD_UNKNOWN "BLOB_UPLOAD_UNKNOWN"
#define E_DIGEST_INVALID "DIGEST_INVALID"
#define E_MANIFEST_BLOB_UNKNOWN "MANIFEST_BLOB_UNKNOWN"
#define E_MANIFEST_INVALID "MANIFEST_INVALID"
#define E_MANIFEST_UNKNOWN "MANIFEST_UNKNOWN"
#define E_NAME_INVALID "NAME_INVALID"
#define E_NAME_UNKNOWN "NAME_UNKNOWN"
#define E_SIZE_INVALID "SIZE_INVALID"
#define E_UNAUTHORIZED "UNAUTHORIZED"
#define E_DENIED "DENIED"
#define E_UNSUPPORTED "UNSUPPORTED"
#define E_RANGE_INVALID "BLOB_UPLOAD_INVALID"
#define E_UNKNOWN "UNKNOWN"
#define E_TOOMANYREQUESTS "TOOMANYREQUESTS"

/* Remember an error to answer with; the first one recorded wins.  The
 * detail is printf-formatted.  Any body still coming is read and dropped. */
void api_fail(brt_request *req, unsigned int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* 429 TOOMANYREQUESTS for a BRT_ELIMIT (detail: brt_error_last), with
 * Retry-After: `seconds` (a constant string). */
void api_fail_retry_later(brt_request *req, const char *seconds);

/* api_fail for a BRT_E* code from a lower layer: maps the code to a status,
 * using `not_found_code` for BRT_ENOTFOUND; the detail is brt_error_last. */
void api_fail_error(brt_request *req, int error, const char *not_found_code);

/* 1 once an error is pending or a response was queued. */
int api_done(const brt_request *req);

/* Add the headers every response carries, queue `resp` with `status` and
 * release our reference.  `body_len` is for the access log. */
void api_send(brt_request *req, unsigned int status, struct MHD_Response *resp, uint64_t body_len);

/* An empty response (Content-Length: 0). */
struct MHD_Response *api_response_empty(void);

/* A JSON response of `len` bytes at `json`; `copy` 1 to copy, 0 if `json`
 * lives in the request pool. */
struct MHD_Response *api_response_json(const char *json, size_t len, int copy);


/* Fill `id` (33 bytes) with 32 random lower-case hex characters. */
int api_random_id(char *id);

/* handlers: blobs.c */
void api_blob_get(brt_request *req);
void api_blob_delete(brt_request *req);

/* handlers: uploads.c */
void api_upload_begin(brt_request *req);
void api_upload_body(brt_request *req, const char *data, size_t len);
void api_upload_end(brt_request *req);
void api_upload_status(brt_request *req);
void api_upload_cancel(brt_request *req);
void api_upload_cleanup(brt_request *req);

/* handlers: manifests.c */
void api_manifest_get(brt_request *req);
void api_manifest_put_begin(brt_request *req);
void api_manifest_put_body(brt_request *req, const char *data, size_t len);
void api_manifest_put_end(brt_request *req);
void api_manifest_delete(brt_request *req);

/* handlers: token.c */
void api_token_begin(brt_request *req);
void api_token_body(brt_request *req, const char *data, size_t len);
void api_token_end(brt_request *req);
void api_token_cleanup(brt_request *req);

/* api_fail for an authorisation failure: 401 with a challenge, 403, or
 * 400 NAME_INVALID. */
void api_fail_auth(brt_request *req, int error, int action, const char *repo);

/* handlers: lists.c */
void api_tags_list(brt_request *req);
void api_catalog(brt_request *req);
void api_referrers(brt_request *req);

#endif
