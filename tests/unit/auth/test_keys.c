/* Tests for auth/keys: a generated access key parses back to its own id and
 * stored hash (the SHA-256 of the 48-hex secret text, recomputed here with
 * OpenSSL independently of the code under test), verification refuses
 * wrong secrets, revoked and expired keys, the parser refuses anything not
 * exactly of the "brt_" + 16 + 48 lower-case hex form, and the random hex
 * helper gives the length and alphabet it promises. */
#include <stdint.h>
#include <string.h>

#include <openssl/sha.h>

#include "auth/keys.h"
#include "check.h"
#include "common/error.h"
#include "common/random.h"

#define ACCOUNT "0123456789abcdef0123456789abcdef"
#define ALL_PERMS (BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE)
/* Key times are milliseconds since the epoch, as the server uses them. */
#define NOW INT64_C(1767225600000)

static int all_lower_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int parse_str(char *id, unsigned char *hash, const char *s)
{
	return brt_key_parse(id, hash, s, strlen(s));
}

static void test_generate_parse_roundtrip(void)
{
	brt_access_key key;
	char access_key[BRT_ACCESS_KEY_LEN + 1];
	char id[BRT_KEY_ID_LEN + 1];
	unsigned char hash[BRT_KEY_HASH_LEN], expected[SHA256_DIGEST_LENGTH];

	CHECK_EQ_INT(BRT_ACCESS_KEY_LEN, 68);
	memset(access_key, 'X', sizeof(access_key));
	CHECK_EQ_INT(brt_key_generate(&key, access_key, ACCOUNT, ALL_PERMS, "ci runner", NOW, 0), 0);
	CHECK_EQ_INT(strlen(access_key), BRT_ACCESS_KEY_LEN);
	CHECK(memcmp(access_key, "brt_", 4) == 0);
	CHECK(all_lower_hex(access_key + 4, 64));
	CHECK_EQ_INT(strlen(key.id), BRT_KEY_ID_LEN);
	CHECK(all_lower_hex(key.id, BRT_KEY_ID_LEN));
	CHECK(memcmp(access_key + 4, key.id, BRT_KEY_ID_LEN) == 0);
	CHECK_EQ_STR(key.account_id, ACCOUNT);
	CHECK_EQ_STR(key.label, "ci runner");
	CHECK_EQ_INT(key.permissions, ALL_PERMS);
	CHECK_EQ_INT(key.created_at, NOW);
	CHECK_EQ_INT(key.expires_at, 0);
	CHECK_EQ_INT(key.revoked_at, 0);

	/* What is stored is the SHA-256 of the secret's hex text. */
	SHA256((const unsigned char *)access_key + 4 + BRT_KEY_ID_LEN, BRT_KEY_SECRET_LEN, expected);
	CHECK(memcmp(key.secret_hash, expected, BRT_KEY_HASH_LEN) == 0);

	memset(id, 'X', sizeof(id));
	memset(hash, 0, sizeof(hash));
	CHECK_EQ_INT(parse_str(id, hash, access_key), 0);
	CHECK_EQ_STR(id, key.id);
	CHECK(memcmp(hash, key.secret_hash, BRT_KEY_HASH_LEN) == 0);
	CHECK_EQ_INT(brt_key_verify(&key, hash, NOW), 0);
	CHECK_EQ_INT(brt_key_verify(&key, hash, NOW + INT64_C(1000) * 86400 * 3650), 0);

	/* A NULL label is stored as empty; a pull-only key keeps its bits. */
	CHECK_EQ_INT(brt_key_generate(&key, access_key, ACCOUNT, BRT_PERM_PULL, NULL, NOW, 0), 0);
	CHECK_EQ_STR(key.label, "");
	CHECK_EQ_INT(key.permissions, BRT_PERM_PULL);
}

