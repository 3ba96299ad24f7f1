#!/usr/bin/env bash
# kill -9 in the middle of GC (issue 9), repeated.
#   1. With the worker off, 40 images are kept (30 tagged, 10 pushed by
#      digest only) and 300 more are pushed and their tags deleted at once,
#      all sharing a base layer and 3 mid layers (shared layers are
#      sometimes uploaded again: duplicates for the outbox), plus 60 blobs
#      pushed and never referenced.
#   2. berthd restarts with the worker on (gc.interval 1s, gc.grace 0s, a
#      low gc.rate so that the work spans many seconds) and is killed with
#      SIGKILL 5 times 50-500 ms after its start, then 3 times 0.6-2.5 s
#      after (inside the worker's passes whatever the first pass waits);
#      the review queues are printed after each round to show progress.
#   3. Restarted for good, the worker finishes: `berthd gc --grace 0s
#      --dry-run` is polled until it would remove nothing.
#   4. With the server stopped, 150 more images become garbage and a
#      `berthd gc --grace 0s` CLI run is killed with SIGKILL 3 times at
#      random moments, then run to completion (exit 0), and once more (it
#      finds nothing).
# After each phase: every kept image pulls with its digests verified, every
# garbage manifest is gone, nothing unreferenced is left (rows, queue rows,
# outbox rows, unnamed files: gc_check.sh), no blob row lost its file,
# `berthd usage` equals a recount from meta.db (also after every kill), and
# `berthd fsck` exits 0.  Env: GC_CRASH_SEED (printed, to repeat a run).
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BERTH_OPEN=1 # authentication is not what this tests
# ...but the account exists, so that its usage is kept (berthd usage).
BERTH_AUTO_KEY=1
. "$HERE/lib.sh"
. "$HERE/gc_check.sh"

for tool in curl jq sqlite3 sha256sum; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
T_START=$SECONDS
SEED=${GC_CRASH_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$SEED
echo "gc crash test, seed $SEED (repeat with GC_CRASH_SEED=$SEED)"
W=$E2E_WORK
CR=$E2E_TMP/gccrash
mkdir -p "$CR"
OFF_CONF=$CR/gc-off.yml
printf 'gc:\n  interval: 0s\n' >"$OFF_CONF"
ON_CONF=$CR/gc-on.yml
printf 'gc:\n  interval: 1s\n  grace: 0s\n  batch: 20\n  rate: 200\n' >"$ON_CONF"
LEDGER=$CR/ledger
DELLOG=$CR/deletions
: >"$LEDGER"
: >"$DELLOG"
PREFIX=$BERTH_TENANT/crash
ZERO_DRY='gc (dry run): would remove 0 tags, 0 manifests (0 bytes), 0 links, 0 blobs (0 bytes), 0 objects (0 bytes), 0 orphans (0 bytes); 0 objects pending'

sq() { sqlite3 -cmd '.timeout 20000' "$BERTH_DATA/meta.db" "$1"; }
queues() {
	sq "SELECT 'manifests ' || (SELECT count(*) FROM manifests) || ', blob rows ' || (SELECT count(*) FROM blobs)
		|| ', links ' || (SELECT count(*) FROM repository_blobs)
		|| '; queued: manifests ' || (SELECT count(*) FROM gc_manifest_queue)
		|| ', links ' || (SELECT count(*) FROM gc_link_queue) || ', blobs ' || (SELECT count(*) FROM gc_blob_queue)
		|| ', outbox ' || (SELECT count(*) FROM gc_outbox)" 2>&1
}

# push_load COUNT MODE TAG_PREFIX [BY_DIGEST_EVERY] [DANGLING]
push_load() {
	local out t0=$SECONDS
	if out=$("$E2E_PY" "$HERE/gc_push.py" "$BERTH_URL" "$PREFIX" 4 "$1" 4 "$2" "$3" "$LEDGER" "$DELLOG" \
		"${4:-0}" "${5:-0}" 2>&1); then
		ok "$2 $3: $out ($((SECONDS - t0)) s)"
	else
		fail "$2 $3: gc_push.py failed" "$out"
	fi
}

# verify LABEL [before-gc]: every kept image whole, every garbage manifest
# gone (unless before-gc).
verify() {
	local line
	"$E2E_PY" "$HERE/gc_verify.py" "$BERTH_URL" "$BERTH_DATA" "$LEDGER" "$DELLOG" ${2:-} >"$W/verify.out" 2>&1 ||
		fail "$1: gc_verify.py exited $?" "$(tail -n 5 "$W/verify.out")"
	while IFS= read -r line; do
		case $line in
		PASS\ *) ok "$1: ${line#PASS }" ;;
		FAIL\ *) fail "$1: ${line#FAIL }" ;;
		*) printf '     %s\n' "${line#INFO }" ;;
		esac
	done <"$W/verify.out"
}

