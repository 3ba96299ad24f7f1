/* The configuration loader (config/config.h) on real files in a temporary
 * directory: the built-in defaults, every key family, sizes and durations,
 * malformed values and shapes refused as BRT_EINVALID with a detail that
 * names the key, unknown keys ignored with a warning, a failed load that
 * changes nothing, and the file errors. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "common/error.h"
#include "common/log.h"
#include "config/config.h"

static char tmp_dir[512];
static char config_path[600];
static char stderr_path[600];
static char warnings[8192]; /* what the last load wrote to stderr */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(fwrite(text, 1, strlen(text), f) == strlen(text));
	CHECK(fclose(f) == 0);
}

/* brt_config_load over `config` as it is, stderr captured in `warnings`. */
static int load_over(brt_config *config, const char *yaml)
{
	int saved, fd, error;
	ssize_t n;

	write_file(config_path, yaml);
	brt_error_clear();
	fflush(stderr);
	saved = dup(2);
	fd = open(stderr_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	error = brt_config_load(config, config_path);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, warnings, sizeof(warnings) - 1, 0);
	warnings[n > 0 ? n : 0] = '\0';
	close(fd);
	return error;
}

/* The defaults, then `yaml` over them. */
static int load(brt_config *config, const char *yaml)
{
	brt_config_defaults(config);
	return load_over(config, yaml);
}

/* `yaml` must be refused as BRT_EINVALID, with `key` in the detail. */
static void refused(const char *yaml, const char *key)
{
	brt_config config;
	int before = check_failures;
	int error = load(&config, yaml);

	CHECK_EQ_INT(error, BRT_EINVALID);
	CHECK(strstr(brt_error_last(), key) != NULL);
	if (check_failures != before)
		fprintf(stderr, "  for:\n%s  detail: \"%s\"\n", yaml, brt_error_last());
}

/* `yaml` must load; returns the configuration. */
static brt_config accepted(const char *yaml)
{
	brt_config config;
	int before = check_failures;

	CHECK_EQ_INT(load(&config, yaml), 0);
	if (check_failures != before)
		fprintf(stderr, "  for:\n%s  detail: \"%s\"\n", yaml, brt_error_last());
	return config;
}

static void test_defaults(void)
{
	brt_config c;

	brt_config_defaults(&c);
	CHECK_EQ_STR(c.listen, "127.0.0.1:5000");
	CHECK_EQ_STR(c.data_dir, "./berth-data");
	CHECK_EQ_INT(c.threads, 4);
	CHECK_EQ_INT(c.connection_memory, 64 * 1024);
	CHECK_EQ_INT(c.connection_limit, 0);
	CHECK_EQ_INT(c.connection_timeout, 120);
	CHECK_EQ_INT(c.per_address_limit, 64);
	CHECK_EQ_INT(c.reserved_connections, BRT_CONFIG_AUTO);
	CHECK_EQ_INT(c.header_timeout, 10);
	CHECK_EQ_INT(c.request_timeout, 60);
	CHECK_EQ_INT(c.min_rate, 1024);
	CHECK_EQ_INT(c.min_rate_window, 30);
	CHECK_EQ_INT(c.body_memory, 64 * 1024 * 1024);
	CHECK_EQ_INT(c.drain_timeout, 30);
	CHECK_EQ_INT(c.manifest_max, 4 * 1024 * 1024);
	CHECK(c.blob_max == (uint64_t)64 << 30);
	CHECK_EQ_INT(c.page_max, 1000);
	CHECK_EQ_INT(c.referrers_max, 10000);
	CHECK_EQ_INT(c.json_depth_max, 64);
	CHECK_EQ_INT(c.uploads_expire_after, 24 * 3600);
	CHECK_EQ_INT(c.uploads_max_per_account, 1000);
	CHECK_EQ_INT(c.log_level, BRT_LOG_INFO);
	CHECK_EQ_INT(c.access_log, 1);
	CHECK_EQ_INT(c.auth_enabled, 1);
	CHECK_EQ_INT(c.token_ttl, 300);
	CHECK_EQ_STR(c.device_account_field, "OU");
	CHECK_EQ_STR(c.service, "");
	CHECK_EQ_STR(c.region, "");
	CHECK_EQ_STR(c.public_host, "");
	CHECK_EQ_STR(c.tls_cert, "");
	CHECK_EQ_STR(c.tls_key, "");
	CHECK_EQ_STR(c.client_ca, "");

	/* the token service: auth.service, else public_host, else "berth" */
	CHECK_EQ_STR(brt_config_service(&c), "berth");
	snprintf(c.public_host, sizeof(c.public_host), "registry.example.com");
	CHECK_EQ_STR(brt_config_service(&c), "registry.example.com");
	snprintf(c.service, sizeof(c.service), "svc");
	CHECK_EQ_STR(brt_config_service(&c), "svc");
}

/* An empty file, or one of comments, changes nothing; a file loads over
 * the current values, not over the defaults. */
