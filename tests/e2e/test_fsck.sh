#!/usr/bin/env bash
# berthd fsck against a real store: content pushed with curl (blobs pushed
# monolithically and in chunks, a sha512 blob, image manifests, an index,
# tags) is clean, also while the server runs and pushes go on.  Then the
# store is damaged the ways a disk or an operator would: a flipped byte, a
# truncated and a deleted object, planted orphan objects and upload data
# (old and fresh), sessions left idle, cut short or without their data, a
# manifest payload edited in the database, a tag row pointing nowhere, a
# blob link removed under a manifest, repository counts that drifted.
# fsck must report each with its own
# line and exit 1; --repair quarantines (never deletes) objects, removes
# upload data and sessions, and says so; afterwards a quarantined blob
# answers 404 BLOB_UNKNOWN and a push of its genuine bytes makes it
# pullable byte-exact again, after which fsck is clean.
set -u -o pipefail
export BERTH_OPEN=1 # authentication is not what this tests
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in curl jq sqlite3 python3; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

W=$E2E_WORK
R=$BERTH_TENANT/app
R2=$BERTH_TENANT/other
SHORT_CONF=$W/short-expiry.yml
printf 'uploads:\n  expire_after: 2s\n' >"$SHORT_CONF"
FSCK_N=0
FSCK_OUT=

# run_fsck LABEL WANT_RC [fsck args...]: run fsck on the current data
# directory; the report is in $FSCK_OUT.
run_fsck() {
	local label=$1 want=$2 rc
	shift 2
	FSCK_N=$((FSCK_N + 1))
	FSCK_OUT=$W/fsck-$FSCK_N.out
	timeout 120 "$BERTHD" fsck --data-dir "$BERTH_DATA" "$@" >"$FSCK_OUT" 2>"$W/fsck-$FSCK_N.err"
	rc=$?
	sed 's/^/     | /' "$FSCK_OUT"
	if [ "$rc" = "$want" ]; then
		ok "$label: fsck $* exits $rc"
	else
		fail "$label: fsck $* exits $rc, want $want" "$(cat "$W/fsck-$FSCK_N.err")"
	fi
}

# expect_line LABEL REGEX: some report line matches (extended regex, whole line).
expect_line() {
	if grep -Eq "^($2)\$" "$FSCK_OUT"; then
		ok "$1"
	else
		fail "$1: no report line matches /^$2\$/"
	fi
}

expect_no_line() {
	if grep -Eq "$2" "$FSCK_OUT"; then
		fail "$1: unexpected report line: $(grep -E "$2" "$FSCK_OUT" | head -n 3)"
	else
		ok "$1"
	fi
}

# expect_count LABEL REGEX N: exactly N report lines match.
expect_count() {
	local n
	n=$(grep -Ec "$2" "$FSCK_OUT")
	expect_eq "$1" "$n" "$3"
}

# expect_true LABEL COMMAND...: the command succeeds.
expect_true() {
	local label=$1
	shift
	if "$@"; then
		ok "$label"
	else
		fail "$label"
	fi
}

