/* GnuTLS loaded on demand (see tls_loader.h).  Every GnuTLS function that
 * libmicrohttpd's archive or berthd refers to is defined here as a stub
 * that calls through a table filled by dlvsym() when the library is
 * loaded.  The stubs have hidden visibility: they bind libmicrohttpd's
 * objects and ours inside the executable, and are never exported, so a
 * libgnutls that another library brings into the same process (libcurl's
 * dependencies in berth-edge) keeps its own symbols and is not interposed.
 *
 * The list below is the list of `nm -u libmicrohttpd.a | grep gnutls_`
 * plus what src/auth/device.c calls.  A GnuTLS function missing from it is
 * an undefined reference at link time (libgnutls is not on the link line),
 * never a surprise at run time.  Each is looked up with the symbol version
 * that a link against libgnutls.so.30 records (objdump -T), so the function
 * called is the one the headers describe even if a later GnuTLS adds a new
 * version of it. */
#include "http/tls_loader.h"

#ifdef BRT_TLS_DLOPEN

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <microhttpd.h>

#include "common/error.h"
#include "common/log.h"

/* Only GnuTLS's own declarations are made hidden: the system headers it
 * includes were included above, so libc's functions stay default. */
#pragma GCC visibility push(hidden)
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#pragma GCC visibility pop

#if GNUTLS_VERSION_NUMBER < 0x030603
#error "GnuTLS 3.6.3 or later is needed (gnutls_certificate_set_retrieve_function3)"
#endif

#ifndef BRT_GNUTLS_SONAME
#define BRT_GNUTLS_SONAME "libgnutls.so.30"
#endif

/* X(return type, name, parameters, arguments, symbol version); void
 * functions in a list of their own, because C does not let a void
 * function return a void expression. */
