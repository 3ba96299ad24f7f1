#!/bin/bash
# End-to-end: manifests.  PUT by tag and by digest (exact bytes kept, digest
# over them), GET/HEAD headers, ETag/If-None-Match, Accept negotiation,
# references to missing blobs and children, invalid documents, the size
# limit, Helm/artifact/Docker shapes, and DELETE by digest and by tag.
BERTH_AUTO_KEY=1 # every request carries an access key of the test account
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$BERTH_TENANT/manifests
R2=$BERTH_TENANT/manifests-other
berth_start || exit 1
W=$E2E_WORK
ZERO=sha256:0000000000000000000000000000000000000000000000000000000000000000

# Blobs in R.
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
push_blob "$R" "$W/cfg"
make_blob "$W/l1" 1500 man-l1
push_blob "$R" "$W/l1"
make_blob "$W/l2" 2500 man-l2
push_blob "$R" "$W/l2"
# A blob that exists only in R2.
make_blob "$W/only2" 900 man-only2
push_blob "$R2" "$W/only2"
# A blob nobody has.
make_blob "$W/nowhere" 901 man-nowhere

make_manifest "$W/m1" "$W/cfg" "$MT_OCI_CONFIG" "$W/l1"
D1=$(digest_of "$W/m1")
S1=$(size_of "$W/m1")

section "PUT by tag"
push_manifest "$R" v1 "$W/m1"
expect_status 201
expect_header Location "/v2/$R/manifests/($D1|v1)"
expect_header_eq Docker-Content-Digest "$D1"
expect_header Docker-Distribution-API-Version 'registry/2\.0'

section "GET and HEAD by tag and by digest"
for ref in v1 "$D1"; do
	req GET "/v2/$R/manifests/$ref" -H "Accept: $MT_OCI_MANIFEST"
	expect_status 200
	expect_header_eq Content-Type "$MT_OCI_MANIFEST"
	expect_header_eq Docker-Content-Digest "$D1"
	expect_header Content-Length "$S1"
	expect_header ETag '.+'
	expect_body_file "$W/m1"
	req HEAD "/v2/$R/manifests/$ref" -H "Accept: $MT_OCI_MANIFEST"
	expect_status 200
	expect_header_eq Content-Type "$MT_OCI_MANIFEST"
	expect_header_eq Docker-Content-Digest "$D1"
	expect_header Content-Length "$S1"
done

section "ETag and If-None-Match"
req GET "/v2/$R/manifests/v1"
ETAG=$(hdr ETag) || ETAG='"none"'
req GET "/v2/$R/manifests/v1" -H "If-None-Match: $ETAG"
expect_status 304
expect_body_empty
req GET "/v2/$R/manifests/$D1" -H "If-None-Match: $ETAG"
expect_status 304
req HEAD "/v2/$R/manifests/v1" -H "If-None-Match: $ETAG"
expect_status 304
req GET "/v2/$R/manifests/v1" -H 'If-None-Match: "sha256:not-this-one"'
expect_status 200
expect_body_file "$W/m1"

section "PUT by digest keeps the exact bytes"
# Pretty-printed, with a trailing newline: not canonical JSON.
make_manifest "$W/m2c" "$W/cfg" "$MT_OCI_CONFIG" "$W/l2"
jq . <"$W/m2c" >"$W/m2"
D2=$(digest_of "$W/m2")
push_manifest "$R" "$D2" "$W/m2"
expect_status 201
expect_header Location "/v2/$R/manifests/$D2"
expect_header_eq Docker-Content-Digest "$D2"
req GET "/v2/$R/manifests/$D2"
expect_status 200
expect_header_eq Docker-Content-Digest "$D2"
expect_header Content-Length "$(size_of "$W/m2")"
expect_body_file "$W/m2"
# The same bytes again: still fine.
push_manifest "$R" "$D2" "$W/m2"
expect_status 201

section "PUT by digest with the wrong digest"
make_manifest "$W/m3" "$W/cfg" "$MT_OCI_CONFIG" "$W/l1" "$W/l2"
D3=$(digest_of "$W/m3")
push_manifest "$R" "$ZERO" "$W/m3"
expect_status 400
expect_error_code DIGEST_INVALID
push_manifest "$R" "$D1" "$W/m3"
expect_status 400
expect_error_code DIGEST_INVALID
req GET "/v2/$R/manifests/$D3"
expect_status 404
expect_error_code MANIFEST_UNKNOWN
req GET "/v2/$R/manifests/$D1"
expect_status 200
expect_body_file "$W/m1"

