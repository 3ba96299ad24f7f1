/* Tests for oci/manifest: the manifest shapes real clients push (OCI image
 * and index, Docker schema2 and manifest list, Helm charts, artifacts with
 * subject and artifactType), the Content-Type / mediaType rules, and the
 * many ways a payload can be malformed. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/error.h"
#include "common/pool.h"
#include "oci/manifest.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define D512                                                                      \
	"sha512:4444444444444444444444444444444444444444444444444444444444444444" \
	"4444444444444444444444444444444444444444444444444444444444444444"
#define EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

#define MT_IMAGE_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_EMPTY "application/vnd.oci.empty.v1+json"
#define MT_HELM_CONFIG "application/vnd.cncf.helm.config.v1+json"
#define MT_HELM_CHART "application/vnd.cncf.helm.chart.content.v1.tar+gzip"

#define DESC(mt, d, size) "{\"mediaType\":\"" mt "\",\"digest\":\"" d "\",\"size\":" #size "}"

#define DEPTH 16

static const char oci_image[] =
	"{\n"
	"  \"schemaVersion\": 2,\n"
	"  \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
	"  \"config\": " DESC(MT_IMAGE_CONFIG, D1, 1470) ",\n"
	"  \"layers\": [\n"
	"    " DESC("application/vnd.oci.image.layer.v1.tar+gzip", D2, 2811478) ",\n"
	"    " DESC("application/vnd.oci.image.layer.v1.tar+gzip", D3, 0) "\n"
	"  ]\n"
	"}\n";

static const char oci_index[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
	"\"manifests\":["
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D1
	"\","
	"\"size\":7143,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
	"{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D2
	"\","
	"\"size\":7682,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\","
	"\"os.features\":[\"x\"]}}],"
	"\"annotations\":{\"com.example.key1\":\"value1\",\"com.example.key2\":\"value2\"}}";

static const char docker_manifest[] =
	"{\"schemaVersion\":2,"
	"\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
	"\"config\":" DESC(MT_DOCKER_CONFIG, D1, 7023) ","
	"\"layers\":[" DESC("application/vnd.docker.image.rootfs.diff.tar.gzip", D2, 32654) ","
	DESC("application/vnd.docker.image.rootfs.diff.tar.gzip", D3, 16724) "]}";

static const char docker_list[] =
	"{\"schemaVersion\":2,"
	"\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\","
	"\"manifests\":["
	"{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"" D3
	"\","
	"\"size\":7143,\"platform\":{\"architecture\":\"ppc64le\",\"os\":\"linux\"}}]}";

/* What Helm 3.8+ pushes: no mediaType field, the type is in Content-Type. */
static const char helm_chart[] =
	"{\"schemaVersion\":2,"
	"\"config\":" DESC(MT_HELM_CONFIG, D1, 117) ","
	"\"layers\":[" DESC(MT_HELM_CHART, D2, 3638) "],"
	"\"annotations\":{\"org.opencontainers.image.created\":\"2024-01-01T00:00:00Z\","
	"\"org.opencontainers.image.title\":\"mychart\","
	"\"org.opencontainers.image.version\":\"0.1.0+build.1\"}}";

