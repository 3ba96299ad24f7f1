#!/usr/bin/env bash
# The whole test suite: install what is missing, build (normal and
# ASan+UBSan), run unit, fuzz-corpus and end-to-end tests with real clients.
#   scripts/test.sh            everything
#   scripts/test.sh -L unit    only some labels (arguments go to ctest)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
tests/e2e/install-clients.sh >/dev/null
scripts/build.sh
BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DBERTH_SANITIZE=ON
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
echo "== sanitizer build: unit, fuzz replay and protocol tests"
(cd build-asan && ctest --output-on-failure -j2 -L 'unit|fuzz|api' "$@") || status=1
echo "== release build: all tests"
(cd build && ctest --output-on-failure -j2 "$@") || status=1
exit $status
