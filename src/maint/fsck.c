/* fsck (see maint.h): checks that the metadata and the stored objects
 * agree, and with repair puts right what can be put right without losing
 * anything.
 *
 * Order matters because the server may be running.  Objects are listed
 * before blob rows are walked: a push commits its object before it links
 * the row, so a row read later names every object committed and linked
 * before the listing.  Sessions are read before their data is listed: data
 * only grows before an offset is acknowledged, so data read later is never
 * shorter than a healthy session's offset.  What still looks wrong is
 * observed a second time (or re-read, and changed only with a
 * compare-and-swap on the session's generation) before it is reported or
 * touched, and what a push in flight (or one a crash cut
 * off half-way) leaves for a moment is judged only once it is older than
 * the grace period: an object not yet linked, upload data of a monolithic
 * push, the piece of an attempt still being written.
 *
 * Repair never deletes object bytes.  A corrupt object and an orphan object
 * are moved (copied, then removed: a move an object store can do too) to
 * "quarantine/<corrupt|orphan>/<alg>/<hex>/<n>", where an
 * operator can inspect or delete them; the blob row stays, so a later push
 * of the genuine bytes places a fresh object under the freed key.  A blob
 * whose object is absent but has a corrupt copy in quarantine is reported
 * as awaiting that push, not as a new problem; one with a verified copy in
 * quarantine/orphan is moved back.  A corrupt or missing blob is marked
 * damaged in the metadata, so the registry answers 404 for it (HEAD
 * included) until a verified push clears the mark.  Upload data (of stale or
 * broken sessions, or owned by no session, including the plain files of
 * the layout before segments) is removed, as the janitor would: no blob
 * was ever acknowledged from it; so are pieces of live sessions that their
 * backend state does not name (attempts killed before they dropped them).
 * Counts the metadata derives from its rows (each repository's manifests
 * and links, which decide whether the catalog lists it) are computed
 * again from the rows.
 *
 * Report lines start with a kind word so they can be grepped:
 *   corrupt, missing, awaiting-push, orphan-object, manifest-corrupt,
 *   manifest-unparsable, dangling, meta, stale-session, broken-session,
 *   orphan-upload (findings); quarantined, marked-damaged, removed, restored,
 *   recounted, resolved, repair-failed (actions); summary (last line). */
#include "maint/maint.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/dynbuf.h"
#include "common/error.h"
#include "common/pool.h"
#include "oci/digest.h"
#include "oci/manifest.h"
#include "storage/blob_upload.h"

#define READ_CHUNK ((size_t)1 << 20)
/* The deepest nesting limits.json_depth can allow: a manifest the server
 * accepted must parse here whatever the configuration was. */
#define MANIFEST_DEPTH_MAX 1000
#define MANIFEST_POOL_CAP ((size_t)1 << 30)
/* Quarantine copies of one digest and kind ("/1" .. "/99"). */
#define QUARANTINE_SLOTS 99
#define QUARANTINE_PREFIX "quarantine/"
/* Memory for one session's backend state (at most 1 MiB) and change. */
#define SESSION_POOL_CAP (BRT_BACKEND_STATE_MAX + ((size_t)64 << 10))

typedef struct blob_row {
	char *digest;
	char *key;
	uint64_t size;
	int damaged; /* reported corrupt, missing or awaiting a push */
} blob_row;

typedef struct stored_object {
	char *key;
	uint64_t size;
	char *moved_to; /* where repair quarantined it, or NULL */
} stored_object;

typedef struct session {
	char id[BRT_UPLOAD_ID_LEN + 1];
	char repo[BRT_NAME_MAX + 1];
	uint64_t offset;
	uint64_t generation;
	int64_t updated_at;
} session;

typedef struct upload_data {
	char id[BRT_UPLOAD_ID_LEN + 1];
	uint64_t size;
	int64_t mtime_ms;
} upload_data;

/* A growable array of `T` in a dynbuf.  fsck holds one entry per stored
 * object, row and upload: the cap only guards against arithmetic
 * overflow, memory runs out first. */
typedef struct vec {
	brt_dynbuf buf;
	size_t count, item_size;
} vec;

typedef struct fsck {
	brt_fsck_result *res;
	brt_meta *meta;
	brt_blobstore *blobs;
	const brt_fsck_options *opt;
	FILE *report;
	unsigned char *buf;
	vec rows;              /* blob_row, sorted by key */
	vec damaged;           /* const char *: digests of damaged rows, sorted */
	vec objects;           /* stored_object, sorted by key */
	vec sessions;          /* session */
	vec uploads;           /* upload_data */
	brt_pool session_pool; /* one session's backend state at a time */
	uint64_t bytes_hashed;
	unsigned long awaiting, young_objects, young_uploads, young_sessions, quarantine_held, repair_failed;
	int ages_unknown;
} fsck;

static void vec_init(vec *v, size_t item_size)
{
	memset(v, 0, sizeof(*v));
	brt_dynbuf_init(&v->buf, SIZE_MAX / 2);
	v->item_size = item_size;
}

