#!/usr/bin/env bash
# Run every libFuzzer target of a clang -DBERTH_FUZZ=ON build for a bounded
# time, each on a scratch copy of its seed corpus (the checked-in corpus is
# never written), two at a time.  Exits 1 if any target crashes, leaks,
# times out on an input or finds a broken promise; the input that did it
# is kept in $FUZZ_OUT/<target>/ and its path printed.
#   scripts/fuzz.sh [BUILD_DIR [SECONDS]]     default: build-clang, 20
# One line per target: executions, coverage and corpus size
# (-print_final_stats).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build-clang}
SECONDS_EACH=${2:-${FUZZ_SECONDS:-20}}
FUZZ_OUT=${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/berth-fuzz.XXXXXX")}
JOBS=${FUZZ_JOBS:-2}

targets=()
for src in fuzz/fuzz_*.c; do
  t=$(basename "$src" .c)
  if [ ! -x "$BUILD_DIR/fuzz/$t-libfuzzer" ]; then
    echo "missing $BUILD_DIR/fuzz/$t-libfuzzer (configure with CC=clang -DBERTH_FUZZ=ON)" >&2
    exit 1
  fi
  targets+=("$t")
done

# run_one TARGET: prints one summary line; exit status is libFuzzer's.
run_one() {
  local t=$1 dir dict=() rc execs cov
  dir=$FUZZ_OUT/$t
  mkdir -p "$dir/corpus" "$dir/crashes"
  cp fuzz/corpus/"$t"/* "$dir/corpus/" 2>/dev/null
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  "$BUILD_DIR/fuzz/$t-libfuzzer" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/crashes/" "${dict[@]}" "$dir/corpus" >"$dir/log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
  cov=$(grep -a -o 'cov: [0-9]*' "$dir/log" | tail -n 1)
  printf '%-14s %s  executions %s in %ss, %s, corpus %s\n' "$t" "$([ $rc = 0 ] && echo ok || echo FAIL)" \
    "${execs:-?}" "$SECONDS_EACH" "${cov:-cov: ?}" "$(ls "$dir/corpus" | wc -l)"
  if [ $rc != 0 ]; then
    tail -n 40 "$dir/log" | sed 's/^/    /'
    ls "$dir/crashes"/* 2>/dev/null | sed 's/^/    input: /'
  fi
  return $rc
}
export -f run_one
export BUILD_DIR SECONDS_EACH FUZZ_OUT

printf '%s\n' "${targets[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one {}'
status=$?
[ $status = 0 ] || echo "fuzzing failed; inputs and logs in $FUZZ_OUT" >&2
exit $([ $status = 0 ] && echo 0 || echo 1)
