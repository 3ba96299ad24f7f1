/* Blob uploads: POST (start, monolithic with ?digest=, cross-repository
 * mount), PATCH (chunked or streamed), PUT (finish), GET (status) and
 * DELETE (cancel).  The session is a metadata row holding the acknowledged
 * offset, the saved hash state and the blob store's backend state, so any
 * request, process or node can continue it.  Nothing is locked: a PATCH
 * writes an attempt of its own and makes it part of the upload with a
 * compare-and-swap on the row's generation; a closing PUT claims the
 * session by deleting the row the same way before it publishes.  A request
 * that loses drops what it wrote and answers 416 with the Range the row
 * holds now. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "api/query.h"
#include "common/log.h"
#include "auth/auth.h"
#include "common/random.h"
#include "oci/range.h"

static int upload_id_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i]; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return i == BRT_UPLOAD_ID_LEN;
}

static char *upload_location(brt_api_request *req, const char *id)
{
	return brt_pool_printf(req->pool, "/v2/%s/blobs/uploads/%s", req->repo, id);
}

static void add_range(struct MHD_Response *resp, uint64_t offset)
{
	char range[48];

	snprintf(range, sizeof(range), "0-%llu", (unsigned long long)(offset ? offset - 1 : 0));
	MHD_add_response_header(resp, "Range", range);
}

/* 202 with where the session stands. */
static void send_session(brt_api_request *req, const char *id, uint64_t offset, unsigned int status)
{
	struct MHD_Response *resp = api_response_empty();
	const char *location = upload_location(req, id);

	if (resp && location) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
		add_range(resp, offset);
		MHD_add_response_header(resp, "Docker-Upload-UUID", id);
		/* A store that uploads in parts of a fixed size (S3) takes
		 * chunks of at least that size best: fewer, full parts. */
		if (req->api->blobs->chunk_min) {
			char min[24];
			snprintf(min, sizeof(min), "%llu", (unsigned long long)req->api->blobs->chunk_min);
			MHD_add_response_header(resp, "OCI-Chunk-Min-Length", min);
		}
	}
	api_send(req, status, resp, 0);
}

/* 201 for a blob now linked into the repository. */
static void send_created(brt_api_request *req, const brt_digest *digest)
{
	struct MHD_Response *resp = api_response_empty();
	const char *location = brt_pool_printf(req->pool, "/v2/%s/blobs/%s", req->repo, digest->str);

	if (resp && location) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
		MHD_add_response_header(resp, "Docker-Content-Digest", digest->str);
	}
	api_send(req, 201, resp, 0);
}

static int load_session(brt_api_request *req)
{
	int error;

	if (!upload_id_valid(req->reference))
		return brt_error_set(BRT_ENOTFOUND, "no such upload");
	req->session = brt_pool_alloc(req->pool, sizeof(*req->session));
	if (!req->session)
		return brt_error_set(BRT_ENOMEM, "out of request memory");
	error = brt_meta_upload_get(req->api->meta, req->session, req->pool, req->reference);
	if (error == 0 && strcmp(req->session->repo, req->repo) != 0)
		error = brt_error_set(BRT_ENOTFOUND, "upload belongs to another repository");
	if (error < 0)
		req->session = NULL;
	return error;
}

/* The error for an upload's data that cannot be opened. */
static int open_error(int error)
{
	if (error == BRT_ERANGE || error == BRT_EINVALID)
		return brt_error_set(BRT_EINVALID, "upload data is incomplete");
	return error;
}

/* A request that lost the session to another one: 416 with the Range the
 * row holds now (the error table adds it from req->session), or 404 if the
 * session is gone. */
static int raced(brt_api_request *req)
{
	brt_upload now;
	int error = brt_meta_upload_get(req->api->meta, &now, NULL, req->session->id);

	if (error < 0)
		return error;
	req->session->offset = now.offset;
	return brt_error_set(BRT_ERANGE, "the upload was changed by another request");
}

/* 0 if a chunk announced at `start` (has_range) continues req->session,
 * else BRT_ERANGE (416). */
static int chunk_fits(brt_api_request *req, int has_range, uint64_t start)
{
	if (!has_range || start == req->session->offset)
		return 0;
	return brt_error_set(BRT_ERANGE, "chunk starts at %llu but the upload has %llu bytes",
			     (unsigned long long)start, (unsigned long long)req->session->offset);
}

/* The body goes into req->upload now: a long transfer. */
static void take_body(brt_api_request *req)
{
	const char *length = api_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	int64_t expected = 0;

	/* Framing was checked: a Content-Length is plain digits. */
	if (length)
		expected = (int64_t)strtoull(length, NULL, 10);
	else if (brt_http_has_body(req->http))
		expected = -1; /* chunked: unknown */
	brt_blob_upload_expect(req->upload, expected);
	brt_http_stream(req->http);
}

