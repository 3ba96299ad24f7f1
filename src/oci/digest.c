/* Digest parsing and the resumable SHA-256/SHA-512 hasher.  OpenSSL's
 * low-level SHA contexts are used because their fields (chaining words,
 * bit count, buffered block) are exactly what a portable saved state needs;
 * the serialised form is our own and independent of the struct layout. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "oci/digest.h"

#include <string.h>

#include "common/error.h"
#include "common/hex.h"

int brt_digest_parse(brt_digest *out, const char *s, size_t len)
{
	const char *colon;
	size_t alg_len, hex_len;

	if (!s || len == 0 || len > 1024)
		return brt_error_set(BRT_EINVALID, "digest is empty or too long");
	colon = memchr(s, ':', len);
	if (!colon || colon == s)
		return brt_error_set(BRT_EINVALID, "digest has no algorithm");
	alg_len = (size_t)(colon - s);
	hex_len = len - alg_len - 1;
	if (alg_len == 6 && memcmp(s, "sha256", 6) == 0) {
		if (hex_len != 64 || !brt_hex_lower_valid(colon + 1, hex_len))
			return brt_error_set(BRT_EINVALID,
					     "sha256 digest must have 64 lower-case hex characters");
		out->alg = BRT_DIGEST_SHA256;
	} else if (alg_len == 6 && memcmp(s, "sha512", 6) == 0) {
		if (hex_len != 128 || !brt_hex_lower_valid(colon + 1, hex_len))
			return brt_error_set(BRT_EINVALID,
					     "sha512 digest must have 128 lower-case hex characters");
		out->alg = BRT_DIGEST_SHA512;
	} else {
		/* algorithm: [a-z0-9]+([+._-][a-z0-9]+)*  encoded: [a-zA-Z0-9=_-]+ */
		int after_separator = 1;
		for (size_t i = 0; i < alg_len; i++) {
			char c = s[i];
			int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
			int separator = c == '+' || c == '.' || c == '_' || c == '-';
			if (!alnum && !(separator && !after_separator))
				return brt_error_set(BRT_EINVALID, "malformed digest algorithm");
			after_separator = separator;
		}
		if (after_separator)
			return brt_error_set(BRT_EINVALID, "malformed digest algorithm");
		if (hex_len == 0)
			return brt_error_set(BRT_EINVALID, "digest has no encoded part");
		for (size_t i = alg_len + 1; i < len; i++) {
			char c = s[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			      c == '=' || c == '_' || c == '-'))
				return brt_error_set(BRT_EINVALID, "malformed digest encoding");
		}
		return brt_error_set(BRT_EUNSUPPORTED, "unsupported digest algorithm");
	}
	memcpy(out->str, s, len);
	out->str[len] = '\0';
	out->len = len;
	return 0;
}

const char *brt_digest_hex(const brt_digest *d)
{
	return d->str + 7;
}

void brt_hasher_init(brt_hasher *h, brt_digest_alg alg)
{
	h->alg = alg;
	if (alg == BRT_DIGEST_SHA512)
		SHA512_Init(&h->ctx.sha512);
	else
		SHA256_Init(&h->ctx.sha256);
}

void brt_hasher_update(brt_hasher *h, const void *data, size_t len)
{
	if (h->alg == BRT_DIGEST_SHA512)
		SHA512_Update(&h->ctx.sha512, data, len);
	else
		SHA256_Update(&h->ctx.sha256, data, len);
}

void brt_hasher_final(brt_hasher *h, brt_digest *out)
{
	unsigned char md[SHA512_DIGEST_LENGTH];

	out->alg = h->alg;
	if (h->alg == BRT_DIGEST_SHA512) {
		SHA512_Final(md, &h->ctx.sha512);
		memcpy(out->str, "sha512:", 7);
		brt_hex_encode(out->str + 7, md, SHA512_DIGEST_LENGTH);
		out->len = 7 + 128;
	} else {
		SHA256_Final(md, &h->ctx.sha256);
		memcpy(out->str, "sha256:", 7);
		brt_hex_encode(out->str + 7, md, SHA256_DIGEST_LENGTH);
		out->len = 7 + 64;
	}
}

