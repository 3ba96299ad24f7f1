#!/usr/bin/env bash
# The authorisation deny matrix (issue 3).  Two accounts A and B, each with
# a push key and a pull-only key, plus a revoked and an expired key; content
# (blobs, a manifest tagged v1, a referrer, a "victim" tag, an open upload
# session) seeded in A/app and B/app with the owners' push keys.  Every
# endpoint is then tried with every credential form: none and bad ones
# (401 UNAUTHORIZED with the exact Bearer challenge and scope), pull-only
# keys (reads 200, writes and deletes 403 DENIED), the other account's keys
# and tokens (403 DENIED on existing and non-existing repositories, the two
# answers byte-identical apart from Date), non-tenant names (400
# NAME_INVALID), and finally the owner's Basic key, Bearer key and token
# (the success codes).  Afterwards nothing of B's may have changed or
# leaked: victim content intact, the upload session empty, the catalog
# listing only the caller's repositories, mounts across accounts plain
# 202 uploads.  Also covers the admin commands' output formats and exit
# codes.  Device certificates are in test_auth_tls.sh.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/auth_lib.sh"

T_START=$SECONDS
W=$E2E_WORK

# ------------------------------------------------------------------ setup
section "server, accounts and keys"
# Tokens are fetched once at the start and used throughout: on a loaded
# machine the run can outlast the default 5-minute lifetime.
printf 'auth:\n  token_ttl: 3600\n' >"$W/config.yml"
berth_start --config "$W/config.yml" || exit 1
auth_require_auth
auth_new_account A alpha
auth_new_account B beta
AUTH_LABEL[$A]=A
AUTH_LABEL[$B]=B
auth_new_key A_EXP_ID A_EXP "$A" --expires 1s --label expiring
T_EXPIRES=$SECONDS
auth_new_key B_EXP_ID B_EXP "$B" --expires 1s
auth_new_key A_PUSH_ID A_PUSH "$A" --label push
auth_new_key A_PULL_ID A_PULL "$A" --pull-only --label pull
auth_new_key A_REV_ID A_REV "$A" --label to-revoke
auth_new_key B_PUSH_ID B_PUSH "$B"
auth_new_key B_PULL_ID B_PULL "$B" --pull-only
auth_new_key B_REV_ID B_REV "$B"

section "admin commands: formats and exit codes"
auth_admin account list
lines_ok=1
for id in "$A" "$B"; do
	grep -qE "^$id"$'\t'"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"$'\t'"(alpha|beta)$" <<<"$AUTH_OUT" || lines_ok=0
done
if [ "$AUTH_RC" = 0 ] && [ "$lines_ok" = 1 ] && [ "$(wc -l <<<"$AUTH_OUT")" = 2 ]; then
	ok "account list: one '<id>\\t<RFC3339>\\t<name>' line per account"
else
	fail "account list (exit $AUTH_RC) output unexpected" "$AUTH_OUT"
fi
auth_admin key create --account ffffffffffffffffffffffffffffffff
if [ "$AUTH_RC" = 1 ] && [ -z "$AUTH_OUT" ] && [ -n "$AUTH_ERR" ]; then
	ok "key create for an unknown account: exit 1, message on stderr, nothing on stdout"
else
	fail "key create for an unknown account: exit $AUTH_RC, stdout '$AUTH_OUT', stderr '$AUTH_ERR'"
fi
auth_admin key create --account "$A" --expires 5x
if [ "$AUTH_RC" != 0 ] && [ -z "$AUTH_OUT" ]; then
	ok "key create --expires 5x refused (exit $AUTH_RC)"
else
	fail "key create --expires 5x: exit $AUTH_RC, stdout '$AUTH_OUT'"
