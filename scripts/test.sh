#!/usr/bin/env bash
# The whole test suite: install what is missing, build (normal,
# ASan+UBSan, Release -O3 with gcc, and clang with the fuzz targets; all
# with -Werror, each in its own directory), run unit, fuzz-corpus and
# end-to-end tests with real clients, the banned-function check, the
# formatting check (once enforced, see below), and every fuzz target for a
# bounded time (FUZZ_SECONDS each, default 20).
#   scripts/test.sh            everything
#   scripts/test.sh -L unit    only some labels (arguments go to ctest)
# In CI (BERTH_CI=1, which .ci/run exports, or CI=true) a skipped test
# fails the run: see scripts/ctest-run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --ci
tests/e2e/install-clients.sh >/dev/null
# Warnings are errors here, never in a packager's build (the default).
WERROR=-DBERTH_WERROR=ON
scripts/build.sh $WERROR
BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DBERTH_SANITIZE=ON $WERROR
# Release (-O3) sees warnings the other builds do not (maybe-uninitialized).
BUILD_DIR=build-release BUILD_TYPE=Release scripts/build.sh $WERROR
# clang: its own warnings, and the libFuzzer binaries.
CC=clang BUILD_DIR=build-clang BUILD_TYPE=RelWithDebInfo scripts/build.sh -DBERTH_FUZZ=ON $WERROR
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
echo "== banned functions"
scripts/check-banned.sh || status=1
echo "== layers: includes follow the architecture, no cycle"
scripts/check-layers.sh || status=1
# The tree is reformatted once, then .format-enforced is committed; until
# then the check runs only on request.
if [ "${BERTH_FORMAT_CHECK:-0}" = 1 ] || [ -e .format-enforced ]; then
  echo "== formatting (.clang-format, clang-format-14)"
  scripts/check-format.sh || status=1
else
  echo "== formatting: not enforced yet (BERTH_FORMAT_CHECK=1 or a .format-enforced file turns it on)"
fi
# The drivers' suites against real PostgreSQL and Ceph RGW (label services)
# run in the sanitizer build and the full run; the other two builds compile
# them and leave out the minute of engine starts.
echo "== clang build: unit and fuzz replay"
scripts/ctest-run.sh build-clang --output-on-failure -j2 -L 'unit|fuzz' -LE services "$@" || status=1
echo "== Release build (gcc -O3): unit and fuzz replay"
scripts/ctest-run.sh build-release --output-on-failure -j2 -L 'unit|fuzz' -LE services "$@" || status=1
echo "== sanitizer build: unit, fuzz replay and protocol tests"
scripts/ctest-run.sh build-asan --output-on-failure -j2 -L 'unit|fuzz|api' "$@" || status=1
echo "== release build: all tests"
scripts/ctest-run.sh build --output-on-failure -j2 "$@" || status=1
echo "== fuzzing: every target for ${FUZZ_SECONDS:-20} s"
scripts/fuzz.sh build-clang "${FUZZ_SECONDS:-20}" || status=1
exit $status
