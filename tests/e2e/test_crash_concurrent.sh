#!/usr/bin/env bash
# kill -9 while several clients push at once.  Each round starts 4 pushing
# threads (tests/e2e/crash_clients.py: single-request, POST + PUT and
# chunked blob uploads, sha256 and sha512, content two clients may push at
# the same moment, manifests under tags of their own), kills berthd with
# SIGKILL at a seeded moment, restarts it on the same data directory and
# checks that everything acknowledged (each 201 the clients saw) is served
# with the right digest.  At the end every acknowledged object is checked
# once more and `berthd fsck` must find nothing: interrupted sessions are
# young (expiry is long), and partial upload data or objects committed but
# never linked are within the grace period, never corruption.  With
# --grace 1s those show up, but nothing else may.
# Env: CRASH_ROUNDS (default 30), CRASH_SEED (default 8675309).
set -u -o pipefail
export BERTH_OPEN=1 # authentication is covered elsewhere
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in curl python3; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
ROUNDS=${CRASH_ROUNDS:-30}
SEED=${CRASH_SEED:-8675309}
RANDOM=$SEED
CLIENTS=$BERTH_E2E_DIR/crash_clients.py
W=$E2E_WORK
LEDGER=$W/acked
ERRORS=$W/errors
: >"$LEDGER"
: >"$ERRORS"
T_START=$SECONDS
echo "concurrent crash test: $ROUNDS rounds, seed $SEED (repeat with CRASH_SEED=$SEED)"

berth_start || exit 1
verified_to=0
for round in $(seq 1 "$ROUNDS"); do
	"$E2E_PY" "$CLIENTS" push "$BERTH_URL" "$LEDGER" "$ERRORS" 4 "$((SEED + round))" >"$W/push.out" 2>&1 &
	pushers=$!
	# Seeded kill moment: 0.15 to 1.6 s into the round.
	sleep "$(printf '%d.%02d' $((RANDOM % 2)) $((RANDOM % 100)))"
	sleep 0.15
	berth_kill9
	if ! wait "$pushers"; then
		fail "round $round: the pushers crashed" "$(tail -n 5 "$W/push.out")"
	fi
	acked=$(wc -l <"$LEDGER")
	if ! berth_restart; then
		fail "round $round: berthd does not come back after SIGKILL"
		exit 1
	fi
	if out=$("$E2E_PY" "$CLIENTS" verify "$BERTH_URL" "$LEDGER" "$verified_to"); then
		ok "round $round: $(tail -n 1 <<<"$out") acknowledged since the last round ($(cat "$W/push.out"))"
	else
		fail "round $round: acknowledged content lost or damaged" "$(head -n 10 <<<"$out")"
	fi
	verified_to=$acked
done

section "unexpected answers"
if [ -s "$ERRORS" ]; then
	fail "clients got answers other than success or a dropped connection" "$(head -n 10 "$ERRORS")"
else
	ok "every answer was a success or a dropped connection"
fi

section "final: everything acknowledged, once more, then fsck"
if out=$("$E2E_PY" "$CLIENTS" verify "$BERTH_URL" "$LEDGER" 0); then
	ok "final: $(tail -n 1 <<<"$out") ($(wc -l <"$LEDGER") pushes acknowledged over $ROUNDS kills)"
else
	fail "final: acknowledged content lost or damaged" "$(head -n 10 <<<"$out")"
fi
fsck_run() {
	local label=$1 want=$2 rc
	shift 2
	timeout 300 "$BERTHD" fsck --data-dir "$BERTH_DATA" "$@" >"$W/fsck.out" 2>&1
	rc=$?
	tail -n 1 "$W/fsck.out"
	if [ "$rc" = "$want" ]; then
		ok "$label: fsck $* exits $rc"
	else
		fail "$label: fsck $* exits $rc, want $want" "$(head -n 20 "$W/fsck.out")"
	fi
}
fsck_run "server running" 0
berth_stop
fsck_run "server stopped" 0
# Past a 1 s grace, what the kills cut off half-way shows: objects
# committed but never linked, upload data of single-request pushes,
# sessions whose closing PUT had moved the data.  Nothing else may, and
# repairing it must not touch anything acknowledged.
sleep 1.1
timeout 300 "$BERTHD" fsck --data-dir "$BERTH_DATA" --grace 1s >"$W/fsck.out" 2>&1
rc=$?
tail -n 1 "$W/fsck.out"
ALLOWED='^(orphan-object [^ ]+ size [0-9]+ age [0-9]+s|orphan-upload [0-9a-f]{32} size [0-9]+ age [0-9]+s|broken-session [0-9a-f]{32} repo [^ ]+ offset [0-9]+ stored none|summary: .*)$'
found=$(grep -Ec '^(orphan-object|orphan-upload|broken-session) ' "$W/fsck.out")
n=$(grep -Evc "$ALLOWED" "$W/fsck.out")
want_rc=0
[ "$found" -gt 0 ] && want_rc=1
if [ "$n" = 0 ] && [ "$rc" = "$want_rc" ]; then
	ok "past the grace only what a kill cuts off is reported (exit $rc): $(grep -c '^orphan-object ' "$W/fsck.out") objects, $(grep -c '^orphan-upload ' "$W/fsck.out") upload files, $(grep -c '^broken-session ' "$W/fsck.out") sessions"
else
	fail "fsck --grace 1s (exit $rc) reports more than what a kill cuts off" "$(grep -Ev "$ALLOWED" "$W/fsck.out" | head -n 10)"
fi
fsck_run "repair of the leftovers" 0 --repair --grace 1s
fsck_run "after the repair" 0 --grace 1s
if berth_restart; then
	if out=$("$E2E_PY" "$CLIENTS" verify "$BERTH_URL" "$LEDGER" 0); then
		ok "after fsck --repair: $(tail -n 1 <<<"$out")"
	else
		fail "fsck --repair damaged acknowledged content" "$(head -n 10 <<<"$out")"
	fi
fi
echo "total $((SECONDS - T_START)) s"
berth_done
