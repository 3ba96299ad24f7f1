#!/usr/bin/env bash
# Run ctest in a build directory and list the tests that did not run.  A
# test skips (exit 77) when something it needs is missing on this machine,
# e.g. a real client such as skopeo or podman.  On a developer's machine
# that stays a skip; in CI, which installs everything, a skip means a test
# silently stopped testing, so it fails the run.  CI is BERTH_CI=1 (.ci/run
# exports it) or, when BERTH_CI is unset, CI=true; BERTH_CI=0 turns the
# rule off.
#   scripts/ctest-run.sh BUILD_DIR [CTEST_ARGS...]
# Which tests skipped is read from ctest's JUnit report, or from its
# "did not run" list when there is no report.
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [CTEST_ARGS...]" >&2; exit 2; }
build_dir=$(cd "$1" && pwd) || exit 2
shift
strict=${BERTH_CI:-}
if [ -z "$strict" ]; then
  [ "${CI:-}" = true ] && strict=1 || strict=0
fi

mkdir -p "$build_dir/Testing"
junit=$build_dir/Testing/berth-junit.xml
log=$build_dir/Testing/berth-ctest.log
rm -f "$junit"
(cd "$build_dir" && ctest --output-junit "$junit" "$@") 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# One line per test that did not run: "NAME<TAB>REASON".  Disabled tests
# are left out: DISABLED is a decision in CMakeLists.txt, not a missing tool.
list_skipped() {
  if [ -s "$junit" ] && command -v python3 >/dev/null 2>&1; then
    python3 - "$junit" <<'PY' && return
import sys
import xml.etree.ElementTree as ET

for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    skipped = case.find("skipped")
    if case.get("status") != "notrun" and skipped is None:
        continue
    out = case.findtext("system-out") or ""
    reason = next((l.strip() for l in out.splitlines() if "skip" in l.lower()), "")
    if not reason and skipped is not None:
        reason = skipped.get("message", "")
    print(f"{case.get('name')}\t{reason or 'not run'}")
PY
  fi
  # ctest's summary: "The following tests did not run:" then lines like
  # "	  12 - e2e/test_clients_skopeo (Skipped)".
  awk '/^The following tests did not run:/ { in_list = 1; next }
       in_list && /^[ \t]+[0-9]+ - / {
         line = $0; sub(/^[ \t]+[0-9]+ - /, "", line)
         if (line ~ /\(Disabled\)$/) next
         reason = line; sub(/.* \(/, "", reason); sub(/\)$/, "", reason)
         sub(/ \([^()]*\)$/, "", line)
         print line "\t" reason; next }
       in_list { in_list = 0 }' "$log"
}

skipped=$(list_skipped)
if [ -n "$skipped" ]; then
  count=$(wc -l <<<"$skipped")
  if [ "$strict" = 1 ]; then
    echo "ctest-run: $count test(s) did not run; in CI every test must run (BERTH_CI=1):"
    status=1
  else
    echo "ctest-run: $count test(s) skipped (CI would fail on this):"
  fi
  while IFS=$'\t' read -r name reason; do
    echo "  $name: $reason"
  done <<<"$skipped"
fi
exit "$status"