static void test_empty_and_over(void)
{
	brt_config defaults, c;

	brt_config_defaults(&defaults);
	CHECK_EQ_INT(load(&c, ""), 0);
	CHECK(memcmp(&c, &defaults, sizeof(c)) == 0);
	CHECK_EQ_INT(load(&c, "# nothing here\n\n"), 0);
	CHECK(memcmp(&c, &defaults, sizeof(c)) == 0);
	CHECK_EQ_INT(load(&c, "{}\n"), 0);
	CHECK(memcmp(&c, &defaults, sizeof(c)) == 0);

	brt_config_defaults(&c);
	c.threads = 7;
	snprintf(c.region, sizeof(c.region), "set-by-caller");
	CHECK_EQ_INT(load_over(&c, "http:\n  idle_timeout: 5\n"), 0);
	CHECK_EQ_INT(c.threads, 7);
	CHECK_EQ_STR(c.region, "set-by-caller");
	CHECK_EQ_INT(c.connection_timeout, 5);
}

/* The README's example: every key it shows lands in its field. */
static void test_readme_example(void)
{
	brt_config c = accepted(
		"log:\n"
		"  level: warn\n"
		"  accesslog:\n"
		"    disabled: true\n"
		"storage:\n"
		"  filesystem:\n"
		"    rootdirectory: /var/lib/berth\n"
		"http:\n"
		"  addr: \"[::1]:5001\"\n"
		"  threads: 8\n"
		"  connection_memory_limit: 256k\n"
		"  max_connections: 2048\n"
		"  max_connections_per_address: 32\n"
		"  reserved_connections: 100\n"
		"  header_timeout: 11\n"
		"  request_timeout: 61\n"
		"  min_rate: 2k\n"
		"  min_rate_window: 31\n"
		"  body_memory_limit: 128m\n"
		"  idle_timeout: 121\n"
		"  drain_timeout: 31\n"
		"  tls:\n"
		"    certificate: /etc/berth/server.crt\n"
		"    key: /etc/berth/server.key\n"
		"    clientca: /etc/berth/devices-ca.crt\n"
		"region: eu-west-1\n"
		"public_host: containers.eu-west-1.example.com\n"
		"auth:\n"
		"  mode: none\n"
		"  service: registry-svc\n"
		"  token_ttl: 600\n"
		"  device:\n"
		"    account_field: CN\n"
		"limits:\n"
		"  manifest_bytes: 8m\n"
		"  blob_bytes: 1g\n"
		"  page_max: 500\n"
		"  referrers_max: 2000\n"
		"  json_depth: 32\n"
		"uploads:\n"
		"  max_per_account: 10\n"
		"  expire_after: 12h\n");

	CHECK_EQ_INT(c.log_level, BRT_LOG_WARN);
	CHECK_EQ_INT(c.access_log, 0);
	CHECK_EQ_STR(c.data_dir, "/var/lib/berth");
	CHECK_EQ_STR(c.listen, "[::1]:5001");
	CHECK_EQ_INT(c.threads, 8);
	CHECK_EQ_INT(c.connection_memory, 256 * 1024);
	CHECK_EQ_INT(c.connection_limit, 2048);
	CHECK_EQ_INT(c.per_address_limit, 32);
	CHECK_EQ_INT(c.reserved_connections, 100);
	CHECK_EQ_INT(c.header_timeout, 11);
	CHECK_EQ_INT(c.request_timeout, 61);
	CHECK_EQ_INT(c.min_rate, 2048);
	CHECK_EQ_INT(c.min_rate_window, 31);
	CHECK_EQ_INT(c.body_memory, 128 * 1024 * 1024);
	CHECK_EQ_INT(c.connection_timeout, 121);
	CHECK_EQ_INT(c.drain_timeout, 31);
	CHECK_EQ_STR(c.tls_cert, "/etc/berth/server.crt");
	CHECK_EQ_STR(c.tls_key, "/etc/berth/server.key");
	CHECK_EQ_STR(c.client_ca, "/etc/berth/devices-ca.crt");
	CHECK_EQ_STR(c.region, "eu-west-1");
	CHECK_EQ_STR(c.public_host, "containers.eu-west-1.example.com");
	CHECK_EQ_INT(c.auth_enabled, 0);
	CHECK_EQ_STR(c.service, "registry-svc");
	CHECK_EQ_STR(brt_config_service(&c), "registry-svc");
	CHECK_EQ_INT(c.token_ttl, 600);
	CHECK_EQ_STR(c.device_account_field, "CN");
	CHECK_EQ_INT(c.manifest_max, 8 * 1024 * 1024);
	CHECK(c.blob_max == (uint64_t)1 << 30);
	CHECK_EQ_INT(c.page_max, 500);
	CHECK_EQ_INT(c.referrers_max, 2000);
	CHECK_EQ_INT(c.json_depth_max, 32);
	CHECK_EQ_INT(c.uploads_max_per_account, 10);
	CHECK_EQ_INT(c.uploads_expire_after, 12 * 3600);
	/* every key above is known: no warning */
	CHECK_EQ_STR(warnings, "");
}

/* Sizes: a number with an optional binary suffix k, m or g (either case,
 * optionally followed by i or b: 1ki, 1KB, 1kb). */
