/* GnuTLS on demand.  berthd links libmicrohttpd from its archive, and the
 * GnuTLS functions that libmicrohttpd and berthd call are small stubs here
 * that forward to libgnutls, opened with dlopen() only when a server is
 * started with TLS.  A registry serving plain HTTP (behind a TLS proxy,
 * or on loopback) then never maps GnuTLS and its eight libraries, nor
 * runs its initialisation: 2.5 MiB less resident memory at idle.
 *
 * The rules: libmicrohttpd's constructor calls gnutls_global_init() in
 * every process; that call (and the matching deinit) is counted without
 * loading anything, and replayed when the library is loaded.  A server
 * started with MHD_USE_TLS loads the library first (see
 * __wrap_MHD_start_daemon in tls_loader.c) and fails to start, with a log
 * line saying why, when it cannot be loaded.  Any other GnuTLS call before
 * the library is loaded is a bug: it is logged and aborts.
 *
 * With -DBERTH_SHARED_MHD=ON (the shared libmicrohttpd, which loads GnuTLS
 * itself) these functions exist but have nothing to do. */
#ifndef BRT_TLS_LOADER_H
#define BRT_TLS_LOADER_H

/* Load libgnutls and resolve every function berthd and libmicrohttpd use.
 * Idempotent and thread-safe; call it before starting a TLS server.
 * Returns 0, or BRT_EUNSUPPORTED (the library or one of its functions is
 * missing, or its initialisation failed; the message says which). */
int brt_tls_load(void);

/* 1 when GnuTLS is loaded (always with the shared libmicrohttpd), else 0. */
int brt_tls_loaded(void);

#endif