static void *vec_at(const vec *v, size_t i)
{
	return brt_dynbuf_ptr(&v->buf) + i * v->item_size;
}

/* A zeroed new last item, or NULL when out of memory. */
static void *vec_push(vec *v)
{
	static const char zero[512];

	_Static_assert(sizeof(zero) >= sizeof(blob_row) && sizeof(zero) >= sizeof(stored_object) &&
			       sizeof(zero) >= sizeof(session) && sizeof(zero) >= sizeof(upload_data),
		       "every item type fits the zero item");
	if (v->item_size > sizeof(zero) || brt_dynbuf_add(&v->buf, zero, v->item_size) < 0)
		return NULL;
	return vec_at(v, v->count++);
}

static void vec_free(vec *v)
{
	brt_dynbuf_free(&v->buf);
	v->count = 0;
}

/* qsort and bsearch must not see the NULL items of an empty vec. */
static void vec_sort(vec *v, int (*cmp)(const void *, const void *))
{
	if (v->count > 1)
		qsort(brt_dynbuf_ptr(&v->buf), v->count, v->item_size, cmp);
}

static void *vec_find(const vec *v, const void *probe, int (*cmp)(const void *, const void *))
{
	return v->count ? bsearch(probe, brt_dynbuf_ptr(&v->buf), v->count, v->item_size, cmp) : NULL;
}

static void say(fsck *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(fsck *f, const char *fmt, ...)
{
	va_list ap;

	if (!f->report)
		return;
	va_start(ap, fmt);
	vfprintf(f->report, fmt, ap);
	va_end(ap);
	fputc('\n', f->report);
}

static long long seconds(int64_t ms)
{
	return (long long)(ms / 1000);
}

/* --------------------------------------------------------------- keys */

static int object_cmp(const void *a, const void *b)
{
	return strcmp(((const stored_object *)a)->key, ((const stored_object *)b)->key);
}

static int digest_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int row_key_cmp(const void *a, const void *b)
{
	return strcmp(((const blob_row *)a)->key, ((const blob_row *)b)->key);
}

/* A blob row in `rows` (sorted by key) naming `key`, or NULL. */
static blob_row *row_find(const vec *rows, const char *key)
{
	blob_row probe;

	probe.key = (char *)key;
	return vec_find(rows, &probe, row_key_cmp);
}

/* Where a quarantined copy of `key` goes, below "quarantine/<kind>/":
 * "<alg>/<hex>" for the key of a digest (as brt_blob_key or
 * brt_blob_key_unique make it), else the key itself.  `out` is
 * BRT_BLOB_KEY_MAX bytes. */
static void quarantine_body(char *out, const char *key)
{
	const char *slash = strchr(key, '/');
	char digest[BRT_DIGEST_STR_MAX + 1], canonical[BRT_BLOB_KEY_MAX];
	size_t key_len = strcspn(key, ".");
	brt_digest d;
	int len;

	if (slash && key_len > (size_t)(slash - key) + 4) {
		len = snprintf(digest, sizeof(digest), "%.*s:%.*s", (int)(slash - key), key,
			       (int)(key_len - (size_t)(slash - key) - 4), slash + 4);
		if (len > 0 && (size_t)len < sizeof(digest) &&
		    brt_digest_parse(&d, digest, (size_t)len) == 0) {
			brt_blob_key(canonical, d.str);
			if (strlen(canonical) == key_len && strncmp(canonical, key, key_len) == 0) {
				snprintf(out, BRT_BLOB_KEY_MAX, "%.*s/%s", (int)(slash - key), key,
					 brt_digest_hex(&d));
				return;
			}
		}
		brt_error_clear();
	}
	snprintf(out, BRT_BLOB_KEY_MAX, "%s", key);
}

/* The first quarantined copy of `digest` of `kind`, or NULL. */
static const char *quarantined_copy(fsck *f, const char *kind, const char *digest)
{
	char prefix[BRT_BLOB_KEY_MAX + 32];
	const char *colon = strchr(digest, ':');
	size_t lo = 0, hi = f->objects.count, len;

	if (!colon)
		return NULL;
	len = (size_t)snprintf(prefix, sizeof(prefix), QUARANTINE_PREFIX "%s/%.*s/%s/", kind,
			       (int)(colon - digest), digest, colon + 1);
	if (len >= sizeof(prefix))
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(((stored_object *)vec_at(&f->objects, mid))->key, prefix) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < f->objects.count) {
		const char *key = ((stored_object *)vec_at(&f->objects, lo))->key;
		if (strncmp(key, prefix, len) == 0)
			return key;
	}
	return NULL;
}

/* Move object `from` to `to`: a copy, then the removal of `from` (a crash
 * in between leaves both, which the next run sees again).  BRT_EEXISTS if
 * `to` is taken, BRT_ENOTFOUND if `from` is gone. */
