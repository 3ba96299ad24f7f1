#!/usr/bin/env bash
# End-to-end on a cluster (three berthd nodes behind haproxy, see
# deploy/): upload sessions are shared state.  The same blob pushed at
# once through every node (all succeed, one blob is counted); one chunked
# upload whose chunks go to a different node each, addressed directly and
# through the balancer (haproxy's log shows consecutive PATCHes served by
# different nodes); a node killed with SIGKILL in the middle of a PATCH
# body, the balancer routing around it, and the session finished through
# another node with the right digest; two chunks racing for the same
# offset of one session on two nodes (one wins, the other gets 416 or 409,
# and the blob is the winner's bytes, never a mix), also with chunks of
# whole multipart parts.
set -u -o pipefail
BERTH_E2E_TARGET=${BERTH_E2E_TARGET:-cluster}
BERTH_AUTO_KEY=1
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_need_cluster
berth_start || exit 1
W=$E2E_WORK
R=$BERTH_TENANT/cluster/uploads
echo "cluster ($BERTH_CLUSTER_BACKEND) at $BERTH_URL, nodes: ${BERTH_NODE_URLS[*]}"

# with_digest URL DIGEST
with_digest() { with_query "$1" "digest=$2"; }

# path_of LOCATION: the path (and query) of a Location, absolute or not,
# so that it can be sent to any node.
path_of() {
	case $1 in
	http://* | https://*)
		local p=${1#*://}
		printf '/%s\n' "${p#*/}"
		;;
	*) printf '%s\n' "$1" ;;
	esac
}

# open_upload BASE: POST a session through BASE (a node or the balancer);
# sets LOC (the Location, a path).
open_upload() {
	req POST "$1/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
	LOC=$(hdr Location) || LOC=
	if [ "$REQ_STATUS" != 202 ] || [ -z "$LOC" ]; then
		fail_resp "POST a session through $1: status $REQ_STATUS"
		return 1
	fi
	LOC=$(path_of "$LOC")
}

# The lines of haproxy's log for requests whose path contains $1, as
# "METHOD node" pairs in order.
lb_served() {
	grep -F "$1" "$BERTH_LB_LOG" | sed -n 's/.* berth berthd\/\(node[0-9]\) .*"\([A-Z]*\) .*/\2 \1/p'
}

