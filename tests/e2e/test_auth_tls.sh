#!/usr/bin/env bash
# TLS and device certificates (issue 3).  berthd serves HTTPS with a
# certificate from a test CA made here with openssl (SAN IP:127.0.0.1 and
# DNS:localhost) and --client-ca set to that CA.  Access keys work over
# HTTPS; a device certificate of account A (OU=<A's id>, CN=<device>) may
# pull A's repositories (manifests, blobs, tags, referrers) and get a token,
# but gets 403 DENIED on push, delete and on B's repositories; device
# certificates from an unknown CA, expired, not yet valid, naming no account
# or no OU are not authenticated (401).  skopeo pulls A's image over mutual
# TLS with --src-cert-dir and cannot push with it.  Finally, without
# --client-ca, client certificates are ignored.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/clients_lib.sh"
clients_private_cache "$0" "$@"
. "$HERE/lib.sh"
. "$HERE/auth_lib.sh"

T_START=$SECONDS
W=$E2E_WORK
clients_need skopeo jq curl openssl

section "test PKI and an HTTPS server with --client-ca"
auth_make_pki "$W/pki" || exit 1
P=$AUTH_PKI
TLS_ARGS=(--tls-cert "$P/server.crt" --tls-key "$P/server.key")
auth_start "${TLS_ARGS[@]}" --client-ca "$P/ca.crt" || exit 1
expect_match "server URL" "$BERTH_URL" '^https://127\.0\.0\.1:[0-9]+$'
auth_require_auth
auth_new_account A alpha
auth_new_account B beta
AUTH_LABEL[$A]=A
AUTH_LABEL[$B]=B
auth_new_key A_PUSH_ID A_PUSH "$A"
auth_new_key A_PULL_ID A_PULL "$A" --pull-only
auth_new_key B_PUSH_ID B_PUSH "$B"
auth_make_devices "$A" || exit 1
BA=$(auth_basic KEY "$A_PUSH")
BB=$(auth_basic KEY "$B_PUSH")

section "HTTPS basics"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$BERTH_URL/v2/")
rc=$?
if [ "$rc" = 60 ] || [ "$rc" = 35 ]; then
	ok "without the test CA curl refuses the server certificate (curl exit $rc)"
else
	fail "curl without --cacert: exit $rc, status $code (want a certificate error)"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$P/ca.crt" \
	--resolve "localhost:$BERTH_PORT:127.0.0.1" "https://localhost:$BERTH_PORT/v2/")
expect_eq "https://localhost (SAN DNS:localhost) verifies, anonymous" "$code" 401
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$BERTH_PORT/v2/")
case $code in
200 | 401) fail "plain HTTP on the TLS port answered $code" ;;
*) ok "plain HTTP on the TLS port is not served ($code)" ;;
esac
as none ""
areq GET /v2/
expect_resp 401 UNAUTHORIZED "Bearer realm=\"$(re_quote "$BERTH_URL")/v2/token\",service=\"berth\""
auth_discover
as A-basic "$BA"
areq GET /v2/
expect_resp 200
as A-bearer "Bearer $A_PUSH"
areq GET /v2/
expect_resp 200

section "seed A/app and B/app over HTTPS with the push keys"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
printf '{}' >"$W/empty"
make_blob "$W/layer" 5000 tls-layer
make_blob "$W/sig" 100 tls-sig
make_blob "$W/probe" 300 tls-probe
make_manifest "$W/m" "$W/cfg" "$MT_OCI_CONFIG" "$W/layer"
make_referrer "$W/ref" "$W/m" "$W/empty" "$W/sig"
M=$(digest_of "$W/m")
L=$(digest_of "$W/layer")
REF=$(digest_of "$W/ref")
PROBE_D=$(digest_of "$W/probe")
for acct in "$A" "$B"; do
	if [ "$acct" = "$A" ]; then as A-basic "$BA"; else as B-basic "$BB"; fi
	for f in cfg layer sig empty; do
		apush_blob "$acct/app" "$W/$f"
	done
	apush_manifest "$acct/app" v1 "$W/m"
	apush_manifest "$acct/app" "$REF" "$W/ref"
