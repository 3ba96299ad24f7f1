#!/usr/bin/env bash
# berth-edge's cache of content fetched by digest, against a real berthd
# with authentication and its access log on.  Through the proxy: a
# manifest by digest and a blob pulled twice reach berthd once (its access
# log shows one GET); a Range GET and a HEAD are answered from the cache;
# with berthd stopped the cached content still pulls, an uncached digest
# is 503, and another repository that never fetched the blob is not
# served it (404 from berthd while it runs, 503 once it is gone); a temp
# file left in the cache is gone after a restart; a bound smaller than two
# blobs holds after three are pulled; a slow client does not hold the
# download back, and one that leaves does not stop it.  The access line
# of every request says hit, miss or forward.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/auth_lib.sh"
. "$HERE/edge_lib.sh"
W=$E2E_WORK


# upstream_gets PATH: how many GETs of PATH berthd's access log shows.
upstream_gets() {
	grep ' access ' "$BERTH_LOG" | grep -c "method=GET path=$1 "
}

# cached_bytes DIR: the total size of the objects in a cache directory.
cached_bytes() {
	find "$1/blobs" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'
}

if [ ! -x "$BERTH_EDGE" ]; then
	fail "berth-edge binary not found at $BERTH_EDGE"
	berth_done
	exit 1
fi

section "command line"
"$BERTH_EDGE" --upstream http://127.0.0.1:1 --access-key-file /dev/null --cache-max-bytes 10 >/dev/null 2>"$W/err"
expect_eq "--cache-max-bytes without --cache-dir: exit status" "$?" 2
"$BERTH_EDGE" --upstream http://127.0.0.1:1 --access-key-file /dev/null --cache-dir "$W/c" \
	--cache-max-bytes x >/dev/null 2>"$W/err"
expect_eq "--cache-max-bytes x: exit status" "$?" 2

section "a registry with authentication, and A's content"
auth_start || exit 1
auth_require_auth
auth_new_account A alpha
auth_new_key A_PUSH_ID A_PUSH "$A"
auth_new_key A_PULL_ID A_PULL "$A" --pull-only
as A-push "Bearer $A_PUSH"
make_blob "$W/config" 300 config
make_blob "$W/layer" 100000 layer
apush_blob "$A/app" "$W/config"
apush_blob "$A/app" "$W/layer"
LAYER=$(digest_of "$W/layer")
CONFIG=$(digest_of "$W/config")
make_manifest "$W/manifest" "$W/config" "$MT_OCI_CONFIG" "$W/layer"
MANIFEST=$(digest_of "$W/manifest")
apush_manifest "$A/app" v1 "$W/manifest"
for i in 1 2 3; do
	make_blob "$W/e$i" 40000 "evict$i"
	apush_blob "$A/app" "$W/e$i"
done
make_blob "$W/big" 16777216 big
apush_blob "$A/app" "$W/big"
BIG=$(digest_of "$W/big")
# A second repository of the same account, which never fetches the layer.
apush_blob "$A/other" "$W/config"

printf '%s\n' "$A_PULL" >"$W/a-pull.key"
chmod 600 "$W/a-pull.key"
CACHE=$W/cache
edge_start --upstream "$BERTH_URL" --access-key-file "$W/a-pull.key" --cache-dir "$CACHE" || exit 1

section "a miss fetches once, then hits"
through
areq GET "/v2/$A/app/manifests/$MANIFEST" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 200
expect_body_file "$W/manifest"
expect_header_eq Docker-Content-Digest "$MANIFEST"
for round in 1 2; do
	areq GET "/v2/$A/app/blobs/$LAYER"
	expect_resp 200
	expect_body_file "$W/layer"
	expect_header_eq Docker-Content-Digest "$LAYER"
	expect_header Content-Length 100000
