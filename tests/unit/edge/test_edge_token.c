/* Tests for edge/token: Bearer challenges (quoting, case, refusals), the
 * realm check that keeps the gateway's credentials on the upstream's own
 * origin, the token request URL, the scope of a request, the token
 * service's answer, and the token cache (keying, freshness with its
 * margin, eviction, dropping). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "common/error.h"
#include "edge/token.h"

static void test_challenge(void)
{
	brt_edge_challenge c;

	CHECK_EQ_INT(brt_edge_challenge_parse(&c,
					      "Bearer realm=\"https://r.example/v2/token\",service=\"svc\","
					      "scope=\"repository:a/b:pull\""),
		     0);
	CHECK_EQ_STR(c.realm, "https://r.example/v2/token");
	CHECK_EQ_STR(c.service, "svc");
	CHECK_EQ_STR(c.scope, "repository:a/b:pull");
	/* any case, spaces, bare values, unknown parameters, escapes */
	CHECK_EQ_INT(brt_edge_challenge_parse(&c,
					      "  bearer  Realm=http://h/t , error=\"invalid_token\", "
					      "SERVICE=\"a\\\"b\""),
		     0);
	CHECK_EQ_STR(c.realm, "http://h/t");
	CHECK_EQ_STR(c.service, "a\"b");
	CHECK_EQ_STR(c.scope, "");
	/* several scopes in one value */
	CHECK_EQ_INT(brt_edge_challenge_parse(&c, "Bearer realm=\"http://h/t\",scope=\"a:b:pull c:d:push\""),
		     0);
	CHECK_EQ_STR(c.scope, "a:b:pull c:d:push");

	CHECK_EQ_INT(brt_edge_challenge_parse(&c, "Basic realm=\"x\""), BRT_EINVALID);
	CHECK_EQ_INT(brt_edge_challenge_parse(&c, "Bearerrealm=\"x\""), BRT_EINVALID);
	CHECK_EQ_INT(brt_edge_challenge_parse(&c, "Bearer service=\"x\""), BRT_EINVALID);
	CHECK_EQ_INT(brt_edge_challenge_parse(&c, "Bearer realm=\"unterminated"), BRT_EINVALID);
	CHECK_EQ_INT(brt_edge_challenge_parse(&c, "Bearer realm"), BRT_EINVALID);
	CHECK_EQ_INT(brt_edge_challenge_parse(&c, "Bearer =x"), BRT_EINVALID);
	{
		char big[BRT_EDGE_REALM_MAX + 64];
		snprintf(big, sizeof(big), "Bearer realm=\"http://h/%0*d\"", BRT_EDGE_REALM_MAX, 0);
		CHECK_EQ_INT(brt_edge_challenge_parse(&c, big), BRT_EINVALID);
	}
}

static void test_realm_allowed(void)
{
	const char *origin = "https://registry.example:5000";

	CHECK(brt_edge_realm_allowed("https://registry.example:5000/v2/token", origin));
	CHECK(brt_edge_realm_allowed("HTTPS://Registry.Example:5000/auth?x=1", origin));
	CHECK(brt_edge_realm_allowed("https://registry.example:5000", origin));
	CHECK(brt_edge_realm_allowed("https://registry.example:5000?a", origin));
	/* another origin in any disguise */
	CHECK(!brt_edge_realm_allowed("https://registry.example:50001/v2/token", origin));
	CHECK(!brt_edge_realm_allowed("https://registry.example:5000@evil.example/v2/token", origin));
	CHECK(!brt_edge_realm_allowed("https://registry.example:5000.evil.example/v2/token", origin));
	CHECK(!brt_edge_realm_allowed("http://registry.example:5000/v2/token", origin));
	CHECK(!brt_edge_realm_allowed("https://registry.example/v2/token", origin));
	CHECK(!brt_edge_realm_allowed("https://auth.example/v2/token", origin));
	CHECK(!brt_edge_realm_allowed("https://registry.example:5000#frag", origin));
	CHECK(!brt_edge_realm_allowed("//registry.example:5000/v2/token", origin));
	CHECK(!brt_edge_realm_allowed("", origin));
}

