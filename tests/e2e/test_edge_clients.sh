#!/usr/bin/env bash
# Real clients pulling through berth-edge, as on a gateway.  berthd serves
# HTTPS with a test CA and authentication; account A's content is pushed to
# it directly with A's key: a 3-layer image, a multi-arch index (amd64,
# arm64) and a Helm chart (helm config and chart layer media types); B's
# repository holds the same image.  berth-edge holds A's device
# certificate (mutual TLS) and a cache; the clients have no credentials and
# name it containers.local:PORT (a private /etc/hosts line inside the
# test's own mount namespace): docker (a dockerd of the test's own, on its
# own socket, data and exec roots), podman, skopeo, and ctr through a
# hosts.toml (a private containerd).  Manifests are asked for with one
# Accept line per media type, as these clients do.  Every pull is checked
# against the digests that went in.  After the first whole pull of the
# image every later one, each into a fresh client store, is served from the
# cache: berthd's access log shows no new blob GET.  A's certificate cannot pull B's
# repository (403 DENIED passed through), and blobs cached for A's pulls
# are not served under B's name.  A push through the proxy gets 405
# UNSUPPORTED and changes nothing upstream.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/clients_lib.sh"
clients_private_cache "$0" "$@"
. "$HERE/lib.sh"
. "$HERE/auth_lib.sh"
. "$HERE/edge_lib.sh"
. "$HERE/edge_clients_lib.sh"

T_START=$SECONDS
W=$E2E_WORK
clients_need dockerd docker podman skopeo containerd ctr jq curl openssl sha256sum timeout getent
if [ ! -x "$BERTH_EDGE" ]; then
	fail "berth-edge binary not found at $BERTH_EDGE"
	berth_done
	exit 1
fi
PD_RUN=
trap 'e2e_rc=$?; docker_stop; containerd_stop; [ -n "$PD_RUN" ] && rm -rf "$PD_RUN"; (exit $e2e_rc); e2e_cleanup' EXIT

section "cloud: berthd over HTTPS, A's and B's content"
clients_content small multiarch helm
clients_setup
ec_cloud
SMALL=$(content_field small 3)
MULTI=$(content_field multiarch 3)
HELM=$(content_field helm 3)
blob_path() { printf '%s/%s/blobs/sha256/%s\n' "$CONTENT" "$1" "${2#sha256:}"; }
SMALL_CONFIG=$(jq -r .config.digest "$(blob_path small "$SMALL")")
SMALL_LAYER=$(jq -r '.layers[0].digest' "$(blob_path small "$SMALL")")
child_of() { jq -r --arg a "$1" '.manifests[] | select(.platform.architecture == $a) | .digest' "$(blob_path multiarch "$MULTI")"; }
AMD=$(child_of amd64)
ARM=$(child_of arm64)
AMD_CONFIG=$(jq -r .config.digest "$(blob_path multiarch "$AMD")")
ARM_CONFIG=$(jq -r .config.digest "$(blob_path multiarch "$ARM")")
step "push small:v1 to A/small:v1 with A's key" ec_push small:v1 "$A/small:v1" "$A_PUSH"
step "push the multi-arch index to A/multi:v1 (--all)" ec_push multiarch:v1 "$A/multi:v1" "$A_PUSH" --all
step "push the Helm chart to A/chart:0.1.0" ec_push helm:0.1.0 "$A/chart:0.1.0" "$A_PUSH"
step "push the same small:v1 to B/small:v1 with B's key" ec_push small:v1 "$B/small:v1" "$B_PUSH"

section "gateway: berth-edge with A's device certificate, a cache, containers.local"
ec_containers_local
ec_gateway
echo "clients pull from $GW (berth-edge $EDGE_URL, upstream $BERTH_URL)"
curl -s -o "$W/v2.body" -w '%{http_code}' --max-time 10 "http://$GW/v2/" >"$W/v2.code"
expect_eq "curl http://$GW/v2/ (no credentials)" "$(cat "$W/v2.code")" 200

section "manifests through the proxy, Accept as real clients send it"
# docker, containerd and containers/image send one Accept line per media
# type; each must reach berthd, or it cannot find a representation the
# client takes.
through
areq GET "/v2/$A/small/manifests/v1" -H "Accept: $MT_DOCKER_MANIFEST" -H "Accept: $MT_DOCKER_LIST" \
	-H "Accept: $MT_OCI_MANIFEST" -H "Accept: $MT_OCI_INDEX"
expect_resp 200
expect_header_eq Docker-Content-Digest "$SMALL"
areq HEAD "/v2/$A/multi/manifests/v1" -H "Accept: $MT_OCI_MANIFEST" -H "Accept: $MT_OCI_INDEX"
expect_resp 200
expect_header_eq Docker-Content-Digest "$MULTI"
back

