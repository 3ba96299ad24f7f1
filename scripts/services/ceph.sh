#!/usr/bin/env bash
# A real single-node Ceph cluster with radosgw (S3 API) on loopback, for
# Berth's tests of the S3 blob store.  Everything lives under DIR, no systemd:
#   scripts/services/ceph.sh start DIR   install what is missing, start mon,
#                                        mgr, one memstore OSD and radosgw,
#                                        create the S3 user and bucket, write
#                                        DIR/env and DIR/pids
#   scripts/services/ceph.sh check DIR   S3 round trip through curl's SigV4
#   scripts/services/ceph.sh stop DIR    stop the PIDs in DIR/pids, remove DIR
# Environment (all optional):
#   CEPH_MON_PORT    monitor port (msgr2 only)          default 16789
#   CEPH_PORT_MIN/MAX ports the OSD (4) and mgr (1) bind default 16790/16799
#   CEPH_RGW_PORT    radosgw beast port                 default 7480
#   CEPH_BUCKET      bucket created for the tests       default berth
#   CEPH_OSD_BYTES   memstore capacity                  default 8 GiB
#   CEPH_WAIT_SECONDS bound on each wait of start      default 60
#
# The OSD uses memstore: data lives in the OSD's memory (only what is
# written), so nothing is formatted and a cold start is a few seconds; the
# cluster is thrown away by `stop` anyway.
set -euo pipefail

readonly ACCESS_KEY=BERTHTESTACCESSKEY01
readonly SECRET_KEY=berth-test-secret-key-0123456789abcdefghij
readonly REGION=us-east-1
readonly WAIT_SECONDS=${CEPH_WAIT_SECONDS:-60}

die() { echo "ceph.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

install_packages() {
  local pkgs=(ceph-mon ceph-mgr ceph-osd radosgw ceph-common curl) missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "ceph.sh: installing ${missing[*]}" >&2
  local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  # Installing starts no daemon: the packages' units find no cluster in
  # /var/lib/ceph, and everything here runs from DIR.
  nice -n 10 $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Start a daemon in the foreground of a background job, record its PID.
spawn() {
  local name=$1; shift
  setsid nice -n 10 "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
  echo "$!" >>"$DIR/pids"
}

write_conf() {
  local fsid=$1
  cat >"$DIR/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind msgr2 = true
ms bind port min = $PORT_MIN
ms bind port max = $PORT_MAX
auth allow insecure global id reclaim = false
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = true
crash dir = $DIR/crash
keyring = $DIR/keyring
debug ms = 0
; one OSD: no replication, no failure domain, no autoscaling churn
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon_warn_on_insecure_global_id_reclaim = false
mon data avail warn = 1
mon data avail crit = 0
mon osd full ratio = .97
mon osd backfillfull ratio = .96
mon osd nearfull ratio = .95

[mon]
mon data = $DIR/mon/\$name
mon cluster log file = $DIR/log/cluster.log
; propose map changes (each pool radosgw creates) without the 1 s batching
paxos propose interval = 0.05
paxos min wait = 0.01

[mgr]
mgr data = $DIR/mgr/\$name
; modules that serve nothing; an empty value would mean the default set
mgr initial modules = iostat

[osd]
osd data = $DIR/osd/\$name
osd objectstore = memstore
memstore device bytes = $OSD_BYTES
osd op num shards = 2
osd op num threads per shard = 1

[client.rgw.berth]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $DIR/rgw
rgw thread pool size = 64
rgw dns name = localhost
rgw enable usage log = false
rgw enable ops log = false
; lifecycle workers sleep through SIGTERM for seconds; Berth sets no lifecycle rules
rgw enable lc threads = false
; memstore keeps objects in the OSD's memory: give back the space of
; deleted objects and aborted uploads within a minute, not hours
rgw gc obj min wait = 30
rgw gc processor period = 30
EOF
}

cmd_start() {
  [ -e "$DIR/pids" ] && die "$DIR/pids exists: stop the cluster first ($0 stop $DIR)"
  install_packages
  local t0; t0=$(now)
  rm -rf "$DIR"
  mkdir -p "$DIR"/{mon/mon.a,mgr/mgr.x,osd/osd.0,rgw,run,log,crash}
  : >"$DIR/pids"
  DIR=$(cd "$DIR" && pwd)
  export CEPH_CONF=$DIR/ceph.conf
  trap start_failed EXIT

  local fsid osd_uuid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$fsid"
  # cephx with one keyring for every daemon; the monitor's mkfs imports
  # all of it, so no key is added at run time.
  local k="$DIR/keyring"
  ceph-authtool "$k" --create-keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$k" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
    --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
  ceph-authtool "$k" --gen-key -n mgr.x --cap mon 'allow profile mgr' --cap osd 'allow *' \
    --cap mds 'allow *' >/dev/null
  ceph-authtool "$k" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' \
    --cap mgr 'allow profile osd' >/dev/null
  ceph-authtool "$k" --gen-key -n client.rgw.berth --cap mon 'allow rw' --cap osd 'allow rwx' \
    --cap mgr 'allow rw' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring" >>"$DIR/log/mkfs.out" 2>&1 ||
    die "ceph-mon --mkfs failed, see $DIR/log/mkfs.out"
  spawn mon.a ceph-mon -c "$CEPH_CONF" -f -i a

  # The OSD id is assigned by the monitor; `osd new` also waits for it.
  local osd_id
  osd_id=$(timeout "$WAIT_SECONDS" ceph --connect-timeout "$WAIT_SECONDS" osd new "$osd_uuid" 2>>"$DIR/log/mkfs.out") ||
    die "monitor did not answer within ${WAIT_SECONDS}s, see $DIR/log/mon.a.log"
  [ "$osd_id" = 0 ] || die "unexpected OSD id '$osd_id'"
  spawn mgr.x ceph-mgr -c "$CEPH_CONF" -f -i x
  ceph-osd --mkfs -i 0 --osd-uuid "$osd_uuid" >>"$DIR/log/mkfs.out" 2>&1 ||
    die "ceph-osd --mkfs failed, see $DIR/log/mkfs.out"
  spawn osd.0 ceph-osd -c "$CEPH_CONF" -f -i 0
  spawn rgw radosgw -c "$CEPH_CONF" -f -n client.rgw.berth
  local rgw_pid; rgw_pid=$(tail -n 1 "$DIR/pids")

  # radosgw listens only once its pools exist, which needs the OSD up.
  local i url="http://127.0.0.1:$RGW_PORT"
  for ((i = 0; i < WAIT_SECONDS * 5; i++)); do
    curl -fsS -o /dev/null --max-time 2 "$url/" 2>/dev/null && break
    running "$rgw_pid" || die "radosgw exited, see $DIR/log/client.rgw.berth.log"
    sleep 0.2
  done
  curl -fsS -o /dev/null --max-time 2 "$url/" ||
    die "radosgw not answering on $url after ${WAIT_SECONDS}s, see $DIR/log/"

  timeout "$WAIT_SECONDS" radosgw-admin user create --uid=berth --display-name="Berth tests" \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >>"$DIR/log/admin.out" 2>&1 ||
    die "radosgw-admin user create failed, see $DIR/log/admin.out"

  cat >"$DIR/env" <<EOF
# Written by scripts/services/ceph.sh start; source it.
CEPH_CONF=$DIR/ceph.conf
S3_ENDPOINT=$url
S3_REGION=$REGION
S3_BUCKET=$BUCKET
S3_ACCESS_KEY=$ACCESS_KEY
S3_SECRET_KEY=$SECRET_KEY
AWS_ACCESS_KEY_ID=$ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$SECRET_KEY
AWS_DEFAULT_REGION=$REGION
AWS_REGION=$REGION
EOF

  # A new user's first request may race the user cache; retry briefly.
  local code=
  for ((i = 0; i < 25; i++)); do
    code=$(s3 -o /dev/null -w '%{http_code}' -X PUT "$url/$BUCKET") || true
    case $code in 200 | 409) break ;; esac
    sleep 0.2
  done
  case $code in 200 | 409) ;; *) die "creating bucket $BUCKET failed (HTTP $code)" ;; esac
  trap - EXIT
  echo "ceph.sh: cluster up in $(elapsed "$t0") s: $url bucket $BUCKET (env in $DIR/env)" >&2
}

