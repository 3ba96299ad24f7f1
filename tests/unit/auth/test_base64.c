/* Tests for auth/base64: the RFC 4648 vectors in both variants, round
 * trips against OpenSSL's encoder (an independent reference), and the
 * property that matters for credentials: a text is accepted only if it is
 * the canonical encoding of what it decodes to.  That property is checked
 * exhaustively over every short text made of the alphabet and its
 * neighbours, and over every one-byte change, cut and extension of the
 * encodings of many byte strings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth/base64.h"
#include "check.h"
#include "common/error.h"

static const brt_base64_variant variants[] = {BRT_BASE64_STD, BRT_BASE64_URL};

/* Every byte value a text might hold that is worth trying: both
 * alphabets, padding, and the characters around them. */
static const char candidates[] = "ABCDYZabyz0189+/-_=.~ \t\r\n!@*%:;,\"\\\x7f\x80\xff";

static int decode_str(size_t *n, unsigned char *out, size_t cap, const char *s, brt_base64_variant v)
{
	return brt_base64_decode(n, out, cap, s, strlen(s), v);
}

/* Accepted only if canonical: decode, and if that succeeds, the encoding
 * of the bytes must be the very text.  Returns 1 when the property holds. */
static int canonical_only(const char *text, size_t len, brt_base64_variant v)
{
	unsigned char out[64];
	char again[128];
	size_t n = 0;
	int error = brt_base64_decode(&n, out, sizeof(out), text, len, v);

	if (error != 0) {
		if (error != BRT_EINVALID && error != BRT_ETOOBIG)
			return 0;
		return 1;
	}
	if (n > sizeof(out) || brt_base64_encoded_len(n, v) != len)
		return 0;
	brt_base64_encode(again, out, n, v);
	return memcmp(again, text, len) == 0;
}

static void test_vectors(void)
{
	static const struct {
		const char *plain, *std, *url;
	} vectors[] = {
		{"", "", ""},
		{"f", "Zg==", "Zg"},
		{"fo", "Zm8=", "Zm8"},
		{"foo", "Zm9v", "Zm9v"},
		{"foob", "Zm9vYg==", "Zm9vYg"},
		{"fooba", "Zm9vYmE=", "Zm9vYmE"},
		{"foobar", "Zm9vYmFy", "Zm9vYmFy"},
		{"\xfb\xff\xbf", "+/+/", "-_-_"},
		{"KEY:abc", "S0VZOmFiYw==", "S0VZOmFiYw"},
	};
	unsigned char out[32];
	char enc[32];
	size_t n;

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		size_t plen = strlen(vectors[i].plain);

		CHECK_EQ_INT(brt_base64_encode(enc, (const unsigned char *)vectors[i].plain, plen,
					       BRT_BASE64_STD),
			     strlen(vectors[i].std));
		CHECK_EQ_STR(enc, vectors[i].std);
		CHECK_EQ_INT(brt_base64_encode(enc, (const unsigned char *)vectors[i].plain, plen,
					       BRT_BASE64_URL),
			     strlen(vectors[i].url));
		CHECK_EQ_STR(enc, vectors[i].url);
		n = 99;
		CHECK_EQ_INT(decode_str(&n, out, sizeof(out), vectors[i].std, BRT_BASE64_STD), 0);
		CHECK(n == plen && memcmp(out, vectors[i].plain, plen) == 0);
		n = 99;
		CHECK_EQ_INT(decode_str(&n, out, sizeof(out), vectors[i].url, BRT_BASE64_URL), 0);
		CHECK(n == plen && memcmp(out, vectors[i].plain, plen) == 0);
	}
}

/* The cases the canonical rule exists for, by name. */
static void test_noncanonical(void)
{
	static const char *const bad_std[] = {
		"Zh==",     "Zv==",  "Zm9=",  "Zm+=",   "S0VZOmFiYx==", "S0VZOmFiY2R=", /* non-zero trailing
											   bits */
		"Zg",       "Zg=",   "Zg===", "Zm8",    "Zm8==",        "Zm9v=",        "====",
		"Z===",                                                          /* padding wrong */
		"Zg==Zg==", "Z=g=",  "=Zg=",                                     /* padding inside */
		"Zm9v\n",   " Zm9v", "Zm 9v", "Zm9\0v", "-_-_",         "Zm9v.", /* other characters */
	};
	static const char *const bad_url[] = {
		"Zh",   "Zv",    "Zm9",    "Zm-",   "S0VZOmFiYx", "S0VZOmFiY2R", /* non-zero trailing bits */
		"Zg==", "Zg=",   "Zm8=",   "Z",     "Zm9vY", /* padding, a lone character */
		"+/+/", "Zm9v ", "Zm\t9v", "Zm9v.",          /* other characters */
	};
	unsigned char out[32];
	size_t n;

	for (size_t i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++) {
		n = 99;
		if (decode_str(&n, out, sizeof(out), bad_std[i], BRT_BASE64_STD) != BRT_EINVALID)
			fprintf(stderr, "standard base64 accepted: \"%s\"\n", bad_std[i]);
		CHECK_EQ_INT(decode_str(&n, out, sizeof(out), bad_std[i], BRT_BASE64_STD), BRT_EINVALID);
		CHECK_EQ_INT(n, 0);
	}
	/* An embedded NUL inside the given length is a character too. */
	CHECK_EQ_INT(brt_base64_decode(&n, out, sizeof(out), "Zm9\0", 4, BRT_BASE64_STD), BRT_EINVALID);
	for (size_t i = 0; i < sizeof(bad_url) / sizeof(bad_url[0]); i++) {
		n = 99;
		if (decode_str(&n, out, sizeof(out), bad_url[i], BRT_BASE64_URL) != BRT_EINVALID)
			fprintf(stderr, "base64url accepted: \"%s\"\n", bad_url[i]);
		CHECK_EQ_INT(decode_str(&n, out, sizeof(out), bad_url[i], BRT_BASE64_URL), BRT_EINVALID);
		CHECK_EQ_INT(n, 0);
	}
}

