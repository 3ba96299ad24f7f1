#!/bin/bash
# End-to-end: repository names, tags and routing.  Valid and invalid names
# on every endpoint (400 NAME_INVALID), the 255-byte limit, names whose
# components look like endpoint words, path traversal, invalid tags (400 on
# PUT, 404 on GET/HEAD), unknown endpoints (404 with an OCI error body) and
# wrong methods (405 UNSUPPORTED with an Allow header).
BERTH_AUTO_KEY=1 # every request carries an access key of the test account
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T=$BERTH_TENANT
R=$T/names
berth_start || exit 1
W=$E2E_WORK

printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
make_blob "$W/l1" 1000 names-l1
make_manifest "$W/m1" "$W/cfg" "$MT_OCI_CONFIG" "$W/l1"
D1=$(digest_of "$W/m1")
DC=$(digest_of "$W/cfg")

# full_push NAME TAG: blobs + manifest; checks every step and reads back.
full_push() {
	local name=$1 tag=$2 f
	for f in cfg l1; do
		req POST "/v2/$name/blobs/uploads/?digest=$(digest_of "$W/$f")" --data-binary "@$W/$f"
		expect_status 201
	done
	req HEAD "/v2/$name/blobs/$DC"
	expect_status 200
	push_manifest "$name" "$tag" "$W/m1"
	expect_status 201
	req GET "/v2/$name/manifests/$tag"
	expect_status 200
	expect_body_file "$W/m1"
	req GET "/v2/$name/tags/list"
	expect_status 200
	expect_json '.name' "$name"
	expect_json '.tags' "[\"$tag\"]"
	req GET "/v2/$name/referrers/$D1"
	expect_status 200
}

section "valid names"
for n in "$T/a" "$T/0app/b/c/d" "$T/a.b" "$T/a_b" "$T/a-b.c_d/e-f"; do
	full_push "$n" v1
done

section "the 255-byte limit"
n255=$T/$(head -c $((255 - 33)) /dev/zero | tr '\0' a)
expect_eq "name length" "${#n255}" 255
full_push "$n255" v1
n256=${n255}a
req GET "/v2/$n256/tags/list"
expect_status 400
expect_error_code NAME_INVALID
req POST "/v2/$n256/blobs/uploads/" -H 'Content-Length: 0'
expect_status 400
expect_error_code NAME_INVALID
# A very long path is refused cleanly.
huge=$T/$(head -c 60000 /dev/zero | tr '\0' a)
req GET "/v2/$huge/tags/list"
expect_status_in 400 414
expect_oci_error

section "names made of endpoint words"
for n in "$T/blobs" "$T/manifests" "$T/tags/list" "$T/x/blobs/uploads" "$T/referrers" "$T/v2" "$T/catalog"; do
	full_push "$n" latest
done
# An upload session in a name that ends in /blobs/uploads.
N=$T/x/blobs/uploads
req POST "/v2/$N/blobs/uploads/" -H 'Content-Length: 0'
expect_status 202
LOC=$(hdr Location)
expect_match "Location of a session in $N" "$LOC" "^/v2/$N/blobs/uploads/[0-9a-f]{32}"
req PATCH "$LOC" -H 'Content-Range: 0-999' -H 'Content-Type: application/octet-stream' \
	--data-binary "@$W/l1"
expect_status 202
expect_header Range 0-999
req GET "$LOC"
expect_status 204
req DELETE "$LOC"
expect_status 204

