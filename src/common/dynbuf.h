/* A growable byte buffer with a hard cap, for anything whose size is not
 * known up front (listings collected from a database, text built piece by
 * piece).  The cap is set at init and never exceeded, so input cannot make
 * it grow without bound.  The content is always followed by a NUL (not
 * counted in the length), so text can be used as a C string; binary
 * content with NULs of its own works too. */
#ifndef BRT_DYNBUF_H
#define BRT_DYNBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct brt_dynbuf {
	char *ptr;    /* malloc'd; NULL until something is added */
	size_t len;   /* bytes of content */
	size_t alloc; /* bytes allocated (content + NUL + spare) */
	size_t max;   /* cap on len */
} brt_dynbuf;

/* An empty buffer that will refuse to hold more than `max_bytes` bytes.
 * Allocates nothing; never fails. */
void brt_dynbuf_init(brt_dynbuf *buf, size_t max_bytes);

/* Append `len` bytes.  BRT_ETOOBIG if the content would pass the cap,
 * BRT_ENOMEM if memory runs out; on failure the content is unchanged. */
int brt_dynbuf_add(brt_dynbuf *buf, const void *data, size_t len);

/* Append printf-style text (without its NUL); errors as brt_dynbuf_add. */
int brt_dynbuf_addf(brt_dynbuf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int brt_dynbuf_vaddf(brt_dynbuf *buf, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Empty the buffer but keep its memory for reuse. */
void brt_dynbuf_reset(brt_dynbuf *buf);

/* Release the memory; the buffer is empty and usable again (same cap).
 * Accepts a buffer that never allocated. */
void brt_dynbuf_free(brt_dynbuf *buf);

/* The content (borrowed; moves when the buffer grows), or NULL while
 * nothing has been added. */
char *brt_dynbuf_ptr(const brt_dynbuf *buf);

/* Bytes of content. */
size_t brt_dynbuf_len(const brt_dynbuf *buf);

/* Hand the content over: the caller owns it and frees it with free().
 * *len_out (if not NULL) gets the length.  NULL if nothing was added.
 * The buffer is left empty, with no memory, and may be used again. */
char *brt_dynbuf_take(brt_dynbuf *buf, size_t *len_out);

#endif
