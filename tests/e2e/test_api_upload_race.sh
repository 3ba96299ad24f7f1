#!/bin/bash
# End-to-end: many connections racing on one upload session with
# conflicting bodies.  Whatever order they land in, the registry must never
# acknowledge a digest whose stored bytes differ: every blob answered with
# 201 is read back and compared, every object on disk is re-hashed, and an
# honest later push of the same digest is served its own bytes.
BERTH_AUTO_KEY=1
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${RACE_ROUNDS:-1500}
THREADS=${RACE_THREADS:-6}
berth_start || exit 1

section "$THREADS connections x $ROUNDS rounds on one session each"
if out=$("$E2E_PY" "$BERTH_SRC/tests/e2e/upload_race.py" "$BERTH_URL" "$BERTH_TENANT/race" \
	"$BERTH_KEY" "$ROUNDS" "$THREADS" 2>&1); then
	ok "no acknowledged blob differs from its digest: $out"
else
	fail "upload race: $out"
fi

section "every stored object matches its name"
bad=0 count=0
while IFS= read -r -d '' f; do
	count=$((count + 1))
	name=${f##*/}
	name=${name%%.*} # each stored copy has a suffix of its own
	sum=$(sha256sum "$f" | cut -d' ' -f1)
	if [ "$sum" != "$name" ]; then
		bad=$((bad + 1))
		printf '  %s hashes to %s\n' "$f" "$sum"
	fi
done < <(find "$BERTH_DATA/blobs/sha256" -type f -print0 2>/dev/null)
if [ "$count" -gt 0 ] && [ "$bad" = 0 ]; then
	ok "$count objects re-hashed, none differs"
else
	fail "$bad of $count objects differ from their digest"
fi

section "the server is still healthy"
req GET /v2/
expect_status 200
berth_stop
expect_eq "clean exit after the race" "$BERTH_EXIT" 0
berth_done
