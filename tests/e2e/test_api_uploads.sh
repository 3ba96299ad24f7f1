#!/bin/bash
# End-to-end: blob upload sessions.  Monolithic (POST+PUT, single POST),
# chunked PATCH with Content-Range, streamed PATCH (chunked transfer
# encoding), last chunk in the PUT, out-of-order chunks, status, cancel,
# digest mismatch, unknown sessions, sha512 blobs, and a session resumed
# after a restart and after a crash.
BERTH_AUTO_KEY=1 # every request carries an access key of the test account
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$BERTH_TENANT/uploads
R2=$BERTH_TENANT/uploads-other
berth_start || exit 1
W=$E2E_WORK
ZERO=sha256:0000000000000000000000000000000000000000000000000000000000000000
UPLOAD_RE="/v2/$R/blobs/uploads/([0-9a-f]{32})(\\?.*)?"

# open_upload NAME: POST a new session; sets LOC.
open_upload() {
	req POST "/v2/$1/blobs/uploads/" -H 'Content-Length: 0'
	LOC=$(hdr Location) || LOC=
	if [ "$REQ_STATUS" != 202 ] || [ -z "$LOC" ]; then
		fail_resp "open_upload $1: status $REQ_STATUS, Location '$LOC'"
		return 1
	fi
}

# patch_chunk FILE RANGE: PATCH FILE to LOC with Content-Range RANGE; LOC
# follows the answer's Location.
patch_chunk() {
	req PATCH "$LOC" -H 'Content-Type: application/octet-stream' \
		-H "Content-Range: $2" --data-binary "@$1"
	local l
	if l=$(hdr Location); then LOC=$l; fi
}

make_blob "$W/blob" 2500 chunked
head -c 1000 "$W/blob" >"$W/c1"
tail -c 1500 "$W/blob" >"$W/c2"
DB=$(digest_of "$W/blob")

section "POST opens a session"
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
expect_status 202
expect_header Location "$UPLOAD_RE"
LOC=$(hdr Location)
[[ $LOC =~ $UPLOAD_RE ]] && ID=${BASH_REMATCH[1]} || ID=none
expect_header Range '0-0'
expect_header Docker-Upload-UUID "$ID"
expect_header Content-Length 0
expect_header Docker-Distribution-API-Version 'registry/2\.0'

section "monolithic PUT"
make_blob "$W/mono" 70000 mono
DM=$(digest_of "$W/mono")
req PUT "$(with_query "$LOC" "digest=$DM")" -H 'Content-Type: application/octet-stream' \
	--data-binary "@$W/mono"
expect_status 201
expect_header Location "/v2/$R/blobs/$DM"
expect_header_eq Docker-Content-Digest "$DM"
req GET "/v2/$R/blobs/$DM"
expect_status 200
expect_body_file "$W/mono"
# The finished session is gone.
req GET "$LOC"
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN
# A second session can be opened for a blob that already exists.
open_upload "$R"
req PUT "$(with_query "$LOC" "digest=$DM")" --data-binary "@$W/mono"
expect_status 201
expect_header_eq Docker-Content-Digest "$DM"

section "single POST with ?digest="
make_blob "$W/single" 12345 single
DS=$(digest_of "$W/single")
req POST "/v2/$R/blobs/uploads/?digest=$DS" -H 'Content-Type: application/octet-stream' \
	--data-binary "@$W/single"
expect_status 201
expect_header Location "/v2/$R/blobs/$DS"
expect_header_eq Docker-Content-Digest "$DS"
req GET "/v2/$R/blobs/$DS"
expect_status 200
expect_body_file "$W/single"
# Again (the blob exists): still 201.
req POST "/v2/$R/blobs/uploads/?digest=$DS" -H 'Content-Type: application/octet-stream' \
	--data-binary "@$W/single"
