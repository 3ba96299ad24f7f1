#!/usr/bin/env bash
# containerd's ctr against a real berthd.  A private containerd (temporary
# root, state and socket; only the native snapshotter; no CRI) is started in
# the background and stopped by its PID on exit.  ctr pulls and unpacks an
# image, one platform and then all platforms of a multi-arch index, fetches
# the content of a Helm chart, and pushes images and the chart to new
# repositories (containerd tries cross-repository mounts); every pushed
# manifest is checked with curl.  If containerd cannot start in this
# sandbox at all, the script says so and exits 0 (skipped).
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/clients_lib.sh"
clients_private_cache "$0" "$@"
BERTH_OPEN=1 # authentication is covered by test_auth_*; these drive clients without it
. "$HERE/lib.sh"

T_START=$SECONDS
clients_need containerd ctr skopeo jq curl sha256sum openssl timeout
section "private containerd"

trap 'e2e_rc=$?; containerd_stop; (exit $e2e_rc); e2e_cleanup' EXIT
if ! containerd_start; then
	echo "SKIP: containerd cannot start in this sandbox; its log:"
	sed 's/^/     | /' "$CD/containerd.log" | tail -n 20
	berth_done
	exit 0
fi
ok "containerd $(ctr --address "$SOCK" version 2>/dev/null | awk '/Server:/ {s=1} s && /Version:/ {print $2; exit}') up (pid $CPID)"

section "setup"
clients_content small multiarch helm
berth_start || exit 1
clients_setup
R=$REGISTRY/$NS
SMALL=$(content_field small 3)
MULTI=$(content_field multiarch 3)
HELM=$(content_field helm 3)
HELM_CHART=$(content_field helm 4)
blob_path() { printf '%s/%s/blobs/sha256/%s\n' "$CONTENT" "$1" "${2#sha256:}"; }
PH=(--plain-http)

step "skopeo pushes small:v1" "${SK[@]}" copy "${SK_DST[@]}" "oci:$CONTENT/small:v1" "docker://$R/small:v1"
step "skopeo pushes multiarch:v1 (--all)" "${SK[@]}" copy --all "${SK_DST[@]}" "oci:$CONTENT/multiarch:v1" "docker://$R/multi:v1"
step "skopeo pushes the Helm chart :0.1.0" "${SK[@]}" copy "${SK_DST[@]}" "oci:$CONTENT/helm:0.1.0" "docker://$R/chart:0.1.0"

# image_digest REF: the target digest ctr recorded for REF.
image_digest() { "${CTR[@]}" images ls | awk -v r="$1" '$1 == r { print $3 }'; }
# has_image REF DIGEST
has_image() {
	local d
	d=$(image_digest "$1")
	echo "ctr image $1 -> $d"
	[ "$d" = "$2" ]
}
# content_ok DIGEST...: containerd's content store holds each blob, intact.
content_ok() {
	local d got
	for d in "$@"; do
		got=$("${CTR[@]}" content get "$d" | sha256_stdin) || { echo "no content $d"; return 1; }
		[ "$got" = "$d" ] || { echo "content $d hashes to $got"; return 1; }
	done
	echo "$# blobs intact"
}
# no_content DIGEST: containerd has not fetched this blob.
no_content() {
	local all
	all=$("${CTR[@]}" content ls -q) || return 1
	! grep -qx "$1" <<<"$all"
}
layers_of() { jq -r '.config.digest, .layers[].digest' "$(blob_path "$1" "$2")"; }
child_of() { jq -r --arg a "$2" '.manifests[] | select(.platform.architecture == $a) | .digest' "$(blob_path "$1" "$3")"; }
ARM=$(child_of multiarch arm64 "$MULTI")
AMD=$(child_of multiarch amd64 "$MULTI")
ARM_LAYER=$(jq -r '.layers[0].digest' "$(blob_path multiarch "$ARM")")
AMD_LAYER=$(jq -r '.layers[0].digest' "$(blob_path multiarch "$AMD")")

section "pull"
step "ctr images pull small:v1 (native snapshotter, unpacked)" \
	"${CTR[@]}" images pull "${PH[@]}" --snapshotter native "$R/small:v1"
step "ctr records the pushed manifest digest" has_image "$R/small:v1" "$SMALL"
step "config and layers in containerd's content store are intact" content_ok $(layers_of small "$SMALL")
unpacked() {
	local n
	n=$("${CTR[@]}" snapshots --snapshotter native ls | awk 'NR > 1 && $NF == "Committed"' | wc -l)
	echo "$n committed snapshots"
	[ "$n" -ge 3 ]
}
step "the 3 layers were unpacked into native snapshots" unpacked
step "ctr images pull --platform linux/arm64 multi:v1" \
	"${CTR[@]}" images pull "${PH[@]}" --snapshotter native --platform linux/arm64 "$R/multi:v1"
step "ctr records the index digest" has_image "$R/multi:v1" "$MULTI"
step "the arm64 image's blobs are intact" content_ok "$ARM" $(layers_of multiarch "$ARM")
step "the amd64 layer was not fetched" no_content "$AMD_LAYER"
step "ctr images pull --all-platforms multi:v1" \
	"${CTR[@]}" images pull "${PH[@]}" --snapshotter native --all-platforms "$R/multi:v1"
step "now both platforms' blobs are intact" content_ok "$MULTI" "$AMD" "$ARM" "$AMD_LAYER" "$ARM_LAYER"
step "ctr content fetch of the Helm chart" "${CTR[@]}" content fetch "${PH[@]}" "$R/chart:0.1.0"
step "chart manifest, config and chart layer intact" content_ok "$HELM" $(layers_of helm "$HELM")
step "fetch of a tag that does not exist fails" must_fail "${CTR[@]}" content fetch "${PH[@]}" "$R/chart:9.9.9"

section "push"
step "ctr images push small:v1 -> ctr/pushed:v1" \
	"${CTR[@]}" images push "${PH[@]}" "$R/ctr/pushed:v1" "$R/small:v1"
step "curl: pushed manifest has the original digest" head_digest "$NS/ctr/pushed" v1 "$SMALL"
step "curl: every blob of ctr/pushed is served and intact" manifest_blobs_ok "$NS/ctr/pushed" v1
step "ctr images push multi:v1 (index) -> ctr/multi:v1" \
	"${CTR[@]}" images push "${PH[@]}" "$R/ctr/multi:v1" "$R/multi:v1"
step "curl: pushed index has the original digest" head_digest "$NS/ctr/multi" v1 "$MULTI"
children_pushed() {
	local d
	for d in "$AMD" "$ARM"; do
		head_digest "$NS/ctr/multi" "$d" "$d" >/dev/null || { echo "child $d missing"; return 1; }
		manifest_blobs_ok "$NS/ctr/multi" "$d" || return 1
	done
}
step "curl: both child manifests and their blobs are in ctr/multi" children_pushed
step "ctr images push the chart -> ctr/chart:0.1.0" \
	"${CTR[@]}" images push "${PH[@]}" "$R/ctr/chart:0.1.0" "$R/chart:0.1.0"
step "curl: pushed chart manifest has the original digest" head_digest "$NS/ctr/chart" 0.1.0 "$HELM"
step "curl: chart layer served from ctr/chart" blob_ok "$NS/ctr/chart" "$HELM_CHART"
step "tags of ctr/pushed: v1" tags_are "$R/ctr/pushed" v1

containerd_stop
echo "total $((SECONDS - T_START)) s"
berth_done
