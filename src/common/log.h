/* Logging to stderr: leveled messages and the one-line access log.  Each
 * line is written with a single write(2), so lines from different threads
 * never interleave and no lock is taken. */
#ifndef BRT_LOG_H
#define BRT_LOG_H

#include <stddef.h>

enum brt_log_level {
	BRT_LOG_DEBUG = 0,
	BRT_LOG_INFO = 1,
	BRT_LOG_WARN = 2,
	BRT_LOG_ERROR = 3,
};

/* Messages below `level` are dropped. */
void brt_log_set_level(int level);

/* Parse "debug", "info", "warn"/"warning", "error"; -1 if unknown. */
int brt_log_level_parse(const char *name);

/* Every line is scrubbed before it is written: a control character or a
 * byte outside printable ASCII becomes \xHH, so no argument (a path, a
 * header, a certificate field) can end the line early or start a forged
 * one, whatever the caller passed. */
void brt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Flags for brt_log_escape. */
#define BRT_LOG_ESCAPE_SPACE 1u /* escape ' ' too: for key=value fields */

/* Copy `len` bytes of client-controlled `in` into `out` (`cap` bytes,
 * always NUL-terminated when cap > 0) with control characters, bytes
 * outside printable ASCII, backslash and double quote as \xHH (and space
 * with BRT_LOG_ESCAPE_SPACE), so that the logged text reads back
 * unambiguously.  Input that does not fit is cut at a whole escape and
 * marked with "...".  Returns `out`. */
char *brt_log_escape(char *out, size_t cap, const char *in, size_t len, unsigned int flags);

#define brt_log_debug(...) brt_log(BRT_LOG_DEBUG, __VA_ARGS__)
#define brt_log_info(...) brt_log(BRT_LOG_INFO, __VA_ARGS__)
#define brt_log_warn(...) brt_log(BRT_LOG_WARN, __VA_ARGS__)
#define brt_log_error(...) brt_log(BRT_LOG_ERROR, __VA_ARGS__)

#endif