done
as A-basic "$BA"
areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 202
A_LOC=$(hdr Location)

section "a device certificate of A pulls A's repository"
as_cert device-A "$P/dev-ok.crt" "$P/dev-ok.key"
areq GET /v2/
expect_resp 200
areq HEAD "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 200
expect_header_eq Docker-Content-Digest "$M"
areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 200
expect_body_file "$W/m"
areq GET "/v2/$A/app/manifests/$M" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 200
areq HEAD "/v2/$A/app/blobs/$L"
expect_resp 200
areq GET "/v2/$A/app/blobs/$L"
expect_resp 200
expect_body_file "$W/layer"
areq GET "/v2/$A/app/blobs/$L" -H 'Range: bytes=0-99'
expect_resp 206
areq GET "/v2/$A/app/tags/list"
expect_resp 200
expect_json '.tags' '["v1"]'
areq GET "/v2/$A/app/referrers/$M"
expect_resp 200
expect_json '[.manifests[].digest] | join(",")' "$REF"
areq GET "/v2/$A/nop/tags/list"
expect_resp 404 NAME_UNKNOWN
areq GET /v2/_catalog
echo "note: a device's GET /v2/_catalog answers $REQ_STATUS"
if [ "$REQ_STATUS" = 200 ]; then
	expect_json ".repositories | map(startswith(\"$A/\")) | all" true
else
	expect_resp 403 DENIED
fi

section "...but gets 403 DENIED on push and delete"
areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 403 DENIED
areq POST "/v2/$A/app/blobs/uploads/?digest=$PROBE_D" -H 'Content-Type: application/octet-stream' --data-binary "@$W/probe"
expect_resp 403 DENIED
areq PATCH "$A_LOC" -H 'Content-Type: application/octet-stream' --data-binary "@$W/probe"
expect_resp 403 DENIED
areq PUT "$A_LOC?digest=$PROBE_D" -H 'Content-Type: application/octet-stream' --data-binary "@$W/probe"
expect_resp 403 DENIED
areq DELETE "$A_LOC"
expect_resp 403 DENIED
areq PUT "/v2/$A/app/manifests/v2" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$W/m"
expect_resp 403 DENIED
areq POST "/v2/$A/new/blobs/uploads/?mount=$L&from=$A/app" -H 'Content-Length: 0'
expect_resp 403 DENIED
areq DELETE "/v2/$A/app/manifests/v1"
expect_resp 403 DENIED
areq DELETE "/v2/$A/app/manifests/$M"
expect_resp 403 DENIED
areq DELETE "/v2/$A/app/blobs/$L"
expect_resp 403 DENIED
areq GET "/v2/library/app/tags/list"
expect_resp 400 NAME_INVALID

