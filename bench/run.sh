#!/usr/bin/env bash
# Berth benchmark: runs berthd and the peer registry distribution 2.8.2
# (Debian's docker-registry) on free loopback ports on this machine, measures
# both with the same clients, interleaving the runs (A B, B A, A B, ...) so
# that drift in the host's load hits both alike, and prints a markdown table
# with medians and the ratio berthd/distribution, plus results.tsv and the raw
# client output in BENCH_OUT.  Self-contained: needs only Debian packages
# (installed when missing) and this source tree (berthd is built when absent).
#
# Usage: bench/run.sh
# Environment (all optional):
#   RUNS=3              repetitions of every measurement; medians are reported
#   BENCH_ONLY="head get auth push get1g skopeo rss"   subset of measurement groups
#                       (the default); also available: pull10 conns chunked
#   AB_SECONDS=10       duration of each ab run;   AB_CONNS=64 its concurrency
#   BENCH_OUT=DIR       results dir (default $BENCH_CACHE/out-<time>)
#   BENCH_CACHE=/var/tmp/berth-bench   keeps the 1 GiB test file and its OCI
#                       layout between runs (built once, deterministic)
#   BERTHD=PATH         server binary (default ../build/berthd, built if missing)
#   BERTHD_THREADS=N    set http.threads in berthd's config (default: berthd's own)
#   PEER_ONLY=1         measure distribution only;  BERTH_ONLY=1  berthd only
#   PULL_DIR=/dev/shm   where skopeo pulls land (tmpfs keeps the disk out of it)
#   CONNS_MANY=1000     the conns group's large concurrency (64 is the small one)
#
# Method:
#   head    ab -k -i -c 64 -t AB_SECONDS -n 10000000, HEAD of a 2 MiB blob:
#           req/s, p50/p99 (ab's percentile table, whole ms), failed + non-2xx
#           responses, the server's CPU time per request (utime + stime from
#           /proc) and ab's own CPU use (near 100% means ab is the limit).
#   get     ab -k -c 64 -t AB_SECONDS -n 10000000 GET of an OCI manifest by
#           tag, with an OCI Accept header: same figures.
#   auth    the same HEAD blob and GET manifest runs against a second
#           instance of each server with authentication on, each right next to
#           the unauthenticated run of the same server in the same round (the
#           unauthenticated runs are made even when head/get are not asked
#           for): distribution with htpasswd (bcrypt, htpasswd -B's default
#           cost) and ab -A KEY:<password>; berthd with auth on (its default),
#           an account and key made with `berthd account create` and
#           `berthd key create`, and ab -A KEY:<access key>; for berthd also
#           Authorization: Bearer <access key> and Bearer <token> from
#           GET /v2/token (fetched right before each ab run).  Per-round ratios
#           authenticated/unauthenticated req/s are reported (median), and a
#           summary table at the end.  The content is pushed with the
#           credentials.  With AB_SECONDS > 240 berthd's token_ttl is raised
#           to AB_SECONDS + 60 so the token outlives the run.
#   push    curl POST /v2/<repo>/blobs/uploads/, then PUT <Location>?digest=
#           with the 1 GiB file streamed (-T, no Expect: 100-continue; unlike
#           --data-binary @file, which first reads the whole file into curl's
#           memory) to a fresh repository each run; time = POST + PUT.  The
#           server's VmRSS is sampled every 0.2 s during the upload; `sync`
#           runs (untimed) before every upload so earlier writes do not spill
#           into it.  The test file is read once beforehand (page cache).
#   get1g   curl GET of that 1 GiB blob to /dev/null (time_total).
#   skopeo  skopeo copy of a one-layer OCI image whose layer is the 1 GiB file
#           itself (application/vnd.oci.image.layer.v1.tar, nothing to
#           compress; --preserve-digests so skopeo does not gzip it) to a
#           fresh repository, with an empty blob-info cache each time (so the
#           push is an upload, not a cross-repository mount); then a pull to
#           dir:PULL_DIR, which skopeo digest-verifies, deleted afterwards.
#   rss     VmRSS idle right after start (after one GET /v2/), VmRSS and the
#           VmHWM peak after everything else.
#   pull10  10 different 200 MiB blobs (AES-CTR keystream, made once in
#           BENCH_CACHE) pushed untimed to each server and read once untimed
#           (so both serve them from the page cache); then per run 10 curl
#           GETs to /dev/null started together, one blob each: time from the
#           start to the last one's end, aggregate MiB/s (2000 MiB / time) and
#           the server's CPU time (utime + stime from /proc) per GiB sent.
#   conns   ab -k -t AB_SECONDS -n 10000000 at -c 64 and at -c CONNS_MANY on
#           HEAD blob and GET manifest (the small image of head/get), the two
#           concurrencies back to back on each server (their order
#           alternating): req/s, p50/p99, errors, CPU per request as for head,
#           and the per-round ratio CONNS_MANY/64 of req/s.  berthd runs with
#           http.max_connections_per_address: 0 (no limit) and
#           max_connections: 4096 in this group, since every client is
#           127.0.0.1; the soft open-file limit is raised to the hard one.
#   chunked chunked pushes of the 1 GiB file to a fresh repository each run,
#           time = POST .. the final PUT's 201 (sync before, untimed):
#           stream: one PATCH streaming the whole file (curl -X PATCH -T,
#           Content-Type application/octet-stream, no Content-Range), then
#           PUT <Location>?digest= with no body;  1m: 1024 PATCHes of 1 MiB
#           each with Content-Range start-end, in order on one keep-alive
#           connection (python3 http.client, its start-up of ~0.03 s
#           included), then the same PUT.  The blob's size is checked by HEAD.
# Rows with the unit "count" (errors) are sums over the runs, all others are
# medians.  Both servers log at level warn with the access log off, store on
# the filesystem in a temporary directory, and have no authentication (berthd
# runs with --insecure-no-auth) except the auth group's own instances.  Only
# the servers this script started are stopped (by PID); their data goes, the
# 1 GiB file and layout stay in BENCH_CACHE.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-3}
BENCH_ONLY=${BENCH_ONLY:-head get auth push get1g skopeo rss}
AB_SECONDS=${AB_SECONDS:-10}
AB_CONNS=${AB_CONNS:-64}
CONNS_MANY=${CONNS_MANY:-1000}
BENCH_CACHE=${BENCH_CACHE:-/var/tmp/berth-bench}
PULL_DIR=${PULL_DIR:-/dev/shm}
ID=$(date +%Y%m%d%H%M%S)-$$
BENCH_OUT=${BENCH_OUT:-$BENCH_CACHE/out-$ID}
TENANT=0146e9b57080961e2c83536300000000
BIG_SIZE=1073741824
# sha256 of the deterministic 1 GiB file below (AES-128-CTR keystream)
BIG_EXPECT=4c79e8b2beb6a0a7bebf97d2f14d98f73ffd4463621d252ce6fb11d190121e66
OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }
want() { [[ " $BENCH_ONLY " == *" $1 "* ]]; }

[[ $RUNS =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] && [ "$RUNS" -le 50 ] || die "RUNS must be 1..50"
[[ $AB_SECONDS =~ ^[0-9]+$ ]] && [ "$AB_SECONDS" -ge 1 ] && [ "$AB_SECONDS" -le 600 ] || die "AB_SECONDS must be 1..600"
[[ $AB_CONNS =~ ^[0-9]+$ ]] && [ "$AB_CONNS" -ge 1 ] && [ "$AB_CONNS" -le 1000 ] || die "AB_CONNS must be 1..1000"
[[ $CONNS_MANY =~ ^[0-9]+$ ]] && [ "$CONNS_MANY" -ge 1 ] && [ "$CONNS_MANY" -le 20000 ] || die "CONNS_MANY must be 1..20000"
for g in $BENCH_ONLY; do
	case $g in head|get|auth|push|get1g|skopeo|rss|pull10|conns|chunked) ;; *) die "unknown BENCH_ONLY group '$g'" ;; esac