fi
# expires_minus_created KEY_ID: seconds between the two key list columns.
expires_minus_created() {
	local line c e
	auth_admin key list --account "$A"
	line=$(awk -F'\t' -v id="$1" '$1 == id' <<<"$AUTH_OUT")
	c=$(cut -f3 <<<"$line")
	e=$(cut -f4 <<<"$line")
	echo $(($(date -d "$e" +%s 2>/dev/null || echo 0) - $(date -d "$c" +%s 2>/dev/null || echo 0)))
}
for dur in 90d:7776000 12h:43200 30m:1800 45s:45; do
	auth_admin key create --account "$A" --expires "${dur%%:*}" --label "dur-${dur%%:*}"
	kid=${AUTH_OUT%% *}
	auth_admin key revoke "$kid"
	got=$(expires_minus_created "$kid")
	if [ "$got" -ge $((${dur##*:} - 2)) ] && [ "$got" -le $((${dur##*:} + 2)) ]; then
		ok "--expires ${dur%%:*}: expires $got s after creation"
	else
		fail "--expires ${dur%%:*}: expires $got s after creation, want ${dur##*:}"
	fi
done
auth_admin key revoke 0123456789abcdef
expect_eq "key revoke of an unknown key id: exit" "$AUTH_RC" 1
"$BERTHD" account frobnicate --data-dir "$BERTH_DATA" >/dev/null 2>&1
expect_eq "unknown admin subcommand: exit (usage)" "$?" 2
"$BERTHD" key create --data-dir "$BERTH_DATA" >/dev/null 2>&1
expect_eq "key create without --account: exit (usage)" "$?" 2

# Credentials (Authorization header values) by label.
declare -A CRED=(
	[none]=""
	[A-basic]=$(auth_basic KEY "$A_PUSH")
	[A-bearer]="Bearer $A_PUSH"
	[A-pull-basic]=$(auth_basic KEY "$A_PULL")
	[A-pull-bearer]="Bearer $A_PULL"
	[B-basic]=$(auth_basic KEY "$B_PUSH")
	[B-bearer]="Bearer $B_PUSH"
	[B-pull-basic]=$(auth_basic KEY "$B_PULL")
	# The right key id with another secret; the right key under another
	# user name (the user must be the literal KEY).
	[wrong-password]=$(auth_basic KEY "${A_PUSH:0:20}$(printf '%048d' 7)")
	[wrong-user]=$(auth_basic admin "$A_PUSH")
	[lowercase-user]=$(auth_basic key "$A_PUSH")
	[empty-password]=$(auth_basic KEY "")
	[bearer-wrong-secret]="Bearer ${A_PUSH:0:20}$(printf '%048d' 7)"
	[bearer-garbage]="Bearer not-a-key-nor-a-token"
	[basic-garbage]="Basic !!not-base64!!"
	[revoked-basic]=$(auth_basic KEY "$A_REV")
	[revoked-bearer]="Bearer $A_REV"
	[expired-basic]=$(auth_basic KEY "$A_EXP")
	[expired-bearer]="Bearer $A_EXP"
	[B-revoked-basic]=$(auth_basic KEY "$B_REV")
	[B-expired-basic]=$(auth_basic KEY "$B_EXP")
)

section "the keys to be revoked work before revocation"
for c in revoked-basic revoked-bearer B-revoked-basic; do
	as "$c" "${CRED[$c]}"
	areq GET /v2/
	expect_resp 200
done
auth_revoke "$A_REV_ID"
auth_revoke "$B_REV_ID"

# ------------------------------------------------------------------ content
section "seed content with the owners' push keys"
declare -A BLOB_OF=() MAN_OF=() REF_OF=() VIC_MAN_OF=() VIC_BLOB_OF=() LOC_OF=() PM_OF=()
declare -A MOUNT_FROM_OF=() MOUNT_D_OF=()

# seed ACCOUNT LABEL: A/app or B/app with config, layer, manifest v1, a
# referrer of it, a victim tag/manifest/blob, an open upload session, and a
# manifest file (PM_OF) the matrix tries to PUT as tag "probe".
seed() {
	local acct=$1 l=$2 r=$1/app
	printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"seed":"%s"}' "$l" >"$W/$l-cfg"
	make_blob "$W/$l-layer" 2048 "matrix-$l-layer"
	make_blob "$W/$l-vic" 1024 "matrix-$l-victim"
	make_blob "$W/$l-sig" 64 "matrix-$l-sig"
	printf '{}' >"$W/empty"
	apush_blob "$r" "$W/$l-cfg"

	apush_blob "$r" "$W/$l-layer"
	BLOB_OF[$r]=$BLOB_DIGEST
	apush_blob "$r" "$W/$l-vic"
	VIC_BLOB_OF[$r]=$BLOB_DIGEST
	apush_blob "$r" "$W/$l-sig"
	apush_blob "$r" "$W/empty"
	make_manifest "$W/$l-m" "$W/$l-cfg" "$MT_OCI_CONFIG" "$W/$l-layer"
	MAN_OF[$r]=$(digest_of "$W/$l-m")
	apush_manifest "$r" v1 "$W/$l-m"
	make_referrer "$W/$l-ref" "$W/$l-m" "$W/empty" "$W/$l-sig"
	REF_OF[$r]=$(digest_of "$W/$l-ref")
	apush_manifest "$r" "${REF_OF[$r]}" "$W/$l-ref"
	make_manifest "$W/$l-vm" "$W/$l-cfg" "$MT_OCI_CONFIG" "$W/$l-vic"
	VIC_MAN_OF[$r]=$(digest_of "$W/$l-vm")
	apush_manifest "$r" victim "$W/$l-vm"
	make_manifest "$W/$l-pm" "$W/$l-cfg" "$MT_OCI_CONFIG" "$W/$l-layer" "$W/$l-vic"
	PM_OF[$r]=$W/$l-pm
	areq POST "/v2/$r/blobs/uploads/" -H 'Content-Length: 0'
	expect_resp 202
	LOC_OF[$r]=$(hdr Location)
	expect_match "upload Location of $l/app" "${LOC_OF[$r]}" "/v2/$r/blobs/uploads/"
}
as A-basic "${CRED[A-basic]}"
seed "$A" A
as B-basic "${CRED[B-basic]}"
seed "$B" B

# The non-existent twins A/nop and B/nop (same length as "app", so answers
# that echo the name keep their length) use the same digests and session id.
for acct in "$A" "$B"; do
	for m in BLOB_OF MAN_OF REF_OF VIC_MAN_OF VIC_BLOB_OF PM_OF; do
		declare -n arr=$m
		arr["$acct/nop"]=${arr["$acct/app"]}
		unset -n arr
	done
	LOC_OF[$acct/nop]=${LOC_OF[$acct/app]/"$acct/app"/"$acct/nop"}
done
# Mount sources: into A's repositories from B/app, into B's from A/app.
for r in "$A/app" "$A/nop"; do
	MOUNT_FROM_OF[$r]=$B/app
	MOUNT_D_OF[$r]=${BLOB_OF[$B/app]}
done
for r in "$B/app" "$B/nop"; do
	MOUNT_FROM_OF[$r]=$A/app
	MOUNT_D_OF[$r]=${BLOB_OF[$A/app]}
done
# What the matrix tries to write: a blob that must never be stored.
PROBE=$W/probe
make_blob "$PROBE" 777 matrix-probe
PROBE_D=$(digest_of "$PROBE")

# Per owner credential form: a tag, manifest and blob to delete.
as A-basic "${CRED[A-basic]}"
declare -A DEL_MAN=() DEL_BLOB=()
for c in A-basic A-bearer A-token; do
	make_blob "$W/del-$c" 512 "matrix-del-$c"
	apush_blob "$A/app" "$W/del-$c"
	DEL_BLOB[$c]=$BLOB_DIGEST
	make_manifest "$W/del-$c.m" "$W/A-cfg" "$MT_OCI_CONFIG" "$W/del-$c"
	DEL_MAN[$c]=$(digest_of "$W/del-$c.m")
	apush_manifest "$A/app" "del-$c" "$W/del-$c.m"
done

section "tokens"
auth_discover
expect_eq "service (no public_host configured)" "$AUTH_SERVICE" berth
expect_eq "realm (from the Host header)" "$AUTH_REALM" "$BERTH_URL/v2/token"
# Each account asks for everything on its own and the other's repositories;
# the foreign scopes are dropped.
scopes_for() {
	local own=$1 other=$2
	printf '%s\n' "repository:$own/app:pull,push,delete" "repository:$own/nop:pull,push,delete" \
		"repository:$own/other-a-token:pull,push" "registry:catalog:*" \
		"repository:$other/app:pull,push,delete" "repository:$other/nop:pull,push,delete"
}
mapfile -t A_SCOPES < <(scopes_for "$A" "$B")
mapfile -t B_SCOPES < <(scopes_for "$B" "$A")
auth_token A_TOKEN "${CRED[A-basic]}" "${A_SCOPES[@]}"
expect_resp 200
auth_token B_TOKEN "${CRED[B-basic]}" "${B_SCOPES[@]}"
expect_resp 200
CRED[A-token]="Bearer $A_TOKEN"
CRED[B-token]="Bearer $B_TOKEN"

# Let the 1 s keys expire.
while [ $((SECONDS - T_EXPIRES)) -lt 3 ]; do sleep 0.5; done

# ------------------------------------------------------------------ the matrix
REPO_OPS=(blob_head blob_get man_head man_get man_digest tags referrers
	post mono patch put status cancel man_put mount del_tag del_man del_blob)
# Actions by HTTP method as distribution maps them: GET/HEAD pull,
# POST/PUT/PATCH pull,push; upload sessions are push state, so reading
# their status and cancelling them need pull,push; deleting content is
# delete.
# shellcheck disable=SC2054 # the commas are in the values
declare -A ACT=(
	[blob_head]=pull [blob_get]=pull [man_head]=pull [man_get]=pull [man_digest]=pull
	[tags]=pull [referrers]=pull
	[post]=pull,push [mono]=pull,push [patch]=pull,push [put]=pull,push
	[status]=pull,push [cancel]=pull,push [man_put]=pull,push [mount]=pull,push
	[del_tag]=delete [del_man]=delete [del_blob]=delete
)

# run_op OP REPO: one request of the matrix on REPO with the current
# credentials.
run_op() {
	local op=$1 r=${2:-} loc sep
	case $op in
	base) areq GET /v2/ ;;
	catalog) areq GET /v2/_catalog ;;
	blob_head) areq HEAD "/v2/$r/blobs/${BLOB_OF[$r]}" ;;
	blob_get) areq GET "/v2/$r/blobs/${BLOB_OF[$r]}" ;;
	man_head) areq HEAD "/v2/$r/manifests/v1" -H "Accept: $MT_OCI_MANIFEST" ;;
	man_get) areq GET "/v2/$r/manifests/v1" -H "Accept: $MT_OCI_MANIFEST" ;;
	man_digest) areq GET "/v2/$r/manifests/${MAN_OF[$r]}" -H "Accept: $MT_OCI_MANIFEST" ;;
	tags) areq GET "/v2/$r/tags/list" ;;
	referrers) areq GET "/v2/$r/referrers/${MAN_OF[$r]}" ;;
	post) areq POST "/v2/$r/blobs/uploads/" -H 'Content-Length: 0' ;;
	mono) areq POST "/v2/$r/blobs/uploads/?digest=$PROBE_D" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$PROBE" ;;
	patch) areq PATCH "${LOC_OF[$r]}" -H 'Content-Type: application/octet-stream' --data-binary "@$PROBE" ;;
	put)
		loc=${LOC_OF[$r]}
		sep='?'
		[[ $loc == *\?* ]] && sep='&'
		areq PUT "$loc${sep}digest=$PROBE_D" -H 'Content-Type: application/octet-stream' --data-binary "@$PROBE"
		;;
	status) areq GET "${LOC_OF[$r]}" ;;
	cancel) areq DELETE "${LOC_OF[$r]}" ;;
	man_put) areq PUT "/v2/$r/manifests/probe" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@${PM_OF[$r]}" ;;
	mount) areq POST "/v2/$r/blobs/uploads/?mount=${MOUNT_D_OF[$r]}&from=${MOUNT_FROM_OF[$r]}" -H 'Content-Length: 0' ;;
	del_tag) areq DELETE "/v2/$r/manifests/victim" ;;
	del_man) areq DELETE "/v2/$r/manifests/${VIC_MAN_OF[$r]}" ;;
	del_blob) areq DELETE "/v2/$r/blobs/${VIC_BLOB_OF[$r]}" ;;
	*)
		fail "unknown op $op"
		return 1
		;;
	esac
}

