/* Configuration defaults and the YAML loader (libyaml's document API: the
 * whole file is small, so it is loaded as a node tree and read by key path). */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "common/error.h"
#include "common/log.h"

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
	config->uploads_max_per_account = 1000;
	config->log_level = BRT_LOG_INFO;
	config->access_log = 1;
	config->auth_enabled = 1;
	config->token_ttl = 300;
	snprintf(config->device_account_field, sizeof(config->device_account_field), "OU");
}

const char *brt_config_service(const brt_config *config)
{
	if (config->service[0])
		return config->service;
	if (config->public_host[0])
		return config->public_host;
	return "berth";
}

/* Find the value node under a mapping path like {"http", "addr", NULL}. */
static yaml_node_t *lookup(yaml_document_t *doc, const char *const *path)
{
	yaml_node_t *node = yaml_document_get_root_node(doc);

	for (; node && *path; path++) {
		yaml_node_pair_t *pair;
		yaml_node_t *found = NULL;

		if (node->type != YAML_MAPPING_NODE)
			return NULL;
		for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
			yaml_node_t *key = yaml_document_get_node(doc, pair->key);
			if (key && key->type == YAML_SCALAR_NODE &&
			    strcmp((const char *)key->data.scalar.value, *path) == 0) {
				found = yaml_document_get_node(doc, pair->value);
				break;
			}
		}
		node = found;
	}
	return node;
}

static const char *scalar(yaml_document_t *doc, const char *const *path)
{
	yaml_node_t *node = lookup(doc, path);

	if (!node || node->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)node->data.scalar.value;
}

static int get_string(char *out, size_t cap, yaml_document_t *doc, const char *key, const char *const *path)
{
	const char *v = scalar(doc, path);

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
	const char *v = scalar(doc, path);
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
	const char *v = scalar(doc, path);

	if (!v)
		return 0;
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
		*out = 1;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"))
		*out = 0;
	else
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
	const char *v = scalar(doc, path);
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
	yaml_node_t *node = lookup(doc, PATH("http", "tls", "clientcas")), *item;
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
				PATH("database", "sqlite", "path"))) < 0)
		return error;

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
#undef U64
	if ((error = get_duration(&c->uploads_expire_after, doc, "uploads.expire_after",
				  PATH("uploads", "expire_after"), 1, 365 * 86400)) < 0 ||
	    (error = get_duration(&c->header_timeout, doc, "http.header_timeout",
				  PATH("http", "header_timeout"), 1, 3600)) < 0 ||
	    (error = get_duration(&c->request_timeout, doc, "http.request_timeout",
				  PATH("http", "request_timeout"), 1, 86400)) < 0 ||
	    (error = get_duration(&c->min_rate_window, doc, "http.min_rate_window",
				  PATH("http", "min_rate_window"), 1, 3600)) < 0)
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
		const char *mode = scalar(doc, PATH("auth", "mode"));
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
	level = scalar(doc, PATH("log", "level"));
	if (level) {
		int l = brt_log_level_parse(level);
		if (l < 0)
			return brt_error_set(BRT_EINVALID,
					     "config: log.level must be debug, info, warn or error");
		c->log_level = l;
	}
	return 0;
}

/* What a known key's value must be.  Sections are read by key path, so a
 * section given as a scalar, or a value given as a list, would otherwise be
 * skipped without a word and leave a default in force. */
enum shape {
	SHAPE_SECTION, /* a mapping, or empty ("http:" with nothing under it) */
	SHAPE_VALUE,   /* a scalar */
	SHAPE_FILES,   /* a scalar or a list of scalars (http.tls.clientcas) */
};