#define BRT_GNUTLS_CALLS(X)                                                                                  \
	X(int, gnutls_alpn_set_protocols,                                                                    \
	  (gnutls_session_t session, const gnutls_datum_t *protocols, unsigned protocols_size,               \
	   unsigned flags),                                                                                  \
	  (session, protocols, protocols_size, flags), "GNUTLS_3_4")                                         \
	X(int, gnutls_bye, (gnutls_session_t session, gnutls_close_request_t how), (session, how),           \
	  "GNUTLS_3_4")                                                                                      \
	X(int, gnutls_certificate_allocate_credentials, (gnutls_certificate_credentials_t * res), (res),     \
	  "GNUTLS_3_4")                                                                                      \
	X(int, gnutls_certificate_set_x509_key_mem,                                                          \
	  (gnutls_certificate_credentials_t res, const gnutls_datum_t *cert, const gnutls_datum_t *key,      \
	   gnutls_x509_crt_fmt_t type),                                                                      \
	  (res, cert, key, type), "GNUTLS_3_4")                                                              \
	X(int, gnutls_certificate_set_x509_key_mem2,                                                         \
	  (gnutls_certificate_credentials_t res, const gnutls_datum_t *cert, const gnutls_datum_t *key,      \
	   gnutls_x509_crt_fmt_t type, const char *pass, unsigned int flags),                                \
	  (res, cert, key, type, pass, flags), "GNUTLS_3_4")                                                 \
	X(int, gnutls_certificate_set_x509_trust_mem,                                                        \
	  (gnutls_certificate_credentials_t res, const gnutls_datum_t *ca, gnutls_x509_crt_fmt_t type),      \
	  (res, ca, type), "GNUTLS_3_4")                                                                     \
	X(gnutls_cipher_algorithm_t, gnutls_cipher_get, (gnutls_session_t session), (session), "GNUTLS_3_4") \
	X(int, gnutls_credentials_set,                                                                       \
	  (gnutls_session_t session, gnutls_credentials_type_t type, void *cred), (session, type, cred),     \
	  "GNUTLS_3_4")                                                                                      \
	X(int, gnutls_dh_params_import_pkcs3,                                                                \
	  (gnutls_dh_params_t params, const gnutls_datum_t *pkcs3_params, gnutls_x509_crt_fmt_t format),     \
	  (params, pkcs3_params, format), "GNUTLS_3_4")                                                      \
	X(int, gnutls_dh_params_init, (gnutls_dh_params_t * params), (params), "GNUTLS_3_4")                 \
	X(int, gnutls_handshake, (gnutls_session_t session), (session), "GNUTLS_3_4")                        \
	X(int, gnutls_init, (gnutls_session_t * session, unsigned int flags), (session, flags),              \
	  "GNUTLS_3_4")                                                                                      \
	X(int, gnutls_priority_init,                                                                         \
	  (gnutls_priority_t * priority_cache, const char *priorities, const char **err_pos),                \
	  (priority_cache, priorities, err_pos), "GNUTLS_3_4")                                               \
	X(int, gnutls_priority_set, (gnutls_session_t session, gnutls_priority_t priority),                  \
	  (session, priority), "GNUTLS_3_4")                                                                 \
	X(gnutls_protocol_t, gnutls_protocol_get_version, (gnutls_session_t session), (session),             \
	  "GNUTLS_3_4")                                                                                      \
	X(int, gnutls_psk_allocate_server_credentials, (gnutls_psk_server_credentials_t * sc), (sc),         \
	  "GNUTLS_3_4")                                                                                      \
	X(size_t, gnutls_record_check_pending, (gnutls_session_t session), (session), "GNUTLS_3_4")          \
	X(int, gnutls_record_get_direction, (gnutls_session_t session), (session), "GNUTLS_3_4")             \
	X(ssize_t, gnutls_record_recv, (gnutls_session_t session, void *data, size_t data_size),             \
	  (session, data, data_size), "GNUTLS_3_4")                                                          \
	X(ssize_t, gnutls_record_send, (gnutls_session_t session, const void *data, size_t data_size),       \
	  (session, data, data_size), "GNUTLS_3_4")                                                          \
	X(void *, gnutls_session_get_ptr, (gnutls_session_t session), (session), "GNUTLS_3_4")               \
	X(const char *, gnutls_strerror, (int error), (error), "GNUTLS_3_4")                                 \
	/* src/auth/device.c */                                                                              \
	X(const gnutls_datum_t *, gnutls_certificate_get_peers,                                              \
	  (gnutls_session_t session, unsigned int *list_size), (session, list_size), "GNUTLS_3_4")           \
	X(int, gnutls_certificate_verify_peers2, (gnutls_session_t session, unsigned int *status),           \
	  (session, status), "GNUTLS_3_4")                                                                   \
	X(int, gnutls_x509_crt_get_dn_by_oid,                                                                \
	  (gnutls_x509_crt_t cert, const char *oid, unsigned indx, unsigned int raw_flag, void *buf,         \
	   size_t *buf_size),                                                                                \
	  (cert, oid, indx, raw_flag, buf, buf_size), "GNUTLS_3_4")                                          \
	X(int, gnutls_x509_crt_get_key_purpose_oid,                                                          \
	  (gnutls_x509_crt_t cert, unsigned indx, void *oid, size_t *oid_size, unsigned int *critical),      \
	  (cert, indx, oid, oid_size, critical), "GNUTLS_3_4")                                               \
	X(int, gnutls_x509_crt_import,                                                                       \
	  (gnutls_x509_crt_t cert, const gnutls_datum_t *data, gnutls_x509_crt_fmt_t format),                \
	  (cert, data, format), "GNUTLS_3_4")                                                                \
	X(int, gnutls_x509_crt_init, (gnutls_x509_crt_t * cert), (cert), "GNUTLS_3_4")

