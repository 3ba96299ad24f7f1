/* The metadata store interface: repositories, blob links, manifests, tags,
 * referrers and upload sessions.
 *
 * A driver embeds `brt_meta` as the first member of its own struct.  The
 * struct is versioned and grows only by appending slots.  Every function
 * may be called from any server thread concurrently; drivers keep their
 * connections and prepared statements per thread, never behind a global
 * lock.  Each mutating call is one transaction: it happens entirely or not
 * at all, and what it changed is visible to every reader once it returns.
 *
 * Names, digests and tags handed in are already validated by the caller,
 * and so is tenancy: the caller says which account a repository belongs
 * to; no driver parses it out of a name.  Strings handed out are
 * allocated from the caller's pool.  Times are integer milliseconds since
 * the epoch, chosen by the caller.
 *
 * Version 5 revised slots rather than appending (a deliberate, one-time
 * break, so that a PostgreSQL driver can implement every slot with plain
 * SQL and nothing depends on one host's files):
 *  - blob_link / blob_unlink take a brt_blob_link, with the account id;
 *  - brt_manifest_put gains account_id and tag_expected (tag
 *    compare-and-swap);
 *  - brt_upload gains account_id and an opaque backend_state for the blob
 *    store driver; upload_get takes a pool for it;
 *  - upload_delete is a compare-and-swap on the generation;
 *  - key_epoch is a row of the store, bumped in key_revoke's transaction
 *    (it was a counter in a file mapped beside an SQLite database);
 *  - brt_meta gains a process-unique serial.
 * Callers should go through the brt_meta_<slot>() wrappers below, which
 * also answer BRT_EUNSUPPORTED for an optional slot a driver leaves NULL. */
#ifndef BRT_META_H
#define BRT_META_H

#include <stddef.h>
#include <stdint.h>

#include "common/pool.h"

#define BRT_META_VERSION 5
#define BRT_NAME_MAX 255 /* repository name */
#define BRT_TAG_MAX 128
#define BRT_HASH_STATE_MAX 256
#define BRT_ACCOUNT_ID_LEN 32 /* lower-case hex */

/* The most a blob store driver may keep in an upload row (e.g. a multipart
 * upload id and its part list with ETags). */
#define BRT_UPLOAD_BACKEND_STATE_MAX ((size_t)1 << 20)

/* upload_delete's generation that matches whatever is stored. */
#define BRT_META_ANY_GENERATION UINT64_MAX

typedef struct brt_meta brt_meta;

typedef struct brt_blob_info {
	uint64_t size;
	const char *storage_key; /* pool */
	/* When the link was last refreshed (a link, a touch); 0 where the
	 * driver does not say (account_blob_get). */
	int64_t touched_at;
} brt_blob_info;

/* A link older than this is refreshed by the HEAD, GET or mount that finds
 * it (blob_touch), so that the collector, which spares links touched
 * within its grace period, does not take a blob between a client's "it
 * exists" and its manifest PUT. */
#define BRT_LINK_TOUCH_INTERVAL_MS ((int64_t)3600 * 1000)

/* A manifest as stored. */
typedef struct brt_manifest {
	const char *digest;           /* pool */
	const char *media_type;       /* pool */
	const unsigned char *payload; /* pool; exact bytes received */
	size_t size;
} brt_manifest;

/* What a manifest PUT stores.  All pointers are borrowed for the call. */
typedef struct brt_manifest_put {
	const char *account_id; /* the account `repo` belongs to (v5) */
	const char *repo;
	const char *digest;
	const char *media_type;
	const unsigned char *payload;
	size_t size;
	const char *tag;           /* NULL when pushed by digest */
	const char *subject;       /* subject digest, NULL if none */
	const char *artifact_type; /* for referrers: artifactType, else config mediaType; NULL */
	const char *annotations;   /* JSON object text, NULL if none */
	const char *const *blobs;  /* config + layer digests: must be linked in repo */
	size_t blob_count;
	const char *const *children; /* index entries: must be manifests in repo */
	size_t child_count;
	int64_t now;
	/* The sizes the descriptors claim, checked against what is stored
	 * (clients trust them); NULL: not checked. */
	const uint64_t *blob_sizes;
	const uint64_t *child_sizes;
	/* v5: what `tag` must point at for the put to go ahead (compare-and-
	 * swap): NULL: anything, the tag simply moves (an HTTP PUT); "": the
	 * tag must not exist yet; a digest: the tag must point at that
	 * manifest now.  Otherwise BRT_ECONFLICT and nothing is stored.
	 * Must be NULL when `tag` is. */
	const char *tag_expected;
} brt_manifest_put;