static void test_sizes(void)
{
	brt_config c;

	c = accepted("limits: {blob_bytes: 12345}\n");
	CHECK(c.blob_max == 12345);
	c = accepted("limits: {blob_bytes: 3k}\n");
	CHECK(c.blob_max == 3 * 1024);
	c = accepted("limits: {blob_bytes: 3K}\n");
	CHECK(c.blob_max == 3 * 1024);
	c = accepted("limits: {blob_bytes: 5m}\n");
	CHECK(c.blob_max == 5 * 1024 * 1024);
	c = accepted("limits: {blob_bytes: 5M}\n");
	CHECK(c.blob_max == 5 * 1024 * 1024);
	c = accepted("limits: {blob_bytes: 7g}\n");
	CHECK(c.blob_max == (uint64_t)7 << 30);
	c = accepted("limits: {blob_bytes: 2gi}\n");
	CHECK(c.blob_max == (uint64_t)2 << 30);
	c = accepted("limits: {blob_bytes: 2GB}\n");
	CHECK(c.blob_max == (uint64_t)2 << 30);
	c = accepted("limits: {blob_bytes: 1kb}\n");
	CHECK(c.blob_max == 1024);
	c = accepted("http: {min_rate: 0}\n"); /* 0: off */
	CHECK_EQ_INT(c.min_rate, 0);
	c = accepted("http: {connection_memory_limit: 16k}\n"); /* the lowest allowed */
	CHECK_EQ_INT(c.connection_memory, 16384);
	c = accepted("http: {connection_memory_limit: 64m}\n"); /* the highest */
	CHECK_EQ_INT(c.connection_memory, 64 << 20);

	refused("limits: {blob_bytes: 1t}\n", "limits.blob_bytes");
	refused("limits: {blob_bytes: 1kib}\n", "limits.blob_bytes");
	refused("limits: {blob_bytes: 1 k}\n", "limits.blob_bytes");
	refused("limits: {blob_bytes: 1.5g}\n", "limits.blob_bytes");
	refused("limits: {blob_bytes: 0x10}\n", "limits.blob_bytes");
	refused("limits: {blob_bytes: -1}\n", "limits.blob_bytes");
	refused("limits: {blob_bytes: +1}\n", "limits.blob_bytes");
	refused("limits: {blob_bytes: k}\n", "limits.blob_bytes");
	refused("limits: {blob_bytes: ''}\n", "limits.blob_bytes");
	refused("limits: {blob_bytes: 0}\n", "limits.blob_bytes");
	/* past 64 bits, and a suffix that overflows */
	refused("limits: {blob_bytes: 99999999999999999999}\n", "limits.blob_bytes");
	refused("limits: {blob_bytes: 18014398509481984g}\n", "limits.blob_bytes");
	/* above the key's range */
	refused("limits: {blob_bytes: 9223372036854775808}\n", "limits.blob_bytes");
	refused("http: {connection_memory_limit: 16383}\n", "http.connection_memory_limit");
	refused("http: {connection_memory_limit: 65m}\n", "http.connection_memory_limit");
	refused("limits: {manifest_bytes: 1023}\n", "limits.manifest_bytes");
	refused("limits: {manifest_bytes: 257m}\n", "limits.manifest_bytes");
	refused("http: {body_memory_limit: 63k}\n", "http.body_memory_limit");
	refused("http: {min_rate: 2g}\n", "http.min_rate");
	/* the range is in the detail */
	refused("http: {threads: 0}\n", "between 1 and 256");
}

/* Durations: a number of seconds, or with a unit s, m, h or d. */
static void test_durations(void)
{
	brt_config c;

	c = accepted("uploads: {expire_after: 45}\n");
	CHECK_EQ_INT(c.uploads_expire_after, 45);
	c = accepted("uploads: {expire_after: 90s}\n");
	CHECK_EQ_INT(c.uploads_expire_after, 90);
	c = accepted("uploads: {expire_after: 30m}\n");
	CHECK_EQ_INT(c.uploads_expire_after, 1800);
	c = accepted("uploads: {expire_after: 24h}\n");
	CHECK_EQ_INT(c.uploads_expire_after, 86400);
	c = accepted("uploads: {expire_after: 7d}\n");
	CHECK_EQ_INT(c.uploads_expire_after, 7 * 86400);
	c = accepted("uploads: {expire_after: 365d}\n"); /* the longest */
	CHECK_EQ_INT(c.uploads_expire_after, 365 * 86400);
	c = accepted("http: {header_timeout: 2m, request_timeout: 1h, min_rate_window: 90s}\n");
	CHECK_EQ_INT(c.header_timeout, 120);
	CHECK_EQ_INT(c.request_timeout, 3600);
	CHECK_EQ_INT(c.min_rate_window, 90);

	refused("uploads: {expire_after: 1w}\n", "uploads.expire_after");
	refused("uploads: {expire_after: 1H}\n", "uploads.expire_after");
	refused("uploads: {expire_after: 10 m}\n", "uploads.expire_after");
	refused("uploads: {expire_after: 1.5h}\n", "uploads.expire_after");
	refused("uploads: {expire_after: h}\n", "uploads.expire_after");
	refused("uploads: {expire_after: -5}\n", "uploads.expire_after");
	refused("uploads: {expire_after: ''}\n", "uploads.expire_after");
	refused("uploads: {expire_after: 0}\n", "uploads.expire_after");
	refused("uploads: {expire_after: 0s}\n", "uploads.expire_after");
	refused("uploads: {expire_after: 366d}\n", "uploads.expire_after");

	/* The collector: 0 turns the worker off and spares nothing. */
	c = accepted("gc: {interval: 0s, grace: 0s, batch: 10, rate: 100}\n");
	CHECK_EQ_INT(c.gc_interval, 0);
	CHECK_EQ_INT(c.gc_grace, 0);
	CHECK_EQ_INT((int)c.gc_batch, 10);
	CHECK_EQ_INT((int)c.gc_rate, 100);
	c = accepted("gc: {interval: 1m, grace: 2d}\n");
	CHECK_EQ_INT(c.gc_interval, 60);
	CHECK_EQ_INT(c.gc_grace, 2 * 86400);
	c = accepted("log: {level: info}\n");
	CHECK_EQ_INT(c.gc_interval, 600); /* defaults: every 10 minutes... */
	CHECK_EQ_INT(c.gc_grace, 86400);  /* ...sparing a day */
	refused("gc: {grace: 1w}\n", "gc.grace");
	refused("gc: {interval: 31d}\n", "gc.interval");
	refused("gc: {batch: 0}\n", "gc.batch");
	refused("uploads: {expire_after: 99999999999999999999}\n", "uploads.expire_after");
	/* days whose seconds do not fit 32 bits */
	refused("uploads: {expire_after: 49711d}\n", "uploads.expire_after");
	refused("http: {header_timeout: 0}\n", "http.header_timeout");
	refused("http: {header_timeout: 61m}\n", "http.header_timeout");
	refused("http: {request_timeout: 2d}\n", "http.request_timeout");
	refused("http: {min_rate_window: 2h}\n", "http.min_rate_window");
}

