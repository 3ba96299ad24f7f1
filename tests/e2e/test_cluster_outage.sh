#!/usr/bin/env bash
# End-to-end on a cluster over S3 and PostgreSQL (three berthd nodes
# behind haproxy, see deploy/): the database and then the object store go
# away while clients keep sending requests.  Every request that needs the
# missing engine gets a clean 503 with an OCI error body (UNAVAILABLE,
# Retry-After), never a 401 that would make clients log in again and never
# a 500; what was sent during the outage leaves nothing visible behind (a
# manifest, a blob, a chunk); and once the engine is back every node
# serves again without being restarted, an upload session opened before
# the outage included.  The engines are this test's own (PostgreSQL and a
# single-node Ceph with radosgw on free ports), so that the engines other
# tests share are never stopped.
set -u -o pipefail
BERTH_E2E_TARGET=${BERTH_E2E_TARGET:-cluster}
BERTH_AUTO_KEY=1
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SRC=$(cd "$BERTH_E2E_DIR/../.." && pwd)

if [ "$BERTH_E2E_TARGET" != cluster ] || [ "$BERTH_CLUSTER_BACKEND" != s3pg ]; then
	echo "SKIP: needs BERTH_E2E_TARGET=cluster and BERTH_CLUSTER_BACKEND=s3pg"
	exit 77
fi
W=$E2E_WORK
# PostgreSQL runs as its own system user when the test runs as root, and
# must reach its directory: not under the test's private temporary one.
PG_PARENT=$(mktemp -d "${TMPDIR:-/tmp}/berth-e2e-outage-pg.XXXXXX")
chmod 711 "$PG_PARENT"
e2e_at_exit "rmdir '$PG_PARENT'"
PG_DIR=$PG_PARENT/pg
CEPH_DIR=$E2E_TMP/ceph