section "the same blob pushed through every node at once"
make_blob "$W/same" 3000000 same-blob
DS=$(digest_of "$W/same")
pids=()
for n in 1 2 3; do
	# A single POST ?digest= and a POST + PUT through each node.
	curl -s --max-time 60 -o /dev/null -w '%{http_code}\n' "${BERTH_AUTH_HDR[@]}" -X POST \
		-H 'Content-Type: application/octet-stream' --data-binary "@$W/same" \
		"$(node_url $n)/v2/$R/blobs/uploads/?digest=$DS" >"$W/same.single.$n" 2>&1 &
	pids+=($!)
	(
		loc=$(curl -s --max-time 30 -o /dev/null -D - "${BERTH_AUTH_HDR[@]}" -X POST -H 'Content-Length: 0' \
			"$(node_url $n)/v2/$R/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: *//p')
		curl -s --max-time 60 -o /dev/null -w '%{http_code}\n' "${BERTH_AUTH_HDR[@]}" -X PUT \
			-H 'Content-Type: application/octet-stream' --data-binary "@$W/same" \
			"$(node_url $(((n % 3) + 1)))$(with_digest "$loc" "$DS")"
	) >"$W/same.two.$n" 2>&1 &
	pids+=($!)
done
wait "${pids[@]}"
codes=$(cat "$W"/same.single.* "$W"/same.two.* | sort | uniq -c | sed 's/^ *//' | tr '\n' ' ')
expect_eq "six concurrent pushes of one blob through three nodes" "$codes" "6 201 "
for n in 1 2 3; do
	req GET "$(node_url $n)/v2/$R/blobs/$DS"
	expect_status 200
	expect_body_file "$W/same"
done
# The account holds one blob of that size, however many nodes stored it.
req GET /v2/_berth/usage
expect_status 200
expect_json .blobs 1
expect_json .blob_bytes "$(size_of "$W/same")"

section "chunks sent to a different node each, addressed directly"
make_blob "$W/big" 3145728 chunked-across-nodes
DB=$(digest_of "$W/big")
split -b 1048576 -d -a 1 "$W/big" "$W/big.part"
open_upload "$(node_url 1)" || exit 1
off=0
for i in 0 1 2; do
	n=$(((i + 1) % 3 + 1)) # nodes 2, 3, 1
	len=$(size_of "$W/big.part$i")
	req PATCH "$(node_url $n)$LOC" -H 'Content-Type: application/octet-stream' \
		-H "Content-Range: $off-$((off + len - 1))" --data-binary "@$W/big.part$i"
	expect_status 202
	expect_header Range "0-$((off + len - 1))"
	l=$(hdr Location) && LOC=$(path_of "$l")
	off=$((off + len))
done
req GET "$(node_url 2)$LOC"
expect_status 204
expect_header Range "0-$((off - 1))"
req PUT "$(node_url 3)$(with_digest "$LOC" "$DB")" -H 'Content-Length: 0'
expect_status 201
expect_header_eq Docker-Content-Digest "$DB"
for n in 1 2 3; do
	req GET "$(node_url $n)/v2/$R/blobs/$DB"
	expect_status 200
	expect_body_file "$W/big"
done

section "chunks through the balancer land on different nodes"
make_blob "$W/lb" 2500000 chunked-through-lb
DL=$(digest_of "$W/lb")
split -b 500000 -d -a 1 "$W/lb" "$W/lb.part"
open_upload "" || exit 1
ID=${LOC##*/}
ID=${ID%%\?*}
off=0
for i in 0 1 2 3 4; do
	len=$(size_of "$W/lb.part$i")
	req PATCH "$LOC" -H 'Content-Type: application/octet-stream' \
		-H "Content-Range: $off-$((off + len - 1))" --data-binary "@$W/lb.part$i"
	expect_status 202
	l=$(hdr Location) && LOC=$(path_of "$l")
	off=$((off + len))
done
req PUT "$(with_digest "$LOC" "$DL")" -H 'Content-Length: 0'
expect_status 201
req GET "/v2/$R/blobs/$DL"
expect_status 200
expect_body_file "$W/lb"
# haproxy writes its log line when a request ends; give it a moment.
for i in $(seq 1 20); do
	[ "$(lb_served "$ID" | grep -c '^PATCH ')" -ge 5 ] && break
	sleep 0.1
done
patches=$(lb_served "$ID" | awk '$1 == "PATCH" { print $2 }' | tr '\n' ' ')
echo "     PATCHes of session $ID served by: $patches"
expect_eq "PATCHes of the session in haproxy's log" "$(wc -w <<<"$patches")" 5
nodes_used=$(tr ' ' '\n' <<<"$patches" | grep . | sort -u | wc -l)
expect_eq "nodes that served a PATCH of the session" "$nodes_used" 3
same_in_a_row=$(awk '{ for (i = 2; i <= NF; i++) if ($i == $(i - 1)) n++ } END { print n + 0 }' <<<"$patches")
expect_eq "consecutive PATCHes served by the same node" "$same_in_a_row" 0

section "a node killed in the middle of a PATCH body"
make_blob "$W/crash" 4194304 killed-mid-patch
DC=$(digest_of "$W/crash")
head -c 1048576 "$W/crash" >"$W/crash.c1"
tail -c +1048577 "$W/crash" >"$W/crash.rest"
open_upload "$(node_url 1)" || exit 1
req PATCH "$(node_url 2)$LOC" -H 'Content-Type: application/octet-stream' \
	-H 'Content-Range: 0-1048575' --data-binary "@$W/crash.c1"
expect_status 202
l=$(hdr Location) && LOC=$(path_of "$l")
# The rest (3 MiB) at 256 KiB/s to node 3: about 12 s, so the kill
# lands while the body is still arriving.
curl -s --max-time 60 --limit-rate 256k -o /dev/null -w '%{http_code}\n' "${BERTH_AUTH_HDR[@]}" \
	-X PATCH -H 'Content-Type: application/octet-stream' -H "Content-Range: 1048576-4194303" \
	--data-binary "@$W/crash.rest" "$(node_url 3)$LOC" >"$W/crash.code" 2>"$W/crash.err" &
slow=$!
sleep 2
if kill -0 "$slow" 2>/dev/null; then
	ok "the slow PATCH is still sending when node 3 is killed"
else
	fail "the slow PATCH ended before the kill: $(cat "$W/crash.code")"
fi
node_kill9 3
wait "$slow"
code=$(cat "$W/crash.code")
expect_match "the PATCH cut by the kill was not acknowledged" "$code" '^(000|100|5[0-9][0-9])$'
# The balancer routes around the dead node: no client sees it.
bad=0
for i in $(seq 1 9); do
	c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$BERTH_URL/v2/")
	case $c in 200 | 401) ;; *) bad=$((bad + 1)) ;; esac
