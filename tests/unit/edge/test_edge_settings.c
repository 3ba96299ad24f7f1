/* berth-edge's settings (config/edge.h) on real files in a temporary
 * directory: the defaults, every key, sizes with and without units, the
 * deploy/edge example, every refusal (unknown keys, shapes, duplicates, a
 * second document, malformed values, files that are not regular) with a
 * detail naming the file, the line and the key, a failed load changing
 * nothing, and the command line over the file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "common/error.h"
#include "config/edge.h"

static char tmp_dir[512];
static char config_path[600];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(fwrite(text, 1, strlen(text), f) == strlen(text));
	CHECK(fclose(f) == 0);
}

static int load(brt_edge_settings *s, const char *yaml)
{
	brt_edge_settings_defaults(s);
	write_file(config_path, yaml);
	brt_error_clear();
	return brt_edge_settings_load(s, config_path);
}

/* `yaml` must be refused as BRT_EINVALID, the detail naming the file,
 * `line` and `key`; the settings stay as they were. */
static void refused(const char *yaml, int line, const char *key)
{
	brt_edge_settings s, before;
	char where[700];
	int failures = check_failures;

	brt_edge_settings_defaults(&before);
	CHECK_EQ_INT(load(&s, yaml), BRT_EINVALID);
	snprintf(where, sizeof(where), "config %s line %d: ", config_path, line);
	CHECK(strstr(brt_error_last(), where) != NULL);
	CHECK(strstr(brt_error_last(), key) != NULL);
	CHECK(memcmp(&s, &before, sizeof(s)) == 0);
	if (check_failures != failures)
		fprintf(stderr, "  for:\n%s  detail: \"%s\"\n", yaml, brt_error_last());
}

static void test_defaults(void)
{
	brt_edge_settings s;

	brt_edge_settings_defaults(&s);
	CHECK_EQ_STR(s.listen, "127.0.0.1:8080");
	CHECK_EQ_INT(s.threads, 4);
	CHECK_EQ_STR(s.upstream, "");
	CHECK(s.cache_max_bytes == 0);
	CHECK_EQ_INT(s.allow_push, 0);
	/* an empty file, or comments only, changes nothing */
	CHECK_EQ_INT(load(&s, ""), 0);
	CHECK_EQ_INT(load(&s, "# nothing\n---\n"), 0);
	CHECK_EQ_STR(s.listen, "127.0.0.1:8080");
}

static void test_every_key(void)
{
	brt_edge_settings s;

	CHECK_EQ_INT(load(&s,
			  "listen: 127.0.0.1:9000\n"
			  "upstream: https://registry.example.com\n"
			  "access_key_file: /k\n"
			  "cert: /c\n"
			  "key: /ck\n"
			  "ca: /ca\n"
			  "threads: 16\n"
			  "cache:\n"
			  "  dir: /var/cache/e\n"
			  "  max_bytes: 10GiB\n"
			  "allow_push: yes\n"),
		     0);
	CHECK_EQ_STR(s.listen, "127.0.0.1:9000");
	CHECK_EQ_STR(s.upstream, "https://registry.example.com");
	CHECK_EQ_STR(s.access_key_file, "/k");
	CHECK_EQ_STR(s.cert, "/c");
	CHECK_EQ_STR(s.key, "/ck");
	CHECK_EQ_STR(s.ca, "/ca");
	CHECK_EQ_INT(s.threads, 16);
	CHECK_EQ_STR(s.cache_dir, "/var/cache/e");
	CHECK(s.cache_max_bytes == (uint64_t)10 << 30);
	CHECK_EQ_INT(s.allow_push, 1);
	CHECK_EQ_INT(load(&s, "allow_push: false\ncache: {max_bytes: 0}\n"), 0);
	CHECK_EQ_INT(s.allow_push, 0);
	/* an empty section is none */
	CHECK_EQ_INT(load(&s, "cache:\n"), 0);
}

