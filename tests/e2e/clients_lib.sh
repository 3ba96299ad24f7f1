# Helpers shared by the real-client end-to-end tests (skopeo, podman, ctr)
# and the crash test, on top of lib.sh: running a client command as one
# counted step with its output kept for the failure report, a private
# blob-info cache for skopeo/podman, test content from make-content.sh, and
# checks that what a client pulled hashes to what was pushed.
#
# Use:
#   . "$HERE/clients_lib.sh"
#   clients_private_cache "$0" "$@"   # before lib.sh: may re-exec the script
#   . "$HERE/lib.sh"
#   clients_setup                     # after lib.sh: CL_TMP, REGISTRY, SK
#
# shellcheck shell=bash

CLIENTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# skopeo and podman (as root) keep a blob-info cache in the fixed directory
# /var/lib/containers/cache.  Shared between runs it turns pushes into
# cross-repository mounts of blobs an earlier run uploaded to an earlier
# server, so a test would no longer exercise real uploads and its outcome
# would depend on history.  Re-executing the script in a private mount
# namespace with an empty tmpfs over that directory gives each run a cold
# cache that vanishes with it.  Must run before lib.sh is sourced so the
# EXIT trap and temporary directory belong to the re-executed script.
clients_private_cache() {
	local script=$1
	shift
	if [ -n "${BERTH_E2E_PRIVATE_CACHE:-}" ]; then
		return 0
	fi
	export BERTH_E2E_PRIVATE_CACHE=1
	if [ "$(id -u)" = 0 ] && mkdir -p /var/lib/containers/cache 2>/dev/null &&
		unshare -m --propagation private true 2>/dev/null; then
		exec unshare -m --propagation private bash -c '
			if ! mount -t tmpfs -o size=64m,mode=0700 berth-e2e-cache /var/lib/containers/cache; then
				echo "warning: no private blob-info cache (mount failed)" >&2
				export BERTH_E2E_PRIVATE_CACHE=shared
			fi
			script=$1
			shift
			exec bash "$script" "$@"' clients-private-cache "$script" "$@"
	fi
	echo "warning: cannot make a private blob-info cache; pushes may turn into mounts" >&2
	BERTH_E2E_PRIVATE_CACHE=shared
}

# Fails (and ends the script through lib.sh's trap) unless every named
# command exists; tests/e2e/install-clients.sh installs them.
clients_need() {
	local c missing=()
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		# ctest's skip code: a developer without the client sees the
		# test skipped; CI, which installs every client, counts a skip
		# as a failure (scripts/ctest-run.sh).
		echo "SKIP: missing tools: ${missing[*]} (run tests/e2e/install-clients.sh)"
		exit 77
	fi
}

