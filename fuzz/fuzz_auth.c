/* Fuzz target for the authentication parsers: the Authorization header
 * splitter, the access-key parser, the scope parser and token
 * verification.  Tokens are tried three ways: the raw input, the input as
 * the payload segment of a token signed here with the target's secret, and
 * the input as payload JSON so signed; without the last two, the fuzzer
 * would never get past the HMAC to the claims code.  Beyond memory safety
 * it checks what the headers promise, so a wrong answer aborts: among
 * them, that every base64 text accepted is the canonical encoding of its
 * bytes (one spelling per credential). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "auth/auth.h"
#include "auth/keys.h"
#include "auth/token.h"
#include "common/error.h"
#include "common/pool.h"
#include "oci/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seed corpus's token was signed with these (see fuzz/corpus). */
#define FUZZ_SERVICE "berth"
#define FUZZ_NOW INT64_C(1767225600)
static const unsigned char fuzz_secret[BRT_TOKEN_SECRET_LEN] = "berth-fuzz-secret-0123456789abc";

/* {"alg":"HS256","typ":"JWT"} in base64url. */
#define FUZZ_HEADER_B64 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

static size_t b64url(char *out, const void *in, size_t len);

/* 1 if the `len` characters at `s` are the canonical encoding of the bytes
 * OpenSSL's lenient decoder reads from them (standard alphabet with
 * padding when `url` is 0, base64url without when 1).  OpenSSL is the
 * independent reference here: it ignores unused bits, so any text it
 * reads differently from its own encoding is non-canonical. */
static int canonical(const char *s, size_t len, int url)
{
	size_t padded = len, n;
	unsigned char *text = malloc(len + 4), *bytes = malloc(len + 4);
	char *again = malloc(len + 8);
	int decoded, same = 0;

	if (!text || !bytes || !again)
		goto done;
	memcpy(text, s, len);
	for (size_t i = 0; url && i < len; i++)
		text[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i] == '+' || s[i] == '/' ? '!' : s[i];
	while (url && padded % 4)
		text[padded++] = '=';
	decoded = EVP_DecodeBlock(bytes, text, (int)padded);
	if (decoded < 0)
		goto done;
	n = (size_t)decoded;
	for (size_t i = padded; i > 0 && n > 0 && text[i - 1] == '='; i--)
		n--;
	if (url) {
		same = b64url(again, bytes, n) == len && memcmp(again, s, len) == 0;
	} else {
		int m = EVP_EncodeBlock((unsigned char *)again, bytes, (int)n);
		same = m >= 0 && (size_t)m == len && memcmp(again, s, len) == 0;
	}
done:
	free(text);
	free(bytes);
	free(again);
	return same;
}

static int is_lower_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static void check_header(const char *value)
{
	/* Two caps: a small one that long credentials overflow, and the
	 * server's.  Buffers are exactly `cap` so ASan sees any overrun. */
	static const size_t caps[] = {1, 80, BRT_TOKEN_MAX_LEN + 1};

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		char *out = malloc(caps[i]);
		brt_credential_kind kind = 0;
		int error;

		if (!out)
			return;
		error = brt_auth_parse_header(&kind, out, caps[i], value);
		if (error != 0 && error != BRT_EUNAUTHORIZED)
			abort();
		if (error == 0) {
			size_t len = strnlen(out, caps[i]);
			/* NUL-terminated within the cap, never empty for Bearer. */
			if (len >= caps[i])
				abort();
			if (kind != BRT_CREDENTIAL_KEY && kind != BRT_CREDENTIAL_TOKEN)
				abort();
			if (strncasecmp(value, "Bearer ", 7) == 0) {
				/* The bearer credential is the rest of the value,
				 * after any further spaces (RFC 7235 allows several). */
				if (len == 0 || strcmp(out, value + 7 + strspn(value + 7, " ")) != 0)
					abort();
				if ((kind == BRT_CREDENTIAL_KEY) != (strncmp(out, "brt_", 4) == 0))
					abort();
			} else if (strncasecmp(value, "Basic ", 6) != 0 || kind != BRT_CREDENTIAL_KEY) {
				abort();
			} else {
				/* One spelling per credential: the base64 (without the
				 * spaces around it) is canonical. */
				const char *b = value + 6;
				size_t blen;
				while (*b == ' ')
					b++;
				blen = strlen(b);
				while (blen > 0 && b[blen - 1] == ' ')
					blen--;
				if (!canonical(b, blen, 0))
					abort();
			}
		}
		free(out);
	}
}

static void check_key(const char *s, size_t len)
{
	char id[BRT_KEY_ID_LEN + 1];
	unsigned char hash[BRT_KEY_HASH_LEN], expected[SHA256_DIGEST_LENGTH];
	int error = brt_key_parse(id, hash, s, len);

	if (error != 0 && error != BRT_EINVALID)
		abort();
	if (error == 0) {
		if (len != BRT_ACCESS_KEY_LEN || memcmp(s, "brt_", 4) != 0 || !is_lower_hex(s + 4, 64))
			abort();
		if (strlen(id) != BRT_KEY_ID_LEN || memcmp(id, s + 4, BRT_KEY_ID_LEN) != 0)
			abort();
		SHA256((const unsigned char *)s + 4 + BRT_KEY_ID_LEN, BRT_KEY_SECRET_LEN, expected);
		if (memcmp(hash, expected, BRT_KEY_HASH_LEN) != 0)
			abort();
	}
}

