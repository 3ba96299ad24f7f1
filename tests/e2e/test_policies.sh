#!/bin/bash
# End-to-end: retention and immutability policies against the real berthd,
# set with `berthd policy` while the server runs.  Immutable tags: a PUT
# that would move one is 400 TAG_INVALID, a DELETE of it or of a manifest
# it points at is 403 DENIED, both naming the tag and the rule; creating
# it and re-putting the same digest are fine; other repositories and
# mutable tags are unaffected.  Retention through `berthd gc --grace 0s`:
# keep-last with a protected tag, the dry run changing nothing and
# printing what the real run then removes; untagged-after removing a
# manifest pushed by digest but sparing an index's child and a referrer
# of a live subject.  Policy list/delete and their errors.
BERTH_AUTO_KEY=1 # every request carries an access key of the test account
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T=$BERTH_TENANT
W=$E2E_WORK
berth_start || exit 1

# berthd's admin commands on the running server's data directory.
admin() {
	timeout 120 "$BERTHD" "$@" --data-dir "$BERTH_DATA" >"$W/admin.out" 2>"$W/admin.err"
	ADMIN_STATUS=$?
	ADMIN_OUT=$(cat "$W/admin.out")
}

admin policy list
if [ "$ADMIN_STATUS" != 0 ]; then
	fail "berthd policy list: exit $ADMIN_STATUS (is the policy command there?)" "$(cat "$W/admin.err")"
	berth_done
	exit 1
fi

# push_blobs REPO N: the blobs of image N (config N, the shared layer);
# $W/mN is its manifest.
push_blobs() {
	local repo=$1 n=$2
	printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"n":%s}' \
		"$n" >"$W/cfg$n"
	push_blob "$repo" "$W/cfg$n"
	push_blob "$repo" "$W/layer"
	make_manifest "$W/m$n" "$W/cfg$n" "$MT_OCI_CONFIG" "$W/layer"
}

# push_image REPO TAG N: image N under TAG; IMAGE_DIGEST is its digest.
push_image() {
	local repo=$1 tag=$2 n=$3
	push_blobs "$repo" "$n"
	IMAGE_DIGEST=$(digest_of "$W/m$n")
	push_manifest "$repo" "$tag" "$W/m$n"
	[ "$REQ_STATUS" = 201 ] || fail_resp "push $repo:$tag: status $REQ_STATUS"
}

# expect_message REGEX: the text of the first OCI error of the last
# response (its message and its detail, where the driver's words are).
expect_message() {
	local got
	got=$(jq -r '.errors[0] | "\(.message // "") \(.detail // "" | tostring)"' <"$REQ_BODY_FILE" 2>/dev/null)
	expect_match "$REQ_DESC: message" "$got" "$1"
}

tags_of() {
	req GET "/v2/$1/tags/list"
	jq -c -r '.tags // [] | join(",")' <"$REQ_BODY_FILE" 2>/dev/null
}

make_blob "$W/layer" 2000 policies-layer

section "policy set and list"
admin policy set --account "$T" --repo 'prod/*' --immutable-tags 'v*,release'
expect_eq "policy set prod/*: exit" "$ADMIN_STATUS" 0
admin policy list --account "$T"
expect_eq "policy list" "$ADMIN_OUT" \
	"account=$T repo=prod/* keep_last=- keep_within=- untagged_after=- protect=- immutable=v*,release"
admin policy set --account ffffffffffffffffffffffffffffffff --repo '*' --keep-last 1
expect_eq "policy set for an unknown account: exit" "$ADMIN_STATUS" 1

