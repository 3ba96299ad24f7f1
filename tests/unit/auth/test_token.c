/* Tests for auth/token and the Authorization header parser in auth/auth:
 * bearer tokens round-trip through sign and verify and are refused when
 * tampered with, signed under another secret, meant for another service,
 * expired or malformed; tokens signed here with the right secret but odd
 * payloads check that verification trusts nothing but the signature; scope
 * parameters and header values are parsed as the auth spec says.  Base64
 * and HMAC for the hand-made inputs come from OpenSSL directly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth.h"
#include "auth/keys.h"
#include "auth/token.h"
#include "check.h"
#include "common/error.h"
#include "common/pool.h"

#define ACCOUNT "0123456789abcdef0123456789abcdef"
#define OTHER_ACCOUNT "fedcba9876543210fedcba9876543210"
#define SERVICE "containers.eu-west-1.example.com"
/* Token times are seconds since the epoch. */
#define NOW INT64_C(1767225600)
#define TTL 300u
#define POOL_CAP (1u << 20)
#define ALL_ACTIONS (BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE)

static const unsigned char secret[BRT_TOKEN_SECRET_LEN] = "0123456789abcdef0123456789abcde";
static const unsigned char other_secret[BRT_TOKEN_SECRET_LEN] = "0123456789abcdef0123456789abcdX";

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Standard base64 with padding of `len` bytes into `out`. */
static void b64(char *out, const void *in, size_t len)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* base64url without padding, as JWT wants, into `out`; returns its length. */
static size_t b64url(char *out, const void *in, size_t len)
{
	size_t n;

	b64(out, in, len);
	n = strlen(out);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	return n;
}

/* Decode a base64url segment of `len` chars into a NUL-terminated malloc'd
 * string (NULL if not base64). */
