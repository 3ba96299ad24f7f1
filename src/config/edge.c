/* berth-edge's settings.  One table names each setting once, with its
 * flag, its YAML key path and how its text is read, so that the file and
 * the command line accept exactly the same things. */
#include "config/edge.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/error.h"
#include "config/yaml.h"

enum kind {
	TEXT,    /* a string that must fit its field */
	THREADS, /* 1 to 256 */
	SIZE,    /* brt_edge_settings_parse_size */
	SWITCH,  /* a flag without a value; true or false in YAML */
};

struct setting {
	const char *key; /* dotted YAML path */
	const char *path[3];
	const char *flag;
	enum kind kind;
	size_t offset, cap;
};

#define FIELD(f) offsetof(brt_edge_settings, f), sizeof(((brt_edge_settings *)0)->f)

static const struct setting settings[] = {
	{"listen", {"listen"}, "--listen", TEXT, FIELD(listen)},
	{"upstream", {"upstream"}, "--upstream", TEXT, FIELD(upstream)},
	{"access_key_file", {"access_key_file"}, "--access-key-file", TEXT, FIELD(access_key_file)},
	{"cert", {"cert"}, "--cert", TEXT, FIELD(cert)},
	{"key", {"key"}, "--key", TEXT, FIELD(key)},
	{"ca", {"ca"}, "--ca", TEXT, FIELD(ca)},
	{"threads", {"threads"}, "--threads", THREADS, FIELD(threads)},
	{"cache.dir", {"cache", "dir"}, "--cache-dir", TEXT, FIELD(cache_dir)},
	{"cache.max_bytes", {"cache", "max_bytes"}, "--cache-max-bytes", SIZE, FIELD(cache_max_bytes)},
	{"allow_push", {"allow_push"}, "--allow-push", SWITCH, FIELD(allow_push)},
};

#define SETTINGS (sizeof(settings) / sizeof(settings[0]))

void brt_edge_settings_defaults(brt_edge_settings *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->listen, sizeof(s->listen), "127.0.0.1:8080");
	s->threads = 4;
}

int brt_edge_settings_parse_size(uint64_t *out, const char *text)
{
	static const struct {
		const char *suffix;
		unsigned int shift;
	} units[] = {{"", 0},     {"K", 10},   {"M", 20},   {"G", 30},  {"T", 40},
		     {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}};
	unsigned long long n;
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return BRT_EINVALID;
	errno = 0;
	n = strtoull(text, &end, 10);
	if (errno)
		return BRT_EINVALID;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].suffix) == 0) {
			if (units[i].shift && n > (UINT64_MAX >> units[i].shift))
				return BRT_EINVALID;
			*out = (uint64_t)n << units[i].shift;
			return 0;
		}
	return BRT_EINVALID;
}

/* Read `value` into the setting's field.  BRT_EINVALID with *why_out
 * saying what the value must be. */
static int set_value(const char **why_out, brt_edge_settings *s, const struct setting *st, const char *value)
{
	void *field = (char *)s + st->offset;
	uint64_t size;
	char *end;
	long n;
	int on;

	switch (st->kind) {
	case TEXT:
		if (!value[0] || strlen(value) >= st->cap) {
			*why_out = "must not be empty or longer than the field allows";
			return BRT_EINVALID;
		}
		memcpy(field, value, strlen(value) + 1);
		return 0;
	case THREADS:
		errno = 0;
		n = strtol(value, &end, 10);
		if (errno || *end != '\0' || value[0] < '0' || value[0] > '9' || n < 1 || n > 256) {
			*why_out = "must be a number from 1 to 256";
			return BRT_EINVALID;
		}
		*(unsigned int *)field = (unsigned int)n;
		return 0;
	case SIZE:
		if (brt_edge_settings_parse_size(&size, value) < 0) {
			*why_out =
				"must be a number of bytes, optionally with K, M, G, T, KiB, MiB, GiB or TiB";
			return BRT_EINVALID;
		}
		*(uint64_t *)field = size;
		return 0;
	case SWITCH:
		if (brt_yaml_parse_bool(&on, value) < 0) {
			*why_out = "must be true or false";
			return BRT_EINVALID;
		}
		*(int *)field = on;
		return 0;
	}
	*why_out = "is of an unknown kind";
	return BRT_EINVALID;
}

