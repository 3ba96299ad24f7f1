#!/usr/bin/env bash
# Per-account usage and quotas (issue 9, item 3; contract in the lifecycle
# notes).  Authentication on, accounts A, B (and C for the races), each with
# a push key.
#
# Accounting: after every step the usage of the accounts involved is checked
# both with `berthd usage --account ID` (the exact line) and with
# GET /v2/_berth/usage (the exact JSON), against a model kept by this script
# (links per repository, manifests per repository, repositories): an image
# pushed, a second one sharing a layer (counted once), mounts with and
# without `from` and a duplicate upload (free), the same layer pushed by B
# (B charged, A not), DELETE of a blob link (bytes back at once when it was
# the account's last link), DELETE of a manifest (manifest bytes back at
# once), tag delete + `berthd gc --grace 0s` (the blob bytes back).
#
# Quotas: `berthd account set-quota` (suffixes, none, unknown account); every
# refusal is 403 DENIED naming the quota and its limit and leaves nothing
# behind (blob HEAD 404, usage unchanged, no new file under <data>/blobs, the
# upload session gone): POST at the limit, monolithic POST over the
# remaining quota, chunked upload whose final PUT goes over, manifest PUT
# over; while mounts and duplicates of what the account holds are free even
# at the limit, and an exact fit is accepted.
#
# Races: two rounds of 12 uploads of distinct blobs released together
# through a barrier (PUTs on sessions opened beforehand; single-POST
# monolithic uploads) against a quota that admits exactly 5 of each round:
# exactly 5 succeed, the rest get 403 and leave nothing, the usage is the sum
# of the successful ones and never above the quota.  Usage and quotas then
# survive a restart.  The usage endpoint: 401 without credentials, a pull-only
# key may read it, each account sees only its own, a fresh account has zeros.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/auth_lib.sh"

T_START=$SECONDS
W=$E2E_WORK

section "server, accounts and keys"
berth_start || exit 1
auth_require_auth
auth_new_account A alpha
auth_new_account B beta
auth_new_account C gamma
auth_new_key A_KEY_ID A_KEY "$A" --label push
auth_new_key A_PULL_ID A_PULL "$A" --pull-only --label pull
auth_new_key B_KEY_ID B_KEY "$B"
auth_new_key C_KEY_ID C_KEY "$C"
declare -A KEY_OF=([$A]=$A_KEY [$B]=$B_KEY [$C]=$C_KEY)
declare -A LBL=([$A]=A [$B]=B [$C]=C)

# use ACCOUNT: every following req carries ACCOUNT's push key.
use() { BERTH_AUTH_HDR=(-H "Authorization: Bearer ${KEY_OF[$1]}"); }

# ------------------------------------------------------------------ model
# What each account holds, as this script has pushed it:
#   LINK["<repo>|<digest>"]   a blob link (repo = "<account>/<name>")
#   MAN["<repo>|<digest>"]    a manifest's size
#   MREFS["<repo>|<digest>"]  the blob digests it lists
#   MTAGS["<repo>|<digest>"]  its tags (space-separated)
#   MQUEUED["<repo>|<digest>"]=1  a tag of it was deleted or moved (GC may
#                             take it once untagged)
#   REPO["<repo>"]            a repository the account has
#   SZ[digest]                blob sizes; QUOTA[account] bytes or "none"
declare -A LINK=() MAN=() MREFS=() MTAGS=() MQUEUED=() REPO=() SZ=() QUOTA=()
QUOTA[$A]=none
QUOTA[$B]=none
QUOTA[$C]=none

