/* What berthd's and berth-edge's configuration files have in common:
 * one YAML document read strictly from a regular file, its keys checked
 * against a table of the keys a program knows and the shape each must
 * have, and values read by key path.  Messages name the file and, for
 * anything inside it, the line. */
#ifndef BRT_CONFIG_YAML_H
#define BRT_CONFIG_YAML_H

#include <stddef.h>

#include <yaml.h>

/* What a known key's value must be. */
typedef enum brt_yaml_shape {
	BRT_YAML_SECTION, /* a mapping, or empty ("http:" with nothing under it) */
	BRT_YAML_VALUE,   /* a scalar */
	BRT_YAML_FILES,   /* a scalar or a list of scalars */
} brt_yaml_shape;

typedef struct brt_yaml_key {
	const char *path; /* dotted: "http.tls.key" */
	brt_yaml_shape shape;
} brt_yaml_key;

/* Unknown keys: warned about and left unread (a distribution config.yml
 * has many), or refused. */
typedef enum brt_yaml_unknown { BRT_YAML_UNKNOWN_WARN, BRT_YAML_UNKNOWN_REFUSE } brt_yaml_unknown;

/* Parse the file at `path` into *out (the caller deletes it with
 * yaml_document_delete on success): one document, the rest of the file
 * parsing too.  BRT_EIO if it cannot be opened or read or is not a
 * regular file (a FIFO is refused, not waited on); BRT_EINVALID for a
 * syntax error or a second document (detail: file and line); BRT_ENOMEM. */
int brt_yaml_load(yaml_document_t *out, const char *path);

/* Check the whole document before any value is read: empty, or a mapping
 * whose keys each appear once per mapping, known keys (`keys`, `count`)
 * in their shape, no NUL inside a scalar, unknown keys as `unknown` says.
 * BRT_EINVALID with `file`, the line and the key path in the detail. */
int brt_yaml_check(yaml_document_t *doc, const char *file, const brt_yaml_key *keys, size_t count,
		   brt_yaml_unknown unknown);

/* The node at a NULL-terminated key path ({"http", "addr", NULL}), or
 * NULL; borrowed from `doc`. */
yaml_node_t *brt_yaml_lookup(yaml_document_t *doc, const char *const *path);

/* The scalar at `path`, or NULL when absent or not a scalar. */
const char *brt_yaml_scalar(yaml_document_t *doc, const char *const *path);

/* YAML's null: nothing after the colon, or ~ / null written out plain. */
int brt_yaml_is_null(const yaml_node_t *node);

/* true, yes, on / false, no, off into *out (1 / 0); BRT_EINVALID (no
 * detail) otherwise. */
int brt_yaml_parse_bool(int *out, const char *value);

#endif
