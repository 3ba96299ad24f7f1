#!/usr/bin/env bash
# Scale benchmark (issue 10, "costs that stay flat as the registry grows"):
# the same berthd binary against a large metadata store and a tiny one (the
# same shape at 1/TINY_DIV of the size), measured interleaved (big tiny,
# tiny big, ...), medians.
#
# The stores: berthd makes each on a fresh data dir (its schema: 6 or 7); a real image
# (2 MiB layer, config, OCI manifest tagged "bench" in <TENANT>/bench-small)
# is pushed with curl; berthd is stopped and bench/scale_fill.py adds, in one
# transaction, SCALE_REPOS repositories, SCALE_MANIFESTS manifests (config +
# own layer + a base layer shared per account, each tagged) of which
# SCALE_TAGS are in one repository <TENANT>/many-tags, each under its own tag
# (see scale_fill.py for the rows).  The tiny store gets the same with every
# count divided by TINY_DIV (default 100: 1 000 repositories, 10 000
# manifests, a 1 000-tag repository: one page of n=1000, so every page
# figure compares like with like).
#
# The stores' files are read once (untimed) before the rounds, so they are in
# the page cache (see "warm" below).
#   start    STARTS times per store and round: berthd serve on the existing store, time
#            from the fork to the first 200 of GET /v2/ (polled every 5 ms),
#            VmRSS right after it; stopped.  The page cache is warm (the
#            stores were just written or read); a cold start is not measured
#            (dropping caches would disturb the other benchmarks on the host).
#   head/get ab -k -c AB_CONNS -t AB_SECONDS of HEAD of the seed's 2 MiB blob
#            and GET of its manifest by tag (OCI Accept), as bench/run.sh.
#   rget     GET manifest by tag of RGETS random generated repositories
#            (tag v0), one curl on one keep-alive connection: per-request
#            time_total, median and p99 (the rows are not all in any cache).
#   tags     GET /v2/<TENANT>/many-tags/tags/list?n=1000, following the Link
#            header to the end: every page's time_total (one curl per page,
#            a new connection each); the page count and that the tags come
#            out in byte order, without repeats, SCALE_TAGS in all, are checked.
#   catalog  GET /v2/_catalog?n=1000 walked the same way.
#   put      PUTS manifest PUTs of new manifests (the seed's blobs, a unique
#            annotation, a new tag) to <TENANT>/bench-small, one curl each:
#            time_total median and p99.
#   rss      VmRSS and VmHWM of each round's serving instance (started after
#            the start group) after all of the above.
#   size     meta.db (+ -wal) bytes of each store after the fill, and
#            (big - tiny) / (big manifests - tiny manifests).
# Every interleaved round (big and tiny) holds /tmp/berth-bench.lock (flock)
# while it runs, and the 1-minute load when it got the lock is recorded
# (load1 column of the TSV).
#
# Usage: bench/scale.sh
# Environment (all optional):
#   SCALE_REPOS=100000 SCALE_MANIFESTS=1000000 SCALE_TAGS=100000 TINY_DIV=100
#   RUNS=3 AB_SECONDS=10 AB_CONNS=64 STARTS=5 PUTS=100 RGETS=1000
#   SCALE_ONLY="start head get rget tags catalog put rss size"
#   SCALE_DIR=/var/tmp/berth-scale   where the stores live (removed at the
#                                    end unless KEEP_DATA=1; a store there
#                                    made with the same sizes is reused)
#   PORT_BASE=5800 (big: PORT_BASE, tiny: PORT_BASE+1)
#   SCALE_NO_LOCK=1   skip the shared lock: a smoke test of the script only
#   BERTHD=PATH (default build-rel/berthd, built (Release) if missing)
#   BENCH_OUT=DIR (default SCALE_DIR/out-<time>): results.tsv, summary.md, raw/
# Loopback only; stops only the processes it started, by PID.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SCALE_REPOS=${SCALE_REPOS:-100000}
SCALE_MANIFESTS=${SCALE_MANIFESTS:-1000000}
SCALE_TAGS=${SCALE_TAGS:-100000}
TINY_DIV=${TINY_DIV:-100}
RUNS=${RUNS:-3}
AB_SECONDS=${AB_SECONDS:-10}
AB_CONNS=${AB_CONNS:-64}
STARTS=${STARTS:-5}
PUTS=${PUTS:-100}
RGETS=${RGETS:-1000}
SCALE_ONLY=${SCALE_ONLY:-start head get rget tags catalog put rss size}
SCALE_DIR=${SCALE_DIR:-/var/tmp/berth-scale}
PORT_BASE=${PORT_BASE:-5800}
ID=$(date +%Y%m%d%H%M%S)-$$
BENCH_OUT=${BENCH_OUT:-$SCALE_DIR/out-$ID}
LOCK=/tmp/berth-bench.lock
TENANT=0146e9b57080961e2c83536300000000
OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json

