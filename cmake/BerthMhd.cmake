# The target berth-mhd: how berthcore links libmicrohttpd and GnuTLS.
#
# By default libmicrohttpd comes from its archive (libmicrohttpd.a, in
# Debian's libmicrohttpd-dev) and GnuTLS is not linked at all: the GnuTLS
# functions that libmicrohttpd and src/auth/device.c call resolve to the
# stubs of src/http/tls_loader.c, which dlopen() libgnutls only when a
# server is started with TLS.  Why: Debian's libmicrohttpd.so.12 NEEDs
# libgnutls.so.30 and its constructor initialises GnuTLS, which maps eight
# more libraries and costs every berthd 2.5 MiB of resident memory whether
# or not it serves TLS (BENCHMARKS.md, idle RSS).
#
# Licence: libmicrohttpd is LGPL-2.1.  Berth is built from source, so a
# user can relink berthd against a modified libmicrohttpd (replace the
# archive, or configure with -DBERTH_SHARED_MHD=ON) as the LGPL requires.
#
# -DBERTH_SHARED_MHD=ON links the shared libmicrohttpd and GnuTLS as
# before (every process then maps GnuTLS); so does a system without the
# archive, with a warning.
#
# Two link options make the archive work:
#  --wrap=MHD_start_daemon  every daemon starts through
#     __wrap_MHD_start_daemon (tls_loader.c), which loads GnuTLS first when
#     the daemon uses TLS and fails the start when it cannot;
#  --undefined=brt_tls_load  pulls tls_loader.o out of libberthcore.a ahead
#     of libmicrohttpd.a, whose objects need its stubs.

option(BERTH_SHARED_MHD "Link the shared libmicrohttpd (and with it GnuTLS in every process)" OFF)
set(BERTH_GNUTLS_SONAME "libgnutls.so.30" CACHE STRING
  "The GnuTLS library tls_loader.c opens when TLS is configured")

add_library(berth-mhd INTERFACE)

if(NOT BERTH_SHARED_MHD)
  find_library(BERTH_MHD_ARCHIVE NAMES libmicrohttpd.a HINTS ${MHD_LIBRARY_DIRS})
  if(NOT BERTH_MHD_ARCHIVE)
    message(WARNING "no libmicrohttpd.a (libmicrohttpd-dev): linking the shared libmicrohttpd, "
      "which loads GnuTLS in every process")
  endif()
endif()

if(BERTH_SHARED_MHD OR NOT BERTH_MHD_ARCHIVE)
  message(STATUS "libmicrohttpd: shared, GnuTLS linked")
  target_link_libraries(berth-mhd INTERFACE PkgConfig::MHD PkgConfig::GNUTLS)
else()
  message(STATUS "libmicrohttpd: ${BERTH_MHD_ARCHIVE}, ${BERTH_GNUTLS_SONAME} loaded only for TLS")
  target_include_directories(berth-mhd INTERFACE ${MHD_INCLUDE_DIRS} ${GNUTLS_INCLUDE_DIRS})
  target_compile_definitions(berth-mhd INTERFACE BRT_TLS_DLOPEN
    BRT_GNUTLS_SONAME="${BERTH_GNUTLS_SONAME}")
  target_link_libraries(berth-mhd INTERFACE ${BERTH_MHD_ARCHIVE} Threads::Threads ${CMAKE_DL_LIBS})
  target_link_options(berth-mhd INTERFACE -Wl,--wrap=MHD_start_daemon -Wl,--undefined=brt_tls_load)
endif()
