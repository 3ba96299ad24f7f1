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

/* Resolve the reference: a digest (BRT_EDIGEST if malformed) or a tag.
 * A string outside the tag grammar is refused where it would be stored (a
 * PUT: BRT_EINVALID, 400 MANIFEST_INVALID); where it is only looked up
 * (GET, HEAD, DELETE) it names no manifest, and the answer is the one for
 * any missing manifest (BRT_ENOTFOUND, 404 MANIFEST_UNKNOWN), as the OCI
 * conformance suite requires of ".INVALID_MANIFEST_NAME". */
static int parse_reference(brt_api_request *req, int *is_digest)
{
	*is_digest = is_digest_ref(req->reference);
	if (*is_digest)
		return brt_digest_parse(&req->digest, req->reference, strlen(req->reference)) < 0
			       ? BRT_EDIGEST
			       : 0;
	if (!brt_tag_valid(req->reference, strlen(req->reference)))
		return brt_error_set(req->http->method == BRT_PUT ? BRT_EINVALID : BRT_ENOTFOUND,
				     "invalid tag: no manifest can have it");
	return 0;
}

int api_manifest_put_begin(brt_api_request *req)
{
	const char *cl = api_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	size_t max = req->api->config->manifest_max;
	int is_digest, error;

	if ((error = parse_reference(req, &is_digest)) < 0)
		return error;
	if (cl) {
		char *end;
		unsigned long long n = strtoull(cl, &end, 10);
		if (*end != '\0' || n > max)
			return brt_error_set(BRT_ETOOBIG, "manifest is larger than the limit of %zu bytes",
					     max);
	}
	return 0;
}

int api_manifest_put_body(brt_api_request *req, const char *data, size_t len)
{
	size_t max = req->api->config->manifest_max;
	int error = brt_http_body_add(req->http, data, len, max);

	if (error == 0)
		return 0;
	if (error == BRT_ETOOBIG)
		error = brt_error_set(BRT_ETOOBIG, "manifest is larger than the limit of %zu bytes", max);
	/* BRT_ELIMIT: the server-wide budget for bodies held in memory is
	 * spent, transient: the answer says when to come back.  The rest is
	 * read and dropped: give the memory back now. */
	brt_http_body_free(&req->http->body);
	return error;
}

int api_manifest_put_end(brt_api_request *req)
{
	brt_meta *meta = req->api->meta;
	const brt_http_body *body = &req->http->body;
	const unsigned char *payload = body->data ? body->data : (const unsigned char *)"";
	brt_manifest_info info;
	brt_manifest_put put;
	brt_digest got;
	int is_digest = is_digest_ref(req->reference);
	const char *content_type = api_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *location;
	struct MHD_Response *resp;
	int error;

	brt_digest_of(&got, is_digest ? req->digest.alg : BRT_DIGEST_SHA256, payload, body->len);
	if (is_digest && strcmp(got.str, req->digest.str) != 0)
		return brt_error_set(BRT_EDIGEST, "manifest digest is %s", got.str);
	/* Whatever the parser objects to, the manifest is invalid. */
	if (brt_manifest_parse(&info, req->pool, (const char *)payload, body->len, content_type,
			       req->api->config->json_depth_max) < 0)
		return BRT_EINVALID;
	memset(&put, 0, sizeof(put));
	put.account_id = req->account;
	put.repo = req->repo;
	put.digest = got.str;
	put.media_type = info.media_type;
	put.payload = payload;
	put.size = body->len;
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
	/* BRT_EINVALID: a descriptor whose size is not the stored one;
	 * clients would trust it and fail (or be fooled) when pulling. */
	if ((error = brt_meta_manifest_put(meta, &put)) < 0)
		return error;
	resp = api_response_empty();
	location = brt_pool_printf(req->pool, "/v2/%s/manifests/%s", req->repo, got.str);
	if (resp && location) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
		MHD_add_response_header(resp, "Docker-Content-Digest", got.str);
		if (info.subject)
			MHD_add_response_header(resp, "OCI-Subject", info.subject);
	}
	api_send(req, 201, resp, 0);
	return 0;
}

struct accept_scan {
	const char *media_type;
	int seen; /* any Accept header at all */
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

/* A missing manifest is MANIFEST_UNKNOWN in a known repository and
 * NAME_UNKNOWN (BRT_ENOREPO) otherwise. */
static int unknown_error(brt_api_request *req, int error)
{
	brt_meta *meta = req->api->meta;

	if (error == BRT_ENOTFOUND && brt_meta_repo_exists(meta, req->repo) == BRT_ENOTFOUND)
		return brt_error_set(BRT_ENOREPO, "repository %s is not known", req->repo);
	return error;
}

int api_manifest_get(brt_api_request *req)
{
	brt_meta *meta = req->api->meta;
	brt_manifest m;
	struct accept_scan scan = {0};
	struct MHD_Response *resp;
	const char *inm;
	char etag[BRT_DIGEST_STR_MAX + 3];
	int is_digest, error;

	if ((error = parse_reference(req, &is_digest)) < 0)
		return error;
	error = brt_meta_manifest_get(meta, &m, req->pool, req->repo,
				      is_digest ? req->digest.str : req->reference, is_digest);
	if (error < 0)
		return unknown_error(req, error);
	scan.media_type = m.media_type;
	MHD_get_connection_values(req->http->conn, MHD_HEADER_KIND, scan_accept, &scan);
	if (scan.seen && !scan.matched)
		return brt_error_set(BRT_ENOTFOUND, "manifest is %s, which the client does not accept",
				     m.media_type);
	snprintf(etag, sizeof(etag), "\"%s\"", m.digest);
	inm = api_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm && (strstr(inm, m.digest) || strcmp(inm, "*") == 0)) {
		resp = api_response_empty();
		if (resp) {
			MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
			MHD_add_response_header(resp, "Docker-Content-Digest", m.digest);
		}
		api_send(req, 304, resp, 0);
		return 0;
	}
	resp = MHD_create_response_from_buffer(m.size, (void *)m.payload, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return brt_error_set(BRT_ENOMEM, "cannot create a response");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, m.media_type);
	MHD_add_response_header(resp, "Docker-Content-Digest", m.digest);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	api_send(req, 200, resp, req->http->method == BRT_HEAD ? 0 : m.size);
	return 0;
}

int api_manifest_delete(brt_api_request *req)
{
	brt_meta *meta = req->api->meta;
	int is_digest, error;

	if ((error = parse_reference(req, &is_digest)) < 0)
		return error;
	if (is_digest)
		error = brt_meta_manifest_delete(meta, req->repo, req->digest.str);
	else
		error = brt_meta_tag_delete(meta, req->repo, req->reference);
	if (error < 0)
		return unknown_error(req, error);
	api_send(req, 202, api_response_empty(), 0);
	return 0;
}