int brt_edge_settings_load(brt_edge_settings *settings_out, const char *path)
{
	brt_yaml_key keys[SETTINGS + 1];
	brt_edge_settings next = *settings_out;
	yaml_document_t doc;
	const char *why = "";
	int error;

	for (size_t i = 0; i < SETTINGS; i++) {
		keys[i].path = settings[i].key;
		keys[i].shape = BRT_YAML_VALUE;
	}
	keys[SETTINGS].path = "cache";
	keys[SETTINGS].shape = BRT_YAML_SECTION;
	if ((error = brt_yaml_load(&doc, path)) < 0)
		return error;
	if ((error = brt_yaml_check(&doc, path, keys, SETTINGS + 1, BRT_YAML_UNKNOWN_REFUSE)) < 0)
		goto done;
	for (size_t i = 0; i < SETTINGS; i++) {
		yaml_node_t *node = brt_yaml_lookup(&doc, settings[i].path);

		if (!node)
			continue;
		/* brt_yaml_check saw to it that this is a scalar. */
		if (brt_yaml_is_null(node)) {
			error = brt_error_set(BRT_EINVALID, "config %s line %zu: %s needs a value", path,
					      node->start_mark.line + 1, settings[i].key);
			goto done;
		}
		if ((error = set_value(&why, &next, &settings[i], (const char *)node->data.scalar.value)) <
		    0) {
			error = brt_error_set(error, "config %s line %zu: %s %s", path,
					      node->start_mark.line + 1, settings[i].key, why);
			goto done;
		}
	}
	*settings_out = next;
done:
	yaml_document_delete(&doc);
	return error;
}

static const struct setting *find_flag(const char *arg)
{
	for (size_t i = 0; i < SETTINGS; i++)
		if (strcmp(settings[i].flag, arg) == 0)
			return &settings[i];
	return NULL;
}

static int is_credential(const struct setting *st)
{
	return st->offset == offsetof(brt_edge_settings, access_key_file) ||
	       st->offset == offsetof(brt_edge_settings, cert) ||
	       st->offset == offsetof(brt_edge_settings, key);
}

/* Everything must be in place before the proxy starts. */
static int check(const brt_edge_settings *s)
{
	if (!s->upstream[0])
		return brt_error_set(BRT_EINVALID, "--upstream URL (upstream:) is required");
	if (s->access_key_file[0] && (s->cert[0] || s->key[0]))
		return brt_error_set(BRT_EINVALID,
				     "use either an access key file or a certificate and key, not both");
	if (!s->access_key_file[0] && !(s->cert[0] && s->key[0]))
		return brt_error_set(BRT_EINVALID,
				     "credentials are required: --access-key-file FILE, "
				     "or --cert FILE and --key FILE (or the same in the config file)");
	if (s->cache_max_bytes && !s->cache_dir[0])
		return brt_error_set(BRT_EINVALID,
				     "--cache-max-bytes (cache.max_bytes) needs --cache-dir (cache.dir)");
	return 0;
}

int brt_edge_settings_from_args(brt_edge_settings *out, int argc, char *const *argv)
{
	const char *config = NULL, *why = "";
	int credential_flags = 0, error = 0;

	brt_edge_settings_defaults(out);
	/* First the file's name and whether credentials come as flags, so that
	 * every flag goes over the file wherever it stands. */
	for (int i = 1; i < argc; i++) {
		const struct setting *st = find_flag(argv[i]);

		if (strcmp(argv[i], "--config") != 0 && !st)
			return brt_error_set(BRT_EINVALID, "unknown option %s (see --help)", argv[i]);
		if (st && st->kind == SWITCH)
			continue;
		if (i + 1 >= argc || argv[i + 1][0] == '\0')
			return brt_error_set(BRT_EINVALID, "%s needs a value", argv[i]);
		if (!st) {
			if (config)
				return brt_error_set(BRT_EINVALID, "--config is given twice");
			config = argv[i + 1];
		} else if (is_credential(st)) {
			credential_flags = 1;
		}
		i++;
	}
	if (config && (error = brt_edge_settings_load(out, config)) < 0)
		return error;
	if (credential_flags)
		out->access_key_file[0] = out->cert[0] = out->key[0] = '\0';
	for (int i = 1; i < argc; i++) {
		const struct setting *st = find_flag(argv[i]);

		if (!st) {
			i++; /* --config FILE, done above */
			continue;
		}
		if (st->kind == SWITCH) {
			*(int *)((char *)out + st->offset) = 1;
			continue;
		}
		if ((error = set_value(&why, out, st, argv[++i])) < 0)
			return brt_error_set(error, "%s %s", st->flag, why);
	}
	return check(out);
}
