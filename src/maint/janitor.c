/* The janitor (see maint.h): upload sessions end.  A session idle longer
 * than uploads.expire_after is deleted with its data, and upload data that
 * no session owns (a crash between creating a file and its row, a
 * monolithic upload cut short by kill -9) is removed.  Data a request has
 * open is locked by its writer, so the janitor takes the same lock first
 * and passes over anything in use: it never pulls data from under a
 * request that is still streaming. */
#include "maint/maint.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

/* Sessions handled per batch: collected first, since the metadata walk
 * must not write while its statement is open. */
#define JANITOR_BATCH 256

typedef struct id_batch {
	char ids[JANITOR_BATCH][BRT_UPLOAD_ID_LEN + 1];
	size_t count;
} id_batch;

static int collect_session(const brt_upload *u, void *payload)
{
	id_batch *b = payload;

	if (b->count < JANITOR_BATCH)
		memcpy(b->ids[b->count++], u->id, BRT_UPLOAD_ID_LEN + 1);
	return 0;
}

enum dead_kind {
	SESSION_EXPIRED, /* a session idle since before the cut-off: its row and data go */
	DATA_ORPHANED,   /* upload data no session owns */
};

/* Under upload `id`'s lock, check again that it is dead (it may have been
 * used, or its session created, since it was listed) and remove it.  1 if
 * removed, 0 if not (in use, or alive after all), <0 on error. */
static int remove_if_dead(brt_janitor_stats *st, brt_meta *meta, brt_blobstore *blobs, const char *id,
			  enum dead_kind kind, int64_t cutoff)
{
	brt_blob_writer *w = NULL;
	brt_upload u;
	int error = blobs->writer_open(&w, blobs, id), got, removed = 0;

	if (error == BRT_ECONFLICT) {
		brt_error_clear();
		st->in_use_skipped++;
		return 0;
	}
	if (error < 0)
		return error;
	got = meta->upload_get(meta, &u, NULL, id);
	if (kind == SESSION_EXPIRED && got == 0 && u.updated_at < cutoff && meta->upload_delete(meta, id, BRT_META_ANY_GENERATION) == 0) {
		blobs->upload_remove(blobs, id);
		st->sessions_expired++;
		removed = 1;
	} else if (kind == DATA_ORPHANED && got == BRT_ENOTFOUND) {
		blobs->upload_remove(blobs, id);
		st->orphans_removed++;
		removed = 1;
	}
	w->free(w);
	return removed;
}

static int expire_sessions(brt_janitor_stats *st, brt_meta *meta, brt_blobstore *blobs, int64_t cutoff)
{
	id_batch *batch = calloc(1, sizeof(*batch));
	int error = 0;

	if (!batch)
		return brt_error_set(BRT_ENOMEM, "janitor: out of memory");
	for (;;) {
		size_t i, progress = 0;

		batch->count = 0;
		/* Sessions in use stay listed and come again in the next batch;
		 * a batch that removes nothing ends the pass. */
		if ((error = meta->upload_list(meta, cutoff, JANITOR_BATCH, collect_session, batch)) < 0)
			break;
		for (i = 0; i < batch->count; i++) {
			int removed = remove_if_dead(st, meta, blobs, batch->ids[i], SESSION_EXPIRED, cutoff);

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

typedef struct orphan_ctx {
	brt_meta *meta;
	int64_t before;
	id_batch batch;
} orphan_ctx;

static int collect_orphan(const char *id, uint64_t size, int64_t mtime_ms, void *payload)
{
	orphan_ctx *o = payload;
	brt_upload u;

	(void)size;
	if (mtime_ms >= o->before || o->batch.count >= JANITOR_BATCH)
		return 0;
	if (o->meta->upload_get(o->meta, &u, NULL, id) != BRT_ENOTFOUND)
		return 0;
	memcpy(o->batch.ids[o->batch.count++], id, BRT_UPLOAD_ID_LEN + 1);
	return 0;
}

static int sweep_orphans(brt_janitor_stats *st, brt_meta *meta, brt_blobstore *blobs, int64_t before)
{
	orphan_ctx *o = calloc(1, sizeof(*o));
	int error;

	if (!o)
		return brt_error_set(BRT_ENOMEM, "janitor: out of memory");
	o->meta = meta;
	o->before = before;
	if ((error = blobs->upload_list(blobs, collect_orphan, o)) < 0)
		goto done;
	for (size_t i = 0; i < o->batch.count; i++)
		if ((error = remove_if_dead(st, meta, blobs, o->batch.ids[i], DATA_ORPHANED, 0)) < 0)
			break;
	if (error > 0)
		error = 0;
done:
	free(o);
	brt_error_clear();
	return error;
}

int brt_janitor_pass(brt_janitor_stats *out, brt_meta *meta, brt_blobstore *blobs, int64_t now,
		     int64_t expire_after_ms, int64_t orphan_before_ms)
{
	int error;

	memset(out, 0, sizeof(*out));
	if ((error = expire_sessions(out, meta, blobs, now - expire_after_ms)) < 0)
		return error;
	return sweep_orphans(out, meta, blobs, orphan_before_ms);
}

struct brt_janitor {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stopping;
	brt_meta *meta;
	brt_blobstore *blobs;
	int64_t expire_after_ms, interval_ms;
};

/* A pass whose outcome goes to the log as `who`'s; a failed pass is only
 * a warning, the next one tries again. */
static void pass_and_log(const char *who, brt_janitor *j, int64_t now, int64_t orphan_before_ms)
{
	brt_janitor_stats st;

	if (brt_janitor_pass(&st, j->meta, j->blobs, now, j->expire_after_ms, orphan_before_ms) < 0)
		brt_log_warn("%s: %s", who, brt_error_last());
	else if (st.sessions_expired || st.orphans_removed)
		brt_log_info("%s: expired %lu upload sessions, removed %lu orphan uploads", who, st.sessions_expired,
			     st.orphans_removed);
}

static void *janitor_main(void *arg)
{
	brt_janitor *j = arg;
	struct timespec deadline;

	pthread_mutex_lock(&j->lock);
	while (!j->stopping) {
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += (time_t)(j->interval_ms / 1000);
		deadline.tv_nsec += (long)(j->interval_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		while (!j->stopping && pthread_cond_timedwait(&j->wake, &j->lock, &deadline) != ETIMEDOUT)
			;
		if (j->stopping)
			break;
		pthread_mutex_unlock(&j->lock);
		{
			int64_t now = brt_now_ms();
			/* Data without a session that has not been written for
			 * as long as a session may idle is abandoned too. */
			pass_and_log("janitor", j, now, now - j->expire_after_ms);
		}
		pthread_mutex_lock(&j->lock);
	}
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

int brt_janitor_start(brt_janitor **out, brt_meta *meta, brt_blobstore *blobs, int64_t expire_after_ms,
		      int64_t interval_ms)
{
	brt_janitor *j = calloc(1, sizeof(*j));

	*out = NULL;
	if (!j)
		return brt_error_set(BRT_ENOMEM, "janitor: out of memory");
	j->meta = meta;
	j->blobs = blobs;
	j->expire_after_ms = expire_after_ms;
	j->interval_ms = interval_ms > 0 ? interval_ms : 1000;
	/* Nothing is in flight yet: upload data no session owns is left from
	 * a crash, whatever its age. */
	pass_and_log("start-up sweep", j, brt_now_ms(), INT64_MAX);
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
