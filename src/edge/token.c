/* Token authentication helpers of berth-edge: challenge parsing, the
 * realm check, the token request URL and answer, and the token cache.
 * The cache is one block of fixed-size slots taken at start and guarded
 * by one mutex, so that many requests at once cost no allocation and a
 * lookup is a short scan. */
#include "edge/token.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "common/error.h"

/* Copy one parameter value (quoted, with backslash escapes, or a bare
 * token) from *p into out; *p is left after it. */
static int read_param_value(char *out, size_t cap, const char **p)
{
	const char *s = *p;
	size_t n = 0;

	if (*s == '"') {
		for (s++; *s && *s != '"'; s++) {
			if (*s == '\\' && s[1])
				s++;
			if (n + 1 >= cap)
				return BRT_EINVALID;
			out[n++] = *s;
		}
		if (*s != '"')
			return BRT_EINVALID;
		s++;
	} else {
		for (; *s && *s != ',' && *s != ' ' && *s != '\t'; s++) {
			if (n + 1 >= cap)
				return BRT_EINVALID;
			out[n++] = *s;
		}
	}
	out[n] = '\0';
	*p = s;
	return 0;
}

int brt_edge_challenge_parse(brt_edge_challenge *out, const char *value)
{
	const char *p = value;

	memset(out, 0, sizeof(*out));
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
		return brt_error_set(BRT_EINVALID, "not a Bearer challenge");
	p += 6;
	for (;;) {
		char name[16], scratch[BRT_EDGE_SCOPE_MAX];
		char *target = scratch;
		size_t name_len = 0, cap = sizeof(scratch);

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		while (*p && *p != '=' && *p != ' ' && *p != ',') {
			if (name_len + 1 < sizeof(name))
				name[name_len] = (char)tolower((unsigned char)*p);
			name_len++;
			p++;
		}
		if (*p != '=' || name_len == 0)
			return brt_error_set(BRT_EINVALID, "malformed Bearer challenge");
		name[name_len < sizeof(name) ? name_len : sizeof(name) - 1] = '\0';
		p++;
		if (strcmp(name, "realm") == 0) {
			target = out->realm;
			cap = sizeof(out->realm);
		} else if (strcmp(name, "service") == 0) {
			target = out->service;
			cap = sizeof(out->service);
		} else if (strcmp(name, "scope") == 0) {
			target = out->scope;
			cap = sizeof(out->scope);
		}
		if (read_param_value(target, cap, &p) < 0)
			return brt_error_set(BRT_EINVALID, "Bearer challenge: %s is malformed or too long",
					     name);
	}
	if (!out->realm[0])
		return brt_error_set(BRT_EINVALID, "Bearer challenge without a realm");
	return 0;
}

int brt_edge_realm_allowed(const char *realm, const char *origin)
{
	size_t len = strlen(origin);

	if (strncasecmp(realm, origin, len) != 0)
		return 0;
	return realm[len] == '\0' || realm[len] == '/' || realm[len] == '?';
}

/* Append `s` percent-encoded (all but RFC 3986's unreserved characters). */
static int append_encoded(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int plain = isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';

		if (*len + (plain ? 1 : 3) >= cap)
			return BRT_EINVALID;
		if (plain) {
			out[(*len)++] = (char)c;
		} else {
			out[(*len)++] = '%';
			out[(*len)++] = hex[c >> 4];
			out[(*len)++] = hex[c & 15];
		}
	}
	out[*len] = '\0';
	return 0;
}

static int append_raw(char *out, size_t cap, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (*len + n >= cap)
		return BRT_EINVALID;
	memcpy(out + *len, s, n + 1);
	*len += n;
	return 0;
}

