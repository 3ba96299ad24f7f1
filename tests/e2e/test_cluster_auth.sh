#!/usr/bin/env bash
# End-to-end on a cluster (three berthd nodes behind haproxy, see
# deploy/): credentials are shared state.  An account and key made with
# one node's configuration work at once on every node; a token issued by
# one node is accepted by the others (a client gets its token through the
# balancer from any node and sends the next request to another); another
# account's key is denied on every node; and a key revoked with
# `berthd key revoke` through one node's configuration is refused by every
# node on the very next request, although each node had just accepted it
# (no wait: a revoked key must not live on in a node's cache).
set -u -o pipefail
BERTH_E2E_TARGET=${BERTH_E2E_TARGET:-cluster}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_need_cluster
berth_start || exit 1
W=$E2E_WORK
echo "cluster ($BERTH_CLUSTER_BACKEND) at $BERTH_URL, nodes: ${BERTH_NODE_URLS[*]}"

# admin N ARGS...: berthd ARGS with node N's configuration (as an operator
# on that node's machine would run it); stdout in OUT, exit status in RC.
admin() {
	local n=$1
	shift
	OUT=$("$BERTHD_BIN" "$@" --config "$BERTH_CLUSTER_DIR/node$n.yml" 2>"$W/admin.err")
	RC=$?
}

# new_key N ACCOUNT [flags]: a key made through node N; sets KEY_ID, KEY.
new_key() {
	local n=$1 account=$2
	shift 2
	admin "$n" key create --account "$account" "$@"
	KEY_ID=${OUT%% *}
	KEY=${OUT#* }
	if [ "$RC" = 0 ] && [[ $KEY =~ ^brt_[0-9a-f]{64}$ ]]; then
		ok "key $KEY_ID made through node $n"
	else
		fail "key create through node $n: exit $RC '$OUT'" "$(cat "$W/admin.err")"
	fi
}

basic() { printf 'Basic %s' "$(printf 'KEY:%s' "$1" | base64 -w0)"; }

# on_all EXPECTED DESCRIPTION CURL-ARGS... -- PATH: the request on every
# node directly and through the balancer; one assertion listing what each
# answered.
on_all() {
	local want=$1 what=$2 got=() n base path
	shift 2
	local args=()
	while [ "$1" != -- ]; do
		args+=("$1")
		shift
	done
	path=$2
	for n in 1 2 3 lb; do
		base=$BERTH_URL
		[ "$n" = lb ] || base=$(node_url "$n")
		req GET "$base$path" "${args[@]}"
		got+=("$n:$REQ_STATUS")
		if [ "$REQ_STATUS" != "$want" ]; then
			fail_resp "$what: node $n answered $REQ_STATUS, want $want"
			return 1
		fi
	done
	ok "$what: ${got[*]}"
}

section "accounts and keys made through different nodes"
admin 1 account create --name alpha
A=$OUT
expect_match "account alpha made through node 1" "$A" '^[0-9a-f]{32}$'
admin 3 account create --name beta
B=$OUT
expect_match "account beta made through node 3" "$B" '^[0-9a-f]{32}$'
new_key 2 "$A" --label a-push
A_ID=$KEY_ID A_KEY=$KEY
new_key 3 "$A" --pull-only --label a-pull
A_PULL=$KEY
new_key 1 "$B" --label b-push
B_KEY=$KEY
new_key 1 "$A" --label a-second
A2_ID=$KEY_ID A2_KEY=$KEY

section "a key works on every node at once"
on_all 200 "a key made through node 2" -H "Authorization: Bearer $A_KEY" -- /v2/
on_all 401 "no credentials" -- /v2/
expect_oci_error

section "content pushed through one node, read and denied on the others"
make_blob "$W/l1" 40000 auth-l1
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
BERTH_AUTH_HDR=(-H "Authorization: Bearer $A_KEY")
BASE_URL=$BERTH_URL
BERTH_URL=$(node_url 1)
push_blob "$A/app" "$W/l1"
push_blob "$A/app" "$W/cfg"
make_manifest "$W/m" "$W/cfg" "$MT_OCI_CONFIG" "$W/l1"
push_manifest "$A/app" v1 "$W/m"
expect_status 201
BERTH_URL=$BASE_URL
BERTH_AUTH_HDR=()
on_all 200 "the pull-only key reads it everywhere" -H "Authorization: Bearer $A_PULL" \
	-H "Accept: $MT_OCI_MANIFEST" -- "/v2/$A/app/manifests/v1"
on_all 403 "the other account's key is denied everywhere" -H "Authorization: Bearer $B_KEY" \
	-H "Accept: $MT_OCI_MANIFEST" -- "/v2/$A/app/manifests/v1"
expect_error_code DENIED
req POST "$(node_url 2)/v2/$A/app/blobs/uploads/" -H "Authorization: Bearer $A_PULL" -H 'Content-Length: 0'
expect_status 403
expect_error_code DENIED

section "a token from one node is honoured by the others"
for n in 1 2 3; do
	req GET "$(node_url "$n")/v2/token?service=berth&scope=repository:$A/app:pull,push" \
		-H "Authorization: $(basic "$A_KEY")"
	expect_status 200
	TOKEN=$(jq -r '.token // empty' <"$REQ_BODY_FILE")
	[ -n "$TOKEN" ] || fail "node $n issued no token"
	on_all 200 "a token issued by node $n" -H "Authorization: Bearer $TOKEN" \
		-H "Accept: $MT_OCI_MANIFEST" -- "/v2/$A/app/manifests/v1"
done
# The way clients do it: the challenge, then the token through the
# balancer (any node), then the request (any other node).
req GET "/v2/$A/app/tags/list"
expect_status 401
realm=$(hdr WWW-Authenticate | sed -n 's/.*realm="\([^"]*\)".*/\1/p')
expect_match "the realm points at the balancer" "$realm" "^$BERTH_URL/v2/token\$"

section "a key revoked through one node is refused by every node at once"
# Each node has just accepted the key (above and here), so each may hold
# it in a cache; the revocation must still be seen on the next request.
on_all 200 "before the revocation" -H "Authorization: Bearer $A2_KEY" -- /v2/
admin 2 key revoke "$A2_ID"
expect_eq "key revoke through node 2: exit status" "$RC" 0
on_all 401 "right after the revocation" -H "Authorization: Bearer $A2_KEY" -- /v2/
expect_error_code UNAUTHORIZED
on_all 401 "a token request with the revoked key" -H "Authorization: $(basic "$A2_KEY")" -- \
	"/v2/token?service=berth&scope=repository:$A/app:pull"
# Once more with a key every node used for content, revoked through
# another node, checked in another order.
on_all 200 "the push key before its revocation" -H "Authorization: Bearer $A_KEY" \
	-H "Accept: $MT_OCI_MANIFEST" -- "/v2/$A/app/manifests/v1"
admin 3 key revoke "$A_ID"
expect_eq "key revoke through node 3: exit status" "$RC" 0
for n in 3 1 2; do
	req GET "$(node_url "$n")/v2/$A/app/manifests/v1" -H "Authorization: Bearer $A_KEY" \
		-H "Accept: $MT_OCI_MANIFEST"
	expect_status 401
done
# The account's other keys are untouched.
on_all 200 "the pull-only key after the others' revocation" -H "Authorization: Bearer $A_PULL" \
	-H "Accept: $MT_OCI_MANIFEST" -- "/v2/$A/app/manifests/v1"
berth_done
