#!/usr/bin/env bash
# Run a test with the environment of the engines services.sh started:
#   tests/services/run.sh DIR COMMAND [ARGS...]
# Without DIR/env (the engines are not running: a test run on its own,
# outside ctest's fixture) the test is skipped (77).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DIR COMMAND [ARGS...]" >&2; exit 2; }
dir=$1; shift
if [ ! -f "$dir/env" ]; then
  echo "run.sh: no engines under $dir (run the test through ctest, or tests/services/services.sh start $dir)" >&2
  exit 77
fi
set -a
# shellcheck disable=SC1091
. "$dir/env"
set +a
exec "$@"