static void test_example_file(void)
{
	brt_edge_settings s;
	/* The source tree from this file's own path (CMake passes it whole). */
	const char *here = __FILE__, *tail = strstr(here, "tests/unit/edge/test_edge_settings.c");
	char path[1024];

	CHECK(tail != NULL);
	if (!tail)
		return;
	brt_edge_settings_defaults(&s);
	snprintf(path, sizeof(path), "%.*sdeploy/edge/berth-edge.yaml", (int)(tail - here), here);
	CHECK_EQ_INT(brt_edge_settings_load(&s, path), 0);
	CHECK_EQ_STR(s.upstream, "https://registry.example.com");
	CHECK_EQ_STR(s.access_key_file, "/etc/berth-edge/access.key");
	CHECK(s.cache_max_bytes == (uint64_t)10 << 30);
}

static void test_sizes(void)
{
	static const struct {
		const char *text;
		uint64_t bytes;
	} good[] = {
		{"0", 0},
		{"1234", 1234},
		{"1K", 1024},
		{"3M", 3u << 20},
		{"10G", (uint64_t)10 << 30},
		{"2T", (uint64_t)2 << 40},
		{"1KiB", 1024},
		{"5MiB", 5u << 20},
		{"10GiB", (uint64_t)10 << 30},
		{"1TiB", (uint64_t)1 << 40},
		{"16777215TiB", (uint64_t)16777215 << 40},
		{"18446744073709551615", UINT64_MAX},
	};
	static const char *const bad[] = {
		"",
		"K",
		"1k",
		"1KB",
		"1Ki",
		"1kib",
		"1 K",
		"1.5G",
		"-1",
		"+1",
		" 1",
		"0x10",
		"1G ",
		"1P",
		"1PiB",
		"16777216TiB",
		"18446744073709551616",
		"1GiBB",
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		CHECK_EQ_INT(brt_edge_settings_parse_size(&v, good[i].text), 0);
		if (v != good[i].bytes)
			fprintf(stderr, "  size %s read as %llu\n", good[i].text, (unsigned long long)v);
		CHECK(v == good[i].bytes);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int error = brt_edge_settings_parse_size(&v, bad[i]);
		CHECK_EQ_INT(error, BRT_EINVALID);
		if (error != BRT_EINVALID)
			fprintf(stderr, "  size \"%s\" was accepted\n", bad[i]);
	}
}

static void test_refusals(void)
{
	/* unknown keys, at the top or in a section, whatever their shape */
	refused("listen: 127.0.0.1:1\nlisen: x\n", 2, "unknown key lisen");
	refused("cache:\n  dir: /d\n  max: 1\n", 3, "unknown key cache.max");
	refused("extra: [1, 2]\n", 1, "unknown key extra");
	refused("? [a, b]\n: c\n", 1, "list or a mapping");
	/* shapes */
	refused("- listen\n- upstream\n", 1, "top level");
	refused("just a string\n", 1, "top level");
	refused("threads: [1, 2]\n", 1, "threads must be a single value, not a list");
	refused("upstream: {url: x}\n", 1, "upstream must be a single value, not a mapping");
	refused("cache: /var/cache\n", 1, "cache must be a mapping");
	refused("cache: [a]\n", 1, "cache must be a mapping");
	refused("upstream: \"a\\0b\"\n", 1, "upstream contains a NUL");
	/* a key twice, plain or quoted */
	refused("threads: 2\nthreads: 3\n", 2, "threads is given twice");
	refused("cache: {dir: a, \"dir\": b}\n", 1, "cache.dir is given twice");
	/* values */
	refused("threads: 0\n", 1, "threads must be a number from 1 to 256");
	refused("threads: 257\n", 1, "threads");
	refused("threads: four\n", 1, "threads");
	refused("threads: -1\n", 1, "threads");
	refused("\n\ncache:\n  max_bytes: 10 GiB\n", 4, "cache.max_bytes must be a number of bytes");
	refused("cache: {max_bytes: 1.5G}\n", 1, "cache.max_bytes");
	refused("allow_push: maybe\n", 1, "allow_push must be true or false");
	refused("allow_push:\n", 1, "allow_push needs a value");
	refused("listen: ''\n", 1, "listen must not be empty");
	refused("upstream: ~\n", 1, "upstream needs a value");
	{
		char yaml[1200];
		memset(yaml, 0, sizeof(yaml));
		memcpy(yaml, "ca: ", 4);
		memset(yaml + 4, 'a', 1100);
		yaml[1104] = '\n';
		refused(yaml, 1, "ca must not be empty or longer");
	}
}