# curl with SigV4 against the cluster's credentials.  radosgw requires
# x-amz-content-sha256, which curl 7.88 does not add by itself; given, curl
# signs it and uses its value as the payload hash.
s3() {
  curl -sS --max-time 60 --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}

cmd_check() {
  [ -f "$DIR/env" ] || die "no $DIR/env: start the cluster first"
  # shellcheck disable=SC1091
  . "$DIR/env"
  local tmp url key code etag1 etag2 upload
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  url="$S3_ENDPOINT/$S3_BUCKET"
  key="check-$$-$RANDOM"

  head -c 100000 /dev/urandom >"$tmp/small"
  code=$(s3 -o /dev/null -w '%{http_code}' -T "$tmp/small" "$url/$key") || die "PUT failed"
  [ "$code" = 200 ] || die "PUT $key: HTTP $code"
  code=$(s3 -o "$tmp/small.back" -w '%{http_code}' "$url/$key") || die "GET failed"
  [ "$code" = 200 ] || die "GET $key: HTTP $code"
  cmp -s "$tmp/small" "$tmp/small.back" || die "GET $key: bytes differ from what was PUT"
  code=$(s3 -o "$tmp/range.back" -w '%{http_code}' -H 'Range: bytes=1000-1999' "$url/$key") || die "ranged GET failed"
  [ "$code" = 206 ] || die "ranged GET $key: HTTP $code, want 206"
  [ "$(stat -c %s "$tmp/range.back")" = 1000 ] && cmp -s -i 1000:0 -n 1000 "$tmp/small" "$tmp/range.back" ||
    die "ranged GET $key: wrong bytes"

  head -c $((5 * 1024 * 1024)) /dev/urandom >"$tmp/part1"
  head -c $((5 * 1024 * 1024)) /dev/urandom >"$tmp/part2"
  # curl 7.88 signs the query string as written: a flag parameter needs its
  # '=' and parameters must already be in sorted order.
  s3 -o "$tmp/init.xml" -X POST "$url/$key.mp?uploads=" || die "initiate multipart failed"
  upload=$(sed -n 's:.*<UploadId>\([^<]*\)</UploadId>.*:\1:p' "$tmp/init.xml")
  [ -n "$upload" ] || die "initiate multipart: no UploadId in $(cat "$tmp/init.xml")"
  etag1=$(s3 -o /dev/null -D - -T "$tmp/part1" "$url/$key.mp?partNumber=1&uploadId=$upload" |
    tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p')
  etag2=$(s3 -o /dev/null -D - -T "$tmp/part2" "$url/$key.mp?partNumber=2&uploadId=$upload" |
    tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p')
  [ -n "$etag1" ] && [ -n "$etag2" ] || die "upload part: no ETag"
  printf '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part><Part><PartNumber>2</PartNumber><ETag>%s</ETag></Part></CompleteMultipartUpload>' \
    "$etag1" "$etag2" >"$tmp/complete.xml"
  code=$(s3 -o "$tmp/complete.out" -w '%{http_code}' -X POST -H 'Content-Type: application/xml' \
    --data-binary "@$tmp/complete.xml" "$url/$key.mp?uploadId=$upload") || die "complete multipart failed"
  [ "$code" = 200 ] && grep -q CompleteMultipartUploadResult "$tmp/complete.out" ||
    die "complete multipart: HTTP $code $(cat "$tmp/complete.out")"
  s3 -o "$tmp/mp.back" "$url/$key.mp" || die "GET multipart object failed"
  cat "$tmp/part1" "$tmp/part2" | cmp -s - "$tmp/mp.back" || die "multipart object: bytes differ"

  for k in "$key" "$key.mp"; do
    code=$(s3 -o /dev/null -w '%{http_code}' -X DELETE "$url/$k") || die "DELETE failed"
    [ "$code" = 204 ] || die "DELETE $k: HTTP $code"
    code=$(s3 -o /dev/null -w '%{http_code}' "$url/$k") || die "GET after DELETE failed"
    [ "$code" = 404 ] || die "GET $k after DELETE: HTTP $code, want 404"
  done
  echo "ceph.sh: S3 check passed on $url (PUT, GET, ranged GET, multipart 2x5 MiB, DELETE)" >&2
}

# Whether a PID runs (an exited child of a failed start is a zombie until
# this shell ends, and counts as gone).
running() {
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# TERM, up to 10 s to exit, then KILL.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    running "$pid" || return 0
    sleep 0.1
  done
  echo "ceph.sh: PID $pid ignored TERM for 10 s, killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    running "$pid" || return 0
    sleep 0.1
  done
  echo "ceph.sh: PID $pid still alive after KILL" >&2
}

# Stop the processes listed in DIR/pids that still run with DIR's
# configuration.
stop_all() {
  local pids=() pid
  if [ -f "$DIR/pids" ]; then
    while read -r pid; do
      # Only a process still started with this DIR's configuration is ours
      # (guards against a recycled PID).
      [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || continue
      tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$DIR/ceph.conf" || continue
      pids+=("$pid")
    done <"$DIR/pids"
  fi
  # DIR/pids lists mon, mgr, osd, radosgw.  radosgw first (its shutdown
  # talks to the OSD), then mgr and OSD together, the monitor last (the
  # others say goodbye to it and would wait out a timeout were it gone).
  local n=${#pids[@]}
  if [ "$n" -gt 0 ]; then
    stop_pid "${pids[n - 1]}"
    if [ "$n" -gt 2 ]; then
      local jobs=()
      for pid in "${pids[@]:1:n-2}"; do
        stop_pid "$pid" &
        jobs+=("$!")
      done
      wait "${jobs[@]}"
    fi
    [ "$n" -eq 1 ] || stop_pid "${pids[0]}"
  fi
  rm -f "$DIR/pids"
}

cmd_stop() {
  [ -d "$DIR" ] || return 0
  DIR=$(cd "$DIR" && pwd)
  stop_all
  rm -rf "$DIR"
}

# A start that fails stops what it started and keeps DIR's logs.
start_failed() {
  local rc=$?
  [ "$rc" -eq 0 ] && return 0
  echo "ceph.sh: start failed; daemons stopped, logs kept in $DIR/log" >&2
  stop_all
  exit "$rc"
}

[ $# -eq 2 ] || die "usage: $0 start|stop|check DIR"
DIR=$2
MON_PORT=${CEPH_MON_PORT:-16789}
PORT_MIN=${CEPH_PORT_MIN:-16790}
PORT_MAX=${CEPH_PORT_MAX:-16799}
RGW_PORT=${CEPH_RGW_PORT:-7480}
BUCKET=${CEPH_BUCKET:-berth}
OSD_BYTES=${CEPH_OSD_BYTES:-$((8 * 1024 * 1024 * 1024))}
case $1 in
  start) cmd_start ;;
  check) cmd_check ;;
  stop) cmd_stop ;;
  *) die "usage: $0 start|stop|check DIR" ;;
esac
