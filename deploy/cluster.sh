#!/usr/bin/env bash
# An example Berth cluster on one machine, everything on 127.0.0.1: three
# stateless berthd nodes behind haproxy (round-robin), sharing a
# PostgreSQL database (metadata) and an S3 bucket on Ceph radosgw (blobs).
#   deploy/cluster.sh start DIR [-- SERVE-ARGS...]
#   deploy/cluster.sh stop DIR
#   deploy/cluster.sh status DIR
#   deploy/cluster.sh node DIR N start|stop|kill
# start installs what is missing (haproxy, python3-yaml; PostgreSQL and
# Ceph through scripts/services/), reuses the engines named in the
# environment or starts its own under DIR, writes one configuration per
# node (deploy/berthd-node.yml filled in), starts the nodes, waits until
# each answers, starts haproxy (deploy/haproxy.cfg) and waits until it
# sees every node healthy.  It writes DIR/env:
#   BERTH_CLUSTER_URL        http://127.0.0.1:PORT (haproxy)
#   BERTH_CLUSTER_NODE_URLS  the nodes' own URLs, space-separated
#   BERTH_CLUSTER_CONFIG_FILE a node configuration for admin commands:
#                            berthd key revoke ID --config FILE
#   BERTH_CLUSTER_BACKEND    s3pg or fs
# and DIR/pids ("name pid" lines); a node's exit status goes to
# DIR/nodeN.exit, haproxy's log (which node served each request) to
# DIR/haproxy.log.  stop ends exactly those processes (a
# PID is signalled only while its command line still names DIR) and the
# engines start launched, and removes DIR.  `node` stops (SIGTERM), kills
# (SIGKILL) or starts one node again with its configuration, e.g. for a
# rolling upgrade.  SERVE-ARGS go to every `berthd serve`
# (e.g. --insecure-no-auth).
#
# Environment (all optional):
#   BERTHD                 berthd binary (default: berthd on PATH, else the
#                          build/berthd of this source tree)
#   BERTH_CLUSTER_BACKEND  s3pg (default): S3 + PostgreSQL; fs: one data
#                          directory shared by the nodes (filesystem blobs
#                          and SQLite work across processes of one machine)
#   BERTH_CLUSTER_PORT     haproxy's port (default 5000)
#   BERTH_CLUSTER_NODE_PORTS  the three nodes' ports (default: the next three)
#   BERTH_CLUSTER_CONFIG   a YAML file merged over every node's
#                          configuration (limits, auth, gc...); it cannot
#                          change a node's address or the shared state
#   BERTH_CLUSTER_LOG      one log file for all nodes (default DIR/nodeN.log)
#   s3pg: BERTH_PG_DSN (else PostgreSQL is started in DIR/pg on port
#         BERTH_CLUSTER_PG_PORT, default 15432); S3_ENDPOINT, S3_REGION,
#         S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY (else Ceph is started in
#         DIR/ceph, ports from CEPH_*_PORT, see scripts/services/ceph.sh);
#         BERTH_CLUSTER_S3_PREFIX, the key prefix (default berth/)
#   fs:   BERTH_CLUSTER_DATA, the shared data directory (default DIR/data)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
NODES=3
WAIT_SECONDS=${BERTH_CLUSTER_WAIT_SECONDS:-30}

die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 start DIR [-- SERVE-ARGS...] | stop DIR | status DIR | node DIR N start|stop|kill" >&2
	exit 2
}

abspath() {
	case $1 in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s/%s\n' "$(pwd)" "$1" ;;
	esac
}

