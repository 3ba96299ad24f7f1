/* berth-edge: the registry's forwarding proxy for gateways.  It listens
 * for local clients over plain HTTP and forwards their pulls to the
 * upstream registry with the gateway's own credentials (an access key or
 * a device certificate), so that local clients need none.  Settings come
 * from flags and an optional YAML file (config/edge). */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/version.h"
#include "cmd/cli.h"
#include "common/error.h"
#include "common/log.h"
#include "config/edge.h"
#include "edge/cache.h"
#include "edge/prefetch.h"
#include "edge/proxy.h"
#include "edge/upstream.h"
#include "http/server.h"

static void usage(FILE *out)
{
	fputs("usage: berth-edge [--config FILE] [--listen HOST:PORT] --upstream URL\n"
	      "                  (--access-key-file FILE | --cert FILE --key FILE) [--ca FILE]\n"
	      "                  [--threads N] [--cache-dir DIR [--cache-max-bytes SIZE]] [--allow-push]\n"
	      "Forward pulls (GET and HEAD of /v2/ endpoints) to the upstream registry,\n"
	      "authenticated as this gateway (answering the upstream's token challenges\n"
	      "on its own origin with the same credentials); with a cache, serve what was\n"
	      "fetched by digest from disk, and the last digest of a tag while the upstream\n"
	      "is unreachable.  GET /metrics (Prometheus) and /healthz (is the upstream up?).\n"
	      "  --config FILE            read these settings from a YAML file (keys as the flags\n"
	      "                           with _ for -, cache.dir and cache.max_bytes under cache:);\n"
	      "                           flags override it, credential flags all of its credentials\n"
	      "  --listen HOST:PORT       where local clients connect (default 127.0.0.1:8080)\n"
	      "  --upstream URL           the registry, e.g. https://registry.example.com\n"
	      "  --access-key-file FILE   an access key, sent as a Bearer credential\n"
	      "  --cert FILE --key FILE   a device certificate and its key (mutual TLS)\n"
	      "  --ca FILE                CA certificates for the upstream (default: the system's)\n"
	      "  --threads N              server threads, 1 to 256 (default 4)\n"
	      "  --cache-dir DIR          keep blobs and manifests fetched by digest in DIR\n"
	      "  --cache-max-bytes SIZE   bound the cached objects' total size: bytes, or with\n"
	      "                           K, M, G, T, KiB, MiB, GiB, TiB (default 0: none)\n"
	      "  --allow-push             forward pushes and deletes too (the upstream decides\n"
	      "                           whether the gateway's credentials may)\n"
	      "  --help, --version\n"
	      "\n"
	      "       berth-edge prefetch [--proxy URL | --config FILE | --listen HOST:PORT]\n"
	      "                  [--platform OS/ARCH[/VARIANT]] REPOSITORY:TAG|REPOSITORY@DIGEST\n"
	      "Pull an image (an index: every platform, or the one asked for) through the\n"
	      "running berth-edge, so that its cache holds it and its tag before a deployment.\n"
	      "  --proxy URL              the proxy (default: http:// and the listen address of\n"
	      "                           --config FILE or --listen, else 127.0.0.1:8080)\n",
	      out);
}

/* berth-edge prefetch ...: exit 0 when everything is cached, 1 when a
 * pull failed, 2 for bad arguments. */
