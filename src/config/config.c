/* Configuration defaults and berthd's YAML loader: the file is read and
 * its shape checked by config/yaml, then each setting is read by key path. */
#include "config/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/error.h"
#include "common/log.h"
#include "config/yaml.h"

void brt_config_defaults(brt_config *config)
{
	memset(config, 0, sizeof(*config));
	snprintf(config->listen, sizeof(config->listen), "127.0.0.1:5000");
	snprintf(config->data_dir, sizeof(config->data_dir), "./berth-data");
	snprintf(config->blob_driver, sizeof(config->blob_driver), "filesystem");
	snprintf(config->meta_driver, sizeof(config->meta_driver), "sqlite");
	config->threads = 4;
	config->connection_memory = 64 * 1024;
	config->connection_limit = 0;
	config->connection_timeout = 120;
	config->per_address_limit = 64;
	config->reserved_connections = BRT_CONFIG_AUTO;
	config->header_timeout = 10;
	config->request_timeout = 60;
	config->min_rate = 1024;
	config->min_rate_window = 30;
	config->body_memory = 64 * 1024 * 1024;
	config->drain_timeout = 30;
	config->manifest_max = 4 * 1024 * 1024;
	config->blob_max = (uint64_t)64 << 30;
	config->page_max = 1000;
	config->referrers_max = 10000;
	config->json_depth_max = 64;
	config->uploads_expire_after = 24 * 3600;
	config->gc_interval = 600;
	config->gc_grace = 24 * 3600;
	config->gc_batch = 256;
	config->gc_rate = 1000;
	config->uploads_max_per_account = 1000;
	config->log_level = BRT_LOG_INFO;
	config->access_log = 1;
	config->auth_enabled = 1;
	config->token_ttl = 300;
	snprintf(config->device_account_field, sizeof(config->device_account_field), "OU");
	config->s3.secure = 1;
	config->s3.chunk_size = (uint64_t)16 << 20;
	config->s3.retries = 3;
	config->s3.buffer_memory = (uint64_t)1 << 30;
	config->s3.timeout = 30;
	config->s3.redirect_ttl = 1200;
}

const char *brt_config_service(const brt_config *config)
{
	if (config->service[0])
		return config->service;
	if (config->public_host[0])
		return config->public_host;
	return "berth";
}

static int get_string(char *out, size_t cap, yaml_document_t *doc, const char *key, const char *const *path)
{
	const char *v = brt_yaml_scalar(doc, path);

	if (!v)
		return 0;
	if (strlen(v) >= cap || v[0] == '\0')
		return brt_error_set(BRT_EINVALID, "config: %s is empty or too long", key);
	snprintf(out, cap, "%s", v);
	return 0;
}

/* Unsigned integer with an optional binary suffix (k, m, g, ki, mi, gi). */
static int get_u64(uint64_t *out, yaml_document_t *doc, const char *key, const char *const *path,
		   uint64_t min, uint64_t max)
{
	const char *v = brt_yaml_scalar(doc, path);
	char *end;
	unsigned long long n;
	uint64_t mult = 1;

	if (!v)
		return 0;
	if (v[0] < '0' || v[0] > '9')
		return brt_error_set(BRT_EINVALID, "config: %s must be a non-negative number", key);
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno)
		return brt_error_set(BRT_EINVALID, "config: %s is out of range", key);
	switch (*end) {
	case 'k':
	case 'K':
		mult = 1024;
		end++;
		break;
	case 'm':
	case 'M':
		mult = 1024 * 1024;
		end++;
		break;
	case 'g':
	case 'G':
		mult = 1024 * 1024 * 1024;
		end++;
		break;
	}
	if (mult > 1 && (*end == 'i' || *end == 'b' || *end == 'B'))
		end++;
	if (*end != '\0')
		return brt_error_set(BRT_EINVALID, "config: %s has trailing characters", key);
	if (__builtin_mul_overflow((uint64_t)n, mult, out) || *out < min || *out > max)
		return brt_error_set(BRT_EINVALID, "config: %s must be between %llu and %llu", key,
				     (unsigned long long)min, (unsigned long long)max);
	return 0;
}