log() { printf '%s\n' "$*" >&2; }
die() { log "scale.sh: $*"; exit 1; }
want() { [[ " $SCALE_ONLY " == *" $1 "* ]]; }
for v in SCALE_REPOS SCALE_MANIFESTS SCALE_TAGS TINY_DIV RUNS AB_SECONDS AB_CONNS STARTS PUTS RGETS PORT_BASE; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number"
done
[ "$RUNS" -ge 1 ] && [ "$RUNS" -le 50 ] || die "RUNS must be 1..50"
[ "$AB_SECONDS" -ge 1 ] && [ "$AB_SECONDS" -le 600 ] || die "AB_SECONDS must be 1..600"
[ "$TINY_DIV" -ge 1 ] || die "TINY_DIV must be >= 1"
[ "$SCALE_REPOS" -ge $((2 * TINY_DIV)) ] || die "SCALE_REPOS must be at least 2 * TINY_DIV"
[ "$SCALE_TAGS" -ge "$TINY_DIV" ] || die "SCALE_TAGS must be at least TINY_DIV"
[ "$SCALE_MANIFESTS" -ge $((SCALE_TAGS + SCALE_REPOS)) ] || die "SCALE_MANIFESTS must be at least SCALE_TAGS + SCALE_REPOS"
[ "$STARTS" -le 100 ] && [ "$PUTS" -le 10000 ] && [ "$RGETS" -le 100000 ] || die "STARTS <= 100, PUTS <= 10000, RGETS <= 100000"
for g in $SCALE_ONLY; do
	case $g in start|head|get|rget|tags|catalog|put|rss|size) ;; *) die "unknown SCALE_ONLY group '$g'" ;; esac
done

