#!/bin/bash
# End-to-end: who GET /v2/_catalog lists, as content comes and goes (the
# per-repository count of manifests and blob links, schema 7).  A
# repository is listed iff it holds a manifest or a blob link:
#   - an upload session alone (open, or cancelled) never lists it;
#   - a pushed blob lists it, DELETE of its last blob unlists it;
#   - a pushed image lists it; with its blobs deleted its manifest still
#     holds it; DELETE of the manifest then unlists it;
#   - `berthd gc --grace 0s` (server running) unlists a repository whose
#     tag was deleted once it collects the manifest and its links, and
#     leaves one that keeps a tagged image;
#   - a repository emptied and pushed again is listed again;
#   - the same after a restart, and paging by n=1 over the listed names.
BERTH_AUTO_KEY=1 # every request carries an access key of the test account
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in curl jq openssl; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

T=$BERTH_TENANT
W=$E2E_WORK
printf 'gc:\n  interval: 0s\n' >"$W/gc-off.yml"
berth_start --config "$W/gc-off.yml" || exit 1

printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
make_blob "$W/l1" 1500 listing-l1
make_blob "$W/l2" 2500 listing-l2
make_manifest "$W/m1" "$W/cfg" "$MT_OCI_CONFIG" "$W/l1"
make_manifest "$W/m2" "$W/cfg" "$MT_OCI_CONFIG" "$W/l2"
M1=$(digest_of "$W/m1")
D_CFG=$(digest_of "$W/cfg")
D_L1=$(digest_of "$W/l1")

# listed: the catalog's names under the tenant, comma-separated
listed() {
	req GET "/v2/_catalog?n=1000"
	[ "$REQ_STATUS" = 200 ] || fail_resp "catalog: status $REQ_STATUS"
	jq -r --arg t "$T/" '[.repositories[] | select(startswith($t)) | ltrimstr($t)] | join(",")' <"$REQ_BODY_FILE"
}
expect_listed() { expect_eq "$1" "$(listed)" "$2"; }

push_image() { # push_image REPO TAG MANIFEST LAYER
	push_blob "$1" "$W/cfg"
	push_blob "$1" "$4"
	push_manifest "$1" "$2" "$3"
	[ "$REQ_STATUS" = 201 ] || fail_resp "push $1:$2: status $REQ_STATUS"
}

section "an upload session alone lists nothing"
req POST "/v2/$T/upload-only/blobs/uploads/" -H 'Content-Length: 0'
expect_status 202
UPLOAD=$(hdr Location)
expect_listed "open upload session" ""
req PATCH "$UPLOAD" -H 'Content-Type: application/octet-stream' --data-binary "@$W/l1"
expect_status 202
expect_listed "upload session with data" ""
req DELETE "$(hdr Location)"
expect_status 204
expect_listed "cancelled upload session" ""

section "a blob lists the repository, deleting the last one unlists it"
push_blob "$T/blobs" "$W/l1"
push_blob "$T/blobs" "$W/l2"
push_blob "$T/blobs" "$W/l2" # again: one link
expect_listed "two blobs pushed" "blobs"
req DELETE "/v2/$T/blobs/blobs/$D_L1"
expect_status 202
expect_listed "one blob left" "blobs"
req DELETE "/v2/$T/blobs/blobs/$(digest_of "$W/l2")"
expect_status 202
expect_listed "last blob deleted" ""

section "a manifest holds the repository without its blobs"
push_image "$T/image" v1 "$W/m1" "$W/l1"
expect_listed "image pushed" "image"
req DELETE "/v2/$T/image/blobs/$D_CFG"
expect_status 202
req DELETE "/v2/$T/image/blobs/$D_L1"
expect_status 202
expect_listed "blobs deleted, manifest left" "image"
req DELETE "/v2/$T/image/manifests/$M1"
expect_status 202
expect_listed "manifest deleted too" ""
req GET "/v2/$T/image/tags/list"
expect_status_in 200 404

section "berthd gc: a deleted tag's repository leaves the catalog once collected"
push_image "$T/keep" v1 "$W/m1" "$W/l1"
push_image "$T/untag" v1 "$W/m2" "$W/l2"
expect_listed "two images" "keep,untag"
req DELETE "/v2/$T/untag/manifests/v1"
expect_status 202
expect_listed "tag deleted, not collected yet" "keep,untag"
timeout 120 "$BERTHD" gc --data-dir "$BERTH_DATA" --dry-run --grace 0s >"$W/gc-dry.out" 2>"$W/gc-dry.err" ||
	fail "berthd gc --dry-run failed" "$(head -c 2000 "$W/gc-dry.err")"
expect_listed "after a dry run" "keep,untag"
timeout 120 "$BERTHD" gc --data-dir "$BERTH_DATA" --grace 0s >"$W/gc.out" 2>"$W/gc.err" ||
	fail "berthd gc failed" "$(head -c 2000 "$W/gc.err")"
expect_match "gc removed untag's manifest" "$(cat "$W/gc.out")" "removed manifest $T/untag@"
expect_listed "after gc" "keep"
req GET "/v2/$T/keep/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
expect_status 200

section "pushed again, listed again; the same after a restart; paging"
push_image "$T/untag" v2 "$W/m2" "$W/l2"
push_blob "$T/blobs" "$W/l1"
push_blob "$T/upload-only" "$W/l1"
expect_listed "pushed again" "blobs,keep,untag,upload-only"
berth_restart || exit 1
expect_listed "after a restart" "blobs,keep,untag,upload-only"
next="/v2/_catalog?n=1&last=$T/"
got=
pages=0
while [ -n "$next" ] && [ $pages -lt 20 ]; do
	req GET "$next"
	[ "$REQ_STATUS" = 200 ] || break
	got="$got$(jq -r --arg t "$T/" '.repositories[] | select(startswith($t)) | ltrimstr($t) + ","' <"$REQ_BODY_FILE")"
	pages=$((pages + 1))
	next=$(link_next) || next=
done
expect_eq "n=1 pages after the tenant prefix" "$got" "blobs,keep,untag,upload-only,"

berth_done
