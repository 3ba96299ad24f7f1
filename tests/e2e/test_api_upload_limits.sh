#!/bin/bash
# End-to-end: upload sessions are bounded and end.  A per-account cap on
# open sessions (429 TOOMANYREQUESTS with Retry-After, other accounts
# unaffected), expiry of idle sessions with their bytes, the data of a
# request whose client went away mid-body removed at once, the start-up sweep
# of upload data that no session owns (left by kill -9 during a monolithic
# upload), and a repository that enters the catalog only once it holds
# something.
BERTH_AUTO_KEY=1
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CAP=5
CONFIG=$E2E_WORK/config.yml
cat >"$CONFIG" <<YAML
uploads:
  max_per_account: $CAP
  expire_after: 3s
YAML
berth_start --config "$CONFIG" || exit 1
R=$BERTH_TENANT/limits
W=$E2E_WORK

uploads_on_disk() { find "$BERTH_DATA/uploads" -type f | wc -l; }

section "at most $CAP open sessions per account"
LOCS=()
for i in $(seq 1 $CAP); do
	req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
	[ "$REQ_STATUS" = 202 ] || fail_resp "session $i: status $REQ_STATUS"
	LOCS+=("$(hdr Location)")
done
ok "$CAP sessions opened"
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
expect_status 429
expect_error_code TOOMANYREQUESTS
expect_header Retry-After '^[0-9]+$'
# Another repository of the same account shares the cap...
req POST "/v2/$BERTH_TENANT/elsewhere/blobs/uploads/" -H 'Content-Length: 0'
expect_status 429
# ...a monolithic push (no session) is not held back by it...
make_blob "$W/mono" 3000 mono
req POST "/v2/$BERTH_TENANT/mono/blobs/uploads/?digest=$(digest_of "$W/mono")" -H 'Content-Type: application/octet-stream' \
	--data-binary "@$W/mono"
