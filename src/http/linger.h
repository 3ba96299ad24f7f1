/* Lingering close.  A request answered before its body was read (a 401,
 * 403, 404 or 503 to a pushed chunk) ends with libmicrohttpd closing the
 * connection while the client, or a load balancer in front of us, is still
 * sending.  Closing a socket with unread data makes the kernel send a reset,
 * and a reset makes the peer drop what it had received and not yet read:
 * the answer.  The lingerer takes over a duplicate of such a socket, shuts
 * down our sending side (the peer sees the answer, then the end) and reads
 * and drops what still comes until the peer closes, for a bounded time and
 * a bounded number of bytes, then closes it.  Sockets past the number of
 * slots are closed as before. */
#ifndef BRT_HTTP_LINGER_H
#define BRT_HTTP_LINGER_H

#include <stdint.h>

typedef struct brt_linger brt_linger;

typedef struct brt_linger_limits {
	unsigned int slots; /* sockets held at once, > 0 */
	uint64_t max_ms;    /* each is closed after this long */
	uint64_t max_bytes; /* or once it has sent this much */
} brt_linger_limits;

/* Start the lingerer's thread. */
int brt_linger_start(brt_linger **out, const brt_linger_limits *limits);

/* Linger on `fd`, which its owner is about to close: a duplicate is taken,
 * `fd` itself stays the caller's.  Returns 1 if taken, 0 if every slot is
 * in use (or the duplicate failed): the close then goes ahead as before. */
int brt_linger_take(brt_linger *linger, int fd);

/* For logs and tests: sockets taken so far, sockets closed at once because
 * every slot was in use, and sockets held now. */
typedef struct brt_linger_stats {
	uint64_t taken, full;
	unsigned int held;
} brt_linger_stats;

void brt_linger_get_stats(brt_linger *linger, brt_linger_stats *out);

/* Stop the thread and close every socket still held.  Accepts NULL. */
void brt_linger_free(brt_linger *linger);

#endif
