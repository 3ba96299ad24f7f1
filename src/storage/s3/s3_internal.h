/* What the files of the S3 driver share: the store, one request and its
 * answer (http.c), the answers' XML (xml.c), the backend state of an
 * upload (state.c) and SigV4 query signing (sign.c).  Private to
 * src/storage/s3. */
#ifndef BRT_STORAGE_S3_INTERNAL_H
#define BRT_STORAGE_S3_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <curl/curl.h>
#include <libxml/tree.h>

#include "common/dynbuf.h"
#include "storage/s3/s3.h"

/* Longest object key in the bucket: prefix, "uploads/<id>/<name>" or
 * "blobs/<key>". */
#define S3_KEY_MAX (256 + 16 + BRT_BLOB_KEY_MAX)
/* Longest URL: endpoint, bucket, encoded key (3 bytes a byte at worst)
 * and a query. */
#define S3_URL_MAX (512 + 256 + 3 * S3_KEY_MAX + 4096)
/* Longest ETag kept (quotes included); S3 and RGW send 34 or 36. */
#define S3_ETAG_MAX 80
/* Longest multipart upload id accepted from the server. */
#define S3_MPU_ID_MAX 512
/* Longest listing continuation token or marker accepted. */
#define S3_TOKEN_MAX 1024
/* Most parts of one multipart upload. */
#define S3_PARTS_MAX 10000
/* A spill object's name: 16 random hex characters. */
#define S3_SPILL_NAME_LEN 16
/* Largest answer body kept in memory (listings, errors, results). */
#define S3_RESPONSE_MAX ((size_t)8 << 20)
/* Idle easy handles (each with its live connections) kept per store. */
#define S3_IDLE_HANDLES 32

typedef struct s3_store {
	brt_blobstore base;
	brt_s3_options o; /* as opened, with the credentials resolved */
	char sigv4[128];  /* CURLOPT_AWS_SIGV4: "aws:amz:<region>:s3" */
	char token_header[2100];
	pthread_mutex_t lock; /* guards the idle handles */
	CURL *idle[S3_IDLE_HANDLES];
	size_t idle_count;
	pid_t pid; /* the process the idle handles belong to */
	/* Entries a listing page asks for (1000, the most S3 gives; tests
	 * lower it to page through small listings). */
	unsigned int list_page;
	_Atomic uint64_t buffered; /* bytes the writers' part buffers hold */
} s3_store;

/* ---------------------------------------------------------------- http.c */

/* Which failures a request is sent again after. */
enum s3_retry {
	/* Only failures that prove the server never saw the request. */
	S3_RETRY_CONNECT = 0,
	/* Also 5xx, timeouts and connections reset: the request is
	 * idempotent. */
	S3_RETRY_ALL = 1,
};

typedef struct s3_request {
	const char *method; /* "GET", "HEAD", "PUT", "POST", "DELETE" */
	const char *key;    /* full key in the bucket; NULL: the bucket */
	const char *query;  /* canonical query (sorted, encoded); NULL: none */
	const void *body;   /* PUT/POST body */
	size_t body_len;
	const char *copy_source; /* full key of a CopyObject/UploadPartCopy source */
	const char *copy_range;  /* "bytes=a-b" of the copy source */
	enum s3_retry retry;
	/* What the request does, for error details ("upload part 3 of ..."). */
	const char *what;
	/* Body into this buffer instead of memory of its own (a spill read):
	 * a longer body fails the request. */
	unsigned char *sink;
	size_t sink_cap;
} s3_request;

typedef struct s3_response {
	long status;
	brt_dynbuf body;
	size_t sink_len;
	char etag[S3_ETAG_MAX + 1];
	uint64_t length; /* Content-Length (of the object, for HEAD) */
	int64_t mtime_ms;
	char code[64]; /* S3 error code from an error body, "" if none */
	int attempts;  /* how many times the request was sent */
} s3_response;

void s3_response_init(s3_response *resp);
void s3_response_free(s3_response *resp);