done
if [ "${PEER_ONLY:-0}" = 1 ]; then SERVERS=(distribution)
elif [ "${BERTH_ONLY:-0}" = 1 ]; then SERVERS=(berthd)
else SERVERS=(distribution berthd); fi
has_server() { [[ " ${SERVERS[*]} " == *" $1 "* ]]; }
# the auth group's instances: NAME-auth next to each server NAME; an instance
# reports its figures in its server's column
AUTH_INSTANCES=()
if want auth; then for s in "${SERVERS[@]}"; do AUTH_INSTANCES+=("$s-auth"); done; fi
column_of() { echo "${1%-auth}"; }

# ------------------------------------------------------------------ packages
install_missing() {
	local pkgs=(curl jq procps python3 openssl apache2-utils util-linux coreutils)
	has_server distribution && pkgs+=(docker-registry)
	want skopeo && pkgs+=(skopeo)
	local missing=() p
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing: ${missing[*]}"
	local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
	DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
if command -v dpkg-query >/dev/null; then install_missing; fi
for t in curl jq python3 openssl ab awk sha256sum timeout; do
	command -v "$t" >/dev/null || die "$t is missing"
done
want skopeo && { command -v skopeo >/dev/null || die "skopeo is missing"; }
if want conns; then
	# ab and each server hold CONNS_MANY descriptors at once
	[ "$(ulimit -n)" -ge $((CONNS_MANY + 200)) ] || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	[ "$(ulimit -n)" -ge $((CONNS_MANY + 200)) ] || die "open file limit $(ulimit -n) is too low for CONNS_MANY=$CONNS_MANY"
fi
if has_server distribution; then
	REGISTRY_BIN=$(command -v docker-registry) || die "docker-registry is missing"
fi

# ------------------------------------------------------------------ berthd binary
if has_server berthd; then
	BERTHD=${BERTHD:-$ROOT/build/berthd}
	if [ ! -x "$BERTHD" ]; then
		log "building berthd in $ROOT/build"
		[ -x "$ROOT/scripts/deps.sh" ] && "$ROOT/scripts/deps.sh"
		(cd "$ROOT" && cmake -S . -B build >/dev/null && cmake --build build -j"$(nproc)") >&2
		BERTHD=$ROOT/build/berthd
	fi
	[ -x "$BERTHD" ] || die "no berthd binary at $BERTHD"
fi

# ------------------------------------------------------------------ work dirs, cleanup
mkdir -p "$BENCH_CACHE" "$BENCH_OUT/raw"
BENCH_OUT=$(cd "$BENCH_OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
PULLTMP=$(mktemp -d "$PULL_DIR/berth-bench-pull.XXXXXX")
declare -A SPID=() SURL=() SDIR=() SLABEL=()
# SCRED[instance] = USER:PASSWORD for Basic auth (auth instances only);
# BERTH_KEY = the access key of berthd-auth
declare -A SCRED=()
BERTH_KEY=
SAMPLER_PID=
if has_server berthd; then
	# run a private copy: a rebuild of the tree during the run can neither
	# change what is measured nor fail on a busy executable
	mkdir -p "$WORK/bin"; cp "$BERTHD" "$WORK/bin/berthd"
	BERTHD_SRC=$BERTHD; BERTHD=$WORK/bin/berthd
fi

stop_server() {  # stop_server NAME: SIGTERM, up to 30 s, then SIGKILL
	local pid=${SPID[$1]:-} n
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for n in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then log "$1 (PID $pid) ignored SIGTERM, killing"; kill -KILL "$pid" 2>/dev/null || true; fi
	fi
	wait "$pid" 2>/dev/null || true
	SPID[$1]=
}
cleanup() {
	local s
	[ -z "$SAMPLER_PID" ] || kill "$SAMPLER_PID" 2>/dev/null || true
	for s in "${!SPID[@]}"; do
		stop_server "$s"
		# keep the server's own log with the results, also after a failure
		[ ! -f "${SDIR[$s]:-}/server.log" ] || cp "${SDIR[$s]}/server.log" "$BENCH_OUT/raw/server-$s.log" 2>/dev/null || true
	done
	rm -rf "$WORK" "$PULLTMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# set -e stops silently otherwise
trap 'log "bench: command failed (status $?) at line $LINENO"' ERR
# skopeo's credentials file, private and empty (set only for skopeo: distribution
# would read any REGISTRY_* variable as a configuration override)
SK_AUTH=$WORK/auth.json
echo '{}' > "$SK_AUTH"

# ------------------------------------------------------------------ helpers
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b-a)/1e9}'; }
mibps() { awk -v n="$1" -v s="$2" 'BEGIN{if (s>0) printf "%.1f", n/1048576/s; else print "NA"}'; }
kib2mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
total() { tr ' ' '\n' | { grep -v '^$' || true; } | awk '{t+=$1} END {if (NR==0) print "NA"; else print t+0}'; }
# counts (errors) are summed over the runs; everything else is a median
agg() { if [ "$1" = count ]; then total; else median; fi; }
median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "NA"; exit}
	if (NR%2) print a[(NR+1)/2]; else printf "%.4g\n", (a[NR/2]+a[NR/2+1])/2}'; }
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
status_kib() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status" 2>/dev/null || true; }
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }
cpu_secs() { awk -v a="$1" -v b="$2" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}'; }
# Sample VmRSS (KiB) of PID every 0.2 s into FILE until stopped (bounded: 1 h).
sampler_start() {
	local pid=$1 file=$2
	: > "$file"
	( for _ in $(seq 1 18000); do
		awk '$1=="VmRSS:"{print $2}' "/proc/$pid/status" 2>/dev/null >> "$file" || exit 0
		sleep 0.2
	done ) &
	SAMPLER_PID=$!
}
sampler_stop() {
	[ -n "$SAMPLER_PID" ] || return 0
	kill "$SAMPLER_PID" 2>/dev/null || true
	wait "$SAMPLER_PID" 2>/dev/null || true
	SAMPLER_PID=
}
file_max() { sort -n "$1" | tail -n 1; }
# skopeo with an empty blob-info cache, so that nothing it learnt before turns
# a push into a cross-repository mount.  root: a private tmpfs over the fixed
# cache directory; otherwise the cache follows XDG_DATA_HOME.
sk() {
	if [ "$(id -u)" = 0 ]; then
		mkdir -p /var/lib/containers/cache
		REGISTRY_AUTH_FILE=$SK_AUTH timeout 1200 unshare -m sh -c \
			'mount -t tmpfs berth-bench-bic /var/lib/containers/cache && exec skopeo --insecure-policy "$@"' sh "$@"
	else
		local x; x=$(mktemp -d "$WORK/xdg.XXXXXX")
		REGISTRY_AUTH_FILE=$SK_AUTH XDG_DATA_HOME=$x timeout 1200 skopeo --insecure-policy "$@"
	fi
}
if [ "$(id -u)" = 0 ] && want skopeo && ! unshare -m true 2>/dev/null; then
	die "unshare -m is not permitted here (needed for an empty skopeo blob-info cache)"
fi

# Results: VALS["server|metric"] = space-separated per-run values.
# A metric is identified by its label and unit together.
declare -A VALS=() MLABEL=() MUNIT=() MBETTER=()
METRICS=()
add() {  # add SERVER LABEL UNIT BETTER(higher|lower|-) VALUE
	local m="$2|$3"
	if [ -z "${MUNIT[$m]+x}" ]; then METRICS+=("$m"); MLABEL[$m]=$2; MUNIT[$m]=$3; MBETTER[$m]=$4; fi
	VALS["$1|$m"]="${VALS["$1|$m"]:-} $5"
}
# order of servers in run I: alternate so neither always goes first
run_order() {
	if [ $(( $1 % 2 )) = 1 ]; then printf '%s\n' "${SERVERS[@]}"
	else printf '%s\n' "${SERVERS[@]}" | tac; fi
}