# ------------------------------------------------------------------ packages
install_missing() {
	local pkgs=(curl procps python3 openssl apache2-utils util-linux coreutils) missing=() p
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
for t in curl ab python3 openssl sha256sum timeout awk flock; do
	command -v "$t" >/dev/null || die "$t is missing"
done
python3 -c 'import sqlite3' || die "python3's sqlite3 module is missing"

BERTHD=${BERTHD:-$ROOT/build-rel/berthd}
if [ ! -x "$BERTHD" ]; then
	log "building berthd (Release) in $ROOT/build-rel"
	[ -x "$ROOT/scripts/deps.sh" ] && "$ROOT/scripts/deps.sh"
	(cd "$ROOT" && cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release >/dev/null &&
		nice -n 10 cmake --build build-rel -j2 --target berthd) >&2
	BERTHD=$ROOT/build-rel/berthd
fi
[ -x "$BERTHD" ] || die "no berthd binary at $BERTHD"

mkdir -p "$SCALE_DIR" "$BENCH_OUT/raw"
BENCH_OUT=$(cd "$BENCH_OUT" && pwd)
WORK=$(mktemp -d "$SCALE_DIR/work.XXXXXX")
# a private copy: a rebuild during the run changes nothing measured
mkdir -p "$WORK/bin"; cp "$BERTHD" "$WORK/bin/berthd"
BERTHD_SRC=$BERTHD; BERTHD=$WORK/bin/berthd
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || COMMIT="$COMMIT+dirty"

declare -A SPID=() SURL=() SDIR=() SIZE_REPOS=() SIZE_MANIFESTS=() SIZE_TAGS=()
SIZE_REPOS[big]=$SCALE_REPOS; SIZE_MANIFESTS[big]=$SCALE_MANIFESTS; SIZE_TAGS[big]=$SCALE_TAGS
SIZE_REPOS[tiny]=$((SCALE_REPOS / TINY_DIV)); SIZE_MANIFESTS[tiny]=$((SCALE_MANIFESTS / TINY_DIV))
SIZE_TAGS[tiny]=$((SCALE_TAGS / TINY_DIV))
SDIR[big]=$SCALE_DIR/big; SDIR[tiny]=$SCALE_DIR/tiny
SURL[big]=http://127.0.0.1:$PORT_BASE; SURL[tiny]=http://127.0.0.1:$((PORT_BASE + 1))
LOCKED=0
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
stop_server() { stop_pid "${SPID[$1]:-}"; SPID[$1]=; }
cleanup() {
	local s
	[ "$LOCKED" = 0 ] || flock -u 9 || true
	for s in "${!SPID[@]}"; do
		stop_server "$s"
		[ ! -f "${SDIR[$s]}/server.log" ] || cp "${SDIR[$s]}/server.log" "$BENCH_OUT/raw/server-$s.log" 2>/dev/null || true
	done
	rm -rf "$WORK"
	if [ "${KEEP_DATA:-0}" != 1 ]; then rm -rf "${SDIR[big]}" "${SDIR[tiny]}"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'log "scale.sh: command failed (status $?) at line $LINENO"' ERR

# ------------------------------------------------------------------ helpers
exec 9>"$LOCK"
# lock: take the shared benchmark lock for one round and note the load
# (SCALE_NO_LOCK=1: a functional smoke run only, whose figures are not kept)
LOAD=
lock() { [ "${SCALE_NO_LOCK:-0}" = 1 ] || { flock 9; LOCKED=1; }; LOAD=$(cut -d' ' -f1 /proc/loadavg); }
unlock() { [ "$LOCKED" = 0 ] || flock -u 9; LOCKED=0; }
now_ns() { date +%s%N; }
median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "NA"; exit}
	if (NR%2) print a[(NR+1)/2]; else printf "%.6g\n", (a[NR/2]+a[NR/2+1])/2}'; }
# quantile Q < FILE (one number a line): nearest-rank
quantile() { sort -g | awk -v q="$1" '{a[NR]=$1} END {if (NR==0) {print "NA"; exit} i=int(q*NR+0.999999); if (i<1) i=1; if (i>NR) i=NR; print a[i]}'; }
status_kib() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status" 2>/dev/null || true; }
kib2mib() { awk -v k="$1" 'BEGIN{printf "%.2f", k/1024}'; }
ordered() {  # ordered RUN: big tiny on odd runs, tiny big on even ones
	if [ $(( $1 % 2 )) = 1 ]; then echo "big tiny"; else echo "tiny big"; fi
}

# results.tsv: store metric unit run load value
TSV=$BENCH_OUT/results.tsv
printf 'store\tmetric\tunit\trun\tload1\tvalue\n' > "$TSV"
declare -A VALS=() MUNIT=()
METRICS=()
add() {  # add STORE METRIC UNIT RUN VALUE
	local m="$2|$3"
	if [ -z "${MUNIT[$m]+x}" ]; then METRICS+=("$m"); MUNIT[$m]=$3; fi
	VALS["$1|$m"]="${VALS["$1|$m"]:-} $5"
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${LOAD:-NA}" "$5" >> "$TSV"
}

