#!/usr/bin/env bash
# Scale-out benchmark: Berth over S3 (Ceph radosgw) and PostgreSQL, one node
# and three nodes behind haproxy (deploy/cluster.sh), against the embedded
# default (filesystem + SQLite) and against distribution 2.8.2 (Debian's
# docker-registry) with its s3 driver on the same radosgw bucket.  Everything
# runs on this machine, on loopback; the engines come from
# tests/services/services.sh (installed and started when missing, stopped at
# the end) unless BENCH_SERVICES names a running set.
#
# Usage: bench/cluster.sh
# Environment (all optional):
#   RUNS=3               rounds; each round measures every server once, in an
#                        order that rotates, and medians are reported
#   BENCH_ONLY="rate big"  rate: HEAD blob / GET manifest with ab; big: 1 GiB
#                        push and pull with curl
#   AB_SECONDS=10 AB_CONNS=64
#   BENCH_CACHE=/var/tmp/berth-bench   the 1 GiB file (shared with run.sh)
#   BENCH_OUT=DIR        results (default $BENCH_CACHE/cluster-<time>)
#   BENCH_SERVICES=DIR   engines already started by services.sh
#   BERTHD=PATH          default: ../build/berthd
#
# Servers (the column names of the table):
#   fs        one berthd, filesystem blobs + SQLite
#   s3pg-1    one node of the cluster, addressed directly
#   s3pg-3    the three nodes through haproxy (round-robin)
#   dist-s3   distribution 2.8.2, s3 driver, same bucket, its own prefix
# Authentication is off everywhere (bench/run.sh measures its cost), and so
# are access logs.  Method:
#   rate  ab -k -c AB_CONNS -t AB_SECONDS: HEAD of a 2 MiB blob, GET of an
#         OCI manifest by tag; req/s, p50/p99, errors; CPU seconds used per
#         1000 requests by the servers (the nodes and haproxy for s3pg-3) and
#         by the engines (radosgw, the other Ceph daemons and PostgreSQL with
#         its backends), whichever server ran.
#   big   POST + PUT <location>?digest= streaming the 1 GiB file (curl -T),
#         a fresh repository per run; then GET of it to /dev/null (curl
#         time_total); MiB/s.  The file is read into the page cache first.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-3}
BENCH_ONLY=${BENCH_ONLY:-rate big}
AB_SECONDS=${AB_SECONDS:-10}
AB_CONNS=${AB_CONNS:-64}
BENCH_CACHE=${BENCH_CACHE:-/var/tmp/berth-bench}
BENCH_OUT=${BENCH_OUT:-$BENCH_CACHE/cluster-$(date +%Y%m%d%H%M%S)-$$}
BERTHD=${BERTHD:-$ROOT/build/berthd}
TENANT=0146e9b57080961e2c83536300000000
BIG_SIZE=1073741824
OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
SERVERS=(fs s3pg-1 s3pg-3 dist-s3)

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }
want() { [[ " $BENCH_ONLY " == *" $1 "* ]]; }

missing=()
command -v ab >/dev/null || missing+=(apache2-utils)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v jq >/dev/null || missing+=(jq)
command -v haproxy >/dev/null || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's package starts a registry of its own; only ours is measured.
[ -x "$BERTHD" ] || die "no berthd at $BERTHD (build it first)"

mkdir -p "$BENCH_CACHE" "$BENCH_OUT/raw"
BENCH_OUT=$(cd "$BENCH_OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-cluster-bench.XXXXXX")
# PostgreSQL runs as its own user under it
chmod 755 "$WORK"
declare -A URL=() PIDS=()
OWN_SERVICES=
CLUSTER=$WORK/cluster
DIST_PID= FS_PID=

