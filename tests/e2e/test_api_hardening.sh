#!/usr/bin/env bash
# End-to-end: client input that has one meaning to the registry and
# another to someone else is refused.  Manifests with duplicate JSON keys
# (at the top, in a descriptor, deep in annotations) get 400
# MANIFEST_INVALID and store nothing, though every blob they name exists;
# the same manifest without the duplicate is accepted.  A token from
# /v2/token works, and the same token with the unused low bits of any
# segment's last character changed (the same bytes, spelled differently)
# gets 401.  Upload status needs push: 403 DENIED for a pull-only key, 204
# for a push key.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/auth_lib.sh"
W=$E2E_WORK
B64URL=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_

section "server, account and keys"
berth_start || exit 1
auth_require_auth
auth_new_account A alpha
auth_new_key PUSH_ID PUSH "$A" --label push
auth_new_key PULL_ID PULL "$A" --pull-only --label pull
R=$A/app
as push "Bearer $PUSH"

section "duplicate JSON keys in manifests: 400 MANIFEST_INVALID, nothing stored"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
apush_blob "$R" "$W/cfg"
make_blob "$W/l1" 1000 hard-l1
apush_blob "$R" "$W/l1"
make_blob "$W/l2" 1200 hard-l2
apush_blob "$R" "$W/l2"
C=$(digest_of "$W/cfg")
CS=$(size_of "$W/cfg")
L1=$(digest_of "$W/l1")
L2=$(digest_of "$W/l2")
desc() { printf '{"mediaType":"%s","digest":"%s","size":%s}' "$1" "$2" "$3"; }
CFG=$(desc "$MT_OCI_CONFIG" "$C" "$CS")
LAY1=$(desc "$MT_OCI_LAYER" "$L1" 1000)
LAY2=$(desc "$MT_OCI_LAYER" "$L2" 1200)
# name:json pairs; every blob named exists in the repository.
DUPS=(
	"layer-digest:{\"schemaVersion\":2,\"mediaType\":\"$MT_OCI_MANIFEST\",\"config\":$CFG,\"layers\":[{\"mediaType\":\"$MT_OCI_LAYER\",\"digest\":\"$L1\",\"digest\":\"$L2\",\"size\":1000}]}"
	"layers:{\"schemaVersion\":2,\"mediaType\":\"$MT_OCI_MANIFEST\",\"config\":$CFG,\"layers\":[$LAY1],\"layers\":[$LAY2]}"
	"config:{\"schemaVersion\":2,\"mediaType\":\"$MT_OCI_MANIFEST\",\"config\":$CFG,\"config\":$CFG,\"layers\":[$LAY1]}"
	"mediaType:{\"schemaVersion\":2,\"mediaType\":\"$MT_OCI_MANIFEST\",\"mediaType\":\"$MT_OCI_MANIFEST\",\"config\":$CFG,\"layers\":[$LAY1]}"
	"annotations-deep:{\"schemaVersion\":2,\"mediaType\":\"$MT_OCI_MANIFEST\",\"config\":$CFG,\"layers\":[$LAY1],\"annotations\":{\"a\":\"1\",\"a\":\"2\"}}"
)
for entry in "${DUPS[@]}"; do
	name=${entry%%:*}
	printf '%s' "${entry#*:}" >"$W/dup-$name"
	if ! jq -e . "$W/dup-$name" >/dev/null 2>&1; then
		fail "test input dup-$name is not JSON"
		continue
	fi
	areq PUT "/v2/$R/manifests/dup-$name" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$W/dup-$name"
	expect_resp 400 MANIFEST_INVALID
	areq GET "/v2/$R/manifests/dup-$name" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 404 MANIFEST_UNKNOWN
	areq GET "/v2/$R/manifests/$(digest_of "$W/dup-$name")" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 404 MANIFEST_UNKNOWN
done
# The control: the first variant without its duplicate key.
printf '{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[%s,%s]}' "$MT_OCI_MANIFEST" "$CFG" "$LAY1" "$LAY2" >"$W/nodup"
areq PUT "/v2/$R/manifests/nodup" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$W/nodup"
expect_resp 201
areq GET "/v2/$R/tags/list"
expect_resp 200
expect_json '.tags | join(",")' nodup

