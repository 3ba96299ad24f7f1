/* berthd: the registry server.  `berthd [serve] [--listen ADDR:PORT]
 * [--data-dir DIR] [--config FILE]` runs it on the embedded default
 * stores (filesystem blobs, SQLite metadata) under the data directory. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/log.h"
#include "config/config.h"
#include "http/server.h"
#include "meta/meta.h"
#include "storage/blobstore.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: berthd [serve] [options]\n"
		"  --listen ADDR:PORT   address to listen on (default 127.0.0.1:5000)\n"
		"  --data-dir DIR       blobs and metadata (default ./berth-data)\n"
		"  --config FILE        YAML configuration (flags override it)\n"
		"  --help               this text\n");
}

struct options {
	const char *config;
	const char *listen;
	const char *data_dir;
};

static int parse_args(struct options *opt, int argc, char **argv)
{
	int i = 1;

	memset(opt, 0, sizeof(*opt));
	if (i < argc && strcmp(argv[i], "serve") == 0)
		i++;
	for (; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(a, "--config") == 0)
			slot = &opt->config;
		else if (strcmp(a, "--listen") == 0)
			slot = &opt->listen;
		else if (strcmp(a, "--data-dir") == 0)
			slot = &opt->data_dir;
		if (!slot || i + 1 >= argc) {
			fprintf(stderr, "berthd: %s: %s\n", a, slot ? "needs a value" : "unknown argument");
			usage(stderr);
			return -1;
		}
		*slot = argv[++i];
	}
	return 0;
}

static int set_string(char *dst, size_t cap, const char *value, const char *what)
{
	if (strlen(value) >= cap || !*value) {
		fprintf(stderr, "berthd: %s is empty or too long\n", what);
		return -1;
	}
	snprintf(dst, cap, "%s", value);
	return 0;
}

static int serve(const brt_config *config)
{
	struct brt_server server;
	char path[BRT_CONFIG_PATH_MAX + 32];
	sigset_t signals;
	int sig = 0, error;

	memset(&server, 0, sizeof(server));
	server.config = config;
	if (mkdir(config->data_dir, 0755) < 0 && errno != EEXIST) {
		brt_log_error("cannot create %s: %s", config->data_dir, strerror(errno));
		return 1;
	}
	if ((error = brt_blobstore_fs_open(&server.blobs, config->data_dir)) < 0) {
		brt_log_error("blob store: %s", brt_error_last());
		return 1;
	}
	snprintf(path, sizeof(path), "%s/meta.db", config->data_dir);
	if ((error = brt_meta_sqlite_open(&server.meta, path)) < 0) {
		brt_log_error("metadata store: %s", brt_error_last());
		server.blobs->free(server.blobs);
		return 1;
	}
	/* Signals are taken synchronously by this thread; the server threads
	 * inherit the blocked mask. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((error = brt_server_start(&server)) < 0) {
		brt_log_error("%s", brt_error_last());
		server.meta->free(server.meta);
		server.blobs->free(server.blobs);
		return 1;
	}
	brt_log_info("data in %s (blobs: %s, metadata: %s)", config->data_dir, server.blobs->name,
		     server.meta->name);
	sigwait(&signals, &sig);
	brt_log_info("signal %d: draining in-flight requests", sig);
	brt_server_stop(&server);
	server.meta->free(server.meta);
	server.blobs->free(server.blobs);
	brt_log_info("stopped");
	return 0;
}

int main(int argc, char **argv)
{
	struct options opt;
	brt_config config;

	if (parse_args(&opt, argc, argv) < 0)
		return 2;
	brt_config_defaults(&config);
	if (opt.config && brt_config_load(&config, opt.config) < 0) {
		fprintf(stderr, "berthd: %s\n", brt_error_last());
		return 2;
	}
	if (opt.listen && set_string(config.listen, sizeof(config.listen), opt.listen, "--listen") < 0)
		return 2;
	if (opt.data_dir && set_string(config.data_dir, sizeof(config.data_dir), opt.data_dir, "--data-dir") < 0)
		return 2;
	brt_log_set_level(config.log_level);
	return serve(&config);
}
