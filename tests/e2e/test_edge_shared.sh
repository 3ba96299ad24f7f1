#!/usr/bin/env bash
# berth-edge against a scripted upstream (edge_scripted_upstream.py), for
# what a real berthd never does.  Ten concurrent pulls of one uncached
# 200 MiB blob that the upstream sends slowly cause one upstream GET; all
# ten get the right bytes and their first bytes before the download ends.
# kill -9 of berth-edge in the middle of a download leaves nothing
# corrupt, and the next pull completes.  A body cut short, bytes that do
# not match their digest and an answer that is not HTTP give the client
# an error and leave nothing in the cache.  A tag is resolved upstream
# first; with the upstream down (503, then no connection at all) the last
# digest known for it is served with Warning: 110, an unknown tag gets 503
# UNAVAILABLE, and once the upstream is back a moved tag is seen.
# /metrics counts it all and /healthz follows the upstream.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/edge_lib.sh"
W=$E2E_WORK
UP=$W/upstream
CACHE=$W/cache
mkdir -p "$UP"

if [ ! -x "$BERTH_EDGE" ]; then
	fail "berth-edge binary not found at $BERTH_EDGE"
	berth_done
	exit 1
fi

upstream_start() {
	rm -f "$UP/port"
	python3 "$HERE/edge_scripted_upstream.py" "$UP" >>"$UP/stderr" 2>&1 &
	UP_PID=$!
	E2E_PIDS+=("$UP_PID")
	for i in $(seq 1 200); do
		[ -s "$UP/port" ] && break
		sleep 0.05
	done
	[ -s "$UP/port" ] || {
		fail "the scripted upstream did not start" "$(cat "$UP/stderr")"
		exit 1
	}
	UP_URL=http://127.0.0.1:$(cat "$UP/port")
}
upstream_stop() {
	e2e_stop_pid "$UP_PID" >/dev/null 2>&1
	e2e_forget_pid "$UP_PID"
}
# upstream_count METHOD PATH: requests the upstream saw.
upstream_count() {
	grep -c "\"method\": \"$1\", \"path\": \"$2\"" "$UP/log" 2>/dev/null || true
}
# blob_file DIGEST: where the cache keeps it.
blob_file() {
	local hex=${1#sha256:}
	printf '%s/blobs/sha256/%s/%s' "$CACHE" "${hex:0:2}" "$hex"
}
edge_metric() {
	curl -s --max-time 5 "$EDGE_URL/metrics" | awk -v m="$1" '$1 == m {print $2}'
}

echo up >"$UP/mode"
echo 1 >"$UP/tag"
upstream_start
. "$UP/digests"
printf 'key\n' >"$W/key"
edge_start --upstream "$UP_URL" --access-key-file "$W/key" --cache-dir "$CACHE" || exit 1
BERTH_URL=$EDGE_URL

section "ten concurrent pulls of one uncached 200 MiB blob share one download"
python3 - "$UP" >"$W/big.sha" <<'EOF'
import hashlib
BLOCK = 1 << 20
seed = hashlib.sha256(b"edge big blob").digest() * (BLOCK // 32)
h = hashlib.sha256()
for i in range(200):
    h.update(bytes([i & 255]) + seed[1:])
print(h.hexdigest())
EOF
pids=()
for i in $(seq 1 10); do
	curl -s --max-time 120 -o >(sha256sum | cut -d' ' -f1 >"$W/got.$i") \
		-w '%{http_code} %{time_starttransfer} %{time_total}\n' "$EDGE_URL/v2/$REPO/blobs/$BIG" \
		>"$W/curl.$i" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
sleep 0.5 # the process substitutions finish writing
ok_bytes=0 early=0
for i in $(seq 1 10); do
	read -r code first total <"$W/curl.$i"
	[ "$code" = 200 ] && [ "$(cat "$W/got.$i")" = "$(cat "$W/big.sha")" ] && ok_bytes=$((ok_bytes + 1))
	# The upstream needs 5 s for the blob; first bytes come at once.
	awk -v f="$first" -v t="$total" 'BEGIN {exit !(f < 2 && f < t / 2)}' && early=$((early + 1))
	echo "client $i: status $code, first byte after ${first}s, done after ${total}s"
done
expect_eq "clients that got all 200 MiB with the right digest" "$ok_bytes" 10
expect_eq "clients whose first bytes came before the download ended" "$early" 10
expect_eq "upstream GETs of the blob" "$(upstream_count GET "/v2/$REPO/blobs/$BIG")" 1
expect_eq "the cached blob" "$(size_of "$(blob_file "$BIG")" 2>/dev/null)" 209715200
expect_eq "shared downloads counted" "$(edge_metric 'berth_edge_requests_total{result="shared"}')" 9
expect_eq "downloads started" "$(edge_metric 'berth_edge_downloads_total{event="started"}')" 1
req GET "/v2/$REPO/blobs/$BIG" -H 'Range: bytes=209715190-'
expect_status 206
expect_header Content-Range 'bytes 209715190-209715199/209715200'
expect_eq "a later pull is a hit" "$(upstream_count GET "/v2/$REPO/blobs/$BIG")" 1
grep -q "path=/v2/$REPO/blobs/$BIG .*cache=shared" "$EDGE_LOG" && ok "the access log says shared" ||
	fail "no cache=shared access line"

section "kill -9 in the middle of a download"
rm -rf "$CACHE"
edge_stop
edge_start --upstream "$UP_URL" --access-key-file "$W/key" --cache-dir "$CACHE" || exit 1
BERTH_URL=$EDGE_URL
curl -s -o /dev/null --max-time 60 "$EDGE_URL/v2/$REPO/blobs/$BIG" &
CURL_PID=$!
for i in $(seq 1 100); do
	[ -n "$(find "$CACHE/uploads" -type f -size +1M 2>/dev/null)" ] && break
	sleep 0.05
done
[ -n "$(find "$CACHE/uploads" -type f -size +1M)" ] && ok "the download is under way" ||
	fail "no download data appeared"
kill -9 "$EDGE_PID"
wait "$EDGE_PID" 2>/dev/null
e2e_forget_pid "$EDGE_PID"
EDGE_PID=
wait "$CURL_PID" 2>/dev/null
[ -e "$(blob_file "$BIG")" ] && fail "a partial blob entered the cache" || ok "no object for the killed download"
edge_start --upstream "$UP_URL" --access-key-file "$W/key" --cache-dir "$CACHE" || exit 1
BERTH_URL=$EDGE_URL
expect_eq "the restart dropped the unfinished download" "$(find "$CACHE/uploads" -type f | wc -l)" 0
got=$(curl -s --max-time 60 "$EDGE_URL/v2/$REPO/blobs/$BIG" | sha256sum | cut -d' ' -f1)
expect_eq "the next pull completes with the right digest" "$got" "$(cat "$W/big.sha")"

section "bad upstream answers: an error for the client, nothing in the cache"
for name in TRUNC WRONG; do
	digest=${!name}
	# Either the stream breaks off before its last byte, or (when the
	# download failed before this request joined it) a 502.
	code=$(curl -s -o "$W/body" -w '%{http_code}' --max-time 30 "$EDGE_URL/v2/$REPO/blobs/$digest")
	rc=$?
	[ "$rc" != 0 ] || [ "$code" = 502 ] && ok "$name: the client gets an error (curl exit $rc, status $code)" ||
		fail "$name: the client got a complete answer" "status $code, $(wc -c <"$W/body") bytes"
	[ "$(sha256sum <"$W/body" | cut -d' ' -f1)" != "${digest#sha256:}" ] && ok "$name: not the object" ||
		fail "$name: the client got the object?"
	[ -e "$(blob_file "$digest")" ] && fail "$name: cached" || ok "$name: nothing cached"
done
req GET "/v2/$REPO/blobs/$GARBAGE"
expect_status 503
expect_error_code UNAVAILABLE
[ -e "$(blob_file "$GARBAGE")" ] && fail "GARBAGE: cached" || ok "GARBAGE: nothing cached"
expect_eq "no upload data is left" "$(find "$CACHE/uploads" -type f | wc -l)" 0
expect_eq "failed downloads counted" "$(edge_metric 'berth_edge_downloads_total{event="failed"}')" 2

section "prefetch: one platform of an index, then all of them"
"$BERTH_EDGE" prefetch --proxy "$EDGE_URL" --platform linux/arm64 "$REPO:multi" >"$W/prefetch.out" 2>&1
expect_eq "prefetch --platform linux/arm64: exit status" "$?" 0
expect_match "prefetch names what it fetched" "$(cat "$W/prefetch.out")" "$M2"
expect_match "prefetch sums it up" "$(cat "$W/prefetch.out")" '2 manifests, 1 blob'
for d in "$INDEX" "$M2" "$CONFIG"; do
	expect_eq "upstream GETs of $d after the prefetch" \
		"$(($(upstream_count GET "/v2/$REPO/manifests/$d") + $(upstream_count GET "/v2/$REPO/blobs/$d")))" 1
done
expect_eq "the amd64 manifest was not fetched" "$(upstream_count GET "/v2/$REPO/manifests/$M1")" 0
"$BERTH_EDGE" prefetch --proxy "$EDGE_URL" "$REPO:multi" >"$W/prefetch.out" 2>&1
expect_eq "prefetch of every platform: exit status" "$?" 0
expect_eq "now the amd64 manifest was fetched" "$(upstream_count GET "/v2/$REPO/manifests/$M1")" 1
expect_eq "the arm64 one came from the cache" "$(upstream_count GET "/v2/$REPO/manifests/$M2")" 1
"$BERTH_EDGE" prefetch --proxy "$EDGE_URL" --platform linux/s390x "$REPO:multi" >"$W/prefetch.out" 2>&1
expect_eq "prefetch of a platform the index lacks: exit status" "$?" 1
expect_match "it says so" "$(cat "$W/prefetch.out")" 'no platform'
"$BERTH_EDGE" prefetch --proxy "$EDGE_URL" "$REPO:nope" >"$W/prefetch.out" 2>&1
expect_eq "prefetch of an unknown tag: exit status" "$?" 1
expect_match "it names the proxy's answer" "$(cat "$W/prefetch.out")" '404'
"$BERTH_EDGE" prefetch --proxy "$EDGE_URL" "no-tag-here" >"$W/prefetch.out" 2>&1
expect_eq "prefetch of a bad reference: exit status" "$?" 2

section "tags: resolved upstream first, the last known digest while it is unreachable"
req GET "/v2/$REPO/manifests/v1" -H 'Accept: application/vnd.oci.image.manifest.v1+json'
expect_status 200
expect_header_eq Docker-Content-Digest "$M1"
expect_no_header Warning
expect_eq "the tag was resolved with a HEAD" "$(upstream_count HEAD "/v2/$REPO/manifests/v1")" 1
expect_eq "the manifest was fetched by digest" "$(upstream_count GET "/v2/$REPO/manifests/$M1")" 1
req GET "/v2/$REPO/manifests/v1"
expect_status 200
expect_eq "the second pull of the tag fetched nothing more" "$(upstream_count GET "/v2/$REPO/manifests/$M1")" 1
req GET /healthz
expect_status 200
echo down >"$UP/mode"
sleep 2.1 # /healthz reuses a verdict for 2 s
for method in GET HEAD; do
	req "$method" "/v2/$REPO/manifests/v1"
	expect_status 200
	expect_header_eq Docker-Content-Digest "$M1"
	expect_header Warning '110 .*'
done
req GET "/v2/$REPO/manifests/multi"
expect_status 200
expect_header_eq Docker-Content-Digest "$INDEX"
expect_header Warning '110 .*'
req GET "/v2/$REPO/manifests/v2"
expect_status 503
expect_error_code UNAVAILABLE
expect_match "the 503 says what is missing" "$REQ_BODY" 'v2 is not cached'
req GET /healthz
expect_status 503
expect_match "/healthz says the upstream is unreachable" "$REQ_BODY" '"upstream":"unreachable"'
grep -q "path=/v2/$REPO/manifests/v1 .*cache=offline" "$EDGE_LOG" && ok "the access log says offline" ||
	fail "no cache=offline access line"
upstream_stop
req GET "/v2/$REPO/manifests/v1"
expect_status 200
expect_header Warning '110 .*'
expect_header_eq Docker-Content-Digest "$M1"
# Back, with the tag moved meanwhile.
echo up >"$UP/mode"
echo 2 >"$UP/tag"
upstream_start
edge_stop
edge_start --upstream "$UP_URL" --access-key-file "$W/key" --cache-dir "$CACHE" || exit 1
BERTH_URL=$EDGE_URL
req GET "/v2/$REPO/manifests/v1"
expect_status 200
expect_header_eq Docker-Content-Digest "$M2"
expect_no_header Warning
req GET /healthz
expect_status 200
edge_stop
upstream_stop
berth_done