#define BRT_GNUTLS_VOIDS(X)                                                                                  \
	X(void, gnutls_certificate_free_credentials, (gnutls_certificate_credentials_t sc), (sc),            \
	  "GNUTLS_3_4")                                                                                      \
	X(void, gnutls_certificate_server_set_request,                                                       \
	  (gnutls_session_t session, gnutls_certificate_request_t req), (session, req), "GNUTLS_3_4")        \
	X(void, gnutls_certificate_set_dh_params,                                                            \
	  (gnutls_certificate_credentials_t res, gnutls_dh_params_t dh_params), (res, dh_params),            \
	  "GNUTLS_3_4")                                                                                      \
	X(void, gnutls_certificate_set_retrieve_function2,                                                   \
	  (gnutls_certificate_credentials_t cred, gnutls_certificate_retrieve_function2 * func),             \
	  (cred, func), "GNUTLS_3_4")                                                                        \
	X(void, gnutls_certificate_set_retrieve_function3,                                                   \
	  (gnutls_certificate_credentials_t cred, gnutls_certificate_retrieve_function3 * func),             \
	  (cred, func), "GNUTLS_3_6_3")                                                                      \
	X(void, gnutls_deinit, (gnutls_session_t session), (session), "GNUTLS_3_4")                          \
	X(void, gnutls_dh_params_deinit, (gnutls_dh_params_t params), (params), "GNUTLS_3_4")                \
	X(void, gnutls_priority_deinit, (gnutls_priority_t priority_cache), (priority_cache), "GNUTLS_3_4")  \
	X(void, gnutls_psk_free_server_credentials, (gnutls_psk_server_credentials_t sc), (sc),              \
	  "GNUTLS_3_4")                                                                                      \
	X(void, gnutls_psk_set_server_credentials_function,                                                  \
	  (gnutls_psk_server_credentials_t cred, gnutls_psk_server_credentials_function * func),             \
	  (cred, func), "GNUTLS_3_4")                                                                        \
	X(void, gnutls_session_set_ptr, (gnutls_session_t session, void *ptr), (session, ptr), "GNUTLS_3_4") \
	X(void, gnutls_transport_set_int2, (gnutls_session_t session, int r, int s), (session, r, s),        \
	  "GNUTLS_3_4")                                                                                      \
	/* src/auth/device.c */                                                                              \
	X(void, gnutls_x509_crt_deinit, (gnutls_x509_crt_t cert), (cert), "GNUTLS_3_4")

#define BRT_POINTER(ret, name, params, args, version) ret(*name) params;

/* The library's functions; written once under load_lock, before `loaded`
 * is set (release), read after `loaded` is seen set (acquire). */
static struct {
	BRT_GNUTLS_CALLS(BRT_POINTER)
	BRT_GNUTLS_VOIDS(BRT_POINTER)
	int (*global_init)(void); /* gnutls_global_init, _deinit: see below */
	void (*global_deinit)(void);
} real;

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int loaded;
/* gnutls_global_init() calls (less deinits) made before loading, to replay. */
static int pending_inits;

static void *unloaded_malloc(size_t size);

/* libgnutls's allocator, which libmicrohttpd uses for the PSK keys it hands
 * to GnuTLS; a variable, not a function, so it is copied when loading. */
gnutls_alloc_function gnutls_malloc = unloaded_malloc;

__attribute__((noreturn, cold)) static void unloaded(const char *function)
{
	brt_log_error(
		"%s called, but GnuTLS is not loaded (no server was started with TLS); "
		"this is a bug, aborting",
		function);
	abort();
}

static void *unloaded_malloc(size_t size)
{
	(void)size;
	unloaded("gnutls_malloc");
}

static inline void need_loaded(const char *function)
{
	if (__builtin_expect(!atomic_load_explicit(&loaded, memory_order_acquire), 0))
		unloaded(function);
}

