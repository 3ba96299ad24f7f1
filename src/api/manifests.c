/* Manifest PUT (collect the body under a size cap, verify its digest,
 * parse it, store it with its references in one metadata transaction),
 * GET/HEAD (exact bytes, Accept negotiation, ETag) and DELETE (by digest:
 * the manifest and its tags; by tag: only the tag). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"
#include "common/log.h"
#include "oci/manifest.h"
#include "oci/names.h"

/* Is `ref` a digest (it has a ':'; tags cannot)? */
static int is_digest_ref(const char *ref)
{
	return strchr(ref, ':') != NULL;
}

void api_manifest_put_begin(brt_request *req)
{
	const char *cl = brt_request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	size_t max = req->server->config->manifest_max;

	if (is_digest_ref(req->reference)) {
		if (brt_digest_parse(&req->digest, req->reference, strlen(req->reference)) < 0) {
			api_fail(req, 400, E_DIGEST_INVALID, "%s", brt_error_last());
			return;
		}
	} else if (!brt_tag_valid(req->reference, strlen(req->reference))) {
		api_fail(req, 400, E_MANIFEST_INVALID, "invalid tag");
		return;
	}
	if (cl) {
		char *end;
		unsigned long long n = strtoull(cl, &end, 10);
		if (*end != '\0' || n > max) {
			api_fail(req, 413, E_SIZE_INVALID, "manifest is larger than the limit of %zu bytes", max);
			return;
		}
	}
	req->body_kind = BRT_BODY_MANIFEST;
}

void api_manifest_put_body(brt_request *req, const char *data, size_t len)
{
	size_t max = req->server->config->manifest_max;
	int error = brt_request_body_append(req, data, len, max);

	if (error == 0)
		return;
	if (error == BRT_ETOOBIG) {
		api_fail(req, 413, E_SIZE_INVALID, "manifest is larger than the limit of %zu bytes", max);
	} else if (error == BRT_ELIMIT) {
		/* The server-wide budget for bodies held in memory is spent:
		 * transient, so tell the client when to come back. */
		api_fail_retry_later(req, "1");
	} else {
		api_fail_error(req, error, E_MANIFEST_INVALID);
	}
	/* The rest is read and dropped: give the memory back now. */
	brt_request_body_free(req);
}

void api_manifest_put_end(brt_request *req)
{
	brt_meta *meta = req->server->meta;
	brt_manifest_info info;
	brt_manifest_put put;
	char account[BRT_ACCOUNT_ID_LEN + 1];
	brt_digest got;
	int is_digest = is_digest_ref(req->reference);
	const char *content_type = brt_request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *location;
	struct MHD_Response *resp;
	int error;

	brt_digest_of(&got, is_digest ? req->digest.alg : BRT_DIGEST_SHA256, req->body ? req->body : (unsigned char *)"",
		      req->body_len);
	if (is_digest && strcmp(got.str, req->digest.str) != 0) {
		api_fail(req, 400, E_DIGEST_INVALID, "manifest digest is %s", got.str);
		return;
	}
	error = brt_manifest_parse(&info, &req->pool, (const char *)req->body, req->body_len, content_type,
				   req->server->config->json_depth_max);
	if (error < 0) {
		api_fail(req, 400, E_MANIFEST_INVALID, "%s", brt_error_last());
		return;
	}
	memset(&put, 0, sizeof(put));
	put.account_id = brt_meta_repo_account(account, req->repo);
	put.repo = req->repo;
	put.digest = got.str;
	put.media_type = info.media_type;
	put.payload = req->body ? req->body : (unsigned char *)"";
	put.size = req->body_len;
	put.tag = is_digest ? NULL : req->reference;
	put.subject = info.subject;
	put.artifact_type = info.artifact_type;
	put.annotations = info.annotations;
	put.blobs = (const char *const *)info.blobs;
	put.blob_sizes = info.blob_sizes;
	put.blob_count = info.blob_count;
	put.children = (const char *const *)info.children;
	put.child_sizes = info.child_sizes;
	put.child_count = info.child_count;
	put.now = brt_now_ms();
	if ((error = meta->manifest_put(meta, &put)) < 0) {
		/* A descriptor whose size is not the stored one: clients
		 * would trust it and fail (or be fooled) when pulling. */
		if (error == BRT_EINVALID)
			api_fail(req, 400, E_MANIFEST_INVALID, "%s", brt_error_last());
		else
			api_fail_error(req, error, E_MANIFEST_UNKNOWN);
		return;
	}
	resp = api_response_empty();
	location = brt_pool_printf(&req->pool, "/v2/%s/manifests/%s", req->repo, got.str);
	if (resp && location) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
		MHD_add_response_header(resp, "Docker-Content-Digest", got.str);
		if (info.subject)
			MHD_add_response_header(resp, "OCI-Subject", info.subject);
	}
	api_send(req, 201, resp, 0);
}