static int get_bool(int *out, yaml_document_t *doc, const char *key, const char *const *path)
{
	const char *v = brt_yaml_scalar(doc, path);

	if (v && brt_yaml_parse_bool(out, v) < 0)
		return brt_error_set(BRT_EINVALID, "config: %s must be true or false", key);
	return 0;
}

int brt_config_parse_duration(uint64_t *seconds_out, const char *s, int unit_required)
{
	char *end;
	unsigned long long n, mult = 1;

	if (s[0] < '0' || s[0] > '9')
		return BRT_EINVALID;
	errno = 0;
	n = strtoull(s, &end, 10);
	switch (*end) {
	case 's':
		end++;
		break;
	case 'm':
		mult = 60;
		end++;
		break;
	case 'h':
		mult = 3600;
		end++;
		break;
	case 'd':
		mult = 86400;
		end++;
		break;
	default:
		if (unit_required)
			return BRT_EINVALID;
	}
	if (errno || *end != '\0' || __builtin_mul_overflow((uint64_t)n, (uint64_t)mult, seconds_out))
		return BRT_EINVALID;
	return 0;
}

/* A duration in seconds: a number with an optional unit s, m, h or d. */
static int get_duration(unsigned int *out, yaml_document_t *doc, const char *key, const char *const *path,
			unsigned int min, unsigned int max)
{
	const char *v = brt_yaml_scalar(doc, path);
	uint64_t seconds;

	if (!v)
		return 0;
	if (brt_config_parse_duration(&seconds, v, 0) < 0)
		return brt_error_set(BRT_EINVALID, "config: %s must be a duration like 90s, 30m, 24h or 7d",
				     key);
	if (seconds < min || seconds > max)
		return brt_error_set(BRT_EINVALID, "config: %s must be between %us and %us", key, min, max);
	*out = (unsigned int)seconds;
	return 0;
}

#define PATH(...) ((const char *const[]){__VA_ARGS__, NULL})

/* http.tls.clientcas, as distribution spells it: a list of CA files.  One
 * bundle is supported; put several CAs into one PEM file. */
static int get_client_cas(brt_config *c, yaml_document_t *doc)
{
	yaml_node_t *node = brt_yaml_lookup(doc, PATH("http", "tls", "clientcas")), *item;
	const char *value;

	if (!node)
		return 0;
	if (node->type == YAML_SCALAR_NODE) {
		value = (const char *)node->data.scalar.value;
	} else if (node->type == YAML_SEQUENCE_NODE &&
		   node->data.sequence.items.top - node->data.sequence.items.start == 1 &&
		   (item = yaml_document_get_node(doc, *node->data.sequence.items.start)) &&
		   item->type == YAML_SCALAR_NODE) {
		value = (const char *)item->data.scalar.value;
	} else {
		return brt_error_set(BRT_EINVALID,
				     "config: http.tls.clientcas must be one file "
				     "(concatenate several CAs into one PEM file)");
	}
	if (!value[0] || strlen(value) >= sizeof(c->client_ca))
		return brt_error_set(BRT_EINVALID, "config: http.tls.clientcas is empty or too long");
	snprintf(c->client_ca, sizeof(c->client_ca), "%s", value);
	return 0;
}

/* The one section under `section` ("storage", "database") that names a
 * driver, if any: its name into `driver`.  Two drivers at once are an
 * error, as they would be two stores. */
static int get_driver(char *driver, size_t cap, yaml_document_t *doc, const char *section,
		      const char *const *names)
{
	const char *found = NULL;

	for (size_t i = 0; names[i]; i++) {
		if (!brt_yaml_lookup(doc, PATH(section, names[i])))
			continue;
		if (found)
			return brt_error_set(BRT_EINVALID, "config: %s.%s and %s.%s: choose one", section,
					     found, section, names[i]);
		found = names[i];
	}
	if (found)
		snprintf(driver, cap, "%s", found);
	return 0;
}

