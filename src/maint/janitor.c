/* The janitor (see maint.h): upload sessions end.  A session idle longer
 * than uploads.expire_after is deleted with its data, upload data that no
 * session owns (a crash between creating data and its row, a monolithic
 * upload cut short by kill -9, a session ended while an attempt wrote) is
 * removed, and so are the pieces of a live session that no attempt will
 * ever adopt (an attempt killed before it could drop them).  Nothing is
 * locked: a session is deleted with a compare-and-swap on the generation
 * it was seen at, so one a request moved on meanwhile stays, and a request
 * that continues a deleted session loses its own compare-and-swap and
 * drops what it wrote.  Data is judged abandoned only once it was last
 * written before the cut-off, which no request in flight is. */
#include "maint/maint.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/pool.h"

/* Sessions handled per batch: collected first, since the metadata walk
 * must not write while its statement is open. */
#define JANITOR_BATCH 256
/* Memory for one session's backend state (at most 1 MiB) and change. */
#define JANITOR_POOL_CAP (BRT_BACKEND_STATE_MAX + ((size_t)64 << 10))

typedef struct session_ref {
	char id[BRT_UPLOAD_ID_LEN + 1];
	uint64_t generation;
} session_ref;

typedef struct ref_batch {
	session_ref refs[JANITOR_BATCH];
	size_t count;
} ref_batch;

static int collect_session(const brt_upload *u, void *payload)
{
	ref_batch *b = payload;

	if (b->count < JANITOR_BATCH) {
		memcpy(b->refs[b->count].id, u->id, BRT_UPLOAD_ID_LEN + 1);
		b->refs[b->count++].generation = u->generation;
	}
	return 0;
}

/* Delete session `ref` if it is still as listed and idle since before
 * `cutoff`, then its data.  1 if removed, 0 if alive after all, <0 on
 * error. */
static int expire_one(brt_janitor_stats *st, brt_meta *meta, brt_blobstore *blobs, brt_pool *pool,
		      const session_ref *ref, int64_t cutoff)
{
	brt_upload u;
	int error;

	brt_pool_clear(pool);
	error = brt_meta_upload_get(meta, &u, pool, ref->id);
	if (error == BRT_ENOTFOUND)
		return 0;
	if (error < 0)
		return error;
	if (u.generation != ref->generation || u.updated_at >= cutoff)
		return 0;
	error = brt_meta_upload_delete(meta, ref->id, u.generation);
	if (error == BRT_ECONFLICT || error == BRT_ENOTFOUND) /* a request got there first */
		return 0;
	if (error < 0)
		return error;
	/* What this leaves (a store error) belongs to no session any more:
	 * the orphan sweep takes it. */
	if (brt_blobstore_upload_remove(blobs, ref->id, u.backend_state, u.backend_state_len) < 0)
		brt_log_warn("janitor: data of expired upload %s: %s", ref->id, brt_error_last());
	st->sessions_expired++;
	return 1;
}

static int expire_sessions(brt_janitor_stats *st, brt_meta *meta, brt_blobstore *blobs, brt_pool *pool,
			   int64_t cutoff)
{
	ref_batch *batch = calloc(1, sizeof(*batch));
	int error = 0;

	if (!batch)
		return brt_error_set(BRT_ENOMEM, "janitor: out of memory");
	for (;;) {
		size_t i, progress = 0;

		batch->count = 0;
		/* Sessions that stay (used since listed) come again in the
		 * next batch; a batch that removes nothing ends the pass. */
		if ((error = brt_meta_upload_list(meta, cutoff, JANITOR_BATCH, collect_session, batch)) < 0)
			break;
		for (i = 0; i < batch->count; i++) {
			int removed = expire_one(st, meta, blobs, pool, &batch->refs[i], cutoff);

			if (removed < 0) {
				error = removed;
				break;
			}
			progress += (size_t)removed;
		}
		if (error < 0 || progress == 0 || batch->count < JANITOR_BATCH)
			break;
	}
	free(batch);
	brt_error_clear();
	return error;
}

typedef struct upload_ctx {
	brt_meta *meta;
	int64_t before;
	ref_batch orphans; /* data no session owns, last written before the cut-off */
	ref_batch owned;   /* data of live sessions: pruned of unadopted pieces */
} upload_ctx;

static int collect_upload(const char *id, uint64_t size, int64_t mtime_ms, void *payload)
{
	upload_ctx *o = payload;
	brt_upload u;
	int error = brt_meta_upload_get(o->meta, &u, NULL, id);
	ref_batch *b;

	(void)size;
	if (error == BRT_ENOTFOUND && mtime_ms < o->before)
		b = &o->orphans;
	else if (error == 0)
		b = &o->owned;
	else
		return 0;
	if (b->count < JANITOR_BATCH)
		memcpy(b->refs[b->count++].id, id, BRT_UPLOAD_ID_LEN + 1);
	return 0;
}

