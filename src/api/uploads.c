/* Blob uploads: POST (start, monolithic with ?digest=, cross-repository
 * mount), PATCH (chunked or streamed), PUT (finish), GET (status) and
 * DELETE (cancel).  The session is a metadata row holding the acknowledged
 * offset and the saved hash state, so any request, process or node can
 * continue it. */
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
	brt_meta *meta = req->api->meta;
	int error;

	if (!upload_id_valid(req->reference))
		return brt_error_set(BRT_ENOTFOUND, "no such upload");
	req->session = brt_pool_alloc(req->pool, sizeof(*req->session));
	if (!req->session)
		return brt_error_set(BRT_ENOMEM, "out of request memory");
	error = meta->upload_get(meta, req->session, req->pool, req->reference);
	if (error == 0 && strcmp(req->session->repo, req->repo) != 0)
		error = brt_error_set(BRT_ENOTFOUND, "upload belongs to another repository");
	if (error < 0)
		req->session = NULL;
	return error;
}

/* The error for an upload's data that cannot be opened. */
static int open_error(int error)
{
	if (error == BRT_ECONFLICT)
		return brt_error_set(BRT_ECONFLICT, "the upload is in use by another request");
	if (error == BRT_ERANGE || error == BRT_EINVALID)
		return brt_error_set(BRT_EINVALID, "upload data is incomplete");
	return error;
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
	brt_http_stream(req->http);
}

/* A new upload with no session row (monolithic POST). */
static int open_fresh_upload(brt_api_request *req, const char *id, brt_digest_alg alg)
{
	int error = brt_blob_upload_open(&req->upload, req->api->blobs, id, req->api->config->blob_max);

	if (error == 0)
		error = brt_blob_upload_resume(req->upload, 0, NULL, 0, alg);
	if (error < 0)
		return open_error(error);
	take_body(req);
	return 0;
}

/* Continue the session in req->session.  Its data is locked first and the
 * row read again only then: a row read before the lock may be stale (an
 * earlier request could have acknowledged more since), and resuming at a
 * stale offset would cut acknowledged bytes.  A request that loses the
 * race is refused before it writes anything. */
static int open_session_upload(brt_api_request *req, int has_range, uint64_t start)
{
	brt_meta *meta = req->api->meta;
	brt_upload *s = req->session;
	int error = brt_blob_upload_open(&req->upload, req->api->blobs, s->id, req->api->config->blob_max);

	if (error < 0)
		return open_error(error);
	error = meta->upload_get(meta, s, req->pool, s->id);
	if (error == BRT_ENOTFOUND) {
		/* Finished or cancelled meanwhile; the lock was taken on
		 * data no session owns any more. */
		brt_blob_upload_discard(req->api->blobs, s->id);
		brt_blob_upload_free(req->upload);
		req->upload = NULL;
		return brt_error_set(BRT_ENOTFOUND, "the upload ended");
	}
	if (error < 0 || (error = chunk_fits(req, has_range, start)) < 0)
		return error;
	error = brt_blob_upload_resume(req->upload, s->offset, s->hash_state, s->hash_state_len, BRT_DIGEST_SHA256);
	if (error == BRT_ERANGE || error == BRT_EINVALID) {
		/* Less data than acknowledged, or a hash state that does not
		 * fit it (a crash between commit and row delete, a lost disk):
		 * the session cannot go on.  End it, under the lock, so the
		 * client starts over. */
		brt_log_warn("upload %s in %s: %s; ending the session", s->id, req->repo, brt_error_last());
		brt_blob_upload_discard(req->api->blobs, s->id);
		meta->upload_delete(meta, s->id, BRT_META_ANY_GENERATION);
		brt_blob_upload_free(req->upload);
		req->upload = NULL;
		return brt_error_set(BRT_ENOTFOUND, "the upload's data is gone; start a new upload");
	}
	if (error < 0)
		return open_error(error);
	take_body(req);
	return 0;
}

int api_upload_post_begin(brt_api_request *req)
{
	brt_upload_query q;
	char *id;
	int error;

	/* Every malformed parameter is a 400 DIGEST_INVALID. */
	if (brt_query_upload_post(&q, api_query(req, "digest"), api_query(req, "mount"), api_query(req, "from")) <
	    0)
		return BRT_EDIGEST;
	req->digest = q.digest;
	req->mount = q.kind == BRT_UPLOAD_START_MOUNT;
	req->mount_from = q.from;
	/* A session or a mount is decided in api_upload_end, once any body
	 * is gone. */
	if (q.kind != BRT_UPLOAD_START_MONOLITHIC)
		return 0;
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
					     "Content-Range %llu-%llu announces %llu bytes but Content-Length is %s",
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
	/* A first read for a cheap 404 or 416 that touches no storage; both
	 * are checked again under the upload's lock. */
	if ((error = load_session(req)) < 0 || (error = chunk_fits(req, has_range, start)) < 0)
		return error;
	return open_session_upload(req, has_range, start);
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
		return brt_error_set(BRT_ERANGE, "Content-Range %llu-%llu announces %llu bytes but the body had %llu",
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
		/* Give back the lock and the space of the failed write (the
		 * writer drops its unacknowledged tail when freed) now, not
		 * after the rest of the body has been read and dropped: on a
		 * full disk every other upload is waiting for that space. */
		api_upload_cleanup(req);
	}
	return error;
}

