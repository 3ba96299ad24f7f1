/* The metadata store's front: the table of drivers, the one-time check of
 * a driver's store, store serials, the account of a repository name, and
 * the brt_meta_<slot>() wrappers callers use instead of the slots. */
#include "meta/meta.h"

#include <stddef.h>
#include <string.h>

#include "common/error.h"

/* Starts at 1 so that 0 can mean "no serial yet". */
static uint64_t last_serial;

uint64_t brt_meta_serial_next(void)
{
	return __atomic_add_fetch(&last_serial, 1, __ATOMIC_RELAXED);
}

const char *brt_meta_repo_account(char *out, const char *repo)
{
	size_t n = strcspn(repo, "/");

	if (n > BRT_ACCOUNT_ID_LEN)
		n = BRT_ACCOUNT_ID_LEN;
	memcpy(out, repo, n);
	out[n] = '\0';
	return out;
}

/* One row per driver. */
static const struct {
	const char *name;
	brt_meta_open_fn open;
} drivers[] = {
	{"sqlite", brt_meta_sqlite_open},
	{"postgres", brt_meta_pg_open},
};

#define REQUIRED(slot)                          \
	{                                       \
#slot, offsetof(brt_meta, slot) \
	}

static const struct {
	const char *name;
	size_t offset;
} required_slots[] = {
	REQUIRED(repo_exists),     REQUIRED(blob_get),
	REQUIRED(blob_link),       REQUIRED(blob_unlink),
	REQUIRED(manifest_put),    REQUIRED(manifest_get),
	REQUIRED(manifest_delete), REQUIRED(tag_delete),
	REQUIRED(tags_list),       REQUIRED(referrers_list),
	REQUIRED(catalog_list),    REQUIRED(upload_create),
	REQUIRED(upload_get),      REQUIRED(upload_update),
	REQUIRED(upload_delete),   REQUIRED(free),
	REQUIRED(account_create),  REQUIRED(account_get),
	REQUIRED(account_list),    REQUIRED(key_create),
	REQUIRED(key_get),         REQUIRED(key_list),
	REQUIRED(key_revoke),      REQUIRED(secret_get),
};

int brt_meta_validate(const brt_meta *m)
{
	const char *name = m->name ? m->name : "(unnamed)";

	if (m->version != BRT_META_VERSION)
		return brt_error_set(BRT_EINVALID,
				     "metadata driver %s speaks interface version %u, this build %d", name,
				     m->version, BRT_META_VERSION);
	for (size_t i = 0; i < sizeof(required_slots) / sizeof(required_slots[0]); i++) {
		void (*slot)(void);

		/* Every slot is a function pointer; only NULL-ness matters. */
		memcpy(&slot, (const char *)m + required_slots[i].offset, sizeof(slot));
		if (!slot)
			return brt_error_set(BRT_EINVALID, "metadata driver %s lacks the required slot %s",
					     name, required_slots[i].name);
	}
	return 0;
}

int brt_meta_open_with(brt_meta **out, brt_meta_open_fn open, const char *location)
{
	brt_meta *m = NULL;
	int error;

	*out = NULL;
	if ((error = open(&m, location)) < 0)
		return error;
	if ((error = brt_meta_validate(m)) < 0) {
		/* Free it only through a slot that exists; a driver that
		 * lacks `free` leaks rather than crashes. */
		if (m->version == BRT_META_VERSION && m->free)
			m->free(m);
		return error;
	}
	if (m->serial == 0)
		m->serial = brt_meta_serial_next();
	*out = m;
	return 0;
}

int brt_meta_open(brt_meta **out, const char *driver, const char *location)
{
	*out = NULL;
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (strcmp(drivers[i].name, driver) == 0)
			return brt_meta_open_with(out, drivers[i].open, location);
	return brt_error_set(BRT_EUNSUPPORTED, "no metadata driver called %s", driver);
}

void brt_meta_free(brt_meta *m)
{
	if (m)
		m->free(m);
}

