#!/usr/bin/env bash
# Storage lifecycle benchmark (issue 9): what online GC and quotas cost.
#
#   rates   HEAD blob and GET manifest request rates (ab -k, as bench/run.sh)
#           against berthd with the GC worker running continuously
#           (gc: {interval: 1s, grace: 0s}) and with the worker off
#           (gc: {interval: 0s}), while a background loop keeps making
#           garbage on the measured server (push a small image by curl: a
#           unique 4 KiB layer, a config, a manifest under a new tag; then
#           DELETE the tag; CHURN_SLEEP between images, bounded by the run).
#           Both servers run at once, no authentication (as run.sh's rates);
#           runs interleaved (on off, off on, ...), medians.  Target: GC on
#           within 5% of GC off.  Afterwards the objects left in each data
#           directory show that the worker did collect the loop's garbage.
#   pass    one `berthd gc --grace 0s` over a metadata store filled directly
#           (bench/gc_fill.py; the schema made by starting berthd once on a
#           fresh data dir): GC_MANIFESTS manifests of GC_LINKS blobs each
#           (so GC_MANIFESTS * GC_LINKS repository links), GC_GARBAGE percent
#           of the tags deleted (manifests queued), every link queued at link
#           time as the server does.  Measured with /usr/bin/time -v: wall,
#           CPU, max RSS, file system writes; then a second pass with nothing
#           left to do; database size before and after.  The stored objects
#           do not exist (the metadata pass does not need them; removing a
#           missing object from the outbox is ignored).  Done twice: at full
#           size with the data dir on GC_FAST_DIR (tmpfs: commits cost no
#           disk flush, so this is the pass's CPU and memory), and at
#           GC_DISK_MANIFESTS on the disk (TMPDIR), where every one of the
#           pass's transactions waits for its WAL fsync.
#   quota   push throughput with auth on (an account, a key, Basic
#           KEY:<secret>) with the account's quota set (1T, never reached)
#           vs none, on one server, toggled with `berthd account set-quota`
#           between runs: PUSHES monolithic POST ?digest= pushes of distinct
#           1 MiB blobs, PUSH_PAR in parallel (curl, xargs -P), and one
#           256 MiB monolithic push (curl --data-binary @file from tmpfs: curl
#           reads the file into memory first, inside the timing; -T would
#           append the file name to the .../uploads/ path); fresh
#           repositories and fresh digests
#           every run, `sync` before each.  Interleaved, medians.  Target:
#           quota on within 2% of off.
#
# Usage: bench/gc.sh            (BENCH_QUICK=1: a smoke run under a minute)
# Environment (all optional):
#   RUNS=5  GC_ONLY="rates pass quota"  AB_SECONDS=10  AB_CONNS=64
#   GC_MANIFESTS=100000 GC_LINKS=10 GC_GARBAGE=20 GC_DISK_MANIFESTS=2000
#   GC_FAST_DIR=/dev/shm   PUSHES=200 PUSH_PAR=4 BIG_MIB=256
#   CHURN_SLEEP=0.05  LOAD_WAIT=600 (seconds, in all, to wait for a 1-min load <= 1.0)
#   BERTHD=PATH (default build-release/berthd, built (Release) if missing)
#   BENCH_OUT=DIR (default /var/tmp/berth-bench/gc-<time>)
# Loopback only; stops only the processes it started, by PID; removes its
# data directories at the end (results stay in BENCH_OUT).
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	RUNS=${RUNS:-1} AB_SECONDS=${AB_SECONDS:-2} GC_MANIFESTS=${GC_MANIFESTS:-500}
	GC_DISK_MANIFESTS=${GC_DISK_MANIFESTS:-100} PUSHES=${PUSHES:-8} BIG_MIB=${BIG_MIB:-8}
	LOAD_WAIT=${LOAD_WAIT:-0}
fi
RUNS=${RUNS:-5}
GC_ONLY=${GC_ONLY:-rates pass quota}
AB_SECONDS=${AB_SECONDS:-10}
AB_CONNS=${AB_CONNS:-64}
GC_MANIFESTS=${GC_MANIFESTS:-100000}
GC_LINKS=${GC_LINKS:-10}
GC_GARBAGE=${GC_GARBAGE:-20}
GC_DISK_MANIFESTS=${GC_DISK_MANIFESTS:-2000}
GC_FAST_DIR=${GC_FAST_DIR:-/dev/shm}
PUSHES=${PUSHES:-200}
PUSH_PAR=${PUSH_PAR:-4}
BIG_MIB=${BIG_MIB:-256}
CHURN_SLEEP=${CHURN_SLEEP:-0.05}
LOAD_WAIT=${LOAD_WAIT:-600}
ID=$(date +%Y%m%d%H%M%S)-$$
BENCH_OUT=${BENCH_OUT:-/var/tmp/berth-bench/gc-$ID}
TENANT=0146e9b57080961e2c83536300000000
OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json

