#!/usr/bin/env bash
# Berth edge benchmark: measures berth-edge, the gateway proxy, against a
# direct pull from berthd on this machine.  berthd runs with authentication
# on (its default) and one access key; berth-edge runs in front of it with
# that key in its --access-key-file, and local clients pull from berth-edge
# without credentials, as docker or containerd on a gateway would.  A direct
# pull sends the same key as "Authorization: Bearer".  Every measurement is
# repeated RUNS times, interleaved (direct, edge / edge, direct / ...) so
# that drift in the host's load hits both alike; the medians and the ratios
# edge/direct go into a markdown table, with results.tsv and the raw client
# output in BENCH_OUT.  Self-contained: needs only Debian packages (installed
# when missing) and this source tree (berthd and berth-edge are built when
# absent).  Only loopback (127.0.0.1) is used.
#
# Usage: bench/edge.sh
# Environment (all optional):
#   RUNS=3              repetitions of every measurement; medians are reported
#   BENCH_ONLY="big image rate rss"   subset of measurement groups
#   AB_SECONDS=10       duration of each ab run;   AB_CONNS=64 its concurrency
#   BENCH_OUT=DIR       results dir (default $BENCH_CACHE/edge-out-<time>)
#   BENCH_CACHE=/var/tmp/berth-bench   keeps the 1 GiB test file (the same
#                       file as bench/run.sh's) and the image's layers between
#                       runs (built once, deterministic)
#   BERTHD=PATH BERTH_EDGE=PATH   binaries (default ../build/*, built if missing)
#   EDGE_THREADS=N      berth-edge --threads (default: berth-edge's own, 4)
#   LAYERS=50 LAYER_SIZE=2097152  the many-layer image;  PARALLEL=4  its
#                       parallel pull's connections
#   STREAM_CLIENTS=5    clients pulling the 1 GiB layer at once (rss group)
#   EDGE_CACHE_ROOT=DIR where berth-edge's cache dirs go (default: the work
#                       dir under TMPDIR, beside berthd's data); e.g. /dev/shm
#                       to see what the disk costs a cold pull
#
# Method:
#   big     curl GET of a 1 GiB blob (AES-128-CTR keystream) to /dev/null:
#           direct from berthd; through berth-edge with a warm cache (the
#           blob pulled through it once before, untimed); through a fresh
#           berth-edge with an empty --cache-dir (cold: the blob streams to
#           the client while it is downloaded from berthd and written to
#           the cache).  Seconds (curl's time_total) and MiB/s, and the CPU
#           time berth-edge and berthd used for it.
#   image   an image of LAYERS layers of LAYER_SIZE bytes (one keystream cut
#           into pieces), a config and an OCI manifest: GET of the manifest
#           by tag, then GET of the config and every layer by digest, one
#           curl process on one kept-alive connection (seq) or PARALLEL
#           connections (curl --parallel); wall time of the two curl runs.
#           Direct, warm and cold as for big; cold starts a fresh berth-edge
#           with an empty cache for each of seq and par.
#   rate    ab -k -c AB_CONNS -t AB_SECONDS GET of a small OCI manifest by
#           digest with an OCI Accept header: direct (with the Bearer key)
#           and through the warm berth-edge (a cache hit); then the same
#           manifest by tag, direct and through berth-edge, where every
#           request costs berth-edge an upstream HEAD (tags are resolved
#           upstream) before it serves the digest from its cache.
#   rss     berth-edge's memory from /proc/PID/status (VmRSS, RssAnon,
#           RssFile) and /proc/PID/smaps_rollup (Pss): idle after start
#           (after one GET /v2/), idle after all the runs, and the peak
#           while STREAM_CLIENTS curls pull the 1 GiB blob at once, sampled
#           every 50 ms (and VmHWM, reset with clear_refs before the pull
#           where the kernel allows it), once from the warm cache (sendfile)
#           and once from a fresh berth-edge with an empty cache (the
#           clients share one upstream download).  The idle RSS is broken
#           down by mapping from /proc/PID/smaps (raw/smaps-*.txt).
# berthd logs at level warn with its access log off; berth-edge's access log
# is always on (it has no switch) and goes to a file.  Before every timed
# pull the dirty pages of earlier runs are written out (sync, untimed); the
# test content is read once beforehand, so the page cache holds it for both
# sides.  The servers' logs are kept in raw/ (gzip).  Only the processes
# this script started are stopped (by PID); their data goes, the content in
# BENCH_CACHE stays.
set -u -o pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-3}
BENCH_ONLY=${BENCH_ONLY:-big image rate rss}
AB_SECONDS=${AB_SECONDS:-10}
AB_CONNS=${AB_CONNS:-64}
BENCH_CACHE=${BENCH_CACHE:-/var/tmp/berth-bench}
LAYERS=${LAYERS:-50}
LAYER_SIZE=${LAYER_SIZE:-2097152}
PARALLEL=${PARALLEL:-4}
STREAM_CLIENTS=${STREAM_CLIENTS:-5}
EDGE_THREADS=${EDGE_THREADS:-}
ID=$(date +%Y%m%d%H%M%S)-$$
BENCH_OUT=${BENCH_OUT:-$BENCH_CACHE/edge-out-$ID}
TENANT=0146e9b57080961e2c83536300000000
BIG_SIZE=1073741824
# sha256 of the deterministic 1 GiB file below (the same as bench/run.sh's)
BIG_EXPECT=4c79e8b2beb6a0a7bebf97d2f14d98f73ffd4463621d252ce6fb11d190121e66
OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
OCI_CONFIG=application/vnd.oci.image.config.v1+json
OCI_LAYER=application/vnd.oci.image.layer.v1.tar

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }
want() { [[ " $BENCH_ONLY " == *" $1 "* ]]; }
num_in() {  # num_in NAME VALUE MIN MAX: VALUE is a whole number in [MIN, MAX]
	[[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] || die "$1 must be $3..$4"
}
num_in RUNS "$RUNS" 1 50
num_in AB_SECONDS "$AB_SECONDS" 1 600
num_in AB_CONNS "$AB_CONNS" 1 1000
num_in LAYERS "$LAYERS" 1 500
num_in LAYER_SIZE "$LAYER_SIZE" 1 268435456
num_in PARALLEL "$PARALLEL" 1 64
num_in STREAM_CLIENTS "$STREAM_CLIENTS" 1 64
[ -z "$EDGE_THREADS" ] || num_in EDGE_THREADS "$EDGE_THREADS" 1 256
for g in $BENCH_ONLY; do
	case $g in big|image|rate|rss) ;; *) die "unknown BENCH_ONLY group '$g'" ;; esac