/* Send a request (again after failures its `retry` allows, with
 * backoff) and take the answer.  0 when an answer came, whatever its
 * status (resp->status, resp->code); BRT_EUNAVAILABLE when none did
 * (connection refused or reset, timeouts) or a 5xx/429 persisted, BRT_EIO
 * for other transfer failures, with a detail naming the request. */
int s3_perform(s3_store *s3, const s3_request *req, s3_response *resp);

/* BRT_EUNAVAILABLE for a 5xx or 429 answer, else BRT_EIO, with a detail
 * naming the request and the answer (403: the credentials). */
int s3_fail(const s3_request *req, const s3_response *resp);

/* The URL of `key` (NULL: the bucket) with `query`.  BRT_ETOOBIG if
 * `cap` is too small; BRT_EINVALID for a bad endpoint. */
int s3_url(char *out, size_t cap, const brt_s3_options *o, const char *key, const char *query);

/* Append `in` percent-encoded as SigV4 wants it (unreserved characters
 * as they are; '/' kept when `keep_slash`). */
int s3_encode(brt_dynbuf *out, const char *in, int keep_slash);

/* A fresh easy handle of the store (or one kept idle), and its return. */
CURL *s3_handle_get(s3_store *s3);
void s3_handle_put(s3_store *s3, CURL *curl);
/* Options every request of the store sets (TLS, timeouts, signing). */
void s3_handle_setup(s3_store *s3, CURL *curl);
/* The headers every request sends; NULL on allocation failure. */
struct curl_slist *s3_base_headers(s3_store *s3);

/* Parse an RFC 1123 or ISO 8601 time; -1 if neither. */
int64_t s3_time_ms(const char *text);

/* Sleep before retry `attempt` (1 for the first). */
void s3_backoff(unsigned int attempt);

/* ----------------------------------------------------------------- xml.c */

/* Parse an answer body; NULL if it is not well-formed XML.  Never loads
 * anything from the network or expands external entities. */
xmlDoc *s3_xml_parse(const char *buf, size_t len);
/* The first element child of `parent` named `name` (any namespace). */
xmlNode *s3_xml_child(xmlNode *parent, const char *name);
/* The next element sibling of `node` named `name`. */
xmlNode *s3_xml_next(xmlNode *node, const char *name);
/* Whether `node` is an element named `name`. */
int s3_xml_is(const xmlNode *node, const char *name);
/* The text of the child `name` of `parent` into `out` (`cap` bytes);
 * -1 if absent or longer. */
int s3_xml_text(xmlNode *parent, const char *name, char *out, size_t cap);
/* The code of an <Error> body into `out`; "" if the body is no error. */
void s3_xml_error_code(const char *buf, size_t len, char *out, size_t cap);

/* --------------------------------------------------------------- state.c */

/* An upload's backend state: full parts of `part_size` bytes in a
 * multipart upload, then a spill object with the tail. */
typedef struct s3_state {
	uint64_t part_size;
	char mpu[S3_MPU_ID_MAX + 1];       /* "" while there are no parts */
	char spill[S3_SPILL_NAME_LEN + 1]; /* "" while there is no tail */
	uint64_t spill_len;                /* 1..part_size-1 with a spill */
	size_t parts;                      /* part n+1 has ETag etags[n] */
	char (*etags)[S3_ETAG_MAX + 1];
	size_t cap;
} s3_state;

/* Parse `len` bytes (0: an upload with no data, of part size
 * `part_size`).  BRT_EINVALID if malformed. */
int s3_state_parse(s3_state *out, const unsigned char *buf, size_t len, uint64_t part_size);
/* The bytes the state describes. */
uint64_t s3_state_size(const s3_state *st);
/* Serialise into `out` (reset first); BRT_ETOOBIG past
 * BRT_BACKEND_STATE_MAX. */
int s3_state_format(brt_dynbuf *out, const s3_state *st);
int s3_state_add_part(s3_state *st, const char *etag);
void s3_state_free(s3_state *st);
/* Whether `etag` / a multipart upload id may be kept in a state and
 * sent back in XML and a query. */
int s3_etag_valid(const char *etag);
int s3_mpu_id_valid(const char *id);

#endif