/* Verify, publish and link the uploaded blob; answers 201. */
static int finish_blob(brt_api_request *req)
{
	char key[BRT_BLOB_KEY_MAX];
	uint64_t size = 0;
	int error;

	error = brt_blob_upload_commit(req->upload, &req->digest, key, &size);
	brt_blob_upload_free(req->upload);
	req->upload = NULL;
	if (error < 0) {
		/* Answer with the commit's detail, then clean up. */
		api_fail(req, error);
		/* A monolithic upload has no session to retry: its data goes
		 * now (api_upload_cleanup no longer sees it), not at the
		 * janitor's next orphan sweep; on a full disk it is the space
		 * every other push needs. */
		if (req->monolithic)
			brt_blob_upload_discard(req->api->blobs, req->reference);
		return error;
	}
	return req->api->meta->blob_link(req->api->meta, &(brt_blob_link){.account_id = req->account,
									   .repo = req->repo,
									   .digest = req->digest.str,
									   .size = size,
									   .storage_key = key,
									   .now = brt_now_ms()});
}

static void try_mount(brt_api_request *req)
{
	brt_meta *meta = req->api->meta;
	const char *from = req->mount_from;
	brt_blob_info info;

	if (!from)
		return;
	/* Without read access to `from`, fall back silently: the answer must
	 * not reveal whether the blob is there. */
	if (brt_auth_check(api_principal(req), BRT_ACTION_PULL, from) < 0)
		return;
	if (meta->blob_get(meta, &info, req->pool, from, req->digest.str) < 0)
		return;
	if (meta->blob_link(meta, &(brt_blob_link){.account_id = req->account,
						 .repo = req->repo,
						 .digest = req->digest.str,
						 .size = info.size,
						 .storage_key = info.storage_key,
						 .now = brt_now_ms()}) < 0)
		return;
	send_created(req, &req->digest);
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
	if ((error = req->api->meta->upload_create(req->api->meta, s, req->api->config->uploads_max_per_account)) < 0)
		return error;
	send_session(req, s->id, 0, 202);
	return 0;
}

int api_upload_post_end(brt_api_request *req)
{
	int error;

	if (req->mount) {
		try_mount(req);
		return api_done(req) ? 0 : start_session(req);
	}
	if (!req->monolithic)
		return start_session(req);
	if ((error = finish_blob(req)) < 0)
		return error;
	send_created(req, &req->digest);
	return 0;
}

static int end_patch(brt_api_request *req)
{
	brt_upload *s = req->session;
	int error;

	if ((error = check_chunk_complete(req)) < 0 ||
	    (error = brt_blob_upload_save(req->upload, s->hash_state, &s->hash_state_len)) < 0)
		return error;
	s->offset = brt_blob_upload_size(req->upload);
	s->updated_at = brt_now_ms();
	error = req->api->meta->upload_update(req->api->meta, s);
	if (error == BRT_ECONFLICT)
		return brt_error_set(BRT_ERANGE, "the upload was changed by another request");
	if (error < 0)
		return error;
	send_session(req, s->id, s->offset, 202);
	return 0;
}

int api_upload_data_end(brt_api_request *req)
{
	int error;

	if (req->http->method == BRT_PATCH)
		return end_patch(req);
	/* PUT: finish the session */
	if ((error = check_chunk_complete(req)) < 0)
		return error;
	if ((error = finish_blob(req)) < 0) {
		/* A digest mismatch ends the session: its data is gone. */
		if (error == BRT_EDIGEST)
			req->api->meta->upload_delete(req->api->meta, req->session->id, BRT_META_ANY_GENERATION);
		return error;
	}
	req->api->meta->upload_delete(req->api->meta, req->session->id, BRT_META_ANY_GENERATION);
	send_created(req, &req->digest);
	return 0;
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
	int error;

	if ((error = load_session(req)) < 0)
		return error;
	/* The data first: on a disk that acknowledged chunks have filled,
	 * the metadata store may need that space to delete the row. */
	brt_blob_upload_discard(req->api->blobs, req->session->id);
	if ((error = req->api->meta->upload_delete(req->api->meta, req->session->id, BRT_META_ANY_GENERATION)) < 0)
		return error;
	api_send(req, 204, api_response_empty(), 0);
	return 0;
}

void api_upload_cleanup(brt_api_request *req)
{
	if (!req->upload)
		return;
	brt_blob_upload_free(req->upload);
	req->upload = NULL;
	/* A monolithic upload has no session to come back to. */
	if (req->monolithic)
		brt_blob_upload_discard(req->api->blobs, req->reference);
}
