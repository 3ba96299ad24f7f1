/* The connection guard (see guard.h).  Connections are counted per client
 * address in a small hash table and listed for the watchdog under one
 * mutex, taken only when a connection opens or closes and by the watchdog;
 * a request's phase changes are a single atomic store on the hot path.
 * Progress of an idle or long-running connection is read from the kernel
 * (TCP_INFO), so no hook in the data path is needed. */
#include "http/guard.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/tcp.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#define GUARD_BUCKETS 4096
/* tcp_info.tcpi_state of a socket whose peer has closed its side: a
 * stable kernel ABI value that <linux/tcp.h> does not name. */
#define GUARD_TCP_CLOSE_WAIT 8
#define GUARD_TICK_MS 250
/* Guard activity is summed up in the log at most this often, so that an
 * attack does not flood the log with one line per connection. */
#define GUARD_LOG_EVERY_MS 10000

/* A connection's phase and since when, in one word so that the watchdog
 * and the connection's thread can change it with one compare-and-swap. */
#define STATE(phase, since_ms) (((uint64_t)(since_ms) << 3) | (uint64_t)(phase))
#define STATE_PHASE(state) ((brt_conn_phase)((state)&7))
#define STATE_SINCE(state) ((state) >> 3)

typedef struct address_entry {
	unsigned char key[16];
	unsigned int count;
	struct address_entry *next;
} address_entry;

struct brt_guard_conn {
	_Atomic uint64_t state;
	_Atomic int receiving; /* a request body is expected and not all in */
	_Atomic int unread;    /* the last request ended with `receiving` set */
	int fd;
	address_entry *address;
	brt_guard_conn *prev, *next;
	/* The watchdog's own bookkeeping (under the guard's lock). */
	uint64_t seen_state; /* the state these marks belong to */
	uint64_t rx_mark;    /* bytes received when it went idle */
	uint64_t rate_mark;  /* bytes moved when the rate window began */
	uint64_t rate_since_ms;
	uint64_t gone_state; /* the state in which the client was last seen gone */
	int cut;
	max_align_t extra[]; /* the caller's per-connection state */
};

struct brt_guard {
	brt_guard_limits limits;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	int thread_started;
	int stopping;
	brt_guard_conn *conns;
	unsigned int open;
	address_entry *buckets[GUARD_BUCKETS];
	_Atomic uint64_t refused_full, refused_per_address, refused_reserved;
	uint64_t cut_header, cut_request, cut_slow, cut_gone;
	brt_guard_stats logged; /* the counters when last logged */
	uint64_t logged_at_ms;
};

uint64_t brt_guard_now_ms(void)
{
	return (uint64_t)brt_monotonic_ms();
}

brt_guard_verdict brt_guard_admission(const brt_guard_limits *limits, unsigned int total, unsigned int held)
{
	unsigned int reserved = limits->reserved < limits->max_connections ? limits->reserved : 0;

	if (total >= limits->max_connections)
		return BRT_GUARD_FULL;
	if (limits->per_address && held >= limits->per_address)
		return BRT_GUARD_PER_ADDRESS;
	if (total >= limits->max_connections - reserved && held >= BRT_GUARD_LIGHT_HOLDER)
		return BRT_GUARD_RESERVED;
	return BRT_GUARD_OK;
}

brt_guard_verdict brt_guard_deadline(const brt_guard_limits *limits, brt_conn_phase phase, uint64_t since_ms,
				     uint64_t now_ms)
{
	uint64_t age = now_ms > since_ms ? now_ms - since_ms : 0;

	switch (phase) {
	case BRT_PHASE_HEADERS:
		return age > limits->header_ms ? BRT_GUARD_HEADER_LATE : BRT_GUARD_OK;
	case BRT_PHASE_SMALL:
		return age > limits->request_ms ? BRT_GUARD_REQUEST_LATE : BRT_GUARD_OK;
	case BRT_PHASE_LONG:
	case BRT_PHASE_IDLE:
		break;
	}
	return BRT_GUARD_OK;
}

