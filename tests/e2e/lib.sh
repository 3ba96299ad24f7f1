# Shared helpers for the end-to-end tests: every tests/e2e/test_*.sh sources
# this file, starts its own berthd on a free loopback port with a fresh data
# directory, talks to it with curl and counts assertions.  The EXIT trap stops
# every server the script started, removes the temporary files and prints the
# summary line "N passed, N failed"; the script then exits 1 if anything failed
# (or if it stopped before calling berth_done), else 0.
#
# Environment:
#   BERTHD        the server binary (default: $BERTH_SRC/build/berthd, else
#                 the build/berthd next to this file's ../..)
#   BERTH_SRC     the source tree (set by ctest)
#   E2E_VERBOSE=1 print the headers and body of every request
#   E2E_KEEP=1    keep the temporary directory (its path is printed)
#
# Servers:
#   berth_start [extra berthd args...]  start "$BERTHD serve --listen
#       127.0.0.1:PORT --data-dir DIR ARGS..." and wait (up to ~10 s) until
#       GET /v2/ answers.  Sets BERTH_PID, BERTH_PORT, BERTH_URL
#       (http://127.0.0.1:PORT), BERTH_DATA (the data dir), BERTH_LOG
#       (DIR/../berthd.log).  Returns 1 (and counts a failure) if it never
#       answers.  Starting again replaces those variables; the first server
#       keeps running until berth_stop or exit (save the variables to go back).
#   berth_stop      SIGTERM, wait up to ~10 s, then SIGKILL; returns berthd's
#                   exit status (BERTH_EXIT as well)
#   berth_kill9     SIGKILL, no draining
#   berth_restart   berth_stop, then start again on the same port, data dir
#                   and arguments
#
# Cluster (BERTH_E2E_TARGET=cluster): the same tests against three berthd
# nodes behind haproxy, started by deploy/cluster.sh.  The backend is
# BERTH_CLUSTER_BACKEND: s3pg (PostgreSQL + S3 from the environment that
# tests/services/run.sh sets: BERTH_PG_*, S3_*; the default when that
# environment is there; every berth_start gets a database and a key prefix
# of its own, dropped and emptied at exit) or fs (one data directory shared
# by the nodes; the default otherwise).
#   berth_start [args]  starts a cluster; BERTH_URL is haproxy's,
#       BERTH_PORT its port, BERTH_PID node 1's PID, BERTH_DATA the shared
#       data dir (fs) or an empty one (s3pg), BERTH_LOG the nodes' common
#       log, BERTH_LB_LOG haproxy's (one line per request, naming the node
#       that served it: "berthd/nodeN"), BERTH_CLUSTER_CONFIG_FILE a node
#       configuration.  --config FILE is merged over every node's
#       configuration; other arguments go to every `berthd serve`.
#   berth_stop / berth_kill9 / berth_restart   all nodes (haproxy stays)
#   node_url N          print node N's own URL (http://127.0.0.1:PORT)
#   node_stop N / node_kill9 N / node_start N   one node
#   node_pid N          print node N's PID
#   e2e_at_exit CMD     run CMD at exit, once the clusters are stopped
# BERTHD is then a wrapper that runs berthd with the cluster's
# configuration first (a --config of the caller is merged over it), so an
# admin command a test runs ("$BERTHD" key revoke ...) reaches the shared
# state; the real binary is BERTHD_BIN.
#
# Requests (every request has a 30 s time limit and goes to 127.0.0.1 only):
#   req METHOD PATH-or-URL [curl args...]
#       PATH is relative to BERTH_URL ("/v2/..."); a full http://127.0.0.1 URL
#       (e.g. an absolute Location) is used as is.  HEAD uses curl -I (and
#       so cannot see a body sent by mistake).  Sets:
#         REQ_STATUS     3 digits, 000 if the connection failed
#         REQ_DESC       "METHOD PATH", shortened for the log
#         REQ_HDRS       file: headers of the final response (no 100
#                        Continue block), CR stripped
#         REQ_BODY_FILE  file: the raw body
#         REQ_BODY       the body as text (up to 1 MiB, up to a NUL byte)
#   hdr NAME        print the value of the response header NAME (the last
#                   one; case-insensitive); returns 1 if absent
#   hdr_count NAME  print how many NAME headers the response has
#   url_of LOCATION turn a Location value (absolute or relative) into a URL

# Assertions (each counts one pass or one fail; on failure the response is
# shown):
#   expect_status CODE                  REQ_STATUS == CODE
#   expect_status_in CODE...            REQ_STATUS is one of them
#   expect_header NAME REGEX            header present, whole value matches
#                                       the extended REGEX
#   expect_header_eq NAME VALUE         header present, value == VALUE exactly
#   expect_no_header NAME
#   expect_json JQ-EXPR EXPECTED        jq -c -r JQ-EXPR on the body == EXPECTED
#   expect_body_file FILE               body is byte-identical to FILE
#   expect_body_empty
#   expect_oci_error                    JSON Content-Type and a body
#                                       {"errors":[{code,message,..}]};
#                                       sets E2E_CODES ("A,B")
#   expect_error_code CODE              expect_oci_error + some code == CODE
#   expect_eq NAME GOT WANT             plain string comparison
#   expect_match NAME GOT REGEX
#   expect_link_next PATH N LAST        one Link: <PATH?n=N&last=LAST>; rel="next"
#   expect_error_code_in CODE...        like expect_error_code, any of them
#   ok NAME / fail NAME [details]       count by hand
#   section TITLE                       print a heading
#   berth_done                          mark the normal end of the script
#
# Content (deterministic):
#   make_blob FILE SIZE SEED     SIZE bytes of AES-CTR keystream keyed by SEED
#   digest_of FILE [sha256|sha512]  print "alg:hex"
#   size_of FILE
#   push_blob NAME FILE [sha256|sha512]  POST + PUT monolithic upload; sets
#                                   BLOB_DIGEST; counts a failure unless 201
#                                   (call it directly, not inside $(...))
#   make_manifest OUT CONFIG_FILE CONFIG_TYPE [LAYER_FILE...]
#       write a compact OCI image manifest (layers typed
#       application/vnd.oci.image.layer.v1.tar+gzip); the blobs are not pushed
#   push_manifest NAME REF FILE [CONTENT-TYPE]  PUT the exact bytes of FILE;
#       default type: the file's mediaType, else the OCI manifest type;
#       leaves the response in REQ_* (no assertion)
#
# Pagination: link_next (prints the Link target), query_param URL NAME.
#
# Names: BERTH_TENANT is the fixed tenant prefix; use "$BERTH_TENANT/app".
# Media types: MT_OCI_{MANIFEST,INDEX,CONFIG,LAYER}, MT_DOCKER_{MANIFEST,
# LIST,CONFIG,LAYER}.  Scratch space: E2E_WORK (removed at exit; E2E_TMP is
# its parent, holding one srvN/ directory per started server).