log() { printf '%s\n' "$*" >&2; }
die() { log "gc.sh: $*"; exit 1; }
want() { [[ " $GC_ONLY " == *" $1 "* ]]; }
for v in RUNS AB_SECONDS AB_CONNS GC_MANIFESTS GC_LINKS GC_GARBAGE GC_DISK_MANIFESTS PUSHES PUSH_PAR BIG_MIB LOAD_WAIT; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number"
done
[ "$RUNS" -ge 1 ] && [ "$RUNS" -le 50 ] || die "RUNS must be 1..50"
[ "$AB_SECONDS" -ge 1 ] && [ "$AB_SECONDS" -le 600 ] || die "AB_SECONDS must be 1..600"
[ "$GC_MANIFESTS" -ge 100 ] && [ "$GC_MANIFESTS" -le 10000000 ] || die "GC_MANIFESTS must be 100..10000000"
[ "$GC_LINKS" -ge 2 ] && [ "$GC_LINKS" -le 100 ] || die "GC_LINKS must be 2..100"
[ "$GC_GARBAGE" -le 100 ] || die "GC_GARBAGE is a percentage"
[ "$PUSHES" -ge 1 ] && [ "$PUSHES" -le 10000 ] || die "PUSHES must be 1..10000"
[ "$PUSH_PAR" -ge 1 ] && [ "$PUSH_PAR" -le 64 ] || die "PUSH_PAR must be 1..64"
[ "$BIG_MIB" -ge 1 ] && [ "$BIG_MIB" -le 4096 ] || die "BIG_MIB must be 1..4096"
for g in $GC_ONLY; do case $g in rates|pass|quota) ;; *) die "unknown GC_ONLY group '$g'" ;; esac; done

for t in curl ab python3 openssl sha256sum timeout awk xargs; do
	command -v "$t" >/dev/null || die "$t is missing (apt-get install curl apache2-utils python3 openssl coreutils)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"

BERTHD=${BERTHD:-$ROOT/build-release/berthd}
if [ ! -x "$BERTHD" ]; then
	log "building berthd (Release) in $ROOT/build-release"
	(cd "$ROOT" && cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null &&
		cmake --build build-release -j"$(nproc)" --target berthd) >&2
	BERTHD=$ROOT/build-release/berthd
fi
[ -x "$BERTHD" ] || die "no berthd binary at $BERTHD"

mkdir -p "$BENCH_OUT/raw"
BENCH_OUT=$(cd "$BENCH_OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/berth-gcbench.XXXXXX")
FAST=
[ -d "$GC_FAST_DIR" ] && want pass && FAST=$(mktemp -d "$GC_FAST_DIR/berth-gcbench.XXXXXX")
SHM=$(mktemp -d "$( [ -d /dev/shm ] && echo /dev/shm || echo "$WORK")/berth-gcbench-push.XXXXXX")
# a private copy: a rebuild during the run changes nothing measured
mkdir -p "$WORK/bin"; cp "$BERTHD" "$WORK/bin/berthd"
BERTHD_SRC=$BERTHD; BERTHD=$WORK/bin/berthd

declare -A SPID=() SURL=() SDIR=()
BGPIDS=()
stop_pid() {  # stop_pid PID: SIGTERM, up to 30 s, then SIGKILL
	local pid=$1
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && { log "PID $pid ignored SIGTERM, killing"; kill -KILL "$pid" 2>/dev/null || true; }
	fi
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	local p s
	for p in "${BGPIDS[@]}"; do stop_pid "$p"; done
	for s in "${!SPID[@]}"; do
		stop_pid "${SPID[$s]}"
		[ ! -f "${SDIR[$s]}/server.log" ] || cp "${SDIR[$s]}/server.log" "$BENCH_OUT/raw/server-$s.log" 2>/dev/null || true
	done
	rm -rf "$WORK" "$SHM" ${FAST:+"$FAST"}
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'log "gc.sh: command failed (status $?) at line $LINENO"' ERR

# ------------------------------------------------------------------ helpers
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b-a)/1e9}'; }
median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "NA"; exit}
	if (NR%2) print a[(NR+1)/2]; else printf "%.6g\n", (a[NR/2]+a[NR/2+1])/2}'; }
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }
load1() { cut -d' ' -f1 /proc/loadavg; }
# Wait (up to LOAD_WAIT s) for the 1-minute load to fall to 1.0; note it.
# LOAD_WAIT is a budget for the whole run: a busy host is noted, not waited
# out group after group.
LOADS=()
wait_quiet() {
	local what=$1 waited=0 l
	l=$(load1)
	while awk -v l="$l" 'BEGIN{exit !(l > 1.0)}' && [ "$LOAD_WAIT" -gt 0 ]; do
		[ "$waited" = 0 ] && log "load $l > 1.0 before $what: waiting (up to ${LOAD_WAIT}s left)"
		sleep 15; waited=$((waited + 15)); LOAD_WAIT=$((LOAD_WAIT - 15)); l=$(load1)
	done
	LOADS+=("$what: load $(cut -d' ' -f1-3 /proc/loadavg) after waiting ${waited}s")
	log "${LOADS[-1]}"
}

