#!/bin/bash
# End-to-end: blob bodies read from the store's descriptor in blocks
# (api/blobs.c read_fd): whole GETs and Range GETs that start and end inside
# and across blocks are byte-exact, for blobs smaller and larger than a
# block, also with several GETs of the same blob at once.
BERTH_AUTO_KEY=1 # every request carries an access key of the test account
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$BERTH_TENANT/large
berth_start || exit 1
W=$E2E_WORK
BLOCK=262144

section "blobs of 1 byte, a block less one, a block, a block plus one"
for size in 1 $((BLOCK - 1)) $BLOCK $((BLOCK + 1)); do
	make_blob "$W/s$size" "$size" "s$size"
	push_blob "$R" "$W/s$size"
	req GET "/v2/$R/blobs/$BLOB_DIGEST"
	expect_status 200
	expect_header Content-Length "$size"
	expect_body_file "$W/s$size"
done

section "a 24 MiB + 13 byte blob, whole"
SIZE=$((24 * 1024 * 1024 + 13))
make_blob "$W/big" "$SIZE" big
push_blob "$R" "$W/big"
DB=$BLOB_DIGEST
req GET "/v2/$R/blobs/$DB"
expect_status 200
expect_header Content-Length "$SIZE"
expect_body_file "$W/big"

section "Range GETs inside one block, across many, and at the end"
for range in "$((BLOCK - 1))-$((5 * BLOCK + 6))" "100-200" "$((3 * BLOCK))-$((4 * BLOCK - 1))" \
	"$((SIZE - BLOCK - 5))-$((SIZE - 1))"; do
	first=${range%-*} last=${range#*-}
	tail -c +$((first + 1)) "$W/big" | head -c $((last - first + 1)) >"$W/part"
	req GET "/v2/$R/blobs/$DB" -H "Range: bytes=$range"
	expect_status 206
	expect_header Content-Range "bytes $range/$SIZE"
	expect_header Content-Length $((last - first + 1))
	expect_body_file "$W/part"
done

section "four GETs of the blob at once"
want=$(sha256sum <"$W/big" | cut -d' ' -f1)
pids=()
for k in 1 2 3 4; do
	curl -s --max-time 120 "${BERTH_AUTH_HDR[@]}" -o "$W/got$k" "$BERTH_URL/v2/$R/blobs/$DB" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for k in 1 2 3 4; do
	expect_eq "concurrent GET $k sha256" "$(sha256sum <"$W/got$k" | cut -d' ' -f1)" "$want"
done

berth_done
