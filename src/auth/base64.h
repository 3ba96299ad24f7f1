/* Strict base64 decoding of client credentials.  Only the canonical
 * encoding of a byte string is accepted: the exact alphabet of the
 * variant, padding exactly where (and only where) the variant requires
 * it, and zero in the unused low bits of the last character.  So every
 * accepted text re-encodes to exactly itself, and two different
 * credential strings never stand for the same bytes (anything keyed on
 * the string, such as caches, deny lists and audit logs, stays sound). */
#ifndef BRT_BASE64_H
#define BRT_BASE64_H

#include <stddef.h>

typedef enum brt_base64_variant {
	BRT_BASE64_STD = 1, /* RFC 4648 section 4: A-Z a-z 0-9 + /, '=' padded to 4 */
	BRT_BASE64_URL = 2, /* RFC 4648 section 5 without padding (JWT, RFC 7515) */
} brt_base64_variant;

/* The decoded size of `len` characters of `variant` text (an upper bound
 * for text that turns out to be invalid). */
size_t brt_base64_decoded_max(size_t len);

/* Decode the `len` characters at `in` into `out` (`cap` bytes) and set
 * *len_out to the number of bytes written.  Nothing is read past
 * in[len - 1]; `out` is written only up to *len_out.  BRT_EINVALID (detail
 * in brt_error_last) for a text that is not the canonical encoding of
 * anything; BRT_ETOOBIG when the bytes would not fit in `cap`. */
int brt_base64_decode(size_t *len_out, unsigned char *out, size_t cap, const char *in, size_t len,
		      brt_base64_variant variant);

/* Encode `len` bytes canonically into `out` (brt_base64_encoded_len(len,
 * variant) + 1 bytes, NUL-terminated); returns the length written. */
size_t brt_base64_encode(char *out, const unsigned char *in, size_t len, brt_base64_variant variant);

/* Characters brt_base64_encode writes for `len` bytes (without the NUL). */
size_t brt_base64_encoded_len(size_t len, brt_base64_variant variant);

#endif