done
expect_eq "requests through the balancer that failed while node 3 is dead" "$bad" 0
# Another node tells where the session stands, and takes the rest from
# there.
req GET "$(node_url 1)$LOC"
expect_status 204
range=$(hdr Range) || range=
expect_match "the session's Range after the kill" "$range" '^0-[0-9]+$'
have=$((${range#0-} + 1))
if [ "$have" -ge 1048576 ] && [ "$have" -le 4194304 ]; then
	ok "the session kept at least the acknowledged chunk ($have bytes)"
else
	fail "the session holds $have bytes, want 1048576..4194304"
	have=1048576
fi
if [ "$have" -lt 4194304 ]; then
	tail -c +$((have + 1)) "$W/crash" >"$W/crash.tail"
	req PATCH "$(node_url 2)$LOC" -H 'Content-Type: application/octet-stream' \
		-H "Content-Range: $have-4194303" --data-binary "@$W/crash.tail"
	expect_status 202
	l=$(hdr Location) && LOC=$(path_of "$l")
fi
req PUT "$(node_url 1)$(with_digest "$LOC" "$DC")" -H 'Content-Length: 0'
expect_status 201
expect_header_eq Docker-Content-Digest "$DC"
req GET "/v2/$R/blobs/$DC"
expect_status 200
expect_body_file "$W/crash"
node_start 3
req GET "$(node_url 3)/v2/$R/blobs/$DC"
expect_status 200
expect_body_file "$W/crash"

# race PREFIX BYTES ROUND: PATCH PREFIXa to node 1 and PREFIXb to node 2,
# both BYTES long, at once, as the first chunk of session $LOC.  Sets
# winner and loser (a or b) when one got 202 and the other 416 or 409;
# returns 1 (and says what they got) otherwise.
race() {
	local prefix=$1 bytes=$2 round=$3 side n ca cb
	for side in a b; do
		n=1
		[ $side = b ] && n=2
		(
			curl -s --max-time 120 -o /dev/null -w '%{http_code}\n' "${BERTH_AUTH_HDR[@]}" \
				-X PATCH -H 'Content-Type: application/octet-stream' \
				-H "Content-Range: 0-$((bytes - 1))" --data-binary "@$prefix$side" "$(node_url $n)$LOC"
		) >"$prefix$side.code" 2>&1 &
	done
	wait
	ca=$(cat "${prefix}a.code") cb=$(cat "${prefix}b.code")
	if [ "$ca" = 202 ] && [[ $cb =~ ^(416|409)$ ]]; then
		winner=a loser=b
	elif [ "$cb" = 202 ] && [[ $ca =~ ^(416|409)$ ]]; then
		winner=b loser=a
	else
		printf '     round %d: node 1 answered %s, node 2 answered %s\n' "$round" "$ca" "$cb"
		return 1
	fi
}

section "two chunks racing for the same offset on two nodes"
ROUNDS=${CLUSTER_RACE_ROUNDS:-8}
mixed=0 bad_codes=0 done_rounds=0
for r in $(seq 1 "$ROUNDS"); do
	make_blob "$W/ra" 1048576 "race-a-$r"
	make_blob "$W/rb" 1048576 "race-b-$r"
	open_upload "" || break
	if ! race "$W/r" 1048576 "$r"; then
		bad_codes=$((bad_codes + 1))
		continue
	fi
	req GET "$(node_url 3)$LOC"
	if [ "$REQ_STATUS" != 204 ] || [ "$(hdr Range)" != 0-1048575 ]; then
		fail_resp "round $r: session after the race"
		continue
	fi
	req PUT "$(node_url 3)$(with_digest "$LOC" "$(digest_of "$W/r$winner")")" -H 'Content-Length: 0'
	if [ "$REQ_STATUS" != 201 ]; then
		mixed=$((mixed + 1))
		fail_resp "round $r: PUT with the winner's digest"
		continue
	fi
	req GET "/v2/$R/blobs/$(digest_of "$W/r$winner")"
	if [ "$REQ_STATUS" = 200 ] && cmp -s "$REQ_BODY_FILE" "$W/r$winner"; then
		done_rounds=$((done_rounds + 1))
	else
		mixed=$((mixed + 1))
		fail_resp "round $r: the blob is not the winner's bytes"
	fi
	req HEAD "/v2/$R/blobs/$(digest_of "$W/r$loser")"
	[ "$REQ_STATUS" = 404 ] || fail_resp "round $r: the losing chunk became a blob"
done
expect_eq "rounds not ending in one 202 and one 416 or 409" "$bad_codes" 0
expect_eq "rounds whose blob is not exactly the winner's bytes" "$mixed" 0
expect_eq "rounds completed" "$done_rounds" "$ROUNDS"

section "two full parts racing for the same offset on two nodes"
# Chunks over the part size (5 MiB in the nodes' configuration) are
# multipart parts on S3, sent under the part number of their offset: the
# losing request may overwrite the winner's part before it learns that it
# lost.  Then the session cannot make the winner's blob any more; the PUT
# must say so (404 BLOB_UPLOAD_UNKNOWN, the session ended) -- never
# publish the loser's bytes or a mix under the winner's digest.
PROUNDS=${CLUSTER_PART_RACE_ROUNDS:-3}
part_bad=0 part_done=0 part_ended=0
for r in $(seq 1 "$PROUNDS"); do
	make_blob "$W/pa" 6291456 "part-race-a-$r"
	make_blob "$W/pb" 6291456 "part-race-b-$r"
	open_upload "" || break
	if ! race "$W/p" 6291456 "$r"; then
		part_bad=$((part_bad + 1))
		continue
	fi
	req PUT "$(node_url 3)$(with_digest "$LOC" "$(digest_of "$W/p$winner")")" -H 'Content-Length: 0'
	if [ "$REQ_STATUS" = 201 ]; then
		req GET "/v2/$R/blobs/$(digest_of "$W/p$winner")"
		if [ "$REQ_STATUS" = 200 ] && cmp -s "$REQ_BODY_FILE" "$W/p$winner"; then
			part_done=$((part_done + 1))
		else
			part_bad=$((part_bad + 1))
			fail_resp "round $r: the blob is not the winner's bytes"
		fi
	elif [ "$REQ_STATUS" = 404 ] && [[ $REQ_BODY == *BLOB_UPLOAD_UNKNOWN* ]]; then
		part_ended=$((part_ended + 1))
		req GET "$LOC"
		[ "$REQ_STATUS" = 404 ] || fail_resp "round $r: the session outlived its lost data"
	else
		part_bad=$((part_bad + 1))
		fail_resp "round $r: PUT with the winner's digest"
	fi
	req HEAD "/v2/$R/blobs/$(digest_of "$W/p$loser")"
	[ "$REQ_STATUS" = 404 ] || fail_resp "round $r: the losing part became a blob"
done
echo "     $part_done rounds published the winner's blob, $part_ended ended the session"
expect_eq "part rounds with another outcome" "$part_bad" 0
expect_eq "part rounds done" "$((part_done + part_ended))" "$PROUNDS"

section "every node still serves"
for n in 1 2 3; do
	req GET "$(node_url $n)/v2/"
	expect_status 200
done
berth_stop
expect_eq "every node exits cleanly" "$BERTH_EXIT" 0
berth_done
