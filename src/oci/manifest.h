/* Parsing of pushed manifests (OCI image manifest and index, Docker schema2
 * manifest and manifest list, and any artifact manifest) into the facts the
 * registry needs: which blobs and child manifests must exist, the subject,
 * the artifact type and annotations for referrers.  The payload bytes are
 * never modified. */
#ifndef BRT_MANIFEST_H
#define BRT_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/pool.h"

#define BRT_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define BRT_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define BRT_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define BRT_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define BRT_MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

typedef enum brt_manifest_kind {
	BRT_MANIFEST_IMAGE = 1, /* has config + layers (OCI or Docker schema2) */
	BRT_MANIFEST_INDEX = 2, /* has manifests[] (OCI index, Docker list) */
} brt_manifest_kind;

typedef struct brt_manifest_info {
	brt_manifest_kind kind;
	/* Effective media type: the request's Content-Type when given (and not
	 * a generic JSON type), else the payload's mediaType field, else the
	 * OCI type implied by the shape. */
	const char *media_type;
	const char *artifact_type;  /* artifactType, else config.mediaType (images); NULL */
	const char *subject;        /* subject.digest, validated; NULL if none */
	const char *annotations;    /* compact JSON text of "annotations"; NULL if none */
	const char **blobs;         /* config then layers digests (images) */
	const uint64_t *blob_sizes; /* the size each of those descriptors claims */
	size_t blob_count;
	const char **children;       /* manifests[].digest (indexes) */
	const uint64_t *child_sizes; /* the size each of those descriptors claims */
	size_t child_count;
} brt_manifest_info;

/* Parse `payload` (`len` bytes) pushed with `content_type` (the request
 * header, may be NULL).  Everything in `out` is allocated from `pool`.
 * Rules: it must be a JSON object (nesting at most `max_depth` levels);
 * schemaVersion must be 2; if both the Content-Type and the mediaType field
 * are present and they differ, it is invalid; a mediaType field that is not
 * a string is invalid; every descriptor (config, layers[], manifests[],
 * subject) must be an object with a string mediaType, a valid digest
 * (sha256/sha512, see digest.h) and a non-negative integer size; an image
 * manifest needs a config descriptor, its layers may be empty or absent;
 * Docker schema1 (v1+prettyjws and v1+json) is refused as BRT_EUNSUPPORTED.
 * Returns BRT_EINVALID (detail in brt_error_last) when not acceptable. */
int brt_manifest_parse(brt_manifest_info *out, brt_pool *pool, const char *payload, size_t len,
		       const char *content_type, size_t max_depth);

/* 1 if `media_type` names a manifest type a client may Accept-negotiate
 * (any type is storable; this only tells image/index apart from others). */
int brt_manifest_type_is_index(const char *media_type);

#endif