section "...and 403 DENIED on B's repositories, existing or not"
for op in tags man blob; do
	for r in "$B/app" "$B/nop"; do
		case $op in
		tags) areq GET "/v2/$r/tags/list" ;;
		man) areq GET "/v2/$r/manifests/v1" -H "Accept: $MT_OCI_MANIFEST" ;;
		blob) areq GET "/v2/$r/blobs/$L" ;;
		esac
		expect_resp 403 DENIED
		if [ "$r" = "$B/app" ]; then
			fp=${REQ_FP//"$B/app"/"<repo>"}
		elif [ "$fp" = "${REQ_FP//"$B/nop"/"<repo>"}" ]; then
			ok "$op: same answer for B/app and B/nop"
		else
			fail "$op: answers for B/app and B/nop differ"
		fi
	done
done
areq POST "/v2/$B/app/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 403 DENIED
areq DELETE "/v2/$B/app/manifests/$M"
expect_resp 403 DENIED

section "nothing changed in A/app"
as A-basic "$BA"
areq GET "/v2/$A/app/tags/list"
expect_json '.tags' '["v1"]'
areq HEAD "/v2/$A/app/blobs/$PROBE_D"
expect_resp 404
areq GET "$A_LOC"
expect_resp 204
expect_header Range '0-0|0--1'
areq HEAD "/v2/$A/new/blobs/$L"
expect_resp 404

section "a device gets a token by its certificate"
as_cert device-A "$P/dev-ok.crt" "$P/dev-ok.key"
areq GET "$AUTH_REALM" -G --data-urlencode "service=$AUTH_SERVICE" \
	--data-urlencode "scope=repository:$A/app:pull,push" --data-urlencode "scope=repository:$B/app:pull"
expect_resp 200
DTOK=$(jq -r '.token // empty' <"$REQ_BODY_FILE")
as device-token "Bearer $DTOK"
areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 200
areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
echo "note: a device's token pushing answers $REQ_STATUS"
if [ "$REQ_STATUS" = 401 ]; then
	expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$(re_quote "$A/app"):pull,push")"
else
	expect_resp 403 DENIED
fi
areq GET "/v2/$B/app/tags/list"
expect_resp 403 DENIED

section "device certificates that do not authenticate: 401"
for d in rogue expired future noaccount badou noou; do
	as_cert "device-$d" "$P/dev-$d.crt" "$P/dev-$d.key"
	areq GET /v2/
	expect_resp 401 UNAUTHORIZED "$(challenge_re)"
	areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$(re_quote "$A/app"):pull")"
	areq GET "$AUTH_REALM" -G --data-urlencode "service=$AUTH_SERVICE" --data-urlencode "scope=repository:$A/app:pull"
	expect_resp 401 UNAUTHORIZED
done
# A certificate presented with a key it does not match cannot even be used
# by curl; a valid certificate plus a bad Basic password is not tested (the
# contract does not say which credential wins).

section "skopeo over mutual TLS with --src-cert-dir"
clients_content small
export TMPDIR=$W/tmp
mkdir -p "$TMPDIR"
export REGISTRY_AUTH_FILE=$W/auth.json
printf '{}\n' >"$REGISTRY_AUTH_FILE"
SK=(skopeo --insecure-policy --tmpdir "$TMPDIR")
CL_TMP=$W/cl
mkdir -p "$CL_TMP"
CL_STEP_N=0
REG=127.0.0.1:$BERTH_PORT
SMALL=$(content_field small 3)
# Cert directories: CA only; CA + device pair; CA + rogue pair.
mkdir -p "$W/certs-ca" "$W/certs-dev" "$W/certs-rogue"
cp "$P/ca.crt" "$W/certs-ca/ca.crt"
cp "$P/ca.crt" "$W/certs-dev/ca.crt"
cp "$P/dev-ok.crt" "$W/certs-dev/client.cert"
cp "$P/dev-ok.key" "$W/certs-dev/client.key"
cp "$P/ca.crt" "$W/certs-rogue/ca.crt"
cp "$P/dev-rogue.crt" "$W/certs-rogue/client.cert"
cp "$P/dev-rogue.key" "$W/certs-rogue/client.key"
step "skopeo pushes small:v1 to A over HTTPS with the push key" \
	"${SK[@]}" copy --dest-cert-dir "$W/certs-ca" --dest-creds "KEY:$A_PUSH" \
	"oci:$CONTENT/small:v1" "docker://$REG/$A/small:v1"
step "skopeo pushes small:v1 to B with B's key" \
	"${SK[@]}" copy --dest-cert-dir "$W/certs-ca" --dest-creds "KEY:$B_PUSH" \
	"oci:$CONTENT/small:v1" "docker://$REG/$B/small:v1"
step "the device pulls A's small:v1 into dir: (mutual TLS, no key)" \
	"${SK[@]}" copy --src-cert-dir "$W/certs-dev" "docker://$REG/$A/small:v1" "dir:$W/pulled"
step "pulled manifest and blobs verified" verify_dir "$W/pulled" "$SMALL"
device_inspect() {
	local d
	d=$("${SK[@]}" inspect --cert-dir "$W/certs-dev" --raw "docker://$REG/$A/small:v1" | sha256_stdin) || return 1
	echo "digest $d"
	[ "$d" = "$SMALL" ]
}
step "skopeo inspect --raw as the device: same digest" device_inspect
device_tags() {
	"${SK[@]}" list-tags --cert-dir "$W/certs-dev" "docker://$REG/$A/small" | tee "$W/tags.json"
	jq -e '.Tags == ["v1"]' "$W/tags.json" >/dev/null
}
step "skopeo list-tags as the device" device_tags
step "the device cannot push to A (copy dir: -> A/pushed:v1 fails)" refused -- \
	"${SK[@]}" copy --dest-cert-dir "$W/certs-dev" "dir:$W/pulled" "docker://$REG/$A/pushed:v1"
step "the device cannot overwrite A/small:v2 either" refused -- \
	"${SK[@]}" copy --dest-cert-dir "$W/certs-dev" "dir:$W/pulled" "docker://$REG/$A/small:v2"
step "the device cannot delete A/small:v1" refused -- \
	"${SK[@]}" delete --cert-dir "$W/certs-dev" "docker://$REG/$A/small:v1"
step "the device cannot pull B's image" refused -- \
	"${SK[@]}" copy --src-cert-dir "$W/certs-dev" "docker://$REG/$B/small:v1" "dir:$W/pulled-b"
step "a certificate from another CA cannot pull A's image" refused -- \
	"${SK[@]}" copy --src-cert-dir "$W/certs-rogue" "docker://$REG/$A/small:v1" "dir:$W/pulled-rogue"
step "no certificate and no key: pull refused" refused -- \
	"${SK[@]}" copy --src-cert-dir "$W/certs-ca" "docker://$REG/$A/small:v1" "dir:$W/pulled-anon"
as A-basic "$BA"
areq GET "/v2/$A/pushed/tags/list"
expect_resp 404 NAME_UNKNOWN
areq GET "/v2/$A/small/tags/list"
expect_json '.tags' '["v1"]'

SAVED_DATA=$BERTH_DATA
auth_stop

section "auth.device.account_field: O (config file; TLS by flags)"
auth_issue "$P" "$P/dev-o" "/O=$A/OU=not-an-account/CN=gw-o" client || fail "issuing dev-o failed"
printf 'auth:\n  device:\n    account_field: O\n' >"$W/field.yml"
if auth_start --data "$SAVED_DATA" "${TLS_ARGS[@]}" --client-ca "$P/ca.crt" --config "$W/field.yml"; then
	as_cert device-by-O "$P/dev-o.crt" "$P/dev-o.key"
	areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 200
	areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
	expect_resp 403 DENIED
	areq GET "/v2/$B/app/tags/list"
	expect_resp 403 DENIED
	# The OU-named device no longer identifies (its O is "Berth e2e").
	as_cert device-A-by-OU "$P/dev-ok.crt" "$P/dev-ok.key"
	areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 401 UNAUTHORIZED
	auth_stop
fi

section "TLS from the config file: http.tls {certificate, key, clientcas: [FILE]}"
cat >"$W/tls.yml" <<EOF
http:
  tls:
    certificate: $P/server.crt
    key: $P/server.key
    clientcas: [$P/ca.crt]
EOF
if auth_start --data "$SAVED_DATA" --https --config "$W/tls.yml"; then
	as A-basic "$BA"
	areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 200
	as_cert device-A "$P/dev-ok.crt" "$P/dev-ok.key"
	areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 200
	areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
	expect_resp 403 DENIED
	as_cert device-rogue "$P/dev-rogue.crt" "$P/dev-rogue.key"
	areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 401 UNAUTHORIZED
	auth_stop
fi

section "without --client-ca, client certificates are ignored"
auth_start --data "$SAVED_DATA" "${TLS_ARGS[@]}" || exit 1
as_cert device-A-no-client-ca "$P/dev-ok.crt" "$P/dev-ok.key"
areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 401 UNAUTHORIZED
as A-basic "$BA"
areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 200
auth_stop

echo "total $((SECONDS - T_START)) s"
berth_done
