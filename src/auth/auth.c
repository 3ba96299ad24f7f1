/* Authentication and authorisation decisions (see auth.h).  On the hot
 * path a request costs one indexed key read and one SHA-256 of a 48-byte
 * secret; a token is verified (HMAC, two JSON parses) once per thread and
 * then found by its bytes; device certificates are verified once per TLS
 * connection. */
#include "auth/auth.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/base64.h"
#include "auth/device.h"
#include "auth/keys.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "oci/names.h"

/* Keys read from the store, per thread, so most requests need no read
 * transaction for authentication.  An entry is used only while the store's
 * key epoch is the one read before the entry was fetched: a revocation
 * anywhere changes the epoch, so the next request reads the key again.
 * Entries are tied to one store by its serial number (a freed store's
 * address may be reused; its serial is not) and live at most
 * KEY_CACHE_TTL_MS whatever the epoch says, so that no missed epoch change
 * can keep a key alive for long.  Expiry is checked against the entry on
 * every use. */
#define KEY_CACHE_SIZE 64
#define KEY_CACHE_TTL_MS 60000

struct key_cache_entry {
	uint64_t store;
	uint64_t epoch;
	int64_t fetched_ms; /* monotonic */
	brt_access_key key;
};

static _Thread_local struct key_cache_entry key_cache[KEY_CACHE_SIZE];

static int key_lookup(brt_access_key *out, brt_meta *meta, const char *id)
{
	struct key_cache_entry *e;
	uint64_t epoch;
	int64_t now;
	unsigned int slot = 0;
	int error;

	/* A store that cannot say when keys change is asked every time. */
	if (brt_meta_key_epoch(meta, &epoch) < 0)
		return brt_meta_key_get(meta, out, id);
	for (const char *c = id; *c; c++)
		slot = slot * 31 + (unsigned char)*c;
	e = &key_cache[slot % KEY_CACHE_SIZE];
	now = brt_monotonic_coarse_ms();
	if (e->store == meta->serial && e->epoch == epoch && now - e->fetched_ms < KEY_CACHE_TTL_MS &&
	    strcmp(e->key.id, id) == 0) {
		*out = e->key;
		return 0;
	}
	if ((error = brt_meta_key_get(meta, out, id)) < 0)
		return error;
	e->store = meta->serial;
	e->epoch = epoch;
	e->fetched_ms = now;
	e->key = *out;
	return 0;
}

/* An access key presented as a password or a bearer credential. */
static int key_login(brt_principal *p, const brt_auth *auth, const char *secret, size_t len)
{
	brt_meta *meta = auth->meta;
	brt_access_key key;
	char id[BRT_KEY_ID_LEN + 1];
	unsigned char hash[BRT_KEY_HASH_LEN];
	int error;

	if ((error = brt_key_parse(id, hash, secret, len)) < 0 || (error = key_lookup(&key, meta, id)) < 0 ||
	    (error = brt_key_verify(&key, hash, brt_now_ms())) < 0)
		return error == BRT_EUNAVAILABLE ? error : BRT_EUNAUTHORIZED;
	p->kind = BRT_PRINCIPAL_KEY;
	memcpy(p->account, key.account_id, sizeof(p->account));
	snprintf(p->subject, sizeof(p->subject), "key:%s", key.id);
	p->permissions = key.permissions;
	return 0;
}

/* Verified bearer tokens, per thread.  Verifying a token costs an HMAC,
 * base64 decodes and two JSON parses, and a client sends the same token on
 * every request until it expires; so each thread keeps the tokens it
 * verified, found by the token's exact bytes (the hash only picks the set;
 * the bytes are compared whole, so a token differing in one byte is a
 * miss).  An entry is used only while all that made the token valid still
 * holds, checked on every hit:
 *  - the same signing secret and audience (a thread that sees others empties
 *    its table) and the same store (its serial);
 *  - the key epoch read before the token was verified: a revocation
 *    anywhere changes it, and the token goes through full verification
 *    again, its key read afresh;
 *  - the token's expiry and its key's, against the clock;
 *  - at most TOKEN_CACHE_TTL_MS since verification, as for keys.
 * Only tokens that passed every check are stored.  No lock: only the owning
 * thread touches its table, and a hit copies out (into the request's pool)
 * what the request keeps, since a later request on the thread may reuse
 * the slot while this one is still running.  The table is allocated on a
 * thread's first token (idle threads cost nothing) and freed when the
 * thread exits.  A token longer than fits in a slot is verified every
 * time. */
