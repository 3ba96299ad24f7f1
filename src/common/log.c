/* Leveled logging to stderr, one write(2) per line (see log.h). */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_level = BRT_LOG_INFO;

void brt_log_set_level(int level)
{
	log_level = level;
}

int brt_log_level_parse(const char *name)
{
	if (strcmp(name, "debug") == 0)
		return BRT_LOG_DEBUG;
	if (strcmp(name, "info") == 0)
		return BRT_LOG_INFO;
	if (strcmp(name, "warn") == 0 || strcmp(name, "warning") == 0)
		return BRT_LOG_WARN;
	if (strcmp(name, "error") == 0)
		return BRT_LOG_ERROR;
	return -1;
}

void brt_log(int level, const char *fmt, ...)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t len;
	int n;
	va_list ap;

	if (level < log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000000, names[level & 3]);
	if (n < 0)
		return;
	len = (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	len += (size_t)n;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}