/* An artifact in the OCI 1.1 style: artifactType, empty config, subject. */
static const char signature[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	"\"artifactType\":\"application/vnd.example.signature.v1\","
	"\"config\":{\"mediaType\":\"" MT_EMPTY "\",\"digest\":\"" EMPTY_DIGEST "\",\"size\":2,"
	"\"data\":\"e30=\"},"
	"\"layers\":[" DESC("application/vnd.example.signature.v1+json", D3, 100) "],"
	"\"subject\":" DESC("application/vnd.oci.image.manifest.v1+json", D1, 1234) ","
	"\"annotations\":{\"org.example.signed-by\":\"me\",\"uni\":\"\\u00e9\\\"q\\\"\"}}";

static brt_pool pool;

static int parse(brt_manifest_info *info, const char *payload, const char *content_type)
{
	int rc;

	brt_pool_clear(&pool);
	memset(info, 0x5a, sizeof(*info)); /* success must set every field */
	rc = brt_manifest_parse(info, &pool, payload, strlen(payload), content_type, DEPTH);
	if (rc < 0)
		memset(info, 0, sizeof(*info)); /* so later checks fail, not crash */
	return rc;
}

/* arr[i], or NULL when out of range. */
static const char *at(const char **arr, size_t count, size_t i)
{
	return arr && i < count ? arr[i] : NULL;
}

static int parse_rc(const char *payload, const char *content_type)
{
	brt_manifest_info info;

	return parse(&info, payload, content_type);
}

static void test_oci_image(void)
{
	brt_manifest_info info;

	CHECK_EQ_INT(parse(&info, oci_image, NULL), 0);
	CHECK_EQ_INT(info.kind, BRT_MANIFEST_IMAGE);
	CHECK_EQ_STR(info.media_type, BRT_MT_OCI_MANIFEST);
	CHECK_EQ_STR(info.artifact_type, MT_IMAGE_CONFIG);
	CHECK(info.subject == NULL);
	CHECK(info.annotations == NULL);
	CHECK_EQ_INT(info.blob_count, 3);
	CHECK_EQ_STR(at(info.blobs, info.blob_count, 0), D1);
	CHECK_EQ_STR(at(info.blobs, info.blob_count, 1), D2);
	CHECK_EQ_STR(at(info.blobs, info.blob_count, 2), D3);
	CHECK_EQ_INT(info.child_count, 0);
	CHECK(info.children == NULL);

	/* Same with the matching Content-Type, with parameters and spaces. */
	CHECK_EQ_INT(parse(&info, oci_image, BRT_MT_OCI_MANIFEST), 0);
	CHECK_EQ_STR(info.media_type, BRT_MT_OCI_MANIFEST);
	CHECK_EQ_INT(parse(&info, oci_image, " " BRT_MT_OCI_MANIFEST " ; charset=utf-8"), 0);
	CHECK_EQ_STR(info.media_type, BRT_MT_OCI_MANIFEST);
	CHECK_EQ_INT(parse(&info, oci_image, "Application/VND.oci.image.manifest.v1+json"), 0);
	/* Generic types are no statement about the manifest type. */
	CHECK_EQ_INT(parse(&info, oci_image, "application/json"), 0);
	CHECK_EQ_STR(info.media_type, BRT_MT_OCI_MANIFEST);
	CHECK_EQ_INT(parse(&info, oci_image, "application/octet-stream"), 0);
	CHECK_EQ_STR(info.media_type, BRT_MT_OCI_MANIFEST);
	CHECK_EQ_INT(parse(&info, oci_image, "application/json; charset=utf-8"), 0);
	CHECK_EQ_INT(parse(&info, oci_image, ""), 0);
	CHECK_EQ_STR(info.media_type, BRT_MT_OCI_MANIFEST);
	CHECK_EQ_INT(parse(&info, oci_image, "  "), 0);

	/* The payload bytes are never modified. */
	{
		char copy[sizeof(oci_image)];
		memcpy(copy, oci_image, sizeof(copy));
		CHECK_EQ_INT(parse(&info, copy, NULL), 0);
		CHECK(memcmp(copy, oci_image, sizeof(copy)) == 0);
	}
}

static void test_oci_index(void)
{
	brt_manifest_info info;

	CHECK_EQ_INT(parse(&info, oci_index, BRT_MT_OCI_INDEX), 0);
	CHECK_EQ_INT(info.kind, BRT_MANIFEST_INDEX);
	CHECK_EQ_STR(info.media_type, BRT_MT_OCI_INDEX);
	CHECK(info.artifact_type == NULL);
	CHECK_EQ_INT(info.child_count, 2);
	CHECK_EQ_STR(at(info.children, info.child_count, 0), D1);
	CHECK_EQ_STR(at(info.children, info.child_count, 1), D2);
	CHECK_EQ_INT(info.blob_count, 0);
	CHECK(info.blobs == NULL);
	CHECK_EQ_STR(info.annotations, "{\"com.example.key1\":\"value1\",\"com.example.key2\":\"value2\"}");

	/* An empty index (what a referrers response looks like) is fine. */
	CHECK_EQ_INT(parse(&info,
			   "{\"schemaVersion\":2,\"mediaType\":\"" BRT_MT_OCI_INDEX "\",\"manifests\":[]}",
			   NULL),
		     0);
	CHECK_EQ_INT(info.kind, BRT_MANIFEST_INDEX);
	CHECK_EQ_INT(info.child_count, 0);
	CHECK(info.children == NULL);

	/* No mediaType and no Content-Type: the shape says index. */
	CHECK_EQ_INT(parse(&info,
			   "{\"schemaVersion\":2,\"manifests\":[" DESC(BRT_MT_OCI_MANIFEST, D1, 5) "]}",
			   NULL),
		     0);
	CHECK_EQ_INT(info.kind, BRT_MANIFEST_INDEX);
	CHECK_EQ_STR(info.media_type, BRT_MT_OCI_INDEX);

	/* An index with artifactType and a subject. */
	CHECK_EQ_INT(parse(&info,
			   "{\"schemaVersion\":2,\"mediaType\":\"" BRT_MT_OCI_INDEX "\","
			   "\"artifactType\":\"application/vnd.example.sbom\",\"manifests\":[],"
			   "\"subject\":" DESC(BRT_MT_OCI_INDEX, D512, 10) "}",
			   NULL),
		     0);
	CHECK_EQ_STR(info.artifact_type, "application/vnd.example.sbom");
	CHECK_EQ_STR(info.subject, D512);
}

static void test_docker(void)
{
	brt_manifest_info info;

	CHECK_EQ_INT(parse(&info, docker_manifest, BRT_MT_DOCKER_MANIFEST), 0);
	CHECK_EQ_INT(info.kind, BRT_MANIFEST_IMAGE);
	CHECK_EQ_STR(info.media_type, BRT_MT_DOCKER_MANIFEST);
	CHECK_EQ_STR(info.artifact_type, MT_DOCKER_CONFIG);
	CHECK_EQ_INT(info.blob_count, 3);
	CHECK_EQ_STR(at(info.blobs, info.blob_count, 0), D1);
	CHECK_EQ_STR(at(info.blobs, info.blob_count, 2), D3);

	CHECK_EQ_INT(parse(&info, docker_manifest, NULL), 0);
	CHECK_EQ_STR(info.media_type, BRT_MT_DOCKER_MANIFEST);

	CHECK_EQ_INT(parse(&info, docker_list, BRT_MT_DOCKER_LIST), 0);
	CHECK_EQ_INT(info.kind, BRT_MANIFEST_INDEX);
	CHECK_EQ_STR(info.media_type, BRT_MT_DOCKER_LIST);
	CHECK_EQ_INT(info.child_count, 1);
	CHECK_EQ_STR(at(info.children, info.child_count, 0), D3);
	CHECK(info.artifact_type == NULL);

	CHECK_EQ_INT(parse_rc(docker_manifest, BRT_MT_OCI_MANIFEST), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(docker_list, BRT_MT_OCI_INDEX), BRT_EINVALID);
}

static void test_schema1(void)
{
	static const char signed_v1[] =
		"{\"schemaVersion\":1,\"name\":\"library/hello\",\"tag\":\"latest\","
		"\"architecture\":\"amd64\",\"fsLayers\":[{\"blobSum\":\"" D1
		"\"}],"
		"\"history\":[],\"signatures\":[]}";

	CHECK_EQ_INT(parse_rc(signed_v1, BRT_MT_DOCKER_V1_SIGNED), BRT_EUNSUPPORTED);
	CHECK_EQ_INT(parse_rc(signed_v1, "application/vnd.docker.distribution.manifest.v1+json"),
		     BRT_EUNSUPPORTED);
	CHECK_EQ_INT(parse_rc(signed_v1, NULL), BRT_EUNSUPPORTED);
	CHECK_EQ_INT(parse_rc(signed_v1, "application/json"), BRT_EUNSUPPORTED);
	/* The type alone marks schema1, whatever the body claims. */
	CHECK_EQ_INT(parse_rc(helm_chart, BRT_MT_DOCKER_V1_SIGNED), BRT_EUNSUPPORTED);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"mediaType\":\"" BRT_MT_DOCKER_V1_SIGNED "\"}", NULL),
		     BRT_EUNSUPPORTED);
}

