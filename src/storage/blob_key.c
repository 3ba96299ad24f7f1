/* Storage keys of blobs: "sha256:abcd..." becomes "sha256/ab/abcd..."
 * (or "sha256/ab/abcd....<suffix>" for a copy of its own).  The
 * two-character fan-out directory keeps any one directory of the
 * filesystem driver (and any one listing prefix of an object store) small. */
#include "storage/blobstore.h"

#include "common/error.h"
#include "common/random.h"

#include <stdio.h>
#include <string.h>

void brt_blob_key(char *out, const char *digest_str)
{
	const char *colon = digest_str ? strchr(digest_str, ':') : NULL;
	const char *hex;
	int written;

	out[0] = '\0';
	/* The caller validated the digest; should it not have, an empty key is
	 * written, which every driver rejects as invalid. */
	if (!colon || colon == digest_str || strlen(colon + 1) < 2)
		return;
	hex = colon + 1;
	written = snprintf(out, BRT_BLOB_KEY_MAX, "%.*s/%.2s/%s", (int)(colon - digest_str), digest_str, hex,
			   hex);
	if (written < 0 || written >= BRT_BLOB_KEY_MAX)
		out[0] = '\0';
}

int brt_blob_key_unique(char *out, const char *digest_str)
{
	char suffix[17];
	size_t n;
	int error;

	brt_blob_key(out, digest_str);
	n = strlen(out);
	if (n == 0 || n + 1 + 16 >= BRT_BLOB_KEY_MAX)
		return brt_error_set(BRT_EINVALID, "no storage key for %s",
				     digest_str ? digest_str : "(null)");
	if ((error = brt_random_hex(suffix, 16)) < 0)
		return error;
	out[n] = '.';
	memcpy(out + n + 1, suffix, 17);
	return 0;
}