section "immutable tags"
P=$T/prod/api
push_image "$P" v1 1
D1=$IMAGE_DIGEST
push_image "$P" latest 2
D2=$IMAGE_DIGEST
# The same digest again: fine.
push_manifest "$P" v1 "$W/m1"
expect_status 201
# Moving it: refused, naming the tag and the rule; it stays where it was.
push_manifest "$P" v1 "$W/m2"
expect_status 400
expect_error_code TAG_INVALID
expect_message 'v1.*prod/\*|prod/\*.*v1'
req GET "/v2/$P/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
expect_status 200
expect_header_eq Docker-Content-Digest "$D1"
# A mutable tag moves as ever.
push_manifest "$P" latest "$W/m1"
expect_status 201
push_manifest "$P" latest "$W/m2"
expect_status 201
# Deleting the tag, or the manifest it points at: denied.
req DELETE "/v2/$P/manifests/v1"
expect_status 403
expect_error_code DENIED
expect_message 'v1'
req DELETE "/v2/$P/manifests/$D1"
expect_status 403
expect_error_code DENIED
expect_message 'v1'
req GET "/v2/$P/manifests/$D1" -H "Accept: $MT_OCI_MANIFEST"
expect_status 200
# A manifest with mutable tags only can go.
req DELETE "/v2/$P/manifests/latest"
expect_status 202
req DELETE "/v2/$P/manifests/$D2"
expect_status 202
# Another repository of the account: the pattern does not match it.
push_image "$T/dev/api" v1 1
push_blobs "$T/dev/api" 2
push_manifest "$T/dev/api" v1 "$W/m2"
expect_status 201

section "retention: keep-last 2, protect t1, via berthd gc"
R=$T/ret
for i in 1 2 3 4 5; do
	push_image "$R" "t$i" $((10 + i))
	eval "DT$i=\$IMAGE_DIGEST"
	sleep 0.05 # distinct push times, oldest first
done
expect_eq "tags before" "$(tags_of "$R")" "t1,t2,t3,t4,t5"
admin policy set --account "$T" --repo 'ret' --keep-last 2 --protect-tags 't1'
expect_eq "policy set ret: exit" "$ADMIN_STATUS" 0

admin gc --dry-run --grace 0s
expect_eq "gc --dry-run: exit" "$ADMIN_STATUS" 0
DRY=$ADMIN_OUT
expect_match "dry run names t2" "$DRY" "would remove tag $R:t2 \\(keep-last 2 of policy 'ret'\\)"
expect_match "dry run names t3" "$DRY" "would remove tag $R:t3 \\("
if grep -Eq "tag $R:t(1|4|5) " <<<"$DRY"; then
	fail "dry run would remove a kept tag" "$DRY"
else
	ok "dry run spares t1, t4, t5"
fi
expect_match "dry run summary" "$(tail -n 1 <<<"$DRY")" '^gc \(dry run\): would remove 2 tags'
expect_eq "tags after the dry run" "$(tags_of "$R")" "t1,t2,t3,t4,t5"

admin gc --grace 0s
expect_eq "gc: exit" "$ADMIN_STATUS" 0
expect_match "gc removed t2" "$ADMIN_OUT" "removed tag $R:t2 \\(keep-last 2 of policy 'ret'\\)"
expect_match "gc removed t3" "$ADMIN_OUT" "removed tag $R:t3 \\("
expect_match "gc summary" "$(tail -n 1 <<<"$ADMIN_OUT")" '^gc: removed 2 tags'
# What the dry run said is what the real run did (the tag lines).
expect_eq "dry run = real run" "$(grep '^would remove tag' <<<"$DRY" | sed 's/^would remove/removed/')" \
	"$(grep '^removed tag' <<<"$ADMIN_OUT")"
expect_eq "tags after gc" "$(tags_of "$R")" "t1,t4,t5"
# The manifests only t2 and t3 held went with them (grace 0).
req GET "/v2/$R/manifests/$DT2" -H "Accept: $MT_OCI_MANIFEST"
expect_status 404
req GET "/v2/$R/manifests/$DT3" -H "Accept: $MT_OCI_MANIFEST"
expect_status 404
req GET "/v2/$R/manifests/$DT1" -H "Accept: $MT_OCI_MANIFEST"
expect_status 200
req GET "/v2/$R/manifests/t5" -H "Accept: $MT_OCI_MANIFEST"
expect_status 200
expect_header_eq Docker-Content-Digest "$DT5"
# Nothing more to do.
admin gc --grace 0s
expect_eq "second gc: exit" "$ADMIN_STATUS" 0
if grep -q '^removed tag' <<<"$ADMIN_OUT"; then
	fail "a second gc removed tags" "$ADMIN_OUT"
