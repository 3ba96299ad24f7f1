/* Storage keys of blobs: "sha256:abcd..." becomes "sha256/ab/abcd...".  The
 * two-character fan-out directory keeps any one directory of the
 * filesystem driver (and any one listing prefix of an object store) small. */
#include "storage/blobstore.h"

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
