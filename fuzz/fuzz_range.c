/* Fuzz target for oci/range.  The first 8 bytes choose the object size
 * (big-endian), the rest is the header text; whatever is accepted must
 * describe bytes inside the object, and Content-Range must keep A <= B. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "oci/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t size_from(const uint8_t *data, size_t size)
{
	uint64_t v = 0;

	for (size_t i = 0; i < 8 && i < size; i++)
		v = (v << 8) | data[i];
	return v;
}

static void check_range(const char *header, uint64_t object_size)
{
	uint64_t start = 0, len = 0;
	int rc = brt_parse_range(&start, &len, header, object_size);

	if (rc == 0 && (len == 0 || start >= object_size || len > object_size - start))
		abort();
	if (rc != 0 && rc != BRT_EINVALID && rc != BRT_ERANGE)
		abort();
}

static void check_content_range(const char *header)
{
	uint64_t start = 0, end = 0;
	int rc = brt_parse_content_range(&start, &end, header);

	if (rc == 0 && start > end)
		abort();
	if (rc != 0 && rc != BRT_EINVALID)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t skip = size < 8 ? size : 8;
	uint64_t object_size = size_from(data, size);
	char *header = malloc(size - skip + 1);

	if (!header)
		return 0;
	memcpy(header, data + skip, size - skip);
	header[size - skip] = '\0';
	check_range(header, object_size);
	check_range(header, object_size & 0xffff); /* small objects too */
	check_content_range(header);
	free(header);
	return 0;
}
