/* The PostgreSQL driver's key epoch.  The epoch row is the truth: a
 * revocation bumps it and sends NOTIFY in one transaction, and PostgreSQL
 * delivers the notice to every listening session when, and only when,
 * that transaction commits.  Each store keeps one LISTEN connection in a
 * thread of its own that counts notices; a request thread trusts the
 * epoch its connection last read while that count has not moved, the
 * listener is connected, and the read is younger than EPOCH_RECHECK_MS.
 * Otherwise (a notice came, the listener is away or came back, the read
 * is old) it reads the row: a lost listener never serves a stale epoch
 * for more than EPOCH_RECHECK_MS, and usually not at all. */
#include "meta/pg/internal.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#define EPOCH_RECHECK_MS 1000
/* How long the listener waits before it connects again. */
#define LISTENER_RETRY_MS 1000

/* Wait until `fd` is readable, the store stops, or `timeout_ms` passed;
 * 1 if the store stops. */
static int listener_wait(pg_listener *l, int fd, int timeout_ms, int *readable_out)
{
	struct pollfd fds[2] = {{l->wake[0], POLLIN, 0}, {fd, POLLIN, 0}};
	int n = poll(fds, fd >= 0 ? 2 : 1, timeout_ms);

	*readable_out = n > 0 && fd >= 0 && fds[1].revents != 0;
	return n > 0 && fds[0].revents != 0;
}

static PGconn *listener_connect(pg_store *s)
{
	PGconn *db = NULL;
	PGresult *res;

	if (brt_pg_connect(&db, s->dsn) < 0)
		return NULL;
	res = PQexec(db, "LISTEN " PG_EPOCH_CHANNEL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		PQclear(res);
		PQfinish(db);
		return NULL;
	}
	PQclear(res);
	return db;
}

static void *listener_main(void *arg)
{
	pg_store *s = arg;
	pg_listener *l = &s->listener;
	PGconn *db = NULL;
	int readable;

	for (;;) {
		if (!db) {
			if ((db = listener_connect(s))) {
				/* Notices sent while it was away are lost: count one. */
				atomic_fetch_add(&l->notices, 1);
				atomic_store(&l->up, 1);
			} else if (listener_wait(l, -1, LISTENER_RETRY_MS, &readable)) {
				break;
			} else {
				continue;
			}
		}
		if (listener_wait(l, PQsocket(db), 10000, &readable))
			break;
		if (!readable)
			continue;
		if (!PQconsumeInput(db) || PQstatus(db) == CONNECTION_BAD) {
			/* Down first, then the count: a reader that still saw it up
			 * sees the count move. */
			atomic_store(&l->up, 0);
			atomic_fetch_add(&l->notices, 1);
			PQfinish(db);
			db = NULL;
			continue;
		}
		{
			PGnotify *notice;
			int any = 0;

			while ((notice = PQnotifies(db))) {
				PQfreemem(notice);
				any = 1;
			}
			if (any)
				atomic_fetch_add(&l->notices, 1);
		}
	}
	atomic_store(&l->up, 0);
	PQfinish(db);
	return NULL;
}

int brt_pg_listener_start(pg_store *s)
{
	pg_listener *l = &s->listener;

	if (pipe(l->wake) != 0)
		return brt_error_set(BRT_EIO, "pipe: %s", strerror(errno));
	if (pthread_create(&l->thread, NULL, listener_main, s) != 0) {
		close(l->wake[0]);
		close(l->wake[1]);
		return brt_error_set(BRT_EIO, "postgres: cannot start the key epoch listener");
	}
	l->started = 1;
	return 0;
}

void brt_pg_listener_stop(pg_store *s)
{
	pg_listener *l = &s->listener;

	if (!l->started)
		return;
	while (write(l->wake[1], "x", 1) < 0 && errno == EINTR)
		;
	pthread_join(l->thread, NULL);
	close(l->wake[0]);
	close(l->wake[1]);
	l->started = 0;
}

static int key_epoch_read(pg_conn *c, uint64_t *out)
{
	pg_listener *l = &c->store->listener;
	brt_sql_statement *st;
	int64_t now = brt_monotonic_coarse_ms(), value = 0;
	/* Loaded before the row is read: a notice after this is seen next
	 * time. */
	int up = atomic_load(&l->up);
	uint64_t notices = atomic_load(&l->notices);
	int error, row;

	if (up && c->epoch_known && notices == c->notices_seen && now - c->checked_ms < EPOCH_RECHECK_MS) {
		*out = c->epoch;
		return 0;
	}
	st = brt_sql_stmt(&c->base, BRT_SQL_EPOCH_GET);
	if ((error = brt_sql_step(&c->base, st, &row)) == 0 && row)
		value = brt_sql_column_int64(st, 0);
	brt_sql_end(st);
	if (error < 0)
		return error;
	c->epoch = (uint64_t)value;
	c->notices_seen = notices;
	c->checked_ms = now;
	c->epoch_known = 1;
	*out = c->epoch;
	return 0;
}

uint64_t brt_pg_key_epoch(brt_meta *m)
{
	/* As in the SQLite driver: failures count down from the top, so none
	 * repeats and none equals a real epoch. */
	static uint64_t failures;
	pg_conn *c;
	uint64_t epoch;

	if (brt_pg_conn_get(&c, m) == 0 && c->store && key_epoch_read(c, &epoch) == 0)
		return epoch;
	return UINT64_MAX - __atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
}