expect_status 201
# ...and another account has its own.
OTHER=1234567890abcdef1234567890abcdef
"$BERTHD" account create --id "$OTHER" --data-dir "$BERTH_DATA" >/dev/null
OTHER_KEY=$("$BERTHD" key create --account "$OTHER" --data-dir "$BERTH_DATA")
OTHER_KEY=${OTHER_KEY#* }
req POST "/v2/$OTHER/app/blobs/uploads/" -H 'Content-Length: 0' -H "Authorization: Bearer $OTHER_KEY"
expect_status 202
# Ending a session frees its place (on a loaded machine it may already be
# past the 3 s expiry: gone either way).
req DELETE "${LOCS[0]}"
expect_status_in 204 404
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
expect_status 202
LOCS[0]=$(hdr Location)

section "a repository with nothing but sessions is not in the catalog"
req GET "/v2/_catalog"
expect_status 200
expect_json '.repositories | index("'"$R"'") == null' true
expect_json '.repositories | index("'"$BERTH_TENANT"'/elsewhere") == null' true

section "idle sessions expire with their bytes"
make_blob "$W/part" 70000 part
# The sessions above may already be past the 3 s expiry on a loaded
# machine: write into a fresh one (in the place of LOCS[1]).
req DELETE "${LOCS[1]}"
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
LOCS[1]=$(hdr Location)
req PATCH "${LOCS[1]}" -H 'Content-Type: application/octet-stream' --data-binary "@$W/part"
expect_status 202
before=$(uploads_on_disk)
expect_match "upload data on disk while the session lives" "$before" '^[1-9][0-9]*$'
# expire_after 3 s; the janitor looks every second.
sleep 5.5
for loc in "${LOCS[@]}"; do
	req GET "$loc"
	[ "$REQ_STATUS" = 404 ] || fail_resp "expired session still answers $REQ_STATUS"
done
ok "all $CAP sessions answer 404 after expiry"
req PATCH "${LOCS[1]}" -H 'Content-Type: application/octet-stream' --data-binary "@$W/part"
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN
expect_eq "upload files left after expiry" "$(uploads_on_disk)" 0
push_blob "$R" "$W/mono" && ok "a push works again after expiry"
req GET "/v2/_catalog"
expect_json '.repositories | index("'"$R"'") != null' true

section "a session whose data was lost ends with 404, not a broken resume"
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
expect_status 202
LOC=$(hdr Location)
ID=${LOC##*/}
ID=${ID%%\?*}
head -c 1000 "$W/part" >"$W/part1"
req PATCH "$LOC" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-999' --data-binary "@$W/part1"
expect_status 202
truncate -s 10 "$BERTH_DATA/uploads/$ID"/*
req PATCH "$LOC" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 1000-1999' \
	--data-binary "@$W/part1"
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN
req GET "$LOC"
expect_status 404
expect_eq "its data is gone too" "$(find "$BERTH_DATA/uploads" -name "$ID" | wc -l)" 0

section "a client that goes away mid-body leaves no data behind"
# Monolithic (into a blob of its own) and chunked (into a session),
# bodies small enough to be written as they come and large enough to go
# through the upload ring: the request's attempt goes when the connection
# does, not at the next sweep.  A session itself stays, at the offset its
# last acknowledged chunk reached.
for size in 300000 $((5 * 1024 * 1024)); do
	make_blob "$W/gone" "$size" "gone$size"
	DIGEST=$(digest_of "$W/gone")
	for kind in monolithic chunked; do
		if [ "$kind" = monolithic ]; then
			path="/v2/$R/blobs/uploads/?digest=$DIGEST"
			method=POST
		else
			req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
			expect_status 202
			path=$(hdr Location)
			method=PATCH
		fi
		# Announce the whole body, send all of it but the last 1000 bytes
		# and close the connection at once: the close arrives with bytes
		# the server has still to read.
		"$E2E_PY" - "$BERTH_PORT" "$method" "$path" "$W/gone" "$BERTH_KEY" <<'PY'
import socket, sys
port, method, path, name, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
body = open(name, "rb").read()
s = socket.create_connection(("127.0.0.1", port))
s.sendall((f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
           f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n").encode())
s.sendall(body[:-1000])
s.close()
PY
		# The request ends when the server sees the close: within 2 s
		# (sessions here expire after 3 s, which would hide a leak).
		for i in $(seq 1 20); do
			[ "$(find "$BERTH_DATA/uploads" -type f -size +0 | wc -l)" = 0 ] && break
			sleep 0.1
		done
		if [ "$kind" = monolithic ]; then
			expect_eq "$kind $size: no upload data left" "$(uploads_on_disk)" 0
			req HEAD "/v2/$R/blobs/$DIGEST"
			expect_status 404
		else
			expect_eq "$kind $size: no attempt left beside the session's" \
				"$(find "$BERTH_DATA/uploads" -type f -size +0 | wc -l)" 0
			req GET "$path"
			expect_status 204
			expect_eq "$kind $size: the session is still at 0" "$(hdr Range)" "0-0"
			req DELETE "$path"
			expect_status 204
		fi
	done
done
expect_eq "nothing left in uploads/" "$(uploads_on_disk)" 0
# A client that sends its whole request and then closes its side, waiting
# for the answer, is not taken for gone: 5 such pushes all get 201.
make_blob "$W/half" $((3 * 1024 * 1024)) half
DIGEST=$(digest_of "$W/half")
statuses=$("$E2E_PY" - "$BERTH_PORT" "/v2/$R/blobs/uploads/?digest=$DIGEST" "$W/half" "$BERTH_KEY" <<'PY'
import socket, sys
port, path, name, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
body = open(name, "rb").read()
out = []
for i in range(5):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n"
               f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(30)
    answer = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        answer += d
    s.close()
    out.append(answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else "none")
print(" ".join(out))
PY
)
expect_eq "half-closed pushes" "$statuses" "201 201 201 201 201"
req DELETE "/v2/$R/blobs/$DIGEST"
expect_status 202

section "kill -9 during a monolithic upload: the start-up sweep removes its data"
make_blob "$W/big" $((8 * 1024 * 1024)) big
DIGEST=$(digest_of "$W/big")
curl -s -o /dev/null --max-time 20 --limit-rate 400k "${BERTH_AUTH_HDR[@]}" -X POST \
	-H 'Content-Type: application/octet-stream' --data-binary "@$W/big" \
	"$BERTH_URL/v2/$R/blobs/uploads/?digest=$DIGEST" &
CURL_PID=$!
for i in $(seq 1 50); do
	[ "$(find "$BERTH_DATA/uploads" -type f -size +100k | wc -l)" -gt 0 ] && break
	sleep 0.1
done
expect_match "a partial monolithic upload is on disk" "$(find "$BERTH_DATA/uploads" -type f -size +100k | wc -l)" '^[1-9]'
berth_kill9
kill "$CURL_PID" 2>/dev/null
wait "$CURL_PID" 2>/dev/null
expect_match "the kill left it behind" "$(uploads_on_disk)" '^[1-9]'
berth_restart || exit 1
expect_eq "upload files after restart" "$(uploads_on_disk)" 0
expect_match "the sweep is logged" "$(grep -c 'removed [1-9][0-9]* orphan uploads' "$BERTH_LOG")" '^[1-9]'
req HEAD "/v2/$R/blobs/$DIGEST"
expect_status 404

berth_stop
expect_eq "clean exit" "$BERTH_EXIT" 0
berth_done
