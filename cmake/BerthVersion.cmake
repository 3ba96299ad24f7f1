# Generates ${CMAKE_BINARY_DIR}/generated/berth/version.h from
# cmake/version.h.in and provides the interface target berth-version that
# puts it on the include path (#include "berth/version.h").
#
# The git revision is read once, at configure time: a build outside a git
# checkout (a release tarball, git not installed) gets "" and still
# configures.  configure_file rewrites the header only when its content
# changes, so re-configuring at the same revision rebuilds nothing.

set(BERTH_GIT_REVISION "")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(
    COMMAND ${GIT_EXECUTABLE} -C ${CMAKE_SOURCE_DIR} describe --always --dirty --abbrev=12
    OUTPUT_VARIABLE berth_git_describe
    RESULT_VARIABLE berth_git_result
    ERROR_QUIET
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  # Only a revision-like answer: never let odd output into a C string.
  if(berth_git_result EQUAL 0 AND berth_git_describe MATCHES "^[A-Za-z0-9._+-]+$")
    set(BERTH_GIT_REVISION "${berth_git_describe}")
  endif()
endif()

set(BERTH_GENERATED_INCLUDE_DIR ${CMAKE_BINARY_DIR}/generated)
configure_file(${CMAKE_CURRENT_LIST_DIR}/version.h.in
  ${BERTH_GENERATED_INCLUDE_DIR}/berth/version.h @ONLY)

# An interface target rather than an include path on berthcore alone:
# everything that links berthcore (the unit tests, the fuzz targets and
# the instrumented berthcore-fuzz, which copies berthcore's link libraries)
# sees the header too.
add_library(berth-version INTERFACE)
target_include_directories(berth-version INTERFACE ${BERTH_GENERATED_INCLUDE_DIR})
