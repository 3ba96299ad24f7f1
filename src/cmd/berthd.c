/* berthd: the registry server and its admin commands.
 *
 *   berthd --version | --help
 *   berthd [serve] [--listen ADDR:PORT] [--data-dir DIR] [--config FILE]
 *          [--tls-cert FILE --tls-key FILE [--client-ca FILE]] [--insecure-no-auth]
 *   berthd account create [--name NAME] | account list
 *   berthd key create --account ID [--pull-only] [--expires DURATION] [--label L]
 *   berthd key list --account ID | key revoke KEY_ID
 *   berthd fsck [--repair] [--grace DURATION]
 *   berthd gc [--dry-run] [--account ID] [--grace DURATION]
 *   berthd usage [--account ID] | account set-quota ID BYTES|none
 *   berthd policy set --account ID [--repo PATTERN] [rules] | policy list [--account ID]
 *   berthd policy delete --account ID --repo PATTERN
 *
 * Admin commands work on the configured metadata store, also while the
 * server runs; their stdout is meant for scripts. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "auth/keys.h"
#include "berth/version.h"
#include "cmd/cli.h"
#include "auth/token.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/random.h"
#include "common/log.h"
#include "config/config.h"
#include "api/api.h"
#include "http/server.h"
#include "maint/maint.h"
#include "meta/meta.h"
#include "storage/blobstore.h"
#include "storage/faulty/faulty.h"
#include "storage/s3/s3.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: berthd [serve] [options]\n"
		"       berthd --version | --help\n"
		"       berthd account create [--id ID] [--name NAME] | account list\n"
		"       berthd key create --account ID [--pull-only] [--expires DURATION] [--label LABEL]\n"
		"       berthd key list --account ID | key revoke KEY_ID\n"
		"       berthd fsck [--repair] [--grace DURATION]\n"
		"       berthd gc [--dry-run] [--account ID] [--grace DURATION]\n"
		"       berthd usage [--account ID] | account set-quota ID BYTES|none\n"
		"       berthd policy set --account ID [--repo PATTERN] [--keep-last N] [--keep-within "
		"DURATION]\n"
		"                         [--untagged-after DURATION] [--protect-tags GLOBS] "
		"[--immutable-tags GLOBS]\n"
		"       berthd policy list [--account ID] | policy delete --account ID --repo PATTERN\n"
		"options (every command):\n"
		"  --data-dir DIR       blobs and metadata (default ./berth-data)\n"
		"  --config FILE        YAML configuration (flags override it)\n"
		"serve options:\n"
		"  --listen ADDR:PORT   address to listen on (default 127.0.0.1:5000)\n"
		"  --tls-cert FILE      serve HTTPS with this certificate (PEM)...\n"
		"  --tls-key FILE       ...and key (PEM)\n"
		"  --client-ca FILE     accept device certificates signed by this CA (PEM)\n"
		"  --insecure-no-auth   no authentication at all: local experiments only\n"
		"fsck: re-hash every object, check every manifest, tag and upload session;\n"
		"  --repair quarantines corrupt objects and removes what is safe; objects and\n"
		"  upload data younger than --grace (default 1h) are never called orphans.\n"
		"  Exit 0: all is well (or was repaired), 1: problems remain, 2: could not run.\n"
		"gc: apply retention policies, remove what nothing references any more (tags ->\n"
		"  manifests -> blob links -> blobs -> stored objects) and objects no row names,\n"
		"  sparing what is younger than --grace (default: gc.grace, 24h); also while the\n"
		"  server runs.  One line per thing removed, then a summary.\n"
		"usage: bytes (distinct blobs once, plus manifests), counts and quota per account.\n"
		"set-quota BYTES takes K, M, G or T (binary) suffixes; 'none' lifts the quota.\n"
		"policy: per account and repository glob (after '<account>/'); tags are kept if\n"
		"  among the --keep-last N most recent or pushed within --keep-within, or matching\n"
		"  --protect-tags / --immutable-tags (comma-separated globs; immutable tags never\n"
		"  move and cannot be deleted); --untagged-after removes manifests left untagged.\n"
		"DURATION is a number with s, m, h or d, e.g. 90d.\n");
}

struct options {
	const char *words[4]; /* command words, e.g. "account" "set-quota" "<id>" "10G" */
	int word_count;
	const char *config, *listen, *data_dir, *tls_cert, *tls_key, *client_ca;
	const char *name, *account, *expires, *label, *id, *grace;
	const char *repo, *keep_last, *keep_within, *untagged_after, *protect_tags, *immutable_tags;
	int pull_only, no_auth, repair, dry_run;
};