declare -A VALS=() MUNIT=() MBETTER=()
METRICS=()
add() {  # add COLUMN METRIC UNIT BETTER VALUE
	local m="$2|$3"
	if [ -z "${MUNIT[$m]+x}" ]; then METRICS+=("$m"); MUNIT[$m]=$3; MBETTER[$m]=$4; fi
	VALS["$1|$m"]="${VALS["$1|$m"]:-} $5"
}
ordered() {  # ordered RUN A B: A B on odd runs, B A on even ones
	if [ $(( $1 % 2 )) = 1 ]; then echo "$2 $3"; else echo "$3 $2"; fi
}

wait_up() {  # wait_up NAME [curl args]: GET /v2/ answers 200 within ~10 s
	local s=$1 code=000; shift
	for _ in $(seq 1 100); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" "${SURL[$s]}/v2/" || true)
		[ "$code" = 200 ] && return 0
		kill -0 "${SPID[$s]}" 2>/dev/null || { cat "${SDIR[$s]}/server.log" >&2; die "$s exited during start"; }
		sleep 0.1
	done
	cat "${SDIR[$s]}/server.log" >&2; die "$s did not answer GET /v2/ (last status $code)"
}
# start_server NAME DIR EXTRA-YAML [serve flags...]
start_server() {
	local s=$1 d=$2 extra=$3 port; shift 3
	mkdir -p "$d/data"
	port=$(free_port)
	SDIR[$s]=$d; SURL[$s]=http://127.0.0.1:$port
	{
		printf 'log:\n  level: warn\n  accesslog:\n    disabled: true\n'
		printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$d/data"
		# every client is 127.0.0.1: ab's connections plus the churn's and
		# pushers' would pass the default 64 per address (as in edge.sh)
		printf 'http:\n  addr: 127.0.0.1:%s\n  max_connections_per_address: 1024\n' "$port"
		printf '%s\n' "$extra"
	} > "$d/config.yml"
	[ "${NOSTART:-0}" = 1 ] && return 0
	"$BERTHD" serve --config "$d/config.yml" "$@" > "$d/server.log" 2>&1 < /dev/null &
	SPID[$s]=$!
}

