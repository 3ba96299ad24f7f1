/* Maintenance over both stores: the janitor that bounds upload sessions
 * (expiry and the sweep of data no session owns), the garbage collector,
 * the worker thread that runs both, and fsck, which checks that metadata
 * and stored objects agree.  Both speak to the stores only
 * through their interfaces. */
#ifndef BRT_MAINT_H
#define BRT_MAINT_H

#include <stdint.h>
#include <stdio.h>

#include "meta/meta.h"
#include "storage/blobstore.h"

/* What one janitor pass did. */
typedef struct brt_janitor_stats {
	unsigned long sessions_expired; /* rows and their data removed */
	unsigned long orphans_removed;  /* upload data no session owned */
	unsigned long pieces_pruned;    /* pieces of live sessions no attempt will adopt */
} brt_janitor_stats;

/* One pass: drop sessions idle since before `now - expire_after_ms`, with
 * their data; upload data that no session owns, and pieces of live
 * sessions that their backend state does not name, last written before
 * `orphan_before_ms` (INT64_MAX at start-up, when no request is in
 * flight). */
int brt_janitor_pass(brt_janitor_stats *out, brt_meta *meta, brt_blobstore *blobs, int64_t now,
		     int64_t expire_after_ms, int64_t orphan_before_ms);

typedef struct brt_janitor brt_janitor;

/* The maintenance worker's settings. */
typedef struct brt_maint_settings {
	int64_t expire_after_ms;     /* upload sessions idle longer are dropped */
	int64_t janitor_interval_ms; /* between janitor passes */
	int64_t gc_interval_ms;      /* between collections; 0: no collection */
	int64_t gc_grace_ms;
	size_t gc_batch;       /* queue rows per step */
	unsigned long gc_rate; /* queue rows per second at most (0: no bound) */
} brt_maint_settings;

/* A janitor pass at once, before any request is in flight (so upload
 * data no session owns goes whatever its age), then one thread that runs
 * the janitor and the garbage collector (retention, queues, outbox, and
 * an orphan scan at start and then at most hourly, or every pass under a
 * grace of an hour) until stopped.  Collection goes in steps of gc_batch
 * rows paced to gc_rate, so it never holds the database for long.  A
 * failed pass is logged, not returned. */
int brt_janitor_start(brt_janitor **out, brt_meta *meta, brt_blobstore *blobs, const brt_maint_settings *s);
/* Stop the thread and free it; accepts NULL. */
void brt_janitor_stop(brt_janitor *janitor);

/* Stored objects whose blob row goes are deleted at least this long after
 * (or after the grace period, if shorter): a reader that looked the row up
 * just before may still be opening the object. */
#define BRT_GC_READ_GRACE_MS ((int64_t)60 * 1000)

/* The worker's orphan_min_age_ms (see brt_gc_options). */
#define BRT_GC_ORPHAN_MIN_AGE_MS ((int64_t)60 * 1000)

/* What one garbage collection does. */
typedef struct brt_gc_options {
	int64_t now;            /* ms since the epoch */
	int64_t grace_ms;       /* see brt_gc_params */
	size_t batch;           /* queue rows at most (0: all due) */
	const char *account_id; /* NULL: every account */
	int dry_run;            /* count and report, change nothing */
	int retention;          /* apply retention policies first */
	int orphans;            /* scan the blob store for objects no row names */
	/* ...older than this too, whatever the grace: the worker's floor, so
	 * that an upload waiting that long for the database between storing
	 * its object and linking it never loses the object to the scan (a
	 * link waits at most the store's busy timeout, 5 s, on SQLite). */
	int64_t orphan_min_age_ms;
	FILE *report; /* one line per thing removed; NULL: none */
} brt_gc_options;

typedef struct brt_gc_result {
	brt_gc_counts counts; /* metadata: tags, manifests, links, blob rows */
	unsigned long objects, orphans;
	uint64_t object_bytes, orphan_bytes;
} brt_gc_result;

/* Apply retention (if asked), collect every due queue row (at most
 * opt->batch; out->counts.more then says whether rows are left), delete
 * the stored objects whose time has come, and scan for orphans (if
 * asked): objects no blob row and no outbox row names, published before
 * now - grace.  `out` must be zeroed by the caller; it accumulates over
 * calls.  Works while the server runs. */
int brt_gc_run(brt_gc_result *out, brt_meta *meta, brt_blobstore *blobs, const brt_gc_options *opt);

/* The one summary line of a collection ("gc: removed ..."). */
void brt_gc_summary(FILE *f, const brt_gc_result *r, int dry_run);

/* What fsck should do. */
typedef struct brt_fsck_options {
	int repair;              /* quarantine corrupt objects, remove what is safe */
	int64_t now;             /* ms since the epoch */
	int64_t expire_after_ms; /* sessions idle longer are stale */
	int64_t grace_ms;        /* objects and upload data younger than this are
				  * never called orphans (a push may be linking them),
				  * nor sessions whose data is missing or short broken
				  * (a crash between commit and row delete leaves those) */
} brt_fsck_options;

/* What fsck found (and, with repair, did). */
typedef struct brt_fsck_result {
	unsigned long blobs_checked, manifests_checked, objects_seen;
	unsigned long corrupt;              /* objects whose bytes do not match their digest or size */
	unsigned long missing;              /* blob rows whose object is absent */
	unsigned long dangling;             /* manifest references or tags that do not resolve */
	unsigned long orphan_objects;       /* objects no blob row names */
	unsigned long orphan_uploads;       /* upload data no session owns */
	unsigned long stale_sessions;       /* sessions past expiry or without their data */
	unsigned long meta_problems;        /* the metadata driver's own checks */
	unsigned long quarantined, removed; /* repair actions */
	unsigned long recounted;            /* repair: repositories whose counts were put right */
} brt_fsck_result;

/* Check everything, printing one line per finding and per action to
 * `report`, and a summary.  Returns 0 when the checks ran (look at the
 * result for what they found), a BRT_E* code if they could not. */
int brt_fsck_run(brt_fsck_result *out, brt_meta *meta, brt_blobstore *blobs, const brt_fsck_options *opt,
		 FILE *report);

/* How many problems `r` counts, repaired or not; those left are the ones
 * beyond brt_fsck_repairs(r). */
unsigned long brt_fsck_findings(const brt_fsck_result *r);

/* How many repair actions `r` counts. */
unsigned long brt_fsck_repairs(const brt_fsck_result *r);

#endif