# small_pulled LABEL STATUS: after a pull of A/small:v1 that exited with
# STATUS: the first whole pull (cold cache) fetched the config and the 3
# layers from berthd; every later one, each into a fresh client store, was
# served from the cache: berthd's access log shows no new blob GET.
WARM=
small_pulled() {
	local n
	n=$(upstream_blob_gets "$A/small")
	[ "$2" = 0 ] || return 0
	if [ -z "$WARM" ]; then
		expect_eq "$1, cold cache: blob GETs berthd saw (config and 3 layers)" "$n" 4
		WARM=$n
	else
		expect_eq "$1, fresh store: berthd saw no new blob GET (served from the cache)" "$n" "$WARM"
	fi
}

section "docker (a dockerd of the test's own)"
docker_start || exit 1
step "docker pull $GW/A/small:v1" "${DOCKER[@]}" pull "$GW/$A/small:v1"
small_pulled "docker pull" $?
step "docker: the pushed manifest digest, image id = config digest" \
	docker_has "$GW/$A/small:v1" "$SMALL" "$SMALL_CONFIG" amd64
case $(uname -m) in
aarch64 | arm64) NATIVE=arm64 NATIVE_CONFIG=$ARM_CONFIG ;;
*) NATIVE=amd64 NATIVE_CONFIG=$AMD_CONFIG ;;
esac
step "docker pull $GW/A/multi:v1 (the index; this host's $NATIVE)" "${DOCKER[@]}" pull "$GW/$A/multi:v1"
step "docker: the index digest, the $NATIVE config" docker_has "$GW/$A/multi:v1" "$MULTI" "$NATIVE_CONFIG" "$NATIVE"
step "docker pull --platform linux/arm64 $GW/A/multi:v1" \
	"${DOCKER[@]}" pull --platform linux/arm64 "$GW/$A/multi:v1"
# The repository digest stays with the first image; the pull reports it.
PULL_LOG=$CL_LOG
pulled_digest() { grep -x "Digest: $2" "$1" || { tail -n 5 "$1"; return 1; }; }
step "docker pull reported the index digest" pulled_digest "$PULL_LOG" "$MULTI"
step "docker: the arm64 image (its config digest as id)" docker_has "$GW/$A/multi:v1" - "$ARM_CONFIG" arm64
step "docker: remove every image (a fresh store)" docker_fresh
step "docker pull $GW/A/small:v1 again" "${DOCKER[@]}" pull "$GW/$A/small:v1"
small_pulled "docker's second pull" $?
step "docker: same digest and image id" docker_has "$GW/$A/small:v1" "$SMALL" "$SMALL_CONFIG"
step "docker pull of B's repository is refused" \
	refused -- "${DOCKER[@]}" pull "$GW/$B/small:v1"
step "docker pull of a tag that does not exist fails" must_fail "${DOCKER[@]}" pull "$GW/$A/small:nope"
docker_stop

section "podman (fresh store, containers.local marked insecure in registries.conf)"
PD=$CL_TMP/podman
mkdir -p "$PD/tmp" "$PD/net"
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$GW" >"$PD/registries.conf"
export CONTAINERS_REGISTRIES_CONF=$PD/registries.conf
PD_RUN=$(mktemp -d /tmp/berth-pm.XXXXXX)
PM=(timeout 120 podman --storage-driver vfs --root "$PD/root" --runroot "$PD_RUN" --tmpdir "$PD/tmp"
	--network-config-dir "$PD/net" --events-backend none --cgroup-manager cgroupfs)
pm_has() {
	"${PM[@]}" image inspect "$1" >"$PD/inspect.json" || return 1
	jq -c '.[0] | {Digest, Id, Architecture}' "$PD/inspect.json"
	jq -e --arg d "$2" --arg id "${3#sha256:}" '.[0].Digest == $d and .[0].Id == $id' "$PD/inspect.json" >/dev/null
}
step "podman pull $GW/A/small:v1" "${PM[@]}" pull "$GW/$A/small:v1"
small_pulled "podman pull" $?
step "podman: the pushed digest, image id = config digest" pm_has "$GW/$A/small:v1" "$SMALL" "$SMALL_CONFIG"
step "podman pull --arch arm64 $GW/A/multi:v1" "${PM[@]}" pull --arch arm64 "$GW/$A/multi:v1"
step "podman: the index digest, the arm64 config" pm_has "$GW/$A/multi:v1" "$MULTI" "$ARM_CONFIG"
step "podman pull of B's repository is refused" refused -- "${PM[@]}" pull "$GW/$B/small:v1"
"${PM[@]}" rmi -a -f >/dev/null 2>&1

section "skopeo"
SKG=("${SK[@]}")
step "skopeo copy $GW/A/small:v1 -> oci: (fresh layout)" \
	"${SKG[@]}" copy "${SK_SRC[@]}" "docker://$GW/$A/small:v1" "oci:$CL_TMP/small-oci:v1"
small_pulled "skopeo copy" $?
step "skopeo: every blob of the layout hashes to its name" verify_layout "$CL_TMP/small-oci"
step "skopeo: the same blobs as the pushed layout" same_blob_set "$CONTENT/small" "$CL_TMP/small-oci"
step "skopeo copy --all $GW/A/multi:v1 -> oci: (both platforms)" \
	"${SKG[@]}" copy --all "${SK_SRC[@]}" "docker://$GW/$A/multi:v1" "oci:$CL_TMP/multi-oci:v1"