section "descriptor sizes must be the stored sizes: 400 MANIFEST_INVALID, nothing stored"
# Clients trust a descriptor's size (they cap the download with it): one
# that is not the blob's is a manifest that cannot be pulled as written.
as push "Bearer $PUSH"
for wrong in "config:$(desc "$MT_OCI_CONFIG" "$C" $((CS + 1))),[$LAY1]" \
	"layer-short:$CFG,[$(desc "$MT_OCI_LAYER" "$L1" 999)]" \
	"layer-long:$CFG,[$LAY1,$(desc "$MT_OCI_LAYER" "$L2" 1000000)]" \
	"layer-zero:$CFG,[$(desc "$MT_OCI_LAYER" "$L1" 0)]"; do
	name=${wrong%%:*}
	rest=${wrong#*:}
	printf '{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":%s}' "$MT_OCI_MANIFEST" \
		"${rest%%,\[*}" "[${rest#*,\[}" >"$W/size-$name"
	areq PUT "/v2/$R/manifests/size-$name" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$W/size-$name"
	expect_resp 400 MANIFEST_INVALID
	areq GET "/v2/$R/manifests/$(digest_of "$W/size-$name")" -H "Accept: $MT_OCI_MANIFEST"
	expect_resp 404 MANIFEST_UNKNOWN
done
# An index entry's size must be its manifest's.
NODUP=$(digest_of "$W/nodup")
NS=$(size_of "$W/nodup")
for claim in $((NS - 1)) $((NS + 7)) "$NS"; do
	printf '{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":%s}]}' \
		"$MT_OCI_INDEX" "$MT_OCI_MANIFEST" "$NODUP" "$claim" >"$W/index-$claim"
	areq PUT "/v2/$R/manifests/index-$claim" -H "Content-Type: $MT_OCI_INDEX" --data-binary "@$W/index-$claim"
	if [ "$claim" = "$NS" ]; then
		expect_resp 201
	else
		expect_resp 400 MANIFEST_INVALID
	fi
done
areq GET "/v2/$R/tags/list"
expect_json '.tags | join(",")' "index-$NS,nodup"

section "tokens: one spelling only"
auth_discover
auth_token TOKEN "$(auth_basic KEY "$PUSH")" "repository:$R:pull,push"
expect_resp 200
as token "Bearer $TOKEN"
areq GET "/v2/$R/tags/list"
expect_resp 200
# other_spelling TOKEN SEGMENT: TOKEN with the unused bits of the last
# character of segment SEGMENT (0, 1, 2) set; empty if it has none.
other_spelling() {
	local t=$1 i=$2 seg c idx unused
	IFS=. read -r -a segs <<<"$t"
	seg=${segs[$i]}
	case $((${#seg} % 4)) in
	2) unused=15 ;;
	3) unused=3 ;;
	*) return 0 ;;
	esac
	c=${seg: -1}
	idx=${B64URL%%"$c"*}
	idx=${#idx}
	segs[i]=${seg:0:${#seg}-1}${B64URL:$((idx | unused)):1}
	[ "${segs[i]}" = "$seg" ] && segs[i]=${seg:0:${#seg}-1}${B64URL:$((idx ^ 1)):1}
	(IFS=.; printf '%s' "${segs[*]}")
}
tried=0
for i in 0 1 2; do
	t2=$(other_spelling "$TOKEN" "$i")
	[ -n "$t2" ] || continue
	tried=$((tried + 1))
	as "token-segment-$i-respelled" "Bearer $t2"
	areq GET "/v2/$R/tags/list"
	expect_resp 401 UNAUTHORIZED
done
# The signature (43 characters) always has unused bits.
[ "$tried" -ge 1 ] && ok "$tried token segments re-spelled" || fail "no token segment could be re-spelled"

section "upload status needs push"
as push "Bearer $PUSH"
areq POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 202
LOC=$(hdr Location)
as pull "Bearer $PULL"
areq GET "$LOC"
expect_resp 403 DENIED
expect_no_header Range
as push "Bearer $PUSH"
areq GET "$LOC"
expect_resp 204
expect_header Range '0-0|0--1'

berth_done