config_for() {  # config_for STORE: berthd's config, as bench/run.sh's
	local s=$1 d=${SDIR[$1]} port=${SURL[$1]##*:}
	{
		printf 'log:\n  level: warn\n  accesslog:\n    disabled: true\n'
		printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$d/data"
		printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
	} > "$d/config.yml"
}
launch() {  # launch STORE: start berthd (no wait)
	local s=$1 d=${SDIR[$1]}
	"$BERTHD" serve --config "$d/config.yml" --insecure-no-auth > "$d/server.log" 2>&1 < /dev/null &
	SPID[$s]=$!
}
# wait_up STORE: poll GET /v2/ every 5 ms (up to 60 s) until 200
wait_up() {
	local s=$1 code
	for _ in $(seq 1 12000); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${SURL[$s]}/v2/" || true)
		[ "$code" = 200 ] && return 0
		kill -0 "${SPID[$s]}" 2>/dev/null || { cat "${SDIR[$s]}/server.log" >&2; die "$s exited during start"; }
		sleep 0.005
	done
	die "$s did not answer GET /v2/ within 60 s"
}
port_free() { ! curl -s -o /dev/null --max-time 1 "${SURL[$1]}/v2/"; }

# ------------------------------------------------------------------ the stores
SEED=$SCALE_DIR/seed
make_seed() {
	mkdir -p "$SEED"
	[ -f "$SEED/manifest" ] && return 0
	head -c 2097152 /dev/zero | openssl enc -aes-128-ctr \
		-K 62657274682d62656e63682d6b657932 -iv 62657274682d62656e63682d69763032 > "$SEED/layer"
	printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
		"$(sha256sum "$SEED/layer" | cut -d' ' -f1)" > "$SEED/config"
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":2097152}]}' \
		"$OCI_MANIFEST" "$(sha256sum "$SEED/config" | cut -d' ' -f1)" "$(stat -c %s "$SEED/config")" \
		"$(sha256sum "$SEED/layer" | cut -d' ' -f1)" > "$SEED/manifest.tmp"
	mv "$SEED/manifest.tmp" "$SEED/manifest"
}
make_seed
SEED_LAYER=sha256:$(sha256sum "$SEED/layer" | cut -d' ' -f1)
SEED_CFG=sha256:$(sha256sum "$SEED/config" | cut -d' ' -f1)
SEED_CFG_SIZE=$(stat -c %s "$SEED/config")
SEED_REPO=$TENANT/bench-small

seed_push() {  # seed_push STORE: the real image, by curl
	local url=${SURL[$1]} code f
	for f in layer:$SEED_LAYER config:$SEED_CFG; do
		code=$(curl -s --max-time 60 -o /dev/null -w '%{http_code}' -X POST -H 'Expect:' \
			--data-binary @"$SEED/${f%%:*}" "$url/v2/$SEED_REPO/blobs/uploads/?digest=${f#*:}")
		[ "$code" = 201 ] || die "$1: upload of the seed ${f%%:*} gave $code"
	done
	code=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $OCI_MANIFEST" \
		--data-binary @"$SEED/manifest" "$url/v2/$SEED_REPO/manifests/bench")
	[ "$code" = 201 ] || die "$1: seed manifest PUT gave $code"
}
make_store() {  # make_store STORE
	local s=$1 d=${SDIR[$1]} stamp out t0 t1
	stamp="schema6 repos=${SIZE_REPOS[$s]} manifests=${SIZE_MANIFESTS[$s]} tags=${SIZE_TAGS[$s]} fill=$(sha256sum "$HERE/scale_fill.py" | cut -c1-16)"
	if [ -f "$d/stamp" ] && [ "$(cat "$d/stamp")" = "$stamp" ] && [ -f "$d/data/meta.db" ]; then
		log "$s: reusing the store in $d ($stamp)"
		config_for "$s"
		return 0
	fi
	rm -rf "$d"; mkdir -p "$d/data"
	config_for "$s"
	port_free "$s" || die "port of $s (${SURL[$s]}) is in use"
	launch "$s"; wait_up "$s"
	seed_push "$s"
	stop_server "$s"
	log "$s: filling (${SIZE_REPOS[$s]} repositories, ${SIZE_MANIFESTS[$s]} manifests, ${SIZE_TAGS[$s]} tags)"
	t0=$(now_ns)
	out=$(nice -n 10 python3 "$HERE/scale_fill.py" "$d/data/meta.db" "${SIZE_REPOS[$s]}" \
		"${SIZE_MANIFESTS[$s]}" "${SIZE_TAGS[$s]}" "$TENANT")
	t1=$(now_ns)
	log "$s: $out"
	echo "$out" > "$d/fill.txt"
	awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f\n", (b-a)/1e9}' > "$d/fill-seconds"
	echo "$stamp" > "$d/stamp"
}
make_store big
make_store tiny
for s in big tiny; do cp "${SDIR[$s]}/fill.txt" "$BENCH_OUT/raw/fill-$s.txt"; done
log "fill: big $(cat "${SDIR[big]}/fill-seconds") s, tiny $(cat "${SDIR[tiny]}/fill-seconds") s"

# ------------------------------------------------------------------ size
if want size; then
	for s in big tiny; do
		b=$(du -cb "${SDIR[$s]}"/data/meta.db* | awk 'END{print $1}')
		add "$s" "meta.db + wal" MiB 1 "$(awk -v b="$b" 'BEGIN{printf "%.1f", b/1048576}')"
		eval "DB_BYTES_$s=$b"
	done
	add big "db bytes per manifest (big - tiny)" B 1 \
		"$(awk -v a="$DB_BYTES_big" -v b="$DB_BYTES_tiny" -v m="${SIZE_MANIFESTS[big]}" -v n="${SIZE_MANIFESTS[tiny]}" \
		'BEGIN{printf "%.0f", (a-b)/(m-n)}')"
fi

# ------------------------------------------------------------------ start
# start_once STORE RUN: fork berthd, poll GET /v2/ every millisecond (raw
# HTTP/1.1 from python3, so the poller's own start-up is not in the figure)
start_once() {
	local s=$1 i=$2 out
	port_free "$s" || die "port of $s (${SURL[$s]}) is in use"
	out=$(python3 - "$BERTHD" "${SDIR[$s]}/config.yml" "${SURL[$s]##*:}" "${SDIR[$s]}/server-start.log" <<-'EOF'
	import socket, subprocess, sys, time
	berthd, cfg, port, logf = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
	t0 = time.monotonic()
	p = subprocess.Popen([berthd, "serve", "--config", cfg, "--insecure-no-auth"], stdin=subprocess.DEVNULL,
	                     stdout=subprocess.DEVNULL, stderr=open(logf, "w"))
	ok = False
	while time.monotonic() - t0 < 60 and p.poll() is None:
	    try:
	        c = socket.create_connection(("127.0.0.1", port), timeout=2)
	        c.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
	        ok = b" 200 " in c.recv(64)
	        c.close()
	    except OSError:
	        pass
	    if ok:
	        break
	    time.sleep(0.001)
	t1 = time.monotonic()
	rss = "NA"
	if ok:
	    rss = [l.split()[1] for l in open("/proc/%d/status" % p.pid) if l.startswith("VmRSS:")][0]
	p.terminate()
	try:
	    p.wait(30)
	except subprocess.TimeoutExpired:
	    p.kill(); p.wait()
	print("%.1f %s" % ((t1 - t0) * 1000, rss) if ok else "FAIL")
	EOF
	)
	[ "$out" != FAIL ] || { cat "${SDIR[$s]}/server-start.log" >&2; die "$s did not start"; }
	add "$s" "start to first 200 on GET /v2/" ms "$i" "${out% *}"
	add "$s" "VmRSS after start" MiB "$i" "$(kib2mib "${out#* }")"
}
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }
ab_once() {  # ab_once STORE KIND RUN
	local s=$1 kind=$2 i=$3 url=${SURL[$1]} out args c0 c1 rps p99 ndone failed non2xx
	out=$BENCH_OUT/raw/ab-$kind-$s-$i.txt
	case $kind in
	head) args=(-i "$url/v2/$SEED_REPO/blobs/$SEED_LAYER") ;;
	get) args=(-H "Accept: $OCI_MANIFEST" "$url/v2/$SEED_REPO/manifests/bench") ;;
	esac
	c0=$(cpu_ticks "${SPID[$s]}")
	timeout $((AB_SECONDS + 60)) ab -k -c "$AB_CONNS" -t "$AB_SECONDS" -n 10000000 "${args[@]}" > "$out" 2>&1 || true
	c1=$(cpu_ticks "${SPID[$s]}")
	grep -q '^Requests per second' "$out" || { cat "$out" >&2; die "$s: ab $kind failed"; }
	rps=$(awk '/^Requests per second/{print $4}' "$out")
	p99=$(awk '$1=="99%"{print $2}' "$out")
	ndone=$(awk '/^Complete requests/{print $3}' "$out")
	failed=$(awk '/^Failed requests/{print $3}' "$out")
	non2xx=$(awk '/^Non-2xx responses/{print $3}' "$out"); non2xx=${non2xx:-0}
	add "$s" "ab $kind c$AB_CONNS" req/s "$i" "$rps"
	add "$s" "ab $kind c$AB_CONNS p99" ms "$i" "$p99"
	add "$s" "ab $kind failed + non-2xx" count "$i" "$((failed + non2xx))"
	add "$s" "ab $kind server CPU per request" us "$i" "$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" -v n="$ndone" \
		'BEGIN{if (n>0) printf "%.1f", (b-a)/t/n*1e6; else print "NA"}')"
	log "  $s $kind run $i: $rps req/s, p99 $p99 ms (load $LOAD)"
}

