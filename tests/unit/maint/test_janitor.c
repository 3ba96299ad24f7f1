/* The janitor against the real filesystem store and SQLite: expired
 * sessions go with their data, live ones and their data stay, a session a
 * request is writing is passed over however old, and upload data no
 * session owns goes once it is old enough (at start-up: whatever its age). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/error.h"
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
	brt_meta_repo_account(u.account_id, REPO);
	u.created_at = u.updated_at = updated_at;
	return u;
}

/* Store `len` bytes of data for upload `id`. */
static void put_data(brt_blobstore *bs, const char *id, size_t len)
{
	brt_blob_writer *w = NULL;
	char buf[4096];

	memset(buf, 'x', sizeof(buf));
	CHECK_EQ_INT(brt_blobstore_writer_open_at(&w, bs, id, 0), 0);
	if (!w)
		return;
	CHECK_EQ_INT(w->append(w, buf, len < sizeof(buf) ? len : sizeof(buf)), 0);
	CHECK_EQ_INT(w->sync(w), 0);
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

	CHECK_EQ_INT(bs->upload_list(bs, count_upload, &n), 0);
	return n;
}

int main(void)
{
	char dir[] = "/tmp/berth-janitor-XXXXXX", path[128], cmd[160];
	brt_meta *meta = NULL;
	brt_blobstore *bs = NULL;
	brt_janitor_stats st;
	brt_blob_writer *busy = NULL;
	brt_upload u;
	const int64_t now = 10 * 1000 * 1000, expire = 1000;
	const char *old1 = "a0000000000000000000000000000001", *old2 = "a0000000000000000000000000000002",
		   *live = "a0000000000000000000000000000003", *in_use = "a0000000000000000000000000000004",
		   *orphan = "b0000000000000000000000000000001";

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/meta.db", dir);
	CHECK_EQ_INT(brt_meta_sqlite_open(&meta, path), 0);
	CHECK_EQ_INT(brt_blobstore_fs_open(&bs, dir), 0);
	if (!meta || !bs)
		return check_exit("test_janitor");

	u = session(old1, now - 5000);
	CHECK_EQ_INT(meta->upload_create(meta, &u, 0), 0);
	put_data(bs, old1, 3000);
	u = session(old2, now - 2000); /* no data written yet */
	CHECK_EQ_INT(meta->upload_create(meta, &u, 0), 0);
	u = session(live, now - 10);
	CHECK_EQ_INT(meta->upload_create(meta, &u, 0), 0);
	put_data(bs, live, 100);
	u = session(in_use, now - 9000);
	CHECK_EQ_INT(meta->upload_create(meta, &u, 0), 0);
	put_data(bs, in_use, 100);
	put_data(bs, orphan, 500);
	CHECK_EQ_INT(uploads_on_disk(bs), 4);

	/* A request holds `in_use`: its lock is the writer's. */
	CHECK_EQ_INT(bs->writer_open(&busy, bs, in_use), 0);

	/* Orphans only when older than the cut-off: not this one yet. */
	CHECK_EQ_INT(brt_janitor_pass(&st, meta, bs, now, expire, 0), 0);
	CHECK_EQ_INT(st.sessions_expired, 2);
	CHECK_EQ_INT(st.orphans_removed, 0);
	CHECK_EQ_INT(st.in_use_skipped, 1);
	CHECK_EQ_INT(meta->upload_get(meta, &u, NULL, old1), BRT_ENOTFOUND);
	CHECK_EQ_INT(meta->upload_get(meta, &u, NULL, old2), BRT_ENOTFOUND);
	CHECK_EQ_INT(meta->upload_get(meta, &u, NULL, live), 0);
	CHECK_EQ_INT(meta->upload_get(meta, &u, NULL, in_use), 0);
	CHECK_EQ_INT(uploads_on_disk(bs), 3); /* live, in_use, orphan */

	/* At start-up (no cut-off) the orphan goes, a held one never does. */
	CHECK_EQ_INT(brt_janitor_pass(&st, meta, bs, now, expire, INT64_MAX), 0);
	CHECK_EQ_INT(st.orphans_removed, 1);
	CHECK_EQ_INT(st.sessions_expired, 0);
	CHECK_EQ_INT(uploads_on_disk(bs), 2);

	/* Released, the idle session expires with its data. */
	busy->free(busy);
	CHECK_EQ_INT(brt_janitor_pass(&st, meta, bs, now, expire, INT64_MAX), 0);
	CHECK_EQ_INT(st.sessions_expired, 1);
	CHECK_EQ_INT(meta->upload_get(meta, &u, NULL, in_use), BRT_ENOTFOUND);
	CHECK_EQ_INT(meta->upload_get(meta, &u, NULL, live), 0);
	CHECK_EQ_INT(uploads_on_disk(bs), 1);

	/* Many expired sessions: more than one batch. */
	for (int i = 0; i < 600; i++) {
		char id[33];
		snprintf(id, sizeof(id), "c%031d", i);
		u = session(id, now - 5000 - i);
		CHECK_EQ_INT(meta->upload_create(meta, &u, 0), 0);
	}
	CHECK_EQ_INT(brt_janitor_pass(&st, meta, bs, now, expire, INT64_MAX), 0);
	CHECK_EQ_INT(st.sessions_expired, 600);
	CHECK_EQ_INT(meta->upload_get(meta, &u, NULL, live), 0);

	bs->free(bs);
	meta->free(meta);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_exit("test_janitor");
}
