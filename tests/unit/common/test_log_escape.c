/* Escaping of client-controlled text in log lines, and the scrubbing that
 * keeps every brt_log call to one line whatever its arguments hold. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/log.h"

static const char *esc(const char *in, size_t cap, unsigned int flags)
{
	static char out[256];

	return brt_log_escape(out, cap, in, strlen(in), flags);
}

static void test_escape(void)
{
	char small[8];

	CHECK_EQ_STR(esc("/v2/a/b", sizeof(char[256]), 0), "/v2/a/b");
	CHECK_EQ_STR(esc("a\nb", 256, 0), "a\\x0ab");
	CHECK_EQ_STR(esc("a\r\n\t\x1b[31m", 256, 0), "a\\x0d\\x0a\\x09\\x1b[31m");
	CHECK_EQ_STR(esc("back\\slash \"q\"", 256, 0), "back\\x5cslash \\x22q\\x22");
	CHECK_EQ_STR(esc("a b", 256, 0), "a b");
	CHECK_EQ_STR(esc("a b", 256, BRT_LOG_ESCAPE_SPACE), "a\\x20b");
	CHECK_EQ_STR(esc("\x7f\x80\xff", 256, 0), "\\x7f\\x80\\xff");
	CHECK_EQ_STR(esc("", 256, 0), "");
	/* Cut at a whole escape, marked. */
	CHECK_EQ_STR(brt_log_escape(small, sizeof(small), "abcdefghij", 10, 0), "abcd...");
	CHECK_EQ_STR(brt_log_escape(small, sizeof(small), "a\nbcdefg", 8, 0), "a...");
	CHECK_EQ_STR(brt_log_escape(small, sizeof(small), "abcdefg", 7, 0), "abcdefg");
	CHECK_EQ_STR(brt_log_escape(small, 1, "abc", 3, 0), "");
	CHECK(strlen(brt_log_escape(small, 4, "abcdef", 6, 0)) < 4);
	/* A NUL inside the given length is escaped too. */
	CHECK_EQ_STR(brt_log_escape(small, sizeof(small), "a\0b", 3, 0), "a\\x00b");
}

/* brt_log writes to stderr: point it at a file and read it back. */
static void test_log_one_line(void)
{
	char path[] = "/tmp/berth-test-log-XXXXXX";
	char buf[8192];
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	ssize_t n;
	int lines = 0;

	CHECK(fd >= 0 && saved >= 0);
	dup2(fd, STDERR_FILENO);
	brt_log_info("path=%s status=%d", "/v2/x\n2026-01-01T00:00:00.000Z info access method=GET\r\x1b",
		     404);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unlink(path);
	CHECK(n > 0);
	buf[n > 0 ? n : 0] = '\0';
	for (ssize_t i = 0; i < n; i++)
		lines += buf[i] == '\n';
	CHECK_EQ_INT(lines, 1);
	CHECK(n > 0 && buf[n - 1] == '\n');
	CHECK(strstr(buf,
		     "path=/v2/x\\x0a2026-01-01T00:00:00.000Z info access method=GET\\x0d\\x1b status=404") !=
	      NULL);
}

int main(void)
{
	test_escape();
	test_log_one_line();
	return check_exit("test_log_escape");
}
