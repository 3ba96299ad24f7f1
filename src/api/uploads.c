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
#include "oci/range.h"

static int upload_id_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i]; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return i == BRT_UPLOAD_ID_LEN;
}

static char *upload_location(brt_request *req, const char *id)
{
	return brt_pool_printf(&req->pool, "/v2/%s/blobs/uploads/%s", req->repo, id);
}

static void add_range(struct MHD_Response *resp, uint64_t offset)
{
	char range[48];

	snprintf(range, sizeof(range), "0-%llu", (unsigned long long)(offset ? offset - 1 : 0));
	MHD_add_response_header(resp, "Range", range);
}

/* 202 with where the session stands. */
static void send_session(brt_request *req, const char *id, uint64_t offset, unsigned int status)
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
static void send_created(brt_request *req, const brt_digest *digest)
{
	struct MHD_Response *resp = api_response_empty();
	const char *location = brt_pool_printf(&req->pool, "/v2/%s/blobs/%s", req->repo, digest->str);

	if (resp && location) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
		MHD_add_response_header(resp, "Docker-Content-Digest", digest->str);
	}
	api_send(req, 201, resp, 0);
}

static int load_session(brt_request *req)
{
	brt_meta *meta = req->server->meta;
	int error;

	if (!upload_id_valid(req->reference)) {
		api_fail(req, 404, E_BLOB_UPLOAD_UNKNOWN, "no such upload");
		return BRT_ENOTFOUND;
	}
	req->session = brt_pool_alloc(&req->pool, sizeof(*req->session));
	if (!req->session) {
		api_fail_error(req, BRT_ENOMEM, E_BLOB_UPLOAD_UNKNOWN);
		return BRT_ENOMEM;
	}
	error = meta->upload_get(meta, req->session, &req->pool, req->reference);
	if (error == 0 && strcmp(req->session->repo, req->repo) != 0)
		error = brt_error_set(BRT_ENOTFOUND, "upload belongs to another repository");
	if (error < 0) {
		req->session = NULL;
		api_fail_error(req, error, E_BLOB_UPLOAD_UNKNOWN);
	}
	return error;
}

static void fail_open(brt_request *req, int error)
{
	if (error == BRT_ERANGE || error == BRT_EINVALID)
		api_fail(req, 400, E_BLOB_UPLOAD_INVALID, "upload data is incomplete: %s", brt_error_last());
	else
		api_fail_error(req, error, E_BLOB_UPLOAD_UNKNOWN);
}

/* 416 for a request that lost the session to another one, with the Range
 * the row holds now (404 if it is gone). */
static void fail_raced(brt_request *req)
{
	brt_upload now;
	int error = req->server->meta->upload_get(req->server->meta, &now, NULL, req->session->id);

	if (error < 0) {
		api_fail_error(req, error, E_BLOB_UPLOAD_UNKNOWN);
		return;
	}
	api_fail(req, 416, E_BLOB_UPLOAD_INVALID, "the upload was changed by another request");
	req->pending_header = "Range";
	req->pending_header_value =
		brt_pool_printf(&req->pool, "0-%llu", (unsigned long long)(now.offset ? now.offset - 1 : 0));
	if (!req->pending_header_value)
		req->pending_header = NULL;
}

/* 1 if a chunk announced at `start` (has_range) continues req->session;
 * else 0, answered with 416. */
static int chunk_fits(brt_request *req, int has_range, uint64_t start)
{
	if (!has_range || start == req->session->offset)
		return 1;
	api_fail(req, 416, E_BLOB_UPLOAD_INVALID, "chunk starts at %llu but the upload has %llu bytes",
		 (unsigned long long)start, (unsigned long long)req->session->offset);
	return 0;
}

/* A new upload with no session row (monolithic POST). */
static void open_fresh_upload(brt_request *req, const char *id, brt_digest_alg alg)
{
	int error = brt_blob_upload_open(&req->upload, req->server->blobs, id, req->server->config->blob_max, alg,
					 NULL);

	if (error < 0) {
		fail_open(req, error);
		return;
	}
	req->body_kind = BRT_BODY_BLOB;
}

/* Open an attempt that continues the session in req->session at what it
 * acknowledged.  It writes only data of its own, so the row read once,
 * without a lock, is all it needs: a request that moved the session on
 * meanwhile makes this one lose its compare-and-swap at the end. */