static void test_generate_label_truncated(void)
{
	brt_access_key key;
	char access_key[BRT_ACCESS_KEY_LEN + 1];
	char label[300];

	memset(label, 'l', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	CHECK_EQ_INT(brt_key_generate(&key, access_key, ACCOUNT, ALL_PERMS, label, NOW, 0), 0);
	CHECK_EQ_INT(strlen(key.label), sizeof(key.label) - 1);
}

static void test_verify(void)
{
	brt_access_key key;
	char access_key[BRT_ACCESS_KEY_LEN + 1];
	char id[BRT_KEY_ID_LEN + 1];
	unsigned char hash[BRT_KEY_HASH_LEN], wrong[BRT_KEY_HASH_LEN];

	CHECK_EQ_INT(brt_key_generate(&key, access_key, ACCOUNT, ALL_PERMS, "", NOW, 0), 0);
	CHECK_EQ_INT(parse_str(id, hash, access_key), 0);
	CHECK_EQ_INT(brt_key_verify(&key, hash, NOW), 0);

	/* Any single bit of the hash matters, first and last byte included. */
	memcpy(wrong, hash, sizeof(wrong));
	wrong[0] ^= 1;
	CHECK_EQ_INT(brt_key_verify(&key, wrong, NOW), BRT_EUNAUTHORIZED);
	memcpy(wrong, hash, sizeof(wrong));
	wrong[BRT_KEY_HASH_LEN - 1] ^= 0x80;
	CHECK_EQ_INT(brt_key_verify(&key, wrong, NOW), BRT_EUNAUTHORIZED);
	memset(wrong, 0, sizeof(wrong));
	CHECK_EQ_INT(brt_key_verify(&key, wrong, NOW), BRT_EUNAUTHORIZED);

	/* The same id with another secret: parses, but does not verify. */
	access_key[BRT_ACCESS_KEY_LEN - 1] = access_key[BRT_ACCESS_KEY_LEN - 1] == '0' ? '1' : '0';
	CHECK_EQ_INT(parse_str(id, wrong, access_key), 0);
	CHECK_EQ_STR(id, key.id);
	CHECK(memcmp(wrong, hash, sizeof(wrong)) != 0);
	CHECK_EQ_INT(brt_key_verify(&key, wrong, NOW), BRT_EUNAUTHORIZED);

	/* Revoked, whenever that was, even with the right secret. */
	key.revoked_at = NOW - 1;
	CHECK_EQ_INT(brt_key_verify(&key, hash, NOW), BRT_EUNAUTHORIZED);
	key.revoked_at = NOW + 1000;
	CHECK_EQ_INT(brt_key_verify(&key, hash, NOW), BRT_EUNAUTHORIZED);
	key.revoked_at = 0;
	CHECK_EQ_INT(brt_key_verify(&key, hash, NOW), 0);

	/* Expiry: usable strictly before expires_at, refused at and after. */
	key.expires_at = NOW + 1;
	CHECK_EQ_INT(brt_key_verify(&key, hash, NOW), 0);
	key.expires_at = NOW + INT64_C(90) * 86400 * 1000;
	CHECK_EQ_INT(brt_key_verify(&key, hash, NOW), 0);
	key.expires_at = NOW;
	CHECK_EQ_INT(brt_key_verify(&key, hash, NOW), BRT_EUNAUTHORIZED);
	key.expires_at = NOW - 1;
	CHECK_EQ_INT(brt_key_verify(&key, hash, NOW), BRT_EUNAUTHORIZED);
	key.expires_at = 1;
	CHECK_EQ_INT(brt_key_verify(&key, hash, NOW), BRT_EUNAUTHORIZED);
	/* Expired and wrong secret: still just unauthorised. */
	CHECK_EQ_INT(brt_key_verify(&key, wrong, NOW), BRT_EUNAUTHORIZED);
}

static void test_generated_keys_differ(void)
{
	brt_access_key a, b;
	char ka[BRT_ACCESS_KEY_LEN + 1], kb[BRT_ACCESS_KEY_LEN + 1];

	CHECK_EQ_INT(brt_key_generate(&a, ka, ACCOUNT, ALL_PERMS, "", NOW, 0), 0);
	CHECK_EQ_INT(brt_key_generate(&b, kb, ACCOUNT, ALL_PERMS, "", NOW, 0), 0);
	CHECK(strcmp(ka, kb) != 0);
	CHECK(strcmp(a.id, b.id) != 0);
	CHECK(memcmp(ka + 4 + BRT_KEY_ID_LEN, kb + 4 + BRT_KEY_ID_LEN, BRT_KEY_SECRET_LEN) != 0);
	CHECK(memcmp(a.secret_hash, b.secret_hash, BRT_KEY_HASH_LEN) != 0);
}

static void test_parse_rejects(void)
{
	brt_access_key key;
	char good[BRT_ACCESS_KEY_LEN + 1], buf[BRT_ACCESS_KEY_LEN + 8];
	char id[BRT_KEY_ID_LEN + 1];
	unsigned char hash[BRT_KEY_HASH_LEN];

	CHECK_EQ_INT(brt_key_generate(&key, good, ACCOUNT, ALL_PERMS, "", NOW, 0), 0);
	CHECK_EQ_INT(parse_str(id, hash, good), 0);

	/* Wrong prefix. */
	memcpy(buf, good, sizeof(good));
	memcpy(buf, "brx_", 4);
	CHECK_EQ_INT(parse_str(id, hash, buf), BRT_EINVALID);
	memcpy(buf, "BRT_", 4);
	CHECK_EQ_INT(parse_str(id, hash, buf), BRT_EINVALID);
	memcpy(buf, "brt-", 4);
	CHECK_EQ_INT(parse_str(id, hash, buf), BRT_EINVALID);
	memcpy(buf, "xbrt", 4);
	CHECK_EQ_INT(parse_str(id, hash, buf), BRT_EINVALID);

	/* Wrong length: 67 and 69, both by the string and by `len`. */
	memcpy(buf, good, sizeof(good));
	buf[BRT_ACCESS_KEY_LEN - 1] = '\0';
	CHECK_EQ_INT(parse_str(id, hash, buf), BRT_EINVALID);
	CHECK_EQ_INT(brt_key_parse(id, hash, good, BRT_ACCESS_KEY_LEN - 1), BRT_EINVALID);
	memcpy(buf, good, sizeof(good));
	buf[BRT_ACCESS_KEY_LEN] = 'a';
	buf[BRT_ACCESS_KEY_LEN + 1] = '\0';
	CHECK_EQ_INT(parse_str(id, hash, buf), BRT_EINVALID);
	CHECK_EQ_INT(brt_key_parse(id, hash, buf, BRT_ACCESS_KEY_LEN + 1), BRT_EINVALID);
	CHECK_EQ_INT(parse_str(id, hash, "brt_"), BRT_EINVALID);
	CHECK_EQ_INT(parse_str(id, hash, "brt"), BRT_EINVALID);

	/* Empty. */
	CHECK_EQ_INT(parse_str(id, hash, ""), BRT_EINVALID);
	CHECK_EQ_INT(brt_key_parse(id, hash, good, 0), BRT_EINVALID);

	/* Upper-case hex in the id and in the secret. */
	memcpy(buf, good, sizeof(good));
	buf[4] = 'A';
	CHECK_EQ_INT(parse_str(id, hash, buf), BRT_EINVALID);
	memcpy(buf, good, sizeof(good));
	buf[4 + BRT_KEY_ID_LEN - 1] = 'F';
	CHECK_EQ_INT(parse_str(id, hash, buf), BRT_EINVALID);
	memcpy(buf, good, sizeof(good));
	buf[4 + BRT_KEY_ID_LEN] = 'B';
	CHECK_EQ_INT(parse_str(id, hash, buf), BRT_EINVALID);
	memcpy(buf, good, sizeof(good));
	buf[BRT_ACCESS_KEY_LEN - 1] = 'E';
	CHECK_EQ_INT(parse_str(id, hash, buf), BRT_EINVALID);

	/* Non-hex characters, including the neighbours of the hex ranges and
	 * an embedded NUL counted in `len`. */
	{
		static const char bad[] = {'g', 'z', '/', ':', '`', '@', 'G', ' ', '-', '\0'};
		static const size_t positions[] =
			{4, 11, 4 + BRT_KEY_ID_LEN - 1, 4 + BRT_KEY_ID_LEN, 40, BRT_ACCESS_KEY_LEN - 1};

		for (size_t i = 0; i < sizeof(bad); i++) {
			for (size_t j = 0; j < sizeof(positions) / sizeof(positions[0]); j++) {
				memcpy(buf, good, sizeof(good));
				buf[positions[j]] = bad[i];
				CHECK_EQ_INT(brt_key_parse(id, hash, buf, BRT_ACCESS_KEY_LEN), BRT_EINVALID);
			}
		}
	}

	/* All-zero and all-f keys are of the form, whatever their chance of
	 * existing. */
	memcpy(buf, "brt_", 4);
	memset(buf + 4, '0', 64);
	buf[BRT_ACCESS_KEY_LEN] = '\0';
	CHECK_EQ_INT(parse_str(id, hash, buf), 0);
	CHECK_EQ_STR(id, "0000000000000000");
	memset(buf + 4, 'f', 64);
	CHECK_EQ_INT(parse_str(id, hash, buf), 0);
	CHECK_EQ_STR(id, "ffffffffffffffff");
}

static void test_random_hex(void)
{
	static const size_t lengths[] = {0, 1, 2, 15, 16, 17, 32, 48, 64, 127, 128};
	char buf[140], prev[140];
	int seen[16] = {0};
	int distinct_single = 0, equal_pairs = 0;
	char first_single = 0;

	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		size_t len = lengths[i];

		memset(buf, 'X', sizeof(buf));
		CHECK_EQ_INT(brt_random_hex(buf, len), 0);
		CHECK_EQ_INT(strlen(buf), len);
		CHECK(all_lower_hex(buf, len));
		/* Nothing written past the terminator. */
		CHECK(buf[len + 1] == 'X');
	}

	/* Every digit turns up, at even and odd positions alike, and two
	 * draws of 32 differ. */
	CHECK_EQ_INT(brt_random_hex(prev, 32), 0);
	for (int round = 0; round < 64; round++) {
		CHECK_EQ_INT(brt_random_hex(buf, 33), 0);
		CHECK(strncmp(buf, prev, 32) != 0);
		for (size_t i = 0; i < 33; i++) {
			if (buf[i] >= '0' && buf[i] <= '9')
				seen[buf[i] - '0']++;
			else if (buf[i] >= 'a' && buf[i] <= 'f')
				seen[buf[i] - 'a' + 10]++;
		}
		/* Each character has its own nibble: neighbours agree about
		 * one time in 16, not always. */
		for (size_t i = 0; i + 1 < 32; i += 2)
			equal_pairs += buf[i] == buf[i + 1];
		memcpy(prev, buf, 34);
	}
	for (int d = 0; d < 16; d++)
		CHECK(seen[d] > 0);
	CHECK(equal_pairs < 64 * 16 / 4);

	/* A single character is random too (not a constant nibble). */
	for (int round = 0; round < 64; round++) {
		CHECK_EQ_INT(brt_random_hex(buf, 1), 0);
		if (round == 0)
			first_single = buf[0];
		else if (buf[0] != first_single)
			distinct_single = 1;
	}
	CHECK(distinct_single);
}

