#!/bin/bash
# End-to-end: cross-repository blob mount (POST ?mount=&from=): 201 with
# Location and Docker-Content-Digest when mounted; otherwise 202 and an
# ordinary upload session that works.  Without from, the blob is mounted
# when another repository of the same account holds it.
BERTH_AUTO_KEY=1 # every request carries an access key of the test account
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

A=$BERTH_TENANT/mount-src
B=$BERTH_TENANT/mount-dst
C=$BERTH_TENANT/mount-third
berth_start || exit 1
W=$E2E_WORK
UPLOAD_RE="/v2/$B/blobs/uploads/([0-9a-f]{32})(\\?.*)?"

# expect_fallback_session FILE: the last answer is a 202 upload session in B;
# finishing it with FILE's bytes gives a 201 and the blob.
expect_fallback_session() {
	local loc d
	expect_status 202
	expect_header Location "$UPLOAD_RE"
	expect_header Docker-Upload-UUID '[0-9a-f]{32}'
	expect_header Range '0-0'
	loc=$(hdr Location) || return
	d=$(digest_of "$1")
	req PUT "$(with_query "$loc" "digest=$d")" -H 'Content-Type: application/octet-stream' \
		--data-binary "@$1"
	expect_status 201
	req GET "/v2/$B/blobs/$d"
	expect_status 200
	expect_body_file "$1"
}

make_blob "$W/a1" 50000 mount-a1
push_blob "$A" "$W/a1"
DA1=$BLOB_DIGEST
make_blob "$W/c1" 6000 mount-c1
push_blob "$C" "$W/c1"
DC1=$BLOB_DIGEST

section "mount from a repository that has the blob"
req HEAD "/v2/$B/blobs/$DA1"
expect_status 404
req POST "/v2/$B/blobs/uploads/?mount=$DA1&from=$A" -H 'Content-Length: 0'
expect_status 201
expect_header Location "/v2/$B/blobs/$DA1"
expect_header_eq Docker-Content-Digest "$DA1"
expect_header Docker-Distribution-API-Version 'registry/2\.0'
req HEAD "/v2/$B/blobs/$DA1"
expect_status 200
expect_header Content-Length 50000
expect_header_eq Docker-Content-Digest "$DA1"
req GET "/v2/$B/blobs/$DA1"
expect_status 200
expect_body_file "$W/a1"
# Mounting again is still a success.
req POST "/v2/$B/blobs/uploads/?mount=$DA1&from=$A" -H 'Content-Length: 0'
expect_status 201
expect_header_eq Docker-Content-Digest "$DA1"

section "a mounted blob is linked for manifests"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
push_blob "$A" "$W/cfg"
DCFG=$BLOB_DIGEST
req POST "/v2/$B/blobs/uploads/?mount=$DCFG&from=$A" -H 'Content-Length: 0'
expect_status 201
make_manifest "$W/m" "$W/cfg" "$MT_OCI_CONFIG" "$W/a1"
push_manifest "$B" v1 "$W/m"
expect_status 201

section "the mount outlives the source's copy"
req DELETE "/v2/$A/blobs/$DA1"
expect_status 202
req HEAD "/v2/$A/blobs/$DA1"
expect_status 404
req GET "/v2/$B/blobs/$DA1"
expect_status 200
expect_body_file "$W/a1"

section "blob not in 'from': fallback to an upload session"
make_blob "$W/x1" 3000 mount-x1
# DC1 exists in C but not in A.
req POST "/v2/$B/blobs/uploads/?mount=$DC1&from=$A" -H 'Content-Length: 0'
expect_fallback_session "$W/c1"
# A digest nobody has.
req POST "/v2/$B/blobs/uploads/?mount=$(digest_of "$W/x1")&from=$A" -H 'Content-Length: 0'
expect_fallback_session "$W/x1"
# A source repository that does not exist.
make_blob "$W/x2" 3001 mount-x2
req POST "/v2/$B/blobs/uploads/?mount=$DC1&from=$BERTH_TENANT/never-pushed" -H 'Content-Length: 0'
expect_fallback_session "$W/x2"
# A source name that is not a valid name.
make_blob "$W/x3" 3002 mount-x3
req POST "/v2/$B/blobs/uploads/?mount=$DC1&from=$BERTH_TENANT/Bad..Name" -H 'Content-Length: 0'
expect_fallback_session "$W/x3"
make_blob "$W/x4" 3003 mount-x4
req POST "/v2/$B/blobs/uploads/?mount=$DC1&from=" -H 'Content-Length: 0'
expect_fallback_session "$W/x4"

section "mount without from"
# A digest nobody has: exactly 202 (the conformance suite checks this).
DUMMY=sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9
req POST "/v2/$B/blobs/uploads/?mount=$DUMMY" -H 'Content-Length: 0'
expect_status 202
expect_header Location "$UPLOAD_RE"
# The account holds it (in C): mounted from there (201).
make_blob "$W/x5" 3004 mount-x5
push_blob "$C" "$W/x5"
DX5=$BLOB_DIGEST
req POST "/v2/$B/blobs/uploads/?mount=$DX5" -H 'Content-Length: 0'
expect_status 201
expect_header Location "/v2/$B/blobs/$DX5"
expect_header_eq Docker-Content-Digest "$DX5"
req GET "/v2/$B/blobs/$DX5"
expect_status 200
expect_body_file "$W/x5"

section "mount with a malformed digest"
req POST "/v2/$B/blobs/uploads/?mount=sha256:nothex&from=$A" -H 'Content-Length: 0'
if [ "$REQ_STATUS" = 400 ]; then
	expect_error_code DIGEST_INVALID
else
	make_blob "$W/x6" 3005 mount-x6
	expect_fallback_session "$W/x6"
fi

section "mount into a new repository creates it"
N=$BERTH_TENANT/mount-new
req POST "/v2/$N/blobs/uploads/?mount=$DC1&from=$C" -H 'Content-Length: 0'
expect_status 201
expect_header Location "/v2/$N/blobs/$DC1"
req GET "/v2/$N/blobs/$DC1"
expect_status 200
expect_body_file "$W/c1"

berth_done