# shellcheck shell=bash
# Variables set here are read by the scripts that source this file.
# shellcheck disable=SC2034

BERTH_E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${BERTHD:-}" ]; then
	if [ -n "${BERTH_SRC:-}" ] && [ -x "$BERTH_SRC/build/berthd" ]; then
		BERTHD=$BERTH_SRC/build/berthd
	else
		BERTHD=$BERTH_E2E_DIR/../../build/berthd
	fi
fi
export BERTHD

BERTH_TENANT=0146e9b57080961e2c83536300000000
MT_OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
MT_OCI_INDEX=application/vnd.oci.image.index.v1+json
MT_OCI_CONFIG=application/vnd.oci.image.config.v1+json
MT_OCI_LAYER=application/vnd.oci.image.layer.v1.tar+gzip
MT_DOCKER_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
MT_DOCKER_LIST=application/vnd.docker.distribution.manifest.list.v2+json
MT_DOCKER_CONFIG=application/vnd.docker.container.image.v1+json
MT_DOCKER_LAYER=application/vnd.docker.image.rootfs.diff.tar.gzip

E2E_PASS=0
E2E_FAIL=0
E2E_DONE=0
E2E_PIDS=()
BERTH_ACCOUNT=${BERTH_ACCOUNT:-$BERTH_TENANT}
BERTH_KEY=
BERTH_AUTH_HDR=()
E2E_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)
E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/berth-e2e-$E2E_NAME.XXXXXX")
E2E_WORK=$E2E_TMP/work
mkdir -p "$E2E_WORK"
E2E_SRV_SEQ=0
# The system python starts faster than a pyenv shim.
E2E_PY=python3
[ -x /usr/bin/python3 ] && E2E_PY=/usr/bin/python3

BERTH_E2E_TARGET=${BERTH_E2E_TARGET:-single}
# S3 + PostgreSQL when the engines' environment is there (tests/services/
# run.sh), else one shared data directory.
if [ -z "${BERTH_CLUSTER_BACKEND:-}" ]; then
	BERTH_CLUSTER_BACKEND=fs
	[ -n "${BERTH_PG_DSN:-}" ] && [ -n "${S3_ENDPOINT:-}" ] && BERTH_CLUSTER_BACKEND=s3pg
fi
BERTHD_BIN=$BERTHD
E2E_AT_EXIT=()     # commands e2e_at_exit registered, run last first
E2E_CLUSTERS=()    # cluster directories, stopped at exit
E2E_PG_DBS=()      # databases made for clusters, dropped at exit
E2E_S3_PREFIXES=() # key prefixes used by clusters, emptied at exit
BERTH_CLUSTER_DIR=
BERTH_CLUSTER_CONFIG_FILE=
BERTH_LB_LOG=
BERTH_NODE_URLS=()
if [ "$BERTH_E2E_TARGET" = cluster ]; then
	mkdir -p "$E2E_TMP/bin"
	# Admin commands and any server a test starts itself go through the
	# cluster's configuration (copied here at berth_start), so that they
	# see the shared database and bucket; a --config of the caller is
	# merged over it.
	cat >"$E2E_TMP/bin/berthd" <<WRAPPER
#!/bin/bash
cfg=$E2E_TMP/cluster-admin.yml
real=$BERTHD
[ -f "\$cfg" ] || exec "\$real" "\$@"
args=() over=
while [ \$# -gt 0 ]; do
	case \$1 in
	--config) over=\${2:-}; shift; [ \$# -gt 0 ] && shift ;;
	*) args+=("\$1"); shift ;;
	esac
done
if [ -n "\$over" ]; then
	merged=\$(mktemp "$E2E_TMP/bin/merged.XXXXXX") || exit 2
	$E2E_PY "$BERTH_E2E_DIR/cluster_config.py" "\$cfg" "\$over" "\$merged" || exit 2
	cfg=\$merged
fi
exec "\$real" --config "\$cfg" "\${args[@]}"
WRAPPER
	chmod 755 "$E2E_TMP/bin/berthd"
	BERTHD=$E2E_TMP/bin/berthd
	export BERTHD BERTHD_BIN
fi

BERTH_PID=
BERTH_PORT=
BERTH_URL=
BERTH_DATA=
BERTH_LOG=
BERTH_ARGS=()
BERTH_EXIT=

REQ_STATUS=
REQ_DESC=
REQ_BODY=
REQ_HDRS=$E2E_WORK/resp.hdrs
REQ_BODY_FILE=$E2E_WORK/resp.body
REQ_RAW_HDRS=$E2E_WORK/resp.rawhdrs

# ---------------------------------------------------------------- counting

section() { printf '\n== %s\n' "$*"; }

ok() {
	E2E_PASS=$((E2E_PASS + 1))
	printf 'ok   %s\n' "$1"
}

