#!/usr/bin/env bash
# skopeo against a real berthd: pushes OCI layouts (a plain image, a
# multi-arch index, a Helm chart, an artifact of an unknown type, a big
# image), reads them back through inspect, list-tags and pulls into dir: and
# oci: layouts whose blobs are re-hashed, copies registry to registry (the
# cross-repository mount path), converts to Docker schema 2 on push, and
# deletes.  Digests are compared with what make-content.sh produced, so any
# byte the server changes is caught.  Env: BIG_MB (default 64).
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/clients_lib.sh"
clients_private_cache "$0" "$@"
BERTH_OPEN=1 # authentication is covered by test_auth_*; these drive clients without it
. "$HERE/lib.sh"

T_START=$SECONDS
clients_need skopeo jq curl sha256sum openssl
section "setup"
clients_content small multiarch helm artifact big
berth_start || exit 1
clients_setup
R=$REGISTRY/$NS
echo "registry $BERTH_URL, private blob-info cache: ${BERTH_E2E_PRIVATE_CACHE:-?}"

SMALL=$(content_field small 3)
MULTI=$(content_field multiarch 3)
HELM=$(content_field helm 3)
HELM_CHART=$(content_field helm 4)
ART=$(content_field artifact 3)
ART_DATA=$(content_field artifact 4)
BIG=$(content_field big 3)
BIG_LAYER=$(content_field big 4)
blob_path() { printf '%s/%s/blobs/sha256/%s\n' "$CONTENT" "$1" "${2#sha256:}"; }
SMALL_LAYERS=$(jq -c '[.layers[].digest]' "$(blob_path small "$SMALL")")

# ------------------------------------------------------------------ plain image
section "push and read back a plain image"
step "push small oci: -> docker://$NS/small:v1" \
	"${SK[@]}" copy "${SK_DST[@]}" "oci:$CONTENT/small:v1" "docker://$R/small:v1"
step "pushed manifest digest unchanged" same_digest "$R/small:v1" "$SMALL"
step "HEAD manifest carries Docker-Content-Digest" head_digest "$NS/small" v1 "$SMALL"
step "inspect: digest, linux/amd64, the 3 layers in order" inspect_jq "$R/small:v1" -- \
	--arg d "$SMALL" --argjson l "$SMALL_LAYERS" \
	'.Digest == $d and .Architecture == "amd64" and .Os == "linux" and .Layers == $l'
step "inspect --config: rootfs.diff_ids of the 3 layers" inspect_jq "$R/small:v1" --config -- \
	'.rootfs.type == "layers" and (.rootfs.diff_ids | length) == 3 and .architecture == "amd64"'
config_bytes_same() {
	local got want
	want=$(jq -r .config.digest "$(blob_path small "$SMALL")")
	got=$("${SK[@]}" inspect --config --raw "${SK_ANY[@]}" "docker://$R/small:v1" | sha256_stdin)
	echo "config $got, want $want"
	[ "$got" = "$want" ]
}
step "inspect --config --raw: config bytes unchanged" config_bytes_same
push_more_tags() {
	"${SK[@]}" copy "${SK_DST[@]}" "oci:$CONTENT/small:v1" "docker://$R/small:v2" &&
		"${SK[@]}" copy "${SK_DST[@]}" "oci:$CONTENT/small:v1" "docker://$R/small:latest"
}
step "push the same image again as :v2 and :latest (blobs already there)" push_more_tags
step "v2 has the same digest" same_digest "$R/small:v2" "$SMALL"

section "pull back into dir: and oci: layouts"
step "pull small:v1 -> dir:" "${SK[@]}" copy "${SK_SRC[@]}" "docker://$R/small:v1" "dir:$CL_TMP/small-dir"
step "dir: copy: manifest bytes and blob digests" verify_dir "$CL_TMP/small-dir" "$SMALL"
step "pull small:v1 -> oci: layout" \
	"${SK[@]}" copy "${SK_SRC[@]}" "docker://$R/small:v1" "oci:$CL_TMP/small-oci:v1"
step "oci: layout: every blob hashes to its name" verify_layout "$CL_TMP/small-oci"
step "oci: layout holds exactly the blobs of the source layout" same_blob_set "$CONTENT/small" "$CL_TMP/small-oci"
pulled_index_digest() {
	local d
	d=$(jq -r '.manifests[0].digest' "$CL_TMP/small-oci/index.json")
	echo "index.json names $d"
	[ "$d" = "$SMALL" ]
}
step "oci: layout's index.json names the original manifest digest" pulled_index_digest