#define TOKEN_CACHE_SETS 8
#define TOKEN_CACHE_WAYS 2
#define TOKEN_CACHE_DATA 2048 /* token text, then the grants */
#define TOKEN_CACHE_TTL_MS 60000
#define TOKEN_CACHE_SERVICE_MAX 256

struct token_cache_entry {
	size_t token_len; /* 0: empty */
	uint64_t hash;
	uint64_t used; /* the table's clock at the last hit: the least recent goes first */
	uint64_t store;
	uint64_t epoch;
	int64_t verified_ms;    /* monotonic */
	int64_t expires_at;     /* the token's, seconds since the epoch */
	int64_t key_expires_at; /* ms since the epoch, 0: never */
	unsigned int permissions;
	int catalog;
	size_t grant_count;
	size_t grants_len; /* after the token: per grant, an actions byte and the NUL-terminated name */
	char subject[96];
	char account[33];
	char data[TOKEN_CACHE_DATA];
};

struct token_cache {
	unsigned char secret[BRT_TOKEN_SECRET_LEN];
	char service[TOKEN_CACHE_SERVICE_MAX];
	uint64_t clock; /* counts hits and insertions */
	struct token_cache_entry entries[TOKEN_CACHE_SETS * TOKEN_CACHE_WAYS];
};

static _Thread_local struct token_cache *token_cache;
static _Thread_local uint64_t token_cache_hits;
static pthread_once_t token_cache_once = PTHREAD_ONCE_INIT;
static pthread_key_t token_cache_key;
static int token_cache_key_ok;

static void token_cache_free(void *cache)
{
	free(cache);
}

static void token_cache_key_create(void)
{
	token_cache_key_ok = pthread_key_create(&token_cache_key, token_cache_free) == 0;
}

/* This thread's table for `auth`'s secret and audience, emptied if it held
 * another's; NULL when there is none (no memory, an overlong service). */
static struct token_cache *token_cache_for(const brt_auth *auth)
{
	struct token_cache *cache = token_cache;
	size_t service_len = strlen(auth->service);

	if (service_len >= TOKEN_CACHE_SERVICE_MAX)
		return NULL;
	if (!cache) {
		pthread_once(&token_cache_once, token_cache_key_create);
		if (!token_cache_key_ok || !(cache = calloc(1, sizeof(*cache))))
			return NULL;
		if (pthread_setspecific(token_cache_key, cache) != 0) {
			free(cache);
			return NULL;
		}
		token_cache = cache;
	} else if (memcmp(cache->secret, auth->token_secret, BRT_TOKEN_SECRET_LEN) == 0 &&
		   strcmp(cache->service, auth->service) == 0) {
		return cache;
	}
	memset(cache->entries, 0, sizeof(cache->entries));
	memcpy(cache->secret, auth->token_secret, BRT_TOKEN_SECRET_LEN);
	memcpy(cache->service, auth->service, service_len + 1);
	return cache;
}

/* Picks the set and rejects most other tokens before the byte comparison:
 * the length and the last 8 characters, which are signature for any token
 * that was ever stored (an HMAC is uniform; a client choosing its bytes
 * can only crowd its own thread's sets).  Hashing every byte cost more
 * (a byte-serial multiply chain) than the comparison it saves. */
static uint64_t token_hash(const char *token, size_t len)
{
	uint64_t tail = 0;

	memcpy(&tail, token + len - (len < 8 ? len : 8), len < 8 ? len : 8);
	return (tail ^ len) * UINT64_C(0x9e3779b97f4a7c15);
}

#define TOKEN_CACHE_SET(cache, hash) (&(cache)->entries[((hash) >> 32) % TOKEN_CACHE_SETS * TOKEN_CACHE_WAYS])

/* The entry holding exactly `token` if it may still be used at `now` (ms
 * since the epoch); one that may not is emptied. */
static struct token_cache_entry *token_cache_find(struct token_cache *cache, uint64_t store, uint64_t epoch,
						  uint64_t hash, const char *token, size_t len, int64_t now)
{
	struct token_cache_entry *set = TOKEN_CACHE_SET(cache, hash);

	for (size_t i = 0; i < TOKEN_CACHE_WAYS; i++) {
		struct token_cache_entry *e = &set[i];

		if (e->token_len != len || e->hash != hash || memcmp(e->data, token, len) != 0)
			continue;
		if (e->store != store || e->epoch != epoch ||
		    brt_monotonic_coarse_ms() - e->verified_ms >= TOKEN_CACHE_TTL_MS ||
		    e->expires_at <= now / 1000 || (e->key_expires_at && e->key_expires_at <= now)) {
			e->token_len = 0;
			return NULL;
		}
		e->used = ++cache->clock;
		return e;
	}
	return NULL;
}

