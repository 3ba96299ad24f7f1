/* Parsers for the byte-range headers of blob GET (`Range`, RFC 9110
 * section 14) and upload PATCH (`Content-Range`, in the OCI "A-B" form and
 * the RFC form).  Both work on a bounded view of the header and never read
 * past its NUL. */
#include "oci/range.h"

#include <string.h>
#include <strings.h>

#include "common/error.h"

/* A view of part of the header being parsed. */
typedef struct span {
	const char *p;
	size_t len;
} span;

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static span trim(span s)
{
	while (s.len > 0 && is_ows(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && is_ows(s.p[s.len - 1]))
		s.len--;
	return s;
}

/* Split `s` at the first `c`: 1 and the two halves, or 0 if absent (then
 * `left` is all of `s` and `right` empty, so both are always set). */
static int split_at(span *left, span *right, span s, char c)
{
	const char *hit = s.len ? memchr(s.p, c, s.len) : NULL;

	if (!hit) {
		*left = s;
		right->p = s.p + s.len;
		right->len = 0;
		return 0;
	}
	left->p = s.p;
	left->len = (size_t)(hit - s.p);
	right->p = hit + 1;
	right->len = s.len - left->len - 1;
	return 1;
}

/* Strip a case-insensitive `prefix` (range units compare that way). */
static int strip_prefix(span *s, const char *prefix)
{
	size_t n = strlen(prefix);

	if (s->len < n || strncasecmp(s->p, prefix, n) != 0)
		return 0;
	s->p += n;
	s->len -= n;
	return 1;
}

/* Decimal digits only.  0 on success; -1 if not digits; 1 if the value does
 * not fit in 64 bits (then *out is UINT64_MAX). */
static int parse_u64(uint64_t *out, span s)
{
	uint64_t v = 0;
	int overflow = 0;

	if (s.len == 0)
		return -1;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -1;
		if (!overflow && (__builtin_mul_overflow(v, 10, &v) ||
				  __builtin_add_overflow(v, (uint64_t)(s.p[i] - '0'), &v)))
			overflow = 1;
	}
	*out = overflow ? UINT64_MAX : v;
	return overflow;
}

static span skip_zeros(span s)
{
	while (s.len > 1 && s.p[0] == '0') {
		s.p++;
		s.len--;
	}
	return s;
}

/* a > b for two digit strings of any length. */
static int decimal_greater(span a, span b)
{
	a = skip_zeros(a);
	b = skip_zeros(b);
	if (a.len != b.len)
		return a.len > b.len;
	return memcmp(a.p, b.p, a.len) > 0;
}

/* "A-B" or "A-": a last position at or past `size` is clamped; a last
 * position before the first makes the header invalid, a first position at
 * or past `size` makes it unsatisfiable.  Positions too large for 64 bits
 * are past any object's end, so they only matter for the order test. */
static int first_last_range(uint64_t *start_out, uint64_t *len_out, span first, span last, uint64_t size)
{
	uint64_t a, b = UINT64_MAX;

	if (parse_u64(&a, first) < 0)
		return brt_error_set(BRT_EINVALID, "malformed range start");
	if (last.len > 0) {
		if (parse_u64(&b, last) < 0)
			return brt_error_set(BRT_EINVALID, "malformed range end");
		if (decimal_greater(first, last))
			return brt_error_set(BRT_EINVALID, "range end before its start");
	}
	if (a >= size)
		return brt_error_set(BRT_ERANGE, "range starts past the end of the blob");
	if (b >= size)
		b = size - 1;
	*start_out = a;
	*len_out = b - a + 1;
	return 0;
}

/* "-N": the last N bytes, all of them when N exceeds the size. */
static int suffix_range(uint64_t *start_out, uint64_t *len_out, span count, uint64_t size)
{
	uint64_t n;

	if (parse_u64(&n, count) < 0)
		return brt_error_set(BRT_EINVALID, "malformed suffix range");
	if (n == 0 || size == 0)
		return brt_error_set(BRT_ERANGE, "empty suffix range");
	if (n > size)
		n = size;
	*start_out = size - n;
	*len_out = n;
	return 0;
}

int brt_parse_range(uint64_t *start_out, uint64_t *len_out, const char *header, uint64_t size)
{
	span s, first, last;

	if (!header)
		return brt_error_set(BRT_EINVALID, "no range header");
	s.p = header;
	s.len = strlen(header);
	s = trim(s);
	if (!strip_prefix(&s, "bytes="))
		return brt_error_set(BRT_EINVALID, "range unit is not bytes");
	s = trim(s);
	if (memchr(s.p, ',', s.len))
		return brt_error_set(BRT_EINVALID, "multiple ranges are not supported");
	if (!split_at(&first, &last, s, '-'))
		return brt_error_set(BRT_EINVALID, "malformed range");
	if (first.len == 0)
		return suffix_range(start_out, len_out, last, size);
	return first_last_range(start_out, len_out, first, last, size);
}

/* "/total" where total is digits or "*"; an exact total must exceed B. */
static int content_range_total(span total, uint64_t end)
{
	uint64_t n;
	int rc;

	if (total.len == 1 && total.p[0] == '*')
		return 0;
	if ((rc = parse_u64(&n, total)) < 0)
		return brt_error_set(BRT_EINVALID, "malformed Content-Range total");
	if (rc == 0 && n <= end)
		return brt_error_set(BRT_EINVALID, "Content-Range end is not below its total");
	return 0;
}

int brt_parse_content_range(uint64_t *start_out, uint64_t *end_out, const char *header)
{
	span s, spec, total, first, last;
	uint64_t a, b;
	int has_total, error = 0;

	if (!header)
		return brt_error_set(BRT_EINVALID, "no Content-Range header");
	s.p = header;
	s.len = strlen(header);
	s = trim(s);
	if (strip_prefix(&s, "bytes "))
		s = trim(s);
	has_total = split_at(&spec, &total, s, '/');
	if (!split_at(&first, &last, spec, '-') || parse_u64(&a, first) != 0 || parse_u64(&b, last) != 0)
		return brt_error_set(BRT_EINVALID, "malformed Content-Range");
	if (a > b)
		return brt_error_set(BRT_EINVALID, "Content-Range end before its start");
	if (has_total && (error = content_range_total(total, b)) < 0)
		return error;
	*start_out = a;
	*end_out = b;
	return 0;
}