section "sha512 reference"
make_manifest "$W/m512" "$W/cfg" "$MT_OCI_CONFIG" "$W/l2" "$W/l1"
D512=$(digest_of "$W/m512" sha512)
push_manifest "$R" "$D512" "$W/m512"
expect_status 201
req GET "/v2/$R/manifests/$D512"
expect_status 200
expect_body_file "$W/m512"

section "tag moves to a new manifest"
push_manifest "$R" moving "$W/m1"
expect_status 201
push_manifest "$R" moving "$W/m2"
expect_status 201
req GET "/v2/$R/manifests/moving"
expect_status 200
expect_header_eq Docker-Content-Digest "$D2"
expect_body_file "$W/m2"
req GET "/v2/$R/manifests/$D1"
expect_status 200

section "Accept negotiation"
req GET "/v2/$R/manifests/v1" -H "Accept: $MT_DOCKER_MANIFEST"
expect_status 404
expect_error_code MANIFEST_UNKNOWN
req HEAD "/v2/$R/manifests/v1" -H "Accept: $MT_DOCKER_MANIFEST"
expect_status 404
req GET "/v2/$R/manifests/$D1" -H "Accept: $MT_DOCKER_MANIFEST, $MT_DOCKER_LIST"
expect_status 404
expect_error_code MANIFEST_UNKNOWN
req GET "/v2/$R/manifests/v1" -H 'Accept:'
expect_status 200
expect_header_eq Content-Type "$MT_OCI_MANIFEST"
expect_body_file "$W/m1"
req GET "/v2/$R/manifests/v1" -H 'Accept: */*'
expect_status 200
req GET "/v2/$R/manifests/v1" -H "Accept: $MT_DOCKER_MANIFEST, $MT_OCI_MANIFEST"
expect_status 200
expect_header_eq Content-Type "$MT_OCI_MANIFEST"
# Docker's client sends one Accept header per type.
req GET "/v2/$R/manifests/v1" -H "Accept: $MT_DOCKER_MANIFEST" -H "Accept: $MT_DOCKER_LIST" \
	-H "Accept: $MT_OCI_INDEX" -H "Accept: $MT_OCI_MANIFEST"
expect_status 200
expect_header_eq Content-Type "$MT_OCI_MANIFEST"
req GET "/v2/$R/manifests/v1" -H "Accept: $MT_OCI_MANIFEST; q=0.5, $MT_DOCKER_MANIFEST"
expect_status 200
req HEAD "/v2/$R/manifests/v1" -H "Accept: $MT_OCI_INDEX, $MT_OCI_MANIFEST"
expect_status 200
expect_header_eq Content-Type "$MT_OCI_MANIFEST"

section "references to missing blobs"
make_manifest "$W/bad-layer" "$W/cfg" "$MT_OCI_CONFIG" "$W/l1" "$W/nowhere"
push_manifest "$R" bad-layer "$W/bad-layer"
expect_status 400
expect_error_code MANIFEST_BLOB_UNKNOWN
make_manifest "$W/bad-cfg" "$W/nowhere" "$MT_OCI_CONFIG" "$W/l1"
push_manifest "$R" bad-cfg "$W/bad-cfg"
expect_status 400
expect_error_code MANIFEST_BLOB_UNKNOWN
# Blobs are per repository: one pushed only to R2 does not count in R.
make_manifest "$W/bad-other" "$W/cfg" "$MT_OCI_CONFIG" "$W/only2"
push_manifest "$R" bad-other "$W/bad-other"
expect_status 400
expect_error_code MANIFEST_BLOB_UNKNOWN
req GET "/v2/$R/manifests/bad-layer"
expect_status 404
expect_error_code MANIFEST_UNKNOWN

section "image index"
jq -c -n --arg it "$MT_OCI_INDEX" --arg mt "$MT_OCI_MANIFEST" \
	--arg d1 "$D1" --argjson s1 "$S1" --arg d2 "$D2" --argjson s2 "$(size_of "$W/m2")" '
	{schemaVersion: 2, mediaType: $it, manifests: [
		{mediaType: $mt, digest: $d1, size: $s1, platform: {architecture: "amd64", os: "linux"}},
		{mediaType: $mt, digest: $d2, size: $s2, platform: {architecture: "arm64", os: "linux", variant: "v8"}}]}' |
	tr -d '\n' >"$W/idx"
