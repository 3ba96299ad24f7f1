/* berth-edge: the registry's forwarding proxy for gateways.  It listens
 * for local clients over plain HTTP and forwards their pulls to the
 * upstream registry with the gateway's own credentials (an access key or
 * a device certificate), so that local clients need none. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/version.h"
#include "cmd/cli.h"
#include "common/error.h"
#include "common/log.h"
#include "edge/cache.h"
#include "edge/proxy.h"
#include "edge/upstream.h"
#include "http/server.h"

struct options {
	const char *listen, *upstream, *access_key_file, *cert, *key, *ca, *threads, *cache_dir,
		*cache_max_bytes;
};

static void usage(FILE *out)
{
	fputs("usage: berth-edge [--listen HOST:PORT] --upstream URL\n"
	      "                  (--access-key-file FILE | --cert FILE --key FILE) [--ca FILE]\n"
	      "                  [--threads N] [--cache-dir DIR [--cache-max-bytes N]]\n"
	      "Forward pulls (GET and HEAD of /v2/ endpoints) to the upstream registry,\n"
	      "authenticated as this gateway.\n"
	      "  --listen HOST:PORT       where local clients connect (default 127.0.0.1:8080)\n"
	      "  --upstream URL           the registry, e.g. https://registry.example.com\n"
	      "  --access-key-file FILE   an access key, sent as a Bearer credential\n"
	      "  --cert FILE --key FILE   a device certificate and its key (mutual TLS)\n"
	      "  --ca FILE                CA certificates for the upstream (default: the system's)\n"
	      "  --threads N              server threads (default 4)\n"
	      "  --cache-dir DIR          keep blobs and manifests fetched by digest in DIR\n"
	      "  --cache-max-bytes N      bound the cached objects' total size (default 0: none)\n"
	      "  --help, --version\n",
	      out);
}

static int parse_args(struct options *opt, int argc, char **argv)
{
	memset(opt, 0, sizeof(*opt));
	opt->listen = "127.0.0.1:8080";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = NULL;

		brt_cli_help_or_version(a, "berth-edge", usage);
		if (strcmp(a, "--listen") == 0)
			slot = &opt->listen;
		else if (strcmp(a, "--upstream") == 0)
			slot = &opt->upstream;
		else if (strcmp(a, "--access-key-file") == 0)
			slot = &opt->access_key_file;
		else if (strcmp(a, "--cert") == 0)
			slot = &opt->cert;
		else if (strcmp(a, "--key") == 0)
			slot = &opt->key;
		else if (strcmp(a, "--ca") == 0)
			slot = &opt->ca;
		else if (strcmp(a, "--threads") == 0)
			slot = &opt->threads;
		else if (strcmp(a, "--cache-dir") == 0)
			slot = &opt->cache_dir;
		else if (strcmp(a, "--cache-max-bytes") == 0)
			slot = &opt->cache_max_bytes;
		if (!slot) {
			fprintf(stderr, "berth-edge: unknown option %s (see --help)\n", a);
			return -1;
		}
		if (i + 1 >= argc || argv[i + 1][0] == '\0') {
			fprintf(stderr, "berth-edge: %s needs a value\n", a);
			return -1;
		}
		*slot = argv[++i];
	}
	if (!opt->upstream) {
		fprintf(stderr, "berth-edge: --upstream URL is required\n");
		return -1;
	}
	if (opt->access_key_file && (opt->cert || opt->key)) {
		fprintf(stderr, "berth-edge: use either --access-key-file or --cert/--key, not both\n");
		return -1;
	}
	if (!opt->access_key_file && !(opt->cert && opt->key)) {
		fprintf(stderr,
			"berth-edge: credentials are required: --access-key-file FILE, "
			"or --cert FILE and --key FILE\n");
		return -1;
	}
	return 0;
}

static int parse_threads(unsigned int *out, const char *text)
{
	char *end;
	long v;

	*out = 4;
	if (!text)
		return 0;
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || *end != '\0' || v < 1 || v > 256) {
		fprintf(stderr, "berth-edge: --threads must be a number from 1 to 256\n");
		return -1;
	}
	*out = (unsigned int)v;
	return 0;
}

static int parse_bytes(uint64_t *out, const char *text)
{
	char *end;
	unsigned long long v;

	*out = 0;
	if (!text)
		return 0;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || *end != '\0' || text[0] < '0' || text[0] > '9') {
		fprintf(stderr, "berth-edge: --cache-max-bytes must be a number of bytes\n");
		return -1;
	}
	*out = (uint64_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	struct options opt;
	brt_upstream_options upstream_options;
	brt_upstream *upstream = NULL;
	brt_edge_cache *cache = NULL;
	brt_edge_context context;
	uint64_t cache_max_bytes;
	brt_http_options http;
	brt_http_handler handler;
	brt_http_server *server = NULL;
	sigset_t signals;
	int sig = 0, status = 1;

	if (parse_args(&opt, argc, argv) < 0)
		return 2;
	memset(&http, 0, sizeof(http));
	if (parse_threads(&http.threads, opt.threads) < 0 ||
	    parse_bytes(&cache_max_bytes, opt.cache_max_bytes) < 0)
		return 2;
	if (opt.cache_max_bytes && !opt.cache_dir) {
		fprintf(stderr, "berth-edge: --cache-max-bytes needs --cache-dir\n");
		return 2;
	}
	memset(&upstream_options, 0, sizeof(upstream_options));
	upstream_options.url = opt.upstream;
	upstream_options.access_key_file = opt.access_key_file;
	upstream_options.cert = opt.cert;
	upstream_options.key = opt.key;
	upstream_options.ca = opt.ca;
	if (brt_upstream_new(&upstream, &upstream_options) < 0) {
		fprintf(stderr, "berth-edge: %s\n", brt_error_last());
		return 2;
	}
	if (opt.cache_dir && brt_edge_cache_open(&cache, opt.cache_dir, cache_max_bytes) < 0) {
		fprintf(stderr, "berth-edge: %s\n", brt_error_last());
		brt_upstream_free(upstream);
		return 2;
	}
	http.listen = opt.listen;
	http.connection_memory = 64 * 1024;
	http.connection_timeout = 60;
	http.reserved = BRT_HTTP_AUTO;
	http.header_timeout = 30;
	http.request_timeout = 300;
	http.min_rate_window = 30;
	http.drain_timeout = 10;
	http.body_memory = 1u << 20;
	http.access_log = 1;
	http.allow_suspend = 1;
	/* Signals are taken synchronously by this thread; the server threads
	 * inherit the blocked mask. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	memset(&context, 0, sizeof(context));
	context.upstream = upstream;
	context.cache = cache;
	if (brt_edge_context_init(&context) < 0) {
		brt_log_error("%s", brt_error_last());
		goto done;
	}
	brt_edge_handler(&handler, &context);
	if (brt_http_server_start(&server, &http, &handler) < 0) {
		brt_log_error("%s", brt_error_last());
		goto done;
	}
	brt_log_info("berth-edge %s on %s (port %u): forwarding pulls to %s as %s, %u threads",
		     BRT_VERSION_STRING, opt.listen, brt_http_server_port(server), opt.upstream,
		     opt.access_key_file ? "an access key" : "a device certificate", http.threads);
	if (cache)
		brt_log_info("caching content fetched by digest in %s (bound: %llu bytes, 0: none)",
			     opt.cache_dir, (unsigned long long)cache_max_bytes);
	sigwait(&signals, &sig);
	brt_log_info("signal %d: draining in-flight requests", sig);
	brt_http_server_stop(server);
	brt_log_info("stopped");
	status = 0;
done:
	brt_edge_context_free(&context);
	brt_edge_cache_free(cache);
	brt_upstream_free(upstream);
	return status;
}