static int move_object(fsck *f, const char *from, const char *to)
{
	int error = brt_blobstore_copy(f->blobs, from, to);

	if (error < 0)
		return error;
	if ((error = brt_blobstore_remove(f->blobs, from)) == BRT_ENOTFOUND)
		error = 0; /* removed meanwhile: the copy is all that is left */
	return error;
}

/* Move `key` to "quarantine/<kind>/<body>/<n>" (see quarantine_body) with
 * the first free n; the new key is written into `to` (BRT_BLOB_KEY_MAX
 * bytes). */
static int quarantine(fsck *f, char *to, const char *key, const char *kind)
{
	char body[BRT_BLOB_KEY_MAX];
	int error = BRT_EEXISTS;

	quarantine_body(body, key);

	for (int n = 1; n <= QUARANTINE_SLOTS && error == BRT_EEXISTS; n++) {
		int len = snprintf(to, BRT_BLOB_KEY_MAX, QUARANTINE_PREFIX "%s/%s/%d", kind, body, n);
		if (len < 0 || len >= BRT_BLOB_KEY_MAX - 1)
			return brt_error_set(BRT_EINVALID, "quarantine key for %s is too long", key);
		error = move_object(f, key, to);
	}
	if (error == BRT_EEXISTS)
		error = brt_error_set(BRT_EEXISTS, "all quarantine slots for %s are taken", key);
	return error;
}

/* Digest (of algorithm `alg`) and length of the bytes stored at `key`. */
static int rehash(fsck *f, brt_digest *out, uint64_t *len_out, const char *key, brt_digest_alg alg)
{
	int error = brt_blob_rehash(out, len_out, f->blobs, key, alg, f->buf, READ_CHUNK);

	if (error == 0)
		f->bytes_hashed += *len_out;
	return error;
}

/* ------------------------------------------------------------ objects */

static int collect_object(const char *key, uint64_t size, void *payload)
{
	fsck *f = payload;
	stored_object *o = vec_push(&f->objects);

	if (!o || !(o->key = strdup(key)))
		return brt_error_set(BRT_ENOMEM, "fsck: out of memory");
	o->size = size;
	return 0;
}

static int collect_row(const brt_blob_row *b, void *payload)
{
	blob_row *r = vec_push(payload);

	if (!r || !(r->digest = strdup(b->digest)) || !(r->key = strdup(b->storage_key)))
		return brt_error_set(BRT_ENOMEM, "fsck: out of memory");
	r->size = b->size;
	return 0;
}

static void rows_free(vec *rows)
{
	for (size_t i = 0; i < rows->count; i++) {
		blob_row *r = vec_at(rows, i);
		free(r->digest);
		free(r->key);
	}
	vec_free(rows);
}

/* Repair: mark a blob whose object is corrupt or gone damaged in the
 * metadata, so the registry answers 404 for it and clients push it again
 * (a verified push clears the mark), with no storage look-up per HEAD. */
static void mark_damaged(fsck *f, const blob_row *r)
{
	if (brt_meta_blob_mark_damaged(f->meta, r->digest, f->opt->now) == 0) {
		say(f, "marked-damaged %s (served as unknown until pushed again)", r->digest);
		return;
	}
	f->repair_failed++;
	say(f, "repair-failed %s: cannot mark it damaged: %s", r->digest, brt_error_last());
	brt_error_clear();
}

/* Repair of a corrupt object: quarantine it, then make sure what was moved
 * really is bad (a verified push may have replaced it since it was read). */
static void quarantine_corrupt(fsck *f, const blob_row *r, brt_digest_alg alg)
{
	char to[BRT_BLOB_KEY_MAX];
	brt_digest got;
	uint64_t len = 0;
	int error;

	if ((error = quarantine(f, to, r->key, "corrupt")) < 0) {
		f->repair_failed++;
		say(f, "repair-failed %s key %s: cannot quarantine: %s", r->digest, r->key, brt_error_last());
		brt_error_clear();
		return;
	}
	if (rehash(f, &got, &len, to, alg) == 0 && len == r->size && strcmp(got.str, r->digest) == 0 &&
	    move_object(f, to, r->key) == 0) {
		f->res->corrupt--;
		say(f, "restored %s key %s (replaced by a verified push while fsck ran)", r->digest, r->key);
		return;
	}
	brt_error_clear();
	f->res->quarantined++;
	say(f, "quarantined %s key %s -> %s (push the blob again to restore it)", r->digest, r->key, to);
	mark_damaged(f, r);
}

/* Repair of a missing object whose bytes were quarantined as an orphan
 * (say, before an older metadata backup was restored): put them back if
 * they verify. */