# ------------------------------------------------------------------ rget
# GET manifest by tag v0 of RGETS random generated repositories, one curl
# (one keep-alive connection), per-request time_total.
rget_once() {  # rget_once STORE RUN
	local s=$1 i=$2 cfg=$WORK/rget-$1-$2.cfg out=$BENCH_OUT/raw/rget-$1-$2.txt
	python3 - "${SIZE_REPOS[$s]}" "$RGETS" "$i" "${SURL[$s]}" "$OCI_MANIFEST" > "$cfg" <<-'EOF'
	import random, sys
	repos, n, seed, url, mt = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
	rnd = random.Random(seed)
	print('header = "Accept: %s"' % mt)
	for _ in range(n):
	    r = rnd.randrange(1, repos)
	    acct = "%032x" % (0x5CA1E * 2**96 + r // 100)
	    print('url = "%s/v2/%s/app-%d/manifests/v0"' % (url, acct, r))
	    print('output = "/dev/null"')
	EOF
	curl -s -K "$cfg" -w '%{http_code} %{time_total}\n' > "$out"
	bad=$(awk '$1 != 200' "$out" | wc -l)
	[ "$bad" = 0 ] || die "$s: $bad of the random manifest GETs did not answer 200"
	add "$s" "random GET manifest by tag, median" ms "$i" "$(awk '{print $2*1000}' "$out" | quantile 0.5)"
	add "$s" "random GET manifest by tag, p99" ms "$i" "$(awk '{print $2*1000}' "$out" | quantile 0.99)"
	log "  $s rget run $i: median $(awk '{print $2*1000}' "$out" | quantile 0.5) ms (load $LOAD)"
}

# ------------------------------------------------------------------ paging walks
# walk STORE KIND RUN: follow Link from PATH?n=1000 to the end; per page
# "index time_total(ms) count" into raw/walk-KIND-STORE-RUN.tsv; checks
# byte order, no repeats and the total.
walk_once() {
	local s=$1 kind=$2 i=$3 url=${SURL[$1]} path next page=0 hdr=$WORK/hdr body=$WORK/body
	local out=$BENCH_OUT/raw/walk-$kind-$s-$i.tsv names=$WORK/names-$kind-$s-$i expect t
	case $kind in
	tags) path="/v2/$TENANT/many-tags/tags/list?n=1000"; expect=${SIZE_TAGS[$s]} ;;
	catalog) path="/v2/_catalog?n=1000"; expect=$((SIZE_REPOS[$s] + 1)) ;;
	esac
	: > "$out"; : > "$names"
	while [ -n "$path" ] && [ "$page" -lt 100000 ]; do
		page=$((page + 1))
		t=$(curl -s -D "$hdr" -o "$body" -w '%{http_code} %{time_total}' "$url$path")
		[ "${t%% *}" = 200 ] || die "$s: $kind page $page ($path) gave ${t%% *}"
		printf '%s\t%s\t%s\n' "$page" "$(awk -v x="${t#* }" 'BEGIN{printf "%.3f", x*1000}')" "$path" >> "$out"
		cp "$body" "$WORK/page-$page.json"
		next=$(awk 'tolower($1)=="link:" {sub(/^[^<]*</, ""); sub(/>.*$/, ""); print}' "$hdr" | tr -d '\r')
		path=$next
	done
	# the names, in order, from the saved pages (outside the lock)
	python3 - "$kind" "$page" "$WORK" "$expect" > "$WORK/check" <<-'EOF'
	import json, sys
	kind, pages, work, expect = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
	key = "tags" if kind == "tags" else "repositories"
	names = []
	for p in range(1, pages + 1):
	    names += json.load(open("%s/page-%d.json" % (work, p)))[key]
	enc = [n.encode() for n in names]
	ok = all(a < b for a, b in zip(enc, enc[1:])) and len(names) == expect
	print("%d %d %s" % (len(names), len(set(names)), "ok" if ok else "BAD"))
	EOF
	rm -f "$WORK"/page-*.json
	read -r got uniq verdict < "$WORK/check"
	[ "$verdict" = ok ] || die "$s: $kind walk: $got names ($uniq distinct), expected $expect in byte order"
	add "$s" "$kind walk, pages of n=1000" count "$i" "$page"
	add "$s" "$kind page time, median" ms "$i" "$(cut -f2 "$out" | quantile 0.5)"
	add "$s" "$kind page time, p99" ms "$i" "$(cut -f2 "$out" | quantile 0.99)"
	add "$s" "$kind page time, max" ms "$i" "$(cut -f2 "$out" | quantile 1)"
	# does a page cost more as last advances?  median of the first and the
	# last tenth of the pages (at least one each)
	local tenth=$(( (page + 9) / 10 ))
	add "$s" "$kind page time, first tenth median" ms "$i" "$(head -n "$tenth" "$out" | cut -f2 | quantile 0.5)"
	add "$s" "$kind page time, last tenth median" ms "$i" "$(tail -n "$tenth" "$out" | cut -f2 | quantile 0.5)"
	log "  $s $kind run $i: $page pages, median $(cut -f2 "$out" | quantile 0.5) ms, max $(cut -f2 "$out" | quantile 1) ms (load $LOAD)"
}

