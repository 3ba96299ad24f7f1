/* JWT (HS256) signing and verification for bearer tokens (see token.h).
 * The JSON is built and read with jansson (duplicate keys refused), HMAC
 * comes from OpenSSL, base64url from auth/base64 (canonical text only). */
#include "auth/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/base64.h"
#include "auth/keys.h"
#include "common/error.h"
#include "common/random.h"
#include "meta/meta.h"
#include "oci/names.h"

static const char *action_names[] = {"pull", "push", "delete"};

static json_t *actions_json(unsigned int actions)
{
	json_t *a = json_array();

	for (unsigned int i = 0; a && i < 3; i++)
		if (actions & (1u << i))
			json_array_append_new(a, json_string(action_names[i]));
	return a;
}

int brt_token_sign(char **out, const unsigned char *secret, const char *service,
		   const brt_token_claims *claims, int64_t now, unsigned int ttl)
{
	static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	json_t *payload = NULL, *access = NULL;
	char *payload_text = NULL, *token = NULL, jti[33];
	unsigned char mac[32];
	unsigned int mac_len = 0;
	size_t plen, hlen, cap, pos;
	int error = 0;

	*out = NULL;
	if ((error = brt_random_hex(jti, 32)) < 0)
		return error;
	access = json_array();
	for (size_t i = 0; access && i < claims->grant_count; i++)
		json_array_append_new(access, json_pack("{s:s,s:s,s:o}", "type", "repository", "name",
							claims->grants[i].repo, "actions",
							actions_json(claims->grants[i].actions)));
	if (access && claims->catalog)
		json_array_append_new(access, json_pack("{s:s,s:s,s:[s]}", "type", "registry", "name",
							"catalog", "actions", "*"));
	payload = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:O}", "iss", service, "aud", service, "sub",
			    claims->subject, "acct", claims->account, "iat", (json_int_t)now, "nbf",
			    (json_int_t)(now - 10), "exp", (json_int_t)(now + ttl), "jti", jti, "access",
			    access ? access : json_null());
	payload_text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
	if (!payload_text) {
		error = brt_error_set(BRT_ENOMEM, "cannot build token");
		goto done;
	}
	plen = strlen(payload_text);
	hlen = sizeof(header) - 1;
	cap = 4 * (hlen + plen + 32) / 3 + 16;
	if (!(token = malloc(cap))) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	pos = brt_base64_encode(token, (const unsigned char *)header, hlen, BRT_BASE64_URL);
	token[pos++] = '.';
	pos += brt_base64_encode(token + pos, (const unsigned char *)payload_text, plen, BRT_BASE64_URL);
	HMAC(EVP_sha256(), secret, BRT_TOKEN_SECRET_LEN, (const unsigned char *)token, pos, mac, &mac_len);
	token[pos++] = '.';
	pos += brt_base64_encode(token + pos, mac, mac_len, BRT_BASE64_URL);
	*out = token;
	token = NULL;
done:
	free(token);
	free(payload_text);
	json_decref(payload);
	json_decref(access);
	return error;
}

static unsigned int parse_actions(const char *s, size_t len)
{
	unsigned int actions = 0;
	const char *end = s + len;

	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		size_t n = comma ? (size_t)(comma - s) : (size_t)(end - s);
		if (n == 1 && s[0] == '*')
			actions |= BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE;
		for (unsigned int i = 0; i < 3; i++)
			if (n == strlen(action_names[i]) && memcmp(s, action_names[i], n) == 0)
				actions |= 1u << i;
		s += n + (comma ? 1 : 0);
	}
	return actions;
}

int brt_scope_parse(const char **repo_out, unsigned int *actions_out, int *catalog_out, brt_pool *pool,
		    const char *scope)
{
	const char *first = strchr(scope, ':'), *last = strrchr(scope, ':');
	size_t name_len;

	*repo_out = NULL;
	*actions_out = 0;
	*catalog_out = 0;
	if (!first || first == last)
		return brt_error_set(BRT_EINVALID, "malformed scope");
	if (strcmp(scope, "registry:catalog:*") == 0) {
		*catalog_out = 1;
		return 0;
	}
	if ((size_t)(first - scope) != 10 || memcmp(scope, "repository", 10) != 0)
		return brt_error_set(BRT_EINVALID, "unsupported scope type");
	name_len = (size_t)(last - first - 1);
	if (!brt_name_valid(first + 1, name_len))
		return brt_error_set(BRT_EINVALID, "invalid repository in scope");
	*repo_out = brt_pool_strndup(pool, first + 1, name_len);
	if (!*repo_out)
		return brt_error_set(BRT_ENOMEM, "out of memory");
	*actions_out = parse_actions(last + 1, strlen(last + 1));
	return 0;
}

