/* Thread-local error detail storage for brt_error_set / brt_error_last. */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512];

int brt_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return code;
}

const char *brt_error_last(void)
{
	return last_error;
}

void brt_error_clear(void)
{
	last_error[0] = '\0';
}

const char *brt_error_name(int code)
{
	switch (code) {
	case BRT_OK:
		return "ok";
	case BRT_ENOTFOUND:
		return "not found";
	case BRT_EEXISTS:
		return "exists";
	case BRT_EINVALID:
		return "invalid";
	case BRT_EDIGEST:
		return "digest mismatch";
	case BRT_ETOOBIG:
		return "too big";
	case BRT_ECONFLICT:
		return "conflict";
	case BRT_EUNSUPPORTED:
		return "unsupported";
	case BRT_ENOMEM:
		return "out of memory";
	case BRT_EIO:
		return "i/o error";
	case BRT_EUNAUTHORIZED:
		return "unauthorized";
	case BRT_EDENIED:
		return "denied";
	case BRT_ERANGE:
		return "range not satisfiable";
	case BRT_EBLOBUNKNOWN:
		return "blob unknown";
	case BRT_ELIMIT:
		return "limit reached";
	case BRT_ENAME:
		return "invalid name";
	case BRT_ENOREPO:
		return "no such repository";
	case BRT_EMETHOD:
		return "method not allowed";
	case BRT_EIMMUTABLE:
		return "immutable";
	case BRT_EQUOTA:
		return "over quota";
	case BRT_EUNAVAILABLE:
		return "unavailable";
	case BRT_EPROTECTED:
		return "protected";
	}
	return "unknown error";
}