/* storage.s3.  rootdirectory is a key prefix: "/a/b" and "a/b/" both give
 * "a/b/". */
static int apply_s3(brt_config_s3 *s3, yaml_document_t *doc)
{
	char root[sizeof(s3->prefix)] = "";
	const char *r = root;
	uint64_t v;
	int error;

#define S3_STRING(field, key) \
	get_string(s3->field, sizeof(s3->field), doc, "storage.s3." key, PATH("storage", "s3", key))
	if ((error = S3_STRING(region, "region")) < 0 ||
	    (error = S3_STRING(endpoint, "regionendpoint")) < 0 ||
	    (error = S3_STRING(bucket, "bucket")) < 0 || (error = S3_STRING(access_key, "accesskey")) < 0 ||
	    (error = S3_STRING(secret_key, "secretkey")) < 0 ||
	    (error = S3_STRING(session_token, "sessiontoken")) < 0 ||
	    (error = S3_STRING(ca_file, "cafile")) < 0 ||
	    (error = get_string(root, sizeof(root) - 1, doc, "storage.s3.rootdirectory",
				PATH("storage", "s3", "rootdirectory"))) < 0 ||
	    (error = get_bool(&s3->path_style, doc, "storage.s3.forcepathstyle",
			      PATH("storage", "s3", "forcepathstyle"))) < 0 ||
	    (error = get_bool(&s3->secure, doc, "storage.s3.secure", PATH("storage", "s3", "secure"))) < 0 ||
	    (error = get_bool(&s3->skip_verify, doc, "storage.s3.skipverify",
			      PATH("storage", "s3", "skipverify"))) < 0 ||
	    (error = get_bool(&s3->redirect, doc, "storage.s3.redirect", PATH("storage", "s3", "redirect"))) <
		    0 ||
	    (error = get_duration(&s3->timeout, doc, "storage.s3.timeout", PATH("storage", "s3", "timeout"),
				  1, 3600)) < 0 ||
	    (error = get_duration(&s3->redirect_ttl, doc, "storage.s3.redirectttl",
				  PATH("storage", "s3", "redirectttl"), 60, 7 * 86400)) < 0)
		return error;
#undef S3_STRING
	v = s3->chunk_size;
	if ((error = get_u64(&v, doc, "storage.s3.chunksize", PATH("storage", "s3", "chunksize"),
			     (uint64_t)5 << 20, (uint64_t)5 << 30)) < 0)
		return error;
	s3->chunk_size = v;
	v = s3->buffer_memory;
	if ((error = get_u64(&v, doc, "storage.s3.buffermemory", PATH("storage", "s3", "buffermemory"),
			     (uint64_t)5 << 20, (uint64_t)1 << 40)) < 0)
		return error;
	if (v < s3->chunk_size)
		return brt_error_set(BRT_EINVALID,
				     "config: storage.s3.buffermemory must hold one chunksize part");
	s3->buffer_memory = v;
	v = s3->retries;
	if ((error = get_u64(&v, doc, "storage.s3.retries", PATH("storage", "s3", "retries"), 0, 10)) < 0)
		return error;
	s3->retries = (unsigned int)v;
	if (!s3->bucket[0])
		return brt_error_set(BRT_EINVALID, "config: storage.s3.bucket is required");
	if (!s3->region[0])
		return brt_error_set(BRT_EINVALID, "config: storage.s3.region is required");
	while (*r == '/')
		r++;
	if (*r) {
		size_t n = strlen(r);
		snprintf(s3->prefix, sizeof(s3->prefix), "%s%s", r, r[n - 1] == '/' ? "" : "/");
	}
	return 0;
}