static void test_helm(void)
{
	brt_manifest_info info;

	CHECK_EQ_INT(parse(&info, helm_chart, BRT_MT_OCI_MANIFEST), 0);
	CHECK_EQ_INT(info.kind, BRT_MANIFEST_IMAGE);
	CHECK_EQ_STR(info.media_type, BRT_MT_OCI_MANIFEST);
	CHECK_EQ_STR(info.artifact_type, MT_HELM_CONFIG);
	CHECK_EQ_INT(info.blob_count, 2);
	CHECK_EQ_STR(at(info.blobs, info.blob_count, 0), D1);
	CHECK_EQ_STR(at(info.blobs, info.blob_count, 1), D2);
	CHECK_EQ_STR(info.annotations,
		     "{\"org.opencontainers.image.created\":\"2024-01-01T00:00:00Z\","
		     "\"org.opencontainers.image.title\":\"mychart\","
		     "\"org.opencontainers.image.version\":\"0.1.0+build.1\"}");

	/* Without any type information the shape says OCI image manifest. */
	CHECK_EQ_INT(parse(&info, helm_chart, NULL), 0);
	CHECK_EQ_STR(info.media_type, BRT_MT_OCI_MANIFEST);
	CHECK_EQ_INT(info.kind, BRT_MANIFEST_IMAGE);
}

