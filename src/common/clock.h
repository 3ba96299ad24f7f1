/* Wall-clock time as the registry records it: integer milliseconds since
 * the epoch (see DESIGN-metadata: times are chosen by the application). */
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

#endif