/* A blob link as blob_link and blob_unlink see it (v5).  Borrowed for the
 * call; unlink uses account_id, repo and digest only. */
typedef struct brt_blob_link {
	const char *account_id; /* the account `repo` belongs to */
	const char *repo;
	const char *digest;
	uint64_t size;
	const char *storage_key; /* the stored object holding the blob */
	int64_t now;
} brt_blob_link;

/* One entry of a referrers response. */
typedef struct brt_referrer {
	const char *media_type;
	const char *digest;
	uint64_t size;
	const char *artifact_type; /* NULL if none */
	const char *annotations;   /* JSON object text, NULL if none */
} brt_referrer;

/* An upload session. */
typedef struct brt_upload {
	char id[33];                             /* 32 lower-case hex chars */
	char account_id[BRT_ACCOUNT_ID_LEN + 1]; /* v5: set by the caller at create */
	char repo[BRT_NAME_MAX + 1];
	uint64_t offset;                              /* bytes received and acknowledged */
	unsigned char hash_state[BRT_HASH_STATE_MAX]; /* brt_hasher_save() */
	size_t hash_state_len;
	uint64_t generation; /* bumped by every update (CAS) */
	int64_t created_at;
	int64_t updated_at;
	/* v5: the blob store driver's own state for this upload, opaque here
	 * (at most BRT_UPLOAD_BACKEND_STATE_MAX bytes; NULL/0: none).
	 * Borrowed by upload_create and upload_update; upload_get allocates
	 * it from the caller's pool; upload_list hands out NULL/0. */
	const unsigned char *backend_state;
	size_t backend_state_len;
	/* upload_update only: commit it durably.  By default a crash of the
	 * database may lose the update (the session rewinds to an earlier
	 * chunk, whose data the blob store keeps unless its adopt_replaces). */
	int durable;
} brt_upload;

/* An account (tenant).  Every repository name starts with its id. */
typedef struct brt_account {
	char id[33];    /* 32 lower-case hex chars */
	char name[129]; /* free text, may be empty */
	int64_t created_at;
} brt_account;

/* Rights an access key grants within its account. */
enum brt_permission {
	BRT_PERM_PULL = 1,
	BRT_PERM_PUSH = 2,
	BRT_PERM_DELETE = 4,
};

#define BRT_KEY_ID_LEN 16
#define BRT_KEY_HASH_LEN 32

/* An access key.  The secret itself is never stored, only its SHA-256. */
typedef struct brt_access_key {
	char id[BRT_KEY_ID_LEN + 1]; /* 16 lower-case hex chars */
	char account_id[33];
	unsigned char secret_hash[BRT_KEY_HASH_LEN];
	unsigned int permissions; /* enum brt_permission bits */
	char label[129];
	int64_t created_at;
	int64_t expires_at; /* 0: never */
	int64_t revoked_at; /* 0: not revoked */
} brt_access_key;

/* A stored blob as the metadata knows it (for whole-store walks). */
typedef struct brt_blob_row {
	const char *digest; /* borrowed for the callback */
	uint64_t size;
	const char *storage_key; /* borrowed for the callback */
	int64_t created_at;
} brt_blob_row;

/* Storage lifecycle (see the gc_* slots). */

/* How one collection runs. */
struct brt_gc_item;

