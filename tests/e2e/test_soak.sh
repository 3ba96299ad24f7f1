#!/usr/bin/env bash
# A short soak (about 75 s): bench/soak.sh with 25 s of load by 500
# kept-alive clients and 20 pushers, then 25 s of 1100 slow clients and 200
# stalled manifest bodies while normal clients keep working.  No normal
# client may see an error, the server may not leak fds, and its RSS stays
# bounded.  (bench/soak.sh with its defaults is the long run.)
. "$(dirname "$0")/lib.sh"
SOAK=$BERTH_E2E_DIR/../../bench/soak.sh
OUT=$E2E_WORK/soak.json
BERTHD=$BERTHD SOAK_LOAD_SECONDS=25 SOAK_ATTACK_SECONDS=25 SOAK_HEADER_TIMEOUT=3s SOAK_REQUEST_TIMEOUT=8s \
	SOAK_OUT=$OUT timeout 300 bash "$SOAK"
rc=$?
expect_eq "bench/soak.sh exit status" "$rc" 0
if [ ! -s "$OUT" ]; then
	fail "no soak result"
	berth_done
	exit 1
fi
R=$(cat "$OUT")
j() { jq -r "$1" <<<"$R"; }
expect_eq "server alive" "$(j .alive)" yes
expect_eq "load phase errors" "$(j .load.errors)" 0
expect_match "load phase requests" "$(j .load.requests)" '^[1-9][0-9]{3,}$'
expect_match "load phase pushes (201)" "$(j '.load.statuses["201"] // 0')" '^[1-9][0-9]*$'
expect_eq "attack phase client errors" "$(j .attack_load.errors)" 0
expect_match "attack phase pushes (201)" "$(j '.attack_load.statuses["201"] // 0')" '^[1-9][0-9]*$'
expect_eq "attack phase probe errors" "$(j .slow.normal.errors)" 0
expect_match "slow connections cut" "$(j .slow.attack.cut)" '^[1-9][0-9]{3,}$'
expect_eq "fds after the run vs before" "$(j '.fds.after <= .fds.before + 8')" true
expect_eq "RSS max under 256 MiB" "$(j '.rss_kib.max < 262144')" true
berth_done
