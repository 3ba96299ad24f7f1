/* Fuzz target for the query-string parameters (api/query): the input is
 * split at NUL bytes into a page maximum (first 2 bytes), n, last,
 * digest, mount and from; a missing field is an absent parameter.  Beyond
 * memory safety it checks what query.h promises: n never exceeds the
 * maximum and is the decimal value when smaller, last is bounded, mount
 * wins over digest, a mount source is NULL or a valid name, and every
 * accepted digest is canonical. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/query.h"
#include "common/error.h"
#include "oci/digest.h"
#include "oci/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIELDS 5

static void check_digest(const brt_digest *d, const char *given)
{
	brt_digest again;

	if (d->len != strlen(d->str) || strcmp(d->str, given) != 0)
		abort();
	if (brt_digest_parse(&again, d->str, d->len) != 0 || strcmp(again.str, d->str) != 0)
		abort();
}

static void check_page(const char *n, const char *last, size_t page_max)
{
	const char *last_out = (const char *)1;
	size_t n_out = 12345;
	int error = brt_query_page(&n_out, &last_out, n, last, page_max);

	if (error != 0 && error != BRT_EINVALID)
		abort();
	if (n_out > page_max)
		abort();
	if (error != 0) {
		if (last_out != NULL || n_out != page_max)
			abort();
		return;
	}
	if (!n && n_out != page_max)
		abort();
	if (n) {
		/* Digits only; a short value is its decimal value. */
		if (!n[0] || strspn(n, "0123456789") != strlen(n))
			abort();
		if (strlen(n) < 6) {
			size_t v = (size_t)strtoul(n, NULL, 10);
			if (n_out != (v < page_max ? v : page_max))
				abort();
		}
	}
	if (last_out && (last_out != last || !last[0] || strlen(last) > BRT_QUERY_LAST_MAX))
		abort();
	if (!last_out && last && last[0])
		abort();
}

static void check_upload(const char *digest, const char *mount, const char *from)
{
	brt_upload_query q;
	brt_digest d;
	int error = brt_query_upload_post(&q, digest, mount, from);

	if (error != 0 && error != BRT_EINVALID && error != BRT_EUNSUPPORTED)
		abort();
	if (error == 0) {
		if (mount) {
			if (q.kind != BRT_UPLOAD_START_MOUNT)
				abort();
			check_digest(&q.digest, mount);
			if (q.from && (q.from != from || !brt_name_valid(from, strlen(from))))
				abort();
			if (!q.from && from && brt_name_valid(from, strlen(from)))
				abort();
		} else if (digest) {
			if (q.kind != BRT_UPLOAD_START_MONOLITHIC)
				abort();
			check_digest(&q.digest, digest);
		} else if (q.kind != BRT_UPLOAD_START_SESSION) {
			abort();
		}
	} else if (!mount && !digest) {
		abort();
	}
	error = brt_query_upload_put(&d, digest);
	if (error != 0 && error != BRT_EINVALID && error != BRT_EUNSUPPORTED)
		abort();
	if (error == 0)
		check_digest(&d, digest);
	else if (digest && digest[0] && brt_digest_parse(&d, digest, strlen(digest)) == 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *field[FIELDS] = {NULL};
	size_t page_max, pos = 2;
	char *copy;

	if (size < 2)
		return 0;
	page_max = ((size_t)data[0] << 8 | data[1]) + 1;
	if (!(copy = malloc(size + 1)))
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (size_t i = 0; i < FIELDS && pos < size; i++) {
		field[i] = copy + pos;
		pos += strlen(copy + pos) + 1;
	}
	check_page(field[0], field[1], page_max);
	check_upload(field[2], field[3], field[4]);
	free(copy);
	return 0;
}