section "invalid names on every endpoint"
# Every endpoint with a few names...
for bad in "$T/App" "$T/a..b" "/$T/a"; do
	req GET "/v2/$bad/tags/list"
	expect_status 400
	expect_error_code NAME_INVALID
	req GET "/v2/$bad/manifests/latest"
	expect_status 400
	expect_error_code NAME_INVALID
	req HEAD "/v2/$bad/manifests/latest"
	expect_status 400
	req PUT "/v2/$bad/manifests/latest" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$W/m1"
	expect_status 400
	expect_error_code NAME_INVALID
	req GET "/v2/$bad/blobs/$DC"
	expect_status 400
	expect_error_code NAME_INVALID
	req POST "/v2/$bad/blobs/uploads/" -H 'Content-Length: 0'
	expect_status 400
	expect_error_code NAME_INVALID
	req DELETE "/v2/$bad/manifests/$D1"
	expect_status 400
	expect_error_code NAME_INVALID
	req GET "/v2/$bad/referrers/$D1"
	expect_status 400
	expect_error_code NAME_INVALID
done
# ... and more names on two endpoints.  (A NUL must not cut "T/a%00b" down
# to the existing "T/a".)
for bad in "$T/a%00b" "$T/app-" "$T/-app" "$T/.app" "$T/a//b" "$T/app/" "$T/a@b" "$T/a%20b" "$T/%C3%A9" \
	"$T/a:b" "$T/a+b" "$T/a_" "$T/a%0Ab" "$T/A/b"; do
	req GET "/v2/$bad/tags/list"
	expect_status 400
	expect_error_code NAME_INVALID
	req POST "/v2/$bad/blobs/uploads/" -H 'Content-Length: 0'
	expect_status 400
	expect_error_code NAME_INVALID
done
# A mount target with an invalid name is refused (the source name is not).
req POST "/v2/$T/App/blobs/uploads/?mount=$DC&from=$T/a" -H 'Content-Length: 0'
expect_status 400
expect_error_code NAME_INVALID

section "path traversal"
before=$(cd "$E2E_TMP" && find . -path ./work -prune -o -path './srv*/data.*' -prune -o -print | sort)
for p in "/v2/$T/../../../etc/passwd/tags/list" "/v2/$T/app/../../x/tags/list" \
	"/v2/$T/%2e%2e/%2e%2e/x/tags/list" "/v2/$T/a/./b/tags/list" "/v2/../../v2/$T/a/tags/list"; do
	req GET "$p" --path-as-is
	expect_status_in 400 404
	expect_oci_error
	req PUT "${p%/tags/list}/manifests/latest" --path-as-is -H "Content-Type: $MT_OCI_MANIFEST" \
		--data-binary "@$W/m1"
	expect_status_in 400 404
	req POST "${p%/tags/list}/blobs/uploads/?digest=$DC" --path-as-is --data-binary "@$W/cfg"
	expect_status_in 400 404
done
after=$(cd "$E2E_TMP" && find . -path ./work -prune -o -path './srv*/data.*' -prune -o -print | sort)
expect_eq "no files created outside the data directory" "$after" "$before"
if find "$BERTH_DATA" -name passwd -o -name x | grep -q .; then
	fail "traversal left a file named passwd or x in the data directory"
else
	ok "no traversal files in the data directory"
fi

section "tags"
push_blob "$R" "$W/cfg"
push_blob "$R" "$W/l1"
t128=$(head -c 127 /dev/zero | tr '\0' t)X
expect_eq "tag length" "${#t128}" 128
for t in "$t128" _lead A 0 v1.2.3-rc.1_build a-._b; do
	push_manifest "$R" "$t" "$W/m1"
	if [ "$REQ_STATUS" = 201 ]; then
		ok "PUT tag '$t': 201"
	else
		fail_resp "PUT tag '$t': status $REQ_STATUS, want 201"
	fi
	req GET "/v2/$R/manifests/$t"
	expect_status 200
done
for t in "${t128}9" .lead -lead 'a+b' 'a%20b' '%C3%A9'; do
	push_manifest "$R" "$t" "$W/m1"
	expect_status 400
	expect_error_code MANIFEST_INVALID
	# Reads of an invalid tag are plain misses (the conformance suite
	# expects 404 for ".INVALID_MANIFEST_NAME").
	req GET "/v2/$R/manifests/$t"
	expect_status 404
	expect_error_code MANIFEST_UNKNOWN
	req HEAD "/v2/$R/manifests/$t"
	expect_status 404
	req DELETE "/v2/$R/manifests/$t"
	expect_status_in 400 404
	expect_oci_error