static int apply(brt_config *c, yaml_document_t *doc)
{
	int error = 0;
	uint64_t v;
	int disabled = !c->access_log;
	const char *level;

	if ((error = get_string(c->listen, sizeof(c->listen), doc, "http.addr", PATH("http", "addr"))) < 0 ||
	    (error = get_string(c->data_dir, sizeof(c->data_dir), doc, "storage.filesystem.rootdirectory",
				PATH("storage", "filesystem", "rootdirectory"))) < 0 ||
	    (error = get_string(c->meta_location, sizeof(c->meta_location), doc, "database.sqlite.path",
				PATH("database", "sqlite", "path"))) < 0 ||
	    (error = get_driver(c->blob_driver, sizeof(c->blob_driver), doc, "storage",
				PATH("filesystem", "s3"))) < 0 ||
	    (error = get_driver(c->meta_driver, sizeof(c->meta_driver), doc, "database",
				PATH("sqlite", "postgres"))) < 0 ||
	    (error = get_string(c->pg_dsn, sizeof(c->pg_dsn), doc, "database.postgres.dsn",
				PATH("database", "postgres", "dsn"))) < 0)
		return error;
	if (strcmp(c->blob_driver, "s3") == 0 && (error = apply_s3(&c->s3, doc)) < 0)
		return error;
	if (strcmp(c->meta_driver, "postgres") == 0 && !c->pg_dsn[0])
		return brt_error_set(BRT_EINVALID, "config: database.postgres.dsn is required");

#define U64(field, key, min, max, ...)                                                \
	do {                                                                          \
		v = c->field;                                                         \
		if ((error = get_u64(&v, doc, key, PATH(__VA_ARGS__), min, max)) < 0) \
			return error;                                                 \
		c->field = (__typeof__(c->field))v;                                   \
	} while (0)

	U64(threads, "http.threads", 1, 256, "http", "threads");
	U64(connection_memory, "http.connection_memory_limit", 16384, 64 << 20, "http",
	    "connection_memory_limit");
	U64(connection_limit, "http.max_connections", 0, 1000000, "http", "max_connections");
	U64(per_address_limit, "http.max_connections_per_address", 0, 1000000, "http",
	    "max_connections_per_address");
	U64(reserved_connections, "http.reserved_connections", 0, 1000000, "http", "reserved_connections");
	U64(min_rate, "http.min_rate", 0, 1 << 30, "http", "min_rate");
	U64(body_memory, "http.body_memory_limit", 64 * 1024, (uint64_t)1 << 40, "http", "body_memory_limit");
	U64(connection_timeout, "http.idle_timeout", 1, 86400, "http", "idle_timeout");
	U64(drain_timeout, "http.drain_timeout", 0, 3600, "http", "drain_timeout");
	U64(manifest_max, "limits.manifest_bytes", 1024, 256 << 20, "limits", "manifest_bytes");
	U64(blob_max, "limits.blob_bytes", 1, UINT64_MAX / 2, "limits", "blob_bytes");
	U64(page_max, "limits.page_max", 1, 100000, "limits", "page_max");
	U64(referrers_max, "limits.referrers_max", 1, 1000000, "limits", "referrers_max");
	U64(json_depth_max, "limits.json_depth", 4, 1000, "limits", "json_depth");
	U64(uploads_max_per_account, "uploads.max_per_account", 1, 1000000, "uploads", "max_per_account");
	U64(gc_batch, "gc.batch", 1, 1000000, "gc", "batch");
	U64(gc_rate, "gc.rate", 1, 100000000, "gc", "rate");
#undef U64
	if ((error = get_duration(&c->uploads_expire_after, doc, "uploads.expire_after",
				  PATH("uploads", "expire_after"), 1, 365 * 86400)) < 0 ||
	    (error = get_duration(&c->header_timeout, doc, "http.header_timeout",
				  PATH("http", "header_timeout"), 1, 3600)) < 0 ||
	    (error = get_duration(&c->request_timeout, doc, "http.request_timeout",
				  PATH("http", "request_timeout"), 1, 86400)) < 0 ||
	    (error = get_duration(&c->min_rate_window, doc, "http.min_rate_window",
				  PATH("http", "min_rate_window"), 1, 3600)) < 0 ||
	    (error = get_duration(&c->gc_interval, doc, "gc.interval", PATH("gc", "interval"), 0,
				  30 * 86400)) < 0 ||
	    (error = get_duration(&c->gc_grace, doc, "gc.grace", PATH("gc", "grace"), 0, 365 * 86400)) < 0)
		return error;
	/* Otherwise a manifest of the largest allowed size could never be
	 * accepted. */
	if (c->body_memory < c->manifest_max)
		return brt_error_set(BRT_EINVALID,
				     "config: http.body_memory_limit (%zu) must be at least "
				     "limits.manifest_bytes (%zu)",
				     c->body_memory, c->manifest_max);

	if ((error = get_string(c->service, sizeof(c->service), doc, "auth.service",
				PATH("auth", "service"))) < 0 ||
	    (error = get_string(c->device_account_field, sizeof(c->device_account_field), doc,
				"auth.device.account_field", PATH("auth", "device", "account_field"))) < 0 ||
	    (error = get_string(c->region, sizeof(c->region), doc, "region", PATH("region"))) < 0 ||
	    (error = get_string(c->public_host, sizeof(c->public_host), doc, "public_host",
				PATH("public_host"))) < 0 ||
	    (error = get_string(c->tls_cert, sizeof(c->tls_cert), doc, "http.tls.certificate",
				PATH("http", "tls", "certificate"))) < 0 ||
	    (error = get_string(c->tls_key, sizeof(c->tls_key), doc, "http.tls.key",
				PATH("http", "tls", "key"))) < 0 ||
	    (error = get_string(c->client_ca, sizeof(c->client_ca), doc, "http.tls.clientca",
				PATH("http", "tls", "clientca"))) < 0 ||
	    (error = get_client_cas(c, doc)) < 0)
		return error;
	{
		const char *mode = brt_yaml_scalar(doc, PATH("auth", "mode"));
		if (mode) {
			if (strcmp(mode, "token") == 0)
				c->auth_enabled = 1;
			else if (strcmp(mode, "none") == 0)
				c->auth_enabled = 0;
			else
				return brt_error_set(BRT_EINVALID, "config: auth.mode must be token or none");
		}
	}
	v = c->token_ttl;
	if ((error = get_u64(&v, doc, "auth.token_ttl", PATH("auth", "token_ttl"), 10, 86400)) < 0)
		return error;
	c->token_ttl = (unsigned int)v;
	if ((error = get_bool(&disabled, doc, "log.accesslog.disabled",
			      PATH("log", "accesslog", "disabled"))) < 0)
		return error;
	c->access_log = !disabled;
	level = brt_yaml_scalar(doc, PATH("log", "level"));
	if (level) {
		int l = brt_log_level_parse(level);
		if (l < 0)
			return brt_error_set(BRT_EINVALID,
					     "config: log.level must be debug, info, warn or error");
		c->log_level = l;
	}
	return 0;
}