DI=$(digest_of "$W/idx")
push_manifest "$R" multi "$W/idx"
expect_status 201
expect_header_eq Docker-Content-Digest "$DI"
req GET "/v2/$R/manifests/multi" -H "Accept: $MT_OCI_INDEX"
expect_status 200
expect_header_eq Content-Type "$MT_OCI_INDEX"
expect_header_eq Docker-Content-Digest "$DI"
expect_body_file "$W/idx"
req GET "/v2/$R/manifests/multi" -H "Accept: $MT_OCI_MANIFEST"
expect_status 404
# A child that does not exist (m3 was never stored).
jq -c -n --arg it "$MT_OCI_INDEX" --arg mt "$MT_OCI_MANIFEST" --arg d "$D3" \
	--argjson s "$(size_of "$W/m3")" \
	'{schemaVersion: 2, mediaType: $it, manifests: [{mediaType: $mt, digest: $d, size: $s}]}' |
	tr -d '\n' >"$W/idx-missing"
push_manifest "$R" idx-missing "$W/idx-missing"
expect_status 400
expect_error_code MANIFEST_BLOB_UNKNOWN
# A child that exists only in another repository.
push_blob "$R2" "$W/cfg"
make_manifest "$W/m-r2only" "$W/cfg" "$MT_OCI_CONFIG" "$W/only2"
push_manifest "$R2" only "$W/m-r2only"
expect_status 201
jq -c -n --arg it "$MT_OCI_INDEX" --arg mt "$MT_OCI_MANIFEST" --arg d "$(digest_of "$W/m-r2only")" \
	--argjson s "$(size_of "$W/m-r2only")" \
	'{schemaVersion: 2, mediaType: $it, manifests: [{mediaType: $mt, digest: $d, size: $s}]}' |
	tr -d '\n' >"$W/idx-other"
push_manifest "$R" idx-other "$W/idx-other"
expect_status 400
expect_error_code MANIFEST_BLOB_UNKNOWN

section "shapes the conformance suite pushes"
# Tab-indented, a config descriptor with "data" and an unknown field, a layer
# with an unknown null field.
jq -n --arg mt "$MT_OCI_MANIFEST" --arg ct "$MT_OCI_CONFIG" --arg cd "$(digest_of "$W/cfg")" \
	--argjson cs "$(size_of "$W/cfg")" --arg data "$(base64 -w0 <"$W/cfg")" \
	--arg ld "$(digest_of "$W/l1")" --argjson ls "$(size_of "$W/l1")" --arg lt "$MT_OCI_LAYER" --tab '
	{schemaVersion: 2, mediaType: $mt,
	 config: {mediaType: $ct, digest: $cd, size: $cs, data: $data, newUnspecifiedField: "aGVsbG8gd29ybGQ="},
	 layers: [{mediaType: $lt, digest: $ld, size: $ls, newUnspecifiedField: null}]}' >"$W/conf"
push_manifest "$R" conf "$W/conf"
expect_status 201
expect_header_eq Docker-Content-Digest "$(digest_of "$W/conf")"
req GET "/v2/$R/manifests/$(digest_of "$W/conf")"
expect_status 200
expect_body_file "$W/conf"
# No mediaType field and no layers.
jq -n --arg ct "$MT_OCI_CONFIG" --arg cd "$(digest_of "$W/cfg")" --argjson cs "$(size_of "$W/cfg")" --tab '
	{schemaVersion: 2, config: {mediaType: $ct, digest: $cd, size: $cs}, layers: []}' >"$W/emptylayer"
push_manifest "$R" emptylayer "$W/emptylayer" "$MT_OCI_MANIFEST"
expect_status 201
expect_header Location '.+'
req GET "/v2/$R/manifests/emptylayer"
expect_status 200
expect_header_eq Content-Type "$MT_OCI_MANIFEST"
expect_body_file "$W/emptylayer"
# A chunked request body (no Content-Length).
make_manifest "$W/mchunk" "$W/cfg" "$MT_OCI_CONFIG" "$W/l2" "$W/l1" "$W/l1"
req PUT "/v2/$R/manifests/chunked" -H "Content-Type: $MT_OCI_MANIFEST" -H 'Transfer-Encoding: chunked' \
	--data-binary "@$W/mchunk"
