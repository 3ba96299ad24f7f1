/* The connection guard: keeps hostile clients from holding the server.
 * It admits or refuses each new connection (a limit per client address,
 * and the last slots kept for addresses that hold few connections), tracks
 * what every open connection is doing, and a watchdog thread cuts the ones
 * past their deadline with shutdown(2), which makes libmicrohttpd close
 * them cleanly: headers must arrive within the header timeout, a request
 * other than a blob transfer must be over within the request timeout, and
 * a blob body or download must keep up a minimum rate.  The idle time
 * between requests is libmicrohttpd's own connection timeout.
 *
 * It also cuts a connection whose client has gone (closed its side) while
 * its request headers or body are incomplete, or while it idles: no byte
 * can come any more.  libmicrohttpd's edge-triggered epoll misses such an end when the
 * close arrived together with the last bytes it read, and would hold the
 * connection, and an upload's data, until a deadline. */
#ifndef BRT_GUARD_H
#define BRT_GUARD_H

#include <stdint.h>
#include <sys/socket.h>

/* An address holding fewer connections than this may take the reserved
 * slots: one client's normal keep-alive pool, not a flood. */
#define BRT_GUARD_LIGHT_HOLDER 4

typedef struct brt_guard_limits {
	unsigned int max_connections; /* total, > 0 */
	unsigned int per_address;     /* per IPv4 address or IPv6 /64; 0: none */
	unsigned int reserved;        /* the last slots, for light holders */
	uint64_t header_ms;           /* to receive a request's headers */
	uint64_t request_ms;          /* for a whole small request */
	uint64_t min_rate;            /* bytes/s of a blob transfer; 0: off */
	uint64_t min_rate_window_ms;  /* measured over this window */
} brt_guard_limits;

/* What a connection is doing; the guard's deadlines depend on it. */
typedef enum brt_conn_phase {
	BRT_PHASE_HEADERS = 1, /* waiting for headers: since accept, or since the first byte */
	BRT_PHASE_SMALL,       /* a request other than a blob transfer, since its first byte */
	BRT_PHASE_LONG,        /* a blob body or download, since it began */
	BRT_PHASE_IDLE,        /* kept alive between requests, since the last one ended */
} brt_conn_phase;

/* Why the guard refused or cut a connection. */
typedef enum brt_guard_verdict {
	BRT_GUARD_OK = 0,
	BRT_GUARD_FULL,         /* every slot is taken */
	BRT_GUARD_PER_ADDRESS,  /* the address holds its limit */
	BRT_GUARD_RESERVED,     /* only reserved slots are left and the address holds several */
	BRT_GUARD_HEADER_LATE,  /* headers not in by the header deadline */
	BRT_GUARD_REQUEST_LATE, /* a small request not over by the request deadline */
	BRT_GUARD_TOO_SLOW,     /* a blob transfer below the minimum rate */
	BRT_GUARD_GONE,         /* the client closed before its request was in, or while idle */
} brt_guard_verdict;

typedef struct brt_guard brt_guard;
typedef struct brt_guard_conn brt_guard_conn;

/* Pure decisions, separate so that unit tests can drive them. */

/* May a new connection in? `total`: connections open, `held`: those of
 * the same address.  BRT_GUARD_OK or the reason to refuse. */
brt_guard_verdict brt_guard_admission(const brt_guard_limits *limits, unsigned int total, unsigned int held);

/* Is a connection in `phase` since `since_ms` past its deadline at
 * `now_ms`?  (Rates are judged by brt_guard_rate.) */
brt_guard_verdict brt_guard_deadline(const brt_guard_limits *limits, brt_conn_phase phase, uint64_t since_ms,
				     uint64_t now_ms);

/* A blob transfer that moved `bytes` in `elapsed_ms` (a whole window):
 * BRT_GUARD_OK or BRT_GUARD_TOO_SLOW. */
brt_guard_verdict brt_guard_rate(const brt_guard_limits *limits, uint64_t bytes, uint64_t elapsed_ms);

/* The bytes by which two addresses are the same client: an IPv4 address
 * (also IPv4-mapped IPv6) or an IPv6 /64.  Writes 16 bytes to `key_out`;
 * BRT_EINVALID for another family. */
int brt_guard_address_key(unsigned char *key_out, const struct sockaddr *addr, socklen_t len);

/* A monotonic clock in milliseconds. */
uint64_t brt_guard_now_ms(void);

/* The guard itself. */

/* Create a guard and start its watchdog thread.  Caller frees with
 * brt_guard_free.  BRT_ENOMEM, BRT_EIO if the thread cannot start. */
int brt_guard_new(brt_guard **out, const brt_guard_limits *limits);

/* Stop the watchdog and free; NULL is fine.  Every connection must have
 * been closed (brt_guard_close) or be closed by the caller afterwards
 * without the guard. */
void brt_guard_free(brt_guard *guard);

/* Accept policy: BRT_GUARD_OK to let the connection from `addr` in. */
brt_guard_verdict brt_guard_admit(brt_guard *guard, const struct sockaddr *addr, socklen_t len);

/* A connection was opened on `fd` from `addr`: start tracking it (phase
 * HEADERS).  The guard owns the result until brt_guard_close.  `tls_state`
 * (may be NULL) is per-connection memory of `tls_state_size` bytes,
 * zeroed, that lives as long as the tracking.  BRT_ENOMEM. */
int brt_guard_open(brt_guard_conn **out, brt_guard *guard, int fd, const struct sockaddr *addr, socklen_t len,
		   size_t tls_state_size);

/* The connection is closing: stop tracking it and free it (NULL is fine).
 * After this the guard never touches its fd. */
void brt_guard_close(brt_guard *guard, brt_guard_conn *conn);

/* The per-connection memory asked for in brt_guard_open. */
void *brt_guard_conn_state(brt_guard_conn *conn);

/* A request's headers are in: it is a blob transfer (`long_transfer`) or
 * a small request, and a body follows (`has_body`) or not. */
void brt_guard_request_begin(brt_guard_conn *conn, int long_transfer, int has_body);

/* The request's body is all in (the answer may still take a while). */
void brt_guard_request_received(brt_guard_conn *conn);

/* The request is over: the connection idles until the next one. */
void brt_guard_request_end(brt_guard_conn *conn);

/* 1 if the last request ended before its body was all read (it was
 * answered early, or the client stopped sending): whoever closes the
 * connection then should linger (linger.h). */
int brt_guard_body_unread(brt_guard_conn *conn);

/* Counters since start, for logs and tests. */
typedef struct brt_guard_stats {
	uint64_t refused_full, refused_per_address, refused_reserved;
	uint64_t cut_header, cut_request, cut_slow, cut_gone;
	unsigned int open;
} brt_guard_stats;

void brt_guard_get_stats(brt_guard *guard, brt_guard_stats *out);

#endif