/* Keep the verified principal `p` of `token`, if it fits a slot. */
static void token_cache_put(struct token_cache *cache, uint64_t store, uint64_t epoch, uint64_t hash,
			    const char *token, size_t len, const brt_principal *p, int64_t key_expires_at)
{
	struct token_cache_entry *set = TOKEN_CACHE_SET(cache, hash), *e = NULL;
	size_t need = len, pos;

	for (size_t i = 0; i < p->token.grant_count; i++) {
		if (!p->token.grants[i].repo ||
		    __builtin_add_overflow(need, strlen(p->token.grants[i].repo) + 2, &need))
			return;
	}
	if (need > TOKEN_CACHE_DATA)
		return;
	/* The slot this token had, else an empty one, else the least
	 * recently used. */
	for (size_t i = 0; i < TOKEN_CACHE_WAYS && !e; i++)
		if (set[i].token_len == len && set[i].hash == hash && memcmp(set[i].data, token, len) == 0)
			e = &set[i];
	for (size_t i = 0; i < TOKEN_CACHE_WAYS && !e; i++)
		if (set[i].token_len == 0)
			e = &set[i];
	if (!e) {
		e = &set[0];
		for (size_t i = 1; i < TOKEN_CACHE_WAYS; i++)
			if (set[i].used < e->used)
				e = &set[i];
	}
	e->hash = hash;
	e->used = ++cache->clock;
	e->store = store;
	e->epoch = epoch;
	e->verified_ms = brt_monotonic_coarse_ms();
	e->expires_at = p->token.expires_at;
	e->key_expires_at = key_expires_at;
	e->permissions = p->permissions;
	e->catalog = p->token.catalog;
	e->grant_count = p->token.grant_count;
	memcpy(e->subject, p->token.subject, sizeof(e->subject));
	memcpy(e->account, p->token.account, sizeof(e->account));
	memcpy(e->data, token, len);
	pos = len;
	for (size_t i = 0; i < p->token.grant_count; i++) {
		size_t n = strlen(p->token.grants[i].repo) + 1;

		e->data[pos++] = (char)p->token.grants[i].actions;
		memcpy(e->data + pos, p->token.grants[i].repo, n);
		pos += n;
	}
	e->grants_len = pos - len;
	e->token_len = len;
}

/* The principal of a cached token, its grants copied into `pool`. */
static int token_cache_use(brt_principal *p, brt_pool *pool, const struct token_cache_entry *e)
{
	char *names = NULL;

	if (e->grant_count) {
		if (!(p->token.grants = brt_pool_alloc(pool, sizeof(brt_grant) * e->grant_count)) ||
		    !(names = brt_pool_alloc(pool, e->grants_len)))
			return brt_error_set(BRT_ENOMEM, "out of request memory");
		memcpy(names, e->data + e->token_len, e->grants_len);
		for (size_t i = 0; i < e->grant_count; i++) {
			p->token.grants[i].actions = (unsigned char)*names++;
			p->token.grants[i].repo = names;
			names += strlen(names) + 1;
		}
	}
	p->token.grant_count = e->grant_count;
	p->token.catalog = e->catalog;
	p->token.expires_at = e->expires_at;
	memcpy(p->token.subject, e->subject, sizeof(p->token.subject));
	memcpy(p->token.account, e->account, sizeof(p->token.account));
	p->kind = BRT_PRINCIPAL_TOKEN;
	p->permissions = e->permissions;
	memcpy(p->account, e->account, sizeof(p->account));
	memcpy(p->subject, e->subject, sizeof(p->subject));
	return 0;
}

/* Test hook (not in auth.h, like brt_meta_sqlite_handle): how many
 * tokens this thread authenticated from its table. */
uint64_t brt_auth_token_cache_hits(void);
uint64_t brt_auth_token_cache_hits(void)
{
	return token_cache_hits;
}

