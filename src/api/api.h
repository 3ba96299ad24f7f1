/* The registry API: the HTTP handler that serves /v2/ (routing through
 * one route table, authorisation, the handlers) and the only place where
 * BRT_E* codes become HTTP statuses and OCI error bodies (one error
 * table).  berthd registers it with the HTTP layer. */
#ifndef BRT_API_H
#define BRT_API_H

#include "auth/auth.h"
#include "config/config.h"
#include "http/server.h"
#include "meta/meta.h"
#include "storage/blobstore.h"

/* What the API serves from; the caller fills it and keeps it alive while
 * the server runs. */
typedef struct brt_api {
	const brt_config *config;
	brt_blobstore *blobs;
	brt_meta *meta;
	brt_auth auth; /* auth.token_secret may point at token_secret */
	int tls;       /* served over HTTPS (for token realms) */
	unsigned char token_secret[BRT_TOKEN_SECRET_LEN];
} brt_api;

/* Fill `out` with the handler serving the registry API from `api`. */
void brt_api_handler(brt_http_handler *out, brt_api *api);

#endif
