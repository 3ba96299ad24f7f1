#!/usr/bin/env bash
# Bodies held in memory are bounded in total: 200 connections that each
# send 3 MiB of a 4 MiB manifest and stall cannot take the server past its
# body budget (http.body_memory_limit, 64 MiB by default).  Large bodies
# may use three quarters of it: while that is spent a large manifest push
# gets 429 TOOMANYREQUESTS with Retry-After, ordinary small pushes still go
# through, and large ones work again once the stalled bodies are gone.  The
# token form is capped too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/http_lib.sh"
BERTH_AUTO_KEY=1
# Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
# default) that would count as RSS here; keep it small.  No effect on a
# normal build.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8
CFG=$E2E_WORK/config.yml
http_config "$CFG" "request_timeout: 12s"
berth_start --config "$CFG" || exit 1
AUTH="Bearer $BERTH_KEY"
R=$BERTH_TENANT/app

make_blob "$E2E_WORK/config.json" 300 cfg
push_blob "$R" "$E2E_WORK/config.json"
make_manifest "$E2E_WORK/m.json" "$E2E_WORK/config.json" "$MT_OCI_CONFIG"
# manifests with padding annotations: 1 MiB, and the largest allowed (4 MiB)
pad() {
	"$E2E_PY" -c 'import json,sys; m=json.load(open(sys.argv[1])); m["annotations"]={"pad":"x"*(int(sys.argv[3])-600)}; open(sys.argv[2],"w").write(json.dumps(m,separators=(",",":")))' \
		"$E2E_WORK/m.json" "$1" "$2"
}
pad "$E2E_WORK/1m.json" $((1 << 20))
pad "$E2E_WORK/big.json" $((4 << 20))
BASE_RSS=$(awk '/^VmRSS:/ {print $2}' "/proc/$BERTH_PID/status")
# Push the 1 MiB manifest as v1m until it answers WANT (up to 40 tries,
# PAUSE seconds apart); REQ_STATUS and the response are the last try's.
push_1m_until() {
	local want=$1 pause=$2 i
	for i in $(seq 1 40); do
		push_manifest "$R" v1m "$E2E_WORK/1m.json"
		[ "$REQ_STATUS" = "$want" ] && return 0
		sleep "$pause"
	done
	return 1
}
echo "RSS before: $BASE_RSS KiB"

section "200 stalled 4 MiB manifest bodies"
attack stalled --count 200 --size $((4 << 20)) --send $((3 << 20)) --path "/v2/$R/manifests/big" \
	--auth "$AUTH" --hold 5 --pid "$BERTH_PID" --sources "$(seq -s, -f '127.0.0.%g' 2 11)" >"$E2E_WORK/stalled.json" &
STALLER=$!
# While they stall, a large push meets the spent budget.
push_1m_until 429 0.2
expect_eq "a push while the budget is spent" "$REQ_STATUS" 429
expect_error_code TOOMANYREQUESTS
expect_header Retry-After '[0-9]+'
push_manifest "$R" v1 "$E2E_WORK/m.json"
expect_status 201
wait "$STALLER"
OUT=$(cat "$E2E_WORK/stalled.json")
echo "$OUT"
expect_eq "stalled bodies sent" "$(jget "$OUT" .bodies_sent)" 200
RSS=$(jget "$OUT" .rss_max_kib)
echo "RSS max while stalled: $RSS KiB (before: $BASE_RSS KiB)"
# 64 MiB of budget, 200 x 64 KiB of connection buffers, and slack.
expect_le "server RSS while 200 bodies stall (KiB)" "$RSS" $((BASE_RSS + 120 * 1024))

section "the budget comes back"
push_1m_until 201 0.25
expect_eq "a 1 MiB push after the stalled connections are gone" "$REQ_STATUS" 201
# A manifest of the largest size still fits whole in the budget.
push_manifest "$R" big "$E2E_WORK/big.json"
expect_status 201

section "the token form is capped"
head -c 100000 /dev/zero | tr '\0' a | sed 's/^/grant_type=password\&scope=/' >"$E2E_WORK/form"
req POST /v2/token -H 'Authorization:' -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "@$E2E_WORK/form"
expect_status 413
expect_error_code SIZE_INVALID
berth_done
