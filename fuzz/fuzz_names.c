/* Fuzz target for oci/names: every validator on the raw input, and the
 * page-size parser on a NUL-terminated copy.  Beyond memory safety it
 * checks the properties the grammars promise, so a wrong answer aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oci/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name_properties(const char *s, size_t len)
{
	int name = brt_name_valid(s, len);
	int tenant = brt_name_tenant_valid(s, len);

	/* Valid names are short, lower case, and never start or end with a
	 * separator; every tenant name is also an OCI name. */
	if (name && (len == 0 || len > 255 || s[0] == '/' || s[len - 1] == '/'))
		abort();
	if (tenant && !name)
		abort();
	for (size_t i = 0; name && i < len; i++) {
		if (s[i] >= 'A' && s[i] <= 'Z')
			abort();
	}
}

static void check_tag_properties(const char *s, size_t len)
{
	if (brt_tag_valid(s, len) && (len == 0 || len > 128 || s[0] == '.' || s[0] == '-' ||
				      memchr(s, '/', len) || memchr(s, ':', len)))
		abort();
}

static void check_page_size(const char *s)
{
	static const size_t maxes[] = {0, 1, 100, 1000, SIZE_MAX};

	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		size_t n = 0;
		if (brt_parse_page_size(&n, s, maxes[i]) == 0 && (n > maxes[i] || s[0] == '\0'))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char *copy;

	check_name_properties(s, size);
	check_tag_properties(s, size);
	copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	check_page_size(copy);
	free(copy);
	return 0;
}