# model ACCOUNT: sets M_BYTES M_BLOBS M_BLOB_BYTES M_MANIFESTS
# M_MANIFEST_BYTES M_REPOS from the model.
model() {
	local acct=$1 k d
	local -A seen=()
	M_BLOBS=0 M_BLOB_BYTES=0 M_MANIFESTS=0 M_MANIFEST_BYTES=0 M_REPOS=0
	for k in "${!LINK[@]}"; do
		[[ $k == "$acct/"* ]] || continue
		d=${k#*|}
		[ -n "${seen[$d]:-}" ] && continue
		seen[$d]=1
		M_BLOBS=$((M_BLOBS + 1))
		M_BLOB_BYTES=$((M_BLOB_BYTES + SZ[$d]))
	done
	for k in "${!MAN[@]}"; do
		[[ $k == "$acct/"* ]] || continue
		M_MANIFESTS=$((M_MANIFESTS + 1))
		M_MANIFEST_BYTES=$((M_MANIFEST_BYTES + MAN[$k]))
	done
	for k in "${!REPO[@]}"; do
		[[ $k == "$acct/"* ]] && M_REPOS=$((M_REPOS + 1))
	done
	M_BYTES=$((M_BLOB_BYTES + M_MANIFEST_BYTES))
}

# want_line ACCOUNT / want_json ACCOUNT: the expected `berthd usage` line and
# GET /v2/_berth/usage document (jq -S -c form).
want_line() {
	model "$1"
	printf 'account=%s bytes=%s blobs=%s blob_bytes=%s manifests=%s manifest_bytes=%s repositories=%s quota=%s' \
		"$1" "$M_BYTES" "$M_BLOBS" "$M_BLOB_BYTES" "$M_MANIFESTS" "$M_MANIFEST_BYTES" "$M_REPOS" "${QUOTA[$1]}"
}
want_json() {
	local q=${QUOTA[$1]}
	[ "$q" = none ] && q=null
	model "$1"
	jq -S -c -n --arg a "$1" --argjson b "$M_BYTES" --argjson n "$M_BLOBS" --argjson bb "$M_BLOB_BYTES" \
		--argjson m "$M_MANIFESTS" --argjson mb "$M_MANIFEST_BYTES" --argjson r "$M_REPOS" --argjson q "$q" \
		'{account: $a, bytes: $b, blobs: $n, blob_bytes: $bb, manifests: $m, manifest_bytes: $mb,
		  repositories: $r, quota: $q}'
}

# check_usage STEP ACCOUNT...: two assertions per account (CLI line, HTTP
# JSON with the account's own key).  Leaves M_* set for the last account.
check_usage() {
	local step=$1 acct want got saved=("${BERTH_AUTH_HDR[@]}")
	shift
	for acct in "$@"; do
		want=$(want_line "$acct")
		auth_admin usage --account "$acct"
		if [ "$AUTH_RC" = 0 ] && [ "$AUTH_OUT" = "$want" ]; then
			ok "[$step] berthd usage --account ${LBL[$acct]}: ${want#account=* }"
		else
			fail "[$step] berthd usage --account ${LBL[$acct]}: exit $AUTH_RC" \
				"got:  ${AUTH_OUT//$acct/${LBL[$acct]}}" "want: ${want//$acct/${LBL[$acct]}}" \
				"stderr: ${AUTH_ERR%%$'\n'*}"
		fi
		want=$(want_json "$acct")
		use "$acct"
		req GET /v2/_berth/usage
		got=$(jq -S -c . <"$REQ_BODY_FILE" 2>/dev/null)
		if [ "$REQ_STATUS" = 200 ] && [ "$got" = "$want" ]; then
			ok "[$step] GET /v2/_berth/usage as ${LBL[$acct]}: 200, matches"
		else
			fail_resp "[$step] GET /v2/_berth/usage as ${LBL[$acct]}: status $REQ_STATUS" \
				"got:  ${got//$acct/${LBL[$acct]}}" "want: ${want//$acct/${LBL[$acct]}}"
		fi
		model "$acct"
	done
	BERTH_AUTH_HDR=("${saved[@]}")
}

