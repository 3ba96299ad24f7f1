/* The S3 blob store driver: objects and upload data in a bucket of any
 * S3-compatible object store (Ceph RGW, MinIO, AWS S3), over libcurl with
 * its built-in AWS SigV4 signing.
 *
 * Committed objects live at "<prefix>blobs/<key>".  An upload is one
 * multipart upload at the key its commit publishes it under without a
 * copy ("blobs/u/<upload id>", the store's upload_key), created when the
 * first full part is there: parts of exactly `part_size` bytes are sent
 * as they fill, their ETags kept in the session's backend state (never
 * rediscovered by listing), and a tail shorter than a part is kept as a
 * small "spill" object of the attempt that wrote it, at
 * "<prefix>uploads/<upload id>/<16 hex>".  The next attempt reads the
 * spill back and continues from there.  Commit completes the multipart
 * upload with the spill as its last part (copied server-side); an upload
 * smaller than a part is published by a server-side copy of its spill.
 * Committing to another key than the upload's own costs a server-side
 * copy of the object.
 *
 * Memory: each open attempt holds one part buffer (up to `part_size`
 * bytes, grown as data arrives); a reader holds at most a few hundred KiB;
 * answers of the store are read up to 8 MiB.  Two racing attempts at one
 * offset upload the same part number; the ETag in the state makes the
 * commit refuse a part the loser overwrote (BRT_ENOTFOUND: the upload
 * cannot be finished), so a blob is never published with wrong bytes.
 * Parts a losing attempt added past the state's stay in the multipart
 * upload (S3 cannot delete a part) until the next attempt overwrites
 * them or commit drops them: completion takes only the parts listed. */
#ifndef BRT_STORAGE_S3_H
#define BRT_STORAGE_S3_H

#include <stdint.h>

#include "storage/blobstore.h"

/* Smallest part S3 accepts (every part but the last). */
#define BRT_S3_PART_MIN ((uint64_t)5 << 20)
/* Largest part S3 accepts. */
#define BRT_S3_PART_MAX ((uint64_t)5 << 30)
#define BRT_S3_PART_DEFAULT ((uint64_t)16 << 20)

typedef struct brt_s3_options {
	/* "http(s)://host[:port]"; "" = AWS: https://s3.<region>.amazonaws.com */
	char endpoint[512];
	char region[64]; /* signing region, e.g. "us-east-1" */
	char bucket[256];
	/* Key prefix inside the bucket ("" or ending in "/"), like
	 * distribution's rootdirectory. */
	char prefix[256];
	/* Credentials; empty: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
	 * AWS_SESSION_TOKEN from the environment. */
	char access_key[256];
	char secret_key[256];
	char session_token[2048];
	int path_style;          /* 1: endpoint/bucket/key; 0: bucket.host/key */
	int verify_tls;          /* 1 (default): check the server's certificate */
	char ca_file[1024];      /* "" = the system's CAs */
	uint64_t part_size;      /* multipart part size, BRT_S3_PART_MIN..MAX */
	unsigned int retries;    /* attempts after the first on 5xx, timeouts, resets */
	unsigned int timeout_ms; /* per request without progress (connect and stall) */
	/* Bytes the part buffers of all uploads in progress may hold
	 * together (each holds up to a part); past it a write fails with
	 * BRT_EUNAVAILABLE (503, retry) instead of the node running out of
	 * memory.  At least part_size. */
	uint64_t buffer_memory;
	int redirect;              /* presigned URL redirects for blob GETs (off by default) */
	unsigned int redirect_ttl; /* seconds a presigned URL stays valid */
} brt_s3_options;

/* Defaults: path style off, TLS verified, part_size 16 MiB, 3 retries,
 * 30 s stall timeout, redirect off with a 20 min TTL, 1 GiB of part
 * buffers. */
void brt_s3_options_defaults(brt_s3_options *o);

/* Open the store: checks the options (BRT_EINVALID naming the problem)
 * and that the bucket answers (BRT_EUNAVAILABLE if the store cannot be
 * reached or answers 5xx after the retries, BRT_EIO for other answers).
 * Empty credentials are taken from AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.  The caller owns the
 * store (brt_blobstore_free). */
int brt_blobstore_s3_open(brt_blobstore **out, const brt_s3_options *options);

/* The URL of `key`, a full key in the bucket (prefix included), path or
 * virtual-host style as `o` says, into `out` (`cap` bytes).
 * BRT_EINVALID for a bad endpoint, BRT_ETOOBIG if it does not fit. */
int brt_s3_object_url(char *out, size_t cap, const brt_s3_options *o, const char *key);

/* A SigV4 presigned GET URL of full key `key`, valid `ttl_seconds`
 * (1..604800) from `now` (seconds since the epoch), signed with the
 * credentials in `o` (the store's presign slot fills those in and uses the
 * current time).  BRT_EINVALID for a bad TTL or no credentials,
 * BRT_ETOOBIG if it does not fit. */
int brt_s3_presign_url(char *out, size_t cap, const brt_s3_options *o, const char *key,
		       unsigned int ttl_seconds, int64_t now);

#endif
