#!/usr/bin/env bash
# Real clients against a cluster (three berthd nodes behind haproxy, see
# deploy/), the way the user guide has it.  skopeo: log in with KEY and
# the access key, push a multi-arch image (OCI index -> linux/amd64 +
# linux/arm64) and a plain image through the balancer, read them back
# through every node (digests unchanged), pull everything into an OCI
# layout whose blobs are re-hashed, list the tags, and pull and push again
# through the balancer with one node killed.  docker (a dockerd of the
# test's own): `docker login -u KEY`, pull the multi-arch image, tag and
# push it under another name, pull that back into an empty store.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BERTH_E2E_TARGET=${BERTH_E2E_TARGET:-cluster}
. "$HERE/clients_lib.sh"
clients_private_cache "$0" "$@"
BERTH_AUTO_KEY=1
. "$HERE/lib.sh"
. "$HERE/edge_clients_lib.sh"

clients_need skopeo dockerd docker jq curl sha256sum openssl
e2e_need_cluster
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

section "docker (a dockerd of the test's own)"
# docker talks plain HTTP to registries on 127.0.0.0/8.
docker_start || exit 1
e2e_at_exit docker_stop
docker_login() { printf '%s' "$BERTH_KEY" | "${DOCKER[@]}" login -u KEY --password-stdin "$REGISTRY"; }
step "docker login -u KEY" docker_login
step "docker pull the multi-arch image" "${DOCKER[@]}" pull "$R/multi:v1"
step "docker resolved the index digest" docker_has "$R/multi:v1" "$MULTI"
step "docker tag" "${DOCKER[@]}" tag "$R/multi:v1" "$R/from-docker:v1"
step "docker push" "${DOCKER[@]}" push "$R/from-docker:v1"
step "docker: remove every image" docker_fresh
step "docker pull what docker pushed" "${DOCKER[@]}" pull "$R/from-docker:v1"
step "docker pull small" "${DOCKER[@]}" pull "$R/small:v2"
step "docker pulled small's manifest" docker_has "$R/small:v2" "$SMALL"
req GET "/v2/$NS/from-docker/tags/list"
expect_status 200
expect_json .tags '["v1"]'
berth_done