# Model updates.
m_link() { # REPO FILE
	local d
	d=$(digest_of "$2")
	SZ[$d]=$(size_of "$2")
	LINK["$1|$d"]=1
	REPO[$1]=1
}
m_manifest() { # REPO TAG|- FILE
	local d k f
	d=$(digest_of "$3")
	k="$1|$d"
	MAN[$k]=$(size_of "$3")
	MREFS[$k]=$(jq -r '[.config.digest] + [.layers[].digest] | join(" ")' <"$3")
	if [ "$2" != - ]; then
		MTAGS[$k]="${MTAGS[$k]:-} $2"
	fi
	REPO[$1]=1
}
m_manifest_delete() { # REPO DIGEST
	unset "MAN[$1|$2]" "MREFS[$1|$2]" "MTAGS[$1|$2]" "MQUEUED[$1|$2]"
}
m_tag_delete() { # REPO DIGEST TAG
	local k="$1|$2" t rest=""
	for t in ${MTAGS[$k]:-}; do
		[ "$t" = "$3" ] || rest+=" $t"
	done
	MTAGS[$k]=$rest
	MQUEUED[$k]=1
}
# m_gc: what `berthd gc --grace 0s` takes: manifests whose tag went and that
# have no tag left; then every link no manifest of its repository lists.
m_gc() {
	local k repo d keep m
	for k in "${!MQUEUED[@]}"; do
		if [ -z "${MTAGS[$k]// /}" ]; then
			m_manifest_delete "${k%%|*}" "${k#*|}"
		fi
	done
	for k in "${!LINK[@]}"; do
		repo=${k%%|*}
		d=${k#*|}
		keep=0
		for m in "${!MREFS[@]}"; do
			[ "${m%%|*}" = "$repo" ] || continue
			[[ " ${MREFS[$m]} " == *" $d "* ]] && keep=1
		done
		[ $keep = 1 ] || unset "LINK[$k]"
	done
}

# ------------------------------------------------------------------ helpers

# snapshot: the list of stored objects (files under <data>/blobs).
snapshot() { find "$BERTH_DATA/blobs" -type f 2>/dev/null | sort >"$W/objects.$1"; }
# new_objects NAME: the files there now that were not in snapshot NAME.
new_objects() {
	find "$BERTH_DATA/blobs" -type f 2>/dev/null | sort >"$W/objects.now"
	comm -13 "$W/objects.$1" "$W/objects.now"
}

# expect_quota_denied LIMIT: 403, OCI error DENIED, a message naming the
# quota and the limit.
expect_quota_denied() {
	local limit=$1 msg
	expect_status 403
	expect_error_code DENIED
	msg=$(jq -r '[.errors[]? | select(.code == "DENIED") | .message] | first // ""' <"$REQ_BODY_FILE" 2>/dev/null)
	if [[ ${msg,,} == *quota* ]] && [[ $msg =~ (^|[^0-9])$limit([^0-9]|$) ]]; then
		ok "$REQ_DESC: message names the quota and the limit $limit: ${msg//$A/A}"
	else
		fail_resp "$REQ_DESC: DENIED message '$msg' does not name the quota and the limit $limit"
	fi
}

# expect_nothing_left STEP REPO DIGEST SNAPSHOT [SESSION-URL]: after a
# refused push: the blob is not in REPO, no new stored object, the session
# (if any) is gone, and the usage of A is what the model says.
expect_nothing_left() {
	local step=$1 repo=$2 d=$3 snap=$4 sess=${5:-} extra
	req HEAD "/v2/$repo/blobs/$d"
	expect_status 404
	extra=$(new_objects "$snap")
	if [ -z "$extra" ]; then
		ok "[$step] no new object under <data>/blobs"
	else
		fail "[$step] new objects under <data>/blobs after a refused push:" "$extra"
	fi
	if [ -n "$sess" ]; then
		req GET "$sess"
		expect_status 404
		expect_eq "[$step] the session's data under <data>/uploads" "$(session_data "$sess")" gone
	fi
	check_usage "$step" "$A"
}

# session_data URL: "gone" once <data>/uploads has nothing of the session
# (waits up to 5 s), else what is left.
session_data() {
	local id=${1%%\?*} i left
	id=${id##*/}
	for i in $(seq 1 50); do
		left=$(find "$BERTH_DATA/uploads" -path "*$id*" 2>/dev/null | head -n 3)
		[ -z "$left" ] && break
		sleep 0.1
	done
	printf '%s\n' "${left:-gone}"
}

# set_quota ACCOUNT ARG WANT: `berthd account set-quota ACCOUNT ARG` prints
# "account <id> quota WANT" (one assertion); the model follows.
set_quota() {
	auth_admin account set-quota "$1" "$2"
	if [ "$AUTH_RC" = 0 ] && [ "$AUTH_OUT" = "account $1 quota $3" ]; then
		ok "set-quota ${LBL[$1]} $2 -> quota $3"
	else
		fail "set-quota ${LBL[$1]} $2: exit $AUTH_RC, stdout '$AUTH_OUT', want 'account ${LBL[$1]} quota $3'" \
			"stderr: ${AUTH_ERR%%$'\n'*}"
	fi
	QUOTA[$1]=$3
}

# upload URL of a new session in REPO (POST, one assertion on 202).
open_session() {
	req POST "/v2/$1/blobs/uploads/" -H 'Content-Length: 0'
	expect_status 202
	SESSION=$(url_of "$(hdr Location || echo /none)")
}

# mono_post REPO FILE: single-POST monolithic upload (?digest=, body).
mono_post() {
	req POST "/v2/$1/blobs/uploads/?digest=$(digest_of "$2")" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$2"
}

# ------------------------------------------------------------------ content
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"q":"one"}' >"$W/cfg1"
printf '{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"q":"two"}' >"$W/cfg2"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"q":"beta"}' >"$W/cfgB"
make_blob "$W/L1" 20000 quota-L1
make_blob "$W/L2" 30000 quota-L2
make_blob "$W/L3" 25000 quota-L3
make_blob "$W/X" 7000 quota-X
D_cfg1=$(digest_of "$W/cfg1")
D_cfgB=$(digest_of "$W/cfgB")
D_L1=$(digest_of "$W/L1")
D_L2=$(digest_of "$W/L2")
D_L3=$(digest_of "$W/L3")
D_X=$(digest_of "$W/X")
make_manifest "$W/m1" "$W/cfg1" "$MT_OCI_CONFIG" "$W/L1" "$W/L2"
make_manifest "$W/m2" "$W/cfg2" "$MT_OCI_CONFIG" "$W/L2" "$W/L3"
make_manifest "$W/m3" "$W/cfg1" "$MT_OCI_CONFIG" "$W/L3"
make_manifest "$W/mB" "$W/cfgB" "$MT_OCI_CONFIG" "$W/L1"
M1=$(digest_of "$W/m1")
M2=$(digest_of "$W/m2")
M3=$(digest_of "$W/m3")
A1=$A/app1 A2=$A/app2 A3=$A/app3 A4=$A/app4 A5=$A/app5 BA=$B/app