done

# ------------------------------------------------------------------ packages
install_missing() {
	local pkgs=(curl jq procps python3 openssl apache2-utils coreutils) missing=() p
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing: ${missing[*]}"
	local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
	DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
		|| die "apt-get -o DPkg::Lock::Timeout=600 install ${missing[*]} failed"
}
if command -v dpkg-query >/dev/null; then install_missing; fi
for t in curl jq python3 openssl ab awk sha256sum split timeout; do
	command -v "$t" >/dev/null || die "$t is missing"
done

# ------------------------------------------------------------------ binaries
BERTHD=${BERTHD:-$ROOT/build/berthd}
BERTH_EDGE=${BERTH_EDGE:-$ROOT/build/berth-edge}
if [ ! -x "$BERTHD" ] || [ ! -x "$BERTH_EDGE" ]; then
	log "building berthd and berth-edge in $ROOT/build (Release)"
	[ -x "$ROOT/scripts/deps.sh" ] && "$ROOT/scripts/deps.sh"
	(cd "$ROOT" && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$(nproc)") >&2 \
		|| die "build failed"
	BERTHD=$ROOT/build/berthd; BERTH_EDGE=$ROOT/build/berth-edge
fi
[ -x "$BERTHD" ] || die "no berthd binary at $BERTHD"
[ -x "$BERTH_EDGE" ] || die "no berth-edge binary at $BERTH_EDGE"

# ------------------------------------------------------------------ work dirs, cleanup
mkdir -p "$BENCH_CACHE" "$BENCH_OUT/raw" || die "cannot make $BENCH_OUT"
BENCH_OUT=$(cd "$BENCH_OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-edge-bench.XXXXXX") || die "mktemp failed"
CROOT=$WORK
if [ -n "${EDGE_CACHE_ROOT:-}" ]; then
	CROOT=$(mktemp -d "$EDGE_CACHE_ROOT/berth-edge-bench-cache.XXXXXX") || die "cannot make a dir in $EDGE_CACHE_ROOT"
fi
# private copies: a rebuild of the tree during the run can neither change
# what is measured nor fail on a busy executable
mkdir -p "$WORK/bin"
cp "$BERTHD" "$WORK/bin/berthd" && cp "$BERTH_EDGE" "$WORK/bin/berth-edge" || die "cannot copy the binaries"
BERTHD_SRC=$BERTHD; BERTHD=$WORK/bin/berthd; BERTH_EDGE=$WORK/bin/berth-edge

# Processes this script started: PIDS[name] = PID (servers), and the
# background clients and samplers, which are waited for where they start.
declare -A PIDS=() URLS=() LOGS=()
BG_PIDS=()
stop_pid() {  # stop_pid PID LABEL: SIGTERM, up to 15 s, then SIGKILL
	local pid=$1
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then log "$2 (PID $pid) ignored SIGTERM, killing"; kill -KILL "$pid" 2>/dev/null; fi
	fi
	wait "$pid" 2>/dev/null
	return 0
}
stop_server() {  # stop_server NAME; its log is kept in raw/
	local s=$1
	[ -n "${PIDS[$s]:-}" ] || return 0
	stop_pid "${PIDS[$s]}" "$s"
	PIDS[$s]=
	[ ! -f "${LOGS[$s]:-}" ] || cat "${LOGS[$s]}" >> "$BENCH_OUT/raw/log-$s.txt"
}
cleanup() {
	local p s
	for p in "${BG_PIDS[@]}"; do stop_pid "$p" "client"; done
	for s in "${!PIDS[@]}"; do stop_server "$s"; done
	rm -rf "$WORK" "$CROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ helpers
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b-a)/1e9}'; }
mibps() { awk -v n="$1" -v s="$2" 'BEGIN{if (s>0) printf "%.1f", n/1048576/s; else print "NA"}'; }
kib2mib() { awk -v k="$1" 'BEGIN{if (k ~ /^[0-9]+$/) printf "%.1f", k/1024; else print "NA"}'; }
median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "NA"; exit}
	if (NR%2) print a[(NR+1)/2]; else printf "%.4g\n", (a[NR/2]+a[NR/2+1])/2}'; }
total() { tr ' ' '\n' | { grep -v '^$' || true; } | awk '{t+=$1} END {if (NR==0) print "NA"; else print t+0}'; }
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
status_kib() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status" 2>/dev/null; }
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }
cpu_secs() { awk -v a="$1" -v b="$2" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}'; }
# the order of the sides in round I: alternate so neither always goes first
order() { if [ $(( $1 % 2 )) = 1 ]; then echo "$2 $3"; else echo "$3 $2"; fi; }

# Results: VALS["column|metric"] = space-separated per-run values, for the
# columns direct, warm and cold (berth-edge with a warm or an empty cache).
declare -A VALS=() MLABEL=() MUNIT=() MBETTER=()
METRICS=()
add() {  # add COLUMN LABEL UNIT BETTER(higher|lower|-) VALUE
	local m="$2|$3"
	if [ -z "${MUNIT[$m]+x}" ]; then METRICS+=("$m"); MLABEL[$m]=$2; MUNIT[$m]=$3; MBETTER[$m]=$4; fi
	VALS["$1|$m"]="${VALS["$1|$m"]:-} $5"
}
med() { echo "${VALS["$1|$2"]:-}" | if [ "${2##*|}" = count ]; then total; else median; fi; }

# ------------------------------------------------------------------ content
# 1 GiB of AES-128-CTR keystream with a fixed key and IV: the same bytes as
# bench/run.sh's test file, so both scripts share it in BENCH_CACHE.
BIG=$BENCH_CACHE/blob-1g.bin
if [ ! -f "$BIG" ] || [ "$(stat -c %s "$BIG")" != "$BIG_SIZE" ] || [ ! -s "$BIG.sha256" ]; then
	log "making the 1 GiB test file in $BENCH_CACHE (once)"
	rm -f "$BIG" "$BIG.sha256"
	head -c "$BIG_SIZE" /dev/zero | openssl enc -aes-128-ctr \
		-K 62657274682d62656e63682d6b657931 -iv 62657274682d62656e63682d69763031 > "$BIG.tmp" || die "openssl failed"
	sha256sum "$BIG.tmp" | cut -d' ' -f1 > "$BIG.sha256.tmp"
	mv "$BIG.tmp" "$BIG"; mv "$BIG.sha256.tmp" "$BIG.sha256"