/* A new upload with no session row (monolithic POST). */
static int open_fresh_upload(brt_api_request *req, const char *id, brt_digest_alg alg)
{
	int error = brt_blob_upload_open(&req->upload, req->api->blobs, id, req->api->config->blob_max, alg,
					 NULL);

	if (error < 0)
		return open_error(error);
	take_body(req);
	return 0;
}

/* Open an attempt that continues the session in req->session at what it
 * acknowledged.  It writes only data of its own, so the row read once,
 * without a lock, is all it needs: a request that moved the session on
 * meanwhile makes this one lose its compare-and-swap at the end. */
static int open_session_upload(brt_api_request *req)
{
	brt_upload *s = req->session;
	brt_upload_point at = {s->offset, s->hash_state, s->hash_state_len, s->backend_state,
			       s->backend_state_len};
	int error = brt_blob_upload_open(&req->upload, req->api->blobs, s->id, req->api->config->blob_max,
					 BRT_DIGEST_SHA256, &at);

	if (error == BRT_ENOTFOUND || error == BRT_EINVALID) {
		/* Data the row names is gone (a lost disk), or a row that does
		 * not fit its data (one from before segments): the session
		 * cannot go on.  End it, so the client starts over. */
		brt_log_warn("upload %s in %s: %s; ending the session", s->id, req->repo, brt_error_last());
		if (brt_meta_upload_delete(req->api->meta, s->id, s->generation) == 0)
			brt_blob_upload_discard(req->api->blobs, s->id, s->backend_state,
						s->backend_state_len);
		return brt_error_set(BRT_ENOTFOUND, "the upload's data is gone; start a new upload");
	}
	if (error < 0)
		return open_error(error);
	take_body(req);
	return 0;
}

/* Refuse early an upload that cannot fit the account's quota: `need`
 * bytes more than it holds (0: any new upload, once the account is at
 * its limit).  The authoritative check is the link's. */
static int quota_early(brt_api_request *req, uint64_t need)
{
	brt_usage u;
	int error = brt_meta_quota_get(req->api->meta, &u, req->account);

	if (error == BRT_ENOTFOUND || error == BRT_EUNSUPPORTED)
		return 0;
	if (error < 0 || !u.has_quota)
		return error;
	if (need == 0 ? u.bytes < u.quota_bytes : u.bytes <= u.quota_bytes && need <= u.quota_bytes - u.bytes)
		return 0;
	return brt_error_set(BRT_EQUOTA,
			     "quota exceeded for account %s: limit %llu bytes, used %llu bytes, %llu more "
			     "needed",
			     req->account, (unsigned long long)u.quota_bytes, (unsigned long long)u.bytes,
			     (unsigned long long)(need ? need : 1));
}

int api_upload_post_begin(brt_api_request *req)
{
	brt_upload_query q;
	const char *length;
	char *id;
	int error;

	/* Every malformed parameter is a 400 DIGEST_INVALID. */
	if (brt_query_upload_post(&q, api_query(req, "digest"), api_query(req, "mount"),
				  api_query(req, "from")) < 0)
		return BRT_EDIGEST;
	req->digest = q.digest;
	req->mount = q.kind == BRT_UPLOAD_START_MOUNT;
	req->mount_from = q.from;
	/* A session or a mount is decided in api_upload_post_end, once any
	 * body is gone. */
	if (q.kind == BRT_UPLOAD_START_SESSION && (error = quota_early(req, 0)) < 0)
		return error;
	if (q.kind != BRT_UPLOAD_START_MONOLITHIC)
		return 0;
	length = api_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if ((error = quota_early(req, length ? strtoull(length, NULL, 10) : 0)) < 0)
		return error;
	/* Monolithic upload: the data goes to a fresh upload id with no
	 * session row; nothing is visible unless the digest matches. */
	id = brt_pool_alloc(req->pool, BRT_UPLOAD_ID_LEN + 1);
	if (!id)
		return brt_error_set(BRT_ENOMEM, "out of request memory");
	if ((error = brt_random_hex(id, BRT_UPLOAD_ID_LEN)) < 0)
		return error;
	req->monolithic = 1;
	req->reference = id;
	return open_fresh_upload(req, id, req->digest.alg);
}

/* The chunk a PATCH or PUT announces with Content-Range, if any: 1 with
 * its bounds, 0 without one; BRT_EINVALID if malformed, BRT_ERANGE if
 * Content-Length disagrees with it. */