run_fsck() {
	local rc
	timeout 300 "$BERTHD" fsck --data-dir "$BERTH_DATA" >"$W/fsck.out" 2>&1
	rc=$?
	sed 's/^/     | /' "$W/fsck.out" | head -n 12
	expect_eq "$1: fsck finds no missing object" "$(grep -c '^missing ' "$W/fsck.out")" 0
	expect_eq "$1: fsck exit status" "$rc" 0
}

# integrity LABEL: meta.db survived the kill.
integrity() {
	local ic fk
	ic=$(sq 'PRAGMA integrity_check' 2>&1 | head -n 3)
	fk=$(sq 'PRAGMA foreign_key_check' 2>&1 | head -n 3)
	if [ "$ic" = ok ] && [ -z "$fk" ]; then
		ok "$1: meta.db integrity_check ok, no foreign key violation"
	else
		fail "$1: meta.db damaged" "integrity_check: $ic" "foreign_key_check: $fk"
	fi
}

# launch_raw: start berthd with BERTH_ARGS without waiting for it.
launch_raw() {
	"$BERTHD" serve --listen "127.0.0.1:$BERTH_PORT" --data-dir "$BERTH_DATA" \
		"${BERTH_ARGS[@]}" >>"$BERTH_LOG" 2>&1 &
	BERTH_PID=$!
	E2E_PIDS+=("$BERTH_PID")
}

# ================================================================ garbage
section "content: 40 kept images, 300 garbage images, 60 unreferenced blobs (worker off)"
berth_start --config "$OFF_CONF" || exit 1
push_load 40 keep k 4
push_load 300 garbage g 0 60
echo "     $(queues)"
expect_eq "kept images acknowledged" "$(grep -c ' keep$' "$LEDGER")" 40
expect_eq "garbage tags deleted" "$(awk '$3 == 202' "$DELLOG" | wc -l)" 300
verify "before GC" before-gc
berth_stop

# ================================================================ kill -9 the worker
section "kill -9 of berthd while its worker collects (interval 1s, grace 0s, rate 200/s)"
BERTH_ARGS=(--config "$ON_CONF" --insecure-no-auth)
for round in 1 2 3 4 5 6 7 8; do
	if [ "$round" -le 5 ]; then
		ms=$((50 + RANDOM % 451))
	else
		ms=$((600 + RANDOM % 1901))
	fi
	launch_raw
	sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
	if kill -0 "$BERTH_PID" 2>/dev/null; then
		berth_kill9
		ok "round $round: killed berthd $ms ms after its start"
	else
		wait "$BERTH_PID"
		fail "round $round: berthd had already exited ($?) after $ms ms" "$(tail -n 5 "$BERTH_LOG")"
		e2e_forget_pid "$BERTH_PID"
	fi
	echo "     after round $round: $(queues)"
	integrity "round $round"
	gc_expect_usage "round $round" "$BERTH_TENANT"
done

section "restart for good: the worker finishes"
e2e_launch || { fail "berthd did not restart (log $BERTH_LOG)"; exit 1; }
t0=$SECONDS
done_gc=0
polls=0
while [ $((SECONDS - t0)) -lt 150 ]; do
	polls=$((polls + 1))
	timeout 120 "$BERTHD" gc --dry-run --grace 0s --data-dir "$BERTH_DATA" >"$W/dry.out" 2>"$W/dry.err"
	[ $? = 2 ] && break # a usage error: waiting longer changes nothing
	if [ "$(tail -n 1 "$W/dry.out")" = "$ZERO_DRY" ]; then
		done_gc=1
		break
	fi
	sleep 1
