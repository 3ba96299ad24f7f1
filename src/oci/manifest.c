/* Parsing of pushed manifests with jansson.  The payload is parsed once into
 * a temporary tree, checked (no duplicate keys, depth, media type, schema
 * version, descriptors), and the few facts the registry keeps are copied into the
 * request pool; the tree is freed before returning, so nothing in the
 * result points into jansson memory. */
#include "oci/manifest.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "common/error.h"
#include "oci/digest.h"

#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"

/* A view of the Content-Type header. */
typedef struct span {
	const char *p;
	size_t len;
} span;

static int span_equals(span s, const char *literal)
{
	return strlen(literal) == s.len && strncasecmp(s.p, literal, s.len) == 0;
}

static int type_equals(const char *a, const char *b)
{
	return a && strcasecmp(a, b) == 0;
}

/* RFC 9110 token characters: what type and subtype are made of.  Checked
 * because the effective type is sent back verbatim as a response header. */
static int is_tchar(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* type "/" subtype, both non-empty tokens. */
static int media_type_valid(const char *s, size_t len)
{
	size_t slash = 0, slashes = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '/') {
			slash = i;
			slashes++;
		} else if (!is_tchar(s[i])) {
			return 0;
		}
	}
	return slashes == 1 && slash > 0 && slash + 1 < len;
}

/* The media type of a Content-Type header without parameters and
 * surrounding whitespace; empty when absent or when it is one of the
 * generic types that clients send without meaning a manifest type. */
static span content_type_essence(const char *header)
{
	static const char *const generic[] = {
		"application/json",
		"application/octet-stream",
		"text/plain",
		"application/x-www-form-urlencoded",
		"*/*",
	};
	span s = {header, 0};

	if (!header)
		return s;
	while (header[s.len] && header[s.len] != ';')
		s.len++;
	while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
		s.len--;
	for (size_t i = 0; i < sizeof(generic) / sizeof(generic[0]); i++) {
		if (span_equals(s, generic[i]))
			s.len = 0;
	}
	return s;
}

static int is_schema1_type(const char *type)
{
	return type_equals(type, BRT_MT_DOCKER_V1_SIGNED) || type_equals(type, MT_DOCKER_V1);
}

int brt_manifest_type_is_index(const char *media_type)
{
	return type_equals(media_type, BRT_MT_OCI_INDEX) || type_equals(media_type, BRT_MT_DOCKER_LIST);
}

static int type_is_image(const char *media_type)
{
	return type_equals(media_type, BRT_MT_OCI_MANIFEST) ||
	       type_equals(media_type, BRT_MT_DOCKER_MANIFEST);
}

/* 1 if no container in `value` is nested deeper than `max_depth`, counting
 * `value` itself as level `depth`.  Recursion is bounded by max_depth and
 * by jansson's own parser depth limit. */
static int depth_within(const json_t *value, size_t depth, size_t max_depth)
{
	const char *key;
	json_t *child;
	size_t i;

	if (!json_is_object(value) && !json_is_array(value))
		return 1;
	if (depth > max_depth)
		return 0;
	if (json_is_array(value)) {
		json_array_foreach(value, i, child) {
			if (!depth_within(child, depth + 1, max_depth))
				return 0;
		}
		return 1;
	}
	json_object_foreach((json_t *)value, key, child) {
		if (!depth_within(child, depth + 1, max_depth))
			return 0;
	}
	return 1;
}

/* A member that is absent or JSON null counts as not given. */
static json_t *member(const json_t *object, const char *key)
{
	json_t *v = json_object_get(object, key);

	return json_is_null(v) ? NULL : v;
}

static int pool_copy(const char **out, brt_pool *pool, const char *s)
{
	char *copy = brt_pool_strdup(pool, s);

	if (!copy)
		return brt_error_set(BRT_ENOMEM, "out of request memory");
	*out = copy;
	return 0;
}

/* Check one descriptor and copy its digest into the pool; its size into
 * *size_out unless that is NULL. */
static int parse_descriptor(const char **digest_out, uint64_t *size_out, brt_pool *pool, const json_t *desc,
			    const char *where)
{
	json_t *media_type, *digest, *size;
	brt_digest parsed;

	if (!json_is_object(desc))
		return brt_error_set(BRT_EINVALID, "%s: descriptor is not an object", where);
	media_type = json_object_get(desc, "mediaType");
	if (!json_is_string(media_type) || json_string_length(media_type) == 0)
		return brt_error_set(BRT_EINVALID, "%s: mediaType must be a non-empty string", where);
	digest = json_object_get(desc, "digest");
	if (!json_is_string(digest))
		return brt_error_set(BRT_EINVALID, "%s: digest must be a string", where);
	/* An unknown algorithm is as unusable here as a malformed digest. */
	if (brt_digest_parse(&parsed, json_string_value(digest), json_string_length(digest)) < 0)
		return brt_error_set(BRT_EINVALID, "%s: digest is invalid", where);
	size = json_object_get(desc, "size");
	if (!json_is_integer(size) || json_integer_value(size) < 0)
		return brt_error_set(BRT_EINVALID, "%s: size must be a non-negative integer", where);
	if (size_out)
		*size_out = (uint64_t)json_integer_value(size);
	return pool_copy(digest_out, pool, parsed.str);
}

