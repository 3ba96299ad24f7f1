/* Time as the registry reads it.  Wall-clock time is what gets recorded:
 * integer milliseconds since the epoch (see DESIGN-metadata: times are
 * chosen by the application).  Monotonic time is for measuring intervals
 * and timeouts, which must not jump when the wall clock is set. */
#ifndef BRT_CLOCK_H
#define BRT_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t brt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds since some unspecified start (boot); never goes back. */
static inline int64_t brt_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* brt_monotonic_ms to within a scheduler tick (a few ms), without a system
 * call: for cache lifetimes checked on every request. */
static inline int64_t brt_monotonic_coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