static int read_grants(brt_token_claims *out, brt_pool *pool, json_t *access)
{
	size_t i;
	json_t *entry;

	if (!json_is_array(access))
		return 0;
	out->grants = brt_pool_alloc(pool, sizeof(brt_grant) * BRT_TOKEN_MAX_GRANTS);
	if (!out->grants)
		return brt_error_set(BRT_ENOMEM, "out of memory");
	json_array_foreach(access, i, entry) {
		const char *type = json_string_value(json_object_get(entry, "type"));
		const char *name = json_string_value(json_object_get(entry, "name"));
		json_t *actions = json_object_get(entry, "actions"), *a;
		unsigned int bits = 0;
		size_t j;

		if (!type || !name || !json_is_array(actions))
			continue;
		if (strcmp(type, "registry") == 0 && strcmp(name, "catalog") == 0) {
			out->catalog = 1;
			continue;
		}
		if (strcmp(type, "repository") != 0 || out->grant_count >= BRT_TOKEN_MAX_GRANTS)
			continue;
		json_array_foreach(actions, j, a) {
			const char *s = json_string_value(a);
			if (s)
				bits |= parse_actions(s, strlen(s));
		}
		out->grants[out->grant_count].repo = brt_pool_strdup(pool, name);
		out->grants[out->grant_count].actions = bits;
		if (out->grants[out->grant_count].repo)
			out->grant_count++;
	}
	return 0;
}

/* The header segment must be canonical base64url of a JSON object naming
 * HS256: the signature covers its text, but only this check makes the
 * algorithm part of what is verified. */
static int check_header(const char *segment, size_t len)
{
	unsigned char raw[128];
	size_t n;
	json_t *header;
	const char *alg;
	int ok;

	if (brt_base64_decode(&n, raw, sizeof(raw), segment, len, BRT_BASE64_URL) < 0)
		return brt_error_set(BRT_EUNAUTHORIZED, "malformed token header");
	header = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
	alg = json_string_value(json_object_get(header, "alg"));
	ok = json_is_object(header) && alg && strcmp(alg, "HS256") == 0;
	json_decref(header);
	return ok ? 0 : brt_error_set(BRT_EUNAUTHORIZED, "token header is not HS256");
}

int brt_token_verify(brt_token_claims *out, brt_pool *pool, const unsigned char *secret, const char *service,
		     const char *token, size_t len, int64_t now)
{
	const char *dot1, *dot2;
	unsigned char mac[32], given[32];
	unsigned char *payload_raw = NULL;
	unsigned int mac_len = 0;
	size_t n = 0, segment_len;
	json_t *payload = NULL;
	const char *aud, *sub, *acct;
	json_int_t exp, nbf;
	int error = 0;

	memset(out, 0, sizeof(*out));
	if (len > BRT_TOKEN_MAX_LEN || !(dot1 = memchr(token, '.', len)) ||
	    !(dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))))
		return brt_error_set(BRT_EUNAUTHORIZED, "malformed token");
	/* An HMAC-SHA256 is 32 bytes: 43 base64url characters. */
	if (len - (size_t)(dot2 + 1 - token) != 43)
		return brt_error_set(BRT_EUNAUTHORIZED, "invalid token signature");
	HMAC(EVP_sha256(), secret, BRT_TOKEN_SECRET_LEN, (const unsigned char *)token, (size_t)(dot2 - token),
	     mac, &mac_len);
	if (brt_base64_decode(&n, given, sizeof(given), dot2 + 1, 43, BRT_BASE64_URL) < 0 || n != 32 ||
	    CRYPTO_memcmp(mac, given, 32) != 0)
		return brt_error_set(BRT_EUNAUTHORIZED, "invalid token signature");
	if ((error = check_header(token, (size_t)(dot1 - token))) < 0)
		return error;
	segment_len = (size_t)(dot2 - dot1 - 1);
	if (!(payload_raw = brt_pool_alloc(pool, segment_len + 1)))
		return brt_error_set(BRT_ENOMEM, "out of memory");
	if (brt_base64_decode(&n, payload_raw, segment_len + 1, dot1 + 1, segment_len, BRT_BASE64_URL) < 0 ||
	    !(payload = json_loadb((const char *)payload_raw, n, JSON_REJECT_DUPLICATES, NULL))) {
		error = brt_error_set(BRT_EUNAUTHORIZED, "malformed token payload");
		goto done;
	}
	aud = json_string_value(json_object_get(payload, "aud"));
	sub = json_string_value(json_object_get(payload, "sub"));
	acct = json_string_value(json_object_get(payload, "acct"));
	exp = json_integer_value(json_object_get(payload, "exp"));
	nbf = json_integer_value(json_object_get(payload, "nbf"));
	if (!aud || strcmp(aud, service) != 0 || !sub || !acct || strlen(sub) >= sizeof(out->subject) ||
	    strlen(acct) >= sizeof(out->account)) {
		error = brt_error_set(BRT_EUNAUTHORIZED, "token is not for this service");
		goto done;
	}
	if (exp <= now || nbf > now + 60) {
		error = brt_error_set(BRT_EUNAUTHORIZED, "token has expired");
		goto done;
	}
	snprintf(out->subject, sizeof(out->subject), "%s", sub);
	snprintf(out->account, sizeof(out->account), "%s", acct);
	out->expires_at = exp;
	error = read_grants(out, pool, json_object_get(payload, "access"));
done:
	json_decref(payload);
	return error;
}
