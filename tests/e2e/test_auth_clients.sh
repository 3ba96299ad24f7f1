#!/usr/bin/env bash
# Real clients with authentication on (issue 3), first over plain HTTP, then
# over HTTPS with a test CA: skopeo (--creds KEY:<key>, skopeo login/logout
# with a private auth file), podman (login -u KEY, pull, tag, push, rmi,
# logout) and containerd's ctr (--user KEY:<key>; a private containerd
# started here and stopped by its PID) pull and push; a pull-only key's
# push is refused by each client, and so are pushes into another account's
# namespace and wrong credentials.  Over HTTPS ctr and podman also pull with
# a device certificate (the gateway case) and cannot push with it.  Every
# pushed manifest is checked with curl.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/clients_lib.sh"
clients_private_cache "$0" "$@"
. "$HERE/lib.sh"
. "$HERE/auth_lib.sh"

T_START=$SECONDS
W=$E2E_WORK
clients_need skopeo podman containerd ctr jq curl openssl sha256sum timeout

section "setup"
auth_make_pki "$W/pki" || exit 1
P=$AUTH_PKI
berth_start || exit 1
auth_require_auth
auth_new_account A alpha
auth_new_account B beta
AUTH_LABEL[$A]=A
AUTH_LABEL[$B]=B
auth_new_key A_PUSH_ID A_PUSH "$A"
auth_new_key A_PULL_ID A_PULL "$A" --pull-only
auth_new_key B_PUSH_ID B_PUSH "$B"
auth_make_devices "$A" || exit 1
clients_content small
SMALL=$(content_field small 3)

CL_TMP=$E2E_TMP/clients
mkdir -p "$CL_TMP/tmp"
CL_STEP_N=0
export TMPDIR=$CL_TMP/tmp
export REGISTRY_AUTH_FILE=$CL_TMP/auth.json
printf '{}\n' >"$REGISTRY_AUTH_FILE"
SK=(skopeo --insecure-policy --tmpdir "$TMPDIR")
REG=${BERTH_URL#http://}

# podman: storage in temporary directories (runroot path must stay short).
PD=$CL_TMP/podman
mkdir -p "$PD/tmp" "$PD/net"
PD_RUN=$(mktemp -d /tmp/berth-apm.XXXXXX)
printf '{}\n' >"$PD/auth.json"
PM=(podman --storage-driver vfs --root "$PD/root" --runroot "$PD_RUN" --tmpdir "$PD/tmp"
	--network-config-dir "$PD/net" --events-backend none --cgroup-manager cgroupfs)
PAF=(--authfile "$PD/auth.json")
trap 'e2e_rc=$?; containerd_stop; rm -rf "$PD_RUN"; (exit $e2e_rc); e2e_cleanup' EXIT

# served_digest REPO REF WANT: with A's push key, HEAD of the manifest
# carries Docker-Content-Digest WANT (WANT "-": any, printed).
served_digest() {
	local code h
	h=$(curl -s -I --max-time 30 "${AUTH_TLS[@]}" -u "KEY:$A_PUSH" \
		-H "Accept: $MT_OCI_MANIFEST, $MT_OCI_INDEX, $MT_DOCKER_MANIFEST, $MT_DOCKER_LIST" \
		"$BERTH_URL/v2/$1/manifests/$2" | tr -d '\r')
	echo "$h" | head -n 12
	code=$(head -n1 <<<"$h" | awk '{print $2}')
	[ "$code" = 200 ] || return 1
	[ "$3" = - ] && return 0
	grep -qix "docker-content-digest: $3" <<<"$h"
}
# absent REPO REF: with A's push key the manifest is not there (404).
absent() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "${AUTH_TLS[@]}" -u "KEY:$A_PUSH" \
		-H "Accept: $MT_OCI_MANIFEST, $MT_DOCKER_MANIFEST" "$BERTH_URL/v2/$1/manifests/$2")
	echo "status $code"
	[ "$code" = 404 ]
}
# sk_digest REF CREDS WANT: skopeo inspect --raw with CREDS hashes to WANT.
sk_digest() {
	local d
	d=$("${SK[@]}" inspect --raw "${SK_TLS[@]}" --creds "$2" "docker://$1" | sha256_stdin) || return 1
	echo "digest $d"
	[ "$d" = "$3" ]
}
# auth_file_has REGISTRY: the private auth file holds an entry for it.
auth_file_has() {
	jq -e --arg r "$1" '.auths[$r].auth | length > 0' "$2" >/dev/null
}
SK_TLS=(--tls-verify=false)