static void test_url(void)
{
	brt_edge_challenge c;
	char url[512];

	memset(&c, 0, sizeof(c));
	snprintf(c.realm, sizeof(c.realm), "http://h:1/v2/token");
	snprintf(c.service, sizeof(c.service), "my registry");
	snprintf(c.scope, sizeof(c.scope), "repository:a/b:pull  repository:c:pull,push");
	CHECK_EQ_INT(brt_edge_token_url(url, sizeof(url), &c), 0);
	CHECK_EQ_STR(url,
		     "http://h:1/v2/token?service=my%20registry&scope=repository%3Aa%2Fb%3Apull"
		     "&scope=repository%3Ac%3Apull%2Cpush");
	/* a realm with a query of its own; no scope */
	snprintf(c.realm, sizeof(c.realm), "http://h/auth?tenant=x");
	snprintf(c.service, sizeof(c.service), "s&t=1");
	c.scope[0] = '\0';
	CHECK_EQ_INT(brt_edge_token_url(url, sizeof(url), &c), 0);
	CHECK_EQ_STR(url, "http://h/auth?tenant=x&service=s%26t%3D1");
	CHECK_EQ_INT(brt_edge_token_url(url, 20, &c), BRT_EINVALID);
	CHECK_EQ_INT(brt_edge_token_url(url, 0, &c), BRT_EINVALID);
}

static void test_scope(void)
{
	char s[128];

	CHECK_EQ_INT(brt_edge_token_scope(s, sizeof(s), "GET", "/v2/"), 0);
	CHECK_EQ_STR(s, "");
	CHECK_EQ_INT(brt_edge_token_scope(s, sizeof(s), "GET", "/v2/a/b/manifests/v1"), 0);
	CHECK_EQ_STR(s, "repository:a/b:pull");
	CHECK_EQ_INT(brt_edge_token_scope(s, sizeof(s), "HEAD", "/v2/a/blobs/sha256:00"), 0);
	CHECK_EQ_STR(s, "repository:a:pull");
	CHECK_EQ_INT(brt_edge_token_scope(s, sizeof(s), "GET", "/v2/x/tags/list?n=1&last=a/b"), 0);
	CHECK_EQ_STR(s, "repository:x:pull");
	CHECK_EQ_INT(brt_edge_token_scope(s, sizeof(s), "GET", "/v2/a/manifests/b/blobs/sha256:00"), 0);
	CHECK_EQ_STR(s, "repository:a/manifests/b:pull");
	CHECK_EQ_INT(brt_edge_token_scope(s, sizeof(s), "PUT", "/v2/a/manifests/v1"), 0);
	CHECK_EQ_STR(s, "repository:a:pull,push");
	CHECK_EQ_INT(brt_edge_token_scope(s, sizeof(s), "GET", "/v2/a/manifests"), BRT_EINVALID);
	CHECK_EQ_INT(brt_edge_token_scope(s, sizeof(s), "GET", "/v2/manifests/v1"), BRT_EINVALID);
	CHECK_EQ_INT(brt_edge_token_scope(s, sizeof(s), "GET", "/v1/a/manifests/v1"), BRT_EINVALID);
	CHECK_EQ_INT(brt_edge_token_scope(s, sizeof(s), "GET", "/v2"), BRT_EINVALID);
	CHECK_EQ_INT(brt_edge_token_scope(s, 10, "GET", "/v2/a/b/manifests/v1"), BRT_EINVALID);
}

static int parse(char *token, size_t cap, unsigned int *ttl, const char *json)
{
	return brt_edge_token_parse(token, cap, ttl, json, strlen(json));
}

static void test_answer(void)
{
	char token[64];
	unsigned int ttl = 0;

	CHECK_EQ_INT(parse(token, sizeof(token), &ttl, "{\"token\":\"t1\",\"expires_in\":300}"), 0);
	CHECK_EQ_STR(token, "t1");
	CHECK_EQ_INT(ttl, 300);
	CHECK_EQ_INT(parse(token, sizeof(token), &ttl, "{\"access_token\":\"t2\"}"), 0);
	CHECK_EQ_STR(token, "t2");
	CHECK_EQ_INT(ttl, BRT_EDGE_TOKEN_DEFAULT_TTL);
	CHECK_EQ_INT(parse(token, sizeof(token), &ttl,
			   "{\"token\":\"\",\"access_token\":\"t3\",\"expires_in\":0}"),
		     0);
	CHECK_EQ_STR(token, "t3");
	CHECK_EQ_INT(ttl, BRT_EDGE_TOKEN_DEFAULT_TTL);
	CHECK_EQ_INT(parse(token, sizeof(token), &ttl, "{\"token\":\"t\",\"expires_in\":\"300\"}"), 0);
	CHECK_EQ_INT(ttl, BRT_EDGE_TOKEN_DEFAULT_TTL);
	CHECK_EQ_INT(parse(token, sizeof(token), &ttl, "{\"token\":\"t\",\"expires_in\":99999999}"), 0);
	CHECK_EQ_INT(ttl, 86400);

	CHECK_EQ_INT(parse(token, sizeof(token), &ttl, "[]"), BRT_EINVALID);
	CHECK_EQ_INT(parse(token, sizeof(token), &ttl, "not json"), BRT_EINVALID);
	CHECK_EQ_INT(parse(token, sizeof(token), &ttl, "{\"expires_in\":5}"), BRT_EINVALID);
	CHECK_EQ_INT(parse(token, sizeof(token), &ttl, "{\"token\":5}"), BRT_EINVALID);
	/* a token must be able to travel in a header as it is */
	CHECK_EQ_INT(parse(token, sizeof(token), &ttl, "{\"token\":\"a\\r\\nX-Evil: 1\"}"), BRT_EINVALID);
	CHECK_EQ_INT(parse(token, sizeof(token), &ttl, "{\"token\":\"a b\"}"), BRT_EINVALID);
	CHECK_EQ_INT(parse(token, sizeof(token), &ttl, "{\"token\":\"\\u00e9\"}"), BRT_EINVALID);
	CHECK_EQ_INT(parse(token, 4, &ttl, "{\"token\":\"abcd\"}"), BRT_EINVALID);
	CHECK_EQ_INT(parse(token, sizeof(token), &ttl, "{\"token\":\"a\",\"token\":\"b\"}"), BRT_EINVALID);
}

