/* Tests for oci/digest: digest string parsing, the SHA-256/SHA-512 hasher
 * against known vectors, and the portable saved state: saving at every
 * length and split point must resume to the one-shot digest, and damaged
 * states must be refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/error.h"
#include "oci/digest.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX128 HEX64 HEX64

#define ABC_SHA256 "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define ABC_SHA512                                                                           \
	"sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274" \
	"fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
#define EMPTY_SHA256 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define EMPTY_SHA512                                                                         \
	"sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d8" \
	"5f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
/* 1 MiB where byte i is i % 251 (a period that never aligns with blocks). */
#define MIB_SHA256 "sha256:631b84027d6b9e52b539c4e8373622d23032dfadc64d60af87339c9037e4f769"
#define MIB_SHA512                                                                           \
	"sha512:67dad569eefc986a3b2424f5516d5a0284bb53d7b52d75f5ed881a6830a95765ccc82bc4875" \
	"2fb693422579f11dc9a400561ec1885af9eeef703dbbd312d4fd0"

#define MIB (1u << 20)

static int parse(const char *s)
{
	brt_digest d;

	return brt_digest_parse(&d, s, strlen(s));
}

static void test_parse_valid(void)
{
	brt_digest d;
	const char *s = "sha256:" HEX64;

	CHECK_EQ_INT(brt_digest_parse(&d, s, strlen(s)), 0);
	CHECK_EQ_INT(d.alg, BRT_DIGEST_SHA256);
	CHECK_EQ_INT(d.len, strlen(s));
	CHECK_EQ_STR(d.str, s);
	CHECK_EQ_STR(brt_digest_hex(&d), HEX64);

	s = "sha512:" HEX128;
	CHECK_EQ_INT(brt_digest_parse(&d, s, strlen(s)), 0);
	CHECK_EQ_INT(d.alg, BRT_DIGEST_SHA512);
	CHECK_EQ_INT(d.len, strlen(s));
	CHECK_EQ_STR(d.str, s);
	CHECK_EQ_STR(brt_digest_hex(&d), HEX128);

	/* Only `len` bytes are read; the copy is NUL-terminated. */
	s = "sha256:" HEX64 "trailing";
	CHECK_EQ_INT(brt_digest_parse(&d, s, 7 + 64), 0);
	CHECK_EQ_STR(d.str, "sha256:" HEX64);
}