static int prefetch_main(int argc, char **argv)
{
	const char *proxy = NULL, *platform = NULL, *reference = NULL;
	brt_edge_settings settings;
	brt_prefetch_result result;
	char url[300];
	int error;

	brt_edge_settings_defaults(&settings);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		int takes_value = strcmp(a, "--proxy") == 0 || strcmp(a, "--platform") == 0 ||
				  strcmp(a, "--config") == 0 || strcmp(a, "--listen") == 0;

		if (takes_value && (i + 1 >= argc || !argv[i + 1][0])) {
			fprintf(stderr, "berth-edge prefetch: %s needs a value\n", a);
			return 2;
		}
		if (strcmp(a, "--proxy") == 0)
			proxy = argv[++i];
		else if (strcmp(a, "--platform") == 0)
			platform = argv[++i];
		else if (strcmp(a, "--listen") == 0)
			snprintf(settings.listen, sizeof(settings.listen), "%s", argv[++i]);
		else if (strcmp(a, "--config") == 0) {
			if (brt_edge_settings_load(&settings, argv[++i]) < 0) {
				fprintf(stderr, "berth-edge prefetch: %s\n", brt_error_last());
				return 2;
			}
		} else if (a[0] == '-' || reference) {
			fprintf(stderr, "berth-edge prefetch: unexpected %s (see --help)\n", a);
			return 2;
		} else
			reference = a;
	}
	if (!reference) {
		fprintf(stderr, "berth-edge prefetch: which image? REPOSITORY:TAG or REPOSITORY@DIGEST\n");
		return 2;
	}
	if (!proxy) {
		snprintf(url, sizeof(url), "http://%s", settings.listen);
		proxy = url;
	}
	if ((error = brt_edge_prefetch(&result, proxy, reference, platform, stderr)) < 0) {
		fprintf(stderr, "berth-edge prefetch: %s\n", brt_error_last());
		return error == BRT_EINVALID ? 2 : 1;
	}
	fprintf(stderr, "prefetched %s through %s: %u manifest%s, %u blob%s, %llu bytes\n", reference, proxy,
		result.manifests, result.manifests == 1 ? "" : "s", result.blobs,
		result.blobs == 1 ? "" : "s", (unsigned long long)result.bytes);
	return 0;
}

int main(int argc, char **argv)
{
	brt_edge_settings settings;
	brt_upstream_options upstream_options;
	brt_upstream *upstream = NULL;
	brt_edge_cache *cache = NULL;
	brt_edge_context context;
	brt_http_options http;
	brt_http_handler handler;
	brt_http_server *server = NULL;
	sigset_t signals;
	int sig = 0, status = 1;

	for (int i = 1; i < argc; i++)
		brt_cli_help_or_version(argv[i], "berth-edge", usage);
	if (argc > 1 && strcmp(argv[1], "prefetch") == 0)
		return prefetch_main(argc, argv);
	/* A gateway's memory is small: every thread (server and download)
	 * shares two malloc arenas instead of keeping one each, and transfer
	 * buffers (256 KiB) always come from mmap, so they go back to the
	 * system when freed instead of staying in an arena. */
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	if (brt_edge_settings_from_args(&settings, argc, argv) < 0) {
		fprintf(stderr, "berth-edge: %s\n", brt_error_last());
		return 2;
	}
	memset(&http, 0, sizeof(http));
	memset(&upstream_options, 0, sizeof(upstream_options));
	upstream_options.url = settings.upstream;
	upstream_options.access_key_file = settings.access_key_file[0] ? settings.access_key_file : NULL;
	upstream_options.cert = settings.cert[0] ? settings.cert : NULL;
	upstream_options.key = settings.key[0] ? settings.key : NULL;
	upstream_options.ca = settings.ca[0] ? settings.ca : NULL;
	if (brt_upstream_new(&upstream, &upstream_options) < 0) {
		fprintf(stderr, "berth-edge: %s\n", brt_error_last());
		return 2;
	}
	if (settings.cache_dir[0] &&
	    brt_edge_cache_open(&cache, settings.cache_dir, settings.cache_max_bytes) < 0) {
		fprintf(stderr, "berth-edge: %s\n", brt_error_last());
		brt_upstream_free(upstream);
		return 2;
	}
	http.listen = settings.listen;
	http.threads = settings.threads;
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
	context.allow_push = settings.allow_push;
	if (brt_edge_context_init(&context) < 0) {
		brt_log_error("%s", brt_error_last());
		goto done;
	}
	brt_edge_handler(&handler, &context);
	if (brt_http_server_start(&server, &http, &handler) < 0) {
		brt_log_error("%s", brt_error_last());
		goto done;
	}
	brt_log_info("berth-edge %s on %s (port %u): forwarding %s to %s as %s, %u threads",
		     BRT_VERSION_STRING, settings.listen, brt_http_server_port(server),
		     settings.allow_push ? "pulls and pushes" : "pulls", settings.upstream,
		     settings.access_key_file[0] ? "an access key" : "a device certificate", http.threads);
	if (cache)
		brt_log_info("caching content fetched by digest in %s (bound: %llu bytes, 0: none)",
			     settings.cache_dir, (unsigned long long)settings.cache_max_bytes);
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