int brt_edge_token_url(char *out, size_t cap, const brt_edge_challenge *challenge)
{
	const char *p = challenge->scope;
	size_t len = 0;
	int error = 0;

	if (cap == 0)
		return BRT_EINVALID;
	out[0] = '\0';
	if ((error = append_raw(out, cap, &len, challenge->realm)) < 0 ||
	    (error = append_raw(out, cap, &len, strchr(challenge->realm, '?') ? "&" : "?")) < 0 ||
	    (error = append_raw(out, cap, &len, "service=")) < 0 ||
	    (error = append_encoded(out, cap, &len, challenge->service, strlen(challenge->service))) < 0)
		goto done;
	while (*p) {
		size_t n;

		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
		if (n == 0)
			break;
		if ((error = append_raw(out, cap, &len, "&scope=")) < 0 ||
		    (error = append_encoded(out, cap, &len, p, n)) < 0)
			goto done;
		p += n;
	}
done:
	if (error < 0)
		error = brt_error_set(BRT_EINVALID, "token request URL too long");
	return error;
}

int brt_edge_token_scope(char *out, size_t cap, const char *method, const char *path_and_query)
{
	size_t len = strcspn(path_and_query, "?"), name_end;
	const char *kind_start, *end = path_and_query + len;
	int n;

	if (len == 4 && memcmp(path_and_query, "/v2/", 4) == 0) {
		if (cap == 0)
			return BRT_EINVALID;
		out[0] = '\0';
		return 0;
	}
	if (len < 5 || memcmp(path_and_query, "/v2/", 4) != 0)
		return BRT_EINVALID;
	/* /v2/<name>/<kind>/<reference>: the reference and the kind hold no
	 * slash, the name may. */
	while (end > path_and_query + 4 && end[-1] != '/')
		end--;
	if (end <= path_and_query + 4)
		return BRT_EINVALID;
	kind_start = end - 1;
	while (kind_start > path_and_query + 4 && kind_start[-1] != '/')
		kind_start--;
	if (kind_start <= path_and_query + 5)
		return BRT_EINVALID;
	name_end = (size_t)(kind_start - 1 - (path_and_query + 4));
	n = snprintf(out, cap, "repository:%.*s:%s", (int)name_end, path_and_query + 4,
		     strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ? "pull" : "pull,push");
	return n < 0 || (size_t)n >= cap ? BRT_EINVALID : 0;
}

int brt_edge_token_parse(char *out, size_t cap, unsigned int *expires_in_out, const char *body, size_t len)
{
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *expires;
	const char *token = NULL;
	size_t token_len;
	int error = 0;

	*expires_in_out = BRT_EDGE_TOKEN_DEFAULT_TTL;
	if (!json_is_object(root)) {
		error = brt_error_set(BRT_EINVALID, "the token service's answer is not a JSON object");
		goto done;
	}
	token = json_string_value(json_object_get(root, "token"));
	if (!token || !token[0])
		token = json_string_value(json_object_get(root, "access_token"));
	token_len = token ? strlen(token) : 0;
	if (token_len == 0 || token_len >= cap) {
		error = brt_error_set(BRT_EINVALID, "the token service's answer has no usable token");
		goto done;
	}
	for (size_t i = 0; i < token_len; i++)
		if (!isgraph((unsigned char)token[i])) {
			error = brt_error_set(BRT_EINVALID, "the token has characters a header cannot carry");
			goto done;
		}
	memcpy(out, token, token_len + 1);
	expires = json_object_get(root, "expires_in");
	if (json_is_integer(expires) && json_integer_value(expires) > 0)
		*expires_in_out = json_integer_value(expires) > 86400
					  ? 86400u
					  : (unsigned int)json_integer_value(expires);
done:
	json_decref(root);
	return error;
}

struct slot {
	int used;
	uint64_t fresh_until; /* milliseconds */
	unsigned long last_used;
	char realm[BRT_EDGE_REALM_MAX];
	char service[BRT_EDGE_SERVICE_MAX];
	char scope[BRT_EDGE_SCOPE_MAX];
	char token[BRT_EDGE_TOKEN_MAX];
};

struct brt_edge_token_cache {
	pthread_mutex_t lock;
	unsigned long clock; /* orders uses, for least-recently-used */
	size_t capacity;
	struct slot *slots;
};