hex_of() { printf '%s\n' "${1#*:}"; }
# Where the object of a digest is: the key its blob row names (each
# stored copy has a key of its own), else the plain content address (for
# objects no row names).
obj_path() {
	local alg=${1%%:*} hex=${1#*:} key
	key=$(sqlite3 "$BERTH_DATA/meta.db" "SELECT storage_key FROM blobs WHERE digest = '$1'" 2>/dev/null)
	if [ -n "$key" ]; then
		printf '%s/blobs/%s\n' "$BERTH_DATA" "$key"
	else
		printf '%s/blobs/%s/%s/%s\n' "$BERTH_DATA" "$alg" "${hex:0:2}" "$hex"
	fi
}
# The key pattern of a digest's stored copy, for report lines.
key_re() { printf 'sha256/../%s(\\.[0-9a-f]{16})?' "$(hex_of "$1")"; }

# Flip every bit of the byte at OFFSET in FILE (size unchanged).
flip_byte() {
	python3 - "$1" "$2" <<'EOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xFF]))
EOF
}

# chunked_push NAME FILE: POST, two PATCHes with Content-Range, PUT.
chunked_push() {
	local name=$1 file=$2 size half loc d
	size=$(size_of "$file")
	half=$((size / 2))
	d=$(digest_of "$file")
	head -c "$half" "$file" >"$W/part1"
	tail -c +$((half + 1)) "$file" >"$W/part2"
	req POST "/v2/$name/blobs/uploads/" -H 'Content-Length: 0'
	loc=$(hdr Location) || { fail_resp "chunked_push: no Location"; return 1; }
	req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H "Content-Range: 0-$((half - 1))" \
		--data-binary "@$W/part1"
	loc=$(hdr Location) || { fail_resp "chunked_push: PATCH 1 got $REQ_STATUS"; return 1; }
	req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H "Content-Range: $half-$((size - 1))" \
		--data-binary "@$W/part2"
	loc=$(hdr Location) || { fail_resp "chunked_push: PATCH 2 got $REQ_STATUS"; return 1; }
	case $loc in *\?*) loc="$loc&digest=$d" ;; *) loc="$loc?digest=$d" ;; esac
	req PUT "$loc" -H 'Content-Length: 0'
	[ "$REQ_STATUS" = 201 ] || { fail_resp "chunked_push: PUT got $REQ_STATUS"; return 1; }
}

# open_session NAME BYTES: a session with BYTES acknowledged; prints its id.
open_session() {
	local loc
	req POST "/v2/$1/blobs/uploads/" -H 'Content-Length: 0'
	loc=$(hdr Location) || return 1
	if [ "$2" -gt 0 ]; then
		head -c "$2" /dev/urandom >"$W/sess.part"
		req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H "Content-Range: 0-$(($2 - 1))" \
			--data-binary "@$W/sess.part"
		[ "$REQ_STATUS" = 202 ] || return 1
	fi
	loc=${loc%%\?*}
	printf '%s\n' "${loc##*/}"
}

berth_start || exit 1

# ---------------------------------------------------------------- content
section "push content"
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
make_blob "$W/l1" 300000 fsck-l1
make_blob "$W/l2" 1200000 fsck-l2
make_blob "$W/l3" 700000 fsck-l3
make_blob "$W/l4" 50000 fsck-l4
make_blob "$W/l5" 90000 fsck-l5
push_blob "$R" "$W/cfg" && ok "config pushed"
D_CFG=$(digest_of "$W/cfg")
push_blob "$R" "$W/l1" && ok "layer 1 pushed (POST + PUT)"
D1=$BLOB_DIGEST
req POST "/v2/$R/blobs/uploads/?digest=$(digest_of "$W/l2")" -H 'Content-Type: application/octet-stream' \
	--data-binary "@$W/l2"
expect_status 201
D2=$(digest_of "$W/l2")
chunked_push "$R" "$W/l3" && ok "layer 3 pushed in two chunks"
D3=$(digest_of "$W/l3")
push_blob "$R" "$W/l4" sha512 && ok "layer 4 pushed as sha512"
D4=$BLOB_DIGEST
push_blob "$R2" "$W/cfg" && push_blob "$R2" "$W/l5" && ok "config and layer 5 pushed to a second repository"
D5=$(digest_of "$W/l5")

make_manifest "$W/m1" "$W/cfg" "$MT_OCI_CONFIG" "$W/l1" "$W/l2"
make_manifest "$W/m2" "$W/cfg" "$MT_OCI_CONFIG" "$W/l3"
make_manifest "$W/m3" "$W/cfg" "$MT_OCI_CONFIG" "$W/l5"
push_manifest "$R" v1 "$W/m1"
expect_status 201
push_manifest "$R" v2 "$W/m2"
expect_status 201
push_manifest "$R2" v1 "$W/m3"
expect_status 201
M1=$(digest_of "$W/m1")
M2=$(digest_of "$W/m2")
M3=$(digest_of "$W/m3")
jq -c -n --arg mt "$MT_OCI_INDEX" --arg m "$MT_OCI_MANIFEST" --arg d1 "$M1" --argjson s1 "$(size_of "$W/m1")" \
	--arg d2 "$M2" --argjson s2 "$(size_of "$W/m2")" \
	'{schemaVersion: 2, mediaType: $mt, manifests: [{mediaType: $m, digest: $d1, size: $s1}, {mediaType: $m, digest: $d2, size: $s2}]}' |
	tr -d '\n' >"$W/idx"