static void test_file_errors(void)
{
	brt_edge_settings s, before;
	char missing[700], fifo[700];

	brt_edge_settings_defaults(&s);
	before = s;
	snprintf(missing, sizeof(missing), "%s/no-such.yaml", tmp_dir);
	CHECK_EQ_INT(brt_edge_settings_load(&s, missing), BRT_EIO);
	CHECK(strstr(brt_error_last(), missing) != NULL);
	CHECK_EQ_INT(brt_edge_settings_load(&s, tmp_dir), BRT_EIO);
	CHECK(strstr(brt_error_last(), "not a regular file") != NULL);
	CHECK_EQ_INT(brt_edge_settings_load(&s, "/dev/null"), BRT_EIO);
	snprintf(fifo, sizeof(fifo), "%s/fifo.yaml", tmp_dir);
	CHECK(mkfifo(fifo, 0600) == 0);
	CHECK_EQ_INT(brt_edge_settings_load(&s, fifo), BRT_EIO);
	unlink(fifo);
	CHECK(memcmp(&s, &before, sizeof(s)) == 0);
	/* a second document, and a syntax error, name the file and the line */
	CHECK_EQ_INT(load(&s, "threads: 2\n---\nthreads: 3\n"), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), config_path) != NULL);
	CHECK(strstr(brt_error_last(), "another starts at line 2") != NULL);
	CHECK_EQ_INT(load(&s, "upstream: [unclosed\n"), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), config_path) != NULL);
	CHECK(strstr(brt_error_last(), "line 2") != NULL);
}