#define BRT_STUB_CALL(ret, name, params, args, version) \
	ret name params                                 \
	{                                               \
		need_loaded(#name);                     \
		return real.name args;                  \
	}
#define BRT_STUB_VOID(ret, name, params, args, version) \
	ret name params                                 \
	{                                               \
		need_loaded(#name);                     \
		real.name args;                         \
	}

BRT_GNUTLS_CALLS(BRT_STUB_CALL)
BRT_GNUTLS_VOIDS(BRT_STUB_VOID)

/* libmicrohttpd's constructor (MHD_init) calls this in every process, and
 * its destructor the deinit: counted until the library is loaded. */
int gnutls_global_init(void)
{
	int rc = 0;

	pthread_mutex_lock(&load_lock);
	if (atomic_load_explicit(&loaded, memory_order_relaxed))
		rc = real.global_init();
	else
		pending_inits++;
	pthread_mutex_unlock(&load_lock);
	return rc;
}

void gnutls_global_deinit(void)
{
	pthread_mutex_lock(&load_lock);
	if (atomic_load_explicit(&loaded, memory_order_relaxed))
		real.global_deinit();
	else if (pending_inits > 0)
		pending_inits--;
	pthread_mutex_unlock(&load_lock);
}

typedef struct {
	const char *name;
	const char *version;
	void *slot; /* the address of a function pointer in `real` */
} symbol;

#define BRT_SYMBOL(ret, name, params, args, version) {#name, version, &real.name},

static const symbol symbols[] = {
	BRT_GNUTLS_CALLS(BRT_SYMBOL)
		BRT_GNUTLS_VOIDS(BRT_SYMBOL){"gnutls_global_init", "GNUTLS_3_4", &real.global_init},
	{"gnutls_global_deinit", "GNUTLS_3_4", &real.global_deinit},
};

_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "dlvsym's result must fit a function pointer");

static int resolve(void *handle)
{
	for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
		void *address = dlvsym(handle, symbols[i].name, symbols[i].version);

		if (!address)
			return brt_error_set(BRT_EUNSUPPORTED, "%s has no %s@%s", BRT_GNUTLS_SONAME,
					     symbols[i].name, symbols[i].version);
		memcpy(symbols[i].slot, &address, sizeof(address));
	}
	return 0;
}

int brt_tls_load(void)
{
	void *handle = NULL;
	gnutls_alloc_function *library_malloc;
	int error = 0;
	int inits = 0;

	if (atomic_load_explicit(&loaded, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&load_lock);
	if (atomic_load_explicit(&loaded, memory_order_relaxed))
		goto done;
	if (!(handle = dlopen(BRT_GNUTLS_SONAME, RTLD_NOW | RTLD_LOCAL))) {
		error = brt_error_set(BRT_EUNSUPPORTED, "cannot load %s, needed for TLS: %s",
				      BRT_GNUTLS_SONAME, dlerror());
		goto done;
	}
	if ((error = resolve(handle)) < 0)
		goto done;
	if (!(library_malloc = dlvsym(handle, "gnutls_malloc", "GNUTLS_3_4"))) {
		error = brt_error_set(BRT_EUNSUPPORTED, "%s has no gnutls_malloc@GNUTLS_3_4",
				      BRT_GNUTLS_SONAME);
		goto done;
	}
	for (; inits < pending_inits; inits++) {
		int rc = real.global_init();

		if (rc < 0) {
			error = brt_error_set(BRT_EUNSUPPORTED, "GnuTLS did not initialise: %s",
					      real.gnutls_strerror(rc));
			goto done;
		}
	}
	gnutls_malloc = *library_malloc;
	atomic_store_explicit(&loaded, 1, memory_order_release);
	brt_log_debug("loaded %s for TLS", BRT_GNUTLS_SONAME);
done:
	if (error < 0 && handle) {
		while (inits-- > 0)
			real.global_deinit();
		dlclose(handle);
	}
	pthread_mutex_unlock(&load_lock);
	return error;
}

int brt_tls_loaded(void)
{
	return atomic_load_explicit(&loaded, memory_order_acquire);
}

/* Linked with -Wl,--wrap=MHD_start_daemon (CMakeLists.txt): every server,
 * berthd's and berth-edge's, goes through here, so a daemon started with
 * MHD_USE_TLS always finds GnuTLS loaded, and fails to start when it cannot
 * be, before libmicrohttpd calls any of it. */
struct MHD_Daemon *__wrap_MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc,
					   void *apc_cls, MHD_AccessHandlerCallback dh, void *dh_cls, ...);

struct MHD_Daemon *__wrap_MHD_start_daemon(unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc,
					   void *apc_cls, MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	struct MHD_Daemon *daemon;
	va_list ap;

	if ((flags & MHD_USE_TLS) && brt_tls_load() < 0) {
		brt_log_error("TLS is configured but cannot be used: %s", brt_error_last());
		return NULL;
	}
	va_start(ap, dh_cls);
	daemon = MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return daemon;
}

#else /* the shared libmicrohttpd: GnuTLS is loaded with it */

int brt_tls_load(void)
{
	return 0;
}

int brt_tls_loaded(void)
{
	return 1;
}

#endif
