#!/usr/bin/env bash
# A real client against a cluster (three berthd nodes behind haproxy, see
# deploy/), the way the user guide has it: log in with KEY and the access
# key, push a multi-arch image (OCI index -> linux/amd64 + linux/arm64)
# and a plain image through the balancer, read them back through every
# node (digests unchanged), pull everything into an OCI layout whose blobs
# are re-hashed, list the tags, and pull again through the balancer with
# one node killed: clients keep working while a node is down.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BERTH_E2E_TARGET=${BERTH_E2E_TARGET:-cluster}
. "$HERE/clients_lib.sh"
clients_private_cache "$0" "$@"
BERTH_AUTO_KEY=1
. "$HERE/lib.sh"

clients_need skopeo jq curl sha256sum openssl
[ "$BERTH_E2E_TARGET" = cluster ] || {
	fail "this test needs BERTH_E2E_TARGET=cluster"
	berth_done
	exit 1
}
section "setup"
clients_content small multiarch
berth_start || exit 1
clients_setup
echo "cluster ($BERTH_CLUSTER_BACKEND) at $BERTH_URL, nodes: ${BERTH_NODE_URLS[*]}"
MULTI=$(content_field multiarch 3)
SMALL=$(content_field small 3)
R=$REGISTRY/$NS
blob_path() { printf '%s/%s/blobs/sha256/%s\n' "$CONTENT" "$1" "${2#sha256:}"; }
NODES=()
for n in 1 2 3; do NODES+=("$(node_url "$n" | sed 's|^http://||')"); done

section "log in with KEY and the access key"
step "skopeo login to the balancer" "${SK[@]}" login "${SK_ANY[@]}" -u KEY -p "$BERTH_KEY" "$REGISTRY"
for n in 1 2 3; do
	step "skopeo login to node $n" "${SK[@]}" login "${SK_ANY[@]}" -u KEY -p "$BERTH_KEY" "${NODES[n - 1]}"
done
step "a wrong key is refused" must_fail "${SK[@]}" login "${SK_ANY[@]}" -u KEY \
	-p "brt_$(printf '%064d' 7)" "$REGISTRY"

section "push through the balancer, read through every node"
step "push multiarch --all" "${SK[@]}" copy --all "${SK_DST[@]}" "oci:$CONTENT/multiarch:v1" "docker://$R/multi:v1"
step "push small" "${SK[@]}" copy "${SK_DST[@]}" "oci:$CONTENT/small:v1" "docker://$R/small:v1"
for n in 1 2 3; do
	step "node $n serves the index unchanged" same_digest "${NODES[n - 1]}/$NS/multi:v1" "$MULTI"
	step "node $n serves small unchanged" same_digest "${NODES[n - 1]}/$NS/small:v1" "$SMALL"
done
children() {
	local d n=0
	for d in $(jq -r '.manifests[].digest' "$(blob_path multiarch "$MULTI")"); do
		n=$((n + 1))
		same_digest "${NODES[n % 3]}/$NS/multi@$d" "$d" || return 1
	done
}
step "each platform's manifest, by digest, on another node" children
step "inspect --override-arch arm64 picks the arm64 image" inspect_jq "$R/multi:v1" --override-arch arm64 -- \
	'.Architecture == "arm64"'

section "pull back and re-hash"
step "pull multiarch --all -> oci: layout" \
	"${SK[@]}" copy --all "${SK_SRC[@]}" "docker://$R/multi:v1" "oci:$CL_TMP/multi-oci:v1"
step "pulled layout: blobs re-hashed" verify_layout "$CL_TMP/multi-oci"
step "pulled layout: the same blobs as pushed" same_blob_set "$CONTENT/multiarch" "$CL_TMP/multi-oci"
req GET "/v2/$NS/multi/tags/list"
expect_status 200
expect_json . "{\"name\":\"$NS/multi\",\"tags\":[\"v1\"]}"

section "a node killed: clients keep working through the balancer"
node_kill9 2
step "pull multiarch --all with node 2 dead" \
	"${SK[@]}" copy --all "${SK_SRC[@]}" "docker://$R/multi:v1" "oci:$CL_TMP/multi-oci2:v1"
step "that layout: blobs re-hashed" verify_layout "$CL_TMP/multi-oci2"
step "push with node 2 dead" "${SK[@]}" copy "${SK_DST[@]}" "oci:$CONTENT/small:v1" "docker://$R/small:v2"
node_start 2
step "node 2, back, serves what was pushed while it was dead" same_digest "${NODES[1]}/$NS/small:v2" "$SMALL"
berth_done