static void check_scope(const char *s)
{
	brt_pool pool;
	const char *repo = NULL;
	unsigned int actions = 0;
	int catalog = 0, error;

	brt_pool_init(&pool, 1u << 16);
	error = brt_scope_parse(&repo, &actions, &catalog, &pool, s);
	if (error != 0 && error != BRT_EINVALID && error != BRT_ENOMEM)
		abort();
	if (error == 0) {
		if (catalog) {
			if (repo || strcmp(s, "registry:catalog:*") != 0)
				abort();
		} else {
			size_t n;
			if (!repo || strncmp(s, "repository:", 11) != 0)
				abort();
			n = strlen(repo);
			if (!brt_name_valid(repo, n) || strncmp(s + 11, repo, n) != 0 || s[11 + n] != ':')
				abort();
			if (actions & ~(unsigned int)(BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE))
				abort();
		}
	} else if (repo || catalog) {
		abort();
	}
	brt_pool_clear(&pool);
}

static void check_claims(const brt_token_claims *c)
{
	if (!memchr(c->subject, '\0', sizeof(c->subject)) || !memchr(c->account, '\0', sizeof(c->account)))
		abort();
	if (c->expires_at <= FUZZ_NOW || c->grant_count > BRT_TOKEN_MAX_GRANTS)
		abort();
	if (c->grant_count && !c->grants)
		abort();
	for (size_t i = 0; i < c->grant_count; i++) {
		if (!c->grants[i].repo)
			abort();
		if (c->grants[i].actions & ~(unsigned int)(BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE))
			abort();
		(void)strlen(c->grants[i].repo);
	}
}

static void check_token(const char *token, size_t len)
{
	brt_token_claims claims;
	brt_pool pool;
	int error;

	brt_pool_init(&pool, 1u << 20);
	error = brt_token_verify(&claims, &pool, fuzz_secret, FUZZ_SERVICE, token, len, FUZZ_NOW);
	if (error != 0 && error != BRT_EUNAUTHORIZED && error != BRT_ENOMEM)
		abort();
	if (error == 0) {
		/* Accepted: three segments, each canonical base64url. */
		const char *dot1 = memchr(token, '.', len), *dot2;
		if (!dot1 || !(dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))))
			abort();
		if (!canonical(token, (size_t)(dot1 - token), 1) ||
		    !canonical(dot1 + 1, (size_t)(dot2 - dot1 - 1), 1) ||
		    !canonical(dot2 + 1, len - (size_t)(dot2 + 1 - token), 1))
			abort();
		check_claims(&claims);
	}
	brt_pool_clear(&pool);
}

/* base64url without padding of `len` bytes into `out` (4 * (len / 3 + 1)
 * + 1 bytes); returns the length. */
static size_t b64url(char *out, const void *in, size_t len)
{
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	size_t m = n > 0 ? (size_t)n : 0;

	while (m > 0 && out[m - 1] == '=')
		m--;
	for (size_t i = 0; i < m; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	out[m] = '\0';
	return m;
}

/* Verify "<header>.<segment>.<our HMAC of both>". */
static void check_signed_segment(const char *segment, size_t len)
{
	size_t hlen = sizeof(FUZZ_HEADER_B64) - 1, total;
	unsigned char mac[32];
	unsigned int mac_len = 0;
	char signature[48], *token;

	if (len > BRT_TOKEN_MAX_LEN)
		return;
	total = hlen + 1 + len + 1 + 43;
	if (!(token = malloc(total)))
		return;
	memcpy(token, FUZZ_HEADER_B64 ".", hlen + 1);
	memcpy(token + hlen + 1, segment, len);
	HMAC(EVP_sha256(), fuzz_secret, BRT_TOKEN_SECRET_LEN, (const unsigned char *)token, hlen + 1 + len,
	     mac, &mac_len);
	token[hlen + 1 + len] = '.';
	/* Encoded apart: the encoder writes padding and a NUL past the 43. */
	b64url(signature, mac, mac_len);
	memcpy(token + hlen + 2 + len, signature, 43);
	/* Exactly `total` bytes and no NUL, so reads past them are caught. */
	check_token(token, total);
	free(token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char *copy, *segment;

	check_key(s, size);
	check_token(s, size);
	check_signed_segment(s, size);
	if (size <= BRT_TOKEN_MAX_LEN && (segment = malloc(4 * (size / 3 + 1) + 1)) != NULL) {
		size_t n = b64url(segment, data, size);
		check_signed_segment(segment, n);
		free(segment);
	}
	/* The string parsers see the input up to its first NUL. */
	if (!(copy = malloc(size + 1)))
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	check_header(copy);
	check_scope(copy);
	free(copy);
	return 0;
}
