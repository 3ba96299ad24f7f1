#!/usr/bin/env bash
# Fail if a C source differs from what .clang-format says (clang-format 14,
# the version Debian 12 ships, so every machine formats alike).  Nothing is
# rewritten: the differences are printed as clang-format's warnings, then a
# count of files and lines.  To fix a file: clang-format-14 -i FILE.
#   scripts/check-format.sh [PATH...]    default: src tests fuzz bench
# scripts/test.sh runs it only once the tree has been reformatted (a file
# .format-enforced at the top) or when BERTH_FORMAT_CHECK=1.
set -uo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format-14}
if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
  echo "check-format: $CLANG_FORMAT is not installed (apt-get install clang-format-14)" >&2
  exit 2
fi
paths=("$@")
[ ${#paths[@]} -gt 0 ] || paths=(src tests fuzz bench)
mapfile -t files < <(find "${paths[@]}" -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | sort)
[ ${#files[@]} -gt 0 ] || { echo "check-format: no C files under ${paths[*]}" >&2; exit 2; }
# One clang-format run over every file says which differ; --Werror makes
# it exit non-zero on the first difference, and it goes on to the end.
report=$("$CLANG_FORMAT" --style=file --dry-run --Werror "${files[@]}" 2>&1)
status=$?
if [ $status -eq 0 ]; then
  echo "check-format: ${#files[@]} files formatted"
  exit 0
fi
mapfile -t bad < <(grep -o '^[^: ]*\.[ch]:[0-9]*:[0-9]*: \(warning\|error\)' <<<"$report" | cut -d: -f1 | uniq)
if [ ${#bad[@]} -eq 0 ]; then
  # Not a formatting difference: clang-format itself failed.
  printf '%s\n' "$report" >&2
  exit 2
fi
printf '%s\n' "$report" | head -n 60
lines=0
for f in "${bad[@]}"; do
  # Lines of the file that formatting would change, for the summary.
  n=$("$CLANG_FORMAT" --style=file "$f" | diff -U0 "$f" - | grep -c '^-\([^-]\|$\)')
  echo "  $f: $n lines"
  lines=$((lines + n))
done
echo "check-format: ${#bad[@]} of ${#files[@]} files differ from .clang-format ($lines lines);" \
  "see the changes with: $CLANG_FORMAT FILE | diff -u FILE -; fix with: $CLANG_FORMAT -i FILE"
exit 1