# scope_re OP REPO: the challenge regex for OP on REPO.
scope_re() {
	local op=$1 r=$2 s
	s="repository:$(re_quote "$r"):$(re_quote "${ACT[$op]}")"
	if [ "$op" = mount ]; then
		# A challenge may also name the source repository.
		s+="( repository:$(re_quote "${MOUNT_FROM_OF[$r]}"):pull)?"
	fi
	challenge_re "$s"
}
CHALLENGE_PLAIN=$(challenge_re)
CHALLENGE_CATALOG="$CHALLENGE_PLAIN(,scope=\"registry:catalog:\\*\")?"

# expect_unauth OP REPO: 401 UNAUTHORIZED with the challenge for OP.
expect_unauth() {
	case $1 in
	base) expect_resp 401 UNAUTHORIZED "$CHALLENGE_PLAIN" ;;
	catalog) expect_resp 401 UNAUTHORIZED "$CHALLENGE_CATALOG" ;;
	*) expect_resp 401 UNAUTHORIZED "$(scope_re "$1" "$2")" ;;
	esac
}

section "no or bad credentials: 401 UNAUTHORIZED + Bearer challenge on every endpoint"
FULL_BAD=(none wrong-password wrong-user revoked-basic expired-basic)
MORE_BAD=(lowercase-user empty-password bearer-wrong-secret bearer-garbage basic-garbage
	revoked-bearer expired-bearer B-revoked-basic B-expired-basic)
