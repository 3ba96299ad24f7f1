#!/usr/bin/env bash
# podman against a real berthd, storage only (podman run cannot work in this
# sandbox: crun may not raise RLIMIT_NOFILE): pull an image skopeo pushed,
# tag it and push it to other repositories, remove it, pull it back,
# inspect it, pull both platforms of a multi-arch index and inspect
# the index remotely.  podman keeps everything in temporary directories.
# The push to the second repository runs with an empty blob-info cache, so
# podman cannot reuse the compressed blobs it pulled: it compresses the
# layers from its store again (other gzip bytes, other digests) and really
# uploads them; a push with the warm cache covers the "blob exists/mount" path.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/clients_lib.sh"
clients_private_cache "$0" "$@"
BERTH_OPEN=1 # authentication is covered by test_auth_*; these drive clients without it
. "$HERE/lib.sh"

T_START=$SECONDS
clients_need podman skopeo jq curl sha256sum openssl
section "setup"
clients_content small multiarch
berth_start || exit 1
clients_setup
R=$REGISTRY/$NS
SMALL=$(content_field small 3)
MULTI=$(content_field multiarch 3)
blob_path() { printf '%s/%s/blobs/sha256/%s\n' "$CONTENT" "$1" "${2#sha256:}"; }
SMALL_DIFF_IDS=$(jq -c .rootfs.diff_ids "$(blob_path small "$(jq -r .config.digest "$(blob_path small "$SMALL")")")")

# A registries.conf marking only this server insecure, for the podman
# commands that have no --tls-verify flag (manifest inspect).
PD=$CL_TMP/podman
mkdir -p "$PD/tmp" "$PD/net"
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$REGISTRY" >"$PD/registries.conf"
export CONTAINERS_REGISTRIES_CONF=$PD/registries.conf
# podman refuses a runroot path longer than 50 characters, so that one
# lives in a short directory of its own, removed on exit before lib.sh's
# cleanup runs.
PD_RUN=$(mktemp -d /tmp/berth-pm.XXXXXX)
trap 'e2e_rc=$?; rm -rf "$PD_RUN"; (exit $e2e_rc); e2e_cleanup' EXIT
PM=(podman --storage-driver vfs --root "$PD/root" --runroot "$PD_RUN" --tmpdir "$PD/tmp"
	--network-config-dir "$PD/net" --events-backend none --cgroup-manager cgroupfs)
TLS=(--tls-verify=false)
pm_cleanup() { "${PM[@]}" rmi -a -f >/dev/null 2>&1; }

step "skopeo pushes small:v1 (the image podman will pull)" \
	"${SK[@]}" copy "${SK_DST[@]}" "oci:$CONTENT/small:v1" "docker://$R/small:v1"
step "skopeo pushes multiarch:v1 (--all)" \
	"${SK[@]}" copy --all "${SK_DST[@]}" "oci:$CONTENT/multiarch:v1" "docker://$R/multi:v1"

# image_jq REF [jq args] EXPR: jq -e over `podman image inspect REF`.
image_jq() {
	local ref=$1
	shift
	"${PM[@]}" image inspect "$ref" >"$PD/inspect.json" || return 1
	jq -c '.[0] | {Digest, RepoDigests, Architecture, Os, Layers: .RootFS.Layers}' "$PD/inspect.json"
	jq -e "$@" "$PD/inspect.json" >/dev/null
}
# listed REF DIGEST: `podman images` shows REF with DIGEST.
listed() {
	local out
	out=$("${PM[@]}" images --format '{{.Repository}}:{{.Tag}} {{.Digest}}') || return 1
	echo "$out"
	grep -qx "$1 $2" <<<"$out"
}
not_listed() {
	local out
	out=$("${PM[@]}" images --format '{{.Repository}}:{{.Tag}}') || return 1
	echo "$out"
	! grep -qx "$1" <<<"$out"
}

section "pull, tag, push to another repository"
step "podman pull small:v1" "${PM[@]}" pull "${TLS[@]}" "$R/small:v1"
step "podman image inspect: digest, amd64, the layers' diff_ids" image_jq "$R/small:v1" \
	--arg d "$SMALL" --argjson ids "$SMALL_DIFF_IDS" \
	'.[0].Digest == $d and .[0].Architecture == "amd64" and .[0].Os == "linux" and .[0].RootFS.Layers == $ids'
step "podman images lists small:v1 with its digest" listed "$R/small:v1" "$SMALL"
step "podman tag small:v1 -> moved/small:v1" "${PM[@]}" tag "$R/small:v1" "$R/moved/small:v1"
step "podman push small:v1 -> warm/small:v1 (warm blob-info cache)" \
	"${PM[@]}" push "${TLS[@]}" --digestfile "$PD/warm.digest" "$R/small:v1" "$R/warm/small:v1"
