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

/* Write `c` as the four bytes \xHH at `out`. */
static void put_hex_escape(char *out, unsigned char c)
{
	static const char hex_digits[] = "0123456789abcdef";

	out[0] = '\\';
	out[1] = 'x';
	out[2] = hex_digits[c >> 4];
	out[3] = hex_digits[c & 15];
}

/* A byte that may stand in a log line as it is. */
static int log_plain(unsigned char c, unsigned int flags)
{
	if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"')
		return 0;
	return c != ' ' || !(flags & BRT_LOG_ESCAPE_SPACE);
}

char *brt_log_escape(char *out, size_t cap, const char *in, size_t len, unsigned int flags)
{
	size_t o = 0, total = 0;
	int truncated = 0, fits;

	if (cap == 0)
		return out;
	for (size_t i = 0; i < len && total < cap; i++)
		total += log_plain((unsigned char)in[i], flags) ? 1 : 4;
	fits = total < cap;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		size_t need = log_plain(c, flags) ? 1 : 4;
		/* If it will not all fit, keep room for "..." and the NUL. */
		size_t tail = fits ? 0 : 3;

		if (o + need + tail + 1 > cap) {
			truncated = 1;
			break;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else {
			put_hex_escape(out + o, c);
			o += 4;
		}
	}
	if (truncated && o + 4 <= cap) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

/* The last line of defence: a raw control character or non-ASCII byte in
 * the formatted message becomes \xHH.  Backslashes are left alone here
 * (callers escape client text with brt_log_escape, which handles them). */
static size_t scrub(char *dst, size_t cap, const char *src, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o < cap; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c >= 0x20 && c < 0x7f) {
			dst[o++] = (char)c;
			continue;
		}
		if (o + 4 > cap)
			break;
		put_hex_escape(dst + o, c);
		o += 4;
	}
	return o;
}

void brt_log(int level, const char *fmt, ...)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	char message[2048], line[4096];
	struct timespec ts;
	struct tm tm;
	size_t len;
	int n;
	va_list ap;

	if (level < log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		     names[level & 3]);
	if (n < 0)
		return;
	len = (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(message))
		n = (int)sizeof(message) - 1;
	len += scrub(line + len, sizeof(line) - len - 1, message, (size_t)n);
	line[len++] = '\n';
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}
