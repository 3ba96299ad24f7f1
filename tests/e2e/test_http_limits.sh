#!/usr/bin/env bash
# Connection limits a flood cannot get around: at most
# http.max_connections_per_address from one address (refused at once past
# it), and the last http.reserved_connections slots only for addresses that
# hold few connections, so a normal client gets in while a flood from
# other addresses has taken everything else.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/http_lib.sh"
BERTH_AUTO_KEY=1

section "per-address limit (64 by default)"
CFG=$E2E_WORK/config1.yml
http_config "$CFG" "header_timeout: 30s"
berth_start --config "$CFG" || exit 1
OUT=$(attack hold --source 127.0.0.2 --count 100 --wait 1.0)
echo "$OUT"
# The accept policy reads the count before the connection is opened, so a
# few accepted at the same instant on other threads may slip in.
expect_ge "connections held from 127.0.0.2" "$(jget "$OUT" .held)" 64
expect_le "connections held from 127.0.0.2" "$(jget "$OUT" .held)" 68
# Another address is not affected, and the first one's slots come back.
OUT=$(attack hold --source 127.0.0.3 --count 10 --wait 0.5)
expect_eq "connections held from 127.0.0.3" "$(jget "$OUT" .held)" 10
sleep 0.3
OUT=$(attack hold --source 127.0.0.2 --count 64 --wait 0.5)
expect_eq "127.0.0.2 again after closing" "$(jget "$OUT" .held)" 64
berth_stop

section "reserved slots: a flood takes 100 - 20, a normal client still gets in"
CFG=$E2E_WORK/config2.yml
http_config "$CFG" "max_connections: 100" "reserved_connections: 20" "max_connections_per_address: 0" \
	"header_timeout: 20s" "threads: 2"
berth_start --config "$CFG" || exit 1
AUTH="Bearer $BERTH_KEY"
attack hold --source 127.0.0.2 --count 150 --wait 1.0 --keep 6 >"$E2E_WORK/flood.json" &
FLOOD=$!
sleep 2
start=$(date +%s%N)
codes=
for i in 1 2 3 4 5; do
	codes+="$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -H "Authorization: $AUTH" "$BERTH_URL/v2/") "
done
ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "normal client's 5 requests during the flood" "$codes" "200 200 200 200 200 "
expect_le "normal client's 5 requests took (ms)" "$ms" 2000
wait "$FLOOD"
OUT=$(cat "$E2E_WORK/flood.json")
echo "$OUT"
expect_ge "flood connections held" "$(jget "$OUT" .held)" 78
expect_le "flood connections held" "$(jget "$OUT" .held)" 84
grep -q 'guard: refused .* from heavy addresses' "$BERTH_LOG" || sleep 10
if grep -Eq 'guard: refused [0-9]+ new connections .*[1-9][0-9]* from heavy addresses' "$BERTH_LOG"; then
	ok "refusals summed up in the log"
else
	fail "no guard summary line with reserved-slot refusals in the log"
fi
berth_done
