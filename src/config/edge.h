/* berth-edge's settings: built-in defaults, then a YAML file (--config),
 * then the command-line flags over it.  Every setting has a flag and a
 * YAML key of the same name (--cache-max-bytes, cache.max_bytes).  The
 * file is read as strictly as berthd's, and more: an unknown key is an
 * error too, since no other program's keys belong in it. */
#ifndef BRT_CONFIG_EDGE_H
#define BRT_CONFIG_EDGE_H

#include <stdint.h>

#include "config/config.h"

typedef struct brt_edge_settings {
	char listen[256];                          /* listen; default 127.0.0.1:8080 */
	char upstream[BRT_CONFIG_PATH_MAX];        /* upstream: the registry's URL */
	char access_key_file[BRT_CONFIG_PATH_MAX]; /* access_key_file; "" for none */
	char cert[BRT_CONFIG_PATH_MAX];            /* cert: device certificate; "" for none */
	char key[BRT_CONFIG_PATH_MAX];             /* key: its private key */
	char ca[BRT_CONFIG_PATH_MAX];              /* ca: CAs for the upstream; "" for the system's */
	unsigned int threads;                      /* threads: 1 to 256, default 4 */
	char cache_dir[BRT_CONFIG_PATH_MAX];       /* cache.dir; "" for no cache */
	uint64_t cache_max_bytes;                  /* cache.max_bytes; 0: no bound */
	int allow_push;                            /* allow_push: forward pushes and deletes too */
} brt_edge_settings;

void brt_edge_settings_defaults(brt_edge_settings *settings);

/* A byte count: decimal digits, then nothing (bytes) or one of K, M, G, T,
 * KiB, MiB, GiB, TiB (all powers of 1024).  BRT_EINVALID (no detail) if
 * malformed or past 64 bits. */
int brt_edge_settings_parse_size(uint64_t *out, const char *text);

/* Read the YAML file at `path` over `settings`: a mapping of the keys
 * above.  Unknown keys, wrong shapes, a key given twice, a second
 * document and malformed values are BRT_EINVALID, with the file, the line
 * and the key in the detail; a path that cannot be read or is not a
 * regular file is BRT_EIO.  On error `settings` is left as it was. */
int brt_edge_settings_load(brt_edge_settings *settings, const char *path);

/* The whole command line (argv[1..]): the defaults, then the file of
 * --config FILE if given, then every other flag over it.  Credentials
 * given as flags (--access-key-file, or --cert/--key) replace all of
 * the file's.  Then the result is checked: an upstream, one kind of
 * credentials, no cache bound without a cache.  BRT_EINVALID (detail
 * says what; --help and --version are the caller's to handle before),
 * or the file's error. */
int brt_edge_settings_from_args(brt_edge_settings *out, int argc, char *const *argv);

#endif
