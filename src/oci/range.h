/* Parsers for byte-range headers sent by clients. */
#ifndef BRT_RANGE_H
#define BRT_RANGE_H

#include <stddef.h>
#include <stdint.h>

/* A `Range: bytes=...` header of a blob GET, against an object of `size`
 * bytes.  Supports one range: "bytes=A-B", "bytes=A-", "bytes=-N"
 * (suffix).  B past the end is clamped.  On success *start_out and
 * *len_out describe the bytes to send.
 *   BRT_EINVALID     malformed, or several ranges (caller ignores the header
 *                    and sends the whole blob, as RFC 9110 allows)
 *   BRT_ERANGE       well-formed but unsatisfiable (start >= size, or
 *                    zero-length suffix): answer 416 */
int brt_parse_range(uint64_t *start_out, uint64_t *len_out, const char *header, uint64_t size);

/* A `Content-Range` header of an upload PATCH: "A-B" (inclusive, the OCI
 * form), also accepting "bytes A-B" and "bytes A-B/total" / "A-B/total"
 * with total a number or "*".  Requires A <= B.  BRT_EINVALID otherwise. */
int brt_parse_content_range(uint64_t *start_out, uint64_t *end_out, const char *header);

#endif
