/* Error codes shared by every layer.  Functions that can fail return 0 or a
 * negative BRT_E* code and pass codes from callees up unchanged; a
 * human-readable detail goes into a thread-local "last error" that the API
 * layer copies into the OCI error body.  Only src/api maps codes to HTTP. */
#ifndef BRT_ERROR_H
#define BRT_ERROR_H

enum brt_error_code {
	BRT_OK = 0,
	BRT_ENOTFOUND = -1,    /* the thing asked for does not exist */
	BRT_EEXISTS = -2,      /* already there (not always an error) */
	BRT_EINVALID = -3,     /* malformed client input */
	BRT_EDIGEST = -4,      /* content does not match its digest */
	BRT_ETOOBIG = -5,      /* over a configured size limit */
	BRT_ECONFLICT = -6,    /* lost a compare-and-swap or still referenced */
	BRT_EUNSUPPORTED = -7, /* valid but not supported here */
	BRT_ENOMEM = -8,
	BRT_EIO = -9,            /* storage or database failure */
	BRT_EUNAUTHORIZED = -10, /* no or bad credentials */
	BRT_EDENIED = -11,       /* credentials valid, action not allowed */
	BRT_ERANGE = -12,        /* offset/range does not fit (HTTP 416) */
	BRT_EBLOBUNKNOWN = -13,  /* a manifest references content not present */
	BRT_ELIMIT = -14,        /* a per-account limit is reached; retry later (HTTP 429) */
	BRT_ENAME = -15,         /* an invalid repository name */
	BRT_ENOREPO = -16,       /* the repository does not exist */
	BRT_EMETHOD = -17,       /* the method is not allowed on the resource (HTTP 405) */
	BRT_EIMMUTABLE = -18,    /* a PUT would move a tag a policy makes immutable */
	BRT_EQUOTA = -19,        /* the account's quota would be exceeded */
	BRT_EPROTECTED = -20,    /* a policy forbids deleting this (an immutable tag) */
	/* An object store or database this node depends on cannot be reached
	 * or does not answer (refused, timed out, 5xx): nothing was changed
	 * that a retry would not redo (HTTP 503). */
	BRT_EUNAVAILABLE = -21,
};

/* Record a printf-style detail for the current thread and return `code`,
 * so call sites can write `return brt_error_set(BRT_EINVALID, "...")`. */
int brt_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The detail recorded last on this thread ("" when none).  Borrowed. */
const char *brt_error_last(void);

/* Forget the recorded detail. */
void brt_error_clear(void);

/* A short constant name for a code ("not found", ...). */
const char *brt_error_name(int code);

#endif
