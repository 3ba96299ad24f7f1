/* Fuzz target for oci/manifest.  The first byte picks a Content-Type and a
 * depth limit, the rest is the payload.  An accepted manifest must come
 * back with well-formed facts: known kind, parseable digests, counts that
 * match the kind. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/pool.h"
#include "oci/digest.h"
#include "oci/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[] = {
	NULL,
	"",
	"application/json",
	BRT_MT_OCI_MANIFEST,
	BRT_MT_OCI_INDEX,
	BRT_MT_DOCKER_MANIFEST,
	BRT_MT_DOCKER_LIST,
	BRT_MT_DOCKER_V1_SIGNED,
	"application/vnd.example.artifact+json",
	BRT_MT_OCI_MANIFEST "; charset=utf-8",
	"bad type",
};

static void check_digests(const char **digests, size_t count)
{
	brt_digest d;

	for (size_t i = 0; i < count; i++) {
		if (!digests[i] || brt_digest_parse(&d, digests[i], strlen(digests[i])) != 0)
			abort();
	}
}

static void check_info(const brt_manifest_info *info)
{
	brt_digest d;

	if (!info->media_type || info->media_type[0] == '\0')
		abort();
	if (info->kind == BRT_MANIFEST_IMAGE) {
		if (info->blob_count == 0 || info->child_count != 0 || !info->artifact_type)
			abort();
	} else if (info->kind == BRT_MANIFEST_INDEX) {
		if (info->blob_count != 0)
			abort();
	} else {
		abort();
	}
	check_digests(info->blobs, info->blob_count);
	check_digests(info->children, info->child_count);
	if (info->subject && brt_digest_parse(&d, info->subject, strlen(info->subject)) != 0)
		abort();
	if (info->annotations && info->annotations[0] != '{')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n_types = sizeof(content_types) / sizeof(content_types[0]);
	brt_manifest_info info;
	brt_pool pool;
	int rc;

	if (size < 1)
		return 0;
	brt_pool_init(&pool, 1 << 20);
	rc = brt_manifest_parse(&info, &pool, (const char *)data + 1, size - 1,
				content_types[data[0] % n_types], 1 + (data[0] >> 4) * 4);
	if (rc == 0)
		check_info(&info);
	else if (rc != BRT_EINVALID && rc != BRT_EUNSUPPORTED && rc != BRT_ENOMEM)
		abort();
	brt_pool_clear(&pool);
	return 0;
}
