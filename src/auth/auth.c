/* Authorisation decisions (see auth.h).  Until accounts and credentials
 * exist every request is allowed; this function is where they plug in. */
#include "auth/auth.h"

int brt_auth_check(brt_request *req, brt_action action, const char *repo)
{
	(void)req;
	(void)action;
	(void)repo;
	return 0;
}
