/* Strict, canonical-only base64 (see base64.h).  OpenSSL's decoder is
 * lenient (it takes '=' and whitespace inside, and ignores the unused bits
 * of the last character), so decoding of client input is done here in one
 * left-to-right pass over a bounded (pointer, length) view. */
#include "auth/base64.h"

#include <stdint.h>

#include "common/error.h"

static const char std_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of `c` in `variant`, or -1. */
static int sextet(unsigned char c, brt_base64_variant variant)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (variant == BRT_BASE64_STD)
		return c == '+' ? 62 : c == '/' ? 63 : -1;
	return c == '-' ? 62 : c == '_' ? 63 : -1;
}

size_t brt_base64_decoded_max(size_t len)
{
	return len / 4 * 3 + (len % 4 * 3) / 4;
}

int brt_base64_decode(size_t *len_out, unsigned char *out, size_t cap, const char *in, size_t len,
		      brt_base64_variant variant)
{
	size_t data = len, pad = 0, need, n = 0;
	uint32_t acc = 0;
	unsigned int bits = 0;

	*len_out = 0;
	if (variant == BRT_BASE64_STD) {
		/* Padding to a multiple of 4, at most two '=', only at the end. */
		if (len % 4 != 0)
			return brt_error_set(BRT_EINVALID, "base64 length is not a multiple of 4");
		while (pad < 2 && data > 0 && in[data - 1] == '=') {
			data--;
			pad++;
		}
	}
	/* One character left over carries no whole byte; with padding the
	 * count of '=' must be exactly what the data length implies. */
	if (data % 4 == 1 || (variant == BRT_BASE64_STD && pad != (4 - data % 4) % 4))
		return brt_error_set(BRT_EINVALID, "base64 text has a wrong length or padding");
	need = brt_base64_decoded_max(data);
	if (need > cap)
		return brt_error_set(BRT_ETOOBIG, "base64 text decodes to more than %zu bytes", cap);
	for (size_t i = 0; i < data; i++) {
		int v = sextet((unsigned char)in[i], variant);

		if (v < 0)
			return brt_error_set(BRT_EINVALID, "invalid base64 character at %zu", i);
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* The 2 or 4 bits left over must be zero, or another text would
	 * stand for the same bytes. */
	if (acc != 0)
		return brt_error_set(BRT_EINVALID, "base64 text has non-zero trailing bits");
	*len_out = n;
	return 0;
}

size_t brt_base64_encoded_len(size_t len, brt_base64_variant variant)
{
	if (variant == BRT_BASE64_STD)
		return (len + 2) / 3 * 4;
	return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
}

size_t brt_base64_encode(char *out, const unsigned char *in, size_t len, brt_base64_variant variant)
{
	const char *alphabet = variant == BRT_BASE64_STD ? std_alphabet : url_alphabet;
	size_t i = 0, n = 0;

	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[n++] = alphabet[v >> 18];
		out[n++] = alphabet[(v >> 12) & 63];
		out[n++] = alphabet[(v >> 6) & 63];
		out[n++] = alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[n++] = alphabet[v >> 18];
		out[n++] = alphabet[(v >> 12) & 63];
		if (variant == BRT_BASE64_STD) {
			out[n++] = '=';
			out[n++] = '=';
		}
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[n++] = alphabet[v >> 18];
		out[n++] = alphabet[(v >> 12) & 63];
		out[n++] = alphabet[(v >> 6) & 63];
		if (variant == BRT_BASE64_STD)
			out[n++] = '=';
	}
	out[n] = '\0';
	return n;
}