# After berth_start: client-side state in CL_TMP, REGISTRY (host:port), NS
# (tenant namespace), and SK (skopeo with a private auth file and tmpdir,
# no signature policy).  Plain HTTP on loopback everywhere.
clients_setup() {
	CL_TMP=$E2E_TMP/clients
	mkdir -p "$CL_TMP/tmp"
	export TMPDIR=$CL_TMP/tmp
	export REGISTRY_AUTH_FILE=$CL_TMP/auth.json
	printf '{}\n' >"$REGISTRY_AUTH_FILE"
	REGISTRY=${BERTH_URL#http://}
	NS=$BERTH_TENANT
	SK=(skopeo --insecure-policy --tmpdir "$CL_TMP/tmp")
	SK_SRC=(--src-tls-verify=false)
	SK_DST=(--dest-tls-verify=false)
	SK_ANY=(--tls-verify=false)
	CL_STEP_N=0
}

# Builds the named content (make-content.sh) into CONTENT; sets CONTENT.
clients_content() {
	CONTENT=$E2E_TMP/content
	local t0=$SECONDS
	if ! bash "$CLIENTS_DIR/make-content.sh" "$CONTENT" "$@" >"$E2E_WORK/make-content.log" 2>&1; then
		fail "make-content.sh $*" "$(tail -n 5 "$E2E_WORK/make-content.log")"
		exit 1
	fi
	ok "test content built ($*) in $((SECONDS - t0)) s"
}

# content_field NAME FIELD: FIELD 2=tag 3=manifest digest 4=largest layer.
content_field() {
	awk -v n="$1" -v f="$2" '$1 == n { print $f; found = 1 } END { exit !found }' "$CONTENT/DIGESTS"
}

# step NAME CMD...: run CMD with its output in a log; one pass or one fail
# (with the end of the log).  Returns CMD's status.
step() {
	local name=$1 rc t0
	shift
	CL_STEP_N=$((CL_STEP_N + 1))
	CL_LOG=$CL_TMP/step-$CL_STEP_N.log
	t0=$(date +%s%N)
	"$@" >"$CL_LOG" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		ok "$name ($(((($(date +%s%N) - t0) / 1000000))) ms)"
	else
		fail "$name (exit $rc)" "command: $*"
		tail -n 15 "$CL_LOG" | sed 's/^/     | /'
	fi
	return $rc
}

# must_fail CMD...: succeeds only if CMD fails.
must_fail() {
	if "$@"; then
		echo "unexpectedly succeeded: $*"
		return 1
	fi
	return 0
}

# sha256 of stdin as "sha256:hex".
sha256_stdin() { printf 'sha256:%s\n' "$(sha256sum | cut -d' ' -f1)"; }

# raw_digest REF: digest of the manifest bytes skopeo gets for docker://REF.
raw_digest() {
	"${SK[@]}" inspect --raw "${SK_ANY[@]}" "docker://$1" | sha256_stdin
}

# same_digest REF WANT: the registry serves REF with exactly the digest WANT.
same_digest() {
	local got
	got=$(raw_digest "$1") || return 1
	echo "digest of $1: $got"
	[ "$got" = "$2" ] || { echo "want $2"; return 1; }
}

# raw_jq REF [jq args] EXPR: jq -e over the raw manifest of docker://REF.
raw_jq() {
	local ref=$1
	shift
	"${SK[@]}" inspect --raw "${SK_ANY[@]}" "docker://$ref" >"$CL_TMP/raw.json" || return 1
	head -c 2000 "$CL_TMP/raw.json"
	echo
	jq -e "$@" "$CL_TMP/raw.json" >/dev/null
}

# inspect_jq REF [skopeo inspect args] -- [jq args] EXPR: jq -e over the
# output of skopeo inspect (kept in CL_TMP/inspect.json for the report).
inspect_jq() {
	local ref=$1 args=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		args+=("$1")
		shift
	done
	shift
	"${SK[@]}" inspect "${args[@]}" "${SK_ANY[@]}" "docker://$ref" >"$CL_TMP/inspect.json" || return 1
	jq -c . "$CL_TMP/inspect.json" | head -c 2000
	echo
	jq -e "$@" "$CL_TMP/inspect.json" >/dev/null
}

# verify_dir DIR WANT_DIGEST [MUST_HAVE_DIGEST...]: a skopeo dir: copy where
# every blob hashes to its file name, manifest.json hashes to WANT_DIGEST
# (skip with "-"), and every blob the manifest lists is present.
verify_dir() {
	local dir=$1 want=$2 f n=0 base d
	shift 2
	for f in "$dir"/*; do
		base=$(basename "$f")
		case $base in manifest.json | version | signature-*) continue ;; esac
		[ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$base" ] || { echo "blob $base does not hash to its name"; return 1; }
		n=$((n + 1))
	done
	if [ "$want" != - ]; then
		d=$(sha256_stdin <"$dir/manifest.json")
		[ "$d" = "$want" ] || { echo "manifest.json is $d, want $want"; return 1; }
	fi
	for d in $(jq -r '(.config.digest // empty), (.layers[]?.digest)' "$dir/manifest.json") "$@"; do
		[ -f "$dir/${d#sha256:}" ] || { echo "blob $d missing"; return 1; }
	done
	echo "$n blobs verified"
	[ "$n" -gt 0 ]
}

# verify_layout DIR: every blob of an OCI layout hashes to its name.
verify_layout() {
	local f n=0
	for f in "$1"/blobs/sha256/*; do
		[ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || { echo "bad blob $f"; return 1; }
		n=$((n + 1))
	done
	echo "$n blobs verified"
	[ "$n" -gt 0 ]
}

# same_blob_set A B: two OCI layouts hold exactly the same blobs.
same_blob_set() {
	diff <(cd "$1/blobs/sha256" && ls | sort) <(cd "$2/blobs/sha256" && ls | sort)
}

# tags_are REPO "T1 T2 ...": skopeo list-tags gives exactly these tags.
tags_are() {
	local got
	got=$("${SK[@]}" list-tags "${SK_ANY[@]}" "docker://$1" | jq -r '(.Tags // [])[]' | sort | tr '\n' ' ')
	got=${got% }
	echo "tags of $1: [$got]"
	[ "$got" = "$(printf '%s\n' $2 | sort | tr '\n' ' ' | sed 's/ $//')" ]
}

# blob_ok REPO DIGEST: GET of the blob through the registry hashes to DIGEST.
blob_ok() {
	local got
	got=$(curl -sf --max-time 120 "$BERTH_URL/v2/$1/blobs/$2" | sha256_stdin) || return 1
	[ "$got" = "$2" ] || { echo "blob $2 in $1 hashes to $got"; return 1; }
}

# manifest_blobs_ok REPO DIGEST: every blob a manifest lists is served by
# REPO and hashes correctly (what a cross-repo mount must have linked).
manifest_blobs_ok() {
	local m d n=0
	m=$(curl -sf --max-time 30 -H "Accept: $MT_OCI_MANIFEST, $MT_DOCKER_MANIFEST" \
		"$BERTH_URL/v2/$1/manifests/$2") || { echo "manifest $2 not served by $1"; return 1; }
	for d in $(jq -r '.config.digest, .layers[].digest' <<<"$m"); do
		blob_ok "$1" "$d" || return 1
		n=$((n + 1))
	done
	echo "$n blobs served by $1"
}

# head_digest REPO REF WANT: HEAD of a manifest carries Docker-Content-Digest WANT.
head_digest() {
	local h
	h=$(curl -sfI --max-time 30 -H "Accept: $MT_OCI_MANIFEST, $MT_OCI_INDEX, $MT_DOCKER_MANIFEST, $MT_DOCKER_LIST" \
		"$BERTH_URL/v2/$1/manifests/$2" | tr -d '\r') || { echo "HEAD failed"; return 1; }
	echo "$h"
	grep -qix "docker-content-digest: $3" <<<"$h"
}

# containerd_start: a private containerd (temporary root, state and socket
# in a short directory of their own, since unix socket paths are limited to
# 107 bytes; only the native snapshotter; no CRI), stopped by its PID through
# containerd_stop.  Sets CD (its directory, with containerd.log), SOCK, CPID
# and CTR (the ctr command array).  Returns 1 if it cannot start here.
CPID=
CD=
SOCK=
containerd_start() {
	local up=0
	CD=$(mktemp -d /tmp/berth-ctr.XXXXXX)
	SOCK=$CD/containerd.sock
	cat >"$CD/config.toml" <<EOF
version = 2
root = "$CD/root"
state = "$CD/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  level = "warn"
EOF
	setsid containerd --config "$CD/config.toml" >"$CD/containerd.log" 2>&1 </dev/null &
	CPID=$!
	CTR=(timeout 120 ctr --address "$SOCK")
	for _ in $(seq 1 150); do
		kill -0 "$CPID" 2>/dev/null || break
		if [ -S "$SOCK" ] && ctr --address "$SOCK" version >/dev/null 2>&1; then
			up=1
			break
		fi
		sleep 0.1
	done
	[ "$up" = 1 ]
}

containerd_stop() {
	local i
	if [ -n "$CPID" ] && kill -0 "$CPID" 2>/dev/null; then
		kill -TERM "$CPID" 2>/dev/null
		for i in $(seq 1 100); do
			kill -0 "$CPID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$CPID" 2>/dev/null && kill -KILL "$CPID" 2>/dev/null
	fi
	[ -n "$CPID" ] && wait "$CPID" 2>/dev/null
	CPID=
	[ -n "$CD" ] && rm -rf "$CD"
	CD=
	return 0
}
