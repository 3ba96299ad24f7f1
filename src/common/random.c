/* Kernel randomness behind brt_random_bytes and brt_random_hex. */
#include "common/random.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "common/error.h"
#include "common/hex.h"

/* getrandom returns early when a signal arrives (EINTR, or a short count
 * for requests over 256 bytes) and at most 32 MiB per call: both are
 * normal, and the loop just goes on.  The bound only stops a signal storm
 * from spinning forever. */
#define INTERRUPTS_MAX 100

int brt_random_bytes(void *out, size_t len)
{
	unsigned char *p = out;
	size_t filled = 0;
	int interrupts = 0;

	while (filled < len) {
		ssize_t n = getrandom(p + filled, len - filled, 0);

		if (n > 0) {
			filled += (size_t)n;
			continue;
		}
		if ((n == 0 || errno == EINTR) && ++interrupts < INTERRUPTS_MAX)
			continue;
		return brt_error_set(BRT_EIO, "no randomness: %s",
				     n == 0 ? "getrandom returned nothing" : strerror(errno));
	}
	return 0;
}

int brt_random_hex(char *out, size_t chars)
{
	unsigned char raw[32];
	char hex[2 * sizeof(raw) + 1];
	size_t done = 0;
	int error = 0;

	while (done < chars) {
		size_t want = chars - done < 2 * sizeof(raw) ? chars - done : 2 * sizeof(raw);
		size_t bytes = (want + 1) / 2;

		if ((error = brt_random_bytes(raw, bytes)) < 0) {
			out[0] = '\0';
			goto done;
		}
		brt_hex_encode(hex, raw, bytes);
		memcpy(out + done, hex, want);
		done += want;
	}
	out[chars] = '\0';
done:
	/* The characters may be a secret (access keys): no copy stays behind. */
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(hex, sizeof(hex));
	return error;
}