# ================================================================== HTTP
section "skopeo over HTTP"
step "push without credentials fails" refused -- \
	"${SK[@]}" copy --dest-tls-verify=false "oci:$CONTENT/small:v1" "docker://$REG/$A/sk:v1"
step "push with --dest-creds KEY:<push key>" \
	"${SK[@]}" copy --dest-tls-verify=false --dest-creds "KEY:$A_PUSH" "oci:$CONTENT/small:v1" "docker://$REG/$A/sk:v1"
step "curl: A/sk:v1 has the original digest" served_digest "$A/sk" v1 "$SMALL"
step "inspect --raw with the pull-only key: same digest" sk_digest "$REG/$A/sk:v1" "KEY:$A_PULL" "$SMALL"
step "pull-only key: push refused" refused -- \
	"${SK[@]}" copy --dest-tls-verify=false --dest-creds "KEY:$A_PULL" "oci:$CONTENT/small:v1" "docker://$REG/$A/sk-pull:v1"
step "curl: nothing was pushed by the pull-only key" absent "$A/sk-pull" v1
step "A's key cannot push into B's namespace" refused -- \
	"${SK[@]}" copy --dest-tls-verify=false --dest-creds "KEY:$A_PUSH" "oci:$CONTENT/small:v1" "docker://$REG/$B/sk:v1"
b_pushes_a_cannot_read() {
	"${SK[@]}" copy --dest-tls-verify=false --dest-creds "KEY:$B_PUSH" "oci:$CONTENT/small:v1" "docker://$REG/$B/sk:v1" ||
		return 1
	echo "B pushed B/sk:v1; now A reads it:"
	refused -- "${SK[@]}" inspect --raw --tls-verify=false --creds "KEY:$A_PUSH" "docker://$REG/$B/sk:v1"
}
step "B pushes B/sk:v1; A's key cannot read it" b_pushes_a_cannot_read
step "user name other than KEY refused" refused -- \
	"${SK[@]}" inspect --raw "${SK_TLS[@]}" --creds "admin:$A_PUSH" "docker://$REG/$A/sk:v1"
step "wrong key refused" refused -- \
	"${SK[@]}" inspect --raw "${SK_TLS[@]}" --creds "KEY:${A_PUSH:0:20}$(printf '%048d' 5)" "docker://$REG/$A/sk:v1"
step "skopeo delete with the pull-only key refused" refused -- \
	"${SK[@]}" delete "${SK_TLS[@]}" --creds "KEY:$A_PULL" "docker://$REG/$A/sk:v1"

section "skopeo login / logout (private REGISTRY_AUTH_FILE)"
step "login with a wrong key fails" refused -- \
	"${SK[@]}" login --tls-verify=false -u KEY -p "${A_PUSH:0:20}$(printf '%048d' 6)" "$REG"
step "login as another user than KEY fails" refused -- \
	"${SK[@]}" login --tls-verify=false -u root -p "$A_PUSH" "$REG"
step "skopeo login -u KEY -p <push key>" "${SK[@]}" login --tls-verify=false -u KEY -p "$A_PUSH" "$REG"
step "the auth file has the registry" auth_file_has "$REG" "$REGISTRY_AUTH_FILE"
step "push with the stored credentials" \
	"${SK[@]}" copy --dest-tls-verify=false "oci:$CONTENT/small:v1" "docker://$REG/$A/sk-login:v1"
step "curl: A/sk-login:v1 has the original digest" served_digest "$A/sk-login" v1 "$SMALL"
sk_tags() {
	"${SK[@]}" list-tags --tls-verify=false "docker://$1" | tee "$CL_TMP/tags.json"
	jq -e --arg t "$2" '.Tags == [$t]' "$CL_TMP/tags.json" >/dev/null
}
step "list-tags with the stored credentials" sk_tags "$REG/$A/sk-login" v1
step "skopeo logout" "${SK[@]}" logout "$REG"
step "after logout list-tags fails" refused -- "${SK[@]}" list-tags --tls-verify=false "docker://$REG/$A/sk-login"