static void test_cache(void)
{
	brt_edge_token_cache *cache = NULL;
	char t[32];

	CHECK_EQ_INT(brt_edge_token_cache_new(&cache, 0), BRT_EINVALID);
	CHECK(cache == NULL);
	CHECK_EQ_INT(brt_edge_token_cache_new(&cache, 2), 0);
	if (!cache)
		return;
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "s1", 0), 0);

	/* 100 s: handed out for 90 s (a tenth of its life before the end) */
	brt_edge_token_cache_put(cache, "r", "svc", "s1", "tok-a", 100, 1000);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, "r", "svc", "s1", 1000), 1);
	CHECK_EQ_STR(t, "tok-a");
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "s1", 90999), 1);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "s1", 91000), 0);
	/* keyed by realm, service and scope */
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, "r2", "svc", "s1", 2000), 0);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, "r", "svc2", "s1", 2000), 0);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, "r", "svc", "s2", 2000), 0);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, "r", "svc", "", 2000), 0);
	/* too small a buffer: not found */
	CHECK_EQ_INT(brt_edge_token_cache_get(t, 5, cache, NULL, NULL, "s1", 2000), 0);

	/* margins: at least 1 s, at most 30 s; a token shorter than its margin is not kept */
	brt_edge_token_cache_put(cache, "r", "svc", "short", "tok-s", 3, 0);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "short", 1999), 1);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "short", 2000), 0);
	brt_edge_token_cache_put(cache, "r", "svc", "long", "tok-l", 3600, 0);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "long", 3569999), 1);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "long", 3570000), 0);
	brt_edge_token_cache_put(cache, "r", "svc", "one", "tok-1", 1, 0);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "one", 0), 0);

	/* the same key replaces; a full cache takes an expired slot first,
	 * then the least recently used */
	brt_edge_token_cache_free(cache);
	CHECK_EQ_INT(brt_edge_token_cache_new(&cache, 2), 0);
	brt_edge_token_cache_put(cache, "r", "", "a", "tok-a1", 100, 0);
	brt_edge_token_cache_put(cache, "r", "", "a", "tok-a2", 100, 0);
	brt_edge_token_cache_put(cache, "r", "", "b", "tok-b", 100, 0);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "b", 10), 1);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "a", 10), 1);
	CHECK_EQ_STR(t, "tok-a2");
	brt_edge_token_cache_put(cache, "r", "", "c", "tok-c", 100, 20); /* b is least recent */
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "b", 30), 0);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "a", 30), 1);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "c", 30), 1);
	brt_edge_token_cache_put(cache, "r", "", "d", "tok-d", 300, 95000); /* a and c are stale */
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "d", 95000), 1);
	brt_edge_token_cache_put(cache, "r", "", "e", "tok-e", 300, 95000);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "d", 95000), 1);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "e", 95000), 1);

	/* a refused token is forgotten */
	brt_edge_token_cache_drop(cache, "tok-d");
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "d", 95000), 0);
	CHECK_EQ_INT(brt_edge_token_cache_get(t, sizeof(t), cache, NULL, NULL, "e", 95000), 1);
	brt_edge_token_cache_free(cache);
	brt_edge_token_cache_free(NULL);
}

int main(void)
{
	test_challenge();
	test_realm_allowed();
	test_url();
	test_scope();
	test_answer();
	test_cache();
	return check_exit("test_edge_token");
}