done
echo "     $(queues)"
if [ "$done_gc" = 1 ]; then
	ok "the worker finished: a dry run would remove nothing ($((SECONDS - t0)) s, $polls dry runs)"
else
	fail "the worker did not finish within 150 s" "last dry run: $(tail -n 3 "$W/dry.out") $(head -c 300 "$W/dry.err")"
fi
gc_leftovers 0 2000
echo "     $GCL_SUMMARY"
gc_expect_clean "after the worker"
gc_expect_usage "after the worker" "$BERTH_TENANT"
verify "after the worker"
expect_eq "manifests left: the 40 kept" "$(sq 'SELECT count(*) FROM manifests')" 40
berth_stop
run_fsck "after the worker"

# ================================================================ kill -9 the CLI
section "kill -9 of 'berthd gc --grace 0s' (server stopped), then run it to the end"
BERTH_ARGS=(--config "$OFF_CONF" --insecure-no-auth)
e2e_launch || { fail "berthd did not restart (log $BERTH_LOG)"; exit 1; }
push_load 150 garbage h 0 30
berth_stop
echo "     $(queues)"
killed_mid=0
for round in 1 2 3; do
	ms=$((30 + RANDOM % 400))
	"$BERTHD" gc --grace 0s --data-dir "$BERTH_DATA" --config "$ON_CONF" >"$W/cli-$round.out" 2>"$W/cli-$round.err" &
	cpid=$!
	E2E_PIDS+=("$cpid")
	sleep "0.$(printf '%03d' "$ms")"
	if kill -KILL "$cpid" 2>/dev/null; then
		wait "$cpid" 2>/dev/null
		n=$(wc -l <"$W/cli-$round.out")
		if grep -q '^gc: ' "$W/cli-$round.out"; then
			echo "     round $round: the CLI had finished within $ms ms ($n lines)"
		else
			killed_mid=$((killed_mid + 1))
			echo "     round $round: killed after $ms ms, $n lines printed"
		fi
	else
		wait "$cpid"
		echo "     round $round: the CLI had exited ($?) before $ms ms"
	fi
	e2e_forget_pid "$cpid"
	echo "     $(queues)"
	integrity "CLI round $round"
done
echo "     CLI runs killed before their summary: $killed_mid of 3"
timeout 300 "$BERTHD" gc --grace 0s --data-dir "$BERTH_DATA" >"$W/cli-final.out" 2>"$W/cli-final.err"
rc=$?
expect_eq "the CLI run to the end exits" "$rc" 0
tail -n 1 "$W/cli-final.out" | sed 's/^/     | /'
expect_match "its summary" "$(tail -n 1 "$W/cli-final.out")" '^gc: removed [0-9]+ tags, [0-9]+ manifests \([0-9]+ bytes\), [0-9]+ links, [0-9]+ blobs \([0-9]+ bytes\), [0-9]+ objects \([0-9]+ bytes\), [0-9]+ orphans \([0-9]+ bytes\); 0 objects pending$'
timeout 300 "$BERTHD" gc --grace 0s --data-dir "$BERTH_DATA" >"$W/cli-again.out" 2>&1
expect_eq "a further run finds nothing" "$(cat "$W/cli-again.out")" \
	'gc: removed 0 tags, 0 manifests (0 bytes), 0 links, 0 blobs (0 bytes), 0 objects (0 bytes), 0 orphans (0 bytes); 0 objects pending'
run_fsck "after the CLI"
e2e_launch || { fail "berthd did not restart (log $BERTH_LOG)"; exit 1; }
gc_leftovers 0 2000
echo "     $GCL_SUMMARY"
gc_expect_clean "after the CLI"
gc_expect_usage "after the CLI" "$BERTH_TENANT"
verify "after the CLI"
expect_eq "manifests left: the 40 kept" "$(sq 'SELECT count(*) FROM manifests')" 40
berth_stop
expect_eq "clean exit" "$BERTH_EXIT" 0
echo "total time $((SECONDS - T_START)) s"
berth_done