# ------------------------------------------------------------------ put
# PUTS new manifests (seed blobs + a unique annotation), a new tag each.
put_once() {  # put_once STORE RUN
	local s=$1 i=$2 d=$WORK/put-$1-$2 out=$BENCH_OUT/raw/put-$1-$2.txt k r
	mkdir -p "$d"
	for k in $(seq 1 "$PUTS"); do
		printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":2097152}],"annotations":{"bench.run":"%s-%s-%s-%s"}}' \
			"$OCI_MANIFEST" "$SEED_CFG" "$SEED_CFG_SIZE" "$SEED_LAYER" "$ID" "$s" "$i" "$k" > "$d/m$k"
	done
	: > "$out"
	for k in $(seq 1 "$PUTS"); do
		curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X PUT -H "Content-Type: $OCI_MANIFEST" \
			--data-binary @"$d/m$k" "${SURL[$s]}/v2/$SEED_REPO/manifests/p$i-$k" >> "$out"
	done
	r=$(awk '$1 != 201' "$out" | wc -l)
	[ "$r" = 0 ] || die "$s: $r manifest PUTs did not answer 201"
	add "$s" "manifest PUT (new manifest + tag), median" ms "$i" "$(awk '{print $2*1000}' "$out" | quantile 0.5)"
	add "$s" "manifest PUT (new manifest + tag), p99" ms "$i" "$(awk '{print $2*1000}' "$out" | quantile 0.99)"
	log "  $s put run $i: median $(awk '{print $2*1000}' "$out" | quantile 0.5) ms (load $LOAD)"
}