static int parse_args(struct options *opt, int argc, char **argv)
{
	memset(opt, 0, sizeof(*opt));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = NULL;

		brt_cli_help_or_version(a, "berthd", usage);
		if (a[0] != '-') {
			if (opt->word_count == 4) {
				fprintf(stderr, "berthd: unexpected argument %s\n", a);
				return -1;
			}
			opt->words[opt->word_count++] = a;
			continue;
		}
		if (strcmp(a, "--pull-only") == 0) {
			opt->pull_only = 1;
			continue;
		}
		if (strcmp(a, "--insecure-no-auth") == 0) {
			opt->no_auth = 1;
			continue;
		}
		if (strcmp(a, "--repair") == 0) {
			opt->repair = 1;
			continue;
		}
		if (strcmp(a, "--dry-run") == 0) {
			opt->dry_run = 1;
			continue;
		}
		if (strcmp(a, "--config") == 0)
			slot = &opt->config;
		else if (strcmp(a, "--listen") == 0)
			slot = &opt->listen;
		else if (strcmp(a, "--data-dir") == 0)
			slot = &opt->data_dir;
		else if (strcmp(a, "--tls-cert") == 0)
			slot = &opt->tls_cert;
		else if (strcmp(a, "--tls-key") == 0)
			slot = &opt->tls_key;
		else if (strcmp(a, "--client-ca") == 0)
			slot = &opt->client_ca;
		else if (strcmp(a, "--name") == 0)
			slot = &opt->name;
		else if (strcmp(a, "--id") == 0)
			slot = &opt->id;
		else if (strcmp(a, "--account") == 0)
			slot = &opt->account;
		else if (strcmp(a, "--expires") == 0)
			slot = &opt->expires;
		else if (strcmp(a, "--label") == 0)
			slot = &opt->label;
		else if (strcmp(a, "--grace") == 0)
			slot = &opt->grace;
		else if (strcmp(a, "--repo") == 0)
			slot = &opt->repo;
		else if (strcmp(a, "--keep-last") == 0)
			slot = &opt->keep_last;
		else if (strcmp(a, "--keep-within") == 0)
			slot = &opt->keep_within;
		else if (strcmp(a, "--untagged-after") == 0)
			slot = &opt->untagged_after;
		else if (strcmp(a, "--protect-tags") == 0)
			slot = &opt->protect_tags;
		else if (strcmp(a, "--immutable-tags") == 0)
			slot = &opt->immutable_tags;
		if (!slot || i + 1 >= argc) {
			fprintf(stderr, "berthd: %s: %s\n", a, slot ? "needs a value" : "unknown option");
			return -1;
		}
		*slot = argv[++i];
	}
	return 0;
}

static int set_string(char *dst, size_t cap, const char *value, const char *what)
{
	if (!value)
		return 0;
	if (strlen(value) >= cap || !*value) {
		fprintf(stderr, "berthd: %s is empty or too long\n", what);
		return -1;
	}
	snprintf(dst, cap, "%s", value);
	return 0;
}

/* The data directory, for the drivers that keep files there (the
 * filesystem blob store, SQLite); nodes over S3 and PostgreSQL need none. */