/* The plain-number times and counts, each at the ends of its range. */
/* The duration grammar shared by the file and the command line (which
 * insists on a unit). */
static void test_parse_duration(void)
{
	uint64_t v = 0;

	CHECK_EQ_INT(brt_config_parse_duration(&v, "90d", 1), 0);
	CHECK_EQ_INT(v, 90 * 86400);
	CHECK_EQ_INT(brt_config_parse_duration(&v, "12h", 0), 0);
	CHECK_EQ_INT(v, 12 * 3600);
	CHECK_EQ_INT(brt_config_parse_duration(&v, "30m", 1), 0);
	CHECK_EQ_INT(v, 1800);
	CHECK_EQ_INT(brt_config_parse_duration(&v, "45s", 1), 0);
	CHECK_EQ_INT(v, 45);
	CHECK_EQ_INT(brt_config_parse_duration(&v, "45", 0), 0);
	CHECK_EQ_INT(v, 45);
	CHECK_EQ_INT(brt_config_parse_duration(&v, "45", 1), BRT_EINVALID);
	CHECK_EQ_INT(brt_config_parse_duration(&v, "", 0), BRT_EINVALID);
	CHECK_EQ_INT(brt_config_parse_duration(&v, "-1s", 0), BRT_EINVALID);
	CHECK_EQ_INT(brt_config_parse_duration(&v, "1w", 0), BRT_EINVALID);
	CHECK_EQ_INT(brt_config_parse_duration(&v, "1hh", 0), BRT_EINVALID);
	CHECK_EQ_INT(brt_config_parse_duration(&v, "99999999999999999999s", 0), BRT_EINVALID);
	CHECK_EQ_INT(brt_config_parse_duration(&v, "18446744073709551615d", 0), BRT_EINVALID);
}

static void test_counts_and_seconds(void)
{
	brt_config c;

	c = accepted(
		"http: {threads: 1, max_connections: 0, max_connections_per_address: 0, "
		"reserved_connections: 0, idle_timeout: 1, drain_timeout: 0}\n");
	CHECK_EQ_INT(c.threads, 1);
	CHECK_EQ_INT(c.connection_limit, 0);
	CHECK_EQ_INT(c.per_address_limit, 0);
	CHECK_EQ_INT(c.reserved_connections, 0);
	CHECK_EQ_INT(c.connection_timeout, 1);
	CHECK_EQ_INT(c.drain_timeout, 0);
	c = accepted(
		"http: {threads: 256, max_connections: 1000000, idle_timeout: 86400, drain_timeout: 3600}\n"
		"limits: {page_max: 100000, referrers_max: 1000000, json_depth: 1000}\n"
		"uploads: {max_per_account: 1000000}\n"
		"auth: {token_ttl: 86400}\n");
	CHECK_EQ_INT(c.threads, 256);
	CHECK_EQ_INT(c.connection_limit, 1000000);
	CHECK_EQ_INT(c.connection_timeout, 86400);
	CHECK_EQ_INT(c.drain_timeout, 3600);
	CHECK_EQ_INT(c.page_max, 100000);
	CHECK_EQ_INT(c.referrers_max, 1000000);
	CHECK_EQ_INT(c.json_depth_max, 1000);
	CHECK_EQ_INT(c.uploads_max_per_account, 1000000);
	CHECK_EQ_INT(c.token_ttl, 86400);
	c = accepted("auth: {token_ttl: 10}\nlimits: {json_depth: 4, page_max: 1, referrers_max: 1}\n");
	CHECK_EQ_INT(c.token_ttl, 10);
	CHECK_EQ_INT(c.json_depth_max, 4);

	refused("http: {threads: 257}\n", "http.threads");
	refused("http: {threads: four}\n", "http.threads");
	refused("http: {threads: 4.0}\n", "http.threads");
	refused("http: {threads: ''}\n", "http.threads");
	refused("http: {max_connections: 1000001}\n", "http.max_connections");
	refused("http: {max_connections_per_address: 1000001}\n", "http.max_connections_per_address");
	refused("http: {reserved_connections: 1000001}\n", "http.reserved_connections");
	refused("http: {idle_timeout: 0}\n", "http.idle_timeout");
	refused("http: {drain_timeout: 3601}\n", "http.drain_timeout");
	/* these take seconds only: a unit is refused, not read as a size */
	refused("http: {drain_timeout: 30s}\n", "http.drain_timeout");
	refused("http: {idle_timeout: 2m}\n", "http.idle_timeout");
	refused("auth: {token_ttl: 9}\n", "auth.token_ttl");
	refused("auth: {token_ttl: 86401}\n", "auth.token_ttl");
	refused("auth: {token_ttl: 5m}\n", "auth.token_ttl");
	refused("limits: {page_max: 0}\n", "limits.page_max");
	refused("limits: {page_max: 100001}\n", "limits.page_max");
	refused("limits: {referrers_max: 0}\n", "limits.referrers_max");
	refused("limits: {json_depth: 3}\n", "limits.json_depth");
	refused("limits: {json_depth: 1001}\n", "limits.json_depth");
	refused("uploads: {max_per_account: 0}\n", "uploads.max_per_account");
}

