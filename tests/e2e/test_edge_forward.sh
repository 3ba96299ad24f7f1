#!/usr/bin/env bash
# berth-edge forwarding, against a real berthd with authentication on.
# Account A's content is pushed with A's key; berth-edge holds a pull-only
# key of A (then, over HTTPS, A's device certificate) and local clients
# pull through it with no credentials at all: /v2/, a manifest by tag
# (exact bytes and digest), HEAD and GET of a blob, a Range GET, tags with
# pagination (a relative Link), referrers (the query and OCI-Filters-Applied),
# a 304 for If-None-Match, upstream errors passed through unchanged
# (404 MANIFEST_UNKNOWN, 403 DENIED for account B's repository, no
# challenge), pushes refused by the proxy itself (405 UNSUPPORTED) unless
# --allow-push is given (then a monolithic, a chunked and a 32 MiB upload,
# a manifest, the catalog and a delete go through; a pull-only key gets the
# upstream's 403), a 32 MiB blob streamed with flat memory, and 503 with
# an OCI body once the upstream is gone.  A scripted upstream (edge_fake_upstream.py) then
# checks what berthd never sends: absolute Link/Location rewritten, a
# challenge and upstream-only headers dropped, the gateway's key sent
# instead of the client's credentials, and one reused connection.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/auth_lib.sh"
. "$HERE/edge_lib.sh"
W=$E2E_WORK


if [ ! -x "$BERTH_EDGE" ]; then
	fail "berth-edge binary not found at $BERTH_EDGE"
	berth_done
	exit 1
fi

section "command line"
out=$("$BERTH_EDGE" --version)
expect_match "berth-edge --version" "$out" '^berth-edge [0-9]+\.[0-9]+\.[0-9]+'
"$BERTH_EDGE" --upstream http://127.0.0.1:1 >/dev/null 2>"$W/err"
expect_eq "no credentials: exit status" "$?" 2
expect_match "no credentials: message" "$(cat "$W/err")" 'credentials are required'
"$BERTH_EDGE" --access-key-file /dev/null >/dev/null 2>"$W/err"
expect_eq "no --upstream: exit status" "$?" 2

section "a registry with authentication, and A's content"
auth_start || exit 1
auth_require_auth
auth_new_account A alpha
auth_new_account B beta
auth_new_key A_PUSH_ID A_PUSH "$A"
auth_new_key A_PULL_ID A_PULL "$A" --pull-only
auth_new_key B_PUSH_ID B_PUSH "$B"
as A-push "Bearer $A_PUSH"
make_blob "$W/config" 300 config
make_blob "$W/layer" 100000 layer
apush_blob "$A/app" "$W/config"
apush_blob "$A/app" "$W/layer"
LAYER=$(digest_of "$W/layer")
make_manifest "$W/manifest" "$W/config" "$MT_OCI_CONFIG" "$W/layer"
MANIFEST=$(digest_of "$W/manifest")
for tag in v1 v2 v3; do
	apush_manifest "$A/app" "$tag" "$W/manifest"
done
make_blob "$W/big" 33554432 big
apush_blob "$A/app" "$W/big"
BIG=$(digest_of "$W/big")
as B-push "Bearer $B_PUSH"
apush_blob "$B/app" "$W/config"
apush_blob "$B/app" "$W/layer"
apush_manifest "$B/app" v1 "$W/manifest"

printf '%s\n' "$A_PULL" >"$W/a-pull.key"
chmod 600 "$W/a-pull.key"
edge_start --upstream "$BERTH_URL" --access-key-file "$W/a-pull.key" || exit 1