for c in "${FULL_BAD[@]}"; do
	as "$c" "${CRED[$c]}"
	for op in base catalog; do
		run_op "$op"
		expect_unauth "$op"
	done
	for r in "$A/app" "$B/nop"; do
		for op in "${REPO_OPS[@]}"; do
			run_op "$op" "$r"
			expect_unauth "$op" "$r"
		done
	done
done
for c in "${MORE_BAD[@]}"; do
	as "$c" "${CRED[$c]}"
	for op in base catalog; do
		run_op "$op"
		expect_unauth "$op"
	done
	for op in man_head tags post patch man_put del_man; do
		run_op "$op" "$A/app"
		expect_unauth "$op" "$A/app"
	done
done
as none ""
areq GET /v2/
expect_header_eq Docker-Distribution-API-Version registry/2.0

section "pull-only keys on their own repository: reads succeed, writes and deletes 403 DENIED"
for c in A-pull-basic A-pull-bearer; do
	as "$c" "${CRED[$c]}"
	run_op base
	expect_resp 200
	for op in "${REPO_OPS[@]}"; do
		run_op "$op" "$A/app"
		if [ "${ACT[$op]}" = pull ]; then
			expect_resp 200
		else
			expect_resp 403 DENIED
		fi
	done
done
as A-pull-basic "${CRED[A-pull-basic]}"
areq GET "/v2/$A/app/blobs/${BLOB_OF[$A/app]}"
expect_body_file "$W/A-layer"
areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
expect_body_file "$W/A-m"
areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
expect_header_eq Docker-Distribution-API-Version registry/2.0
expect_no_header Location
# Upload sessions are push state: a pull-only key (or a token for one,
# however much it asks for) learns nothing about one, not even its size.
for c in A-pull-basic A-pull-bearer; do
	as "$c" "${CRED[$c]}"
	areq GET "${LOC_OF[$A/app]}"
	expect_resp 403 DENIED
	expect_no_header Range
	expect_no_header Docker-Upload-UUID
