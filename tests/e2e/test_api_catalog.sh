#!/bin/bash
# End-to-end: GET /v2/_catalog.  Empty registry, lexical order, pagination
# (n, last, Link exactly when more remain), n=0, last past the end, invalid
# n, and the page_max limit.
BERTH_AUTO_KEY=1 # every request carries an access key of the test account
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T=$BERTH_TENANT
berth_start || exit 1
W=$E2E_WORK

printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
make_blob "$W/l1" 1000 catalog-l1
make_manifest "$W/m1" "$W/cfg" "$MT_OCI_CONFIG" "$W/l1"

# push_repo NAME: blobs plus one tagged manifest.
push_repo() {
	push_blob "$1" "$W/cfg"
	push_blob "$1" "$W/l1"
	push_manifest "$1" latest "$W/m1"
	[ "$REQ_STATUS" = 201 ] || fail_resp "push $1: status $REQ_STATUS"
}

section "empty registry"
req GET /v2/_catalog
expect_status 200
expect_header Content-Type 'application/json(; *charset=utf-8)?'
expect_header Docker-Distribution-API-Version 'registry/2\.0'
expect_json '.repositories' '[]'
expect_no_header Link
req GET '/v2/_catalog?n=5'
expect_status 200
expect_json '.repositories' '[]'
expect_no_header Link

# Pushed out of order.  Sorted byte-wise, '-' (0x2d) < '.' < '/' (0x2f) <
# digits < '_' < letters, so "app-x" < "app.y" < "app/sub" < "app0" < "app_z".
for n in zeta app/sub/deep app app.y app-x app/sub beta app_z app0; do
	push_repo "$T/$n"
done
SORTED=$(printf '%s\n' app app-x app.y app/sub app/sub/deep app0 app_z beta zeta |
	jq -R . | jq -c -s --arg t "$T/" 'map($t + .)')

section "full list"
req GET /v2/_catalog
expect_status 200
expect_json '.repositories' "$SORTED"
expect_no_header Link

section "pagination"
r() { jq -r ".[$1]" <<<"$SORTED"; }
req GET '/v2/_catalog?n=2'
expect_status 200
expect_json '.repositories' "$(jq -c '.[0:2]' <<<"$SORTED")"
expect_link_next /v2/_catalog 2 "$(r 1)"
req GET "/v2/_catalog?n=2&last=$(r 1)"
expect_status 200
expect_json '.repositories' "$(jq -c '.[2:4]' <<<"$SORTED")"
expect_link_next /v2/_catalog 2 "$(r 3)"
req GET "/v2/_catalog?n=3&last=$(r 5)"
expect_json '.repositories' "$(jq -c '.[6:9]' <<<"$SORTED")"
expect_no_header Link
req GET '/v2/_catalog?n=9'
expect_json '.repositories' "$SORTED"
expect_no_header Link
req GET '/v2/_catalog?n=8'
expect_json '.repositories | length' 8
expect_link_next /v2/_catalog 8 "$(r 7)"

section "following Link pages through everything"
next='/v2/_catalog?n=4'
all='[]'
pages=0
while [ -n "$next" ] && [ $pages -lt 20 ]; do
	req GET "$next"
	[ "$REQ_STATUS" = 200 ] || break
	all=$(jq -c --argjson acc "$all" '$acc + .repositories' <"$REQ_BODY_FILE")
	pages=$((pages + 1))
	next=$(link_next) || next=
done
expect_eq "repositories collected over Link pages" "$all" "$SORTED"
expect_eq "page count for n=4" "$pages" 3

section "last alone, between names, past the end; n=0"
req GET "/v2/_catalog?last=$(r 6)"
expect_status 200
expect_json '.repositories' "$(jq -c '.[7:]' <<<"$SORTED")"
req GET "/v2/_catalog?last=$T/b"
expect_json '.repositories' "$(jq -c '.[7:]' <<<"$SORTED")"
req GET "/v2/_catalog?last=$T/zzz"
expect_status 200
expect_json '.repositories' '[]'
expect_no_header Link
req GET '/v2/_catalog?n=3&last=zzzz'
expect_status 200
expect_json '.repositories' '[]'
req GET '/v2/_catalog?n=0'
expect_status 200
expect_json '.repositories' '[]'
expect_no_header Link

section "invalid n"
for n in -1 abc 1.5 '%2B3' 0x10; do
	req GET "/v2/_catalog?n=$n"
	expect_status 400
	expect_oci_error
done

section "a repository whose only manifest was deleted"
push_repo "$T/gone"
req DELETE "/v2/$T/gone/manifests/$(digest_of "$W/m1")"
expect_status 202
req GET /v2/_catalog
expect_status 200
# Whether it is still listed is up to the registry; the list stays sorted
# and holds every live repository.
expect_json "[.repositories[] | select(. != \"$T/gone\")]" "$SORTED"
expect_json '.repositories == (.repositories | sort)' true

section "page_max caps n and the default page"
berth_stop
cat >"$E2E_TMP/page.yml" <<EOF
limits:
  page_max: 4
EOF
berth_start --config "$E2E_TMP/page.yml" || exit 1
for n in e d c b a; do
	push_repo "$T/p$n"
done
req GET '/v2/_catalog?n=50'
expect_status 200
expect_json '.repositories' "[\"$T/pa\",\"$T/pb\",\"$T/pc\",\"$T/pd\"]"
expect_link_next /v2/_catalog 4 "$T/pd"
req GET /v2/_catalog
expect_status 200
expect_json '.repositories | length' 4
if url=$(link_next); then
	expect_eq "Link last" "$(query_param "$url" last)" "$T/pd"
else
	fail_resp "no Link on a capped page"
fi
req GET "/v2/_catalog?n=4&last=$T/pd"
expect_json '.repositories' "[\"$T/pe\"]"
expect_no_header Link

berth_done