# ------------------------------------------------------------------ rates
# A small image (2 MiB layer, config, manifest tagged "bench"), as run.sh's.
small_image() {
	local d=$WORK/small
	mkdir -p "$d"
	head -c 2097152 /dev/zero | openssl enc -aes-128-ctr \
		-K 62657274682d62656e63682d6b657932 -iv 62657274682d62656e63682d69763032 > "$d/layer"
	printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
		"$(sha256sum "$d/layer" | cut -d' ' -f1)" > "$d/config"
	SMALL_LAYER=sha256:$(sha256sum "$d/layer" | cut -d' ' -f1)
	SMALL_CFG=sha256:$(sha256sum "$d/config" | cut -d' ' -f1)
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":2097152}]}' \
		"$OCI_MANIFEST" "$SMALL_CFG" "$(stat -c %s "$d/config")" "$SMALL_LAYER" > "$d/manifest"
	SMALL_DIR=$d
}
seed_small() {  # seed_small NAME
	local url=${SURL[$1]} repo=$TENANT/bench-small code
	for f in layer:$SMALL_LAYER config:$SMALL_CFG; do
		code=$(curl -s --max-time 60 -o /dev/null -w '%{http_code}' -X POST -H 'Expect:' \
			--data-binary @"$SMALL_DIR/${f%%:*}" "$url/v2/$repo/blobs/uploads/?digest=${f#*:}")
		[ "$code" = 201 ] || die "$1: upload of the small ${f%%:*} gave $code"
	done
	code=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $OCI_MANIFEST" \
		--data-binary @"$SMALL_DIR/manifest" "$url/v2/$repo/manifests/bench")
	[ "$code" = 201 ] || die "$1: manifest PUT gave $code"
}
# The garbage loop (run in the background against URL until stopped, at
# most MAX images): a unique 4 KiB layer, the shared config, a manifest
# under tag gN, then DELETE of the tag.  Writes its image count to FILE.
churn() {
	local url=$1 max=$2 file=$3 tag=$4 n=0 d=$WORK/churn-$4 hex ok=0 bad=0 code step
	mkdir -p "$d"
	echo "0 0" > "$file"
	while [ "$n" -lt "$max" ]; do
		n=$((n + 1))
		{ printf 'churn %s %s %s ' "$tag" "$n" "$$"; head -c 4096 /dev/urandom; } > "$d/l"
		hex=$(sha256sum "$d/l" | cut -d' ' -f1)
		printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
			"$OCI_MANIFEST" "$SMALL_CFG" "$(stat -c %s "$SMALL_DIR/config")" "$hex" "$(stat -c %s "$d/l")" > "$d/m"
		step=layer; code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X POST -H 'Expect:' --data-binary @"$d/l" \
			"$url/v2/$TENANT/churn/blobs/uploads/?digest=sha256:$hex" || true)
		[ "$code" = 201 ] && step=config && code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X POST -H 'Expect:' \
			--data-binary @"$SMALL_DIR/config" "$url/v2/$TENANT/churn/blobs/uploads/?digest=$SMALL_CFG" || true)
		[ "$code" = 201 ] && step=manifest && code=$(curl -s --max-time 10 -o "$d/resp" -w '%{http_code}' -X PUT \
			-H "Content-Type: $OCI_MANIFEST" --data-binary @"$d/m" "$url/v2/$TENANT/churn/manifests/g$n" || true)
		[ "$code" = 201 ] && step=delete && code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X DELETE \
			"$url/v2/$TENANT/churn/manifests/g$n" || true)
		if [ "$code" = 202 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); echo "image $n: $step $code $(head -c 200 "$d/resp" 2>/dev/null)" >> "$file.fail"; fi
		rm -f "$d/resp"
		# the counts after every image: the loop is stopped with SIGTERM
		echo "$ok $bad" > "$file.new" && mv "$file.new" "$file"
		sleep "$CHURN_SLEEP"
	done
}
ab_once() {  # ab_once COLUMN KIND RUN
	local s=$1 kind=$2 i=$3 url=${SURL[$1]} pid=${SPID[$1]} out cpid c0 c1 rps p99 ndone failed non2xx cnt args
	out=$BENCH_OUT/raw/ab-$kind-$s-$i.txt
	case $kind in
	head) args=(-i "$url/v2/$TENANT/bench-small/blobs/$SMALL_LAYER") ;;
	get) args=(-H "Accept: $OCI_MANIFEST" "$url/v2/$TENANT/bench-small/manifests/bench") ;;
	esac
	cnt=$WORK/churn-$s-$kind-$i.count
	churn "$url" 100000 "$cnt" "$s-$kind-$i" & cpid=$!
	BGPIDS+=("$cpid")
	sleep 1
	c0=$(cpu_ticks "$pid")
	timeout $((AB_SECONDS + 60)) ab -k -c "$AB_CONNS" -t "$AB_SECONDS" -n 10000000 "${args[@]}" > "$out" 2>&1 || true
	c1=$(cpu_ticks "$pid")
	kill -TERM "$cpid" 2>/dev/null || true; wait "$cpid" 2>/dev/null || true
	BGPIDS=("${BGPIDS[@]/$cpid}")
	grep -q '^Requests per second' "$out" || { cat "$out" >&2; die "$s: ab $kind failed"; }
	rps=$(awk '/^Requests per second/{print $4}' "$out")
	p99=$(awk '$1=="99%"{print $2}' "$out")
	ndone=$(awk '/^Complete requests/{print $3}' "$out")
	failed=$(awk '/^Failed requests/{print $3}' "$out")
	non2xx=$(awk '/^Non-2xx responses/{print $3}' "$out"); non2xx=${non2xx:-0}
	read -r ok bad < "$cnt" || { ok=0; bad=0; }
	[ ! -f "$cnt.fail" ] || { log "  churn failures (image: last status): $(tr '\n' ' ' < "$cnt.fail")"; cat "$cnt.fail" >> "$BENCH_OUT/raw/churn-failures-$s.txt"; }
	add "$s" "ab $kind c$AB_CONNS" req/s higher "$rps"
	add "$s" "ab $kind c$AB_CONNS p99" ms lower "$p99"
	add "$s" "ab $kind c$AB_CONNS failed + non-2xx (sum)" count lower "$((failed + non2xx))"
	add "$s" "ab $kind server CPU per request" µs lower "$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" -v n="$ndone" \
		'BEGIN{if (n>0) printf "%.1f", (b-a)/t/n*1e6; else print "NA"}')"
	add "$s" "churn images (push + tag delete) during ab $kind" count higher "$ok"
	add "$s" "churn failures during ab $kind (sum)" count lower "$bad"
	log "  $s $kind run $i: $rps req/s, p99 $p99 ms, churn $ok images ($bad failed)"
	LAST_RPS=$rps
}
objects_in() { find "$1/data/blobs" -type f 2>/dev/null | wc -l; }
rates_group() {
	local i s r
	small_image
	start_server gc-on "$WORK/gc-on" $'gc:\n  interval: 1s\n  grace: 0s' --insecure-no-auth
	start_server gc-off "$WORK/gc-off" $'gc:\n  interval: 0s' --insecure-no-auth
	wait_up gc-on; wait_up gc-off
	seed_small gc-on; seed_small gc-off
	log "rates: ab -k -c $AB_CONNS -t $AB_SECONDS, HEAD blob and GET manifest, GC worker on vs off, churn running"
	wait_quiet rates
	for kind in head get; do
		for i in $(seq 1 "$RUNS"); do
			local -A r=()
			for s in $(ordered "$i" gc-on gc-off); do ab_once "$s" "$kind" "$i"; r[$s]=$LAST_RPS; done
			add ratio "ab $kind c$AB_CONNS" "on/off" higher \
				"$(awk -v a="${r[gc-off]}" -v b="${r[gc-on]}" 'BEGIN{printf "%.4f", b/a}')"
		done
	done
	sleep 3  # one more worker pass
	for s in gc-on gc-off; do
		kill -0 "${SPID[$s]}" 2>/dev/null || { tail -n 30 "${SDIR[$s]}/server.log" >&2; die "$s died"; }
		add "$s" "objects left in the data dir after the runs" count lower "$(objects_in "${SDIR[$s]}")"
		add "$s" "server VmHWM after the runs" MiB lower \
			"$(awk '$1=="VmHWM:"{printf "%.1f", $2/1024}' "/proc/${SPID[$s]}/status")"
		stop_pid "${SPID[$s]}"; unset "SPID[$s]"
		cp "${SDIR[$s]}/server.log" "$BENCH_OUT/raw/server-$s.log"
		cp "${SDIR[$s]}/config.yml" "$BENCH_OUT/raw/config-$s.yml"
	done
	rm -rf "$WORK/gc-on" "$WORK/gc-off"
}