#define OPTIONAL(slot) \
	if (!m->slot)  \
	return brt_error_set(BRT_EUNSUPPORTED, "the %s metadata driver has no " #slot, m->name)

int brt_meta_repo_exists(brt_meta *m, const char *repo)
{
	return m->repo_exists(m, repo);
}

int brt_meta_blob_get(brt_meta *m, brt_blob_info *out, brt_pool *pool, const char *repo, const char *digest)
{
	return m->blob_get(m, out, pool, repo, digest);
}

int brt_meta_account_blob_get(brt_meta *m, brt_blob_info *out, brt_pool *pool, const char *account_id,
			      const char *digest)
{
	OPTIONAL(account_blob_get);
	return m->account_blob_get(m, out, pool, account_id, digest);
}

int brt_meta_blob_link(brt_meta *m, const brt_blob_link *link)
{
	return m->blob_link(m, link);
}

int brt_meta_blob_unlink(brt_meta *m, const brt_blob_link *link)
{
	return m->blob_unlink(m, link);
}

int brt_meta_manifest_put(brt_meta *m, const brt_manifest_put *put)
{
	return m->manifest_put(m, put);
}

int brt_meta_manifest_get(brt_meta *m, brt_manifest *out, brt_pool *pool, const char *repo,
			  const char *reference, int is_digest)
{
	return m->manifest_get(m, out, pool, repo, reference, is_digest);
}

int brt_meta_manifest_delete(brt_meta *m, const char *repo, const char *digest)
{
	return m->manifest_delete(m, repo, digest);
}

int brt_meta_tag_delete(brt_meta *m, const char *repo, const char *tag)
{
	return m->tag_delete(m, repo, tag);
}

int brt_meta_tags_list(brt_meta *m, const char *repo, const char *last, size_t limit, brt_meta_name_cb cb,
		       void *payload, int *more_out)
{
	return m->tags_list(m, repo, last, limit, cb, payload, more_out);
}

int brt_meta_referrers_list(brt_meta *m, const char *repo, const char *subject, const char *artifact_type,
			    brt_meta_referrer_cb cb, void *payload)
{
	return m->referrers_list(m, repo, subject, artifact_type, cb, payload);
}

int brt_meta_catalog_list(brt_meta *m, const char *prefix, const char *last, size_t limit,
			  brt_meta_name_cb cb, void *payload, int *more_out)
{
	return m->catalog_list(m, prefix, last, limit, cb, payload, more_out);
}

int brt_meta_upload_create(brt_meta *m, const brt_upload *upload, unsigned int max_per_account)
{
	return m->upload_create(m, upload, max_per_account);
}

int brt_meta_upload_get(brt_meta *m, brt_upload *out, brt_pool *pool, const char *id)
{
	return m->upload_get(m, out, pool, id);
}

int brt_meta_upload_update(brt_meta *m, const brt_upload *upload)
{
	return m->upload_update(m, upload);
}

int brt_meta_upload_delete(brt_meta *m, const char *id, uint64_t generation)
{
	return m->upload_delete(m, id, generation);
}

int brt_meta_account_create(brt_meta *m, const brt_account *account)
{
	return m->account_create(m, account);
}

int brt_meta_account_get(brt_meta *m, brt_account *out, const char *id)
{
	return m->account_get(m, out, id);
}

int brt_meta_account_list(brt_meta *m, brt_meta_account_cb cb, void *payload)
{
	return m->account_list(m, cb, payload);
}

int brt_meta_key_create(brt_meta *m, const brt_access_key *key)
{
	return m->key_create(m, key);
}

int brt_meta_key_get(brt_meta *m, brt_access_key *out, const char *id)
{
	return m->key_get(m, out, id);
}

int brt_meta_key_list(brt_meta *m, const char *account_id, brt_meta_key_cb cb, void *payload)
{
	return m->key_list(m, account_id, cb, payload);
}

int brt_meta_key_revoke(brt_meta *m, const char *id, int64_t now)
{
	return m->key_revoke(m, id, now);
}

int brt_meta_secret_get(brt_meta *m, const char *name, unsigned char *out, size_t len)
{
	return m->secret_get(m, name, out, len);
}

int brt_meta_key_epoch(brt_meta *m, uint64_t *out)
{
	OPTIONAL(key_epoch);
	*out = m->key_epoch(m);
	return 0;
}

int brt_meta_upload_list(brt_meta *m, int64_t updated_before, size_t limit, brt_meta_upload_cb cb,
			 void *payload)
{
	OPTIONAL(upload_list);
	return m->upload_list(m, updated_before, limit, cb, payload);
}

int brt_meta_blob_walk(brt_meta *m, brt_meta_blob_cb cb, void *payload)
{
	OPTIONAL(blob_walk);
	return m->blob_walk(m, cb, payload);
}

int brt_meta_manifest_walk(brt_meta *m, brt_meta_manifest_cb cb, void *payload)
{
	OPTIONAL(manifest_walk);
	return m->manifest_walk(m, cb, payload);
}

int brt_meta_check(brt_meta *m, brt_meta_problem_cb cb, void *payload)
{
	OPTIONAL(check);
	return m->check(m, cb, payload);
}

int brt_meta_recount(brt_meta *m, unsigned long *fixed_out)
{
	*fixed_out = 0;
	OPTIONAL(recount);
	return m->recount(m, fixed_out);
}

int brt_meta_blob_mark_damaged(brt_meta *m, const char *digest, int64_t now)
{
	OPTIONAL(blob_mark_damaged);
	return m->blob_mark_damaged(m, digest, now);
}

int brt_meta_blob_touch(brt_meta *m, const char *repo, const char *digest, int64_t now)
{
	OPTIONAL(blob_touch);
	return m->blob_touch(m, repo, digest, now);
}

int brt_meta_gc_collect(brt_meta *m, const brt_gc_params *params, brt_gc_counts *out)
{
	OPTIONAL(gc_collect);
	return m->gc_collect(m, params, out);
}

int brt_meta_gc_outbox_list(brt_meta *m, int64_t now, size_t limit, brt_meta_outbox_cb cb, void *payload)
{
	OPTIONAL(gc_outbox_list);
	return m->gc_outbox_list(m, now, limit, cb, payload);
}

int brt_meta_gc_outbox_done(brt_meta *m, const char *const *storage_keys, size_t count)
{
	OPTIONAL(gc_outbox_done);
	return m->gc_outbox_done(m, storage_keys, count);
}

int brt_meta_storage_key_known(brt_meta *m, const char *storage_key, int *known_out)
{
	OPTIONAL(storage_key_known);
	return m->storage_key_known(m, storage_key, known_out);
}

int brt_meta_quota_get(brt_meta *m, brt_usage *out, const char *account_id)
{
	OPTIONAL(quota_get);
	return m->quota_get(m, out, account_id);
}

int brt_meta_usage_get(brt_meta *m, brt_usage *out, const char *account_id)
{
	OPTIONAL(usage_get);
	return m->usage_get(m, out, account_id);
}

int brt_meta_usage_list(brt_meta *m, brt_meta_usage_cb cb, void *payload)
{
	OPTIONAL(usage_list);
	return m->usage_list(m, cb, payload);
}

int brt_meta_quota_set(brt_meta *m, const char *account_id, int64_t quota_bytes)
{
	OPTIONAL(quota_set);
	return m->quota_set(m, account_id, quota_bytes);
}

int brt_meta_policy_set(brt_meta *m, const brt_policy *policy)
{
	OPTIONAL(policy_set);
	return m->policy_set(m, policy);
}

int brt_meta_policy_list(brt_meta *m, const char *account_id, brt_meta_policy_cb cb, void *payload)
{
	OPTIONAL(policy_list);
	return m->policy_list(m, account_id, cb, payload);
}

int brt_meta_policy_delete(brt_meta *m, const char *account_id, const char *repository_pattern)
{
	OPTIONAL(policy_delete);
	return m->policy_delete(m, account_id, repository_pattern);
}

int brt_meta_retention_apply(brt_meta *m, const brt_gc_params *params, brt_gc_counts *out)
{
	OPTIONAL(retention_apply);
	return m->retention_apply(m, params, out);
}
