#!/bin/bash
# End-to-end: the real berthd over a blob store that fails on purpose
# (BERTH_FAULT_INJECTION, see src/storage/faulty/faulty.h).  With faults on
# appends (a disk that fills up, transient errors), syncs, commits (before
# and after the inner commit ran), the rename of a blob hashed with another
# algorithm, reads, opens and removes, every push (monolithic POST, chunked
# PATCH + PUT, streamed PATCH) and pull must get a clean answer with an OCI
# error body that leaks no path; nothing partial may become visible (the
# digest stays 404, every file under blobs/ hashes to its name, a failed
# chunk's bytes are neither acknowledged nor left on disk); a retry after a
# transient fault succeeds byte-exact; other requests keep being served;
# berthd never dies and exits 0 on SIGTERM.  A malformed specification
# keeps berthd from starting.
BERTH_AUTO_KEY=1 # every request carries an access key of the test account
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$BERTH_TENANT/faults
W=$E2E_WORK
KIB=1024
MIB=$((1024 * 1024))

# ------------------------------------------------------------ helpers

# with_faults SPEC: restart berthd with BERTH_FAULT_INJECTION=SPEC (fresh
# fault counters); the server it replaces must have exited 0, and the new
# one must say loudly that faults are on.
with_faults() {
	local before after
	before=$(grep -c 'FAULT INJECTION IS ON' "$BERTH_LOG" 2>/dev/null)
	export BERTH_FAULT_INJECTION=$1
	berth_restart || return 1
	unset BERTH_FAULT_INJECTION
	expect_eq "previous berthd exit status on SIGTERM" "$BERTH_EXIT" 0
	after=$(grep -c 'FAULT INJECTION IS ON' "$BERTH_LOG" 2>/dev/null)
	expect_eq "berthd warns that faults are injected ($1)" "$after" "$((before + 1))"
}

expect_alive() {
	if kill -0 "$BERTH_PID" 2>/dev/null; then
		ok "berthd is still running"
	else
		fail "berthd died"
	fi
}

# expect_clean_error STATUS...: one of the statuses, an OCI error body
# with a detail, and no file system path in it.
expect_clean_error() {
	expect_status_in "$@"
	expect_oci_error || return
	expect_json '.errors[0] | has("detail") and has("message")' true
	if grep -qF -e "$E2E_TMP" -e "$BERTH_DATA" -e '/tmp/' -e '/uploads/' -e '/blobs/sha' "$REQ_BODY_FILE"; then
		fail_resp "$REQ_DESC: the error body names a path"
	else
		ok "$REQ_DESC: no path in the error body"
	fi
}

# expect_absent DIGEST: neither HEAD nor GET finds it.
expect_absent() {
	req HEAD "/v2/$R/blobs/$1"
	expect_status 404
	req GET "/v2/$R/blobs/$1"
	expect_status 404
	expect_error_code BLOB_UNKNOWN
}

# expect_pull FILE [DIGEST]: GET gives back exactly FILE.
expect_pull() {
	local d=${2:-$(digest_of "$1")}
	req GET "/v2/$R/blobs/$d"
	expect_status 200
	expect_body_file "$1"
}

# Every object under blobs/ hashes to its name; nothing else is there
# (no staging leftovers, no half-written objects).
expect_store_clean() {
	local bad
	bad=$("$E2E_PY" - "$BERTH_DATA/blobs" <<'EOF'
import hashlib, os, sys
root = sys.argv[1]
bad = []
for dirpath, _, files in os.walk(root):
    for name in files:
        path = os.path.join(dirpath, name)
        rel = os.path.relpath(path, root).split(os.sep)
        if len(rel) != 3 or rel[0] not in ("sha256", "sha512") or rel[2][:2] != rel[1]:
            bad.append("/".join(rel))
            continue
        h = hashlib.new(rel[0])
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != rel[2].split(".")[0]:  # a copy's own suffix
            bad.append("/".join(rel) + " (content differs)")
print(" ".join(bad))
EOF
)
	expect_eq "every file under blobs/ hashes to its name" "$bad" ""
}

# Bytes of upload data on disk: all of it, or one upload's.
uploads_bytes() {
	find "$BERTH_DATA/uploads" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}
upload_bytes() {
	if [ -d "$BERTH_DATA/uploads/$1" ]; then
		find "$BERTH_DATA/uploads/$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
	else
		echo 0
	fi
}

# push_mono FILE [alg]: single POST with ?digest=.
push_mono() {
	req POST "/v2/$R/blobs/uploads/?digest=$(digest_of "$1" "${2:-sha256}")" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$1"
}