static void restore_orphan_copy(fsck *f, const blob_row *r, brt_digest_alg alg, const char *copy)
{
	brt_digest got;
	uint64_t len = 0;
	int error;

	if ((error = rehash(f, &got, &len, copy, alg)) < 0 || len != r->size ||
	    strcmp(got.str, r->digest) != 0) {
		brt_error_clear();
		say(f, "repair-failed %s: the copy in %s does not verify", r->digest, copy);
		f->repair_failed++;
		return;
	}
	if ((error = move_object(f, copy, r->key)) == 0 || error == BRT_EEXISTS) {
		f->res->missing--;
		say(f, "restored %s key %s from %s", r->digest, r->key,
		    error == 0 ? copy : "a push while fsck ran");
	} else {
		f->repair_failed++;
		say(f, "repair-failed %s: cannot move %s back: %s", r->digest, copy, brt_error_last());
	}
	brt_error_clear();
}

static int check_blob(fsck *f, blob_row *r)
{
	brt_digest want, got;
	uint64_t size = 0, len = 0;
	const char *copy;
	int error;

	f->res->blobs_checked++;
	if (brt_digest_parse(&want, r->digest, strlen(r->digest)) < 0) {
		brt_error_clear();
		f->res->meta_problems++;
		say(f, "meta blob row with an invalid digest '%s' key %s", r->digest, r->key);
		return 0;
	}
	error = brt_blobstore_stat(f->blobs, r->key, &size);
	if (error == 0 && size != r->size) {
		f->res->corrupt++;
		say(f, "corrupt %s size %" PRIu64 " expected %" PRIu64 " key %s", r->digest, size, r->size,
		    r->key);
	} else if (error == 0) {
		error = rehash(f, &got, &len, r->key, want.alg);
		if (error == 0 && (len != r->size || strcmp(got.str, want.str) != 0)) {
			f->res->corrupt++;
			say(f, "corrupt %s hashes-to %s size %" PRIu64 " key %s", r->digest, got.str, len,
			    r->key);
		} else if (error == 0) {
			return 0;
		}
	}
	r->damaged = 1;
	if (error == BRT_ENOTFOUND) {
		brt_error_clear();
		if ((copy = quarantined_copy(f, "corrupt", r->digest))) {
			f->awaiting++;
			say(f, "awaiting-push %s key %s (corrupt copy in %s)", r->digest, r->key, copy);
			if (f->opt->repair)
				mark_damaged(f, r);
		} else {
			unsigned long before = f->res->missing;
			f->res->missing++;
			copy = quarantined_copy(f, "orphan", r->digest);
			say(f, "missing %s size %" PRIu64 " key %s%s%s%s", r->digest, r->size, r->key,
			    copy ? " (a copy is in " : "", copy ? copy : "", copy ? ")" : "");
			if (copy && f->opt->repair)
				restore_orphan_copy(f, r, want.alg, copy);
			if (f->opt->repair && f->res->missing > before) /* not restored */
				mark_damaged(f, r);
		}
		return 0;
	}
	if (error < 0) {
		f->res->corrupt++;
		say(f, "corrupt %s unreadable key %s: %s", r->digest, r->key, brt_error_last());
		brt_error_clear();
	}
	if (f->opt->repair)
		quarantine_corrupt(f, r, want.alg);
	return 0;
}

/* An object's age from its modification time, through a descriptor the
 * store hands out; BRT_EUNSUPPORTED if the store has none. */