typedef struct brt_gc_params {
	int64_t now;
	/* Queue rows, links and tags younger than this are not taken yet. */
	int64_t grace_ms;
	/* A stored object whose blob row goes is deleted no earlier than
	 * this after (readers that looked the row up just before may still be
	 * opening it). */
	int64_t read_grace_ms;
	/* At most this many queue rows per call (0: every due row). */
	size_t batch;
	/* Only this account's tags, manifests and links (NULL: all); blob
	 * rows, which no account owns, are taken whoever queued them. */
	const char *account_id;
	/* Count what would go, change nothing. */
	int dry_run;
	/* For a dry run of gc_collect: apply retention first, in the same
	 * transaction, so the count includes what its deletions orphan (a
	 * real run calls retention_apply, then gc_collect). */
	int with_retention;
	/* Called once per thing removed (or that would be); NULL: none. */
	int (*cb)(const struct brt_gc_item *item, void *payload);
	void *payload;
} brt_gc_params;

/* One thing a collection removed. */
typedef struct brt_gc_item {
	const char *kind;        /* "tag", "manifest", "link", "blob" */
	const char *repo;        /* NULL for a blob */
	const char *name;        /* the tag or the digest */
	uint64_t size;           /* manifest or blob bytes (0 for tags and links) */
	const char *why;         /* for a retention deletion: the rule; else NULL */
	const char *storage_key; /* for a blob: its stored object; else NULL */
} brt_gc_item;

/* What a collection removed; added to, never reset, by the slots. */
typedef struct brt_gc_counts {
	unsigned long tags, manifests, links, blobs;
	uint64_t manifest_bytes, blob_bytes;
	int more; /* the batch ended with due rows left */
} brt_gc_counts;

/* An account's usage: distinct blobs counted once, plus its manifests. */
typedef struct brt_usage {
	char account_id[BRT_ACCOUNT_ID_LEN + 1];
	uint64_t bytes; /* blob bytes + manifest bytes, what the quota bounds */
	uint64_t blobs, blob_bytes, manifests, manifest_bytes, repositories;
	int has_quota;
	uint64_t quota_bytes;
} brt_usage;

/* A retention and immutability policy of an account, for the repositories
 * whose name after "<account>/" matches `repository_pattern` (a glob,
 * "*" matching "/" too).  Zero or empty fields are rules not set. */
typedef struct brt_policy {
	char account_id[BRT_ACCOUNT_ID_LEN + 1];
	char repository_pattern[BRT_NAME_MAX + 1];
	uint64_t keep_last;        /* keep the N most recently pushed tags */
	int64_t keep_within_ms;    /* keep tags pushed within this */
	int64_t untagged_after_ms; /* delete manifests untagged for this long */
	char protect_tags[256];    /* comma-separated globs never deleted */
	char immutable_tags[256];  /* comma-separated globs that never move */
	int64_t updated_at;
} brt_policy;

typedef int (*brt_meta_name_cb)(const char *name, void *payload);
typedef int (*brt_meta_account_cb)(const brt_account *account, void *payload);
typedef int (*brt_meta_key_cb)(const brt_access_key *key, void *payload);
typedef int (*brt_meta_referrer_cb)(const brt_referrer *ref, void *payload);
typedef int (*brt_meta_upload_cb)(const brt_upload *upload, void *payload);
typedef int (*brt_meta_blob_cb)(const brt_blob_row *blob, void *payload);
/* `mf` and `repo` are borrowed for the callback. */
typedef int (*brt_meta_manifest_cb)(const char *repo, const brt_manifest *mf, void *payload);
typedef int (*brt_meta_problem_cb)(const char *problem, void *payload);
typedef int (*brt_meta_usage_cb)(const brt_usage *usage, void *payload);
typedef int (*brt_meta_policy_cb)(const brt_policy *policy, void *payload);
/* `storage_key` is borrowed for the callback. */
typedef int (*brt_meta_outbox_cb)(const char *storage_key, uint64_t size, void *payload);

struct brt_meta {
	unsigned int version;
	const char *name; /* driver name for logs, e.g. "sqlite" */
	/* v5: unique in the process, never reused (brt_meta_serial_next() at
	 * open), so a cache keyed by store cannot mistake a new store at a
	 * freed one's address for the old one. */
	uint64_t serial;

	/* 0 if the repository exists, BRT_ENOTFOUND if not. */
	int (*repo_exists)(brt_meta *m, const char *repo);

	/* The blob `digest` as linked into `repo`.  BRT_ENOTFOUND if the repo
	 * has no such link (even if another repository has the blob), or if
	 * the blob is marked damaged. */
	int (*blob_get)(brt_meta *m, brt_blob_info *out, brt_pool *pool, const char *repo,
			const char *digest);

