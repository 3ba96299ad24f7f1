/* Access keys: "brt_" + 16 hex key id + 48 hex secret.  The id finds the
 * stored key in one indexed read; only the SHA-256 of the secret is
 * stored, and it is compared in constant time.  A fast hash is right here:
 * the secret is 192 random bits, not a password a person chose. */
#ifndef BRT_KEYS_H
#define BRT_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "common/hex.h"    /* brt_hex_valid, for the callers that found it here */
#include "common/random.h" /* brt_random_hex, likewise */
#include "meta/meta.h"

#define BRT_ACCESS_KEY_PREFIX "brt_"
#define BRT_KEY_SECRET_LEN 48
#define BRT_ACCESS_KEY_LEN (4 + BRT_KEY_ID_LEN + BRT_KEY_SECRET_LEN)

/* Times here are milliseconds since the epoch (as in meta.h); token times
 * (token.h) are seconds, as in JWT.
 *
 * Make a new key for `account_id`: fills `key` (id, hash, permissions,
 * label, times) and writes the access key string (BRT_ACCESS_KEY_LEN + 1
 * bytes) to `access_key_out`.  BRT_EIO if no randomness. */
int brt_key_generate(brt_access_key *key, char *access_key_out, const char *account_id,
		     unsigned int permissions, const char *label, int64_t now, int64_t expires_at);

/* Split an access key string into its id (BRT_KEY_ID_LEN + 1 bytes) and
 * the hash of its secret.  BRT_EINVALID if it is not of the key form. */
int brt_key_parse(char *id_out, unsigned char *hash_out, const char *access_key, size_t len);

/* 0 if `key` may be used at `now` with a secret hashing to `hash`;
 * BRT_EUNAUTHORIZED otherwise (wrong secret, revoked, expired). */
int brt_key_verify(const brt_access_key *key, const unsigned char *hash, int64_t now);

/* 1 if `s` is an account id: exactly 32 lower-case hex characters. */
int brt_account_id_valid(const char *s);

/* "pull", "pull,push", "pull,push,delete" ... */
const char *brt_permissions_name(unsigned int permissions);

#endif