expect_status 201
expect_header_eq Docker-Content-Digest "$DS"
# A chunked request body (Go clients send bodies of unknown length this way).
make_blob "$W/singlec" 54321 single-chunked
DSC=$(digest_of "$W/singlec")
req POST "/v2/$R/blobs/uploads/?digest=$DSC" -H 'Content-Type: application/octet-stream' \
	-H 'Transfer-Encoding: chunked' --data-binary "@$W/singlec"
expect_status 201
expect_header_eq Docker-Content-Digest "$DSC"
req GET "/v2/$R/blobs/$DSC"
expect_body_file "$W/singlec"
# ... with the wrong digest: rejected, nothing stored.
make_blob "$W/single2" 777 single2
req POST "/v2/$R/blobs/uploads/?digest=$ZERO" --data-binary "@$W/single2"
expect_status 400
expect_error_code DIGEST_INVALID
req HEAD "/v2/$R/blobs/$ZERO"
expect_status 404
req HEAD "/v2/$R/blobs/$(digest_of "$W/single2")"
expect_status 404

section "chunked PATCH with Content-Range"
open_upload "$R"
patch_chunk "$W/c1" 0-999
expect_status 202
expect_header Location "$UPLOAD_RE"
expect_header Range '0-999'
expect_header Docker-Upload-UUID '[0-9a-f]{32}'
expect_header Content-Length 0
patch_chunk "$W/c2" 1000-2499
expect_status 202
expect_header Range '0-2499'
req GET "$LOC"
expect_status 204
expect_header Range '0-2499'
expect_header Location "$UPLOAD_RE"
expect_header Docker-Upload-UUID '[0-9a-f]{32}'
req PUT "$(with_query "$LOC" "digest=$DB")" -H 'Content-Length: 0'
expect_status 201
expect_header Location "/v2/$R/blobs/$DB"
expect_header_eq Docker-Content-Digest "$DB"
req GET "/v2/$R/blobs/$DB"
expect_status 200
expect_body_file "$W/blob"

section "chunks out of order are 416"
open_upload "$R"
patch_chunk "$W/c1" 0-999
expect_status 202
# A gap.
req PATCH "$LOC" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 2000-2999' \
	--data-binary "@$W/c1"
expect_status 416
expect_oci_error
# An overlap (the same chunk again).
req PATCH "$LOC" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-999' \
	--data-binary "@$W/c1"
expect_status 416
# The session survives both, at the same offset.
req GET "$LOC"
expect_status 204
expect_header Range '0-999'
patch_chunk "$W/c2" 1000-2499
expect_status 202
expect_header Range '0-2499'
req PUT "$(with_query "$LOC" "digest=$DB")" -H 'Content-Length: 0'
expect_status 201
# A first chunk that does not start at 0.
open_upload "$R"
req PATCH "$LOC" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 5-1004' \
	--data-binary "@$W/c1"
expect_status 416
# Content-Range that disagrees with the body length: refused, or taken with a
# Range that tells the truth about what was stored.
open_upload "$R"
req PATCH "$LOC" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-1999' \
	--data-binary "@$W/c1"
expect_status_in 400 416 202
if [ "$REQ_STATUS" = 202 ]; then
	expect_header Range '0-999'
else
	expect_oci_error
fi

section "streamed PATCH (chunked transfer encoding, no Content-Range/Length)"
make_blob "$W/stream" $((1024 * 1024 + 3)) stream
head -c 600000 "$W/stream" >"$W/s1"
tail -c $((1024 * 1024 + 3 - 600000)) "$W/stream" >"$W/s2"
DST=$(digest_of "$W/stream")
open_upload "$R"
req PATCH "$LOC" -H 'Transfer-Encoding: chunked' -H 'Content-Type:' --data-binary "@$W/s1"
expect_status 202
expect_header Range '0-599999'
LOC=$(hdr Location)
# A second streamed PATCH appends.
req PATCH "$LOC" -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/octet-stream' \
	--data-binary "@$W/s2"