static int token_login(brt_principal *p, const brt_auth *auth, brt_pool *pool, const char *token, size_t len)
{
	brt_meta *meta = auth->meta;
	struct token_cache *cache = NULL;
	struct token_cache_entry *entry;
	brt_access_key key;
	uint64_t epoch = 0, hash = 0;
	int64_t now = brt_now_ms(), key_expires_at = 0;
	int error;

	/* A store that cannot say when keys change gets no cached tokens.
	 * The epoch is read before anything is verified, so an entry is never
	 * newer than the key state it was checked against. */
	if (meta && brt_meta_key_epoch(meta, &epoch) == 0 && (cache = token_cache_for(auth)) != NULL) {
		hash = token_hash(token, len);
		entry = token_cache_find(cache, meta->serial, epoch, hash, token, len, now);
		if (entry) {
			token_cache_hits++;
			return token_cache_use(p, pool, entry) < 0 ? BRT_EUNAUTHORIZED : 0;
		}
	}
	error = brt_token_verify(&p->token, pool, auth->token_secret, auth->service, token, len, now / 1000);
	if (error < 0)
		return BRT_EUNAUTHORIZED;
	if (strncmp(p->token.subject, "key:", 4) == 0) {
		/* A token lives no longer than its key. */
		if ((error = key_lookup(&key, meta, p->token.subject + 4)) == BRT_EUNAVAILABLE)
			return error;
		if (error < 0 || key.revoked_at || (key.expires_at && key.expires_at <= now) ||
		    strcmp(key.account_id, p->token.account) != 0)
			return BRT_EUNAUTHORIZED;
		p->permissions = key.permissions;
		key_expires_at = key.expires_at;
	} else if (strncmp(p->token.subject, "device:", 7) == 0) {
		p->permissions = BRT_PERM_PULL;
	} else {
		return BRT_EUNAUTHORIZED;
	}
	p->kind = BRT_PRINCIPAL_TOKEN;
	memcpy(p->account, p->token.account, sizeof(p->account));
	memcpy(p->subject, p->token.subject, sizeof(p->subject));
	if (cache)
		token_cache_put(cache, meta->serial, epoch, hash, token, len, p, key_expires_at);
	return 0;
}

int brt_auth_parse_header(brt_credential_kind *kind_out, char *out, size_t cap, const char *value)
{
	unsigned char decoded[256];
	size_t len, n = 0;

	if (strncasecmp(value, "Bearer ", 7) == 0) {
		value += 7;
		while (*value == ' ')
			value++;
		len = strlen(value);
		if (len == 0 || len >= cap)
			return brt_error_set(BRT_EUNAUTHORIZED, "malformed bearer credential");
		*kind_out = strncmp(value, BRT_ACCESS_KEY_PREFIX, 4) == 0 ? BRT_CREDENTIAL_KEY
									  : BRT_CREDENTIAL_TOKEN;
		memcpy(out, value, len + 1);
		return 0;
	}
	if (strncasecmp(value, "Basic ", 6) != 0)
		return brt_error_set(BRT_EUNAUTHORIZED, "unsupported authorization scheme");
	/* "Basic base64(KEY:<access key>)": the user name is always KEY.  The
	 * token68 must be the canonical encoding (padded, zero trailing
	 * bits), so one credential has one spelling. */
	value += 6;
	while (*value == ' ')
		value++;
	len = strlen(value);
	while (len > 0 && value[len - 1] == ' ')
		len--;
	if (len < 4 || brt_base64_decode(&n, decoded, sizeof(decoded), value, len, BRT_BASE64_STD) < 0)
		return brt_error_set(BRT_EUNAUTHORIZED, "malformed basic credential");
	if (n < 4 || memcmp(decoded, "KEY:", 4) != 0)
		return brt_error_set(BRT_EUNAUTHORIZED, "the user name must be KEY");
	if (n - 4 >= cap || memchr(decoded + 4, '\0', n - 4))
		return brt_error_set(BRT_EUNAUTHORIZED, "malformed basic credential");
	memcpy(out, decoded + 4, n - 4);
	out[n - 4] = '\0';
	*kind_out = BRT_CREDENTIAL_KEY;
	return 0;
}

int brt_auth_password(brt_principal *out, const brt_auth *auth, const char *user, const char *password)
{
	memset(out, 0, sizeof(*out));
	if (strcmp(user, "KEY") != 0)
		return brt_error_set(BRT_EUNAUTHORIZED, "the user name must be KEY");
	return key_login(out, auth, password, strlen(password));
}