static int chunk_range(brt_api_request *req, uint64_t *start_out, uint64_t *end_out)
{
	const char *content_range = api_header(req, MHD_HTTP_HEADER_CONTENT_RANGE);
	const char *content_length = api_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;
	unsigned long long length;

	if (!content_range)
		return 0;
	if (brt_parse_content_range(start_out, end_out, content_range) < 0)
		return brt_error_set(BRT_EINVALID, "malformed Content-Range");
	if (content_length) {
		length = strtoull(content_length, &end, 10);
		if (*end != '\0' || length != *end_out - *start_out + 1)
			return brt_error_set(BRT_ERANGE,
					     "Content-Range %llu-%llu announces %llu bytes but "
					     "Content-Length is %s",
					     (unsigned long long)*start_out, (unsigned long long)*end_out,
					     (unsigned long long)(*end_out - *start_out + 1), content_length);
	}
	return 1;
}

int api_upload_data_begin(brt_api_request *req)
{
	uint64_t start = 0, end = 0;
	int has_range, error;

	/* A malformed ?digest= is a 400 DIGEST_INVALID. */
	if (req->http->method == BRT_PUT && brt_query_upload_put(&req->digest, api_query(req, "digest")) < 0)
		return BRT_EDIGEST;
	if ((has_range = chunk_range(req, &start, &end)) < 0)
		return has_range;
	/* A cheap 404 or 416 that touches no storage; the compare-and-swap
	 * at the end decides whether the chunk still fits. */
	if ((error = load_session(req)) < 0 || (error = chunk_fits(req, has_range, start)) < 0)
		return error;
	return open_session_upload(req);
}

/* With a Content-Range, exactly the announced bytes must have arrived;
 * otherwise nothing of the chunk is acknowledged (416). */
static int check_chunk_complete(brt_api_request *req)
{
	uint64_t start = 0, end = 0, received;
	int has_range = chunk_range(req, &start, &end);

	if (has_range <= 0)
		return has_range;
	received = brt_blob_upload_size(req->upload) - req->session->offset;
	if (received != end - start + 1)
		return brt_error_set(BRT_ERANGE,
				     "Content-Range %llu-%llu announces %llu bytes but the body had %llu",
				     (unsigned long long)start, (unsigned long long)end,
				     (unsigned long long)(end - start + 1), (unsigned long long)received);
	return 0;
}

int api_upload_body(brt_api_request *req, const char *data, size_t len)
{
	int error;

	/* A POST that opens a session takes no body: it is dropped. */
	if (!req->upload) {
		brt_http_discard_body(req->http);
		return 0;
	}
	if ((error = brt_blob_upload_write(req->upload, data, len)) < 0) {
		api_fail(req, error);
		/* Give back the space of the failed attempt (dropped when
		 * freed) now, not after the rest of the body has been read and
		 * dropped: on a full disk every other upload is waiting for it. */
		api_upload_cleanup(req);
	}
	return error;
}

/* Make the attempt durable and its state ready for the row (in
 * req->session for a session; nowhere for a monolithic upload). */
static int save_attempt(brt_api_request *req, const unsigned char **backend_out, size_t *backend_len_out)
{
	unsigned char scratch[BRT_HASHER_STATE_MAX];
	size_t scratch_len;
	brt_upload *s = req->session;
	int error = brt_blob_upload_save(req->upload, s ? s->hash_state : scratch,
					 s ? &s->hash_state_len : &scratch_len, backend_out, backend_len_out);

	if (error == BRT_ECONFLICT && s) /* another request ended the upload */
		return raced(req);
	return error;
}

/* The data of an upload that ends without being published: a session's
 * goes now; a monolithic upload's goes with the request
 * (api_upload_cleanup). */
static void drop_upload_data(brt_api_request *req)
{
	brt_upload *s = req->session;

	if (s)
		brt_blob_upload_discard(req->api->blobs, s->id, s->backend_state, s->backend_state_len);
}

/* Verify, publish and link the saved upload, which the request owns (its
 * session claimed, or none).  *committed_out says whether the upload is
 * over (its data published or gone).  A blob the registry stores already
 * is only linked: the new copy is not needed.  A link refused (over the
 * quota, say) leaves nothing behind: a new object, which no row names,
 * goes at once. */