# ------------------------------------------------------------------ pass
# gc_pass COLUMN BASE-DIR MANIFESTS: fill a fresh store, two timed passes.
time_field() { awk -F': ' -v k="$2" '$1 ~ k {print $2; exit}' "$1"; }
wall_secs() { awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }' <<<"$1"; }
db_mib() { du -cb "$1"/meta.db* 2>/dev/null | awk 'END{printf "%.1f", $1/1048576}'; }
gc_pass() {
	local col=$1 base=$2 n=$3 d s fill pass t
	d=$base/$col
	s=pass-$col
	start_server "$s" "$d" $'gc:\n  interval: 0s' --insecure-no-auth
	wait_up "$s"
	stop_pid "${SPID[$s]}"; unset "SPID[$s]"
	log "pass ($col): filling $d/data/meta.db with $n manifests x $GC_LINKS links, $GC_GARBAGE% of tags deleted"
	fill=$BENCH_OUT/raw/fill-$col.txt
	/usr/bin/time -v -o "$fill.time" python3 "$HERE/gc_fill.py" "$d/data/meta.db" "$n" "$GC_LINKS" "$GC_GARBAGE" > "$fill"
	log "  $(cat "$fill")"
	add "$col" "fill: rows" "" - "$(tr ' ' '\n' < "$fill" | tr '\n' ' ' | sed 's/ $//; s/ /, /g')"
	add "$col" "fill time (python3 sqlite3)" s lower "$(wall_secs "$(time_field "$fill.time" 'Elapsed')")"
	add "$col" "database size before GC (meta.db + wal)" MiB lower "$(db_mib "$d/data")"
	sync
	wait_quiet "pass-$col"
	for pass in 1 2; do
		t=$BENCH_OUT/raw/gc-$col-pass$pass
		/usr/bin/time -v -o "$t.time" "$BERTHD" gc --data-dir "$d/data" --grace 0s > "$t.out" 2> "$t.err" \
			|| { cat "$t.err" >&2; die "berthd gc ($col, pass $pass) failed"; }
		log "  pass $pass: $(tail -n 1 "$t.out")"
		add "$col" "pass $pass: wall time" s lower "$(wall_secs "$(time_field "$t.time" 'Elapsed')")"
		add "$col" "pass $pass: CPU user + system" s lower \
			"$(awk -v u="$(time_field "$t.time" 'User time')" -v s="$(time_field "$t.time" 'System time')" 'BEGIN{printf "%.2f", u+s}')"
		add "$col" "pass $pass: max RSS" MiB lower "$(awk -v k="$(time_field "$t.time" 'Maximum resident')" 'BEGIN{printf "%.1f", k/1024}')"
		add "$col" "pass $pass: file system writes" MiB lower "$(awk -v k="$(time_field "$t.time" 'File system outputs')" 'BEGIN{printf "%.1f", k*512/1048576}')"
		add "$col" "pass $pass: summary" "" - "$(tail -n 1 "$t.out")"
		add "$col" "pass $pass: lines printed" count - "$(wc -l < "$t.out")"
	done
	add "$col" "database size after GC (meta.db + wal)" MiB lower "$(db_mib "$d/data")"
	add "$col" "rows left: manifests, links, blobs, queues" "" - "$(python3 - "$d/data/meta.db" <<-'EOF'
	import sqlite3, sys
	c = sqlite3.connect(sys.argv[1])
	print(", ".join("%s=%d" % (t, c.execute("SELECT count(*) FROM " + t).fetchone()[0]) for t in
	      ("manifests", "repository_blobs", "blobs", "gc_manifest_queue", "gc_link_queue", "gc_blob_queue", "gc_outbox")))
	EOF
	)"
	rm -rf "$d"
}
pass_group() {
	if [ -n "$FAST" ]; then
		gc_pass "full-tmpfs" "$FAST" "$GC_MANIFESTS"
	else
		log "no $GC_FAST_DIR: the full-size pass runs on the disk"
		gc_pass "full-disk" "$WORK" "$GC_MANIFESTS"
	fi
	[ "$GC_DISK_MANIFESTS" -gt 0 ] && gc_pass "small-disk" "$WORK" "$GC_DISK_MANIFESTS"
	return 0
}