static void test_artifacts(void)
{
	brt_manifest_info info;

	CHECK_EQ_INT(parse(&info, signature, NULL), 0);
	CHECK_EQ_INT(info.kind, BRT_MANIFEST_IMAGE);
	CHECK_EQ_STR(info.artifact_type, "application/vnd.example.signature.v1");
	CHECK_EQ_STR(info.subject, D1);
	CHECK_EQ_INT(info.blob_count, 2);
	CHECK_EQ_STR(at(info.blobs, info.blob_count, 0), EMPTY_DIGEST);
	CHECK_EQ_STR(at(info.blobs, info.blob_count, 1), D3);
	/* Compact JSON, key order kept, escapes re-encoded. */
	CHECK_EQ_STR(info.annotations, "{\"org.example.signed-by\":\"me\",\"uni\":\"\xc3\xa9\\\"q\\\"\"}");

	/* No artifactType: the config's mediaType, even the empty type ... */
	CHECK_EQ_INT(parse(&info,
			   "{\"schemaVersion\":2,\"mediaType\":\"" BRT_MT_OCI_MANIFEST "\","
			   "\"config\":" DESC(MT_EMPTY, EMPTY_DIGEST, 2) ",\"layers\":[]}",
			   NULL),
		     0);
	CHECK_EQ_STR(info.artifact_type, MT_EMPTY);
	CHECK_EQ_INT(info.blob_count, 1);
	/* ... and an empty artifactType counts as missing. */
	CHECK_EQ_INT(parse(&info,
			   "{\"schemaVersion\":2,\"artifactType\":\"\","
			   "\"config\":" DESC("application/vnd.example.config", D1, 2) "}",
			   NULL),
		     0);
	CHECK_EQ_STR(info.artifact_type, "application/vnd.example.config");
	CHECK_EQ_INT(info.blob_count, 1);
	CHECK_EQ_STR(at(info.blobs, info.blob_count, 0), D1);
	/* layers: null is the same as absent (Go's nil slice). */
	CHECK_EQ_INT(parse(&info,
			   "{\"schemaVersion\":2,\"config\":" DESC(
				   MT_EMPTY, D1, 2) ",\"layers\":null,\"subject\":null,\"annotations\":null,"
						    "\"artifactType\":null}",
			   NULL),
		     0);
	CHECK_EQ_INT(info.blob_count, 1);
	CHECK(info.subject == NULL);
	CHECK(info.annotations == NULL);
	CHECK_EQ_STR(info.artifact_type, MT_EMPTY);
	/* Empty annotations are none. */
	CHECK_EQ_INT(parse(&info,
			   "{\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, D1, 2) ",\"annotations\":{}}",
			   NULL),
		     0);
	CHECK(info.annotations == NULL);

	/* Any other type is storable; its kind comes from the shape. */
	CHECK_EQ_INT(parse(&info, helm_chart, "application/vnd.example.custom+json"), 0);
	CHECK_EQ_STR(info.media_type, "application/vnd.example.custom+json");
	CHECK_EQ_INT(info.kind, BRT_MANIFEST_IMAGE);
	CHECK_EQ_INT(parse(&info, "{\"schemaVersion\":2,\"manifests\":[]}", "application/vnd.example.list"),
		     0);
	CHECK_EQ_INT(info.kind, BRT_MANIFEST_INDEX);
	CHECK_EQ_STR(info.media_type, "application/vnd.example.list");

	/* Duplicate keys are refused (see test_duplicate_keys), not last-wins. */
	CHECK_EQ_INT(parse(&info,
			   "{\"schemaVersion\":1,\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, D1, 2) "}",
			   NULL),
		     BRT_EINVALID);
}

