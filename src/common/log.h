/* Logging to stderr: leveled messages and the one-line access log.  Each
 * line is written with a single write(2), so lines from different threads
 * never interleave and no lock is taken. */
#ifndef BRT_LOG_H
#define BRT_LOG_H

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

void brt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define brt_log_debug(...) brt_log(BRT_LOG_DEBUG, __VA_ARGS__)
#define brt_log_info(...) brt_log(BRT_LOG_INFO, __VA_ARGS__)
#define brt_log_warn(...) brt_log(BRT_LOG_WARN, __VA_ARGS__)
#define brt_log_error(...) brt_log(BRT_LOG_ERROR, __VA_ARGS__)

#endif