# ------------------------------------------------------------------ content
# 1 GiB of AES-128-CTR keystream with a fixed key and IV: same bytes everywhere.
BIG=$BENCH_CACHE/blob-1g.bin
NEED_BIG=0
if want push || want get1g || want skopeo || want chunked; then NEED_BIG=1; fi
if [ "$NEED_BIG" = 1 ] && { [ ! -f "$BIG" ] || [ "$(stat -c %s "$BIG")" != "$BIG_SIZE" ] || [ ! -s "$BIG.sha256" ]; }; then
	log "making the 1 GiB test file in $BENCH_CACHE (once)"
	rm -f "$BIG" "$BIG.sha256"
	head -c "$BIG_SIZE" /dev/zero | openssl enc -aes-128-ctr \
		-K 62657274682d62656e63682d6b657931 -iv 62657274682d62656e63682d69763031 > "$BIG.tmp"
	sha256sum "$BIG.tmp" | cut -d' ' -f1 > "$BIG.sha256.tmp"
	mv "$BIG.tmp" "$BIG"; mv "$BIG.sha256.tmp" "$BIG.sha256"
fi
BIG_HEX=$BIG_EXPECT
[ "$NEED_BIG" = 0 ] || BIG_HEX=$(cat "$BIG.sha256")
BIG_DIG=sha256:$BIG_HEX
[ "$BIG_HEX" = "$BIG_EXPECT" ] || log "note: the 1 GiB file's digest $BIG_HEX differs from the expected $BIG_EXPECT"

# OCI layout (tag v1) for skopeo: config + manifest made with jq, and the
# 1 GiB file itself as an uncompressed layer (hard link, no copy).
LAYOUT=$BENCH_CACHE/layout-1g
build_layout() {
	local tmp=$LAYOUT.tmp cfg cfghex cfgsize man manhex mansize
	rm -rf "$tmp"; mkdir -p "$tmp/blobs/sha256"
	printf '{"imageLayoutVersion":"1.0.0"}' > "$tmp/oci-layout"
	ln "$BIG" "$tmp/blobs/sha256/$BIG_HEX" 2>/dev/null || cp "$BIG" "$tmp/blobs/sha256/$BIG_HEX"
	cfg=$(jq -c -n --arg d "$BIG_DIG" '{architecture:"amd64", os:"linux", created:"2024-01-01T00:00:00Z",
		config:{}, rootfs:{type:"layers", diff_ids:[$d]}}')
	cfghex=$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1); cfgsize=${#cfg}
	printf '%s' "$cfg" > "$tmp/blobs/sha256/$cfghex"
	man=$(jq -c -n --arg mt "$OCI_MANIFEST" --arg c "sha256:$cfghex" --argjson cs "$cfgsize" \
		--arg l "$BIG_DIG" --argjson ls "$BIG_SIZE" '{schemaVersion:2, mediaType:$mt,
		config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$c, size:$cs},
		layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar", digest:$l, size:$ls}]}')
	manhex=$(printf '%s' "$man" | sha256sum | cut -d' ' -f1); mansize=${#man}
	printf '%s' "$man" > "$tmp/blobs/sha256/$manhex"
	jq -c -n --arg mt "$OCI_MANIFEST" --arg d "sha256:$manhex" --argjson s "$mansize" \
		'{schemaVersion:2, manifests:[{mediaType:$mt, digest:$d, size:$s,
		annotations:{"org.opencontainers.image.ref.name":"v1"}}]}' > "$tmp/index.json"
	rm -rf "$LAYOUT"; mv "$tmp" "$LAYOUT"
}
if want skopeo; then
	[ -f "$LAYOUT/index.json" ] && [ -f "$LAYOUT/blobs/sha256/$BIG_HEX" ] || build_layout
	LAYOUT_MAN=$(jq -r '.manifests[0].digest' "$LAYOUT/index.json")
fi
# keep the file in the page cache so the client's disk reads are not measured
[ "$NEED_BIG" = 0 ] || cat "$BIG" > /dev/null

# Small image for the request-rate runs: a 2 MiB layer blob (HEAD target), a
# config blob and a manifest tagged "bench".
SMALL=$WORK/small; mkdir -p "$SMALL"
head -c 2097152 /dev/zero | openssl enc -aes-128-ctr \
	-K 62657274682d62656e63682d6b657932 -iv 62657274682d62656e63682d69763032 > "$SMALL/layer"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
	"$(sha256sum "$SMALL/layer" | cut -d' ' -f1)" > "$SMALL/config"
SMALL_LAYER=sha256:$(sha256sum "$SMALL/layer" | cut -d' ' -f1)
SMALL_CFG=sha256:$(sha256sum "$SMALL/config" | cut -d' ' -f1)
jq -c -n --arg mt "$OCI_MANIFEST" --arg c "$SMALL_CFG" --argjson cs "$(stat -c %s "$SMALL/config")" \
	--arg l "$SMALL_LAYER" --argjson ls 2097152 '{schemaVersion:2, mediaType:$mt,
	config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$c, size:$cs},
	layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar+gzip", digest:$l, size:$ls}]}' \
	| tr -d '\n' > "$SMALL/manifest"
SMALL_MAN=sha256:$(sha256sum "$SMALL/manifest" | cut -d' ' -f1)
SMALL_REPO=$TENANT/bench-small

# pull10: 10 different 200 MiB blobs (AES-128-CTR keystream, IV per blob),
# made once in BENCH_CACHE with their digests.
PULL10_N=10
PULL10_SIZE=209715200
PULL10_FILES=() PULL10_DIGS=()
if want pull10; then
	for k in $(seq 1 "$PULL10_N"); do
		f=$BENCH_CACHE/pull10-$k.bin
		if [ ! -f "$f" ] || [ "$(stat -c %s "$f")" != "$PULL10_SIZE" ] || [ ! -s "$f.sha256" ]; then
			log "making the 200 MiB pull10 blob $k in $BENCH_CACHE (once)"
			rm -f "$f" "$f.sha256"
			head -c "$PULL10_SIZE" /dev/zero | openssl enc -aes-128-ctr \
				-K 62657274682d62656e63682d6b657933 -iv "$(printf '62657274682d70756c6c31302d%06x' "$k")" > "$f.tmp"
			sha256sum "$f.tmp" | cut -d' ' -f1 > "$f.sha256.tmp"
			mv "$f.tmp" "$f"; mv "$f.sha256.tmp" "$f.sha256"
		fi
		PULL10_FILES+=("$f"); PULL10_DIGS+=("sha256:$(cat "$f.sha256")")
	done
fi
PULL10_REPO=$TENANT/bench-$ID-pull10

