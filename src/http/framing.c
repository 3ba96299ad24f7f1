/* Request framing checks (see framing.h). */
#include "http/framing.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"

/* RFC 9110 section 5.6.2: tchar. */
static int is_token_char(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (!is_token_char((unsigned char)*s))
			return 0;
	return 1;
}

/* 1*DIGIT that fits in 64 bits. */
static int is_plain_length(const char *s)
{
	uint64_t n = 0;

	if (!s || !*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		if (__builtin_mul_overflow(n, 10u, &n) || __builtin_add_overflow(n, (uint64_t)(*s - '0'), &n))
			return 0;
	}
	return 1;
}

void brt_framing_add(brt_framing *framing, const char *name, const char *value)
{
	if (!is_token(name)) {
		framing->bad_name = 1;
		return;
	}
	if (strcasecmp(name, "Content-Length") == 0) {
		framing->content_length_count++;
		if (!is_plain_length(value))
			framing->bad_content_length = 1;
		framing->body |= brt_framing_has_body(NULL, value);
	} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
		framing->transfer_encoding_count++;
		if (!value || strcasecmp(value, "chunked") != 0)
			framing->bad_transfer_encoding = 1;
		framing->body |= brt_framing_has_body(value, NULL);
	}
}

int brt_framing_check(const brt_framing *framing, int http10, int *content_length_problem_out)
{
	*content_length_problem_out = 0;
	if (framing->bad_name)
		return brt_error_set(BRT_EINVALID, "a header name has characters outside the HTTP token set");
	if (framing->transfer_encoding_count > 0) {
		if (http10)
			return brt_error_set(BRT_EINVALID, "HTTP/1.0 has no Transfer-Encoding");
		if (framing->transfer_encoding_count > 1)
			return brt_error_set(BRT_EINVALID, "more than one Transfer-Encoding header");
		if (framing->bad_transfer_encoding)
			return brt_error_set(BRT_EINVALID, "the only Transfer-Encoding accepted is chunked");
		if (framing->content_length_count > 0) {
			*content_length_problem_out = 1;
			return brt_error_set(BRT_EINVALID, "both Content-Length and Transfer-Encoding");
		}
		return 0;
	}
	if (framing->content_length_count > 1) {
		*content_length_problem_out = 1;
		return brt_error_set(BRT_EINVALID, "more than one Content-Length header");
	}
	if (framing->bad_content_length) {
		*content_length_problem_out = 1;
		return brt_error_set(BRT_EINVALID, "Content-Length is not a decimal number of bytes");
	}
	return 0;
}

int brt_framing_has_body(const char *transfer_encoding, const char *content_length)
{
	if (transfer_encoding && strcasecmp(transfer_encoding, "identity") != 0)
		return 1;
	return content_length && strcmp(content_length, "0") != 0;
}