push_manifest "$R" latest "$W/idx"
expect_status 201

# ---------------------------------------------------------------- clean
section "a clean store is clean, with the server running"
run_fsck "clean, server running" 0
expect_line "summary says clean" 'summary: clean; checked 6 blobs .*, 4 manifests, 6 objects, .*'
expect_count "nothing but the summary" '.' 1
run_fsck "repair of a clean store, server running" 0 --repair
expect_count "repair of a clean store does nothing" '^(quarantined|removed|restored|resolved|repair-failed) ' 0
# Past the grace period, a linked object must still not be an orphan.
sleep 1.1
run_fsck "clean past a 1 s grace" 0 --repair --grace 1s
expect_line "no orphan, nothing left young, nothing moved" 'summary: clean; .*orphan-objects 0, .*quarantined 0, removed 0, .*within-grace 0'

section "fsck --repair while pushes go on"
for i in $(seq 1 24); do
	make_blob "$W/bg$i" $((20000 + i * 7000)) "fsck-bg-$i"
done
(
	for i in $(seq 1 24); do
		curl -s --max-time 30 -o /dev/null -w '%{http_code}\n' -X POST \
			-H 'Content-Type: application/octet-stream' --data-binary "@$W/bg$i" \
			"$BERTH_URL/v2/$R/blobs/uploads/?digest=$(digest_of "$W/bg$i")"
	done >"$W/bg.codes"
) &
BG=$!
runs=0
while kill -0 "$BG" 2>/dev/null && [ "$runs" -lt 20 ]; do
	runs=$((runs + 1))
	run_fsck "repair while pushing (run $runs)" 0 --repair
done
wait "$BG"
expect_eq "background pushes acknowledged" "$(grep -c '^201$' "$W/bg.codes")" 24
bad=0
for i in $(seq 1 24); do
	req GET "/v2/$R/blobs/$(digest_of "$W/bg$i")"
	cmp -s "$REQ_BODY_FILE" "$W/bg$i" || bad=$((bad + 1))
done
expect_eq "blobs pushed during fsck --repair served intact" "$bad" 0
run_fsck "after the pushes" 0
expect_line "every pushed blob checked" 'summary: clean; checked 30 blobs .*'

# ---------------------------------------------------------------- sessions
section "upload sessions left behind"
S_IDLE=$(open_session "$R" 5000) && ok "idle session $S_IDLE with 5000 bytes"
S_SHORT=$(open_session "$R" 8000) && ok "session $S_SHORT with 8000 bytes (to be cut short)"
S_GONE=$(open_session "$R" 3000) && ok "session $S_GONE with 3000 bytes (to lose its data)"
S_EMPTY=$(open_session "$R" 0) && ok "session $S_EMPTY with no data yet"
berth_stop

# ---------------------------------------------------------------- damage
section "damage the store"
P1=$(obj_path "$D1")
P2=$(obj_path "$D2")
P3=$(obj_path "$D3")
flip_byte "$P1" 1234
expect_eq "flipped object keeps its size" "$(size_of "$P1")" 300000
truncate -s 1000 "$P2"
rm -f "$P3"
# Before any repair, a torn or lost object is not served as if whole: a
# GET answers 404, so that clients push it again rather than pull bytes
# that cannot match.  (HEAD answers from the metadata: 404 once fsck has
# marked the blob damaged, below.)
berth_restart || exit 1
for d in "$D2" "$D3"; do
	req GET "/v2/$R/blobs/$d"
	expect_status 404
	expect_error_code BLOB_UNKNOWN