# ------------------------------------------------------------------ warm
# The stores are read once (untimed) so that the figures are the server's
# and not the disk's: a 4 GB store just written is not necessarily all in
# the page cache (on this host 1.1 of 3.8 GB was, and random manifest GETs
# ran at disk latency).  Residency before each round goes into the log.
for s in big tiny; do cat "${SDIR[$s]}"/data/meta.db* > /dev/null; done
resident() { command -v fincore >/dev/null && fincore -n -o RES "${SDIR[$1]}/data/meta.db" 2>/dev/null | tr -d ' ' || echo NA; }

# ------------------------------------------------------------------ rounds
# One round: every group, big and tiny in alternating order, all under one
# hold of the shared lock (the queue for it is long on a shared host).
for i in $(seq 1 "$RUNS"); do
	lock
	log "round $i of $RUNS (load $LOAD; meta.db in the page cache: big $(resident big), tiny $(resident tiny))"
	if want start; then
		for k in $(seq 1 "$STARTS"); do for s in $(ordered $((i + k))); do start_once "$s" "$i.$k"; done; done
		log "  start: $(awk -F'\t' -v r="^$i[.]" '$2 ~ /^start/ && $4 ~ r {printf "%s %s ms  ", $1, $6}' "$TSV")"
	fi
	# the serving instances of this round
	for s in big tiny; do
		port_free "$s" || die "port of $s (${SURL[$s]}) is in use"
		launch "$s"; wait_up "$s"
		code=$(curl -s -o /dev/null -w '%{http_code}' -I "${SURL[$s]}/v2/$SEED_REPO/blobs/$SEED_LAYER")
		[ "$code" = 200 ] || die "$s: HEAD of the seed layer gave $code"
	done
	for kind in head get; do
		want "$kind" || continue
		for s in $(ordered "$i"); do ab_once "$s" "$kind" "$i"; done
	done
	if want rget; then for s in $(ordered "$i"); do rget_once "$s" "$i"; done; fi
	for kind in tags catalog; do
		want "$kind" || continue
		for s in $(ordered "$i"); do walk_once "$s" "$kind" "$i"; done
	done
	if want put; then for s in $(ordered "$i"); do put_once "$s" "$i"; done; fi
	for s in big tiny; do
		kill -0 "${SPID[$s]}" 2>/dev/null || { tail -n 30 "${SDIR[$s]}/server.log" >&2; die "$s died"; }
		if want rss; then
			add "$s" "VmRSS after the round" MiB "$i" "$(kib2mib "$(status_kib "${SPID[$s]}" VmRSS)")"
			add "$s" "VmHWM after the round" MiB "$i" "$(kib2mib "$(status_kib "${SPID[$s]}" VmHWM)")"
		fi
		stop_server "$s"
		cp "${SDIR[$s]}/server.log" "$BENCH_OUT/raw/server-$s-$i.log"
	done
	unlock
