#!/bin/bash
# End-to-end: blob HEAD/GET (headers, exact bytes), Range requests, unknown
# and invalid digests, per-repository visibility, and DELETE (including a blob
# a manifest still references).
BERTH_AUTO_KEY=1 # every request carries an access key of the test account
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$BERTH_TENANT/blobs
R2=$BERTH_TENANT/blobs-other
berth_start || exit 1

W=$E2E_WORK
SIZE=100000
make_blob "$W/b1" $SIZE b1
push_blob "$R" "$W/b1"
D1=$BLOB_DIGEST

section "HEAD and GET"
req HEAD "/v2/$R/blobs/$D1"
expect_status 200
expect_header_eq Docker-Content-Digest "$D1"
expect_header Content-Length $SIZE
expect_header Content-Type '.+'
expect_header Docker-Distribution-API-Version 'registry/2\.0'
req GET "/v2/$R/blobs/$D1"
expect_status 200
expect_header_eq Docker-Content-Digest "$D1"
expect_header Content-Length $SIZE
expect_header Content-Type '.+'
expect_body_file "$W/b1"

section "Range GET"
head -c 20 "$W/b1" | tail -c 10 >"$W/b1.10-19"
req GET "/v2/$R/blobs/$D1" -H 'Range: bytes=10-19'
expect_status 206
expect_header Content-Range "bytes 10-19/$SIZE"
expect_header Content-Length 10
expect_header_eq Docker-Content-Digest "$D1"
expect_body_file "$W/b1.10-19"

tail -c 10 "$W/b1" >"$W/b1.tail10"
req GET "/v2/$R/blobs/$D1" -H "Range: bytes=$((SIZE - 10))-"
expect_status 206
expect_header Content-Range "bytes $((SIZE - 10))-$((SIZE - 1))/$SIZE"
expect_body_file "$W/b1.tail10"

req GET "/v2/$R/blobs/$D1" -H 'Range: bytes=-10'
expect_status 206
expect_header Content-Range "bytes $((SIZE - 10))-$((SIZE - 1))/$SIZE"
expect_body_file "$W/b1.tail10"

# An end past the blob is clamped (RFC 9110 14.1.2).
req GET "/v2/$R/blobs/$D1" -H "Range: bytes=$((SIZE - 10))-$((SIZE + 500))"
expect_status 206
expect_header Content-Range "bytes $((SIZE - 10))-$((SIZE - 1))/$SIZE"
expect_body_file "$W/b1.tail10"

# A resumed pull: the second half.
tail -c $((SIZE - 50000)) "$W/b1" >"$W/b1.half"
req GET "/v2/$R/blobs/$D1" -H 'Range: bytes=50000-'
expect_status 206
expect_header Content-Length $((SIZE - 50000))
expect_body_file "$W/b1.half"

req GET "/v2/$R/blobs/$D1" -H "Range: bytes=$SIZE-$((SIZE + 10))"
expect_status 416
expect_header Content-Range "bytes \*/$SIZE"
expect_header Docker-Distribution-API-Version 'registry/2\.0'
expect_oci_error
# The blob is there: the range is what is wrong, not the blob.
expect_error_code RANGE_INVALID

# Several ranges or a malformed header: the server may ignore the header and
# send the whole blob (RFC 9110 14.2); it must not fail.
req GET "/v2/$R/blobs/$D1" -H 'Range: bytes=0-1,5-6'
if [ "$REQ_STATUS" = 206 ]; then
	expect_header Content-Type 'multipart/byteranges.*'
else
	expect_status 200
	expect_body_file "$W/b1"
fi
req GET "/v2/$R/blobs/$D1" -H 'Range: pages=1-2'
expect_status 200
expect_body_file "$W/b1"

# Range applies to GET only (RFC 9110 14.2): a HEAD with Range is a 200.
req HEAD "/v2/$R/blobs/$D1" -H 'Range: bytes=0-4'
expect_status 200
expect_header Content-Length $SIZE

section "empty blob"
: >"$W/empty"
push_blob "$R" "$W/empty"
DE=$BLOB_DIGEST
expect_eq "empty blob digest" "$DE" sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
req HEAD "/v2/$R/blobs/$DE"
expect_status 200
expect_header Content-Length 0
expect_header_eq Docker-Content-Digest "$DE"
req GET "/v2/$R/blobs/$DE"
expect_status 200
expect_body_empty