/* Bodies of the largest accepted manifest must fit the body budget. */
static void test_body_budget_versus_manifest(void)
{
	brt_config c;

	c = accepted("http: {body_memory_limit: 8m}\nlimits: {manifest_bytes: 8m}\n");
	CHECK_EQ_INT(c.body_memory, 8 << 20);
	refused("http: {body_memory_limit: 1m}\n", "http.body_memory_limit");
	refused("http: {body_memory_limit: 8m}\nlimits: {manifest_bytes: 9m}\n", "limits.manifest_bytes");
}

static void test_strings_and_choices(void)
{
	brt_config c;
	char yaml[2048];

	c = accepted("log: {level: debug}\n");
	CHECK_EQ_INT(c.log_level, BRT_LOG_DEBUG);
	c = accepted("log: {level: info}\n");
	CHECK_EQ_INT(c.log_level, BRT_LOG_INFO);
	c = accepted("log: {level: warning}\n");
	CHECK_EQ_INT(c.log_level, BRT_LOG_WARN);
	c = accepted("log: {level: error}\n");
	CHECK_EQ_INT(c.log_level, BRT_LOG_ERROR);
	refused("log: {level: loud}\n", "log.level");
	refused("log: {level: INFO}\n", "log.level");

	c = accepted("log: {accesslog: {disabled: yes}}\n");
	CHECK_EQ_INT(c.access_log, 0);
	c = accepted("log: {accesslog: {disabled: on}}\n");
	CHECK_EQ_INT(c.access_log, 0);
	c = accepted("log: {accesslog: {disabled: false}}\n");
	CHECK_EQ_INT(c.access_log, 1);
	c = accepted("log: {accesslog: {disabled: no}}\n");
	CHECK_EQ_INT(c.access_log, 1);
	c = accepted("log: {accesslog: {disabled: off}}\n");
	CHECK_EQ_INT(c.access_log, 1);
	refused("log: {accesslog: {disabled: maybe}}\n", "log.accesslog.disabled");
	refused("log: {accesslog: {disabled: 1}}\n", "log.accesslog.disabled");

	c = accepted("auth: {mode: token}\n");
	CHECK_EQ_INT(c.auth_enabled, 1);
	c = accepted("auth: {mode: none}\n");
	CHECK_EQ_INT(c.auth_enabled, 0);
	refused("auth: {mode: basic}\n", "auth.mode");
	refused("auth: {mode: ''}\n", "auth.mode");

	/* strings: empty or longer than their field is refused, never cut */
	refused("http: {addr: ''}\n", "http.addr");
	refused("storage: {filesystem: {rootdirectory: ''}}\n", "storage.filesystem.rootdirectory");
	refused("region: ''\n", "region");
	refused("public_host: ''\n", "public_host");
	refused("auth: {service: ''}\n", "auth.service");
	refused("http: {tls: {certificate: ''}}\n", "http.tls.certificate");
	refused("http: {tls: {key: ''}}\n", "http.tls.key");
	refused("http: {tls: {clientca: ''}}\n", "http.tls.clientca");
	refused("auth: {device: {account_field: ''}}\n", "auth.device.account_field");
	{
		char region[65];

		memset(region, 'r', 63);
		region[63] = '\0'; /* the longest that fits region[64] */
		snprintf(yaml, sizeof(yaml), "region: %s\n", region);
		c = accepted(yaml);
		CHECK_EQ_STR(c.region, region);
		region[63] = 'r';
		region[64] = '\0';
		snprintf(yaml, sizeof(yaml), "region: %s\n", region);
		refused(yaml, "region");
	}
	{
		char addr[300];

		memset(addr, 'a', sizeof(addr) - 1);
		addr[sizeof(addr) - 1] = '\0';
		snprintf(yaml, sizeof(yaml), "http: {addr: %s}\n", addr);
		refused(yaml, "http.addr");
	}
	c = accepted("auth: {device: {account_field: serialNumber}}\n");
	CHECK_EQ_STR(c.device_account_field, "serialNumber");

	/* http.tls.clientcas, as distribution spells it: one file, as a
	 * string or a list of one */
	c = accepted("http: {tls: {clientcas: /etc/ca.pem}}\n");
	CHECK_EQ_STR(c.client_ca, "/etc/ca.pem");
	c = accepted("http:\n  tls:\n    clientcas:\n      - /etc/ca-list.pem\n");
	CHECK_EQ_STR(c.client_ca, "/etc/ca-list.pem");
	refused("http: {tls: {clientcas: [/a.pem, /b.pem]}}\n", "http.tls.clientcas");
	refused("http: {tls: {clientcas: []}}\n", "http.tls.clientcas");
	refused("http: {tls: {clientcas: ''}}\n", "http.tls.clientcas");
}