static int sweep_uploads(brt_janitor_stats *st, brt_meta *meta, brt_blobstore *blobs, brt_pool *pool,
			 int64_t before)
{
	upload_ctx *o = calloc(1, sizeof(*o));
	brt_upload u;
	int error;

	if (!o)
		return brt_error_set(BRT_ENOMEM, "janitor: out of memory");
	o->meta = meta;
	o->before = before;
	error = brt_blobstore_upload_list(blobs, collect_upload, o);
	if (error == BRT_EUNSUPPORTED) {
		/* A store that cannot list uploads expires them itself. */
		error = 0;
		goto done;
	}
	if (error < 0)
		goto done;
	for (size_t i = 0; i < o->orphans.count; i++) {
		const char *id = o->orphans.refs[i].id;
		/* A session created since it was listed owns it after all. */
		if (brt_meta_upload_get(meta, &u, NULL, id) != BRT_ENOTFOUND)
			continue;
		if ((error = brt_blobstore_upload_remove(blobs, id, NULL, 0)) < 0)
			goto done;
		st->orphans_removed++;
	}
	for (size_t i = 0; i < o->owned.count; i++) {
		const char *id = o->owned.refs[i].id;
		unsigned long removed = 0;

		brt_pool_clear(pool);
		if (brt_meta_upload_get(meta, &u, pool, id) != 0)
			continue;
		error = brt_blobstore_upload_prune(&removed, blobs, id, u.backend_state, u.backend_state_len,
						   before);
		if (error == BRT_EUNSUPPORTED)
			break;
		if (error < 0)
			goto done;
		st->pieces_pruned += removed;
	}
	error = 0;
done:
	free(o);
	brt_error_clear();
	return error;
}

int brt_janitor_pass(brt_janitor_stats *out, brt_meta *meta, brt_blobstore *blobs, int64_t now,
		     int64_t expire_after_ms, int64_t orphan_before_ms)
{
	brt_pool pool;
	int error;

	memset(out, 0, sizeof(*out));
	brt_pool_init(&pool, JANITOR_POOL_CAP);
	if ((error = expire_sessions(out, meta, blobs, &pool, now - expire_after_ms)) == 0)
		error = sweep_uploads(out, meta, blobs, &pool, orphan_before_ms);
	brt_pool_clear(&pool);
	return error;
}

struct brt_janitor {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stopping;
	brt_meta *meta;
	brt_blobstore *blobs;
	brt_maint_settings settings;
	int64_t next_janitor, next_gc, next_orphans;
};

/* A pass whose outcome goes to the log as `who`'s; a failed pass is only
 * a warning, the next one tries again. */
static void pass_and_log(const char *who, brt_janitor *j, int64_t now, int64_t orphan_before_ms)
{
	brt_janitor_stats st;

	if (brt_janitor_pass(&st, j->meta, j->blobs, now, j->settings.expire_after_ms, orphan_before_ms) < 0)
		brt_log_warn("%s: %s", who, brt_error_last());
	else if (st.sessions_expired || st.orphans_removed || st.pieces_pruned)
		brt_log_info(
			"%s: expired %lu upload sessions, removed %lu orphan uploads and %lu abandoned "
			"pieces",
			who, st.sessions_expired, st.orphans_removed, st.pieces_pruned);
}

/* Sleep until `until_ms` (wall clock) or a stop; 1 if stopping.  Called
 * and returns with the lock held. */
static int wait_until(brt_janitor *j, int64_t until_ms)
{
	struct timespec deadline = {(time_t)(until_ms / 1000), (long)(until_ms % 1000) * 1000000L};

	while (!j->stopping && brt_now_ms() < until_ms &&
	       pthread_cond_timedwait(&j->wake, &j->lock, &deadline) != ETIMEDOUT)
		;
	return j->stopping;
}

/* One collection in steps of gc_batch rows, paced to gc_rate rows per
 * second; the lock is held only while waiting. */
static void collect_and_log(brt_janitor *j)
{
	const brt_maint_settings *s = &j->settings;
	brt_gc_result r;
	brt_gc_options opt;
	int64_t start = brt_now_ms();
	int error;

	memset(&r, 0, sizeof(r));
	memset(&opt, 0, sizeof(opt));
	opt.grace_ms = s->gc_grace_ms;
	opt.batch = s->gc_batch;
	opt.retention = 1;
	opt.orphan_min_age_ms = BRT_GC_ORPHAN_MIN_AGE_MS;
	for (;;) {
		int stop;

		opt.now = brt_now_ms();
		opt.orphans = opt.now >= j->next_orphans;
		if ((error = brt_gc_run(&r, j->meta, j->blobs, &opt)) < 0) {
			brt_log_warn("gc: %s", brt_error_last());
			break;
		}
		if (opt.orphans)
			j->next_orphans = opt.now + (s->gc_grace_ms < 3600 * 1000 ? s->gc_interval_ms
										  : (int64_t)3600 * 1000);
		opt.retention = opt.orphans = 0;
		if (!r.counts.more)
			break;
		pthread_mutex_lock(&j->lock);
		stop = wait_until(j, brt_now_ms() +
					     (s->gc_rate ? (int64_t)(s->gc_batch * 1000 / s->gc_rate) : 0));
		pthread_mutex_unlock(&j->lock);
		if (stop)
			break;
	}
	if (r.counts.tags || r.counts.manifests || r.counts.links || r.counts.blobs || r.objects || r.orphans)
		brt_log_info(
			"gc: removed %lu tags, %lu manifests, %lu links, %lu blobs, %lu objects (%llu "
			"bytes), %lu orphans (%llu bytes) in %lld ms",
			r.counts.tags, r.counts.manifests, r.counts.links, r.counts.blobs, r.objects,
			(unsigned long long)r.object_bytes, r.orphans, (unsigned long long)r.orphan_bytes,
			(long long)(brt_now_ms() - start));
}