static void open_session_upload(brt_request *req)
{
	brt_upload *s = req->session;
	brt_upload_point at = {s->offset, s->hash_state, s->hash_state_len, s->backend_state, s->backend_state_len};
	int error = brt_blob_upload_open(&req->upload, req->server->blobs, s->id, req->server->config->blob_max,
					 BRT_DIGEST_SHA256, &at);

	if (error == BRT_ENOTFOUND || error == BRT_EINVALID) {
		/* Data the row names is gone (a lost disk), or a row that does
		 * not fit its data (one from before segments): the session
		 * cannot go on.  End it, so the client starts over. */
		brt_log_warn("upload %s in %s: %s; ending the session", s->id, req->repo, brt_error_last());
		if (req->server->meta->upload_delete(req->server->meta, s->id, s->generation) == 0)
			brt_blob_upload_discard(req->server->blobs, s->id, s->backend_state, s->backend_state_len);
		api_fail(req, 404, E_BLOB_UPLOAD_UNKNOWN, "the upload's data is gone; start a new upload");
		return;
	}
	if (error < 0) {
		fail_open(req, error);
		return;
	}
	req->body_kind = BRT_BODY_BLOB;
}

static void begin_post(brt_request *req)
{
	brt_upload_query q;
	char *id;

	if (brt_query_upload_post(&q, brt_request_query(req, "digest"), brt_request_query(req, "mount"),
				  brt_request_query(req, "from")) < 0) {
		api_fail(req, 400, E_DIGEST_INVALID, "%s", brt_error_last());
		return;
	}
	req->digest = q.digest;
	req->mount = q.kind == BRT_UPLOAD_START_MOUNT;
	req->mount_from = q.from;
	/* A session or a mount is decided in api_upload_end, once any body
	 * is gone. */
	if (q.kind != BRT_UPLOAD_START_MONOLITHIC)
		return;
	/* Monolithic upload: the data goes to a fresh upload id with no
	 * session row; nothing is visible unless the digest matches. */
	id = brt_pool_alloc(&req->pool, BRT_UPLOAD_ID_LEN + 1);
	if (!id || api_random_id(id) < 0) {
		api_fail_error(req, BRT_EIO, E_BLOB_UPLOAD_UNKNOWN);
		return;
	}
	req->monolithic = 1;
	req->reference = id;
	open_fresh_upload(req, id, req->digest.alg);
}

/* The chunk a PATCH or PUT announces with Content-Range, if any: 1 with
 * its bounds, 0 without one, -1 (answered) if malformed or if
 * Content-Length disagrees with it. */
static int chunk_range(brt_request *req, uint64_t *start_out, uint64_t *end_out)
{
	const char *content_range = brt_request_header(req, MHD_HTTP_HEADER_CONTENT_RANGE);
	const char *content_length = brt_request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;
	unsigned long long length;

	if (!content_range)
		return 0;
	if (brt_parse_content_range(start_out, end_out, content_range) < 0) {
		api_fail(req, 400, E_BLOB_UPLOAD_INVALID, "malformed Content-Range");
		return -1;
	}
	if (content_length) {
		length = strtoull(content_length, &end, 10);
		if (*end != '\0' || length != *end_out - *start_out + 1) {
			api_fail(req, 416, E_BLOB_UPLOAD_INVALID,
				 "Content-Range %llu-%llu announces %llu bytes but Content-Length is %s",
				 (unsigned long long)*start_out, (unsigned long long)*end_out,
				 (unsigned long long)(*end_out - *start_out + 1), content_length);
			return -1;
		}
	}
	return 1;
}

void api_upload_begin(brt_request *req)
{
	uint64_t start = 0, end = 0;
	int has_range;

	if (req->method == BRT_POST) {
		begin_post(req);
		return;
	}
	if (req->method == BRT_PUT && brt_query_upload_put(&req->digest, brt_request_query(req, "digest")) < 0) {
		api_fail(req, 400, E_DIGEST_INVALID, "%s", brt_error_last());
		return;
	}
	if ((has_range = chunk_range(req, &start, &end)) < 0)
		return;
	/* A cheap 404 or 416 that touches no storage; the compare-and-swap
	 * at the end decides whether the chunk still fits. */
	if (load_session(req) < 0)
		return;
	if (!chunk_fits(req, has_range, start))
		return;
	open_session_upload(req);
}

/* With a Content-Range, exactly the announced bytes must have arrived;
 * otherwise nothing of the chunk is acknowledged (416). */
static int check_chunk_complete(brt_request *req)
{
	uint64_t start = 0, end = 0, received;

	if (chunk_range(req, &start, &end) <= 0)
		return api_done(req) ? -1 : 0;
	received = brt_blob_upload_size(req->upload) - req->session->offset;
	if (received != end - start + 1) {
		api_fail(req, 416, E_BLOB_UPLOAD_INVALID,
			 "Content-Range %llu-%llu announces %llu bytes but the body had %llu",
			 (unsigned long long)start, (unsigned long long)end,
			 (unsigned long long)(end - start + 1), (unsigned long long)received);
		return -1;
	}
	return 0;
}