static const struct known_key {
	const char *path;
	enum shape shape;
} known_keys[] = {
	{"version", SHAPE_VALUE},
	{"log", SHAPE_SECTION},
	{"log.level", SHAPE_VALUE},
	{"log.accesslog", SHAPE_SECTION},
	{"log.accesslog.disabled", SHAPE_VALUE},
	{"storage", SHAPE_SECTION},
	{"storage.filesystem", SHAPE_SECTION},
	{"storage.filesystem.rootdirectory", SHAPE_VALUE},
	{"database", SHAPE_SECTION},
	{"database.sqlite", SHAPE_SECTION},
	{"database.sqlite.path", SHAPE_VALUE},
	{"http", SHAPE_SECTION},
	{"http.addr", SHAPE_VALUE},
	{"http.threads", SHAPE_VALUE},
	{"http.connection_memory_limit", SHAPE_VALUE},
	{"http.max_connections", SHAPE_VALUE},
	{"http.idle_timeout", SHAPE_VALUE},
	{"http.drain_timeout", SHAPE_VALUE},
	{"http.max_connections_per_address", SHAPE_VALUE},
	{"http.reserved_connections", SHAPE_VALUE},
	{"http.header_timeout", SHAPE_VALUE},
	{"http.request_timeout", SHAPE_VALUE},
	{"http.min_rate", SHAPE_VALUE},
	{"http.min_rate_window", SHAPE_VALUE},
	{"http.body_memory_limit", SHAPE_VALUE},
	{"http.tls", SHAPE_SECTION},
	{"http.tls.certificate", SHAPE_VALUE},
	{"http.tls.key", SHAPE_VALUE},
	{"http.tls.clientca", SHAPE_VALUE},
	{"http.tls.clientcas", SHAPE_FILES},
	{"limits", SHAPE_SECTION},
	{"limits.manifest_bytes", SHAPE_VALUE},
	{"limits.blob_bytes", SHAPE_VALUE},
	{"limits.page_max", SHAPE_VALUE},
	{"limits.referrers_max", SHAPE_VALUE},
	{"limits.json_depth", SHAPE_VALUE},
	{"region", SHAPE_VALUE},
	{"public_host", SHAPE_VALUE},
	{"auth", SHAPE_SECTION},
	{"auth.mode", SHAPE_VALUE},
	{"auth.service", SHAPE_VALUE},
	{"auth.token_ttl", SHAPE_VALUE},
	{"auth.device", SHAPE_SECTION},
	{"auth.device.account_field", SHAPE_VALUE},
	{"uploads", SHAPE_SECTION},
	{"uploads.expire_after", SHAPE_VALUE},
	{"uploads.max_per_account", SHAPE_VALUE},
};

static const struct known_key *find_known(const char *path)
{
	for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
		if (strcmp(known_keys[i].path, path) == 0)
			return &known_keys[i];
	return NULL;
}

