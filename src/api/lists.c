/* Listings: tags of a repository and the catalog (paginated in byte order
 * with n / last and a Link header when more remain), and referrers of a
 * digest (an OCI image index, optionally filtered by artifactType). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/internal.h"
#include "api/query.h"
#include "auth/auth.h"
#include "oci/manifest.h"

static int append_name(const char *name, void *payload)
{
	return json_array_append_new(payload, json_string(name)) == 0 ? 0 : BRT_ENOMEM;
}

/* Read n and last (BRT_EINVALID for malformed ones). */
static int page_params(brt_api_request *req, size_t *n_out, const char **last_out)
{
	return brt_query_page(n_out, last_out, api_query(req, "n"), api_query(req, "last"),
			      req->api->config->page_max);
}

/* Send `body` as JSON, with a Link to the next page when `more` (`items`
 * and `path` are only read then). */
static int send_page(brt_api_request *req, json_t *body, json_t *items, int more, size_t n, const char *path)
{
	char *text = json_dumps(body, JSON_COMPACT);
	struct MHD_Response *resp;
	size_t len, count = json_array_size(items);

	if (!text)
		return brt_error_set(BRT_ENOMEM, "out of memory");
	len = strlen(text);
	resp = api_response_json(text, len, 1);
	free(text);
	if (resp && more && count > 0) {
		const char *last = json_string_value(json_array_get(items, count - 1));
		char *link = brt_pool_printf(req->pool, "<%s?n=%zu&last=%s>; rel=\"next\"", path, n, last);
		if (link)
			MHD_add_response_header(resp, "Link", link);
	}
	api_send(req, 200, resp, len);
	return 0;
}

int api_tags_list(brt_api_request *req)
{
	brt_meta *meta = req->api->meta;
	json_t *body = NULL, *tags = json_array();
	const char *last, *path;
	size_t n;
	int more = 0, error;

	if (!tags) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	if ((error = page_params(req, &n, &last)) < 0 ||
	    (error = brt_meta_tags_list(meta, req->repo, last, n, append_name, tags, &more)) < 0)
		goto done;
	body = json_pack("{s:s,s:O}", "name", req->repo, "tags", tags);
	path = brt_pool_printf(req->pool, "/v2/%s/tags/list", req->repo);
	if (!body || !path) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	error = send_page(req, body, tags, more, n, path);
done:
	json_decref(body);
	json_decref(tags);
	return error;
}

int api_catalog(brt_api_request *req)
{
	brt_meta *meta = req->api->meta;
	json_t *body = NULL, *repos = json_array();
	const char *last, *prefix;
	size_t n;
	int more = 0, error;

	if (!repos) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	if ((error = page_params(req, &n, &last)) < 0)
		goto done;
	prefix = brt_auth_catalog_prefix(api_principal(req), req->pool);
	if (!prefix && req->api->auth.enabled) {
		error = brt_error_set(BRT_ENOMEM, "out of request memory");
		goto done;
	}
	if ((error = brt_meta_catalog_list(meta, prefix, last, n, append_name, repos, &more)) < 0)
		goto done;
	body = json_pack("{s:O}", "repositories", repos);
	if (!body) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	error = send_page(req, body, repos, more, n, "/v2/_catalog");
done:
	json_decref(body);
	json_decref(repos);
	return error;
}

int api_usage(brt_api_request *req)
{
	const brt_principal *p = api_principal(req);
	json_t *body = NULL;
	brt_usage u;
	int error;

	/* With authentication off nobody has an account to ask about. */
	if (p->kind == BRT_PRINCIPAL_OPEN || !p->account[0])
		return brt_error_set(BRT_ENOTFOUND, "usage is per account: authentication is off");
	if ((error = brt_meta_usage_get(req->api->meta, &u, p->account)) == BRT_ENOTFOUND) {
		memset(&u, 0, sizeof(u));
		error = 0;
	}
	if (error < 0)
		return error;
	body = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "account", p->account, "bytes",
			 (json_int_t)u.bytes, "blobs", (json_int_t)u.blobs, "blob_bytes",
			 (json_int_t)u.blob_bytes, "manifests", (json_int_t)u.manifests, "manifest_bytes",
			 (json_int_t)u.manifest_bytes, "repositories", (json_int_t)u.repositories, "quota",
			 u.has_quota ? json_integer((json_int_t)u.quota_bytes) : json_null());
	if (!body)
		return brt_error_set(BRT_ENOMEM, "out of memory");
	error = send_page(req, body, NULL, 0, 0, NULL);
	json_decref(body);
	return error;
}

struct referrer_acc {
	json_t *list;
	size_t max;
};

static int append_referrer(const brt_referrer *ref, void *payload)
{
	struct referrer_acc *acc = payload;
	json_t *d;

	if (json_array_size(acc->list) >= acc->max)
		return 1; /* stop: enough */
	d = json_pack("{s:s,s:s,s:I}", "mediaType", ref->media_type, "digest", ref->digest, "size",
		      (json_int_t)ref->size);
	if (!d)
		return BRT_ENOMEM;
	if (ref->artifact_type)
		json_object_set_new(d, "artifactType", json_string(ref->artifact_type));
	if (ref->annotations) {
		json_t *a = json_loads(ref->annotations, JSON_REJECT_DUPLICATES, NULL);
		if (a && json_is_object(a) && json_object_size(a) > 0)
			json_object_set_new(d, "annotations", a);
		else
			json_decref(a);
	}
	return json_array_append_new(acc->list, d) == 0 ? 0 : BRT_ENOMEM;
}

int api_referrers(brt_api_request *req)
{
	brt_meta *meta = req->api->meta;
	struct referrer_acc acc = {json_array(), req->api->config->referrers_max};
	const char *filter = api_query(req, "artifactType");
	json_t *body = NULL;
	char *text = NULL;
	struct MHD_Response *resp;
	size_t len;
	int error;

	if (!acc.list) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	if (brt_digest_parse(&req->digest, req->reference, strlen(req->reference)) < 0) {
		error = BRT_EDIGEST;
		goto done;
	}
	if (filter && !*filter)
		filter = NULL;
	if ((error = brt_meta_referrers_list(meta, req->repo, req->digest.str, filter, append_referrer,
					     &acc)) < 0)
		goto done;
	body = json_pack("{s:i,s:s,s:O}", "schemaVersion", 2, "mediaType", BRT_MT_OCI_INDEX, "manifests",
			 acc.list);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!text) {
		error = brt_error_set(BRT_ENOMEM, "out of memory");
		goto done;
	}
	len = strlen(text);
	resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_COPY);
	if (resp) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, BRT_MT_OCI_INDEX);
		if (filter)
			MHD_add_response_header(resp, "OCI-Filters-Applied", "artifactType");
	}
	api_send(req, 200, resp, len);
done:
	free(text);
	json_decref(body);
	json_decref(acc.list);
	return error;
}
