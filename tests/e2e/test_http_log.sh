#!/usr/bin/env bash
# Log forging: whatever bytes a client puts in a path or method, the access
# log keeps one line per request, with the client's control characters,
# non-ASCII bytes, backslashes, quotes and spaces escaped as \xHH.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/http_lib.sh"
BERTH_AUTO_KEY=1
berth_start || exit 1
FAKE='2001-01-01T00:00:00.000Z info access method=DELETE path=/v2/forged status=202'
ENC_FAKE=${FAKE// /%20}

section "forged lines in paths, with and without credentials"
req GET "/v2/x%0a$ENC_FAKE" -H 'Authorization:'
expect_status_in 401 404
req GET "/v2/x%0d%0a$ENC_FAKE"
expect_status 404
req GET "/v2/$BERTH_TENANT/app/tags/list%0a$ENC_FAKE"
expect_status_in 400 404
req GET '/v2/esc%1b%5b31mred%7f%c3%a9%5cback%22quote%20space%09tab'
expect_status 404
# Raw bytes curl would not send: a CR, a bare escape and a high byte in
# the request target, and a strange method.
"$E2E_PY" - "$BERTH_PORT" <<'PY'
import socket, sys
port = int(sys.argv[1])
for raw in (b"GET /v2/raw\x1b[2J\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"FORGE\x7f /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.sendall(raw)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
PY
sleep 0.3

section "the log"
if grep -q '^2001-01-01' "$BERTH_LOG" || grep -q ' path=/v2/forged' "$BERTH_LOG"; then
	fail "a forged line is in the log" "$(grep -n '2001-01-01\|forged' "$BERTH_LOG" | head -3)"
else
	ok "no forged line"
fi
bad=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (debug|info|warn|error) ' "$BERTH_LOG")
expect_eq "log lines not starting with a timestamp and level" "$bad" 0
if LC_ALL=C grep -qP '[^\x20-\x7e]' "$BERTH_LOG"; then
	fail "raw control or non-ASCII bytes in the log" "$(LC_ALL=C grep -nP '[^\x20-\x7e]' "$BERTH_LOG" | head -3 | cat -v)"
else
	ok "only printable ASCII in the log"
fi
if grep -qF 'path=/v2/x\x0a2001-01-01T00:00:00.000Z\x20info\x20access\x20method=DELETE\x20path=/v2/forged\x20status=202 status=' "$BERTH_LOG"; then
	ok "the forged text is logged escaped, in its own request's line"
else
	fail "escaped path not found in the log"
fi
if grep -qF 'path=/v2/esc\x1b[31mred\x7f\xc3\xa9\x5cback\x22quote\x20space\x09tab status=404' "$BERTH_LOG"; then
	ok "escape, DEL, UTF-8, backslash, quote, space and tab escaped"
else
	fail "escaped special characters not found in the log"
fi
expect_eq "access lines with exactly one status= field" \
	"$(grep ' access ' "$BERTH_LOG" | grep -c ' status=.* status=')" 0
berth_done