brt_guard_verdict brt_guard_rate(const brt_guard_limits *limits, uint64_t bytes, uint64_t elapsed_ms)
{
	uint64_t want, got;

	if (limits->min_rate == 0 || elapsed_ms == 0)
		return BRT_GUARD_OK;
	/* Both products overflow only far beyond any real rate or window. */
	if (__builtin_mul_overflow(limits->min_rate, elapsed_ms, &want) ||
	    __builtin_mul_overflow(bytes, 1000u, &got))
		return BRT_GUARD_OK;
	return got < want ? BRT_GUARD_TOO_SLOW : BRT_GUARD_OK;
}

int brt_guard_address_key(unsigned char *key_out, const struct sockaddr *addr, socklen_t len)
{
	static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(key_out, 0, 16);
	if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
		memcpy(key_out, v4_mapped, 12);
		memcpy(key_out + 12, &in->sin_addr, 4);
		return 0;
	}
	if (addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
		const unsigned char *a = in6->sin6_addr.s6_addr;
		if (memcmp(a, v4_mapped, 12) == 0) {
			memcpy(key_out, a, 16);
			return 0;
		}
		/* One site gets a whole /64: count it as one client. */
		memcpy(key_out, a, 8);
		return 0;
	}
	return brt_error_set(BRT_EINVALID, "not an IP address");
}

static size_t bucket_of(const unsigned char *key)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % GUARD_BUCKETS;
}

/* Under the lock. */
static address_entry *address_find(brt_guard *guard, const unsigned char *key)
{
	address_entry *e = guard->buckets[bucket_of(key)];

	while (e && memcmp(e->key, key, 16) != 0)
		e = e->next;
	return e;
}

brt_guard_verdict brt_guard_admit(brt_guard *guard, const struct sockaddr *addr, socklen_t len)
{
	unsigned char key[16];
	address_entry *e;
	unsigned int total, held = 0;
	brt_guard_verdict verdict;

	if (brt_guard_address_key(key, addr, len) < 0)
		return BRT_GUARD_OK;
	pthread_mutex_lock(&guard->lock);
	total = guard->open;
	if ((e = address_find(guard, key)))
		held = e->count;
	pthread_mutex_unlock(&guard->lock);
	verdict = brt_guard_admission(&guard->limits, total, held);
	switch (verdict) {
	case BRT_GUARD_FULL:
		atomic_fetch_add(&guard->refused_full, 1);
		break;
	case BRT_GUARD_PER_ADDRESS:
		atomic_fetch_add(&guard->refused_per_address, 1);
		break;
	case BRT_GUARD_RESERVED:
		atomic_fetch_add(&guard->refused_reserved, 1);
		break;
	default:
		break;
	}
	return verdict;
}

int brt_guard_open(brt_guard_conn **out, brt_guard *guard, int fd, const struct sockaddr *addr, socklen_t len,
		   size_t tls_state_size)
{
	brt_guard_conn *conn;
	unsigned char key[16];
	address_entry *e = NULL;
	int have_key = addr && brt_guard_address_key(key, addr, len) == 0;

	*out = NULL;
	conn = calloc(1, sizeof(*conn) + tls_state_size);
	if (!conn)
		return brt_error_set(BRT_ENOMEM, "out of memory");
	conn->fd = fd;
	atomic_init(&conn->state, STATE(BRT_PHASE_HEADERS, brt_guard_now_ms()));
	pthread_mutex_lock(&guard->lock);
	if (have_key && !(e = address_find(guard, key))) {
		e = calloc(1, sizeof(*e));
		if (e) {
			size_t b = bucket_of(key);
			memcpy(e->key, key, 16);
			e->next = guard->buckets[b];
			guard->buckets[b] = e;
		}
	}
	if (e)
		e->count++;
	conn->address = e;
	conn->next = guard->conns;
	if (guard->conns)
		guard->conns->prev = conn;
	guard->conns = conn;
	guard->open++;
	pthread_mutex_unlock(&guard->lock);
	*out = conn;
	return 0;
}

