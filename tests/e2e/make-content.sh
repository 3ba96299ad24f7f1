#!/usr/bin/env bash
# Builds deterministic OCI image layouts for the client end-to-end tests with
# shell tools only, so a fresh clone needs nothing prepared in advance.  The
# same bytes come out on every run (fixed AES-CTR keystreams for "random"
# data, normalised tar headers, gzip -n), so manifest digests are stable and
# the tests can compare what a registry serves with what went in.
#
# Usage: tests/e2e/make-content.sh OUTDIR [NAME...]
#   NAME: small multiarch helm artifact big (default: all of them)
#   small     tag v1     3 gzip layers, config with rootfs.diff_ids, linux/amd64
#   multiarch tag v1     OCI index -> linux/amd64 and linux/arm64/v8 images
#   helm      tag 0.1.0  Helm chart artifact (helm config + chart layer types)
#   artifact  tag v1     config of an unknown type application/vnd.example.thing.v1+json
#   big       tag v1     one gzip layer of BIG_MB MiB of incompressible data (default 64)
# Writes OUTDIR/DIGESTS: "<name> <tag> <manifest digest> <largest layer digest>"
# (for multiarch the digest is the index's, the layer the largest of either image).
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022

die() { echo "make-content: $*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: $0 OUTDIR [small|multiarch|helm|artifact|big ...]"
OUT=$1; shift
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(small multiarch helm artifact big)
BIG_MB=${BIG_MB:-64}
case $BIG_MB in ''|*[!0-9]*) die "BIG_MB must be a number of MiB" ;; esac
for tool in tar gzip sha256sum openssl jq stat head; do
	command -v "$tool" > /dev/null || die "$tool is missing"
