/* Request framing checks (RFC 9112 sections 6.1 and 6.3).  A request whose
 * body length could be read two ways by two parsers (a proxy in front and
 * this server) is refused with 400 and its connection closed, so that
 * bytes a proxy took for body can never run here as another request. */
#ifndef BRT_FRAMING_H
#define BRT_FRAMING_H

typedef struct brt_framing {
	unsigned int content_length_count;
	unsigned int transfer_encoding_count;
	int bad_name;              /* a header name with characters outside the RFC 9110 token set */
	int bad_content_length;    /* a Content-Length that is not 1*DIGIT within 64 bits */
	int bad_transfer_encoding; /* a Transfer-Encoding other than exactly "chunked" */
	int body;                  /* the headers announce a body (brt_framing_has_body) */
} brt_framing;

/* Feed one request header (name and value as received; value may be
 * NULL).  Start from a zeroed brt_framing. */
void brt_framing_add(brt_framing *framing, const char *name, const char *value);

/* 0 if the framing is unambiguous; BRT_EINVALID with a detail (see
 * brt_error_last) otherwise.  `http10`: the request is HTTP/1.0, which has
 * no transfer codings.  `*content_length_problem_out` is 1 when the fault
 * is the length itself (SIZE_INVALID), 0 when it is the coding or a
 * header name (UNSUPPORTED). */
int brt_framing_check(const brt_framing *framing, int http10, int *content_length_problem_out);

/* 1 if a request with these Transfer-Encoding and Content-Length header
 * values (each NULL when absent) carries a body. */
int brt_framing_has_body(const char *transfer_encoding, const char *content_length);

#endif
