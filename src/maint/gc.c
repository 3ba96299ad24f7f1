/* One garbage collection over both stores: retention policies, the
 * metadata's review queues, the storage-delete outbox, and the scan for
 * stored objects no row names.  The metadata decides what is garbage, one
 * short transaction per row; this file deletes stored objects, always
 * outside any transaction and only once their row is gone. */
#include "maint/maint.h"

#include <inttypes.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

typedef struct gc_run {
	const brt_gc_options *opt;
	brt_gc_result *out;
	brt_meta *meta;
	brt_blobstore *blobs;
	int64_t orphan_before;
} gc_run;

static const char *verb(const brt_gc_options *opt)
{
	return opt->dry_run ? "would remove" : "removed";
}

static int print_item(const brt_gc_item *item, void *payload)
{
	gc_run *run = payload;
	FILE *f = run->opt->report;

	/* A dry run's blob rows would take their objects with them (after
	 * the read grace): count and list those too. */
	if (run->opt->dry_run && item->storage_key) {
		run->out->objects++;
		run->out->object_bytes += item->size;
	}
	if (!f)
		return 0;
	if (strcmp(item->kind, "tag") == 0)
		fprintf(f, "%s tag %s:%s (%s)\n", verb(run->opt), item->repo, item->name,
			item->why ? item->why : "retention");
	else if (strcmp(item->kind, "link") == 0)
		fprintf(f, "%s link %s@%s\n", verb(run->opt), item->repo, item->name);
	else if (item->repo)
		fprintf(f, "%s %s %s@%s %" PRIu64 " bytes\n", verb(run->opt), item->kind, item->repo,
			item->name, item->size);
	else
		fprintf(f, "%s %s %s %" PRIu64 " bytes\n", verb(run->opt), item->kind, item->name,
			item->size);
	if (run->opt->dry_run && item->storage_key)
		fprintf(f, "would remove object %s %" PRIu64 " bytes\n", item->storage_key, item->size);
	return 0;
}

/* Stored objects the outbox says are due, a page at a time: each is
 * deleted, then the page's outbox rows in one transaction (so a crash in
 * between only makes the next pass find them gone). */
#define OUTBOX_PAGE 64

typedef struct outbox_page {
	gc_run *run;
	char keys[OUTBOX_PAGE][BRT_BLOB_KEY_MAX];
	const char *names[OUTBOX_PAGE];
	size_t count;
} outbox_page;

static int outbox_entry(const char *key, uint64_t size, void *payload)
{
	outbox_page *page = payload;
	gc_run *run = page->run;
	int error;

	if (page->count == OUTBOX_PAGE || strlen(key) >= BRT_BLOB_KEY_MAX)
		return 0;
	if (!run->opt->dry_run) {
		error = brt_blobstore_remove(run->blobs, key);
		if (error < 0 && error != BRT_ENOTFOUND)
			return error;
	}
	snprintf(page->keys[page->count], sizeof(page->keys[0]), "%s", key);
	page->names[page->count] = page->keys[page->count];
	page->count++;
	run->out->objects++;
	run->out->object_bytes += size;
	if (run->opt->report)
		fprintf(run->opt->report, "%s object %s %" PRIu64 " bytes\n", verb(run->opt), key, size);
	return 0;
}

static int drain_outbox(gc_run *run)
{
	outbox_page page;
	int error;

	/* A dry run lists what is due once: nothing leaves the outbox. */
	do {
		page.run = run;
		page.count = 0;
		if ((error = brt_meta_gc_outbox_list(run->meta, brt_now_ms(), OUTBOX_PAGE, outbox_entry,
						     &page)) < 0)
			return error;
		if (!run->opt->dry_run &&
		    (error = brt_meta_gc_outbox_done(run->meta, page.names, page.count)) < 0)
			return error;
	} while (!run->opt->dry_run && page.count > 0);
	return 0;
}

static int orphan_entry(const char *key, uint64_t size, int64_t changed_ms, void *payload)
{
	gc_run *run = payload;
	int known = 1, error;

	/* Young objects may be between their commit and their link; what
	 * fsck quarantined waits there for an operator (or a restore). */
	if (changed_ms > run->orphan_before || strncmp(key, "quarantine/", 11) == 0)
		return 0;
	if ((error = brt_meta_storage_key_known(run->meta, key, &known)) < 0 || known)
		return error;
	if (!run->opt->dry_run && (error = brt_blobstore_remove(run->blobs, key)) < 0 &&
	    error != BRT_ENOTFOUND)
		return error;
	run->out->orphans++;
	run->out->orphan_bytes += size;
	if (run->opt->report)
		fprintf(run->opt->report, "%s orphan %s %" PRIu64 " bytes\n", verb(run->opt), key, size);
	return 0;
}

int brt_gc_run(brt_gc_result *out, brt_meta *meta, brt_blobstore *blobs, const brt_gc_options *opt)
{
	int64_t orphan_age = opt->grace_ms > opt->orphan_min_age_ms ? opt->grace_ms : opt->orphan_min_age_ms;
	gc_run run = {opt, out, meta, blobs, opt->now - orphan_age};
	brt_gc_params p;
	int error;

	memset(&p, 0, sizeof(p));
	p.now = opt->now;
	p.grace_ms = opt->grace_ms;
	p.read_grace_ms = opt->grace_ms < BRT_GC_READ_GRACE_MS ? opt->grace_ms : BRT_GC_READ_GRACE_MS;
	p.batch = opt->batch;
	p.account_id = opt->account_id;
	p.dry_run = opt->dry_run;
	p.cb = print_item;
	p.payload = &run;
	out->counts.more = 0;
	/* A dry run applies retention inside the collection's transaction. */
	p.with_retention = opt->retention && opt->dry_run;
	if (opt->retention && !opt->dry_run &&
	    (error = brt_meta_retention_apply(meta, &p, &out->counts)) < 0 && error != BRT_EUNSUPPORTED)
		return error;
	if ((error = brt_meta_gc_collect(meta, &p, &out->counts)) < 0)
		return error;
	if ((error = drain_outbox(&run)) < 0)
		return error;
	if (opt->orphans && (error = brt_blobstore_list_dated(blobs, orphan_entry, &run)) < 0 &&
	    error != BRT_EUNSUPPORTED)
		return error;
	return 0;
}

void brt_gc_summary(FILE *f, const brt_gc_result *r, int dry_run)
{
	fprintf(f,
		"gc%s: %s %lu tags, %lu manifests (%" PRIu64 " bytes), %lu links, %lu blobs (%" PRIu64
		" bytes), %lu objects (%" PRIu64 " bytes), %lu orphans (%" PRIu64
		" bytes); %lu objects pending\n",
		dry_run ? " (dry run)" : "", dry_run ? "would remove" : "removed", r->counts.tags,
		r->counts.manifests, r->counts.manifest_bytes, r->counts.links, r->counts.blobs,
		r->counts.blob_bytes, r->objects, r->object_bytes, r->orphans, r->orphan_bytes,
		!dry_run && r->counts.blobs > r->objects ? r->counts.blobs - r->objects : 0);
}