else
	ok "a second gc removes no tag"
fi

section "retention: untagged-after, sparing index children and live subjects"
U=$T/untagged
push_blobs "$U" 21
UD=$(digest_of "$W/m21")
push_manifest "$U" "$UD" "$W/m21"
expect_status 201
# A child pushed by digest, listed by a tagged index.
push_blobs "$U" 22
CD=$(digest_of "$W/m22")
push_manifest "$U" "$CD" "$W/m22"
expect_status 201
printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%s}]}' \
	"$MT_OCI_INDEX" "$MT_OCI_MANIFEST" "$CD" "$(size_of "$W/m22")" >"$W/index"
push_manifest "$U" multi "$W/index"
expect_status 201
# A referrer, pushed by digest, of a tagged (live) subject.
push_image "$U" img 23
SD=$IMAGE_DIGEST
push_blobs "$U" 24
jq -c --arg mt "$MT_OCI_MANIFEST" --arg d "$SD" --argjson n "$(size_of "$W/m23")" \
	'. + {artifactType: "application/x-e2e", subject: {mediaType: $mt, digest: $d, size: $n}}' \
	<"$W/m24" >"$W/referrer"
RD=$(digest_of "$W/referrer")
push_manifest "$U" "$RD" "$W/referrer"
expect_status 201
admin policy set --account "$T" --repo 'untagged' --untagged-after 1s
expect_eq "policy set untagged: exit" "$ADMIN_STATUS" 0
sleep 1.5 # past the delay

admin gc --dry-run --grace 0s
expect_eq "gc --dry-run: exit" "$ADMIN_STATUS" 0
expect_match "dry run names the untagged manifest" "$ADMIN_OUT" "would remove manifest $U@$UD "
req GET "/v2/$U/manifests/$UD" -H "Accept: $MT_OCI_MANIFEST"
expect_status 200
admin gc --grace 0s
expect_eq "gc: exit" "$ADMIN_STATUS" 0
expect_match "gc removed the untagged manifest" "$ADMIN_OUT" "removed manifest $U@$UD "
if grep -Eq "manifest $U@($CD|$RD|$SD) " <<<"$ADMIN_OUT"; then
	fail "gc removed a held manifest" "$ADMIN_OUT"
else
	ok "gc spared the index child, the referrer and its subject"
fi
req GET "/v2/$U/manifests/$UD" -H "Accept: $MT_OCI_MANIFEST"
expect_status 404
for d in "$CD" "$RD" "$SD"; do
	req GET "/v2/$U/manifests/$d" -H "Accept: $MT_OCI_MANIFEST"
	expect_status 200
done
req GET "/v2/$U/manifests/multi" -H "Accept: $MT_OCI_INDEX"
expect_status 200

section "policy delete"
admin policy delete --account "$T" --repo 'prod/*'
expect_eq "policy delete: exit" "$ADMIN_STATUS" 0
admin policy delete --account "$T" --repo 'prod/*'
expect_eq "policy delete again: exit" "$ADMIN_STATUS" 1
# (gc took image 2's links in $P with its manifest: push them again.)
push_blobs "$P" 2
push_manifest "$P" v1 "$W/m2"
expect_status 201
admin policy list --account "$T"
expect_eq "policy list after delete" "$ADMIN_OUT" \
	"account=$T repo=ret keep_last=2 keep_within=- untagged_after=- protect=t1 immutable=-
account=$T repo=untagged keep_last=- keep_within=- untagged_after=1s protect=- immutable=-"

berth_done
