/* Query-string parameters (see query.h).  Each value is checked once here
 * with the same validators the rest of the registry uses (oci/names,
 * oci/digest), so a parameter means the same everywhere. */
#include "api/query.h"

#include <string.h>

#include "common/error.h"
#include "oci/names.h"

int brt_query_page(size_t *n_out, const char **last_out, const char *n, const char *last, size_t page_max)
{
	size_t count = page_max;

	/* Outputs are the defaults unless everything is acceptable. */
	*n_out = page_max;
	*last_out = NULL;
	if (n && brt_parse_page_size(&count, n, page_max) < 0)
		return brt_error_set(BRT_EINVALID, "n must be a non-negative integer");
	if (last && strnlen(last, BRT_QUERY_LAST_MAX + 1) > BRT_QUERY_LAST_MAX)
		return brt_error_set(BRT_EINVALID, "last is too long");
	*n_out = count;
	*last_out = last && *last ? last : NULL;
	return 0;
}

static int digest_param(brt_digest *out, const char *value, const char *name)
{
	if (!value || !*value)
		return brt_error_set(BRT_EINVALID, "the %s parameter is required", name);
	return brt_digest_parse(out, value, strlen(value));
}

int brt_query_upload_post(brt_upload_query *out, const char *digest, const char *mount, const char *from)
{
	int error;

	memset(out, 0, sizeof(*out));
	if (mount) {
		if ((error = digest_param(&out->digest, mount, "mount")) < 0)
			return error;
		out->kind = BRT_UPLOAD_START_MOUNT;
		out->from = from && brt_name_valid(from, strlen(from)) ? from : NULL;
		return 0;
	}
	if (!digest) {
		out->kind = BRT_UPLOAD_START_SESSION;
		return 0;
	}
	if ((error = digest_param(&out->digest, digest, "digest")) < 0)
		return error;
	out->kind = BRT_UPLOAD_START_MONOLITHIC;
	return 0;
}

int brt_query_upload_put(brt_digest *out, const char *digest)
{
	return digest_param(out, digest, "digest");
}