section "podman over HTTP"
step "podman login with a wrong key fails" refused -- \
	"${PM[@]}" login "${PAF[@]}" --tls-verify=false -u KEY -p "${A_PUSH:0:20}$(printf '%048d' 4)" "$REG"
step "podman login -u KEY -p <push key>" "${PM[@]}" login "${PAF[@]}" --tls-verify=false -u KEY -p "$A_PUSH" "$REG"
step "podman pull A/sk:v1" "${PM[@]}" pull "${PAF[@]}" --tls-verify=false "$REG/$A/sk:v1"
step "podman tag -> A/pm:v1" "${PM[@]}" tag "$REG/$A/sk:v1" "$REG/$A/pm:v1"
step "podman push A/pm:v1" "${PM[@]}" push "${PAF[@]}" --tls-verify=false --digestfile "$PD/pm.digest" "$REG/$A/pm:v1"
PM_DIGEST=$(cat "$PD/pm.digest" 2>/dev/null)
step "curl: A/pm:v1 has podman's digest" served_digest "$A/pm" v1 "${PM_DIGEST:-none}"
step "podman push into B's namespace refused" refused -- \
	"${PM[@]}" push "${PAF[@]}" --tls-verify=false "$REG/$A/sk:v1" "$REG/$B/pm:v1"
step "podman rmi both names" "${PM[@]}" rmi "$REG/$A/sk:v1" "$REG/$A/pm:v1"
step "podman pull A/pm:v1 back" "${PM[@]}" pull "${PAF[@]}" --tls-verify=false "$REG/$A/pm:v1"
step "podman logout" "${PM[@]}" logout "${PAF[@]}" "$REG"
step "after logout podman pull fails" refused -- "${PM[@]}" pull "${PAF[@]}" --tls-verify=false "$REG/$A/pm:v1"
step "podman login with the pull-only key" "${PM[@]}" login "${PAF[@]}" --tls-verify=false -u KEY -p "$A_PULL" "$REG"
step "pull-only: podman pull works" "${PM[@]}" pull "${PAF[@]}" --tls-verify=false "$REG/$A/sk:v1"
step "pull-only: podman push refused" refused -- \
	"${PM[@]}" push "${PAF[@]}" --tls-verify=false "$REG/$A/sk:v1" "$REG/$A/pm-pull:v1"
step "curl: nothing was pushed by the pull-only key" absent "$A/pm-pull" v1
step "podman logout" "${PM[@]}" logout "${PAF[@]}" "$REG"

section "ctr over HTTP (private containerd)"
HAVE_CTR=1
if containerd_start; then
	ok "containerd up (pid $CPID)"
else
	HAVE_CTR=0
	echo "SKIP ctr: containerd cannot start in this sandbox; its log:"
	sed 's/^/     | /' "$CD/containerd.log" | tail -n 20
fi
if [ "$HAVE_CTR" = 1 ]; then
	PH=(--plain-http)
	step "ctr pull without credentials fails" refused -- "${CTR[@]}" images pull "${PH[@]}" "$REG/$A/sk:v1"
	step "ctr pull --user KEY:<pull-only key>" \
		"${CTR[@]}" images pull "${PH[@]}" --snapshotter native --user "KEY:$A_PULL" "$REG/$A/sk:v1"
	ctr_has() {
		local d
		d=$("${CTR[@]}" images ls | awk -v r="$1" '$1 == r { print $3 }')
		echo "ctr image $1 -> $d"
		[ "$d" = "$2" ]
	}
	step "ctr recorded the pushed digest" ctr_has "$REG/$A/sk:v1" "$SMALL"
	step "ctr push --user KEY:<push key> -> A/ctr:v1" \
		"${CTR[@]}" images push "${PH[@]}" --user "KEY:$A_PUSH" "$REG/$A/ctr:v1" "$REG/$A/sk:v1"
	step "curl: A/ctr:v1 has the original digest" served_digest "$A/ctr" v1 "$SMALL"
	step "ctr push with the pull-only key refused" refused -- \
		"${CTR[@]}" images push "${PH[@]}" --user "KEY:$A_PULL" "$REG/$A/ctr-pull:v1" "$REG/$A/sk:v1"
	step "curl: nothing was pushed by the pull-only key" absent "$A/ctr-pull" v1
	step "ctr push into B's namespace refused" refused -- \
		"${CTR[@]}" images push "${PH[@]}" --user "KEY:$A_PUSH" "$REG/$B/ctr:v1" "$REG/$A/sk:v1"
	step "ctr pull with a wrong key fails" refused -- \
		"${CTR[@]}" images pull "${PH[@]}" --user "KEY:${A_PUSH:0:20}$(printf '%048d' 8)" "$REG/$A/ctr:v1"
