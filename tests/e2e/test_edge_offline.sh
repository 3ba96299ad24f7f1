#!/usr/bin/env bash
# A gateway that loses the cloud registry.  berthd serves HTTPS with a test
# CA and authentication; berth-edge holds A's device certificate and a
# cache; docker (a dockerd of the test's own) and ctr (a private containerd,
# hosts.toml) pull A/app:v1 through it by the name containers.local:PORT,
# which warms the cache.  Then berthd is stopped (by its PID):
#   - the cached tag still pulls with docker and ctr, each with a fresh
#     store; the proxy serves the last digest it knew for the tag with a
#     `Warning: 110` header (checked with curl on GET and HEAD);
#   - a tag never pulled through the proxy fails with 503 and an OCI error
#     (UNAVAILABLE or UNKNOWN) whose message says the upstream is
#     unreachable.
# While the gateway is cut off, A/app:v1 moves to a new digest (pushed
# straight to berthd, started for that on another port).  berthd then comes
# back on the same data and port: the next pull through the proxy gets the
# new digest, with no Warning header, with curl, docker and ctr.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/clients_lib.sh"
clients_private_cache "$0" "$@"
. "$HERE/lib.sh"
. "$HERE/auth_lib.sh"
. "$HERE/edge_lib.sh"
. "$HERE/edge_clients_lib.sh"

T_START=$SECONDS
clients_need dockerd docker containerd ctr skopeo jq curl openssl sha256sum timeout getent
if [ ! -x "$BERTH_EDGE" ]; then
	fail "berth-edge binary not found at $BERTH_EDGE"
	berth_done
	exit 1
fi
trap 'e2e_rc=$?; docker_stop; containerd_stop; (exit $e2e_rc); e2e_cleanup' EXIT

section "cloud: berthd over HTTPS; A/app:v1 and A/app:v2"
clients_content small multiarch
clients_setup
ec_cloud
SMALL=$(content_field small 3)
MULTI=$(content_field multiarch 3)
blob_path() { printf '%s/%s/blobs/sha256/%s\n' "$CONTENT" "$1" "${2#sha256:}"; }
SMALL_CONFIG=$(jq -r .config.digest "$(blob_path small "$SMALL")")
step "push small:v1 to A/app:v1" ec_push small:v1 "$A/app:v1" "$A_PUSH"
# v2: a tag that is never pulled through the proxy before the cut.
step "push the multi-arch index to A/app:v2" ec_push multiarch:v1 "$A/app:v2" "$A_PUSH" --all
case $(uname -m) in
aarch64 | arm64) NATIVE=arm64 ;;
*) NATIVE=amd64 ;;
esac
NATIVE_MANIFEST=$(jq -r --arg a "$NATIVE" '.manifests[] | select(.platform.architecture == $a) | .digest' \
	"$(blob_path multiarch "$MULTI")")
NATIVE_CONFIG=$(jq -r .config.digest "$(blob_path multiarch "$NATIVE_MANIFEST")")

section "gateway: berth-edge with A's device certificate and a cache"
ec_containers_local
ec_gateway
ACCEPT=(-H "Accept: $MT_OCI_MANIFEST, $MT_OCI_INDEX, $MT_DOCKER_MANIFEST, $MT_DOCKER_LIST")
through
areq GET "/v2/$A/app/manifests/v1" "${ACCEPT[@]}"
expect_resp 200
expect_header_eq Docker-Content-Digest "$SMALL"
expect_no_header Warning
back

section "warm the cache: docker and ctr pull A/app:v1"
docker_start || exit 1
step "docker pull $GW/A/app:v1" "${DOCKER[@]}" pull "$GW/$A/app:v1"
step "docker: the pushed digest, image id = config digest" docker_has "$GW/$A/app:v1" "$SMALL" "$SMALL_CONFIG"
if ! containerd_start; then
	fail "containerd did not start" "$(tail -n 20 "$CD/containerd.log")"
	exit 1
fi
ok "containerd up (pid $CPID)"
ctr_hosts
step "ctr images pull $GW/A/app:v1 (hosts.toml)" \
	"${CTR[@]}" images pull "${CTRH[@]}" --snapshotter native "$GW/$A/app:v1"
step "ctr: the pushed digest" ctr_has "$GW/$A/app:v1" "$SMALL"

section "berthd stopped"
SAVED_PORT=$BERTH_PORT
SAVED_DATA=$BERTH_DATA
SAVED_ARGS=("${BERTH_ARGS[@]}")
SAVED_LOG=$BERTH_LOG
auth_stop
if curl -s -o /dev/null --max-time 5 "${UPSTREAM_TLS[@]}" "$UPSTREAM_URL/v2/"; then
	fail "berthd still answers on $UPSTREAM_URL"
else
	ok "berthd stopped by its PID; nothing answers on port $SAVED_PORT"
fi

section "offline: the cached tag, with curl"
through
areq GET "/v2/$A/app/manifests/v1" "${ACCEPT[@]}"
expect_resp 200
expect_body_file "$(blob_path small "$SMALL")"
expect_header_eq Docker-Content-Digest "$SMALL"
expect_header_eq Content-Type "$MT_OCI_MANIFEST"
expect_header Warning '110 .*'
areq HEAD "/v2/$A/app/manifests/v1" "${ACCEPT[@]}"
expect_resp 200
expect_header_eq Docker-Content-Digest "$SMALL"
expect_header Warning '110 .*'
# What the tag pointed to is cached by digest too.
areq GET "/v2/$A/app/manifests/$SMALL" "${ACCEPT[@]}"
expect_resp 200
expect_header_eq Docker-Content-Digest "$SMALL"
areq GET "/v2/$A/app/blobs/$SMALL_CONFIG"
expect_resp 200
expect_body_file "$(blob_path small "$SMALL_CONFIG")"
back

