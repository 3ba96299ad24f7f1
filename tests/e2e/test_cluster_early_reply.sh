#!/usr/bin/env bash
# End-to-end on a cluster (three berthd nodes behind haproxy, see
# deploy/): an answer a node gives before it has read the request body
# must reach the client through the balancer.  A client pushing a chunk
# with an expired or wrong key, with a pull-only key, or to a session
# that does not exist learns so from the 401 (with its challenge, which
# makes docker and containerd log in again), the 403 or the 404 -- not
# from a connection cut without an answer, which clients report as a
# network error and retry blindly.  Each case is sent several times,
# since which node answers and when the connection closes vary.
set -u -o pipefail
BERTH_E2E_TARGET=${BERTH_E2E_TARGET:-cluster}
BERTH_AUTO_KEY=1
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_need_cluster
berth_start || exit 1
W=$E2E_WORK
R=$BERTH_TENANT/early
ROUNDS=${CLUSTER_EARLY_ROUNDS:-9}
echo "cluster ($BERTH_CLUSTER_BACKEND) at $BERTH_URL, nodes: ${BERTH_NODE_URLS[*]}"
make_blob "$W/chunk" 2000000 early-reply
PULL_KEY=$("$BERTHD" key create --account "$BERTH_ACCOUNT" --pull-only --data-dir "$BERTH_DATA")
PULL_KEY=${PULL_KEY#* }
req POST "/v2/$R/blobs/uploads/" -H 'Content-Length: 0'
expect_status 202
LOC=$(hdr Location)

# rounds LABEL WANT CODE METHOD PATH [curl args]: ROUNDS times; one
# assertion: every answer has status WANT and error code CODE.
rounds() {
	local label=$1 want=$2 code=$3 method=$4 path=$5 r got=()
	shift 5
	for r in $(seq 1 "$ROUNDS"); do
		# No "Expect: 100-continue" (curl's default above 1 MiB): Go
		# clients such as docker send the body straight away.
		req "$method" "$path" -H 'Expect:' "$@"
		if [ "$REQ_STATUS" = "$want" ] && [[ $REQ_BODY == *"\"$code\""* ]]; then
			got+=("$REQ_STATUS")
		else
			got+=("$REQ_STATUS!")
		fi
	done
	if [[ " ${got[*]} " == *"!"* ]]; then
		fail "$label: answers ${got[*]} (want $ROUNDS x $want $code; 000 = no answer)"
	else
		ok "$label: $ROUNDS x $want $code"
	fi
}

section "refusals before the body is read, through the balancer"
rounds "a 2 MB PATCH with a wrong key" 401 UNAUTHORIZED PATCH "$LOC" \
	-H "Authorization: Bearer brt_$(printf '%064d' 1)" -H 'Content-Range: 0-1999999' \
	-H 'Content-Type: application/octet-stream' --data-binary "@$W/chunk"
rounds "a 2 MB monolithic POST with a pull-only key" 403 DENIED POST \
	"/v2/$R/blobs/uploads/?digest=$(digest_of "$W/chunk")" -H "Authorization: Bearer $PULL_KEY" \
	-H 'Content-Type: application/octet-stream' --data-binary "@$W/chunk"
rounds "a 2 MB PATCH to a session that does not exist" 404 BLOB_UPLOAD_UNKNOWN PATCH \
	"/v2/$R/blobs/uploads/0123456789abcdef0123456789abcdef" -H 'Content-Range: 0-1999999' \
	-H 'Content-Type: application/octet-stream' --data-binary "@$W/chunk"

section "the session is untouched, and takes the chunk from its owner"
req GET "$LOC"
expect_status 204
expect_header Range 0-0
req PATCH "$LOC" -H 'Content-Range: 0-1999999' -H 'Content-Type: application/octet-stream' \
	--data-binary "@$W/chunk"
expect_status 202
LOC=$(hdr Location)
req PUT "$(with_query "$LOC" "digest=$(digest_of "$W/chunk")")" -H 'Content-Length: 0'
expect_status 201
req GET "/v2/$R/blobs/$(digest_of "$W/chunk")"
expect_body_file "$W/chunk"
berth_done