missing_packages() {
	MISSING=()
	command -v haproxy >/dev/null 2>&1 || MISSING+=(haproxy)
	/usr/bin/python3 -c 'import yaml' 2>/dev/null || MISSING+=(python3-yaml)
	command -v curl >/dev/null 2>&1 || MISSING+=(curl)
	[ ${#MISSING[@]} -gt 0 ]
}

# Clusters started side by side (parallel tests) install one at a time;
# apt waits for a lock another program holds instead of failing.
install_missing() {
	missing_packages || return 0
	local lock=/tmp/berth-cluster-install.lock
	exec 8>>"$lock"
	flock -w 600 8 || die "waited 10 minutes for $lock"
	if missing_packages; then
		install_locked "${MISSING[@]}"
	fi
	exec 8>&-
}

install_locked() {
	local missing=("$@")
	echo "cluster.sh: installing ${missing[*]}" >&2
	local sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
	# The package's own service must not start (it would take port 80
	# with Debian's default configuration): policy-rc.d 101 says so.
	local policy=/usr/sbin/policy-rc.d own_policy=0 rc=0
	if [ ! -e "$policy" ] && [ -z "$sudo" ]; then
		printf '#!/bin/sh\n# cluster.sh: no service starts while it installs\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		own_policy=1
	fi
	$sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		rc=$?
	[ "$own_policy" = 1 ] && rm -f "$policy"
	[ "$rc" = 0 ] || die "installing ${missing[*]} failed"
}

find_berthd() {
	if [ -n "${BERTHD:-}" ]; then
		[ -x "$BERTHD" ] || die "BERTHD=$BERTHD is not executable"
		BERTHD=$(abspath "$BERTHD")
	elif command -v berthd >/dev/null 2>&1; then
		BERTHD=$(command -v berthd)
	elif [ -x "$SRC/build/berthd" ]; then
		BERTHD=$SRC/build/berthd
	else
		die "no berthd binary (set BERTHD, or build it: cmake -S . -B build && cmake --build build)"
	fi
}

# Whether a PID runs (a zombie counts as gone).
running() {
	local state
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

# Whether PID $1 is still the process this cluster started: its command
# line names a file under DIR (guards against a recycled PID).
ours() {
	running "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$DIR/"
}

# SIGTERM, a bounded wait (berthd drains for up to http.drain_timeout),
# then SIGKILL.
stop_pid() {
	local pid=$1 i
	ours "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 150; i++)); do
		running "$pid" || return 0
		sleep 0.1
	done
	echo "cluster.sh: pid $pid ignored SIGTERM for 15 s, killing it" >&2
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		running "$pid" || return 0
		sleep 0.1
	done
}

pid_of() {
	awk -v n="$1" '$1 == n { p = $2 } END { if (p) print p; else exit 1 }' "$DIR/pids" 2>/dev/null
}

# Nodes may be (re)started in parallel: DIR/pids is rewritten under a lock.
set_pid() {
	local name=$1 pid=$2
	(
		flock 9
		{
			grep -v "^$name " "$DIR/pids" 2>/dev/null || true
			echo "$name $pid"
		} >"$DIR/pids.$name.tmp"
		mv "$DIR/pids.$name.tmp" "$DIR/pids"
	) 9>"$DIR/pids.lock"
}

# GET /v2/ on URL answers 200 or 401.
answers() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1/v2/" 2>/dev/null) || true
	[ "$code" = 200 ] || [ "$code" = 401 ]
}

# Merge the YAML file $2 over $1 into $3; the node's address and the
# shared state (storage, database) of $1 always win.
merge_config() {
	/usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys, yaml
base = yaml.safe_load(open(sys.argv[1])) or {}
over = yaml.safe_load(open(sys.argv[2])) or {}
def merge(a, b):
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            merge(a[k], v)
        else:
            a[k] = v
keep = {k: base[k] for k in ("storage", "database") if k in base}
addr = base.get("http", {}).get("addr")
merge(base, over)
base.update(keep)
if addr is not None:
    base.setdefault("http", {})["addr"] = addr
with open(sys.argv[3], "w") as f:
    yaml.safe_dump(base, f, default_flow_style=False, sort_keys=False)
PY
}

# A value for the template: / and & and \ escaped for sed.
sed_value() { printf '%s' "$1" | sed -e 's/[\/&\\]/\\&/g'; }

# write_node_config N PORT: DIR/nodeN.yml from deploy/berthd-node.yml.
write_node_config() {
	local n=$1 port=$2 out=$DIR/node$1.yml
	(
		umask 077
		if [ "$BACKEND" = s3pg ]; then
			sed -e "s/@LISTEN@/127.0.0.1:$port/" \
				-e "s/@S3_REGION@/$(sed_value "$S3_REGION")/" \
				-e "s/@S3_ENDPOINT@/$(sed_value "$S3_ENDPOINT")/" \
				-e "s/@S3_BUCKET@/$(sed_value "$S3_BUCKET")/" \
				-e "s/@S3_PREFIX@/$(sed_value "$S3_PREFIX")/" \
				-e "s/@S3_ACCESS_KEY@/$(sed_value "$S3_ACCESS_KEY")/" \
				-e "s/@S3_SECRET_KEY@/$(sed_value "$S3_SECRET_KEY")/" \
				-e "s/@PG_DSN@/$(sed_value "$BERTH_PG_DSN")/" \
				"$HERE/berthd-node.yml" >"$out.tmp"
		else
			# The same node settings; the shared state is one local
			# directory instead of the bucket and the database.
			sed -e "s/@LISTEN@/127.0.0.1:$port/" -e '/^# ---- shared state/,$d' \
				"$HERE/berthd-node.yml" >"$out.tmp"
			printf 'storage:\n  filesystem:\n    rootdirectory: "%s"\n' "$DATA" >>"$out.tmp"
		fi
		if [ -n "${BERTH_CLUSTER_CONFIG:-}" ]; then
			merge_config "$out.tmp" "$BERTH_CLUSTER_CONFIG" "$out.merged" ||
				die "cannot merge $BERTH_CLUSTER_CONFIG into the node configuration"
			mv "$out.merged" "$out.tmp"
		fi
		mv "$out.tmp" "$out"
	)
}

node_log() {
	if [ -n "${BERTH_CLUSTER_LOG:-}" ]; then
		printf '%s\n' "$BERTH_CLUSTER_LOG"
	else
		printf '%s\n' "$DIR/node$1.log"
	fi
}

# start_node N: launch node N with its configuration and the serve
# arguments recorded at start; wait until it answers.
start_node() {
	local n=$1 port pid i log args=()
	port=$(sed -n "s/^node$n //p" "$DIR/ports")
	[ -n "$port" ] || die "no port recorded for node $n"
	if [ -s "$DIR/serve-args" ]; then
		mapfile -t args <"$DIR/serve-args"
	fi
	log=$(node_log "$n")
	# setsid: the node is not in the caller's process group, so a ^C in
	# the caller's terminal does not reach it; stop ends it by PID.  A
	# shell waits for it and records its exit status in DIR/nodeN.exit
	# (a clean shutdown is 0).
	rm -f "$DIR/node$n.pid" "$DIR/node$n.exit"
	# The working directory is DIR: whatever a node would write relative
	# to it stays there, not in the caller's directory.
	# shellcheck disable=SC2016 # expanded by the inner shell
	(cd "$DIR" && exec setsid bash -c '"$@" & echo $! >"$0.pid"; wait $!; echo $? >"$0.exit"' \
		"$DIR/node$n" "$BERTHD" serve --config "$DIR/node$n.yml" "${args[@]}") </dev/null >>"$log" 2>&1 &
	for ((i = 0; i < 50; i++)); do
		[ -s "$DIR/node$n.pid" ] && break
		sleep 0.02
	done
	pid=$(cat "$DIR/node$n.pid" 2>/dev/null) || die "node $n did not start"
	set_pid "node$n" "$pid"
	for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
		running "$pid" || {
			tail -n 20 "$log" >&2
			die "node $n (pid $pid) exited at start"
		}
		answers "http://127.0.0.1:$port" && break
		sleep 0.1
	done
	answers "http://127.0.0.1:$port" || die "node $n does not answer on 127.0.0.1:$port after ${WAIT_SECONDS}s"
	if [ "$BACKEND" = s3pg ] && grep -q "blobs: filesystem" "$log"; then
		die "node $n serves filesystem blobs despite storage.s3: this berthd has no S3/PostgreSQL drivers"
	fi
}

# Engines for s3pg: the ones named in the environment, else our own.
engines() {
	if [ -z "${BERTH_PG_DSN:-}" ]; then
		"$SRC/scripts/services/postgres.sh" start "$DIR/pg" "${BERTH_CLUSTER_PG_PORT:-15432}"
		echo pg >>"$DIR/engines"
		# shellcheck disable=SC1091
		BERTH_PG_DSN=$(. "$DIR/pg/env" && printf '%s' "$BERTH_PG_DSN")
	fi
	if [ -z "${S3_ENDPOINT:-}" ]; then
		"$SRC/scripts/services/ceph.sh" start "$DIR/ceph"
		echo ceph >>"$DIR/engines"
		set -a
		# shellcheck disable=SC1091
		. "$DIR/ceph/env"
		set +a
	fi
	: "${S3_REGION:=us-east-1}" "${S3_BUCKET:=berth}"
	if [ -z "${S3_ACCESS_KEY:-}" ] || [ -z "${S3_SECRET_KEY:-}" ]; then
		die "S3_ACCESS_KEY and S3_SECRET_KEY must be set with S3_ENDPOINT"
	fi
	case $S3_ENDPOINT in
	http://127.0.0.1:* | http://localhost:* | https://127.0.0.1:*) ;;
	*) die "S3_ENDPOINT must be on 127.0.0.1 for this example: $S3_ENDPOINT" ;;
	esac
	case $BERTH_PG_DSN in
	*@127.0.0.1:* | *@localhost:* | *@localhost/* | *@127.0.0.1/*) ;;
	*) die "BERTH_PG_DSN must point to 127.0.0.1 for this example" ;;
	esac
}

cmd_start() {
	local serve_args=("$@") n lb_port ports=() i
	[ -e "$DIR/pids" ] && die "$DIR/pids exists: stop the cluster first ($0 stop $DIR)"
	BACKEND=${BERTH_CLUSTER_BACKEND:-s3pg}
	case $BACKEND in s3pg | fs) ;; *) die "BERTH_CLUSTER_BACKEND must be s3pg or fs" ;; esac
	install_missing
	find_berthd
	mkdir -p "$DIR"
	DIR=$(cd "$DIR" && pwd)
	# Others may pass through (PostgreSQL's system user must reach DIR/pg)
	# but not list it; the node configurations, which hold the secrets,
	# are readable by their owner only.
	chmod 711 "$DIR"
	: >"$DIR/pids"
	trap start_failed EXIT
	lb_port=${BERTH_CLUSTER_PORT:-5000}
	if [ -n "${BERTH_CLUSTER_NODE_PORTS:-}" ]; then
		read -r -a ports <<<"$BERTH_CLUSTER_NODE_PORTS"
	else
		for ((n = 1; n <= NODES; n++)); do ports+=($((lb_port + n))); done
	fi
	[ ${#ports[@]} -eq $NODES ] || die "BERTH_CLUSTER_NODE_PORTS must name $NODES ports"
	: >"$DIR/ports"
	for ((n = 1; n <= NODES; n++)); do echo "node$n ${ports[n - 1]}" >>"$DIR/ports"; done
	printf '%s\n' "${serve_args[@]}" >"$DIR/serve-args"
	[ ${#serve_args[@]} -gt 0 ] || : >"$DIR/serve-args"
	printf '%s\n' "$BERTHD" >"$DIR/berthd"

	if [ "$BACKEND" = s3pg ]; then
		engines
		S3_PREFIX=${BERTH_CLUSTER_S3_PREFIX:-berth/}
	else
		DATA=$(abspath "${BERTH_CLUSTER_DATA:-$DIR/data}")
		mkdir -p "$DATA"
	fi
	echo "$BACKEND" >"$DIR/backend"
	for ((n = 1; n <= NODES; n++)); do
		write_node_config "$n" "${ports[n - 1]}"
	done
	# The first node creates or migrates the schema alone; the others
	# then find it in place.
	for ((n = 1; n <= NODES; n++)); do
		start_node "$n"
	done

	export BERTH_LB_ADDR=127.0.0.1:$lb_port BERTH_LB_PROTO=http BERTH_LB_ERRORS=$DIR/errors
	rm -rf "$DIR/errors"
	cp -r "$HERE/errors" "$DIR/errors"
	export BERTH_NODE1=127.0.0.1:${ports[0]} BERTH_NODE2=127.0.0.1:${ports[1]} BERTH_NODE3=127.0.0.1:${ports[2]}
	haproxy -c -q -f "$HERE/haproxy.cfg" || die "haproxy rejects $HERE/haproxy.cfg"
	# The configuration's path is copied into DIR so that the process's
	# command line names DIR (see `ours`).
	cp "$HERE/haproxy.cfg" "$DIR/haproxy.cfg"
	setsid haproxy -db -f "$DIR/haproxy.cfg" </dev/null >>"$DIR/haproxy.log" 2>&1 &
	set_pid haproxy "$!"
	# Every node healthy in haproxy's eyes: with rise 2 and inter 1s,
	# about two seconds after the first check.
	local url=http://127.0.0.1:$lb_port ok=0
	for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
		running "$(pid_of haproxy)" || die "haproxy exited: $(tail -n 5 "$DIR/haproxy.log")"
		if answers "$url" && healthy_nodes "$url"; then
			ok=1
			break
		fi
		sleep 0.1
	done
	[ "$ok" = 1 ] || die "haproxy on $url does not reach all $NODES nodes after ${WAIT_SECONDS}s"

	local urls=() cfg_q
	for ((n = 1; n <= NODES; n++)); do urls+=("http://127.0.0.1:${ports[n - 1]}"); done
	cfg_q=$DIR/node1.yml
	cat >"$DIR/env.tmp" <<EOF
BERTH_CLUSTER_URL=$url
BERTH_CLUSTER_NODE_URLS="${urls[*]}"
BERTH_CLUSTER_CONFIG_FILE=$cfg_q
BERTH_CLUSTER_BACKEND=$BACKEND
BERTH_CLUSTER_DIR=$DIR
EOF
	mv "$DIR/env.tmp" "$DIR/env"
	trap - EXIT
	echo "cluster.sh: $NODES nodes ($BACKEND) behind haproxy on $url; env in $DIR/env" >&2
}

# Every node answers its own GET /v2/, and NODES+1 requests in a row
# through the balancer succeed (round-robin: each node served one).
healthy_nodes() {
	local n port
	for ((n = 1; n <= NODES; n++)); do
		port=$(sed -n "s/^node$n //p" "$DIR/ports")
		answers "http://127.0.0.1:$port" || return 1
	done
	for ((n = 0; n <= NODES; n++)); do
		answers "$1" || return 1
	done
	return 0
}

start_failed() {
	local rc=$?
	[ "$rc" -eq 0 ] && return 0
	echo "cluster.sh: start failed; stopping what was started (logs kept in $DIR)" >&2
	stop_all
	exit "$rc"
}

stop_all() {
	local name pid
	if [ -f "$DIR/pids" ]; then
		# haproxy first, so that no new request reaches a node that is
		# draining; then the nodes, together.
		pid=$(pid_of haproxy) && stop_pid "$pid"
		local jobs=()
		while read -r name pid; do
			case $name in node*) stop_pid "$pid" & jobs+=("$!") ;; esac
		done <"$DIR/pids"
		[ ${#jobs[@]} -eq 0 ] || wait "${jobs[@]}"
	fi
	# Each node's supervising shell also wrote its PID beside it: a node
	# whose line in DIR/pids was lost (a start cut short) is still found.
	local f
	for f in "$DIR"/node*.pid; do
		[ -s "$f" ] || continue
		stop_pid "$(cat "$f")"
	done
	if [ -f "$DIR/engines" ]; then
		grep -qx ceph "$DIR/engines" && { "$SRC/scripts/services/ceph.sh" stop "$DIR/ceph" || true; }
		grep -qx pg "$DIR/engines" && { "$SRC/scripts/services/postgres.sh" stop "$DIR/pg" || true; }
	fi
	rm -f "$DIR/pids" "$DIR/engines"
}

cmd_stop() {
	[ -d "$DIR" ] || return 0
	DIR=$(cd "$DIR" && pwd)
	stop_all
	rm -rf -- "$DIR"
}

cmd_status() {
	[ -f "$DIR/pids" ] || {
		echo "not running ($DIR/pids missing)"
		return 3
	}
	DIR=$(cd "$DIR" && pwd)
	local name pid port status=0
	while read -r name pid; do
		port=$(sed -n "s/^$name //p" "$DIR/ports")
		if ours "$pid"; then
			if [ -n "$port" ]; then
				if answers "http://127.0.0.1:$port"; then
					echo "$name pid $pid 127.0.0.1:$port up"
				else
					echo "$name pid $pid 127.0.0.1:$port not answering"
					status=1
				fi
			else
				echo "$name pid $pid running"
			fi
		else
			echo "$name pid $pid gone"
			status=1
		fi
	done <"$DIR/pids"
	[ -f "$DIR/env" ] && sed -n 's/^BERTH_CLUSTER_URL=/url /p' "$DIR/env"
	return $status
}

cmd_node() {
	local n=$1 action=$2 pid
	DIR=$(cd "$DIR" && pwd)
	[ -f "$DIR/pids" ] || die "no cluster in $DIR"
	case $n in [1-9]) ;; *) die "node number must be 1..$NODES" ;; esac
	[ "$n" -le $NODES ] || die "node number must be 1..$NODES"
	BACKEND=$(cat "$DIR/backend")
	BERTHD=$(cat "$DIR/berthd")
	case $action in
	stop)
		pid=$(pid_of "node$n") && stop_pid "$pid"
		;;
	kill)
		pid=$(pid_of "node$n") || die "node $n has no pid"
		ours "$pid" || return 0
		kill -KILL "$pid"
		local i
		for ((i = 0; i < 50; i++)); do
			running "$pid" || return 0
			sleep 0.1
		done
		die "node $n (pid $pid) survived SIGKILL"
		;;
	start)
		pid=$(pid_of "node$n") && ours "$pid" && die "node $n already runs (pid $pid)"
		start_node "$n"
		;;
	*) usage ;;
	esac
}

[ $# -ge 2 ] || usage
ACTION=$1
DIR=$(abspath "$2")
[ "$DIR" != / ] || die "refusing DIR=/"
shift 2
case $ACTION in
start)
	if [ $# -gt 0 ]; then
		[ "$1" = -- ] || usage
		shift
	fi
	cmd_start "$@"
	;;
stop) [ $# -eq 0 ] || usage; cmd_stop ;;
status) [ $# -eq 0 ] || usage; cmd_status ;;
node) [ $# -eq 2 ] || usage; cmd_node "$1" "$2" ;;
*) usage ;;
esac