step "skopeo: index and both images, blob for blob" same_blob_set "$CONTENT/multiarch" "$CL_TMP/multi-oci"
step "skopeo: index digest unchanged" same_digest "$GW/$A/multi:v1" "$MULTI"
step "skopeo copy the Helm chart -> dir:" \
	"${SKG[@]}" copy "${SK_SRC[@]}" "docker://$GW/$A/chart:0.1.0" "dir:$CL_TMP/chart"
step "skopeo: chart manifest digest, config and chart layer intact" verify_dir "$CL_TMP/chart" "$HELM"
helm_types() {
	jq -c '{config: .config.mediaType, layers: [.layers[].mediaType]}' "$CL_TMP/chart/manifest.json"
	jq -e '.config.mediaType == "application/vnd.cncf.helm.config.v1+json" and
		.layers == [.layers[0]] and
		.layers[0].mediaType == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"' \
		"$CL_TMP/chart/manifest.json" >/dev/null
}
step "skopeo: the chart keeps its Helm media types" helm_types
step "skopeo inspect of B's repository is refused" \
	refused -- "${SKG[@]}" inspect --raw "${SK_ANY[@]}" "docker://$GW/$B/small:v1"

section "ctr (a private containerd, hosts.toml for $GW)"
if ! containerd_start; then
	fail "containerd did not start" "$(tail -n 20 "$CD/containerd.log")"
	exit 1
fi
ok "containerd up (pid $CPID)"
ctr_hosts
step "ctr images pull $GW/A/small:v1 (hosts.toml, native snapshotter)" \
	"${CTR[@]}" images pull "${CTRH[@]}" --snapshotter native "$GW/$A/small:v1"
small_pulled "ctr pull" $?
step "ctr: the pushed manifest digest" ctr_has "$GW/$A/small:v1" "$SMALL"
step "ctr: config and layers intact" ctr_content_ok $(blobs_of small "$SMALL")
step "ctr images pull --all-platforms $GW/A/multi:v1" \
	"${CTR[@]}" images pull "${CTRH[@]}" --snapshotter native --all-platforms "$GW/$A/multi:v1"
step "ctr: the index digest" ctr_has "$GW/$A/multi:v1" "$MULTI"
step "ctr: both platforms' manifests, configs and layers intact" \
	ctr_content_ok "$MULTI" "$AMD" "$ARM" $(blobs_of multiarch "$AMD") $(blobs_of multiarch "$ARM")
step "ctr content fetch $GW/A/chart:0.1.0 (the Helm chart)" \
	"${CTR[@]}" content fetch "${CTRH[@]}" "$GW/$A/chart:0.1.0"
step "ctr: chart manifest, config and chart layer intact" ctr_content_ok "$HELM" $(blobs_of helm "$HELM")
step "ctr pull of B's repository is refused" \
	refused -- "${CTR[@]}" images pull "${CTRH[@]}" --snapshotter native "$GW/$B/small:v1"
containerd_stop

section "cached content is not served under B's names"
through
areq GET "/v2/$A/small/blobs/$SMALL_LAYER"
expect_resp 200
expect_header_eq Docker-Content-Digest "$SMALL_LAYER"
B_GETS=$(grep ' access ' "$BERTH_LOG" | grep -c "path=/v2/$B/small/")
areq GET "/v2/$B/small/blobs/$SMALL_LAYER"
expect_resp 403 DENIED
expect_no_header WWW-Authenticate
areq HEAD "/v2/$B/small/blobs/$SMALL_LAYER"
expect_resp 403
areq GET "/v2/$B/small/manifests/$SMALL" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 403 DENIED
n=$(grep ' access ' "$BERTH_LOG" | grep -c "path=/v2/$B/small/")
[ "$n" -ge "$((B_GETS + 3))" ] && ok "each of B's requests went to berthd (none answered from the cache)" ||
	fail "berthd saw $((n - B_GETS)) of B's 3 requests: some were answered from the cache"

section "a push through the proxy: 405 UNSUPPORTED, nothing changes upstream"
areq POST "/v2/$A/pushed/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 405 UNSUPPORTED
areq PUT "/v2/$A/pushed/manifests/v1" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$(blob_path small "$SMALL")"
expect_resp 405 UNSUPPORTED
step "skopeo copy to $GW/A/pushed:v1 fails with the proxy's error" \
	refused '405|unsupported|method not allowed' -- \
	"${SKG[@]}" copy "${SK_DST[@]}" "oci:$CONTENT/small:v1" "docker://$GW/$A/pushed:v1"
back
as A-push "Bearer $A_PUSH"
areq GET "/v2/$A/pushed/tags/list"
expect_resp 404 NAME_UNKNOWN
areq HEAD "/v2/$A/pushed/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 404

edge_stop
auth_stop
echo "total $((SECONDS - T_START)) s"
berth_done