# ------------------------------------------------------------------ servers
# curl's credentials option for instance NAME (none without auth)
cred_args() { [ -z "${SCRED[$1]:-}" ] || printf '%s\n' -u "${SCRED[$1]}"; }
wait_up() {  # wait_up NAME: GET /v2/ answers 200 (with NAME's credentials) within ~10 s
	local s=$1 code=000 ca
	mapfile -t ca < <(cred_args "$s")
	for _ in $(seq 1 100); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${ca[@]}" "${SURL[$s]}/v2/" || true)
		[ "$code" = 200 ] && break
		kill -0 "${SPID[$s]}" 2>/dev/null || { cat "${SDIR[$s]}/server.log" >&2; die "$s exited during start"; }
		sleep 0.1
	done
	[ "$code" = 200 ] || { cat "${SDIR[$s]}/server.log" >&2; die "$s did not answer GET /v2/ (last status $code)"; }
	# an auth instance must refuse a request without credentials, the others
	# must not ask for any: otherwise the figures measure the wrong thing
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${SURL[$s]}/v2/" || true)
	if [ ${#ca[@]} -gt 0 ]; then
		[ "$code" = 401 ] || die "$s answered GET /v2/ without credentials with $code, not 401: authentication is off"
	else
		[ "$code" = 200 ] || die "$s answered GET /v2/ without credentials with $code, not 200: authentication is on"
	fi
}
start_server() {  # start_server NAME
	local s=$1 d=$WORK/$1 port
	mkdir -p "$d/data"
	port=$(free_port)
	for _ in $(seq 1 20); do
		[[ " ${SURL[*]} " == *":$port "* ]] || break
		port=$(free_port)
	done
	SDIR[$s]=$d; SURL[$s]=http://127.0.0.1:$port
	case $s in
	distribution|distribution-auth)
		cat > "$d/config.yml" <<-EOF
		version: 0.1
		log:
		  level: warn
		  accesslog:
		    disabled: true
		storage:
		  filesystem:
		    rootdirectory: $d/data
		  delete:
		    enabled: true
		  cache:
		    blobdescriptor: inmemory
		  maintenance:
		    uploadpurging:
		      enabled: false
		http:
		  addr: 127.0.0.1:$port
		  secret: berth-bench-$ID
		EOF
		if [ "$s" = distribution-auth ]; then
			# htpasswd auth: distribution checks the bcrypt hash on every request
			SCRED[$s]=KEY:$(openssl rand -hex 32)
			htpasswd -Bbn "${SCRED[$s]%%:*}" "${SCRED[$s]#*:}" > "$d/htpasswd" 2>/dev/null
			printf 'auth:\n  htpasswd:\n    realm: bench\n    path: %s\n' "$d/htpasswd" >> "$d/config.yml"
		fi
		# without any REGISTRY_* variables: distribution reads them as config overrides
		local unset=() v
		for v in $(compgen -e | grep '^REGISTRY_' || true); do unset+=(-u "$v"); done
		env "${unset[@]}" "$REGISTRY_BIN" serve "$d/config.yml" \
			> "$d/server.log" 2>&1 < /dev/null &
		SPID[$s]=$!
		SLABEL[$s]="distribution $("$REGISTRY_BIN" --version 2>/dev/null | awk '{print $NF}')"
		;;
	berthd|berthd-auth)
		{
			printf 'log:\n  level: warn\n  accesslog:\n    disabled: true\n'
			printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$d/data"
			printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
			[ -z "${BERTHD_THREADS:-}" ] || printf '  threads: %s\n' "$BERTHD_THREADS"
			# every ab client is 127.0.0.1: no per-address limit for conns
			! want conns || printf '  max_connections: 4096\n  max_connections_per_address: 0\n'
			if [ "$s" = berthd-auth ] && [ "$AB_SECONDS" -gt 240 ]; then
				printf 'auth:\n  token_ttl: %s\n' $((AB_SECONDS + 60))
			fi
		} > "$d/config.yml"
		local noauth=(--insecure-no-auth) out
		if [ "$s" = berthd-auth ]; then
			# auth on (berthd's default); the account is the tenant the
			# repositories live under, the key's access key is the password
			noauth=()
			out=$("$BERTHD" account create --id "$TENANT" --data-dir "$d/data" 2> "$d/admin.log") \
				|| { cat "$d/admin.log" >&2; die "berthd account create failed"; }
			[ "$out" = "$TENANT" ] || die "berthd account create printed '$out', expected $TENANT"
			out=$("$BERTHD" key create --account "$TENANT" --data-dir "$d/data" 2>> "$d/admin.log") \
				|| { cat "$d/admin.log" >&2; die "berthd key create failed"; }
			BERTH_KEY=${out#* }
			[[ $BERTH_KEY =~ ^brt_[0-9a-f]{64}$ ]] || die "berthd key create printed '$out', expected '<key id> <access key>'"
			SCRED[$s]=KEY:$BERTH_KEY
		fi
		"$BERTHD" serve --config "$d/config.yml" "${noauth[@]}" > "$d/server.log" 2>&1 < /dev/null &
		SPID[$s]=$!
		SLABEL[$s]=berthd
		;;
	esac
	wait_up "$s"
	log "started $s PID ${SPID[$s]} on ${SURL[$s]} (data $d/data)"
}

# upload_blob NAME URL REPO FILE DIGEST: POST + PUT; prints "HTTP-STATUS"
upload_blob() {
	local s=$1 url=$2 repo=$3 file=$4 dig=$5 loc put ca
	mapfile -t ca < <(cred_args "$s")
	loc=$(curl -s --max-time 30 "${ca[@]}" -o /dev/null -D - -X POST -H 'Content-Length: 0' "$url/v2/$repo/blobs/uploads/" \
		| tr -d '\r' | awk 'tolower($1)=="location:"{print $2}' | tail -n 1)
	[ -n "$loc" ] || { echo "no-location"; return 0; }
	case $loc in /*) loc=$url$loc ;; esac
	case $loc in *\?*) put="$loc&digest=$dig" ;; *) put="$loc?digest=$dig" ;; esac
	curl -s --max-time 900 "${ca[@]}" -o "$WORK/put-$s.body" -w '%{http_code}' -T "$file" -H 'Expect:' \
		-H 'Content-Type: application/octet-stream' "$put" || echo "curl-failed"
}
seed_small() {  # push the small image to NAME; check HEAD blob and GET manifest
	local s=$1 url=${SURL[$1]} code f ca
	mapfile -t ca < <(cred_args "$s")
	for f in layer:$SMALL_LAYER config:$SMALL_CFG; do
		code=$(upload_blob "$s" "$url" "$SMALL_REPO" "$SMALL/${f%%:*}" "${f#*:}")
		[ "$code" = 201 ] || die "$s: upload of the small ${f%%:*} blob gave $code"
	done
	code=$(curl -s --max-time 30 "${ca[@]}" -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $OCI_MANIFEST" \
		--data-binary @"$SMALL/manifest" "$url/v2/$SMALL_REPO/manifests/bench")
	[ "$code" = 201 ] || die "$s: manifest PUT gave $code"
	curl -sf --max-time 30 "${ca[@]}" -I "$url/v2/$SMALL_REPO/blobs/$SMALL_LAYER" | tr -d '\r' \
		| grep -qi '^content-length: 2097152$' || die "$s: HEAD of the small blob failed"
	curl -sf --max-time 30 "${ca[@]}" -H "Accept: $OCI_MANIFEST" -D "$WORK/mh-$s" -o "$WORK/m-$s" "$url/v2/$SMALL_REPO/manifests/bench" \
		|| die "$s: GET manifest failed"
	tr -d '\r' < "$WORK/mh-$s" | grep -qi "^docker-content-digest: $SMALL_MAN$" || die "$s: GET manifest lacks Docker-Content-Digest $SMALL_MAN"
	cmp -s "$WORK/m-$s" "$SMALL/manifest" || die "$s: GET manifest returned other bytes"
}

# ------------------------------------------------------------------ measurements
# ab_run INSTANCE RUN METRIC-PREFIX ab-args... URL; sets LAST_RPS
LAST_RPS=
ab_run() {
	local inst=$1 i=$2 m=$3; shift 3
	local s; s=$(column_of "$inst")
	local pid=${SPID[$inst]} out=$BENCH_OUT/raw/${m// /-}-$s-$i.txt c0 c1 rps p50 p99 ndone failed non2xx ka
	c0=$(cpu_ticks "$pid")
	# bash's time keyword gives ab's own CPU time: shows when the client is the limit
	{ TIMEFORMAT='%U %S'; time timeout $((AB_SECONDS + 60)) ab -k "$@" > "$out" 2>&1 || true; } 2> "$WORK/ab.time"
	c1=$(cpu_ticks "$pid")
	grep -q '^Requests per second' "$out" || { cat "$out" >&2; die "$s: ab $m failed"; }
	rps=$(awk '/^Requests per second/{print $4}' "$out")
	p50=$(awk '$1=="50%"{print $2}' "$out")
	p99=$(awk '$1=="99%"{print $2}' "$out")
	ndone=$(awk '/^Complete requests/{print $3}' "$out")
	failed=$(awk '/^Failed requests/{print $3}' "$out")
	non2xx=$(awk '/^Non-2xx responses/{print $3}' "$out"); non2xx=${non2xx:-0}
	ka=$(awk '/^Keep-Alive requests/{print $3}' "$out"); ka=${ka:-0}
	add "$s" "$m" req/s higher "$rps"
	add "$s" "$m p50 latency" ms lower "$p50"
	add "$s" "$m p99 latency" ms lower "$p99"
	add "$s" "$m failed + non-2xx" count lower "$((failed + non2xx))"
	add "$s" "$m server CPU per request" "µs" lower "$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" -v n="$ndone" \
		'BEGIN{if (n>0) printf "%.0f", (b-a)/t/n*1e6; else print "NA"}')"
	add "$s" "$m ab (client) CPU" "% of 1 core" - "$(awk -v d="$AB_SECONDS" '{printf "%.0f", ($1+$2)/d*100}' "$WORK/ab.time")"
	if [ "$((failed + non2xx))" != 0 ]; then log "  WARNING: $s $m run $i: $failed failed, $non2xx non-2xx of $ndone"; fi
	if [ "$ka" -lt "$ndone" ]; then log "  $s $m run $i: only $ka of $ndone requests kept the connection alive"; fi
	log "  $s $m run $i: $rps req/s p50 $p50 ms p99 $p99 ms"
	LAST_RPS=$rps
}

# A pull token for SMALL_REPO from berthd-auth's token endpoint (prints it).
fetch_token() {
	local inst=$1 tok
	tok=$(curl -sf --max-time 10 -u "${SCRED[$inst]}" \
		"${SURL[$inst]}/v2/token?service=berth&scope=repository:$SMALL_REPO:pull" | jq -r '.token // empty') || return 1
	[ -n "$tok" ] || return 1
	printf '%s\n' "$tok"
}
declare -A AB_VARIANT_NAME=([none]="" [basic]=" Basic auth" [key]=" Bearer access key" [token]=" Bearer token")
ab_metric() {  # ab_metric KIND: the metric label of an unauthenticated run
	case $1 in head) echo "ab HEAD blob c$AB_CONNS" ;; get) echo "ab GET manifest c$AB_CONNS" ;; esac
}
# ab_measure KIND(head|get) RUN SERVER VARIANT(none|basic|key|token)
ab_measure() {
	local kind=$1 i=$2 s=$3 v=$4 inst=$3 m path args=() check=() tok code
	m="$(ab_metric "$kind")${AB_VARIANT_NAME[$v]}"
	case $kind in
	head) args=(-i); check=(-I); path=/v2/$SMALL_REPO/blobs/$SMALL_LAYER ;;
	get) args=(-H "Accept: $OCI_MANIFEST"); check=(-H "Accept: $OCI_MANIFEST"); path=/v2/$SMALL_REPO/manifests/bench ;;
	esac
	case $v in
	none) ;;
	basic) inst=$s-auth; args+=(-A "${SCRED[$inst]}"); check+=(-u "${SCRED[$inst]}") ;;
	key) inst=$s-auth; args+=(-H "Authorization: Bearer $BERTH_KEY"); check+=(-H "Authorization: Bearer $BERTH_KEY") ;;
	token)
		inst=$s-auth
		tok=$(fetch_token "$inst") || die "$inst: no token from GET /v2/token"
		args+=(-H "Authorization: Bearer $tok"); check+=(-H "Authorization: Bearer $tok") ;;
	esac
	# the credential must work before its figures mean anything
	code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "${check[@]}" "${SURL[$inst]}$path" || true)
	[ "$code" = 200 ] || die "$inst: $m check request gave $code, not 200"
	ab_run "$inst" "$i" "$m" "${args[@]}" -c "$AB_CONNS" -t "$AB_SECONDS" -n 10000000 "${SURL[$inst]}$path"
}
# ab_group KIND: RUNS rounds; in each, every server (alternating order) runs
# unauthenticated and, with the auth group, authenticated back to back (the
# order of those also alternating), and the round's ratios are recorded.
ab_group() {
	local kind=$1 i s v vs m0
	local -A r=()
	m0=$(ab_metric "$kind")
	for i in $(seq 1 "$RUNS"); do
		for s in $(run_order "$i"); do
			vs=(none)
			if want auth; then vs+=(basic); [ "$s" != berthd ] || vs+=(key token); fi
			if [ $((i % 2)) = 0 ]; then mapfile -t vs < <(printf '%s\n' "${vs[@]}" | tac); fi
			r=()
			for v in "${vs[@]}"; do ab_measure "$kind" "$i" "$s" "$v"; r[$v]=$LAST_RPS; done
			for v in basic key token; do
				[ -n "${r[$v]:-}" ] || continue
				add "$s" "$m0${AB_VARIANT_NAME[$v]} / no auth" ratio higher \
					"$(awk -v a="${r[none]}" -v b="${r[$v]}" 'BEGIN{if (a > 0) printf "%.3f", b/a; else print "NA"}')"
			done
		done
	done
}

big_repo() { echo "$TENANT/bench-$ID-push-$1"; }
PUSHED1=()  # servers holding the 1 GiB blob in big_repo 1
push_once() {  # push_once NAME RUN: one timed POST+PUT of the 1 GiB file
	local s=$1 i=$2 url=${SURL[$1]} pid=${SPID[$1]} repo t0 t1 c0 c1 code before mx last samples sec
	repo=$(big_repo "$i")
	samples=$BENCH_OUT/raw/rss-push-$s-$i.txt
	sync
	before=$(status_kib "$pid" VmRSS)
	c0=$(cpu_ticks "$pid")
	sampler_start "$pid" "$samples"
	t0=$(now_ns)
	code=$(upload_blob "$s" "$url" "$repo" "$BIG" "$BIG_DIG")
	t1=$(now_ns)
	sampler_stop
	c1=$(cpu_ticks "$pid")
	[ "$code" = 201 ] || die "$s: 1 GiB PUT returned $code: $(head -c 500 "$WORK/put-$s.body" 2>/dev/null)"
	curl -sf --max-time 30 -I "$url/v2/$repo/blobs/$BIG_DIG" | tr -d '\r' | grep -qi "^content-length: $BIG_SIZE$" \
		|| die "$s: HEAD after the 1 GiB push failed"
	[ "$i" = 1 ] && PUSHED1+=("$s")
	sec=$(secs "$t0" "$t1")
	mx=$(file_max "$samples"); mx=${mx:-$before}; [ "$before" -gt "$mx" ] && mx=$before
	last=$(tail -n 1 "$samples"); last=${last:-$before}
	add "$s" "curl push 1 GiB (POST+PUT)" s lower "$sec"
	add "$s" "curl push 1 GiB" MiB/s higher "$(mibps "$BIG_SIZE" "$sec")"
	add "$s" "curl push 1 GiB server CPU" s lower "$(cpu_secs "$c0" "$c1")"
	add "$s" "RSS max during 1 GiB upload" MiB lower "$(kib2mib "$mx")"
	add "$s" "RSS growth during upload (max - before)" MiB lower "$(kib2mib $((mx - before)))"
	log "  $s push run $i: $sec s, RSS before $(kib2mib "$before") max $(kib2mib "$mx") last $(kib2mib "$last") MiB ($(wc -l < "$samples") samples)"
}
get1g_once() {  # get1g_once NAME RUN
	local s=$1 i=$2 url=${SURL[$1]} pid=${SPID[$1]} out code t n c0 c1 mx samples
	samples=$BENCH_OUT/raw/rss-get1g-$s-$i.txt
	c0=$(cpu_ticks "$pid")
	sampler_start "$pid" "$samples"
	out=$(curl -s --max-time 600 -o /dev/null -w '%{http_code} %{time_total} %{size_download}' \
		"$url/v2/$(big_repo 1)/blobs/$BIG_DIG" || true)
	sampler_stop
	c1=$(cpu_ticks "$pid")
	read -r code t n <<<"$out"
	[ "$code" = 200 ] && [ "$n" = "$BIG_SIZE" ] || die "$s: GET 1 GiB blob gave '$out'"
	t=$(awk -v t="$t" 'BEGIN{printf "%.3f", t}')
	mx=$(file_max "$samples")
	add "$s" "curl GET 1 GiB -> /dev/null" s lower "$t"
	add "$s" "curl GET 1 GiB" MiB/s higher "$(mibps "$BIG_SIZE" "$t")"
	add "$s" "curl GET 1 GiB server CPU" s lower "$(cpu_secs "$c0" "$c1")"
	[ -z "$mx" ] || add "$s" "RSS max during 1 GiB GET" MiB lower "$(kib2mib "$mx")"
	log "  $s GET 1 GiB run $i: $t s"
}
# A failed skopeo copy is a result (counted, its log kept, the error shown),
# then retried once with a fresh repository so the run still yields figures.
skopeo_once() {  # skopeo_once NAME RUN: push to a fresh repo, pull it back
	local s=$1 i=$2 reg=${SURL[$1]#http://} pid=${SPID[$1]} repo t0 t1 c0 c1 sec got mx samples
	local try ok=0 fails=0 plog
	samples=$BENCH_OUT/raw/rss-skopeo-$s-$i.txt
	for try in 1 2; do
		repo=$TENANT/bench-$ID-skopeo-$i-$try
		plog=$BENCH_OUT/raw/skopeo-push-$s-$i-$try.log
		sync
		c0=$(cpu_ticks "$pid")
		sampler_start "$pid" "$samples"
		t0=$(now_ns)
		if sk copy --preserve-digests --dest-tls-verify=false "oci:$LAYOUT:v1" "docker://$reg/$repo:v1" > "$plog" 2>&1; then ok=1; fi
		t1=$(now_ns)
		sampler_stop
		c1=$(cpu_ticks "$pid")
		[ "$ok" = 1 ] && break
		fails=$((fails + 1))
		log "  ERROR: $s skopeo push run $i try $try failed: $(grep -v '^\(Getting\|Copying\|Writing\|Storing\)' "$plog" | tail -n 2 | tr '\n' ' ')"
	done
	add "$s" "skopeo push failures" count lower "$fails"
	[ "$ok" = 1 ] || die "$s: skopeo push failed twice (logs in $BENCH_OUT/raw)"
	sec=$(secs "$t0" "$t1"); mx=$(file_max "$samples")
	add "$s" "skopeo push 1 GiB layer" s lower "$sec"
	add "$s" "skopeo push 1 GiB layer" MiB/s higher "$(mibps "$BIG_SIZE" "$sec")"
	add "$s" "skopeo push server CPU" s lower "$(cpu_secs "$c0" "$c1")"
	[ -z "$mx" ] || add "$s" "RSS max during skopeo push" MiB lower "$(kib2mib "$mx")"
	if grep -qi 'already exists\|mounted' "$plog"; then
		log "  WARNING: $s skopeo push run $i reused a blob instead of uploading it"
	fi
	got=$(curl -s --max-time 30 -I -H "Accept: $OCI_MANIFEST" "http://$reg/v2/$repo/manifests/v1" \
		| tr -d '\r' | awk 'tolower($1)=="docker-content-digest:"{print $2}')
	[ "$got" = "$LAYOUT_MAN" ] || log "  WARNING: $s holds manifest '$got' after skopeo push, expected $LAYOUT_MAN"
	log "  $s skopeo push run $i: $sec s"
	ok=0; fails=0
	for try in 1 2; do
		plog=$BENCH_OUT/raw/skopeo-pull-$s-$i-$try.log
		rm -rf "$PULLTMP/img"
		t0=$(now_ns)
		if sk copy --src-tls-verify=false "docker://$reg/$repo:v1" "dir:$PULLTMP/img" > "$plog" 2>&1 \
			&& [ "$(stat -c %s "$PULLTMP/img/$BIG_HEX" 2>/dev/null)" = "$BIG_SIZE" ]; then ok=1; fi
		t1=$(now_ns)
		rm -rf "$PULLTMP/img"
		[ "$ok" = 1 ] && break
		fails=$((fails + 1))
		log "  ERROR: $s skopeo pull run $i try $try failed: $(tail -n 2 "$plog" | tr '\n' ' ')"
	done
	add "$s" "skopeo pull failures" count lower "$fails"
	[ "$ok" = 1 ] || die "$s: skopeo pull failed twice (logs in $BENCH_OUT/raw)"
	sec=$(secs "$t0" "$t1")
	add "$s" "skopeo pull 1 GiB layer -> dir:" s lower "$sec"
	add "$s" "skopeo pull 1 GiB layer" MiB/s higher "$(mibps "$BIG_SIZE" "$sec")"
	log "  $s skopeo pull run $i: $sec s"
}

# pull10_once NAME RUN: 10 parallel GETs of the 10 different 200 MiB blobs
pull10_once() {
	local s=$1 i=$2 url=${SURL[$1]} pid=${SPID[$1]} t0 t1 c0 c1 k sec cpu pids=() out code n
	c0=$(cpu_ticks "$pid")
	t0=$(now_ns)
	for k in $(seq 0 $((PULL10_N - 1))); do
		curl -s --max-time 600 -o /dev/null -w '%{http_code} %{size_download}' \
			"$url/v2/$PULL10_REPO/blobs/${PULL10_DIGS[$k]}" > "$WORK/pull10-$s-$k.out" 2>&1 &
		pids+=($!)
	done
	for k in "${pids[@]}"; do wait "$k" || true; done
	t1=$(now_ns)
	c1=$(cpu_ticks "$pid")
	for k in $(seq 0 $((PULL10_N - 1))); do
		out=$(cat "$WORK/pull10-$s-$k.out")
		read -r code n <<<"$out"
		[ "$code" = 200 ] && [ "$n" = "$PULL10_SIZE" ] || die "$s: pull10 GET of blob $((k + 1)) gave '$out'"
	done
	sec=$(secs "$t0" "$t1")
	cpu=$(cpu_secs "$c0" "$c1")
	add "$s" "pull10: 10 parallel GETs of 200 MiB (last done)" s lower "$sec"
	add "$s" "pull10 aggregate" MiB/s higher "$(mibps $((PULL10_N * PULL10_SIZE)) "$sec")"
	add "$s" "pull10 server CPU per GiB sent" s lower \
		"$(awk -v c="$cpu" -v b=$((PULL10_N * PULL10_SIZE)) 'BEGIN{printf "%.3f", c/(b/1073741824)}')"
	log "  $s pull10 run $i: $sec s, server CPU $cpu s"
}
pull10_seed() {  # push the 10 blobs to NAME, then read each once (untimed)
	local s=$1 url=${SURL[$1]} k code
	for k in $(seq 0 $((PULL10_N - 1))); do
		code=$(upload_blob "$s" "$url" "$PULL10_REPO" "${PULL10_FILES[$k]}" "${PULL10_DIGS[$k]}")
		[ "$code" = 201 ] || die "$s: pull10 push of blob $((k + 1)) gave $code"
		curl -sf --max-time 600 -o /dev/null "$url/v2/$PULL10_REPO/blobs/${PULL10_DIGS[$k]}" \
			|| die "$s: pull10 warm-up GET of blob $((k + 1)) failed"
	done
}
# conns_round RUN NAME: HEAD blob and GET manifest at 64 and CONNS_MANY
# connections, back to back, with the per-round ratio
conns_round() {
	local i=$1 s=$2 kind c m path args check code r64 rmany cs
	for kind in head get; do
		case $kind in
		head) m="conns HEAD blob"; args=(-i); check=(-I); path=/v2/$SMALL_REPO/blobs/$SMALL_LAYER ;;
		get) m="conns GET manifest"; args=(-H "Accept: $OCI_MANIFEST"); check=(-H "Accept: $OCI_MANIFEST")
			path=/v2/$SMALL_REPO/manifests/bench ;;
		esac
		code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "${check[@]}" "${SURL[$s]}$path" || true)
		[ "$code" = 200 ] || die "$s: $m check request gave $code, not 200"
		cs=(64 "$CONNS_MANY")
		[ $((i % 2)) = 1 ] || cs=("$CONNS_MANY" 64)
		for c in "${cs[@]}"; do
			ab_run "$s" "$i" "$m c$c" "${args[@]}" -c "$c" -t "$AB_SECONDS" -n 10000000 "${SURL[$s]}$path"
			if [ "$c" = 64 ]; then r64=$LAST_RPS; else rmany=$LAST_RPS; fi
		done
		add "$s" "$m c$CONNS_MANY / c64" ratio higher \
			"$(awk -v a="$r64" -v b="$rmany" 'BEGIN{if (a > 0) printf "%.3f", b/a; else print "NA"}')"
	done
}
# The 1 MiB-PATCH client: POST, PATCHes of CHUNK bytes with Content-Range on
# one connection, PUT ?digest=; prints the final status.
CHUNKS_PY=$WORK/chunks.py
cat > "$CHUNKS_PY" <<'EOF'
import http.client, sys, urllib.parse
base, repo, path, digest, chunk = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
u = urllib.parse.urlsplit(base)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
def call(method, target, body=b"", headers=None):
    h = {"Content-Length": str(len(body))}
    h.update(headers or {})
    conn.request(method, target, body=body, headers=h)
    r = conn.getresponse()
    r.read()
    loc = r.getheader("Location")
    if loc:
        p = urllib.parse.urlsplit(loc)
        loc = p.path + ("?" + p.query if p.query else "")
    return r.status, loc
st, loc = call("POST", "/v2/%s/blobs/uploads/" % repo)
if st != 202 or not loc:
    sys.exit("POST gave %d" % st)
pos = 0
with open(path, "rb") as f:
    while True:
        data = f.read(chunk)
        if not data:
            break
        st, loc = call("PATCH", loc, data, {"Content-Type": "application/octet-stream",
                                            "Content-Range": "%d-%d" % (pos, pos + len(data) - 1)})
        if st != 202 or not loc:
            sys.exit("PATCH at %d gave %d" % (pos, st))
        pos += len(data)
st, _ = call("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + digest)
print(st)
EOF
# chunked_once NAME RUN: one streamed PATCH, then 1024 PATCHes of 1 MiB
chunked_once() {
	local s=$1 i=$2 url=${SURL[$1]} pid=${SPID[$1]} repo t0 t1 c0 c1 loc code sec v put
	for v in stream 1m; do
		repo=$TENANT/bench-$ID-chunked-$v-$i
		sync
		c0=$(cpu_ticks "$pid")
		t0=$(now_ns)
		if [ "$v" = stream ]; then
			loc=$(curl -s --max-time 30 -o /dev/null -D - -X POST -H 'Content-Length: 0' "$url/v2/$repo/blobs/uploads/" \
				| tr -d '\r' | awk 'tolower($1)=="location:"{print $2}' | tail -n 1)
			[ -n "$loc" ] || die "$s: chunked POST gave no Location"
			case $loc in /*) loc=$url$loc ;; esac
			loc=$(curl -s --max-time 900 -o /dev/null -D - -X PATCH -T "$BIG" -H 'Expect:' \
				-H 'Content-Type: application/octet-stream' "$loc" \
				| tr -d '\r' | awk 'tolower($1)=="location:"{print $2}' | tail -n 1)
			[ -n "$loc" ] || die "$s: the streamed PATCH gave no Location"
			case $loc in /*) loc=$url$loc ;; esac
			case $loc in *\?*) put="$loc&digest=$BIG_DIG" ;; *) put="$loc?digest=$BIG_DIG" ;; esac
			code=$(curl -s --max-time 300 -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Length: 0' "$put" || true)
		else
			code=$(python3 "$CHUNKS_PY" "$url" "$repo" "$BIG" "$BIG_DIG" 1048576 2>&1 | tail -n 1)
		fi
		t1=$(now_ns)
		c1=$(cpu_ticks "$pid")
		[ "$code" = 201 ] || die "$s: chunked ($v) push ended with '$code'"
		curl -sf --max-time 30 -I "$url/v2/$repo/blobs/$BIG_DIG" | tr -d '\r' | grep -qi "^content-length: $BIG_SIZE$" \
			|| die "$s: HEAD after the chunked ($v) push failed"
		sec=$(secs "$t0" "$t1")
		if [ "$v" = stream ]; then
			add "$s" "chunked push 1 GiB, one streamed PATCH" s lower "$sec"
			add "$s" "chunked push 1 GiB, one streamed PATCH, server CPU" s lower "$(cpu_secs "$c0" "$c1")"
		else
			add "$s" "chunked push 1 GiB, 1024 PATCHes of 1 MiB" s lower "$sec"
			add "$s" "chunked push 1 GiB, 1024 PATCHes of 1 MiB, server CPU" s lower "$(cpu_secs "$c0" "$c1")"
		fi
		log "  $s chunked ($v) run $i: $sec s"
	done
}

# ------------------------------------------------------------------ run
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A THREADS=()
log "bench: servers ${SERVERS[*]}, runs $RUNS, groups '$BENCH_ONLY', out $BENCH_OUT"
for s in "${SERVERS[@]}"; do
	start_server "$s"
	sleep 0.5
	if want rss; then add "$s" "RSS idle after start (VmRSS)" MiB lower "$(kib2mib "$(status_kib "${SPID[$s]}" VmRSS)")"; fi
	THREADS[$s]=$(status_kib "${SPID[$s]}" Threads)
done
for s in "${AUTH_INSTANCES[@]}"; do start_server "$s"; done

if want head || want get || want auth || want conns; then
	for s in "${SERVERS[@]}" "${AUTH_INSTANCES[@]}"; do seed_small "$s"; done
fi
if want head || want auth; then
	log "HEAD blob: ab -k -i -c $AB_CONNS -t $AB_SECONDS$(want auth && echo ', without and with auth')"
	ab_group head
fi
if want get || want auth; then
	log "GET manifest: ab -k -c $AB_CONNS -t $AB_SECONDS$(want auth && echo ', without and with auth')"
	ab_group get
fi
if want push; then
	log "1 GiB monolithic push (curl POST + PUT)"
	for i in $(seq 1 "$RUNS"); do
		for s in $(run_order "$i"); do push_once "$s" "$i"; done
	done
fi
if want get1g; then
	for s in "${SERVERS[@]}"; do
		if [[ " ${PUSHED1[*]:-} " != *" $s "* ]]; then
			code=$(upload_blob "$s" "${SURL[$s]}" "$(big_repo 1)" "$BIG" "$BIG_DIG")
			[ "$code" = 201 ] || die "$s: untimed 1 GiB push for GET returned $code"
		fi
	done
	log "1 GiB blob GET (curl -> /dev/null)"
	for i in $(seq 1 "$RUNS"); do
		for s in $(run_order "$i"); do get1g_once "$s" "$i"; done
	done
fi
if want skopeo; then
	log "skopeo push + pull of a 1 GiB-layer image"
	for i in $(seq 1 "$RUNS"); do
		for s in $(run_order "$i"); do skopeo_once "$s" "$i"; done
	done
fi
if want pull10; then
	log "pull10: 10 parallel GETs of different 200 MiB blobs"
	for s in "${SERVERS[@]}"; do pull10_seed "$s"; done
	for i in $(seq 1 "$RUNS"); do
		for s in $(run_order "$i"); do pull10_once "$s" "$i"; done
	done
fi
if want conns; then
	log "conns: ab -k at 64 and $CONNS_MANY connections, HEAD blob and GET manifest"
	for i in $(seq 1 "$RUNS"); do
		for s in $(run_order "$i"); do conns_round "$i" "$s"; done
	done
fi
if want chunked; then
	log "chunked push of the 1 GiB file: one streamed PATCH; 1024 PATCHes of 1 MiB"
	for i in $(seq 1 "$RUNS"); do
		for s in $(run_order "$i"); do chunked_once "$s" "$i"; done
	done
fi
if want rss; then
	for s in "${SERVERS[@]}"; do
		add "$s" "RSS after the run (VmRSS)" MiB lower "$(kib2mib "$(status_kib "${SPID[$s]}" VmRSS)")"
		add "$s" "peak RSS over the run (VmHWM)" MiB lower "$(kib2mib "$(status_kib "${SPID[$s]}" VmHWM)")"
	done
fi
# servers must still be alive: a crash under load is a result too
for s in "${SERVERS[@]}" "${AUTH_INSTANCES[@]}"; do
	kill -0 "${SPID[$s]}" 2>/dev/null || { tail -n 50 "${SDIR[$s]}/server.log" >&2; die "$s (PID ${SPID[$s]}) died during the run"; }
	cp "${SDIR[$s]}/server.log" "$BENCH_OUT/raw/server-$s.log"
	cp "${SDIR[$s]}/config.yml" "$BENCH_OUT/raw/config-$s.yml"
done
for s in "${SERVERS[@]}" "${AUTH_INSTANCES[@]}"; do
	stop_server "$s"
	cp "${SDIR[$s]}/server.log" "$BENCH_OUT/raw/server-$s.log"
	{ grep -c . "$BENCH_OUT/raw/server-$s.log" || true; } | awk -v s="$s" '$1>0{print "note: " s " logged " $1 " lines at warn level or above (raw/server-" s ".log)"}' >&2
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------ report
RES=$BENCH_OUT/results.tsv
printf 'metric\tunit\tbetter\tserver\tmedian_or_sum\truns\n' > "$RES"
for m in "${METRICS[@]}"; do
	for s in "${SERVERS[@]}"; do
		v=${VALS["$s|$m"]:-}
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${MLABEL[$m]}" "${MUNIT[$m]}" "${MBETTER[$m]}" "$s" \
			"$(echo "$v" | agg "${MUNIT[$m]}")" "$(echo $v | tr ' ' ',')" >> "$RES"
	done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a ~ /^[0-9.eE+-]+$/ && b ~ /^[0-9.eE+-]+$/ && a+0 != 0) printf "%.2f", b/a; else print "–" }'; }
cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
gitrev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
gitdirty=$(git -C "$ROOT" status --porcelain 2>/dev/null | head -n 1)
fsinfo=$(df -T "$WORK" | awk 'NR==2{print $2" on "$1}')
TABLE=$BENCH_OUT/table.md
{
	echo "Machine: $(nproc) CPUs ($cpu_model), $(awk '/^MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r); data on $fsinfo."
	echo "Load average before: $LOAD_BEFORE; after: $LOAD_AFTER. Runs: $RUNS (median shown), interleaved; ab ${AB_SECONDS}s at $AB_CONNS connections."
	echo "Servers: $(for s in "${SERVERS[@]}"; do printf '%s (%s threads at start); ' "${SLABEL[$s]}" "${THREADS[$s]:-?}"; done)berthd ${BERTHD_SRC:-n/a} from source $gitrev${gitdirty:+ (uncommitted changes)}."
	echo "Clients: $(ab -V 2>/dev/null | head -n 1 | awk '{print "ab "$5}' | tr -d ','), $(curl --version | head -n 1 | awk '{print "curl "$2}'), $(skopeo --version 2>/dev/null || echo 'skopeo n/a')."
	echo
	hdr="| metric | unit | better |"; sep="|---|---|---|"
	for s in "${SERVERS[@]}"; do hdr+=" ${SLABEL[$s]} |"; sep+="---:|"; done
	if [ ${#SERVERS[@]} = 2 ]; then hdr+=" ${SERVERS[1]}/${SERVERS[0]} |"; sep+="---:|"; fi
	echo "$hdr"; echo "$sep"
	for m in "${METRICS[@]}"; do
		unit=${MUNIT[$m]}; [ "$unit" != count ] || unit="count (sum of runs)"
		row="| ${MLABEL[$m]} | $unit | ${MBETTER[$m]} |"
		meds=()
		for s in "${SERVERS[@]}"; do med=$(echo "${VALS["$s|$m"]:-}" | agg "${MUNIT[$m]}"); meds+=("$med"); row+=" $med |"; done
		if [ ${#SERVERS[@]} = 2 ]; then row+=" $(ratio "${meds[0]}" "${meds[1]}") |"; fi
		echo "$row"
	done
	if want auth; then
		echo
		how=()
		has_server distribution && how+=("distribution: htpasswd, bcrypt cost $(sed -n 's/^[^:]*:\$2y\$0*\([0-9]*\)\$.*/\1/p' "${SDIR[distribution-auth]}/htpasswd")")
		has_server berthd && how+=("berthd: auth on, access key")
		echo "Authentication cost: median req/s (p99 ms) without auth and with it, on a second instance of each server"
		echo "($(IFS=';'; echo "${how[*]}" | sed 's/;/; /g'))."
		echo "auth/no auth = median over the $RUNS rounds of the ratio of two runs made back to back. Target for berthd: Basic >= 0.90."
		echo "CPU = the server's CPU time per request (µs), no auth → Basic (client and servers share this machine's CPUs)."
		echo
		echo "| request | server | no auth | Basic | Basic/no auth | CPU µs/req | Bearer access key | key/no auth | Bearer token | token/no auth |"
		echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
		for kind in head get; do
			m0=$(ab_metric "$kind")
			for s in "${SERVERS[@]}"; do
				row="| ${m0#ab } | ${SLABEL[$s]} |"
				for v in none basic key token; do
					m="$m0${AB_VARIANT_NAME[$v]}"
					rps=$(echo "${VALS["$s|$m|req/s"]:-}" | median)
					p99=$(echo "${VALS["$s|$m p99 latency|ms"]:-}" | median)
					if [ "$rps" = NA ]; then row+=" – |"; else row+=" $rps ($p99) |"; fi
					[ "$v" = none ] && continue
					rat=$(echo "${VALS["$s|$m / no auth|ratio"]:-}" | median)
					[ "$rat" != NA ] || rat="–"
					row+=" $rat |"
					[ "$v" = basic ] || continue
					row+=" $(echo "${VALS["$s|$m0 server CPU per request|µs"]:-}" | median) → $(echo "${VALS["$s|$m server CPU per request|µs"]:-}" | median) |"
				done
				echo "$row"
			done
		done
		if has_server berthd; then
			echo
			for kind in head get; do
				m0=$(ab_metric "$kind")
				rat=$(echo "${VALS["berthd|$m0 Basic auth / no auth|ratio"]:-}" | median)
				echo "berthd ${m0#ab } Basic/no auth: $rat: $(awk -v r="$rat" 'BEGIN{print (r+0 >= 0.90) ? "meets the target (>= 0.90)" : "MISSES the target (>= 0.90)"}')."
			done
		fi
	fi
} > "$TABLE"
{
	printf 'id\t%s\nservers\t%s\nruns\t%s\nload_before\t%s\nload_after\t%s\nnproc\t%s\ncpu\t%s\n' \
		"$ID" "${SERVERS[*]}" "$RUNS" "$LOAD_BEFORE" "$LOAD_AFTER" "$(nproc)" "$cpu_model"
	for s in "${SERVERS[@]}"; do printf 'label_%s\t%s\n' "$s" "${SLABEL[$s]}"; done
} > "$BENCH_OUT/meta.tsv"
log ""
log "results: $RES, table: $TABLE, raw client output: $BENCH_OUT/raw"
cat "$TABLE"
