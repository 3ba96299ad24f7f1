#!/bin/bash
# End-to-end: the base endpoint /v2/, the headers every response carries
# (errors included), the OCI error document on every 4xx, the startup and
# access-log lines, and a SIGTERM that lets an in-flight download finish.
BERTH_AUTO_KEY=1 # every request carries an access key of the test account
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$BERTH_TENANT/base
berth_start || exit 1

section "version check"
req GET /v2/
expect_status 200
expect_header Docker-Distribution-API-Version 'registry/2\.0'
expect_header Content-Length '[0-9]+'
req HEAD /v2/
expect_status 200
expect_header Docker-Distribution-API-Version 'registry/2\.0'

section "berthd --version"
if v=$("$BERTHD" --version) && [[ "$v" =~ ^berthd\ [0-9]+\.[0-9]+\.[0-9]+ ]]; then
	ok "berthd --version: $v"
else
	fail "berthd --version printed '$v'"
fi

section "startup line"
if grep -q "listening on 127.0.0.1:$BERTH_PORT" "$BERTH_LOG"; then
	ok "log has 'listening on 127.0.0.1:$BERTH_PORT'"
else
	fail "log lacks 'listening on 127.0.0.1:$BERTH_PORT'"
fi

section "errors: status, API version header, OCI error body"
ZERO=sha256:0000000000000000000000000000000000000000000000000000000000000000
UUID=0123456789abcdef0123456789abcdef
# method path status code(s)
while IFS='|' read -r m p st codes; do
	[ -n "$m" ] || continue
	req "$m" "$p"
	expect_status "$st"
	expect_header Docker-Distribution-API-Version 'registry/2\.0'
	if [ "$m" != HEAD ]; then
		if [ -n "$codes" ]; then
			# shellcheck disable=SC2086
			expect_error_code_in $codes
		else
			expect_oci_error
		fi
	fi
done <<EOF
GET|/v2/$R/blobs/$ZERO|404|BLOB_UNKNOWN
HEAD|/v2/$R/blobs/$ZERO|404|
GET|/v2/$R/manifests/latest|404|MANIFEST_UNKNOWN NAME_UNKNOWN
HEAD|/v2/$R/manifests/latest|404|
GET|/v2/$R/tags/list|404|NAME_UNKNOWN
GET|/v2/$R/blobs/uploads/$UUID|404|BLOB_UPLOAD_UNKNOWN
DELETE|/v2/$R/blobs/uploads/$UUID|404|BLOB_UPLOAD_UNKNOWN
GET|/v2/$R/blobs/sha256:1234|400|DIGEST_INVALID
GET|/v2/$BERTH_TENANT/Upper/tags/list|400|NAME_INVALID
GET|/v2/$R/no-such-endpoint|404|
GET|/|404|
GET|/v3/|404|
GET|/v2/_nope|404|
EOF

section "content types of errors and successes"
req GET "/v2/$R/blobs/$ZERO"
expect_header Content-Type 'application/json(; *charset=utf-8)?'

section "access log"
# Every request above got one access-log line with method, path and status.
sleep 0.2
if grep -E 'GET' "$BERTH_LOG" | grep -F "/v2/$R/tags/list" | grep -q '404'; then
	ok "access log has the GET tags/list 404 line"
else
	fail "access log lacks a line with GET /v2/$R/tags/list 404"
fi
if grep -F "/v2/$R/blobs/uploads/$UUID" "$BERTH_LOG" | grep -q DELETE; then
	ok "access log has the DELETE upload line"
else
	fail "access log lacks the DELETE upload line"
fi

section "HEAD sends no body (checked on a kept-alive connection)"
# head_then_get PATH: HEAD PATH and GET /v2/ pipelined on one connection; the
# second answer must start right after the first one's headers.
head_then_get() {
	"$E2E_PY" - "$BERTH_PORT" "$1" "$BERTH_KEY" <<'PY'
import socket, sys
port, path, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
auth = "Authorization: Bearer %s\r\n" % key if key else ""
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(("HEAD %s HTTP/1.1\r\nHost: t\r\n%s\r\n"
           "GET /v2/ HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n\r\n" % (path, auth, auth)).encode())
data = b""
while True:
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        break
    if not chunk:
        break
    data += chunk
head, _, rest = data.partition(b"\r\n\r\n")
status = head.split(b"\r\n", 1)[0].decode("latin-1")
if rest.startswith(b"HTTP/1.1 200"):
    print("ok " + status)
else:
    print("body after HEAD (%s): %r" % (status, rest[:60]))
PY
}
make_blob "$E2E_WORK/hb" 5000 headbody
push_blob "$R" "$E2E_WORK/hb"
HB=$BLOB_DIGEST
printf '{}' >"$E2E_WORK/empty"
push_blob "$R" "$E2E_WORK/empty"
make_manifest "$E2E_WORK/hm" "$E2E_WORK/empty" application/vnd.oci.empty.v1+json "$E2E_WORK/hb"
push_manifest "$R" head "$E2E_WORK/hm"
expect_status 201
for p in /v2/ "/v2/$R/blobs/$HB" "/v2/$R/manifests/head" "/v2/$R/blobs/$ZERO" \
	"/v2/$R/manifests/nothere" "/v2/$R/blobs/sha256:12" "/v2/$BERTH_TENANT/Bad/manifests/x"; do
	out=$(head_then_get "$p")
	expect_match "HEAD ${p//$BERTH_TENANT/T} then GET on one connection" "$out" '^ok HTTP/1\.1 [0-9]{3}'
done

section "SIGTERM drains an in-flight download and exits 0"
make_blob "$E2E_WORK/big" $((16 * 1024 * 1024)) drain
push_blob "$R" "$E2E_WORK/big"
BIG=$BLOB_DIGEST
# A slow reader (8 MiB/s: about 2 s for 16 MiB) is still downloading when the
# server is told to stop.
curl -s --max-time 60 --limit-rate 8M -o "$E2E_WORK/big.out" -w '%{http_code}' "${BERTH_AUTH_HDR[@]}" \
	"$BERTH_URL/v2/$R/blobs/$BIG" >"$E2E_WORK/big.status" 2>/dev/null &
CURL_PID=$!
sleep 0.5
berth_stop
rc=$?
wait "$CURL_PID"
expect_eq "berthd exit status after SIGTERM" "$rc" 0
expect_eq "in-flight download status" "$(cat "$E2E_WORK/big.status")" 200
if cmp -s "$E2E_WORK/big" "$E2E_WORK/big.out"; then
	ok "in-flight download completed intact"
else
	fail "in-flight download truncated ($(size_of "$E2E_WORK/big.out") of $(size_of "$E2E_WORK/big") bytes)"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BERTH_URL/v2/" 2>/dev/null)
expect_eq "no answer after exit" "$code" 000

section "restart on the same data"
berth_restart || exit 1
req HEAD "/v2/$R/blobs/$BIG"
expect_status 200
expect_header Content-Length $((16 * 1024 * 1024))

berth_done
