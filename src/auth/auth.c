/* Authentication and authorisation decisions (see auth.h).  On the hot
 * path a request costs one indexed key read and one SHA-256 of a 48-byte
 * secret (or one HMAC for a token); device certificates are verified once
 * per TLS connection. */
#include "auth/auth.h"

#include <stdint.h>
#include <stdio.h>
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
		return BRT_EUNAUTHORIZED;
	p->kind = BRT_PRINCIPAL_KEY;
	memcpy(p->account, key.account_id, sizeof(p->account));
	snprintf(p->subject, sizeof(p->subject), "key:%s", key.id);
	p->permissions = key.permissions;
	return 0;
}

static int token_login(brt_principal *p, const brt_auth *auth, brt_pool *pool, const char *token, size_t len)
{
	brt_meta *meta = auth->meta;
	brt_access_key key;
	int64_t now = brt_now_ms();
	int error;

	error = brt_token_verify(&p->token, pool, auth->token_secret, auth->service, token, len, now / 1000);
	if (error < 0)
		return BRT_EUNAUTHORIZED;
	if (strncmp(p->token.subject, "key:", 4) == 0) {
		/* A token lives no longer than its key. */
		if (key_lookup(&key, meta, p->token.subject + 4) < 0 || key.revoked_at ||
		    (key.expires_at && key.expires_at <= now) ||
		    strcmp(key.account_id, p->token.account) != 0)
			return BRT_EUNAUTHORIZED;
		p->permissions = key.permissions;
	} else if (strncmp(p->token.subject, "device:", 7) == 0) {
		p->permissions = BRT_PERM_PULL;
	} else {
		return BRT_EUNAUTHORIZED;
	}
	p->kind = BRT_PRINCIPAL_TOKEN;
	memcpy(p->account, p->token.account, sizeof(p->account));
	memcpy(p->subject, p->token.subject, sizeof(p->subject));
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
		if (error < 0)
			memset(p, 0, sizeof(*p));
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
		return brt_error_set(BRT_EUNAUTHORIZED, "authentication required");
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