# ------------------------------------------------------------------ engines
section "private engines"
# ten free ports in a row for the Ceph daemons (bounded: 50 tries)
free_range() {
	local base i p tries
	for tries in $(seq 1 50); do
		base=$((20000 + (RANDOM * 3 + tries * 97) % 35000))
		for ((i = 0; i < 12; i++)); do
			p=$((base + i))
			(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue 2
		done
		printf '%s\n' "$base"
		return 0
	done
	return 1
}
t0=$SECONDS
PG_PORT=$(e2e_free_port)
if "$SRC/scripts/services/postgres.sh" start "$PG_DIR" "$PG_PORT" >"$W/pg-start.log" 2>&1; then
	e2e_at_exit "'$SRC/scripts/services/postgres.sh' stop '$PG_DIR'"
	ok "PostgreSQL on 127.0.0.1:$PG_PORT"
else
	fail "PostgreSQL did not start" "$(tail -n 5 "$W/pg-start.log")"
	exit 1
fi
base=$(free_range) || {
	fail "no free port range for Ceph"
	exit 1
}
e2e_at_exit "'$SRC/scripts/services/ceph.sh' stop '$CEPH_DIR'"
if CEPH_MON_PORT=$base CEPH_PORT_MIN=$((base + 1)) CEPH_PORT_MAX=$((base + 10)) \
	CEPH_RGW_PORT=$((base + 11)) CEPH_OSD_BYTES=$((1024 * 1024 * 1024)) \
	"$SRC/scripts/services/ceph.sh" start "$CEPH_DIR" >"$W/ceph-start.log" 2>&1; then
	ok "Ceph radosgw on 127.0.0.1:$((base + 11))"
else
	fail "Ceph did not start" "$(tail -n 5 "$W/ceph-start.log")"
	exit 1
fi
echo "     engines up in $((SECONDS - t0)) s"
set -a
# shellcheck disable=SC1091
. "$PG_DIR/env"
# shellcheck disable=SC1091
. "$CEPH_DIR/env"
set +a

PG_BIN=${BERTH_PG_BIN:-/usr/lib/postgresql/15/bin}
as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_down() { as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DIR/data" -m fast -w -t 30 -s; }
# The new postmaster's PID goes where postgres.sh stop looks for it.
pg_up() {
	as_pg "$PG_BIN/pg_ctl" start -D "$PG_DIR/data" -l "$PG_DIR/log/postgres.log" -w -t 60 -s &&
		head -n 1 "$PG_DIR/data/postmaster.pid" >"$PG_DIR/pid"
}
# radosgw is the last daemon ceph.sh started (DIR/pids: mon, mgr, osd, rgw).
RGW_PID=
rgw_down() {
	local i
	RGW_PID=$(tail -n 1 "$CEPH_DIR/pids")
	kill -TERM "$RGW_PID" || return 1
	for i in $(seq 1 100); do
		kill -0 "$RGW_PID" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$RGW_PID"
}
rgw_up() {
	local i
	setsid radosgw -c "$CEPH_DIR/ceph.conf" -f -n client.rgw.berth </dev/null \
		>>"$CEPH_DIR/log/rgw.out" 2>&1 &
	# ceph.sh stop ends what DIR/pids lists.
	echo "$!" >>"$CEPH_DIR/pids"
	for i in $(seq 1 300); do
		curl -fsS -o /dev/null --max-time 2 "$S3_ENDPOINT/" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

berth_start || exit 1
echo "cluster ($BERTH_CLUSTER_BACKEND) at $BERTH_URL, nodes: ${BERTH_NODE_URLS[*]}"
PIDS_BEFORE="$(node_pid 1) $(node_pid 2) $(node_pid 3)"
R=$BERTH_TENANT/outage

section "content before the outages"
make_blob "$W/l1" 300000 outage-l1
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
push_blob "$R" "$W/l1"
push_blob "$R" "$W/cfg"
make_manifest "$W/m1" "$W/cfg" "$MT_OCI_CONFIG" "$W/l1"
push_manifest "$R" v1 "$W/m1"
expect_status 201
D1=$(digest_of "$W/l1")
# An upload session with one chunk, continued after the outage.
make_blob "$W/up" 2000000 outage-upload
head -c 1000000 "$W/up" >"$W/up.1"
tail -c +1000001 "$W/up" >"$W/up.2"
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
expect_status 202
LOC=$(hdr Location)
req PATCH "$LOC" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-999999' \
	--data-binary "@$W/up.1"
expect_status 202
LOC=$(hdr Location)

# unavailable DESCRIPTION METHOD PATH [curl args]: 503 UNAVAILABLE with
# Retry-After (no body for HEAD).
unavailable() {
	local what=$1 method=$2 path=$3
	shift 3
	req "$method" "$path" "$@"
	if [ "$REQ_STATUS" != 503 ]; then
		fail_resp "$what: status $REQ_STATUS, want 503"
		return
	fi
	ok "$what: 503"
	expect_header Retry-After '[0-9]+'
	[ "$method" = HEAD ] || expect_error_code UNAVAILABLE
}

# recovered DESCRIPTION: every node answers an authenticated GET /v2/
# with 200 (bounded: 60 s), without a restart.
recovered() {
	local i n good
	for i in $(seq 1 120); do
		good=0
		for n in 1 2 3; do
			[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${BERTH_AUTH_HDR[@]}" \
				"$(node_url "$n")/v2/")" = 200 ] && good=$((good + 1))
		done
		[ "$good" = 3 ] && break
		sleep 0.5
	done
	expect_eq "$1: nodes serving again" "$good" 3
	expect_eq "$1: the same node processes" "$(node_pid 1) $(node_pid 2) $(node_pid 3)" "$PIDS_BEFORE"
}

section "PostgreSQL stopped"
if pg_down; then ok "PostgreSQL stopped"; else fail "pg_ctl stop failed"; fi
make_blob "$W/l2" 5000 outage-l2
make_manifest "$W/m2" "$W/cfg" "$MT_OCI_CONFIG" "$W/l1"
printf '%s' "$(jq -c '.annotations = {"outage": "pg"}' "$W/m2")" >"$W/m2"
unavailable "GET /v2/ with a valid key" GET /v2/
unavailable "a token request with a valid key" GET "/v2/token?service=berth&scope=repository:$R:pull" \
	-H "Authorization: Basic $(printf 'KEY:%s' "$BERTH_KEY" | base64 -w0)"
unavailable "GET the manifest" GET "/v2/$R/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
unavailable "HEAD a blob" HEAD "/v2/$R/blobs/$D1"
unavailable "open an upload" POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
unavailable "PATCH the open session" PATCH "$LOC" -H 'Content-Type: application/octet-stream' \
	-H 'Content-Range: 1000000-1999999' --data-binary "@$W/up.2"
unavailable "push a blob in one POST" POST "/v2/$R/blobs/uploads/?digest=$(digest_of "$W/l2")" \
	-H 'Content-Type: application/octet-stream' --data-binary "@$W/l2"
unavailable "PUT a manifest" PUT "/v2/$R/manifests/v2" -H "Content-Type: $MT_OCI_MANIFEST" \
	--data-binary "@$W/m2"
for n in 1 2 3; do
	unavailable "node $n: GET the tags" GET "$(node_url "$n")/v2/$R/tags/list"
done
if pg_up; then ok "PostgreSQL started again"; else fail "pg_ctl start failed"; fi
recovered "after PostgreSQL"
req GET "/v2/$R/manifests/v2" -H "Accept: $MT_OCI_MANIFEST"
expect_status 404
req HEAD "/v2/$R/blobs/$(digest_of "$W/l2")"
expect_status 404
req GET "$LOC"
expect_status 204
expect_header Range 0-999999
req PATCH "$LOC" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 1000000-1999999' \
	--data-binary "@$W/up.2"
expect_status 202
LOC=$(hdr Location)
req PUT "$(with_query "$LOC" "digest=$(digest_of "$W/up")")" -H 'Content-Length: 0'
expect_status 201
req GET "/v2/$R/blobs/$(digest_of "$W/up")"
expect_status 200
expect_body_file "$W/up"

section "the object store stopped"
if rgw_down; then ok "radosgw stopped"; else fail "radosgw did not stop"; fi
make_blob "$W/l3" 70000 outage-l3
unavailable "GET a blob's bytes" GET "/v2/$R/blobs/$D1"
unavailable "push a blob in one POST" POST "/v2/$R/blobs/uploads/?digest=$(digest_of "$W/l3")" \
	-H 'Content-Type: application/octet-stream' --data-binary "@$W/l3"
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
if [ "$REQ_STATUS" = 202 ]; then
	L3=$(hdr Location)
	unavailable "the PUT of a monolithic upload" PUT "$(with_query "$L3" "digest=$(digest_of "$W/l3")")" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$W/l3"
else
	unavailable "open an upload" POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
fi
if rgw_up; then ok "radosgw started again"; else fail "radosgw did not come back"; fi
recovered "after the object store"
for n in 1 2 3; do
	for i in $(seq 1 60); do
		req GET "$(node_url "$n")/v2/$R/blobs/$D1"
		[ "$REQ_STATUS" = 200 ] && break
		sleep 0.5
	done
	expect_status 200
	expect_body_file "$W/l1"
done
req HEAD "/v2/$R/blobs/$(digest_of "$W/l3")"
expect_status 404
push_blob "$R" "$W/l3" && ok "a push after the object store came back"
req GET "/v2/$R/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
expect_status 200
expect_body_file "$W/m1"
berth_done
