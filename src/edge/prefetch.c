/* berth-edge prefetch (see prefetch.h): a few GETs through the local
 * proxy on one kept-alive libcurl connection.  Manifests are read into
 * memory (bounded) to find what they reference; blobs are counted and
 * dropped. */
#include "edge/prefetch.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/dynbuf.h"
#include "common/error.h"
#include "oci/digest.h"
#include "oci/names.h"

#define MANIFEST_MAX ((size_t)4 << 20)
#define URL_MAX 1024
/* An index of indexes of manifests is as deep as it goes. */
#define DEPTH_MAX 3

static const char accept_manifests[] =
	"Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
	"application/vnd.docker.distribution.manifest.list.v2+json, "
	"application/vnd.docker.distribution.manifest.v2+json";

typedef struct prefetch {
	CURL *curl;
	struct curl_slist *manifest_headers;
	const char *proxy_url;
	char repository[256];
	char os[32], arch[32], variant[32]; /* the platform asked for; os[0] == 0: all */
	FILE *progress;
	int tty;
	brt_prefetch_result *result;
	/* the current transfer */
	brt_dynbuf *body; /* NULL: count and drop */
	uint64_t received;
	char what[BRT_DIGEST_STR_MAX + 32];
} prefetch;

static size_t on_data(char *data, size_t size, size_t count, void *payload)
{
	prefetch *p = payload;
	size_t len = size * count;

	if (p->body && brt_dynbuf_add(p->body, data, len) < 0)
		return 0;
	p->received += len;
	return len;
}

static int on_progress(void *payload, curl_off_t total, curl_off_t now, curl_off_t up_total,
		       curl_off_t up_now)
{
	prefetch *p = payload;

	(void)up_total;
	(void)up_now;
	if (p->tty && total > 0)
		fprintf(p->progress, "\r  %s  %.1f / %.1f MiB ", p->what, (double)now / 1048576.0,
			(double)total / 1048576.0);
	return 0;
}

/* GET /v2/<repository>/<kind>/<reference> through the proxy; 0 for a
 * 200 with the whole body. */
static int get(prefetch *p, const char *kind, const char *reference, brt_dynbuf *body)
{
	char url[URL_MAX];
	long status = 0;
	CURLcode rc;

	if (snprintf(url, sizeof(url), "%s/v2/%s/%s/%s", p->proxy_url, p->repository, kind, reference) >=
	    (int)sizeof(url))
		return brt_error_set(BRT_EINVALID, "reference too long");
	snprintf(p->what, sizeof(p->what), "%s", reference);
	p->body = body;
	p->received = 0;
	curl_easy_setopt(p->curl, CURLOPT_URL, url);
	curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, body ? p->manifest_headers : NULL);
	rc = curl_easy_perform(p->curl);
	curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &status);
	if (p->tty)
		fputs("\r\033[K", p->progress);
	if (rc != CURLE_OK)
		return brt_error_set(BRT_EIO, "%s %s: %s", kind, reference, curl_easy_strerror(rc));
	if (status != 200)
		return brt_error_set(BRT_EIO, "%s %s: the proxy answered %ld%s%.*s", kind, reference, status,
				     body ? ": " : "", body ? (int)brt_dynbuf_len(body) : 0,
				     body ? (const char *)brt_dynbuf_ptr(body) : "");
	fprintf(p->progress, "  %-9s %s  %llu bytes\n", kind, reference, (unsigned long long)p->received);
	return 0;
}

static int fetch_blob(prefetch *p, json_t *descriptor)
{
	const char *digest = json_string_value(json_object_get(descriptor, "digest"));
	brt_digest d;
	int error;

	if (!digest || brt_digest_parse(&d, digest, strlen(digest)) < 0)
		return brt_error_set(BRT_EINVALID, "a descriptor without a valid digest");
	if ((error = get(p, "blobs", d.str, NULL)) == 0) {
		p->result->blobs++;
		p->result->bytes += p->received;
	}
	return error;
}

static int platform_matches(const prefetch *p, json_t *descriptor)
{
	json_t *platform = json_object_get(descriptor, "platform");
	const char *os = json_string_value(json_object_get(platform, "os"));
	const char *arch = json_string_value(json_object_get(platform, "architecture"));
	const char *variant = json_string_value(json_object_get(platform, "variant"));

	if (!p->os[0])
		return 1;
	return os && arch && strcmp(os, p->os) == 0 && strcmp(arch, p->arch) == 0 &&
	       (!p->variant[0] || (variant && strcmp(variant, p->variant) == 0));
}

static const char *const blob_lists[] = {"layers", "blobs"};

