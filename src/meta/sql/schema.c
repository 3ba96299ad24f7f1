/* The schema migrations and statement texts of schema.h. */
#include "meta/sql/schema.h"

/* Schema migrations; user_version = number applied.  Only ever append.
 * BIGINT is the same as INTEGER to SQLite but 64-bit on PostgreSQL; ids are
 * "INTEGER PRIMARY KEY AUTOINCREMENT" so that, as with a PostgreSQL
 * sequence, an id is never reused after a delete (future GC queues refer to
 * rows by id).  Every index on a referencing column exists so that cascades
 * and reference checks never scan a table.  Statements separated by ";"
 * run as one script.  The PostgreSQL migration runner substitutes
 * (docs/postgres-schema.md): an identity BIGINT primary key for the
 * AUTOINCREMENT ids, BIGINT for every other INTEGER (64-bit ids and
 * counts), BYTEA for BLOB, and TEXT COLLATE "C" for TEXT (byte order, as
 * SQLite sorts, so that paging by name neither skips nor repeats).
 * Statements are written for both engines: a parameter whose type the
 * other engine would guess too small is cast, and a truth value a caller
 * reads as a number is cast to INTEGER. */
const char *const brt_sql_migrations[] = {
	/* 1: repositories, blobs and links, manifests, tags, uploads. */
	"CREATE TABLE accounts ("
	" id TEXT NOT NULL PRIMARY KEY,"
	" name TEXT,"
	" quota_bytes BIGINT,"
	" used_bytes BIGINT NOT NULL DEFAULT 0,"
	" created_at BIGINT NOT NULL);"

	"CREATE TABLE repositories ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" account_id TEXT NOT NULL,"
	" name TEXT NOT NULL,"
	" created_at BIGINT NOT NULL,"
	" UNIQUE (account_id, name));"
	"CREATE UNIQUE INDEX repositories_name ON repositories (name);"

	"CREATE TABLE blobs ("
	" digest TEXT NOT NULL PRIMARY KEY,"
	" size BIGINT NOT NULL,"
	" storage_key TEXT NOT NULL,"
	" created_at BIGINT NOT NULL);"

	"CREATE TABLE repository_blobs ("
	" repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,"
	" digest TEXT NOT NULL REFERENCES blobs (digest),"
	" account_id TEXT NOT NULL,"
	" linked_at BIGINT NOT NULL,"
	" touched_at BIGINT NOT NULL,"
	" PRIMARY KEY (repository_id, digest));"
	"CREATE INDEX repository_blobs_digest ON repository_blobs (digest);"

	"CREATE TABLE account_blobs ("
	" account_id TEXT NOT NULL,"
	" digest TEXT NOT NULL REFERENCES blobs (digest),"
	" size BIGINT NOT NULL,"
	" nlinks BIGINT NOT NULL,"
	" PRIMARY KEY (account_id, digest));"
	"CREATE INDEX account_blobs_digest ON account_blobs (digest);"

	"CREATE TABLE manifests ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,"
	" account_id TEXT NOT NULL,"
	" digest TEXT NOT NULL,"
	" media_type TEXT NOT NULL,"
	" size BIGINT NOT NULL,"
	" payload BLOB NOT NULL,"
	" subject_digest TEXT,"
	" artifact_type TEXT,"
	" annotations TEXT,"
	" created_at BIGINT NOT NULL,"
	" UNIQUE (repository_id, digest));"
	/* digest too, so referrers come out in order without a sort (else the
	 * planner walks all of the repository's manifests in digest order). */
	"CREATE INDEX manifests_subject ON manifests (repository_id, subject_digest, digest)"
	" WHERE subject_digest IS NOT NULL;"

	"CREATE TABLE manifest_blobs ("
	" manifest_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,"
	" repository_id INTEGER NOT NULL,"
	" digest TEXT NOT NULL,"
	" PRIMARY KEY (manifest_id, digest),"
	" FOREIGN KEY (repository_id, digest)"
	"  REFERENCES repository_blobs (repository_id, digest) ON DELETE CASCADE);"
	"CREATE INDEX manifest_blobs_link ON manifest_blobs (repository_id, digest);"

	"CREATE TABLE manifest_refs ("
	" parent_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,"
	" child_id INTEGER NOT NULL REFERENCES manifests (id),"
	" PRIMARY KEY (parent_id, child_id));"
	"CREATE INDEX manifest_refs_child ON manifest_refs (child_id);"

	"CREATE TABLE tags ("
	" repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,"
	" name TEXT NOT NULL,"
	" manifest_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,"
	" updated_at BIGINT NOT NULL,"
	" PRIMARY KEY (repository_id, name));"
	"CREATE INDEX tags_manifest ON tags (manifest_id);"

	/* "offset" is reserved in PostgreSQL, hence quoted everywhere. */
	"CREATE TABLE uploads ("
	" id TEXT NOT NULL PRIMARY KEY,"
	" repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,"
	" account_id TEXT NOT NULL,"
	" \"offset\" BIGINT NOT NULL,"
	" hash_state BLOB,"
	" generation BIGINT NOT NULL,"
	" created_at BIGINT NOT NULL,"
	" updated_at BIGINT NOT NULL);"
	"CREATE INDEX uploads_repository ON uploads (repository_id);",

	/* 2: access keys and server secrets.  NULL times mean "never"; the
	 * account index also orders key listings, so they need no sort. */
	"CREATE TABLE access_keys ("
	" id TEXT NOT NULL PRIMARY KEY,"
	" account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,"
	" secret_hash BLOB NOT NULL,"
	" permissions INTEGER NOT NULL,"
	" label TEXT NOT NULL DEFAULT '',"
	" created_at BIGINT NOT NULL,"
	" expires_at BIGINT,"
	" revoked_at BIGINT);"
	"CREATE INDEX access_keys_account ON access_keys (account_id, created_at, id);"

	"CREATE TABLE server_secrets ("
	" name TEXT NOT NULL PRIMARY KEY,"
	" value BLOB NOT NULL,"
	" created_at BIGINT NOT NULL);",

	/* 3: bounded upload sessions: counted per account at every POST,
	 * expired oldest first by the janitor. */
	("CREATE INDEX uploads_account ON uploads (account_id);"
	 "CREATE INDEX uploads_updated ON uploads (updated_at);"),

	/* 4: a blob whose stored object fsck found corrupt or missing is not
	 * served (404, so clients push it again) until a verified push
	 * clears the mark; no object store round trip per HEAD. */
	"ALTER TABLE blobs ADD COLUMN damaged_at BIGINT;",

	/* 5: the blob store driver's state of an upload (multipart ids, part
	 * lists) travels with the row, so any node can take the next chunk;
	 * the key epoch is a row, bumped in key_revoke's transaction, so
	 * every process and node sees a revocation through the store itself. */
	("ALTER TABLE uploads ADD COLUMN backend_state BLOB;"
	 "CREATE TABLE settings ("
	 " name TEXT NOT NULL PRIMARY KEY,"
	 " value BIGINT NOT NULL);"
	 "INSERT INTO settings (name, value) VALUES ('key_epoch', 0);"),

	/* 6: storage lifecycle.  Review queues, filled in the transaction of
	 * each mutation that can orphan the next level (tag -> manifest ->
	 * repository link -> blob row -> stored object); queued_at is the
	 * event's time, and a row is due once it is older than the grace
	 * period the collector runs with, so `berthd gc --grace 0` can take
	 * what the worker would wait a day for.  Upserts refresh queued_at,
	 * so no event is lost.  The outbox holds stored objects whose row is
	 * gone, deleted outside any transaction after a read grace.  Every
	 * object has its own key from now on (a re-upload never lands on a
	 * copy awaiting deletion), found again by the storage_key index.
	 * Usage: accounts.used_bytes, kept in the same transactions as the
	 * links and manifests.  Policies: retention and immutable tags per account and
	 * repository pattern. */
	("CREATE TABLE gc_manifest_queue ("
	 " manifest_id INTEGER NOT NULL PRIMARY KEY,"
	 " account_id TEXT NOT NULL,"
	 " queued_at BIGINT NOT NULL);"
	 "CREATE INDEX gc_manifest_queue_due ON gc_manifest_queue (queued_at);"
	 "CREATE TABLE gc_link_queue ("
	 " repository_id BIGINT NOT NULL,"
	 " digest TEXT NOT NULL,"
	 " account_id TEXT NOT NULL,"
	 " queued_at BIGINT NOT NULL,"
	 " PRIMARY KEY (repository_id, digest));"
	 "CREATE INDEX gc_link_queue_due ON gc_link_queue (queued_at);"
	 "CREATE TABLE gc_blob_queue ("
	 " digest TEXT NOT NULL PRIMARY KEY,"
	 " queued_at BIGINT NOT NULL);"
	 "CREATE INDEX gc_blob_queue_due ON gc_blob_queue (queued_at);"
	 "CREATE TABLE gc_outbox ("
	 " storage_key TEXT NOT NULL PRIMARY KEY,"
	 " size BIGINT NOT NULL,"
	 " not_before BIGINT NOT NULL);"
	 "CREATE INDEX gc_outbox_due ON gc_outbox (not_before);"
	 "CREATE INDEX blobs_storage_key ON blobs (storage_key);"
	 "CREATE INDEX manifests_account ON manifests (account_id);"
	 "CREATE TABLE policies ("
	 " account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,"
	 " repository_pattern TEXT NOT NULL,"
	 " keep_last BIGINT,"
	 " keep_within_ms BIGINT,"
	 " untagged_after_ms BIGINT,"
	 " protect_tags TEXT,"
	 " immutable_tags TEXT,"
	 " updated_at BIGINT NOT NULL,"
	 " PRIMARY KEY (account_id, repository_pattern));"
	 /* Usage is counted from what each account holds; every link
	  * already there is queued for review, so blobs pushed before GC
	  * existed are not kept for ever. */
	 "UPDATE accounts SET used_bytes ="
	 " (SELECT COALESCE(SUM(size), 0) FROM account_blobs ab"
	 "  WHERE ab.account_id = accounts.id AND ab.nlinks > 0) +"
	 " (SELECT COALESCE(SUM(size), 0) FROM manifests m WHERE m.account_id = accounts.id);"
	 "INSERT INTO gc_link_queue (repository_id, digest, account_id, queued_at)"
	 " SELECT repository_id, digest, account_id, linked_at FROM repository_blobs;"),

	/* 7: the catalog in one index range.  A repository is listed iff it
	 * holds a manifest or a blob link: `contents` counts both, kept in
	 * the transactions that insert and delete them (the row each touches
	 * is the repository's own, as used_bytes is the account's; the
	 * increments commute, so concurrent pushes and collections need no
	 * more than the row lock on PostgreSQL).  `listed` (contents > 0)
	 * changes only when the count leaves or reaches 0, and only it is
	 * indexed: a count that moves rewrites the row alone (a HOT update
	 * on PostgreSQL, one page on SQLite), not the index.  The partial
	 * index holds the listed names only, so a catalog page reads the
	 * names it returns and nothing else, instead of two probes into the
	 * largest tables per name; `listed` is in it so that it covers the
	 * query on SQLite too (3.40 reads the table for a column that only
	 * the partial index's WHERE mentions).  Counted here from the
	 * tables' own indexes. */
	("ALTER TABLE repositories ADD COLUMN contents BIGINT NOT NULL DEFAULT 0;"
	 "ALTER TABLE repositories ADD COLUMN listed SMALLINT NOT NULL DEFAULT 0;"
	 "UPDATE repositories SET contents ="
	 " (SELECT count(*) FROM manifests m WHERE m.repository_id = repositories.id) +"
	 " (SELECT count(*) FROM repository_blobs rb WHERE rb.repository_id = repositories.id);"
	 "UPDATE repositories SET listed = 1 WHERE contents > 0;"
	 "CREATE INDEX repositories_listed ON repositories (name, listed) WHERE listed = 1;"),
};