expect_status 202
expect_header Range "0-$((1024 * 1024 + 2))"
LOC=$(hdr Location)
req PUT "$(with_query "$LOC" "digest=$DST")" -H 'Content-Length: 0'
expect_status 201
expect_header_eq Docker-Content-Digest "$DST"
req GET "/v2/$R/blobs/$DST"
expect_status 200
expect_body_file "$W/stream"

section "PATCH with Content-Length but no Content-Range"
make_blob "$W/plain" 40000 plain
DP=$(digest_of "$W/plain")
open_upload "$R"
req PATCH "$LOC" -H 'Content-Type: application/octet-stream' --data-binary "@$W/plain"
expect_status 202
expect_header Range '0-39999'
LOC=$(hdr Location)
req PUT "$(with_query "$LOC" "digest=$DP")" -H 'Content-Length: 0'
expect_status 201
req GET "/v2/$R/blobs/$DP"
expect_body_file "$W/plain"

section "last chunk in the closing PUT"
make_blob "$W/last" 2500 lastchunk
head -c 1000 "$W/last" >"$W/l1"
tail -c 1500 "$W/last" >"$W/l2"
DLAST=$(digest_of "$W/last")
open_upload "$R"
patch_chunk "$W/l1" 0-999
expect_status 202
req PUT "$(with_query "$LOC" "digest=$DLAST")" -H 'Content-Type: application/octet-stream' \
	--data-binary "@$W/l2"
expect_status 201
expect_header_eq Docker-Content-Digest "$DLAST"
req GET "/v2/$R/blobs/$DLAST"
expect_body_file "$W/last"
# ... as a chunked request body.
make_blob "$W/lastc" 2500 lastchunk-chunked
head -c 1000 "$W/lastc" >"$W/lc1"
tail -c 1500 "$W/lastc" >"$W/lc2"
open_upload "$R"
patch_chunk "$W/lc1" 0-999
req PUT "$(with_query "$LOC" "digest=$(digest_of "$W/lastc")")" -H 'Content-Type: application/octet-stream' \
	-H 'Transfer-Encoding: chunked' --data-binary "@$W/lc2"
expect_status 201
req GET "/v2/$R/blobs/$(digest_of "$W/lastc")"
expect_body_file "$W/lastc"
# A whole blob in the PUT, chunked.
make_blob "$W/monoc" 33333 mono-chunked
open_upload "$R"
req PUT "$(with_query "$LOC" "digest=$(digest_of "$W/monoc")")" -H 'Content-Type: application/octet-stream' \
	-H 'Transfer-Encoding: chunked' --data-binary "@$W/monoc"
expect_status 201
req GET "/v2/$R/blobs/$(digest_of "$W/monoc")"
expect_body_file "$W/monoc"
# ... with a Content-Range on the PUT.
make_blob "$W/last2" 2500 lastchunk2
head -c 1000 "$W/last2" >"$W/l21"
tail -c 1500 "$W/last2" >"$W/l22"
DLAST2=$(digest_of "$W/last2")
open_upload "$R"
patch_chunk "$W/l21" 0-999
req PUT "$(with_query "$LOC" "digest=$DLAST2")" -H 'Content-Type: application/octet-stream' \
	-H 'Content-Range: 1000-2499' --data-binary "@$W/l22"
expect_status 201
req GET "/v2/$R/blobs/$DLAST2"
expect_body_file "$W/last2"

section "several MiB in three chunks"
BIG=$((5 * 1024 * 1024 + 7))
make_blob "$W/big" $BIG bigchunks
head -c 2097152 "$W/big" >"$W/g1"
head -c 4194304 "$W/big" | tail -c 2097152 >"$W/g2"
tail -c $((BIG - 4194304)) "$W/big" >"$W/g3"
DG=$(digest_of "$W/big")
open_upload "$R"
patch_chunk "$W/g1" 0-2097151
expect_header Range '0-2097151'
patch_chunk "$W/g2" 2097152-4194303
expect_header Range '0-4194303'
patch_chunk "$W/g3" "4194304-$((BIG - 1))"
expect_header Range "0-$((BIG - 1))"
req PUT "$(with_query "$LOC" "digest=$DG")" -H 'Content-Length: 0'
expect_status 201
req GET "/v2/$R/blobs/$DG"
expect_body_file "$W/big"