done
req GET "/v2/$R/manifests/.INVALID_MANIFEST_NAME"
expect_status 404
req GET "/v2/$R/tags/list"
expect_json "[.tags[] | select(startswith(\".\") or startswith(\"-\"))]" '[]'

section "a NUL in the path does not cut it short"
push_manifest "$R" nul "$W/m1"
expect_status 201
push_manifest "$R" "nul%00evil" "$W/m1"
expect_status 400
expect_oci_error
req GET "/v2/$R/manifests/nul%00evil"
expect_status_in 400 404
req DELETE "/v2/$R/manifests/nul%00evil"
expect_status_in 400 404
req GET "/v2/$R/manifests/nul"
expect_status 200
req GET "/v2/$R/tags/list%00"
expect_status_in 400 404
req GET "/v2/$R/blobs/$DC%00"
expect_status_in 400 404

section "malformed digest references"
req GET "/v2/$R/manifests/sha256:totallywrong"
expect_status 400
expect_error_code DIGEST_INVALID
req HEAD "/v2/$R/manifests/sha256:totallywrong"
expect_status 400
printf 'blablabla' >"$W/bla"
req PUT "/v2/$R/manifests/sha256:totallywrong" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$W/bla"
expect_status 400
expect_error_code_in DIGEST_INVALID MANIFEST_INVALID
req GET "/v2/$R/manifests/md5:d41d8cd98f00b204e9800998ecf8427e"
expect_status 400
expect_error_code DIGEST_INVALID

section "unknown endpoints"
for p in "/v2/$R/foo" "/v2/$R/blobs/" "/v2/$R/manifests/" "/v2/$R/tags/" "/v2/$R/tags/list/extra" \
	"/v2/$R/blobs/uploads/a/b" "/v2/$R/referrers/" "/v3/" / /favicon.ico "/v2/_catalog/x" /v2/_ping; do
	req GET "$p"
	expect_status_in 400 404
	expect_header Docker-Distribution-API-Version 'registry/2\.0'
	expect_oci_error
done
req GET /v2
expect_status_in 200 301 404

section "wrong methods"
U=/v2/$R/blobs/uploads/0123456789abcdef0123456789abcdef
while read -r m p; do
	[ -n "$m" ] || continue
	req "$m" "$p" -H 'Content-Length: 0'
	expect_status 405
	expect_error_code UNSUPPORTED
	expect_header Docker-Distribution-API-Version 'registry/2\.0'
	allow=$(hdr Allow) || allow=
	if [ -z "$allow" ]; then
		fail_resp "$REQ_DESC: 405 without an Allow header"
	elif [[ ", $allow," == *", $m,"* ]]; then
		fail_resp "$REQ_DESC: Allow '$allow' lists the refused method $m"
	else
		ok "$REQ_DESC: Allow: $allow"
	fi
done <<EOF
POST /v2/$R/manifests/latest
PATCH /v2/$R/manifests/latest
PATCH /v2/
POST /v2/
DELETE /v2/
PUT /v2/$R/blobs/$DC
POST /v2/$R/blobs/$DC
PATCH /v2/$R/blobs/$DC
DELETE /v2/$R/tags/list
PUT /v2/$R/tags/list
POST /v2/$R/tags/list
PUT /v2/_catalog
DELETE /v2/_catalog
POST /v2/$R/referrers/$D1
DELETE /v2/$R/referrers/$D1
POST $U
PUT /v2/$R/blobs/uploads/
DELETE /v2/$R/blobs/uploads/
EOF
req FOO /v2/
expect_status_in 400 405 501
req GET /v2/
expect_status 200

berth_done