_Static_assert(sizeof(brt_sql_migrations) / sizeof(brt_sql_migrations[0]) == BRT_SQL_SCHEMA_VERSION,
	       "BRT_SQL_SCHEMA_VERSION must count the migrations");

/* A repository exists from its first upload session on, but is listed only
 * once it holds a blob link or a manifest (listed = 1, migration 7): the
 * term that lets the planner use the partial index repositories_listed,
 * which covers the query, so a page is one range of that index. */
#define CATALOG_LISTED " AND listed = 1"

/* IMMEDIATE takes the write lock up front, so a transaction never fails
 * half way for lack of it (a deferred one could get SQLITE_BUSY on its
 * first write, which no busy handler can resolve). */
const char *const brt_sql_text[BRT_SQL_COUNT] = {
	[BRT_SQL_BEGIN] = "BEGIN IMMEDIATE",
	[BRT_SQL_COMMIT] = "COMMIT",
	[BRT_SQL_ROLLBACK] = "ROLLBACK",
	[BRT_SQL_REPO_ID] = "SELECT id, account_id FROM repositories WHERE name = ?1",
	[BRT_SQL_REPO_INSERT] =
		"INSERT INTO repositories (account_id, name, created_at) VALUES (?1, ?2, ?3)"
		" RETURNING id",
	/* ?2 manifests or links of the repository came (> 0) or went (< 0). */
	[BRT_SQL_REPO_CONTENTS] =
		"UPDATE repositories SET contents = contents + ?2 WHERE id = ?1 RETURNING contents",
	/* Only when the count leaves or reaches 0. */
	[BRT_SQL_REPO_LISTED] = "UPDATE repositories SET listed = ?2 WHERE id = ?1",
/* What a repository holds, counted from the tables (fsck). */
#define REPO_HOLDS                                                                      \
	"((SELECT count(*) FROM manifests m WHERE m.repository_id = repositories.id) +" \
	" (SELECT count(*) FROM repository_blobs rb WHERE rb.repository_id = repositories.id))"
	[BRT_SQL_REPO_COUNTS_WRONG] =
		"SELECT name, contents, listed, holds FROM"
		" (SELECT name, contents, listed, " REPO_HOLDS
		" AS holds FROM repositories) r"
		" WHERE contents != holds OR listed != (CASE WHEN holds > 0 THEN 1 ELSE 0 END)"
		" ORDER BY name",
	[BRT_SQL_REPO_RECOUNT] = "UPDATE repositories SET contents = " REPO_HOLDS
				 ","
				 " listed = CASE WHEN " REPO_HOLDS
				 " > 0 THEN 1 ELSE 0 END"
				 " WHERE contents != " REPO_HOLDS " OR listed != CASE WHEN " REPO_HOLDS
				 " > 0 THEN 1 ELSE 0 END",
	[BRT_SQL_BLOB_GET] =
		"SELECT b.size, b.storage_key, rb.touched_at FROM repositories r"
		" JOIN repository_blobs rb ON rb.repository_id = r.id"
		" JOIN blobs b ON b.digest = rb.digest"
		" WHERE r.name = ?1 AND rb.digest = ?2 AND b.damaged_at IS NULL",
	/* Held by an account: linked in one of its repositories. */
	[BRT_SQL_ACCOUNT_BLOB_GET] =
		"SELECT b.size, b.storage_key, 0 FROM account_blobs ab"
		" JOIN blobs b ON b.digest = ab.digest"
		" WHERE ab.account_id = ?1 AND ab.digest = ?2 AND ab.nlinks > 0 AND b.damaged_at IS NULL",
	[BRT_SQL_BLOB_INSERT] =
		"INSERT INTO blobs (digest, size, storage_key, created_at) VALUES (?1, ?2, ?3, ?4)",
	[BRT_SQL_BLOB_MARK_DAMAGED] =
		"UPDATE blobs SET damaged_at = ?2 WHERE digest = ?1 AND damaged_at IS NULL",
	[BRT_SQL_BLOB_EXISTS] = "SELECT 1 FROM blobs WHERE digest = ?1",
	/* Returns a row only when the link is new. */
	[BRT_SQL_LINK_INSERT] =
		"INSERT INTO repository_blobs (repository_id, digest, account_id, linked_at, touched_at)"
		" VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (repository_id, digest) DO NOTHING"
		" RETURNING 1",
	[BRT_SQL_LINK_TOUCH] =
		"UPDATE repository_blobs SET touched_at = ?3"
		" WHERE repository_id = ?1 AND digest = ?2 AND touched_at < ?3",
	[BRT_SQL_LINK_EXISTS] = "SELECT 1 FROM repository_blobs WHERE repository_id = ?1 AND digest = ?2",
	[BRT_SQL_LINK_SIZE] =
		"SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest"
		" WHERE rb.repository_id = ?1 AND rb.digest = ?2",
	[BRT_SQL_LINK_DELETE] = "DELETE FROM repository_blobs WHERE repository_id = ?1 AND digest = ?2",
	/* The size comes from the blob row, the one truth about the object. */
	[BRT_SQL_ACCOUNT_BLOB_ADD] =
		"INSERT INTO account_blobs (account_id, digest, size, nlinks)"
		" SELECT ?1, digest, size, 1 FROM blobs WHERE digest = ?2"
		" ON CONFLICT (account_id, digest) DO UPDATE SET nlinks = account_blobs.nlinks + 1"
		" RETURNING nlinks, size",
	[BRT_SQL_ACCOUNT_BLOB_RELEASE] =
		"UPDATE account_blobs SET nlinks = nlinks - 1 WHERE account_id = ?1 AND digest = ?2"
		" RETURNING nlinks, size",
	[BRT_SQL_BLOB_STATE] =
		"SELECT storage_key, CAST(damaged_at IS NOT NULL AS INTEGER) FROM blobs WHERE digest = ?1",
	/* A verified commit of a damaged blob has just put a good copy in
	 * place: the mark goes, and so (through the outbox) does the bad copy. */
	[BRT_SQL_BLOB_REPLACE] = "UPDATE blobs SET storage_key = ?2, damaged_at = NULL WHERE digest = ?1",
	[BRT_SQL_BLOB_TOUCH] =
		"UPDATE repository_blobs SET touched_at = ?3"
		" WHERE repository_id = (SELECT id FROM repositories WHERE name = ?1) AND digest = ?2"
		" AND touched_at < ?3",
	[BRT_SQL_TAG_TARGET] = "SELECT manifest_id FROM tags WHERE repository_id = ?1 AND name = ?2",
	[BRT_SQL_TAG_REMOVE] = "DELETE FROM tags WHERE repository_id = ?1 AND name = ?2",
	/* Queue upserts refresh the time: a new event must not be lost in an
	 * old row that a collector is about to drop. */
	[BRT_SQL_GC_QUEUE_MANIFEST] =
		"INSERT INTO gc_manifest_queue (manifest_id, account_id, queued_at)"
		" SELECT id, account_id, ?2 FROM manifests WHERE id = ?1"
		" ON CONFLICT (manifest_id) DO UPDATE SET queued_at = excluded.queued_at",
	[BRT_SQL_GC_QUEUE_CHILDREN] =
		"INSERT INTO gc_manifest_queue (manifest_id, account_id, queued_at)"
		" SELECT child_id, ?2, ?3 FROM manifest_refs WHERE parent_id = ?1"
		" ON CONFLICT (manifest_id) DO UPDATE SET queued_at = excluded.queued_at",
	[BRT_SQL_GC_QUEUE_REFERRERS] =
		"INSERT INTO gc_manifest_queue (manifest_id, account_id, queued_at)"
		" SELECT id, account_id, ?3 FROM manifests WHERE repository_id = ?1 AND subject_digest = ?2"
		" ON CONFLICT (manifest_id) DO UPDATE SET queued_at = excluded.queued_at",
	[BRT_SQL_GC_QUEUE_LINK] =
		"INSERT INTO gc_link_queue (repository_id, digest, account_id, queued_at) VALUES (?1, ?2, "
		"?3, ?4)"
		" ON CONFLICT (repository_id, digest) DO UPDATE SET queued_at = excluded.queued_at",
	[BRT_SQL_GC_QUEUE_MANIFEST_LINKS] =
		"INSERT INTO gc_link_queue (repository_id, digest, account_id, queued_at)"
		" SELECT repository_id, digest, ?2, ?3 FROM manifest_blobs WHERE manifest_id = ?1"
		" ON CONFLICT (repository_id, digest) DO UPDATE SET queued_at = excluded.queued_at",
	[BRT_SQL_GC_QUEUE_BLOB] =
		"INSERT INTO gc_blob_queue (digest, queued_at) VALUES (?1, ?2)"
		" ON CONFLICT (digest) DO UPDATE SET queued_at = excluded.queued_at",
	/* The CAST lets PostgreSQL type a parameter only tested for NULL. */
	[BRT_SQL_GC_MANIFEST_DUE] =
		"SELECT manifest_id FROM gc_manifest_queue WHERE queued_at <= ?1"
		" AND (CAST(?2 AS TEXT) IS NULL OR account_id = ?2) ORDER BY queued_at LIMIT ?3",
	[BRT_SQL_GC_MANIFEST_QUEUED] = "SELECT queued_at FROM gc_manifest_queue WHERE manifest_id = ?1",
	[BRT_SQL_GC_MANIFEST_UNQUEUE] = "DELETE FROM gc_manifest_queue WHERE manifest_id = ?1",
	[BRT_SQL_GC_MANIFEST_ROW] =
		"SELECT m.repository_id, m.account_id, m.digest, m.size, r.name FROM manifests m"
		" JOIN repositories r ON r.id = m.repository_id WHERE m.id = ?1",
	[BRT_SQL_GC_MANIFEST_HELD] =
		"SELECT 1 FROM tags WHERE manifest_id = ?1"
		" UNION ALL SELECT 1 FROM manifest_refs WHERE child_id = ?1 LIMIT 1",
	[BRT_SQL_GC_LINK_DUE] =
		"SELECT repository_id, digest FROM gc_link_queue WHERE queued_at <= ?1"
		" AND (CAST(?2 AS TEXT) IS NULL OR account_id = ?2) ORDER BY queued_at LIMIT ?3",
	[BRT_SQL_GC_LINK_QUEUED] =
		"SELECT queued_at FROM gc_link_queue WHERE repository_id = ?1 AND digest = ?2",
	[BRT_SQL_GC_LINK_UNQUEUE] = "DELETE FROM gc_link_queue WHERE repository_id = ?1 AND digest = ?2",
	[BRT_SQL_GC_LINK_REQUEUE] =
		"UPDATE gc_link_queue SET queued_at = ?3 WHERE repository_id = ?1 AND digest = ?2",
	[BRT_SQL_GC_MANIFEST_REQUEUE] = "UPDATE gc_manifest_queue SET queued_at = ?2 WHERE manifest_id = ?1",
	[BRT_SQL_GC_BLOB_REQUEUE] = "UPDATE gc_blob_queue SET queued_at = ?2 WHERE digest = ?1",
	[BRT_SQL_GC_LINK_ROW] =
		"SELECT rb.touched_at, rb.account_id, r.name, CAST(EXISTS (SELECT 1 FROM manifest_blobs mb"
		"  WHERE mb.repository_id = rb.repository_id AND mb.digest = rb.digest) AS INTEGER)"
		" FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id"
		" WHERE rb.repository_id = ?1 AND rb.digest = ?2",
	[BRT_SQL_GC_BLOB_DUE] =
		"SELECT digest FROM gc_blob_queue WHERE queued_at <= ?1 ORDER BY queued_at LIMIT ?2",
	[BRT_SQL_GC_BLOB_QUEUED] = "SELECT queued_at FROM gc_blob_queue WHERE digest = ?1",
	[BRT_SQL_GC_BLOB_UNQUEUE] = "DELETE FROM gc_blob_queue WHERE digest = ?1",
	[BRT_SQL_GC_BLOB_ROW] =
		"SELECT size, storage_key,"
		" CAST(EXISTS (SELECT 1 FROM repository_blobs WHERE digest = ?1) AS INTEGER)"
		" FROM blobs WHERE digest = ?1",
	/* Per-account rows go first (they reference the blob row); with no
	 * link left, no account holds the blob, whatever a count says. */
	[BRT_SQL_GC_BLOB_ACCOUNTS_PRUNE] = "DELETE FROM account_blobs WHERE digest = ?1",
	[BRT_SQL_GC_BLOB_DELETE] = "DELETE FROM blobs WHERE digest = ?1",
	[BRT_SQL_GC_OUTBOX_ADD] =
		"INSERT INTO gc_outbox (storage_key, size, not_before) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (storage_key) DO UPDATE SET not_before = excluded.not_before",
	[BRT_SQL_GC_OUTBOX_DUE] =
		"SELECT storage_key, size FROM gc_outbox WHERE not_before <= ?1 ORDER BY not_before LIMIT ?2",
	[BRT_SQL_GC_OUTBOX_DONE] = "DELETE FROM gc_outbox WHERE storage_key = ?1",
	[BRT_SQL_GC_KEY_KNOWN] =
		"SELECT 1 FROM blobs WHERE storage_key = ?1"
		" UNION ALL SELECT 1 FROM gc_outbox WHERE storage_key = ?1 LIMIT 1",
	/* For an account created after it came to hold something (names are
	 * tenant-form with authentication off too). */
	[BRT_SQL_USAGE_RECOUNT] =
		"UPDATE accounts SET used_bytes ="
		" (SELECT COALESCE(SUM(size), 0) FROM account_blobs ab WHERE ab.account_id = ?1 AND "
		"ab.nlinks > 0) +"
		" (SELECT COALESCE(SUM(size), 0) FROM manifests m WHERE m.account_id = ?1) WHERE id = ?1",
	/* The one authoritative quota check: the row changes only when the
	 * charge fits (a give-back always does). */
	[BRT_SQL_USAGE_CHARGE] =
		"UPDATE accounts SET used_bytes ="
		" CASE WHEN used_bytes + CAST(?2 AS BIGINT) < 0 THEN 0 ELSE used_bytes + CAST(?2 AS BIGINT) "
		"END"
		" WHERE id = ?1 AND (CAST(?2 AS BIGINT) <= 0 OR quota_bytes IS NULL"
		" OR used_bytes + CAST(?2 AS BIGINT) <= quota_bytes)",
	[BRT_SQL_USAGE_QUOTA] = "SELECT quota_bytes, used_bytes FROM accounts WHERE id = ?1",
	/* The counts come from the per-account tables' own indexes. */
	[BRT_SQL_USAGE_LIST] =
		"SELECT a.id, a.used_bytes, a.quota_bytes,"
		" (SELECT count(*) FROM account_blobs ab WHERE ab.account_id = a.id AND ab.nlinks > 0),"
		" (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM account_blobs ab"
		"  WHERE ab.account_id = a.id AND ab.nlinks > 0),"
		" (SELECT count(*) FROM manifests m WHERE m.account_id = a.id),"
		" (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM manifests m WHERE m.account_id = a.id),"
		" (SELECT count(*) FROM repositories r WHERE r.account_id = a.id)"
		" FROM accounts a WHERE CAST(?1 AS TEXT) IS NULL OR a.id = ?1 ORDER BY a.id",
	[BRT_SQL_QUOTA_SET] = "UPDATE accounts SET quota_bytes = ?2 WHERE id = ?1",
	[BRT_SQL_ACCOUNT_BLOB_PRUNE] =
		"DELETE FROM account_blobs WHERE account_id = ?1 AND digest = ?2 AND nlinks <= 0",
	[BRT_SQL_MANIFEST_ID] = "SELECT id, size FROM manifests WHERE repository_id = ?1 AND digest = ?2",
	[BRT_SQL_MANIFEST_INSERT] =
		"INSERT INTO manifests (repository_id, account_id, digest, media_type, size, payload,"
		" subject_digest, artifact_type, annotations, created_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
	[BRT_SQL_MANIFEST_BLOB_INSERT] =
		"INSERT INTO manifest_blobs (manifest_id, repository_id, digest) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (manifest_id, digest) DO NOTHING",
	[BRT_SQL_MANIFEST_REF_INSERT] =
		"INSERT INTO manifest_refs (parent_id, child_id) VALUES (?1, ?2)"
		" ON CONFLICT (parent_id, child_id) DO NOTHING",
	[BRT_SQL_MANIFEST_GET_DIGEST] =
		"SELECT m.digest, m.media_type, m.payload FROM repositories r"
		" JOIN manifests m ON m.repository_id = r.id"
		" WHERE r.name = ?1 AND m.digest = ?2",
	[BRT_SQL_MANIFEST_GET_TAG] =
		"SELECT m.digest, m.media_type, m.payload FROM repositories r"
		" JOIN tags t ON t.repository_id = r.id"
		" JOIN manifests m ON m.id = t.manifest_id"
		" WHERE r.name = ?1 AND t.name = ?2",
	[BRT_SQL_MANIFEST_REFERENCED] = "SELECT 1 FROM manifest_refs WHERE child_id = ?1 LIMIT 1",
	/* Tags, manifest_blobs and the manifest's own manifest_refs cascade. */
	[BRT_SQL_MANIFEST_DELETE] = "DELETE FROM manifests WHERE id = ?1",
	[BRT_SQL_TAG_UPSERT] =
		"INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES (?1, ?2, ?3, ?4)"
		" ON CONFLICT (repository_id, name) DO UPDATE SET"
		" manifest_id = excluded.manifest_id, updated_at = excluded.updated_at",
	/* The tag compare-and-swaps are single statements whose row count
	 * says whether the tag was where the caller expected, so they stay
	 * right under PostgreSQL's READ COMMITTED too. */
	[BRT_SQL_TAG_INSERT_NEW] =
		"INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES (?1, ?2, ?3, ?4)"
		" ON CONFLICT (repository_id, name) DO NOTHING",
	[BRT_SQL_TAG_MOVE_FROM] =
		"UPDATE tags SET manifest_id = ?3, updated_at = ?4"
		" WHERE repository_id = ?1 AND name = ?2 AND manifest_id ="
		" (SELECT id FROM manifests WHERE repository_id = ?1 AND digest = ?5)",
	[BRT_SQL_TAGS_LIST] =
		"SELECT name FROM tags WHERE repository_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
	/* The CAST lets PostgreSQL type a parameter that is only tested for NULL. */
	[BRT_SQL_REFERRERS] =
		"SELECT m.media_type, m.digest, m.size, m.artifact_type, m.annotations"
		" FROM repositories r JOIN manifests m ON m.repository_id = r.id"
		" WHERE r.name = ?1 AND m.subject_digest = ?2"
		" AND (CAST(?3 AS TEXT) IS NULL OR m.artifact_type = ?3)"
		" ORDER BY m.digest",
	/* Four shapes so that both ends of a prefix range bound the index scan
	 * (a range with an optional end would scan to the end of the table). */
	[BRT_SQL_CATALOG_AFTER] =
		"SELECT name FROM repositories r WHERE name > ?1" CATALOG_LISTED " ORDER BY name LIMIT ?2",
	[BRT_SQL_CATALOG_AFTER_BELOW] =
		"SELECT name FROM repositories r WHERE name > ?1 AND name < ?2" CATALOG_LISTED
		" ORDER BY name LIMIT ?3",
	[BRT_SQL_CATALOG_FROM] =
		"SELECT name FROM repositories r WHERE name >= ?1" CATALOG_LISTED " ORDER BY name LIMIT ?2",
	[BRT_SQL_CATALOG_FROM_BELOW] =
		"SELECT name FROM repositories r WHERE name >= ?1 AND name < ?2" CATALOG_LISTED
		" ORDER BY name LIMIT ?3",
	[BRT_SQL_UPLOAD_INSERT] =
		"INSERT INTO uploads (id, repository_id, account_id, \"offset\", hash_state, generation,"
		" created_at, updated_at, backend_state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	/* upload_get and upload_list read the same first columns in the same
	 * order (upload_from_row); only upload_get reads the backend state,
	 * which may be large. */
	[BRT_SQL_UPLOAD_GET] =
		"SELECT u.id, r.name, u.\"offset\", u.hash_state, u.generation, u.created_at,"
		" u.updated_at, u.account_id, u.backend_state"
		" FROM uploads u JOIN repositories r ON r.id = u.repository_id"
		" WHERE u.id = ?1",
	[BRT_SQL_UPLOAD_UPDATE] =
		"UPDATE uploads SET \"offset\" = ?2, hash_state = ?3, generation = generation + 1,"
		" updated_at = ?4, backend_state = ?6 WHERE id = ?1 AND generation = ?5",
	[BRT_SQL_UPLOAD_EXISTS] = "SELECT 1 FROM uploads WHERE id = ?1",
	/* NULL generation: any (BRT_META_ANY_GENERATION does not fit BIGINT). */
	[BRT_SQL_UPLOAD_DELETE] =
		"DELETE FROM uploads WHERE id = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR generation = ?2)",
	[BRT_SQL_UPLOAD_COUNT] = "SELECT count(*) FROM uploads WHERE account_id = ?1",
	/* CROSS JOIN: SQLite keeps uploads the outer loop, on uploads_updated
	 * in order.  With statistics that say uploads is empty (ANALYZE while
	 * no upload was open), a plain JOIN walked every repository and
	 * sorted; PostgreSQL reads it as the same inner join. */
	[BRT_SQL_UPLOAD_LIST] =
		"SELECT u.id, r.name, u.\"offset\", u.hash_state, u.generation, u.created_at,"
		" u.updated_at, u.account_id FROM uploads u CROSS JOIN repositories r"
		" WHERE r.id = u.repository_id AND u.updated_at < ?1 ORDER BY u.updated_at LIMIT ?2",
	[BRT_SQL_BLOB_WALK] = "SELECT digest, size, storage_key, created_at FROM blobs ORDER BY digest",
	[BRT_SQL_MANIFEST_WALK] =
		"SELECT r.name, m.digest, m.media_type, m.payload FROM manifests m"
		" JOIN repositories r ON r.id = m.repository_id ORDER BY r.name, m.digest",
	[BRT_SQL_ACCOUNT_INSERT] = "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
	[BRT_SQL_ACCOUNT_GET] = "SELECT id, name, created_at FROM accounts WHERE id = ?1",
	[BRT_SQL_ACCOUNT_EXISTS] = "SELECT 1 FROM accounts WHERE id = ?1",
	[BRT_SQL_ACCOUNT_LIST] = "SELECT id, name, created_at FROM accounts ORDER BY id",
	[BRT_SQL_KEY_INSERT] =
		"INSERT INTO access_keys (id, account_id, secret_hash, permissions, label, created_at,"
		" expires_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	/* key_get and key_list read the same columns in the same order
	 * (key_from_row). */
	[BRT_SQL_KEY_GET] =
		"SELECT id, account_id, secret_hash, permissions, label, created_at, expires_at,"
		" revoked_at FROM access_keys WHERE id = ?1",
	[BRT_SQL_KEY_LIST] =
		"SELECT id, account_id, secret_hash, permissions, label, created_at, expires_at,"
		" revoked_at FROM access_keys WHERE account_id = ?1 ORDER BY created_at, id",
	/* COALESCE keeps the first revocation time; the row still counts as
	 * changed, so "no change" means "no such key". */
	[BRT_SQL_KEY_REVOKE] = "UPDATE access_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
	[BRT_SQL_SECRET_GET] = "SELECT value FROM server_secrets WHERE name = ?1",
	[BRT_SQL_SECRET_INSERT] =
		"INSERT INTO server_secrets (name, value, created_at) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (name) DO NOTHING",
	/* An upsert, so a settings row lost somehow comes back rather than
	 * making revocations fail. */
	[BRT_SQL_EPOCH_BUMP] =
		"INSERT INTO settings (name, value) VALUES ('key_epoch', 1)"
		" ON CONFLICT (name) DO UPDATE SET value = settings.value + 1",
	[BRT_SQL_EPOCH_GET] = "SELECT value FROM settings WHERE name = 'key_epoch'",
	/* policies.c */
	/* NULL columns are rules not set. */
	[BRT_SQL_POLICY_UPSERT] =
		"INSERT INTO policies (account_id, repository_pattern, keep_last, keep_within_ms,"
		" untagged_after_ms, protect_tags, immutable_tags, updated_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
		" ON CONFLICT (account_id, repository_pattern) DO UPDATE SET"
		" keep_last = excluded.keep_last, keep_within_ms = excluded.keep_within_ms,"
		" untagged_after_ms = excluded.untagged_after_ms, protect_tags = excluded.protect_tags,"
		" immutable_tags = excluded.immutable_tags, updated_at = excluded.updated_at",
	/* Both listings read the same columns in the same order (policy_from_row). */
	[BRT_SQL_POLICY_LIST] =
		"SELECT account_id, repository_pattern, keep_last, keep_within_ms, untagged_after_ms,"
		" protect_tags, immutable_tags, updated_at FROM policies"
		" ORDER BY account_id, repository_pattern",
	[BRT_SQL_POLICY_LIST_ACCOUNT] =
		"SELECT account_id, repository_pattern, keep_last, keep_within_ms, untagged_after_ms,"
		" protect_tags, immutable_tags, updated_at FROM policies WHERE account_id = ?1"
		" ORDER BY repository_pattern",
	[BRT_SQL_POLICY_DELETE] = "DELETE FROM policies WHERE account_id = ?1 AND repository_pattern = ?2",
	/* The tag guards' one query per write: a primary-key prefix range over
	 * an account's few policies. */
	[BRT_SQL_POLICY_IMMUTABLE] =
		"SELECT repository_pattern, immutable_tags FROM policies"
		" WHERE account_id = ?1 AND immutable_tags IS NOT NULL ORDER BY repository_pattern",
	[BRT_SQL_POLICY_MANIFEST_TAGS] = "SELECT name FROM tags WHERE manifest_id = ?1 ORDER BY name",
	/* One page of an account's repositories, on UNIQUE (account_id, name). */
	[BRT_SQL_POLICY_REPOS] =
		"SELECT id, name FROM repositories WHERE account_id = ?1 AND name > ?2 ORDER BY name LIMIT "
		"?3",
	/* The first tag past the N most recently pushed (ties: name ascending);
	 * a bounded sort of N + 1 rows over the repository's tags. */
	[BRT_SQL_POLICY_TAG_CUTOFF] =
		"SELECT updated_at, name FROM tags WHERE repository_id = ?1"
		" ORDER BY updated_at DESC, name ASC LIMIT 1 OFFSET ?2",
	/* One page of a repository's tags in primary-key order (no sort). */
	[BRT_SQL_POLICY_TAGS] =
		"SELECT name, updated_at FROM tags WHERE repository_id = ?1 AND name > ?2"
		" ORDER BY name LIMIT ?3",
	/* One page of a repository's manifests, by UNIQUE (repository_id,
	 * digest), that no tag and no index holds, created at or before ?2, and
	 * whose subject, if any, is gone from the repository. */
	[BRT_SQL_POLICY_UNTAGGED] =
		"SELECT m.id, m.digest FROM manifests m WHERE m.repository_id = ?1 AND m.digest > ?3"
		" AND m.created_at <= ?2"
		" AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)"
		" AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.child_id = m.id)"
		" AND (m.subject_digest IS NULL OR NOT EXISTS (SELECT 1 FROM manifests s"
		" WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest))"
		" ORDER BY m.digest LIMIT ?4",
	/* SQLite only: changes when another connection commits; in WAL mode
	 * answered from shared memory, without reading the database. */
	[BRT_SQL_DATA_VERSION] = "PRAGMA data_version",
};