/* brt_edge_settings_from_args over a NULL-terminated list (argv[0] added). */
static int from_args(brt_edge_settings *s, const char *const *args)
{
	char *argv[32];
	int argc = 1;

	argv[0] = (char *)"berth-edge";
	for (; args[argc - 1] && argc < 31; argc++)
		argv[argc] = (char *)args[argc - 1];
	argv[argc] = NULL;
	brt_error_clear();
	return brt_edge_settings_from_args(s, argc, argv);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_command_line(void)
{
	brt_edge_settings s;

	/* flags alone, sizes with units on the command line too */
	CHECK_EQ_INT(from_args(&s,
			       ARGS("--upstream", "http://u", "--access-key-file", "/k", "--cache-dir", "/c",
				    "--cache-max-bytes", "10GiB", "--threads", "8", "--allow-push")),
		     0);
	CHECK_EQ_STR(s.upstream, "http://u");
	CHECK(s.cache_max_bytes == (uint64_t)10 << 30);
	CHECK_EQ_INT(s.threads, 8);
	CHECK_EQ_INT(s.allow_push, 1);
	CHECK_EQ_STR(s.listen, "127.0.0.1:8080");

	/* the file alone is enough */
	write_file(config_path,
		   "upstream: http://file\naccess_key_file: /file.key\nthreads: 2\n"
		   "listen: 127.0.0.1:7000\ncache: {dir: /fc, max_bytes: 1M}\nallow_push: true\n");
	CHECK_EQ_INT(from_args(&s, ARGS("--config", config_path)), 0);
	CHECK_EQ_STR(s.upstream, "http://file");
	CHECK_EQ_STR(s.access_key_file, "/file.key");
	CHECK_EQ_INT(s.threads, 2);
	CHECK(s.cache_max_bytes == 1u << 20);
	CHECK_EQ_INT(s.allow_push, 1);

	/* flags win, before or after --config */
	CHECK_EQ_INT(from_args(&s, ARGS("--threads", "9", "--config", config_path, "--listen",
					"127.0.0.1:7001", "--cache-max-bytes", "5")),
		     0);
	CHECK_EQ_INT(s.threads, 9);
	CHECK_EQ_STR(s.listen, "127.0.0.1:7001");
	CHECK(s.cache_max_bytes == 5);
	CHECK_EQ_STR(s.upstream, "http://file");
	CHECK_EQ_STR(s.cache_dir, "/fc");

	/* credential flags replace the file's credentials, whichever kind */
	CHECK_EQ_INT(from_args(&s, ARGS("--config", config_path, "--cert", "/d.crt", "--key", "/d.key")), 0);
	CHECK_EQ_STR(s.access_key_file, "");
	CHECK_EQ_STR(s.cert, "/d.crt");
	write_file(config_path, "upstream: http://file\ncert: /f.crt\nkey: /f.key\n");
	CHECK_EQ_INT(from_args(&s, ARGS("--config", config_path, "--access-key-file", "/k")), 0);
	CHECK_EQ_STR(s.access_key_file, "/k");
	CHECK_EQ_STR(s.cert, "");
	CHECK_EQ_STR(s.key, "");

	/* refusals */
	CHECK_EQ_INT(from_args(&s, ARGS("--access-key-file", "/k")), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "--upstream") != NULL);
	CHECK_EQ_INT(from_args(&s, ARGS("--upstream", "http://u")), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "credentials are required") != NULL);
	CHECK_EQ_INT(from_args(&s, ARGS("--upstream", "http://u", "--cert", "/c")), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "credentials are required") != NULL);
	CHECK_EQ_INT(from_args(&s, ARGS("--upstream", "http://u", "--access-key-file", "/k", "--cert", "/c",
					"--key", "/k")),
		     BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "not both") != NULL);
	CHECK_EQ_INT(from_args(&s, ARGS("--upstream", "http://u", "--access-key-file", "/k",
					"--cache-max-bytes", "1G")),
		     BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "needs --cache-dir") != NULL);
	CHECK_EQ_INT(from_args(&s, ARGS("--upstream", "http://u", "--access-key-file", "/k", "--bogus")),
		     BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "unknown option --bogus") != NULL);
	CHECK_EQ_INT(from_args(&s, ARGS("--upstream", "http://u", "--access-key-file")), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "--access-key-file needs a value") != NULL);
	CHECK_EQ_INT(from_args(&s, ARGS("--upstream", "", "--access-key-file", "/k")), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "--upstream needs a value") != NULL);
	CHECK_EQ_INT(from_args(&s,
			       ARGS("--upstream", "http://u", "--access-key-file", "/k", "--threads", "0")),
		     BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "--threads must be a number from 1 to 256") != NULL);
	CHECK_EQ_INT(from_args(&s, ARGS("--upstream", "http://u", "--access-key-file", "/k", "--cache-dir",
					"/c", "--cache-max-bytes", "10gb")),
		     BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "--cache-max-bytes must be a number of bytes") != NULL);
	CHECK_EQ_INT(from_args(&s, ARGS("--config", config_path, "--config", config_path)), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "--config is given twice") != NULL);
	/* the file's own errors come through */
	write_file(config_path, "upstream: http://file\nthreads: 0\n");
	CHECK_EQ_INT(from_args(&s, ARGS("--config", config_path, "--access-key-file", "/k")), BRT_EINVALID);
	CHECK(strstr(brt_error_last(), "line 2: threads") != NULL);
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	int n;

	n = snprintf(tmp_dir, sizeof(tmp_dir), "%s/berth-edge-settings-XXXXXX",
		     base && base[0] ? base : "/tmp");
	if (n < 0 || (size_t)n >= sizeof(tmp_dir) || !mkdtemp(tmp_dir)) {
		fprintf(stderr, "test_edge_settings: cannot make a temporary directory\n");
		return 1;
	}
	snprintf(config_path, sizeof(config_path), "%s/berth-edge.yaml", tmp_dir);

	test_defaults();
	test_every_key();
	test_example_file();
	test_sizes();
	test_refusals();
	test_file_errors();
	test_command_line();

	unlink(config_path);
	rmdir(tmp_dir);
	return check_exit("test_edge_settings");
}