# ------------------------------------------------------------------ usage API
section "usage endpoint: credentials"
BERTH_AUTH_HDR=()
req GET /v2/_berth/usage
expect_status 401
expect_error_code UNAUTHORIZED
expect_header WWW-Authenticate 'Bearer realm="[^"]+",service="[^"]+".*'
req GET /v2/_berth/usage -H "Authorization: Bearer brt_$(printf '%064d' 0)"
expect_status 401
# A fresh account: everything zero, no quota.
check_usage "fresh" "$A" "$B"
# Any valid credential of the account, a pull-only key too.
req GET /v2/_berth/usage -H "Authorization: Bearer $A_PULL"
expect_status 200
expect_json '.account' "$A"

# ------------------------------------------------------------------ accounting
section "image 1 (config + 2 layers) to A/app1"
use "$A"
for f in cfg1 L1 L2; do
	push_blob "$A1" "$W/$f" && m_link "$A1" "$W/$f"
done
check_usage "3 blobs in A/app1" "$A"
push_manifest "$A1" v1 "$W/m1"
expect_status 201
m_manifest "$A1" v1 "$W/m1"
check_usage "image 1" "$A"
expect_eq "A's bytes after image 1 = blobs + manifest" "$M_BYTES" \
	$(($(size_of "$W/cfg1") + 20000 + 30000 + $(size_of "$W/m1")))

section "image 2 to A/app2 sharing layer L2: counted once"
for f in cfg2 L2 L3; do
	push_blob "$A2" "$W/$f" && m_link "$A2" "$W/$f"
done
push_manifest "$A2" v1 "$W/m2"
expect_status 201
m_manifest "$A2" v1 "$W/m2"
check_usage "image 2" "$A"
expect_eq "A's blobs after image 2 (L2 once)" "$M_BLOBS" 5
expect_eq "A's blob_bytes after image 2 (L2 once)" "$M_BLOB_BYTES" \
	$(($(size_of "$W/cfg1") + $(size_of "$W/cfg2") + 20000 + 30000 + 25000))

section "mounts into A/app3 (with and without from): free"
req POST "/v2/$A3/blobs/uploads/?mount=$D_L1&from=$A1" -H 'Content-Length: 0'
expect_status 201
m_link "$A3" "$W/L1"
check_usage "mount L1 from A/app1" "$A"
req POST "/v2/$A3/blobs/uploads/?mount=$D_L3" -H 'Content-Length: 0'
expect_status 201
m_link "$A3" "$W/L3"
check_usage "mount L3 without from" "$A"

section "duplicate uploads of blobs A holds: free"
push_blob "$A1" "$W/L1"
check_usage "L1 uploaded again to A/app1" "$A"
push_blob "$A3" "$W/L2" && m_link "$A3" "$W/L2"
check_usage "L2 uploaded to A/app3 (held in app1, app2)" "$A"
mono_post "$A3" "$W/cfg1"
expect_status 201
m_link "$A3" "$W/cfg1"
check_usage "cfg1 monolithic POST to A/app3" "$A"

section "B pushes the same layer: B charged, A unchanged"
use "$B"
for f in cfgB L1; do
	push_blob "$BA" "$W/$f" && m_link "$BA" "$W/$f"
done
push_manifest "$BA" v1 "$W/mB"
expect_status 201
m_manifest "$BA" v1 "$W/mB"
check_usage "B pushed L1" "$A" "$B"
expect_eq "B's blob_bytes" "$M_BLOB_BYTES" $((20000 + $(size_of "$W/cfgB")))
# Each account sees only its own usage, whatever it asks for.
req GET "/v2/_berth/usage?account=$A"
expect_status 200
expect_json '.account' "$B"
auth_admin usage
want_a=$(want_line "$A")
want_b=$(want_line "$B")
if [ "$AUTH_RC" = 0 ] && grep -qxF "$want_a" <<<"$AUTH_OUT" && grep -qxF "$want_b" <<<"$AUTH_OUT" &&
	! grep -v '^account=[0-9a-f]\{32\} bytes=' <<<"$AUTH_OUT" | grep -q .; then
	ok "berthd usage (all accounts): A's and B's lines, one per account"