static int object_age(fsck *f, int64_t *age_out, const char *key)
{
	struct stat st;
	int fd = -1, error;

	*age_out = 0;
	if ((error = brt_blobstore_open_fd(&fd, NULL, f->blobs, key)) < 0)
		return error;
	if (fstat(fd, &st) != 0)
		error = brt_error_set(BRT_EIO, "cannot stat %s", key);
	else
		*age_out = f->opt->now - ((int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000);
	close(fd);
	return error;
}

static int find_orphans(fsck *f)
{
	int error = 0;

	for (size_t i = 0; i < f->objects.count; i++) {
		stored_object *o = vec_at(&f->objects, i);
		char to[BRT_BLOB_KEY_MAX];
		int64_t age = 0;
		int aged;

		if (strncmp(o->key, QUARANTINE_PREFIX, strlen(QUARANTINE_PREFIX)) == 0) {
			f->quarantine_held++;
			continue;
		}
		if (row_find(&f->rows, o->key))
			continue;
		aged = object_age(f, &age, o->key);
		if (aged == BRT_ENOTFOUND) { /* gone since the listing */
			brt_error_clear();
			continue;
		}
		if (aged == BRT_EUNSUPPORTED) {
			/* Without an age, a fresh push cannot be told apart. */
			f->ages_unknown = 1;
			f->young_objects++;
			continue;
		}
		if (aged < 0) {
			f->res->orphan_objects++;
			say(f, "orphan-object %s size %" PRIu64 " age unknown: %s", o->key, o->size,
			    brt_error_last());
			brt_error_clear();
			continue;
		}
		if (age < f->opt->grace_ms) {
			f->young_objects++;
			continue;
		}
		f->res->orphan_objects++;
		say(f, "orphan-object %s size %" PRIu64 " age %llds", o->key, o->size, seconds(age));
		if (!f->opt->repair)
			continue;
		if (quarantine(f, to, o->key, "orphan") < 0) {
			f->repair_failed++;
			say(f, "repair-failed %s: cannot quarantine: %s", o->key, brt_error_last());
			brt_error_clear();
			continue;
		}
		if (!(o->moved_to = strdup(to))) {
			error = brt_error_set(BRT_ENOMEM, "fsck: out of memory");
			break;
		}
		f->res->quarantined++;
		say(f, "quarantined %s -> %s", o->key, to);
	}
	return error;
}

/* An old object that a push of the same content links (the store keeps
 * the existing object) could have been moved while fsck looked: any moved
 * object a blob row names now goes back. */
static int restore_linked_orphans(fsck *f)
{
	vec again;
	int error;
	size_t moved = 0;

	for (size_t i = 0; i < f->objects.count; i++)
		moved += ((stored_object *)vec_at(&f->objects, i))->moved_to != NULL;
	if (moved == 0)
		return 0;
	vec_init(&again, sizeof(blob_row));
	error = brt_meta_blob_walk(f->meta, collect_row, &again);
	if (error == 0) {
		vec_sort(&again, row_key_cmp);
		for (size_t i = 0; i < f->objects.count; i++) {
			stored_object *o = vec_at(&f->objects, i);
			if (!o->moved_to || !row_find(&again, o->key))
				continue;
			int back = move_object(f, o->moved_to, o->key);
			if (back == 0 || back == BRT_EEXISTS) {
				/* EEXISTS: the push found the key free and placed its
				 * own verified copy; ours stays in quarantine. */
				f->res->quarantined--;
				f->res->orphan_objects--;
				if (back == 0)
					say(f, "restored %s from %s (linked while fsck ran)", o->key,
					    o->moved_to);
				else
					say(f,
					    "resolved %s (pushed again while fsck ran; the old copy stays in "
					    "%s)",
					    o->key, o->moved_to);
				brt_error_clear();
			} else {
				f->repair_failed++;
				say(f, "repair-failed %s was linked while fsck ran; its object is in %s: %s",
				    o->key, o->moved_to, brt_error_last());
				brt_error_clear();
			}
		}
	}
	rows_free(&again);
	return error;
}

/* ---------------------------------------------------------- manifests */

typedef struct manifest_ctx {
	fsck *f;
	brt_pool pool;
	int error;
} manifest_ctx;

static int check_manifest(const char *repo, const brt_manifest *mf, void *payload)
{
	manifest_ctx *c = payload;
	fsck *f = c->f;
	brt_digest want, got;
	brt_manifest_info info;
	brt_blob_info blob;
	brt_manifest child;
	int error;

	f->res->manifests_checked++;
	brt_pool_clear(&c->pool);
	if (brt_digest_parse(&want, mf->digest, strlen(mf->digest)) < 0) {
		brt_error_clear();
		f->res->meta_problems++;
		say(f, "meta manifest row with an invalid digest '%s' in %s", mf->digest, repo);
		return 0;
	}
	brt_digest_of(&got, want.alg, mf->payload, mf->size);
	if (strcmp(got.str, want.str) != 0) {
		f->res->corrupt++;
		say(f, "manifest-corrupt %s@%s hashes-to %s size %zu", repo, mf->digest, got.str, mf->size);
		return 0;
	}
	/* Parsed without the stored type: it was checked against the payload
	 * when the manifest was pushed, and only the references matter here. */
	if (brt_manifest_parse(&info, &c->pool, (const char *)mf->payload, mf->size, NULL,
			       MANIFEST_DEPTH_MAX) < 0) {
		f->res->meta_problems++;
		say(f, "manifest-unparsable %s@%s: %s", repo, mf->digest, brt_error_last());
		brt_error_clear();
		return 0;
	}
	for (size_t i = 0; i < info.blob_count; i++) {
		error = brt_meta_blob_get(f->meta, &blob, &c->pool, repo, info.blobs[i]);
		if (error == BRT_ENOTFOUND) {
			const char *digest = info.blobs[i];

			brt_error_clear();
			/* A blob already reported damaged is unknown to blob_get
			 * too: the finding is the blob's, not the manifest's. */
			if (vec_find(&f->damaged, &digest, digest_ptr_cmp))
				continue;
			f->res->dangling++;
			say(f, "dangling %s@%s blob %s", repo, mf->digest, info.blobs[i]);
		} else if (error < 0) {
			return c->error = error;
		}
	}
	for (size_t i = 0; i < info.child_count; i++) {
		error = brt_meta_manifest_get(f->meta, &child, &c->pool, repo, info.children[i], 1);
		if (error == BRT_ENOTFOUND) {
			brt_error_clear();
			f->res->dangling++;
			say(f, "dangling %s@%s child %s", repo, mf->digest, info.children[i]);
		} else if (error < 0) {
			return c->error = error;
		}
	}
	return 0;
}

static int meta_problem(const char *problem, void *payload)
{
	fsck *f = payload;

	f->res->meta_problems++;
	say(f, "meta %s", problem);
	return 0;
}

/* Repair: the counts the driver derives from its rows (what check
 * reported as "counts:") are computed again. */
static void recount(fsck *f)
{
	unsigned long n = 0;
	int error = brt_meta_recount(f->meta, &n);

	if (error < 0 && error != BRT_EUNSUPPORTED) {
		f->repair_failed++;
		say(f, "repair-failed counts: %s", brt_error_last());
	} else if (n > 0) {
		f->res->recounted = n;
		say(f, "recounted %lu repositories", n);
	}
}

/* ----------------------------------------------------------- sessions */

static int collect_session(const brt_upload *u, void *payload)
{
	fsck *f = payload;
	session *s = vec_push(&f->sessions);

	if (!s)
		return brt_error_set(BRT_ENOMEM, "fsck: out of memory");
	memcpy(s->id, u->id, sizeof(s->id));
	snprintf(s->repo, sizeof(s->repo), "%s", u->repo);
	s->offset = u->offset;
	s->generation = u->generation;
	s->updated_at = u->updated_at;
	return 0;
}

static int collect_upload(const char *upload_id, uint64_t size, int64_t mtime_ms, void *payload)
{
	vec *v = payload;
	upload_data *d = vec_push(v);

	if (!d)
		return brt_error_set(BRT_ENOMEM, "fsck: out of memory");
	snprintf(d->id, sizeof(d->id), "%s", upload_id);
	d->size = size;
	d->mtime_ms = mtime_ms;
	return 0;
}

static int session_cmp(const void *a, const void *b)
{
	return strcmp(((const session *)a)->id, ((const session *)b)->id);
}

static int upload_cmp(const void *a, const void *b)
{
	return strcmp(((const upload_data *)a)->id, ((const upload_data *)b)->id);
}

static const upload_data *upload_find(const vec *v, const char *id)
{
	upload_data key;

	snprintf(key.id, sizeof(key.id), "%s", id);
	return vec_find(v, &key, upload_cmp);
}

static const session *session_find(const vec *v, const char *id)
{
	session key;

	snprintf(key.id, sizeof(key.id), "%s", id);
	return vec_find(v, &key, session_cmp);
}

/* Remove a session and its data (as the janitor does), if the row read
 * again is still stale (or still broken and unchanged); the delete is a
 * compare-and-swap on the generation read, so a session a request moved
 * on since is alive after all. */
static void remove_session(fsck *f, const session *s, const char *why, int stale)
{
	brt_upload u;
	int bad = 0, error = 0;

	brt_pool_clear(&f->session_pool);
	if (brt_meta_upload_get(f->meta, &u, &f->session_pool, s->id) == 0) {
		if (stale)
			bad = u.updated_at < f->opt->now - f->opt->expire_after_ms;
		else
			bad = u.generation == s->generation;
	}
	brt_error_clear();
	if (!bad || (error = brt_meta_upload_delete(f->meta, s->id, u.generation)) == BRT_ECONFLICT ||
	    error == BRT_ENOTFOUND) {
		f->res->stale_sessions--;
		say(f, "resolved %s session %s (in use or changed while fsck ran; left alone)", why, s->id);
	} else if (error == 0) {
		brt_blobstore_upload_remove(f->blobs, s->id, u.backend_state, u.backend_state_len);
		f->res->removed++;
		say(f, "removed %s session %s", why, s->id);
	} else {
		f->repair_failed++;
		say(f, "repair-failed %s session %s: %s", why, s->id, brt_error_last());
	}
	brt_error_clear();
}

/* Remove upload data, if still no session owns it. */
static void remove_orphan_upload(fsck *f, const upload_data *d)
{
	brt_upload u;

	if (brt_meta_upload_get(f->meta, &u, NULL, d->id) != BRT_ENOTFOUND) {
		f->res->orphan_uploads--;
		say(f, "resolved orphan-upload %s (owned by a session now; left alone)", d->id);
	} else if (brt_blobstore_upload_remove(f->blobs, d->id, NULL, 0) == 0) {
		f->res->removed++;
		say(f, "removed orphan-upload %s", d->id);
	} else {
		f->repair_failed++;
		say(f, "repair-failed orphan-upload %s: %s", d->id, brt_error_last());
	}
	brt_error_clear();
}

/* Whether the data session `s` acknowledged is all still stored, as an
 * attempt opened at its row finds it (opening one writes nothing): 1 if
 * intact (or the row changed meanwhile), 0 if not, with the row's
 * generation in *generation_out.  A store that does not look at its data
 * when an attempt opens reports every session intact. */
static int session_intact(fsck *f, const session *s, uint64_t *generation_out)
{
	brt_blob_writer *w = NULL;
	brt_upload u;
	int error;

	brt_pool_clear(&f->session_pool);
	if (brt_meta_upload_get(f->meta, &u, &f->session_pool, s->id) != 0 || u.generation != s->generation) {
		brt_error_clear();
		return 1;
	}
	*generation_out = u.generation;
	error = brt_blobstore_writer_open(&w, f->blobs, s->id, u.offset, u.backend_state,
					  u.backend_state_len);
	if (w)
		w->free(w);
	brt_error_clear();
	return error != BRT_ENOTFOUND && error != BRT_EINVALID;
}

/* Repair: remove pieces of live session `s` that its row does not name
 * and that are older than the grace period (what an attempt killed before
 * it could drop them left behind). */
static void prune_session(fsck *f, const session *s)
{
	unsigned long removed = 0;
	brt_upload u;
	int error;

	brt_pool_clear(&f->session_pool);
	if (brt_meta_upload_get(f->meta, &u, &f->session_pool, s->id) != 0) {
		brt_error_clear();
		return;
	}
	error = brt_blobstore_upload_prune(&removed, f->blobs, s->id, u.backend_state, u.backend_state_len,
					   f->opt->now - f->opt->grace_ms);
	if (error < 0 && error != BRT_EUNSUPPORTED) {
		f->repair_failed++;
		say(f, "repair-failed abandoned pieces of session %s: %s", s->id, brt_error_last());
	} else if (removed > 0) {
		f->res->orphan_uploads++;
		f->res->removed++;
		say(f, "removed %lu abandoned pieces of session %s", removed, s->id);
	}
	brt_error_clear();
}

static int check_sessions(fsck *f)
{
	vec again;
	int64_t stale_before = f->opt->now - f->opt->expire_after_ms;
	int error;

	vec_init(&again, sizeof(upload_data));
	if ((error = brt_meta_upload_list(f->meta, INT64_MAX, 0, collect_session, f)) != 0)
		goto done;
	if ((error = brt_blobstore_upload_list(f->blobs, collect_upload, &f->uploads)) != 0)
		goto done;
	vec_sort(&f->sessions, session_cmp);
	vec_sort(&f->uploads, upload_cmp);
	/* The second look, for what seemed broken in the first. */
	if ((error = brt_blobstore_upload_list(f->blobs, collect_upload, &again)) != 0)
		goto done;
	vec_sort(&again, upload_cmp);

	for (size_t i = 0; i < f->sessions.count; i++) {
		const session *s = vec_at(&f->sessions, i);
		const upload_data *d;
		uint64_t generation = 0;

		if (s->updated_at < stale_before) {
			f->res->stale_sessions++;
			say(f, "stale-session %s repo %s offset %" PRIu64 " idle %llds", s->id, s->repo,
			    s->offset, seconds(f->opt->now - s->updated_at));
			if (f->opt->repair)
				remove_session(f, s, "stale", 1);
			continue;
		}
		if (s->offset == 0 || session_intact(f, s, &generation)) {
			if (f->opt->repair)
				prune_session(f, s);
			continue;
		}
		/* Judge it only once no request can still be finishing it. */
		if (f->opt->now - s->updated_at < f->opt->grace_ms) {
			f->young_sessions++;
			continue;
		}
		f->res->stale_sessions++;
		d = upload_find(&again, s->id);
		if (d)
			say(f, "broken-session %s repo %s offset %" PRIu64 " stored %" PRIu64, s->id, s->repo,
			    s->offset, d->size);
		else
			say(f, "broken-session %s repo %s offset %" PRIu64 " stored none", s->id, s->repo,
			    s->offset);
		if (f->opt->repair)
			remove_session(f, s, "broken", 0);
	}

	for (size_t i = 0; i < f->uploads.count; i++) {
		const upload_data *d = vec_at(&f->uploads, i);
		brt_upload u;
		int64_t age = f->opt->now - d->mtime_ms;

		if (session_find(&f->sessions, d->id))
			continue;
		if (age < f->opt->grace_ms) {
			f->young_uploads++;
			continue;
		}
		/* A session created since the first look owns it after all. */
		if (brt_meta_upload_get(f->meta, &u, NULL, d->id) != BRT_ENOTFOUND ||
		    !upload_find(&again, d->id)) {
			brt_error_clear();
			continue;
		}
		brt_error_clear();
		f->res->orphan_uploads++;
		say(f, "orphan-upload %s size %" PRIu64 " age %llds", d->id, d->size, seconds(age));
		if (f->opt->repair)
			remove_orphan_upload(f, d);
	}
done:
	vec_free(&again);
	return error;
}

/* ------------------------------------------------------------ the run */

unsigned long brt_fsck_findings(const brt_fsck_result *r)
{
	return r->corrupt + r->missing + r->dangling + r->orphan_objects + r->orphan_uploads +
	       r->stale_sessions + r->meta_problems;
}

unsigned long brt_fsck_repairs(const brt_fsck_result *r)
{
	return r->quarantined + r->removed + r->recounted;
}

static int run(fsck *f)
{
	manifest_ctx mc;
	int error;

	/* Objects first, then rows: see the top of the file. */
	if ((error = brt_blobstore_list(f->blobs, collect_object, f)) != 0)
		return error;
	f->res->objects_seen = f->objects.count;
	vec_sort(&f->objects, object_cmp);
	if ((error = brt_meta_blob_walk(f->meta, collect_row, &f->rows)) != 0)
		return error;
	/* Digest order for the report, then key order for lookups. */
	for (size_t i = 0; i < f->rows.count; i++)
		if ((error = check_blob(f, vec_at(&f->rows, i))) != 0)
			return error;
	/* Rows come in digest order: so do their damaged digests. */
	for (size_t i = 0; i < f->rows.count; i++) {
		const blob_row *r = vec_at(&f->rows, i);
		const char **slot;

		if (!r->damaged)
			continue;
		if (!(slot = vec_push(&f->damaged)))
			return brt_error_set(BRT_ENOMEM, "fsck: out of memory");
		*slot = r->digest;
	}
	vec_sort(&f->rows, row_key_cmp);
	if ((error = find_orphans(f)) != 0 || (error = restore_linked_orphans(f)) != 0)
		return error;

	memset(&mc, 0, sizeof(mc));
	mc.f = f;
	brt_pool_init(&mc.pool, MANIFEST_POOL_CAP);
	error = brt_meta_manifest_walk(f->meta, check_manifest, &mc);
	brt_pool_clear(&mc.pool);
	if (error != 0)
		return error;
	/* A driver without checks of its own has nothing more to say. */
	if ((error = brt_meta_check(f->meta, meta_problem, f)) != 0 && error != BRT_EUNSUPPORTED)
		return error;
	if (f->opt->repair)
		recount(f);
	return check_sessions(f);
}

int brt_fsck_run(brt_fsck_result *out, brt_meta *meta, brt_blobstore *blobs, const brt_fsck_options *opt,
		 FILE *report)
{
	fsck f;
	brt_fsck_result *r = out;
	unsigned long found, fixed;
	int error = 0;

	memset(out, 0, sizeof(*out));
	memset(&f, 0, sizeof(f));
	f.res = out;
	f.meta = meta;
	f.blobs = blobs;
	f.opt = opt;
	f.report = report;
	vec_init(&f.rows, sizeof(blob_row));
	vec_init(&f.damaged, sizeof(const char *));
	vec_init(&f.objects, sizeof(stored_object));
	vec_init(&f.sessions, sizeof(session));
	vec_init(&f.uploads, sizeof(upload_data));
	if (meta->version < 4 || !meta->blob_walk || !meta->manifest_walk || !meta->upload_list ||
	    !meta->check)
		return brt_error_set(BRT_EUNSUPPORTED, "fsck: the %s metadata store cannot walk its contents",
				     meta->name);
	if (brt_blobstore_check(blobs) < 0 || !blobs->upload_list)
		return brt_error_set(BRT_EUNSUPPORTED, "fsck: the %s blob store cannot list its contents",
				     blobs->name);
	if (!(f.buf = malloc(READ_CHUNK)))
		return brt_error_set(BRT_ENOMEM, "fsck: out of memory");
	brt_pool_init(&f.session_pool, SESSION_POOL_CAP);

	error = run(&f);

	if (error == 0) {
		if (f.ages_unknown)
			say(&f,
			    "note: the %s store cannot tell object ages; %lu unlinked objects were not "
			    "judged",
			    blobs->name, f.young_objects);
		found = brt_fsck_findings(r);
		fixed = brt_fsck_repairs(r);
		say(&f,
		    "summary: %s; checked %lu blobs (%" PRIu64
		    " bytes re-hashed), %lu manifests, %lu objects, "
		    "%zu sessions, %zu upload files; corrupt %lu, missing %lu, dangling %lu, orphan-objects "
		    "%lu, "
		    "orphan-uploads %lu, stale-sessions %lu, meta %lu; quarantined %lu, removed %lu, "
		    "recounted %lu, repair-failed %lu; awaiting-push %lu, in-quarantine %lu, within-grace "
		    "%lu",
		    found == 0      ? "clean"
		    : found > fixed ? "problems"
				    : "repaired",
		    r->blobs_checked, f.bytes_hashed, r->manifests_checked, r->objects_seen, f.sessions.count,
		    f.uploads.count, r->corrupt, r->missing, r->dangling, r->orphan_objects,
		    r->orphan_uploads, r->stale_sessions, r->meta_problems, r->quarantined, r->removed,
		    r->recounted, f.repair_failed, f.awaiting, f.quarantine_held,
		    f.young_objects + f.young_uploads + f.young_sessions);
	}
	if (report)
		fflush(report);

	rows_free(&f.rows);
	vec_free(&f.damaged);
	for (size_t i = 0; i < f.objects.count; i++) {
		stored_object *o = vec_at(&f.objects, i);
		free(o->key);
		free(o->moved_to);
	}
	vec_free(&f.objects);
	vec_free(&f.sessions);
	vec_free(&f.uploads);
	free(f.buf);
	brt_pool_clear(&f.session_pool);
	return error;
}