void api_upload_body(brt_request *req, const char *data, size_t len)
{
	int error = brt_blob_upload_write(req->upload, data, len);

	if (error < 0) {
		api_fail_error(req, error, E_BLOB_UPLOAD_UNKNOWN);
		/* Give back the space of the failed attempt (dropped when
		 * freed) now, not after the rest of the body has been read and
		 * dropped: on a full disk every other upload is waiting for it. */
		api_upload_cleanup(req);
	}
}

/* Make the attempt durable and its state ready for the row (in
 * req->session for a session; nowhere for a monolithic upload). */
static int save_attempt(brt_request *req, const unsigned char **backend_out, size_t *backend_len_out)
{
	unsigned char scratch[BRT_HASHER_STATE_MAX];
	size_t scratch_len;
	brt_upload *s = req->session;
	int error = brt_blob_upload_save(req->upload, s ? s->hash_state : scratch, s ? &s->hash_state_len : &scratch_len,
					 backend_out, backend_len_out);

	if (error == BRT_ECONFLICT && s) /* another request ended the upload */
		fail_raced(req);
	else if (error < 0)
		api_fail_error(req, error, E_BLOB_UPLOAD_UNKNOWN);
	return error;
}

/* Verify, publish and link the saved upload, which the request owns
 * (its session claimed, or none); answers nothing on success.
 * *committed_out says whether the commit succeeded. */
static int finish_blob(brt_request *req, int *committed_out)
{
	char account[BRT_ACCOUNT_ID_LEN + 1];
	char key[BRT_BLOB_KEY_MAX];
	uint64_t size = 0;
	int error;

	*committed_out = 0;
	error = brt_blob_upload_commit(req->upload, &req->digest, key, &size);
	if (error < 0) {
		api_fail_error(req, error, E_BLOB_UPLOAD_UNKNOWN);
		return error;
	}
	*committed_out = 1;
	error = req->server->meta->blob_link(req->server->meta, &(brt_blob_link){ brt_meta_repo_account(account, req->repo), req->repo, req->digest.str, size, key,
					     brt_now_ms() });
	if (error < 0) {
		api_fail_error(req, error, E_BLOB_UPLOAD_UNKNOWN);
		return error;
	}
	return 0;
}

static void try_mount(brt_request *req)
{
	brt_meta *meta = req->server->meta;
	const char *from = req->mount_from;
	char account[BRT_ACCOUNT_ID_LEN + 1];
	brt_blob_info info;

	if (!from)
		return;
	/* Without read access to `from`, fall back silently: the answer must
	 * not reveal whether the blob is there. */
	if (brt_auth_check(req, BRT_ACTION_PULL, from) < 0)
		return;
	if (meta->blob_get(meta, &info, &req->pool, from, req->digest.str) < 0)
		return;
	if (meta->blob_link(meta, &(brt_blob_link){ brt_meta_repo_account(account, req->repo), req->repo, req->digest.str, info.size, info.storage_key, brt_now_ms() }) < 0)
		return;
	send_created(req, &req->digest);
}

static void start_session(brt_request *req)
{
	brt_upload *s = brt_pool_alloc(&req->pool, sizeof(*s));
	brt_hasher h;
	int error;

	if (!s) {
		api_fail_error(req, BRT_ENOMEM, E_BLOB_UPLOAD_UNKNOWN);
		return;
	}
	memset(s, 0, sizeof(*s));
	if ((error = api_random_id(s->id)) < 0) {
		api_fail_error(req, error, E_BLOB_UPLOAD_UNKNOWN);
		return;
	}
	snprintf(s->repo, sizeof(s->repo), "%s", req->repo);
	brt_meta_repo_account(s->account_id, req->repo);
	brt_hasher_init(&h, BRT_DIGEST_SHA256);
	s->hash_state_len = brt_hasher_save(&h, s->hash_state);
	s->created_at = s->updated_at = brt_now_ms();
	error = req->server->meta->upload_create(req->server->meta, s,
						 req->server->config->uploads_max_per_account);
	if (error == BRT_ELIMIT) {
		/* Sessions end when finished, cancelled or expired: a client
		 * that waits a little can go on. */
		api_fail_retry_later(req, "60");
		return;
	}
	if (error < 0) {
		api_fail_error(req, error, E_BLOB_UPLOAD_UNKNOWN);
		return;
	}
	send_session(req, s->id, 0, 202);
}