/* A manifest by tag or digest, and everything it references. */
static int fetch_manifest(prefetch *p, const char *reference, int depth)
{
	brt_dynbuf body;
	json_t *doc = NULL, *list, *item;
	json_error_t json_error;
	unsigned int matched = 0;
	size_t i;
	int error;

	if (depth > DEPTH_MAX)
		return brt_error_set(BRT_EINVALID, "indexes nested deeper than %d", DEPTH_MAX);
	brt_dynbuf_init(&body, MANIFEST_MAX);
	if ((error = get(p, "manifests", reference, &body)) < 0)
		goto done;
	p->result->manifests++;
	p->result->bytes += p->received;
	if (!(doc = json_loadb(brt_dynbuf_ptr(&body), brt_dynbuf_len(&body), 0, &json_error)) ||
	    !json_is_object(doc)) {
		error = brt_error_set(BRT_EINVALID, "manifest %s is not JSON: %s", reference,
				      json_error.text);
		goto done;
	}
	if (json_is_array(list = json_object_get(doc, "manifests"))) {
		for (i = 0; i < json_array_size(list); i++) {
			const char *digest;

			item = json_array_get(list, i);
			digest = json_string_value(json_object_get(item, "digest"));
			if (!platform_matches(p, item))
				continue;
			matched++;
			if (!digest) {
				error = brt_error_set(BRT_EINVALID, "an index entry without a digest");
				goto done;
			}
			if ((error = fetch_manifest(p, digest, depth + 1)) < 0)
				goto done;
		}
		if (!matched && depth == 0) {
			error = brt_error_set(BRT_ENOTFOUND, "no platform of %s matches %s/%s%s%s", reference,
					      p->os, p->arch, p->variant[0] ? "/" : "", p->variant);
			goto done;
		}
	}
	if ((item = json_object_get(doc, "config")) && json_is_object(item) &&
	    (error = fetch_blob(p, item)) < 0)
		goto done;
	/* Image manifests list layers; artifact manifests may say blobs. */
	for (size_t k = 0; k < sizeof(blob_lists) / sizeof(blob_lists[0]); k++) {
		if (!json_is_array(list = json_object_get(doc, blob_lists[k])))
			continue;
		for (i = 0; i < json_array_size(list); i++)
			if ((error = fetch_blob(p, json_array_get(list, i))) < 0)
				goto done;
	}
done:
	json_decref(doc);
	brt_dynbuf_free(&body);
	return error;
}

static int parse_platform(prefetch *p, const char *platform)
{
	const char *slash = strchr(platform, '/'), *second;
	size_t os_len;

	if (!slash || slash == platform || !slash[1])
		return brt_error_set(BRT_EINVALID,
				     "a platform is os/architecture[/variant], e.g. linux/arm64");
	os_len = (size_t)(slash - platform);
	second = strchr(slash + 1, '/');
	if (os_len >= sizeof(p->os) || strlen(slash + 1) >= sizeof(p->arch) || (second && !second[1]) ||
	    (second && strchr(second + 1, '/')))
		return brt_error_set(BRT_EINVALID,
				     "a platform is os/architecture[/variant], e.g. linux/arm64");
	memcpy(p->os, platform, os_len);
	p->os[os_len] = '\0';
	snprintf(p->arch, sizeof(p->arch), "%.*s",
		 (int)(second ? (size_t)(second - slash - 1) : strlen(slash + 1)), slash + 1);
	snprintf(p->variant, sizeof(p->variant), "%s", second ? second + 1 : "");
	return 0;
}

int brt_edge_prefetch(brt_prefetch_result *out, const char *proxy_url, const char *reference,
		      const char *platform, FILE *progress)
{
	prefetch p;
	const char *at = strchr(reference, '@'), *colon = strrchr(reference, ':'), *tag;
	size_t name_len;
	brt_digest d;
	int error = 0;

	memset(out, 0, sizeof(*out));
	memset(&p, 0, sizeof(p));
	p.proxy_url = proxy_url;
	p.progress = progress;
	p.tty = isatty(fileno(progress));
	p.result = out;
	if (at) {
		name_len = (size_t)(at - reference);
		tag = at + 1;
		if (brt_digest_parse(&d, tag, strlen(tag)) < 0)
			return brt_error_set(BRT_EINVALID, "%s: not a valid digest", tag);
	} else if (colon && !strchr(colon, '/')) {
		name_len = (size_t)(colon - reference);
		tag = colon + 1;
		if (!brt_tag_valid(tag, strlen(tag)))
			return brt_error_set(BRT_EINVALID, "%s: not a valid tag", tag);
	} else {
		return brt_error_set(BRT_EINVALID,
				     "a reference is <repository>:<tag> or <repository>@<digest>");
	}
	if (name_len >= sizeof(p.repository) || !brt_name_valid(reference, name_len))
		return brt_error_set(BRT_EINVALID, "%.*s: not a valid repository name", (int)name_len,
				     reference);
	memcpy(p.repository, reference, name_len);
	p.repository[name_len] = '\0';
	if (platform && (error = parse_platform(&p, platform)) < 0)
		return error;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(p.curl = curl_easy_init()) ||
	    !(p.manifest_headers = curl_slist_append(NULL, accept_manifests))) {
		error = brt_error_set(BRT_ENOMEM, "cannot set up libcurl");
		goto done;
	}
	curl_easy_setopt(p.curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(p.curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(p.curl, CURLOPT_CONNECTTIMEOUT, 10L);
	/* A download may wait on a slow link; give up after a minute without
	 * a byte. */
	curl_easy_setopt(p.curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(p.curl, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(p.curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(p.curl, CURLOPT_WRITEDATA, &p);
	curl_easy_setopt(p.curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(p.curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(p.curl, CURLOPT_XFERINFODATA, &p);
	error = fetch_manifest(&p, tag, 0);
done:
	curl_slist_free_all(p.manifest_headers);
	if (p.curl)
		curl_easy_cleanup(p.curl);
	return error;
}