fail() {
	E2E_FAIL=$((E2E_FAIL + 1))
	printf 'FAIL %s\n' "$1"
	if [ $# -gt 1 ]; then
		printf '     %s\n' "${@:2}"
	fi
}

# Shows the last response after a failed assertion about it.
show_response() {
	printf '     response to %s: status %s\n' "$REQ_DESC" "$REQ_STATUS"
	if [ -s "$REQ_HDRS" ]; then
		sed 's/^/     < /' "$REQ_HDRS" | head -n 30
	fi
	if [ -s "$REQ_BODY_FILE" ]; then
		printf '     body: '
		head -c 600 "$REQ_BODY_FILE" | tr -c '[:print:]\n' '.'
		printf '\n'
	fi
}

fail_resp() {
	fail "$@"
	show_response
}

berth_done() { E2E_DONE=1; }

e2e_cleanup() {
	local rc=$?
	local pid
	trap - EXIT
	# Writes to a closed pipe must fail quietly here, not end the cleanup.
	trap '' PIPE
	for pid in "${E2E_PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			e2e_stop_pid "$pid" >/dev/null 2>&1
		fi
	done
	# 77: the script skipped itself (a tool it needs is missing) before
	# anything failed; ctest reports that as a skip.
	if [ "$rc" = 77 ] && [ "$E2E_DONE" != 1 ] && [ "$E2E_FAIL" = 0 ]; then
		E2E_DONE=skip
	fi
	if [ "$E2E_DONE" = 0 ]; then
		fail "script ended early (exit status $rc) before berth_done"
	fi
	local c
	for c in "${E2E_CLUSTERS[@]}"; do
		[ -d "$c" ] || continue
		[ -f "$c/haproxy.log" ] && cp "$c/haproxy.log" "$c.haproxy.log"
		bash "$E2E_CLUSTER_SH" stop "$c" >/dev/null 2>&1 ||
			printf 'warning: stopping the cluster in %s failed\n' "$c"
	done
	e2e_cluster_engines_cleanup
	local i
	for ((i = ${#E2E_AT_EXIT[@]} - 1; i >= 0; i--)); do
		eval "${E2E_AT_EXIT[i]}" >/dev/null 2>&1 || printf 'warning: at exit: %s failed\n' "${E2E_AT_EXIT[i]}"
	done
	if [ "$E2E_FAIL" -gt 0 ]; then
		for f in "$E2E_TMP"/srv*/cluster*.haproxy.log; do
			[ -f "$f" ] || continue
			printf '\n-- last lines of %s\n' "$f"
			tail -n 20 "$f"
		done
		for f in "$E2E_TMP"/srv*/berthd.log; do
			[ -f "$f" ] || continue
			printf '\n-- last lines of %s\n' "$f"
			tail -n 40 "$f"
		done
	fi
	if [ "${E2E_KEEP:-0}" = 1 ]; then
		printf 'kept %s\n' "$E2E_TMP"
	else
		rm -rf "$E2E_TMP"
	fi
	printf '%d passed, %d failed\n' "$E2E_PASS" "$E2E_FAIL"
	if [ "$E2E_FAIL" -gt 0 ]; then
		exit 1
	fi
	[ "$E2E_DONE" = skip ] && exit 77
	exit 0
}
trap e2e_cleanup EXIT
# Signals go through the EXIT trap too, so no server outlives the script
# (PIPE: the output was piped into something that stopped reading).
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# ---------------------------------------------------------------- servers

# Prints a free TCP port on 127.0.0.1 (the kernel's choice).
e2e_free_port() {
	local port
	port=$("$E2E_PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null)
	if [ -n "$port" ]; then
		printf '%s\n' "$port"
		return 0
	fi
	# Fallback: probe a pseudo-random range, bounded to 200 tries.
	local i
	for i in $(seq 1 200); do
		port=$((20000 + (RANDOM * 7 + i * 131) % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			printf '%s\n' "$port"
			return 0
		fi
	done
	return 1
}

# Waits until GET /v2/ on BERTH_URL answers with 200 or 401, or the process
# dies; bounded to ~10 s.
e2e_wait_ready() {
	local i code
	for i in $(seq 1 100); do
		if ! kill -0 "$BERTH_PID" 2>/dev/null; then
			return 1
		fi
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BERTH_URL/v2/" 2>/dev/null)
		case $code in
		200 | 401) return 0 ;;
		esac
		sleep 0.1
	done
	return 1
}

# Starts berthd with the current BERTH_PORT/BERTH_DATA/BERTH_ARGS.
e2e_launch() {
	"$BERTHD" serve --listen "127.0.0.1:$BERTH_PORT" --data-dir "$BERTH_DATA" \
		"${BERTH_ARGS[@]}" >>"$BERTH_LOG" 2>&1 &
	BERTH_PID=$!
	E2E_PIDS+=("$BERTH_PID")
	BERTH_URL=http://127.0.0.1:$BERTH_PORT
	e2e_wait_ready
}

berth_start() {
	local dir attempt
	if [ "$BERTH_E2E_TARGET" = cluster ]; then
		e2e_cluster_start "$@"
		return
	fi
	if [ ! -x "$BERTHD" ]; then
		fail "berthd binary not found at $BERTHD"
		return 1
	fi
	E2E_SRV_SEQ=$((E2E_SRV_SEQ + 1))
	dir=$E2E_TMP/srv$E2E_SRV_SEQ
	mkdir -p "$dir"
	BERTH_DATA=$(mktemp -d "$dir/data.XXXXXX")
	BERTH_LOG=$dir/berthd.log
	BERTH_ARGS=("$@")
	# BERTH_OPEN=1: authentication off (tests of other things that drive
	# clients without credentials).  BERTH_AUTO_KEY=1: an account with
	# the id in BERTH_ACCOUNT and a push key (BERTH_KEY) that every req
	# sends as a bearer credential.
	[ "${BERTH_OPEN:-0}" = 1 ] && BERTH_ARGS+=(--insecure-no-auth)
	if [ "${BERTH_AUTO_KEY:-0}" = 1 ]; then
		"$BERTHD" account create --id "$BERTH_ACCOUNT" --data-dir "$BERTH_DATA" >/dev/null &&
			BERTH_KEY=$("$BERTHD" key create --account "$BERTH_ACCOUNT" --data-dir "$BERTH_DATA" --label e2e) &&
			BERTH_KEY=${BERTH_KEY#* } || {
			fail "cannot create the test account and key"
			return 1
		}
		BERTH_AUTH_HDR=(-H "Authorization: Bearer $BERTH_KEY")
	fi
	# A port can be taken between choosing and binding; try a few.
	for attempt in 1 2 3; do
		BERTH_PORT=$(e2e_free_port) || break
		if e2e_launch; then
			return 0
		fi
		if kill -0 "$BERTH_PID" 2>/dev/null; then
			e2e_stop_pid "$BERTH_PID" >/dev/null 2>&1
			break # running but never answered: not a port clash
		fi
		if ! grep -qi 'in use' "$BERTH_LOG" 2>/dev/null; then
			break
		fi
		printf '(port %s taken, retrying: attempt %d)\n' "$BERTH_PORT" "$attempt"
	done
	fail "berthd did not start (log $BERTH_LOG)"
	tail -n 20 "$BERTH_LOG" 2>/dev/null | sed 's/^/     | /'
	return 1
}

# SIGTERM, bounded wait (~10 s), then SIGKILL.  Prints nothing; returns the
# process's exit status.
e2e_stop_pid() {
	local pid=$1 i rc
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 1 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		printf 'berthd %s ignored SIGTERM for 10 s, killing it\n' "$pid"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	return $rc
}

berth_stop() {
	if [ -n "$BERTH_CLUSTER_DIR" ]; then
		e2e_cluster_nodes stop
		return
	fi
	[ -n "$BERTH_PID" ] || return 0
	e2e_stop_pid "$BERTH_PID"
	BERTH_EXIT=$?
	return $BERTH_EXIT
}

berth_kill9() {
	if [ -n "$BERTH_CLUSTER_DIR" ]; then
		e2e_cluster_nodes kill
		return 0
	fi
	[ -n "$BERTH_PID" ] || return 0
	kill -KILL "$BERTH_PID" 2>/dev/null
	wait "$BERTH_PID" 2>/dev/null
	e2e_forget_pid "$BERTH_PID"
	return 0
}

# Drop a reaped PID from the cleanup list, so cleanup never signals a
# process that later got the same number.
e2e_forget_pid() {
	local keep=() pid
	for pid in "${E2E_PIDS[@]}"; do
		[ "$pid" = "$1" ] || keep+=("$pid")
	done
	E2E_PIDS=("${keep[@]}")
}

berth_restart() {
	berth_stop
	if [ -n "$BERTH_CLUSTER_DIR" ]; then
		e2e_cluster_nodes start && return 0
		fail "the cluster's nodes did not restart (log $BERTH_LOG)"
		tail -n 20 "$BERTH_LOG" 2>/dev/null | sed 's/^/     | /'
		return 1
	fi
	if e2e_launch; then
		return 0
	fi
	fail "berthd did not restart on port $BERTH_PORT (log $BERTH_LOG)"
	tail -n 20 "$BERTH_LOG" 2>/dev/null | sed 's/^/     | /'
	return 1
}

# ---------------------------------------------------------------- cluster

E2E_CLUSTER_SH=$BERTH_E2E_DIR/../../deploy/cluster.sh

# psql as the PostgreSQL superuser, through the engines' unix socket (the
# superuser logs in nowhere else); as root, as the server's system user.
e2e_pg_admin() {
	local -a as=()
	[ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
	"${as[@]}" "${BERTH_PG_BIN:-/usr/lib/postgresql/15/bin}/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$BERTH_PG_SOCKET_DIR" \
		-p "$BERTH_PG_PORT" -d postgres "$@"
}

# curl with SigV4 and the engines' S3 credentials (radosgw wants
# x-amz-content-sha256; curl signs it as given).
e2e_s3() {
	curl -sS --max-time 30 --aws-sigv4 "aws:amz:${S3_REGION:-us-east-1}:s3" \
		--user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}

# e2e_s3_keys PREFIX: print the keys under PREFIX (bounded: 50 pages of
# 1000).  Query parameters go in sorted order: curl signs them as written.
e2e_s3_keys() {
	local prefix=$1 page token='' out
	for page in $(seq 1 50); do
		if [ -n "$token" ]; then
			out=$(e2e_s3 -G "$S3_ENDPOINT/$S3_BUCKET" --data-urlencode "continuation-token=$token" \
				--data-urlencode list-type=2 --data-urlencode "prefix=$prefix") || return 1
		else
			out=$(e2e_s3 -G "$S3_ENDPOINT/$S3_BUCKET" --data-urlencode list-type=2 \
				--data-urlencode "prefix=$prefix") || return 1
		fi
		grep -o '<Key>[^<]*</Key>' <<<"$out" | sed -e 's/^<Key>//' -e 's/<\/Key>$//'
		token=$(grep -o '<NextContinuationToken>[^<]*</NextContinuationToken>' <<<"$out" |
			sed -e 's/^<[^>]*>//' -e 's/<[^>]*>$//')
		[ -n "$token" ] || return 0
	done
}

# Drop the databases and empty the key prefixes the clusters used, so
# that the shared engines do not fill up run after run (radosgw's OSD
# keeps objects in memory).
e2e_cluster_engines_cleanup() {
	local db prefix key id up
	for db in "${E2E_PG_DBS[@]}"; do
		e2e_pg_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 ||
			printf 'warning: could not drop database %s\n' "$db"
	done
	for prefix in "${E2E_S3_PREFIXES[@]}"; do
		while IFS= read -r key; do
			[ -n "$key" ] || continue
			e2e_s3 -o /dev/null -X DELETE "$S3_ENDPOINT/$S3_BUCKET/$key" 2>/dev/null || true
		done < <(e2e_s3_keys "$prefix" 2>/dev/null)
		# Multipart uploads never completed hold their parts until
		# aborted.
		while IFS= read -r up; do
			key=$(sed -n 's:.*<Key>\([^<]*\)</Key>.*:\1:p' <<<"$up")
			id=$(sed -n 's:.*<UploadId>\([^<]*\)</UploadId>.*:\1:p' <<<"$up")
			[ -n "$key" ] && [ -n "$id" ] || continue
			e2e_s3 -o /dev/null -G -X DELETE "$S3_ENDPOINT/$S3_BUCKET/$key" \
				--data-urlencode "uploadId=$id" 2>/dev/null || true
		done < <(e2e_s3 -G "$S3_ENDPOINT/$S3_BUCKET" --data-urlencode "prefix=$prefix" \
			--data-urlencode uploads= 2>/dev/null | sed 's/<Upload>/\n&/g' | grep '^<Upload>')
	done
}

# e2e_cluster_engines TAG: for s3pg, a fresh database (made through the
# superuser socket, owned by the engines' role) and a fresh key prefix;
# sets E2E_CLUSTER_DSN and E2E_CLUSTER_PREFIX.
e2e_cluster_engines() {
	local tag=$1 db
	if [ -z "${BERTH_PG_DSN:-}" ] || [ -z "${BERTH_PG_SOCKET_DIR:-}" ] || [ -z "${S3_ENDPOINT:-}" ]; then
		fail "BERTH_CLUSTER_BACKEND=s3pg needs the engines' environment (BERTH_PG_*, S3_*): run through tests/services/run.sh"
		return 1
	fi
	db=e2e_${tag//[^a-z0-9]/_}
	db=${db:0:63}
	if ! e2e_pg_admin -c "CREATE DATABASE $db OWNER berth" >"$E2E_WORK/pg.err" 2>&1; then
		fail "cannot create database $db" "$(head -c 500 "$E2E_WORK/pg.err")"
		return 1
	fi
	E2E_PG_DBS+=("$db")
	E2E_CLUSTER_DSN=${BERTH_PG_DSN%/*}/$db
	E2E_CLUSTER_PREFIX=e2e/$tag/
	E2E_S3_PREFIXES+=("$E2E_CLUSTER_PREFIX")
}

# e2e_cluster_nodes stop|kill|start: every node, in parallel.  stop sets
# BERTH_EXIT: 0 when every node exited with 0.
e2e_cluster_nodes() {
	local action=$1 n rc=0 jobs=() code
	for n in 1 2 3; do
		bash "$E2E_CLUSTER_SH" node "$BERTH_CLUSTER_DIR" "$n" "$action" >>"$BERTH_LOG" 2>&1 &
		jobs+=("$!")
	done
	for n in "${jobs[@]}"; do
		wait "$n" || rc=1
	done
	if [ "$action" = stop ]; then
		BERTH_EXIT=0
		for n in 1 2 3; do
			code=$(e2e_node_exit "$n")
			[ "$code" = 0 ] || BERTH_EXIT=${code:-1}
		done
		return "$BERTH_EXIT"
	fi
	if [ "$action" = start ]; then
		BERTH_PID=$(node_pid 1)
		[ "$rc" = 0 ] && e2e_cluster_routed
	fi
	return $rc
}

# e2e_need_cluster: a test written for a cluster fails at once anywhere
# else (ctest runs it only against one).
e2e_need_cluster() {
	[ "$BERTH_E2E_TARGET" = cluster ] && return 0
	fail "this test needs BERTH_E2E_TARGET=cluster"
	berth_done
	exit 1
}

# Wait (at most 10 s) until the balancer routes again: nodes that were
# down take haproxy's `rise` checks (2 x 1 s) to be used, and meanwhile
# it answers 503 itself.  Three answers from a node in a row.
e2e_cluster_routed() {
	local i code in_row=0
	for i in $(seq 1 100); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BERTH_URL/v2/" 2>/dev/null) || true
		if [ "$code" = 200 ] || [ "$code" = 401 ]; then
			in_row=$((in_row + 1))
			[ "$in_row" -ge 3 ] && return 0
		else
			in_row=0
		fi
		sleep 0.1
	done
	return 1
}

# Exit status of node N once it has stopped (bounded wait for the file
# its supervising shell writes).
e2e_node_exit() {
	local i
	for i in $(seq 1 50); do
		if [ -s "$BERTH_CLUSTER_DIR/node$1.exit" ]; then
			cat "$BERTH_CLUSTER_DIR/node$1.exit"
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# e2e_at_exit COMMAND: run COMMAND (a shell string) at exit, after the
# servers and clusters are stopped, e.g. to stop an engine the test
# started itself.
e2e_at_exit() { E2E_AT_EXIT+=("$1"); }

node_url() { printf '%s\n' "${BERTH_NODE_URLS[$1 - 1]}"; }
node_pid() { awk -v n="node$1" '$1 == n { print $2 }' "$BERTH_CLUSTER_DIR/pids"; }
node_stop() { bash "$E2E_CLUSTER_SH" node "$BERTH_CLUSTER_DIR" "$1" stop >>"$BERTH_LOG" 2>&1; }
node_kill9() { bash "$E2E_CLUSTER_SH" node "$BERTH_CLUSTER_DIR" "$1" kill >>"$BERTH_LOG" 2>&1; }
node_start() {
	bash "$E2E_CLUSTER_SH" node "$BERTH_CLUSTER_DIR" "$1" start >>"$BERTH_LOG" 2>&1 && return 0
	fail "node $1 did not start again (log $BERTH_LOG)"
	return 1
}

e2e_cluster_start() {
	local dir attempt extra='' args=() lb ports
	E2E_SRV_SEQ=$((E2E_SRV_SEQ + 1))
	dir=$E2E_TMP/srv$E2E_SRV_SEQ
	mkdir -p "$dir"
	BERTH_LOG=$dir/berthd.log
	: >"$BERTH_LOG"
	BERTH_DATA=$(mktemp -d "$dir/data.XXXXXX")
	while [ $# -gt 0 ]; do
		case $1 in
		--config)
			extra=$2
			shift 2
			;;
		*)
			args+=("$1")
			shift
			;;
		esac
	done
	[ "${BERTH_OPEN:-0}" = 1 ] && args+=(--insecure-no-auth)
	BERTH_ARGS=("${args[@]}")
	local -a env=(BERTHD="$BERTHD_BIN" BERTH_CLUSTER_BACKEND="$BERTH_CLUSTER_BACKEND"
		BERTH_CLUSTER_LOG="$BERTH_LOG" BERTH_CLUSTER_CONFIG="$extra" BERTH_CLUSTER_DATA="$BERTH_DATA")
	if [ "$BERTH_CLUSTER_BACKEND" = s3pg ]; then
		e2e_cluster_engines "${E2E_NAME}_$$_$E2E_SRV_SEQ" || return 1
		env+=(BERTH_PG_DSN="$E2E_CLUSTER_DSN" BERTH_CLUSTER_S3_PREFIX="$E2E_CLUSTER_PREFIX")
	fi
	# Ports can be taken between choosing and binding; try a few times.
	for attempt in 1 2 3; do
		BERTH_CLUSTER_DIR=$dir/cluster$attempt
		lb=$(e2e_free_port) && ports="$(e2e_free_port) $(e2e_free_port) $(e2e_free_port)" || break
		if env "${env[@]}" BERTH_CLUSTER_PORT="$lb" BERTH_CLUSTER_NODE_PORTS="$ports" \
			bash "$E2E_CLUSTER_SH" start "$BERTH_CLUSTER_DIR" -- "${args[@]}" >>"$BERTH_LOG" 2>&1; then
			E2E_CLUSTERS+=("$BERTH_CLUSTER_DIR")
			# shellcheck disable=SC1091
			. "$BERTH_CLUSTER_DIR/env"
			read -r -a BERTH_NODE_URLS <<<"$BERTH_CLUSTER_NODE_URLS"
			BERTH_URL=$BERTH_CLUSTER_URL
			BERTH_PORT=$lb
			BERTH_PID=$(node_pid 1)
			BERTH_LB_LOG=$BERTH_CLUSTER_DIR/haproxy.log
			cp "$BERTH_CLUSTER_CONFIG_FILE" "$E2E_TMP/cluster-admin.yml"
			e2e_cluster_auto_key || return 1
			return 0
		fi
		grep -qiE 'in use|cannot bind|address already' "$BERTH_LOG" || break
		printf '(a port was taken, retrying: attempt %d)\n' "$attempt"
	done
	BERTH_CLUSTER_DIR=
	fail "the cluster did not start (log $BERTH_LOG)"
	tail -n 20 "$BERTH_LOG" 2>/dev/null | sed 's/^/     | /'
	return 1
}

# BERTH_AUTO_KEY=1: the account and push key, made through the cluster's
# shared state (a single server gets them before it starts).
e2e_cluster_auto_key() {
	[ "${BERTH_AUTO_KEY:-0}" = 1 ] || return 0
	if "$BERTHD" account create --id "$BERTH_ACCOUNT" --data-dir "$BERTH_DATA" >/dev/null &&
		BERTH_KEY=$("$BERTHD" key create --account "$BERTH_ACCOUNT" --data-dir "$BERTH_DATA" --label e2e); then
		BERTH_KEY=${BERTH_KEY#* }
		BERTH_AUTH_HDR=(-H "Authorization: Bearer $BERTH_KEY")
		return 0
	fi
	fail "cannot create the test account and key on the cluster"
	return 1
}

# ---------------------------------------------------------------- requests

url_of() {
	case $1 in
	http://* | https://*) printf '%s\n' "$1" ;;
	/*) printf '%s%s\n' "$BERTH_URL" "$1" ;;
	*) printf '%s/%s\n' "$BERTH_URL" "$1" ;;
	esac
}

# Response headers of the last request, parsed once: lower-case name ->
# last value, and name -> count.  (No forks per lookup: the tests make
# thousands of them.)
declare -A REQ_H=()
declare -A REQ_HN=()

# e2e_read_response METHOD "STATUS SIZE": after a curl run that wrote
# REQ_RAW_HDRS and REQ_BODY_FILE, set REQ_STATUS, REQ_HDRS (the final header
# block), REQ_H/REQ_HN, REQ_BODY and REQ_LINES (the header lines).
REQ_LINES=()
e2e_read_response() {
	local method=$1 wout=$2 size
	REQ_STATUS=${wout%% *}
	size=${wout##* }
	[ -n "$REQ_STATUS" ] || REQ_STATUS=000
	# Keep only the final header block (drops "100 Continue" blocks).
	local line name value
	local -a lines=()
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		if [[ $line == HTTP/* ]]; then
			lines=()
		fi
		[ -n "$line" ] && lines+=("$line")
	done <"$REQ_RAW_HDRS"
	REQ_LINES=("${lines[@]}")
	REQ_H=()
	REQ_HN=()
	if [ ${#lines[@]} -gt 0 ]; then
		printf '%s\n' "${lines[@]}" >"$REQ_HDRS"
	else
		: >"$REQ_HDRS"
	fi
	for line in "${lines[@]:1}"; do
		[[ $line == *:* ]] || continue
		name=${line%%:*}
		name=${name,,}
		value=${line#*:}
		value=${value#"${value%%[![:space:]]*}"}
		value=${value%"${value##*[![:space:]]}"}
		REQ_H[$name]=$value
		REQ_HN[$name]=$((${REQ_HN[$name]:-0} + 1))
	done
	REQ_BODY=
	if [ "$method" != HEAD ] && [[ $size =~ ^[0-9]+$ ]] && [ "$size" -gt 0 ] && [ "$size" -le 1048576 ]; then
		IFS= read -r -d '' REQ_BODY <"$REQ_BODY_FILE" || true
	fi
	if [ "${E2E_VERBOSE:-0}" = 1 ]; then
		printf '  > %s -> %s\n' "$REQ_DESC" "$REQ_STATUS"
		sed 's/^/  < /' "$REQ_HDRS"
		head -c 400 "$REQ_BODY_FILE" | tr -c '[:print:]\n' '.' | sed 's/^/  | /'
		printf '\n'
	fi
}

req() {
	local method=$1 path=$2 url
	shift 2
	case $path in
	http://* | https://*) url=$path ;;
	/*) url=$BERTH_URL$path ;;
	*) url=$BERTH_URL/$path ;;
	esac
	case $url in
	http://127.0.0.1:* | http://\[::1\]:* | http://localhost:*) ;;
	*)
		fail "refusing non-loopback URL $url"
		return 1
		;;
	esac
	# Shortened for the log: tenant -> "T", digests -> 12 hex digits.
	REQ_DESC=${path#"$BERTH_URL"}
	REQ_DESC="$method ${REQ_DESC//$BERTH_TENANT/T}"
	while [[ $REQ_DESC =~ (sha(256|512):[0-9a-f]{12})[0-9a-f]{8,} ]]; do
		REQ_DESC=${REQ_DESC/"${BASH_REMATCH[0]}"/"${BASH_REMATCH[1]}.."}
	done
	if [[ $REQ_DESC =~ [=]([^\&=]{25})[^\&]{8,} ]]; then
		REQ_DESC=${REQ_DESC/"${BASH_REMATCH[0]}"/"=${BASH_REMATCH[1]}.."}
	fi
	: >"$REQ_RAW_HDRS"
	: >"$REQ_BODY_FILE"
	local -a mflag
	case $method in
	GET) mflag=() ;;
	HEAD) mflag=(-I) ;;
	*) mflag=(-X "$method") ;;
	esac
	# curl -I copies the headers to the -o file too; a HEAD has no body to
	# keep (and curl could not see one anyway).
	local out=$REQ_BODY_FILE wout
	[ "$method" = HEAD ] && out=/dev/null
	local -a auth=()
	if [ ${#BERTH_AUTH_HDR[@]} -gt 0 ] && [[ " $* " != *"Authorization:"* ]] && [[ " $* " != *" -u "* ]]; then
		auth=("${BERTH_AUTH_HDR[@]}")
	fi
	wout=$(curl -s --max-time 30 "${mflag[@]}" "${auth[@]}" -D "$REQ_RAW_HDRS" -o "$out" \
		-w '%{http_code} %{size_download}' "$@" "$url" 2>"$E2E_WORK/curl.err")
	e2e_read_response "$method" "$wout"
	return 0
}

hdr() {
	local n=${1,,}
	[ -n "${REQ_HN[$n]:-}" ] || return 1
	printf '%s\n' "${REQ_H[$n]}"
}

hdr_count() {
	local n=${1,,}
	printf '%s\n' "${REQ_HN[$n]:-0}"
}

# ---------------------------------------------------------------- assertions

expect_status() {
	if [ "$REQ_STATUS" = "$1" ]; then
		ok "$REQ_DESC: status $1"
	else
		fail_resp "$REQ_DESC: status $REQ_STATUS, want $1"
	fi
}

expect_status_in() {
	local c
	for c in "$@"; do
		if [ "$REQ_STATUS" = "$c" ]; then
			ok "$REQ_DESC: status $c"
			return
		fi
	done
	fail_resp "$REQ_DESC: status $REQ_STATUS, want one of $*"
}

expect_header() {
	local name=$1 re=$2 n=${1,,} v
	if [ -z "${REQ_HN[$n]:-}" ]; then
		fail_resp "$REQ_DESC: no $name header (want /$re/)"
		return
	fi
	v=${REQ_H[$n]}
	if [[ $v =~ ^($re)$ ]]; then
		ok "$REQ_DESC: $name: $v"
	else
		fail_resp "$REQ_DESC: $name is '$v', want /$re/"
	fi
}

# The whole value equals VALUE exactly (no regex).
expect_header_eq() {
	local name=$1 want=$2 n=${1,,} v
	if [ -z "${REQ_HN[$n]:-}" ]; then
		fail_resp "$REQ_DESC: no $name header (want '$want')"
		return
	fi
	v=${REQ_H[$n]}
	if [ "$v" = "$want" ]; then
		ok "$REQ_DESC: $name: $v"
	else
		fail_resp "$REQ_DESC: $name is '$v', want '$want'"
	fi
}

expect_no_header() {
	local n=${1,,}
	if [ -n "${REQ_HN[$n]:-}" ]; then
		fail_resp "$REQ_DESC: unexpected $1: ${REQ_H[$n]}"
	else
		ok "$REQ_DESC: no $1 header"
	fi
}

expect_json() {
	local expr=$1 want=$2 got
	if ! got=$(jq -c -r "$expr" <"$REQ_BODY_FILE" 2>&1); then
		fail_resp "$REQ_DESC: body is not JSON or jq '$expr' failed: $got"
		return
	fi
	if [ "$got" = "$want" ]; then
		ok "$REQ_DESC: $expr == $want"
	else
		fail_resp "$REQ_DESC: $expr is '$got', want '$want'"
	fi
}

expect_body_file() {
	if cmp -s "$REQ_BODY_FILE" "$1"; then
		ok "$REQ_DESC: body matches $(basename "$1")"
	else
		fail_resp "$REQ_DESC: body ($(size_of "$REQ_BODY_FILE") bytes) differs from $(basename "$1") ($(size_of "$1") bytes)"
	fi
}

expect_body_empty() {
	if [ ! -s "$REQ_BODY_FILE" ]; then
		ok "$REQ_DESC: empty body"
	else
		fail_resp "$REQ_DESC: body not empty ($(size_of "$REQ_BODY_FILE") bytes)"
	fi
}

# The OCI error body: {"errors":[{"code":"UPPER_CASE","message":"...","detail":..}]}
# with a JSON Content-Type.  Sets E2E_CODES to the codes, comma-separated.
expect_oci_error() {
	local ct=${REQ_H[content-type]:-}
	E2E_CODES=
	if ! [[ $ct =~ ^application/json ]]; then
		fail_resp "$REQ_DESC: error Content-Type is '$ct', want application/json"
		return 1
	fi
	if E2E_CODES=$(jq -e -r '
		if (.errors | type == "array" and length > 0) and
			all(.errors[];
				(.code | type == "string" and test("^[A-Z_]+$")) and
				((.message // "") | type == "string"))
		then [.errors[].code] | join(",") else false end' <"$REQ_BODY_FILE" 2>/dev/null); then
		ok "$REQ_DESC: OCI error body"
		return 0
	fi
	E2E_CODES=
	fail_resp "$REQ_DESC: body is not an OCI error document"
	return 1
}

expect_error_code() {
	local want=$1
	expect_oci_error || return
	if [[ ,$E2E_CODES, == *",$want,"* ]]; then
		ok "$REQ_DESC: error code $want"
	else
		fail_resp "$REQ_DESC: error codes '$E2E_CODES', want $want"
	fi
}

# Like expect_error_code, but any of the listed codes will do.
expect_error_code_in() {
	local c
	expect_oci_error || return
	for c in "$@"; do
		if [[ ,$E2E_CODES, == *",$c,"* ]]; then
			ok "$REQ_DESC: error code $c"
			return
		fi
	done
	fail_resp "$REQ_DESC: error codes '$E2E_CODES', want one of $*"
}

expect_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1: $2"
	else
		fail "$1: got '$2', want '$3'"
	fi
}

expect_match() {
	if [[ $2 =~ $3 ]]; then
		ok "$1: $2"
	else
		fail "$1: '$2' does not match /$3/"
	fi
}

# ---------------------------------------------------------------- content

make_blob() {
	local out=$1 size=$2 seed=$3 key iv
	key=$(printf 'berth-e2e key %s' "$seed" | sha256sum | cut -c1-32)
	iv=$(printf 'berth-e2e iv %s' "$seed" | sha256sum | cut -c1-32)
	head -c "$size" /dev/zero |
		openssl enc -aes-128-ctr -K "$key" -iv "$iv" -nosalt 2>/dev/null >"$out"
}

digest_of() {
	local alg=${2:-sha256} hex
	case $alg in
	sha256) hex=$(sha256sum <"$1") ;;
	sha512) hex=$(sha512sum <"$1") ;;
	*) return 1 ;;
	esac
	printf '%s:%s\n' "$alg" "${hex%% *}"
}

size_of() { stat -c %s "$1"; }

# with_query URL PARAM: URL with PARAM appended as a query parameter.
with_query() {
	if [[ $1 == *\?* ]]; then
		printf '%s&%s\n' "$1" "$2"
	else
		printf '%s?%s\n' "$1" "$2"
	fi
}

# Monolithic POST + PUT.  Sets BLOB_DIGEST; returns 1 (and counts a failure)
# unless both steps succeed.  Call it directly, not in $(...), so that the
# failure is counted.  The REQ_* state is that of the PUT.
push_blob() {
	local name=$1 file=$2 alg=${3:-sha256} loc sep
	BLOB_DIGEST=$(digest_of "$file" "$alg")
	req POST "/v2/$name/blobs/uploads/" -H 'Content-Length: 0'
	if [ "$REQ_STATUS" != 202 ]; then
		fail_resp "push_blob $name $(basename "$file"): POST status $REQ_STATUS"
		return 1
	fi
	loc=$(hdr Location)
	sep='?'
	[[ $loc == *\?* ]] && sep='&'
	req PUT "$loc${sep}digest=$BLOB_DIGEST" -H 'Content-Type: application/octet-stream' \
		--data-binary "@$file"
	if [ "$REQ_STATUS" != 201 ]; then
		fail_resp "push_blob $name $(basename "$file"): PUT status $REQ_STATUS"
		return 1
	fi
	return 0
}

# make_manifest OUT CONFIG_FILE CONFIG_TYPE [LAYER_FILE...]
make_manifest() {
	local out=$1 cfg=$2 ctype=$3 layers='[]' f
	shift 3
	for f in "$@"; do
		layers=$(jq -c --arg d "$(digest_of "$f")" --argjson s "$(size_of "$f")" \
			--arg t "$MT_OCI_LAYER" '. + [{mediaType: $t, digest: $d, size: $s}]' <<<"$layers")
	done
	jq -c -n --arg mt "$MT_OCI_MANIFEST" --arg ct "$ctype" --arg cd "$(digest_of "$cfg")" \
		--argjson cs "$(size_of "$cfg")" --argjson layers "$layers" \
		'{schemaVersion: 2, mediaType: $mt, config: {mediaType: $ct, digest: $cd, size: $cs}, layers: $layers}' |
		tr -d '\n' >"$out"
}

push_manifest() {
	local name=$1 ref=$2 file=$3 ct=${4:-}
	if [ -z "$ct" ]; then
		ct=$(jq -r '.mediaType // empty' <"$file" 2>/dev/null)
		[ -n "$ct" ] || ct=$MT_OCI_MANIFEST
	fi
	req PUT "/v2/$name/manifests/$ref" -H "Content-Type: $ct" --data-binary "@$file"
}

# ---------------------------------------------------------------- pagination

# Prints the URL of a `Link: <URL>; rel="next"` response header; returns 1
# if there is none or it has another form.
link_next() {
	local v
	v=$(hdr Link) || return 1
	[[ $v =~ ^\<([^\>]+)\>\;\ rel=\"next\"$ ]] || return 1
	printf '%s\n' "${BASH_REMATCH[1]}"
}

# query_param URL NAME: prints the percent-decoded value of NAME in URL's
# query string; returns 1 if absent.
query_param() {
	"$E2E_PY" -c 'import sys, urllib.parse as u
q = u.parse_qs(u.urlsplit(sys.argv[1]).query, keep_blank_values=True)
v = q.get(sys.argv[2])
if not v:
    sys.exit(1)
print(v[0])' "$1" "$2"
}

# expect_link_next PATH N LAST: the response has exactly one
# `Link: <PATH?n=N&last=LAST>; rel="next"` header (parameters in any order,
# LAST may be percent-encoded; PATH is a path, not an absolute URL).
expect_link_next() {
	local path=$1 n=$2 last=$3 url got_path got_n got_last
	if [ "$(hdr_count Link)" != 1 ]; then
		fail_resp "$REQ_DESC: want one Link header, have $(hdr_count Link)"
		return
	fi
	if ! url=$(link_next); then
		fail_resp "$REQ_DESC: Link is '$(hdr Link)', want '<...>; rel=\"next\"'"
		return
	fi
	got_path=${url%%\?*}
	got_n=$(query_param "$url" n) || got_n='(none)'
	got_last=$(query_param "$url" last) || got_last='(none)'
	if [ "$got_path" = "$path" ] && [ "$got_n" = "$n" ] && [ "$got_last" = "$last" ]; then
		ok "$REQ_DESC: Link next n=$n last=$last"
	else
		fail_resp "$REQ_DESC: Link '$url': path '$got_path' n '$got_n' last '$got_last'; want $path n=$n last=$last"
	fi
}