	/* Record that the stored object `storage_key` holds `digest` (`size`
	 * bytes), if not yet recorded, and link it into `repo` of account
	 * `account_id`, creating the repository if needed.  Linking an
	 * already-linked blob succeeds (and refreshes the link).  BRT_EINVALID
	 * without an account id, or if the repository exists under another
	 * account. */
	int (*blob_link)(brt_meta *m, const brt_blob_link *link);

	/* Remove the link of `digest` from `repo`, even if a manifest of the
	 * repository lists it (that manifest's pulls then miss the blob).
	 * BRT_ENOTFOUND if not linked; BRT_EINVALID as for blob_link. */
	int (*blob_unlink)(brt_meta *m, const brt_blob_link *link);

	/* Store a manifest (and move the tag, if any, to it) in one
	 * transaction.  BRT_EBLOBUNKNOWN (detail names the digest) if a listed
	 * blob is not linked in the repository or a child is not a manifest
	 * of it; BRT_EINVALID if a descriptor's size is not the stored one,
	 * or as for blob_link; BRT_ECONFLICT if the tag is not where
	 * `tag_expected` says.  Putting an existing digest again only updates
	 * the tag. */
	int (*manifest_put)(brt_meta *m, const brt_manifest_put *put);

	/* A manifest by tag or digest (`is_digest` says which).
	 * BRT_ENOTFOUND if absent. */
	int (*manifest_get)(brt_meta *m, brt_manifest *out, brt_pool *pool, const char *repo,
			    const char *reference, int is_digest);

	/* Delete a manifest by digest, with every tag pointing at it.
	 * BRT_ENOTFOUND if absent; BRT_ECONFLICT if an index in the repository
	 * still lists it. */
	int (*manifest_delete)(brt_meta *m, const char *repo, const char *digest);

	/* Delete one tag (the manifest stays).  BRT_ENOTFOUND if absent. */
	int (*tag_delete)(brt_meta *m, const char *repo, const char *tag);

	/* Tags of `repo` in byte order, strictly after `last` (NULL: from the
	 * start), at most `limit`; *more_out = 1 if further tags exist.
	 * BRT_ENOTFOUND if the repository does not exist. */
	int (*tags_list)(brt_meta *m, const char *repo, const char *last, size_t limit, brt_meta_name_cb cb,
			 void *payload, int *more_out);

	/* Manifests of `repo` whose subject is `subject`, filtered by
	 * `artifact_type` when not NULL, ordered by digest.  An unknown
	 * repository or subject simply yields nothing. */
	int (*referrers_list)(brt_meta *m, const char *repo, const char *subject, const char *artifact_type,
			      brt_meta_referrer_cb cb, void *payload);

	/* Repository names in byte order, strictly after `last`, at most
	 * `limit`; only names starting with `prefix` when not NULL. */
	int (*catalog_list)(brt_meta *m, const char *prefix, const char *last, size_t limit,
			    brt_meta_name_cb cb, void *payload, int *more_out);

	/* Create an upload session in `upload->repo` of account
	 * `upload->account_id` (creates the repository if needed, though
	 * catalog_list shows a repository only once it holds a blob or a
	 * manifest).  BRT_ELIMIT if the account already has
	 * `max_per_account` open sessions (0: no limit); the count and the
	 * insert are one transaction, so concurrent creates cannot overshoot.
	 * BRT_EEXISTS if the id is taken; BRT_EINVALID without an account id
	 * or as for blob_link; BRT_ETOOBIG if the backend state is over
	 * BRT_UPLOAD_BACKEND_STATE_MAX. */
	int (*upload_create)(brt_meta *m, const brt_upload *upload, unsigned int max_per_account);

	/* Read an upload session.  Its backend state is allocated from
	 * `pool`; with a NULL pool it is not read (NULL/0), for callers that
	 * only look at the row.  BRT_ENOTFOUND if absent; BRT_ENOMEM if the
	 * pool is too small. */
	int (*upload_get)(brt_meta *m, brt_upload *out, brt_pool *pool, const char *id);

