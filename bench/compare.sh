#!/usr/bin/env bash
# Request rates of two berthd binaries side by side: for a change that must
# not cost speed (a refactoring), build the old tree next to the new one and
# compare them on this machine, the runs interleaved (old new, new old, ...)
# so that drift in the host's load hits both alike.  Both servers run with
# authentication on; each request carries an access key.
#
# Usage: bench/compare.sh OLD_BERTHD NEW_BERTHD
#   ROUNDS=7 rounds per measurement, SECS=5 seconds per ab run, 64 connections
# Measurements: HEAD of a 2 MiB blob (Bearer <access key>), GET of a
# manifest (Bearer), HEAD with Basic KEY:<access key>.  Printed: every run
# (req/s, failed, non-2xx, server CPU µs per request from /proc), then the
# medians and the ratio new/old.
set -euo pipefail
OLD=$1 NEW=$2 ROUNDS=${ROUNDS:-7} SECS=${SECS:-5}
for tool in ab curl python3 sha256sum; do
	command -v "$tool" >/dev/null || { echo "compare.sh: $tool is missing (apache2-utils, curl, python3)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/berth-compare.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start NAME BINARY: a server with an account, a key and the test content.
start() {
	local d=$W/$1 port acct key i
	port=$(free_port)
	mkdir -p "$d"
	cat >"$d/config.yml" <<EOC
http: {addr: "127.0.0.1:$port"}
storage: {filesystem: {rootdirectory: "$d/data"}}
log: {level: warn, accesslog: {disabled: true}}
EOC
	acct=$("$2" account create --config "$d/config.yml" | awk '{print $1}')
	key=$("$2" key create --account "$acct" --config "$d/config.yml" | awk '{print $NF}')
	"$2" serve --config "$d/config.yml" >"$d/log" 2>&1 &
	PIDS+=($!)
	echo "$port $acct $key $!" >"$d/info"
	for i in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" -H "Authorization: Bearer $key" && break; sleep 0.1; done
	local base="http://127.0.0.1:$port/v2/$acct/bench" auth="Authorization: Bearer $key"
	curl -sf -o /dev/null -X POST -H "$auth" --data-binary @"$W/blob" "$base/blobs/uploads/?digest=$BLOB"
	curl -sf -o /dev/null -X POST -H "$auth" --data-binary @"$W/config" "$base/blobs/uploads/?digest=$CONFIG"
	curl -sf -o /dev/null -X PUT -H "$auth" -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
		--data-binary @"$W/manifest" "$base/manifests/v1"
}

head -c 2097152 /dev/urandom >"$W/blob"
printf '{}' >"$W/config"
BLOB=sha256:$(sha256sum "$W/blob" | cut -d' ' -f1)
CONFIG=sha256:$(sha256sum "$W/config" | cut -d' ' -f1)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":2097152}]}' \
	"$CONFIG" "$BLOB" >"$W/manifest"
start old "$OLD"
start new "$NEW"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# run KIND NAME: "req/s failed non2xx cpu-us-per-request"
run() {
	local port acct key pid c0 c1 out
	read -r port acct key pid <"$W/$2/info"
	local url="http://127.0.0.1:$port/v2/$acct/bench"
	c0=$(cpu_ticks "$pid")
	case $1 in
	head) out=$(ab -k -i -c 64 -t "$SECS" -n 10000000 -H "Authorization: Bearer $key" "$url/blobs/$BLOB" 2>/dev/null) ;;
	get) out=$(ab -k -c 64 -t "$SECS" -n 10000000 -H "Authorization: Bearer $key" \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' "$url/manifests/v1" 2>/dev/null) ;;
	basic) out=$(ab -k -i -c 64 -t "$SECS" -n 10000000 -A "KEY:$key" "$url/blobs/$BLOB" 2>/dev/null) ;;
	esac
	c1=$(cpu_ticks "$pid")
	awk -v c=$((c1 - c0)) -v s="$SECS" -v hz="$(getconf CLK_TCK)" '
		/Requests per second/ {r = $4} /Failed requests/ {f = $3} /Non-2xx/ {e = $3}
		END {printf "%s %d %d %.1f\n", r, f, e, (r > 0 ? c * 1e6 / hz / (r * s) : 0)}' <<<"$out"
}

printf '%-6s %-4s %10s %6s %6s %8s\n' kind bin 'req/s' failed non2xx 'cpu-us'
for kind in head get basic; do
	for r in $(seq "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then order="old new"; else order="new old"; fi
		for n in $order; do
			read -r rate failed non2xx cpu < <(run $kind $n)
			printf '%-6s %-4s %10s %6s %6s %8s\n' $kind $n "$rate" "$failed" "$non2xx" "$cpu" | tee -a "$W/results"
		done
	done
done
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo
echo "| request (64 connections, key auth) | old req/s | new req/s | new/old | CPU µs/request old → new |"
echo "|---|---|---|---|---|"
for kind in head get basic; do
	o=$(awk -v k=$kind '$1 == k && $2 == "old" {print $3}' "$W/results" | median)
	n=$(awk -v k=$kind '$1 == k && $2 == "new" {print $3}' "$W/results" | median)
	oc=$(awk -v k=$kind '$1 == k && $2 == "old" {print $6}' "$W/results" | median)
	nc=$(awk -v k=$kind '$1 == k && $2 == "new" {print $6}' "$W/results" | median)
	printf '| %s | %s | %s | %s | %s → %s |\n' $kind "$o" "$n" "$(awk -v a="$n" -v b="$o" 'BEGIN {printf "%.3f", a / b}')" "$oc" "$nc"
done