uint64_t brt_hasher_length(const brt_hasher *h)
{
	if (h->alg == BRT_DIGEST_SHA512)
		return h->ctx.sha512.Nl / 8 + ((h->ctx.sha512.Nh & 7) << 61);
	return (((uint64_t)h->ctx.sha256.Nh << 32) | h->ctx.sha256.Nl) / 8;
}

void brt_digest_of(brt_digest *out, brt_digest_alg alg, const void *data, size_t len)
{
	brt_hasher h;

	brt_hasher_init(&h, alg);
	brt_hasher_update(&h, data, len);
	brt_hasher_final(&h, out);
}

/* Saved state layout (all integers big-endian):
 *   byte 0      format version (1)
 *   byte 1      algorithm (brt_digest_alg)
 *   bytes 2-9   total length hashed, in bytes
 *   then        8 chaining words (4 bytes each for SHA-256, 8 for SHA-512)
 *   then        1 byte tail length, then the tail bytes (< one block) */
static unsigned char *put_be(unsigned char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--)
		*p++ = (unsigned char)(v >> (8 * i));
	return p;
}

static uint64_t get_be(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

size_t brt_hasher_save(const brt_hasher *h, unsigned char *buf)
{
	unsigned char *p = buf;
	uint64_t length = brt_hasher_length(h);

	*p++ = 1;
	*p++ = (unsigned char)h->alg;
	p = put_be(p, length, 8);
	if (h->alg == BRT_DIGEST_SHA512) {
		const SHA512_CTX *c = &h->ctx.sha512;
		for (int i = 0; i < 8; i++)
			p = put_be(p, c->h[i], 8);
		*p++ = (unsigned char)c->num;
		memcpy(p, c->u.p, c->num);
		p += c->num;
	} else {
		const SHA256_CTX *c = &h->ctx.sha256;
		for (int i = 0; i < 8; i++)
			p = put_be(p, c->h[i], 4);
		*p++ = (unsigned char)c->num;
		memcpy(p, c->data, c->num);
		p += c->num;
	}
	return (size_t)(p - buf);
}

int brt_hasher_load(brt_hasher *h, const unsigned char *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t length;
	size_t words, tail, block;

	if (len < 2 || buf[0] != 1 || (buf[1] != BRT_DIGEST_SHA256 && buf[1] != BRT_DIGEST_SHA512))
		return brt_error_set(BRT_EINVALID, "unknown hash state format");
	brt_hasher_init(h, (brt_digest_alg)buf[1]);
	words = h->alg == BRT_DIGEST_SHA512 ? 8 : 4;
	block = h->alg == BRT_DIGEST_SHA512 ? 128 : 64;
	if (len < 2 + 8 + 8 * words + 1)
		return brt_error_set(BRT_EINVALID, "truncated hash state");
	p += 2;
	length = get_be(p, 8);
	p += 8;
	if (length >= ((uint64_t)1 << 61))
		return brt_error_set(BRT_EINVALID, "hash state length out of range");
	if (h->alg == BRT_DIGEST_SHA512) {
		SHA512_CTX *c = &h->ctx.sha512;
		for (int i = 0; i < 8; i++, p += 8)
			c->h[i] = get_be(p, 8);
		tail = *p++;
		if (tail >= block || len != (size_t)(p - buf) + tail || length % block != tail)
			return brt_error_set(BRT_EINVALID, "corrupt hash state");
		memcpy(c->u.p, p, tail);
		c->num = (unsigned int)tail;
		c->Nl = length << 3;
		c->Nh = length >> 61;
	} else {
		SHA256_CTX *c = &h->ctx.sha256;
		for (int i = 0; i < 8; i++, p += 4)
			c->h[i] = (SHA_LONG)get_be(p, 4);
		tail = *p++;
		if (tail >= block || len != (size_t)(p - buf) + tail || length % block != tail)
			return brt_error_set(BRT_EINVALID, "corrupt hash state");
		memcpy(c->data, p, tail);
		c->num = (unsigned int)tail;
		c->Nl = (SHA_LONG)(length << 3);
		c->Nh = (SHA_LONG)(length >> 29);
	}
	return 0;
}