done
auth_token A_PULL_TOKEN "${CRED[A-pull-basic]}" "repository:$A/app:pull,push"
expect_resp 200
as A-pull-token "Bearer $A_PULL_TOKEN"
areq GET "${LOC_OF[$A/app]}"
expect_resp 403 DENIED
expect_no_header Range
as A-basic "${CRED[A-basic]}"
areq GET "${LOC_OF[$A/app]}"
expect_resp 204
expect_header Range '0-0|0--1'

section "another account's repositories: 403 DENIED, existing or not, byte for byte the same"
# foreign CRED OWNER: every repository operation on OWNER/app and OWNER/nop.
foreign() {
	local c=$1 owner=$2 op fp
	as "$c" "${CRED[$c]}"
	for op in "${REPO_OPS[@]}"; do
		run_op "$op" "$owner/app"
		expect_resp 403 DENIED
		fp=${REQ_FP//"$owner/app"/"<repo>"}
		run_op "$op" "$owner/nop"
		expect_resp 403 DENIED
		if [ "$fp" = "${REQ_FP//"$owner/nop"/"<repo>"}" ]; then
			ok "$op [$c]: same answer for ${AUTH_LABEL[$owner]}/app (exists) and ${AUTH_LABEL[$owner]}/nop (does not)"
		else
			fail "$op [$c]: answers for an existing and a missing repository differ" \
				"existing: $(printf '%s' "$fp" | tr '\n' '|')" \
				"missing:  $(printf '%s' "${REQ_FP//"$owner/nop"/"<repo>"}" | tr '\n' '|')"
		fi
	done
}
for c in A-basic A-bearer A-token A-pull-basic; do
	foreign "$c" "$B"
done
for c in B-basic B-bearer B-token B-pull-basic; do
	foreign "$c" "$A"
done
as A-basic "${CRED[A-basic]}"
areq GET "/v2/$B/app/tags/list"
expect_header_eq Docker-Distribution-API-Version registry/2.0
expect_no_header Docker-Content-Digest
# A repository of an account that does not exist at all.
areq GET "/v2/ffffffffffffffffffffffffffffffff/app/tags/list"
expect_resp 403 DENIED

section "non-tenant names: 400 NAME_INVALID when authenticated"
BAD_NAMES=(library/app app "$A" "${A^^}/app" "${A:0:31}/app" "${A}0/app" "g${A:1}/app"
	"$A/a__b" "$A/a--b" "$A/App" "$B/a__b")
for c in A-basic A-token; do
	as "$c" "${CRED[$c]}"
	for n in "${BAD_NAMES[@]}"; do
		areq GET "/v2/$n/tags/list"
		expect_resp 400 NAME_INVALID
	done
done
as A-basic "${CRED[A-basic]}"
for n in library/app "$A/a__b" "${A^^}/app"; do
	areq POST "/v2/$n/blobs/uploads/" -H 'Content-Length: 0'
	expect_resp 400 NAME_INVALID
	areq GET "/v2/$n/manifests/v1"
	expect_resp 400 NAME_INVALID
	areq PUT "/v2/$n/manifests/v1" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@${PM_OF[$A/app]}"
	expect_resp 400 NAME_INVALID
	areq DELETE "/v2/$n/manifests/${MAN_OF[$A/app]}"
	expect_resp 400 NAME_INVALID
	areq HEAD "/v2/$n/blobs/${BLOB_OF[$A/app]}"
	expect_resp 400
done

section "no cross-account reach through content addresses, referrers or session ids"
as A-basic "${CRED[A-basic]}"
# A manifest in A naming B's layer (A knows the digest, not the bytes).
make_manifest "$W/leak.m" "$W/A-cfg" "$MT_OCI_CONFIG" "$W/B-layer"
areq PUT "/v2/$A/app/manifests/leak" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$W/leak.m"
expect_resp 400 MANIFEST_BLOB_UNKNOWN
areq GET "/v2/$A/app/manifests/leak" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 404 MANIFEST_UNKNOWN
areq GET "/v2/$A/app/blobs/${BLOB_OF[$B/app]}"
expect_resp 404 BLOB_UNKNOWN
# An index in A naming B's manifest.
jq -c -n --arg it "$MT_OCI_INDEX" --arg mt "$MT_OCI_MANIFEST" --arg d "${MAN_OF[$B/app]}" \
	--argjson s "$(size_of "$W/B-m")" '{schemaVersion: 2, mediaType: $it, manifests: [{mediaType: $mt, digest: $d, size: $s}]}' |
	tr -d '\n' >"$W/leak.idx"
areq PUT "/v2/$A/app/manifests/leak-idx" -H "Content-Type: $MT_OCI_INDEX" --data-binary "@$W/leak.idx"
expect_resp 400 MANIFEST_BLOB_UNKNOWN
areq GET "/v2/$A/app/manifests/${MAN_OF[$B/app]}" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 404 MANIFEST_UNKNOWN
# Referrers of B's manifest asked in A's repository: none of B's.
areq GET "/v2/$A/app/referrers/${MAN_OF[$B/app]}"
expect_resp 200
expect_json '.manifests | length' 0
# A referrer in A whose subject is B's manifest must not show up in B.
make_referrer "$W/leak.ref" "$W/B-m" "$W/empty" "$W/A-sig"
areq PUT "/v2/$A/app/manifests/$(digest_of "$W/leak.ref")" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$W/leak.ref"
expect_resp 201
as B-basic "${CRED[B-basic]}"
areq GET "/v2/$B/app/referrers/${MAN_OF[$B/app]}"
expect_resp 200
expect_json '[.manifests[].digest] | join(",")' "${REF_OF[$B/app]}"
# B's upload session id used under A's repository name.
as A-basic "${CRED[A-basic]}"
B_SESSION=${LOC_OF[$B/app]/"$B/app"/"$A/app"}
areq GET "$B_SESSION"
expect_resp 404 BLOB_UPLOAD_UNKNOWN
areq PATCH "$B_SESSION" -H 'Content-Type: application/octet-stream' --data-binary "@$PROBE"
expect_resp 404 BLOB_UPLOAD_UNKNOWN
areq PUT "$B_SESSION?digest=$PROBE_D" -H 'Content-Type: application/octet-stream' --data-binary "@$PROBE"
expect_resp 404 BLOB_UPLOAD_UNKNOWN
areq DELETE "$B_SESSION"
expect_resp 404 BLOB_UPLOAD_UNKNOWN

# ------------------------------------------------------------------ nothing changed
section "after all the refused requests, both accounts' content is untouched"
# intact ACCOUNT LABEL TAGS
intact() {
	local acct=$1 l=$2 r=$1/app
	areq GET "/v2/$r/tags/list"
	expect_resp 200
	expect_json '.tags | sort | join(",")' "$3"
	areq HEAD "/v2/$r/manifests/victim" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 200
	expect_header_eq Docker-Content-Digest "${VIC_MAN_OF[$r]}"
	areq HEAD "/v2/$r/manifests/${VIC_MAN_OF[$r]}" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 200
	areq GET "/v2/$r/blobs/${VIC_BLOB_OF[$r]}"
	expect_resp 200
	expect_body_file "$W/$l-vic"
	areq HEAD "/v2/$r/blobs/$PROBE_D"
	expect_resp 404
	areq GET "/v2/$r/manifests/probe" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 404 MANIFEST_UNKNOWN
	areq GET "${LOC_OF[$r]}"
	expect_resp 204
	expect_header Range '0-0|0--1'
	areq HEAD "/v2/$r/blobs/${MOUNT_D_OF[$r]}"
	expect_resp 404
	areq GET "/v2/$r/referrers/${MAN_OF[$r]}"
	expect_resp 200
	expect_json '[.manifests[].digest] | join(",")' "${REF_OF[$r]}"
	# The twin that never existed still does not.
	areq GET "/v2/$acct/nop/tags/list"
	expect_resp 404 NAME_UNKNOWN
}
as A-basic "${CRED[A-basic]}"
intact "$A" A "del-A-basic,del-A-bearer,del-A-token,v1,victim"
as B-basic "${CRED[B-basic]}"
intact "$B" B "v1,victim"

# ------------------------------------------------------------------ success
section "the owner's Basic key, Bearer key and token: success codes"
# own_success CRED: the whole API on A/app with one credential form.
own_success() {
	local c=$1 r=$A/app loc sep d
	as "$c" "${CRED[$c]}"
	run_op base "$r"
	expect_resp 200
	run_op blob_head "$r"
	expect_resp 200
	expect_header_eq Docker-Content-Digest "${BLOB_OF[$r]}"
	run_op blob_get "$r"
	expect_resp 200
	expect_body_file "$W/A-layer"
	run_op man_head "$r"
	expect_resp 200
	expect_header_eq Docker-Content-Digest "${MAN_OF[$r]}"
	run_op man_get "$r"
	expect_resp 200
	expect_body_file "$W/A-m"
	run_op man_digest "$r"
	expect_resp 200
	run_op tags "$r"
	expect_resp 200
	expect_match "tags of A/app [$c]" "$REQ_BODY" "\"v1\""
	run_op referrers "$r"
	expect_resp 200
	expect_match "referrers of A/app v1 [$c]" "$REQ_BODY" "${REF_OF[$r]}"
	# Chunked upload: POST, PATCH, PUT.
	make_blob "$W/up-$c" 3000 "matrix-up-$c"
	d=$(digest_of "$W/up-$c")
	areq POST "/v2/$r/blobs/uploads/" -H 'Content-Length: 0'
	expect_resp 202
	loc=$(hdr Location)
	areq PATCH "$loc" -H 'Content-Type: application/octet-stream' --data-binary "@$W/up-$c"
	expect_resp 202
	expect_header_eq Range 0-2999
	loc=$(hdr Location)
	sep='?'
	[[ $loc == *\?* ]] && sep='&'
	areq PUT "$loc${sep}digest=$d"
	expect_resp 201
	expect_header_eq Docker-Content-Digest "$d"
	areq HEAD "/v2/$r/blobs/$d"
	expect_resp 200
	# Status and cancel.
	areq POST "/v2/$r/blobs/uploads/" -H 'Content-Length: 0'
	expect_resp 202
	loc=$(hdr Location)
	areq GET "$loc"
	expect_resp 204
	areq DELETE "$loc"
	expect_resp 204
	areq GET "$loc"
	expect_resp 404 BLOB_UPLOAD_UNKNOWN
	# Monolithic POST.
	make_blob "$W/mono-$c" 1500 "matrix-mono-$c"
	areq POST "/v2/$r/blobs/uploads/?digest=$(digest_of "$W/mono-$c")" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$W/mono-$c"
	expect_resp 201
	# Manifest PUT.
	make_manifest "$W/put-$c.m" "$W/A-cfg" "$MT_OCI_CONFIG" "$W/up-$c" "$W/mono-$c"
	areq PUT "/v2/$r/manifests/put-$c" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$W/put-$c.m"
	expect_resp 201
	expect_header_eq Docker-Content-Digest "$(digest_of "$W/put-$c.m")"
	# Mount within the account: 201.
	areq POST "/v2/$A/other-${c,,}/blobs/uploads/?mount=${BLOB_OF[$r]}&from=$r" -H 'Content-Length: 0'
	expect_resp 201
	expect_header_eq Docker-Content-Digest "${BLOB_OF[$r]}"
	# Mount from B into A: a plain upload session, nothing of B's linked.
	areq POST "/v2/$r/blobs/uploads/?mount=${BLOB_OF[$B/app]}&from=$B/app" -H 'Content-Length: 0'
	expect_resp 202
	expect_header Location "(http://127\\.0\\.0\\.1:[0-9]+)?/v2/$r/blobs/uploads/.+"
	expect_no_header Docker-Content-Digest
	loc=$(hdr Location)
	areq HEAD "/v2/$r/blobs/${BLOB_OF[$B/app]}"
	expect_resp 404
	areq DELETE "$loc"
	expect_resp 204
	# Deletes: tag, manifest, blob.
	areq DELETE "/v2/$r/manifests/del-$c"
	expect_resp 202
	areq GET "/v2/$r/manifests/del-$c" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 404 MANIFEST_UNKNOWN
	areq DELETE "/v2/$r/manifests/${DEL_MAN[$c]}"
	expect_resp 202
	areq DELETE "/v2/$r/blobs/${DEL_BLOB[$c]}"
	expect_resp 202
	areq HEAD "/v2/$r/blobs/${DEL_BLOB[$c]}"
	expect_resp 404
	# An own repository that does not exist: 404, not 403.
	areq GET "/v2/$A/nop/tags/list"
	expect_resp 404 NAME_UNKNOWN
}
for c in A-basic A-bearer A-token; do
	own_success "$c"
done

section "B mounts from A: plain 202 upload, A's blob not linked into B"
as B-basic "${CRED[B-basic]}"
areq POST "/v2/$B/app/blobs/uploads/?mount=${BLOB_OF[$A/app]}&from=$A/app" -H 'Content-Length: 0'
expect_resp 202
expect_no_header Docker-Content-Digest
areq HEAD "/v2/$B/app/blobs/${BLOB_OF[$A/app]}"
expect_resp 404
# ...and with a token that asked for pull on A/app (dropped).
as B-token "${CRED[B-token]}"
areq POST "/v2/$B/app/blobs/uploads/?mount=${BLOB_OF[$A/app]}&from=$A/app" -H 'Content-Length: 0'
expect_resp 202
expect_no_header Docker-Content-Digest

section "catalog: only the caller's own repositories"
# catalog_only CRED ACCOUNT MUST-HAVE
catalog_only() {
	as "$1" "${CRED[$1]}"
	run_op catalog
	expect_resp 200
	expect_json "[.repositories[] | select(startswith(\"$2/\") | not)] | length" 0
	expect_json "[.repositories[] | select(. == \"$3\")] | length" 1
}
catalog_only A-basic "$A" "$A/app"
catalog_only A-token "$A" "$A/app"
catalog_only A-pull-bearer "$A" "$A/app"
catalog_only B-basic "$B" "$B/app"
catalog_only B-token "$B" "$B/app"
as A-basic "${CRED[A-basic]}"
areq GET "/v2/_catalog?n=1"
expect_resp 200
expect_json '.repositories | join(",")' "$A/app"
# Paging one by one gives the same list as one page, never a foreign name.
areq GET "/v2/_catalog?n=1000"
ALL_A=$(jq -r '.repositories | join(" ")' <"$REQ_BODY_FILE")
paged=
next="/v2/_catalog?n=1"
for _ in $(seq 1 20); do
	areq GET "$next"
	[ "$REQ_STATUS" = 200 ] || break
	paged+="$(jq -r '.repositories | join(" ")' <"$REQ_BODY_FILE") "
	next=$(link_next) || break
done
expect_eq "catalog paged by 1 == catalog in one page" "${paged% }" "$ALL_A"
for last in "$B/app" "$B" "0" "$A/app" "ffffffffffffffffffffffffffffffff/x"; do
	areq GET "/v2/_catalog?n=1000&last=$last"
	expect_resp 200
	expect_json "[.repositories[] | select(startswith(\"$A/\") | not)] | length" 0
done

section "key list: states"
auth_admin key list --account "$A"
state_of() { awk -F'\t' -v id="$1" '$1 == id { print $4 "|" $5 "|" $6 }' <<<"$AUTH_OUT"; }
perm_of() { awk -F'\t' -v id="$1" '$1 == id { print $2 }' <<<"$AUTH_OUT"; }
expect_eq "key list exit" "$AUTH_RC" 0
expect_eq "key list: 8 keys of A" "$(grep -c . <<<"$AUTH_OUT")" 8
expect_eq "push key permissions" "$(perm_of "$A_PUSH_ID")" pull,push,delete
expect_eq "pull-only key permissions" "$(perm_of "$A_PULL_ID")" pull
expect_match "push key: active, never expires, label" "$(state_of "$A_PUSH_ID")" '^never\|active\|push$'
expect_match "revoked key" "$(state_of "$A_REV_ID")" '^never\|revoked\|to-revoke$'
expect_match "expired key" "$(state_of "$A_EXP_ID")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[^|]+\|expired\|expiring$'
expect_match "key list line format" "$(grep -m1 "^$A_PULL_ID" <<<"$AUTH_OUT")" \
	"^[0-9a-f]{16}"$'\t'"pull"$'\t'"[0-9]{4}-[0-9]{2}-[0-9]{2}T[^"$'\t'"]+"$'\t'"never"$'\t'"active"$'\t'"pull$"
if grep -q "$A_PUSH" "$BERTH_DATA/meta.db" 2>/dev/null || grep -rqs "${A_PUSH:20}" "$BERTH_DATA"; then
	fail "the secret part of an access key is stored in clear under the data directory"
else
	ok "no access key secret in clear under the data directory"
fi
if grep -qs "${A_PUSH:20}" "$BERTH_LOG"; then
	fail "an access key secret appears in the server log"
else
	ok "no access key secret in the server log"
fi

section "a mount without from looks in the caller's own account only"
make_blob "$W/only-a" 4321 only-in-alpha
as A-push "Bearer $A_PUSH"
apush_blob "$A/holder" "$W/only-a"
ONLY_A=$(digest_of "$W/only-a")
# Another repository of A: mounted from A's own holding (201).
areq POST "/v2/$A/gets-it/blobs/uploads/?mount=$ONLY_A" -H 'Content-Length: 0'
expect_resp 201
expect_header_eq Docker-Content-Digest "$ONLY_A"
areq GET "/v2/$A/gets-it/blobs/$ONLY_A"
expect_resp 200
expect_body_file "$W/only-a"
# B holds nothing of it: a new session (202), never A's blob.
as B-push "Bearer $B_PUSH"
areq POST "/v2/$B/wants-it/blobs/uploads/?mount=$ONLY_A" -H 'Content-Length: 0'
expect_resp 202
areq GET "/v2/$B/wants-it/blobs/$ONLY_A"
expect_resp 404 BLOB_UNKNOWN

section "server healthy"
as A-basic "${CRED[A-basic]}"
areq GET /v2/
expect_resp 200
if kill -0 "$BERTH_PID" 2>/dev/null; then ok "berthd still running"; else fail "berthd died"; fi
echo "total $((SECONDS - T_START)) s"
berth_done