# pull_checks LABEL: the pull side through the proxy, no credentials.
pull_checks() {
	section "$1: pulls through berth-edge, without credentials"
	through
	areq GET /v2/
	expect_resp 200
	expect_header Docker-Distribution-API-Version 'registry/2\.0'
	expect_no_header WWW-Authenticate
	areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 200
	expect_body_file "$W/manifest"
	expect_header_eq Docker-Content-Digest "$MANIFEST"
	expect_header_eq Content-Type "$MT_OCI_MANIFEST"
	expect_header Content-Length "$(size_of "$W/manifest")"
	areq HEAD "/v2/$A/app/manifests/$MANIFEST" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 200
	expect_header_eq Docker-Content-Digest "$MANIFEST"
	expect_header Content-Length "$(size_of "$W/manifest")"
	areq HEAD "/v2/$A/app/blobs/$LAYER"
	expect_resp 200
	expect_header_eq Docker-Content-Digest "$LAYER"
	expect_header Content-Length 100000
	areq GET "/v2/$A/app/blobs/$LAYER"
	expect_resp 200
	expect_body_file "$W/layer"
	expect_header_eq Docker-Content-Digest "$LAYER"
	areq GET "/v2/$A/app/blobs/$LAYER" -H 'Range: bytes=1000-1999'
	expect_resp 206
	expect_header Content-Range 'bytes 1000-1999/100000'
	dd if="$W/layer" of="$W/slice" bs=1000 skip=1 count=1 status=none
	expect_body_file "$W/slice"
	areq GET "/v2/$A/app/tags/list?n=1"
	expect_resp 200
	expect_json '.tags | join(",")' v1
	expect_link_next "/v2/$A/app/tags/list" 1 v1
	areq GET "/v2/$A/app/tags/list?n=5&last=v1"
	expect_resp 200
	expect_json '.tags | join(",")' v2,v3
	areq GET "/v2/$A/app/referrers/$MANIFEST"
	expect_resp 200
	expect_header_eq Content-Type "$MT_OCI_INDEX"
	expect_json '.manifests | length' 0
	areq GET "/v2/$A/app/referrers/$MANIFEST?artifactType=application/vnd.example.sig.v1"
	expect_resp 200
	expect_header OCI-Filters-Applied artifactType
	areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
	etag=${REQ_H[etag]:-}
	expect_match "manifest ETag through the proxy" "$etag" '^".+"$'
	areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST" -H "If-None-Match: $etag"
	expect_resp 304
	expect_body_empty

	section "$1: upstream errors pass through, the proxy refuses pushes"
	areq GET "/v2/$A/app/manifests/nope"
	expect_resp 404 MANIFEST_UNKNOWN
	expect_header Docker-Distribution-API-Version 'registry/2\.0'
	areq GET "/v2/$B/app/manifests/v1"
	expect_resp 403 DENIED
	expect_no_header WWW-Authenticate
	areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
	expect_resp 405 UNSUPPORTED
	expect_header Docker-Distribution-API-Version 'registry/2\.0'
	areq PUT "/v2/$A/app/manifests/v9" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$W/manifest"
	expect_resp 405 UNSUPPORTED
	areq DELETE "/v2/$A/app/manifests/$MANIFEST"
	expect_resp 405 UNSUPPORTED
	areq GET /v2/_catalog
	expect_resp 405 UNSUPPORTED
	areq GET /v2/token
	expect_resp 405 UNSUPPORTED
	back
	# Nothing was pushed or deleted upstream through the proxy.
	as A-push "Bearer $A_PUSH"
	areq GET "/v2/$A/app/manifests/v9"
	expect_resp 404 MANIFEST_UNKNOWN
	areq HEAD "/v2/$A/app/manifests/$MANIFEST" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 200
}

pull_checks "access key"