struct accept_scan {
	const char *media_type;
	int seen;    /* any Accept header at all */
	int matched;
};

/* Does one Accept header value list `media_type` (or a wildcard)? */
static int accept_lists(const char *value, const char *media_type)
{
	size_t mt_len = strlen(media_type);
	const char *p = value;

	while (*p) {
		const char *start, *end;
		size_t len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		start = p;
		while (*p && *p != ',' && *p != ';')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		len = (size_t)(end - start);
		if ((len == mt_len && strncasecmp(start, media_type, len) == 0) ||
		    (len == 3 && memcmp(start, "*/*", 3) == 0) ||
		    (len == 13 && strncasecmp(start, "application/*", 13) == 0))
			return 1;
		while (*p && *p != ',')
			p++;
	}
	return 0;
}

static enum MHD_Result scan_accept(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct accept_scan *scan = cls;

	(void)kind;
	if (strcasecmp(key, MHD_HTTP_HEADER_ACCEPT) != 0 || !value)
		return MHD_YES;
	scan->seen = 1;
	if (accept_lists(value, scan->media_type)) {
		scan->matched = 1;
		return MHD_NO;
	}
	return MHD_YES;
}

/* Resolve the reference; answers the error itself and returns < 0. */
static int parse_reference(brt_request *req, int *is_digest)
{
	*is_digest = is_digest_ref(req->reference);
	if (*is_digest) {
		if (brt_digest_parse(&req->digest, req->reference, strlen(req->reference)) < 0) {
			api_fail(req, 400, E_DIGEST_INVALID, "%s", brt_error_last());
			return BRT_EINVALID;
		}
		return 0;
	}
	if (!brt_tag_valid(req->reference, strlen(req->reference))) {
		api_fail(req, 404, E_MANIFEST_UNKNOWN, "invalid tag");
		return BRT_EINVALID;
	}
	return 0;
}

/* A missing manifest is MANIFEST_UNKNOWN in a known repository and
 * NAME_UNKNOWN otherwise. */
static void fail_unknown(brt_request *req, int error)
{
	brt_meta *meta = req->server->meta;

	if (error == BRT_ENOTFOUND && meta->repo_exists(meta, req->repo) == BRT_ENOTFOUND)
		api_fail(req, 404, E_NAME_UNKNOWN, "repository %s is not known", req->repo);
	else
		api_fail_error(req, error, E_MANIFEST_UNKNOWN);
}

void api_manifest_get(brt_request *req)
{
	brt_meta *meta = req->server->meta;
	brt_manifest m;
	struct accept_scan scan = {0};
	struct MHD_Response *resp;
	const char *inm;
	char etag[BRT_DIGEST_STR_MAX + 3];
	int is_digest, error;

	if (parse_reference(req, &is_digest) < 0)
		return;
	error = meta->manifest_get(meta, &m, &req->pool, req->repo, is_digest ? req->digest.str : req->reference,
				   is_digest);
	if (error < 0) {
		fail_unknown(req, error);
		return;
	}
	scan.media_type = m.media_type;
	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, scan_accept, &scan);
	if (scan.seen && !scan.matched) {
		api_fail(req, 404, E_MANIFEST_UNKNOWN, "manifest is %s, which the client does not accept",
			 m.media_type);
		return;
	}
	snprintf(etag, sizeof(etag), "\"%s\"", m.digest);
	inm = brt_request_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm && (strstr(inm, m.digest) || strcmp(inm, "*") == 0)) {
		resp = api_response_empty();
		if (resp) {
			MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
			MHD_add_response_header(resp, "Docker-Content-Digest", m.digest);
		}
		api_send(req, 304, resp, 0);
		return;
	}
	resp = MHD_create_response_from_buffer(m.size, (void *)m.payload, MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		api_fail_error(req, BRT_ENOMEM, E_MANIFEST_UNKNOWN);
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, m.media_type);
	MHD_add_response_header(resp, "Docker-Content-Digest", m.digest);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	api_send(req, 200, resp, req->method == BRT_HEAD ? 0 : m.size);
}

void api_manifest_delete(brt_request *req)
{
	brt_meta *meta = req->server->meta;
	int is_digest, error;

	if (parse_reference(req, &is_digest) < 0)
		return;
	if (is_digest)
		error = meta->manifest_delete(meta, req->repo, req->digest.str);
	else
		error = meta->tag_delete(meta, req->repo, req->reference);
	if (error < 0) {
		fail_unknown(req, error);
		return;
	}
	api_send(req, 202, api_response_empty(), 0);
}