static int finish_blob(brt_api_request *req, int *committed_out)
{
	char key[BRT_BLOB_KEY_MAX], detail[512];
	uint64_t size = 0;
	int error;

	*committed_out = 0;
	/* Verified content (a hash of another algorithm is checked by the
	 * commit's re-read), so the caller holds the bytes: no leak. */
	if (brt_blob_upload_check(req->upload, &req->digest) == 0) {
		error = brt_meta_blob_link(req->api->meta,
					   &(brt_blob_link){.account_id = req->account,
							    .repo = req->repo,
							    .digest = req->digest.str,
							    .size = brt_blob_upload_size(req->upload),
							    .storage_key = NULL,
							    .now = brt_now_ms()});
		if (error == 0 || error == BRT_EQUOTA) {
			*committed_out = 1;
			drop_upload_data(req);
			return error;
		}
	}
	if ((error = brt_blob_upload_commit(req->upload, &req->digest, key, &size)) < 0)
		return error;
	*committed_out = 1;
	error = brt_meta_blob_link(req->api->meta, &(brt_blob_link){.account_id = req->account,
								    .repo = req->repo,
								    .digest = req->digest.str,
								    .size = size,
								    .storage_key = key,
								    .now = brt_now_ms()});
	/* A failed link removes the new object, unless the database went
	 * away, maybe while it committed (then the row may name it: the
	 * collector's orphan scan takes it if not). */
	if (error < 0 && error != BRT_EUNAVAILABLE) {
		snprintf(detail, sizeof(detail), "%s", brt_error_last());
		brt_blobstore_remove(req->api->blobs, key);
		brt_error_set(error, "%s", detail);
	}
	return error;
}

/* Link req->digest from req->mount_from if the caller may read it there,
 * or, without a source, from any repository of the target's own account
 * (never another account's); 1 if mounted (answered 201), 0 to fall
 * back to a new session, BRT_EQUOTA over the quota. */
static int try_mount(brt_api_request *req)
{
	brt_meta *meta = req->api->meta;
	const char *from = req->mount_from;
	brt_blob_info info;
	int found, error;

	/* Without read access to `from`, fall back silently: the answer must
	 * not reveal whether the blob is there. */
	if (from)
		found = brt_auth_check(api_principal(req), BRT_ACTION_PULL, from) == 0 &&
			brt_meta_blob_get(meta, &info, req->pool, from, req->digest.str) == 0;
	else if (api_query(req, "from")) /* a source that is no name */
		found = 0;
	else
		found = brt_meta_account_blob_get(meta, &info, req->pool, req->account, req->digest.str) == 0;
	if (!found)
		return 0;
	/* No storage key: link the blob as recorded now, which GC may have
	 * taken since the lookup (then: a new session). */
	error = brt_meta_blob_link(meta, &(brt_blob_link){.account_id = req->account,
							  .repo = req->repo,
							  .digest = req->digest.str,
							  .size = info.size,
							  .storage_key = NULL,
							  .now = brt_now_ms()});
	if (error == BRT_EQUOTA) /* an upload would be over the quota too */
		return error;
	if (error < 0)
		return 0;
	send_created(req, &req->digest);
	return 1;
}

static int start_session(brt_api_request *req)
{
	brt_upload *s = brt_pool_alloc(req->pool, sizeof(*s));
	brt_hasher h;
	int error;

	if (!s)
		return brt_error_set(BRT_ENOMEM, "out of request memory");
	memset(s, 0, sizeof(*s));
	if ((error = brt_random_hex(s->id, BRT_UPLOAD_ID_LEN)) < 0)
		return error;
	snprintf(s->repo, sizeof(s->repo), "%s", req->repo);
	memcpy(s->account_id, req->account, sizeof(s->account_id));
	brt_hasher_init(&h, BRT_DIGEST_SHA256);
	s->hash_state_len = brt_hasher_save(&h, s->hash_state);
	s->created_at = s->updated_at = brt_now_ms();
	/* BRT_ELIMIT: the account holds as many sessions as it may. */
	if ((error = brt_meta_upload_create(req->api->meta, s, req->api->config->uploads_max_per_account)) <
	    0)
		return error;
	send_session(req, s->id, 0, 202);
	return 0;
}

int api_upload_post_end(brt_api_request *req)
{
	const unsigned char *state;
	size_t state_len;
	int committed, error;

	if (req->mount) {
		if ((error = try_mount(req)) != 0)
			return error < 0 ? error : 0;
		if ((error = quota_early(req, 0)) < 0)
			return error;
		return start_session(req);
	}
	if (!req->monolithic)
		return start_session(req);
	/* One attempt, committed directly; whatever fails, its data goes with
	 * the request (api_upload_cleanup). */
	if ((error = save_attempt(req, &state, &state_len)) < 0 || (error = finish_blob(req, &committed)) < 0)
		return error;
	send_created(req, &req->digest);
	return 0;
}