	/* Save offset, hash state and backend state and bump the generation,
	 * only if the stored generation is still `upload->generation`;
	 * BRT_ECONFLICT if another request got there first, BRT_ENOTFOUND if
	 * gone, BRT_ETOOBIG as for upload_create. */
	int (*upload_update)(brt_meta *m, const brt_upload *upload);

	/* Delete an upload session if its stored generation is `generation`
	 * (compare-and-swap: the request that deletes a session owns what
	 * it held), or whatever it is with BRT_META_ANY_GENERATION.
	 * BRT_ECONFLICT if the generation differs, BRT_ENOTFOUND if absent. */
	int (*upload_delete)(brt_meta *m, const char *id, uint64_t generation);

	/* Release the store (all threads must be done with it). */
	void (*free)(brt_meta *m);

	/* --- version 2: accounts and access keys --- */

	/* Create an account; BRT_EEXISTS if the id is taken. */
	int (*account_create)(brt_meta *m, const brt_account *account);

	/* Read an account; BRT_ENOTFOUND if absent. */
	int (*account_get)(brt_meta *m, brt_account *out, const char *id);

	/* Every account, ordered by id. */
	int (*account_list)(brt_meta *m, brt_meta_account_cb cb, void *payload);

	/* Store a new key; BRT_EEXISTS if the id is taken, BRT_ENOTFOUND if
	 * the account does not exist. */
	int (*key_create)(brt_meta *m, const brt_access_key *key);

	/* Read a key by id, revoked or expired ones included (the caller
	 * decides); BRT_ENOTFOUND if absent, and `out` is then untouched.  On every authenticated request:
	 * one indexed read, no allocation. */
	int (*key_get)(brt_meta *m, brt_access_key *out, const char *id);

	/* The keys of an account, ordered by creation time; BRT_ENOTFOUND if
	 * the account does not exist. */
	int (*key_list)(brt_meta *m, const char *account_id, brt_meta_key_cb cb, void *payload);

	/* Mark a key revoked at `now` and bump the key epoch, in one
	 * transaction; BRT_ENOTFOUND if absent.  Revoking a revoked key keeps
	 * the first time and succeeds. */
	int (*key_revoke)(brt_meta *m, const char *id, int64_t now);

	/* A named server secret shared by every node (e.g. the token signing
	 * key): read it, or store `len` random bytes under `name` if there is
	 * none yet (the first writer wins), and copy it into `out`. */
	int (*secret_get)(brt_meta *m, const char *name, unsigned char *out, size_t len);

	/* --- version 3 --- */

	/* A number that changes whenever an access key is revoked through any
	 * process or node using this store (it changes before key_revoke
	 * returns).  Lets callers cache verified keys and still refuse a
	 * revoked one on the very next request, so it is called on every
	 * request and must be cheap: drivers cache it and read the store
	 * only when it may have changed.  If the store cannot be read, a
	 * value never returned before, so that every cache misses. */
	uint64_t (*key_epoch)(brt_meta *m);

	/* --- version 4: bounded upload sessions and whole-store walks (the
	 * janitor and fsck).  Walk callbacks may call the read slots; a
	 * non-zero return stops the walk and is returned. --- */

	/* Upload sessions last updated before `updated_before` (INT64_MAX:
	 * all), oldest first, at most `limit` (0: no limit). */
	int (*upload_list)(brt_meta *m, int64_t updated_before, size_t limit, brt_meta_upload_cb cb,
			   void *payload);

	/* Every stored blob, in digest order. */
	int (*blob_walk)(brt_meta *m, brt_meta_blob_cb cb, void *payload);

	/* Every manifest of every repository with its payload, by repository
	 * and digest; the manifest's strings live for the callback only. */
	int (*manifest_walk)(brt_meta *m, brt_meta_manifest_cb cb, void *payload);

	/* The driver's own consistency checks (for SQLite: integrity_check,
	 * foreign_key_check, and the counts recount puts right): `cb` once
	 * per problem, with a one-line description.  0 when the checks ran,
	 * whatever they found. */
	int (*check)(brt_meta *m, brt_meta_problem_cb cb, void *payload);