/* Unknown keys are ignored with a warning naming them (a typo would
 * otherwise leave a default in force silently); keys of distribution's
 * config.yml that Berth knows are not warned about. */
static void test_unknown_keys(void)
{
	brt_config c;

	c = accepted("version: 0.1\nhttp: {addr: 127.0.0.1:6000}\n");
	CHECK_EQ_STR(c.listen, "127.0.0.1:6000");
	CHECK_EQ_STR(warnings, "");

	c = accepted(
		"notifications: {endpoints: []}\n"
		"http:\n"
		"  thraeds: 9\n"
		"  threads: 3\n"
		"  tls: {letsencrypt: {email: a@b}}\n"
		"storage: {gcs: {bucket: x}}\n");
	CHECK_EQ_INT(c.threads, 3);
	CHECK(strstr(warnings, "unknown key notifications") != NULL);
	CHECK(strstr(warnings, "unknown key http.thraeds") != NULL);
	CHECK(strstr(warnings, "unknown key http.tls.letsencrypt") != NULL);
	CHECK(strstr(warnings, "unknown key storage.gcs") != NULL);
	/* one warning for an unknown section, not one per key inside it */
	CHECK(strstr(warnings, "notifications.endpoints") == NULL);
	CHECK(strstr(warnings, "bucket") == NULL);
	/* the values of unknown keys are never checked */
	c = accepted("extra: {threads: not-a-number}\n");
	CHECK_EQ_INT(c.threads, 4);
	CHECK(strstr(warnings, "unknown key extra") != NULL);
}

/* A list or a mapping where one value is read, and a known section that is
 * not a mapping, are refused naming the key: read by key path, they were
 * skipped and left the default in force.  Unknown keys stay ignored
 * whatever their shape; an empty section is no section. */
static void test_shapes(void)
{
	brt_config c, defaults;

	refused("http: {threads: [1, 2]}\n", "http.threads");
	refused("http: {threads: {a: 1}}\n", "http.threads");
	refused("http:\n  tls:\n    key:\n      - /etc/berth/server.key\n", "http.tls.key");
	refused("log: {accesslog: {disabled: [true]}}\n", "log.accesslog.disabled");
	refused("region: {name: eu}\n", "region");
	refused("version: [0.1]\n", "version");
	refused("http: {tls: {clientcas: [[/a.pem]]}}\n", "http.tls.clientcas");
	refused("http: {tls: {clientcas: {a: /a.pem}}}\n", "http.tls.clientcas");

	refused("http: 5\n", "http must be a mapping");
	refused("storage: [filesystem]\n", "storage must be a mapping");
	refused("log: {accesslog: true}\n", "log.accesslog");
	refused("http: {tls: /etc/berth/server.crt}\n", "http.tls");
	refused("auth: {device: OU}\n", "auth.device");
	refused("storage: {filesystem: /var/lib/berth}\n", "storage.filesystem");
	refused("http: ''\n", "http must be a mapping");

	refused("- http\n- limits\n", "top level");
	refused("just a string\n", "top level");
	refused("5\n", "top level");

	brt_config_defaults(&defaults);
	c = accepted("http:\n");
	CHECK(memcmp(&c, &defaults, sizeof(c)) == 0);
	c = accepted("http: ~\nlimits: null\nauth:\n  device:\n");
	CHECK(memcmp(&c, &defaults, sizeof(c)) == 0);
	c = accepted("---\n");
	CHECK(memcmp(&c, &defaults, sizeof(c)) == 0);

	c = accepted(
		"notifications: 5\n"
		"middleware: [a, b]\n"
		"http: {threads: 2, debug: {addr: 'localhost:5001'}, prefix: [a]}\n"
		"storage: {gcs: [x], filesystem: {maxthreads: {a: 1}}}\n");
	CHECK_EQ_INT(c.threads, 2);
	CHECK(strstr(warnings, "unknown key notifications") != NULL);
	CHECK(strstr(warnings, "unknown key middleware") != NULL);
	CHECK(strstr(warnings, "unknown key http.debug") != NULL);
	CHECK(strstr(warnings, "unknown key http.prefix") != NULL);
	CHECK(strstr(warnings, "unknown key storage.gcs") != NULL);
	CHECK(strstr(warnings, "unknown key storage.filesystem.maxthreads") != NULL);
}

/* YAML keys are unique: a key given twice is refused naming it, not read
 * once with the other silently dropped (a second http: block was lost). */