section "--allow-push with A's push key: pushes, deletes and the catalog go through"
printf '%s\n' "$A_PUSH" >"$W/a-push.key"
chmod 600 "$W/a-push.key"
PULL_EDGE_PID=$EDGE_PID PULL_EDGE_URL=$EDGE_URL
edge_start --upstream "$BERTH_URL" --access-key-file "$W/a-push.key" --allow-push || exit 1
through
apush_blob "$A/pushed" "$W/config"
apush_blob "$A/pushed" "$W/big" # 32 MiB in one PUT, streamed
# A chunked upload: POST, two PATCHes with Content-Range, then PUT.
areq POST "/v2/$A/pushed/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 202
loc=$(hdr Location)
expect_match "the upload's Location is relative (through the proxy)" "$loc" '^/v2/'
head -c 60000 "$W/layer" >"$W/part1"
tail -c +60001 "$W/layer" >"$W/part2"
areq PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-59999' --data-binary "@$W/part1"
expect_resp 202
expect_header Range '0-59999'
loc=$(hdr Location)
areq PATCH "$loc" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 60000-99999' --data-binary "@$W/part2"
expect_resp 202
loc=$(hdr Location)
sep='?'
[[ $loc == *\?* ]] && sep='&'
areq PUT "$loc${sep}digest=$LAYER" -H 'Content-Length: 0'
expect_resp 201
expect_header_eq Docker-Content-Digest "$LAYER"
apush_manifest "$A/pushed" v1 "$W/manifest"
areq GET /v2/_catalog
expect_resp 200
expect_match "the catalog through the proxy lists the pushed repository" "$REQ_BODY" "$A/pushed"
areq DELETE "/v2/$A/pushed/manifests/v1"
expect_resp 202
back
as A-push "Bearer $A_PUSH"
areq GET "/v2/$A/pushed/blobs/$LAYER"
expect_resp 200
expect_body_file "$W/layer"
areq GET "/v2/$A/pushed/blobs/$(digest_of "$W/big")"
expect_resp 200
expect_body_file "$W/big"
areq GET "/v2/$A/pushed/manifests/v1"
expect_resp 404 MANIFEST_UNKNOWN
edge_stop
# With a pull-only key the upstream's refusal passes through.
edge_start --upstream "$BERTH_URL" --access-key-file "$W/a-pull.key" --allow-push || exit 1
through
areq POST "/v2/$A/pushed/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 403 DENIED
areq PUT "/v2/$A/pushed/manifests/v2" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$W/manifest"
expect_resp 403 DENIED
back
edge_stop
EDGE_PID=$PULL_EDGE_PID EDGE_URL=$PULL_EDGE_URL

section "a 32 MiB blob streams through with flat memory"
before=$(awk '/^VmRSS/ {print $2}' "/proc/$EDGE_PID/status")
through
areq GET "/v2/$A/app/blobs/$BIG"
expect_resp 200
expect_body_file "$W/big"
back
peak=$(awk '/^VmHWM/ {print $2}' "/proc/$EDGE_PID/status")
if [ -n "$before" ] && [ -n "$peak" ] && [ $((peak - before)) -lt 16384 ]; then
	ok "peak resident memory $peak KiB (was $before KiB before the 32 MiB blob)"
else
	fail "berth-edge memory grew from ${before:-?} KiB to a peak of ${peak:-?} KiB for a 32 MiB blob"
fi

section "upstream stopped: 503 with an OCI body"
auth_stop
through
areq GET "/v2/$A/app/manifests/v1"
expect_resp 503 UNAVAILABLE
expect_header Docker-Distribution-API-Version 'registry/2\.0'
expect_match "503 detail names the upstream" "$REQ_BODY" 'unreachable'
areq GET /v2/
expect_resp 503 UNAVAILABLE
back
edge_stop

