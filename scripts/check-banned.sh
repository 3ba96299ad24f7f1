#!/usr/bin/env bash
# Fail if C code calls a banned function: sprintf/vsprintf, strcpy,
# strcat, strtok, gets, atoi/atol/atoll, or a scanf-family call with an
# unbounded %s or %[ conversion.  They either write without a bound or
# cannot report errors; use snprintf, memcpy with a checked length,
# strtok_r, strtoull with an end pointer.  Comments are not code: lines
# inside /* */ blocks and after // are skipped.  A line that really needs
# one says why with "banned-ok:" in a comment on it.
#   scripts/check-banned.sh [DIR...]    default: src tests fuzz bench
set -uo pipefail
cd "$(dirname "$0")/.."
dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=(src tests fuzz bench)
files=$(find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | sort)
[ -n "$files" ] || { echo "check-banned: no C files under ${dirs[*]}" >&2; exit 1; }
# awk drops comments (block and line) and string literals' contents are
# kept, so a format string is still seen by the scanf rule.
hits=$(awk '
  FNR == 1 { in_comment = 0 }
  {
    line = $0; code = ""
    while (length(line) > 0) {
      if (in_comment) {
        end = index(line, "*/")
        if (end == 0) { line = ""; break }
        line = substr(line, end + 2); in_comment = 0
      } else {
        start = index(line, "/*"); sl = index(line, "//")
        if (sl > 0 && (start == 0 || sl < start)) { code = code substr(line, 1, sl - 1); line = ""; break }
        if (start == 0) { code = code line; line = ""; break }
        code = code substr(line, 1, start - 1); line = substr(line, start + 2); in_comment = 1
      }
    }
    if ($0 ~ /banned-ok:/) next
    if (code ~ /(^|[^A-Za-z0-9_])(v?sprintf|strcpy|strcat|strtok|gets|atoi|atol|atoll)[ \t]*\(/ ||
        code ~ /(^|[^A-Za-z0-9_])v?[fs]?scanf[ \t]*\(.*%(l?s|\[)/)
      printf "%s:%d: %s\n", FILENAME, FNR, $0
  }' $files)
if [ -n "$hits" ]; then
  echo "banned functions (see scripts/check-banned.sh for what to use instead):"
  printf '%s\n' "$hits"
  exit 1
fi
echo "check-banned: $(wc -l <<<"$files") files clean"
