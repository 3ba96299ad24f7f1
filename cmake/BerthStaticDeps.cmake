# berth_static_deps(TARGET): link TARGET's libraries (not libc) from their
# static archives where the system has them, for BERTH_STATIC_DEPS=ON.
#
# Which: SQLite, OpenSSL's libcrypto, jansson and libyaml, whose licences
# (public domain, Apache-2.0, MIT) allow it.  GnuTLS stays shared (LGPL,
# and Debian has no archive of its own dependencies): it is opened with
# dlopen() only when TLS is configured.  libmicrohttpd (LGPL-2.1) comes
# from its archive in every build unless BERTH_SHARED_MHD=ON: see
# cmake/BerthMhd.cmake, which says why that keeps relinking possible.
#
# Why: every shared library costs resident pages at start whether or not
# its code runs: the dynamic loader relocates its data (OpenSSL's method
# tables alone dirty 0.4 MiB), and its text and read-only data are mapped
# 64 KiB at a time around each page touched.  From archives only the
# objects berthd calls are linked in, and with packed relative relocations
# (-z pack-relative-relocs, DT_RELR) the loader reads a few KiB of
# relocation table instead of some 0.5 MiB.  Measured on Debian 12: idle
# RSS 8.8 -> 7.9 MiB (BENCHMARKS.md).
#
# The price: a security update of OpenSSL, SQLite, jansson or libyaml
# reaches berthd only when it is rebuilt, so this is for images built
# from source (containers), not for distribution packages; OFF by default.
# A library without an archive stays shared.  Only berthd: berth-edge also
# loads libcurl, whose libssl needs the shared libcrypto, and two copies of
# OpenSSL must not meet in one process.

include(CheckLinkerFlag)

function(berth_static_deps target)
  # In link order: each archive before the archives it needs.
  set(names jansson sqlite3 yaml crypto)
  set(archives)
  foreach(name IN LISTS names)
    find_library(BERTH_STATIC_LIB_${name} NAMES lib${name}.a)
    if(BERTH_STATIC_LIB_${name})
      list(APPEND archives ${BERTH_STATIC_LIB_${name}})
    else()
      message(STATUS "BERTH_STATIC_DEPS: no lib${name}.a, ${target} links it shared")
    endif()
  endforeach()
  # SQLite's archive needs libm (the shared library names it itself).
  set(shared m)
  # The archives come first on the link line, ahead of berthcore's shared
  # libraries: their symbols are taken from them, and --as-needed then
  # drops the shared copies nothing refers to any more.
  target_link_libraries(${target} PRIVATE ${archives} ${shared})
  target_link_options(${target} PRIVATE -Wl,--as-needed)
  check_linker_flag(C "-Wl,-z,pack-relative-relocs" BERTH_HAVE_RELR)
  if(BERTH_HAVE_RELR)
    target_link_options(${target} PRIVATE -Wl,-z,pack-relative-relocs)
  endif()
endfunction()
