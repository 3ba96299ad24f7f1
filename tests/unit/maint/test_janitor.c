/* The janitor against the real filesystem store and SQLite: expired
 * sessions go with their data, live ones and their data stay, upload data
 * no session owns goes
 * once it is old enough (at start-up: whatever its age, including a plain
 * file of the layout before segments), and pieces of a live session that
 * no attempt adopted are pruned while the adopted ones stay. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/error.h"
#include "common/pool.h"
#include "maint/maint.h"
#include "meta/meta.h"
#include "storage/blobstore.h"

#define REPO "0123456789abcdef0123456789abcdef/app"

static brt_upload session(const char *id, int64_t updated_at)
{
	brt_upload u;

	memset(&u, 0, sizeof(u));
	snprintf(u.id, sizeof(u.id), "%s", id);
	snprintf(u.repo, sizeof(u.repo), "%s", REPO);
	memcpy(u.account_id, REPO, 32);
	u.account_id[32] = '\0';
	u.created_at = u.updated_at = updated_at;
	return u;
}

/* Store `len` bytes for upload `id` as one attempt; with `u`, adopt it
 * into the session row (offset and backend state). */
static void put_data(brt_meta *meta, brt_blobstore *bs, const char *id, size_t len, brt_upload *u)
{
	brt_blob_writer *w = NULL;
	const unsigned char *state = NULL;
	size_t state_len = 0;
	char buf[4096];

	memset(buf, 'x', sizeof(buf));
	CHECK_EQ_INT(bs->writer_open(&w, bs, id, 0, NULL, 0), 0);
	if (!w)
		return;
	CHECK_EQ_INT(w->append(w, buf, len < sizeof(buf) ? len : sizeof(buf)), 0);
	CHECK_EQ_INT(w->sync(w, &state, &state_len), 0);
	if (u) {
		u->offset = w->size;
		u->backend_state = state;
		u->backend_state_len = state_len;
		CHECK_EQ_INT(brt_meta_upload_update(meta, u), 0);
		u->generation++;
		u->backend_state = NULL;
		u->backend_state_len = 0;
		w->adopt(w);
	} else {
		/* Data no session will adopt, left as a kill -9 leaves it. */
		w->adopt(w);
	}
	w->free(w);
}

static int count_upload(const char *id, uint64_t size, int64_t mtime_ms, void *payload)
{
	(void)id;
	(void)size;
	(void)mtime_ms;
	(*(int *)payload)++;
	return 0;
}

static int uploads_on_disk(brt_blobstore *bs)
{
	int n = 0;

	CHECK_EQ_INT(brt_blobstore_upload_list(bs, count_upload, &n), 0);
	return n;
}

