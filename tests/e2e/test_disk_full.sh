#!/bin/bash
# End-to-end: a real full disk.  berthd's data directory (blobs, upload
# data and the SQLite metadata) is a 24 MiB tmpfs this script mounts, and
# blobs larger than the free space are pushed monolithically, as chunks and
# as a streamed PATCH.  Each must fail cleanly: 500 with an OCI error body
# (code UNKNOWN; the detail names no path; a full disk is the server's
# problem, not the client's, so not 413, which this server keeps for
# configured size limits), with the server still up.  The space must come
# back: at once for a monolithic push and for the failed chunk of a session
# (its unacknowledged bytes are dropped when the request ends), the rest at
# the latest when the session is cancelled.  A small push then succeeds and
# pulls back byte-exact.  Needs root (mount); otherwise it prints why and
# exits 77, which ctest counts as skipped.

MIB=$((1024 * 1024))
TMPFS_SIZE_MIB=24

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: mounting a tmpfs needs root"
	exit 77
fi
MNT=$(mktemp -d "${TMPDIR:-/tmp}/berth-e2e-disk-full-mnt.XXXXXX") || exit 1
if ! mount -t tmpfs -o "size=${TMPFS_SIZE_MIB}m,mode=0755" tmpfs "$MNT" 2>"$MNT.err"; then
	echo "SKIP: cannot mount a tmpfs: $(cat "$MNT.err")"
	rm -f "$MNT.err"
	rmdir "$MNT"
	exit 77
fi
rm -f "$MNT.err"
trap 'umount "$MNT" && rmdir "$MNT"' EXIT

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The server must be gone before the tmpfs can be unmounted; then the
# usual summary.
disk_full_cleanup() {
	local rc=$?
	if [ -n "$BERTH_PID" ] && kill -0 "$BERTH_PID" 2>/dev/null; then
		e2e_stop_pid "$BERTH_PID" >/dev/null 2>&1
	fi
	if ! umount "$MNT"; then
		fail "cannot unmount $MNT"
	else
		rmdir "$MNT"
	fi
	(exit "$rc")
	e2e_cleanup
}
trap disk_full_cleanup EXIT

R=$BERTH_TENANT/diskfull
W=$E2E_WORK
# Usage may grow a little beyond the baseline (SQLite pages for the
# session rows, directory entries); a leaked chunk would be megabytes.
SLACK=$((1 * MIB))

used() { df -B1 --output=used "$MNT" | tail -n 1 | tr -d ' '; }
avail() { df -B1 --output=avail "$MNT" | tail -n 1 | tr -d ' '; }

# expect_used_near BASE WHAT: usage is back within SLACK of BASE.
expect_used_near() {
	local now
	now=$(used)
	if [ "$now" -le $(($1 + SLACK)) ]; then
		ok "$2: tmpfs usage $now bytes (baseline $1)"
	else
		fail "$2: tmpfs usage $now bytes, baseline $1: $(((now - $1) / 1024)) KiB not released" \
			"$(find "$MNT" -type f -size +64k -printf '%P %s\n')"
	fi
}

expect_clean_failure() {
	expect_status_in 500 507
	expect_oci_error || return
	expect_json '.errors[0] | has("detail")' true
	if grep -qF -e "$MNT" -e "$E2E_TMP" -e '/tmp/' "$REQ_BODY_FILE"; then
		fail_resp "$REQ_DESC: the error body names a path"
	else
		ok "$REQ_DESC: no path in the error body"
	fi
	if kill -0 "$BERTH_PID" 2>/dev/null; then
		ok "berthd is still running"
	else
		fail "berthd died"
	fi
}

open_session() {
	req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
	expect_status 202
	LOC=$(hdr Location) || LOC=
}

expect_range() {
	req GET "$LOC"
	expect_status 204
	expect_header_eq Range "$1"
}

# ------------------------------------------------------------ server

# The account and key live in the metadata on the tmpfs too.
if ! "$BERTHD" account create --id "$BERTH_ACCOUNT" --data-dir "$MNT" >/dev/null ||
	! BERTH_KEY=$("$BERTHD" key create --account "$BERTH_ACCOUNT" --data-dir "$MNT" --label e2e); then
	fail "cannot create the test account and key on the tmpfs"
	exit 1
