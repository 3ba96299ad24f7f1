#!/usr/bin/env bash
# The distributed engines of the scale-out tests, on loopback: a real
# PostgreSQL 15 and a real single-node Ceph cluster with radosgw, installed
# if missing and started by scripts/services/{postgres,ceph}.sh.
#   tests/services/services.sh start DIR   start both, write DIR/env
#   tests/services/services.sh stop DIR    stop both (by the PIDs recorded
#                                          under DIR), remove DIR
# DIR/env sets BERTH_PG_DSN, the S3_* variables and BERTH_SERVICES=DIR, for
# tests/services/run.sh.  ctest runs these as the "services" fixture.
# PostgreSQL listens on BERTH_SERVICES_PG_PORT (default 15432); Ceph's ports
# and capacity follow the CEPH_* variables of scripts/services/ceph.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
[ $# -eq 2 ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
dir=$2

case $1 in
start)
  # A run that died left its engines behind: stop them first.
  [ -d "$dir" ] && "$0" stop "$dir" || true
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  "$src/scripts/services/postgres.sh" start "$dir/pg" "${BERTH_SERVICES_PG_PORT:-15432}"
  if ! "$src/scripts/services/ceph.sh" start "$dir/ceph"; then
    "$src/scripts/services/postgres.sh" stop "$dir/pg" || true
    exit 1
  fi
  { cat "$dir/pg/env" "$dir/ceph/env"; echo "BERTH_SERVICES=$dir"; } >"$dir/env.tmp"
  mv "$dir/env.tmp" "$dir/env"
  ;;
stop)
  [ -d "$dir" ] || exit 0
  status=0
  [ -d "$dir/ceph" ] && { "$src/scripts/services/ceph.sh" stop "$dir/ceph" || status=1; }
  [ -d "$dir/pg" ] && { "$src/scripts/services/postgres.sh" stop "$dir/pg" || status=1; }
  rm -f "$dir/env"
  [ $status -eq 0 ] && rmdir "$dir" 2>/dev/null || true
  exit $status
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
