/* Lower-case hexadecimal, the one spelling Berth accepts and produces for
 * digests, account ids, key ids and upload ids. */
#ifndef BRT_HEX_H
#define BRT_HEX_H

#include <stddef.h>

/* 1 if the `len` bytes at `s` are all lower-case hex digits (0-9, a-f),
 * else 0.  An empty range is valid; the length check is the caller's. */
int brt_hex_lower_valid(const char *s, size_t len);

/* Write the `len` bytes at `in` as 2 * len lower-case hex characters plus
 * a NUL to `out`, which must hold 2 * len + 1 bytes. */
void brt_hex_encode(char *out, const unsigned char *in, size_t len);

/* The name callers used before the check moved here. */
static inline int brt_hex_valid(const char *s, size_t len)
{
	return brt_hex_lower_valid(s, len);
}

#endif