void brt_guard_close(brt_guard *guard, brt_guard_conn *conn)
{
	address_entry *e;

	if (!conn)
		return;
	pthread_mutex_lock(&guard->lock);
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		guard->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	guard->open--;
	e = conn->address;
	if (e && --e->count == 0) {
		address_entry **p = &guard->buckets[bucket_of(e->key)];
		while (*p != e)
			p = &(*p)->next;
		*p = e->next;
		free(e);
	}
	pthread_mutex_unlock(&guard->lock);
	free(conn);
}

void *brt_guard_conn_state(brt_guard_conn *conn)
{
	return conn->extra;
}

void brt_guard_request_begin(brt_guard_conn *conn, int long_transfer, int has_body)
{
	uint64_t state;

	atomic_store_explicit(&conn->unread, 0, memory_order_relaxed);
	atomic_store_explicit(&conn->receiving, has_body, memory_order_relaxed);
	if (long_transfer) {
		atomic_store(&conn->state, STATE(BRT_PHASE_LONG, brt_guard_now_ms()));
		return;
	}
	/* The request's deadline counts from its first byte, when the watchdog
	 * saw it; if it had not yet (the request came in one go), from now. */
	state = atomic_load(&conn->state);
	if (STATE_PHASE(state) == BRT_PHASE_HEADERS)
		atomic_store(&conn->state, STATE(BRT_PHASE_SMALL, STATE_SINCE(state)));
	else
		atomic_store(&conn->state, STATE(BRT_PHASE_SMALL, brt_guard_now_ms()));
}

int brt_guard_body_unread(brt_guard_conn *conn)
{
	return atomic_load_explicit(&conn->unread, memory_order_relaxed);
}

void brt_guard_request_received(brt_guard_conn *conn)
{
	atomic_store_explicit(&conn->receiving, 0, memory_order_relaxed);
}

void brt_guard_request_end(brt_guard_conn *conn)
{
	atomic_store_explicit(&conn->unread,
			      atomic_exchange_explicit(&conn->receiving, 0, memory_order_relaxed),
			      memory_order_relaxed);
	atomic_store(&conn->state, STATE(BRT_PHASE_IDLE, brt_guard_now_ms()));
}

/* Bytes received from and acknowledged by the client so far, and whether
 * it has closed its side and everything it sent has been read: nothing
 * more can come.  (A closed side shows as CLOSE_WAIT; the peek tells
 * whether bytes wait before the end, still to be read.) */
static int tcp_counters(int fd, uint64_t *received, uint64_t *acked, int *gone)
{
	struct tcp_info info;
	socklen_t len = sizeof(info);
	char byte;

	memset(&info, 0, sizeof(info));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
		return -1;
	*received = info.tcpi_bytes_received;
	*acked = info.tcpi_bytes_acked;
	*gone = info.tcpi_state == GUARD_TCP_CLOSE_WAIT && recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
	return 0;
}

/* Whether the client is gone now and was already at the last tick, in
 * the same state: a request whose last bytes were just read is not cut
 * in the moment before the server marks it received. */
static int gone_twice(brt_guard_conn *conn, uint64_t state, int gone)
{
	if (!gone) {
		conn->gone_state = 0;
		return 0;
	}
	if (conn->gone_state == state)
		return 1;
	conn->gone_state = state;
	return 0;
}

