#!/usr/bin/env bash
# Slow clients cannot hold connections: headers have a deadline (from
# accept, and from the first byte of a request on a kept-alive connection),
# small requests a total deadline, blob transfers a minimum rate; an idle
# kept-alive connection is left alone; and a normal client stays served
# while 1100 slow connections from other addresses are open.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/http_lib.sh"
BERTH_AUTO_KEY=1

CFG=$E2E_WORK/config.yml
http_config "$CFG" "header_timeout: 2s" "request_timeout: 4s" "min_rate: 1k" "min_rate_window: 2s" \
	"idle_timeout: 60"
berth_start --config "$CFG" || exit 1
AUTH="Bearer $BERTH_KEY"
R=$BERTH_TENANT/app

section "1100 slow header senders from 20 addresses; a normal client on 127.0.0.1"
SOURCES=$(seq -s, -f '127.0.0.%g' 2 21)
OUT=$(attack slow --sources "$SOURCES" --count 1100 --duration 9 --interval 1 --reconnect \
	--probe-path /v2/ --probe-interval 0.2 --auth "$AUTH")
echo "$OUT"
expect_ge "slow connections opened" "$(jget "$OUT" .attack.opened)" 1100
# Reconnected ones are open at the end, but none lived past the deadline.
expect_le "longest-lived slow connection still open at the end (s)" "$(jget "$OUT" .attack.open_longest_s)" 3.5
expect_ge "slow connections cut" "$(jget "$OUT" .attack.cut)" 1000
expect_ge "earliest cut (s), header deadline 2 s" "$(jget "$OUT" .attack.cut_min_s)" 1.7
expect_le "latest cut (s)" "$(jget "$OUT" .attack.cut_max_s)" 3.5
expect_ge "normal requests" "$(jget "$OUT" .normal.requests)" 40
expect_eq "normal client errors" "$(jget "$OUT" .normal.errors)" 0
expect_eq "normal client: all 200" "$(jget "$OUT" '.normal.statuses | keys | join(",")')" 200
expect_le "normal client p99 latency (ms)" "$(jget "$OUT" .normal.p99_ms)" 1000

section "a small request that drips its body is cut at the request deadline"
printf 'PUT /v2/%s/manifests/slow HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: %s\r\nContent-Length: 1000\r\n\r\n%s' \
	"$R" "$AUTH" "$MT_OCI_MANIFEST" "$(head -c 1000 /dev/zero | tr '\0' ' ')" >"$E2E_WORK/put.req"
OUT=$(attack drip --request "$E2E_WORK/put.req" --interval 0.5 --max 10)
echo "$OUT"
expect_ge "manifest body dripper closed after (s)" "$(jget "$OUT" .closed_after_s)" 3.5
expect_le "manifest body dripper closed after (s)" "$(jget "$OUT" .closed_after_s)" 5.5

section "a request line dripped byte by byte is cut at the header deadline"
printf 'GET /v2/%s/tags/list HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n' "$R" "$AUTH" >"$E2E_WORK/get.req"
# drip sends the headers at once; send them as the "body" of an empty head instead
printf '\r\n\r\n' | cat - "$E2E_WORK/get.req" >"$E2E_WORK/get-drip.req"
OUT=$(attack drip --request "$E2E_WORK/get-drip.req" --interval 0.3 --max 8)
echo "$OUT"
expect_ge "header dripper closed after (s)" "$(jget "$OUT" .closed_after_s)" 1.7
expect_le "header dripper closed after (s)" "$(jget "$OUT" .closed_after_s)" 3.5

# patch_request LOCATION FILE: a raw PATCH of the 24 KiB blob to that upload
# session, written to FILE for attack drip.
patch_request() {
	{
		printf 'PATCH %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: 24576\r\n\r\n' "$1" "$AUTH"
		cat "$E2E_WORK/blob"
	} >"$2"
}

section "a blob upload may take longer than the request deadline at a fair rate"
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
expect_status 202
LOC=$(hdr Location)
make_blob "$E2E_WORK/blob" 24576 slow
patch_request "$LOC" "$E2E_WORK/patch.req"
# 4 KiB every 0.7 s: ~5.7 KiB/s for ~4.2 s, past the 4 s request deadline
OUT=$(attack drip --request "$E2E_WORK/patch.req" --interval 0.7 --chunk 4096 --max 9)
echo "$OUT"
expect_eq "slow-but-fair upload answered" "$(jget "$OUT" .status)" 202
expect_eq "slow-but-fair upload sent everything" "$(jget "$OUT" .sent_body_bytes)" 24576

section "a blob upload below the minimum rate is cut"
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
LOC=$(hdr Location)
patch_request "$LOC" "$E2E_WORK/patch2.req"
# 20 bytes every 0.5 s: 40 B/s, far below 1 KiB/s; the window is 2 s
OUT=$(attack drip --request "$E2E_WORK/patch2.req" --interval 0.5 --chunk 20 --max 12)
echo "$OUT"
expect_ge "trickling upload closed after (s)" "$(jget "$OUT" .closed_after_s)" 1.5
expect_le "trickling upload closed after (s)" "$(jget "$OUT" .closed_after_s)" 5

section "an idle kept-alive connection outlives the header deadline; a stalled next request does not"
# (Bytes of the next request that arrive together with the end of the
# previous one are seen as idle time: such a connection is held to the idle
# timeout like any kept-alive one.  Here the next request starts later.)
OUT=$("$E2E_PY" - "$BERTH_PORT" "$AUTH" <<'PY'
import socket, sys, time, json
port, auth = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
def get():
    s.sendall(("GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n" % auth).encode())
    buf = b""
    while b"\r\n\r\n" not in buf or not buf.endswith(b"{}"):
        d = s.recv(4096)
        if not d:
            return "closed"
        buf += d
    return buf.split(b" ", 2)[1].decode()
first = get()
time.sleep(3.5)
second = get()
# then, a moment later, one byte of a third request and nothing more
time.sleep(1.0)
s.sendall(b"G")
t0 = time.monotonic()
s.settimeout(8)
try:
    gone = s.recv(10) == b""
except OSError:
    gone = True
print(json.dumps({"first": first, "second": second, "cut": gone, "cut_after_s": round(time.monotonic() - t0, 2)}))
PY
)
echo "$OUT"
expect_eq "first request on the connection" "$(jget "$OUT" .first)" 200
expect_eq "request after 3.5 s idle on the same connection" "$(jget "$OUT" .second)" 200
expect_eq "a stalled next request is cut" "$(jget "$OUT" .cut)" true
expect_ge "stalled next request cut after (s)" "$(jget "$OUT" .cut_after_s)" 1.5
expect_le "stalled next request cut after (s)" "$(jget "$OUT" .cut_after_s)" 3.5

section "the server is still well"
req GET /v2/
expect_status 200
berth_done