static void test_duplicate_keys(void)
{
	refused("http:\n  threads: 2\n  threads: 3\n", "http.threads");
	refused("http: {threads: 2, \"threads\": 3}\n", "http.threads");
	refused("http:\n  addr: 127.0.0.1:6000\nhttp:\n  threads: 2\n", "http is given twice");
	refused("region: a\nregion: a\n", "region");
	refused("log: {accesslog: {disabled: true, disabled: false}}\n", "log.accesslog.disabled");
	refused("http: {tls: {key: /a.key}, tls: {certificate: /a.crt}}\n", "http.tls");
	/* an unknown key too: the mapping is ours to read */
	refused("http: {thraeds: 1, thraeds: 2}\n", "http.thraeds");
	refused("extra: 1\nextra: 2\n", "extra");
	/* inside an unknown section nothing is read, so nothing is checked */
	accepted("notifications: {a: 1, a: 2}\n");
	/* the same name in different sections is no repeat */
	accepted("http: {tls: {key: /a.key}}\nauth: {device: {account_field: CN}}\nextra: {key: 1}\n");
}

/* A file is one YAML document: a second one would be ignored unread. */
static void test_one_document(void)
{
	brt_config c;

	refused("http: {threads: 2}\n---\nhttp: {threads: 3}\n", "one document");
	refused("http: {threads: 2}\n...\n---\nlimits: {page_max: 5}\n", "one document");
	refused("http: {threads: 2}\n---\n", "one document");
	/* what follows the first document must parse too */
	refused("http: {threads: 2}\n---\n[unclosed\n", "line");

	c = accepted("---\nhttp: {threads: 2}\n");
	CHECK_EQ_INT(c.threads, 2);
	c = accepted("%YAML 1.1\n---\nhttp: {threads: 3}\n...\n");
	CHECK_EQ_INT(c.threads, 3);
}

/* A refused file leaves the caller's configuration exactly as it was, even
 * when the refused value comes after values that were good. */
static void test_failed_load_changes_nothing(void)
{
	brt_config c, before;

	brt_config_defaults(&c);
	c.threads = 7;
	snprintf(c.region, sizeof(c.region), "set-by-caller");
	before = c;
	CHECK_EQ_INT(load_over(&c, "region: eu\nhttp: {threads: 9, addr: '[::1]:1', idle_timeout: 0}\n"),
		     BRT_EINVALID);
	CHECK(memcmp(&c, &before, sizeof(c)) == 0);
	CHECK_EQ_INT(load_over(&c, "http: {threads: 9}\nlog: {level: loud}\n"), BRT_EINVALID);
	CHECK(memcmp(&c, &before, sizeof(c)) == 0);
	CHECK_EQ_INT(load_over(&c, "limits: {manifest_bytes: 8m}\nhttp: {body_memory_limit: 1m}\n"),
		     BRT_EINVALID);
	CHECK(memcmp(&c, &before, sizeof(c)) == 0);
	CHECK_EQ_INT(load_over(&c, "http: {threads: 9}\nhttp: {threads: 10}\n"), BRT_EINVALID);
	CHECK(memcmp(&c, &before, sizeof(c)) == 0);
	CHECK_EQ_INT(load_over(&c, "http: {threads: 9}\n---\n"), BRT_EINVALID);
	CHECK(memcmp(&c, &before, sizeof(c)) == 0);
	CHECK_EQ_INT(load_over(&c, "http: {threads: 9}\n"), 0);
	CHECK_EQ_INT(c.threads, 9);
	CHECK_EQ_STR(c.region, "set-by-caller");
}

/* Files that cannot be read or parsed. */
static void test_file_errors(void)
{
	brt_config c;
	char missing[700], fifo[700];

	brt_config_defaults(&c);
	snprintf(missing, sizeof(missing), "%s/no-such-file.yml", tmp_dir);
	CHECK_EQ_INT(brt_config_load(&c, missing), BRT_EIO);
	CHECK(strstr(brt_error_last(), "no-such-file.yml") != NULL);
	/* anything but a regular file cannot be read as one: I/O, not a
	 * malformed configuration (a FIFO is refused, not waited on) */
	CHECK_EQ_INT(brt_config_load(&c, tmp_dir), BRT_EIO);
	CHECK(strstr(brt_error_last(), tmp_dir) != NULL);
	CHECK_EQ_INT(brt_config_load(&c, "/dev/null"), BRT_EIO);
	snprintf(fifo, sizeof(fifo), "%s/fifo.yml", tmp_dir);
	CHECK(mkfifo(fifo, 0600) == 0);
	CHECK_EQ_INT(brt_config_load(&c, fifo), BRT_EIO);
	unlink(fifo);

	/* a syntax error names the line */
	CHECK_EQ_INT(load(&c, "http:\n  addr: [unclosed\n"), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "line") != NULL);
	CHECK_EQ_INT(load(&c, "a: b\n\tbad: tab\n"), BRT_EINVALID);
	CHECK_EQ_INT(load(&c, "http: {addr: *undefined}\n"), BRT_EINVALID);
}

/* storage.s3 and database.postgres: the drivers they select, every key,
 * the defaults, the prefix normalised, and what is refused. */