/* Where PostgreSQL needs another text (docs/postgres-schema.md); NULL:
 * brt_sql_text's serves, with ?N read as $N.  SQLite's writers are
 * serialised, PostgreSQL's are not: write transactions are SERIALIZABLE
 * (the slots' read-check-write sequences were written for one writer),
 * and the collectors of several nodes take due queue rows that no other
 * transaction holds, rather than all queueing on the same first rows. */
const char *const brt_sql_text_pg[BRT_SQL_COUNT] = {
	[BRT_SQL_BEGIN] = "BEGIN ISOLATION LEVEL SERIALIZABLE",
	[BRT_SQL_GC_MANIFEST_DUE] =
		"SELECT manifest_id FROM gc_manifest_queue WHERE queued_at <= ?1"
		" AND (CAST(?2 AS TEXT) IS NULL OR account_id = ?2) ORDER BY queued_at LIMIT ?3"
		" FOR UPDATE SKIP LOCKED",
	[BRT_SQL_GC_LINK_DUE] =
		"SELECT repository_id, digest FROM gc_link_queue WHERE queued_at <= ?1"
		" AND (CAST(?2 AS TEXT) IS NULL OR account_id = ?2) ORDER BY queued_at LIMIT ?3"
		" FOR UPDATE SKIP LOCKED",
	[BRT_SQL_GC_BLOB_DUE] =
		"SELECT digest FROM gc_blob_queue WHERE queued_at <= ?1 ORDER BY queued_at LIMIT ?2"
		" FOR UPDATE SKIP LOCKED",
	[BRT_SQL_GC_OUTBOX_DUE] =
		"SELECT storage_key, size FROM gc_outbox WHERE not_before <= ?1 ORDER BY not_before LIMIT ?2"
		" FOR UPDATE SKIP LOCKED",
	/* No PostgreSQL equivalent; other nodes' revocations arrive by
	 * LISTEN/NOTIFY (src/meta/pg). */
	[BRT_SQL_DATA_VERSION] = "SELECT 0",
};
