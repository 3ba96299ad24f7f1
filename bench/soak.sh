#!/usr/bin/env bash
# Soak run of berthd on loopback: many normal clients, then the hostile
# ones on top.  Bounded; stops by itself.
#
#   bench/soak.sh                 # the long run: 60 s of load, 60 s of attacks
#   SOAK_LOAD_SECONDS=20 SOAK_ATTACK_SECONDS=20 bench/soak.sh   # shorter
#
# Phase 1: SOAK_CLIENTS (500) kept-alive clients (GET /v2/, GET a manifest,
# HEAD a blob) from 20 loopback addresses 127.0.1.x, plus SOAK_PUSHERS (20)
# pushers (monolithic blob upload + manifest PUT), for SOAK_LOAD_SECONDS.
# Phase 2, for SOAK_ATTACK_SECONDS: 1100 slow header senders from
# 127.0.0.2-21 (reconnecting when cut), 200 connections that send 3 MiB of
# a 4 MiB manifest and stall, while a fifth of the clients and pushers and
# a latency probe on 127.0.0.1 keep working.
# Checks (exit status 1 if one fails): no error for any normal client, the
# server's open fds after the run no more than before it (+8), RSS sampled
# every 0.5 s below SOAK_RSS_MAX_MIB (256).  Figures are printed and, with
# SOAK_OUT=FILE, written there as JSON.
#
# Environment: BERTHD (default build/berthd), SOAK_HEADER_TIMEOUT (10s, in seconds),
# SOAK_REQUEST_TIMEOUT (60s), SOAK_KEEP=1 keeps the data directory.
# Python 3 (standard library) drives the clients: tests/e2e/http_attack.py.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BERTHD=${BERTHD:-$ROOT/build/berthd}
LOAD_S=${SOAK_LOAD_SECONDS:-60}
ATTACK_S=${SOAK_ATTACK_SECONDS:-60}
CLIENTS=${SOAK_CLIENTS:-500}
PUSHERS=${SOAK_PUSHERS:-20}
RSS_MAX_MIB=${SOAK_RSS_MAX_MIB:-256}
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
ATTACK=$ROOT/tests/e2e/http_attack.py
ACCOUNT=0146e9b57080961e2c83536300000000
REPO=$ACCOUNT/soak

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-soak.XXXXXX")
PID=
SAMPLER=
cleanup() {
	[ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID"
		for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$PID" 2>/dev/null
	fi
	[ "${SOAK_KEEP:-0}" = 1 ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$BERTHD" ] || { echo "no berthd at $BERTHD (build first)" >&2; exit 2; }
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/config.yml" <<YML
http:
  header_timeout: ${SOAK_HEADER_TIMEOUT:-10s}
  request_timeout: ${SOAK_REQUEST_TIMEOUT:-60s}
YML
"$BERTHD" account create --id "$ACCOUNT" --data-dir "$WORK/data" >/dev/null || exit 2
KEY=$("$BERTHD" key create --account "$ACCOUNT" --data-dir "$WORK/data" --label soak) || exit 2
KEY=${KEY#* }
AUTH="Bearer $KEY"
"$BERTHD" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" --config "$WORK/config.yml" \
	>"$WORK/berthd.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
	curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/v2/" && break
	sleep 0.1
done
URL=http://127.0.0.1:$PORT

# Content for the readers: a config blob and manifest v1.
head -c 512 /dev/urandom >"$WORK/config.bin"
CD=sha256:$(sha256sum <"$WORK/config.bin" | cut -d' ' -f1)
curl -s -o /dev/null --max-time 10 -H "Authorization: $AUTH" -H 'Content-Type: application/octet-stream' \
	--data-binary "@$WORK/config.bin" "$URL/v2/$REPO/blobs/uploads/?digest=$CD"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":512},"layers":[]}' "$CD" >"$WORK/m.json"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT -H "Authorization: $AUTH" \
	-H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$WORK/m.json" "$URL/v2/$REPO/manifests/v1")
[ "$code" = 201 ] || { echo "cannot push the soak manifest ($code)" >&2; exit 2; }

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
fds() { ls "/proc/$PID/fd" | wc -l; }
NORMAL_SOURCES=$(seq -s, -f '127.0.1.%g' 1 20)
ATTACK_SOURCES=$(seq -s, -f '127.0.0.%g' 2 21)

# Warm up (every server thread opens its database handles), then measure.
timeout 60 "$PY" "$ATTACK" load "$PORT" --clients 20 --pushers 2 --duration 3 --repo "$REPO" \
	--auth "$AUTH" --sources "$NORMAL_SOURCES" >/dev/null
sleep 1
FDS_BEFORE=$(fds)
RSS_BEFORE=$(rss)
end=$((SECONDS + LOAD_S + ATTACK_S + 120))
( while [ $SECONDS -lt $end ] && kill -0 "$PID" 2>/dev/null; do rss >>"$WORK/rss"; sleep 0.5; done ) &
SAMPLER=$!

echo "phase 1: $CLIENTS clients + $PUSHERS pushers for ${LOAD_S}s"
LOAD1=$(timeout $((LOAD_S + 120)) "$PY" "$ATTACK" load "$PORT" --clients "$CLIENTS" --pushers "$PUSHERS" \
	--duration "$LOAD_S" --repo "$REPO" --auth "$AUTH" --sources "$NORMAL_SOURCES")
echo "  $LOAD1"
RSS_AFTER_LOAD=$(rss)
FDS_AFTER_LOAD=$(fds)

echo "phase 2: 1100 slow clients + 200 stalled 4 MiB bodies for ${ATTACK_S}s, with $((CLIENTS / 5)) clients + $((PUSHERS / 4)) pushers"
timeout $((ATTACK_S + 120)) "$PY" "$ATTACK" slow "$PORT" --sources "$ATTACK_SOURCES" --count 1100 \
	--duration "$ATTACK_S" --interval 1 --reconnect --probe-path /v2/ --probe-interval 0.2 --auth "$AUTH" \
	>"$WORK/slow.json" &
SLOW=$!
timeout $((ATTACK_S + 120)) "$PY" "$ATTACK" stalled "$PORT" --count 200 --size $((4 << 20)) --send $((3 << 20)) \
	--path "/v2/$REPO/manifests/big" --auth "$AUTH" --hold "$((ATTACK_S - 5 > 1 ? ATTACK_S - 5 : 1))" \
	--sources "$(seq -s, -f '127.0.2.%g' 1 10)" >"$WORK/stalled.json" &
STALLED=$!
LOAD2=$(timeout $((ATTACK_S + 120)) "$PY" "$ATTACK" load "$PORT" --clients $((CLIENTS / 5)) \
	--pushers $((PUSHERS / 4 > 0 ? PUSHERS / 4 : 1)) --duration "$ATTACK_S" --repo "$REPO" --auth "$AUTH" \
	--sources "$NORMAL_SOURCES")
wait "$SLOW" "$STALLED"
SLOWR=$(cat "$WORK/slow.json")
STALLR=$(cat "$WORK/stalled.json")
echo "  load:    $LOAD2"
echo "  slow:    $SLOWR"
echo "  stalled: $STALLR"

# Let every cut or abandoned connection close (header deadline + a tick).
HEADER_S=${SOAK_HEADER_TIMEOUT:-10s}
HEADER_S=${HEADER_S%s}
sleep $((HEADER_S + 2))
FDS_AFTER=$(fds)
RSS_AFTER=$(rss)
kill "$SAMPLER" 2>/dev/null
SAMPLER=
RSS_MAX=$(sort -n "$WORK/rss" | tail -1)
ALIVE=$(kill -0 "$PID" 2>/dev/null && echo yes || echo no)

RESULT=$(jq -n -c --argjson l1 "$LOAD1" --argjson l2 "$LOAD2" --argjson slow "$SLOWR" --argjson st "$STALLR" \
	--argjson fb "$FDS_BEFORE" --argjson fl "$FDS_AFTER_LOAD" --argjson fa "$FDS_AFTER" \
	--argjson rb "$RSS_BEFORE" --argjson rl "$RSS_AFTER_LOAD" --argjson ra "$RSS_AFTER" --argjson rm "$RSS_MAX" \
	--arg alive "$ALIVE" \
	'{load: $l1, attack_load: $l2, slow: $slow, stalled: $st,
	  fds: {before: $fb, after_load: $fl, after: $fa},
	  rss_kib: {before: $rb, after_load: $rl, max: $rm, after: $ra}, alive: $alive}')
[ -n "${SOAK_OUT:-}" ] && printf '%s\n' "$RESULT" >"$SOAK_OUT"
echo "fds: before $FDS_BEFORE, after phase 1 $FDS_AFTER_LOAD, after $FDS_AFTER"
echo "RSS (KiB): before $RSS_BEFORE, after phase 1 $RSS_AFTER_LOAD, max $RSS_MAX, after $RSS_AFTER"

status=0
check() { if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: $2, want $3"; status=1; fi; }
check "server alive" "$ALIVE" yes
check "phase 1 errors" "$(jq -r .errors <<<"$LOAD1")" 0
check "phase 2 client errors" "$(jq -r .errors <<<"$LOAD2")" 0
check "phase 2 probe errors" "$(jq -r .normal.errors <<<"$SLOWR")" 0
check "fds after <= before + 8" "$([ "$FDS_AFTER" -le $((FDS_BEFORE + 8)) ] && echo yes || echo "no ($FDS_AFTER)")" yes
check "RSS max <= ${RSS_MAX_MIB} MiB" "$([ "$RSS_MAX" -le $((RSS_MAX_MIB * 1024)) ] && echo yes || echo "no ($RSS_MAX KiB)")" yes
grep -E 'guard:' "$WORK/berthd.log" | tail -3
exit $status
