/* Randomness from the kernel, for ids, secrets and keys.  The one place
 * that calls getrandom, so its interruptions and short reads are handled
 * once. */
#ifndef BRT_RANDOM_H
#define BRT_RANDOM_H

#include <stddef.h>

/* Fill `len` bytes at `out` from the kernel's CSPRNG (blocking only until
 * it is seeded at boot).  BRT_EIO if no randomness can be had; `out` is
 * then of undefined content. */
int brt_random_bytes(void *out, size_t len);

/* `chars` random lower-case hex characters plus a NUL into `out`
 * (chars + 1 bytes); every character carries 4 fresh bits, odd lengths
 * included.  BRT_EIO if no randomness (`out` is then ""). */
int brt_random_hex(char *out, size_t chars);

#endif