fi

# ================================================================== HTTPS
section "HTTPS with the test CA (same data, new port)"
SAVED_DATA=$BERTH_DATA
OLD_REG=$REG
berth_stop
e2e_forget_pid "$BERTH_PID"
auth_start --data "$SAVED_DATA" --tls-cert "$P/server.crt" --tls-key "$P/server.key" --client-ca "$P/ca.crt" || exit 1
REG=${BERTH_URL#https://}
mkdir -p "$CL_TMP/certs-ca" "$CL_TMP/certs-dev"
cp "$P/ca.crt" "$CL_TMP/certs-ca/ca.crt"
cp "$P/ca.crt" "$CL_TMP/certs-dev/ca.crt"
cp "$P/dev-ok.crt" "$CL_TMP/certs-dev/client.cert"
cp "$P/dev-ok.key" "$CL_TMP/certs-dev/client.key"
SK_TLS=(--cert-dir "$CL_TMP/certs-ca")

step "skopeo push over HTTPS with --dest-cert-dir (CA) and --dest-creds" \
	"${SK[@]}" copy --dest-cert-dir "$CL_TMP/certs-ca" --dest-creds "KEY:$A_PUSH" \
	"oci:$CONTENT/small:v1" "docker://$REG/$A/sk-tls:v1"
step "curl over HTTPS: A/sk-tls:v1 has the original digest" served_digest "$A/sk-tls" v1 "$SMALL"
step "skopeo inspect over HTTPS with the pull-only key" sk_digest "$REG/$A/sk-tls:v1" "KEY:$A_PULL" "$SMALL"
step "skopeo push over HTTPS with the pull-only key refused" refused -- \
	"${SK[@]}" copy --dest-cert-dir "$CL_TMP/certs-ca" --dest-creds "KEY:$A_PULL" \
	"oci:$CONTENT/small:v1" "docker://$REG/$A/sk-tls-pull:v1"
step "skopeo without the CA refuses the server" refused 'x509|certificate' -- \
	"${SK[@]}" inspect --raw --creds "KEY:$A_PUSH" "docker://$REG/$A/sk-tls:v1"
step "skopeo login over HTTPS (--cert-dir)" \
	"${SK[@]}" login --cert-dir "$CL_TMP/certs-ca" -u KEY -p "$A_PUSH" "$REG"
sk_tags_tls() {
	"${SK[@]}" list-tags --cert-dir "$CL_TMP/certs-ca" "docker://$REG/$A/sk-tls" | tee "$CL_TMP/tags.json"
	jq -e '.Tags == ["v1"]' "$CL_TMP/tags.json" >/dev/null
}
step "skopeo list-tags with the stored credentials over HTTPS" sk_tags_tls
step "skopeo logout" "${SK[@]}" logout "$REG"

step "podman login over HTTPS (--cert-dir CA)" \
	"${PM[@]}" login "${PAF[@]}" --cert-dir "$CL_TMP/certs-ca" -u KEY -p "$A_PUSH" "$REG"
pm_push_tls() {
	"${PM[@]}" tag "$OLD_REG/$A/sk:v1" "$REG/$A/pm-tls:v1" &&
		"${PM[@]}" push "${PAF[@]}" --cert-dir "$CL_TMP/certs-ca" --digestfile "$PD/pm-tls.digest" "$REG/$A/pm-tls:v1"
}
step "podman tag + push over HTTPS -> A/pm-tls:v1" pm_push_tls
step "curl: A/pm-tls:v1 has podman's digest" served_digest "$A/pm-tls" v1 "$(cat "$PD/pm-tls.digest" 2>/dev/null || echo none)"
pm_repull_tls() {
	"${PM[@]}" rmi "$REG/$A/pm-tls:v1" &&
		"${PM[@]}" pull "${PAF[@]}" --cert-dir "$CL_TMP/certs-ca" "$REG/$A/pm-tls:v1"
}
step "podman rmi + pull back over HTTPS" pm_repull_tls
step "podman logout" "${PM[@]}" logout "${PAF[@]}" "$REG"
step "podman pull with a device certificate (no login)" \
	"${PM[@]}" pull "${PAF[@]}" --cert-dir "$CL_TMP/certs-dev" "$REG/$A/sk-tls:v1"
step "podman push with the device certificate refused" refused -- \
	"${PM[@]}" push "${PAF[@]}" --cert-dir "$CL_TMP/certs-dev" "$REG/$A/sk-tls:v1" "$REG/$A/pm-dev:v1"
step "curl: nothing was pushed by the device" absent "$A/pm-dev" v1

if [ "$HAVE_CTR" = 1 ]; then
	# ctr (containerd 1.6) talks plain HTTP to 127.0.0.1 even with
	# --tlscacert; a hosts.toml naming the https server, the CA and
	# optionally the client pair makes it use TLS.
	make_hosts() {
		local dir=$1
		mkdir -p "$dir/$REG"
		{
			printf 'server = "https://%s"\n\n[host."https://%s"]\n' "$REG" "$REG"
			printf '  capabilities = ["pull", "resolve", "push"]\n  ca = "%s"\n' "$P/ca.crt"
			[ $# -gt 1 ] && printf '  client = [["%s", "%s"]]\n' "$2" "$3"
		} >"$dir/$REG/hosts.toml"
	}
	make_hosts "$CL_TMP/hosts-ca"
	make_hosts "$CL_TMP/hosts-dev" "$P/dev-ok.crt" "$P/dev-ok.key"
	CA=(--hosts-dir "$CL_TMP/hosts-ca")
	DEV=(--hosts-dir "$CL_TMP/hosts-dev")
	step "ctr pull over HTTPS without credentials fails" refused -- \
		"${CTR[@]}" images pull "${CA[@]}" "$REG/$A/sk-tls:v1"
	step "ctr pull over HTTPS (hosts.toml with the CA) --user KEY:<push key>" \
		"${CTR[@]}" images pull "${CA[@]}" --snapshotter native --user "KEY:$A_PUSH" "$REG/$A/sk-tls:v1"
	step "ctr push over HTTPS -> A/ctr-tls:v1" \
		"${CTR[@]}" images push "${CA[@]}" --user "KEY:$A_PUSH" "$REG/$A/ctr-tls:v1" "$REG/$A/sk-tls:v1"
	step "curl: A/ctr-tls:v1 has the original digest" served_digest "$A/ctr-tls" v1 "$SMALL"
	step "ctr push over HTTPS with the pull-only key refused" refused -- \
		"${CTR[@]}" images push "${CA[@]}" --user "KEY:$A_PULL" "$REG/$A/ctr-tls-pull:v1" "$REG/$A/sk-tls:v1"
	step "ctr pull with the device certificate (hosts.toml client pair, the gateway case)" \
		"${CTR[@]}" images pull "${DEV[@]}" --snapshotter native "$REG/$A/ctr-tls:v1"
	step "ctr push with the device certificate refused" refused -- \
		"${CTR[@]}" images push "${DEV[@]}" "$REG/$A/ctr-dev:v1" "$REG/$A/sk-tls:v1"
	step "curl: nothing was pushed by the device" absent "$A/ctr-dev" v1
	step "ctr pull of B's image with A's device certificate refused" refused -- \
		"${CTR[@]}" images pull "${DEV[@]}" "$REG/$B/sk:v1"
	containerd_stop
fi

"${PM[@]}" rmi -a -f >/dev/null 2>&1
auth_stop
echo "total $((SECONDS - T_START)) s"
berth_done