# ------------------------------------------------------------------ tags
section "list-tags"
step "list-tags small: exactly latest v1 v2" tags_are "$R/small" "latest v1 v2"
# A repository with a manifest but no tag: push blobs and a manifest by digest.
make_untagged() {
	local cfg=$CL_TMP/untagged-config.json layer=$CL_TMP/untagged-layer m=$CL_TMP/untagged-manifest.json d
	printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$cfg"
	make_blob "$layer" 4096 untagged-layer
	push_blob "$NS/untagged" "$cfg" >/dev/null || return 1
	push_blob "$NS/untagged" "$layer" >/dev/null || return 1
	make_manifest "$m" "$cfg" "$MT_OCI_CONFIG" "$layer"
	d=$(digest_of "$m")
	push_manifest "$NS/untagged" "$d" "$m"
	echo "PUT manifest by digest: $REQ_STATUS"
	[ "$REQ_STATUS" = 201 ]
}
step "repository with an untagged manifest (curl push by digest)" make_untagged
step "list-tags of a repository without tags: empty list" tags_are "$R/untagged" ""
step "list-tags of a repository that does not exist fails" \
	must_fail "${SK[@]}" list-tags "${SK_ANY[@]}" "docker://$R/never-pushed"

# ------------------------------------------------------------------ multi-arch
section "multi-arch index"
step "push multiarch --all" "${SK[@]}" copy --all "${SK_DST[@]}" "oci:$CONTENT/multiarch:v1" "docker://$R/multi:v1"
step "index digest unchanged" same_digest "$R/multi:v1" "$MULTI"
step "inspect --raw: an OCI index of 2 manifests" raw_jq "$R/multi:v1" --arg t "$MT_OCI_INDEX" \
	'.mediaType == $t and (.manifests | length) == 2'
step "inspect picks linux/amd64 by default" inspect_jq "$R/multi:v1" --override-arch amd64 --override-os linux -- \
	'.Architecture == "amd64"'
step "inspect --override-arch arm64 picks the arm64 image" inspect_jq "$R/multi:v1" --override-arch arm64 -- \
	'.Architecture == "arm64" and (.Layers | length) == 1'
children_by_digest() {
	local d
	for d in $(jq -r '.manifests[].digest' "$(blob_path multiarch "$MULTI")"); do
		same_digest "$R/multi@$d" "$d" || return 1
	done
}
step "each child manifest fetched by digest is unchanged" children_by_digest
step "pull multiarch --all -> oci: layout" \
	"${SK[@]}" copy --all "${SK_SRC[@]}" "docker://$R/multi:v1" "oci:$CL_TMP/multi-oci:v1"
step "pulled multiarch layout: blobs re-hashed" verify_layout "$CL_TMP/multi-oci"
step "pulled multiarch layout: same blobs as the source" same_blob_set "$CONTENT/multiarch" "$CL_TMP/multi-oci"

# ------------------------------------------------------------------ helm + artifact
section "Helm chart and an unknown artifact type"
step "push Helm chart artifact :0.1.0" \
	"${SK[@]}" copy "${SK_DST[@]}" "oci:$CONTENT/helm:0.1.0" "docker://$R/charts/berth-demo:0.1.0"
step "helm manifest digest unchanged" same_digest "$R/charts/berth-demo:0.1.0" "$HELM"
step "helm manifest keeps the helm config and chart layer types" raw_jq "$R/charts/berth-demo:0.1.0" \
	'.config.mediaType == "application/vnd.cncf.helm.config.v1+json" and
	 .layers[0].mediaType == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"'
step "pull helm chart -> dir:, blobs re-hashed" \
	"${SK[@]}" copy "${SK_SRC[@]}" "docker://$R/charts/berth-demo:0.1.0" "dir:$CL_TMP/helm-dir"
step "helm dir: manifest and chart layer verified" verify_dir "$CL_TMP/helm-dir" "$HELM" "$HELM_CHART"
step "push artifact with config application/vnd.example.thing.v1+json" \
	"${SK[@]}" copy "${SK_DST[@]}" "oci:$CONTENT/artifact:v1" "docker://$R/thing:v1"
step "artifact manifest digest unchanged" same_digest "$R/thing:v1" "$ART"
step "artifact keeps its config type" raw_jq "$R/thing:v1" '.config.mediaType == "application/vnd.example.thing.v1+json"'
step "pull artifact -> dir:, blobs re-hashed" \
	"${SK[@]}" copy "${SK_SRC[@]}" "docker://$R/thing:v1" "dir:$CL_TMP/thing-dir"
step "artifact dir: manifest and data blob verified" verify_dir "$CL_TMP/thing-dir" "$ART" "$ART_DATA"