done
for s in big tiny; do cp "${SDIR[$s]}/config.yml" "$BENCH_OUT/raw/config-$s.yml"; done

# ------------------------------------------------------------------ report
{
	printf '# bench/scale.sh %s\n\n' "$ID"
	printf 'berthd %s (%s), commit %s; big: %s repositories, %s manifests, %s tags in one repository;' \
		"$BERTHD_SRC" "$(sha256sum "$BERTHD" | cut -c1-12)" "$COMMIT" "${SIZE_REPOS[big]}" "${SIZE_MANIFESTS[big]}" "${SIZE_TAGS[big]}"
	printf ' tiny: %s, %s, %s; RUNS=%s AB_SECONDS=%s AB_CONNS=%s; fill %s s (big), %s s (tiny)\n\n' \
		"${SIZE_REPOS[tiny]}" "${SIZE_MANIFESTS[tiny]}" "${SIZE_TAGS[tiny]}" "$RUNS" "$AB_SECONDS" "$AB_CONNS" \
		"$(cat "${SDIR[big]}/fill-seconds")" "$(cat "${SDIR[tiny]}/fill-seconds")"
	printf '| metric | unit | big | tiny | big/tiny |\n|---|---|---:|---:|---:|\n'
	for m in "${METRICS[@]}"; do
		b=$(median <<<"${VALS["big|$m"]:-}"); t=$(median <<<"${VALS["tiny|$m"]:-}")
		r=$(awk -v b="$b" -v t="$t" 'BEGIN{if (b!="NA" && t!="NA" && t+0>0) printf "%.3f", b/t; else print "-"}')
		printf '| %s | %s | %s | %s | %s |\n' "${m%|*}" "${MUNIT[$m]}" "$b" "$t" "$r"
	done
} > "$BENCH_OUT/summary.md"
cat "$BENCH_OUT/summary.md"
log "results in $BENCH_OUT"