static int ensure_data_dir(const brt_config *config)
{
	if (mkdir(config->data_dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "berthd: cannot create %s: %s\n", config->data_dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int open_meta(brt_meta **out, const brt_config *config)
{
	char path[BRT_CONFIG_PATH_MAX + 32];
	const char *location = path;

	if (strcmp(config->meta_driver, "postgres") == 0) {
		location = config->pg_dsn;
	} else {
		if (ensure_data_dir(config) < 0)
			return -1;
		if (config->meta_location[0])
			snprintf(path, sizeof(path), "%s", config->meta_location);
		else
			snprintf(path, sizeof(path), "%s/meta.db", config->data_dir);
	}
	if (brt_meta_open(out, config->meta_driver, location) < 0) {
		fprintf(stderr, "berthd: metadata store (%s): %s\n", config->meta_driver, brt_error_last());
		return -1;
	}
	return 0;
}

/* storage.s3 as the S3 driver's options. */
static void s3_options(brt_s3_options *o, const brt_config_s3 *c)
{
	brt_s3_options_defaults(o);
	snprintf(o->region, sizeof(o->region), "%s", c->region);
	if (c->endpoint[0])
		snprintf(o->endpoint, sizeof(o->endpoint), "%s", c->endpoint);
	else
		snprintf(o->endpoint, sizeof(o->endpoint), "%s://s3.%s.amazonaws.com",
			 c->secure ? "https" : "http", c->region);
	snprintf(o->bucket, sizeof(o->bucket), "%s", c->bucket);
	snprintf(o->prefix, sizeof(o->prefix), "%s", c->prefix);
	snprintf(o->access_key, sizeof(o->access_key), "%s", c->access_key);
	snprintf(o->secret_key, sizeof(o->secret_key), "%s", c->secret_key);
	snprintf(o->session_token, sizeof(o->session_token), "%s", c->session_token);
	snprintf(o->ca_file, sizeof(o->ca_file), "%s", c->ca_file);
	o->path_style = c->path_style;
	o->verify_tls = !c->skip_verify;
	o->part_size = c->chunk_size;
	o->buffer_memory = c->buffer_memory;
	o->retries = c->retries;
	o->timeout_ms = c->timeout * 1000;
	o->redirect = c->redirect;
	o->redirect_ttl = c->redirect_ttl;
}

static int open_blobs(brt_blobstore **out, const brt_config *config)
{
	int error;

	if (strcmp(config->blob_driver, "s3") == 0) {
		brt_s3_options o;
		s3_options(&o, &config->s3);
		error = brt_blobstore_s3_open(out, &o);
	} else {
		error = ensure_data_dir(config) < 0
				? BRT_EIO
				: brt_blobstore_open(out, config->blob_driver, config->data_dir);
	}
	if (error < 0 || brt_blobstore_faulty_from_env(out) < 0) {
		brt_log_error("blob store (%s): %s", config->blob_driver, brt_error_last());
		return -1;
	}
	return 0;
}

/* How often the janitor looks for expired sessions: a quarter of the
 * expiry, between a second and ten minutes. */
static int64_t janitor_interval_ms(const brt_config *config)
{
	int64_t ms = (int64_t)config->uploads_expire_after * 1000 / 4;

	return ms < 1000 ? 1000 : ms > 600000 ? 600000 : ms;
}

/* The HTTP layer's options from the configuration. */
static void http_options(brt_http_options *out, const brt_config *c)
{
	memset(out, 0, sizeof(*out));
	out->listen = c->listen;
	out->threads = c->threads;
	out->connection_memory = c->connection_memory;
	out->connection_timeout = c->connection_timeout;
	out->max_connections = c->connection_limit;
	out->per_address = c->per_address_limit;
	out->reserved = c->reserved_connections == BRT_CONFIG_AUTO ? BRT_HTTP_AUTO : c->reserved_connections;
	out->header_timeout = c->header_timeout;
	out->request_timeout = c->request_timeout;
	out->min_rate = c->min_rate;
	out->min_rate_window = c->min_rate_window;
	out->drain_timeout = c->drain_timeout;
	out->body_memory = c->body_memory;
	out->access_log = c->access_log;
	out->tls_cert = c->tls_cert;
	out->tls_key = c->tls_key;
	out->client_ca = c->client_ca;
}

/* What serve() does before the server listens, run in a thread of its own
 * (see start_up). */
struct start_up {
	const brt_config *config;
	const brt_maint_settings *maint;
	brt_api *api;
	brt_janitor **janitor;
	int error;
};

static int start_up_run(struct start_up *s)
{
	int error;

	if ((error = open_meta(&s->api->meta, s->config)) < 0)
		goto done;
	if ((error = open_blobs(&s->api->blobs, s->config)) < 0)
		goto done;
	/* Before the server listens: the start-up sweep needs nothing in flight. */
	if ((error = brt_janitor_start(s->janitor, s->api->meta, s->api->blobs, s->maint)) < 0) {
		brt_log_error("%s", brt_error_last());
		goto done;
	}
	if ((error = brt_meta_secret_get(s->api->meta, "token-signing", s->api->token_secret,
					 BRT_TOKEN_SECRET_LEN)) < 0)
		brt_log_error("token signing key: %s", brt_error_last());
done:
	return error;
}

static void *start_up_main(void *payload)
{
	struct start_up *s = payload;

	s->error = start_up_run(s);
	return NULL;
}

/* Open the stores, run the start-up sweep and read the token key in a
 * short-lived thread.  The metadata store keeps a connection per thread
 * (SQLite: about 0.5 MiB with every statement prepared) until the thread
 * ends; the main thread only waits for signals afterwards, so a
 * connection of its own would stay idle for the process's life.  Ending
 * the thread closes it, and malloc_trim (once the server runs) gives its
 * pages back: 0.6 MiB less idle RSS (BENCHMARKS.md). */
static int start_up(const brt_config *config, const brt_maint_settings *maint, brt_api *api,
		    brt_janitor **janitor)
{
	struct start_up s = {config, maint, api, janitor, -1};
	pthread_t thread;
	int rc;

	if ((rc = pthread_create(&thread, NULL, start_up_main, &s)) != 0) {
		brt_log_error("start-up thread: %s", strerror(rc));
		return -1;
	}
	pthread_join(thread, NULL);
	return s.error;
}

static int serve(const brt_config *config)
{
	brt_api api;
	brt_http_options options;
	brt_http_handler handler;
	brt_http_server *server = NULL;
	brt_janitor *janitor = NULL;
	brt_maint_settings maint = {
		.expire_after_ms = (int64_t)config->uploads_expire_after * 1000,
		.janitor_interval_ms = janitor_interval_ms(config),
		.gc_interval_ms = (int64_t)config->gc_interval * 1000,
		.gc_grace_ms = (int64_t)config->gc_grace * 1000,
		.gc_batch = config->gc_batch,
		.gc_rate = config->gc_rate,
	};
	sigset_t signals;
	int sig = 0, status = 1;

	memset(&api, 0, sizeof(api));
	api.config = config;
	if (start_up(config, &maint, &api, &janitor) < 0)
		goto done;
	api.auth.enabled = config->auth_enabled;
	api.auth.meta = api.meta;
	api.auth.token_secret = api.token_secret;
	api.auth.service = brt_config_service(config);
	api.auth.device_account_field = config->device_account_field;
	api.tls = config->tls_cert[0] != '\0';
	if (!config->auth_enabled)
		brt_log_warn(
			"AUTHENTICATION IS OFF (--insecure-no-auth): anyone can read, write and delete "
			"everything; use this for local experiments only");
	/* Signals are taken synchronously by this thread; the server threads
	 * inherit the blocked mask. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	http_options(&options, config);
	brt_api_handler(&handler, &api);
	if (brt_http_server_start(&server, &options, &handler) < 0) {
		brt_log_error("%s", brt_error_last());
		goto done;
	}
#ifdef __GLIBC__
	/* Free pages in the middle of the heaps (the start-up thread's
	 * connection, the configuration's parse) go back to the system; glibc
	 * only trims the top of a heap by itself. */
	malloc_trim(0);
#endif
	if (strcmp(config->blob_driver, "s3") == 0)
		brt_log_info("blobs: s3 bucket %s at %s (prefix \"%s\"), metadata: %s, region %s, service %s",
			     config->s3.bucket, config->s3.endpoint[0] ? config->s3.endpoint : "AWS",
			     config->s3.prefix, api.meta->name, config->region[0] ? config->region : "-",
			     api.auth.service);
	else
		brt_log_info("data in %s (blobs: %s, metadata: %s), region %s, service %s", config->data_dir,
			     api.blobs->name, api.meta->name, config->region[0] ? config->region : "-",
			     api.auth.service);
	sigwait(&signals, &sig);
	brt_log_info("signal %d: draining in-flight requests", sig);
	brt_http_server_stop(server);
	brt_log_info("stopped");
	status = 0;
done:
	brt_janitor_stop(janitor);
	if (api.blobs)
		brt_blobstore_free(api.blobs);
	brt_meta_free(api.meta);
	return status;
}

static void format_time(char *out, size_t cap, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int print_account(const brt_account *a, void *payload)
{
	char created[32];

	(void)payload;
	format_time(created, sizeof(created), a->created_at);
	printf("%s\t%s\t%s\n", a->id, created, a->name);
	return 0;
}

static int print_key(const brt_access_key *k, void *payload)
{
	char created[32], expires[32];
	const char *state = k->revoked_at                                      ? "revoked"
			    : (k->expires_at && k->expires_at <= brt_now_ms()) ? "expired"
									       : "active";

	(void)payload;
	format_time(created, sizeof(created), k->created_at);
	if (k->expires_at)
		format_time(expires, sizeof(expires), k->expires_at);
	else
		snprintf(expires, sizeof(expires), "never");
	printf("%s\t%s\t%s\t%s\t%s\t%s\n", k->id, brt_permissions_name(k->permissions), created, expires,
	       state, k->label);
	return 0;
}

/* "90d", "12h", "30m", "45s" into milliseconds; -1 if malformed. */
static int64_t parse_duration(const char *s)
{
	uint64_t seconds;

	if (brt_config_parse_duration(&seconds, s, 1) < 0 || seconds > INT64_MAX / 1000)
		return -1;
	return (int64_t)seconds * 1000;
}

/* "512", "10M", "2G" (binary units) into bytes; -1 if malformed. */
static int64_t parse_bytes(const char *s)
{
	char *end;
	unsigned long long n;
	int shift = 0;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	switch (*end) {
	case 'K':
	case 'k':
		shift = 10;
		break;
	case 'M':
	case 'm':
		shift = 20;
		break;
	case 'G':
	case 'g':
		shift = 30;
		break;
	case 'T':
	case 't':
		shift = 40;
		break;
	case '\0':
		break;
	default:
		return -1;
	}
	if (shift)
		end++;
	if (errno || *end != '\0' || n > (unsigned long long)(INT64_MAX >> shift))
		return -1;
	return (int64_t)(n << shift);
}

/* A plain positive decimal number; -1 if malformed or too large. */
static int64_t parse_count(const char *s)
{
	char *end;
	unsigned long long n;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	return errno || *end != '\0' || n > (unsigned long long)INT64_MAX ? -1 : (int64_t)n;
}

static int admin(const struct options *opt, const brt_config *config)
{
	const char *noun = opt->words[0], *verb = opt->word_count > 1 ? opt->words[1] : "";
	brt_meta *meta = NULL;
	int status = 1, error = 0;

	if (!((strcmp(noun, "account") == 0 && (strcmp(verb, "create") == 0 || strcmp(verb, "list") == 0 ||
						strcmp(verb, "set-quota") == 0)) ||
	      (strcmp(noun, "key") == 0 &&
	       (strcmp(verb, "create") == 0 || strcmp(verb, "list") == 0 || strcmp(verb, "revoke") == 0)))) {
		usage(stderr);
		return 2;
	}
	if (strcmp(verb, "set-quota") == 0 && opt->word_count != 4) {
		fprintf(stderr, "berthd: account set-quota needs an account id and BYTES or none\n");
		return 2;
	}
	if (strcmp(verb, "set-quota") != 0 && opt->word_count > 3) {
		usage(stderr);
		return 2;
	}
	if ((strcmp(noun, "key") == 0 && strcmp(verb, "revoke") != 0 && !opt->account) ||
	    (strcmp(verb, "revoke") == 0 && opt->word_count != 3)) {
		fprintf(stderr, "berthd: key %s needs %s\n", verb,
			strcmp(verb, "revoke") == 0 ? "a key id" : "--account ID");
		return 2;
	}
	if (open_meta(&meta, config) < 0)
		return 1;
	if (strcmp(noun, "account") == 0 && strcmp(verb, "create") == 0) {
		brt_account a;
		memset(&a, 0, sizeof(a));
		if (opt->id) {
			/* An account that already exists elsewhere keeps its id. */
			if (!brt_account_id_valid(opt->id)) {
				fprintf(stderr, "berthd: %s is not an account id (32 hex characters)\n",
					opt->id);
				goto done;
			}
			memcpy(a.id, opt->id, sizeof(a.id));
		} else if (brt_random_hex(a.id, 32) < 0) {
			goto done;
		}
		if (opt->name && strlen(opt->name) >= sizeof(a.name)) {
			fprintf(stderr, "berthd: --name is too long\n");
			goto done;
		}
		snprintf(a.name, sizeof(a.name), "%s", opt->name ? opt->name : "");
		a.created_at = brt_now_ms();
		if ((error = brt_meta_account_create(meta, &a)) < 0)
			goto fail;
		printf("%s\n", a.id);
	} else if (strcmp(noun, "account") == 0 && strcmp(verb, "set-quota") == 0) {
		int64_t quota = -1;

		if (strcmp(opt->words[3], "none") != 0 && (quota = parse_bytes(opt->words[3])) < 0) {
			fprintf(stderr, "berthd: %s is not a size (a number with K, M, G or T) or none\n",
				opt->words[3]);
			status = 2;
			goto done;
		}
		if ((error = brt_meta_quota_set(meta, opt->words[2], quota)) < 0)
			goto fail;
		if (quota < 0)
			printf("account %s quota none\n", opt->words[2]);
		else
			printf("account %s quota %lld\n", opt->words[2], (long long)quota);
	} else if (strcmp(noun, "account") == 0) {
		if ((error = brt_meta_account_list(meta, print_account, NULL)) < 0)
			goto fail;
	} else if (strcmp(verb, "create") == 0) {
		brt_access_key key;
		char access_key[BRT_ACCESS_KEY_LEN + 1];
		int64_t now = brt_now_ms(), expires = 0;
		if (!brt_account_id_valid(opt->account)) {
			fprintf(stderr, "berthd: %s is not an account id (32 hex characters)\n",
				opt->account);
			goto done;
		}
		if (opt->expires) {
			int64_t d = parse_duration(opt->expires);
			if (d <= 0) {
				fprintf(stderr,
					"berthd: --expires takes a duration like 90d, 12h, 30m or 45s\n");
				goto done;
			}
			expires = now + d;
		}
		if (opt->label && strlen(opt->label) >= sizeof(key.label)) {
			fprintf(stderr, "berthd: --label is too long\n");
			goto done;
		}
		if (brt_key_generate(&key, access_key, opt->account,
				     opt->pull_only ? BRT_PERM_PULL
						    : BRT_PERM_PULL | BRT_PERM_PUSH | BRT_PERM_DELETE,
				     opt->label, now, expires) < 0 ||
		    (error = brt_meta_key_create(meta, &key)) < 0)
			goto fail;
		printf("%s %s\n", key.id, access_key);
	} else if (strcmp(verb, "list") == 0) {
		if ((error = brt_meta_key_list(meta, opt->account, print_key, NULL)) < 0)
			goto fail;
	} else {
		if ((error = brt_meta_key_revoke(meta, opt->words[2], brt_now_ms())) < 0)
			goto fail;
	}
	status = 0;
	goto done;
fail:
	fprintf(stderr, "berthd: %s\n", brt_error_last()[0] ? brt_error_last() : brt_error_name(error));
done:
	if (meta)
		brt_meta_free(meta);
	return status;
}

static int fsck(const struct options *opt, const brt_config *config)
{
	brt_meta *meta = NULL;
	brt_blobstore *blobs = NULL;
	brt_fsck_options fo;
	brt_fsck_result result;
	int64_t grace = 3600 * 1000;
	int status = 2;

	if (opt->word_count != 1) {
		usage(stderr);
		return 2;
	}
	if (opt->grace && (grace = parse_duration(opt->grace)) < 0) {
		fprintf(stderr, "berthd: --grace takes a duration like 1h, 30m or 45s\n");
		return 2;
	}
	if (open_meta(&meta, config) < 0)
		return 2;
	if (open_blobs(&blobs, config) < 0)
		goto done;
	memset(&fo, 0, sizeof(fo));
	fo.repair = opt->repair;
	fo.now = brt_now_ms();
	fo.expire_after_ms = (int64_t)config->uploads_expire_after * 1000;
	fo.grace_ms = grace;
	if (brt_fsck_run(&result, meta, blobs, &fo, stdout) < 0) {
		fprintf(stderr, "berthd: fsck: %s\n", brt_error_last());
		goto done;
	}
	/* Findings that a repair did not deal with. */
	status = brt_fsck_findings(&result) > brt_fsck_repairs(&result) ? 1 : 0;
done:
	fflush(stdout);
	if (blobs)
		brt_blobstore_free(blobs);
	brt_meta_free(meta);
	return status;
}

static int gc_command(const struct options *opt, const brt_config *config)
{
	brt_meta *meta = NULL;
	brt_blobstore *blobs = NULL;
	brt_gc_options go;
	brt_gc_result result;
	int64_t grace = (int64_t)config->gc_grace * 1000;
	int status = 1;

	if (opt->word_count != 1) {
		usage(stderr);
		return 2;
	}
	if (opt->grace && (grace = parse_duration(opt->grace)) < 0) {
		fprintf(stderr, "berthd: --grace takes a duration like 24h, 30m or 0s\n");
		return 2;
	}
	if (opt->account && !brt_account_id_valid(opt->account)) {
		fprintf(stderr, "berthd: %s is not an account id (32 hex characters)\n", opt->account);
		return 2;
	}
	if (open_meta(&meta, config) < 0)
		return 1;
	if (open_blobs(&blobs, config) < 0)
		goto done;
	memset(&go, 0, sizeof(go));
	memset(&result, 0, sizeof(result));
	go.now = brt_now_ms();
	go.grace_ms = grace;
	go.account_id = opt->account;
	go.dry_run = opt->dry_run;
	go.retention = 1;
	/* Objects no row names belong to no account: only a full run looks. */
	go.orphans = !opt->account;
	go.report = stdout;
	/* A line per thing removed as it goes: a run killed half way has
	 * said what it did. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (brt_gc_run(&result, meta, blobs, &go) < 0) {
		fprintf(stderr, "berthd: gc: %s\n", brt_error_last());
		goto done;
	}
	brt_gc_summary(stdout, &result, opt->dry_run);
	status = 0;
done:
	fflush(stdout);
	if (blobs)
		brt_blobstore_free(blobs);
	brt_meta_free(meta);
	return status;
}

static int print_usage_row(const brt_usage *u, void *payload)
{
	char quota[32];

	(void)payload;
	if (u->has_quota)
		snprintf(quota, sizeof(quota), "%llu", (unsigned long long)u->quota_bytes);
	else
		snprintf(quota, sizeof(quota), "none");
	printf("account=%s bytes=%llu blobs=%llu blob_bytes=%llu manifests=%llu manifest_bytes=%llu "
	       "repositories=%llu quota=%s\n",
	       u->account_id, (unsigned long long)u->bytes, (unsigned long long)u->blobs,
	       (unsigned long long)u->blob_bytes, (unsigned long long)u->manifests,
	       (unsigned long long)u->manifest_bytes, (unsigned long long)u->repositories, quota);
	return 0;
}

static int usage_command(const struct options *opt, const brt_config *config)
{
	brt_meta *meta = NULL;
	brt_usage u;
	int error, status = 1;

	if (opt->word_count != 1) {
		usage(stderr);
		return 2;
	}
	if (open_meta(&meta, config) < 0)
		return 1;
	if (opt->account)
		error = brt_meta_usage_get(meta, &u, opt->account) < 0 ? -1 : print_usage_row(&u, NULL);
	else
		error = brt_meta_usage_list(meta, print_usage_row, NULL);
	if (error < 0)
		fprintf(stderr, "berthd: usage: %s\n", brt_error_last());
	else
		status = 0;
	brt_meta_free(meta);
	return status;
}

/* A duration flag into ms (0 when absent); -1 if malformed. */
static int64_t duration_flag(const char *value, const char *flag)
{
	int64_t ms;

	if (!value)
		return 0;
	if ((ms = parse_duration(value)) <= 0) {
		fprintf(stderr, "berthd: %s takes a duration like 30d, 12h or 45m\n", flag);
		return -1;
	}
	return ms;
}

static void print_duration(char *out, size_t cap, int64_t ms)
{
	if (ms > 0)
		snprintf(out, cap, "%llds", (long long)(ms / 1000));
	else
		snprintf(out, cap, "-");
}

static int print_policy(const brt_policy *p, void *payload)
{
	char keep_last[32], within[32], untagged[32];

	(void)payload;
	if (p->keep_last)
		snprintf(keep_last, sizeof(keep_last), "%llu", (unsigned long long)p->keep_last);
	else
		snprintf(keep_last, sizeof(keep_last), "-");
	print_duration(within, sizeof(within), p->keep_within_ms);
	print_duration(untagged, sizeof(untagged), p->untagged_after_ms);
	printf("account=%s repo=%s keep_last=%s keep_within=%s untagged_after=%s protect=%s immutable=%s\n",
	       p->account_id, p->repository_pattern, keep_last, within, untagged,
	       p->protect_tags[0] ? p->protect_tags : "-", p->immutable_tags[0] ? p->immutable_tags : "-");
	return 0;
}

static int policy_command(const struct options *opt, const brt_config *config)
{
	const char *verb = opt->word_count > 1 ? opt->words[1] : "";
	brt_meta *meta = NULL;
	brt_policy p;
	int error = 0, status = 1;

	if (opt->word_count != 2 ||
	    (strcmp(verb, "set") != 0 && strcmp(verb, "list") != 0 && strcmp(verb, "delete") != 0)) {
		usage(stderr);
		return 2;
	}
	memset(&p, 0, sizeof(p));
	if (strcmp(verb, "list") != 0) {
		const char *repo = opt->repo ? opt->repo : "*";
		int64_t keep_last = 0;

		if (!opt->account || !brt_account_id_valid(opt->account) ||
		    (strcmp(verb, "delete") == 0 && !opt->repo)) {
			fprintf(stderr, "berthd: policy %s needs --account ID%s\n", verb,
				strcmp(verb, "delete") == 0 ? " and --repo PATTERN" : "");
			return 2;
		}
		if (opt->keep_last && (keep_last = parse_count(opt->keep_last)) <= 0) {
			fprintf(stderr, "berthd: --keep-last takes a positive number\n");
			return 2;
		}
		if ((p.keep_within_ms = duration_flag(opt->keep_within, "--keep-within")) < 0 ||
		    (p.untagged_after_ms = duration_flag(opt->untagged_after, "--untagged-after")) < 0)
			return 2;
		if (strlen(repo) >= sizeof(p.repository_pattern) ||
		    (opt->protect_tags && strlen(opt->protect_tags) >= sizeof(p.protect_tags)) ||
		    (opt->immutable_tags && strlen(opt->immutable_tags) >= sizeof(p.immutable_tags))) {
			fprintf(stderr, "berthd: a pattern is too long\n");
			return 2;
		}
		memcpy(p.account_id, opt->account, sizeof(p.account_id));
		snprintf(p.repository_pattern, sizeof(p.repository_pattern), "%s", repo);
		snprintf(p.protect_tags, sizeof(p.protect_tags), "%s",
			 opt->protect_tags ? opt->protect_tags : "");
		snprintf(p.immutable_tags, sizeof(p.immutable_tags), "%s",
			 opt->immutable_tags ? opt->immutable_tags : "");
		p.keep_last = (uint64_t)keep_last;
		p.updated_at = brt_now_ms();
	}
	if (open_meta(&meta, config) < 0)
		return 1;
	if (strcmp(verb, "set") == 0) {
		if ((error = brt_meta_policy_set(meta, &p)) == 0)
			error = print_policy(&p, NULL);
	} else if (strcmp(verb, "delete") == 0) {
		error = brt_meta_policy_delete(meta, p.account_id, p.repository_pattern);
	} else {
		error = brt_meta_policy_list(meta, opt->account, print_policy, NULL);
	}
	if (error < 0)
		fprintf(stderr, "berthd: policy %s: %s\n", verb, brt_error_last());
	else
		status = 0;
	brt_meta_free(meta);
	return status;
}

int main(int argc, char **argv)
{
	struct options opt;
	brt_config config;

	if (parse_args(&opt, argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	brt_config_defaults(&config);
	if (opt.config && brt_config_load(&config, opt.config) < 0) {
		fprintf(stderr, "berthd: %s\n", brt_error_last());
		return 2;
	}
	if (set_string(config.listen, sizeof(config.listen), opt.listen, "--listen") < 0 ||
	    set_string(config.data_dir, sizeof(config.data_dir), opt.data_dir, "--data-dir") < 0 ||
	    set_string(config.tls_cert, sizeof(config.tls_cert), opt.tls_cert, "--tls-cert") < 0 ||
	    set_string(config.tls_key, sizeof(config.tls_key), opt.tls_key, "--tls-key") < 0 ||
	    set_string(config.client_ca, sizeof(config.client_ca), opt.client_ca, "--client-ca") < 0)
		return 2;
	if (opt.no_auth)
		config.auth_enabled = 0;
	brt_log_set_level(config.log_level);
	if (opt.word_count == 0 || (opt.word_count == 1 && strcmp(opt.words[0], "serve") == 0))
		return serve(&config);
	if (strcmp(opt.words[0], "fsck") == 0)
		return fsck(&opt, &config);
	if (strcmp(opt.words[0], "gc") == 0)
		return gc_command(&opt, &config);
	if (strcmp(opt.words[0], "usage") == 0)
		return usage_command(&opt, &config);
	if (strcmp(opt.words[0], "policy") == 0)
		return policy_command(&opt, &config);
	return admin(&opt, &config);
}
