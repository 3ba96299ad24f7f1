/* One HTTP request as it moves through the server: the libmicrohttpd
 * connection, a memory pool that dies with the request, the parsed route
 * and the state of a streamed body.  Shared by src/http (which owns its
 * life cycle) and src/api (which fills in the response). */
#ifndef BRT_REQUEST_H
#define BRT_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <microhttpd.h>

#include "common/pool.h"
#include "meta/meta.h"
#include "oci/digest.h"
#include "storage/blob_upload.h"

typedef struct brt_server brt_server;
struct brt_principal;

/* What one TLS connection's client certificate proved, worked out on the
 * connection's first request and reused by the rest (certificate checks
 * cost a signature verification). */
typedef struct brt_conn_state {
	int device_checked;
	int device_state; /* 0: no certificate, 1: a valid device, -1: refused */
	char device_account[33];
	char device_name[65];
} brt_conn_state;

typedef enum brt_method {
	BRT_GET = 1,
	BRT_HEAD,
	BRT_PUT,
	BRT_POST,
	BRT_PATCH,
	BRT_DELETE,
	BRT_OTHER_METHOD,
} brt_method;

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
} brt_endpoint;

typedef enum brt_body_kind {
	BRT_BODY_NONE = 0,
	BRT_BODY_BLOB,     /* streamed into req->upload */
	BRT_BODY_MANIFEST, /* collected into req->body (capped) */
	BRT_BODY_DISCARD,  /* an error is pending; the rest is read and dropped */
	BRT_BODY_FORM,     /* a form for the token endpoint (req->form) */
} brt_body_kind;

typedef struct brt_request {
	struct MHD_Connection *conn;
	brt_server *server;
	brt_pool pool;
	brt_method method;
	const char *method_name;
	const char *url;
	struct timespec started;
	unsigned int status;   /* sent status, for the access log */
	uint64_t bytes_out;    /* response body size, for the access log */
	int responded;
	brt_conn_state *conn_state;        /* NULL on plain HTTP */
	struct brt_principal *principal;   /* pool; set by src/auth */

	/* route */
	brt_endpoint endpoint;
	const char *repo;      /* pool; validated */
	const char *reference; /* pool; tag, digest or upload id (unvalidated) */

	/* body */
	brt_body_kind body_kind;
	unsigned int pending_status;      /* an error to answer once the body is read */
	const char *pending_code;
	const char *pending_detail;
	const char *pending_header;       /* extra header on the error, or NULL */
	const char *pending_header_value;
	uint64_t discarded;
	brt_blob_upload *upload;
	brt_upload *session;        /* pool; the upload row being extended */
	int monolithic;             /* POST ?digest=: no session row */
	int mount;                  /* POST ?mount=: link req->digest from mount_from */
	const char *mount_from;     /* ?from= when a valid name, else NULL (borrowed) */
	brt_digest digest;          /* the digest the client named, if any */
	struct brt_token_form *form; /* pool; token endpoint POST */
	unsigned char *body;        /* manifest bytes (malloc, capped; see brt_request_body_append) */
	size_t body_len, body_cap;
	size_t body_charged;        /* bytes of body_cap charged to the server's body budget */

	struct brt_guard_conn *guard_conn; /* the connection's entry in the guard */
} brt_request;

/* A request header or query argument, or NULL.  Borrowed from libmicrohttpd
 * for the life of the request. */
const char *brt_request_header(brt_request *req, const char *name);
const char *brt_request_query(brt_request *req, const char *name);

/* Append `len` bytes of body to req->body, which grows up to `max` bytes.
 * Its memory is charged to the server-wide budget for bodies held in
 * memory (http.body_memory_limit), so that stalled uploads cannot pin
 * memory without bound whatever the number of connections.  BRT_ETOOBIG
 * past `max`; BRT_ELIMIT when the budget is spent, a transient condition
 * worth a retry; BRT_ENOMEM if memory is.  Detail in brt_error_last. */
int brt_request_body_append(brt_request *req, const void *data, size_t len, size_t max);

/* Free req->body and give its memory back to the budget.  Safe to call
 * more than once. */
void brt_request_body_free(brt_request *req);

#endif
