/* The SQLite driver of the metadata store (meta.h).  Every thread gets its
 * own connection, opened lazily on first use, with all statements prepared
 * once and reused; WAL lets readers run, without any lock of ours, while
 * one writer commits, and this process's writers queue for that one write
 * lock in arrival order (see write_gate).  The schema is a versioned list of
 * migrations applied at open time, and the SQL is kept portable so that the
 * PostgreSQL driver can share it (apart from placeholders and the
 * auto-increment ids). */
#include "meta/meta.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>
#include <time.h>

#include <sqlite3.h>

#include "common/clock.h"
#include "common/dynbuf.h"
#include "common/error.h"
#include "common/random.h"

/* Acknowledged writes must survive power loss, so every commit syncs the
 * WAL.  Overridable at build time only to measure what FULL costs. */
#ifndef BRT_META_SQLITE_SYNCHRONOUS
#define BRT_META_SQLITE_SYNCHRONOUS "FULL"
#endif

/* A write that still finds the database locked after busy_timeout is tried
 * again this many times in all before the caller gets BRT_EIO. */
#define WRITE_ATTEMPTS 3

/* Schema migrations; user_version = number applied.  Only ever append.
 * BIGINT is the same as INTEGER to SQLite but 64-bit on PostgreSQL; ids are
 * "INTEGER PRIMARY KEY AUTOINCREMENT" so that, as with a PostgreSQL
 * sequence, an id is never reused after a delete (future GC queues refer to
 * rows by id).  Every index on a referencing column exists so that cascades
 * and reference checks never scan a table. */
static const char *const migrations[] = {
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
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum stmt_id {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_REPO_ID,
	STMT_REPO_INSERT,
	STMT_BLOB_GET,
	STMT_BLOB_INSERT,
	STMT_BLOB_MARK_DAMAGED,
	STMT_BLOB_EXISTS,
	STMT_LINK_INSERT,
	STMT_LINK_TOUCH,
	STMT_LINK_EXISTS,
	STMT_LINK_SIZE,
	STMT_LINK_DELETE,
	STMT_ACCOUNT_BLOB_ADD,
	STMT_ACCOUNT_BLOB_RELEASE,
	STMT_ACCOUNT_BLOB_PRUNE,
	STMT_MANIFEST_ID,
	STMT_MANIFEST_INSERT,
	STMT_MANIFEST_BLOB_INSERT,
	STMT_MANIFEST_REF_INSERT,
	STMT_MANIFEST_GET_DIGEST,
	STMT_MANIFEST_GET_TAG,
	STMT_MANIFEST_REFERENCED,
	STMT_MANIFEST_DELETE,
	STMT_TAG_UPSERT,
	STMT_TAG_INSERT_NEW,
	STMT_TAG_MOVE_FROM,
	STMT_TAG_DELETE,
	STMT_TAGS_LIST,
	STMT_REFERRERS,
	STMT_CATALOG_AFTER,
	STMT_CATALOG_AFTER_BELOW,
	STMT_CATALOG_FROM,
	STMT_CATALOG_FROM_BELOW,
	STMT_UPLOAD_INSERT,
	STMT_UPLOAD_GET,
	STMT_UPLOAD_UPDATE,
	STMT_UPLOAD_EXISTS,
	STMT_UPLOAD_DELETE,
	STMT_UPLOAD_COUNT,
	STMT_UPLOAD_LIST,
	STMT_BLOB_WALK,
	STMT_MANIFEST_WALK,
	STMT_ACCOUNT_INSERT,
	STMT_ACCOUNT_GET,
	STMT_ACCOUNT_EXISTS,
	STMT_ACCOUNT_LIST,
	STMT_KEY_INSERT,
	STMT_KEY_GET,
	STMT_KEY_LIST,
	STMT_KEY_REVOKE,
	STMT_SECRET_GET,
	STMT_SECRET_INSERT,
	STMT_EPOCH_BUMP,
	STMT_EPOCH_GET,
	STMT_DATA_VERSION,
	STMT_COUNT
};

/* A repository exists from its first upload session on, but is listed only
 * once it holds a blob or a manifest (both probes are primary-key lookups). */
#define CATALOG_HOLDS_SOMETHING                                                       \
	" AND (EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.repository_id = r.id)" \
	" OR EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id))"

/* IMMEDIATE takes the write lock up front, so a transaction never fails
 * half way for lack of it (a deferred one could get SQLITE_BUSY on its
 * first write, which no busy handler can resolve). */
static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_REPO_ID] = "SELECT id, account_id FROM repositories WHERE name = ?1",
	[STMT_REPO_INSERT] =
		"INSERT INTO repositories (account_id, name, created_at) VALUES (?1, ?2, ?3)"
		" RETURNING id",
	[STMT_BLOB_GET] =
		"SELECT b.size, b.storage_key FROM repositories r"
		" JOIN repository_blobs rb ON rb.repository_id = r.id"
		" JOIN blobs b ON b.digest = rb.digest"
		" WHERE r.name = ?1 AND rb.digest = ?2 AND b.damaged_at IS NULL",
	/* A verified commit of a damaged blob has just put a good object in
	 * place: the mark goes. */
	[STMT_BLOB_INSERT] =
		"INSERT INTO blobs (digest, size, storage_key, created_at) VALUES (?1, ?2, ?3, ?4)"
		" ON CONFLICT (digest) DO UPDATE SET damaged_at = NULL WHERE blobs.damaged_at IS NOT NULL",
	[STMT_BLOB_MARK_DAMAGED] =
		"UPDATE blobs SET damaged_at = ?2 WHERE digest = ?1 AND damaged_at IS NULL",
	[STMT_BLOB_EXISTS] = "SELECT 1 FROM blobs WHERE digest = ?1",
	/* Returns a row only when the link is new. */
	[STMT_LINK_INSERT] =
		"INSERT INTO repository_blobs (repository_id, digest, account_id, linked_at, touched_at)"
		" VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (repository_id, digest) DO NOTHING"
		" RETURNING 1",
	[STMT_LINK_TOUCH] =
		"UPDATE repository_blobs SET touched_at = ?3"
		" WHERE repository_id = ?1 AND digest = ?2 AND touched_at < ?3",
	[STMT_LINK_EXISTS] =
		"SELECT 1 FROM repository_blobs WHERE repository_id = ?1 AND digest = ?2",
	[STMT_LINK_SIZE] =
		"SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest"
		" WHERE rb.repository_id = ?1 AND rb.digest = ?2",
	[STMT_LINK_DELETE] =
		"DELETE FROM repository_blobs WHERE repository_id = ?1 AND digest = ?2",
	/* The size comes from the blob row, the one truth about the object. */
	[STMT_ACCOUNT_BLOB_ADD] =
		"INSERT INTO account_blobs (account_id, digest, size, nlinks)"
		" SELECT ?1, digest, size, 1 FROM blobs WHERE digest = ?2"
		" ON CONFLICT (account_id, digest) DO UPDATE SET nlinks = account_blobs.nlinks + 1",
	[STMT_ACCOUNT_BLOB_RELEASE] =
		"UPDATE account_blobs SET nlinks = nlinks - 1 WHERE account_id = ?1 AND digest = ?2",
	[STMT_ACCOUNT_BLOB_PRUNE] =
		"DELETE FROM account_blobs WHERE account_id = ?1 AND digest = ?2 AND nlinks <= 0",
	[STMT_MANIFEST_ID] =
		"SELECT id, size FROM manifests WHERE repository_id = ?1 AND digest = ?2",
	[STMT_MANIFEST_INSERT] =
		"INSERT INTO manifests (repository_id, account_id, digest, media_type, size, payload,"
		" subject_digest, artifact_type, annotations, created_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
	[STMT_MANIFEST_BLOB_INSERT] =
		"INSERT INTO manifest_blobs (manifest_id, repository_id, digest) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (manifest_id, digest) DO NOTHING",
	[STMT_MANIFEST_REF_INSERT] =
		"INSERT INTO manifest_refs (parent_id, child_id) VALUES (?1, ?2)"
		" ON CONFLICT (parent_id, child_id) DO NOTHING",
	[STMT_MANIFEST_GET_DIGEST] =
		"SELECT m.digest, m.media_type, m.payload FROM repositories r"
		" JOIN manifests m ON m.repository_id = r.id"
		" WHERE r.name = ?1 AND m.digest = ?2",
	[STMT_MANIFEST_GET_TAG] =
		"SELECT m.digest, m.media_type, m.payload FROM repositories r"
		" JOIN tags t ON t.repository_id = r.id"
		" JOIN manifests m ON m.id = t.manifest_id"
		" WHERE r.name = ?1 AND t.name = ?2",
	[STMT_MANIFEST_REFERENCED] = "SELECT 1 FROM manifest_refs WHERE child_id = ?1 LIMIT 1",
	/* Tags, manifest_blobs and the manifest's own manifest_refs cascade. */
	[STMT_MANIFEST_DELETE] = "DELETE FROM manifests WHERE id = ?1",
	[STMT_TAG_UPSERT] =
		"INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES (?1, ?2, ?3, ?4)"
		" ON CONFLICT (repository_id, name) DO UPDATE SET"
		" manifest_id = excluded.manifest_id, updated_at = excluded.updated_at",
	/* The tag compare-and-swaps are single statements whose row count
	 * says whether the tag was where the caller expected, so they stay
	 * right under PostgreSQL's READ COMMITTED too. */
	[STMT_TAG_INSERT_NEW] =
		"INSERT INTO tags (repository_id, name, manifest_id, updated_at) VALUES (?1, ?2, ?3, ?4)"
		" ON CONFLICT (repository_id, name) DO NOTHING",
	[STMT_TAG_MOVE_FROM] =
		"UPDATE tags SET manifest_id = ?3, updated_at = ?4"
		" WHERE repository_id = ?1 AND name = ?2 AND manifest_id ="
		" (SELECT id FROM manifests WHERE repository_id = ?1 AND digest = ?5)",
	[STMT_TAG_DELETE] =
		"DELETE FROM tags WHERE repository_id = (SELECT id FROM repositories WHERE name = ?1)"
		" AND name = ?2",
	[STMT_TAGS_LIST] =
		"SELECT name FROM tags WHERE repository_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
	/* The CAST lets PostgreSQL type a parameter that is only tested for NULL. */
	[STMT_REFERRERS] =
		"SELECT m.media_type, m.digest, m.size, m.artifact_type, m.annotations"
		" FROM repositories r JOIN manifests m ON m.repository_id = r.id"
		" WHERE r.name = ?1 AND m.subject_digest = ?2"
		" AND (CAST(?3 AS TEXT) IS NULL OR m.artifact_type = ?3)"
		" ORDER BY m.digest",
	/* Four shapes so that both ends of a prefix range bound the index scan
	 * (a range with an optional end would scan to the end of the table). */
	[STMT_CATALOG_AFTER] =
		"SELECT name FROM repositories r WHERE name > ?1" CATALOG_HOLDS_SOMETHING
		" ORDER BY name LIMIT ?2",
	[STMT_CATALOG_AFTER_BELOW] =
		"SELECT name FROM repositories r WHERE name > ?1 AND name < ?2" CATALOG_HOLDS_SOMETHING
		" ORDER BY name LIMIT ?3",
	[STMT_CATALOG_FROM] =
		"SELECT name FROM repositories r WHERE name >= ?1" CATALOG_HOLDS_SOMETHING
		" ORDER BY name LIMIT ?2",
	[STMT_CATALOG_FROM_BELOW] =
		"SELECT name FROM repositories r WHERE name >= ?1 AND name < ?2" CATALOG_HOLDS_SOMETHING
		" ORDER BY name LIMIT ?3",
	[STMT_UPLOAD_INSERT] =
		"INSERT INTO uploads (id, repository_id, account_id, \"offset\", hash_state, generation,"
		" created_at, updated_at, backend_state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	/* upload_get and upload_list read the same first columns in the same
	 * order (upload_from_row); only upload_get reads the backend state,
	 * which may be large. */
	[STMT_UPLOAD_GET] =
		"SELECT u.id, r.name, u.\"offset\", u.hash_state, u.generation, u.created_at,"
		" u.updated_at, u.account_id, u.backend_state"
		" FROM uploads u JOIN repositories r ON r.id = u.repository_id"
		" WHERE u.id = ?1",
	[STMT_UPLOAD_UPDATE] =
		"UPDATE uploads SET \"offset\" = ?2, hash_state = ?3, generation = generation + 1,"
		" updated_at = ?4, backend_state = ?6 WHERE id = ?1 AND generation = ?5",
	[STMT_UPLOAD_EXISTS] = "SELECT 1 FROM uploads WHERE id = ?1",
	/* NULL generation: any (BRT_META_ANY_GENERATION does not fit BIGINT). */
	[STMT_UPLOAD_DELETE] =
		"DELETE FROM uploads WHERE id = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR generation = ?2)",
	[STMT_UPLOAD_COUNT] = "SELECT count(*) FROM uploads WHERE account_id = ?1",
	[STMT_UPLOAD_LIST] =
		"SELECT u.id, r.name, u.\"offset\", u.hash_state, u.generation, u.created_at,"
		" u.updated_at, u.account_id FROM uploads u JOIN repositories r ON r.id = u.repository_id"
		" WHERE u.updated_at < ?1 ORDER BY u.updated_at LIMIT ?2",
	[STMT_BLOB_WALK] = "SELECT digest, size, storage_key, created_at FROM blobs ORDER BY digest",
	[STMT_MANIFEST_WALK] =
		"SELECT r.name, m.digest, m.media_type, m.payload FROM manifests m"
		" JOIN repositories r ON r.id = m.repository_id ORDER BY r.name, m.digest",
	[STMT_ACCOUNT_INSERT] = "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
	[STMT_ACCOUNT_GET] = "SELECT id, name, created_at FROM accounts WHERE id = ?1",
	[STMT_ACCOUNT_EXISTS] = "SELECT 1 FROM accounts WHERE id = ?1",
	[STMT_ACCOUNT_LIST] = "SELECT id, name, created_at FROM accounts ORDER BY id",
	[STMT_KEY_INSERT] =
		"INSERT INTO access_keys (id, account_id, secret_hash, permissions, label, created_at,"
		" expires_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	/* key_get and key_list read the same columns in the same order
	 * (key_from_row). */
	[STMT_KEY_GET] =
		"SELECT id, account_id, secret_hash, permissions, label, created_at, expires_at,"
		" revoked_at FROM access_keys WHERE id = ?1",
	[STMT_KEY_LIST] =
		"SELECT id, account_id, secret_hash, permissions, label, created_at, expires_at,"
		" revoked_at FROM access_keys WHERE account_id = ?1 ORDER BY created_at, id",
	/* COALESCE keeps the first revocation time; the row still counts as
	 * changed, so "no change" means "no such key". */
	[STMT_KEY_REVOKE] =
		"UPDATE access_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
	[STMT_SECRET_GET] = "SELECT value FROM server_secrets WHERE name = ?1",
	[STMT_SECRET_INSERT] =
		"INSERT INTO server_secrets (name, value, created_at) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (name) DO NOTHING",
	/* An upsert, so a settings row lost somehow comes back rather than
	 * making revocations fail. */
	[STMT_EPOCH_BUMP] =
		"INSERT INTO settings (name, value) VALUES ('key_epoch', 1)"
		" ON CONFLICT (name) DO UPDATE SET value = settings.value + 1",
	[STMT_EPOCH_GET] = "SELECT value FROM settings WHERE name = 'key_epoch'",
	/* SQLite only: changes when another connection commits; in WAL mode
	 * answered from shared memory, without reading the database. */
	[STMT_DATA_VERSION] = "PRAGMA data_version",
};