section "HTTPS upstream, device certificate (mutual TLS)"
auth_make_pki "$W/pki" || exit 1
auth_make_devices "$A" || exit 1
P=$AUTH_PKI
auth_start --data "$BERTH_DATA" --tls-cert "$P/server.crt" --tls-key "$P/server.key" --client-ca "$P/ca.crt" || exit 1
# Without the upstream's CA the proxy cannot verify it: 503, never a pull.
edge_start_unverified() {
	local port
	port=$(e2e_free_port) || return 1
	"$BERTH_EDGE" --listen "127.0.0.1:$port" --upstream "$BERTH_URL" --cert "$P/dev-ok.crt" \
		--key "$P/dev-ok.key" >>"$E2E_TMP/edge-unverified.log" 2>&1 &
	EDGE_PID=$!
	E2E_PIDS+=("$EDGE_PID")
	EDGE_URL=http://127.0.0.1:$port
	for i in $(seq 1 100); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$EDGE_URL/v2/")
		[ "$code" = 000 ] || break
		sleep 0.1
	done
}
edge_start_unverified
expect_eq "unknown upstream CA: GET /v2/ through the proxy" "$code" 503
edge_stop
edge_start --upstream "$BERTH_URL" --cert "$P/dev-ok.crt" --key "$P/dev-ok.key" --ca "$P/ca.crt" || exit 1
AUTH_TLS=(--cacert "$P/ca.crt")
pull_checks "device certificate"
edge_stop
auth_stop

section "scripted upstream: Link and Location rewritten, credentials and headers"
"$E2E_PY" "$HERE/edge_fake_upstream.py" "$W/fake.port" "$W/fake.log" 2>"$W/fake.err" &
E2E_PIDS+=($!)
for i in $(seq 1 100); do
	[ -s "$W/fake.port" ] && break
	sleep 0.1
done
FAKE_URL=http://127.0.0.1:$(cat "$W/fake.port")
printf 'brt_gateway_key\n' >"$W/fake.key"
# One server thread: every request runs where the connection cache is.
edge_start --upstream "$FAKE_URL/" --access-key-file "$W/fake.key" --threads 1 || exit 1
BERTH_URL=$FAKE_URL
through
areq GET "/v2/x/app/tags/list?n=1&last=a%2Bb%20c" -H 'Accept: application/json' -H 'Range: bytes=0-1' \
	-H 'If-None-Match: "e1"' -H 'Authorization: Basic Zm9vOmJhcg==' -H 'Cookie: c=1'
expect_resp 200
expect_header_eq Link '</v2/x/app/tags/list?n=1&last=a>; rel="next"'
expect_no_header X-Upstream-Secret
expect_no_header Set-Cookie
last=$(tail -n 1 "$W/fake.log")
expect_eq "upstream saw the gateway's key, not the client's" "$(jq -r .authorization <<<"$last")" \
	"Bearer brt_gateway_key"
expect_eq "upstream saw Accept" "$(jq -r .accept <<<"$last")" application/json
expect_eq "upstream saw Range" "$(jq -r .range <<<"$last")" "bytes=0-1"
expect_eq "upstream saw If-None-Match" "$(jq -r .if_none_match <<<"$last")" '"e1"'
expect_eq "upstream saw no Cookie" "$(jq -r .cookie <<<"$last")" null
path=$(jq -r .path <<<"$last")
expect_eq "upstream path" "${path%%\?*}" /v2/x/app/tags/list
expect_eq "upstream query n" "$(query_param "http://h$path" n)" 1
expect_eq "upstream query last (decoded)" "$(query_param "http://h$path" last)" "a+b c"
areq GET /v2/x/app/manifests/moved
expect_resp 307
expect_header_eq Location /v2/x/app/manifests/v1
areq GET "/v2/x/app/blobs/sha256:$(printf '0%.0s' $(seq 1 64))"
expect_resp 307
expect_header_eq Location 'http://storage.invalid/blob?sig=1'
areq HEAD /v2/x/app/manifests/challenge
expect_resp 401
expect_no_header WWW-Authenticate
areq GET /v2/x/app/manifests/challenge
expect_resp 401 UNAUTHORIZED
expect_no_header WWW-Authenticate
back
requests=$(wc -l <"$W/fake.log")
connections=$(jq -r .port "$W/fake.log" | sort -u | wc -l)
if [ "$requests" -ge 6 ] && [ "$connections" = 1 ]; then
	ok "$requests upstream requests over $connections connection"
else
	fail "$requests upstream requests over $connections connections (want 1: connections are reused)"
fi
edge_stop
berth_done
