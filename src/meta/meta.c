/* What every metadata driver and caller shares beyond the interface
 * itself: store serials and the account of a repository name. */
#include "meta/meta.h"

#include <string.h>

/* Starts at 1 so that 0 can mean "no store". */
static uint64_t last_serial;

uint64_t brt_meta_serial_next(void)
{
	return __atomic_add_fetch(&last_serial, 1, __ATOMIC_RELAXED);
}

const char *brt_meta_repo_account(char *out, const char *repo)
{
	size_t n = strcspn(repo, "/");

	if (n > BRT_ACCOUNT_ID_LEN)
		n = BRT_ACCOUNT_ID_LEN;
	memcpy(out, repo, n);
	out[n] = '\0';
	return out;
}