/* Under the lock: the verdict on one connection now. */
static brt_guard_verdict watch(brt_guard *guard, brt_guard_conn *conn, uint64_t now)
{
	const brt_guard_limits *limits = &guard->limits;
	uint64_t state = atomic_load(&conn->state), received = 0, acked = 0;
	brt_conn_phase phase = STATE_PHASE(state);
	int fresh = state != conn->seen_state, gone = 0, closed, rated;

	conn->seen_state = state;
	switch (phase) {
	case BRT_PHASE_IDLE:
		if (tcp_counters(conn->fd, &received, &acked, &gone) < 0)
			return BRT_GUARD_OK;
		if (fresh)
			conn->rx_mark = received;
		/* Nothing came since it went idle but the close itself (which
		 * counts one in the sequence space the counter follows). */
		closed = gone && received - conn->rx_mark <= 1;
		if (gone_twice(conn, state, closed))
			return BRT_GUARD_GONE;
		if (!closed && !fresh && received != conn->rx_mark) {
			/* The next request has begun: its headers are due. */
			uint64_t next = STATE(BRT_PHASE_HEADERS, now);
			if (atomic_compare_exchange_strong(&conn->state, &state, next))
				conn->seen_state = next;
		}
		return BRT_GUARD_OK;
	case BRT_PHASE_SMALL:
	case BRT_PHASE_LONG:
		/* A blob transfer is held to the rate; a small one to its deadline. */
		rated = phase == BRT_PHASE_LONG && limits->min_rate != 0;
		if (!atomic_load_explicit(&conn->receiving, memory_order_relaxed) && !rated)
			break;
		if (tcp_counters(conn->fd, &received, &acked, &gone) < 0)
			break;
		/* Checked again: the body may have come in since. */
		if (gone_twice(conn, state,
			       gone && atomic_load_explicit(&conn->receiving, memory_order_relaxed)))
			return BRT_GUARD_GONE;
		if (!rated)
			break;
		if (fresh) {
			conn->rate_mark = received + acked;
			conn->rate_since_ms = now;
			return BRT_GUARD_OK;
		}
		if (now - conn->rate_since_ms < limits->min_rate_window_ms)
			return BRT_GUARD_OK;
		if (brt_guard_rate(limits, received + acked - conn->rate_mark, now - conn->rate_since_ms) !=
		    BRT_GUARD_OK)
			return BRT_GUARD_TOO_SLOW;
		conn->rate_mark = received + acked;
		conn->rate_since_ms = now;
		return BRT_GUARD_OK;
	case BRT_PHASE_HEADERS:
		/* Part of a request, or nothing, and then the close. */
		if (tcp_counters(conn->fd, &received, &acked, &gone) == 0 && gone_twice(conn, state, gone))
			return BRT_GUARD_GONE;
		break;
	}
	return brt_guard_deadline(limits, phase, STATE_SINCE(state), now);
}

static void snapshot(brt_guard *guard, brt_guard_stats *out)
{
	out->refused_full = atomic_load(&guard->refused_full);
	out->refused_per_address = atomic_load(&guard->refused_per_address);
	out->refused_reserved = atomic_load(&guard->refused_reserved);
	out->cut_header = guard->cut_header;
	out->cut_request = guard->cut_request;
	out->cut_slow = guard->cut_slow;
	out->cut_gone = guard->cut_gone;
	out->open = guard->open;
}