void brt_auth_authenticate(brt_principal *p, const brt_auth *auth, brt_pool *pool,
			   const brt_credentials *credentials)
{
	brt_auth_device *device = credentials->device;

	memset(p, 0, sizeof(*p));
	if (!auth->enabled) {
		p->kind = BRT_PRINCIPAL_OPEN;
		p->permissions = BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE;
		return;
	}
	if (credentials->authorization) {
		char credential[BRT_TOKEN_MAX_LEN + 1];
		brt_credential_kind kind;
		int error = brt_auth_parse_header(&kind, credential, sizeof(credential),
						  credentials->authorization);

		if (error == 0 && kind == BRT_CREDENTIAL_KEY)
			error = key_login(p, auth, credential, strlen(credential));
		else if (error == 0)
			error = token_login(p, auth, pool, credential, strlen(credential));
		if (error < 0) {
			memset(p, 0, sizeof(*p));
			p->unavailable = error == BRT_EUNAVAILABLE;
		}
		return;
	}
	if (!device)
		return;
	if (!device->checked) {
		device->checked = 1;
		if (credentials->tls_session)
			brt_device_check(device, credentials->tls_session, auth->meta,
					 auth->device_account_field);
	}
	if (device->state == 1) {
		p->kind = BRT_PRINCIPAL_DEVICE;
		memcpy(p->account, device->account, sizeof(p->account));
		snprintf(p->subject, sizeof(p->subject), "device:%s", device->name);
		p->permissions = BRT_PERM_PULL;
	}
}

/* Does `repo` belong to `account` ("<account>/...")? */
static int in_account(const char *repo, const char *account)
{
	return strncmp(repo, account, 32) == 0 && repo[32] == '/' && account[0] != '\0';
}

unsigned int brt_auth_allowed(const brt_principal *p, const char *repo)
{
	if (p->kind == BRT_PRINCIPAL_OPEN)
		return p->permissions;
	if (p->kind == BRT_PRINCIPAL_NONE || !brt_name_tenant_valid(repo, strlen(repo)) ||
	    !in_account(repo, p->account))
		return 0;
	return p->permissions;
}

static int token_grants(const brt_token_claims *token, const char *repo, unsigned int need)
{
	for (size_t i = 0; i < token->grant_count; i++)
		if (strcmp(token->grants[i].repo, repo) == 0 && (token->grants[i].actions & need) == need)
			return 1;
	return 0;
}

int brt_auth_check(const brt_principal *p, brt_action action, const char *repo)
{
	unsigned int need = action & (BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE);

	if (p->kind == BRT_PRINCIPAL_OPEN)
		return 0;
	if (p->kind == BRT_PRINCIPAL_NONE)
		return p->unavailable ? brt_error_set(BRT_EUNAVAILABLE, "credentials cannot be checked now")
				      : brt_error_set(BRT_EUNAUTHORIZED, "authentication required");
	if (action == BRT_ACTION_CATALOG) {
		if (p->kind == BRT_PRINCIPAL_TOKEN && !p->token.catalog)
			return brt_error_set(BRT_EUNAUTHORIZED, "the token does not grant the catalog");
		return 0;
	}
	if (!repo)
		return 0;
	if (!brt_name_tenant_valid(repo, strlen(repo)))
		return brt_error_set(BRT_ENAME, "repository names are <account id>/<name>");
	/* Same answer whether or not the repository exists. */
	if (!in_account(repo, p->account) || (p->permissions & need) != need)
		return brt_error_set(BRT_EDENIED, "requested access to the resource is denied");
	if (p->kind == BRT_PRINCIPAL_TOKEN && !token_grants(&p->token, repo, need))
		return brt_error_set(BRT_EUNAUTHORIZED, "the token does not grant this scope");
	return 0;
}

const char *brt_auth_catalog_prefix(const brt_principal *p, brt_pool *pool)
{
	if (p->kind == BRT_PRINCIPAL_OPEN)
		return NULL;
	return brt_pool_printf(pool, "%s/", p->account);
}

const char *brt_auth_challenge(brt_pool *pool, const brt_auth *auth, const char *realm, brt_action action,
			       const char *repo)
{
	const char *actions;

	if (!auth->enabled)
		return NULL;
	if (action == BRT_ACTION_CATALOG)
		return brt_pool_printf(pool,
				       "Bearer realm=\"%s\",service=\"%s\",scope=\"registry:catalog:*\"",
				       realm, auth->service);
	if (!repo)
		return brt_pool_printf(pool, "Bearer realm=\"%s\",service=\"%s\"", realm, auth->service);
	actions = action == BRT_ACTION_PUSH ? "pull,push" : action == BRT_ACTION_DELETE ? "delete" : "pull";
	return brt_pool_printf(pool, "Bearer realm=\"%s\",service=\"%s\",scope=\"repository:%s:%s\"", realm,
			       auth->service, repo, actions);
}