int brt_edge_token_cache_new(brt_edge_token_cache **out, size_t capacity)
{
	brt_edge_token_cache *cache;

	*out = NULL;
	if (capacity == 0)
		return brt_error_set(BRT_EINVALID, "a token cache needs room for one token");
	if (!(cache = calloc(1, sizeof(*cache))))
		return brt_error_set(BRT_ENOMEM, "out of memory");
	if (!(cache->slots = calloc(capacity, sizeof(*cache->slots))) ||
	    pthread_mutex_init(&cache->lock, NULL) != 0) {
		free(cache->slots);
		free(cache);
		return brt_error_set(BRT_ENOMEM, "out of memory");
	}
	cache->capacity = capacity;
	*out = cache;
	return 0;
}

void brt_edge_token_cache_free(brt_edge_token_cache *cache)
{
	if (!cache)
		return;
	pthread_mutex_destroy(&cache->lock);
	/* Tokens are credentials: not left behind in freed memory. */
	memset(cache->slots, 0, cache->capacity * sizeof(*cache->slots));
	free(cache->slots);
	free(cache);
}

int brt_edge_token_cache_get(char *out, size_t cap, brt_edge_token_cache *cache, const char *realm,
			     const char *service, const char *scope, uint64_t now_ms)
{
	int found = 0;

	pthread_mutex_lock(&cache->lock);
	for (size_t i = 0; i < cache->capacity; i++) {
		struct slot *s = &cache->slots[i];

		if (!s->used || now_ms >= s->fresh_until || strcmp(s->scope, scope) != 0 ||
		    (realm && strcmp(s->realm, realm) != 0) || (service && strcmp(s->service, service) != 0))
			continue;
		if (strlen(s->token) < cap) {
			memcpy(out, s->token, strlen(s->token) + 1);
			s->last_used = ++cache->clock;
			found = 1;
		}
		break;
	}
	pthread_mutex_unlock(&cache->lock);
	return found;
}

void brt_edge_token_cache_put(brt_edge_token_cache *cache, const char *realm, const char *service,
			      const char *scope, const char *token, unsigned int expires_in, uint64_t now_ms)
{
	struct slot *target = NULL;
	unsigned int margin = expires_in / 10;

	if (strlen(realm) >= BRT_EDGE_REALM_MAX || strlen(service) >= BRT_EDGE_SERVICE_MAX ||
	    strlen(scope) >= BRT_EDGE_SCOPE_MAX || strlen(token) >= BRT_EDGE_TOKEN_MAX)
		return;
	if (margin < 1)
		margin = 1;
	if (margin > 30)
		margin = 30;
	if (expires_in <= margin)
		return;
	pthread_mutex_lock(&cache->lock);
	for (size_t i = 0; i < cache->capacity && !target; i++) {
		struct slot *s = &cache->slots[i];
		if (s->used && !strcmp(s->realm, realm) && !strcmp(s->service, service) &&
		    !strcmp(s->scope, scope))
			target = s;
	}
	for (size_t i = 0; i < cache->capacity && !target; i++)
		if (!cache->slots[i].used || now_ms >= cache->slots[i].fresh_until)
			target = &cache->slots[i];
	if (!target) {
		target = &cache->slots[0];
		for (size_t i = 1; i < cache->capacity; i++)
			if (cache->slots[i].last_used < target->last_used)
				target = &cache->slots[i];
	}
	target->used = 1;
	target->fresh_until = now_ms + (uint64_t)(expires_in - margin) * 1000;
	target->last_used = ++cache->clock;
	memcpy(target->realm, realm, strlen(realm) + 1);
	memcpy(target->service, service, strlen(service) + 1);
	memcpy(target->scope, scope, strlen(scope) + 1);
	memcpy(target->token, token, strlen(token) + 1);
	pthread_mutex_unlock(&cache->lock);
}

void brt_edge_token_cache_drop(brt_edge_token_cache *cache, const char *token)
{
	pthread_mutex_lock(&cache->lock);
	for (size_t i = 0; i < cache->capacity; i++)
		if (cache->slots[i].used && strcmp(cache->slots[i].token, token) == 0)
			cache->slots[i].used = 0;
	pthread_mutex_unlock(&cache->lock);
}
