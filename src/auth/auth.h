/* Authorisation: the single place where "may this request do this to this
 * repository" is decided.  Every handler passes through brt_auth_check
 * before touching a store.  Authentication is not enabled yet: every
 * request is allowed. */
#ifndef BRT_AUTH_H
#define BRT_AUTH_H

#include "http/request.h"

typedef enum brt_action {
	BRT_ACTION_PULL = 1,    /* read manifests, blobs, tags, referrers */
	BRT_ACTION_PUSH = 2,    /* upload blobs, put manifests */
	BRT_ACTION_DELETE = 4,  /* delete manifests, tags, blobs */
	BRT_ACTION_CATALOG = 8, /* list repositories */
} brt_action;

/* 0 if `req` may perform `action` on `repo` (NULL for registry-wide
 * actions); BRT_EUNAUTHORIZED without valid credentials, BRT_EDENIED with
 * credentials that do not allow it. */
int brt_auth_check(brt_request *req, brt_action action, const char *repo);

#endif
