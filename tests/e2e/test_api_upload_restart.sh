#!/bin/bash
# End-to-end: what a chunked upload's acknowledged chunks survive.  A 202
# is not synced to the disk (the commit syncs the whole blob before its
# 201), so: after berthd dies (kill -9) the session resumes where it was
# acknowledged and completes with the right bytes; after the machine
# itself restarted (a power cut, a kernel crash: simulated by a session
# row that names another boot) the session is unknown (404
# BLOB_UPLOAD_UNKNOWN), never resumed or committed over bytes the disk may
# have lost, and the client starts again.  BERTH_FS_SYNC_CHUNKS=1 syncs
# every chunk before its 202, and such sessions survive a restart.
BERTH_AUTO_KEY=1
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v sqlite3 >/dev/null || { fail "sqlite3 is not installed (scripts/test.sh installs it)"; exit 1; }

berth_start || exit 1
R=$BERTH_TENANT/restart
W=$E2E_WORK
MIB=1048576
OTHER_BOOT=00000000-1111-2222-3333-444444444444

# chunk FILE LOC FROM TO: PATCH bytes FROM..TO (inclusive) of FILE; sets LOC.
chunk() {
	local file=$1 from=$3 to=$4
	tail -c +$((from + 1)) "$file" | head -c $((to - from + 1)) >"$W/piece"
	req PATCH "$2" -H 'Content-Type: application/octet-stream' -H "Content-Range: $from-$to" \
		--data-binary "@$W/piece"
	[ "$REQ_STATUS" = 202 ] || fail_resp "PATCH $from-$to: status $REQ_STATUS"
	LOC=$(hdr Location)
}

# begin NAME: a new session in $R, its Location in LOC.
begin() {
	req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
	expect_status 202
	LOC=$(hdr Location)
}

# finish: close the session at LOC with the blob's digest, read the blob
# back whole, and delete it again.
finish() {
	req PUT "$(with_query "$LOC" "digest=$DIGEST")" -H 'Content-Length: 0'
	expect_status 201
	req GET "/v2/$R/blobs/$DIGEST"
	expect_status 200
	expect_body_file "$W/blob"
	req DELETE "/v2/$R/blobs/$DIGEST"
	expect_status 202
}

backend_state() {
	sqlite3 -cmd '.timeout 10000' "$BERTH_DATA/meta.db" \
		"SELECT CAST(backend_state AS TEXT) FROM uploads WHERE id = '$1'"
}

# The session id is the last path component of its Location.
session_id() {
	local p=${1%%\?*}
	printf '%s\n' "${p##*/}"
}

make_blob "$W/blob" $((3 * MIB + 123)) restart
DIGEST=$(digest_of "$W/blob")

section "kill -9 between chunks: the session resumes and completes"
begin
chunk "$W/blob" "$LOC" 0 $((MIB - 1))
chunk "$W/blob" "$LOC" $MIB $((2 * MIB - 1))
ID=$(session_id "$LOC")
STATE=$(backend_state "$ID")
BOOT=$(cat /proc/sys/kernel/random/boot_id)
expect_match "the session's state names this boot" "${STATE%%$'\n'*}" "^boot $BOOT$"
berth_kill9
berth_restart || exit 1
req GET "$LOC"
expect_status 204
expect_header_eq Range "0-$((2 * MIB - 1))"
chunk "$W/blob" "$LOC" $((2 * MIB)) $((3 * MIB + 122))
finish

section "a machine restart between chunks: the session is unknown, the client starts again"
begin
chunk "$W/blob" "$LOC" 0 $((MIB - 1))
chunk "$W/blob" "$LOC" $MIB $((2 * MIB - 1))
ID=$(session_id "$LOC")
berth_stop
sqlite3 -cmd '.timeout 10000' "$BERTH_DATA/meta.db" \
	"UPDATE uploads SET backend_state = CAST(replace(CAST(backend_state AS TEXT), '$BOOT', '$OTHER_BOOT') AS BLOB) WHERE id = '$ID'"
STATE=$(backend_state "$ID")
expect_match "the row now names another boot" "${STATE%%$'\n'*}" "^boot $OTHER_BOOT$"
berth_restart || exit 1
tail -c +$((2 * MIB + 1)) "$W/blob" >"$W/rest"
req PATCH "$LOC" -H 'Content-Type: application/octet-stream' -H "Content-Range: $((2 * MIB))-$((3 * MIB + 122))" \
	--data-binary "@$W/rest"
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN
if grep -q "not yet on disk when the machine restarted" "$BERTH_LOG"; then
	ok "the log says why the session ended"
else
	fail "no log line on the session lost in a restart"
fi
req PUT "$(with_query "$LOC" "digest=$DIGEST")" -H 'Content-Length: 0'
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN
req HEAD "/v2/$R/blobs/$DIGEST"
expect_status 404
if [ -z "$(find "$BERTH_DATA/uploads" -mindepth 1 -path "*$ID*" 2>/dev/null)" ]; then
	ok "the lost session's data was removed"
else
	fail "data of the lost session is still in uploads/"
fi
# The client's retry: a new session from byte 0.
begin
chunk "$W/blob" "$LOC" 0 $((2 * MIB - 1))
chunk "$W/blob" "$LOC" $((2 * MIB)) $((3 * MIB + 122))
finish

section "BERTH_FS_SYNC_CHUNKS=1: synced chunks survive a machine restart"
berth_stop
export BERTH_FS_SYNC_CHUNKS=1
berth_restart || exit 1
begin
chunk "$W/blob" "$LOC" 0 $((MIB - 1))
ID=$(session_id "$LOC")
STATE=$(backend_state "$ID")
if [ -n "$STATE" ] && ! [[ $STATE == boot* ]]; then
	ok "the state names no boot: every chunk was synced"
else
	fail "state of a synced session: '$STATE'"
fi
berth_stop
unset BERTH_FS_SYNC_CHUNKS
berth_restart || exit 1
chunk "$W/blob" "$LOC" $MIB $((3 * MIB + 122))
finish

berth_done
