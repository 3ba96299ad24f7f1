/* The S3 blob store driver: objects and upload data in a bucket of any
 * S3-compatible object store (Ceph RGW, MinIO, AWS S3), over libcurl with
 * its built-in AWS SigV4 signing.
 *
 * Committed objects live at "<prefix>blobs/<key>".  An upload is one
 * multipart upload at its final home's staging name: parts of exactly
 * `part_size` bytes are sent as they fill, their numbers and ETags kept in
 * the session's backend state (never rediscovered by listing), and a tail
 * shorter than a part is kept as a small "spill" object of the attempt
 * that wrote it.  Commit completes the multipart upload (the tail as the
 * last part): no server-side copy of the data. */
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
	int path_style;            /* 1: endpoint/bucket/key; 0: bucket.host/key */
	int verify_tls;            /* 1 (default): check the server's certificate */
	char ca_file[1024];        /* "" = the system's CAs */
	uint64_t part_size;        /* multipart part size, BRT_S3_PART_MIN..MAX */
	unsigned int retries;      /* attempts after the first on 5xx, timeouts, resets */
	unsigned int timeout_ms;   /* per request without progress (connect and stall) */
	int redirect;              /* presigned URL redirects for blob GETs (off by default) */
	unsigned int redirect_ttl; /* seconds a presigned URL stays valid */
} brt_s3_options;

/* Defaults: path style off, TLS verified, part_size 16 MiB, 3 retries,
 * 30 s stall timeout, redirect off with a 20 min TTL. */
void brt_s3_options_defaults(brt_s3_options *o);

/* Open the store: checks the options (BRT_EINVALID naming the problem)
 * and that the bucket answers (BRT_EIO otherwise). */
int brt_blobstore_s3_open(brt_blobstore **out, const brt_s3_options *options);

#endif
