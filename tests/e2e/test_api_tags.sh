#!/bin/bash
# End-to-end: GET /v2/<name>/tags/list.  Lexical order, pagination with n and
# last, the Link header exactly when more remain, n=0, last past the end,
# invalid n, a repository without tags, an unknown repository, and the
# page_max limit.
BERTH_AUTO_KEY=1 # every request carries an access key of the test account
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$BERTH_TENANT/tags
berth_start || exit 1
W=$E2E_WORK

printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
make_blob "$W/l1" 1000 tags-l1
make_manifest "$W/m1" "$W/cfg" "$MT_OCI_CONFIG" "$W/l1"
D1=$(digest_of "$W/m1")

# push_tags NAME TAG...: the blobs and m1 under each tag.
push_tags() {
	local name=$1 t
	shift
	push_blob "$name" "$W/cfg"
	push_blob "$name" "$W/l1"
	for t in "$@"; do
		push_manifest "$name" "$t" "$W/m1"
		[ "$REQ_STATUS" = 201 ] || fail_resp "push $name:$t: status $REQ_STATUS"
	done
}

# Pushed out of order; the sorted list is below (the same in byte order and
# case-insensitive order: lower case, digits, '.', '-', '_' only).
push_tags "$R" v2 latest 1.0 v10 1.0.1 _underscore a-b v1 beta 0.9
SORTED='["0.9","1.0","1.0.1","_underscore","a-b","beta","latest","v1","v10","v2"]'

section "full list"
req GET "/v2/$R/tags/list"
expect_status 200
expect_header Content-Type 'application/json(; *charset=utf-8)?'
expect_header Docker-Distribution-API-Version 'registry/2\.0'
expect_json '.name' "$R"
expect_json '.tags' "$SORTED"
expect_no_header Link
# Pushing a tag again does not duplicate it.
push_manifest "$R" v1 "$W/m1"
req GET "/v2/$R/tags/list"
expect_json '.tags' "$SORTED"

section "n caps the count; Link when more remain"
req GET "/v2/$R/tags/list?n=3"
expect_status 200
expect_json '.tags' '["0.9","1.0","1.0.1"]'
expect_link_next "/v2/$R/tags/list" 3 1.0.1
req GET "/v2/$R/tags/list?n=3&last=1.0.1"
expect_status 200
expect_json '.tags' '["_underscore","a-b","beta"]'
expect_link_next "/v2/$R/tags/list" 3 beta
req GET "/v2/$R/tags/list?n=3&last=latest"
expect_json '.tags' '["v1","v10","v2"]'
# Exactly the last page: nothing remains, no Link.
expect_no_header Link
req GET "/v2/$R/tags/list?n=10"
expect_json '.tags' "$SORTED"
expect_no_header Link
req GET "/v2/$R/tags/list?n=11"
expect_json '.tags' "$SORTED"
expect_no_header Link
req GET "/v2/$R/tags/list?n=9"
expect_json '.tags | length' 9
expect_link_next "/v2/$R/tags/list" 9 v10

section "following Link pages through everything"
next="/v2/$R/tags/list?n=4"
all='[]'
pages=0
while [ -n "$next" ] && [ $pages -lt 20 ]; do
	req GET "$next"
	[ "$REQ_STATUS" = 200 ] || break
	all=$(jq -c --argjson acc "$all" '$acc + .tags' <"$REQ_BODY_FILE")
	pages=$((pages + 1))
	next=$(link_next) || next=
done
expect_eq "tags collected over Link pages" "$all" "$SORTED"
expect_eq "page count for n=4" "$pages" 3

section "last alone, last between tags, last past the end"
req GET "/v2/$R/tags/list?last=v1"
expect_status 200
expect_json '.tags' '["v10","v2"]'
req GET "/v2/$R/tags/list?last=c"
expect_json '.tags' '["latest","v1","v10","v2"]'
req GET "/v2/$R/tags/list?n=2&last=c"
expect_json '.tags' '["latest","v1"]'
expect_link_next "/v2/$R/tags/list" 2 v1
req GET "/v2/$R/tags/list?last=v2"
expect_status 200
expect_json '.tags' '[]'
expect_no_header Link
req GET "/v2/$R/tags/list?n=5&last=zzz"
expect_status 200
expect_json '.tags' '[]'
expect_no_header Link