/* Under the lock: one line on what the guard did since the last one. */
static void log_summary(brt_guard *guard, uint64_t now)
{
	brt_guard_stats s;
	const brt_guard_stats *o = &guard->logged;

	if (now - guard->logged_at_ms < GUARD_LOG_EVERY_MS)
		return;
	snapshot(guard, &s);
	if (s.refused_full != o->refused_full || s.refused_per_address != o->refused_per_address ||
	    s.refused_reserved != o->refused_reserved || s.cut_header != o->cut_header ||
	    s.cut_request != o->cut_request || s.cut_slow != o->cut_slow)
		brt_log_warn(
			"guard: refused %llu new connections (%llu full, %llu over the per-address limit, "
			"%llu "
			"from heavy addresses when only reserved slots were left); closed %llu past the "
			"header "
			"deadline, %llu past the request deadline, %llu below the minimum rate; %u open",
			(unsigned long long)(s.refused_full + s.refused_per_address + s.refused_reserved -
					     o->refused_full - o->refused_per_address - o->refused_reserved),
			(unsigned long long)(s.refused_full - o->refused_full),
			(unsigned long long)(s.refused_per_address - o->refused_per_address),
			(unsigned long long)(s.refused_reserved - o->refused_reserved),
			(unsigned long long)(s.cut_header - o->cut_header),
			(unsigned long long)(s.cut_request - o->cut_request),
			(unsigned long long)(s.cut_slow - o->cut_slow), s.open);
	guard->logged = s;
	guard->logged_at_ms = now;
}

static void *watchdog(void *payload)
{
	brt_guard *guard = payload;
	struct timespec wake;

	pthread_mutex_lock(&guard->lock);
	while (!guard->stopping) {
		uint64_t now = brt_guard_now_ms();

		for (brt_guard_conn *c = guard->conns; c; c = c->next) {
			brt_guard_verdict v;
			if (c->cut)
				continue;
			v = watch(guard, c, now);
			if (v == BRT_GUARD_OK)
				continue;
			/* The fd stays valid while we hold the lock: libmicrohttpd
			 * tells us it closes (brt_guard_close) before it closes it. */
			shutdown(c->fd, SHUT_RDWR);
			c->cut = 1;
			if (v == BRT_GUARD_HEADER_LATE)
				guard->cut_header++;
			else if (v == BRT_GUARD_REQUEST_LATE)
				guard->cut_request++;
			else if (v == BRT_GUARD_GONE) /* no attack: the access log has it */
				guard->cut_gone++;
			else
				guard->cut_slow++;
		}
		log_summary(guard, now);
		clock_gettime(CLOCK_MONOTONIC, &wake);
		wake.tv_nsec += GUARD_TICK_MS * 1000000L;
		if (wake.tv_nsec >= 1000000000L) {
			wake.tv_sec++;
			wake.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&guard->wake, &guard->lock, &wake);
	}
	pthread_mutex_unlock(&guard->lock);
	return NULL;
}

int brt_guard_new(brt_guard **out, const brt_guard_limits *limits)
{
	brt_guard *guard;
	pthread_condattr_t attr;
	int rc;

	*out = NULL;
	if (!(guard = calloc(1, sizeof(*guard))))
		return brt_error_set(BRT_ENOMEM, "out of memory");
	guard->limits = *limits;
	guard->logged_at_ms = brt_guard_now_ms();
	pthread_mutex_init(&guard->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&guard->wake, &attr);
	pthread_condattr_destroy(&attr);
	if ((rc = pthread_create(&guard->thread, NULL, watchdog, guard)) != 0) {
		brt_guard_free(guard);
		return brt_error_set(BRT_EIO, "cannot start the connection watchdog: %s", strerror(rc));
	}
	guard->thread_started = 1;
	*out = guard;
	return 0;
}

void brt_guard_free(brt_guard *guard)
{
	if (!guard)
		return;
	if (guard->thread_started) {
		pthread_mutex_lock(&guard->lock);
		guard->stopping = 1;
		pthread_cond_signal(&guard->wake);
		pthread_mutex_unlock(&guard->lock);
		pthread_join(guard->thread, NULL);
	}
	/* Anything still tracked belongs to a daemon that is gone. */
	while (guard->conns)
		brt_guard_close(guard, guard->conns);
	pthread_cond_destroy(&guard->wake);
	pthread_mutex_destroy(&guard->lock);
	free(guard);
}

void brt_guard_get_stats(brt_guard *guard, brt_guard_stats *out)
{
	pthread_mutex_lock(&guard->lock);
	snapshot(guard, out);
	pthread_mutex_unlock(&guard->lock);
}