/* Every text of up to 4 characters drawn from `candidates`, in both
 * variants: accepted exactly when canonical (about 2.5 million texts). */
static void test_exhaustive_short(void)
{
	const size_t k = sizeof(candidates) - 1;
	size_t failures = 0, accepted = 0;
	char text[4];

	for (size_t len = 0; len <= 4; len++) {
		size_t total = 1;

		for (size_t i = 0; i < len; i++)
			total *= k;
		for (size_t code = 0; code < total; code++) {
			size_t c = code;

			for (size_t i = 0; i < len; i++, c /= k)
				text[i] = candidates[c % k];
			for (size_t v = 0; v < 2; v++) {
				unsigned char out[8];
				size_t n;

				if (!canonical_only(text, len, variants[v])) {
					if (failures++ < 5)
						fprintf(stderr, "not canonical-only: \"%.*s\"\n", (int)len,
							text);
				}
				if (brt_base64_decode(&n, out, sizeof(out), text, len, variants[v]) == 0)
					accepted++;
			}
		}
	}
	CHECK_EQ_INT(failures, 0);
	/* Something was accepted, so the loop did test acceptance. */
	CHECK(accepted > 1000);
}

/* Encodings of many byte strings: they round-trip, agree with OpenSSL,
 * and every one-byte change, cut or extension of them is either refused
 * or itself canonical. */
static void test_mutations(void)
{
	size_t failures = 0;
	uint32_t seed = 12345;

	for (size_t len = 0; len <= 40; len++) {
		for (size_t round = 0; round < 4; round++) {
			unsigned char plain[40], out[64];
			char enc[64], ref[64], text[64];
			size_t n = 0, elen;

			for (size_t i = 0; i < len; i++) {
				seed = seed * 1103515245u + 12345u;
				plain[i] = round == 0 ? 0 : round == 1 ? 0xff : (unsigned char)(seed >> 16);
			}
			/* OpenSSL's encoder is the reference for the standard form. */
			EVP_EncodeBlock((unsigned char *)ref, plain, (int)len);
			for (size_t v = 0; v < 2; v++) {
				elen = brt_base64_encode(enc, plain, len, variants[v]);
				CHECK_EQ_INT(elen, brt_base64_encoded_len(len, variants[v]));
				if (variants[v] == BRT_BASE64_STD)
					CHECK_EQ_STR(enc, ref);
				CHECK_EQ_INT(brt_base64_decode(&n, out, sizeof(out), enc, elen, variants[v]),
					     0);
				CHECK(n == len && memcmp(out, plain, len) == 0);
				CHECK(brt_base64_decoded_max(elen) >= len);
				/* Too small an output buffer: refused, nothing overrun. */
				if (len > 0)
					CHECK_EQ_INT(brt_base64_decode(&n, out, len - 1, enc, elen,
								       variants[v]),
						     BRT_ETOOBIG);
				for (size_t pos = 0; pos < elen; pos++) {
					for (unsigned int b = 0; b < 256; b++) {
						memcpy(text, enc, elen);
						text[pos] = (char)b;
						failures += !canonical_only(text, elen, variants[v]);
					}
				}
				for (size_t cut = 0; cut < elen; cut++)
					failures += !canonical_only(enc, cut, variants[v]);
				for (unsigned int b = 0; b < 256 && elen + 1 < sizeof(text); b++) {
					memcpy(text, enc, elen);
					text[elen] = (char)b;
					failures += !canonical_only(text, elen + 1, variants[v]);
				}
			}
		}
	}
	CHECK_EQ_INT(failures, 0);
}

int main(void)
{
	test_vectors();
	test_noncanonical();
	test_exhaustive_short();
	test_mutations();
	return check_exit("test_base64");
}
