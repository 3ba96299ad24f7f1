/* Query-string parameters of the registry API as pure functions: what a
 * handler takes from ?n=&last= (listings) and ?digest= / ?mount=&from=
 * (uploads), decided without a request, so unit tests and the fuzz target
 * run the code the handlers use.  The values are the decoded parameters
 * (NULL when absent), as libmicrohttpd hands them over. */
#ifndef BRT_QUERY_H
#define BRT_QUERY_H

#include <stddef.h>

#include "oci/digest.h"

/* Longest `last` accepted for pagination. */
#define BRT_QUERY_LAST_MAX 512

/* Pagination of tags/list and _catalog.  *n_out is `n` (a non-negative
 * decimal integer, capped at `page_max`) or `page_max` when absent;
 * *last_out is `last` (borrowed) or NULL when absent or empty.
 * BRT_EINVALID (detail names the parameter) for a malformed n or a last
 * longer than BRT_QUERY_LAST_MAX; the outputs are then page_max and NULL. */
int brt_query_page(size_t *n_out, const char **last_out, const char *n, const char *last, size_t page_max);

typedef enum brt_upload_start {
	BRT_UPLOAD_START_SESSION = 1, /* no digest, no mount: open a session (202) */
	BRT_UPLOAD_START_MONOLITHIC,  /* ?digest=D: the whole blob is the body (201) */
	BRT_UPLOAD_START_MOUNT,       /* ?mount=D[&from=R]: link D from R, else open a session */
} brt_upload_start;

typedef struct brt_upload_query {
	brt_upload_start kind;
	brt_digest digest; /* MONOLITHIC and MOUNT: the parsed digest */
	const char *from;  /* MOUNT: the source repository (borrowed), NULL when absent or not a
			    * valid name (the mount then falls back to a session) */
} brt_upload_query;

/* The parameters of POST /v2/<name>/blobs/uploads/: mount wins over
 * digest.  For an empty or invalid digest or mount value (all 400
 * DIGEST_INVALID): BRT_EINVALID, or BRT_EUNSUPPORTED for a well-formed
 * digest of an algorithm not supported (as brt_digest_parse). */
int brt_query_upload_post(brt_upload_query *out, const char *digest, const char *mount, const char *from);

/* The required ?digest= of the PUT that finishes an upload.  BRT_EINVALID
 * when absent, empty or invalid; BRT_EUNSUPPORTED as above. */
int brt_query_upload_put(brt_digest *out, const char *digest);

#endif