else
	fail "berthd usage (all): exit $AUTH_RC" "got: $AUTH_OUT" "want among them: $want_a" "and: $want_b"
fi
# Mount without from never takes another account's blob (202), and the
# session it opens costs nothing.
use "$A"
req POST "/v2/$A3/blobs/uploads/?mount=$D_cfgB" -H 'Content-Length: 0'
expect_status 202
req POST "/v2/$A3/blobs/uploads/?mount=$D_cfgB&from=$BA" -H 'Content-Length: 0'
expect_status 202
check_usage "mounts of B's blob into A: plain sessions" "$A"

section "DELETE of blob links"
push_blob "$A3" "$W/X" && m_link "$A3" "$W/X"
check_usage "X pushed to A/app3" "$A"
req DELETE "/v2/$A3/blobs/$D_X"
expect_status 202
unset "LINK[$A3|$D_X]"
check_usage "X's only link deleted: bytes back at once" "$A"
req DELETE "/v2/$A3/blobs/$D_L1"
expect_status 202
unset "LINK[$A3|$D_L1]"
check_usage "L1 unlinked from A/app3 (still in app1): unchanged" "$A"

section "DELETE of a manifest"
push_manifest "$A3" t3 "$W/m3"
expect_status 201
m_manifest "$A3" t3 "$W/m3"
check_usage "m3 pushed to A/app3" "$A"
req DELETE "/v2/$A3/manifests/$M3"
expect_status 202
m_manifest_delete "$A3" "$M3"
check_usage "m3 deleted: manifest bytes back at once" "$A"
# The same manifest in two repositories counts twice (one per repository).
req POST "/v2/$A3/blobs/uploads/?mount=$D_L1&from=$A1" -H 'Content-Length: 0'
expect_status 201
m_link "$A3" "$W/L1"
push_manifest "$A3" "$M1" "$W/m1"
expect_status 201
m_manifest "$A3" - "$W/m1"
check_usage "m1 also stored in A/app3" "$A"

section "tag delete + berthd gc --grace 0s: the blob bytes return"
req DELETE "/v2/$A2/manifests/v1"
expect_status 202
m_tag_delete "$A2" "$M2" v1
check_usage "tag A/app2:v1 deleted (nothing back before GC)" "$A"
auth_admin gc --grace 0s
if [ "$AUTH_RC" = 0 ] && grep -qE '^gc: removed [0-9]+ tags, [0-9]+ manifests' <<<"$AUTH_OUT"; then
	ok "berthd gc --grace 0s: exit 0, summary line"
else
	fail "berthd gc --grace 0s: exit $AUTH_RC" "stdout: $AUTH_OUT" "stderr: ${AUTH_ERR%%$'\n'*}"
fi
printf '%s\n' "$AUTH_OUT" | sed "s/$A/A/g; s/$B/B/g; s/^/     | /" | tail -n 30
m_gc
check_usage "after gc" "$A" "$B"
use "$A"
req HEAD "/v2/$A2/blobs/$D_L3"
expect_status 404
req GET "/v2/$A1/manifests/v1"
expect_status 200
expect_body_file "$W/m1"
for d in "$D_cfg1" "$D_L1" "$D_L2"; do
	req HEAD "/v2/$A1/blobs/$d"
	expect_status 200
done

# ------------------------------------------------------------------ set-quota
section "berthd account set-quota"
set_quota "$A" 100K 102400
check_usage "quota 100K" "$A"
set_quota "$A" 1M 1048576
set_quota "$A" 123456 123456
check_usage "quota 123456" "$A"
set_quota "$A" none none
check_usage "quota lifted" "$A"
auth_admin account set-quota ffffffffffffffffffffffffffffffff 1000
if [ "$AUTH_RC" = 1 ] && [ -z "$AUTH_OUT" ]; then
	ok "set-quota of an unknown account: exit 1, nothing on stdout"
else
	fail "set-quota of an unknown account: exit $AUTH_RC, stdout '$AUTH_OUT', want exit 1"
fi
for bad in 12X -5 ""; do
	auth_admin account set-quota "$A" "$bad"
	if [ "$AUTH_RC" != 0 ] && [ -z "$AUTH_OUT" ]; then
		ok "set-quota A '$bad' refused (exit $AUTH_RC)"
	else
		fail "set-quota A '$bad': exit $AUTH_RC, stdout '$AUTH_OUT'"
	fi
