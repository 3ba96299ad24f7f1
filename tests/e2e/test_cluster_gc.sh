#!/usr/bin/env bash
# End-to-end on a cluster (three berthd nodes behind haproxy, see
# deploy/): garbage collection racing pushes across nodes.  Every node
# runs its GC worker continuously (gc.interval 1s, gc.grace 1s) and
# `berthd gc --grace 1s` runs beside them every second, while four pushers
# send small images that share layers: two keep theirs (one through node
# 1, one through node 2), one through the balancer keeps its images by tag
# and by digest, and one through node 3 deletes each tag right after
# pushing it (garbage whose blobs are shared with the kept images).
# Afterwards every acknowledged image must be whole when read through
# every node (manifest and blobs re-hashed), and, once the grace is over,
# every deleted image must be gone: collection happened, and never took
# anything still referenced.  A manifest PUT refused with
# MANIFEST_BLOB_UNKNOWN (its blobs collected first, which a 1 s grace
# allows) is not acknowledged and not counted against the registry.
set -u -o pipefail
BERTH_E2E_TARGET=${BERTH_E2E_TARGET:-cluster}
BERTH_OPEN=1 # the pushers send no credentials; auth is test_cluster_auth.sh's
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE=$BERTH_E2E_DIR

e2e_need_cluster
W=$E2E_WORK
COUNT=${CLUSTER_GC_IMAGES:-60}
# Over S3 each upload is several round trips: fewer images, the same mix
# (about 20 s of pushes either way).
if [ -z "${CLUSTER_GC_IMAGES:-}" ] && [ "$BERTH_CLUSTER_BACKEND" = s3pg ]; then
	COUNT=30
fi
printf 'gc:\n  interval: 1s\n  grace: 1s\n' >"$W/gc.yml"
berth_start --config "$W/gc.yml" || exit 1
echo "cluster ($BERTH_CLUSTER_BACKEND) at $BERTH_URL, nodes: ${BERTH_NODE_URLS[*]}"
PREFIX=$BERTH_TENANT/gc
LEDGER=$W/ledger
DELLOG=$W/deletions
: >"$LEDGER"
: >"$DELLOG"

section "pushes through every node while GC runs on every node and from the CLI"
t0=$SECONDS
pushers=()
push() { # NAME BASE MODE TAG_PREFIX [BY_DIGEST_EVERY]
	"$E2E_PY" "$HERE/gc_push.py" "$2" "$PREFIX" 3 "$COUNT" 2 "$3" "$4" "$LEDGER" "$DELLOG" \
		"${5:-0}" >"$W/push.$1" 2>&1
	echo $? >>"$W/push.$1"
}
push n1 "$(node_url 1)" keep n1 &
pushers+=($!)
push n2 "$(node_url 2)" keep n2 &
pushers+=($!)
push lb "$BERTH_URL" keep lb 4 &
pushers+=($!)
push n3 "$(node_url 3)" garbage n3 &
pushers+=($!)
# The CLI collector beside the workers, until the pushers are done
# (bounded: 120 s).
gc_runs=0 gc_bad=0
while [ $((SECONDS - t0)) -lt 120 ]; do
	running=0
	for p in "${pushers[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
	[ "$running" = 1 ] || break
	if ! timeout 60 "$BERTHD" gc --grace 1s >>"$W/gc-cli.out" 2>&1; then
		gc_bad=$((gc_bad + 1))
	fi
	gc_runs=$((gc_runs + 1))
	sleep 1
done
wait "${pushers[@]}"
echo "     $gc_runs CLI collections during $((SECONDS - t0)) s of pushes"
expect_eq "CLI collections that failed" "$gc_bad" 0
acked=0
for p in n1 n2 lb n3; do
	summary=$(head -n 1 "$W/push.$p")
	rc=$(tail -n 1 "$W/push.$p")
	# Failures other than a manifest refused for blobs GC took first
	# are failures of the registry.
	others=$(grep '^error: ' "$W/push.$p" | grep -vc 'MANIFEST_BLOB_UNKNOWN')
	if [ "$others" = 0 ]; then
		ok "pusher $p: $summary"
	else
		fail "pusher $p (exit $rc): $summary" "$(grep '^error: ' "$W/push.$p" | head -n 5)"
	fi
done
acked=$(grep -c ' keep$' "$LEDGER")
garbage=$(grep -c ' garbage$' "$LEDGER")
if [ "$acked" -ge $((COUNT * 3 / 2)) ] && [ "$garbage" -ge $((COUNT / 2)) ]; then
	ok "$acked images acknowledged and kept, $garbage pushed and deleted"
else
	fail "too few pushes went through: $acked kept, $garbage deleted (of $COUNT each)"
fi

section "after the grace: everything kept is whole on every node, the garbage is gone"
# Bounded: the workers run every second; 30 s is many passes.
verify() {
	"$E2E_PY" "$HERE/cluster_verify.py" "$LEDGER" "${BERTH_NODE_URLS[@]}" "$BERTH_URL" >"$W/verify.out" 2>&1
	summary=$(grep '^SUMMARY ' "$W/verify.out")
	left=$(sed -n 's/.*garbage_left=\([0-9]*\).*/\1/p' <<<"$summary")
}
sleep 2
for i in $(seq 1 15); do
	verify
	[ "${left:-1}" = 0 ] && break
	grep -q '^FAIL ' "$W/verify.out" && break
	sleep 2
done
echo "     ${summary:-no summary: $(tail -n 3 "$W/verify.out")}"
if grep -q '^FAIL ' "$W/verify.out"; then
	fail "acknowledged images damaged" "$(grep '^FAIL ' "$W/verify.out" | head -n 10)"
else
	verified=$(sed -n 's/.* verified=\([0-9]*\).*/\1/p' <<<"$summary")
	expect_eq "acknowledged images verified through every node" "${verified:-0}" "$acked"
fi
expect_eq "deleted images still served after the grace" "${left:-?}" 0

section "a last collection changes nothing that is kept"
timeout 60 "$BERTHD" gc --grace 1s >"$W/gc-last.out" 2>&1
expect_eq "berthd gc exit status" "$?" 0
verify
if grep -q '^FAIL ' "$W/verify.out"; then
	fail "acknowledged images damaged by the last collection" "$(grep '^FAIL ' "$W/verify.out" | head -n 10)"
else
	ok "still whole: $summary"
fi
berth_done