section "offline: the cached tag, with docker and ctr (fresh stores)"
step "docker: remove every image (a fresh store)" docker_fresh
step "docker pull $GW/A/app:v1 with berthd down" "${DOCKER[@]}" pull "$GW/$A/app:v1"
step "docker: the digest it had before, same image id" docker_has "$GW/$A/app:v1" "$SMALL" "$SMALL_CONFIG"
containerd_stop
if ! containerd_start; then
	fail "containerd did not start again" "$(tail -n 20 "$CD/containerd.log")"
	exit 1
fi
ok "a new containerd with an empty content store (pid $CPID)"
step "ctr images pull $GW/A/app:v1 with berthd down" \
	"${CTR[@]}" images pull "${CTRH[@]}" --snapshotter native "$GW/$A/app:v1"
step "ctr: the digest it had before" ctr_has "$GW/$A/app:v1" "$SMALL"
step "ctr: config and layers intact" ctr_content_ok $(blobs_of small "$SMALL")

section "offline: a tag never pulled through the proxy"
through
areq GET "/v2/$A/app/manifests/v2" "${ACCEPT[@]}"
expect_status 503
expect_error_code_in UNAVAILABLE UNKNOWN
expect_match "the message says the upstream is unreachable" \
	"$(jq -r '[.errors[].message] | join("; ")' "$REQ_BODY_FILE" 2>/dev/null)" '[Uu]nreachable'
expect_no_header Warning
areq HEAD "/v2/$A/app/manifests/v2" "${ACCEPT[@]}"
expect_status 503
back
step "docker pull of the uncached tag fails" must_fail "${DOCKER[@]}" pull "$GW/$A/app:v2"

section "meanwhile in the cloud: A/app:v1 moves to a new digest"
# berthd on the same data, on another port the gateway does not know.
auth_start --data "$SAVED_DATA" "${SAVED_ARGS[@]}" || exit 1
UPSTREAM=${BERTH_URL#https://}
step "push the multi-arch index to A/app:v1, straight to berthd" \
	ec_push multiarch:v1 "$A/app:v1" "$A_PUSH" --all
auth_stop

section "berthd back on the same data and port"
BERTH_PORT=$SAVED_PORT
BERTH_DATA=$SAVED_DATA
BERTH_ARGS=("${SAVED_ARGS[@]}")
BERTH_LOG=$SAVED_LOG
BERTH_URL=$UPSTREAM_URL
# The port was free a moment ago; a few tries cover a slow release.
up=0
for attempt in 1 2 3 4 5; do
	"$BERTHD" serve --listen "127.0.0.1:$BERTH_PORT" --data-dir "$BERTH_DATA" "${BERTH_ARGS[@]}" >>"$BERTH_LOG" 2>&1 &
	BERTH_PID=$!
	E2E_PIDS+=("$BERTH_PID")
	for i in $(seq 1 100); do
		kill -0 "$BERTH_PID" 2>/dev/null || break
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${UPSTREAM_TLS[@]}" "$BERTH_URL/v2/")
		[ "$code" = 401 ] && { up=1; break; }
		sleep 0.1
	done
	[ "$up" = 1 ] && break
	e2e_stop_pid "$BERTH_PID" >/dev/null 2>&1
	e2e_forget_pid "$BERTH_PID"
	sleep 1
done
if [ "$up" = 1 ]; then
	ok "berthd restarted on port $BERTH_PORT (attempt $attempt)"
else
	fail "berthd did not come back on port $BERTH_PORT" "$(tail -n 10 "$BERTH_LOG")"
	exit 1
fi

section "online again: the moved tag is seen"
through
areq GET "/v2/$A/app/manifests/v1" "${ACCEPT[@]}"
expect_resp 200
expect_header_eq Docker-Content-Digest "$MULTI"
expect_header_eq Content-Type "$MT_OCI_INDEX"
expect_body_file "$(blob_path multiarch "$MULTI")"
expect_no_header Warning
areq HEAD "/v2/$A/app/manifests/v1" "${ACCEPT[@]}"
expect_resp 200
expect_header_eq Docker-Content-Digest "$MULTI"
expect_no_header Warning
back
step "docker pull $GW/A/app:v1 gets the new digest" "${DOCKER[@]}" pull "$GW/$A/app:v1"
step "docker: the index digest, its $NATIVE image" docker_has "$GW/$A/app:v1" "$MULTI" "$NATIVE_CONFIG" "$NATIVE"
step "ctr images pull $GW/A/app:v1 gets the new digest" \
	"${CTR[@]}" images pull "${CTRH[@]}" --snapshotter native "$GW/$A/app:v1"
step "ctr: the index digest" ctr_has "$GW/$A/app:v1" "$MULTI"

docker_stop
containerd_stop
edge_stop
auth_stop
echo "total $((SECONDS - T_START)) s"
berth_done