static void test_scale_out_drivers(void)
{
	brt_config c = accepted(
		"storage:\n"
		"  s3:\n"
		"    region: us-east-1\n"
		"    regionendpoint: \"http://127.0.0.1:7480\"\n"
		"    bucket: berth\n"
		"    rootdirectory: /registry/eu\n"
		"    accesskey: AK\n"
		"    secretkey: SK\n"
		"    forcepathstyle: true\n"
		"    skipverify: true\n"
		"    chunksize: 8Mi\n"
		"    buffermemory: 256Mi\n"
		"    retries: 5\n"
		"    timeout: 1m\n"
		"    redirect: true\n"
		"    redirectttl: 10m\n"
		"database:\n"
		"  postgres:\n"
		"    dsn: \"postgresql://berth@127.0.0.1:5432/berth\"\n");

	CHECK_EQ_STR(c.blob_driver, "s3");
	CHECK_EQ_STR(c.meta_driver, "postgres");
	CHECK_EQ_STR(c.pg_dsn, "postgresql://berth@127.0.0.1:5432/berth");
	CHECK_EQ_STR(c.s3.region, "us-east-1");
	CHECK_EQ_STR(c.s3.endpoint, "http://127.0.0.1:7480");
	CHECK_EQ_STR(c.s3.bucket, "berth");
	CHECK_EQ_STR(c.s3.prefix, "registry/eu/");
	CHECK_EQ_STR(c.s3.access_key, "AK");
	CHECK_EQ_STR(c.s3.secret_key, "SK");
	CHECK_EQ_INT(c.s3.path_style, 1);
	CHECK_EQ_INT(c.s3.skip_verify, 1);
	CHECK_EQ_INT(c.s3.secure, 1);
	CHECK(c.s3.chunk_size == (uint64_t)8 << 20);
	CHECK(c.s3.buffer_memory == (uint64_t)256 << 20);
	CHECK_EQ_INT(c.s3.retries, 5);
	CHECK_EQ_INT(c.s3.timeout, 60);
	CHECK_EQ_INT(c.s3.redirect, 1);
	CHECK_EQ_INT(c.s3.redirect_ttl, 600);

	/* Defaults: no prefix, 16 MiB parts, TLS checked, no redirect. */
	c = accepted("storage:\n  s3: {region: eu-west-1, bucket: b}\n");
	CHECK_EQ_STR(c.blob_driver, "s3");
	CHECK_EQ_STR(c.meta_driver, "sqlite");
	CHECK_EQ_STR(c.s3.prefix, "");
	CHECK_EQ_STR(c.s3.endpoint, "");
	CHECK(c.s3.chunk_size == (uint64_t)16 << 20);
	CHECK(c.s3.buffer_memory == (uint64_t)1 << 30);
	CHECK_EQ_INT(c.s3.skip_verify, 0);
	CHECK_EQ_INT(c.s3.redirect, 0);
	c = accepted("storage:\n  s3: {region: r, bucket: b, rootdirectory: a/b/}\n");
	CHECK_EQ_STR(c.s3.prefix, "a/b/");
	c = accepted("storage:\n  filesystem: {rootdirectory: /srv/berth}\n");
	CHECK_EQ_STR(c.blob_driver, "filesystem");
	CHECK_EQ_STR(c.data_dir, "/srv/berth");

	refused("storage:\n  s3: {region: r}\n", "storage.s3.bucket");
	refused("storage:\n  s3: {bucket: b}\n", "storage.s3.region");
	refused("storage:\n  s3: {region: r, bucket: b, chunksize: 1Mi}\n", "storage.s3.chunksize");
	refused("storage:\n  s3: {region: r, bucket: b, chunksize: 6Gi}\n", "storage.s3.chunksize");
	refused("storage:\n  s3: {region: r, bucket: b, forcepathstyle: maybe}\n",
		"storage.s3.forcepathstyle");
	refused("storage:\n  s3: {region: r, bucket: b, retries: 11}\n", "storage.s3.retries");
	refused("storage:\n  s3: {region: r, bucket: b, chunksize: 64Mi, buffermemory: 32Mi}\n",
		"storage.s3.buffermemory");
	refused("storage:\n  filesystem: {rootdirectory: /x}\n  s3: {region: r, bucket: b}\n", "choose one");
	refused("database:\n  sqlite: {path: /x}\n  postgres: {dsn: x}\n", "choose one");
	refused("database:\n  postgres: {}\n", "database.postgres.dsn");
}

int main(void)
{
	test_parse_duration();
	const char *base = getenv("TMPDIR");
	int n;

	n = snprintf(tmp_dir, sizeof(tmp_dir), "%s/berth-config-XXXXXX", base && base[0] ? base : "/tmp");
	if (n < 0 || (size_t)n >= sizeof(tmp_dir) || !mkdtemp(tmp_dir)) {
		fprintf(stderr, "test_config: cannot make a temporary directory\n");
		return 1;
	}
	snprintf(config_path, sizeof(config_path), "%s/berth.yml", tmp_dir);
	snprintf(stderr_path, sizeof(stderr_path), "%s/stderr", tmp_dir);

	test_defaults();
	test_empty_and_over();
	test_readme_example();
	test_sizes();
	test_durations();
	test_counts_and_seconds();
	test_body_budget_versus_manifest();
	test_strings_and_choices();
	test_unknown_keys();
	test_shapes();
	test_duplicate_keys();
	test_one_document();
	test_failed_load_changes_nothing();
	test_file_errors();
	test_scale_out_drivers();

	unlink(config_path);
	unlink(stderr_path);
	rmdir(tmp_dir);
	return check_exit("test_config");
}
