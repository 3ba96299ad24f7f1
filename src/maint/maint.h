/* Maintenance over both stores: the janitor that bounds upload sessions
 * (expiry and the sweep of data no session owns) and fsck, which checks
 * that metadata and stored objects agree.  Both speak to the stores only
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

/* A pass at once, before any request is in flight (so upload data no
 * session owns goes whatever its age), then a thread that runs a pass
 * every `interval_ms` until stopped.  A failed pass is logged, not
 * returned. */
int brt_janitor_start(brt_janitor **out, brt_meta *meta, brt_blobstore *blobs, int64_t expire_after_ms,
		      int64_t interval_ms);
/* Stop the thread and free it; accepts NULL. */
void brt_janitor_stop(brt_janitor *janitor);

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
} brt_fsck_result;

/* Check everything, printing one line per finding and per action to
 * `report`, and a summary.  Returns 0 when the checks ran (look at the
 * result for what they found), a BRT_E* code if they could not. */
int brt_fsck_run(brt_fsck_result *out, brt_meta *meta, brt_blobstore *blobs, const brt_fsck_options *opt,
		 FILE *report);

/* How many problems `r` counts, repaired or not; those left are the ones
 * beyond r->quarantined + r->removed. */
unsigned long brt_fsck_findings(const brt_fsck_result *r);

#endif
