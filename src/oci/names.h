/* Validation of client-supplied names: repository names, tags, references,
 * pagination parameters.  Pure functions over (pointer, length), no
 * allocation; safe on any input. */
#ifndef BRT_NAMES_H
#define BRT_NAMES_H

#include <stddef.h>
#include <stdint.h>

/* A repository name per the OCI grammar
 *   [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 * and at most BRT_NAME_MAX (255) bytes.  1 if valid, 0 if not. */
int brt_name_valid(const char *s, size_t len);

/* The tenant form `[a-f0-9]{32}/<component>(/<component>)*` where each
 * component is [a-z0-9]+([._-][a-z0-9]+)*, at most 255 bytes.  1/0. */
int brt_name_tenant_valid(const char *s, size_t len);

/* A tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.  1/0. */
int brt_tag_valid(const char *s, size_t len);

/* Parse the pagination `n` parameter: decimal digits only, no sign, no
 * leading '+' or spaces; values above `max` are clamped to `max`.
 * BRT_EINVALID on anything else (including empty). */
int brt_parse_page_size(size_t *out, const char *s, size_t max);

#endif