	/* Optional: put what the driver derives from its rows (each
	 * repository's count of manifests and links, and whether the catalog
	 * lists it) back in line with the rows, in one transaction; check
	 * reports such drift.  *fixed_out counts the repositories put right. */
	int (*recount)(brt_meta *m, unsigned long *fixed_out);

	/* Mark blob `digest` damaged (its stored object is corrupt or gone):
	 * blob_get then answers BRT_ENOTFOUND for it in every repository, so
	 * clients push it again, and the blob_link of a verified commit
	 * clears the mark.  Marking a marked blob succeeds; BRT_ENOTFOUND if
	 * there is no such blob. */
	int (*blob_mark_damaged)(brt_meta *m, const char *digest, int64_t now);

	/* Optional: blob `digest` as account `account_id` holds it, linked in
	 * any of its repositories (for a mount that names no source).
	 * BRT_ENOTFOUND if no repository of the account links it, or if the
	 * blob is marked damaged.  Never looks at other accounts. */
	int (*account_blob_get)(brt_meta *m, brt_blob_info *out, brt_pool *pool, const char *account_id,
				const char *digest);

	/* --- storage lifecycle (optional).  Without these slots nothing is
	 * ever collected and no quota is kept. ---
	 *
	 * Liveness runs tag or parent index -> manifest -> repository link ->
	 * blob row -> stored object.  Each mutating slot queues, in its own
	 * transaction, what it may have orphaned one level down: a tag moved
	 * or deleted queues the manifest it left; a deleted manifest queues
	 * its children, its referrers and its links; every new link is queued
	 * (a blob pushed but never referenced goes after the grace period); an
	 * unlinked blob queues its blob row.  blob_link records the object it
	 * is given only if the digest has no blob row yet; otherwise (a
	 * duplicate upload) that object goes to the outbox.  With a NULL
	 * storage key it links the recorded blob and is BRT_ENOTFOUND when
	 * there is none (a mount: the blob may have been collected since it
	 * was looked up).  Usage is charged in the same transactions:
	 * blob_link (the account's first link to a digest) and manifest_put
	 * (a new manifest) answer BRT_EQUOTA, with the limit and the usage in
	 * the detail, when it would go over the account's quota, and change
	 * nothing. */

	/* Refresh the link of `digest` in `repo` (touched_at = now).
	 * BRT_ENOTFOUND if not linked. */
	int (*blob_touch)(brt_meta *m, const char *repo, const char *digest, int64_t now);

	/* Take due queue rows (see brt_gc_params): a manifest goes when no
	 * tag and no index of its repository points at it; a link when no
	 * manifest lists it and it was not touched within the grace period;
	 * a blob row when no repository links it, its object going to the
	 * outbox.  Each row is re-checked, removed and the next level queued
	 * in one short transaction, so requests interleave; the next levels
	 * are taken in the same call when due.  A dry run is one transaction,
	 * rolled back. */
	int (*gc_collect)(brt_meta *m, const brt_gc_params *params, brt_gc_counts *out);

	/* Stored objects awaiting deletion whose time has come (not_before
	 * <= now), at most `limit`; the caller removes each from the blob
	 * store, then calls gc_outbox_done with the keys it removed (or found
	 * gone), `count` of them, in one transaction. */
	int (*gc_outbox_list)(brt_meta *m, int64_t now, size_t limit, brt_meta_outbox_cb cb, void *payload);
	int (*gc_outbox_done)(brt_meta *m, const char *const *storage_keys, size_t count);

	/* Whether a blob row names `storage_key` or it awaits deletion:
	 * *known_out = 1.  Objects neither knows are orphans (a crash between
	 * storing and linking). */
	int (*storage_key_known)(brt_meta *m, const char *storage_key, int *known_out);

	/* An account's quota and usage in bytes only (`bytes`, `has_quota`,
	 * `quota_bytes`; the counts stay 0): one row read, for the early
	 * checks of every push.  BRT_ENOTFOUND if the account has no row. */
	int (*quota_get)(brt_meta *m, brt_usage *out, const char *account_id);

	/* Usage of one account (BRT_ENOTFOUND if it has no row), and of every
	 * account, by id. */
	int (*usage_get)(brt_meta *m, brt_usage *out, const char *account_id);
	int (*usage_list)(brt_meta *m, brt_meta_usage_cb cb, void *payload);