cleanup() {
	local p
	for p in $FS_PID $DIST_PID; do kill "$p" 2>/dev/null || true; done
	for p in $FS_PID $DIST_PID; do wait "$p" 2>/dev/null || true; done
	[ ! -d "$CLUSTER" ] || "$ROOT/deploy/cluster.sh" stop "$CLUSTER" >/dev/null 2>&1 || true
	[ -z "$OWN_SERVICES" ] || "$ROOT/tests/services/services.sh" stop "$OWN_SERVICES" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_up() {  # wait_up URL: GET /v2/ answers (any status), up to 30 s
	for _ in $(seq 1 300); do
		curl -s -o /dev/null --max-time 1 "$1/v2/" && return 0
		sleep 0.1
	done
	die "$1 never answered"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "NA"; exit}
	if (NR%2) print a[(NR+1)/2]; else printf "%.4g\n", (a[NR/2]+a[NR/2+1])/2}'; }
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {  # the CPU ticks of PIDs (utime + stime), summed
	local p t=0 v
	for p in "$@"; do
		v=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)
		t=$((t + v))
	done
	echo "$t"
}
# The CPU ticks of PIDs and all their descendants, ended ones included
# (PostgreSQL serves each connection from a process of its own).
cpu_tree() {
	local p t=0 v
	for p in "$@"; do
		v=$(awk '{sub(/^.*\) /, ""); print $12 + $13 + $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
		t=$((t + v))
		# shellcheck disable=SC2046
		t=$((t + $(cpu_tree $(pgrep -P "$p" || true))))
	done
	echo "$t"
}

# ------------------------------------------------------------------ engines
if [ -n "${BENCH_SERVICES:-}" ]; then
	SVC=$BENCH_SERVICES
else
	SVC=$WORK/services
	OWN_SERVICES=$SVC
	# Ports of their own (a test run may hold the default ones), and room
	# in radosgw's memory store for every 1 GiB push of every round.
	BERTH_SERVICES_PG_PORT=25432 CEPH_MON_PORT=26789 CEPH_PORT_MIN=26790 CEPH_PORT_MAX=26799 \
		CEPH_RGW_PORT=27480 CEPH_OSD_BYTES=$(((RUNS * 3 + 2) << 30)) \
		"$ROOT/tests/services/services.sh" start "$SVC" >&2
fi
set -a
# shellcheck disable=SC1091
. "$SVC/env"
set +a
ENGINE_PIDS=$(cat "$SVC/pg/pid" 2>/dev/null; cat "$SVC/ceph/pids" 2>/dev/null || true)
ENGINE_PIDS=$(echo $ENGINE_PIDS)

# ------------------------------------------------------------------ servers
ID=bench-$(date +%s)-$$
mkdir -p "$WORK/fs"
port=$(free_port)
"$BERTHD" serve --listen "127.0.0.1:$port" --data-dir "$WORK/fs/data" --insecure-no-auth \
	>"$WORK/fs/berthd.log" 2>&1 &
FS_PID=$!
URL[fs]=http://127.0.0.1:$port
PIDS[fs]=$FS_PID

# The cluster: its own database (a fresh schema) and key prefix.
PGDB=berth_$(echo "$ID" | tr -c 'a-z0-9\n' _)
runuser_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
runuser_pg "$BERTH_PG_BIN/psql" -X -q -h "$BERTH_PG_SOCKET_DIR" -p "$BERTH_PG_PORT" -d postgres \
	-c "CREATE DATABASE $PGDB OWNER berth" >/dev/null
echo "log: {accesslog: {disabled: true}, level: warn}" >"$WORK/cluster.yml"
BERTH_PG_DSN=${BERTH_PG_DSN%/*}/$PGDB BERTH_CLUSTER_S3_PREFIX=$ID/ BERTH_CLUSTER_CONFIG=$WORK/cluster.yml \
	BERTH_CLUSTER_PORT=$(free_port) BERTHD=$BERTHD \
	"$ROOT/deploy/cluster.sh" start "$CLUSTER" -- --insecure-no-auth >&2
# shellcheck disable=SC1091
. "$CLUSTER/env"
URL[s3pg-3]=$BERTH_CLUSTER_URL
read -r -a NODE_URLS <<<"$BERTH_CLUSTER_NODE_URLS"
URL[s3pg-1]=${NODE_URLS[0]}
CLUSTER_PIDS=$(awk '$1 ~ /^node|^haproxy/ {print $2}' "$CLUSTER/pids" | tr '\n' ' ')
PIDS[s3pg-3]=$CLUSTER_PIDS
PIDS[s3pg-1]=$(awk '$1 ~ /^node/ {print $2; exit}' "$CLUSTER/pids")

port=$(free_port)
mkdir -p "$WORK/dist"
cat >"$WORK/dist/config.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  s3:
    region: $S3_REGION
    regionendpoint: $S3_ENDPOINT
    bucket: $S3_BUCKET
    rootdirectory: /$ID-dist
    accesskey: $S3_ACCESS_KEY
    secretkey: $S3_SECRET_KEY
    secure: false
    v4auth: true
    chunksize: 16777216
  delete: {enabled: true}
  redirect: {disable: true}
http: {addr: 127.0.0.1:$port, secret: bench-cluster-secret}
EOF
env -i PATH="$PATH" docker-registry serve "$WORK/dist/config.yml" >"$WORK/dist/registry.log" 2>&1 &
DIST_PID=$!
URL[dist-s3]=http://127.0.0.1:$port
PIDS[dist-s3]=$DIST_PID
for s in "${SERVERS[@]}"; do wait_up "${URL[$s]}"; done

# ------------------------------------------------------------------ content
push_blob() {  # push_blob URL REPO FILE DIGEST: POST + PUT, prints "code"
	local loc
	loc=$(curl -s -D - -o /dev/null -X POST "$1/v2/$2/blobs/uploads/" | tr -d '\r' |
		awk 'tolower($1)=="location:"{print $2}')
	case $loc in http*) ;; *) loc=$1$loc ;; esac
	case $loc in *\?*) loc="$loc&digest=$4" ;; *) loc="$loc?digest=$4" ;; esac
	curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
		-H 'Expect:' -T "$3" "$loc"
}
SMALL=$WORK/small
mkdir -p "$SMALL"
head -c 2097152 /dev/zero | openssl enc -aes-128-ctr \
	-K 62657274682d62656e63682d6b657932 -iv 62657274682d62656e63682d69763032 >"$SMALL/layer"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
	"$(sha256sum "$SMALL/layer" | cut -d' ' -f1)" >"$SMALL/config"
LAYER=sha256:$(sha256sum "$SMALL/layer" | cut -d' ' -f1)
CFG=sha256:$(sha256sum "$SMALL/config" | cut -d' ' -f1)
jq -c -n --arg mt "$OCI_MANIFEST" --arg c "$CFG" --argjson cs "$(stat -c %s "$SMALL/config")" \
	--arg l "$LAYER" '{schemaVersion:2, mediaType:$mt,
	config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$c, size:$cs},
	layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar", digest:$l, size:2097152}]}' >"$SMALL/manifest"
REPO=$TENANT/bench/small
for s in fs s3pg-3 dist-s3; do
	[ "$(push_blob "${URL[$s]}" "$REPO" "$SMALL/layer" "$LAYER")" = 201 ] || die "$s: layer push failed"
	[ "$(push_blob "${URL[$s]}" "$REPO" "$SMALL/config" "$CFG")" = 201 ] || die "$s: config push failed"
	code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $OCI_MANIFEST" \
		--data-binary "@$SMALL/manifest" "${URL[$s]}/v2/$REPO/manifests/bench")
	[ "$code" = 201 ] || die "$s: manifest push failed ($code)"
done

BIG=$BENCH_CACHE/blob-1g.bin
if want big; then
	if [ ! -f "$BIG" ] || [ "$(stat -c %s "$BIG")" != "$BIG_SIZE" ] || [ ! -s "$BIG.sha256" ]; then
		log "making the 1 GiB test file in $BENCH_CACHE (once)"
		head -c "$BIG_SIZE" /dev/zero | openssl enc -aes-128-ctr \
			-K 62657274682d62656e63682d6b657931 -iv 62657274682d62656e63682d69763031 >"$BIG.tmp"
		sha256sum "$BIG.tmp" | cut -d' ' -f1 >"$BIG.sha256.tmp"
		mv "$BIG.tmp" "$BIG"
		mv "$BIG.sha256.tmp" "$BIG.sha256"
	fi
	BIG_DIGEST=sha256:$(cat "$BIG.sha256")
	cat "$BIG" >/dev/null
fi

# ------------------------------------------------------------------ measurements
declare -A VALS=()
METRICS=()
add() {  # add SERVER METRIC VALUE
	[[ " ${METRICS[*]:-} " == *" $2 "* ]] || METRICS+=("$2")
	VALS["$1|$2"]="${VALS["$1|$2"]:-} $3"
}
ab_run() {  # ab_run SERVER RUN NAME ab-args...
	local s=$1 i=$2 m=$3 out c0 c1 e0 e1 n rps; shift 3
	out=$BENCH_OUT/raw/$m-$s-$i.txt
	# shellcheck disable=SC2086
	c0=$(cpu_ticks ${PIDS[$s]}); e0=$(cpu_tree $ENGINE_PIDS)
	timeout $((AB_SECONDS + 60)) ab -k -c "$AB_CONNS" -t "$AB_SECONDS" -n 10000000 "$@" >"$out" 2>&1 || true
	# shellcheck disable=SC2086
	c1=$(cpu_ticks ${PIDS[$s]}); e1=$(cpu_tree $ENGINE_PIDS)
	grep -q '^Requests per second' "$out" || { cat "$out" >&2; die "$s: ab $m failed"; }
	rps=$(awk '/^Requests per second/{print $4}' "$out")
	n=$(awk '/^Complete requests/{print $3}' "$out")
	add "$s" "$m req/s" "$rps"
	add "$s" "$m p50 ms" "$(awk '$1=="50%"{print $2}' "$out")"
	add "$s" "$m p99 ms" "$(awk '$1=="99%"{print $2}' "$out")"
	add "$s" "$m errors" "$(awk '/^Failed requests/{f=$3} /^Non-2xx/{x=$3} END{print f+x}' "$out")"
	add "$s" "$m server CPU s/1000 req" "$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" -v n="$n" \
		'BEGIN{printf "%.3f", (b-a)/t/n*1000}')"
	add "$s" "$m engines CPU s/1000 req" "$(awk -v a="$e0" -v b="$e1" -v t="$CLK_TCK" -v n="$n" \
		'BEGIN{printf "%.3f", (b-a)/t/n*1000}')"
	log "  $s $m run $i: $rps req/s"
}
big_run() {  # big_run SERVER RUN
	local s=$1 i=$2 repo=$TENANT/bench/big-$2-$RANDOM t0 t1 code secs
	sync
	t0=$(date +%s%N)
	code=$(push_blob "${URL[$s]}" "$repo" "$BIG" "$BIG_DIGEST")
	t1=$(date +%s%N)
	[ "$code" = 201 ] || die "$s: 1 GiB push answered $code"
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
	add "$s" "push 1 GiB MiB/s" "$(awk -v s="$secs" 'BEGIN{printf "%.1f", 1024/s}')"
	secs=$(curl -s -o /dev/null -w '%{time_total}' "${URL[$s]}/v2/$repo/blobs/$BIG_DIGEST")
	add "$s" "pull 1 GiB MiB/s" "$(awk -v s="$secs" 'BEGIN{printf "%.1f", 1024/s}')"
	log "  $s 1 GiB run $i: push and pull done"
}

for i in $(seq 1 "$RUNS"); do
	order=("${SERVERS[@]:$(((i - 1) % 4))}" "${SERVERS[@]:0:$(((i - 1) % 4))}")
	log "round $i: ${order[*]}"
	for s in "${order[@]}"; do
		if want rate; then
			ab_run "$s" "$i" head -i "${URL[$s]}/v2/$REPO/blobs/$LAYER"
			ab_run "$s" "$i" get -H "Accept: $OCI_MANIFEST" "${URL[$s]}/v2/$REPO/manifests/bench"
		fi
		if want big; then big_run "$s" "$i"; fi
	done
done

# ------------------------------------------------------------------ report
{
	printf '| metric (median of %s) |' "$RUNS"
	for s in "${SERVERS[@]}"; do printf ' %s |' "$s"; done
	printf ' s3pg-3 / dist-s3 |\n|---|'
	for _ in "${SERVERS[@]}"; do printf -- '---|'; done
	printf -- '---|\n'
	for m in "${METRICS[@]}"; do
		printf '| %s |' "$m"
		declare -A MED=()
		for s in "${SERVERS[@]}"; do
			MED[$s]=$(echo "${VALS["$s|$m"]:-}" | median)
			printf ' %s |' "${MED[$s]}"
		done
		awk -v a="${MED[s3pg-3]}" -v b="${MED[dist-s3]}" 'BEGIN{if (b+0>0) printf " %.2f |\n", a/b; else print " - |"}'
	done
} | tee "$BENCH_OUT/results.md"
for m in "${METRICS[@]}"; do
	for s in "${SERVERS[@]}"; do printf '%s\t%s\t%s\n' "$m" "$s" "${VALS["$s|$m"]:-}"; done
done >"$BENCH_OUT/results.tsv"
log "results in $BENCH_OUT"
