/* The registry API: routing of /v2/ requests to handlers, and the only
 * place where BRT_E* codes become HTTP statuses and OCI error bodies.
 * Called by src/http in three steps per request. */
#ifndef BRT_API_H
#define BRT_API_H

#include <stddef.h>

#include "http/request.h"

/* Headers are in: route, validate, authorise; answer bodyless requests or
 * prepare the body sink. */
void brt_api_begin(brt_request *req);

/* A chunk of request body. */
void brt_api_body(brt_request *req, const char *data, size_t len);

/* The body (if any) is complete: finish and answer. */
void brt_api_end(brt_request *req);

/* The request is over (answered or aborted): release what it holds. */
void brt_api_cleanup(brt_request *req);

#endif