typedef struct sqlite_store sqlite_store;
typedef struct sqlite_conn sqlite_conn;

/* One thread's connection to one store.  It sits on two lists: its
 * thread's (walked without a lock, only by that thread) and its store's
 * (under registry_lock, so that freeing the store can close connections of
 * threads that are still alive). */
struct sqlite_conn {
	sqlite_conn *thread_next;
	sqlite_conn *store_next; /* registry_lock */
	sqlite_store *store;     /* registry_lock; NULL once the store is gone */
	uint64_t serial;         /* of the store; immutable */
	sqlite3 *db;
	int busy;                /* the last error was SQLITE_BUSY/LOCKED */
	int last_rc;             /* extended code of the last error */
	/* key_epoch's cache: the epoch row as read when PRAGMA data_version
	 * was `data_version`; epoch_known = 0 forces a read. */
	int epoch_known;
	int64_t data_version;
	uint64_t epoch;
	sqlite3_stmt *stmt[STMT_COUNT];
};

/* SQLite admits one writer at a time, and a writer that finds the lock
 * taken sleep-polls (naps of up to 100 ms) while the thread that just
 * committed takes it straight back: measured with 4 threads, two of them
 * waited over 2 s and would hit busy_timeout under sustained load.  So the
 * threads of this process queue for the write lock in arrival order; this
 * serialises nothing that SQLite does not already serialise, and readers
 * never touch it.  Other processes are still waited out by busy_timeout. */
typedef struct write_gate {
	pthread_mutex_t lock;
	pthread_cond_t turn;
	uint64_t next_ticket;
	uint64_t now_serving;
} write_gate;

struct sqlite_store {
	brt_meta base;
	char *path;
	sqlite_conn *conns; /* registry_lock */
	write_gate gate;
};

