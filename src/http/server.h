/* The HTTP front end: a libmicrohttpd daemon (epoll, a pool of threads,
 * a per-connection memory limit) that feeds requests to src/api, behind a
 * guard against hostile clients (connection limits, deadlines, framing
 * checks, a budget for bodies held in memory). */
#ifndef BRT_SERVER_H
#define BRT_SERVER_H

#include "config/config.h"
#include "meta/meta.h"
#include "storage/blobstore.h"

struct brt_server {
	const brt_config *config;
	brt_blobstore *blobs;
	brt_meta *meta;
	struct MHD_Daemon *daemon;
	_Atomic long in_flight; /* requests begun and not completed */
	_Atomic size_t body_memory_used; /* bytes charged by brt_request_body_append */
	struct brt_guard *guard;  /* connection limits and deadlines */
	int tls;                /* serving HTTPS */
	unsigned char token_secret[32]; /* token signing key, shared by all nodes */
	char *tls_cert_pem, *tls_key_pem, *client_ca_pem;
};

/* Bind and start serving with the stores already opened in `server`.
 * BRT_EINVALID for a bad listen address, BRT_EIO if it cannot bind. */
int brt_server_start(struct brt_server *server);

/* Stop accepting, let in-flight requests finish for up to the configured
 * drain timeout, then stop. */
void brt_server_stop(struct brt_server *server);

#endif