done
check_usage "quota still none after refused set-quota" "$A"
# B is never limited by A's quota.
set_quota "$A" 1 1
use "$B"
make_blob "$W/B2" 3000 quota-B2
push_blob "$BA" "$W/B2" && m_link "$BA" "$W/B2"
check_usage "B pushes while A is over quota" "$B"

# ------------------------------------------------------------------ quota
section "at the limit: POST refused, mounts and re-tags free"
model "$A"
U=$M_BYTES
set_quota "$A" "$U" "$U"
use "$A"
make_blob "$W/N1" 1000 quota-N1
D_N1=$(digest_of "$W/N1")
snapshot s1
req POST "/v2/$A1/blobs/uploads/" -H 'Content-Length: 0'
expect_quota_denied "$U"
expect_nothing_left "POST at the limit" "$A1" "$D_N1" s1
mono_post "$A1" "$W/N1"
expect_quota_denied "$U"
expect_nothing_left "monolithic POST at the limit" "$A1" "$D_N1" s1
# Into a new repository: refused, and the repository is not created.
req POST "/v2/$A5/blobs/uploads/" -H 'Content-Length: 0'
expect_quota_denied "$U"
req GET "/v2/$A5/tags/list"
expect_status 404
expect_nothing_left "POST to a new repository at the limit" "$A5" "$D_N1" s1
# A mount of another account's blob is an upload: refused at the limit.
req POST "/v2/$A4/blobs/uploads/?mount=$D_cfgB&from=$BA" -H 'Content-Length: 0'
expect_quota_denied "$U"
expect_nothing_left "cross-account mount at the limit" "$A4" "$D_cfgB" s1
# Mounts of what A holds cost nothing: fine at the limit.
req POST "/v2/$A4/blobs/uploads/?mount=$D_L1&from=$A1" -H 'Content-Length: 0'
expect_status 201
m_link "$A4" "$W/L1"
req POST "/v2/$A4/blobs/uploads/?mount=$D_L2" -H 'Content-Length: 0'
expect_status 201
m_link "$A4" "$W/L2"
req POST "/v2/$A4/blobs/uploads/?mount=$D_cfg1&from=$A1" -H 'Content-Length: 0'
expect_status 201
m_link "$A4" "$W/cfg1"
check_usage "mounts at the limit" "$A"
expect_eq "bytes still exactly at the limit" "$M_BYTES" "$U"
req GET "/v2/$A4/blobs/$D_L1"
expect_status 200
expect_body_file "$W/L1"
# Another tag for a manifest the repository stores: no new manifest.
push_manifest "$A1" again "$W/m1"
expect_status 201
m_manifest "$A1" again "$W/m1"
check_usage "re-tag at the limit" "$A"
# The same manifest in another repository is a new manifest: refused.
snapshot s1m
push_manifest "$A4" v1 "$W/m1"
expect_quota_denied "$U"
req GET "/v2/$A4/manifests/v1"
expect_status 404
expect_nothing_left "manifest PUT at the limit" "$A4" "$D_N1" s1m

section "monolithic POST over the remaining quota"
R=5000
set_quota "$A" $((U + R)) $((U + R))
make_blob "$W/N2" $((R + 1)) quota-N2
D_N2=$(digest_of "$W/N2")
snapshot s2
mono_post "$A1" "$W/N2"
expect_quota_denied $((U + R))
expect_nothing_left "monolithic POST of R+1 bytes" "$A1" "$D_N2" s2
# A duplicate (POST + PUT) of a blob A holds, bigger than what remains: free.
push_blob "$A1" "$W/L2"
check_usage "duplicate L2 (30000 B) with $R B remaining" "$A"
# An exact fit is accepted.
make_blob "$W/N3" "$R" quota-N3
mono_post "$A1" "$W/N3"
expect_status 201
m_link "$A1" "$W/N3"
check_usage "monolithic POST of exactly the remaining $R B" "$A"
model "$A"
expect_eq "bytes now equal the quota" "$M_BYTES" $((U + R))
U=$M_BYTES