section "digest mismatch on the closing PUT"
make_blob "$W/mis" 3333 mismatch
open_upload "$R"
MLOC=$LOC
patch_chunk "$W/mis" 0-3332
expect_status 202
req PUT "$(with_query "$LOC" "digest=$ZERO")" -H 'Content-Length: 0'
expect_status 400
expect_error_code DIGEST_INVALID
req HEAD "/v2/$R/blobs/$ZERO"
expect_status 404
req HEAD "/v2/$R/blobs/$(digest_of "$W/mis")"
expect_status 404
req GET "$MLOC"
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN

section "closing PUT without a usable digest"
open_upload "$R"
patch_chunk "$W/c1" 0-999
req PUT "$LOC" -H 'Content-Length: 0'
expect_status 400
expect_error_code_in DIGEST_INVALID BLOB_UPLOAD_INVALID
open_upload "$R"
patch_chunk "$W/c1" 0-999
req PUT "$(with_query "$LOC" "digest=sha256:xyz")" -H 'Content-Length: 0'
expect_status 400
expect_error_code DIGEST_INVALID
req PUT "$(with_query "$LOC" "digest=md5:d41d8cd98f00b204e9800998ecf8427e")" -H 'Content-Length: 0'
expect_status 400
expect_error_code DIGEST_INVALID

section "cancel"
open_upload "$R"
CLOC=$LOC
patch_chunk "$W/c1" 0-999
req DELETE "$CLOC"
expect_status 204
expect_header Docker-Distribution-API-Version 'registry/2\.0'
req GET "$CLOC"
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN
req PATCH "$CLOC" -H 'Content-Range: 1000-2499' --data-binary "@$W/c2"
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN
req PUT "$(with_query "$CLOC" "digest=$DB")" -H 'Content-Length: 0'
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN
req DELETE "$CLOC"
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN

section "unknown sessions"
U=/v2/$R/blobs/uploads/0123456789abcdef0123456789abcdef
req GET "$U"
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN
req PATCH "$U" -H 'Content-Range: 0-999' --data-binary "@$W/c1"
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN
req PUT "$U?digest=$DB" --data-binary "@$W/blob"
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN
req DELETE "$U"
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN
for bad in not-a-session 0123 0123456789ABCDEF0123456789ABCDEF; do
	req GET "/v2/$R/blobs/uploads/$bad"
	expect_status_in 400 404
	expect_error_code_in BLOB_UPLOAD_UNKNOWN BLOB_UPLOAD_INVALID
done
# Path tricks never reach another file (the exact error is the router's).
for bad in ..%2F..%2Fblobs %2e%2e ..%2F..%2F..%2F..%2Fmeta.db; do
	req GET "/v2/$R/blobs/uploads/$bad"
	expect_status_in 400 404
	expect_oci_error
	req PATCH "/v2/$R/blobs/uploads/$bad" --data-binary "@$W/c1"
	expect_status_in 400 404
done
# A session belongs to the repository it was opened in.
open_upload "$R"
[[ $LOC =~ $UPLOAD_RE ]] && ID=${BASH_REMATCH[1]} || ID=none
OWN=$LOC
push_blob "$R2" "$W/c2" # makes R2 exist
req GET "/v2/$R2/blobs/uploads/$ID"
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN
req PATCH "/v2/$R2/blobs/uploads/$ID" -H 'Content-Range: 0-999' --data-binary "@$W/c1"
expect_status 404
req DELETE "/v2/$R2/blobs/uploads/$ID"
expect_status 404
LOC=$OWN
patch_chunk "$W/c1" 0-999
expect_status 202
expect_header Range '0-999'

