/* Validation of repository names, tags and the pagination `n` parameter.
 * Each check is a single left-to-right scan over (pointer, length) with no
 * allocation and no regular-expression engine, so it is safe and cheap on
 * any client input, including bytes that are not text at all. */
#include "oci/names.h"

#include "common/error.h"
#include "common/hex.h"

#define BRT_NAME_MAX 255
#define BRT_TAG_MAX 128
#define TENANT_HEX_LEN 32

static int is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_tag_char(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
}

/* A separator run between two alphanumeric runs of an OCI name component:
 * ".", "_", "__" or one or more "-". */
static int oci_separator_valid(const char *s, size_t len)
{
	if (len == 1)
		return s[0] == '.' || s[0] == '_' || s[0] == '-';
	if (len == 2 && s[0] == '_' && s[1] == '_')
		return 1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '-')
			return 0;
	}
	return 1;
}

/* The tenant grammar is stricter: exactly one of ".", "_", "-". */
static int tenant_separator_valid(const char *s, size_t len)
{
	return len == 1 && (s[0] == '.' || s[0] == '_' || s[0] == '-');
}

/* One path component: alphanumeric runs joined by separator runs that
 * `separator_valid` accepts; it must start and end alphanumeric. */
static int component_valid(const char *s, size_t len, int (*separator_valid)(const char *, size_t))
{
	size_t i = 0, run;

	if (len == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
		return 0;
	while (i < len) {
		while (i < len && is_lower_alnum(s[i]))
			i++;
		if (i == len)
			break;
		/* Any other byte lands in the separator run and fails there. */
		run = i;
		while (i < len && !is_lower_alnum(s[i]))
			i++;
		if (!separator_valid(s + run, i - run))
			return 0;
	}
	return 1;
}

/* Every '/'-separated component of s[0..len) is valid; empty components
 * (leading, trailing or doubled '/') are not. */
static int path_valid(const char *s, size_t len, int (*separator_valid)(const char *, size_t))
{
	size_t start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '/')
			continue;
		if (!component_valid(s + start, i - start, separator_valid))
			return 0;
		start = i + 1;
	}
	return 1;
}

int brt_name_valid(const char *s, size_t len)
{
	if (!s || len == 0 || len > BRT_NAME_MAX)
		return 0;
	return path_valid(s, len, oci_separator_valid);
}

int brt_name_tenant_valid(const char *s, size_t len)
{
	if (!s || len <= TENANT_HEX_LEN + 1 || len > BRT_NAME_MAX)
		return 0;
	if (!brt_hex_lower_valid(s, TENANT_HEX_LEN))
		return 0;
	if (s[TENANT_HEX_LEN] != '/')
		return 0;
	return path_valid(s + TENANT_HEX_LEN + 1, len - TENANT_HEX_LEN - 1, tenant_separator_valid);
}

int brt_tag_valid(const char *s, size_t len)
{
	if (!s || len == 0 || len > BRT_TAG_MAX)
		return 0;
	if (s[0] == '.' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (!is_tag_char(s[i]))
			return 0;
	}
	return 1;
}

int brt_parse_page_size(size_t *out, const char *s, size_t max)
{
	size_t value = 0;
	int saturated = 0;

	if (!s || s[0] == '\0')
		return brt_error_set(BRT_EINVALID, "page size is empty");
	for (const char *p = s; *p; p++) {
		size_t digit;
		if (*p < '0' || *p > '9')
			return brt_error_set(BRT_EINVALID,
					     "page size must be a non-negative decimal integer");
		/* Keep scanning after saturating so "99…9x" is still rejected,
		 * but never multiply once past `max`: no overflow is possible. */
		if (saturated)
			continue;
		digit = (size_t)(*p - '0');
		if (digit > max || value > (max - digit) / 10) {
			saturated = 1;
			continue;
		}
		value = value * 10 + digit;
	}
	*out = saturated ? max : value;
	return 0;
}
