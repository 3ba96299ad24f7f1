#!/bin/bash
# End-to-end: manifests with a subject (OCI-Subject on PUT) and the referrers
# API: the index document and its descriptors (artifactType, falling back to
# the config mediaType; annotations), the artifactType filter with
# OCI-Filters-Applied, unknown and invalid subjects, and deletion.
BERTH_AUTO_KEY=1 # every request carries an access key of the test account
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$BERTH_TENANT/referrers
R2=$BERTH_TENANT/referrers-other
berth_start || exit 1
W=$E2E_WORK
ZERO=sha256:0000000000000000000000000000000000000000000000000000000000000000
SBOM=application/vnd.example.sbom.v1
SIGCFG=application/vnd.example.sig.config.v1+json

printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
make_blob "$W/l1" 1000 ref-l1
printf '{}' >"$W/empty"
make_blob "$W/sbom" 700 ref-sbom
make_blob "$W/sig" 64 ref-sig
printf '{"signer":"test"}' >"$W/sigcfg"
for f in cfg l1 empty sbom sig sigcfg; do
	push_blob "$R" "$W/$f"
done

# The subject.
make_manifest "$W/subject" "$W/cfg" "$MT_OCI_CONFIG" "$W/l1"
DS=$(digest_of "$W/subject")
SS=$(size_of "$W/subject")
push_manifest "$R" v1 "$W/subject"
expect_status 201

# referrer OUT SUBJECT_DIGEST SUBJECT_SIZE ARTIFACT_TYPE CONFIG_FILE CONFIG_TYPE LAYER ANNOTATION_VALUE
# An image manifest with a subject; ARTIFACT_TYPE may be empty (then no
# artifactType field).
referrer() {
	jq -c -n --arg mt "$MT_OCI_MANIFEST" --arg sd "$2" --argjson ss "$3" --arg at "$4" \
		--arg cd "$(digest_of "$5")" --argjson cs "$(size_of "$5")" --arg ct "$6" \
		--arg ld "$(digest_of "$7")" --argjson ls "$(size_of "$7")" --arg av "$8" '
		{schemaVersion: 2, mediaType: $mt}
		+ (if $at == "" then {} else {artifactType: $at} end)
		+ {config: {mediaType: $ct, digest: $cd, size: $cs},
		   layers: [{mediaType: "application/octet-stream", digest: $ld, size: $ls}],
		   subject: {mediaType: $mt, digest: $sd, size: $ss},
		   annotations: {"org.example.note": $av, "org.opencontainers.image.created": "2024-01-01T00:00:00Z"}}' |
		tr -d '\n' >"$1"
}

section "PUT with a subject answers OCI-Subject"
referrer "$W/r-sbom" "$DS" "$SS" "$SBOM" "$W/empty" application/vnd.oci.empty.v1+json "$W/sbom" sbom-1
D_SBOM=$(digest_of "$W/r-sbom")
push_manifest "$R" "$D_SBOM" "$W/r-sbom"
expect_status 201
expect_header_eq OCI-Subject "$DS"
expect_header_eq Docker-Content-Digest "$D_SBOM"
# No artifactType: the descriptor takes the config's mediaType.
referrer "$W/r-sig" "$DS" "$SS" "" "$W/sigcfg" "$SIGCFG" "$W/sig" sig-1
D_SIG=$(digest_of "$W/r-sig")
push_manifest "$R" "$D_SIG" "$W/r-sig"
expect_status 201
expect_header_eq OCI-Subject "$DS"
# A second SBOM, pushed by tag.
referrer "$W/r-sbom2" "$DS" "$SS" "$SBOM" "$W/empty" application/vnd.oci.empty.v1+json "$W/sig" sbom-2
D_SBOM2=$(digest_of "$W/r-sbom2")
push_manifest "$R" sbom2 "$W/r-sbom2"
expect_status 201
expect_header_eq OCI-Subject "$DS"
# An index with a subject and no artifactType: its descriptor has none.
jq -c -n --arg it "$MT_OCI_INDEX" --arg mt "$MT_OCI_MANIFEST" --arg sd "$DS" --argjson ss "$SS" \
	--arg d "$D_SBOM" --argjson s "$(size_of "$W/r-sbom")" '
	{schemaVersion: 2, mediaType: $it,
	 manifests: [{mediaType: $mt, digest: $d, size: $s}],
	 subject: {mediaType: $mt, digest: $sd, size: $ss},
	 annotations: {"org.example.note": "index-1"}}' | tr -d '\n' >"$W/r-idx"
