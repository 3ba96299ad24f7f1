#!/usr/bin/env bash
# Request framing that two parsers could read two ways (RFC 9112 6.1, 6.3)
# gets 400 and a closed connection, and the bytes after such a body never
# run as another request.  Raw sockets: curl would not send these.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/http_lib.sh"
BERTH_AUTO_KEY=1
berth_start || exit 1
R=$BERTH_TENANT/app

# Each case: the raw request, then "GET /v2/smuggled-N" glued behind its
# body.  Prints one JSON line per case: statuses seen, closed or not, and
# the first response's error code.
"$E2E_PY" - "$BERTH_PORT" "$BERTH_KEY" "$R" >"$E2E_WORK/cases.jsonl" <<'PY'
import json, re, socket, sys, time
port, key, repo = int(sys.argv[1]), sys.argv[2], sys.argv[3]
auth = "Authorization: Bearer %s\r\n" % key
put = "PUT /v2/%s/manifests/t HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/vnd.oci.image.manifest.v1+json\r\n" % (repo, auth)
def smuggle(n):
    return "GET /v2/smuggled-%d HTTP/1.1\r\nHost: x\r\n%s\r\n" % (n, auth)
cases = [
    ("two different Content-Length", put + "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}" + smuggle(1), "ours"),
    ("two equal Content-Length", put + "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}" + smuggle(2), "ours"),
    ("Content-Length and chunked", put + "Content-Length: 60\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggle(3), "ours"),
    ("chunked and Content-Length", put + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggle(4), "ours"),
    ("gzip, chunked", put + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggle(5), "ours"),
    ("chunked, identity", put + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggle(6), "ours"),
    ("two chunked headers", put + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggle(7), "ours"),
    ("identity coding", put + "Transfer-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}" + smuggle(8), "ours"),
    ("space before colon", put + "Content-Length : 2\r\n\r\n{}" + smuggle(9), "ours"),
    ("tab in a header name", put + "Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n" + smuggle(10), "ours"),
    ("HTTP/1.0 with chunked", put.replace("HTTP/1.1", "HTTP/1.0") + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggle(11), "ours"),
    ("Content-Length +2", put + "Content-Length: +2\r\n\r\n{}" + smuggle(12), "any"),
    ("Content-Length 2, 2", put + "Content-Length: 2, 2\r\n\r\n{}" + smuggle(13), "any"),
    ("Content-Length 0x2", put + "Content-Length: 0x2\r\n\r\n{}" + smuggle(14), "any"),
    ("Content-Length -1", put + "Content-Length: -1\r\n\r\n{}" + smuggle(15), "any"),
]
for name, raw, who in cases:
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.sendall(raw.encode())
    got, closed = b"", False
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 3:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            got += d
    except socket.timeout:
        pass
    except OSError:
        closed = True
    s.close()
    # A response glued behind the previous body counts too.
    statuses = [int(x) for x in re.findall(rb"HTTP/1\.[01] (\d{3}) ", got)]
    code = None
    body = got.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in got else b""
    try:
        code = json.loads(body.decode())["errors"][0]["code"]
    except Exception:
        pass
    print(json.dumps({"name": name, "who": who, "statuses": statuses, "closed": closed, "code": code}))
PY

while IFS= read -r line; do
	name=$(jget "$line" .name)
	# libmicrohttpd itself refuses a length it cannot parse (before berthd
	# sees the request, with its own body and a repeated status line);
	# every other case is refused by berthd with an OCI error body.
	expect_eq "$name: first answer" "$(jget "$line" '.statuses[0]')" 400
	expect_eq "$name: only 400s, no second request answered" "$(jget "$line" '[.statuses[] | select(. != 400)] | length')" 0
	expect_eq "$name: connection closed" "$(jget "$line" .closed)" true
	if [ "$(jget "$line" .who)" = ours ]; then
		expect_match "$name: OCI error code" "$(jget "$line" .code)" '^(SIZE_INVALID|UNSUPPORTED)$'
	fi
done <"$E2E_WORK/cases.jsonl"
expect_eq "cases run" "$(wc -l <"$E2E_WORK/cases.jsonl")" 15

section "nothing smuggled ran"
sleep 0.3
if grep -q smuggled "$BERTH_LOG"; then
	fail "a smuggled request reached the server" "$(grep smuggled "$BERTH_LOG" | head -3)"
else
	ok "no smuggled request in the access log"
fi

section "valid framing still works: chunked body, pipelined keep-alive requests"
OUT=$("$E2E_PY" - "$BERTH_PORT" "$BERTH_KEY" <<'PY'
import json, re, socket, sys, time
port, key = int(sys.argv[1]), sys.argv[2]
form = "grant_type=password&username=KEY&password=%s&scope=" % key
chunked = "%x\r\n%s\r\n0\r\n\r\n" % (len(form), form)
raw = ("POST /v2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
       "Transfer-Encoding: chunked\r\n\r\n" + chunked +
       "GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % key +
       "GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % key)
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(raw.encode())
got = b""
t0 = time.monotonic()
while time.monotonic() - t0 < 5:
    d = s.recv(65536)
    if not d:
        break
    got += d
print(json.dumps([int(x) for x in re.findall(rb"HTTP/1\.[01] (\d{3}) ", got)]))
PY
)
expect_eq "chunked token POST, then two pipelined GETs" "$OUT" "[200, 200, 200]"
req PUT "/v2/$R/manifests/x" -H "Content-Type: $MT_OCI_MANIFEST" -H 'Transfer-Encoding: chunked' --data-binary '{}'
expect_status 400
expect_error_code MANIFEST_INVALID
berth_done
