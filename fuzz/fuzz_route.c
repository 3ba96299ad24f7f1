/* Fuzz target for the request dispatcher's decision (api/route): the
 * first byte picks the method, the rest up to a NUL is the path, and what
 * follows is a Transfer-Encoding and a Content-Length value (split at the
 * next NUL).  Beyond memory safety it checks what route.h promises: the
 * name is valid and sits in the path right after "/v2/", the reference is
 * the path's last component, the route-table row serves that endpoint
 * and method with its own action, and nothing on an upload session is
 * authorised as less than push. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/route.h"
#include "http/framing.h"
#include "common/error.h"
#include "common/pool.h"
#include "oci/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const brt_method methods[] = {BRT_GET,   BRT_HEAD,   BRT_PUT,         BRT_POST,
				     BRT_PATCH, BRT_DELETE, BRT_OTHER_METHOD};

static void check(brt_method method, const char *path)
{
	brt_pool pool;
	brt_route route;
	int error;

	brt_pool_init(&pool, 1u << 16);
	error = brt_api_route(&route, &pool, method, path);
	if (error != 0 && error != BRT_ENOTFOUND && error != BRT_ENAME && error != BRT_ENOMEM)
		abort();
	if (error == BRT_ENOTFOUND && (route.endpoint != BRT_EP_NONE || route.repo || route.reference))
		abort();
	if (error == 0 || error == BRT_ENAME) {
		if (route.endpoint == BRT_EP_NONE || strncmp(path, "/v2", 3) != 0)
			abort();
		if (route.def &&
		    (route.def->endpoint != route.endpoint ||
		     !(route.def->methods & BRT_METHOD_BIT(method)) || route.def->action != route.action))
			abort();
		if ((route.endpoint == BRT_EP_UPLOAD || route.endpoint == BRT_EP_UPLOADS) &&
		    method != BRT_OTHER_METHOD && route.action != BRT_ACTION_PUSH)
			abort();
		if (route.endpoint == BRT_EP_TOKEN && route.action != 0)
			abort();
		if (method == BRT_OTHER_METHOD && (route.action != 0 || route.def))
			abort();
	}
	if (error == 0) {
		if (route.reference) {
			size_t n;
			const char *slash = strrchr(path, '/');
			if (!route.repo || !slash || route.reference != slash + 1)
				abort();
			n = strlen(route.repo);
			if (!brt_name_valid(route.repo, n) || strncmp(path + 4, route.repo, n) != 0 ||
			    path[4 + n] != '/')
				abort();
		} else if (route.repo) {
			abort();
		}
	}
	brt_pool_clear(&pool);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *path, *te, *cl;
	size_t path_len, rest;
	int body;

	if (size < 1)
		return 0;
	if (!(copy = malloc(size + 2)))
		return 0;
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	copy[size] = '\0';
	path = copy;
	path_len = strlen(path);
	check(methods[data[0] % (sizeof(methods) / sizeof(methods[0]))], path);
	/* Headers: the body decision must match its definition. */
	rest = path_len < size - 1 ? path_len + 1 : size - 1;
	te = copy + rest;
	cl = te + strlen(te) + (te + strlen(te) < copy + size - 1 ? 1 : 0);
	body = brt_framing_has_body(te[0] ? te : NULL, cl[0] ? cl : NULL);
	if (body != ((te[0] && strcasecmp(te, "identity") != 0) || (cl[0] && strcmp(cl, "0") != 0)))
		abort();
	free(copy);
	return 0;
}
