/* The backend state of an S3 upload, as text:
 *
 *     berth-s3 1
 *     part-size <bytes>
 *     upload <multipart upload id>        (with parts only)
 *     spill <16 hex> <bytes>              (with a tail only)
 *     <ETag of part 1>
 *     ...
 *
 * Every part has exactly the state's part size (the tail is the spill
 * object), so a state names 10000 parts in under 850 KB, within
 * BRT_BACKEND_STATE_MAX.  The part size travels in the state, so a
 * changed configuration never misreads an upload begun under the old
 * one. */
#include "storage/s3/s3_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define STATE_MAGIC "berth-s3 1\n"

static int printable_token(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		/* No space or control (line format), no XML or query
		 * specials (sent back in XML bodies and queries). */
		if (i >= max || c < 0x21 || c > 0x7e || c == '<' || c == '>' || c == '&')
			return 0;
	}
	return i > 0;
}

int s3_etag_valid(const char *etag)
{
	return printable_token(etag, S3_ETAG_MAX);
}

int s3_mpu_id_valid(const char *id)
{
	return printable_token(id, S3_MPU_ID_MAX);
}

void s3_state_free(s3_state *st)
{
	free(st->etags);
	memset(st, 0, sizeof(*st));
}

int s3_state_add_part(s3_state *st, const char *etag)
{
	size_t len = strlen(etag);

	if (st->parts >= S3_PARTS_MAX)
		return brt_error_set(BRT_ETOOBIG, "S3: an upload has at most %d parts", S3_PARTS_MAX);
	if (!s3_etag_valid(etag))
		return brt_error_set(BRT_EIO, "S3: the store answered a part with an unusable ETag");
	if (st->parts == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 16;
		void *etags;
		if (cap > S3_PARTS_MAX)
			cap = S3_PARTS_MAX;
		if (!(etags = realloc(st->etags, cap * sizeof(*st->etags))))
			return brt_error_set(BRT_ENOMEM, "S3: out of memory");
		st->etags = etags;
		st->cap = cap;
	}
	memcpy(st->etags[st->parts], etag, len + 1);
	st->parts++;
	return 0;
}

uint64_t s3_state_size(const s3_state *st)
{
	return (uint64_t)st->parts * st->part_size + st->spill_len;
}

/* The next line of [*p, end) without its newline into `line` (`cap`
 * bytes); -1 if there is no complete line or it does not fit. */
static int next_line(const char **p, const char *end, char *line, size_t cap)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t len;

	if (!nl)
		return -1;
	len = (size_t)(nl - *p);
	if (len >= cap || memchr(*p, '\0', len))
		return -1;
	memcpy(line, *p, len);
	line[len] = '\0';
	*p = nl + 1;
	return 0;
}

/* A decimal without sign or leading zeros. */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s[0] || (s[0] == '0' && s[1]))
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || __builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return -1;
	}
	*out = v;
	return 0;
}

static int is_spill_name(const char *s)
{
	size_t i;

	for (i = 0; i < S3_SPILL_NAME_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[i] == '\0';
}

int s3_state_parse(s3_state *out, const unsigned char *buf, size_t len, uint64_t part_size)
{
	const char *p = (const char *)buf, *end = p + len;
	char line[S3_MPU_ID_MAX + 16];
	int error = 0;

	memset(out, 0, sizeof(*out));
	out->part_size = part_size;
	if (len == 0)
		return 0;
	if (len > BRT_BACKEND_STATE_MAX || len < sizeof(STATE_MAGIC) - 1 ||
	    memcmp(p, STATE_MAGIC, sizeof(STATE_MAGIC) - 1) != 0)
		goto bad;
	p += sizeof(STATE_MAGIC) - 1;
	if (next_line(&p, end, line, sizeof(line)) < 0 || strncmp(line, "part-size ", 10) != 0 ||
	    parse_u64(line + 10, &out->part_size) < 0 || out->part_size < BRT_S3_PART_MIN ||
	    out->part_size > BRT_S3_PART_MAX)
		goto bad;
	while (p < end) {
		if (next_line(&p, end, line, sizeof(line)) < 0)
			goto bad;
		if (strncmp(line, "upload ", 7) == 0 && !out->mpu[0] && !out->spill[0] && out->parts == 0) {
			if (!s3_mpu_id_valid(line + 7))
				goto bad;
			memcpy(out->mpu, line + 7, strlen(line + 7) + 1);
		} else if (strncmp(line, "spill ", 6) == 0 && !out->spill[0] && out->parts == 0) {
			char *space = strchr(line + 6, ' ');
			if (!space)
				goto bad;
			*space = '\0';
			if (!is_spill_name(line + 6) || parse_u64(space + 1, &out->spill_len) < 0 ||
			    out->spill_len == 0 || out->spill_len >= out->part_size)
				goto bad;
			memcpy(out->spill, line + 6, S3_SPILL_NAME_LEN + 1);
		} else if (out->mpu[0] && s3_etag_valid(line)) {
			if ((error = s3_state_add_part(out, line)) < 0)
				goto fail;
		} else {
			goto bad;
		}
	}
	/* Parts and a multipart upload go together. */
	if ((out->parts > 0) != (out->mpu[0] != '\0'))
		goto bad;
	return 0;
bad:
	error = brt_error_set(BRT_EINVALID, "S3: malformed upload state");
fail:
	s3_state_free(out);
	return error;
}

int s3_state_format(brt_dynbuf *out, const s3_state *st)
{
	int error;

	brt_dynbuf_reset(out);
	error = brt_dynbuf_addf(out, STATE_MAGIC "part-size %llu\n", (unsigned long long)st->part_size);
	if (error == 0 && st->parts > 0)
		error = brt_dynbuf_addf(out, "upload %s\n", st->mpu);
	if (error == 0 && st->spill_len > 0)
		error = brt_dynbuf_addf(out, "spill %s %llu\n", st->spill, (unsigned long long)st->spill_len);
	for (size_t i = 0; i < st->parts && error == 0; i++)
		error = brt_dynbuf_addf(out, "%s\n", st->etags[i]);
	if (error == BRT_ETOOBIG)
		return brt_error_set(BRT_ETOOBIG, "S3: upload state larger than %zu bytes",
				     BRT_BACKEND_STATE_MAX);
	return error;
}
