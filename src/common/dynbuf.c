/* The capped growable buffer behind brt_dynbuf (see dynbuf.h). */
#include "common/dynbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define DYNBUF_MIN_ALLOC 32

void brt_dynbuf_init(brt_dynbuf *buf, size_t max_bytes)
{
	buf->ptr = NULL;
	buf->len = 0;
	buf->alloc = 0;
	buf->max = max_bytes;
}

/* Room for `extra` more bytes of content plus the NUL. */
static int dynbuf_reserve(brt_dynbuf *buf, size_t extra)
{
	size_t need, want;
	char *p;

	if (__builtin_add_overflow(buf->len, extra, &need) || need > buf->max)
		return brt_error_set(BRT_ETOOBIG, "buffer would pass its cap of %zu bytes", buf->max);
	if (__builtin_add_overflow(need, 1, &need))
		return brt_error_set(BRT_ETOOBIG, "buffer size overflows");
	if (need <= buf->alloc)
		return 0;
	/* Doubling keeps appends amortised O(1); the cap (+ NUL) bounds it. */
	want = buf->alloc ? buf->alloc : DYNBUF_MIN_ALLOC;
	while (want < need) {
		if (__builtin_mul_overflow(want, 2, &want)) {
			want = need;
			break;
		}
	}
	if (want - 1 > buf->max)
		want = buf->max + 1;
	if (!(p = realloc(buf->ptr, want)))
		return brt_error_set(BRT_ENOMEM, "out of memory growing a buffer to %zu bytes", want);
	buf->ptr = p;
	buf->alloc = want;
	return 0;
}

int brt_dynbuf_add(brt_dynbuf *buf, const void *data, size_t len)
{
	int error;

	if ((error = dynbuf_reserve(buf, len)) < 0)
		return error;
	if (len > 0)
		memcpy(buf->ptr + buf->len, data, len);
	buf->len += len;
	buf->ptr[buf->len] = '\0';
	return 0;
}

int brt_dynbuf_vaddf(brt_dynbuf *buf, const char *fmt, va_list ap)
{
	va_list measure;
	int n, error;

	va_copy(measure, ap);
	n = vsnprintf(NULL, 0, fmt, measure);
	va_end(measure);
	if (n < 0)
		return brt_error_set(BRT_EINVALID, "bad format for a buffer");
	if ((error = dynbuf_reserve(buf, (size_t)n)) < 0)
		return error;
	vsnprintf(buf->ptr + buf->len, (size_t)n + 1, fmt, ap);
	buf->len += (size_t)n;
	return 0;
}

int brt_dynbuf_addf(brt_dynbuf *buf, const char *fmt, ...)
{
	va_list ap;
	int error;

	va_start(ap, fmt);
	error = brt_dynbuf_vaddf(buf, fmt, ap);
	va_end(ap);
	return error;
}

void brt_dynbuf_reset(brt_dynbuf *buf)
{
	buf->len = 0;
	if (buf->ptr)
		buf->ptr[0] = '\0';
}

void brt_dynbuf_free(brt_dynbuf *buf)
{
	free(buf->ptr);
	brt_dynbuf_init(buf, buf->max);
}

char *brt_dynbuf_ptr(const brt_dynbuf *buf)
{
	return buf->ptr;
}

size_t brt_dynbuf_len(const brt_dynbuf *buf)
{
	return buf->len;
}

char *brt_dynbuf_take(brt_dynbuf *buf, size_t *len_out)
{
	char *p = buf->ptr;

	if (len_out)
		*len_out = buf->len;
	brt_dynbuf_init(buf, buf->max);
	return p;
}