static void test_media_type_rules(void)
{
	/* Content-Type and mediaType disagree. */
	CHECK_EQ_INT(parse_rc(oci_image, BRT_MT_OCI_INDEX), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(oci_image, BRT_MT_DOCKER_MANIFEST), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(oci_index, BRT_MT_OCI_MANIFEST), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(oci_image, "application/vnd.example.other"), BRT_EINVALID);
	/* mediaType that is not a string, or not a media type. */
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"mediaType\":5,\"config\":" DESC(MT_EMPTY, D1, 2) "}",
			      NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"mediaType\":null,\"config\":" DESC(MT_EMPTY, D1, 2) "}",
			      NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"mediaType\":[\"x/y\"],\"config\":" DESC(MT_EMPTY, D1,
											      2) "}",
			      NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"mediaType\":\"\",\"config\":" DESC(MT_EMPTY, D1, 2) "}",
			      NULL),
		     BRT_EINVALID);
	/* It would be sent back as a header: no CR/LF, spaces or junk. */
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"mediaType\":\"a/b\\r\\nX-Evil: 1\",\"config\":" DESC(
				      MT_EMPTY, D1, 2) "}",
			      NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"mediaType\":\"nosubtype\",\"config\":" DESC(MT_EMPTY,
												  D1, 2) "}",
			      NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"mediaType\":\"a/b/c\",\"config\":" DESC(MT_EMPTY, D1,
											      2) "}",
			      NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(helm_chart, "not a type"), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(helm_chart, "application/"), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(helm_chart, "/json"), BRT_EINVALID);

	CHECK(brt_manifest_type_is_index(BRT_MT_OCI_INDEX));
	CHECK(brt_manifest_type_is_index(BRT_MT_DOCKER_LIST));
	CHECK(!brt_manifest_type_is_index(BRT_MT_OCI_MANIFEST));
	CHECK(!brt_manifest_type_is_index(BRT_MT_DOCKER_MANIFEST));
	CHECK(!brt_manifest_type_is_index("application/json"));
	CHECK(!brt_manifest_type_is_index(NULL));
}

static void test_schema_version(void)
{
	CHECK_EQ_INT(parse_rc("{\"config\":" DESC(MT_EMPTY, D1, 2) "}", NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":3,\"config\":" DESC(MT_EMPTY, D1, 2) "}", NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":\"2\",\"config\":" DESC(MT_EMPTY, D1, 2) "}", NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2.0,\"config\":" DESC(MT_EMPTY, D1, 2) "}", NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":null,\"config\":" DESC(MT_EMPTY, D1, 2) "}", NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":1,\"config\":" DESC(MT_EMPTY, D1, 2) "}", NULL),
		     BRT_EUNSUPPORTED);
}

static void test_not_json(void)
{
	brt_manifest_info info;

	CHECK_EQ_INT(parse_rc("", NULL), BRT_EINVALID);
	CHECK_EQ_INT(brt_manifest_parse(&info, &pool, NULL, 0, NULL, DEPTH), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("[]", NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("[{\"schemaVersion\":2}]", NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("\"string\"", NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("2", NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("null", NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{", NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{}", NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,}", NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{'schemaVersion':2}", NULL), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "JSON") != NULL);
	/* Trailing garbage after the object. */
	{
		char buf[2048];
		size_t n = strlen(helm_chart);
		memcpy(buf, helm_chart, n);
		memcpy(buf + n, " x", 3);
		CHECK_EQ_INT(parse_rc(buf, NULL), BRT_EINVALID);
		/* A NUL inside the given length. */
		buf[n] = '\0';
		CHECK_EQ_INT(brt_manifest_parse(&info, &pool, buf, n + 2, NULL, DEPTH), BRT_EINVALID);
		CHECK_EQ_INT(brt_manifest_parse(&info, &pool, buf, n, NULL, DEPTH), 0);
		/* A prefix of a valid manifest. */
		CHECK_EQ_INT(brt_manifest_parse(&info, &pool, buf, n - 1, NULL, DEPTH), BRT_EINVALID);
	}
	/* Invalid UTF-8 and embedded \u0000. */
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, D1,
								      2) ",\"annotations\":{\"a\":\"\xff\"}}",
			      NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":" DESC(
				      MT_EMPTY, D1, 2) ",\"annotations\":{\"a\":\"x\\u0000y\"}}",
			      NULL),
		     BRT_EINVALID);
	/* Integers that do not fit. */
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, D1,
								      99999999999999999999999) "}",
			      NULL),
		     BRT_EINVALID);
}

static void test_descriptors(void)
{
	brt_manifest_info info;

	/* Image manifests need a config. */
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"mediaType\":\"" BRT_MT_OCI_MANIFEST "\","
			      "\"layers\":[]}",
			      NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"layers\":[" DESC(MT_EMPTY, D1, 2) "]}", NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":null}", NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":\"" D1 "\"}", NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":[]}", NULL), BRT_EINVALID);
	/* Image by type but index by shape: the type wins. */
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"manifests\":[]}", BRT_MT_OCI_MANIFEST), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(helm_chart, BRT_MT_OCI_INDEX), BRT_EINVALID);
	/* Indexes need a manifests array. */
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"mediaType\":\"" BRT_MT_OCI_INDEX "\"}", NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"manifests\":{}}", NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"manifests\":[5]}", NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"manifests\":[null]}", NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"manifests\":[" DESC(BRT_MT_OCI_MANIFEST, D1, 5) ",{}]}",
			      NULL),
		     BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "manifests[1]") != NULL);