static char *b64url_decode_str(const char *in, size_t len)
{
	char *buf = malloc(len + 4), *out = malloc(len + 4);
	size_t padded = len;
	int n;

	if (!buf || !out) {
		free(buf);
		free(out);
		return NULL;
	}
	for (size_t i = 0; i < len; i++)
		buf[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	while (padded % 4)
		buf[padded++] = '=';
	n = EVP_DecodeBlock((unsigned char *)out, (unsigned char *)buf, (int)padded);
	free(buf);
	if (n < 0) {
		free(out);
		return NULL;
	}
	n -= (int)(padded - len);
	out[n] = '\0';
	return out;
}

/* "<header segment>.<payload segment>.<HMAC of both under key>", malloc'd,
 * with both segments given as they are to be sent. */
static char *sign_segments(const unsigned char *key, const char *header_segment, const char *payload_segment)
{
	size_t hlen = strlen(header_segment), plen = strlen(payload_segment);
	char *token = malloc(hlen + plen + 2 + 64);
	unsigned char mac[32];
	unsigned int mac_len = 0;

	if (!token)
		return NULL;
	memcpy(token, header_segment, hlen);
	token[hlen] = '.';
	memcpy(token + hlen + 1, payload_segment, plen);
	HMAC(EVP_sha256(), key, BRT_TOKEN_SECRET_LEN, (unsigned char *)token, hlen + 1 + plen, mac, &mac_len);
	token[hlen + 1 + plen] = '.';
	b64url(token + hlen + 2 + plen, mac, mac_len);
	return token;
}

/* "<header>.<payload segment>.<HMAC of both under key>", malloc'd: a token
 * this code signs itself, so verification gets past the signature with
 * whatever payload a test wants. */
static char *sign_raw(const unsigned char *key, const char *payload_segment)
{
	char header[64];

	b64url(header, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27);
	return sign_segments(key, header, payload_segment);
}

/* As sign_raw, with the payload given as JSON text. */
static char *sign_json(const unsigned char *key, const char *json)
{
	size_t len = strlen(json);
	char *segment = malloc(4 * (len / 3 + 1) + 1);
	char *token;

	if (!segment)
		return NULL;
	b64url(segment, json, len);
	token = sign_raw(key, segment);
	free(segment);
	return token;
}

static int verify_at(brt_token_claims *claims, brt_pool *pool, const unsigned char *key, const char *service,
		     const char *token, int64_t now)
{
	return brt_token_verify(claims, pool, key, service, token, strlen(token), now);
}

static int verify(const char *token, int64_t now)
{
	brt_token_claims claims;
	brt_pool pool;
	int error;

	brt_pool_init(&pool, POOL_CAP);
	error = verify_at(&claims, &pool, secret, SERVICE, token, now);
	brt_pool_clear(&pool);
	return error;
}

static void fill_claims(brt_token_claims *claims, brt_grant *grants, size_t count, int catalog)
{
	memset(claims, 0, sizeof(*claims));
	snprintf(claims->subject, sizeof(claims->subject), "key:0123456789abcdef");
	snprintf(claims->account, sizeof(claims->account), "%s", ACCOUNT);
	claims->grants = grants;
	claims->grant_count = count;
	claims->catalog = catalog;
}

static void test_roundtrip(void)
{
	brt_grant grants[] = {
		{ACCOUNT "/app", BRT_PERM_PULL | BRT_PERM_PUSH},
		{ACCOUNT "/a/b", BRT_PERM_PULL},
		{ACCOUNT "/all", ALL_ACTIONS},
		{ACCOUNT "/del", BRT_PERM_DELETE},
		{ACCOUNT "/nothing", 0},
	};
	const size_t count = sizeof(grants) / sizeof(grants[0]);
	brt_token_claims claims, got;
	brt_pool pool;
	char *token = NULL, *header = NULL, *payload_text = NULL;
	const char *dot1, *dot2;
	json_t *payload = NULL;

	fill_claims(&claims, grants, count, 1);
	CHECK_EQ_INT(brt_token_sign(&token, secret, SERVICE, &claims, NOW, TTL), 0);
	if (!token)
		return;

	/* Three base64url segments, no padding, nothing else. */
	dot1 = strchr(token, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	CHECK(dot1 && dot2 && !strchr(dot2 + 1, '.'));
	CHECK_EQ_INT(strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
		     strlen(token));
	CHECK(strncmp(token, "eyJ", 3) == 0);
	if (dot1 && dot2) {
		header = b64url_decode_str(token, (size_t)(dot1 - token));
		payload_text = b64url_decode_str(dot1 + 1, (size_t)(dot2 - dot1 - 1));
		CHECK_EQ_INT(strlen(dot2 + 1), 43);
	}
	CHECK(header && strstr(header, "\"HS256\""));
	payload = payload_text ? json_loads(payload_text, 0, NULL) : NULL;
	CHECK(payload != NULL);
	if (payload) {
		/* The claims a Docker token consumer expects. */
		CHECK_EQ_STR(json_string_value(json_object_get(payload, "aud")), SERVICE);
		CHECK_EQ_STR(json_string_value(json_object_get(payload, "iss")), SERVICE);
		CHECK_EQ_STR(json_string_value(json_object_get(payload, "sub")), "key:0123456789abcdef");
		CHECK_EQ_INT(json_integer_value(json_object_get(payload, "exp")), NOW + TTL);
		CHECK_EQ_INT(json_integer_value(json_object_get(payload, "iat")), NOW);
		CHECK(json_integer_value(json_object_get(payload, "nbf")) <= NOW);
		CHECK(json_is_array(json_object_get(payload, "access")));
		CHECK_EQ_INT(json_array_size(json_object_get(payload, "access")), count + 1);
	}

	brt_pool_init(&pool, POOL_CAP);
	CHECK_EQ_INT(verify_at(&got, &pool, secret, SERVICE, token, NOW), 0);
	CHECK_EQ_STR(got.subject, "key:0123456789abcdef");
	CHECK_EQ_STR(got.account, ACCOUNT);
	CHECK_EQ_INT(got.expires_at, NOW + TTL);
	CHECK_EQ_INT(got.catalog, 1);
	CHECK_EQ_INT(got.grant_count, count);
	for (size_t i = 0; i < count && i < got.grant_count; i++) {
		CHECK_EQ_STR(got.grants[i].repo, grants[i].repo);
		CHECK_EQ_INT(got.grants[i].actions, grants[i].actions);
	}
	brt_pool_clear(&pool);

	/* Still good one second before expiry, not at it or after. */
	CHECK_EQ_INT(verify(token, NOW + TTL - 1), 0);
	CHECK_EQ_INT(verify(token, NOW + TTL), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(verify(token, NOW + TTL + 1), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(verify(token, NOW + 86400), BRT_EUNAUTHORIZED);

	json_decref(payload);
	free(payload_text);
	free(header);
	free(token);

	/* No grants, no catalog: a device token. */
	fill_claims(&claims, NULL, 0, 0);
	snprintf(claims.subject, sizeof(claims.subject), "device:edge-7");
	CHECK_EQ_INT(brt_token_sign(&token, secret, SERVICE, &claims, NOW, TTL), 0);
	brt_pool_init(&pool, POOL_CAP);
	CHECK_EQ_INT(verify_at(&got, &pool, secret, SERVICE, token, NOW + 1), 0);
	CHECK_EQ_STR(got.subject, "device:edge-7");
	CHECK_EQ_INT(got.catalog, 0);
	CHECK_EQ_INT(got.grant_count, 0);
	brt_pool_clear(&pool);
	free(token);
}

/* More grants than a token may carry: the rest are dropped, not an error. */
static void test_grant_cap(void)
{
	brt_grant grants[BRT_TOKEN_MAX_GRANTS + 8];
	char names[BRT_TOKEN_MAX_GRANTS + 8][48];
	brt_token_claims claims, got;
	brt_pool pool;
	char *token = NULL;

	for (size_t i = 0; i < BRT_TOKEN_MAX_GRANTS + 8; i++) {
		snprintf(names[i], sizeof(names[i]), "%s/r%zu", ACCOUNT, i);
		grants[i].repo = names[i];
		grants[i].actions = BRT_PERM_PULL;
	}
	fill_claims(&claims, grants, BRT_TOKEN_MAX_GRANTS + 8, 0);
	CHECK_EQ_INT(brt_token_sign(&token, secret, SERVICE, &claims, NOW, TTL), 0);
	brt_pool_init(&pool, POOL_CAP);
	CHECK_EQ_INT(verify_at(&got, &pool, secret, SERVICE, token, NOW), 0);
	CHECK_EQ_INT(got.grant_count, BRT_TOKEN_MAX_GRANTS);
	CHECK_EQ_STR(got.grants[0].repo, names[0]);
	brt_pool_clear(&pool);
	free(token);
}

static void test_rejects(void)
{
	brt_grant grants[] = {{ACCOUNT "/app", BRT_PERM_PULL | BRT_PERM_PUSH}};
	brt_token_claims claims, got;
	brt_pool pool;
	char *token = NULL, *copy = NULL, *other = NULL, *forged = NULL, *payload_text = NULL;
	const char *dot1, *dot2;
	size_t len;

	fill_claims(&claims, grants, 1, 0);
	CHECK_EQ_INT(brt_token_sign(&token, secret, SERVICE, &claims, NOW, TTL), 0);
	if (!token)
		return;
	CHECK_EQ_INT(verify(token, NOW), 0);
	len = strlen(token);
	dot1 = strchr(token, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	copy = malloc(len + 2);
	CHECK(dot1 && dot2 && copy);
	if (!dot1 || !dot2 || !copy) {
		free(copy);
		free(token);
		return;
	}

	/* Tampered payload: each of a few characters changed in turn. */
	for (size_t pos = (size_t)(dot1 - token) + 1; pos < (size_t)(dot2 - token); pos += 7) {
		memcpy(copy, token, len + 1);
		copy[pos] = copy[pos] == 'A' ? 'B' : 'A';
		CHECK_EQ_INT(verify(copy, NOW), BRT_EUNAUTHORIZED);
	}
	/* A tampered header is signed too. */
	memcpy(copy, token, len + 1);
	copy[1] = copy[1] == 'A' ? 'B' : 'A';
	CHECK_EQ_INT(verify(copy, NOW), BRT_EUNAUTHORIZED);

	/* Tampered signature: every character in turn (its top bit, which
	 * always carries signature bits, the last character's included), and
	 * a signature cut short or made longer. */
	for (size_t pos = (size_t)(dot2 - token) + 1; pos < len; pos++) {
		const char *at = strchr(b64url_alphabet, token[pos]);
		memcpy(copy, token, len + 1);
		CHECK(at != NULL);
		if (at)
			copy[pos] = b64url_alphabet[(at - b64url_alphabet) ^ 32];
		CHECK_EQ_INT(verify(copy, NOW), BRT_EUNAUTHORIZED);
	}
	brt_pool_init(&pool, POOL_CAP);
	CHECK_EQ_INT(brt_token_verify(&got, &pool, secret, SERVICE, token, len - 1, NOW), BRT_EUNAUTHORIZED);
	brt_pool_clear(&pool);
	memcpy(copy, token, len + 1);
	copy[len] = 'A';
	copy[len + 1] = '\0';
	CHECK_EQ_INT(verify(copy, NOW), BRT_EUNAUTHORIZED);
	/* No signature at all ("alg: none" style). */
	memcpy(copy, token, len + 1);
	copy[(size_t)(dot2 - token) + 1] = '\0';
	CHECK_EQ_INT(verify(copy, NOW), BRT_EUNAUTHORIZED);

	/* The payload of another account with this token's signature. */
	payload_text = b64url_decode_str(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	CHECK(payload_text && strstr(payload_text, ACCOUNT));
	if (payload_text && strstr(payload_text, ACCOUNT)) {
		char *at = strstr(payload_text, ACCOUNT), *segment;
		size_t plen = strlen(payload_text);

		memcpy(at, OTHER_ACCOUNT, 32);
		segment = malloc(4 * (plen / 3 + 1) + 1);
		forged = segment ? malloc(len + 64) : NULL;
		if (forged) {
			size_t hlen = (size_t)(dot1 - token) + 1, slen = b64url(segment, payload_text, plen);
			memcpy(forged, token, hlen);
			memcpy(forged + hlen, segment, slen);
			memcpy(forged + hlen + slen, dot2, strlen(dot2) + 1);
			CHECK_EQ_INT(verify(forged, NOW), BRT_EUNAUTHORIZED);
		}
		free(segment);
	}

	/* Signed under another secret. */
	CHECK_EQ_INT(brt_token_sign(&other, other_secret, SERVICE, &claims, NOW, TTL), 0);
	CHECK_EQ_INT(verify(other, NOW), BRT_EUNAUTHORIZED);
	brt_pool_init(&pool, POOL_CAP);
	CHECK_EQ_INT(verify_at(&got, &pool, other_secret, SERVICE, other, NOW), 0);
	brt_pool_clear(&pool);

	/* Meant for another service (audience), including a prefix of ours. */
	brt_pool_init(&pool, POOL_CAP);
	CHECK_EQ_INT(verify_at(&got, &pool, secret, "berth", token, NOW), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(verify_at(&got, &pool, secret, "containers.eu-west-1", token, NOW), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(verify_at(&got, &pool, secret, SERVICE ".evil", token, NOW), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(verify_at(&got, &pool, secret, "", token, NOW), BRT_EUNAUTHORIZED);
	brt_pool_clear(&pool);

	/* Missing dots, empty, garbage. */
	CHECK_EQ_INT(verify("", NOW), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(verify(".", NOW), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(verify("..", NOW), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(verify("abc", NOW), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(verify("eyJhbGciOiJIUzI1NiJ9.e30", NOW), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(verify("!!!!.@@@@.#######################################", NOW), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(verify("a.b.$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$$", NOW), BRT_EUNAUTHORIZED);
	{
		size_t j = 0;
		for (size_t i = 0; i <= len; i++)
			if (token[i] != '.')
				copy[j++] = token[i];
		CHECK_EQ_INT(verify(copy, NOW), BRT_EUNAUTHORIZED);
		memcpy(copy, token, len + 1);
		copy[dot1 - token] = '_';
		CHECK_EQ_INT(verify(copy, NOW), BRT_EUNAUTHORIZED);
	}

	free(payload_text);
	free(forged);
	free(other);
	free(copy);
	free(token);
}

/* A token over BRT_TOKEN_MAX_LEN is refused even with a good signature. */
static void test_too_long(void)
{
	enum { COUNT = 64 };
	static char names[COUNT][256];
	brt_grant grants[COUNT];
	brt_token_claims claims;
	char *token = NULL;

	for (size_t i = 0; i < COUNT; i++) {
		int n = snprintf(names[i], sizeof(names[i]), "%s/r%zu/", ACCOUNT, i);
		memset(names[i] + n, 'x', sizeof(names[i]) - 1 - (size_t)n);
		names[i][sizeof(names[i]) - 1] = '\0';
		grants[i].repo = names[i];
		grants[i].actions = BRT_PERM_PULL;
	}
	fill_claims(&claims, grants, COUNT, 0);
	CHECK_EQ_INT(brt_token_sign(&token, secret, SERVICE, &claims, NOW, TTL), 0);
	CHECK(token && strlen(token) > BRT_TOKEN_MAX_LEN);
	if (token)
		CHECK_EQ_INT(verify(token, NOW), BRT_EUNAUTHORIZED);
	free(token);

	/* The same with a few of those grants fits, so length was the reason. */
	fill_claims(&claims, grants, 8, 0);
	CHECK_EQ_INT(brt_token_sign(&token, secret, SERVICE, &claims, NOW, TTL), 0);
	CHECK(token && strlen(token) <= BRT_TOKEN_MAX_LEN);
	if (token)
		CHECK_EQ_INT(verify(token, NOW), 0);
	free(token);
}

/* Payloads under a good signature: verification must still check them. */
static void test_self_signed_payloads(void)
{
	static const char good_json[] =
		"{\"aud\":\"" SERVICE "\",\"sub\":\"key:0123456789abcdef\",\"acct\":\"" ACCOUNT
		"\",\"nbf\":1767225590,\"exp\":1767225900,\"access\":[{\"type\":\"repository\","
		"\"name\":\"" ACCOUNT "/app\",\"actions\":[\"pull\",\"bogus\",\"push\"]}]}";
	static const char *const bad_json[] = {
		/* Not for us, or missing an essential claim. */
		"{\"aud\":\"other\",\"sub\":\"key:1\",\"acct\":\"" ACCOUNT "\",\"exp\":1767225900}",
		"{\"sub\":\"key:1\",\"acct\":\"" ACCOUNT "\",\"exp\":1767225900}",
		"{\"aud\":\"" SERVICE "\",\"acct\":\"" ACCOUNT "\",\"exp\":1767225900}",
		"{\"aud\":\"" SERVICE "\",\"sub\":\"key:1\",\"exp\":1767225900}",
		"{\"aud\":\"" SERVICE "\",\"sub\":\"key:1\",\"acct\":7,\"exp\":1767225900}",
		/* Time: no exp, exp as a string, expired, not yet valid. */
		"{\"aud\":\"" SERVICE "\",\"sub\":\"key:1\",\"acct\":\"" ACCOUNT "\"}",
		"{\"aud\":\"" SERVICE "\",\"sub\":\"key:1\",\"acct\":\"" ACCOUNT "\",\"exp\":\"1767225900\"}",
		"{\"aud\":\"" SERVICE "\",\"sub\":\"key:1\",\"acct\":\"" ACCOUNT "\",\"exp\":1767225600}",
		"{\"aud\":\"" SERVICE "\",\"sub\":\"key:1\",\"acct\":\"" ACCOUNT
		"\",\"exp\":1767225900,"
		"\"nbf\":1767229200}",
		/* Fields too long for the claims struct. */
		"{\"aud\":\"" SERVICE "\",\"sub\":\"key:1\",\"acct\":\"" ACCOUNT "0\",\"exp\":1767225900}",
		"{\"aud\":\"" SERVICE
		"\",\"sub\":\"key:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxx\",\"acct\":\"" ACCOUNT "\",\"exp\":1767225900}",
		/* Not an object, not JSON, empty. */
		"[]",
		"{\"aud\":",
		"",
	};
	static const char *const bad_segments[] = {
		"!!!!",            /* not base64 at all */
		"eyJhdWQiOiJ4In0", /* fine, but the wrong audience */
		"e+J9",            /* standard-alphabet '+' */
		"e/J9",            /* standard-alphabet '/' */
		"e30=",            /* padding */
		"e30 ",            /* a space */
		"e",               /* one char: no whole byte */
	};
	brt_token_claims got;
	brt_pool pool;
	char *token;

	token = sign_json(secret, good_json);
	brt_pool_init(&pool, POOL_CAP);
	CHECK_EQ_INT(verify_at(&got, &pool, secret, SERVICE, token, NOW), 0);
	CHECK_EQ_INT(got.grant_count, 1);
	if (got.grant_count == 1)
		CHECK_EQ_INT(got.grants[0].actions, BRT_PERM_PULL | BRT_PERM_PUSH);
	/* nbf may be up to a minute ahead (clock skew between nodes). */
	CHECK_EQ_INT(verify_at(&got, &pool, secret, SERVICE, token, 1767225590 - 30), 0);
	brt_pool_clear(&pool);
	free(token);

	for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
		token = sign_json(secret, bad_json[i]);
		CHECK(token != NULL);
		if (token && verify(token, NOW) != BRT_EUNAUTHORIZED)
			fprintf(stderr, "accepted payload %zu: %s\n", i, bad_json[i]);
		if (token)
			CHECK_EQ_INT(verify(token, NOW), BRT_EUNAUTHORIZED);
		free(token);
	}
	for (size_t i = 0; i < sizeof(bad_segments) / sizeof(bad_segments[0]); i++) {
		token = sign_raw(secret, bad_segments[i]);
		CHECK(token != NULL);
		if (token && verify(token, NOW) != BRT_EUNAUTHORIZED)
			fprintf(stderr, "accepted segment %zu: %s\n", i, bad_segments[i]);
		if (token)
			CHECK_EQ_INT(verify(token, NOW), BRT_EUNAUTHORIZED);
		free(token);
	}
}

/* The same bytes spelled differently: the last character of a base64url
 * segment whose length leaves unused bits, with those bits set.  Returns
 * 0 if the segment has no unused bits. */
static int set_trailing_bits(char *segment)
{
	size_t len = strlen(segment);
	const char *at;
	size_t unused;

	if (len == 0 || len % 4 == 0 || len % 4 == 1)
		return 0;
	unused = len % 4 == 2 ? 4 : 2;
	at = strchr(b64url_alphabet, segment[len - 1]);
	if (!at)
		return 0;
	segment[len - 1] = b64url_alphabet[(size_t)(at - b64url_alphabet) | ((1u << unused) - 1)];
	return 1;
}

/* A token that verifies has exactly one spelling: any change of any one
 * byte of it (the unused low bits of each segment's last character
 * included), and any other encoding of the same header, payload or
 * signature, is refused. */
static void test_one_spelling(void)
{
	brt_grant grants[] = {{ACCOUNT "/app", BRT_PERM_PULL | BRT_PERM_PUSH}};
	brt_token_claims claims, got;
	brt_pool pool;
	char *token = NULL, *copy;
	size_t len, accepted = 0;

	fill_claims(&claims, grants, 1, 0);
	CHECK_EQ_INT(brt_token_sign(&token, secret, SERVICE, &claims, NOW, TTL), 0);
	if (!token)
		return;
	len = strlen(token);
	copy = malloc(len + 1);
	if (!copy) {
		free(token);
		return;
	}
	CHECK_EQ_INT(verify(token, NOW), 0);
	brt_pool_init(&pool, POOL_CAP);
	for (size_t pos = 0; pos < len; pos++) {
		for (unsigned int b = 0; b < 256; b++) {
			if ((unsigned char)token[pos] == b)
				continue;
			memcpy(copy, token, len + 1);
			copy[pos] = (char)b;
			if (brt_token_verify(&got, &pool, secret, SERVICE, copy, len, NOW) !=
			    BRT_EUNAUTHORIZED) {
				if (accepted++ < 5)
					fprintf(stderr, "accepted with byte %zu = 0x%02x: %s\n", pos, b,
						copy);
			}
			brt_pool_clear(&pool);
		}
	}
	CHECK_EQ_INT(accepted, 0);
	/* The 43-character signature has 2 unused bits: all 3 other
	 * spellings of the same 32 bytes are refused. */
	for (unsigned int bits = 1; bits < 4; bits++) {
		const char *at = strchr(b64url_alphabet, token[len - 1]);
		memcpy(copy, token, len + 1);
		CHECK(at != NULL);
		if (at)
			copy[len - 1] = b64url_alphabet[(size_t)(at - b64url_alphabet) ^ bits];
		CHECK_EQ_INT(verify(copy, NOW), BRT_EUNAUTHORIZED);
	}
	free(copy);
	free(token);
}

/* Segments signed here (so the HMAC is right) but not canonically encoded,
 * or naming another algorithm, or with duplicate JSON keys at any level:
 * refused; the canonical twin of each is accepted, so the spelling is the
 * only reason. */
static void test_segments_under_good_signature(void)
{
	/* Lengths not a multiple of 3, so the last character has unused bits. */
	static const char good_json[] =
		"{\"aud\":\"" SERVICE "\",\"sub\":\"key:0123456789abcdef\",\"acct\":\"" ACCOUNT
		"\",\"exp\":1767225900,\"access\":[{\"type\":\"repository\",\"name\":\"" ACCOUNT
		"/app\",\"actions\":[\"pull\"]}]} ";
	static const char *const good_headers[] = {
		"{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
		"{\"alg\":\"HS256\"}",
		"{\"typ\":\"JWT\",\"alg\":\"HS256\"} ",
	};
	static const char *const bad_headers[] = {
		"{\"alg\":\"none\",\"typ\":\"JWT\"}",
		"{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
		"{\"alg\":\"hs256\"}",
		"{\"typ\":\"JWT\"}",
		"{\"alg\":\"HS256\",\"alg\":\"none\"}",
		"{\"alg\":\"none\",\"alg\":\"HS256\"}",
		"[\"HS256\"]",
		"{\"alg\":\"HS256\"",
		"",
	};
	static const char *const duplicate_json[] = {
		/* Top level: first and last would disagree. */
		"{\"aud\":\"" SERVICE "\",\"sub\":\"key:0123456789abcdef\",\"acct\":\"" OTHER_ACCOUNT
		"\",\"acct\":\"" ACCOUNT "\",\"exp\":1767225900}",
		"{\"aud\":\"" SERVICE "\",\"sub\":\"key:0123456789abcdef\",\"acct\":\"" ACCOUNT
		"\",\"exp\":1767225900,\"exp\":1767225900}",
		/* Nested: inside an access entry. */
		"{\"aud\":\"" SERVICE "\",\"sub\":\"key:0123456789abcdef\",\"acct\":\"" ACCOUNT
		"\",\"exp\":1767225900,\"access\":[{\"type\":\"repository\",\"name\":\"" OTHER_ACCOUNT
		"/app\",\"name\":\"" ACCOUNT "/app\",\"actions\":[\"pull\"]}]}",
		"{\"aud\":\"" SERVICE "\",\"sub\":\"key:0123456789abcdef\",\"acct\":\"" ACCOUNT
		"\",\"exp\":1767225900,\"x\":{\"y\":{\"z\":1,\"z\":2}}}",
	};
	char header[128], payload[1024];
	char *token;

	/* The payload: canonical accepted, every other spelling refused. */
	CHECK(strlen(good_json) % 3 != 0);
	b64url(payload, good_json, strlen(good_json));
	b64url(header, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27);
	token = sign_segments(secret, header, payload);
	CHECK(token && verify(token, NOW) == 0);
	free(token);
	CHECK(set_trailing_bits(payload));
	token = sign_segments(secret, header, payload);
	CHECK(token && verify(token, NOW) == BRT_EUNAUTHORIZED);
	free(token);
	b64url(payload, good_json, strlen(good_json));
	{
		/* The standard alphabet's equivalents, and padding. */
		size_t plen = strlen(payload);
		char padded[1040];
		memcpy(padded, payload, plen);
		memcpy(padded + plen, "==", 3);
		padded[plen + (4 - plen % 4) % 4] = '\0';
		token = sign_segments(secret, header, padded);
		CHECK(token && verify(token, NOW) == BRT_EUNAUTHORIZED);
		free(token);
	}

	/* The header: each good one accepted canonically and refused with its
	 * trailing bits set; the bad ones refused. */
	for (size_t i = 0; i < sizeof(good_headers) / sizeof(good_headers[0]); i++) {
		size_t hlen = strlen(good_headers[i]);
		b64url(header, good_headers[i], hlen);
		token = sign_segments(secret, header, payload);
		CHECK(token && verify(token, NOW) == 0);
		free(token);
		if (hlen % 3 != 0) {
			CHECK(set_trailing_bits(header));
			token = sign_segments(secret, header, payload);
			CHECK(token && verify(token, NOW) == BRT_EUNAUTHORIZED);
			free(token);
		}
	}
	for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
		b64url(header, bad_headers[i], strlen(bad_headers[i]));
		token = sign_segments(secret, header, payload);
		if (token && verify(token, NOW) != BRT_EUNAUTHORIZED)
			fprintf(stderr, "accepted header %zu: %s\n", i, bad_headers[i]);
		CHECK(token && verify(token, NOW) == BRT_EUNAUTHORIZED);
		free(token);
	}

	/* Duplicate keys, at the top and nested. */
	b64url(header, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27);
	for (size_t i = 0; i < sizeof(duplicate_json) / sizeof(duplicate_json[0]); i++) {
		token = sign_json(secret, duplicate_json[i]);
		if (token && verify(token, NOW) != BRT_EUNAUTHORIZED)
			fprintf(stderr, "accepted duplicate keys %zu: %s\n", i, duplicate_json[i]);
		CHECK(token && verify(token, NOW) == BRT_EUNAUTHORIZED);
		free(token);
	}
}

static int scope(const char **repo, unsigned int *actions, int *catalog, brt_pool *pool, const char *s)
{
	*repo = "unset";
	*actions = 99;
	*catalog = 99;
	return brt_scope_parse(repo, actions, catalog, pool, s);
}

static void test_scope(void)
{
	static const char *const malformed[] = {
		"",
		"repository",
		"repository:",
		"repository:x",
		"repository::pull",
		"foo:bar:pull",
		"Repository:" ACCOUNT "/app:pull",
		"repo:" ACCOUNT "/app:pull",
		"registry:catalog:pull",
		"registry:catalog",
		"repository:" ACCOUNT "/App:pull",
		"repository:" ACCOUNT "//app:pull",
		"repository:" ACCOUNT "/app/:pull",
		"repository:/app:pull",
		"repository:" ACCOUNT "/a..b:pull",
		"repository:" ACCOUNT "/a b:pull",
		":" ACCOUNT "/app:pull",
	};
	brt_pool pool;
	const char *repo;
	unsigned int actions;
	int catalog;

	brt_pool_init(&pool, POOL_CAP);
	CHECK_EQ_INT(scope(&repo, &actions, &catalog, &pool, "repository:" ACCOUNT "/app:pull,push"), 0);
	CHECK_EQ_STR(repo, ACCOUNT "/app");
	CHECK_EQ_INT(actions, BRT_PERM_PULL | BRT_PERM_PUSH);
	CHECK_EQ_INT(catalog, 0);

	CHECK_EQ_INT(scope(&repo, &actions, &catalog, &pool, "repository:" ACCOUNT "/a/b:*"), 0);
	CHECK_EQ_STR(repo, ACCOUNT "/a/b");
	CHECK_EQ_INT(actions, ALL_ACTIONS);
	CHECK_EQ_INT(catalog, 0);

	CHECK_EQ_INT(scope(&repo, &actions, &catalog, &pool, "repository:" ACCOUNT "/app:pull"), 0);
	CHECK_EQ_INT(actions, BRT_PERM_PULL);
	CHECK_EQ_INT(scope(&repo, &actions, &catalog, &pool, "repository:" ACCOUNT "/app:delete"), 0);
	CHECK_EQ_INT(actions, BRT_PERM_DELETE);
	CHECK_EQ_INT(scope(&repo, &actions, &catalog, &pool, "repository:" ACCOUNT "/app:push,pull,delete"),
		     0);
	CHECK_EQ_INT(actions, ALL_ACTIONS);

	CHECK_EQ_INT(scope(&repo, &actions, &catalog, &pool, "registry:catalog:*"), 0);
	CHECK_EQ_INT(catalog, 1);
	CHECK(repo == NULL);

	/* Unknown actions are ignored, known ones beside them kept. */
	CHECK_EQ_INT(scope(&repo, &actions, &catalog, &pool, "repository:" ACCOUNT "/app:bogus"), 0);
	CHECK_EQ_STR(repo, ACCOUNT "/app");
	CHECK_EQ_INT(actions, 0);
	CHECK_EQ_INT(scope(&repo, &actions, &catalog, &pool, "repository:" ACCOUNT "/app:pull,bogus"), 0);
	CHECK_EQ_INT(actions, BRT_PERM_PULL);
	CHECK_EQ_INT(scope(&repo, &actions, &catalog, &pool, "repository:" ACCOUNT "/app:PULL,pul,pullx,**,"),
		     0);
	CHECK_EQ_INT(actions, 0);
	CHECK_EQ_INT(scope(&repo, &actions, &catalog, &pool, "repository:" ACCOUNT "/app:"), 0);
	CHECK_EQ_INT(actions, 0);
	CHECK_EQ_INT(scope(&repo, &actions, &catalog, &pool, "repository:" ACCOUNT "/app:pull,,push"), 0);
	CHECK_EQ_INT(actions, BRT_PERM_PULL | BRT_PERM_PUSH);

	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		int error = scope(&repo, &actions, &catalog, &pool, malformed[i]);
		if (error != BRT_EINVALID)
			fprintf(stderr, "scope \"%s\" gave %d\n", malformed[i], error);
		CHECK_EQ_INT(error, BRT_EINVALID);
		CHECK(repo == NULL);
		CHECK_EQ_INT(catalog, 0);
	}
	brt_pool_clear(&pool);
}

/* "Basic " + base64(`credentials`, `len` bytes) into `out`. */
static const char *basic(char *out, const char *credentials, size_t len)
{
	memcpy(out, "Basic ", 6);
	b64(out + 6, credentials, len);
	return out;
}

static const char *basic_str(char *out, const char *credentials)
{
	return basic(out, credentials, strlen(credentials));
}

static void test_header(void)
{
	char key[BRT_ACCESS_KEY_LEN + 1], creds[BRT_ACCESS_KEY_LEN + 16], value[512], out[256];
	char big[2048];
	brt_access_key stored;
	brt_credential_kind kind;
	size_t klen;

	CHECK_EQ_INT(brt_key_generate(&stored, key, ACCOUNT, ALL_ACTIONS, "", NOW * 1000, 0), 0);
	klen = strlen(key);
	snprintf(creds, sizeof(creds), "KEY:%s", key);

	/* Basic KEY:<key>, any case of the scheme name. */
	kind = 0;
	memset(out, 0, sizeof(out));
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), basic_str(value, creds)), 0);
	CHECK_EQ_INT(kind, BRT_CREDENTIAL_KEY);
	CHECK_EQ_STR(out, key);
	memcpy(value, "BASIC", 5);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), value), 0);
	CHECK_EQ_STR(out, key);
	memcpy(value, "bAsIc", 5);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), value), 0);
	CHECK_EQ_STR(out, key);

	/* '=' only as trailing padding (OpenSSL's decoder alone would read a
	 * '=' inside as zero bits and accept it). */
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOm=iYw=="), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZ.mJiYw=="), BRT_EUNAUTHORIZED);
	/* Several spaces after the scheme are allowed (RFC 7235). */
	snprintf(value, sizeof(value), "Bearer   %s", key);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), value), 0);
	CHECK_EQ_INT(kind, BRT_CREDENTIAL_KEY);
	CHECK_EQ_STR(out, key);

	/* The user must be exactly KEY. */
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), basic_str(value, "key:brt_x")),
		     BRT_EUNAUTHORIZED);
	creds[0] = 'k';
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), basic_str(value, creds)),
		     BRT_EUNAUTHORIZED);
	creds[0] = 'K';
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), basic_str(value, "admin:secret")),
		     BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), basic_str(value, "KEYS:brt_x")),
		     BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), basic_str(value, " KEY:brt_x")),
		     BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), basic_str(value, ":brt_x")),
		     BRT_EUNAUTHORIZED);
	/* No colon at all. */
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), basic_str(value, "KEY")),
		     BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), basic_str(value, "KEYbrt_0123")),
		     BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), basic_str(value, key)),
		     BRT_EUNAUTHORIZED);

	/* Padding: none, one, two; the decoded text is exactly the input. */
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmFi"), 0);
	CHECK_EQ_STR(out, "ab");
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmFiYw=="), 0);
	CHECK_EQ_STR(out, "abc");
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmFiY2Q="), 0);
	CHECK_EQ_STR(out, "abcd");
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOg=="), 0);
	CHECK_EQ_STR(out, "");
	/* Trailing spaces after the base64 are tolerated. */
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmFiYw==  "), 0);
	CHECK_EQ_STR(out, "abc");
	/* Padding missing, doubled, misplaced, or in the middle. */
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmFiYw"), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmFiYw="), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmFiYw==="),
		     BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmFiYw====="),
		     BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZ=mFiY2Q="), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmFiYw==S0VZ"),
		     BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmFi===="), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic ===="), BRT_EUNAUTHORIZED);
	/* Not base64. */
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic !!!!!!!!"), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZ*mFi"), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0V"), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic "), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic"), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic     "), BRT_EUNAUTHORIZED);

	/* An embedded NUL would cut the credential short: refused. */
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), basic(value, "KEY:brt_\0abcd", 13)),
		     BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), basic(value, "KEY:\0", 5)),
		     BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), basic(value, "KEY:abc\0", 8)),
		     BRT_EUNAUTHORIZED);

	/* The cap: exactly enough fits, one byte less does not, and nothing
	 * past the cap is written. */
	basic_str(value, creds);
	memset(out, 'X', sizeof(out));
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, klen + 1, value), 0);
	CHECK_EQ_STR(out, key);
	CHECK(out[klen + 1] == 'X');
	memset(out, 'X', sizeof(out));
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, klen, value), BRT_EUNAUTHORIZED);
	CHECK(out[klen] == 'X');
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, 16, value), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, 0, value), BRT_EUNAUTHORIZED);
	/* A Basic credential far longer than any key, with room to spare. */
	{
		char long_creds[1200];
		memcpy(long_creds, "KEY:", 4);
		memset(long_creds + 4, 'a', sizeof(long_creds) - 5);
		long_creds[sizeof(long_creds) - 1] = '\0';
		memcpy(big, "Basic ", 6);
		b64(big + 6, long_creds, strlen(long_creds));
		CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), big), BRT_EUNAUTHORIZED);
	}

	/* Bearer <access key> is a key, Bearer <anything else> a token. */
	snprintf(value, sizeof(value), "Bearer %s", key);
	kind = 0;
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), value), 0);
	CHECK_EQ_INT(kind, BRT_CREDENTIAL_KEY);
	CHECK_EQ_STR(out, key);
	memcpy(value, "bearer", 6);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), value), 0);
	CHECK_EQ_INT(kind, BRT_CREDENTIAL_KEY);
	memcpy(value, "BEARER", 6);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), value), 0);
	CHECK_EQ_INT(kind, BRT_CREDENTIAL_KEY);
	memset(out, 'X', sizeof(out));
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, klen + 1, value), 0);
	CHECK_EQ_STR(out, key);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, klen, value), BRT_EUNAUTHORIZED);

	kind = 0;
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"),
		     0);
	CHECK_EQ_INT(kind, BRT_CREDENTIAL_TOKEN);
	CHECK_EQ_STR(out, "eyJhbGciOiJIUzI1NiJ9.e30.sig");
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Bearer brt"), 0);
	CHECK_EQ_INT(kind, BRT_CREDENTIAL_TOKEN);
	/* A token longer than the cap does not fit. */
	memcpy(big, "Bearer ", 7);
	memset(big + 7, 'e', sizeof(big) - 8);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), big), BRT_EUNAUTHORIZED);

	/* Empty bearer, no space, other schemes. */
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Bearer "), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Bearer"), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Bearerbrt_x"), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Digest x"), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Negotiate YIIB"), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Token abc"), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basically S0VZOmFi"), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "S0VZOmFi"), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), ""), BRT_EUNAUTHORIZED);
}

