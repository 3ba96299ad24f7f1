/* The strict YAML reading shared by the configuration loaders, on
 * libyaml's document API: a configuration file is small, so it is loaded
 * whole as a node tree, checked for shape, then read by key path. */
#include "config/yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"

struct check {
	yaml_document_t *doc;
	const char *file;
	const brt_yaml_key *keys;
	size_t count;
	brt_yaml_unknown unknown;
};

yaml_node_t *brt_yaml_lookup(yaml_document_t *doc, const char *const *path)
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

const char *brt_yaml_scalar(yaml_document_t *doc, const char *const *path)
{
	yaml_node_t *node = brt_yaml_lookup(doc, path);

	if (!node || node->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)node->data.scalar.value;
}

int brt_yaml_parse_bool(int *out, const char *v)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
		*out = 1;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"))
		*out = 0;
	else
		return BRT_EINVALID;
	return 0;
}

int brt_yaml_is_null(const yaml_node_t *node)
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

static const brt_yaml_key *find_known(const struct check *c, const char *path)
{
	for (size_t i = 0; i < c->count; i++)
		if (strcmp(c->keys[i].path, path) == 0)
			return &c->keys[i];
	return NULL;
}

static size_t line_of(const yaml_node_t *node)
{
	return node->start_mark.line + 1;
}

static int check_value(const struct check *c, const brt_yaml_key *known, yaml_node_t *value, char *path,
		       size_t len, size_t cap);

/* Check a mapping: every key once, known keys in the shape they are read
 * in, unknown keys as the caller wants them.  `path` holds the mapping's
 * key path, `len` characters of the `cap` it may grow to. */
static int check_section(const struct check *c, yaml_node_t *mapping, char *path, size_t len, size_t cap)
{
	yaml_node_pair_t *pair, *earlier;
	int error = 0;

	for (pair = mapping->data.mapping.pairs.start; pair < mapping->data.mapping.pairs.top; pair++) {
		yaml_node_t *key = yaml_document_get_node(c->doc, pair->key);
		const brt_yaml_key *known = NULL;
		const char *name;
		int n;

		if (!key)
			continue;
		if (key->type != YAML_SCALAR_NODE) {
			if (c->unknown == BRT_YAML_UNKNOWN_REFUSE) {
				error = brt_error_set(BRT_EINVALID,
						      "config %s line %zu: a key under %s is a list or a "
						      "mapping",
						      c->file, line_of(key), len ? path : "the top level");
				goto done;
			}
			brt_log_warn("config: ignoring a key under %s that is a list or a mapping",
				     len ? path : "the top level");
			continue;
		}
		name = (const char *)key->data.scalar.value;
		/* A key too long for the path, or with a NUL in it, is no known
		 * key; it is named from `name` instead. */
		n = snprintf(path + len, cap - len, "%s%s", len ? "." : "", name);
		if (n >= 0 && (size_t)n < cap - len && !has_nul(key)) {
			known = find_known(c, path);
		} else {
			n = 0;
			path[len] = '\0';
		}
		for (earlier = mapping->data.mapping.pairs.start; earlier < pair; earlier++) {
			yaml_node_t *other = yaml_document_get_node(c->doc, earlier->key);
			if (other && same_key(key, other)) {
				error = brt_error_set(BRT_EINVALID,
						      "config %s line %zu: %s%s%.100s is given twice",
						      c->file, line_of(key), path, n == 0 && len ? "." : "",
						      n == 0 ? name : "");
				goto done;
			}
		}
		if (!known && c->unknown == BRT_YAML_UNKNOWN_REFUSE) {
			error = brt_error_set(BRT_EINVALID, "config %s line %zu: unknown key %s%s%.100s",
					      c->file, line_of(key), path, n == 0 && len ? "." : "",
					      n == 0 ? name : "");
			goto done;
		}
		if (!known)
			brt_log_warn("config: ignoring unknown key %s%s%.100s", path,
				     n == 0 && len ? "." : "", n == 0 ? name : "");
		else if ((error = check_value(c, known, yaml_document_get_node(c->doc, pair->value), path,
					      len + (size_t)n, cap)) < 0)
			goto done;
		path[len] = '\0';
	}
done:
	return error;
}

static const char *shape_name(const yaml_node_t *node)
{
	return node->type == YAML_SEQUENCE_NODE  ? "list"
	       : node->type == YAML_MAPPING_NODE ? "mapping"
						 : "single value";
}

static int check_value(const struct check *c, const brt_yaml_key *known, yaml_node_t *value, char *path,
		       size_t len, size_t cap)
{
	yaml_node_item_t *item;

	if (!value)
		return 0;
	if (known->shape == BRT_YAML_SECTION) {
		if (value->type == YAML_MAPPING_NODE)
			return check_section(c, value, path, len, cap);
		if (brt_yaml_is_null(value))
			return 0;
		return brt_error_set(BRT_EINVALID,
				     "config %s line %zu: %s must be a mapping of keys, not a %s", c->file,
				     line_of(value), path, shape_name(value));
	}
	if (known->shape == BRT_YAML_FILES && value->type == YAML_SEQUENCE_NODE) {
		for (item = value->data.sequence.items.start; item < value->data.sequence.items.top; item++) {
			yaml_node_t *file = yaml_document_get_node(c->doc, *item);
			if (file && (file->type != YAML_SCALAR_NODE || has_nul(file)))
				return brt_error_set(BRT_EINVALID,
						     "config %s line %zu: %s must list file names", c->file,
						     line_of(file), path);
		}
		return 0;
	}
	if (value->type != YAML_SCALAR_NODE)
		return brt_error_set(BRT_EINVALID, "config %s line %zu: %s must be a single value, not a %s",
				     c->file, line_of(value), path, shape_name(value));
	if (has_nul(value))
		return brt_error_set(BRT_EINVALID, "config %s line %zu: %s contains a NUL character", c->file,
				     line_of(value), path);
	return 0;
}

int brt_yaml_check(yaml_document_t *doc, const char *file, const brt_yaml_key *keys, size_t count,
		   brt_yaml_unknown unknown)
{
	struct check c = {doc, file, keys, count, unknown};
	yaml_node_t *root = yaml_document_get_root_node(doc);
	char path[256] = "";

	/* an empty file, or one of comments, or a lone "---" */
	if (!root || brt_yaml_is_null(root))
		return 0;
	if (root->type != YAML_MAPPING_NODE)
		return brt_error_set(BRT_EINVALID,
				     "config %s line %zu: the top level must be a mapping of keys, not a %s",
				     file, line_of(root), shape_name(root));
	return check_section(&c, root, path, 0, sizeof(path));
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

int brt_yaml_load(yaml_document_t *out, const char *path)
{
	int error = 0, fd = -1;
	FILE *f = NULL;
	struct stat st;
	yaml_parser_t parser;
	yaml_document_t extra;
	int parser_ready = 0, doc_ready = 0;

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
	if (!yaml_parser_load(&parser, out)) {
		error = parse_error(&parser, f, path);
		goto done;
	}
	doc_ready = 1;
	/* A second document would be silently ignored; the rest of the file
	 * must also parse. */
	if (yaml_document_get_root_node(out)) {
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
	}
done:
	if (error < 0 && doc_ready)
		yaml_document_delete(out);
	if (parser_ready)
		yaml_parser_delete(&parser);
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	return error;
}