fi
BERTH_KEY=${BERTH_KEY#* }
BERTH_AUTH_HDR=(-H "Authorization: Bearer $BERTH_KEY")
# The last --data-dir wins: the tmpfs, not the directory berth_start makes.
berth_start --data-dir "$MNT" || exit 1
BERTH_DATA=$MNT

make_blob "$W/small" $((300 * 1024)) small
make_blob "$W/config" 300 config
make_blob "$W/huge" $(((TMPFS_SIZE_MIB + 8) * MIB)) huge
head -c $((6 * MIB)) "$W/huge" >"$W/huge.c1"
tail -c +$((6 * MIB + 1)) "$W/huge" >"$W/huge.c2"
DH=$(digest_of "$W/huge")

section "before: a blob and a manifest"
req POST "/v2/$R/blobs/uploads/?digest=$(digest_of "$W/small")" --data-binary "@$W/small"
expect_status 201
req POST "/v2/$R/blobs/uploads/?digest=$(digest_of "$W/config")" --data-binary "@$W/config"
expect_status 201
make_manifest "$W/manifest" "$W/config" "$MT_OCI_CONFIG" "$W/small"
push_manifest "$R" v1 "$W/manifest"
expect_status 201
# Sessions exist before the baseline so that their rows are counted in it.
open_session
LOC_CHUNKED=$LOC
open_session
LOC_STREAMED=$LOC
BASE=$(used)
printf 'tmpfs: %s bytes used, %s available; the big blob has %s\n' "$BASE" "$(avail)" "$(size_of "$W/huge")"
if [ "$(avail)" -ge "$(size_of "$W/huge")" ]; then
	fail "the tmpfs has room for the big blob: the test would prove nothing"
fi

section "monolithic POST larger than the free space"
req POST "/v2/$R/blobs/uploads/?digest=$DH" -H 'Content-Type: application/octet-stream' \
	--data-binary "@$W/huge"
expect_clean_failure
expect_used_near "$BASE" "after the failed monolithic push"
req HEAD "/v2/$R/blobs/$DH"
expect_status 404
if grep -q 'No space left on device' "$BERTH_LOG"; then
	ok "the log names the cause"
else
	fail "the log does not say 'No space left on device'"
fi

section "chunked PATCH: a chunk that fits, then one that does not"
LOC=$LOC_CHUNKED
req PATCH "$LOC" -H 'Content-Type: application/octet-stream' \
	-H "Content-Range: 0-$((6 * MIB - 1))" --data-binary "@$W/huge.c1"
expect_status 202
LOC=$(hdr Location)
AFTER_C1=$(used)
req PATCH "$LOC" -H 'Content-Type: application/octet-stream' \
	-H "Content-Range: $((6 * MIB))-$(($(size_of "$W/huge") - 1))" --data-binary "@$W/huge.c2"
expect_clean_failure
expect_range "0-$((6 * MIB - 1))"
# The failed chunk's bytes were never acknowledged: they are gone as soon
# as the request ends, only the first chunk stays.
expect_used_near "$AFTER_C1" "after the failed chunk"
req DELETE "$LOC"
expect_status 204
expect_used_near "$BASE" "after DELETE of the chunked session"

section "streamed PATCH larger than the free space"
LOC=$LOC_STREAMED
req PATCH "$LOC" -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' \
	--data-binary "@$W/huge"
expect_clean_failure
expect_range 0-0
expect_used_near "$BASE" "after the failed streamed chunk"
req DELETE "$LOC"
expect_status 204
expect_used_near "$BASE" "after DELETE of the streamed session"
req HEAD "/v2/$R/blobs/$DH"
expect_status 404

section "afterwards: small pushes succeed and pull back byte-exact"
make_blob "$W/after" $((2 * MIB)) after
DA=$(digest_of "$W/after")
req POST "/v2/$R/blobs/uploads/?digest=$DA" -H 'Content-Type: application/octet-stream' \
	--data-binary "@$W/after"
expect_status 201
req GET "/v2/$R/blobs/$DA"
expect_status 200
expect_body_file "$W/after"
make_blob "$W/after2" $((3 * MIB)) after-chunked
open_session
req PATCH "$LOC" -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' \
	--data-binary "@$W/after2"
expect_status 202
LOC=$(hdr Location)
req PUT "$(with_query "$LOC" "digest=$(digest_of "$W/after2")")" --data-binary ''
expect_status 201
req GET "/v2/$R/blobs/$(digest_of "$W/after2")"
expect_status 200
expect_body_file "$W/after2"
req GET "/v2/$R/blobs/$(digest_of "$W/small")"
expect_status 200
expect_body_file "$W/small"
req GET "/v2/$R/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
expect_status 200
expect_body_file "$W/manifest"
expect_eq "upload data left" "$(find "$MNT/uploads" -type f | wc -l)" 0

section "berthd stops cleanly"
berth_stop
expect_eq "berthd exit status on SIGTERM" "$BERTH_EXIT" 0

berth_done