step "warm push: manifest served with podman's digest" head_digest "$NS/warm/small" v1 "$(cat "$PD/warm.digest" 2>/dev/null)"
step "warm push: every blob served and hashes correctly" manifest_blobs_ok "$NS/warm/small" v1
# cold CMD...: run CMD with an empty blob-info cache of its own.
cold() {
	if [ "${BERTH_E2E_PRIVATE_CACHE:-}" = 1 ]; then
		unshare -m --propagation private sh -c \
			'mount -t tmpfs -o size=16m berth-e2e-cold /var/lib/containers/cache && exec "$@"' cold "$@"
	else
		"$@"
	fi
}
step "podman push moved/small:v1 (cold cache: recompressed layers uploaded)" \
	cold "${PM[@]}" push "${TLS[@]}" --digestfile "$PD/pushed.digest" "$R/moved/small:v1"
PUSHED=$(cat "$PD/pushed.digest" 2>/dev/null)
echo "podman pushed $PUSHED"
new_layers() {
	local got
	got=$(curl -sf --max-time 30 -H "Accept: $MT_OCI_MANIFEST, $MT_DOCKER_MANIFEST" \
		"$BERTH_URL/v2/$NS/moved/small/manifests/v1" | jq -c '[.layers[].digest]') || return 1
	echo "pushed layers $got"
	[ "$(jq -c '[.layers[].digest]' "$(blob_path small "$SMALL")")" != "$got" ] && [ "$PUSHED" != "$SMALL" ]
}
if [ "${BERTH_E2E_PRIVATE_CACHE:-}" = 1 ]; then
	step "cold push really uploaded new (recompressed) layer blobs" new_layers
fi
step "registry serves the pushed manifest with podman's digest" head_digest "$NS/moved/small" v1 "$PUSHED"
step "pushed manifest bytes hash to that digest" same_digest "$R/moved/small:v1" "$PUSHED"
step "every blob podman uploaded is served and hashes correctly" manifest_blobs_ok "$NS/moved/small" v1
pushed_config_same() {
	local cfg
	cfg=$(curl -sf --max-time 30 -H "Accept: $MT_OCI_MANIFEST, $MT_DOCKER_MANIFEST" \
		"$BERTH_URL/v2/$NS/moved/small/manifests/v1" | jq -r .config.digest) || return 1
	curl -sf --max-time 30 "$BERTH_URL/v2/$NS/moved/small/blobs/$cfg" |
		jq -e --argjson ids "$SMALL_DIFF_IDS" '.rootfs.diff_ids == $ids and .architecture == "amd64"'
}
step "pushed config has the original diff_ids (same file system content)" pushed_config_same
step "tags of moved/small: v1" tags_are "$R/moved/small" "v1"
step "podman push --format v2s2 to v2s2/small:v1" \
	"${PM[@]}" push "${TLS[@]}" --format v2s2 "$R/small:v1" "$R/v2s2/small:v1"
step "v2s2 push stored as a Docker schema 2 manifest" raw_jq "$R/v2s2/small:v1" --arg t "$MT_DOCKER_MANIFEST" '.mediaType == $t'
step "v2s2 blobs served and hash correctly" manifest_blobs_ok "$NS/v2s2/small" v1

section "rmi and pull again"
step "podman rmi both names" "${PM[@]}" rmi "$R/small:v1" "$R/moved/small:v1"
step "podman images no longer shows moved/small:v1" not_listed "$R/moved/small:v1"
step "podman pull moved/small:v1 back" "${PM[@]}" pull "${TLS[@]}" "$R/moved/small:v1"
step "re-pulled image: podman's pushed digest, original diff_ids" image_jq "$R/moved/small:v1" \
	--arg d "$PUSHED" --argjson ids "$SMALL_DIFF_IDS" '.[0].Digest == $d and .[0].RootFS.Layers == $ids'
step "podman images lists moved/small:v1" listed "$R/moved/small:v1" "$PUSHED"
step "pull of a tag that does not exist fails" must_fail "${PM[@]}" pull "${TLS[@]}" "$R/small:no-such-tag"

section "multi-arch index"
remote_index() {
	local want
	want=$(jq -c '[.manifests[].digest]' "$(blob_path multiarch "$MULTI")")
	"${PM[@]}" manifest inspect "$R/multi:v1" >"$PD/index.json" || return 1
	jq -c . "$PD/index.json"
	jq -e --argjson want "$want" '[.manifests[].digest] == $want' "$PD/index.json" >/dev/null
}
step "podman manifest inspect of the remote index lists both images" remote_index
step "podman pull multi:v1 (amd64 from the index)" "${PM[@]}" pull "${TLS[@]}" "$R/multi:v1"
step "pulled image: index digest, amd64" image_jq "$R/multi:v1" --arg d "$MULTI" \
	'.[0].Digest == $d and .[0].Architecture == "amd64"'
step "podman pull --arch arm64 multi:v1" "${PM[@]}" pull "${TLS[@]}" --arch arm64 "$R/multi:v1"
step "pulled image: arm64" image_jq "$R/multi:v1" '.[0].Architecture == "arm64"'

pm_cleanup
echo "total $((SECONDS - T_START)) s"
berth_done