section "chunked upload whose final PUT goes over"
R=6000
set_quota "$A" $((U + R)) $((U + R))
make_blob "$W/N4" 7000 quota-N4
head -c 4000 "$W/N4" >"$W/N4a"
tail -c 3000 "$W/N4" >"$W/N4b"
D_N4=$(digest_of "$W/N4")
snapshot s3
# (a) every byte PATCHed, then an empty PUT.
open_session "$A1"
S=$SESSION
req PATCH "$S" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-6999' --data-binary "@$W/N4"
expect_status 202
S=$(url_of "$(hdr Location || echo "$S")")
req PUT "$(with_query "$S" "digest=$D_N4")" -H 'Content-Length: 0'
expect_quota_denied $((U + R))
expect_nothing_left "PATCH 7000 B + PUT, $R B remaining" "$A1" "$D_N4" s3 "$S"
# (b) a PATCH within the quota, the final chunk in the PUT.
open_session "$A1"
S=$SESSION
req PATCH "$S" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-3999' --data-binary "@$W/N4a"
expect_status 202
S=$(url_of "$(hdr Location || echo "$S")")
req PUT "$(with_query "$S" "digest=$D_N4")" -H 'Content-Type: application/octet-stream' --data-binary "@$W/N4b"
expect_quota_denied $((U + R))
expect_nothing_left "PATCH 4000 B + PUT 3000 B, $R B remaining" "$A1" "$D_N4" s3 "$S"
# (c) POST + monolithic PUT of one byte too many.
make_blob "$W/N5" $((R + 1)) quota-N5
D_N5=$(digest_of "$W/N5")
open_session "$A4"
S=$SESSION
req PUT "$(with_query "$S" "digest=$D_N5")" -H 'Content-Type: application/octet-stream' --data-binary "@$W/N5"
expect_quota_denied $((U + R))
expect_nothing_left "POST + PUT of R+1 bytes" "$A4" "$D_N5" s3 "$S"

section "manifest PUT that would go over"
# A new manifest of blobs A/app4 holds; the quota one byte short of it.
make_manifest "$W/m5" "$W/cfg1" "$MT_OCI_CONFIG" "$W/L2" "$W/L1"
M5=$(digest_of "$W/m5")
MS=$(size_of "$W/m5")
set_quota "$A" $((U + MS - 1)) $((U + MS - 1))
snapshot s4
push_manifest "$A4" v5 "$W/m5"
expect_quota_denied $((U + MS - 1))
req GET "/v2/$A4/manifests/$M5"
expect_status 404
req GET "/v2/$A4/manifests/v5"
expect_status 404
push_manifest "$A4" "$M5" "$W/m5"
expect_quota_denied $((U + MS - 1))
expect_nothing_left "manifest PUT one byte over" "$A4" "$D_N1" s4
# Exactly enough: accepted.
set_quota "$A" $((U + MS)) $((U + MS))
push_manifest "$A4" v5 "$W/m5"
expect_status 201
m_manifest "$A4" v5 "$W/m5"
check_usage "manifest PUT of exactly the remaining $MS B" "$A"

section "quota lifted"
set_quota "$A" none none
use "$A"
push_blob "$A1" "$W/N4" && m_link "$A1" "$W/N4"
check_usage "push after the quota is lifted" "$A"

# ------------------------------------------------------------------ races
# race_round NAME MODE: 12 distinct blobs of S bytes pushed in parallel by
# C to C/race (MODE put: sessions opened first, the 12 PUTs at once; MODE
# post: 12 single-POST monolithic uploads at once), with a quota admitting
# exactly 5 more.
# race_send LIST KEY: for each line "METHOD URL FILE" of LIST, one
# connection to berthd (all opened first), then every request sent at the
# same moment (a barrier), FILE as the body; writes FILE.status (the HTTP
# status, 000 on a connection error) and FILE.body.
race_send() {
	"$E2E_PY" - "$1" "$2" <<'PY'
import http.client, sys, threading, urllib.parse
jobs = [l.split() for l in open(sys.argv[1]) if l.strip()]
key = sys.argv[2]
conns = []
for method, url, path in jobs:
    u = urllib.parse.urlsplit(url)
    assert u.hostname == "127.0.0.1"
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.connect()
    conns.append((c, method, u.path + ("?" + u.query if u.query else ""), path, open(path, "rb").read()))
barrier = threading.Barrier(len(conns))
def run(c, method, target, path, body):
    status, data = "000", b""
    try:
        barrier.wait(timeout=30)
        c.request(method, target, body=body, headers={
            "Authorization": "Bearer " + key,
            "Content-Type": "application/octet-stream"})
        r = c.getresponse()
        status, data = str(r.status), r.read()
    except Exception as e:
        data = repr(e).encode()
    with open(path + ".status", "w") as f:
        f.write(status)
    with open(path + ".body", "wb") as f:
        f.write(data)
threads = [threading.Thread(target=run, args=conn) for conn in conns]
for t in threads:
    t.start()
for t in threads:
    t.join(90)
PY
}