# ------------------------------------------------------------------ registry -> registry
section "registry to registry copy (cross-repository mount)"
# Mounted blobs: POST .../copy/blobs/uploads/ answered 201 (informational:
# whether skopeo tries a mount depends on its cache, and the log format on
# the server).
count_mounts() { grep -cE "POST.*/$NS/copy/blobs/uploads/.*(status=201| 201 )" "$BERTH_LOG" 2>/dev/null; }
step "copy docker://small:v1 -> docker://copy:v1" \
	"${SK[@]}" copy "${SK_SRC[@]}" "${SK_DST[@]}" "docker://$R/small:v1" "docker://$R/copy:v1"
step "copied manifest digest unchanged" same_digest "$R/copy:v1" "$SMALL"
step "every blob of the copy is served by the new repository" manifest_blobs_ok "$NS/copy" v1
echo "note: blobs mounted during the copy (POST answered 201, from the access log): $(count_mounts)"

# ------------------------------------------------------------------ v2s2
section "conversion to Docker schema 2 on push"
step "push small with --format v2s2 as :v2s2" \
	"${SK[@]}" copy --format v2s2 "${SK_DST[@]}" "oci:$CONTENT/small:v1" "docker://$R/small:v2s2"
step "v2s2 manifest: docker types, same compressed layers" raw_jq "$R/small:v2s2" \
	--arg mt "$MT_DOCKER_MANIFEST" --arg ct "$MT_DOCKER_CONFIG" --arg lt "$MT_DOCKER_LAYER" --argjson l "$SMALL_LAYERS" \
	'.mediaType == $mt and .config.mediaType == $ct and all(.layers[]; .mediaType == $lt) and [.layers[].digest] == $l'
v2s2_digest_header() {
	local d
	d=$(raw_digest "$R/small:v2s2") || return 1
	head_digest "$NS/small" v2s2 "$d"
}
step "HEAD of v2s2 carries the digest of the served bytes" v2s2_digest_header
pull_v2s2() {
	local d
	d=$(raw_digest "$R/small:v2s2") || return 1
	"${SK[@]}" copy "${SK_SRC[@]}" "docker://$R/small:v2s2" "dir:$CL_TMP/v2s2-dir" &&
		verify_dir "$CL_TMP/v2s2-dir" "$d"
}
step "pull v2s2 -> dir:, manifest and blobs verified" pull_v2s2
step "list-tags small now: latest v1 v2 v2s2" tags_are "$R/small" "latest v1 v2 v2s2"

# ------------------------------------------------------------------ delete
section "delete"
step "skopeo delete small:v2s2" "${SK[@]}" delete "${SK_ANY[@]}" "docker://$R/small:v2s2"
step "deleted manifest can no longer be inspected" \
	must_fail "${SK[@]}" inspect --raw "${SK_ANY[@]}" "docker://$R/small:v2s2"
step "list-tags after delete: latest v1 v2" tags_are "$R/small" "latest v1 v2"
step "v1 is untouched by the delete" same_digest "$R/small:v1" "$SMALL"
step "skopeo delete copy:v1" "${SK[@]}" delete "${SK_ANY[@]}" "docker://$R/copy:v1"
step "copy:v1 is gone" must_fail "${SK[@]}" inspect --raw "${SK_ANY[@]}" "docker://$R/copy:v1"
step "small:v1 still served after deleting its copy" manifest_blobs_ok "$NS/small" v1

# ------------------------------------------------------------------ big
section "big image (${BIG_MB:-64} MiB layer)"
t0=$(date +%s%N)
step "push big image" "${SK[@]}" copy "${SK_DST[@]}" "oci:$CONTENT/big:v1" "docker://$R/big:v1"
t_push=$((($(date +%s%N) - t0) / 1000000))
step "big manifest digest unchanged" same_digest "$R/big:v1" "$BIG"
t0=$(date +%s%N)
step "pull big -> dir:" "${SK[@]}" copy "${SK_SRC[@]}" "docker://$R/big:v1" "dir:$CL_TMP/big-dir"
t_pull=$((($(date +%s%N) - t0) / 1000000))
step "big dir: manifest and layer verified" verify_dir "$CL_TMP/big-dir" "$BIG" "$BIG_LAYER"
big_layer_size() {
	local want got
	want=$(stat -c %s "$(blob_path big "$BIG_LAYER")")
	got=$(stat -c %s "$CL_TMP/big-dir/${BIG_LAYER#sha256:}")
	echo "layer $got bytes, want $want"
	[ "$got" = "$want" ]
}
step "big layer has its full size" big_layer_size
step "big layer GET by curl hashes to its digest" blob_ok "$NS/big" "$BIG_LAYER"
rm -rf "$CL_TMP/big-dir"
echo "timing: big push ${t_push} ms, big pull ${t_pull} ms"

section "server still healthy"
req GET /v2/
expect_status 200
echo "total $((SECONDS - T_START)) s"
berth_done