static int end_patch(brt_api_request *req)
{
	brt_upload *s = req->session;
	int error;

	if ((error = check_chunk_complete(req)) < 0 ||
	    (error = save_attempt(req, &s->backend_state, &s->backend_state_len)) < 0)
		return error;
	s->offset = brt_blob_upload_size(req->upload);
	s->updated_at = brt_now_ms();
	s->durable = req->api->blobs->adopt_replaces;
	error = brt_meta_upload_update(req->api->meta, s);
	if (error == BRT_ECONFLICT)
		return raced(req);
	if (error == BRT_EUNAVAILABLE) {
		/* The database went away, maybe while it committed: the row
		 * may name the new state or still the old one.  Keep the data
		 * of both (the janitor prunes what the row does not name). */
		brt_blob_upload_keep(req->upload);
		return error;
	}
	if (error < 0)
		return error;
	brt_blob_upload_adopt(req->upload);
	send_session(req, s->id, s->offset, 202);
	return 0;
}

/* PUT: claim the session (delete its row with a compare-and-swap) and
 * publish the blob.  A commit that fails with the data still there puts
 * the row back, so the client can PUT again. */
static int end_put(brt_api_request *req)
{
	brt_meta *meta = req->api->meta;
	brt_upload *s = req->session;
	int error, checked, committed = 0;

	if ((error = check_chunk_complete(req)) < 0 ||
	    (error = save_attempt(req, &s->backend_state, &s->backend_state_len)) < 0)
		return error;
	checked = brt_blob_upload_check(req->upload, &req->digest);
	error = brt_meta_upload_delete(meta, s->id, s->generation);
	if (error == BRT_ECONFLICT)
		return raced(req);
	if (error < 0)
		return error;
	if (checked < 0) {
		/* A digest mismatch ends the session: its data goes.  The
		 * answer keeps the check's detail. */
		api_fail(req, checked);
		brt_blob_upload_discard(req->api->blobs, s->id, s->backend_state, s->backend_state_len);
		return checked;
	}
	if ((error = finish_blob(req, &committed)) == 0) {
		send_created(req, &req->digest);
		return 0;
	}
	api_fail(req, error);
	if (committed)
		return error; /* published: the session ends */
	if (error == BRT_ENOTFOUND || error == BRT_EDIGEST) {
		/* What is left of the data cannot make the blob (a part
		 * overwritten by a racing request, a piece lost): the session
		 * ends and its pieces go. */
		drop_upload_data(req);
		return error;
	}
	/* Nothing was published and the data is still there. */
	s->offset = brt_blob_upload_size(req->upload);
	s->generation++;
	s->updated_at = brt_now_ms();
	if (brt_meta_upload_create(meta, s, 0) < 0)
		brt_log_warn("upload %s in %s: cannot restore the session after a failed commit: %s", s->id,
			     req->repo, brt_error_last());
	return error;
}

int api_upload_data_end(brt_api_request *req)
{
	return req->http->method == BRT_PATCH ? end_patch(req) : end_put(req);
}

int api_upload_status(brt_api_request *req)
{
	int error;

	if ((error = load_session(req)) < 0)
		return error;
	send_session(req, req->session->id, req->session->offset, 204);
	return 0;
}

int api_upload_cancel(brt_api_request *req)
{
	brt_meta *meta = req->api->meta;
	brt_upload *s;
	int error;

	if ((error = load_session(req)) < 0)
		return error;
	s = req->session;
	/* Whatever a request in flight does, the client wants it gone: that
	 * request loses its compare-and-swap and drops what it wrote. */
	error = brt_meta_upload_delete(meta, s->id, BRT_META_ANY_GENERATION);
	if (error < 0 && error != BRT_ENOTFOUND) {
		/* On a disk that acknowledged chunks have filled, the metadata
		 * store may need the data's space to delete the row. */
		brt_blob_upload_discard(req->api->blobs, s->id, s->backend_state, s->backend_state_len);
		error = brt_meta_upload_delete(meta, s->id, BRT_META_ANY_GENERATION);
	}
	if (error < 0)
		return error;
	brt_blob_upload_discard(req->api->blobs, s->id, s->backend_state, s->backend_state_len);
	api_send(req, 204, api_response_empty(), 0);
	return 0;
}

void api_upload_cleanup(brt_api_request *req)
{
	if (!req->upload)
		return;
	/* Drops the attempt unless the row adopted it. */
	brt_blob_upload_free(req->upload);
	req->upload = NULL;
	/* A monolithic upload has no session to come back to. */
	if (req->monolithic)
		brt_blob_upload_discard(req->api->blobs, req->reference, NULL, 0);
}