#define IMAGE_WITH_LAYER(layer) \
	"{\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, D1, 2) ",\"layers\":[" layer "]}"

	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER(DESC("x/y", D2, 1)), NULL), 0);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER(DESC("x/y", D512, 0)), NULL), 0);
	/* Bad digests. */
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER(DESC("x/y", "sha256:abc", 1)), NULL), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "layers[0]") != NULL);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER(
				      DESC("x/y",
					   "SHA256:"
					   "1111111111111111111111111111111111111111111111111111111111111111",
					   1)),
			      NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER(
				      DESC("x/y",
					   "sha256:"
					   "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
					   1)),
			      NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER(
				      DESC("x/y",
					   "blake3:"
					   "1111111111111111111111111111111111111111111111111111111111111111",
					   1)),
			      NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER(DESC("x/y", "", 1)), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER("{\"mediaType\":\"x/y\",\"digest\":5,\"size\":1}"), NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER("{\"mediaType\":\"x/y\",\"size\":1}"), NULL), BRT_EINVALID);
	/* Bad sizes. */
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER(DESC("x/y", D2, -1)), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER(DESC("x/y", D2, 1.5)), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER(DESC("x/y", D2, "1")), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER(DESC("x/y", D2, null)), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER("{\"mediaType\":\"x/y\",\"digest\":\"" D2 "\"}"), NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER(DESC("x/y", D2, 9223372036854775807)), NULL), 0);
	/* Bad media types. */
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER("{\"digest\":\"" D2 "\",\"size\":1}"), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER(DESC("", D2, 1)), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER("{\"mediaType\":7,\"digest\":\"" D2 "\",\"size\":1}"), NULL),
		     BRT_EINVALID);
	/* Bad containers. */
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER("5"), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH_LAYER("[]"), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, D1, 2) ",\"layers\":{}}",
			      NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, "sha256:1", 2) "}", NULL),
		     BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "config") != NULL);
	/* Layer order is kept and duplicates are reported as they are. */
	CHECK_EQ_INT(parse(&info,
			   IMAGE_WITH_LAYER(DESC("x/y", D3, 1) "," DESC("x/y", D2, 1) "," DESC("x/y", D3, 1)),
			   NULL),
		     0);
	CHECK_EQ_INT(info.blob_count, 4);
	CHECK_EQ_STR(at(info.blobs, info.blob_count, 1), D3);
	CHECK_EQ_STR(at(info.blobs, info.blob_count, 2), D2);
	CHECK_EQ_STR(at(info.blobs, info.blob_count, 3), D3);
}