int main(void)
{
	char dir[] = "/tmp/berth-janitor-XXXXXX", path[192], cmd[160];
	brt_meta *meta = NULL;
	brt_blobstore *bs = NULL;
	brt_janitor_stats st;
	brt_blob_writer *abandoned = NULL;
	brt_upload u, live_row;
	const int64_t now = 10 * 1000 * 1000, expire = 1000;
	const char *old1 = "a0000000000000000000000000000001", *old2 = "a0000000000000000000000000000002",
		   *live = "a0000000000000000000000000000003", *old3 = "a0000000000000000000000000000004",
		   *orphan = "b0000000000000000000000000000001", *legacy = "b0000000000000000000000000000002";
	int fd;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/meta.db", dir);
	CHECK_EQ_INT(brt_meta_sqlite_open(&meta, path), 0);
	CHECK_EQ_INT(brt_blobstore_open(&bs, "filesystem", dir), 0);
	if (!meta || !bs)
		return check_exit("test_janitor");

	u = session(old1, now - 5000);
	CHECK_EQ_INT(brt_meta_upload_create(meta, &u, 0), 0);
	put_data(meta, bs, old1, 3000, &u);
	u = session(old2, now - 2000); /* no data written yet */
	CHECK_EQ_INT(brt_meta_upload_create(meta, &u, 0), 0);
	live_row = session(live, now - 10);
	CHECK_EQ_INT(brt_meta_upload_create(meta, &live_row, 0), 0);
	put_data(meta, bs, live, 100, &live_row);
	u = session(old3, now - 9000);
	CHECK_EQ_INT(brt_meta_upload_create(meta, &u, 0), 0);
	put_data(meta, bs, old3, 100, &u);
	put_data(meta, bs, orphan, 500, NULL);
	/* A plain file of the layout before segments. */
	snprintf(path, sizeof(path), "%s/uploads/%s", dir, legacy);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, "old", 3) == 3);
	if (fd >= 0)
		close(fd);
	/* An attempt on the live session killed after it synced. */
	{
		brt_pool pool;
		const unsigned char *state;
		size_t len;
		brt_pool_init(&pool, 1 << 20);
		CHECK_EQ_INT(brt_meta_upload_get(meta, &u, &pool, live), 0);
		CHECK_EQ_INT(bs->writer_open(&abandoned, bs, live, u.offset, u.backend_state,
					     u.backend_state_len),
			     0);
		if (abandoned) {
			CHECK_EQ_INT(abandoned->append(abandoned, "abandoned", 9), 0);
			CHECK_EQ_INT(abandoned->sync(abandoned, &state, &len), 0);
			abandoned->adopt(abandoned); /* so that free leaves it, as a crash does */
			abandoned->free(abandoned);
		}
		brt_pool_clear(&pool);
	}
	CHECK_EQ_INT(uploads_on_disk(bs), 5);

	/* Orphans only when older than the cut-off: not these yet. */
	CHECK_EQ_INT(brt_janitor_pass(&st, meta, bs, now, expire, 0), 0);
	CHECK_EQ_INT(st.sessions_expired, 3);
	CHECK_EQ_INT(st.orphans_removed, 0);
	CHECK_EQ_INT(st.pieces_pruned, 0);
	CHECK_EQ_INT(brt_meta_upload_get(meta, &u, NULL, old1), BRT_ENOTFOUND);
	CHECK_EQ_INT(brt_meta_upload_get(meta, &u, NULL, old2), BRT_ENOTFOUND);
	CHECK_EQ_INT(brt_meta_upload_get(meta, &u, NULL, old3), BRT_ENOTFOUND);
	CHECK_EQ_INT(brt_meta_upload_get(meta, &u, NULL, live), 0);
	CHECK_EQ_INT(uploads_on_disk(bs), 3); /* live, orphan, legacy */

	/* At start-up (no cut-off) the orphans go, and the live session
	 * loses the piece no attempt adopted but keeps its own. */
	CHECK_EQ_INT(brt_janitor_pass(&st, meta, bs, now, expire, INT64_MAX), 0);
	CHECK_EQ_INT(st.orphans_removed, 2);
	CHECK_EQ_INT(st.pieces_pruned, 1);
	CHECK_EQ_INT(st.sessions_expired, 0);
	CHECK_EQ_INT(uploads_on_disk(bs), 1);
	{
		brt_pool pool;
		brt_pool_init(&pool, 1 << 20);
		CHECK_EQ_INT(brt_meta_upload_get(meta, &u, &pool, live), 0);
		CHECK_EQ_INT(bs->commit(bs, live, u.backend_state, u.backend_state_len, u.offset,
					"test/live"),
			     0);
		CHECK_EQ_INT(bs->stat(bs, "test/live", &(uint64_t){0}), 0);
		brt_pool_clear(&pool);
	}

	/* Many expired sessions: more than one batch. */
	for (int i = 0; i < 600; i++) {
		char id[33];
		snprintf(id, sizeof(id), "c%031d", i);
		u = session(id, now - 5000 - i);
		CHECK_EQ_INT(brt_meta_upload_create(meta, &u, 0), 0);
	}
	CHECK_EQ_INT(brt_janitor_pass(&st, meta, bs, now, expire, INT64_MAX), 0);
	CHECK_EQ_INT(st.sessions_expired, 600);
	CHECK_EQ_INT(brt_meta_upload_get(meta, &u, NULL, live), 0);

	bs->free(bs);
	meta->free(meta);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_exit("test_janitor");
}