static void gate_enter(write_gate *g)
{
	uint64_t ticket;

	pthread_mutex_lock(&g->lock);
	ticket = g->next_ticket++;
	while (ticket != g->now_serving)
		pthread_cond_wait(&g->turn, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void gate_leave(write_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->now_serving++;
	pthread_cond_broadcast(&g->turn);
	pthread_mutex_unlock(&g->lock);
}

/* One process-wide key whose value is the thread's list of connections.
 * Stores are matched by their serial (brt_meta.serial), which is never
 * reused, so a store opened after another was freed never picks up a
 * stale connection (a pthread key per store could be reused by the next
 * store while threads still hold values for the old one). */
static pthread_key_t conn_key;
static pthread_once_t conn_key_once = PTHREAD_ONCE_INIT;
static int conn_key_error;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

static void conn_close(sqlite_conn *c)
{
	size_t i;

	for (i = 0; i < STMT_COUNT; i++) {
		sqlite3_finalize(c->stmt[i]);
		c->stmt[i] = NULL;
	}
	sqlite3_close_v2(c->db);
	c->db = NULL;
}

static void store_forget_conn(sqlite_store *s, sqlite_conn *c)
{
	sqlite_conn **p;

	for (p = &s->conns; *p; p = &(*p)->store_next) {
		if (*p == c) {
			*p = c->store_next;
			break;
		}
	}
}

/* Thread exit: close this thread's connections to stores still open. */
static void conn_key_destroy(void *value)
{
	sqlite_conn *c = value;

	while (c) {
		sqlite_conn *next = c->thread_next;

		pthread_mutex_lock(&registry_lock);
		if (c->store) {
			store_forget_conn(c->store, c);
			conn_close(c);
		}
		pthread_mutex_unlock(&registry_lock);
		free(c);
		c = next;
	}
}

static void conn_key_init(void)
{
	conn_key_error = pthread_key_create(&conn_key, conn_key_destroy);
}

static int db_error(sqlite_conn *c, int rc)
{
	int primary = rc & 0xff;

	c->last_rc = rc;
	c->busy = primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
	if (primary == SQLITE_NOMEM)
		return brt_error_set(BRT_ENOMEM, "sqlite: out of memory");
	return brt_error_set(BRT_EIO, "sqlite: %s", sqlite3_errmsg(c->db));
}

static int db_exec(sqlite3 *db, const char *sql)
{
	char *message = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &message);
	int error = 0;

	if (rc != SQLITE_OK)
		error = brt_error_set(BRT_EIO, "sqlite: %s", message ? message : sqlite3_errstr(rc));
	sqlite3_free(message);
	return error;
}

/* The single integer a PRAGMA query returns. */
static int db_pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int error = 0;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		error = brt_error_set(BRT_EIO, "sqlite: %s: %s", sql, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return error;
}

/* Bind parameters 1.. in order.  Types: 't' text (NULL binds NULL),
 * 'i' int64_t, 'z' int64_t where 0 binds NULL (an optional time),
 * 'u' uint64_t (must fit int64), 'b' blob as pointer and size_t (NULL
 * pointer binds NULL).  Values are borrowed until reset. */
static int stmt_bind(sqlite_conn *c, sqlite3_stmt *st, const char *types, ...)
{
	va_list ap;
	int error = 0;
	int rc = SQLITE_OK;
	int i;

	va_start(ap, types);
	for (i = 0; types[i] && rc == SQLITE_OK; i++) {
		int index = i + 1;

		switch (types[i]) {
		case 't': {
			const char *s = va_arg(ap, const char *);
			rc = s ? sqlite3_bind_text(st, index, s, -1, SQLITE_STATIC)
			       : sqlite3_bind_null(st, index);
			break;
		}
		case 'i':
			rc = sqlite3_bind_int64(st, index, va_arg(ap, int64_t));
			break;
		case 'z': {
			int64_t v = va_arg(ap, int64_t);
			rc = v ? sqlite3_bind_int64(st, index, v) : sqlite3_bind_null(st, index);
			break;
		}
		case 'u': {
			uint64_t v = va_arg(ap, uint64_t);
			if (v > INT64_MAX) {
				error = brt_error_set(BRT_ETOOBIG, "value %llu too large for the database",
						      (unsigned long long)v);
				goto done;
			}
			rc = sqlite3_bind_int64(st, index, (sqlite3_int64)v);
			break;
		}
		case 'b': {
			const void *p = va_arg(ap, const void *);
			size_t n = va_arg(ap, size_t);
			rc = p ? sqlite3_bind_blob64(st, index, p, n, SQLITE_STATIC)
			       : sqlite3_bind_null(st, index);
			break;
		}
		default:
			error = brt_error_set(BRT_EIO, "sqlite: bad bind type '%c'", types[i]);
			goto done;
		}
	}
	if (rc != SQLITE_OK)
		error = db_error(c, rc);
done:
	va_end(ap);
	return error;
}

/* One step; *row_out says whether a row is there to read. */
static int stmt_step(sqlite_conn *c, sqlite3_stmt *st, int *row_out)
{
	int rc = sqlite3_step(st);

	*row_out = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return 0;
	return db_error(c, rc);
}

/* Make a statement reusable and drop the borrowed bindings; resetting also
 * ends the statement's implicit read transaction, which would otherwise
 * hold back WAL checkpoints. */
static void stmt_end(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

static int stmt_run(sqlite_conn *c, enum stmt_id id)
{
	int row;
	int error = stmt_step(c, c->stmt[id], &row);

	stmt_end(c->stmt[id]);
	return error;
}

static int conn_open(sqlite_conn **out, const char *path, uint64_t serial)
{
	sqlite_conn *c = NULL;
	int error = 0;
	int rc;

	*out = NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return brt_error_set(BRT_ENOMEM, "out of memory");
	c->serial = serial;
	rc = sqlite3_open_v2(path, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		error = brt_error_set(BRT_EIO, "sqlite: open %s: %s", path,
				      c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		goto done;
	}
	sqlite3_extended_result_codes(c->db, 1);
	/* busy_timeout first: some pragmas read the schema, and another
	 * process may hold the lock for a moment (the last connection to close
	 * checkpoints and removes the WAL), which without it fails at once.
	 * cache_size is per connection: 512 KiB each keeps idle memory small. */
	if ((error = db_exec(c->db, "PRAGMA busy_timeout = 5000;"
				    "PRAGMA synchronous = " BRT_META_SQLITE_SYNCHRONOUS ";"
				    "PRAGMA foreign_keys = ON;"
				    "PRAGMA cache_size = -512;"
				    "PRAGMA temp_store = MEMORY;")) < 0)
		goto done;
	*out = c;
	c = NULL;
done:
	if (c) {
		sqlite3_close_v2(c->db);
		free(c);
	}
	return error;
}

static int conn_prepare(sqlite_conn *c)
{
	size_t i;

	for (i = 0; i < STMT_COUNT; i++) {
		int rc = sqlite3_prepare_v3(c->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					    &c->stmt[i], NULL);
		if (rc != SQLITE_OK)
			return brt_error_set(BRT_EIO, "sqlite: prepare \"%s\": %s", stmt_sql[i],
					     sqlite3_errmsg(c->db));
	}
	return 0;
}

/* The calling thread's connection to `m`, opened on first use. */
static int conn_get(sqlite_conn **out, brt_meta *m)
{
	sqlite_store *s = (sqlite_store *)m;
	sqlite_conn *head = pthread_getspecific(conn_key);
	sqlite_conn *c;
	int error = 0;

	for (c = head; c; c = c->thread_next) {
		if (c->serial == s->base.serial) {
			*out = c;
			return 0;
		}
	}
	if ((error = conn_open(&c, s->path, s->base.serial)) < 0)
		return error;
	if ((error = conn_prepare(c)) < 0)
		goto fail;
	c->thread_next = head;
	if (pthread_setspecific(conn_key, c) != 0) {
		error = brt_error_set(BRT_ENOMEM, "pthread_setspecific failed");
		goto fail;
	}
	pthread_mutex_lock(&registry_lock);
	c->store = s;
	c->store_next = s->conns;
	s->conns = c;
	pthread_mutex_unlock(&registry_lock);
	*out = c;
	return 0;
fail:
	conn_close(c);
	free(c);
	return error;
}

/* Run `fn` in one write transaction, again if the database stayed locked. */
static int run_write(brt_meta *m, int (*fn)(sqlite_conn *c, void *ctx), void *ctx)
{
	sqlite_conn *c;
	int error;
	int attempt;

	if ((error = conn_get(&c, m)) < 0)
		return error;
	for (attempt = 1;; attempt++) {
		c->busy = 0;
		gate_enter(&((sqlite_store *)m)->gate);
		if ((error = stmt_run(c, STMT_BEGIN)) == 0) {
			error = fn(c, ctx);
			if (error == 0)
				error = stmt_run(c, STMT_COMMIT);
			/* Some errors already rolled back; ROLLBACK then fails. */
			if (error != 0 && !sqlite3_get_autocommit(c->db)) {
				int keep_busy = c->busy;
				stmt_run(c, STMT_ROLLBACK);
				c->busy = keep_busy;
			}
		}
		gate_leave(&((sqlite_store *)m)->gate);
		if (error == 0 || !c->busy || attempt >= WRITE_ATTEMPTS)
			return error;
		{
			struct timespec pause = { 0, 10000000L * attempt };
			nanosleep(&pause, NULL);
		}
	}
}

/* The repository's id, if it exists (*found_out); with an `account`, a
 * repository of another account is BRT_EINVALID: the caller's idea of the
 * tenancy and the stored one must never drift apart (usage is counted by
 * the stored account). */
static int repo_find(sqlite_conn *c, const char *repo, const char *account, int64_t *id_out,
		     int *found_out)
{
	sqlite3_stmt *st = c->stmt[STMT_REPO_ID];
	int error;

	*found_out = 0;
	*id_out = 0;
	if ((error = stmt_bind(c, st, "t", repo)) == 0 && (error = stmt_step(c, st, found_out)) == 0 &&
	    *found_out) {
		const unsigned char *stored = sqlite3_column_text(st, 1);

		*id_out = sqlite3_column_int64(st, 0);
		if (account && (!stored || strcmp((const char *)stored, account) != 0))
			error = brt_error_set(BRT_EINVALID, "repository %s belongs to another account", repo);
	}
	stmt_end(st);
	return error;
}

static int repo_lookup(sqlite_conn *c, const char *repo, const char *account, int64_t *id_out)
{
	int found;
	int error = repo_find(c, repo, account, id_out, &found);

	if (error == 0 && !found)
		error = brt_error_set(BRT_ENOTFOUND, "repository %s unknown", repo);
	return error;
}

/* An account id handed in must be there and fit the column's meaning. */
static int account_check(const char *account)
{
	if (!account || account[0] == '\0')
		return brt_error_set(BRT_EINVALID, "no account id");
	if (strnlen(account, BRT_ACCOUNT_ID_LEN + 1) > BRT_ACCOUNT_ID_LEN)
		return brt_error_set(BRT_EINVALID, "account id too long");
	return 0;
}

/* Inside a write transaction: the repository's id, creating it for
 * `account` if needed. */
static int repo_ensure(sqlite_conn *c, const char *repo, const char *account, int64_t now,
		       int64_t *id_out)
{
	sqlite3_stmt *st = c->stmt[STMT_REPO_INSERT];
	int found;
	int error;

	if ((error = account_check(account)) < 0 ||
	    (error = repo_find(c, repo, account, id_out, &found)) < 0 || found)
		return error;
	if ((error = stmt_bind(c, st, "tti", account, repo, now)) == 0 &&
	    (error = stmt_step(c, st, &found)) == 0) {
		if (found)
			*id_out = sqlite3_column_int64(st, 0);
		else
			error = brt_error_set(BRT_EIO, "sqlite: repository insert returned no id");
	}
	stmt_end(st);
	return error;
}

/* Whether a query with the given int/text parameters returns a row. */
static int query_exists(sqlite_conn *c, enum stmt_id id, const char *types, int64_t n,
			const char *s, int *found_out)
{
	sqlite3_stmt *st = c->stmt[id];
	int error;

	*found_out = 0;
	if (types[0] == 'i')
		error = s ? stmt_bind(c, st, "it", n, s) : stmt_bind(c, st, "i", n);
	else
		error = stmt_bind(c, st, "t", s);
	if (error == 0)
		error = stmt_step(c, st, found_out);
	stmt_end(st);
	return error;
}

/* The id of manifest `digest` in the repository, and its size unless
 * `size_out` is NULL. */
static int manifest_find(sqlite_conn *c, int64_t repo_id, const char *digest, int64_t *id_out,
			 uint64_t *size_out, int *found_out)
{
	sqlite3_stmt *st = c->stmt[STMT_MANIFEST_ID];
	int error;

	*found_out = 0;
	*id_out = 0;
	if ((error = stmt_bind(c, st, "it", repo_id, digest)) == 0 &&
	    (error = stmt_step(c, st, found_out)) == 0 && *found_out) {
		*id_out = sqlite3_column_int64(st, 0);
		if (size_out)
			*size_out = (uint64_t)sqlite3_column_int64(st, 1);
	}
	stmt_end(st);
	return error;
}

/* A NOT NULL text column copied into `pool`. */
static int column_pool_text(sqlite_conn *c, sqlite3_stmt *st, int col, brt_pool *pool,
			    const char **out)
{
	const unsigned char *text = sqlite3_column_text(st, col);
	char *copy;

	if (!text) {
		if (sqlite3_errcode(c->db) == SQLITE_NOMEM)
			return brt_error_set(BRT_ENOMEM, "sqlite: out of memory");
		return brt_error_set(BRT_EIO, "sqlite: unexpected NULL in column %d", col);
	}
	if (!(copy = brt_pool_strndup(pool, (const char *)text, (size_t)sqlite3_column_bytes(st, col))))
		return brt_error_set(BRT_ENOMEM, "request pool exhausted");
	*out = copy;
	return 0;
}

/* Collected strings, handed to callbacks only after the statement is reset
 * so a callback may safely call back into the store (and so no read
 * transaction stays open while the caller writes a response).  Each string
 * is stored with its NUL and found again by its offset. */
#define NO_STRING SIZE_MAX

/* What one listing may collect in memory before it gives up. */
#define LISTING_MAX ((size_t)64 << 20)

static int strings_add(brt_dynbuf *b, const char *s, size_t n, size_t *offset_out)
{
	size_t offset = brt_dynbuf_len(b);
	int error;

	if ((error = brt_dynbuf_add(b, s, n)) < 0 || (error = brt_dynbuf_add(b, "", 1)) < 0)
		return error;
	*offset_out = offset;
	return 0;
}

/* Column `col` (may be NULL: NO_STRING) appended to `b`. */
static int strings_add_column(sqlite_conn *c, brt_dynbuf *b, sqlite3_stmt *st, int col,
				 size_t *offset_out)
{
	const unsigned char *text;

	*offset_out = NO_STRING;
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return 0;
	if (!(text = sqlite3_column_text(st, col)))
		return db_error(c, SQLITE_NOMEM);
	return strings_add(b, (const char *)text, (size_t)sqlite3_column_bytes(st, col), offset_out);
}

/* LIMIT for "at most `limit` rows, plus one to learn whether there are more". */
static int64_t limit_plus_one(size_t limit)
{
	return limit >= (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit + 1;
}

/* Read name rows (column 0) from a bound statement: at most `limit` kept;
 * a further row sets *more_out.  With a `prefix`, the first row without it
 * ends the listing. */
static int names_collect(sqlite_conn *c, sqlite3_stmt *st, size_t limit, const char *prefix,
			 brt_dynbuf *names, size_t *count_out, int *more_out)
{
	size_t prefix_len = prefix ? strlen(prefix) : 0;
	int error = 0;
	int row;

	*count_out = 0;
	*more_out = 0;
	while ((error = stmt_step(c, st, &row)) == 0 && row) {
		const unsigned char *text = sqlite3_column_text(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		size_t offset;

		if (!text) {
			error = db_error(c, SQLITE_NOMEM);
			break;
		}
		if (prefix && (n < prefix_len || memcmp(text, prefix, prefix_len) != 0))
			break;
		if (*count_out == limit) {
			*more_out = 1;
			break;
		}
		if ((error = strings_add(names, (const char *)text, n, &offset)) < 0)
			break;
		(*count_out)++;
	}
	return error;
}

static int names_emit(const brt_dynbuf *names, size_t count, brt_meta_name_cb cb, void *payload)
{
	size_t offset = 0;
	size_t i;
	int error = 0;

	for (i = 0; i < count && error == 0; i++) {
		const char *name = brt_dynbuf_ptr(names) + offset;

		offset += strlen(name) + 1;
		error = cb(name, payload);
	}
	return error;
}

static int meta_repo_exists(brt_meta *m, const char *repo)
{
	sqlite_conn *c;
	int64_t id;
	int error;

	if ((error = conn_get(&c, m)) < 0)
		return error;
	return repo_lookup(c, repo, NULL, &id);
}

static int meta_blob_get(brt_meta *m, brt_blob_info *out, brt_pool *pool, const char *repo,
			 const char *digest)
{
	sqlite_conn *c;
	sqlite3_stmt *st = NULL;
	int error;
	int row;
	int64_t size;

	if ((error = conn_get(&c, m)) < 0)
		goto done;
	st = c->stmt[STMT_BLOB_GET];
	if ((error = stmt_bind(c, st, "tt", repo, digest)) < 0 ||
	    (error = stmt_step(c, st, &row)) < 0)
		goto done;
	if (!row) {
		error = brt_error_set(BRT_ENOTFOUND, "blob %s not linked in %s", digest, repo);
		goto done;
	}
	size = sqlite3_column_int64(st, 0);
	if (size < 0) {
		error = brt_error_set(BRT_EIO, "sqlite: negative blob size");
		goto done;
	}
	if ((error = column_pool_text(c, st, 1, pool, &out->storage_key)) < 0)
		goto done;
	out->size = (uint64_t)size;
done:
	stmt_end(st);
	return error;
}

static int tx_blob_link(sqlite_conn *c, void *ctx)
{
	const brt_blob_link *a = ctx;
	sqlite3_stmt *st = NULL;
	int64_t repo_id;
	int error;
	int inserted;

	if ((error = account_check(a->account_id)) < 0)
		goto done;
	st = c->stmt[STMT_BLOB_INSERT];
	if ((error = stmt_bind(c, st, "tuti", a->digest, a->size, a->storage_key, a->now)) < 0 ||
	    (error = stmt_step(c, st, &inserted)) < 0)
		goto done;
	stmt_end(st);
	st = NULL;
	if ((error = repo_ensure(c, a->repo, a->account_id, a->now, &repo_id)) < 0)
		goto done;
	st = c->stmt[STMT_LINK_INSERT];
	if ((error = stmt_bind(c, st, "itti", repo_id, a->digest, a->account_id, a->now)) < 0 ||
	    (error = stmt_step(c, st, &inserted)) < 0)
		goto done;
	stmt_end(st);
	/* A new link counts once more towards the account's use of the blob;
	 * linking again is a sign of a manifest PUT to come: keep it fresh. */
	if (inserted) {
		st = c->stmt[STMT_ACCOUNT_BLOB_ADD];
		error = stmt_bind(c, st, "tt", a->account_id, a->digest);
	} else {
		st = c->stmt[STMT_LINK_TOUCH];
		error = stmt_bind(c, st, "iti", repo_id, a->digest, a->now);
	}
	if (error == 0)
		error = stmt_step(c, st, &inserted);
done:
	stmt_end(st);
	return error;
}

static int meta_blob_link(brt_meta *m, const brt_blob_link *link)
{
	return run_write(m, tx_blob_link, (void *)link);
}

static int tx_blob_unlink(sqlite_conn *c, void *ctx)
{
	const brt_blob_link *a = ctx;
	int64_t repo_id;
	int found;
	int error;

	if ((error = account_check(a->account_id)) < 0 ||
	    (error = repo_lookup(c, a->repo, a->account_id, &repo_id)) < 0 ||
	    (error = query_exists(c, STMT_LINK_EXISTS, "it", repo_id, a->digest, &found)) < 0)
		return error;
	if (!found)
		return brt_error_set(BRT_ENOTFOUND, "blob %s not linked in %s", a->digest, a->repo);
	/* A manifest may still list the blob: the client asked for it to go
	 * all the same (as distribution allows), and the manifest's reference
	 * rows go with the link (ON DELETE CASCADE). */
	if ((error = stmt_bind(c, c->stmt[STMT_LINK_DELETE], "it", repo_id, a->digest)) < 0 ||
	    (error = stmt_run(c, STMT_LINK_DELETE)) < 0 ||
	    (error = stmt_bind(c, c->stmt[STMT_ACCOUNT_BLOB_RELEASE], "tt", a->account_id, a->digest)) < 0 ||
	    (error = stmt_run(c, STMT_ACCOUNT_BLOB_RELEASE)) < 0 ||
	    (error = stmt_bind(c, c->stmt[STMT_ACCOUNT_BLOB_PRUNE], "tt", a->account_id, a->digest)) < 0)
		return error;
	return stmt_run(c, STMT_ACCOUNT_BLOB_PRUNE);
}

static int meta_blob_unlink(brt_meta *m, const brt_blob_link *link)
{
	return run_write(m, tx_blob_unlink, (void *)link);
}

/* Inside manifest_put's transaction: check the references of a manifest
 * new to the repository and store it with them. */
static int manifest_insert(sqlite_conn *c, const brt_manifest_put *put, int64_t repo_id,
			   const char *account, int64_t *id_out)
{
	sqlite3_stmt *st = NULL;
	int64_t manifest_id = 0;
	int found;
	int error = 0;
	size_t i;

	for (i = 0; i < put->blob_count; i++) {
		sqlite3_stmt *link = c->stmt[STMT_LINK_SIZE];
		uint64_t stored = 0;

		if ((error = stmt_bind(c, link, "it", repo_id, put->blobs[i])) == 0 &&
		    (error = stmt_step(c, link, &found)) == 0 && found)
			stored = (uint64_t)sqlite3_column_int64(link, 0);
		stmt_end(link);
		if (error < 0)
			goto done;
		if (!found) {
			error = brt_error_set(BRT_EBLOBUNKNOWN, "blob %s unknown", put->blobs[i]);
			goto done;
		}
		if (put->blob_sizes && put->blob_sizes[i] != stored) {
			error = brt_error_set(BRT_EINVALID, "blob %s is %llu bytes, the manifest says %llu",
					      put->blobs[i], (unsigned long long)stored,
					      (unsigned long long)put->blob_sizes[i]);
			goto done;
		}
	}
	st = c->stmt[STMT_MANIFEST_INSERT];
	if ((error = stmt_bind(c, st, "itttubttti", repo_id, account, put->digest, put->media_type,
			       (uint64_t)put->size, (const void *)put->payload, put->size,
			       put->subject, put->artifact_type, put->annotations, put->now)) < 0 ||
	    (error = stmt_step(c, st, &found)) < 0)
		goto done;
	if (!found) {
		error = brt_error_set(BRT_EIO, "sqlite: manifest insert returned no id");
		goto done;
	}
	manifest_id = sqlite3_column_int64(st, 0);
	stmt_end(st);
	st = NULL;
	/* ON CONFLICT DO NOTHING: a digest listed twice is stored once. */
	for (i = 0; i < put->blob_count; i++) {
		if ((error = stmt_bind(c, c->stmt[STMT_MANIFEST_BLOB_INSERT], "iit", manifest_id,
				       repo_id, put->blobs[i])) < 0 ||
		    (error = stmt_run(c, STMT_MANIFEST_BLOB_INSERT)) < 0)
			goto done;
	}
	for (i = 0; i < put->child_count; i++) {
		int64_t child_id = 0;

		uint64_t child_size = 0;

		if ((error = manifest_find(c, repo_id, put->children[i], &child_id, &child_size, &found)) < 0)
			goto done;
		if (!found) {
			error = brt_error_set(BRT_EBLOBUNKNOWN, "manifest %s unknown", put->children[i]);
			goto done;
		}
		if (put->child_sizes && put->child_sizes[i] != child_size) {
			error = brt_error_set(BRT_EINVALID, "manifest %s is %llu bytes, the index says %llu",
					      put->children[i], (unsigned long long)child_size,
					      (unsigned long long)put->child_sizes[i]);
			goto done;
		}
		if ((error = stmt_bind(c, c->stmt[STMT_MANIFEST_REF_INSERT], "ii", manifest_id,
				       child_id)) < 0 ||
		    (error = stmt_run(c, STMT_MANIFEST_REF_INSERT)) < 0)
			goto done;
	}
	*id_out = manifest_id;
done:
	stmt_end(st);
	return error;
}

/* Inside manifest_put's transaction: point the tag at the manifest, as
 * `tag_expected` allows (see meta.h). */
static int tag_set(sqlite_conn *c, const brt_manifest_put *put, int64_t repo_id, int64_t manifest_id)
{
	enum stmt_id id = !put->tag_expected ? STMT_TAG_UPSERT
			  : put->tag_expected[0] ? STMT_TAG_MOVE_FROM : STMT_TAG_INSERT_NEW;
	int error;

	if (id == STMT_TAG_MOVE_FROM)
		error = stmt_bind(c, c->stmt[id], "itiit", repo_id, put->tag, manifest_id, put->now,
				  put->tag_expected);
	else
		error = stmt_bind(c, c->stmt[id], "itii", repo_id, put->tag, manifest_id, put->now);
	if (error < 0 || (error = stmt_run(c, id)) < 0)
		return error;
	if (id != STMT_TAG_UPSERT && sqlite3_changes(c->db) == 0)
		return brt_error_set(BRT_ECONFLICT, "tag %s in %s is not %s", put->tag, put->repo,
				     put->tag_expected[0] ? put->tag_expected : "new");
	return 0;
}

/* A failure anywhere rolls back everything, including a repository this
 * call created and a manifest stored before the tag lost its race. */
static int tx_manifest_put(sqlite_conn *c, void *ctx)
{
	const brt_manifest_put *put = ctx;
	int64_t repo_id = 0;
	int64_t manifest_id = 0;
	int found;
	int error;

	if ((error = repo_ensure(c, put->repo, put->account_id, put->now, &repo_id)) < 0 ||
	    (error = manifest_find(c, repo_id, put->digest, &manifest_id, NULL, &found)) < 0)
		return error;
	/* Same digest, same bytes: the stored manifest and its references
	 * stand, only the tag moves. */
	if (!found && (error = manifest_insert(c, put, repo_id, put->account_id, &manifest_id)) < 0)
		return error;
	return put->tag ? tag_set(c, put, repo_id, manifest_id) : 0;
}

static int meta_manifest_put(brt_meta *m, const brt_manifest_put *put)
{
	if (put->tag_expected && !put->tag)
		return brt_error_set(BRT_EINVALID, "an expected tag target without a tag");
	return run_write(m, tx_manifest_put, (void *)put);
}

static int meta_manifest_get(brt_meta *m, brt_manifest *out, brt_pool *pool, const char *repo,
			     const char *reference, int is_digest)
{
	sqlite_conn *c;
	sqlite3_stmt *st = NULL;
	const void *blob;
	unsigned char *payload;
	size_t size;
	int error;
	int row;

	if ((error = conn_get(&c, m)) < 0)
		goto done;
	st = c->stmt[is_digest ? STMT_MANIFEST_GET_DIGEST : STMT_MANIFEST_GET_TAG];
	if ((error = stmt_bind(c, st, "tt", repo, reference)) < 0 ||
	    (error = stmt_step(c, st, &row)) < 0)
		goto done;
	if (!row) {
		error = brt_error_set(BRT_ENOTFOUND, "manifest %s unknown in %s", reference, repo);
		goto done;
	}
	if ((error = column_pool_text(c, st, 0, pool, &out->digest)) < 0 ||
	    (error = column_pool_text(c, st, 1, pool, &out->media_type)) < 0)
		goto done;
	blob = sqlite3_column_blob(st, 2);
	size = (size_t)sqlite3_column_bytes(st, 2);
	if (!blob && size > 0) {
		error = db_error(c, SQLITE_NOMEM);
		goto done;
	}
	if (!(payload = brt_pool_alloc(pool, size))) {
		error = brt_error_set(BRT_ENOMEM, "request pool exhausted");
		goto done;
	}
	if (size > 0)
		memcpy(payload, blob, size);
	out->payload = payload;
	out->size = size;
done:
	stmt_end(st);
	return error;
}

typedef struct manifest_delete_args {
	const char *repo;
	const char *digest;
} manifest_delete_args;

static int tx_manifest_delete(sqlite_conn *c, void *ctx)
{
	const manifest_delete_args *a = ctx;
	int64_t repo_id;
	int64_t manifest_id;
	int found;
	int error;

	if ((error = repo_lookup(c, a->repo, NULL, &repo_id)) < 0 ||
	    (error = manifest_find(c, repo_id, a->digest, &manifest_id, NULL, &found)) < 0)
		return error;
	if (!found)
		return brt_error_set(BRT_ENOTFOUND, "manifest %s unknown in %s", a->digest, a->repo);
	if ((error = query_exists(c, STMT_MANIFEST_REFERENCED, "i", manifest_id, NULL, &found)) < 0)
		return error;
	if (found)
		return brt_error_set(BRT_ECONFLICT, "manifest %s is listed by an index of %s",
				     a->digest, a->repo);
	if ((error = stmt_bind(c, c->stmt[STMT_MANIFEST_DELETE], "i", manifest_id)) < 0)
		return error;
	return stmt_run(c, STMT_MANIFEST_DELETE);
}

static int meta_manifest_delete(brt_meta *m, const char *repo, const char *digest)
{
	manifest_delete_args a = { repo, digest };

	return run_write(m, tx_manifest_delete, &a);
}

typedef struct tag_delete_args {
	const char *repo;
	const char *tag;
} tag_delete_args;

static int tx_tag_delete(sqlite_conn *c, void *ctx)
{
	const tag_delete_args *a = ctx;
	int error;

	if ((error = stmt_bind(c, c->stmt[STMT_TAG_DELETE], "tt", a->repo, a->tag)) < 0 ||
	    (error = stmt_run(c, STMT_TAG_DELETE)) < 0)
		return error;
	if (sqlite3_changes(c->db) == 0)
		return brt_error_set(BRT_ENOTFOUND, "tag %s unknown in %s", a->tag, a->repo);
	return 0;
}

static int meta_tag_delete(brt_meta *m, const char *repo, const char *tag)
{
	tag_delete_args a = { repo, tag };

	return run_write(m, tx_tag_delete, &a);
}

static int meta_tags_list(brt_meta *m, const char *repo, const char *last, size_t limit,
			  brt_meta_name_cb cb, void *payload, int *more_out)
{
	sqlite_conn *c;
	sqlite3_stmt *st = NULL;
	brt_dynbuf names;
	size_t count = 0;
	int64_t repo_id;
	int more = 0;
	int error;

	*more_out = 0;
	brt_dynbuf_init(&names, LISTING_MAX);
	if ((error = conn_get(&c, m)) < 0 || (error = repo_lookup(c, repo, NULL, &repo_id)) < 0)
		goto done;
	st = c->stmt[STMT_TAGS_LIST];
	if ((error = stmt_bind(c, st, "iti", repo_id, last ? last : "", limit_plus_one(limit))) < 0 ||
	    (error = names_collect(c, st, limit, NULL, &names, &count, &more)) < 0)
		goto done;
	stmt_end(st);
	st = NULL;
	if ((error = names_emit(&names, count, cb, payload)) != 0)
		goto done;
	*more_out = more;
done:
	stmt_end(st);
	brt_dynbuf_free(&names);
	return error;
}

typedef struct referrer_row {
	size_t media_type;
	size_t digest;
	size_t artifact_type;
	size_t annotations;
	uint64_t size;
} referrer_row;

static int meta_referrers_list(brt_meta *m, const char *repo, const char *subject,
			       const char *artifact_type, brt_meta_referrer_cb cb, void *payload)
{
	sqlite_conn *c;
	sqlite3_stmt *st = NULL;
	brt_dynbuf strings, rows;
	size_t count = 0;
	size_t i;
	int error;
	int row;

	brt_dynbuf_init(&strings, LISTING_MAX);
	brt_dynbuf_init(&rows, LISTING_MAX);
	if ((error = conn_get(&c, m)) < 0)
		goto done;
	st = c->stmt[STMT_REFERRERS];
	if ((error = stmt_bind(c, st, "ttt", repo, subject, artifact_type)) < 0)
		goto done;
	while ((error = stmt_step(c, st, &row)) == 0 && row) {
		referrer_row r;
		int64_t size = sqlite3_column_int64(st, 2);

		if (size < 0) {
			error = brt_error_set(BRT_EIO, "sqlite: negative manifest size");
			goto done;
		}
		r.size = (uint64_t)size;
		if ((error = strings_add_column(c, &strings, st, 0, &r.media_type)) < 0 ||
		    (error = strings_add_column(c, &strings, st, 1, &r.digest)) < 0 ||
		    (error = strings_add_column(c, &strings, st, 3, &r.artifact_type)) < 0 ||
		    (error = strings_add_column(c, &strings, st, 4, &r.annotations)) < 0)
			goto done;
		if (r.media_type == NO_STRING || r.digest == NO_STRING) {
			error = brt_error_set(BRT_EIO, "sqlite: unexpected NULL in manifests");
			goto done;
		}
		if ((error = brt_dynbuf_add(&rows, &r, sizeof(r))) < 0)
			goto done;
		count++;
	}
	if (error < 0)
		goto done;
	stmt_end(st);
	st = NULL;
	for (i = 0; i < count; i++) {
		const char *text = brt_dynbuf_ptr(&strings);
		referrer_row r;
		brt_referrer ref;

		memcpy(&r, brt_dynbuf_ptr(&rows) + i * sizeof(r), sizeof(r));
		ref.media_type = text + r.media_type;
		ref.digest = text + r.digest;
		ref.size = r.size;
		ref.artifact_type = r.artifact_type == NO_STRING ? NULL : text + r.artifact_type;
		ref.annotations = r.annotations == NO_STRING ? NULL : text + r.annotations;
		if ((error = cb(&ref, payload)) != 0)
			goto done;
	}
done:
	stmt_end(st);
	brt_dynbuf_free(&rows);
	brt_dynbuf_free(&strings);
	return error;
}

/* The least string above every string that starts with `prefix` (the
 * prefix with its last byte below 0xff incremented); *has_out = 0 when
 * there is none. */
static void prefix_upper(char *out, size_t out_size, const char *prefix, int *has_out)
{
	size_t n = strlen(prefix);

	while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
		n--;
	*has_out = n > 0 && n < out_size;
	if (*has_out) {
		memcpy(out, prefix, n);
		out[n - 1] = (char)((unsigned char)out[n - 1] + 1);
		out[n] = '\0';
	}
}

static int meta_catalog_list(brt_meta *m, const char *prefix, const char *last, size_t limit,
			     brt_meta_name_cb cb, void *payload, int *more_out)
{
	sqlite_conn *c;
	sqlite3_stmt *st = NULL;
	brt_dynbuf names;
	char upper[BRT_NAME_MAX + 2];
	const char *lower;
	size_t count = 0;
	int has_upper = 0;
	int inclusive = 0;
	int more = 0;
	int error;

	*more_out = 0;
	brt_dynbuf_init(&names, LISTING_MAX);
	if (prefix && prefix[0] == '\0')
		prefix = NULL;
	if (prefix && strlen(prefix) > BRT_NAME_MAX)
		return 0; /* no repository name is that long */
	if ((error = conn_get(&c, m)) < 0)
		goto done;
	/* Start at whichever is later: just after `last`, or at `prefix`. */
	lower = last ? last : "";
	if (prefix) {
		prefix_upper(upper, sizeof(upper), prefix, &has_upper);
		if (!last || strcmp(last, prefix) < 0) {
			lower = prefix;
			inclusive = 1;
		}
	}
	if (has_upper) {
		st = c->stmt[inclusive ? STMT_CATALOG_FROM_BELOW : STMT_CATALOG_AFTER_BELOW];
		error = stmt_bind(c, st, "tti", lower, upper, limit_plus_one(limit));
	} else {
		st = c->stmt[inclusive ? STMT_CATALOG_FROM : STMT_CATALOG_AFTER];
		error = stmt_bind(c, st, "ti", lower, limit_plus_one(limit));
	}
	if (error < 0 || (error = names_collect(c, st, limit, prefix, &names, &count, &more)) < 0)
		goto done;
	stmt_end(st);
	st = NULL;
	if ((error = names_emit(&names, count, cb, payload)) != 0)
		goto done;
	*more_out = more;
done:
	stmt_end(st);
	brt_dynbuf_free(&names);
	return error;
}


/* A fixed-size string field of a struct handed in must end within it;
 * ids must not be empty either. */
static int field_check(const char *s, size_t size, int is_id, const char *what)
{
	if (!memchr(s, '\0', size))
		return brt_error_set(BRT_EINVALID, "%s too long", what);
	if (is_id && s[0] == '\0')
		return brt_error_set(BRT_EINVALID, "empty %s", what);
	return 0;
}

typedef struct upload_create_args {
	const brt_upload *upload;
	unsigned int max_per_account;
} upload_create_args;

static int tx_upload_create(sqlite_conn *c, void *ctx)
{
	const upload_create_args *a = ctx;
	const brt_upload *u = a->upload;
	sqlite3_stmt *st = c->stmt[STMT_UPLOAD_COUNT];
	int64_t repo_id = 0, open_sessions = 0;
	int error, row = 0;

	if (a->max_per_account > 0) {
		/* Counted inside the write transaction: concurrent POSTs are
		 * serialised, so the cap holds exactly.  (PostgreSQL would
		 * need the account row locked, FOR UPDATE, for the same.) */
		if ((error = stmt_bind(c, st, "t", u->account_id)) == 0 && (error = stmt_step(c, st, &row)) == 0 && row)
			open_sessions = sqlite3_column_int64(st, 0);
		stmt_end(st);
		if (error < 0)
			return error;
		if (open_sessions >= (int64_t)a->max_per_account)
			return brt_error_set(BRT_ELIMIT, "the account has %lld open upload sessions, the most allowed",
					     (long long)open_sessions);
	}
	if ((error = repo_ensure(c, u->repo, u->account_id, u->created_at, &repo_id)) < 0 ||
	    (error = stmt_bind(c, c->stmt[STMT_UPLOAD_INSERT], "titubuiib", u->id, repo_id, u->account_id,
			       u->offset, u->hash_state_len ? (const void *)u->hash_state : NULL,
			       u->hash_state_len, u->generation, u->created_at, u->updated_at,
			       u->backend_state_len ? (const void *)u->backend_state : NULL,
			       u->backend_state_len)) < 0)
		return error;
	error = stmt_run(c, STMT_UPLOAD_INSERT);
	if (error < 0 && (c->last_rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
			  c->last_rc == SQLITE_CONSTRAINT_UNIQUE))
		error = brt_error_set(BRT_EEXISTS, "upload %s exists", u->id);
	return error;
}

/* The parts of an upload row that upload_create and upload_update store
 * must fit their columns and the documented caps. */
static int upload_check(const brt_upload *u)
{
	int error;

	if ((error = field_check(u->id, sizeof(u->id), 1, "upload id")) < 0 ||
	    (error = field_check(u->account_id, sizeof(u->account_id), 1, "account id")) < 0 ||
	    (error = field_check(u->repo, sizeof(u->repo), 1, "repository name")) < 0)
		return error;
	if (u->hash_state_len > sizeof(u->hash_state))
		return brt_error_set(BRT_EINVALID, "hash state too long");
	if (u->backend_state_len > BRT_UPLOAD_BACKEND_STATE_MAX)
		return brt_error_set(BRT_ETOOBIG, "upload backend state of %zu bytes, at most %zu",
				     u->backend_state_len, BRT_UPLOAD_BACKEND_STATE_MAX);
	if (u->backend_state_len && !u->backend_state)
		return brt_error_set(BRT_EINVALID, "upload backend state without data");
	return 0;
}

static int meta_upload_create(brt_meta *m, const brt_upload *upload, unsigned int max_per_account)
{
	upload_create_args args = { upload, max_per_account };
	int error;

	if ((error = upload_check(upload)) < 0)
		return error;
	return run_write(m, tx_upload_create, &args);
}

/* Copy a text column into a fixed buffer; BRT_EIO if it does not fit. */
static int column_copy_text(sqlite_conn *c, sqlite3_stmt *st, int col, char *out, size_t out_size)
{
	const unsigned char *text = sqlite3_column_text(st, col);
	size_t n = (size_t)sqlite3_column_bytes(st, col);

	if (!text)
		return sqlite3_errcode(c->db) == SQLITE_NOMEM ? db_error(c, SQLITE_NOMEM)
			: brt_error_set(BRT_EIO, "sqlite: unexpected NULL in column %d", col);
	if (n >= out_size)
		return brt_error_set(BRT_EIO, "sqlite: column %d too long", col);
	memcpy(out, text, n);
	out[n] = '\0';
	return 0;
}

/* An optional time column: NULL reads as 0 ("never"). */
static int64_t column_time(sqlite3_stmt *st, int col)
{
	return sqlite3_column_type(st, col) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, col);
}

static int tx_account_create(sqlite_conn *c, void *ctx)
{
	const brt_account *a = ctx;
	int error;

	if ((error = stmt_bind(c, c->stmt[STMT_ACCOUNT_INSERT], "tti", a->id, a->name,
			       a->created_at)) < 0)
		return error;
	error = stmt_run(c, STMT_ACCOUNT_INSERT);
	if (error < 0 && (c->last_rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
			  c->last_rc == SQLITE_CONSTRAINT_UNIQUE))
		error = brt_error_set(BRT_EEXISTS, "account %s exists", a->id);
	return error;
}

static int meta_account_create(brt_meta *m, const brt_account *account)
{
	int error;

	if ((error = field_check(account->id, sizeof(account->id), 1, "account id")) < 0 ||
	    (error = field_check(account->name, sizeof(account->name), 0, "account name")) < 0)
		return error;
	return run_write(m, tx_account_create, (void *)account);
}

/* Decodes the current row of a statement into a struct of the caller's. */
typedef int (*row_decoder)(sqlite_conn *c, sqlite3_stmt *st, void *out);

/* The one row `stmt` yields for `id`, decoded into `out` (`size` bytes)
 * through `tmp` first, so a failed read leaves `out` untouched.
 * BRT_ENOTFOUND ("<what> <id> unknown") when there is none. */
static int get_by_id(brt_meta *m, int stmt, const char *id, row_decoder decode, void *tmp, void *out,
		     size_t size, const char *what)
{
	sqlite_conn *c;
	sqlite3_stmt *st = NULL;
	int error;
	int row;

	if ((error = conn_get(&c, m)) < 0)
		goto done;
	st = c->stmt[stmt];
	if ((error = stmt_bind(c, st, "t", id)) < 0 || (error = stmt_step(c, st, &row)) < 0)
		goto done;
	if (!row) {
		error = brt_error_set(BRT_ENOTFOUND, "%s %s unknown", what, id);
		goto done;
	}
	if ((error = decode(c, st, tmp)) < 0)
		goto done;
	memcpy(out, tmp, size);
done:
	stmt_end(st);
	return error;
}

/* Every row of `stmt` (already bound, or bound to `arg` when not NULL),
 * decoded through `tmp` into an array of `size`-byte structs; then, with the statement
 * reset so the callback may use the store, `cb` for each until one
 * returns non-zero (returned unchanged). */
static int list_rows(sqlite_conn *c, int stmt, const char *arg, row_decoder decode, void *tmp, size_t size,
		     int (*cb)(const void *row, void *payload), void *payload)
{
	sqlite3_stmt *st = c->stmt[stmt];
	brt_dynbuf rows;
	size_t count = 0, i;
	int error = 0;
	int row;

	brt_dynbuf_init(&rows, LISTING_MAX);
	if (arg && (error = stmt_bind(c, st, "t", arg)) < 0)
		goto done;
	while ((error = stmt_step(c, st, &row)) == 0 && row) {
		if ((error = decode(c, st, tmp)) < 0 || (error = brt_dynbuf_add(&rows, tmp, size)) < 0)
			goto done;
		count++;
	}
	if (error < 0)
		goto done;
	stmt_end(st);
	st = NULL;
	/* The buffer is malloc'd, so aligned for any struct, and rows are
	 * whole structs apart. */
	for (i = 0; i < count; i++)
		if ((error = cb(brt_dynbuf_ptr(&rows) + i * size, payload)) != 0)
			goto done;
done:
	stmt_end(st);
	brt_dynbuf_free(&rows);
	return error;
}

/* list_rows' callback for the typed listing callbacks of meta.h. */
struct typed_cb {
	brt_meta_account_cb account;
	brt_meta_key_cb key;
	brt_meta_upload_cb upload;
	void *payload;
};

/* An upload row (the first columns of STMT_UPLOAD_GET and
 * STMT_UPLOAD_LIST) into `row`, without its backend state. */
static int upload_from_row(sqlite_conn *c, sqlite3_stmt *st, void *row)
{
	brt_upload *out = row;
	const void *state;
	size_t state_len;
	int64_t offset, generation;
	int error;

	if ((error = column_copy_text(c, st, 0, out->id, sizeof(out->id))) < 0 ||
	    (error = column_copy_text(c, st, 1, out->repo, sizeof(out->repo))) < 0 ||
	    (error = column_copy_text(c, st, 7, out->account_id, sizeof(out->account_id))) < 0)
		return error;
	offset = sqlite3_column_int64(st, 2);
	state = sqlite3_column_blob(st, 3);
	state_len = (size_t)sqlite3_column_bytes(st, 3);
	generation = sqlite3_column_int64(st, 4);
	if (offset < 0 || generation < 0 || state_len > sizeof(out->hash_state))
		return brt_error_set(BRT_EIO, "sqlite: corrupt upload row %s", out->id);
	if (state_len > 0 && !state)
		return db_error(c, SQLITE_NOMEM);
	if (state_len > 0)
		memcpy(out->hash_state, state, state_len);
	out->hash_state_len = state_len;
	out->offset = (uint64_t)offset;
	out->generation = (uint64_t)generation;
	out->created_at = sqlite3_column_int64(st, 5);
	out->updated_at = sqlite3_column_int64(st, 6);
	out->backend_state = NULL;
	out->backend_state_len = 0;
	return 0;
}

typedef struct upload_get_row {
	brt_upload upload;
	brt_pool *pool; /* NULL: leave the backend state out */
} upload_get_row;

/* upload_get's row: upload_from_row, then the backend state into the pool. */
static int upload_get_from_row(sqlite_conn *c, sqlite3_stmt *st, void *row)
{
	upload_get_row *r = row;
	const void *state;
	size_t len;
	unsigned char *copy;
	int error;

	if ((error = upload_from_row(c, st, &r->upload)) < 0 || !r->pool)
		return error;
	state = sqlite3_column_blob(st, 8);
	len = (size_t)sqlite3_column_bytes(st, 8);
	if (len == 0)
		return 0;
	if (!state)
		return db_error(c, SQLITE_NOMEM);
	if (len > BRT_UPLOAD_BACKEND_STATE_MAX)
		return brt_error_set(BRT_EIO, "sqlite: corrupt upload row %s", r->upload.id);
	if (!(copy = brt_pool_alloc(r->pool, len)))
		return brt_error_set(BRT_ENOMEM, "request pool exhausted");
	memcpy(copy, state, len);
	r->upload.backend_state = copy;
	r->upload.backend_state_len = len;
	return 0;
}

static int meta_upload_get(brt_meta *m, brt_upload *out, brt_pool *pool, const char *id)
{
	upload_get_row tmp;

	tmp.pool = pool;
	return get_by_id(m, STMT_UPLOAD_GET, id, upload_get_from_row, &tmp, out, sizeof(*out), "upload");
}

static int emit_upload(const void *row, void *ctx)
{
	const struct typed_cb *t = ctx;

	return t->upload(row, t->payload);
}

/* Rows are read first and the statement reset before the callbacks, so
 * they may write (the janitor deletes what it lists). */
static int meta_upload_list(brt_meta *m, int64_t updated_before, size_t limit, brt_meta_upload_cb cb,
			    void *payload)
{
	struct typed_cb t = { .upload = cb, .payload = payload };
	brt_upload tmp;
	sqlite_conn *c;
	int error;

	if ((error = conn_get(&c, m)) < 0)
		return error;
	if ((error = stmt_bind(c, c->stmt[STMT_UPLOAD_LIST], "ii", updated_before,
			       limit == 0 || limit > INT64_MAX ? (int64_t)-1 : (int64_t)limit)) < 0)
		return error;
	return list_rows(c, STMT_UPLOAD_LIST, NULL, upload_from_row, &tmp, sizeof(tmp), emit_upload, &t);
}

static int tx_blob_mark_damaged(sqlite_conn *c, void *ctx)
{
	const brt_blob_link *a = ctx;
	int found = 0, error;

	if ((error = stmt_bind(c, c->stmt[STMT_BLOB_MARK_DAMAGED], "ti", a->digest, a->now)) < 0 ||
	    (error = stmt_run(c, STMT_BLOB_MARK_DAMAGED)) < 0)
		return error;
	if (sqlite3_changes(c->db) > 0)
		return 0;
	if ((error = query_exists(c, STMT_BLOB_EXISTS, "t", 0, a->digest, &found)) < 0)
		return error;
	return found ? 0 : brt_error_set(BRT_ENOTFOUND, "blob %s unknown", a->digest);
}

static int meta_blob_mark_damaged(brt_meta *m, const char *digest, int64_t now)
{
	brt_blob_link args;

	memset(&args, 0, sizeof(args));
	args.digest = digest;
	args.now = now;
	return run_write(m, tx_blob_mark_damaged, &args);
}

static int meta_blob_walk(brt_meta *m, brt_meta_blob_cb cb, void *payload)
{
	sqlite_conn *c;
	sqlite3_stmt *st;
	brt_blob_row b;
	int error, row;

	if ((error = conn_get(&c, m)) < 0)
		return error;
	st = c->stmt[STMT_BLOB_WALK];
	while ((error = stmt_step(c, st, &row)) == 0 && row) {
		b.digest = (const char *)sqlite3_column_text(st, 0);
		b.size = (uint64_t)sqlite3_column_int64(st, 1);
		b.storage_key = (const char *)sqlite3_column_text(st, 2);
		b.created_at = sqlite3_column_int64(st, 3);
		if (!b.digest || !b.storage_key) {
			error = brt_error_set(BRT_EIO, "sqlite: blob row without digest or key");
			break;
		}
		if ((error = cb(&b, payload)) != 0)
			break;
	}
	stmt_end(st);
	return error;
}

static int meta_manifest_walk(brt_meta *m, brt_meta_manifest_cb cb, void *payload)
{
	sqlite_conn *c;
	sqlite3_stmt *st;
	brt_manifest mf;
	const char *repo;
	int error, row;

	if ((error = conn_get(&c, m)) < 0)
		return error;
	st = c->stmt[STMT_MANIFEST_WALK];
	while ((error = stmt_step(c, st, &row)) == 0 && row) {
		repo = (const char *)sqlite3_column_text(st, 0);
		mf.digest = (const char *)sqlite3_column_text(st, 1);
		mf.media_type = (const char *)sqlite3_column_text(st, 2);
		mf.payload = sqlite3_column_blob(st, 3);
		mf.size = (size_t)sqlite3_column_bytes(st, 3);
		if (!repo || !mf.digest || !mf.media_type) {
			error = brt_error_set(BRT_EIO, "sqlite: manifest row without repository, digest or type");
			break;
		}
		if (!mf.payload)
			mf.payload = (const unsigned char *)"";
		if ((error = cb(repo, &mf, payload)) != 0)
			break;
	}
	stmt_end(st);
	return error;
}

/* Run a checking pragma and hand every row it returns, as text, to `cb`
 * (integrity_check answers the single row "ok" when all is well). */
static int pragma_rows(sqlite_conn *c, const char *sql, const char *what, brt_meta_problem_cb cb, void *payload)
{
	sqlite3_stmt *st = NULL;
	char line[512];
	int rc, error = 0;

	if ((rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL)) != SQLITE_OK)
		return db_error(c, rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t len = 0;
		int cols = sqlite3_column_count(st);
		const unsigned char *first = sqlite3_column_text(st, 0);

		if (cols == 1 && first && strcmp((const char *)first, "ok") == 0)
			continue;
		len = (size_t)snprintf(line, sizeof(line), "%s:", what);
		for (int i = 0; i < cols && len < sizeof(line); i++) {
			const unsigned char *v = sqlite3_column_text(st, i);
			len += (size_t)snprintf(line + len, sizeof(line) - len, " %s", v ? (const char *)v : "NULL");
		}
		if ((error = cb(line, payload)) != 0)
			break;
	}
	if (error == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		error = db_error(c, rc);
	sqlite3_finalize(st);
	return error;
}

static int meta_check(brt_meta *m, brt_meta_problem_cb cb, void *payload)
{
	sqlite_conn *c;
	int error;

	if ((error = conn_get(&c, m)) < 0)
		return error;
	if ((error = pragma_rows(c, "PRAGMA integrity_check", "integrity_check", cb, payload)) != 0)
		return error;
	return pragma_rows(c, "PRAGMA foreign_key_check", "foreign_key_check", cb, payload);
}

static int tx_upload_update(sqlite_conn *c, void *ctx)
{
	const brt_upload *u = ctx;
	int found;
	int error;

	if ((error = stmt_bind(c, c->stmt[STMT_UPLOAD_UPDATE], "tubiub", u->id, u->offset,
			       u->hash_state_len ? (const void *)u->hash_state : NULL,
			       u->hash_state_len, u->updated_at, u->generation,
			       u->backend_state_len ? (const void *)u->backend_state : NULL,
			       u->backend_state_len)) < 0 ||
	    (error = stmt_run(c, STMT_UPLOAD_UPDATE)) < 0)
		return error;
	if (sqlite3_changes(c->db) > 0)
		return 0;
	if ((error = query_exists(c, STMT_UPLOAD_EXISTS, "t", 0, u->id, &found)) < 0)
		return error;
	if (found)
		return brt_error_set(BRT_ECONFLICT, "upload %s was updated concurrently", u->id);
	return brt_error_set(BRT_ENOTFOUND, "upload %s unknown", u->id);
}

static int meta_upload_update(brt_meta *m, const brt_upload *upload)
{
	int error;

	if ((error = upload_check(upload)) < 0)
		return error;
	return run_write(m, tx_upload_update, (void *)upload);
}

typedef struct upload_delete_args {
	const char *id;
	uint64_t generation;
} upload_delete_args;

static int tx_upload_delete(sqlite_conn *c, void *ctx)
{
	const upload_delete_args *a = ctx;
	int found;
	int error;

	if (a->generation == BRT_META_ANY_GENERATION)
		error = stmt_bind(c, c->stmt[STMT_UPLOAD_DELETE], "tt", a->id, (const char *)NULL);
	else
		error = stmt_bind(c, c->stmt[STMT_UPLOAD_DELETE], "tu", a->id, a->generation);
	if (error < 0 || (error = stmt_run(c, STMT_UPLOAD_DELETE)) < 0)
		return error;
	if (sqlite3_changes(c->db) > 0)
		return 0;
	if ((error = query_exists(c, STMT_UPLOAD_EXISTS, "t", 0, a->id, &found)) < 0)
		return error;
	if (found)
		return brt_error_set(BRT_ECONFLICT, "upload %s was updated concurrently", a->id);
	return brt_error_set(BRT_ENOTFOUND, "upload %s unknown", a->id);
}

static int meta_upload_delete(brt_meta *m, const char *id, uint64_t generation)
{
	upload_delete_args a = { id, generation };

	return run_write(m, tx_upload_delete, &a);
}

static int emit_account(const void *row, void *ctx)
{
	const struct typed_cb *t = ctx;

	return t->account(row, t->payload);
}

static int emit_key(const void *row, void *ctx)
{
	const struct typed_cb *t = ctx;

	return t->key(row, t->payload);
}

/* Columns id, name, created_at.  Accounts made before names were
 * required may have a NULL name: it reads as "". */
static int account_from_row(sqlite_conn *c, sqlite3_stmt *st, void *row)
{
	brt_account *out = row;
	int error;

	if ((error = column_copy_text(c, st, 0, out->id, sizeof(out->id))) < 0)
		return error;
	if (sqlite3_column_type(st, 1) == SQLITE_NULL)
		out->name[0] = '\0';
	else if ((error = column_copy_text(c, st, 1, out->name, sizeof(out->name))) < 0)
		return error;
	out->created_at = sqlite3_column_int64(st, 2);
	return 0;
}

static int meta_account_get(brt_meta *m, brt_account *out, const char *id)
{
	brt_account tmp;

	return get_by_id(m, STMT_ACCOUNT_GET, id, account_from_row, &tmp, out, sizeof(tmp), "account");
}

static int meta_account_list(brt_meta *m, brt_meta_account_cb cb, void *payload)
{
	struct typed_cb t = {.account = cb, .payload = payload};
	brt_account tmp;
	sqlite_conn *c;
	int error;

	if ((error = conn_get(&c, m)) < 0)
		return error;
	return list_rows(c, STMT_ACCOUNT_LIST, NULL, account_from_row, &tmp, sizeof(tmp), emit_account, &t);
}

/* The account is checked first, inside the transaction, so that an unknown
 * one is a clear BRT_ENOTFOUND rather than a foreign key failure. */
static int tx_key_create(sqlite_conn *c, void *ctx)
{
	const brt_access_key *k = ctx;
	int found;
	int error;

	if ((error = query_exists(c, STMT_ACCOUNT_EXISTS, "t", 0, k->account_id, &found)) < 0)
		return error;
	if (!found)
		return brt_error_set(BRT_ENOTFOUND, "account %s unknown", k->account_id);
	if ((error = stmt_bind(c, c->stmt[STMT_KEY_INSERT], "ttbitizz", k->id, k->account_id,
			       (const void *)k->secret_hash, sizeof(k->secret_hash),
			       (int64_t)k->permissions, k->label, k->created_at, k->expires_at,
			       k->revoked_at)) < 0)
		return error;
	error = stmt_run(c, STMT_KEY_INSERT);
	if (error < 0 && (c->last_rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
			  c->last_rc == SQLITE_CONSTRAINT_UNIQUE))
		error = brt_error_set(BRT_EEXISTS, "access key %s exists", k->id);
	return error;
}

static int meta_key_create(brt_meta *m, const brt_access_key *key)
{
	const unsigned int known = BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE;
	int error;

	if ((error = field_check(key->id, sizeof(key->id), 1, "access key id")) < 0 ||
	    (error = field_check(key->account_id, sizeof(key->account_id), 1, "account id")) < 0 ||
	    (error = field_check(key->label, sizeof(key->label), 0, "access key label")) < 0)
		return error;
	if (key->permissions & ~known)
		return brt_error_set(BRT_EINVALID, "unknown permission bits 0x%x",
				     key->permissions & ~known);
	return run_write(m, tx_key_create, (void *)key);
}

/* The columns of STMT_KEY_GET / STMT_KEY_LIST, copied without allocating
 * (the text and blob columns are read in their stored types). */
static int key_from_row(sqlite_conn *c, sqlite3_stmt *st, void *row)
{
	brt_access_key *out = row;
	const void *hash;
	int64_t permissions;
	int error;

	if ((error = column_copy_text(c, st, 0, out->id, sizeof(out->id))) < 0 ||
	    (error = column_copy_text(c, st, 1, out->account_id, sizeof(out->account_id))) < 0 ||
	    (error = column_copy_text(c, st, 4, out->label, sizeof(out->label))) < 0)
		return error;
	hash = sqlite3_column_blob(st, 2);
	if (sqlite3_column_bytes(st, 2) != BRT_KEY_HASH_LEN)
		return brt_error_set(BRT_EIO, "sqlite: corrupt hash of access key %s", out->id);
	if (!hash)
		return db_error(c, SQLITE_NOMEM);
	memcpy(out->secret_hash, hash, BRT_KEY_HASH_LEN);
	permissions = sqlite3_column_int64(st, 3);
	if (permissions < 0 || (uint64_t)permissions > UINT_MAX)
		return brt_error_set(BRT_EIO, "sqlite: corrupt permissions of access key %s", out->id);
	out->permissions = (unsigned int)permissions;
	out->created_at = sqlite3_column_int64(st, 5);
	out->expires_at = column_time(st, 6);
	out->revoked_at = column_time(st, 7);
	return 0;
}

/* On the path of every authenticated request: one primary key lookup on
 * this thread's prepared statement, copied straight into the caller's
 * struct (only on success, so a failed read leaves it untouched). */
static int meta_key_get(brt_meta *m, brt_access_key *out, const char *id)
{
	brt_access_key tmp;

	return get_by_id(m, STMT_KEY_GET, id, key_from_row, &tmp, out, sizeof(tmp), "access key");
}

/* BRT_ENOTFOUND for an unknown account, so that callers can tell it from an
 * account without keys. */
static int meta_key_list(brt_meta *m, const char *account_id, brt_meta_key_cb cb, void *payload)
{
	struct typed_cb t = {.key = cb, .payload = payload};
	brt_access_key tmp;
	sqlite_conn *c;
	int found;
	int error;

	if ((error = conn_get(&c, m)) < 0 ||
	    (error = query_exists(c, STMT_ACCOUNT_EXISTS, "t", 0, account_id, &found)) < 0)
		return error;
	if (!found)
		return brt_error_set(BRT_ENOTFOUND, "account %s unknown", account_id);
	return list_rows(c, STMT_KEY_LIST, account_id, key_from_row, &tmp, sizeof(tmp), emit_key, &t);
}

typedef struct key_revoke_args {
	const char *id;
	int64_t now;
} key_revoke_args;

static int tx_key_revoke(sqlite_conn *c, void *ctx)
{
	const key_revoke_args *a = ctx;
	int error;

	if ((error = stmt_bind(c, c->stmt[STMT_KEY_REVOKE], "ti", a->id, a->now)) < 0 ||
	    (error = stmt_run(c, STMT_KEY_REVOKE)) < 0)
		return error;
	if (sqlite3_changes(c->db) == 0)
		return brt_error_set(BRT_ENOTFOUND, "access key %s unknown", a->id);
	/* Same transaction: no crash can leave a revocation without its new
	 * epoch.  PRAGMA data_version does not see this connection's own
	 * commits, so its epoch cache is dropped here. */
	c->epoch_known = 0;
	return stmt_run(c, STMT_EPOCH_BUMP);
}

static int meta_key_revoke(brt_meta *m, const char *id, int64_t now)
{
	key_revoke_args a = { id, now };

	/* 0 means "not revoked" in brt_access_key. */
	if (now <= 0)
		return brt_error_set(BRT_EINVALID, "revocation time must be positive");
	return run_write(m, tx_key_revoke, &a);
}

/* The epoch row is read again only when PRAGMA data_version says another
 * connection committed since the last read: on the path of every request
 * that is one statement answered from the WAL index in shared memory, no
 * read of the database file. */
static int key_epoch_read(sqlite_conn *c, uint64_t *out)
{
	sqlite3_stmt *st = c->stmt[STMT_DATA_VERSION];
	int64_t version = 0, value = 0;
	int error, row;

	if ((error = stmt_step(c, st, &row)) == 0 && row)
		version = sqlite3_column_int64(st, 0);
	stmt_end(st);
	if (error < 0)
		return error;
	if (c->epoch_known && version == c->data_version) {
		*out = c->epoch;
		return 0;
	}
	/* Read after the version: the epoch is at least as new as it, so a
	 * commit in between costs one more read, never a stale epoch. */
	st = c->stmt[STMT_EPOCH_GET];
	if ((error = stmt_step(c, st, &row)) == 0 && row)
		value = sqlite3_column_int64(st, 0);
	stmt_end(st);
	if (error < 0)
		return error;
	c->data_version = version;
	c->epoch = (uint64_t)value;
	c->epoch_known = 1;
	*out = c->epoch;
	return 0;
}

static uint64_t meta_key_epoch(brt_meta *m)
{
	/* Epochs from the store stay far below 2^63; failures count down
	 * from the top, so none repeats and none equals a real epoch. */
	static uint64_t failures;
	sqlite_conn *c;
	uint64_t epoch;

	if (conn_get(&c, m) == 0 && key_epoch_read(c, &epoch) == 0)
		return epoch;
	return UINT64_MAX - __atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
}

/* Server secrets are small keys, never a bulk store. */
#define SECRET_MAX 4096

/* Read secret `name` into `out` if it exists (*found_out), insisting on
 * `len` bytes: another length means the caller and the store disagree on
 * what the secret is, and a truncated or padded key would be worse. */
static int secret_read(sqlite_conn *c, const char *name, unsigned char *out, size_t len,
		       int *found_out)
{
	sqlite3_stmt *st = c->stmt[STMT_SECRET_GET];
	const void *value;
	size_t n;
	int error;

	if ((error = stmt_bind(c, st, "t", name)) < 0 || (error = stmt_step(c, st, found_out)) < 0 ||
	    !*found_out)
		goto done;
	value = sqlite3_column_blob(st, 0);
	n = (size_t)sqlite3_column_bytes(st, 0);
	if (n != len) {
		error = brt_error_set(BRT_EINVALID, "server secret %s has %zu bytes, not %zu", name, n,
				      len);
		goto done;
	}
	if (!value) {
		error = db_error(c, SQLITE_NOMEM);
		goto done;
	}
	memcpy(out, value, len);
done:
	stmt_end(st);
	return error;
}

typedef struct secret_args {
	const char *name;
	unsigned char *out; /* holds the candidate value on entry */
	size_t len;
	int64_t now;
} secret_args;

/* Offer our candidate and take whatever is stored afterwards: with
 * several nodes starting at once, the first insert wins and every node
 * reads the winner. */
static int tx_secret_create(sqlite_conn *c, void *ctx)
{
	const secret_args *a = ctx;
	int found;
	int error;

	if ((error = stmt_bind(c, c->stmt[STMT_SECRET_INSERT], "tbi", a->name, (const void *)a->out,
			       a->len, a->now)) < 0 ||
	    (error = stmt_run(c, STMT_SECRET_INSERT)) < 0 ||
	    (error = secret_read(c, a->name, a->out, a->len, &found)) < 0)
		return error;
	if (!found)
		return brt_error_set(BRT_EIO, "sqlite: server secret %s vanished", a->name);
	return 0;
}

static int meta_secret_get(brt_meta *m, const char *name, unsigned char *out, size_t len)
{
	secret_args a = { name, out, len, 0 };
	sqlite_conn *c;
	int found;
	int error;

	if (len == 0 || len > SECRET_MAX)
		return brt_error_set(BRT_EINVALID, "server secret length %zu out of range", len);
	if ((error = conn_get(&c, m)) < 0 || (error = secret_read(c, name, out, len, &found)) < 0)
		return error;
	if (found)
		return 0;
	/* If a retry of the transaction runs, `out` may hold a value read by
	 * the failed attempt: still random bytes, still a fine candidate. */
	if ((error = brt_random_bytes(out, len)) < 0)
		return error;
	a.now = brt_now_ms();
	return run_write(m, tx_secret_create, &a);
}

/* Close every thread's connection: all threads are done with the store,
 * but some may live on and hold it in their lists. */
static void meta_free(brt_meta *m)
{
	sqlite_store *s = (sqlite_store *)m;
	sqlite_conn *head;
	sqlite_conn **p;
	sqlite_conn *c;

	if (!s)
		return;
	pthread_mutex_lock(&registry_lock);
	for (c = s->conns; c; c = c->store_next) {
		conn_close(c);
		c->store = NULL;
	}
	s->conns = NULL;
	/* Other threads drop their dead entries when they exit; this one
	 * (typically the one that opened the store) does it now. */
	head = pthread_getspecific(conn_key);
	for (p = &head; *p;) {
		if (!(*p)->store) {
			sqlite_conn *dead = *p;
			*p = dead->thread_next;
			free(dead);
		} else {
			p = &(*p)->thread_next;
		}
	}
	pthread_setspecific(conn_key, head);
	pthread_mutex_unlock(&registry_lock);
	pthread_cond_destroy(&s->gate.turn);
	pthread_mutex_destroy(&s->gate.lock);
	free(s->path);
	free(s);
}

/* Switch to WAL (a property of the file, set once) and bring the schema up
 * to date in one transaction, so a crash leaves the old version or the new
 * one.  BEGIN IMMEDIATE serialises processes opening the file together. */
static int schema_migrate(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	char sql[64];
	int64_t version = 0;
	int error = 0;
	int rc;
	int v;

	rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		error = brt_error_set(BRT_EIO, "sqlite: journal_mode: %s", sqlite3_errmsg(db));
		goto done;
	}
	mode = sqlite3_column_text(st, 0);
	if (!mode || strcmp((const char *)mode, "wal") != 0) {
		error = brt_error_set(BRT_EIO, "sqlite: cannot use WAL (journal mode %s)",
				      mode ? (const char *)mode : "unknown");
		goto done;
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((error = db_exec(db, "BEGIN IMMEDIATE")) < 0)
		goto done;
	if ((error = db_pragma_int(db, "PRAGMA user_version", &version)) < 0)
		goto done;
	if (version < 0 || version > SCHEMA_VERSION) {
		error = brt_error_set(BRT_EIO, "database schema version %lld is newer than %d",
				      (long long)version, SCHEMA_VERSION);
		goto done;
	}
	for (v = (int)version; v < SCHEMA_VERSION; v++) {
		if ((error = db_exec(db, migrations[v])) < 0)
			goto done;
	}
	if (version < SCHEMA_VERSION) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
		if ((error = db_exec(db, sql)) < 0)
			goto done;
	}
	error = db_exec(db, "COMMIT");
done:
	sqlite3_finalize(st);
	if (error < 0 && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return error;
}

int brt_meta_sqlite_open(brt_meta **out, const char *path)
{
	sqlite_store *s = NULL;
	sqlite_conn *c = NULL;
	int error = 0;

	*out = NULL;
	pthread_once(&conn_key_once, conn_key_init);
	if (conn_key_error)
		return brt_error_set(BRT_EIO, "pthread_key_create failed");
	if (!(s = calloc(1, sizeof(*s))))
		return brt_error_set(BRT_ENOMEM, "out of memory");
	pthread_mutex_init(&s->gate.lock, NULL);
	pthread_cond_init(&s->gate.turn, NULL);
	if (!(s->path = strdup(path))) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	s->base.version = BRT_META_VERSION;
	s->base.name = "sqlite";
	s->base.repo_exists = meta_repo_exists;
	s->base.blob_get = meta_blob_get;
	s->base.blob_link = meta_blob_link;
	s->base.blob_unlink = meta_blob_unlink;
	s->base.manifest_put = meta_manifest_put;
	s->base.manifest_get = meta_manifest_get;
	s->base.manifest_delete = meta_manifest_delete;
	s->base.tag_delete = meta_tag_delete;
	s->base.tags_list = meta_tags_list;
	s->base.referrers_list = meta_referrers_list;
	s->base.catalog_list = meta_catalog_list;
	s->base.upload_create = meta_upload_create;
	s->base.upload_get = meta_upload_get;
	s->base.upload_update = meta_upload_update;
	s->base.upload_delete = meta_upload_delete;
	s->base.upload_list = meta_upload_list;
	s->base.blob_walk = meta_blob_walk;
	s->base.manifest_walk = meta_manifest_walk;
	s->base.check = meta_check;
	s->base.blob_mark_damaged = meta_blob_mark_damaged;
	s->base.free = meta_free;
	s->base.account_create = meta_account_create;
	s->base.account_get = meta_account_get;
	s->base.account_list = meta_account_list;
	s->base.key_create = meta_key_create;
	s->base.key_get = meta_key_get;
	s->base.key_list = meta_key_list;
	s->base.key_revoke = meta_key_revoke;
	s->base.secret_get = meta_secret_get;
	s->base.key_epoch = meta_key_epoch;
	/* Migrate, and prepare every statement once so that a broken one fails
	 * here rather than on some request; the connection is then closed:
	 * threads open their own when they first need one. */
	if ((error = conn_open(&c, path, 0)) < 0 || (error = schema_migrate(c->db)) < 0 ||
	    (error = conn_prepare(c)) < 0)
		goto done;
	s->base.serial = brt_meta_serial_next();
	*out = &s->base;
	s = NULL;
done:
	if (c) {
		conn_close(c);
		free(c);
	}
	if (s) {
		pthread_cond_destroy(&s->gate.turn);
		pthread_mutex_destroy(&s->gate.lock);
		free(s->path);
		free(s);
	}
	return error;
}

/* For tests only (not part of meta.h): the calling thread's connection to
 * the store, so they can inspect its settings.  NULL on failure. */
sqlite3 *brt_meta_sqlite_handle(brt_meta *m);

sqlite3 *brt_meta_sqlite_handle(brt_meta *m)
{
	sqlite_conn *c;

	return conn_get(&c, m) < 0 ? NULL : c->db;
}