# ------------------------------------------------------------------ quota
# make_blobs DIR COUNT SIZE TAG: COUNT distinct files and a digest list
make_blobs() {
	python3 - "$@" <<-'EOF'
	import hashlib, os, sys
	d, count, size, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
	os.makedirs(d, exist_ok=True)
	block = os.urandom(1 << 20)
	with open(os.path.join(d, "list"), "w") as lst:
	    for i in range(count):
	        head = ("%s-%d-" % (tag, i)).encode().ljust(64, b"x")
	        h = hashlib.sha256(head)
	        p = os.path.join(d, "b%d" % i)
	        with open(p, "wb") as f:
	            f.write(head)
	            left = size - len(head)
	            while left > 0:
	                chunk = block[:min(left, len(block))]
	                f.write(chunk); h.update(chunk); left -= len(chunk)
	        lst.write("%s sha256:%s\n" % (p, h.hexdigest()))
	EOF
}
push_many() {  # push_many URL CRED REPO LIST: prints "ok bad"
	local url=$1 cred=$2 repo=$3 list=$4
	# shellcheck disable=SC2016
	xargs -P "$PUSH_PAR" -L 1 sh -c 'curl -s --max-time 120 -o /dev/null -w "%{http_code}\n" -u "$0" -X POST \
		-H "Expect:" -H "Content-Type: application/octet-stream" --data-binary "@$1" "$2/v2/$3/blobs/uploads/?digest=$4"' \
		"$cred" < <(awk -v u="$url" -v r="$repo" '{print $1, u, r, $2}' "$list") \
		| awk '$1=="201"{ok++} $1!="201"{bad++} END{print ok+0, bad+0}'
}
# set_quota 1T|none: `berthd account set-quota`; if the command line refuses
# its documented form (exit 2: seen at 0dc0c82, "unexpected argument 1T"),
# the same UPDATE its metadata call makes, straight into the store (the
# server reads the quota in each charging transaction), and say so.
QUOTA_VIA=
set_quota() {
	local q=$1 out rc=0 bytes=NULL want
	out=$("$BERTHD" account set-quota "$ACCT" "$q" --config "${SDIR[quota]}/config.yml" 2>&1) || rc=$?
	if [ "$rc" = 0 ]; then
		QUOTA_VIA=${QUOTA_VIA:-berthd account set-quota}
	elif [ "$rc" = 2 ]; then
		[ "$q" = none ] || bytes=$((1 << 40))
		python3 - "${SDIR[quota]}/data/meta.db" "$ACCT" "$bytes" <<-'EOF'
		import sqlite3, sys
		c = sqlite3.connect(sys.argv[1], timeout=30)
		c.execute("UPDATE accounts SET quota_bytes = %s WHERE id = ?" % ("NULL" if sys.argv[3] == "NULL" else int(sys.argv[3])), (sys.argv[2],))
		c.commit()
		EOF
		QUOTA_VIA="sqlite UPDATE accounts SET quota_bytes (berthd account set-quota exited 2: $(head -n 1 <<<"$out"))"
	else
		die "account set-quota $ACCT $q: exit $rc: $out"
	fi
	if [ "$q" = none ]; then want=none; else want=$((1 << 40)); fi
	out=$("$BERTHD" usage --account "$ACCT" --config "${SDIR[quota]}/config.yml" 2>&1) || die "usage: $out"
	[[ " $out " == *" quota=$want "* ]] || die "quota is not $want after setting it: $out"
	log "  quota $want ($QUOTA_VIA)"
}
quota_once() {  # quota_once on|off RUN
	local col=quota-$1 i=$2 url=${SURL[quota]} pid=${SPID[quota]} t0 t1 c0 c1 ok bad sec q out code
	if [ "$1" = on ]; then q=1T; else q=none; fi
	set_quota "$q"
	rm -rf "$SHM/small" "$SHM/big"
	make_blobs "$SHM/small" "$PUSHES" 1048576 "$col-$i-$ID"
	make_blobs "$SHM/big" 1 $((BIG_MIB * 1048576)) "$col-$i-$ID-big"
	sync
	c0=$(cpu_ticks "$pid"); t0=$(now_ns)
	read -r ok bad < <(push_many "$url" "KEY:$KEY" "$ACCT/q-$col-$i" "$SHM/small/list")
	t1=$(now_ns); c1=$(cpu_ticks "$pid")
	[ "$bad" = 0 ] || log "  WARNING: $col run $i: $bad of $PUSHES pushes failed"
	sec=$(secs "$t0" "$t1")
	add "$col" "$PUSHES x 1 MiB pushes, $PUSH_PAR parallel" s lower "$sec"
	add "$col" "$PUSHES x 1 MiB pushes" MiB/s higher "$(awk -v n="$PUSHES" -v s="$sec" 'BEGIN{printf "%.1f", n/s}')"
	add "$col" "$PUSHES x 1 MiB pushes: server CPU" s lower "$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}')"
	add "$col" "1 MiB push failures (sum)" count lower "$bad"
	RS[$col]=$sec
	sync
	read -r path dig < "$SHM/big/list"
	c0=$(cpu_ticks "$pid"); t0=$(now_ns)
	code=$(curl -s --max-time 600 -o /dev/null -w '%{http_code}' -u "KEY:$KEY" -X POST -H 'Expect:' \
		-H 'Content-Type: application/octet-stream' --data-binary "@$path" "$url/v2/$ACCT/q-$col-$i-big/blobs/uploads/?digest=$dig" || true)
	t1=$(now_ns); c1=$(cpu_ticks "$pid")
	[ "$code" = 201 ] || die "$col run $i: $BIG_MIB MiB push gave $code"
	sec=$(secs "$t0" "$t1")
	add "$col" "$BIG_MIB MiB monolithic push" s lower "$sec"
	add "$col" "$BIG_MIB MiB monolithic push" MiB/s higher "$(awk -v n="$BIG_MIB" -v s="$sec" 'BEGIN{printf "%.1f", n/s}')"
	RB[$col]=$sec
	log "  $col run $i: $PUSHES x 1 MiB in ${RS[$col]} s ($bad failed), $BIG_MIB MiB in $sec s"
	rm -rf "$SHM/small" "$SHM/big"
}
quota_group() {
	local d=$WORK/quota out i s
	mkdir -p "$d/data"
	NOSTART=1 start_server quota "$d" $'gc:\n  interval: 0s'  # the config only
	ACCT=$("$BERTHD" account create --name gcbench --config "$d/config.yml" 2>"$d/admin.log") \
		|| { cat "$d/admin.log" >&2; die "account create failed"; }
	out=$("$BERTHD" key create --account "$ACCT" --config "$d/config.yml" 2>>"$d/admin.log") \
		|| { cat "$d/admin.log" >&2; die "key create failed"; }
	KEY=${out#* }
	[[ $KEY =~ ^brt_[0-9a-f]{64}$ ]] || die "key create printed '$out'"
	start_server quota "$d" $'gc:\n  interval: 0s'
	wait_up quota -u "KEY:$KEY"
	[ "$(curl -s -o /dev/null -w '%{http_code}' "${SURL[quota]}/v2/")" = 401 ] || die "quota server: auth is off"
	log "quota: $PUSHES x 1 MiB ($PUSH_PAR parallel) + $BIG_MIB MiB, quota 1T vs none, auth on"
	wait_quiet quota
	declare -gA RS=() RB=()
	for i in $(seq 1 "$RUNS"); do
		for s in $(ordered "$i" on off); do quota_once "$s" "$i"; done
		add ratio "$PUSHES x 1 MiB pushes" "on/off time" lower \
			"$(awk -v a="${RS[quota-off]}" -v b="${RS[quota-on]}" 'BEGIN{printf "%.4f", b/a}')"
		add ratio "$BIG_MIB MiB monolithic push" "on/off time" lower \
			"$(awk -v a="${RB[quota-off]}" -v b="${RB[quota-on]}" 'BEGIN{printf "%.4f", b/a}')"
	done
	"$BERTHD" usage --account "$ACCT" --config "$d/config.yml" > "$BENCH_OUT/raw/usage-quota.txt" 2>&1 || true
	add quota-on "usage at the end" "" - "$(cat "$BENCH_OUT/raw/usage-quota.txt")"
	add quota-on "quota set with" "" - "$QUOTA_VIA"
	kill -0 "${SPID[quota]}" 2>/dev/null || die "quota server died"
	stop_pid "${SPID[quota]}"; unset "SPID[quota]"
	cp "$d/server.log" "$BENCH_OUT/raw/server-quota.log"
	rm -rf "$d"
}

# ------------------------------------------------------------------ run
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
# the tree's commit when the run starts (the binary was copied then too)
GITREV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
if git -C "$ROOT" status --porcelain -- src 2>/dev/null | grep -q .; then GITREV="$GITREV (src modified)"; fi
log "gc.sh: runs $RUNS, groups '$GC_ONLY', out $BENCH_OUT${BENCH_QUICK:+ (quick)}"
want rates && rates_group
want quota && quota_group
want pass && pass_group
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

RES=$BENCH_OUT/results.tsv
printf 'metric\tunit\tbetter\tcolumn\tmedian_or_value\truns\n' > "$RES"
COLUMNS_ALL="gc-on gc-off ratio full-tmpfs full-disk small-disk quota-on quota-off"
for m in "${METRICS[@]}"; do
	for c in $COLUMNS_ALL; do
		v=${VALS["$c|$m"]:-}
		[ -n "$v" ] || continue
		case ${MUNIT[$m]} in
		"") med=${v# }; runs=- ;;  # text, one value
		count) med=$(echo "$v" | awk '{t=0; for (i=1;i<=NF;i++) t+=$i; print t}'); runs=$(echo $v | tr ' ' ',') ;;
		*) med=$(echo "$v" | median); runs=$(echo $v | tr ' ' ',') ;;
		esac
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${m%|*}" "${MUNIT[$m]}" "${MBETTER[$m]}" "$c" "$med" "$runs" >> "$RES"
	done
done
{
	printf 'id\t%s\nruns\t%s\nquick\t%s\nload_before\t%s\nload_after\t%s\nnproc\t%s\ncpu\t%s\n' "$ID" "$RUNS" \
		"${BENCH_QUICK:-0}" "$LOAD_BEFORE" "$LOAD_AFTER" "$(nproc)" "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
	printf 'berthd\t%s (%s; tree at %s when the run started)\n' "$BERTHD_SRC" \
		"$("$BERTHD" --version 2>/dev/null | head -n 1)" "$GITREV"
	printf 'seconds\t%s\n' "$(( $(date +%s) - T_START ))"
	for l in "${LOADS[@]}"; do printf 'load\t%s\n' "$l"; done
} > "$BENCH_OUT/meta.tsv"
log ""
log "results: $RES (meta: $BENCH_OUT/meta.tsv, raw: $BENCH_OUT/raw)"
cat "$BENCH_OUT/meta.tsv"
column -t -s "$(printf '\t')" "$RES" 2>/dev/null || cat "$RES"