# open_session: POST; sets LOC and ID.
open_session() {
	req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
	LOC=$(hdr Location) || LOC=
	ID=${LOC##*/}
	ID=${ID%%\?*}
	if [ "$REQ_STATUS" != 202 ] || [ -z "$LOC" ]; then
		fail_resp "open_session: status $REQ_STATUS"
		return 1
	fi
}

# patch_range FILE START: PATCH FILE as the chunk at START.
patch_range() {
	local size
	size=$(size_of "$1")
	req PATCH "$LOC" -H 'Content-Type: application/octet-stream' \
		-H "Content-Range: $2-$(($2 + size - 1))" --data-binary "@$1"
	local l
	if [ "$REQ_STATUS" = 202 ] && l=$(hdr Location); then LOC=$l; fi
}

# patch_stream FILE: PATCH with a chunked request body.
patch_stream() {
	req PATCH "$LOC" -H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' \
		--data-binary "@$1"
	local l
	if [ "$REQ_STATUS" = 202 ] && l=$(hdr Location); then LOC=$l; fi
}

put_finish() {
	req PUT "$(with_query "$LOC" "digest=$1")" -H 'Content-Type: application/octet-stream' --data-binary ''
}

# expect_range OFFSET: the session stands at OFFSET acknowledged bytes.
expect_range() {
	req GET "/v2/$R/blobs/uploads/$ID"
	expect_status 204
	if [ "$1" = 0 ]; then
		expect_header_eq Range 0-0
	else
		expect_header_eq Range "0-$(($1 - 1))"
	fi
}

# expect_served: the rest of the registry works during the fault.
expect_served() {
	req GET /v2/
	expect_status 200
	req GET "/v2/$R/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
	expect_status 200
	expect_body_file "$W/manifest"
	req HEAD "/v2/$R/blobs/$(digest_of "$W/seed")"
	expect_status 200
	expect_alive
}

# ------------------------------------------------------------ content

make_blob "$W/seed" $((200 * KIB)) seed
make_blob "$W/config" 300 config
make_blob "$W/big" $((2 * MIB)) big
make_blob "$W/three" $((3 * MIB)) three
head -c $((512 * KIB)) "$W/big" >"$W/big.c1"
tail -c +$((512 * KIB + 1)) "$W/big" >"$W/big.c2"
make_manifest "$W/manifest" "$W/config" "$MT_OCI_CONFIG" "$W/seed"

berth_start || exit 1

section "seed: a blob and a manifest pushed without faults"
push_mono "$W/seed"
expect_status 201
push_mono "$W/config"
expect_status 201
push_manifest "$R" v1 "$W/manifest"
expect_status 201

# ------------------------------------------------------------ disk full

section "disk full after 1 MiB (persistent, partial writes, ENOSPC)"
with_faults 'op=append,after_bytes=1m,error=enospc,persistent=1,partial=1'
# A chunk that fits is acknowledged; the one that fills the disk is not,
# and its bytes do not stay on disk.
open_session
patch_range "$W/big.c1" 0
expect_status 202
expect_header_eq Range "0-$((512 * KIB - 1))"
SESSION1_LOC=$LOC
patch_range "$W/big.c2" $((512 * KIB))
expect_clean_error 500 507
expect_range $((512 * KIB))
expect_eq "failed chunk's bytes are not left on disk" "$(upload_bytes "$ID")" $((512 * KIB))
# Still full: the same chunk fails again the same way.
patch_range "$W/big.c2" $((512 * KIB))
expect_clean_error 500 507
expect_range $((512 * KIB))
if grep -q 'no space left on device' "$BERTH_LOG"; then
	ok "the log says the disk is full"
else
	fail "no 'no space left on device' in the log"
fi
# Monolithic: nothing stays at all.
push_mono "$W/big"
expect_clean_error 500 507
expect_absent "$(digest_of "$W/big")"
expect_eq "upload data after the failed monolithic push" "$(uploads_bytes)" $((512 * KIB))
# Streamed.
open_session
patch_stream "$W/big"
expect_clean_error 500 507
expect_range 0
expect_eq "failed streamed chunk's bytes are not left on disk" "$(upload_bytes "$ID")" 0
expect_served
expect_pull "$W/seed"
# The session that has an acknowledged chunk can still be cancelled, and
# its data goes.
req DELETE "$SESSION1_LOC"
expect_status 204
expect_eq "upload data after DELETE" "$(uploads_bytes)" 0
expect_absent "$(digest_of "$W/big")"
expect_store_clean

# ------------------------------------------------------------ transient

section "transient append fault (partial write), then retry: monolithic"
with_faults 'op=append,after_bytes=1m,partial=1'
D3=$(digest_of "$W/three")
push_mono "$W/three"
expect_clean_error 500
expect_absent "$D3"
expect_eq "upload data after the failed push" "$(uploads_bytes)" 0
push_mono "$W/three"
expect_status 201
expect_pull "$W/three"
expect_store_clean

section "transient append fault, then retry: chunked PATCH + PUT"
make_blob "$W/c3" $((3 * MIB)) chunked-three
head -c $((2 * MIB)) "$W/c3" >"$W/c3.a"
tail -c +$((2 * MIB + 1)) "$W/c3" >"$W/c3.b"
with_faults 'op=append,after=2,partial=1'
open_session
patch_range "$W/c3.a" 0
expect_clean_error 500
expect_range 0
expect_eq "failed chunk's bytes are not left on disk" "$(upload_bytes "$ID")" 0
patch_range "$W/c3.a" 0
expect_status 202
expect_header_eq Range "0-$((2 * MIB - 1))"
patch_range "$W/c3.b" $((2 * MIB))
expect_status 202
put_finish "$(digest_of "$W/c3")"
expect_status 201
expect_pull "$W/c3"

section "transient append fault, then retry: streamed PATCH"
make_blob "$W/s3" $((3 * MIB)) streamed-three
with_faults 'op=append,after_bytes=1m'
open_session
patch_stream "$W/s3"
expect_clean_error 500
expect_range 0
patch_stream "$W/s3"
expect_status 202
put_finish "$(digest_of "$W/s3")"
expect_status 201
expect_pull "$W/s3"
expect_store_clean

# ------------------------------------------------------------ sync

for phase in before after; do
	section "sync fault ($phase the inner sync): the chunk is not acknowledged"
	make_blob "$W/sy" $((1 * MIB)) "sync-$phase"
	head -c $((300 * KIB)) "$W/sy" >"$W/sy.a"
	tail -c +$((300 * KIB + 1)) "$W/sy" >"$W/sy.b"
	with_faults "op=sync,after=1,phase=$phase"
	open_session
	patch_range "$W/sy.a" 0
	expect_status 202
	patch_range "$W/sy.b" $((300 * KIB))
	expect_clean_error 500
	expect_range $((300 * KIB))
	expect_eq "failed chunk's bytes are not left on disk" "$(upload_bytes "$ID")" $((300 * KIB))
	patch_range "$W/sy.b" $((300 * KIB))
	expect_status 202
	put_finish "$(digest_of "$W/sy")"
	expect_status 201
	expect_pull "$W/sy"
done

# ------------------------------------------------------------ commit

section "commit fault before the inner commit: monolithic, then retry"
make_blob "$W/cm" $((700 * KIB)) commit-mono
with_faults 'op=commit'
push_mono "$W/cm"
expect_clean_error 500
expect_absent "$(digest_of "$W/cm")"
expect_eq "upload data after the failed push" "$(uploads_bytes)" 0
expect_store_clean
push_mono "$W/cm"
expect_status 201
expect_pull "$W/cm"

section "commit fault before the inner commit: the session survives, PUT again"
make_blob "$W/cs" $((700 * KIB)) commit-session
with_faults 'op=commit'
open_session
patch_range "$W/cs" 0
expect_status 202
put_finish "$(digest_of "$W/cs")"
expect_clean_error 500
expect_absent "$(digest_of "$W/cs")"
expect_range $((700 * KIB))
expect_store_clean
put_finish "$(digest_of "$W/cs")"
expect_status 201
expect_pull "$W/cs"
req GET "/v2/$R/blobs/uploads/$ID"
expect_status 404

section "commit fault after the inner commit: reported, never linked; a retry succeeds"
make_blob "$W/ca" $((700 * KIB)) commit-after
with_faults 'op=commit,phase=after'
push_mono "$W/ca"
expect_clean_error 500
expect_absent "$(digest_of "$W/ca")"
expect_store_clean
push_mono "$W/ca"
expect_status 201
expect_pull "$W/ca"
make_blob "$W/cb" $((700 * KIB)) commit-after-session
with_faults 'op=commit,phase=after'
open_session
patch_range "$W/cb" 0
expect_status 202
put_finish "$(digest_of "$W/cb")"
expect_clean_error 500
expect_absent "$(digest_of "$W/cb")"
# The session's data went with the commit: finishing it again cannot
# work, and the answer says so with a client error.
put_finish "$(digest_of "$W/cb")"
expect_clean_error 400 404
expect_store_clean
push_mono "$W/cb"
expect_status 201
expect_pull "$W/cb"

for phase in before after; do
	section "copy fault ($phase) publishing a sha512 blob: no staging object stays"
	make_blob "$W/s512" $((300 * KIB)) "sha512-$phase"
	D512=$(digest_of "$W/s512" sha512)
	with_faults "op=copy,phase=$phase"
	open_session
	patch_range "$W/s512" 0
	expect_status 202
	put_finish "$D512"
	expect_clean_error 500
	expect_absent "$D512"
	expect_store_clean
	open_session
	patch_range "$W/s512" 0
	put_finish "$D512"
	expect_status 201
	expect_pull "$W/s512" "$D512"
	expect_store_clean
done

# ------------------------------------------------------------ reads

section "persistent read fault: pulls fail cleanly, everything else works"
with_faults 'op=read,persistent=1'
req GET "/v2/$R/blobs/$(digest_of "$W/seed")"
expect_clean_error 500
req GET "/v2/$R/blobs/$(digest_of "$W/seed")" -H 'Range: bytes=100-199'
expect_clean_error 500
expect_served
make_blob "$W/during-read" $((100 * KIB)) during-read
push_mono "$W/during-read"
expect_status 201

section "read fault mid-stream: the transfer is cut short, never completed wrong"
with_faults 'op=read,after=1'
D3=$(digest_of "$W/three")
req GET "/v2/$R/blobs/$D3"
got=$(size_of "$REQ_BODY_FILE")
if [ "$got" -lt "$(size_of "$W/three")" ]; then
	ok "GET after a mid-stream read failure: body cut at $got bytes"
else
	fail_resp "GET after a mid-stream read failure: $got bytes, as if complete"
fi
expect_alive
# Spent: reads go through readers (no zero-copy while reads may fail),
# whole and ranged, byte-exact.
expect_pull "$W/three"
tail -c +100001 "$W/three" | head -c 200000 >"$W/three.range"
req GET "/v2/$R/blobs/$D3" -H 'Range: bytes=100000-299999'
expect_status 206
expect_body_file "$W/three.range"

# ------------------------------------------------------------ opens

section "persistent open fault: pushes and pulls fail cleanly, the rest works"
with_faults 'op=open,persistent=1'
req GET "/v2/$R/blobs/$(digest_of "$W/seed")"
expect_clean_error 500
make_blob "$W/op" $((100 * KIB)) open-fault
push_mono "$W/op"
expect_clean_error 500
expect_absent "$(digest_of "$W/op")"
open_session
patch_range "$W/op" 0
expect_clean_error 500
expect_range 0
open_session
patch_stream "$W/op"
expect_clean_error 500
expect_served
expect_eq "upload data under an open fault" "$(uploads_bytes)" 0

section "attempt and listing faults: resuming fails cleanly, start-up and the rest survive"
# The start-up sweep lists upload data: it must not keep berthd from serving.
with_faults 'op=writer_open|upload_list|list,persistent=1'
open_session
patch_range "$W/op" 0
expect_clean_error 500
expect_range 0
push_mono "$W/op"
expect_clean_error 500
expect_absent "$(digest_of "$W/op")"
expect_served
expect_pull "$W/seed"
expect_eq "upload data under an attempt fault" "$(uploads_bytes)" 0

# ------------------------------------------------------------ removes

section "remove faults: a digest mismatch is still the client's error"
with_faults 'op=remove|upload_remove,persistent=1'
req POST "/v2/$R/blobs/uploads/?digest=sha256:$(printf '0%.0s' {1..64})" \
	-H 'Content-Type: application/octet-stream' --data-binary "@$W/op"
expect_status 400
expect_error_code DIGEST_INVALID
open_session
patch_range "$W/op" 0
expect_status 202
req DELETE "$LOC"
expect_status_in 204 500
expect_alive
push_mono "$W/op"
expect_status 201
expect_pull "$W/op"
expect_store_clean

# ------------------------------------------------------------ bad specs

section "a malformed BERTH_FAULT_INJECTION keeps berthd from starting"
berth_stop
expect_eq "berthd exit status on SIGTERM" "$BERTH_EXIT" 0
for spec in 'op=append,bogus=1' 'op=append;' '' 'op=sync,partial=1' 'op=append,after=1x' 'op=apend'; do
	log=$W/bad-spec.log
	rc=0
	BERTH_FAULT_INJECTION=$spec timeout 20 "$BERTHD" serve --listen "127.0.0.1:$BERTH_PORT" \
		--data-dir "$BERTH_DATA" >"$log" 2>&1 || rc=$?
	if [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q 'BERTH_FAULT_INJECTION' "$log"; then
		ok "refused to start with '$spec' (exit $rc)"
	else
		fail "berthd with BERTH_FAULT_INJECTION='$spec': exit $rc" "$(tail -n 3 "$log")"
	fi
done

berth_done