static void end_patch(brt_request *req)
{
	brt_upload *s = req->session;
	int error;

	if (check_chunk_complete(req) < 0 || save_attempt(req, &s->backend_state, &s->backend_state_len) < 0)
		return;
	s->offset = brt_blob_upload_size(req->upload);
	s->updated_at = brt_now_ms();
	error = req->server->meta->upload_update(req->server->meta, s);
	if (error == BRT_ECONFLICT) {
		fail_raced(req);
		return;
	}
	if (error < 0) {
		api_fail_error(req, error, E_BLOB_UPLOAD_UNKNOWN);
		return;
	}
	brt_blob_upload_adopt(req->upload);
	send_session(req, s->id, s->offset, 202);
}

/* PUT: claim the session (delete its row with a compare-and-swap) and
 * publish the blob.  A commit that fails with the data still there puts
 * the row back, so the client can PUT again. */
static void end_put(brt_request *req)
{
	brt_meta *meta = req->server->meta;
	brt_upload *s = req->session;
	int error, checked, committed = 0;

	if (check_chunk_complete(req) < 0 || save_attempt(req, &s->backend_state, &s->backend_state_len) < 0)
		return;
	checked = brt_blob_upload_check(req->upload, &req->digest);
	error = meta->upload_delete(meta, s->id, s->generation);
	if (error == BRT_ECONFLICT) {
		fail_raced(req);
		return;
	}
	if (error < 0) {
		api_fail_error(req, error, E_BLOB_UPLOAD_UNKNOWN);
		return;
	}
	if (checked < 0) {
		/* A digest mismatch ends the session: its data goes. */
		api_fail_error(req, checked, E_BLOB_UPLOAD_UNKNOWN);
		brt_blob_upload_discard(req->server->blobs, s->id, s->backend_state, s->backend_state_len);
		return;
	}
	if ((error = finish_blob(req, &committed)) == 0) {
		send_created(req, &req->digest);
		return;
	}
	if (committed || error == BRT_ENOTFOUND || error == BRT_EDIGEST)
		return; /* published, or the data is gone: the session ends */
	/* Nothing was published and the data is still there. */
	s->offset = brt_blob_upload_size(req->upload);
	s->generation++;
	s->updated_at = brt_now_ms();
	if (meta->upload_create(meta, s, 0) < 0)
		brt_log_warn("upload %s in %s: cannot restore the session after a failed commit: %s", s->id,
			     req->repo, brt_error_last());
}

void api_upload_end(brt_request *req)
{
	const unsigned char *state;
	size_t state_len;
	int committed;

	if (req->method == BRT_POST) {
		if (req->mount) {
			try_mount(req);
			if (!api_done(req))
				start_session(req);
		} else if (req->monolithic) {
			/* One attempt, committed directly; whatever fails, its
			 * data goes with the request (api_upload_cleanup). */
			if (save_attempt(req, &state, &state_len) == 0 && finish_blob(req, &committed) == 0)
				send_created(req, &req->digest);
		} else {
			start_session(req);
		}
		return;
	}
	if (req->method == BRT_PATCH)
		end_patch(req);
	else
		end_put(req);
}

void api_upload_status(brt_request *req)
{
	if (load_session(req) < 0)
		return;
	send_session(req, req->session->id, req->session->offset, 204);
}

void api_upload_cancel(brt_request *req)
{
	brt_meta *meta = req->server->meta;
	brt_upload *s;
	int error;

	if (load_session(req) < 0)
		return;
	s = req->session;
	/* Whatever a request in flight does, the client wants it gone: that
	 * request loses its compare-and-swap and drops what it wrote. */
	error = meta->upload_delete(meta, s->id, BRT_META_ANY_GENERATION);
	if (error < 0 && error != BRT_ENOTFOUND) {
		/* On a disk that acknowledged chunks have filled, the metadata
		 * store may need the data's space to delete the row. */
		brt_blob_upload_discard(req->server->blobs, s->id, s->backend_state, s->backend_state_len);
		error = meta->upload_delete(meta, s->id, BRT_META_ANY_GENERATION);
	}
	if (error < 0) {
		api_fail_error(req, error, E_BLOB_UPLOAD_UNKNOWN);
		return;
	}
	brt_blob_upload_discard(req->server->blobs, s->id, s->backend_state, s->backend_state_len);
	api_send(req, 204, api_response_empty(), 0);
}

void api_upload_cleanup(brt_request *req)
{
	if (!req->upload)
		return;
	/* Drops the attempt unless the row adopted it. */
	brt_blob_upload_free(req->upload);
	req->upload = NULL;
	/* A monolithic upload has no session to come back to. */
	if (req->monolithic)
		brt_blob_upload_discard(req->server->blobs, req->reference, NULL, 0);
}
