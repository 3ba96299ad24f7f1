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

static int is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int brt_blob_key_check(const char *key)
{
	size_t len = 0;
	int at_component_start = 1;

	if (!key)
		return brt_error_set(BRT_EINVALID, "blob store: missing key");
	for (; key[len] != '\0'; len++) {
		if (len + 1 >= BRT_BLOB_KEY_MAX)
			return brt_error_set(BRT_EINVALID, "blob store: key too long");
		if (key[len] == '/') {
			if (at_component_start)
				return brt_error_set(BRT_EINVALID,
						     "blob store: key has an empty path component");
			at_component_start = 1;
		} else if (is_key_char(key[len]) || (key[len] == '.' && !at_component_start)) {
			at_component_start = 0;
		} else {
			return brt_error_set(BRT_EINVALID,
					     "blob store: key has a character outside [a-z0-9./] or a"
					     " component starting with '.'");
		}
	}
	if (at_component_start)
		return brt_error_set(BRT_EINVALID, "blob store: key is empty or ends with '/'");
	return 0;
}

int brt_upload_id_check(const char *id)
{
	size_t i;

	if (!id)
		return brt_error_set(BRT_EINVALID, "blob store: missing upload id");
	for (i = 0; i < BRT_UPLOAD_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			break;
	if (i != BRT_UPLOAD_ID_LEN || id[i] != '\0')
		return brt_error_set(BRT_EINVALID,
				     "blob store: upload id must be %d lower-case hex characters",
				     BRT_UPLOAD_ID_LEN);
	return 0;
}