S=100000
NRACE=12
KRACE=5
race_round() {
	local name=$1 mode=$2 i d url st n201=0 n403=0 nother=0 sum=0 bad403=0 msg extra
	local -a sess=()
	model "$C"
	local base=$M_BYTES q=$((M_BYTES + KRACE * S + S / 2))
	set_quota "$C" "$q" "$q"
	use "$C"
	snapshot "race-$name"
	for i in $(seq 1 $NRACE); do
		make_blob "$W/race-$name-$i" "$S" "quota-race-$name-$i"
	done
	if [ "$mode" = put ]; then
		for i in $(seq 1 $NRACE); do
			req POST "/v2/$C/race/blobs/uploads/" -H 'Content-Length: 0'
			sess[i]=$(url_of "$(hdr Location || echo /none)")
			[ "$REQ_STATUS" = 202 ] || fail_resp "race $name: POST $i: status $REQ_STATUS"
		done
	fi
	: >"$W/race-$name.list"
	for i in $(seq 1 $NRACE); do
		d=$(digest_of "$W/race-$name-$i")
		if [ "$mode" = put ]; then
			url=$(with_query "${sess[i]}" "digest=$d")
			printf 'PUT %s %s\n' "$url" "$W/race-$name-$i" >>"$W/race-$name.list"
		else
			printf 'POST %s %s\n' "$BERTH_URL/v2/$C/race/blobs/uploads/?digest=$d" "$W/race-$name-$i" \
				>>"$W/race-$name.list"
		fi
	done
	local t0=$SECONDS
	race_send "$W/race-$name.list" "$C_KEY" || fail "race $name: the parallel sender failed"
	local took=$((SECONDS - t0))
	for i in $(seq 1 $NRACE); do
		st=$(cat "$W/race-$name-$i.status" 2>/dev/null)
		d=$(digest_of "$W/race-$name-$i")
		case $st in
		201)
			n201=$((n201 + 1))
			sum=$((sum + S))
			m_link "$C/race" "$W/race-$name-$i"
			req HEAD "/v2/$C/race/blobs/$d"
			[ "$REQ_STATUS" = 200 ] || fail_resp "race $name: blob $i acknowledged (201) but HEAD $REQ_STATUS"
			;;
		403)
			n403=$((n403 + 1))
			msg=$(jq -r '[.errors[]? | select(.code == "DENIED") | .message] | first // ""' \
				<"$W/race-$name-$i.body" 2>/dev/null)
			[[ ${msg,,} == *quota* && $msg == *"$q"* ]] || bad403=$((bad403 + 1))
			req HEAD "/v2/$C/race/blobs/$d"
			[ "$REQ_STATUS" = 404 ] || fail_resp "race $name: blob $i refused (403) but HEAD $REQ_STATUS"
			if [ "$mode" = put ]; then
				req GET "${sess[i]}"
				[ "$REQ_STATUS" = 404 ] || fail_resp "race $name: session $i of a refused upload still answers $REQ_STATUS"
				[ "$(session_data "${sess[i]}")" = gone ] || fail "race $name: data of refused session $i left under <data>/uploads"
			fi
			;;
		*) nother=$((nother + 1)) ;;
		esac
	done
	printf '     race %s: %d parallel uploads in %d s: %d x 201, %d x 403, %d other\n' \
		"$name" "$NRACE" "$took" "$n201" "$n403" "$nother"
	expect_eq "race $name: uploads acknowledged (201)" "$n201" "$KRACE"
	expect_eq "race $name: uploads refused (403)" "$n403" $((NRACE - KRACE))
	expect_eq "race $name: other answers" "$nother" 0
	expect_eq "race $name: 403 bodies without DENIED/quota/limit $q" "$bad403" 0
	model "$C"
	if [ "$M_BYTES" -le "$q" ] && [ "$M_BYTES" = $((base + sum)) ]; then
		ok "race $name: model usage $M_BYTES <= quota $q"
	else
		fail "race $name: model usage $M_BYTES, quota $q, base $base + acknowledged $sum"
	fi
	check_usage "race $name" "$C"
	extra=$(new_objects "race-$name" | wc -l)
	expect_eq "race $name: new objects under <data>/blobs" "$extra" "$n201"
}
section "concurrent PUTs cannot overshoot the quota"
race_round put put
section "concurrent monolithic POSTs cannot overshoot the quota"
race_round post post

section "usage and quotas survive a restart"
check_usage "before restart" "$A" "$B" "$C"
berth_restart
check_usage "after restart" "$A" "$B" "$C"
# C has S/2 left: a blob of S is still refused after the restart.
use "$C"
make_blob "$W/after" "$S" quota-after-restart
mono_post "$C/race" "$W/after"
expect_quota_denied "${QUOTA[$C]}"
printf '     (%d s)\n' $((SECONDS - T_START))
berth_done