/* Room for `count` descriptors' digests and sizes. */
static int alloc_descriptor_arrays(const char ***digests_out, uint64_t **sizes_out, brt_pool *pool,
				   size_t count)
{
	size_t bytes, size_bytes;

	if (__builtin_mul_overflow(count, sizeof(**digests_out), &bytes) ||
	    __builtin_mul_overflow(count, sizeof(**sizes_out), &size_bytes))
		return brt_error_set(BRT_ENOMEM, "too many descriptors");
	*digests_out = brt_pool_alloc(pool, bytes);
	*sizes_out = brt_pool_alloc(pool, size_bytes);
	if (!*digests_out || !*sizes_out)
		return brt_error_set(BRT_ENOMEM, "out of request memory");
	return 0;
}

/* Parse the descriptors of array `array` (named `name`) into
 * digests[first..]. */
static int parse_descriptor_array(const char **digests, uint64_t *sizes, brt_pool *pool, const json_t *array,
				  const char *name)
{
	char where[64];
	json_t *desc;
	size_t i;
	int error = 0;

	json_array_foreach(array, i, desc) {
		snprintf(where, sizeof(where), "%s[%zu]", name, i);
		if ((error = parse_descriptor(&digests[i], &sizes[i], pool, desc, where)) < 0)
			break;
	}
	return error;
}

/* config + layers[]: blobs = config digest, then each layer's. */
static int parse_image(brt_manifest_info *out, brt_pool *pool, const json_t *root)
{
	json_t *config = member(root, "config"), *layers = member(root, "layers");
	size_t layer_count = 0, count;
	const char **blobs = NULL;
	uint64_t *sizes = NULL;
	int error = 0;

	if (!config)
		return brt_error_set(BRT_EINVALID, "image manifest has no config descriptor");
	if (layers && !json_is_array(layers))
		return brt_error_set(BRT_EINVALID, "layers must be an array");
	if (layers)
		layer_count = json_array_size(layers);
	if (__builtin_add_overflow(layer_count, 1, &count))
		return brt_error_set(BRT_ENOMEM, "too many layers");
	if ((error = alloc_descriptor_arrays(&blobs, &sizes, pool, count)) < 0)
		return error;
	if ((error = parse_descriptor(&blobs[0], &sizes[0], pool, config, "config")) < 0)
		return error;
	if (layers && (error = parse_descriptor_array(blobs + 1, sizes + 1, pool, layers, "layers")) < 0)
		return error;
	out->kind = BRT_MANIFEST_IMAGE;
	out->blobs = blobs;
	out->blob_sizes = sizes;
	out->blob_count = count;
	return 0;
}

/* manifests[]: children = each entry's digest. */
static int parse_index(brt_manifest_info *out, brt_pool *pool, const json_t *root)
{
	json_t *manifests = member(root, "manifests");
	const char **children = NULL;
	uint64_t *sizes = NULL;
	size_t count;
	int error = 0;

	if (!json_is_array(manifests))
		return brt_error_set(BRT_EINVALID, "index has no manifests array");
	count = json_array_size(manifests);
	if (count > 0) {
		if ((error = alloc_descriptor_arrays(&children, &sizes, pool, count)) < 0)
			return error;
		if ((error = parse_descriptor_array(children, sizes, pool, manifests, "manifests")) < 0)
			return error;
	}
	out->kind = BRT_MANIFEST_INDEX;
	out->children = children;
	out->child_sizes = sizes;
	out->child_count = count;
	return 0;
}

/* The mediaType field: NULL when absent, else a valid media type string. */
static int media_type_field(const char **out, const json_t *root)
{
	json_t *field = json_object_get(root, "mediaType");

	*out = NULL;
	if (!field)
		return 0;
	if (!json_is_string(field) || !media_type_valid(json_string_value(field), json_string_length(field)))
		return brt_error_set(BRT_EINVALID, "mediaType must be a media type string");
	*out = json_string_value(field);
	return 0;
}

/* The effective media type: Content-Type, else the mediaType field, else
 * what the shape implies (Helm 3.8+ and others omit the field). */
static int effective_media_type(const char **out, brt_pool *pool, const json_t *root,
				const char *content_type)
{
	span header = content_type_essence(content_type);
	const char *field;
	char *copy;
	int error = 0;

	if ((error = media_type_field(&field, root)) < 0)
		return error;
	if (header.len == 0) {
		if (field)
			return pool_copy(out, pool, field);
		*out = member(root, "manifests") ? BRT_MT_OCI_INDEX : BRT_MT_OCI_MANIFEST;
		return 0;
	}
	if (!media_type_valid(header.p, header.len))
		return brt_error_set(BRT_EINVALID, "Content-Type is not a media type");
	if (field && !span_equals(header, field))
		return brt_error_set(BRT_EINVALID, "Content-Type %.*s does not match mediaType %s",
				     (int)(header.len > 128 ? 128 : header.len), header.p, field);
	if (!(copy = brt_pool_strndup(pool, header.p, header.len)))
		return brt_error_set(BRT_ENOMEM, "out of request memory");
	*out = copy;
	return 0;
}