done
berth_stop
make_blob "$W/orphan-old" 4096 fsck-orphan-old
make_blob "$W/orphan-new" 4096 fsck-orphan-new
O_OLD=$(digest_of "$W/orphan-old")
O_NEW=$(digest_of "$W/orphan-new")
mkdir -p "$(dirname "$(obj_path "$O_OLD")")" "$(dirname "$(obj_path "$O_NEW")")"
cp "$W/orphan-old" "$(obj_path "$O_OLD")"
cp "$W/orphan-new" "$(obj_path "$O_NEW")"
touch -d '3 hours ago' "$(obj_path "$O_OLD")"
U_OLD=0123456789abcdef0123456789abcdef
U_NEW=fedcba9876543210fedcba9876543210
# Upload data no session owns, as plain files (the layout before segment
# directories, which must be swept too).
head -c 777 /dev/urandom >"$BERTH_DATA/uploads/$U_OLD"
head -c 555 /dev/urandom >"$BERTH_DATA/uploads/$U_NEW"
touch -d '2 hours ago' "$BERTH_DATA/uploads/$U_OLD"
# Each session's data is one segment file (one PATCH each).
truncate -s 100 "$BERTH_DATA/uploads/$S_SHORT"/*
rm -rf "$BERTH_DATA/uploads/$S_GONE"
# Sessions whose data went missing are judged only past the grace period
# (a request may still be finishing them): age them.
sqlite3 "$BERTH_DATA/meta.db" "UPDATE uploads SET updated_at = updated_at - 7200000 WHERE id IN ('$S_SHORT', '$S_GONE')"

section "fsck finds every kind of damage (default expiry: no session is stale yet)"
run_fsck "damaged" 1
expect_line "flipped byte: corrupt, hashes to something else" "corrupt $D1 hashes-to sha256:[0-9a-f]{64} size 300000 key sha256/.*"
expect_line "truncated: corrupt, wrong size" "corrupt $D2 size 1000 expected 1200000 key sha256/.*"
expect_line "deleted: missing" "missing $D3 size 700000 key $(key_re "$D3")"
expect_line "old orphan object reported" "orphan-object sha256/../$(hex_of "$O_OLD") size 4096 age [0-9]+s"
expect_no_line "fresh orphan object is within grace" "$(hex_of "$O_NEW")"
expect_line "old orphan upload data reported" "orphan-upload $U_OLD size 777 age [0-9]+s"
expect_no_line "fresh upload data is within grace" "$U_NEW"
expect_line "session cut short" "broken-session $S_SHORT repo $R offset 8000 stored 100"
expect_line "session without data" "broken-session $S_GONE repo $R offset 3000 stored none"
expect_no_line "healthy idle session not reported" "$S_IDLE|$S_EMPTY"
expect_no_line "no stale session under the default expiry" '^stale-session'
expect_no_line "sha512 blob and the others are fine" "$(hex_of "$D4")|$(hex_of "$D_CFG")"
expect_line "summary counts" 'summary: problems; .*corrupt 2, missing 1, dangling 0, orphan-objects 1, orphan-uploads 1, stale-sessions 2, meta 0; quarantined 0, removed 0.*'
expect_eq "report-only fsck moved nothing" "$(size_of "$P1")" 300000

section "with a 2 s expiry every idle session is stale"
sleep 2.2
run_fsck "short expiry" 1 --config "$SHORT_CONF"
for s in "$S_IDLE" "$S_SHORT" "$S_GONE" "$S_EMPTY"; do
	expect_line "stale session $s" "stale-session $s repo $R offset [0-9]+ idle [0-9]+s"
done
expect_no_line "a stale session is not also reported as broken" '^broken-session'

# ---------------------------------------------------------------- repair
section "fsck --repair"
run_fsck "repair" 1 --repair --config "$SHORT_CONF"
Q1="quarantine/corrupt/sha256/$(hex_of "$D1")/1"
Q2="quarantine/corrupt/sha256/$(hex_of "$D2")/1"
QO="quarantine/orphan/sha256/$(hex_of "$O_OLD")/1"
expect_line "corrupt object 1 quarantined" "quarantined $D1 key $(key_re "$D1") -> $Q1 .*"
expect_line "corrupt object 2 quarantined" "quarantined $D2 key $(key_re "$D2") -> $Q2 .*"
expect_line "orphan object quarantined" "quarantined sha256/../$(hex_of "$O_OLD") -> $QO"
expect_line "orphan upload removed" "removed orphan-upload $U_OLD"
for s in "$S_IDLE" "$S_SHORT" "$S_GONE" "$S_EMPTY"; do
	expect_line "stale session $s removed" "removed stale session $s"
done
expect_line "summary: the missing object is what remains" 'summary: problems; .*corrupt 2, missing 1, .*quarantined 3, removed 5, recounted 0, repair-failed 0;.*'
expect_eq "the quarantined copy is the damaged object (one byte off)" \
	"$(cmp -l "$BERTH_DATA/blobs/$Q1" "$W/l1" 2>&1 | wc -l)" 1
expect_true "the orphan is kept in quarantine" cmp -s "$BERTH_DATA/blobs/$QO" "$W/orphan-old"
expect_true "corrupt objects are gone from their keys" test ! -e "$P1" -a ! -e "$P2"
expect_true "fresh orphan left alone" test -f "$(obj_path "$O_NEW")"
expect_true "fresh upload data left alone" test -f "$BERTH_DATA/uploads/$U_NEW"
expect_true "old upload data removed" test ! -e "$BERTH_DATA/uploads/$U_OLD"
n=$(sqlite3 "$BERTH_DATA/meta.db" 'SELECT count(*) FROM uploads')
expect_eq "no session rows left" "$n" 0

section "second fsck: only the deleted object remains; quarantined blobs await a push"
run_fsck "after repair" 1 --config "$SHORT_CONF"
expect_line "missing object still reported" "missing $D3 .*"
expect_line "quarantined blob 1 awaits a push" "awaiting-push $D1 key sha256/.* \\(corrupt copy in $Q1\\)"
expect_line "quarantined blob 2 awaits a push" "awaiting-push $D2 key sha256/.* \\(corrupt copy in $Q2\\)"
expect_count "no other finding" '^(corrupt|orphan-object|orphan-upload|stale-session|broken-session|dangling|meta|manifest-) ' 0

section "pulls of quarantined and missing blobs, then pushing the genuine bytes again"
berth_restart || exit 1
for d in "$D1" "$D2" "$D3"; do
	req GET "/v2/$R/blobs/$d"
	expect_status 404
	expect_error_code BLOB_UNKNOWN
done
# A HEAD that says 200 for a quarantined blob makes docker and podman skip
# the push that would heal it.
for d in "$D1" "$D2" "$D3"; do
	req HEAD "/v2/$R/blobs/$d"
	expect_status 404
done
req POST "/v2/$R/blobs/uploads/?digest=$D1" -H 'Content-Type: application/octet-stream' --data-binary "@$W/l1"
expect_status 201
push_blob "$R" "$W/l2" && ok "layer 2 pushed again (POST + PUT)"
chunked_push "$R" "$W/l3" && ok "layer 3 pushed again in chunks"
for pair in "$D1:l1" "$D2:l2" "$D3:l3"; do
	req GET "/v2/$R/blobs/${pair%:*}"
	expect_status 200
	expect_body_file "$W/${pair##*:}"
done
for tag in v1 v2 latest; do
	req GET "/v2/$R/manifests/$tag" -H "Accept: $MT_OCI_MANIFEST, $MT_OCI_INDEX"
	expect_status 200
done
run_fsck "after the pushes, server running" 0
expect_line "clean, the damaged copies still held in quarantine" 'summary: clean; .*awaiting-push 0, in-quarantine 3, .*'

# ---------------------------------------------------------------- metadata
section "damage in the metadata"
req DELETE "/v2/$R2/blobs/$D5"
expect_status 202
berth_stop
sqlite3 "$BERTH_DATA/meta.db" "UPDATE manifests SET payload = CAST(replace(CAST(payload AS TEXT), '\"schemaVersion\":2', '\"schemaVersion\": 2') AS BLOB) WHERE digest = '$M2'"
sqlite3 "$BERTH_DATA/meta.db" "INSERT INTO tags (repository_id, name, manifest_id, updated_at) SELECT id, 'ghost', 999999, 0 FROM repositories WHERE name = '$R'"
run_fsck "metadata damage" 1
expect_line "manifest whose blob link was removed: dangling" "dangling $R2@$M3 blob $D5"
expect_line "edited manifest payload" "manifest-corrupt $R@$M2 hashes-to sha256:[0-9a-f]{64} size [0-9]+"
expect_line "tag pointing at no manifest" 'meta foreign_key_check: tags .*'
run_fsck "repair does not touch metadata" 1 --repair
expect_count "no repair action for metadata damage" '^(quarantined|removed) ' 0
sqlite3 "$BERTH_DATA/meta.db" "DELETE FROM tags WHERE name = 'ghost'"
sqlite3 "$BERTH_DATA/meta.db" "UPDATE manifests SET payload = readfile('$W/m2') WHERE digest = '$M2'"
berth_restart || exit 1
push_blob "$R2" "$W/l5" && ok "layer 5 linked again"
run_fsck "metadata put right" 0

section "repository counts that drifted from the rows"
# What decides whether the catalog lists a repository is a count kept with
# every link and manifest; one that went wrong hides a repository (0) or
# keeps an empty one listed.  fsck reports it; --repair counts again.
in_catalog() {
	req GET "/v2/_catalog?n=1000"
	[ "$REQ_STATUS" = 200 ] || fail_resp "catalog: status $REQ_STATUS"
	jq -r '.repositories | join(",")' <"$REQ_BODY_FILE"
}
expect_match "both repositories listed" "$(in_catalog)" "$R2.*$R|$R.*$R2"
berth_stop
sqlite3 "$BERTH_DATA/meta.db" "UPDATE repositories SET contents = 0, listed = 0 WHERE name = '$R'"
sqlite3 "$BERTH_DATA/meta.db" "UPDATE repositories SET contents = contents + 5 WHERE name = '$R2'"
berth_restart || exit 1
expect_eq "the zeroed repository drops out of the catalog" "$(in_catalog | tr ',' '\n' | grep -cx "$R")" 0
run_fsck "counts drifted" 1
expect_line "a repository counted empty" "meta counts: repository $R records 0 \\(listed 0\\) but holds [1-9][0-9]*"
expect_line "a repository counted too high" "meta counts: repository $R2 records [0-9]+ \\(listed 1\\) but holds [0-9]+"
run_fsck "repair counts again" 0 --repair
expect_line "the action" "recounted 2 repositories"
expect_line "summary" 'summary: repaired; .*meta 2; quarantined 0, removed 0, recounted 2, repair-failed 0;.*'
expect_match "listed again, server running" "$(in_catalog)" "$R2.*$R|$R.*$R2"
run_fsck "counts right" 0
expect_no_line "no counts line" '^meta counts'

section "an object found in quarantine/orphan (say, after restoring an older meta.db) goes back"
QR="quarantine/orphan/sha256/$(hex_of "$D5")/1"
mkdir -p "$(dirname "$BERTH_DATA/blobs/$QR")"
berth_stop
mv "$(obj_path "$D5")" "$BERTH_DATA/blobs/$QR"
run_fsck "object moved to quarantine" 1
expect_line "missing, with the copy named" "missing $D5 size 90000 key $(key_re "$D5") \\(a copy is in $QR\\)"
run_fsck "repair puts it back" 0 --repair
expect_line "restored from quarantine" "restored $D5 key $(key_re "$D5") from $QR"
expect_true "restored object is byte-identical" cmp -s "$(obj_path "$D5")" "$W/l5"
run_fsck "after the restore" 0
berth_done