fi
BIG_DIG=sha256:$(cat "$BIG.sha256")
[ "$BIG_DIG" = "sha256:$BIG_EXPECT" ] || log "note: the 1 GiB file's digest $BIG_DIG differs from the expected sha256:$BIG_EXPECT"

# The image's layers: one keystream (another IV) of LAYERS * LAYER_SIZE
# bytes cut into LAYERS files, and their digests, kept in BENCH_CACHE.
LDIR=$BENCH_CACHE/layers-${LAYERS}x$LAYER_SIZE
if [ ! -s "$LDIR/digests" ]; then
	log "making $LAYERS layers of $LAYER_SIZE bytes in $LDIR (once)"
	rm -rf "$LDIR" "$LDIR.tmp"; mkdir -p "$LDIR.tmp"
	head -c $((LAYERS * LAYER_SIZE)) /dev/zero | openssl enc -aes-128-ctr \
		-K 62657274682d62656e63682d6b657931 -iv 62657274682d65646765206c61796572 \
		| (cd "$LDIR.tmp" && split -b "$LAYER_SIZE" -d -a 3 - layer-) || die "making the layers failed"
	(cd "$LDIR.tmp" && sha256sum layer-* | awk '{print "sha256:" $1, $2}') > "$LDIR.tmp/digests.tmp"
	mv "$LDIR.tmp/digests.tmp" "$LDIR.tmp/digests"; mv "$LDIR.tmp" "$LDIR"
fi
[ "$(wc -l < "$LDIR/digests")" = "$LAYERS" ] || die "$LDIR/digests does not list $LAYERS layers"

# configs and manifests (small, made each time with jq; deterministic)
IMG=$WORK/img; mkdir -p "$IMG"
make_image() {  # make_image NAME DIGESTS-FILE LAYER-SIZE: config + manifest in $IMG/NAME.{config,manifest}
	local n=$1 list=$2 size=$3
	jq -R -s -c '{architecture:"amd64", os:"linux", created:"2026-01-01T00:00:00Z", config:{},
		rootfs:{type:"layers", diff_ids:(split("\n") | map(select(length > 0) | split(" ")[0]))}}' \
		< "$list" | tr -d '\n' > "$IMG/$n.config"
	jq -R -s -c --arg mt "$OCI_MANIFEST" --arg ct "$OCI_CONFIG" --arg lt "$OCI_LAYER" --argjson ls "$size" \
		--arg c "sha256:$(sha256sum "$IMG/$n.config" | cut -d' ' -f1)" --argjson cs "$(stat -c %s "$IMG/$n.config")" \
		'{schemaVersion:2, mediaType:$mt, config:{mediaType:$ct, digest:$c, size:$cs},
		layers:(split("\n") | map(select(length > 0) | {mediaType:$lt, digest:split(" ")[0], size:$ls}))}' \
		< "$list" | tr -d '\n' > "$IMG/$n.manifest"
}
echo "$BIG_DIG blob-1g.bin" > "$IMG/big.list"
make_image big "$IMG/big.list" "$BIG_SIZE"
make_image many "$LDIR/digests" "$LAYER_SIZE"
BIG_CFG=sha256:$(sha256sum "$IMG/big.config" | cut -d' ' -f1)
BIG_MAN=sha256:$(sha256sum "$IMG/big.manifest" | cut -d' ' -f1)
MANY_CFG=sha256:$(sha256sum "$IMG/many.config" | cut -d' ' -f1)
MANY_MAN=sha256:$(sha256sum "$IMG/many.manifest" | cut -d' ' -f1)
MANY_BYTES=$(( LAYERS * LAYER_SIZE + $(stat -c %s "$IMG/many.config") ))
BIG_REPO=$TENANT/edge-big     # the 1 GiB layer; its small manifest is the ab target
MANY_REPO=$TENANT/edge-many   # the many-layer image
# keep the content in the page cache so the client's disk reads are not measured
cat "$BIG" "$LDIR"/layer-* > /dev/null

# ------------------------------------------------------------------ servers
wait_up() {  # wait_up NAME [curl args]: GET /v2/ answers 200 within ~10 s
	local s=$1 code=000; shift
	for _ in $(seq 1 100); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" "${URLS[$s]}/v2/")
		[ "$code" = 200 ] && return 0
		kill -0 "${PIDS[$s]}" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 30 "${LOGS[$s]}" >&2
	die "$s did not answer GET /v2/ with 200 (last status $code)"
}
BERTH_KEY=
start_berthd() {
	local d=$WORK/berthd port out
	mkdir -p "$d/data"
	port=$(free_port)
	{
		printf 'log:\n  level: warn\n  accesslog:\n    disabled: true\n'
		printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$d/data"
		printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
		# every client here is 127.0.0.1, berth-edge's upstream connections
		# too: the default limit of 64 per address would cut ab's 64
		printf '  max_connections_per_address: 1024\n'
	} > "$d/config.yml"
	# auth on (berthd's default): the account is the tenant the repositories
	# live under; one key (push and pull) for the pushes, direct pulls and
	# berth-edge's upstream requests
	out=$("$BERTHD" account create --id "$TENANT" --data-dir "$d/data" 2> "$d/admin.log") \
		|| { cat "$d/admin.log" >&2; die "berthd account create failed"; }
	[ "$out" = "$TENANT" ] || die "berthd account create printed '$out', expected $TENANT"
	out=$("$BERTHD" key create --account "$TENANT" --data-dir "$d/data" 2>> "$d/admin.log") \
		|| { cat "$d/admin.log" >&2; die "berthd key create failed"; }
	BERTH_KEY=${out#* }
	[[ $BERTH_KEY =~ ^brt_[0-9a-f]{64}$ ]] || die "berthd key create printed '$out', expected '<key id> <access key>'"
	printf '%s\n' "$BERTH_KEY" > "$WORK/edge.key"; chmod 600 "$WORK/edge.key"
	LOGS[berthd]=$d/server.log; URLS[berthd]=http://127.0.0.1:$port
	"$BERTHD" serve --config "$d/config.yml" > "$d/server.log" 2>&1 < /dev/null &
	PIDS[berthd]=$!
	wait_up berthd -H "Authorization: Bearer $BERTH_KEY"
	# authentication must be on, or the direct side skips work the edge's upstream does
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${URLS[berthd]}/v2/")" = 401 ] \
		|| die "berthd answered GET /v2/ without credentials with something else than 401"
	log "started berthd PID ${PIDS[berthd]} on ${URLS[berthd]}"
}
EDGE_SEQ=0
declare -A CACHEDIR=()
start_edge() {  # start_edge NAME: berth-edge in front of berthd with an empty cache dir
	local s=$1 port d
	d=$WORK/edge-$s-$((++EDGE_SEQ)); mkdir -p "$d" "$CROOT/cache-$EDGE_SEQ"
	port=$(free_port)
	LOGS[$s]=$d/edge.log; URLS[$s]=http://127.0.0.1:$port; CACHEDIR[$s]=$CROOT/cache-$EDGE_SEQ
	"$BERTH_EDGE" --listen "127.0.0.1:$port" --upstream "${URLS[berthd]}" --access-key-file "$WORK/edge.key" \
		--cache-dir "${CACHEDIR[$s]}" ${EDGE_THREADS:+--threads "$EDGE_THREADS"} > "$d/edge.log" 2>&1 < /dev/null &
	PIDS[$s]=$!
	wait_up "$s"
}
drop_edge() {  # drop_edge NAME: stop it and delete its cache
	stop_server "$1"
	rm -rf "${CACHEDIR[$1]}"
}
# edge_count NAME RESULT: berth-edge's counter of requests with RESULT (hit, miss, ...) from /metrics
edge_count() {
	curl -s --max-time 5 "${URLS[$1]}/metrics" | awk -v r="$2" '$0 ~ "result=\"" r "\"" {print $NF; f=1} END {if (!f) print 0}'
}