/* Sections are read by key path, so a section given as a scalar, or a
 * value given as a list, would otherwise be skipped without a word and
 * leave a default in force: every key berthd reads, in its shape. */
static const brt_yaml_key known_keys[] = {
	{"version", BRT_YAML_VALUE},
	{"log", BRT_YAML_SECTION},
	{"log.level", BRT_YAML_VALUE},
	{"log.accesslog", BRT_YAML_SECTION},
	{"log.accesslog.disabled", BRT_YAML_VALUE},
	{"storage", BRT_YAML_SECTION},
	{"storage.filesystem", BRT_YAML_SECTION},
	{"storage.filesystem.rootdirectory", BRT_YAML_VALUE},
	{"storage.s3", BRT_YAML_SECTION},
	{"storage.s3.region", BRT_YAML_VALUE},
	{"storage.s3.regionendpoint", BRT_YAML_VALUE},
	{"storage.s3.bucket", BRT_YAML_VALUE},
	{"storage.s3.rootdirectory", BRT_YAML_VALUE},
	{"storage.s3.accesskey", BRT_YAML_VALUE},
	{"storage.s3.secretkey", BRT_YAML_VALUE},
	{"storage.s3.sessiontoken", BRT_YAML_VALUE},
	{"storage.s3.forcepathstyle", BRT_YAML_VALUE},
	{"storage.s3.secure", BRT_YAML_VALUE},
	{"storage.s3.skipverify", BRT_YAML_VALUE},
	{"storage.s3.cafile", BRT_YAML_VALUE},
	{"storage.s3.chunksize", BRT_YAML_VALUE},
	{"storage.s3.retries", BRT_YAML_VALUE},
	{"storage.s3.buffermemory", BRT_YAML_VALUE},
	{"storage.s3.timeout", BRT_YAML_VALUE},
	{"storage.s3.redirect", BRT_YAML_VALUE},
	{"storage.s3.redirectttl", BRT_YAML_VALUE},
	{"database", BRT_YAML_SECTION},
	{"database.sqlite", BRT_YAML_SECTION},
	{"database.sqlite.path", BRT_YAML_VALUE},
	{"database.postgres", BRT_YAML_SECTION},
	{"database.postgres.dsn", BRT_YAML_VALUE},
	{"http", BRT_YAML_SECTION},
	{"http.addr", BRT_YAML_VALUE},
	{"http.threads", BRT_YAML_VALUE},
	{"http.connection_memory_limit", BRT_YAML_VALUE},
	{"http.max_connections", BRT_YAML_VALUE},
	{"http.idle_timeout", BRT_YAML_VALUE},
	{"http.drain_timeout", BRT_YAML_VALUE},
	{"http.max_connections_per_address", BRT_YAML_VALUE},
	{"http.reserved_connections", BRT_YAML_VALUE},
	{"http.header_timeout", BRT_YAML_VALUE},
	{"http.request_timeout", BRT_YAML_VALUE},
	{"http.min_rate", BRT_YAML_VALUE},
	{"http.min_rate_window", BRT_YAML_VALUE},
	{"http.body_memory_limit", BRT_YAML_VALUE},
	{"http.tls", BRT_YAML_SECTION},
	{"http.tls.certificate", BRT_YAML_VALUE},
	{"http.tls.key", BRT_YAML_VALUE},
	{"http.tls.clientca", BRT_YAML_VALUE},
	{"http.tls.clientcas", BRT_YAML_FILES},
	{"limits", BRT_YAML_SECTION},
	{"limits.manifest_bytes", BRT_YAML_VALUE},
	{"limits.blob_bytes", BRT_YAML_VALUE},
	{"limits.page_max", BRT_YAML_VALUE},
	{"limits.referrers_max", BRT_YAML_VALUE},
	{"limits.json_depth", BRT_YAML_VALUE},
	{"region", BRT_YAML_VALUE},
	{"public_host", BRT_YAML_VALUE},
	{"auth", BRT_YAML_SECTION},
	{"auth.mode", BRT_YAML_VALUE},
	{"auth.service", BRT_YAML_VALUE},
	{"auth.token_ttl", BRT_YAML_VALUE},
	{"auth.device", BRT_YAML_SECTION},
	{"auth.device.account_field", BRT_YAML_VALUE},
	{"uploads", BRT_YAML_SECTION},
	{"uploads.expire_after", BRT_YAML_VALUE},
	{"uploads.max_per_account", BRT_YAML_VALUE},
	{"gc", BRT_YAML_SECTION},
	{"gc.interval", BRT_YAML_VALUE},
	{"gc.grace", BRT_YAML_VALUE},
	{"gc.batch", BRT_YAML_VALUE},
	{"gc.rate", BRT_YAML_VALUE},
};

int brt_config_load(brt_config *config, const char *path)
{
	yaml_document_t doc;
	/* The caller's values stay as they were unless the whole file loads. */
	brt_config next = *config;
	int error;

	if ((error = brt_yaml_load(&doc, path)) < 0)
		return error;
	if ((error = brt_yaml_check(&doc, path, known_keys, sizeof(known_keys) / sizeof(known_keys[0]),
				    BRT_YAML_UNKNOWN_WARN)) == 0 &&
	    (error = apply(&next, &doc)) == 0)
		*config = next;
	yaml_document_delete(&doc);
	return error;
}