done

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SCRATCH=$(mktemp -d "$OUT/.scratch.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

T_MANIFEST=application/vnd.oci.image.manifest.v1+json
T_INDEX=application/vnd.oci.image.index.v1+json
T_CONFIG=application/vnd.oci.image.config.v1+json
T_LAYER=application/vnd.oci.image.layer.v1.tar+gzip
STAMP=2024-01-01T00:00:00Z

# keystream SEED BYTES: BYTES of incompressible data fixed by SEED.
keystream() {
	local key iv
	key=$(printf 'berth-e2e-key:%s' "$1" | sha256sum | head -c 32)
	iv=$(printf 'berth-e2e-iv:%s' "$1" | sha256sum | head -c 32)
	head -c "$2" /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$key" -iv "$iv"
}

# new_layout DIR: an empty OCI layout.
new_layout() {
	rm -rf "$1"
	mkdir -p "$1/blobs/sha256"
	printf '%s' '{"imageLayoutVersion":"1.0.0"}' > "$1/oci-layout"
}

# store LAYOUT FILE: move FILE into the layout's blobs; prints "DIGEST SIZE".
store() {
	local hex size
	hex=$(sha256sum "$2" | cut -d' ' -f1)
	size=$(stat -c %s "$2")
	mv -f "$2" "$1/blobs/sha256/$hex"
	echo "sha256:$hex $size"
}

# store_text LAYOUT TEXT: store TEXT byte for byte (no newline added).
store_text() {
	local f
	f=$(mktemp "$SCRATCH/text.XXXXXX")
	printf '%s' "$2" > "$f"
	store "$1" "$f"
}

# pack LAYOUT DIR: tar DIR normalised, gzip it; prints "DIGEST SIZE DIFFID".
pack() {
	local tarball diffid
	tarball=$(mktemp "$SCRATCH/layer.XXXXXX")
	tar --sort=name --format=gnu --mtime=@0 --owner=0 --group=0 --numeric-owner \
		--mode='u=rwX,go=rX' -C "$2" -cf "$tarball" .
	diffid=$(sha256sum "$tarball" | cut -d' ' -f1)
	gzip -n -1 -c "$tarball" > "$tarball.gz"
	rm -f "$tarball"
	echo "$(store "$1" "$tarball.gz") sha256:$diffid"
}

# image LAYOUT ARCH VARIANT DIR...: layers + config; prints the manifest JSON.
image() {
	local layout=$1 arch=$2 variant=$3 layers='[]' diffids='[]' dir digest size diffid config
	shift 3
	for dir in "$@"; do
		read -r digest size diffid < <(pack "$layout" "$dir")
		layers=$(jq -c --arg t "$T_LAYER" --arg d "$digest" --argjson s "$size" \
			'. + [{mediaType: $t, digest: $d, size: $s}]' <<< "$layers")
		diffids=$(jq -c --arg id "$diffid" '. + [$id]' <<< "$diffids")
	done
	config=$(jq -c -n --arg arch "$arch" --arg variant "$variant" --arg when "$STAMP" \
		--argjson ids "$diffids" '
		{created: $when, architecture: $arch, os: "linux"}
		+ (if $variant == "" then {} else {variant: $variant} end)
		+ {config: {Env: ["PATH=/usr/bin:/bin"], Cmd: ["/bin/true"], WorkingDir: "/"},
		   rootfs: {type: "layers", diff_ids: $ids},
		   history: [$ids[] | {created: $when, created_by: "tests/e2e/make-content.sh"}]}')
	read -r digest size < <(store_text "$layout" "$config")
	jq -c -n --arg mt "$T_MANIFEST" --arg ct "$T_CONFIG" --arg d "$digest" --argjson s "$size" \
		--argjson layers "$layers" \
		'{schemaVersion: 2, mediaType: $mt, config: {mediaType: $ct, digest: $d, size: $s}, layers: $layers}'
}

# tag_layout LAYOUT MEDIATYPE DIGEST SIZE TAG: index.json naming one manifest.
tag_layout() {
	jq -c -n --arg it "$T_INDEX" --arg mt "$2" --arg d "$3" --argjson s "$4" --arg tag "$5" \
		'{schemaVersion: 2, mediaType: $it,
		  manifests: [{mediaType: $mt, digest: $d, size: $s,
		               annotations: {"org.opencontainers.image.ref.name": $tag}}]}' > "$1/index.json"
}

# largest_layer MANIFEST_JSON...: digest of the biggest layer among them.
largest_layer() {
	printf '%s\n' "$@" | jq -s -r '[.[].layers[]] | max_by(.size) | .digest'
}

# finish NAME TAG MANIFEST_JSON: store the manifest, tag it, record it.
finish() {
	local digest size
	read -r digest size < <(store_text "$OUT/$1" "$3")
	tag_layout "$OUT/$1" "$T_MANIFEST" "$digest" "$size" "$2"
	echo "$1 $2 $digest $(largest_layer "$3")" >> "$SCRATCH/DIGESTS"
}

make_small() {
	local src=$SCRATCH/small m
	new_layout "$OUT/small"
	mkdir -p "$src/1/usr/share/berth" "$src/2/var/lib/berth" "$src/3/etc/berth"
	keystream small-layer-1 $((1536 * 1024)) > "$src/1/usr/share/berth/data.bin"
	printf 'berth e2e fixture\n' > "$src/1/usr/share/berth/README"
	seq 1 200000 > "$src/2/var/lib/berth/numbers.txt"
	keystream small-layer-2 4096 > "$src/2/var/lib/berth/salt.bin"
	printf 'listen=127.0.0.1\nname=small\n' > "$src/3/etc/berth/app.conf"
	m=$(image "$OUT/small" amd64 "" "$src/1" "$src/2" "$src/3")
	finish small v1 "$m"
}

make_multiarch() {
	local layout=$OUT/multiarch src entries='[]' manifests=() platform arch variant m digest size index
	new_layout "$layout"
	for platform in amd64 arm64/v8; do
		arch=${platform%%/*}
		variant=
		[ "$arch" = "$platform" ] || variant=${platform#*/}
		src=$SCRATCH/multi-$arch
		mkdir -p "$src/opt/berth"
		keystream "multi-$arch" $((96 * 1024)) > "$src/opt/berth/payload.bin"
		printf '%s\n' "$platform" > "$src/opt/berth/platform"
		m=$(image "$layout" "$arch" "$variant" "$src")
		manifests+=("$m")
		read -r digest size < <(store_text "$layout" "$m")
		entries=$(jq -c --arg mt "$T_MANIFEST" --arg d "$digest" --argjson s "$size" \
			--arg arch "$arch" --arg variant "$variant" '
			. + [{mediaType: $mt, digest: $d, size: $s,
			      platform: ({architecture: $arch, os: "linux"}
			                 + (if $variant == "" then {} else {variant: $variant} end))}]' <<< "$entries")
	done
	index=$(jq -c -n --arg it "$T_INDEX" --argjson m "$entries" '{schemaVersion: 2, mediaType: $it, manifests: $m}')
	read -r digest size < <(store_text "$layout" "$index")
	tag_layout "$layout" "$T_INDEX" "$digest" "$size" v1
	echo "multiarch v1 $digest $(largest_layer "${manifests[@]}")" >> "$SCRATCH/DIGESTS"
}

make_helm() {
	local layout=$OUT/helm chart=$SCRATCH/chart/berth-demo ld ls cd cs config m
	new_layout "$layout"
	mkdir -p "$chart/templates"
	printf '%s\n' 'apiVersion: v2' 'name: berth-demo' 'description: Chart used by the Berth e2e tests' \
		'type: application' 'version: 0.1.0' 'appVersion: "1.0"' > "$chart/Chart.yaml"
	printf '%s\n' 'greeting: hello' > "$chart/values.yaml"
	printf '%s\n' 'apiVersion: v1' 'kind: ConfigMap' 'metadata:' '  name: {{ .Release.Name }}' \
		'data:' '  greeting: {{ .Values.greeting | quote }}' > "$chart/templates/configmap.yaml"
	tar --sort=name --format=gnu --mtime=@0 --owner=0 --group=0 --numeric-owner \
		--mode='u=rwX,go=rX' -C "$SCRATCH/chart" -cf - berth-demo | gzip -n -9 > "$SCRATCH/chart.tgz"
	read -r ld ls < <(store "$layout" "$SCRATCH/chart.tgz")
	config='{"apiVersion":"v2","name":"berth-demo","version":"0.1.0","appVersion":"1.0","description":"Chart used by the Berth e2e tests","type":"application"}'
	read -r cd cs < <(store_text "$layout" "$config")
	m=$(jq -c -n --arg mt "$T_MANIFEST" --arg cd "$cd" --argjson cs "$cs" --arg ld "$ld" --argjson ls "$ls" \
		--arg when "$STAMP" '
		{schemaVersion: 2, mediaType: $mt,
		 config: {mediaType: "application/vnd.cncf.helm.config.v1+json", digest: $cd, size: $cs},
		 layers: [{mediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip", digest: $ld, size: $ls}],
		 annotations: {"org.opencontainers.image.created": $when,
		               "org.opencontainers.image.title": "berth-demo",
		               "org.opencontainers.image.version": "0.1.0"}}')
	finish helm 0.1.0 "$m"
}

make_artifact() {
	local layout=$OUT/artifact cd cs ld ls m
	new_layout "$layout"
	read -r cd cs < <(store_text "$layout" '{"thing":"berth-e2e","version":1}')
	keystream artifact-data 20000 > "$SCRATCH/thing.bin"
	read -r ld ls < <(store "$layout" "$SCRATCH/thing.bin")
	m=$(jq -c -n --arg mt "$T_MANIFEST" --arg cd "$cd" --argjson cs "$cs" --arg ld "$ld" --argjson ls "$ls" '
		{schemaVersion: 2, mediaType: $mt,
		 config: {mediaType: "application/vnd.example.thing.v1+json", digest: $cd, size: $cs},
		 layers: [{mediaType: "application/vnd.example.thing.data.v1", digest: $ld, size: $ls,
		           annotations: {"org.opencontainers.image.title": "thing.bin"}}],
		 annotations: {"com.example.purpose": "berth e2e unknown artifact type"}}')
	finish artifact v1 "$m"
}

make_big() {
	local src=$SCRATCH/big m
	new_layout "$OUT/big"
	mkdir -p "$src/data"
	keystream "big-$BIG_MB" $((BIG_MB * 1024 * 1024)) > "$src/data/random.bin"
	m=$(image "$OUT/big" amd64 "" "$src")
	rm -rf "$src"
	finish big v1 "$m"
}

: > "$SCRATCH/DIGESTS"
for name in "${NAMES[@]}"; do
	case $name in
	small | multiarch | helm | artifact | big) "make_$name" ;;
	*) die "unknown content name '$name'" ;;
	esac
done
mv -f "$SCRATCH/DIGESTS" "$OUT/DIGESTS"