upload_blob() {  # upload_blob REPO FILE DIGEST: POST + PUT with the key; prints the PUT's status
	local repo=$1 file=$2 dig=$3 url=${URLS[berthd]} loc put
	loc=$(curl -s --max-time 30 -H "Authorization: Bearer $BERTH_KEY" -o /dev/null -D - -X POST -H 'Content-Length: 0' \
		"$url/v2/$repo/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}' | tail -n 1)
	[ -n "$loc" ] || { echo "no-location"; return 0; }
	case $loc in /*) loc=$url$loc ;; esac
	case $loc in *\?*) put="$loc&digest=$dig" ;; *) put="$loc?digest=$dig" ;; esac
	curl -s --max-time 900 -H "Authorization: Bearer $BERTH_KEY" -o /dev/null -w '%{http_code}' -T "$file" -H 'Expect:' \
		-H 'Content-Type: application/octet-stream' "$put" || echo "curl-failed"
}
push_image() {  # push_image REPO NAME DIGESTS-FILE DIR: layers, config, manifest tagged v1
	local repo=$1 n=$2 list=$3 dir=$4 dig f code
	while read -r dig f; do
		code=$(upload_blob "$repo" "$dir/$f" "$dig"); [ "$code" = 201 ] || die "push of $f to $repo gave $code"
	done < "$list"
	code=$(upload_blob "$repo" "$IMG/$n.config" "sha256:$(sha256sum "$IMG/$n.config" | cut -d' ' -f1)")
	[ "$code" = 201 ] || die "push of the $n config gave $code"
	code=$(curl -s --max-time 30 -H "Authorization: Bearer $BERTH_KEY" -o /dev/null -w '%{http_code}' -X PUT \
		-H "Content-Type: $OCI_MANIFEST" --data-binary @"$IMG/$n.manifest" "${URLS[berthd]}/v2/$repo/manifests/v1")
	[ "$code" = 201 ] || die "push of the $n manifest gave $code"
}

# ------------------------------------------------------------------ memory
# rss_now PID: "VmRSS RssAnon RssFile Pss" in KiB
rss_now() {
	echo "$(status_kib "$1" VmRSS) $(status_kib "$1" RssAnon) $(status_kib "$1" RssFile)" \
		"$(awk '$1=="Pss:"{print $2}' "/proc/$1/smaps_rollup" 2>/dev/null)"
}
# rss_add COLUMN WHEN PID: the four figures as metrics "RSS WHEN (...)"
rss_add() {
	local vm an fi ps
	read -r vm an fi ps <<<"$(rss_now "$3")"
	add "$1" "RSS $2: VmRSS" MiB lower "$(kib2mib "$vm")"
	add "$1" "RSS $2: RssAnon" MiB lower "$(kib2mib "$an")"
	add "$1" "RSS $2: RssFile" MiB lower "$(kib2mib "$fi")"
	add "$1" "RSS $2: Pss" MiB lower "$(kib2mib "$ps")"
}
# smaps_top PID FILE: resident KiB per mapped object (library, binary, heap,
# anonymous, stack), summed over its mappings, largest first
smaps_top() {
	awk '
	/^[0-9a-f]+-[0-9a-f]+ / { name = (NF >= 6) ? $6 : "[anonymous]"; sub(/^.*\//, "", name); next }
	$1 == "Rss:" { rss[name] += $2 } $1 == "Pss:" { pss[name] += $2 }
	$1 == "Anonymous:" { anon[name] += $2 } $1 == "Private_Dirty:" { pd[name] += $2 }
	END { for (n in rss) if (rss[n] > 0) printf "%d\t%d\t%d\t%d\t%s\n", rss[n], pss[n], anon[n], pd[n], n }
	' "/proc/$1/smaps" | sort -t "$(printf '\t')" -k1,1nr > "$2.tmp"
	{ printf 'rss_kib\tpss_kib\tanon_kib\tprivate_dirty_kib\tmapping\n'; cat "$2.tmp"; } > "$2"
	rm -f "$2.tmp"
}
# A sampler every 50 ms of "VmRSS RssAnon RssFile Pss" (KiB) of a PID into a
# file, until a stop file appears (bounded: 30 min).  Python, so the 50 ms
# period does not cost a process start per sample.
SAMPLER_PY='
import os, sys, time
pid, out, stop = sys.argv[1:4]
def field(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return line.split()[1]
    except OSError:
        return None
    return "NA"
with open(out, "w") as o:
    for _ in range(36000):
        if os.path.exists(stop):
            break
        st = "/proc/%s/status" % pid
        vals = [field(st, "VmRSS:"), field(st, "RssAnon:"), field(st, "RssFile:"),
                field("/proc/%s/smaps_rollup" % pid, "Pss:")]
        if None in vals:
            break
        o.write(" ".join(vals) + "\n")
        o.flush()
        time.sleep(0.05)
'
SAMPLER_PID=
sampler_start() {  # sampler_start PID FILE
	rm -f "$WORK/sampler.stop"
	python3 -c "$SAMPLER_PY" "$1" "$2" "$WORK/sampler.stop" &
	SAMPLER_PID=$!; BG_PIDS+=("$SAMPLER_PID")
}
sampler_stop() {
	touch "$WORK/sampler.stop"
	wait "$SAMPLER_PID" 2>/dev/null
	SAMPLER_PID=
	# the clients were waited for before: none of these PIDs is ours any more
	BG_PIDS=()
}
col_max() { awk -v c="$2" '$c ~ /^[0-9]+$/ && $c > m {m = $c} END {print m + 0}' "$1"; }

# ------------------------------------------------------------------ pulls
# pull_big COLUMN RUN URL [curl args]: one timed GET of the 1 GiB blob
pull_big() {
	local col=$1 i=$2 url=$3 out code t n e0 e1 b0 b1 epid=${PIDS[$1]:-}; shift 3
	sync
	[ -z "$epid" ] || e0=$(cpu_ticks "$epid"); b0=$(cpu_ticks "${PIDS[berthd]}")
	out=$(curl -s --max-time 600 -o /dev/null -w '%{http_code} %{time_total} %{size_download}' "$@" \
		"$url/v2/$BIG_REPO/blobs/$BIG_DIG")
	b1=$(cpu_ticks "${PIDS[berthd]}"); [ -z "$epid" ] || e1=$(cpu_ticks "$epid")
	read -r code t n <<<"$out"
	[ "$code" = 200 ] && [ "$n" = "$BIG_SIZE" ] || die "$col: GET of the 1 GiB blob gave '$out'"
	t=$(awk -v t="$t" 'BEGIN{printf "%.3f", t}')
	add "$col" "1 GiB layer, curl GET -> /dev/null" s lower "$t"
	add "$col" "1 GiB layer, curl GET" MiB/s higher "$(mibps "$BIG_SIZE" "$t")"
	add "$col" "1 GiB layer: berthd CPU" s lower "$(cpu_secs "$b0" "$b1")"
	[ -z "$epid" ] || add "$col" "1 GiB layer: berth-edge CPU" s lower "$(cpu_secs "$e0" "$e1")"
	log "  $col 1 GiB run $i: $t s"
}
# Curl config files listing the image's blobs (config first, then the
# layers) for a base URL: one curl process fetches them all in order on one
# connection, or PARALLEL at a time with --parallel.
blob_list() {  # blob_list URL FILE
	{
		printf 'url = "%s/v2/%s/blobs/%s"\noutput = "/dev/null"\n' "$1" "$MANY_REPO" "$MANY_CFG"
		awk -v u="$1/v2/$MANY_REPO/blobs/" '{printf "url = \"%s%s\"\noutput = \"/dev/null\"\n", u, $1}' "$LDIR/digests"
	} > "$2"
}
# pull_image COLUMN RUN MODE(seq|par) URL [curl args]: manifest by tag, then
# every blob; wall time of both
pull_image() {
	local col=$1 i=$2 mode=$3 url=$4 list=$WORK/blobs.curl t0 t1 out par=() sec n bytes bad; shift 4
	blob_list "$url" "$list"
	[ "$mode" = par ] && par=(--parallel --parallel-max "$PARALLEL")
	sync
	t0=$(now_ns)
	out=$(curl -s --max-time 60 -o /dev/null -w '%{http_code}' -H "Accept: $OCI_MANIFEST" "$@" \
		"$url/v2/$MANY_REPO/manifests/v1")
	[ "$out" = 200 ] || die "$col: GET of the image manifest gave $out"
	curl -s --no-progress-meter --max-time 600 "${par[@]}" -w '%{http_code} %{size_download}\n' "$@" -K "$list" > "$WORK/pull.out"
	t1=$(now_ns)
	n=$(wc -l < "$WORK/pull.out"); bytes=$(awk '{s += $2} END {print s + 0}' "$WORK/pull.out")
	bad=$(awk '$1 != 200' "$WORK/pull.out" | wc -l)
	[ "$n" = $((LAYERS + 1)) ] && [ "$bad" = 0 ] && [ "$bytes" = "$MANY_BYTES" ] \
		|| die "$col: $mode pull of the image: $n transfers, $bad not 200, $bytes of $MANY_BYTES bytes"
	sec=$(secs "$t0" "$t1")
	local what="$LAYERS-layer image, $mode"; [ "$mode" = par ] && what+=" ($PARALLEL connections)"
	add "$col" "$what" s lower "$sec"
	add "$col" "$what" MiB/s higher "$(mibps "$MANY_BYTES" "$sec")"
	log "  $col $mode image run $i: $sec s"
}

# ab_run COLUMN RUN LABEL URL [ab args]: one ab run, its figures as metrics "LABEL ..."
ab_run() {
	local col=$1 i=$2 m=$3 url=$4 out code rps p50 p99 ndone failed non2xx e0 e1 b0 b1 epid=${PIDS[$1]:-}
	local chk=() a; shift 4
	# the same headers once with curl: the request must succeed before its rate means anything
	for a in "$@"; do [ "$a" = -H ] || chk+=(-H "$a"); done
	code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "${chk[@]}" "$url")
	[ "$code" = 200 ] || die "$col: check request for '$m' gave $code, not 200"
	out=$BENCH_OUT/raw/ab-${m//[^A-Za-z0-9]/_}-$col-$i.txt
	[ -z "$epid" ] || e0=$(cpu_ticks "$epid"); b0=$(cpu_ticks "${PIDS[berthd]}")
	timeout $((AB_SECONDS + 60)) ab -k -c "$AB_CONNS" -t "$AB_SECONDS" -n 10000000 "$@" "$url" > "$out" 2>&1
	b1=$(cpu_ticks "${PIDS[berthd]}"); [ -z "$epid" ] || e1=$(cpu_ticks "$epid")
	grep -q '^Requests per second' "$out" || { cat "$out" >&2; die "$col: ab '$m' failed"; }
	rps=$(awk '/^Requests per second/{print $4}' "$out")
	p50=$(awk '$1=="50%"{print $2}' "$out"); p99=$(awk '$1=="99%"{print $2}' "$out")
	ndone=$(awk '/^Complete requests/{print $3}' "$out")
	failed=$(awk '/^Failed requests/{print $3}' "$out")
	non2xx=$(awk '/^Non-2xx responses/{print $3}' "$out"); non2xx=${non2xx:-0}
	add "$col" "$m" req/s higher "$rps"
	add "$col" "$m p50 / p99 latency" "ms" lower "$p50/$p99"
	add "$col" "$m p99 latency" ms lower "$p99"
	add "$col" "$m failed + non-2xx" count lower "$((failed + non2xx))"
	add "$col" "$m: berthd CPU per request" µs lower "$(awk -v a="$b0" -v b="$b1" -v t="$CLK_TCK" -v n="$ndone" \
		'BEGIN{if (n>0) printf "%.0f", (b-a)/t/n*1e6; else print "NA"}')"
	[ -z "$epid" ] || add "$col" "$m: berth-edge CPU per request" µs lower "$(awk -v a="$e0" -v b="$e1" -v t="$CLK_TCK" -v n="$ndone" \
		'BEGIN{if (n>0) printf "%.0f", (b-a)/t/n*1e6; else print "NA"}')"
	[ "$((failed + non2xx))" = 0 ] || log "  WARNING: $col $m run $i: $failed failed, $non2xx non-2xx of $ndone"
	log "  $col $m run $i: $rps req/s p50 $p50 ms p99 $p99 ms"
}

# stream_many COLUMN RUN: STREAM_CLIENTS curls pull the 1 GiB blob at once
# from berth-edge COLUMN; its memory sampled every 50 ms meanwhile
stream_many() {
	local col=$1 i=$2 pid=${PIDS[$1]} samples=$BENCH_OUT/raw/rss-stream-$1-$2.txt c pids=() t0 t1 bad=0 hwm
	sync
	# reset VmHWM (peak RSS) to the current RSS, where the kernel allows it
	echo 5 > "/proc/$pid/clear_refs" 2>/dev/null || true
	sampler_start "$pid" "$samples"
	t0=$(now_ns)
	for c in $(seq 1 "$STREAM_CLIENTS"); do
		curl -s --max-time 600 -o /dev/null -w '%{http_code} %{size_download}\n' \
			"${URLS[$col]}/v2/$BIG_REPO/blobs/$BIG_DIG" > "$WORK/stream-$c.out" &
		pids+=($!); BG_PIDS+=($!)
	done
	for c in "${pids[@]}"; do wait "$c" || bad=$((bad + 1)); done
	t1=$(now_ns)
	sampler_stop
	hwm=$(status_kib "$pid" VmHWM)
	for c in $(seq 1 "$STREAM_CLIENTS"); do
		[ "$(cat "$WORK/stream-$c.out")" = "200 $BIG_SIZE" ] || bad=$((bad + 1))
	done
	[ "$bad" = 0 ] || die "$col: $bad of the $STREAM_CLIENTS streams of the 1 GiB blob failed"
	local w="$STREAM_CLIENTS clients x 1 GiB at once"
	add "$col" "$w: wall time" s lower "$(secs "$t0" "$t1")"
	add "$col" "$w: total" MiB/s higher "$(mibps $((STREAM_CLIENTS * BIG_SIZE)) "$(secs "$t0" "$t1")")"
	add "$col" "RSS peak, $w: VmRSS" MiB lower "$(kib2mib "$(col_max "$samples" 1)")"
	add "$col" "RSS peak, $w: RssAnon" MiB lower "$(kib2mib "$(col_max "$samples" 2)")"
	add "$col" "RSS peak, $w: RssFile" MiB lower "$(kib2mib "$(col_max "$samples" 3)")"
	add "$col" "RSS peak, $w: Pss" MiB lower "$(kib2mib "$(col_max "$samples" 4)")"
	add "$col" "RSS peak, $w: VmHWM" MiB lower "$(kib2mib "$hwm")"
	add "$col" "RSS samples while streaming (50 ms apart, or later when the CPUs are busy)" samples - "$(wc -l < "$samples")"
	log "  $col $STREAM_CLIENTS streams run $i: $(secs "$t0" "$t1") s, peak VmRSS $(kib2mib "$(col_max "$samples" 1)") MiB ($(wc -l < "$samples") samples), VmHWM $(kib2mib "$hwm") MiB"
}

# ------------------------------------------------------------------ run
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(now_ns)
log "bench: berth-edge vs berthd, runs $RUNS, groups '$BENCH_ONLY', out $BENCH_OUT"
start_berthd
log "pushing the content to berthd (untimed)"
push_image "$BIG_REPO" big "$IMG/big.list" "$BENCH_CACHE"
push_image "$MANY_REPO" many "$LDIR/digests" "$LDIR"
AUTH=(-H "Authorization: Bearer $BERTH_KEY")

# the warm berth-edge: started once, filled once (untimed), then measured
start_edge warm
sleep 0.5
EDGE_THREADS_SEEN=$(status_kib "${PIDS[warm]}" Threads)
if want rss; then
	rss_add warm "idle after start" "${PIDS[warm]}"
	smaps_top "${PIDS[warm]}" "$BENCH_OUT/raw/smaps-edge-idle-start.txt"
	cp "/proc/${PIDS[warm]}/smaps" "$BENCH_OUT/raw/smaps-edge-idle-start-full.txt"
fi
log "filling the warm berth-edge's cache (untimed)"
out=$(curl -s --max-time 600 -o "$WORK/check.bin" -w '%{http_code}' "${URLS[warm]}/v2/$BIG_REPO/blobs/$BIG_DIG")
[ "$out" = 200 ] && [ "sha256:$(sha256sum "$WORK/check.bin" | cut -d' ' -f1)" = "$BIG_DIG" ] \
	|| die "the 1 GiB blob through berth-edge: status $out or wrong content"
rm -f "$WORK/check.bin"
out=$(curl -s --max-time 60 -o /dev/null -w '%{http_code}' -H "Accept: $OCI_MANIFEST" "${URLS[warm]}/v2/$MANY_REPO/manifests/v1")
[ "$out" = 200 ] || die "the image manifest through berth-edge: status $out"
blob_list "${URLS[warm]}" "$WORK/fill.curl"
curl -s --max-time 600 -w '%{http_code}\n' -K "$WORK/fill.curl" > "$WORK/fill.out"
[ "$(grep -c '^200$' "$WORK/fill.out")" = $((LAYERS + 1)) ] || die "filling the cache with the image's blobs failed"
for ref in "$BIG_MAN" v1; do
	out=$(curl -s --max-time 60 -o /dev/null -w '%{http_code}' -H "Accept: $OCI_MANIFEST" "${URLS[warm]}/v2/$BIG_REPO/manifests/$ref")
	[ "$out" = 200 ] || die "the small manifest $ref through berth-edge: status $out"
done
MISSES_FILLED=$(edge_count warm miss)
find "${CACHEDIR[warm]}" -type f -exec cat {} + > /dev/null

for i in $(seq 1 "$RUNS"); do
	log "round $i of $RUNS"
	if want big; then
		for s in $(order "$i" direct warm); do
			if [ "$s" = direct ]; then pull_big direct "$i" "${URLS[berthd]}" "${AUTH[@]}"
			else pull_big warm "$i" "${URLS[warm]}"; fi
		done
		start_edge cold; pull_big cold "$i" "${URLS[cold]}"; drop_edge cold
	fi
	if want image; then
		for mode in seq par; do
			for s in $(order "$i" direct warm); do
				if [ "$s" = direct ]; then pull_image direct "$i" "$mode" "${URLS[berthd]}" "${AUTH[@]}"
				else pull_image warm "$i" "$mode" "${URLS[warm]}"; fi
			done
			start_edge cold; pull_image cold "$i" "$mode" "${URLS[cold]}"; drop_edge cold
		done
	fi
	if want rate; then
		for what in digest tag; do
			if [ "$what" = digest ]; then ref=$BIG_MAN; else ref=v1; fi
			for s in $(order "$i" direct warm); do
				if [ "$s" = direct ]; then
					ab_run direct "$i" "ab GET manifest by $what c$AB_CONNS" "${URLS[berthd]}/v2/$BIG_REPO/manifests/$ref" \
						-H "Accept: $OCI_MANIFEST" -H "Authorization: Bearer $BERTH_KEY"
				else
					ab_run warm "$i" "ab GET manifest by $what c$AB_CONNS" "${URLS[warm]}/v2/$BIG_REPO/manifests/$ref" \
						-H "Accept: $OCI_MANIFEST"
				fi
			done
		done
	fi
	if want rss; then
		stream_many warm "$i"
		start_edge cold; stream_many cold "$i"; drop_edge cold
	fi
done
# the warm runs must all have been hits: no download after the cache was filled
MISSES_END=$(edge_count warm miss)
[ "$MISSES_END" = "$MISSES_FILLED" ] || log "WARNING: the warm berth-edge missed $((MISSES_END - MISSES_FILLED)) times during the runs"
curl -s --max-time 5 "${URLS[warm]}/metrics" > "$BENCH_OUT/raw/metrics-edge-warm.txt"
if want rss; then
	sleep 1
	rss_add warm "idle after the runs" "${PIDS[warm]}"
	smaps_top "${PIDS[warm]}" "$BENCH_OUT/raw/smaps-edge-idle-end.txt"
	cp "/proc/${PIDS[warm]}/smaps" "$BENCH_OUT/raw/smaps-edge-idle-end-full.txt"
	add warm "peak RSS over the whole run (VmHWM, since the last reset)" MiB lower "$(kib2mib "$(status_kib "${PIDS[warm]}" VmHWM)")"
	add direct "berthd RSS after the runs: VmRSS" MiB lower "$(kib2mib "$(status_kib "${PIDS[berthd]}" VmRSS)")"
	add direct "berthd RSS after the runs: RssAnon" MiB lower "$(kib2mib "$(status_kib "${PIDS[berthd]}" RssAnon)")"
fi
for s in berthd warm; do
	kill -0 "${PIDS[$s]}" 2>/dev/null || { tail -n 50 "${LOGS[$s]}" >&2; die "$s (PID ${PIDS[$s]}) died during the run"; }
done
EDGE_LOG_LINES=$(wc -l < "${LOGS[warm]}")
for s in warm berthd; do stop_server "$s"; done
# berth-edge's access log has a line per request (over a million with the ab
# runs): kept compressed
if command -v gzip >/dev/null; then gzip -f "$BENCH_OUT"/raw/log-*.txt; fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(secs "$T_START" "$(now_ns)")

# ------------------------------------------------------------------ report
COLS=(direct warm cold)
# p50/p99 pairs: median of each half
pair_med() { local v=${VALS["$1|$2"]:-}; [ -n "$v" ] || { echo "–"; return; }
	echo "$(echo $v | tr ' ' '\n' | cut -d/ -f1 | median)/$(echo $v | tr ' ' '\n' | cut -d/ -f2 | median)"; }
cell() { if [ -z "${VALS["$1|$2"]:-}" ]; then echo "–"; elif [[ $2 == *"p50 / p99"* ]]; then pair_med "$1" "$2"; else med "$1" "$2"; fi; }
RES=$BENCH_OUT/results.tsv
printf 'metric\tunit\tbetter\tcolumn\tmedian_or_sum\truns\n' > "$RES"
for m in "${METRICS[@]}"; do
	for c in "${COLS[@]}"; do
		v=${VALS["$c|$m"]:-}
		[ -n "$v" ] || continue
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${MLABEL[$m]}" "${MUNIT[$m]}" "${MBETTER[$m]}" "$c" \
			"$(cell "$c" "$m")" "$(echo $v | tr ' ' ',')" >> "$RES"
	done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a ~ /^[0-9.eE+-]+$/ && b ~ /^[0-9.eE+-]+$/ && a+0 != 0) printf "%.2f", b/a; else print "–" }'; }
# verdict VALUE OP LIMIT: ✔ or ✘
verdict() { awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN{ if (v !~ /^[0-9.]+$/) {print "?"; exit}
	ok = (op == "<=") ? (v+0 <= l+0) : (v+0 < l+0); print ok ? "✔" : "✘" }'; }
cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
gitrev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
gitdirty=$(git -C "$ROOT" status --porcelain -- src 2>/dev/null | head -n 1)
# binaries from elsewhere (BERTHD=..., BERTH_EDGE=...) are not this tree's source
case $BERTHD_SRC in "$ROOT"/*) ;; *) gitrev="unknown (binaries from outside $ROOT)"; gitdirty= ;; esac
fsinfo=$(df -T "$WORK" 2>/dev/null | awk 'NR==2{print $2" on "$1}')
TABLE=$BENCH_OUT/table.md
{
	echo "Machine: $(nproc) CPUs ($cpu_model), $(awk '/^MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r); data and cache on $fsinfo."
	echo "Load average before: $LOAD_BEFORE; after: $LOAD_AFTER. Runs: $RUNS (median shown), interleaved; ab ${AB_SECONDS}s at $AB_CONNS connections; ${ELAPSED} s in all."
	echo "berthd and berth-edge from $BERTHD_SRC, source $gitrev${gitdirty:+ (uncommitted changes in src/)}; berth-edge ${EDGE_THREADS_SEEN:-?} threads at start (--threads ${EDGE_THREADS:-default})."
	[ "$CROOT" = "$WORK" ] || echo "berth-edge's cache on $(df -T "$CROOT" 2>/dev/null | awk 'NR==2{print $2" on "$1}')."
	echo "direct = berthd with the Bearer access key; warm = through berth-edge, content cached; cold = through a fresh berth-edge with an empty --cache-dir."
	echo
	echo "| metric | unit | better | direct | edge warm | edge cold | warm/direct | cold/direct |"
	echo "|---|---|---|---:|---:|---:|---:|---:|"
	for m in $(for k in "${!METRICS[@]}"; do [[ ${METRICS[$k]} == *RSS* ]] || echo "$k"; done) \
		$(for k in "${!METRICS[@]}"; do [[ ${METRICS[$k]} != *RSS* ]] || echo "$k"; done); do
		m=${METRICS[$m]}
		[[ ${MLABEL[$m]} == *" p99 latency" ]] && continue   # shown in the p50 / p99 row
		unit=${MUNIT[$m]}; [ "$unit" != count ] || unit="count (sum of runs)"
		d=$(cell direct "$m"); w=$(cell warm "$m"); c=$(cell cold "$m")
		rw=–; rc=–
		if [[ $m != *"p50 / p99"* ]]; then rw=$(ratio "$d" "$w"); rc=$(ratio "$d" "$c"); fi
		echo "| ${MLABEL[$m]} | $unit | ${MBETTER[$m]} | $d | $w | $c | $rw | $rc |"
	done
	echo
	echo "Targets (time ratios are edge/direct of the median seconds):"
	echo
	echo "| target | measured | |"
	echo "|---|---:|---|"
	t() {  # t LABEL COLUMN METRIC OP LIMIT [ratio]: one target row
		local v
		if [ "${6:-}" = ratio ]; then v=$(ratio "$(med direct "$3")" "$(med "$2" "$3")"); else v=$(med "$2" "$3"); fi
		[ "$v" != NA ] && [ "$v" != – ] || return 0
		echo "| $1 | $v | $(verdict "$v" "$4" "$5") |"
	}
	t "1 GiB layer, warm: time ≤ 1.10 × direct" warm "1 GiB layer, curl GET -> /dev/null|s" "<=" 1.10 ratio
	t "$LAYERS-layer image seq, warm: ≤ 1.10 × direct" warm "$LAYERS-layer image, seq|s" "<=" 1.10 ratio
	t "$LAYERS-layer image par, warm: ≤ 1.10 × direct" warm "$LAYERS-layer image, par ($PARALLEL connections)|s" "<=" 1.10 ratio
	t "1 GiB layer, cold: time < 1.15 × direct" cold "1 GiB layer, curl GET -> /dev/null|s" "<" 1.15 ratio
	t "$LAYERS-layer image seq, cold: < 1.15 × direct" cold "$LAYERS-layer image, seq|s" "<" 1.15 ratio
	t "$LAYERS-layer image par, cold: < 1.15 × direct" cold "$LAYERS-layer image, par ($PARALLEL connections)|s" "<" 1.15 ratio
	t "idle after start: VmRSS < 6 MiB" warm "RSS idle after start: VmRSS|MiB" "<" 6
	t "idle after the runs: VmRSS < 6 MiB" warm "RSS idle after the runs: VmRSS|MiB" "<" 6
	t "$STREAM_CLIENTS clients from the cache: peak VmRSS < 12 MiB" warm "RSS peak, $STREAM_CLIENTS clients x 1 GiB at once: VmRSS|MiB" "<" 12
	t "$STREAM_CLIENTS clients on one download: peak VmRSS < 12 MiB" cold "RSS peak, $STREAM_CLIENTS clients x 1 GiB at once: VmRSS|MiB" "<" 12
	for f in idle-start idle-end; do
		[ -f "$BENCH_OUT/raw/smaps-edge-$f.txt" ] || continue
		echo
		echo "berth-edge RSS by mapping, ${f/-/ } (KiB; top 12 of $(($(wc -l < "$BENCH_OUT/raw/smaps-edge-$f.txt") - 1)) objects; raw/smaps-edge-$f.txt):"
		echo
		echo "| mapping | Rss | Pss | Anonymous | Private_Dirty |"
		echo "|---|---:|---:|---:|---:|"
		awk -F'\t' 'NR>1 && NR<=13 {printf "| %s | %d | %d | %d | %d |\n", $5, $1, $2, $3, $4}' "$BENCH_OUT/raw/smaps-edge-$f.txt"
		awk -F'\t' 'NR>1 {r+=$1; p+=$2; a+=$3; d+=$4; if ($5 ~ /\.so/) {lr+=$1; lp+=$2}}
			END {printf "| all (shared libraries: Rss %d, Pss %d) | %d | %d | %d | %d |\n", lr, lp, r, p, a, d}' "$BENCH_OUT/raw/smaps-edge-$f.txt"
	done
	echo
	echo "berth-edge's log (access log on): $EDGE_LOG_LINES lines; warm misses after filling: $((MISSES_END - MISSES_FILLED))."
} > "$TABLE"
{
	printf 'id\t%s\nruns\t%s\nload_before\t%s\nload_after\t%s\nnproc\t%s\ncpu\t%s\nsource\t%s\nelapsed_s\t%s\n' \
		"$ID" "$RUNS" "$LOAD_BEFORE" "$LOAD_AFTER" "$(nproc)" "$cpu_model" "$gitrev" "$ELAPSED"
} > "$BENCH_OUT/meta.tsv"
log ""
log "results: $RES, table: $TABLE, raw client output: $BENCH_OUT/raw"
cat "$TABLE"