/* YAML's null: "http:" with nothing after it, or ~ / null written out. */
static int is_null(const yaml_node_t *node)
{
	const char *v;

	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	v = (const char *)node->data.scalar.value;
	return v[0] == '\0' || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

/* A scalar with a NUL inside ("a\0b") would be read cut short. */
static int has_nul(const yaml_node_t *node)
{
	return strlen((const char *)node->data.scalar.value) != node->data.scalar.length;
}

static int same_key(const yaml_node_t *a, const yaml_node_t *b)
{
	return a->type == YAML_SCALAR_NODE && b->type == YAML_SCALAR_NODE &&
	       a->data.scalar.length == b->data.scalar.length &&
	       memcmp(a->data.scalar.value, b->data.scalar.value, a->data.scalar.length) == 0;
}

static int check_value(yaml_document_t *doc, const struct known_key *known, yaml_node_t *value, char *path,
		       size_t len, size_t cap);

/* Check a known section's mapping: every key once, known keys in the shape
 * they are read in, unknown keys warned about and left unread (whatever
 * their shape: a distribution config.yml has many).  `path` holds the
 * section's key path, `len` characters of the `cap` it may grow to. */
static int check_section(yaml_document_t *doc, yaml_node_t *mapping, char *path, size_t len, size_t cap)
{
	yaml_node_pair_t *pair, *earlier;
	int error = 0;

	for (pair = mapping->data.mapping.pairs.start; pair < mapping->data.mapping.pairs.top; pair++) {
		yaml_node_t *key = yaml_document_get_node(doc, pair->key);
		const struct known_key *known = NULL;
		const char *name;
		int n;

		if (!key)
			continue;
		if (key->type != YAML_SCALAR_NODE) {
			brt_log_warn("config: ignoring a key under %s that is a list or a mapping",
				     len ? path : "the top level");
			continue;
		}
		name = (const char *)key->data.scalar.value;
		/* A key too long for the path, or with a NUL in it, is no known
		 * key; it is named from `name` instead. */
		n = snprintf(path + len, cap - len, "%s%s", len ? "." : "", name);
		if (n >= 0 && (size_t)n < cap - len && !has_nul(key)) {
			known = find_known(path);
		} else {
			n = 0;
			path[len] = '\0';
		}
		for (earlier = mapping->data.mapping.pairs.start; earlier < pair; earlier++) {
			yaml_node_t *other = yaml_document_get_node(doc, earlier->key);
			if (other && same_key(key, other)) {
				error = brt_error_set(BRT_EINVALID, "config: %s%s%.100s is given twice", path,
						      n == 0 && len ? "." : "", n == 0 ? name : "");
				goto done;
			}
		}
		if (!known)
			brt_log_warn("config: ignoring unknown key %s%s%.100s", path,
				     n == 0 && len ? "." : "", n == 0 ? name : "");
		else if ((error = check_value(doc, known, yaml_document_get_node(doc, pair->value), path,
					      len + (size_t)n, cap)) < 0)
			goto done;
		path[len] = '\0';
	}
done:
	return error;
}

static int check_value(yaml_document_t *doc, const struct known_key *known, yaml_node_t *value, char *path,
		       size_t len, size_t cap)
{
	yaml_node_item_t *item;

	if (!value)
		return 0;
	if (known->shape == SHAPE_SECTION) {
		if (value->type == YAML_MAPPING_NODE)
			return check_section(doc, value, path, len, cap);
		if (is_null(value))
			return 0;
		return brt_error_set(BRT_EINVALID, "config: %s must be a mapping of keys, not a %s", path,
				     value->type == YAML_SEQUENCE_NODE ? "list" : "single value");
	}
	if (known->shape == SHAPE_FILES && value->type == YAML_SEQUENCE_NODE) {
		for (item = value->data.sequence.items.start; item < value->data.sequence.items.top; item++) {
			yaml_node_t *file = yaml_document_get_node(doc, *item);
			if (file && (file->type != YAML_SCALAR_NODE || has_nul(file)))
				return brt_error_set(BRT_EINVALID, "config: %s must list file names", path);
		}
		return 0;
	}
	if (value->type != YAML_SCALAR_NODE)
		return brt_error_set(BRT_EINVALID, "config: %s must be a single value, not a %s", path,
				     value->type == YAML_SEQUENCE_NODE ? "list" : "mapping");
	if (has_nul(value))
		return brt_error_set(BRT_EINVALID, "config: %s contains a NUL character", path);
	return 0;
}

/* The whole file's shape, before any value is read: a mapping of sections
 * (or nothing at all). */
static int check_document(yaml_document_t *doc)
{
	yaml_node_t *root = yaml_document_get_root_node(doc);
	char path[256] = "";

	/* an empty file, or one of comments, or a lone "---" */
	if (!root || is_null(root))
		return 0;
	if (root->type != YAML_MAPPING_NODE)
		return brt_error_set(BRT_EINVALID,
				     "config: the top level must be a mapping of sections "
				     "(http:, storage:, ...), not a %s",
				     root->type == YAML_SEQUENCE_NODE ? "list" : "single value");
	return check_section(doc, root, path, 0, sizeof(path));
}

/* A parse failure as an error code: the file failing to read is I/O, not
 * a malformed configuration. */
static int parse_error(yaml_parser_t *parser, FILE *f, const char *path)
{
	if (parser->error == YAML_MEMORY_ERROR)
		return brt_error_set(BRT_ENOMEM, "config %s: out of memory", path);
	if (parser->error == YAML_READER_ERROR && ferror(f))
		return brt_error_set(BRT_EIO, "cannot read config %s", path);
	return brt_error_set(BRT_EINVALID, "config %s: %s at line %zu", path,
			     parser->problem ? parser->problem : "syntax error",
			     parser->problem_mark.line + 1);
}

int brt_config_load(brt_config *config, const char *path)
{
	int error = 0, fd = -1;
	FILE *f = NULL;
	struct stat st;
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	int parser_ready = 0, doc_ready = 0;
	/* The caller's values stay as they were unless the whole file loads. */
	brt_config next = *config;

	/* O_NONBLOCK: a FIFO without a writer is refused below, not waited on. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		error = brt_error_set(BRT_EIO, "cannot open config %s: %s", path, strerror(errno));
		goto done;
	}
	if (fstat(fd, &st) < 0) {
		error = brt_error_set(BRT_EIO, "cannot open config %s: %s", path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		error = brt_error_set(BRT_EIO, "config %s is not a regular file", path);
		goto done;
	}
	if (!(f = fdopen(fd, "rb"))) {
		error = brt_error_set(BRT_EIO, "cannot open config %s: %s", path, strerror(errno));
		goto done;
	}
	fd = -1; /* now closed with f */
	if (!yaml_parser_initialize(&parser)) {
		error = brt_error_set(BRT_ENOMEM, "yaml parser");
		goto done;
	}
	parser_ready = 1;
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		error = parse_error(&parser, f, path);
		goto done;
	}
	doc_ready = 1;
	/* A second document would be silently ignored; the rest of the file
	 * must also parse. */
	if (yaml_document_get_root_node(&doc)) {
		if (!yaml_parser_load(&parser, &extra)) {
			error = parse_error(&parser, f, path);
			goto done;
		}
		if (yaml_document_get_root_node(&extra))
			error = brt_error_set(BRT_EINVALID,
					      "config %s: one document expected, another starts "
					      "at line %zu",
					      path, extra.start_mark.line + 1);
		yaml_document_delete(&extra);
		if (error < 0)
			goto done;
	}
	if ((error = check_document(&doc)) < 0 || (error = apply(&next, &doc)) < 0)
		goto done;
	*config = next;
done:
	if (doc_ready)
		yaml_document_delete(&doc);
	if (parser_ready)
		yaml_parser_delete(&parser);
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	return error;
}