	/* Set (quota_bytes >= 0) or lift (< 0) an account's quota.
	 * BRT_ENOTFOUND if the account does not exist. */
	int (*quota_set)(brt_meta *m, const char *account_id, int64_t quota_bytes);

	/* Policies: store (replacing the one of the same account and
	 * pattern; BRT_ENOTFOUND if the account does not exist), list (one
	 * account's, or all with NULL, by account and pattern) and delete
	 * (BRT_ENOTFOUND if absent). */
	int (*policy_set)(brt_meta *m, const brt_policy *policy);
	int (*policy_list)(brt_meta *m, const char *account_id, brt_meta_policy_cb cb, void *payload);
	int (*policy_delete)(brt_meta *m, const char *account_id, const char *repository_pattern);

	/* Apply the retention rules of every policy (of params->account_id's
	 * only, when set): delete the tags they do not keep and queue the
	 * untagged manifests past their delay; gc_collect then takes what
	 * that orphaned. */
	int (*retention_apply)(brt_meta *m, const brt_gc_params *params, brt_gc_counts *out);
};

/* A number for brt_meta.serial: process-wide, never returned twice. */
uint64_t brt_meta_serial_next(void);

/* A driver's open function: `location` is what it understands (a file
 * path for SQLite, a connection string for PostgreSQL). */
typedef int (*brt_meta_open_fn)(brt_meta **out, const char *location);

/* Open a store with the driver named `driver` ("sqlite", "postgres").  The driver's
 * store is checked once with brt_meta_validate (and freed if it fails)
 * and gets a serial if the driver gave it none.  BRT_EUNSUPPORTED for an
 * unknown driver name; otherwise the driver's or the check's code.  The
 * caller frees the store with brt_meta_free. */
int brt_meta_open(brt_meta **out, const char *driver, const char *location);

/* brt_meta_open with the driver's open function given directly (for
 * drivers not in the table, and tests). */
int brt_meta_open_with(brt_meta **out, brt_meta_open_fn open, const char *location);

/* 0 if `m` is of the interface version this build speaks and fills every
 * required slot; BRT_EINVALID naming the problem otherwise.  Optional
 * slots (may be NULL): key_epoch, upload_list, blob_walk, manifest_walk,
 * check, blob_mark_damaged. */
int brt_meta_validate(const brt_meta *m);

/* The wrappers callers use instead of the slots: the same arguments and
 * codes; an optional slot the driver leaves NULL answers BRT_EUNSUPPORTED
 * (key_epoch's wrapper returns its value through `out` for that reason). */
int brt_meta_repo_exists(brt_meta *m, const char *repo);
int brt_meta_blob_get(brt_meta *m, brt_blob_info *out, brt_pool *pool, const char *repo, const char *digest);
int brt_meta_account_blob_get(brt_meta *m, brt_blob_info *out, brt_pool *pool, const char *account_id,
			      const char *digest);
int brt_meta_blob_link(brt_meta *m, const brt_blob_link *link);
int brt_meta_blob_unlink(brt_meta *m, const brt_blob_link *link);
int brt_meta_manifest_put(brt_meta *m, const brt_manifest_put *put);
int brt_meta_manifest_get(brt_meta *m, brt_manifest *out, brt_pool *pool, const char *repo,
			  const char *reference, int is_digest);
int brt_meta_manifest_delete(brt_meta *m, const char *repo, const char *digest);
int brt_meta_tag_delete(brt_meta *m, const char *repo, const char *tag);
int brt_meta_tags_list(brt_meta *m, const char *repo, const char *last, size_t limit, brt_meta_name_cb cb,
		       void *payload, int *more_out);
int brt_meta_referrers_list(brt_meta *m, const char *repo, const char *subject, const char *artifact_type,
			    brt_meta_referrer_cb cb, void *payload);
int brt_meta_catalog_list(brt_meta *m, const char *prefix, const char *last, size_t limit,
			  brt_meta_name_cb cb, void *payload, int *more_out);