/* The passes that are due (called without the lock). */
static void *run_due(void *arg)
{
	brt_janitor *j = arg;
	const brt_maint_settings *s = &j->settings;
	int64_t now = brt_now_ms();

	if (now >= j->next_janitor) {
		/* Data without a session that has not been written for as long
		 * as a session may idle is abandoned too. */
		pass_and_log("janitor", j, now, now - s->expire_after_ms);
		j->next_janitor = brt_now_ms() + s->janitor_interval_ms;
	}
	if (s->gc_interval_ms > 0 && now >= j->next_gc) {
		collect_and_log(j);
		j->next_gc = brt_now_ms() + s->gc_interval_ms;
	}
	return NULL;
}

/* Whether the passes run in a thread of their own that ends with them: the
 * metadata store keeps a connection per thread (with its prepared
 * statements, some 0.5 MiB) until the thread ends, which for the janitor
 * is idle memory between passes minutes apart (10 by default).  Opening it
 * again costs a few milliseconds per pass; below this interval the janitor
 * keeps its connection. */
#define JANITOR_RELEASE_MIN_INTERVAL_MS ((int64_t)30 * 1000)

static int release_between_passes(const brt_maint_settings *s)
{
	int64_t shortest = s->janitor_interval_ms;

	if (s->gc_interval_ms > 0 && s->gc_interval_ms < shortest)
		shortest = s->gc_interval_ms;
	return shortest >= JANITOR_RELEASE_MIN_INTERVAL_MS;
}

static void *janitor_main(void *arg)
{
	brt_janitor *j = arg;
	const brt_maint_settings *s = &j->settings;
	int release = release_between_passes(s);

	pthread_mutex_lock(&j->lock);
	while (!j->stopping) {
		int64_t next = j->next_janitor;
		pthread_t passes;

		if (s->gc_interval_ms > 0 && j->next_gc < next)
			next = j->next_gc;
		if (wait_until(j, next))
			break;
		pthread_mutex_unlock(&j->lock);
		/* Joined at once, so the two threads never run together and
		 * the next_* fields need no lock; without a thread, inline. */
		if (release && pthread_create(&passes, NULL, run_due, j) == 0)
			pthread_join(passes, NULL);
		else
			run_due(j);
		pthread_mutex_lock(&j->lock);
	}
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

int brt_janitor_start(brt_janitor **out, brt_meta *meta, brt_blobstore *blobs, const brt_maint_settings *s)
{
	brt_janitor *j = calloc(1, sizeof(*j));
	int64_t now = brt_now_ms();

	*out = NULL;
	if (!j)
		return brt_error_set(BRT_ENOMEM, "janitor: out of memory");
	j->meta = meta;
	j->blobs = blobs;
	j->settings = *s;
	if (j->settings.janitor_interval_ms <= 0)
		j->settings.janitor_interval_ms = 1000;
	if (j->settings.gc_batch == 0)
		j->settings.gc_batch = 256;
	j->next_janitor = now + j->settings.janitor_interval_ms;
	j->next_gc = now; /* a first collection (and orphan scan) at once */
	j->next_orphans = now;
	/* Nothing is in flight yet: upload data no session owns is left from
	 * a crash, whatever its age. */
	pass_and_log("start-up sweep", j, now, INT64_MAX);
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->wake, NULL);
	if (pthread_create(&j->thread, NULL, janitor_main, j) != 0) {
		pthread_mutex_destroy(&j->lock);
		pthread_cond_destroy(&j->wake);
		free(j);
		return brt_error_set(BRT_EIO, "janitor: cannot start a thread");
	}
	*out = j;
	return 0;
}

void brt_janitor_stop(brt_janitor *j)
{
	if (!j)
		return;
	pthread_mutex_lock(&j->lock);
	j->stopping = 1;
	pthread_cond_signal(&j->wake);
	pthread_mutex_unlock(&j->lock);
	pthread_join(j->thread, NULL);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->wake);
	free(j);
}