static void test_subject_artifact_annotations(void)
{
#define IMAGE_WITH(extra) "{\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, D1, 2) "," extra "}"
	brt_manifest_info info;

	CHECK_EQ_INT(parse(&info, IMAGE_WITH("\"subject\":" DESC("x/y", D2, 3)), NULL), 0);
	CHECK_EQ_STR(info.subject, D2);
	CHECK_EQ_INT(info.blob_count, 1); /* the subject is not a blob */
	CHECK_EQ_INT(parse_rc(IMAGE_WITH("\"subject\":" DESC("x/y", "sha256:2", 3)), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH("\"subject\":\"" D2 "\""), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH("\"subject\":{}"), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH("\"subject\":" DESC("x/y", D2, -3)), NULL), BRT_EINVALID);

	CHECK_EQ_INT(parse_rc(IMAGE_WITH("\"artifactType\":5"), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH("\"artifactType\":{}"), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH("\"artifactType\":\"no-slash\""), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse(&info, IMAGE_WITH("\"artifactType\":\"application/x.y+json\""), NULL), 0);
	CHECK_EQ_STR(info.artifact_type, "application/x.y+json");

	CHECK_EQ_INT(parse_rc(IMAGE_WITH("\"annotations\":[]"), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH("\"annotations\":\"a=b\""), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH("\"annotations\":{\"a\":1}"), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH("\"annotations\":{\"a\":\"b\",\"c\":{}}"), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse_rc(IMAGE_WITH("\"annotations\":{\"a\":null}"), NULL), BRT_EINVALID);
	CHECK_EQ_INT(parse(&info, IMAGE_WITH("\"annotations\":{\"a\" : \"b\" , \"\":\"\"}"), NULL), 0);
	CHECK_EQ_STR(info.annotations, "{\"a\":\"b\",\"\":\"\"}");
}

/* `levels` nested arrays inside an annotation-free extra member. */
static char *nested(size_t levels)
{
	static const char head[] = "{\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, D1, 2) ",\"x\":";
	size_t len = sizeof(head) - 1 + 2 * levels + 2;
	char *buf = malloc(len);
	char *p = buf;

	if (!buf)
		return NULL;
	memcpy(p, head, sizeof(head) - 1);
	p += sizeof(head) - 1;
	memset(p, '[', levels);
	p += levels;
	memset(p, ']', levels);
	p += levels;
	*p++ = '}';
	*p = '\0';
	return buf;
}

static void test_depth(void)
{
	brt_manifest_info info;
	char *payload;

	/* The root is level 1, so x's arrays start at level 2. */
	payload = nested(DEPTH - 1);
	CHECK(payload != NULL);
	CHECK_EQ_INT(payload ? parse_rc(payload, NULL) : -1, 0);
	free(payload);
	payload = nested(DEPTH);
	CHECK_EQ_INT(payload ? parse_rc(payload, NULL) : -1, BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "deeper") != NULL);
	free(payload);
	/* Beyond jansson's own limit it fails to parse at all, safely. */
	payload = nested(100000);
	CHECK_EQ_INT(payload ? parse_rc(payload, NULL) : -1, BRT_EINVALID);
	free(payload);

	/* A real index with platform.os.features is 5 levels deep. */
	brt_pool_clear(&pool);
	CHECK_EQ_INT(brt_manifest_parse(&info, &pool, oci_index, strlen(oci_index), NULL, 5), 0);
	CHECK_EQ_INT(brt_manifest_parse(&info, &pool, oci_index, strlen(oci_index), NULL, 4), BRT_EINVALID);
	CHECK_EQ_INT(brt_manifest_parse(&info, &pool, helm_chart, strlen(helm_chart), NULL, 3), 0);
	CHECK_EQ_INT(brt_manifest_parse(&info, &pool, helm_chart, strlen(helm_chart), NULL, 2), BRT_EINVALID);
	CHECK_EQ_INT(brt_manifest_parse(&info, &pool, "{}", 2, NULL, 0), BRT_EINVALID);
}

static void test_pool_exhaustion(void)
{
	brt_manifest_info info;
	brt_pool tiny;
	char *big;
	size_t layers = 200, pos, cap;
	static const char head[] = "{\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, D1, 2) ",\"layers\":[";
	static const char layer[] = DESC("x/y", D2, 1);

	/* Enough layers that their digests overflow a small pool. */
	cap = sizeof(head) + layers * sizeof(layer) + 8;
	big = malloc(cap);
	CHECK(big != NULL);
	if (!big)
		return;
	memcpy(big, head, sizeof(head) - 1);
	pos = sizeof(head) - 1;
	for (size_t i = 0; i < layers; i++) {
		if (i)
			big[pos++] = ',';
		memcpy(big + pos, layer, sizeof(layer) - 1);
		pos += sizeof(layer) - 1;
	}
	memcpy(big + pos, "]}", 3);
	brt_pool_init(&tiny, 4096);
	CHECK_EQ_INT(brt_manifest_parse(&info, &tiny, big, strlen(big), NULL, DEPTH), BRT_ENOMEM);
	brt_pool_clear(&tiny);
	brt_pool_init(&tiny, 1 << 20);
	CHECK_EQ_INT(brt_manifest_parse(&info, &tiny, big, strlen(big), NULL, DEPTH), 0);
	CHECK_EQ_INT(info.blob_count, layers + 1);
	brt_pool_clear(&tiny);
	free(big);
}

/* End of the JSON string starting at text[i] == '"' (index after the
 * closing quote). */
static size_t skip_string(const char *text, size_t i)
{
	for (i++; text[i] && text[i] != '"'; i++)
		if (text[i] == '\\' && text[i + 1])
			i++;
	return text[i] ? i + 1 : i;
}

/* End of the member whose key starts at text[k]: the index of the ',' or
 * '}' that closes its value. */
static size_t member_end(const char *text, size_t k)
{
	size_t i = skip_string(text, k);
	int depth = 0;

	while (text[i]) {
		if (text[i] == '"') {
			i = skip_string(text, i);
			continue;
		}
		if (text[i] == '{' || text[i] == '[')
			depth++;
		else if (text[i] == '}' || text[i] == ']') {
			if (depth == 0)
				break;
			depth--;
		} else if (text[i] == ',' && depth == 0)
			break;
		i++;
	}
	return i;
}

/* Calls `fn` with each copy of `text` in which one member of one object
 * (at any depth) appears twice, the copy first.  Returns the count. */
static size_t each_duplicated_member(const char *text, void (*fn)(const char *dup, const char *key))
{
	size_t len = strlen(text), count = 0;
	char *dup = malloc(2 * len + 2), key[64];

	if (!dup)
		return 0;
	for (size_t i = 0; i < len;) {
		size_t end, j, m;

		if (text[i] != '"') {
			i++;
			continue;
		}
		end = skip_string(text, i);
		for (j = end; text[j] == ' ' || text[j] == '\n' || text[j] == '\t'; j++)
			;
		if (text[j] != ':') {
			i = end; /* a string value, not a key */
			continue;
		}
		m = member_end(text, i);
		/* text[..i] + member + "," + text[i..] */
		memcpy(dup, text, i);
		memcpy(dup + i, text + i, m - i);
		dup[m] = ',';
		memcpy(dup + m + 1, text + i, len - i + 1);
		snprintf(key, sizeof(key), "%.*s", (int)(end - i), text + i);
		fn(dup, key);
		count++;
		i = end;
	}
	free(dup);
	return count;
}

static size_t duplicates_accepted;

static void expect_refused(const char *dup, const char *key)
{
	if (parse_rc(dup, NULL) != BRT_EINVALID) {
		if (duplicates_accepted++ < 5)
			fprintf(stderr, "accepted with %s twice: %s\n", key, dup);
	}
}

/* Duplicate keys at any depth are refused: a client whose parser keeps
 * the first of two keys would see other blobs, children or subject than
 * the registry checked.  Every member of every object of every sample
 * manifest is duplicated in turn (even with an identical value), so each
 * nesting level is covered; then the attacks by name. */
static void test_duplicate_keys(void)
{
	static const char *const samples[] = {oci_image,   oci_index,  docker_manifest,
					      docker_list, helm_chart, signature};
	size_t members = 0;

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		CHECK_EQ_INT(parse_rc(samples[i], NULL), 0);
		members += each_duplicated_member(samples[i], expect_refused);
	}
	CHECK(members > 60);
	CHECK_EQ_INT(duplicates_accepted, 0);

	/* A layer's digest given twice: first D3, then D2. */
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, D1,
								      2) ",\"layers\":["
									 "{\"mediaType\":\"application/"
									 "octet-stream\",\"digest\":\"" D3
									 "\",\"digest\":\"" D2
									 "\",\"size\":1}]}",
			      NULL),
		     BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "duplicate") != NULL);
	/* Two config descriptors, two layers arrays, two subjects. */
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, D1,
								      2) ",\"config\":" DESC(MT_EMPTY, D2,
											     2) "}",
			      NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":" DESC(
				      MT_EMPTY, D1,
				      2) ",\"layers\":[],\"layers\":[" DESC("application/octet-stream", D2,
									    1) "]}",
			      NULL),
		     BRT_EINVALID);
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, D1, 2) ",\"subject\":" DESC(
				      MT_EMPTY, D2, 2) ",\"subject\":" DESC(MT_EMPTY, D3, 2) "}",
			      NULL),
		     BRT_EINVALID);
	/* Deep inside, in a part the registry never reads. */
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, D1, 2) ",\"x\":{\"y\":[{"
										       "\"z\":1,\"z\":1}]}}",
			      NULL),
		     BRT_EINVALID);
	/* Keys equal only after unescaping are the same key. */
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":" DESC(MT_EMPTY, D1,
								      2) ",\"conf\\u0069g\":" DESC(MT_EMPTY,
												   D2, 2) "}",
			      NULL),
		     BRT_EINVALID);
	/* Keys that only look alike are fine. */
	CHECK_EQ_INT(parse_rc("{\"schemaVersion\":2,\"config\":" DESC(
				      MT_EMPTY, D1, 2) ",\"x\":{\"a\":1,\"A\":2,\"a \":3},\"y\":{\"a\":1}}",
			      NULL),
		     0);
}

int main(void)
{
	brt_pool_init(&pool, 1 << 20);
	test_oci_image();
	test_oci_index();
	test_docker();
	test_schema1();
	test_helm();
	test_artifacts();
	test_media_type_rules();
	test_schema_version();
	test_not_json();
	test_descriptors();
	test_subject_artifact_annotations();
	test_depth();
	test_pool_exhaustion();
	test_duplicate_keys();
	brt_pool_clear(&pool);
	return check_exit("test_manifest");
}