section "larger blob"
make_blob "$W/b5m" $((5 * 1024 * 1024 + 7)) b5m
push_blob "$R" "$W/b5m"
D5=$BLOB_DIGEST
req GET "/v2/$R/blobs/$D5"
expect_status 200
expect_header Content-Length $((5 * 1024 * 1024 + 7))
expect_body_file "$W/b5m"

section "unknown blobs"
ZERO=sha256:0000000000000000000000000000000000000000000000000000000000000000
req GET "/v2/$R/blobs/$ZERO"
expect_status 404
expect_error_code BLOB_UNKNOWN
req HEAD "/v2/$R/blobs/$ZERO"
expect_status 404
expect_no_header Docker-Content-Digest

# A blob is visible only in the repositories it was pushed or mounted to.
make_blob "$W/b2" 3000 b2
push_blob "$R2" "$W/b2"
D2=$BLOB_DIGEST
req GET "/v2/$R2/blobs/$D1"
expect_status 404
expect_error_code BLOB_UNKNOWN
req HEAD "/v2/$R2/blobs/$D1"
expect_status 404
req GET "/v2/$R/blobs/$D2"
expect_status 404
expect_error_code BLOB_UNKNOWN
# ... and a repository that does not exist has none.
req GET "/v2/$BERTH_TENANT/never-pushed/blobs/$D1"
expect_status 404
expect_error_code_in BLOB_UNKNOWN NAME_UNKNOWN

section "invalid digests"
for bad in sha256:1234 \
	sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855 \
	sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85 \
	sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855aa \
	sha256:zzb0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 \
	sha512:abcdef \
	md5:d41d8cd98f00b204e9800998ecf8427e \
	sha256 \
	sha256: \
	e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855; do
	req GET "/v2/$R/blobs/$bad"
	expect_status 400
	expect_error_code DIGEST_INVALID
done
req HEAD "/v2/$R/blobs/sha256:1234"
expect_status 400
req DELETE "/v2/$R/blobs/sha256:1234"
expect_status 400
expect_error_code DIGEST_INVALID

section "DELETE blob"
make_blob "$W/b3" 4096 b3
push_blob "$R" "$W/b3"
D3=$BLOB_DIGEST
push_blob "$R2" "$W/b3"
req DELETE "/v2/$R/blobs/$D3"
expect_status 202
expect_header Docker-Distribution-API-Version 'registry/2\.0'
req HEAD "/v2/$R/blobs/$D3"
expect_status 404
req GET "/v2/$R/blobs/$D3"
expect_status 404
expect_error_code BLOB_UNKNOWN
req DELETE "/v2/$R/blobs/$D3"
expect_status 404
expect_error_code BLOB_UNKNOWN
# The other repository's copy is untouched.
req GET "/v2/$R2/blobs/$D3"
expect_status 200
expect_body_file "$W/b3"
# Pushing it again brings it back.
push_blob "$R" "$W/b3"
req GET "/v2/$R/blobs/$D3"
expect_status 200
expect_body_file "$W/b3"
req DELETE "/v2/$R/blobs/$ZERO"
expect_status 404
expect_error_code BLOB_UNKNOWN

section "DELETE a blob that a manifest references"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
push_blob "$R" "$W/cfg"
DC=$BLOB_DIGEST
make_blob "$W/layer" 2048 layer
push_blob "$R" "$W/layer"
DL=$BLOB_DIGEST
make_manifest "$W/m" "$W/cfg" "$MT_OCI_CONFIG" "$W/layer"
push_manifest "$R" v1 "$W/m"
expect_status 201
# Two defensible answers: 409 (refused: blob and manifest intact) or 202
# (the link goes; the manifest stays and is not cascaded away).  The OCI
# conformance suite, run with OCI_DELETE_MANIFEST_BEFORE_BLOBS=0, needs the
# latter.
req DELETE "/v2/$R/blobs/$DL"
expect_status_in 409 202
if [ "$REQ_STATUS" = 409 ]; then
	expect_oci_error
	req GET "/v2/$R/blobs/$DL"
	expect_status 200
	expect_body_file "$W/layer"
else
	req HEAD "/v2/$R/blobs/$DL"
	expect_status 404
	push_blob "$R" "$W/layer"
fi
req GET "/v2/$R/manifests/v1"
expect_status 200
expect_body_file "$W/m"
# Once the manifest is gone, the blob can go.
req DELETE "/v2/$R/manifests/$(digest_of "$W/m")"
expect_status 202
req DELETE "/v2/$R/blobs/$DL"
expect_status 202
req HEAD "/v2/$R/blobs/$DL"
expect_status 404
req HEAD "/v2/$R/blobs/$DC"
expect_status 200

berth_done