int brt_meta_upload_create(brt_meta *m, const brt_upload *upload, unsigned int max_per_account);
int brt_meta_upload_get(brt_meta *m, brt_upload *out, brt_pool *pool, const char *id);
int brt_meta_upload_update(brt_meta *m, const brt_upload *upload);
int brt_meta_upload_delete(brt_meta *m, const char *id, uint64_t generation);
int brt_meta_account_create(brt_meta *m, const brt_account *account);
int brt_meta_account_get(brt_meta *m, brt_account *out, const char *id);
int brt_meta_account_list(brt_meta *m, brt_meta_account_cb cb, void *payload);
int brt_meta_key_create(brt_meta *m, const brt_access_key *key);
int brt_meta_key_get(brt_meta *m, brt_access_key *out, const char *id);
int brt_meta_key_list(brt_meta *m, const char *account_id, brt_meta_key_cb cb, void *payload);
int brt_meta_key_revoke(brt_meta *m, const char *id, int64_t now);
int brt_meta_secret_get(brt_meta *m, const char *name, unsigned char *out, size_t len);
int brt_meta_key_epoch(brt_meta *m, uint64_t *out);
int brt_meta_upload_list(brt_meta *m, int64_t updated_before, size_t limit, brt_meta_upload_cb cb,
			 void *payload);
int brt_meta_blob_walk(brt_meta *m, brt_meta_blob_cb cb, void *payload);
int brt_meta_manifest_walk(brt_meta *m, brt_meta_manifest_cb cb, void *payload);
int brt_meta_check(brt_meta *m, brt_meta_problem_cb cb, void *payload);
int brt_meta_recount(brt_meta *m, unsigned long *fixed_out);
int brt_meta_blob_mark_damaged(brt_meta *m, const char *digest, int64_t now);
int brt_meta_blob_touch(brt_meta *m, const char *repo, const char *digest, int64_t now);
int brt_meta_gc_collect(brt_meta *m, const brt_gc_params *params, brt_gc_counts *out);
int brt_meta_gc_outbox_list(brt_meta *m, int64_t now, size_t limit, brt_meta_outbox_cb cb, void *payload);
int brt_meta_gc_outbox_done(brt_meta *m, const char *const *storage_keys, size_t count);
int brt_meta_storage_key_known(brt_meta *m, const char *storage_key, int *known_out);
int brt_meta_quota_get(brt_meta *m, brt_usage *out, const char *account_id);
int brt_meta_usage_get(brt_meta *m, brt_usage *out, const char *account_id);
int brt_meta_usage_list(brt_meta *m, brt_meta_usage_cb cb, void *payload);
int brt_meta_quota_set(brt_meta *m, const char *account_id, int64_t quota_bytes);
int brt_meta_policy_set(brt_meta *m, const brt_policy *policy);
int brt_meta_policy_list(brt_meta *m, const char *account_id, brt_meta_policy_cb cb, void *payload);
int brt_meta_policy_delete(brt_meta *m, const char *account_id, const char *repository_pattern);
int brt_meta_retention_apply(brt_meta *m, const brt_gc_params *params, brt_gc_counts *out);

/* Release a store (NULL is fine); all threads must be done with it. */
void brt_meta_free(brt_meta *m);

/* The account a repository belongs to, into `out` (BRT_ACCOUNT_ID_LEN + 1
 * bytes), which is returned: the name's first path component, at most
 * BRT_ACCOUNT_ID_LEN characters.  For a tenant-form name that is its
 * account id; with authentication off, names need not be tenant-form and
 * the (cut) first component stands in for the account. */
const char *brt_meta_repo_account(char *out, const char *repo);

/* The SQLite driver (WAL mode, foreign keys on), database at `path`.
 * Creates or migrates the schema.  BRT_EIO on failure. */
int brt_meta_sqlite_open(brt_meta **out, const char *path);

/* The PostgreSQL driver, on the database `dsn` names (a libpq connection
 * string or URI; its search_path picks the schema).  Creates or migrates
 * the schema (once, if several nodes open it at once), then keeps one
 * connection per thread, opened again after it breaks: while the server
 * is away the slots fail with BRT_EIO, and work again once it is back.
 * BRT_EIO if the database cannot be reached or its schema is newer. */
int brt_meta_pg_open(brt_meta **out, const char *dsn);

#endif