section "n=0"
req GET "/v2/$R/tags/list?n=0"
expect_status 200
expect_json '.name' "$R"
expect_json '.tags' '[]'
expect_no_header Link
req GET "/v2/$R/tags/list?n=0&last=beta"
expect_status 200
expect_json '.tags' '[]'
expect_no_header Link

section "invalid n"
for n in -1 abc 1.5 '' '%2B3' 0x10; do
	req GET "/v2/$R/tags/list?n=$n"
	if [ "$n" = '' ]; then
		# An empty n may be read as "no n".
		expect_status_in 200 400
		continue
	fi
	expect_status 400
	expect_oci_error
done

# A huge n is either refused or capped (then with a full first page).
req GET "/v2/$R/tags/list?n=99999999999999999999999"
expect_status_in 200 400
if [ "$REQ_STATUS" = 200 ]; then
	expect_json '.tags' "$SORTED"
fi

section "a repository with no tags"
E=$BERTH_TENANT/tags-empty
push_blob "$E" "$W/cfg"
push_blob "$E" "$W/l1"
push_manifest "$E" "$D1" "$W/m1"
expect_status 201
req GET "/v2/$E/tags/list"
expect_status 200
expect_json '.' "{\"name\":\"$E\",\"tags\":[]}"
expect_no_header Link
# A tag pushed and deleted leaves the repository without tags.
E2=$BERTH_TENANT/tags-deleted
push_tags "$E2" only
req DELETE "/v2/$E2/manifests/only"
expect_status 202
req GET "/v2/$E2/tags/list"
expect_status 200
expect_json '.name' "$E2"
expect_json '.tags' '[]'
# A manifest deleted by digest takes its tags out of the list.
E3=$BERTH_TENANT/tags-bydigest
push_tags "$E3" a b
req DELETE "/v2/$E3/manifests/$D1"
expect_status 202
req GET "/v2/$E3/tags/list"
expect_status 200
expect_json '.tags' '[]'

section "unknown repository"
req GET "/v2/$BERTH_TENANT/never-pushed/tags/list"
expect_status 404
expect_error_code NAME_UNKNOWN
req GET "/v2/$BERTH_TENANT/never-pushed/tags/list?n=2"
expect_status 404
expect_error_code NAME_UNKNOWN

section "mixed-case tags"
M=$BERTH_TENANT/tags-case
push_tags "$M" b A a B
req GET "/v2/$M/tags/list"
expect_status 200
# Byte order puts upper case first; the spec's "case-insensitive" wording
# allows either, so only require a stable, complete, sorted-by-one-rule list.
got=$(jq -c '.tags' <"$REQ_BODY_FILE")
case $got in
'["A","B","a","b"]' | '["A","a","B","b"]' | '["a","A","b","B"]' | '["A","a","b","B"]' | '["a","A","B","b"]')
	ok "mixed-case tags sorted: $got"
	;;
*) fail "mixed-case tags: $got" ;;
esac
# Pagination follows the same order as the full list.
first=$(jq -r '.[1]' <<<"$got")
req GET "/v2/$M/tags/list?n=2"
expect_json '.tags' "$(jq -c '.[0:2]' <<<"$got")"
expect_link_next "/v2/$M/tags/list" 2 "$first"
req GET "/v2/$M/tags/list?n=2&last=$first"
expect_json '.tags' "$(jq -c '.[2:4]' <<<"$got")"
expect_no_header Link

section "page_max caps n and the default page"
berth_stop
cat >"$E2E_TMP/page.yml" <<EOF
limits:
  page_max: 3
EOF
berth_start --config "$E2E_TMP/page.yml" || exit 1
push_tags "$R" t1 t2 t3 t4 t5
req GET "/v2/$R/tags/list?n=100"
expect_status 200
expect_json '.tags' '["t1","t2","t3"]'
expect_link_next "/v2/$R/tags/list" 3 t3
req GET "/v2/$R/tags/list"
expect_status 200
expect_json '.tags' '["t1","t2","t3"]'
# The Link of an unbounded request carries the page size it used.
if url=$(link_next); then
	expect_eq "Link last" "$(query_param "$url" last)" t3
else
	fail_resp "no Link on a capped page"
fi
req GET "/v2/$R/tags/list?n=3&last=t3"
expect_json '.tags' '["t4","t5"]'
expect_no_header Link

berth_done