static int check_schema_version(const json_t *root)
{
	json_t *version = json_object_get(root, "schemaVersion");

	if (json_is_integer(version) && json_integer_value(version) == 1)
		return brt_error_set(BRT_EUNSUPPORTED, "Docker schema1 manifests are not supported");
	if (!json_is_integer(version) || json_integer_value(version) != 2)
		return brt_error_set(BRT_EINVALID, "schemaVersion must be 2");
	return 0;
}

static int parse_subject(brt_manifest_info *out, brt_pool *pool, const json_t *root)
{
	json_t *subject = member(root, "subject");

	if (!subject)
		return 0;
	return parse_descriptor(&out->subject, NULL, pool, subject, "subject");
}

/* Per the distribution spec's referrers rules: the manifest's own
 * artifactType when present and not empty; otherwise, for an image
 * manifest, its config's mediaType (whatever it is, the empty-config and
 * image-config types included); otherwise none. */
static int parse_artifact_type(brt_manifest_info *out, brt_pool *pool, const json_t *root)
{
	json_t *field = member(root, "artifactType");

	if (field && !json_is_string(field))
		return brt_error_set(BRT_EINVALID, "artifactType must be a string");
	if (field && json_string_length(field) > 0) {
		if (!media_type_valid(json_string_value(field), json_string_length(field)))
			return brt_error_set(BRT_EINVALID, "artifactType is not a media type");
		return pool_copy(&out->artifact_type, pool, json_string_value(field));
	}
	if (out->kind != BRT_MANIFEST_IMAGE)
		return 0;
	/* parse_image has checked this is a non-empty string. */
	field = json_object_get(json_object_get(root, "config"), "mediaType");
	return pool_copy(&out->artifact_type, pool, json_string_value(field));
}

/* A string-to-string map, kept as compact JSON text; none when empty. */
static int parse_annotations(brt_manifest_info *out, brt_pool *pool, const json_t *root)
{
	json_t *annotations = member(root, "annotations"), *value;
	const char *key;
	char *text;
	int error = 0;

	if (!annotations)
		return 0;
	if (!json_is_object(annotations))
		return brt_error_set(BRT_EINVALID, "annotations must be an object");
	json_object_foreach(annotations, key, value) {
		if (!json_is_string(value))
			return brt_error_set(BRT_EINVALID, "annotation values must be strings");
	}
	if (json_object_size(annotations) == 0)
		return 0;
	if (!(text = json_dumps(annotations, JSON_COMPACT)))
		return brt_error_set(BRT_ENOMEM, "cannot encode annotations");
	error = pool_copy(&out->annotations, pool, text);
	free(text);
	return error;
}

static int is_index_kind(const char *media_type, const json_t *root)
{
	if (brt_manifest_type_is_index(media_type))
		return 1;
	if (type_is_image(media_type))
		return 0;
	return member(root, "manifests") != NULL;
}

static int parse_root(brt_manifest_info *out, brt_pool *pool, const json_t *root, const char *content_type)
{
	int error = 0;

	if ((error = effective_media_type(&out->media_type, pool, root, content_type)) < 0)
		return error;
	if (is_schema1_type(out->media_type))
		return brt_error_set(BRT_EUNSUPPORTED, "Docker schema1 manifests are not supported");
	if ((error = check_schema_version(root)) < 0)
		return error;
	if (is_index_kind(out->media_type, root))
		error = parse_index(out, pool, root);
	else
		error = parse_image(out, pool, root);
	if (error < 0)
		return error;
	if ((error = parse_subject(out, pool, root)) < 0)
		return error;
	if ((error = parse_artifact_type(out, pool, root)) < 0)
		return error;
	return parse_annotations(out, pool, root);
}

int brt_manifest_parse(brt_manifest_info *out, brt_pool *pool, const char *payload, size_t len,
		       const char *content_type, size_t max_depth)
{
	brt_manifest_info info;
	json_error_t json_error;
	json_t *root = NULL;
	int error = 0;

	memset(&info, 0, sizeof(info));
	if (!payload || len == 0) {
		error = brt_error_set(BRT_EINVALID, "manifest is empty");
		goto done;
	}
	/* Duplicate keys, at any depth (jansson applies the flag to every
	 * object it parses): clients whose parser keeps the first of two keys
	 * would see other blobs than the ones checked here. */
	root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &json_error);
	if (!root) {
		error = brt_error_set(BRT_EINVALID, "manifest is not valid JSON: %s (line %d)",
				      json_error.text, json_error.line);
		goto done;
	}
	if (!json_is_object(root)) {
		error = brt_error_set(BRT_EINVALID, "manifest is not a JSON object");
		goto done;
	}
	if (!depth_within(root, 1, max_depth)) {
		error = brt_error_set(BRT_EINVALID, "manifest nests deeper than %zu levels", max_depth);
		goto done;
	}
	if ((error = parse_root(&info, pool, root, content_type)) < 0)
		goto done;
	*out = info;
done:
	json_decref(root);
	return error;
}