static void test_permissions_name(void)
{
	CHECK_EQ_STR(brt_permissions_name(BRT_PERM_PULL), "pull");
	CHECK_EQ_STR(brt_permissions_name(BRT_PERM_PULL | BRT_PERM_PUSH), "pull,push");
	CHECK_EQ_STR(brt_permissions_name(ALL_PERMS), "pull,push,delete");
	CHECK_EQ_STR(brt_permissions_name(BRT_PERM_PUSH), "push");
	CHECK_EQ_STR(brt_permissions_name(BRT_PERM_DELETE), "delete");
	CHECK_EQ_STR(brt_permissions_name(BRT_PERM_PULL | BRT_PERM_DELETE), "pull,delete");
	CHECK_EQ_STR(brt_permissions_name(BRT_PERM_PUSH | BRT_PERM_DELETE), "push,delete");
	CHECK_EQ_STR(brt_permissions_name(0), "none");
	/* Bits beyond the three known ones are ignored, never an overrun. */
	CHECK_EQ_STR(brt_permissions_name(8), "none");
	CHECK_EQ_STR(brt_permissions_name(ALL_PERMS | 8), "pull,push,delete");
	CHECK_EQ_STR(brt_permissions_name(~0u), "pull,push,delete");
}

int main(void)
{
	test_generate_parse_roundtrip();
	test_generate_label_truncated();
	test_verify();
	test_generated_keys_differ();
	test_parse_rejects();
	test_random_hex();
	test_permissions_name();
	return check_exit("test_keys");
}