static void test_parse_invalid(void)
{
	brt_digest d;
	char long_input[2000];

	CHECK_EQ_INT(parse(""), BRT_EINVALID);
	CHECK_EQ_INT(brt_digest_parse(&d, NULL, 0), BRT_EINVALID);
	CHECK_EQ_INT(parse(HEX64), BRT_EINVALID);          /* no colon */
	CHECK_EQ_INT(parse("sha256" HEX64), BRT_EINVALID); /* no colon */
	CHECK_EQ_INT(parse(":" HEX64), BRT_EINVALID);      /* no algorithm */
	CHECK_EQ_INT(parse("sha256:"), BRT_EINVALID);
	CHECK_EQ_INT(parse("sha512:"), BRT_EINVALID);
	CHECK_EQ_INT(parse("sha256:"
			   "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"),
		     BRT_EINVALID); /* upper-case hex */
	CHECK_EQ_INT(parse("sha512:" HEX64
			   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeF"),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse("sha256:"
			   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"),
		     BRT_EINVALID);                             /* 63 */
	CHECK_EQ_INT(parse("sha256:" HEX64 "0"), BRT_EINVALID); /* 65 */
	CHECK_EQ_INT(parse("sha512:" HEX64), BRT_EINVALID);     /* sha256 length */
	CHECK_EQ_INT(parse("sha256:" HEX128), BRT_EINVALID);    /* sha512 length */
	CHECK_EQ_INT(parse("sha512:" HEX128 "0"), BRT_EINVALID);
	CHECK_EQ_INT(parse("sha256:"
			   "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse("sha256: "
			   "123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse("sha256:" HEX64 "\n"), BRT_EINVALID);
	CHECK_EQ_INT(parse("SHA256:" HEX64), BRT_EINVALID); /* algorithms are lower case */
	CHECK_EQ_INT(parse("sha256::" HEX64), BRT_EINVALID);
	CHECK_EQ_INT(parse("sha 256:" HEX64), BRT_EINVALID);
	CHECK_EQ_INT(parse("blake3:"), BRT_EINVALID);
	/* malformed algorithm or encoding is invalid, not merely unsupported */
	CHECK_EQ_INT(parse("blake3:!!!"), BRT_EINVALID);
	CHECK_EQ_INT(parse("-x:abc"), BRT_EINVALID);
	CHECK_EQ_INT(parse("a..b:abc"), BRT_EINVALID);
	CHECK_EQ_INT(parse("ab-:abc"), BRT_EINVALID);
	CHECK_EQ_INT(brt_digest_parse(&d, "sha256:" HEX64, 7 + 63), BRT_EINVALID);
	CHECK_EQ_INT(brt_digest_parse(&d, "sha256\0" HEX64, 7 + 64), BRT_EINVALID);

	memset(long_input, 'a', sizeof(long_input));
	memcpy(long_input, "sha256:", 7);
	CHECK_EQ_INT(brt_digest_parse(&d, long_input, sizeof(long_input)), BRT_EINVALID);
	memcpy(long_input, "blake3:", 7);
	CHECK_EQ_INT(brt_digest_parse(&d, long_input, sizeof(long_input)), BRT_EINVALID);
}

static void test_parse_unsupported(void)
{
	CHECK_EQ_INT(parse("blake3:" HEX64), BRT_EUNSUPPORTED);
	CHECK_EQ_INT(parse("sha384:" HEX64 "0123456789abcdef0123456789abcdef"), BRT_EUNSUPPORTED);
	CHECK_EQ_INT(parse("sha1:0123456789abcdef0123456789abcdef01234567"), BRT_EUNSUPPORTED);
	CHECK_EQ_INT(parse("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"),
		     BRT_EUNSUPPORTED);
	CHECK_EQ_INT(parse("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"), BRT_EUNSUPPORTED);
}

/* A buffer of `len` bytes where byte i is i % 251. */
static unsigned char *pattern(size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);

	for (size_t i = 0; buf && i < len; i++)
		buf[i] = (unsigned char)(i % 251);
	return buf;
}

static void check_one_shot(brt_digest_alg alg, const void *data, size_t len, const char *want)
{
	brt_digest d;

	brt_digest_of(&d, alg, data, len);
	CHECK_EQ_STR(d.str, want);
	CHECK_EQ_INT(d.len, strlen(want));
	CHECK_EQ_INT(d.alg, alg);
}

/* Hash `len` bytes in pieces of `piece` bytes. */
static void check_pieces(brt_digest_alg alg, const unsigned char *data, size_t len, size_t piece,
			 const char *want)
{
	brt_hasher h;
	brt_digest d;

	brt_hasher_init(&h, alg);
	for (size_t off = 0; off < len; off += piece)
		brt_hasher_update(&h, data + off, len - off < piece ? len - off : piece);
	CHECK_EQ_INT(brt_hasher_length(&h), len);
	brt_hasher_final(&h, &d);
	CHECK_EQ_STR(d.str, want);
}

static void test_known_vectors(void)
{
	static const size_t pieces[] = {1, 63, 64, 65, 127, 128, 129, 4097, MIB};
	unsigned char *mib = pattern(MIB);

	check_one_shot(BRT_DIGEST_SHA256, "abc", 3, ABC_SHA256);
	check_one_shot(BRT_DIGEST_SHA512, "abc", 3, ABC_SHA512);
	check_one_shot(BRT_DIGEST_SHA256, "", 0, EMPTY_SHA256);
	check_one_shot(BRT_DIGEST_SHA512, "", 0, EMPTY_SHA512);
	CHECK(mib != NULL);
	if (!mib)
		return;
	check_one_shot(BRT_DIGEST_SHA256, mib, MIB, MIB_SHA256);
	check_one_shot(BRT_DIGEST_SHA512, mib, MIB, MIB_SHA512);
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		check_pieces(BRT_DIGEST_SHA256, mib, MIB, pieces[i], MIB_SHA256);
		check_pieces(BRT_DIGEST_SHA512, mib, MIB, pieces[i], MIB_SHA512);
	}
	/* The digest of a hasher is also a parseable digest. */
	{
		brt_digest d, again;
		brt_digest_of(&d, BRT_DIGEST_SHA512, mib, MIB);
		CHECK_EQ_INT(brt_digest_parse(&again, d.str, d.len), 0);
		CHECK_EQ_STR(again.str, d.str);
	}
	free(mib);
}

/* Hash data[0..split), save, load into a fresh (dirty) hasher, hash the
 * rest: the result must equal the one-shot digest.  Returns the number of
 * mismatches so the caller can report them compactly. */
static int round_trip(brt_digest_alg alg, const unsigned char *data, size_t len, size_t split,
		      const brt_digest *want)
{
	unsigned char state[BRT_HASHER_STATE_MAX], state2[BRT_HASHER_STATE_MAX];
	brt_hasher h, resumed;
	brt_digest d;
	size_t n, n2;
	int bad = 0;

	brt_hasher_init(&h, alg);
	brt_hasher_update(&h, data, split);
	n = brt_hasher_save(&h, state);
	bad |= n > BRT_HASHER_STATE_MAX;
	memset(&resumed, 0xa5, sizeof(resumed));
	bad |= brt_hasher_load(&resumed, state, n) != 0;
	bad |= brt_hasher_length(&resumed) != split;
	/* Saving a loaded state gives back the same bytes. */
	n2 = brt_hasher_save(&resumed, state2);
	bad |= n2 != n || memcmp(state, state2, n) != 0;
	brt_hasher_update(&resumed, data + split, len - split);
	brt_hasher_final(&resumed, &d);
	bad |= strcmp(d.str, want->str) != 0;
	/* The original hasher is unaffected by saving. */
	brt_hasher_update(&h, data + split, len - split);
	brt_hasher_final(&h, &d);
	bad |= strcmp(d.str, want->str) != 0;
	return bad;
}

static void test_save_load_round_trips(void)
{
	static const brt_digest_alg algs[] = {BRT_DIGEST_SHA256, BRT_DIGEST_SHA512};
	unsigned char *data = pattern(300);

	CHECK(data != NULL);
	if (!data)
		return;
	for (size_t a = 0; a < 2; a++) {
		for (size_t len = 0; len <= 300; len++) {
			brt_digest want;
			int failures = 0;
			brt_digest_of(&want, algs[a], data, len);
			for (size_t split = 0; split <= len; split++)
				failures += round_trip(algs[a], data, len, split, &want);
			if (failures)
				fprintf(stderr, "alg %d len %zu: %d split points failed\n", (int)algs[a], len,
					failures);
			CHECK_EQ_INT(failures, 0);
		}
	}
	free(data);
}

/* Save a state after `len` pattern bytes; returns its size. */
static size_t saved_state(unsigned char *state, brt_digest_alg alg, size_t len)
{
	unsigned char *data = pattern(len);
	brt_hasher h;
	size_t n;

	brt_hasher_init(&h, alg);
	brt_hasher_update(&h, data, len);
	n = brt_hasher_save(&h, state);
	free(data);
	return n;
}

static void check_corruptions(brt_digest_alg alg, size_t hashed, size_t block)
{
	unsigned char good[BRT_HASHER_STATE_MAX], bad[BRT_HASHER_STATE_MAX + 1];
	size_t n = saved_state(good, alg, hashed);
	size_t tail_at = n - hashed % block - 1;
	brt_hasher h;

	CHECK_EQ_INT(brt_hasher_load(&h, good, n), 0);
	CHECK_EQ_INT(brt_hasher_length(&h), hashed);
	CHECK_EQ_INT(good[tail_at], hashed % block);

	CHECK_EQ_INT(brt_hasher_load(&h, good, 0), BRT_EINVALID);
	CHECK_EQ_INT(brt_hasher_load(&h, good, 1), BRT_EINVALID);
	for (size_t cut = 2; cut < n; cut++)
		CHECK_EQ_INT(brt_hasher_load(&h, good, cut), BRT_EINVALID);

	memcpy(bad, good, n);
	bad[n] = 0;
	CHECK_EQ_INT(brt_hasher_load(&h, bad, n + 1), BRT_EINVALID); /* extra byte */

	memcpy(bad, good, n);
	bad[0] = 2; /* unknown format version */
	CHECK_EQ_INT(brt_hasher_load(&h, bad, n), BRT_EINVALID);

	memcpy(bad, good, n);
	bad[0] = 0;
	CHECK_EQ_INT(brt_hasher_load(&h, bad, n), BRT_EINVALID);

	memcpy(bad, good, n);
	bad[1] = 3; /* unknown algorithm */
	CHECK_EQ_INT(brt_hasher_load(&h, bad, n), BRT_EINVALID);

	memcpy(bad, good, n);
	bad[1] = 0;
	CHECK_EQ_INT(brt_hasher_load(&h, bad, n), BRT_EINVALID);

	memcpy(bad, good, n);
	bad[9] ^= 1; /* length no longer agrees with the tail */
	CHECK_EQ_INT(brt_hasher_load(&h, bad, n), BRT_EINVALID);

	memcpy(bad, good, n);
	bad[tail_at] = (unsigned char)(bad[tail_at] + 1); /* tail length off by one */
	CHECK_EQ_INT(brt_hasher_load(&h, bad, n), BRT_EINVALID);

	memcpy(bad, good, n);
	bad[tail_at] = (unsigned char)block; /* a whole block is never buffered */
	CHECK_EQ_INT(brt_hasher_load(&h, bad, n), BRT_EINVALID);

	memcpy(bad, good, n);
	bad[tail_at] = 255;
	CHECK_EQ_INT(brt_hasher_load(&h, bad, n), BRT_EINVALID);
}

static void test_corrupt_states(void)
{
	unsigned char other[BRT_HASHER_STATE_MAX];
	size_t n;
	brt_hasher h;

	check_corruptions(BRT_DIGEST_SHA256, 70, 64);
	check_corruptions(BRT_DIGEST_SHA256, 64, 64);
	check_corruptions(BRT_DIGEST_SHA256, 127, 64);
	check_corruptions(BRT_DIGEST_SHA512, 130, 128);
	check_corruptions(BRT_DIGEST_SHA512, 0, 128);
	check_corruptions(BRT_DIGEST_SHA512, 255, 128);

	/* A SHA-256 state relabelled as SHA-512 has the wrong shape. */
	n = saved_state(other, BRT_DIGEST_SHA256, 10);
	other[1] = BRT_DIGEST_SHA512;
	CHECK_EQ_INT(brt_hasher_load(&h, other, n), BRT_EINVALID);
	n = saved_state(other, BRT_DIGEST_SHA512, 10);
	other[1] = BRT_DIGEST_SHA256;
	CHECK_EQ_INT(brt_hasher_load(&h, other, n), BRT_EINVALID);
}

int main(void)
{
	test_parse_valid();
	test_parse_invalid();
	test_parse_unsupported();
	test_known_vectors();
	test_save_load_round_trips();
	test_corrupt_states();
	return check_exit("test_digest");
}