expect_status 201
expect_header_eq Docker-Content-Digest "$(digest_of "$W/mchunk")"
req GET "/v2/$R/manifests/chunked"
expect_body_file "$W/mchunk"
# An index of an index.
jq -c -n --arg it "$MT_OCI_INDEX" --arg d "$DI" --argjson s "$(size_of "$W/idx")" \
	'{schemaVersion: 2, mediaType: $it, manifests: [{mediaType: $it, digest: $d, size: $s}]}' |
	tr -d '\n' >"$W/idx2"
push_manifest "$R" nested "$W/idx2"
expect_status 201
req GET "/v2/$R/manifests/nested" -H "Accept: $MT_OCI_INDEX"
expect_status 200
expect_body_file "$W/idx2"
# Deleting the outer index first, then the inner one, leaves the children.
req DELETE "/v2/$R/manifests/$(digest_of "$W/idx2")"
expect_status 202
req DELETE "/v2/$R/manifests/$DI"
expect_status 202
req GET "/v2/$R/manifests/multi"
expect_status 404
req GET "/v2/$R/manifests/$D1"
expect_status 200
req GET "/v2/$R/manifests/$D2"
expect_status 200
# Put the index back for later sections.
push_manifest "$R" multi "$W/idx"
expect_status 201
# Deleting a child while an index lists it: refused (409) with the child
# intact, or done (202) with the index left as it is.
make_manifest "$W/child" "$W/cfg" "$MT_OCI_CONFIG" "$W/l2" "$W/l2" "$W/l1"
DCH=$(digest_of "$W/child")
push_manifest "$R" "$DCH" "$W/child"
expect_status 201
jq -c -n --arg it "$MT_OCI_INDEX" --arg mt "$MT_OCI_MANIFEST" --arg d "$DCH" \
	--argjson s "$(size_of "$W/child")" \
	'{schemaVersion: 2, mediaType: $it, manifests: [{mediaType: $mt, digest: $d, size: $s}]}' |
	tr -d '\n' >"$W/parent"
push_manifest "$R" parent "$W/parent"
expect_status 201
req DELETE "/v2/$R/manifests/$DCH"
expect_status_in 409 202
if [ "$REQ_STATUS" = 409 ]; then
	expect_oci_error
	req GET "/v2/$R/manifests/$DCH"
	expect_status 200
	req DELETE "/v2/$R/manifests/parent"
	expect_status 202
	req DELETE "/v2/$R/manifests/$DCH"
	expect_status_in 409 202
	req DELETE "/v2/$R/manifests/$(digest_of "$W/parent")"
	expect_status 202
	req DELETE "/v2/$R/manifests/$DCH"
	expect_status 202
else
	req GET "/v2/$R/manifests/$DCH"
	expect_status 404
fi
req GET "/v2/$R/manifests/$DCH"
expect_status 404

section "invalid manifests"
printf '{"schemaVersion": 2, "mediaType": "%s", "config": ' "$MT_OCI_MANIFEST" >"$W/trunc"
printf 'this is not json' >"$W/notjson"
printf '[]' >"$W/array"
printf '{"schemaVersion":2,"mediaType":"%s"}' "$MT_OCI_MANIFEST" >"$W/noconfig"
jq -c '.config.digest = "sha256:xyz"' <"$W/m1" | tr -d '\n' >"$W/baddigest"
jq -c 'del(.schemaVersion)' <"$W/m1" | tr -d '\n' >"$W/noschema"
jq -c '.layers = "nope"' <"$W/m1" | tr -d '\n' >"$W/badlayers"
: >"$W/emptydoc"
for f in trunc notjson array noconfig baddigest noschema badlayers emptydoc; do
	push_manifest "$R" "bad-$f" "$W/$f" "$MT_OCI_MANIFEST"
	expect_status 400
	expect_error_code MANIFEST_INVALID
done

