/* Access key generation, parsing and verification (see keys.h). */
#include "auth/keys.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/error.h"
#include "common/hex.h"
#include "common/random.h"

/* OpenSSL 3's one-shot SHA256() looks the algorithm up on every call,
 * which costs more than hashing 48 bytes: fetch it once. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void sha256(const void *data, size_t len, unsigned char *out)
{
	pthread_once(&sha256_once, sha256_fetch);
	if (!sha256_md || !EVP_Digest(data, len, out, NULL, sha256_md, NULL))
		SHA256(data, len, out);
}

int brt_account_id_valid(const char *s)
{
	size_t len = strnlen(s, 33);

	return len == 32 && brt_hex_lower_valid(s, len);
}

int brt_key_generate(brt_access_key *key, char *access_key_out, const char *account_id,
		     unsigned int permissions, const char *label, int64_t now, int64_t expires_at)
{
	char secret[BRT_KEY_SECRET_LEN + 1];
	int error;

	memset(key, 0, sizeof(*key));
	if ((error = brt_random_hex(key->id, BRT_KEY_ID_LEN)) < 0 ||
	    (error = brt_random_hex(secret, BRT_KEY_SECRET_LEN)) < 0)
		return error;
	snprintf(key->account_id, sizeof(key->account_id), "%s", account_id);
	sha256(secret, BRT_KEY_SECRET_LEN, key->secret_hash);
	key->permissions = permissions;
	snprintf(key->label, sizeof(key->label), "%s", label ? label : "");
	key->created_at = now;
	key->expires_at = expires_at;
	snprintf(access_key_out, BRT_ACCESS_KEY_LEN + 1, "%s%s%s", BRT_ACCESS_KEY_PREFIX, key->id, secret);
	OPENSSL_cleanse(secret, sizeof(secret));
	return 0;
}

int brt_key_parse(char *id_out, unsigned char *hash_out, const char *access_key, size_t len)
{
	const char *id = access_key + 4, *secret = access_key + 4 + BRT_KEY_ID_LEN;

	if (len != BRT_ACCESS_KEY_LEN || memcmp(access_key, BRT_ACCESS_KEY_PREFIX, 4) != 0 ||
	    !brt_hex_lower_valid(id, BRT_KEY_ID_LEN) || !brt_hex_lower_valid(secret, BRT_KEY_SECRET_LEN))
		return brt_error_set(BRT_EINVALID, "not an access key");
	memcpy(id_out, id, BRT_KEY_ID_LEN);
	id_out[BRT_KEY_ID_LEN] = '\0';
	sha256(secret, BRT_KEY_SECRET_LEN, hash_out);
	return 0;
}

int brt_key_verify(const brt_access_key *key, const unsigned char *hash, int64_t now)
{
	if (CRYPTO_memcmp(key->secret_hash, hash, BRT_KEY_HASH_LEN) != 0)
		return brt_error_set(BRT_EUNAUTHORIZED, "invalid access key");
	if (key->revoked_at)
		return brt_error_set(BRT_EUNAUTHORIZED, "access key %s is revoked", key->id);
	if (key->expires_at && key->expires_at <= now)
		return brt_error_set(BRT_EUNAUTHORIZED, "access key %s has expired", key->id);
	return 0;
}

const char *brt_permissions_name(unsigned int permissions)
{
	static const char *const names[8] = {"none",   "pull",        "push",        "pull,push",
					     "delete", "pull,delete", "push,delete", "pull,push,delete"};

	return names[permissions & 7];
}
