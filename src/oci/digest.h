/* Content digests ("sha256:<64 hex>", "sha512:<128 hex>") and the streaming
 * hasher that produces them.  The hasher's state can be saved in a portable
 * byte format of our own (chaining words, length, buffered tail), so an
 * upload can continue in another process or on another node. */
#ifndef BRT_DIGEST_H
#define BRT_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/sha.h>

typedef enum brt_digest_alg {
	BRT_DIGEST_SHA256 = 1,
	BRT_DIGEST_SHA512 = 2,
} brt_digest_alg;

#define BRT_DIGEST_STR_MAX (7 + 128) /* "sha512:" + hex, without NUL */

typedef struct brt_digest {
	brt_digest_alg alg;
	size_t len;                       /* strlen(str) */
	char str[BRT_DIGEST_STR_MAX + 1]; /* canonical "alg:hex" */
} brt_digest;

/* Parse `s` (`len` bytes, not necessarily NUL-terminated).
 * BRT_EINVALID for anything not of the form alg:encoded with a known
 * algorithm and lower-case hex of the right length; BRT_EUNSUPPORTED for a
 * well-formed digest of another algorithm (e.g. "blake3:..."). */
int brt_digest_parse(brt_digest *out, const char *s, size_t len);

/* The hex part of a parsed digest.  Borrowed from `d`. */
const char *brt_digest_hex(const brt_digest *d);

/* Streaming hasher. */
typedef struct brt_hasher {
	brt_digest_alg alg;
	union {
		SHA256_CTX sha256;
		SHA512_CTX sha512;
	} ctx;
} brt_hasher;

#define BRT_HASHER_STATE_MAX 256

void brt_hasher_init(brt_hasher *h, brt_digest_alg alg);
void brt_hasher_update(brt_hasher *h, const void *data, size_t len);
/* Finish and write the digest; `h` must be initialised again before reuse. */
void brt_hasher_final(brt_hasher *h, brt_digest *out);
/* Bytes hashed so far. */
uint64_t brt_hasher_length(const brt_hasher *h);

/* Serialise the state into `buf` (at least BRT_HASHER_STATE_MAX bytes);
 * returns the number of bytes written. */
size_t brt_hasher_save(const brt_hasher *h, unsigned char *buf);
/* Restore a state written by brt_hasher_save; BRT_EINVALID if corrupt. */
int brt_hasher_load(brt_hasher *h, const unsigned char *buf, size_t len);

/* One-shot digest of a buffer. */
void brt_digest_of(brt_digest *out, brt_digest_alg alg, const void *data, size_t len);

#endif