section "two sessions for the same blob"
make_blob "$W/twin" 5000 twin
DT=$(digest_of "$W/twin")
open_upload "$R"
L1=$LOC
open_upload "$R"
L2=$LOC
LOC=$L1
patch_chunk "$W/twin" 0-4999
L1=$LOC
LOC=$L2
patch_chunk "$W/twin" 0-4999
L2=$LOC
req PUT "$(with_query "$L1" "digest=$DT")" -H 'Content-Length: 0'
expect_status 201
req PUT "$(with_query "$L2" "digest=$DT")" -H 'Content-Length: 0'
expect_status 201
req GET "/v2/$R/blobs/$DT"
expect_body_file "$W/twin"

section "sha512 blobs"
make_blob "$W/s512" 3000 sha512
D512=$(digest_of "$W/s512" sha512)
req POST "/v2/$R/blobs/uploads/?digest=$D512" -H 'Content-Type: application/octet-stream' \
	--data-binary "@$W/s512"
expect_status 201
expect_header Location "/v2/$R/blobs/$D512"
req HEAD "/v2/$R/blobs/$D512"
expect_status 200
expect_header Content-Length 3000
expect_header_eq Docker-Content-Digest "$D512"
req GET "/v2/$R/blobs/$D512"
expect_status 200
expect_body_file "$W/s512"
# Chunked, closed with a sha512 digest.
make_blob "$W/s512b" 2500 sha512b
head -c 1000 "$W/s512b" >"$W/s512b1"
tail -c 1500 "$W/s512b" >"$W/s512b2"
D512B=$(digest_of "$W/s512b" sha512)
open_upload "$R"
patch_chunk "$W/s512b1" 0-999
patch_chunk "$W/s512b2" 1000-2499
req PUT "$(with_query "$LOC" "digest=$D512B")" -H 'Content-Length: 0'
expect_status 201
expect_header_eq Docker-Content-Digest "$D512B"
req GET "/v2/$R/blobs/$D512B"
expect_status 200
expect_body_file "$W/s512b"
# A wrong sha512.
open_upload "$R"
patch_chunk "$W/s512b1" 0-999
req PUT "$(with_query "$LOC" "digest=$D512")" -H 'Content-Length: 0'
expect_status 400
expect_error_code DIGEST_INVALID

section "a session survives a restart"
make_blob "$W/resume" 2500 resume
head -c 1000 "$W/resume" >"$W/r1"
tail -c 1500 "$W/resume" >"$W/r2"
DR=$(digest_of "$W/resume")
open_upload "$R"
patch_chunk "$W/r1" 0-999
expect_status 202
berth_restart || exit 1
req GET "$LOC"
expect_status 204
expect_header Range '0-999'
patch_chunk "$W/r2" 1000-2499
expect_status 202
expect_header Range '0-2499'
req PUT "$(with_query "$LOC" "digest=$DR")" -H 'Content-Length: 0'
expect_status 201
req GET "/v2/$R/blobs/$DR"
expect_status 200
expect_body_file "$W/resume"

section "a session survives kill -9"
make_blob "$W/crash" 2500 crash
head -c 1000 "$W/crash" >"$W/k1"
tail -c 1500 "$W/crash" >"$W/k2"
DK=$(digest_of "$W/crash")
open_upload "$R"
patch_chunk "$W/k1" 0-999
expect_status 202
berth_kill9
berth_restart || exit 1
req GET "$LOC"
expect_status 204
expect_header Range '0-999'
patch_chunk "$W/k2" 1000-2499
expect_status 202
req PUT "$(with_query "$LOC" "digest=$DK")" -H 'Content-Length: 0'
expect_status 201
req GET "/v2/$R/blobs/$DK"
expect_status 200
expect_body_file "$W/crash"
# Blobs pushed before the crash are all still there.
for f in mono single blob stream plain last big twin; do
	req HEAD "/v2/$R/blobs/$(digest_of "$W/$f")"
	expect_status 200
done

berth_done