D_IDX=$(digest_of "$W/r-idx")
push_manifest "$R" "$D_IDX" "$W/r-idx"
expect_status 201
expect_header_eq OCI-Subject "$DS"
# An index with an artifactType, pushed by tag.
jq -c -n --arg it "$MT_OCI_INDEX" --arg mt "$MT_OCI_MANIFEST" --arg sd "$DS" --argjson ss "$SS" \
	--arg d "$D_SBOM" --argjson s "$(size_of "$W/r-sbom")" '
	{schemaVersion: 2, mediaType: $it, artifactType: "application/vnd.food.stand",
	 manifests: [{mediaType: $mt, digest: $d, size: $s}],
	 subject: {mediaType: $mt, digest: $sd, size: $ss},
	 annotations: {"org.example.note": "index-2"}}' | tr -d '\n' >"$W/r-idx2"
D_IDX2=$(digest_of "$W/r-idx2")
push_manifest "$R" food "$W/r-idx2"
expect_status 201
expect_header_eq OCI-Subject "$DS"
# A manifest without a subject does not get the header.
make_manifest "$W/plain" "$W/cfg" "$MT_OCI_CONFIG" "$W/sbom"
push_manifest "$R" plain "$W/plain"
expect_status 201
expect_no_header OCI-Subject

section "GET referrers"
req GET "/v2/$R/referrers/$DS"
expect_status 200
expect_header_eq Content-Type "$MT_OCI_INDEX"
expect_header Docker-Distribution-API-Version 'registry/2\.0'
expect_no_header OCI-Filters-Applied
expect_json '.schemaVersion' 2
expect_json '.mediaType' "$MT_OCI_INDEX"
expect_json '.manifests | length' 5
expect_json '[.manifests[].digest] | sort' "$(printf '%s\n' "$D_SBOM" "$D_SIG" "$D_SBOM2" "$D_IDX" "$D_IDX2" | jq -R . | jq -c -s sort)"
# Each descriptor in full.
d_of() { printf '.manifests[] | select(.digest == "%s")' "$1"; }
expect_json "$(d_of "$D_SBOM") | [.mediaType, .size, .artifactType, .annotations[\"org.example.note\"]]" \
	"[\"$MT_OCI_MANIFEST\",$(size_of "$W/r-sbom"),\"$SBOM\",\"sbom-1\"]"
expect_json "$(d_of "$D_SBOM") | .annotations[\"org.opencontainers.image.created\"]" 2024-01-01T00:00:00Z
expect_json "$(d_of "$D_SIG") | [.mediaType, .size, .artifactType, .annotations[\"org.example.note\"]]" \
	"[\"$MT_OCI_MANIFEST\",$(size_of "$W/r-sig"),\"$SIGCFG\",\"sig-1\"]"
expect_json "$(d_of "$D_SBOM2") | [.size, .artifactType]" "[$(size_of "$W/r-sbom2"),\"$SBOM\"]"
expect_json "$(d_of "$D_IDX") | [.mediaType, .size, has(\"artifactType\"), .annotations[\"org.example.note\"]]" \
	"[\"$MT_OCI_INDEX\",$(size_of "$W/r-idx"),false,\"index-1\"]"
expect_json "$(d_of "$D_IDX2") | [.mediaType, .artifactType, .annotations[\"org.example.note\"]]" \
	"[\"$MT_OCI_INDEX\",\"application/vnd.food.stand\",\"index-2\"]"
# The annotations are exactly the manifest's own.
expect_json "$(d_of "$D_SBOM") | .annotations" "$(jq -c .annotations <"$W/r-sbom")"
expect_json "$(d_of "$D_SIG") | .annotations" "$(jq -c .annotations <"$W/r-sig")"
expect_json "$(d_of "$D_IDX") | .annotations" '{"org.example.note":"index-1"}'

section "artifactType filter"
req GET "/v2/$R/referrers/$DS?artifactType=$SBOM"
expect_status 200
expect_header_eq Content-Type "$MT_OCI_INDEX"
expect_header OCI-Filters-Applied artifactType
expect_json '[.manifests[].digest] | sort' "$(printf '%s\n' "$D_SBOM" "$D_SBOM2" | jq -R . | jq -c -s sort)"
expect_json '[.manifests[].artifactType] | unique' "[\"$SBOM\"]"
# The fallback type filters too.
req GET "/v2/$R/referrers/$DS?artifactType=$(jq -rn --arg s "$SIGCFG" '$s|@uri')"
expect_status 200
expect_header OCI-Filters-Applied artifactType
expect_json '[.manifests[].digest]' "[\"$D_SIG\"]"
req GET "/v2/$R/referrers/$DS?artifactType=application/vnd.food.stand"
expect_status 200
expect_json '[.manifests[].digest]' "[\"$D_IDX2\"]"
req GET "/v2/$R/referrers/$DS?artifactType=application/vnd.example.none"
expect_status 200
expect_header OCI-Filters-Applied artifactType
expect_json '.manifests' '[]'