section "Helm chart (no mediaType field; type from Content-Type)"
printf '{"apiVersion":"v2","name":"demo","version":"0.1.0+build.1","type":"application"}' >"$W/helmcfg"
push_blob "$R" "$W/helmcfg"
make_blob "$W/chart" 4000 helm-chart
push_blob "$R" "$W/chart"
jq -c -n --arg cd "$(digest_of "$W/helmcfg")" --argjson cs "$(size_of "$W/helmcfg")" \
	--arg ld "$(digest_of "$W/chart")" --argjson ls "$(size_of "$W/chart")" '
	{schemaVersion: 2,
	 config: {mediaType: "application/vnd.cncf.helm.config.v1+json", digest: $cd, size: $cs},
	 layers: [{mediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip", digest: $ld, size: $ls}],
	 annotations: {"org.opencontainers.image.title": "demo", "org.opencontainers.image.version": "0.1.0+build.1"}}' |
	tr -d '\n' >"$W/helm"
push_manifest "$R" 0.1.0_build.1 "$W/helm" "$MT_OCI_MANIFEST"
expect_status 201
expect_header_eq Docker-Content-Digest "$(digest_of "$W/helm")"
req GET "/v2/$R/manifests/0.1.0_build.1" -H "Accept: $MT_OCI_MANIFEST"
expect_status 200
expect_header_eq Content-Type "$MT_OCI_MANIFEST"
expect_body_file "$W/helm"
# Helm 3.0-3.6 layer type.
jq -c '.layers[0].mediaType = "application/tar+gzip" | .mediaType = "'"$MT_OCI_MANIFEST"'"' <"$W/helm" |
	tr -d '\n' >"$W/helm-old"
push_manifest "$R" 0.0.9 "$W/helm-old"
expect_status 201

section "Content-Type with a parameter"
make_manifest "$W/mparam" "$W/cfg" "$MT_OCI_CONFIG" "$W/l2" "$W/l2"
push_manifest "$R" param "$W/mparam" "$MT_OCI_MANIFEST; charset=utf-8"
expect_status 201
req GET "/v2/$R/manifests/param"
expect_status 200
expect_header_eq Content-Type "$MT_OCI_MANIFEST"

section "artifact with an unknown config type"
printf '{"kind":"thing"}' >"$W/thingcfg"
push_blob "$R" "$W/thingcfg"
make_blob "$W/thing" 777 thing
push_blob "$R" "$W/thing"
jq -c -n --arg mt "$MT_OCI_MANIFEST" --arg cd "$(digest_of "$W/thingcfg")" \
	--argjson cs "$(size_of "$W/thingcfg")" --arg ld "$(digest_of "$W/thing")" \
	--argjson ls "$(size_of "$W/thing")" '
	{schemaVersion: 2, mediaType: $mt,
	 config: {mediaType: "application/vnd.example.thing.config.v1+json", digest: $cd, size: $cs},
	 layers: [{mediaType: "application/vnd.example.thing.layer.v1", digest: $ld, size: $ls}]}' |
	tr -d '\n' >"$W/thingman"
push_manifest "$R" thing "$W/thingman"
expect_status 201
req GET "/v2/$R/manifests/thing"
expect_status 200
expect_body_file "$W/thingman"
# With artifactType and the empty config descriptor (image-spec 1.1).
printf '{}' >"$W/emptycfg"
push_blob "$R" "$W/emptycfg"
jq -c -n --arg mt "$MT_OCI_MANIFEST" --arg cd "$(digest_of "$W/emptycfg")" \
	--arg ld "$(digest_of "$W/thing")" --argjson ls "$(size_of "$W/thing")" '
	{schemaVersion: 2, mediaType: $mt, artifactType: "application/vnd.example.thing.v1",
	 config: {mediaType: "application/vnd.oci.empty.v1+json", digest: $cd, size: 2},
	 layers: [{mediaType: "application/vnd.example.thing.layer.v1", digest: $ld, size: $ls}]}' |
	tr -d '\n' >"$W/thingman2"
push_manifest "$R" thing2 "$W/thingman2"
expect_status 201

section "Docker schema 2 manifest and manifest list"
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}' >"$W/dcfg"
push_blob "$R" "$W/dcfg"
printf '{"architecture":"arm64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}' >"$W/dcfg2"
push_blob "$R" "$W/dcfg2"
for n in 1 2; do
	cfgf=$W/dcfg
	[ $n = 2 ] && cfgf=$W/dcfg2
	jq -c -n --arg mt "$MT_DOCKER_MANIFEST" --arg ct "$MT_DOCKER_CONFIG" --arg lt "$MT_DOCKER_LAYER" \
		--arg cd "$(digest_of "$cfgf")" --argjson cs "$(size_of "$cfgf")" \
		--arg ld "$(digest_of "$W/l1")" --argjson ls "$(size_of "$W/l1")" '
		{schemaVersion: 2, mediaType: $mt, config: {mediaType: $ct, size: $cs, digest: $cd},
		 layers: [{mediaType: $lt, size: $ls, digest: $ld}]}' | tr -d '\n' >"$W/docker$n"
done
DD1=$(digest_of "$W/docker1")
push_manifest "$R" docker "$W/docker1"
expect_status 201
expect_header_eq Docker-Content-Digest "$DD1"
push_manifest "$R" "$(digest_of "$W/docker2")" "$W/docker2"
expect_status 201
req GET "/v2/$R/manifests/docker" -H "Accept: $MT_DOCKER_MANIFEST"
expect_status 200
expect_header_eq Content-Type "$MT_DOCKER_MANIFEST"
expect_header_eq Docker-Content-Digest "$DD1"
expect_body_file "$W/docker1"
req GET "/v2/$R/manifests/docker" -H "Accept: $MT_OCI_MANIFEST"
expect_status 404
req GET "/v2/$R/manifests/docker" -H 'Accept:'
expect_status 200
expect_header_eq Content-Type "$MT_DOCKER_MANIFEST"
jq -c -n --arg lt "$MT_DOCKER_LIST" --arg mt "$MT_DOCKER_MANIFEST" \
	--arg d1 "$DD1" --argjson s1 "$(size_of "$W/docker1")" \
	--arg d2 "$(digest_of "$W/docker2")" --argjson s2 "$(size_of "$W/docker2")" '
	{schemaVersion: 2, mediaType: $lt, manifests: [
		{mediaType: $mt, size: $s1, digest: $d1, platform: {architecture: "amd64", os: "linux"}},
		{mediaType: $mt, size: $s2, digest: $d2, platform: {architecture: "arm64", os: "linux", variant: "v8"}}]}' |
	tr -d '\n' >"$W/dlist"
push_manifest "$R" dlist "$W/dlist"
expect_status 201
req GET "/v2/$R/manifests/dlist" -H "Accept: $MT_DOCKER_LIST" -H "Accept: $MT_DOCKER_MANIFEST"
expect_status 200
expect_header_eq Content-Type "$MT_DOCKER_LIST"
expect_body_file "$W/dlist"

section "unknown manifests"
req GET "/v2/$R/manifests/no-such-tag"
expect_status 404
expect_error_code MANIFEST_UNKNOWN
req HEAD "/v2/$R/manifests/no-such-tag"
expect_status 404
req GET "/v2/$R/manifests/$ZERO"
expect_status 404
expect_error_code MANIFEST_UNKNOWN
req GET "/v2/$BERTH_TENANT/never-pushed/manifests/v1"
expect_status 404
expect_error_code_in NAME_UNKNOWN MANIFEST_UNKNOWN
# A manifest is visible only in its repository.
req GET "/v2/$R2/manifests/$D2"
expect_status 404
expect_error_code MANIFEST_UNKNOWN
req GET "/v2/$R/manifests/$(digest_of "$W/m-r2only")"
expect_status 404

section "DELETE by digest removes its tags"
make_manifest "$W/m4" "$W/cfg" "$MT_OCI_CONFIG" "$W/l2" "$W/l1" "$W/l2"
D4=$(digest_of "$W/m4")
push_manifest "$R" t4a "$W/m4"
expect_status 201
push_manifest "$R" t4b "$W/m4"
expect_status 201
req DELETE "/v2/$R/manifests/$D4"
expect_status 202
expect_header Docker-Distribution-API-Version 'registry/2\.0'
req GET "/v2/$R/manifests/$D4"
expect_status 404
expect_error_code MANIFEST_UNKNOWN
req HEAD "/v2/$R/manifests/$D4"
expect_status 404
req GET "/v2/$R/manifests/t4a"
expect_status 404
expect_error_code MANIFEST_UNKNOWN
req GET "/v2/$R/manifests/t4b"
expect_status 404
req GET "/v2/$R/tags/list"
expect_status 200
expect_json '[.tags[] | select(. == "t4a" or . == "t4b")] | length' 0
req DELETE "/v2/$R/manifests/$D4"
expect_status 404
expect_error_code MANIFEST_UNKNOWN
# It can be pushed again.
push_manifest "$R" t4a "$W/m4"
expect_status 201
req GET "/v2/$R/manifests/t4a"
expect_status 200

section "DELETE by tag keeps the manifest"
make_manifest "$W/m5" "$W/cfg" "$MT_OCI_CONFIG" "$W/l1" "$W/l1"
D5=$(digest_of "$W/m5")
push_manifest "$R" t5 "$W/m5"
expect_status 201
push_manifest "$R" t5-keep "$W/m5"
expect_status 201
req DELETE "/v2/$R/manifests/t5"
expect_status 202
req GET "/v2/$R/manifests/t5"
expect_status 404
expect_error_code MANIFEST_UNKNOWN
req GET "/v2/$R/manifests/$D5"
expect_status 200
expect_body_file "$W/m5"
req GET "/v2/$R/manifests/t5-keep"
expect_status 200
req DELETE "/v2/$R/manifests/t5"
expect_status 404
expect_error_code MANIFEST_UNKNOWN
# Then by digest: 202, and the remaining tag goes with it.
req DELETE "/v2/$R/manifests/$D5"
expect_status 202
req GET "/v2/$R/manifests/t5-keep"
expect_status 404
req GET "/v2/$R/manifests/$D5"
expect_status 404

section "DELETE of unknown things"
req DELETE "/v2/$R/manifests/$ZERO"
expect_status 404
expect_error_code MANIFEST_UNKNOWN
req DELETE "/v2/$R/manifests/never-tagged"
expect_status 404
expect_error_code MANIFEST_UNKNOWN
req DELETE "/v2/$BERTH_TENANT/never-pushed/manifests/$ZERO"
expect_status 404
expect_error_code_in NAME_UNKNOWN MANIFEST_UNKNOWN
req DELETE "/v2/$R/manifests/sha256:xyz"
expect_status 400
expect_error_code_in DIGEST_INVALID MANIFEST_INVALID

section "4 MiB manifest accepted, one byte more refused (default limit)"
# m1 with an annotation padded so that the whole document is exactly N bytes.
pad_manifest() {
	local out=$1 total=$2 body pre='"annotations":{"pad":"' post='"}}' k
	body=$(head -c $(($(size_of "$W/m1") - 1)) "$W/m1")
	k=$((total - ${#body} - 1 - ${#pre} - ${#post}))
	{
		printf '%s,%s' "$body" "$pre"
		head -c "$k" /dev/zero | tr '\0' x
		printf '%s' "$post"
	} >"$out"
}
pad_manifest "$W/m4mib" 4194304
expect_eq "padded manifest size" "$(size_of "$W/m4mib")" 4194304
push_manifest "$R" big "$W/m4mib"
expect_status 201
req GET "/v2/$R/manifests/big"
expect_status 200
expect_body_file "$W/m4mib"
pad_manifest "$W/m4mib1" 4194305
push_manifest "$R" too-big "$W/m4mib1"
expect_status 413
expect_error_code_in SIZE_INVALID MANIFEST_INVALID
req GET "/v2/$R/manifests/too-big"
expect_status 404

section "configured limit: limits.manifest_bytes"
berth_stop
cat >"$E2E_TMP/small-limit.yml" <<EOF
limits:
  manifest_bytes: 2048
EOF
berth_start --config "$E2E_TMP/small-limit.yml" || exit 1
push_blob "$R" "$W/cfg"
push_blob "$R" "$W/l1"
pad_manifest "$W/m2048" 2048
push_manifest "$R" at-limit "$W/m2048"
expect_status 201
pad_manifest "$W/m2049" 2049
push_manifest "$R" over-limit "$W/m2049"
expect_status 413
expect_error_code_in SIZE_INVALID MANIFEST_INVALID
# Even without a Content-Length (chunked request body).
req PUT "/v2/$R/manifests/over-limit-chunked" -H "Content-Type: $MT_OCI_MANIFEST" \
	-H 'Transfer-Encoding: chunked' --data-binary "@$W/m2049"
expect_status 413
req GET "/v2/$R/manifests/over-limit-chunked"
expect_status 404

berth_done