done
expect_header_eq ETag "\"$LAYER\""
expect_header Docker-Distribution-API-Version 'registry/2\.0'
back
expect_eq "berthd saw one GET of the blob for two pulls" "$(upstream_gets "/v2/$A/app/blobs/$LAYER")" 1
L=${LAYER#sha256:}
expect_eq "the object is stored by digest" "$(size_of "$CACHE/blobs/sha256/${L:0:2}/$L")" 100000
expect_eq "no upload data is left" "$(ls -A "$CACHE/uploads" | wc -l)" 0
grep -q "path=/v2/$A/app/blobs/$LAYER .*cache=hit" "$EDGE_LOG" && ok "berth-edge logged the hit" ||
	fail "no 'cache=hit' access line in berth-edge's log"
grep -q "path=/v2/$A/app/blobs/$LAYER .*cache=miss" "$EDGE_LOG" && ok "berth-edge logged the miss" ||
	fail "no 'cache=miss' access line in berth-edge's log"

section "Range and HEAD from the cache"
through
areq GET "/v2/$A/app/blobs/$LAYER" -H 'Range: bytes=1000-1999'
expect_resp 206
expect_header Content-Range 'bytes 1000-1999/100000'
dd if="$W/layer" of="$W/slice" bs=1000 skip=1 count=1 status=none
expect_body_file "$W/slice"
areq GET "/v2/$A/app/blobs/$LAYER" -H 'Range: bytes=99990-'
expect_resp 206
expect_header Content-Range 'bytes 99990-99999/100000'
tail -c 10 "$W/layer" >"$W/tail"
expect_body_file "$W/tail"
areq HEAD "/v2/$A/app/blobs/$LAYER"
expect_resp 200
expect_header Content-Length 100000
expect_header_eq Docker-Content-Digest "$LAYER"
# Another repository that never fetched the layer goes upstream: berthd
# does not know the blob there.
areq GET "/v2/$A/other/blobs/$LAYER"
expect_resp 404 BLOB_UNKNOWN
back
expect_eq "berthd still saw one GET of the blob" "$(upstream_gets "/v2/$A/app/blobs/$LAYER")" 1

section "a slow client does not hold the download back, and leaving does not stop it"
B=${BIG#sha256:}
curl -s -o /dev/null --limit-rate 64k "$EDGE_URL/v2/$A/app/blobs/$BIG" &
CURL_PID=$!
for i in $(seq 1 100); do
	[ -e "$CACHE/blobs/sha256/${B:0:2}/$B" ] && break
	sleep 0.1
done
if kill -0 "$CURL_PID" 2>/dev/null; then
	ok "the 16 MiB blob is cached while the 64 KiB/s client is still receiving it"
else
	fail "the client finished before the download was cached"
fi
kill "$CURL_PID" 2>/dev/null
wait "$CURL_PID" 2>/dev/null
expect_eq "the cached object is whole" "$(size_of "$CACHE/blobs/sha256/${B:0:2}/$B")" 16777216
through
areq GET "/v2/$A/app/blobs/$BIG"
expect_resp 200
expect_body_file "$W/big"
back
expect_eq "berthd sent the big blob once" "$(upstream_gets "/v2/$A/app/blobs/$BIG")" 1
expect_eq "no upload data is left" "$(ls -A "$CACHE/uploads" | wc -l)" 0

section "upstream stopped: cached content still pulls"
auth_stop
through
areq GET "/v2/$A/app/blobs/$LAYER"
expect_resp 200
expect_body_file "$W/layer"
areq GET "/v2/$A/app/manifests/$MANIFEST" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 200
expect_body_file "$W/manifest"
expect_header_eq Content-Type "$MT_OCI_MANIFEST"
expect_header_eq Docker-Content-Digest "$MANIFEST"
areq GET "/v2/$A/app/blobs/$CONFIG"
expect_resp 503 UNAVAILABLE
areq GET "/v2/$A/other/blobs/$LAYER"
expect_resp 503 UNAVAILABLE
areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 503 UNAVAILABLE
back
edge_stop

section "restart: temp leftovers are removed, the cache survives"
auth_start --data "$BERTH_DATA" || exit 1
printf 'partial' >"$CACHE/tmp/leftover"
edge_start --upstream "$BERTH_URL" --access-key-file "$W/a-pull.key" --cache-dir "$CACHE" || exit 1
expect_eq "the planted temp file is gone" "$(ls -A "$CACHE/tmp" | wc -l)" 0
through
areq GET "/v2/$A/app/blobs/$LAYER"
expect_resp 200
expect_body_file "$W/layer"
back
expect_eq "the new berthd saw no GET of the cached blob" "$(upstream_gets "/v2/$A/app/blobs/$LAYER")" 0
edge_stop

section "a bound smaller than two blobs"
SMALL=$W/small
edge_start --upstream "$BERTH_URL" --access-key-file "$W/a-pull.key" --cache-dir "$SMALL" \
	--cache-max-bytes 70000 || exit 1
through
for i in 1 2 3; do
	areq GET "/v2/$A/app/blobs/$(digest_of "$W/e$i")"
	expect_resp 200
	expect_body_file "$W/e$i"
	total=$(cached_bytes "$SMALL")
	if [ "$total" -le 70000 ] && [ "$total" -gt 0 ]; then
		ok "after blob $i the cache holds $total bytes (bound 70000)"
	else
		fail "after blob $i the cache holds $total bytes (bound 70000)"
	fi
done
E3=$(digest_of "$W/e3")
areq GET "/v2/$A/app/blobs/$E3"
expect_resp 200
expect_body_file "$W/e3"
back
E3H=${E3#sha256:}
expect_eq "the newest blob stayed cached" "$(size_of "$SMALL/blobs/sha256/${E3H:0:2}/$E3H")" 40000
expect_eq "berthd saw one GET of the newest blob" "$(upstream_gets "/v2/$A/app/blobs/$E3")" 1
edge_stop
auth_stop
berth_done