/* A Basic credential has one spelling: for every one-byte change of a
 * good header value's base64, whatever is still accepted is the canonical
 * encoding of "KEY:" + the credential returned (so non-zero trailing bits,
 * misplaced padding and foreign characters are all refused). */
static void test_basic_one_spelling(void)
{
	static const char *const creds[] = {"KEY:brt_0123456789abcdef0123", "KEY:a", "KEY:ab", "KEY:abc",
					    "KEY:"};
	char value[256], canonical[256], joined[160], out[128];
	brt_credential_kind kind;
	size_t bad = 0, checked = 0;

	for (size_t i = 0; i < sizeof(creds) / sizeof(creds[0]); i++) {
		size_t vlen = strlen(basic_str(value, creds[i]));

		CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), value), 0);
		CHECK_EQ_STR(out, creds[i] + 4);
		for (size_t pos = 6; pos < vlen; pos++) {
			char saved = value[pos];
			for (unsigned int b = 1; b < 256; b++) {
				if (b == (unsigned char)saved)
					continue;
				value[pos] = (char)b;
				if (brt_auth_parse_header(&kind, out, sizeof(out), value) != 0)
					continue;
				checked++;
				snprintf(joined, sizeof(joined), "KEY:%s", out);
				b64(canonical, joined, strlen(joined));
				/* Only trailing spaces may follow the base64. */
				if (strncmp(value + 6, canonical, strlen(canonical)) != 0 ||
				    strspn(value + 6 + strlen(canonical), " ") !=
					    strlen(value + 6 + strlen(canonical))) {
					if (bad++ < 5)
						fprintf(stderr, "accepted non-canonical Basic value: %s\n",
							value);
				}
			}
			value[pos] = saved;
		}
	}
	CHECK_EQ_INT(bad, 0);
	/* Changes that keep it valid exist (other credentials), so the loop
	 * did exercise acceptance. */
	CHECK(checked > 0);
	/* Named cases: "KEY:abc" is S0VZOmFiYw==, "KEY:ab" S0VZOmFi. */
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmFiYx=="), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmFiYz=="), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmFiY2R="), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmF-"), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOm_i"), BRT_EUNAUTHORIZED);
	CHECK_EQ_INT(brt_auth_parse_header(&kind, out, sizeof(out), "Basic S0VZOmFiYw==\t"),
		     BRT_EUNAUTHORIZED);
}

int main(void)
{
	test_roundtrip();
	test_grant_cap();
	test_rejects();
	test_too_long();
	test_self_signed_payloads();
	test_scope();
	test_header();
	test_one_spelling();
	test_segments_under_good_signature();
	test_basic_one_spelling();
	return check_exit("test_token");
}