section "subjects with no referrers, unknown subjects"
DP=$(digest_of "$W/plain")
req GET "/v2/$R/referrers/$DP"
expect_status 200
expect_header_eq Content-Type "$MT_OCI_INDEX"
expect_json '.manifests' '[]'
expect_json '.schemaVersion' 2
req GET "/v2/$R/referrers/$ZERO"
expect_status 200
expect_json '.manifests' '[]'
# A referrer whose subject does not exist (yet) is accepted and listed.
make_blob "$W/ghost" 321 ref-ghost
GHOST=$(digest_of "$W/ghost")
referrer "$W/r-ghost" "$GHOST" 321 "$SBOM" "$W/empty" application/vnd.oci.empty.v1+json "$W/sbom" ghost-1
D_GHOST=$(digest_of "$W/r-ghost")
push_manifest "$R" "$D_GHOST" "$W/r-ghost"
expect_status 201
expect_header_eq OCI-Subject "$GHOST"
req GET "/v2/$R/referrers/$GHOST"
expect_status 200
expect_json '[.manifests[].digest]' "[\"$D_GHOST\"]"
# ... and pushing the subject afterwards changes nothing.
req GET "/v2/$R/referrers/$DS"
expect_json '.manifests | length' 5

# A referrer with no annotations: its descriptor has none (or an empty map).
jq -c 'del(.annotations)' <"$W/r-ghost" | tr -d '\n' >"$W/r-ghost2"
push_manifest "$R" "$(digest_of "$W/r-ghost2")" "$W/r-ghost2"
expect_status 201
req GET "/v2/$R/referrers/$GHOST"
expect_json '.manifests | length' 2
expect_json "$(d_of "$(digest_of "$W/r-ghost2")") | (.annotations // {})" '{}'
expect_json "$(d_of "$(digest_of "$W/r-ghost2")") | .artifactType" "$SBOM"

section "invalid digests"
for bad in sha256:1234 notadigest md5:d41d8cd98f00b204e9800998ecf8427e; do
	req GET "/v2/$R/referrers/$bad"
	expect_status 400
	expect_error_code_in DIGEST_INVALID
done

section "referrers are per repository"
push_blob "$R2" "$W/cfg"
push_blob "$R2" "$W/l1"
push_manifest "$R2" v1 "$W/subject"
expect_status 201
req GET "/v2/$R2/referrers/$DS"
expect_status 200
expect_json '.manifests' '[]'
# An unknown repository: an empty list (or a 404 NAME_UNKNOWN).
req GET "/v2/$BERTH_TENANT/never-pushed/referrers/$DS"
if [ "$REQ_STATUS" = 200 ]; then
	expect_json '.manifests' '[]'
else
	expect_status 404
	expect_error_code NAME_UNKNOWN
fi

section "deleting a referrer removes it from the list"
req DELETE "/v2/$R/manifests/$D_SIG"
expect_status 202
req GET "/v2/$R/referrers/$DS"
expect_status 200
expect_json '.manifests | length' 4
expect_json "[.manifests[].digest | select(. == \"$D_SIG\")]" '[]'
# Deleting the tag of a referrer pushed by tag leaves the manifest listed.
req DELETE "/v2/$R/manifests/sbom2"
expect_status 202
req GET "/v2/$R/referrers/$DS"
expect_json "[.manifests[].digest | select(. == \"$D_SBOM2\")] | length" 1
# Deleting the subject does not break the referrers query.
req DELETE "/v2/$R/manifests/$DS"
expect_status 202
req GET "/v2/$R/referrers/$DS"
expect_status 200
expect_header_eq Content-Type "$MT_OCI_INDEX"

section "referrers survive a restart"
berth_restart || exit 1
req GET "/v2/$R/referrers/$GHOST"
expect_status 200
expect_json '.manifests | length' 2
expect_json "$(d_of "$D_GHOST") | .annotations[\"org.example.note\"]" ghost-1

berth_done
