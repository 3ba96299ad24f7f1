# Shared by the tests that drive real clients through berth-edge
# (test_edge_clients.sh, test_edge_offline.sh), on top of clients_lib.sh,
# lib.sh, auth_lib.sh and edge_lib.sh: the cloud side (berthd over HTTPS
# with a test CA, accounts A and B, push keys, a device certificate for A),
# the gateway side (berth-edge with that certificate and a cache, reached
# by the name containers.local as on a gateway), a private dockerd, and
# counting what berthd's access log shows.
#
# Sets: P (the PKI directory), A, B (account ids), A_PUSH, B_PUSH (keys),
# CA_DIR (a cert dir holding only the test CA, for skopeo), GW (the
# proxy's host:port as clients name it), GW_HOST, EDGE_PORT.
#
# shellcheck shell=bash
# shellcheck disable=SC2034

# ec_cloud: berthd with authentication over HTTPS, accounts A and B with a
# push key each, and a device certificate for A (dev-a.crt/.key in P).
ec_cloud() {
	auth_make_pki "$E2E_WORK/pki" || exit 1
	P=$AUTH_PKI
	auth_start --tls-cert "$P/server.crt" --tls-key "$P/server.key" --client-ca "$P/ca.crt" || exit 1
	auth_require_auth
	auth_new_account A alpha
	auth_new_account B beta
	AUTH_LABEL[$A]=A
	AUTH_LABEL[$B]=B
	auth_new_key A_PUSH_ID A_PUSH "$A"
	auth_new_key B_PUSH_ID B_PUSH "$B"
	if auth_issue "$P" "$P/dev-a" "/O=Berth e2e/OU=$A/CN=gw-1" client; then
		ok "device certificate for account A (OU=$A, CN=gw-1)"
	else
		fail "cannot issue the device certificate" "$(tail -n 5 "$P/dev-a.log")"
		exit 1
	fi
	CA_DIR=$E2E_WORK/ca-only
	mkdir -p "$CA_DIR"
	cp "$P/ca.crt" "$CA_DIR/ca.crt"
	UPSTREAM=${BERTH_URL#https://}
}

# ec_push LAYOUT:TAG REPO:TAG KEY [skopeo copy flags]: push straight to
# berthd (not through the proxy) with skopeo and KEY.
ec_push() {
	"${SK[@]}" copy --dest-cert-dir "$CA_DIR" --dest-creds "KEY:$3" "${@:4}" \
		"oci:$CONTENT/$1" "docker://$UPSTREAM/$2"
}

# ec_gateway [berth-edge args]: berth-edge in front of berthd with A's device
# certificate and a cache in E2E_WORK/cache; sets GW and EDGE_PORT.
ec_gateway() {
	CACHE=$E2E_WORK/cache
	edge_start --upstream "$BERTH_URL" --cert "$P/dev-a.crt" --key "$P/dev-a.key" --ca "$P/ca.crt" \
		--cache-dir "$CACHE" "$@" || exit 1
	EDGE_PORT=${EDGE_URL##*:}
	GW=$GW_HOST:$EDGE_PORT
}

# ec_containers_local: on a gateway clients name the proxy containers.local
# (an /etc/hosts line).  Inside the private mount namespace that
# clients_private_cache made, a copy of /etc/hosts with that line is bound
# over /etc/hosts, for this script and the daemons it starts only.  Else
# (not root, no namespace) the clients use 127.0.0.1.  Sets GW_HOST.
ec_containers_local() {
	GW_HOST=127.0.0.1
	if [ "${BERTH_E2E_PRIVATE_CACHE:-}" != 1 ] ||
		[ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt 2>/dev/null)" ]; then
		echo "(no private mount namespace: clients use 127.0.0.1, not containers.local)"
		return 0
	fi
	cp /etc/hosts "$E2E_TMP/hosts" && printf '127.0.0.1 containers.local\n' >>"$E2E_TMP/hosts" || return 0
	if ! mount --bind "$E2E_TMP/hosts" /etc/hosts 2>/dev/null; then
		echo "(cannot bind a private /etc/hosts: clients use 127.0.0.1)"
		return 0
	fi
	if [ "$(getent hosts containers.local | awk '{print $1; exit}')" = 127.0.0.1 ]; then
		GW_HOST=containers.local
		ok "containers.local resolves to 127.0.0.1 (private /etc/hosts)"
	else
		umount /etc/hosts 2>/dev/null
		echo "(containers.local does not resolve through the private /etc/hosts: clients use 127.0.0.1)"
	fi
}

# upstream_blob_gets REPO: how many blob GETs of REPO berthd's access log
# shows (all berthd runs of this data directory log to BERTH_LOG).
upstream_blob_gets() {
	grep ' access ' "$BERTH_LOG" | grep -c "method=GET path=/v2/$1/blobs/"
}

# ---------------------------------------------------------------- dockerd

# docker_start: a dockerd of the test's own: data root, exec root, pid file
# and unix socket in a short temporary directory (socket paths are limited
# to 107 bytes), no iptables, no bridge, the vfs storage driver, its own
# daemon.json with no registry setting (docker talks plain HTTP to a
# registry whose name resolves into 127.0.0.0/8, as on a gateway) and its
# own client configuration (no credentials of the machine's).  A dockerd
# already on the machine, and its socket, are never used or touched.  Sets
# DK, DPID, DOCKER (the command array, through DOCKER_HOST).  Returns 1 if
# it does not answer within 30 s.
DK=
DPID=
docker_start() {
	local bin i
	DK=$(mktemp -d /tmp/berth-dk.XXXXXX)
	# The trust key would go to /etc/docker/key.json otherwise.
	printf '{"deprecated-key-path": "%s/key.json"}\n' "$DK" >"$DK/daemon.json"
	mkdir -p "$DK/client"
	setsid dockerd --config-file "$DK/daemon.json" --data-root "$DK/data" --exec-root "$DK/exec" \
		--pidfile "$DK/dockerd.pid" -H "unix://$DK/docker.sock" --iptables=false --bridge=none \
		--ip-masq=false --userland-proxy=false --storage-driver vfs --log-level warn \
		>"$DK/dockerd.log" 2>&1 </dev/null &
	DPID=$!
	# The CLI that came with this dockerd, else whichever is on PATH.
	bin=$(dirname "$(command -v dockerd)")/../bin/docker
	[ -x "$bin" ] || bin=$(command -v docker)
	export DOCKER_HOST=unix://$DK/docker.sock DOCKER_CONFIG=$DK/client
	DOCKER=(timeout 120 "$bin")
	for i in $(seq 1 150); do
		kill -0 "$DPID" 2>/dev/null || break
		if [ -S "$DK/docker.sock" ] && "$bin" version >/dev/null 2>&1; then
			ok "dockerd $("$bin" version --format '{{.Server.Version}}' 2>/dev/null) up (pid $DPID, socket $DK/docker.sock)"
			return 0
		fi
		sleep 0.2
	done
	fail "dockerd did not start" "$(tail -n 20 "$DK/dockerd.log")"
	return 1
}

# docker_stop: SIGTERM to our dockerd (it stops the containerd it runs),
# bounded wait, SIGKILL; then that containerd by its pid file if it is
# still there; then the directory goes.
docker_stop() {
	local i cpid
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -TERM "$DPID" 2>/dev/null
		for i in $(seq 1 150); do
			kill -0 "$DPID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$DPID" 2>/dev/null && kill -KILL "$DPID" 2>/dev/null
	fi
	[ -n "$DPID" ] && wait "$DPID" 2>/dev/null
	DPID=
	if [ -n "$DK" ]; then
		cpid=$(cat "$DK/exec/containerd/containerd.pid" 2>/dev/null)
		if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null &&
			grep -q "$DK" "/proc/$cpid/cmdline" 2>/dev/null; then
			kill -TERM "$cpid" 2>/dev/null
			for i in $(seq 1 50); do
				kill -0 "$cpid" 2>/dev/null || break
				sleep 0.1
			done
			kill -0 "$cpid" 2>/dev/null && kill -KILL "$cpid" 2>/dev/null
		fi
		rm -rf "$DK"
	fi
	DK=
	return 0
}

# docker_fresh: remove every image, so the next pull starts from an empty
# store.
docker_fresh() {
	local ids
	ids=$("${DOCKER[@]}" images -a -q | sort -u)
	[ -z "$ids" ] || "${DOCKER[@]}" rmi -f $ids >/dev/null || return 1
	ids=$("${DOCKER[@]}" images -a -q)
	echo "images left: [$ids]"
	[ -z "$ids" ]
}

# docker_has REF DIGEST [CONFIG] [ARCH]: docker shows REF pulled as REPO@DIGEST
# (the manifest or index digest it resolved REF to; "-": no check), with
# image id CONFIG (the config digest) and architecture ARCH when given.
docker_has() {
	local ref=$1 want=$2 cfg=${3:-} arch=${4:-} out
	out=$("${DOCKER[@]}" image inspect "$ref") || return 1
	jq -c '.[0] | {Id, RepoDigests, Architecture}' <<<"$out"
	if [ "$want" != - ]; then
		jq -e --arg rd "${ref%:*}@$want" '.[0].RepoDigests | index($rd) != null' <<<"$out" >/dev/null || return 1
	fi
	if [ -n "$cfg" ]; then
		jq -e --arg c "$cfg" '.[0].Id == $c' <<<"$out" >/dev/null || return 1
	fi
	if [ -n "$arch" ]; then
		jq -e --arg a "$arch" '.[0].Architecture == $a' <<<"$out" >/dev/null || return 1
	fi
}

# ---------------------------------------------------------------- ctr

# ctr_hosts: a containerd hosts directory (as /etc/containerd/certs.d on a
# gateway) that sends GW to the proxy over plain HTTP, pulls only.  Sets
# HOSTS_DIR and CTRH (ctr arguments for pulls).
ctr_hosts() {
	HOSTS_DIR=$E2E_WORK/certs.d
	mkdir -p "$HOSTS_DIR/$GW"
	cat >"$HOSTS_DIR/$GW/hosts.toml" <<EOF
server = "http://127.0.0.1:$EDGE_PORT"

[host."http://127.0.0.1:$EDGE_PORT"]
  capabilities = ["pull", "resolve"]
EOF
	CTRH=(--hosts-dir "$HOSTS_DIR")
}

# ctr_digest REF: the target digest ctr recorded for REF.
ctr_digest() { "${CTR[@]}" images ls | awk -v r="$1" '$1 == r { print $3 }'; }

# ctr_has REF DIGEST
ctr_has() {
	local d
	d=$(ctr_digest "$1")
	echo "ctr image $1 -> $d"
	[ "$d" = "$2" ]
}

# ctr_content_ok DIGEST...: containerd's content store holds each blob, intact.
ctr_content_ok() {
	local d got
	for d in "$@"; do
		got=$("${CTR[@]}" content get "$d" | sha256_stdin) || { echo "no content $d"; return 1; }
		[ "$got" = "$d" ] || { echo "content $d hashes to $got"; return 1; }
	done
	echo "$# blobs intact"
}

# blobs_of LAYOUT DIGEST: the config and layer digests a manifest of the
# content lists.
blobs_of() { jq -r '.config.digest, .layers[].digest' "$CONTENT/$1/blobs/sha256/${2#sha256:}"; }
