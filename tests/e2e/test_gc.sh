#!/usr/bin/env bash
# Online garbage collection (issue 9), end to end with curl and the CLI:
#   - two images in one repository and one in another of the same account,
#     sharing layers; a tag is deleted; `berthd gc --dry-run --grace 0s`
#     (run while the server serves) reports exactly what the real run then
#     removes and changes nothing (meta.db dump and blob files identical);
#     `berthd gc --grace 0s` removes the manifest, its links, the blobs no
#     other repository links and their files (du of blobs/ drops by at least
#     their sizes), every line and the summary in the contract's format;
#     shared layers stay and pull byte-identical; a manifest pushed by digest
#     only stays; a second run finds nothing; `berthd usage` and GET
#     /v2/_berth/usage drop by exactly the collected bytes;
#   - an index deleted by tag takes its untagged children and their layers
#     with it, a child that keeps a tag of its own stays;
#   - an object stored but never linked (a crash between storing and
#     linking) is collected after the grace period, never before, judged by
#     its ctime (an old mtime does not make it old);
#   - the orphan scan knows the storage keys from before schema 6
#     ("sha256/ab/<hex>"): a live blob under one stays, an unnamed file under
#     one goes; it never touches blobs/quarantine/, where fsck keeps what it
#     promised not to delete;
#   - the GC worker inside the server (gc.interval 1s, gc.grace 5s) removes
#     the files of a deleted tag's blobs without the CLI, and expires
#     abandoned upload sessions (uploads.expire_after 2s).
set -u -o pipefail
export BERTH_AUTO_KEY=1 # real accounts: usage is counted per account
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in curl jq sqlite3 openssl du; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

W=$E2E_WORK
A=$BERTH_TENANT/app
B=$BERTH_TENANT/other
X=$BERTH_TENANT/multi
ACCEPT="Accept: $MT_OCI_MANIFEST, $MT_OCI_INDEX, $MT_DOCKER_MANIFEST, $MT_DOCKER_LIST"
OFF_CONF=$W/gc-off.yml
printf 'gc:\n  interval: 0s\n' >"$OFF_CONF"
WORKER_CONF=$W/gc-worker.yml
# A grace of a few seconds: under CI's load (other tests beside this one)
# a push's blob uploads and its manifest PUT can be more than a second
# apart, and a one-second grace then takes the blobs first every time.
printf 'gc:\n  interval: 1s\n  grace: 5s\nuploads:\n  expire_after: 2s\n' >"$WORKER_CONF"
GC_N=0
GC_OUT=

# sq SQL: a query on the live meta.db (the server may hold the write lock).
sq() { sqlite3 -cmd '.timeout 10000' "$BERTH_DATA/meta.db" "$1"; }

# key_of DIGEST: the blob row's storage key (empty if no row).
key_of() { sq "SELECT storage_key FROM blobs WHERE digest = '$1'"; }

blobs_du() { du -sb "$BERTH_DATA/blobs" | cut -f1; }

# run_gc LABEL WANT_RC [gc args...]: `berthd gc` on the current data
# directory (the server may be running); stdout in $GC_OUT.
run_gc() {
	local label=$1 want=$2 rc t0
	shift 2
	GC_N=$((GC_N + 1))
	GC_OUT=$W/gc-$GC_N.out
	t0=$(date +%s%N)
	timeout 120 "$BERTHD" gc --data-dir "$BERTH_DATA" "$@" >"$GC_OUT" 2>"$W/gc-$GC_N.err"
	rc=$?
	sed 's/^/     | /' "$GC_OUT" | sed "s/$BERTH_TENANT/T/g" | head -n 60
	if [ "$rc" = "$want" ]; then
		ok "$label: berthd gc $* exits $rc ($((($(date +%s%N) - t0) / 1000000)) ms)"
	else
		fail "$label: berthd gc $* exits $rc, want $want" "$(head -c 2000 "$W/gc-$GC_N.err")"
	fi
}

# expect_line LABEL LINE: the gc output has exactly this line.
expect_line() {
	if grep -Fxq -- "$2" "$GC_OUT"; then
		ok "$1"
	else
		fail "$1: no output line '$2'"
	fi
}

# expect_no_match LABEL FIXED-STRING: no output line contains it.
expect_no_match() {
	if grep -Fq -- "$2" "$GC_OUT"; then
		fail "$1: unexpected line: $(grep -F -- "$2" "$GC_OUT" | head -n 2)"
	else
		ok "$1"
	fi
}

# expect_lines LABEL REGEX N: exactly N lines match REGEX (extended).
expect_lines() {
	expect_eq "$1" "$(grep -Ec -- "$2" "$GC_OUT")" "$3"
}

expect_true() {
	local label=$1
	shift
	if "$@"; then
		ok "$label"
	else
		fail "$label"
	fi
}

# summary T M MB L N NB O OB R RB P: the contract's summary line.
summary() {
	printf 'gc: removed %s tags, %s manifests (%s bytes), %s links, %s blobs (%s bytes), %s objects (%s bytes), %s orphans (%s bytes); %s objects pending\n' "$@"
}

# pull_ok REPO REF MANIFEST_FILE BLOB_FILE...: the manifest bytes and every
# blob come back byte-identical.
pull_ok() {
	local repo=$1 ref=$2 mf=$3 f
	shift 3
	req GET "/v2/$repo/manifests/$ref" -H "$ACCEPT"
	expect_status 200
	expect_body_file "$mf"
	for f in "$@"; do
		req GET "/v2/$repo/blobs/$(digest_of "$f")"
		expect_status 200
		expect_body_file "$f"
	done
}

gone_blob() {
	req GET "/v2/$1/blobs/$2"
	expect_status 404
	expect_error_code BLOB_UNKNOWN
}

gone_manifest() {
	req GET "/v2/$1/manifests/$2" -H "$ACCEPT"
	expect_status 404
	expect_error_code MANIFEST_UNKNOWN
}

# usage_field FIELD: from `berthd usage --account`.
USAGE_LINE=
read_usage() {
	USAGE_LINE=$(timeout 60 "$BERTHD" usage --account "$BERTH_ACCOUNT" --data-dir "$BERTH_DATA" 2>"$W/usage.err")
	printf '     | %s\n' "${USAGE_LINE//$BERTH_TENANT/T}"
}
usage_field() {
	local f
	for f in $USAGE_LINE; do
		case $f in "$1"=*) printf '%s\n' "${f#*=}"; return 0 ;; esac
	done
	printf '(none)\n'
}

# push_all REPO FILE...: push each file as a blob.
push_all() {
	local repo=$1 f
	shift
	for f in "$@"; do
		push_blob "$repo" "$f" || return 1
	done
}

sumsizes() {
	local t=0 f
	for f in "$@"; do t=$((t + $(size_of "$f"))); done
	printf '%s\n' "$t"
}

config_json() {
	printf '{"architecture":"amd64","os":"linux","config":{"Labels":{"berth.test":"%s"}},"rootfs":{"type":"layers","diff_ids":[]}}' "$2" >"$1"
}

T0=$SECONDS
berth_start --config "$OFF_CONF" || exit 1

# ================================================================ delete a tag
section "content: app:v1, app:v2, other:v1 sharing layers; app@digest untagged"
# app:v1   = cfg1 + L0 + L1 + L4     (L1, cfg1: only here; L4: also other:v1)
# app:v2   = cfg2 + L0 + L2
# other:v1 = cfg3 + L0 + L3 + L4
# app@M5   = cfg5 + L5               (pushed by digest, never tagged)
config_json "$W/cfg1" one
config_json "$W/cfg2" two
config_json "$W/cfg3" three
config_json "$W/cfg5" five
make_blob "$W/L0" 400000 gc-L0
make_blob "$W/L1" 300000 gc-L1
make_blob "$W/L2" 250000 gc-L2
make_blob "$W/L3" 150000 gc-L3
make_blob "$W/L4" 120000 gc-L4
make_blob "$W/L5" 90000 gc-L5
push_all "$A" "$W/cfg1" "$W/cfg2" "$W/cfg5" "$W/L0" "$W/L1" "$W/L2" "$W/L4" "$W/L5" && ok "app blobs pushed"
push_all "$B" "$W/cfg3" "$W/L3" && ok "other blobs pushed"
# The shared layers are mounted, not uploaded again (a re-upload would
# leave a duplicate object in the outbox, pending for the read grace).
for f in L0 L4; do
	req POST "/v2/$B/blobs/uploads/?mount=$(digest_of "$W/$f")&from=$A" -H 'Content-Length: 0'
	expect_status 201
done
make_manifest "$W/M1" "$W/cfg1" "$MT_OCI_CONFIG" "$W/L0" "$W/L1" "$W/L4"
make_manifest "$W/M2" "$W/cfg2" "$MT_OCI_CONFIG" "$W/L0" "$W/L2"
make_manifest "$W/M3" "$W/cfg3" "$MT_OCI_CONFIG" "$W/L0" "$W/L3" "$W/L4"
make_manifest "$W/M5" "$W/cfg5" "$MT_OCI_CONFIG" "$W/L5"
M1=$(digest_of "$W/M1")
M3=$(digest_of "$W/M3")
M5=$(digest_of "$W/M5")
push_manifest "$A" v1 "$W/M1"
expect_status 201
push_manifest "$A" v2 "$W/M2"
expect_status 201
push_manifest "$B" v1 "$W/M3"
expect_status 201
push_manifest "$A" "$M5" "$W/M5"
expect_status 201
D_CFG1=$(digest_of "$W/cfg1")
D_L1=$(digest_of "$W/L1")
D_L4=$(digest_of "$W/L4")
K_CFG1=$(key_of "$D_CFG1")
K_L1=$(key_of "$D_L1")
K_L4=$(key_of "$D_L4")
expect_match "storage key of cfg1 (own key per object)" "$K_CFG1" "^sha256/${D_CFG1:7:2}/${D_CFG1:7}\.[0-9a-f]{16}$"
expect_match "storage key of L1" "$K_L1" "^sha256/${D_L1:7:2}/${D_L1:7}\.[0-9a-f]{16}$"
expect_true "object files of cfg1, L1, L4 exist" \
	test -f "$BERTH_DATA/blobs/$K_CFG1" -a -f "$BERTH_DATA/blobs/$K_L1" -a -f "$BERTH_DATA/blobs/$K_L4"

section "usage before any deletion"
ALL_BLOBS=$(sumsizes "$W/cfg1" "$W/cfg2" "$W/cfg3" "$W/cfg5" "$W/L0" "$W/L1" "$W/L2" "$W/L3" "$W/L4" "$W/L5")
ALL_MANIFESTS=$(sumsizes "$W/M1" "$W/M2" "$W/M3" "$W/M5")
read_usage
expect_eq "usage: blob_bytes = every distinct blob once" "$(usage_field blob_bytes)" "$ALL_BLOBS"
expect_eq "usage: blobs" "$(usage_field blobs)" 10
expect_eq "usage: manifests" "$(usage_field manifests)" 4
expect_eq "usage: manifest_bytes" "$(usage_field manifest_bytes)" "$ALL_MANIFESTS"
expect_eq "usage: bytes = blob_bytes + manifest_bytes" "$(usage_field bytes)" $((ALL_BLOBS + ALL_MANIFESTS))
expect_eq "usage: repositories" "$(usage_field repositories)" 2
expect_eq "usage: quota" "$(usage_field quota)" none
req GET /v2/_berth/usage
expect_status 200
expect_json '[.account, .bytes, .blobs, .manifests, .repositories, .quota] | map(tostring) | join(" ")' \
	"$BERTH_ACCOUNT $((ALL_BLOBS + ALL_MANIFESTS)) 10 4 2 null"

section "delete tag app:v1; usage unchanged until GC"
req DELETE "/v2/$A/manifests/v1"
expect_status 202
req GET "/v2/$A/manifests/$M1" -H "$ACCEPT"
expect_status 200
read_usage
expect_eq "usage after the tag delete: nothing returned yet" "$(usage_field bytes)" $((ALL_BLOBS + ALL_MANIFESTS))

# What the collection must report, line by line.
S_M1=$(size_of "$W/M1")
S_CFG1=$(size_of "$W/cfg1")
S_L1=$(size_of "$W/L1")
cat >"$W/want-1" <<EOF
removed manifest $A@$M1 $S_M1 bytes
removed link $A@$D_CFG1
removed link $A@$D_L1
removed link $A@$D_L4
removed blob $D_CFG1 $S_CFG1 bytes
removed blob $D_L1 $S_L1 bytes
removed object $K_CFG1 $S_CFG1 bytes
removed object $K_L1 $S_L1 bytes
$(summary 0 1 "$S_M1" 3 2 $((S_CFG1 + S_L1)) 2 $((S_CFG1 + S_L1)) 0 0 0)
EOF

section "berthd gc --account of another account: nothing of this one"
OTHER_ACCOUNT=0146e9b57080961e2c83536300000001
"$BERTHD" account create --id "$OTHER_ACCOUNT" --data-dir "$BERTH_DATA" >/dev/null || fail "cannot create a second account"
run_gc "dry run for another account" 0 --dry-run --grace 0s --account "$OTHER_ACCOUNT"
expect_eq "dry run for another account: only the summary" "$(wc -l <"$GC_OUT")" 1
expect_line "dry run for another account: all zero" \
	"$(summary 0 0 0 0 0 0 0 0 0 0 0 | sed 's/^gc: removed /gc (dry run): would remove /')"
run_gc "gc for another account" 0 --grace 0s --account "$OTHER_ACCOUNT"
expect_no_match "gc for another account removed nothing of this one" "$BERTH_TENANT/"
req GET "/v2/$A/manifests/$M1" -H "$ACCEPT"
expect_status 200

section "berthd gc --dry-run --grace 0s, server running: reports, changes nothing"
sq .dump >"$W/dump-before"
(cd "$BERTH_DATA/blobs" && find . -type f -printf '%p %s\n' | sort) >"$W/files-before"
DU_BEFORE=$(blobs_du)
run_gc "dry run" 0 --dry-run --grace 0s
sed -e 's/^would remove /removed /' -e 's/^gc (dry run): would remove /gc: removed /' "$GC_OUT" | sort >"$W/dry-1"
# Compared in three parts, so that a report says which part differs.
for part in 'manifest|link|blob' 'object' 'summary'; do
	case $part in
	summary) re='^gc: ' ;;
	*) re="^removed ($part) " ;;
	esac
	if diff <(grep -E "$re" "$W/want-1" | sort) <(grep -E "$re" "$W/dry-1") >"$W/dry-1.diff"; then
		ok "dry run reports exactly what gc will remove ($part lines, as 'would remove')"
	else
		fail "dry run differs from the expected collection, $part lines (- want, + got)" \
			"$(sed "s/$BERTH_TENANT/T/g" "$W/dry-1.diff")"
	fi
done
expect_lines "dry run: every line says 'would remove'" '^(would remove |gc \(dry run\): would remove )' "$(wc -l <"$GC_OUT")"
sq .dump >"$W/dump-after"
(cd "$BERTH_DATA/blobs" && find . -type f -printf '%p %s\n' | sort) >"$W/files-after"
if cmp -s "$W/dump-before" "$W/dump-after"; then
	ok "dry run left meta.db unchanged (full dump identical)"
else
	fail "dry run changed meta.db" "$(diff "$W/dump-before" "$W/dump-after" | head -n 10)"
fi
if cmp -s "$W/files-before" "$W/files-after"; then
	ok "dry run left every blob file in place"
else
	fail "dry run changed the blob files" "$(diff "$W/files-before" "$W/files-after" | head -n 10)"
fi
req GET "/v2/$A/manifests/$M1" -H "$ACCEPT"
expect_status 200

section "berthd gc --grace 0s, server running"
run_gc "gc" 0 --grace 0s
sort "$GC_OUT" >"$W/got-1"
if diff <(sort "$W/want-1") "$W/got-1" >"$W/got-1.diff"; then
	ok "gc removed exactly the manifest, 3 links, 2 blobs, 2 objects"
else
	fail "gc report differs from the expected collection (- want, + got)" "$(sed "s/$BERTH_TENANT/T/g" "$W/got-1.diff")"
fi
expect_line "summary line" "$(summary 0 1 "$S_M1" 3 2 $((S_CFG1 + S_L1)) 2 $((S_CFG1 + S_L1)) 0 0 0)"
expect_true "object files of cfg1 and L1 are gone" test ! -e "$BERTH_DATA/blobs/$K_CFG1" -a ! -e "$BERTH_DATA/blobs/$K_L1"
expect_true "object file of L4 (still linked by other) stays" test -f "$BERTH_DATA/blobs/$K_L4"
DU_AFTER=$(blobs_du)
echo "     du -sb blobs/: $DU_BEFORE -> $DU_AFTER (collected objects: $((S_CFG1 + S_L1)) bytes)"
expect_true "du of blobs/ dropped by at least the collected sizes" test $((DU_BEFORE - DU_AFTER)) -ge $((S_CFG1 + S_L1))
expect_eq "blob rows of cfg1 and L1 gone" "$(sq "SELECT count(*) FROM blobs WHERE digest IN ('$D_CFG1', '$D_L1')")" 0
gone_manifest "$A" "$M1"
gone_blob "$A" "$D_CFG1"
gone_blob "$A" "$D_L1"
gone_blob "$A" "$D_L4"
section "what is still referenced pulls byte-identical"
pull_ok "$A" v2 "$W/M2" "$W/cfg2" "$W/L0" "$W/L2"
pull_ok "$B" v1 "$W/M3" "$W/cfg3" "$W/L0" "$W/L3" "$W/L4"
pull_ok "$A" "$M5" "$W/M5" "$W/cfg5" "$W/L5"
req GET "/v2/$A/tags/list"
expect_status 200
expect_json '.tags' '["v2"]'

section "a second gc finds nothing"
run_gc "gc again" 0 --grace 0s
expect_eq "second run: only the summary" "$(wc -l <"$GC_OUT")" 1
expect_line "second run: all zero" "$(summary 0 0 0 0 0 0 0 0 0 0 0)"

section "usage after GC removed the last links"
read_usage
B_AFTER=$((ALL_BLOBS - S_CFG1 - S_L1))
M_AFTER=$((ALL_MANIFESTS - S_M1))
expect_eq "usage: blob_bytes less cfg1 and L1 (L4 still counted once)" "$(usage_field blob_bytes)" "$B_AFTER"
expect_eq "usage: blobs" "$(usage_field blobs)" 8
expect_eq "usage: manifest_bytes less M1" "$(usage_field manifest_bytes)" "$M_AFTER"
expect_eq "usage: manifests" "$(usage_field manifests)" 3
expect_eq "usage: bytes" "$(usage_field bytes)" $((B_AFTER + M_AFTER))
req GET /v2/_berth/usage
expect_status 200
expect_json '[.bytes, .blobs, .blob_bytes, .manifests, .manifest_bytes] | map(tostring) | join(" ")' \
	"$((B_AFTER + M_AFTER)) 8 $B_AFTER 3 $M_AFTER"

section "deleting the last tag of other:v1: L0 stays (app:v2), L3 and L4 go"
req DELETE "/v2/$B/manifests/v1"
expect_status 202
D_L3=$(digest_of "$W/L3")
D_CFG3=$(digest_of "$W/cfg3")
K_L3=$(key_of "$D_L3")
run_gc "gc after deleting other:v1" 0 --grace 0s
S_M3=$(size_of "$W/M3")
S34=$(sumsizes "$W/cfg3" "$W/L3" "$W/L4")
expect_line "manifest other@M3 removed" "removed manifest $B@$M3 $S_M3 bytes"
expect_line "L4 blob removed now that its last link went" "removed blob $D_L4 $(size_of "$W/L4") bytes"
expect_line "L4 object removed" "removed object $K_L4 $(size_of "$W/L4") bytes"
expect_line "link other@L0 removed" "removed link $B@$(digest_of "$W/L0")"
expect_no_match "L0 blob stays" "removed blob $(digest_of "$W/L0")"
expect_line "summary" "$(summary 0 1 "$S_M3" 4 3 "$S34" 3 "$S34" 0 0 0)"
expect_true "object files of L3 and L4 gone" test ! -e "$BERTH_DATA/blobs/$K_L3" -a ! -e "$BERTH_DATA/blobs/$K_L4"
gone_blob "$B" "$D_CFG3"
pull_ok "$A" v2 "$W/M2" "$W/cfg2" "$W/L0" "$W/L2"
read_usage
expect_eq "usage: bytes after other:v1 went" "$(usage_field bytes)" $((B_AFTER - S34 + M_AFTER - S_M3))

# ================================================================ index
section "an index deleted by tag: its untagged children and their layers go"
# multi:v1 = index -> c1 (cfgA + LA + LX), c2 (cfgB + LB + LX), c3 (cfgC + LC + LX)
# c3 also has a tag of its own (multi:solo), so it and LX stay.
config_json "$W/cfgA" a
config_json "$W/cfgB" b
config_json "$W/cfgC" c
make_blob "$W/LA" 60000 gc-LA
make_blob "$W/LB" 70000 gc-LB
make_blob "$W/LC" 80000 gc-LC
make_blob "$W/LX" 110000 gc-LX
push_all "$X" "$W/cfgA" "$W/cfgB" "$W/cfgC" "$W/LA" "$W/LB" "$W/LC" "$W/LX" && ok "index blobs pushed"
make_manifest "$W/c1" "$W/cfgA" "$MT_OCI_CONFIG" "$W/LA" "$W/LX"
make_manifest "$W/c2" "$W/cfgB" "$MT_OCI_CONFIG" "$W/LB" "$W/LX"
make_manifest "$W/c3" "$W/cfgC" "$MT_OCI_CONFIG" "$W/LC" "$W/LX"
C1=$(digest_of "$W/c1")
C2=$(digest_of "$W/c2")
C3=$(digest_of "$W/c3")
push_manifest "$X" "$C1" "$W/c1"
expect_status 201
push_manifest "$X" "$C2" "$W/c2"
expect_status 201
push_manifest "$X" solo "$W/c3"
expect_status 201
jq -c -n --arg mt "$MT_OCI_INDEX" --arg m "$MT_OCI_MANIFEST" \
	--arg d1 "$C1" --argjson s1 "$(size_of "$W/c1")" --arg d2 "$C2" --argjson s2 "$(size_of "$W/c2")" \
	--arg d3 "$C3" --argjson s3 "$(size_of "$W/c3")" \
	'{schemaVersion: 2, mediaType: $mt, manifests: [
	  {mediaType: $m, digest: $d1, size: $s1, platform: {architecture: "amd64", os: "linux"}},
	  {mediaType: $m, digest: $d2, size: $s2, platform: {architecture: "arm64", os: "linux"}},
	  {mediaType: $m, digest: $d3, size: $s3, platform: {architecture: "s390x", os: "linux"}}]}' |
	tr -d '\n' >"$W/idx"
IDX=$(digest_of "$W/idx")
push_manifest "$X" v1 "$W/idx"
expect_status 201
GONE_FILES=()
GONE_DIGESTS=()
for f in cfgA cfgB LA LB; do
	GONE_DIGESTS+=("$(digest_of "$W/$f")")
	GONE_FILES+=("$(key_of "$(digest_of "$W/$f")")")
done
req DELETE "/v2/$X/manifests/v1"
expect_status 202
run_gc "dry run after deleting multi:v1" 0 --dry-run --grace 0s
expect_lines "dry run: would remove 3 manifests" '^would remove manifest ' 3
run_gc "gc after deleting multi:v1" 0 --grace 0s
S_IDX=$(size_of "$W/idx")
S_C12=$(sumsizes "$W/c1" "$W/c2")
S_AB=$(sumsizes "$W/cfgA" "$W/cfgB" "$W/LA" "$W/LB")
expect_line "index removed" "removed manifest $X@$IDX $S_IDX bytes"
expect_line "child c1 removed" "removed manifest $X@$C1 $(size_of "$W/c1") bytes"
expect_line "child c2 removed" "removed manifest $X@$C2 $(size_of "$W/c2") bytes"
expect_no_match "child c3 (tagged solo) stays" "$C3"
for d in "${GONE_DIGESTS[@]}"; do
	expect_line "link $d removed" "removed link $X@$d"
done
expect_no_match "LX (still in c3) keeps its link" "$(digest_of "$W/LX")"
expect_line "summary" "$(summary 0 3 $((S_IDX + S_C12)) 4 4 "$S_AB" 4 "$S_AB" 0 0 0)"
for k in "${GONE_FILES[@]}"; do
	expect_true "object $k gone" test ! -e "$BERTH_DATA/blobs/$k"
done
gone_manifest "$X" "$IDX"
gone_manifest "$X" "$C1"
gone_manifest "$X" "$C2"
for d in "${GONE_DIGESTS[@]}"; do
	gone_blob "$X" "$d"
done
pull_ok "$X" solo "$W/c3" "$W/cfgC" "$W/LC" "$W/LX"

# ================================================================ orphans
section "what fsck --repair quarantined is not an orphan"
# fsck --repair moves what it distrusts to blobs/quarantine/ (never
# deleting it: a corrupt copy to inspect, an orphan it can put back if an
# older meta.db is restored); no orphan scan may take it.
make_blob "$W/quar" 4444 gc-quarantined
D_Q=$(digest_of "$W/quar")
mkdir -p "$BERTH_DATA/blobs/sha256/${D_Q:7:2}"
cp "$W/quar" "$BERTH_DATA/blobs/sha256/${D_Q:7:2}/${D_Q:7}"
touch -d '3 hours ago' "$BERTH_DATA/blobs/sha256/${D_Q:7:2}/${D_Q:7}"
timeout 120 "$BERTHD" fsck --repair --data-dir "$BERTH_DATA" >"$W/fsck-q.out" 2>&1
sed 's/^/     | /' "$W/fsck-q.out" | head -n 5
K_Q="quarantine/orphan/sha256/${D_Q:7}/1"
expect_true "fsck --repair quarantined the old orphan as $K_Q" test -f "$BERTH_DATA/blobs/$K_Q"

section "an object stored but never linked: collected after the grace, never before"
make_blob "$W/orph" 33333 gc-orphan
make_blob "$W/orph2" 22222 gc-orphan-2
D_O=$(digest_of "$W/orph")
D_O2=$(digest_of "$W/orph2")
K_O="sha256/${D_O:7:2}/${D_O:7}.$(openssl rand -hex 8)"
K_O2="sha256/${D_O2:7:2}/${D_O2:7}.$(openssl rand -hex 8)"
mkdir -p "$BERTH_DATA/blobs/${K_O%/*}" "$BERTH_DATA/blobs/${K_O2%/*}"
cp "$W/orph" "$BERTH_DATA/blobs/$K_O"
cp "$W/orph2" "$BERTH_DATA/blobs/$K_O2"
# An old modification time, but the file was just created (fresh ctime):
# still young.
touch -d '3 hours ago' "$BERTH_DATA/blobs/$K_O2"
# A store from before schema 6 keeps objects under "sha256/ab/<hex>": a
# live blob moved to its old key (the row says so) is no orphan, an
# unnamed file under an old-style key is one.
D_L2=$(digest_of "$W/L2")
K_L2=$(key_of "$D_L2")
K_L2_OLD="sha256/${D_L2:7:2}/${D_L2:7}"
berth_stop
mv "$BERTH_DATA/blobs/$K_L2" "$BERTH_DATA/blobs/$K_L2_OLD"
sq "UPDATE blobs SET storage_key = '$K_L2_OLD' WHERE digest = '$D_L2'"
berth_restart || exit 1
make_blob "$W/orph3" 11111 gc-orphan-3
D_O3=$(digest_of "$W/orph3")
K_O3="sha256/${D_O3:7:2}/${D_O3:7}"
mkdir -p "$BERTH_DATA/blobs/${K_O3%/*}"
cp "$W/orph3" "$BERTH_DATA/blobs/$K_O3"
expect_eq "no row names the planted keys" \
	"$(sq "SELECT count(*) FROM blobs WHERE storage_key IN ('$K_O', '$K_O2')") $(sq "SELECT count(*) FROM gc_outbox WHERE storage_key IN ('$K_O', '$K_O2')")" "0 0"
run_gc "gc --grace 5s right away" 0 --grace 5s
expect_no_match "fresh orphan not collected" "$K_O"
expect_no_match "orphan with an old mtime but a fresh ctime not collected" "$K_O2"
expect_no_match "fresh orphan under an old-style key not collected" "$K_O3 "
expect_no_match "nothing in quarantine/ is touched (first run)" "quarantine/"
expect_true "both orphan files still there" test -f "$BERTH_DATA/blobs/$K_O" -a -f "$BERTH_DATA/blobs/$K_O2"
CT=$(stat -c %Z "$BERTH_DATA/blobs/$K_O" "$BERTH_DATA/blobs/$K_O2" "$BERTH_DATA/blobs/$K_O3" "$BERTH_DATA/blobs/$K_Q" 2>/dev/null | sort -n | tail -n 1)
while [ "$(date +%s)" -le $((CT + 6)) ]; do sleep 0.2; done
run_gc "dry run past the grace" 0 --dry-run --grace 5s
expect_line "dry run: would remove orphan" "would remove orphan $K_O 33333 bytes"
expect_true "dry run left the orphan" test -f "$BERTH_DATA/blobs/$K_O"
run_gc "gc --grace 5s past the grace" 0 --grace 5s
expect_line "orphan removed" "removed orphan $K_O 33333 bytes"
expect_line "second orphan removed" "removed orphan $K_O2 22222 bytes"
expect_line "orphan under an old-style key removed" "removed orphan $K_O3 11111 bytes"
expect_no_match "a live blob under its old-style key is no orphan" "$K_L2_OLD "
expect_no_match "nothing in quarantine/ is touched" "quarantine/"
expect_line "summary counts the orphans" "$(summary 0 0 0 0 0 0 0 0 3 66666 0)"
expect_true "orphan files gone" test ! -e "$BERTH_DATA/blobs/$K_O" -a ! -e "$BERTH_DATA/blobs/$K_O2" -a ! -e "$BERTH_DATA/blobs/$K_O3"
expect_true "the live blob's file under its old-style key stays" test -f "$BERTH_DATA/blobs/$K_L2_OLD"
expect_true "the quarantined file stays" test -f "$BERTH_DATA/blobs/$K_Q"
pull_ok "$A" v2 "$W/M2" "$W/cfg2" "$W/L0" "$W/L2"
pull_ok "$A" "$M5" "$W/M5" "$W/cfg5" "$W/L5"
pull_ok "$X" solo "$W/c3" "$W/cfgC" "$W/LC" "$W/LX"

section "fsck after all that: clean"
timeout 120 "$BERTHD" fsck --data-dir "$BERTH_DATA" >"$W/fsck.out" 2>&1
rc=$?
sed 's/^/     | /' "$W/fsck.out" | head -n 20
expect_eq "fsck exit status" "$rc" 0
berth_stop

# ================================================================ worker
section "the GC worker inside the server (interval 1s, grace 5s) collects without the CLI"
berth_start --config "$WORKER_CONF" || exit 1
config_json "$W/cfgW1" w1
config_json "$W/cfgW2" w2
make_blob "$W/LW1" 200000 gc-LW1
make_blob "$W/LW2" 210000 gc-LW2
make_blob "$W/LWS" 220000 gc-LWS
make_manifest "$W/MW1" "$W/cfgW1" "$MT_OCI_CONFIG" "$W/LWS" "$W/LW1"
make_manifest "$W/MW2" "$W/cfgW2" "$MT_OCI_CONFIG" "$W/LWS" "$W/LW2"
# With a short grace a link not yet referenced may be collected before the
# manifest PUT on a slow machine (then the PUT fails cleanly with
# MANIFEST_BLOB_UNKNOWN): push again, bounded.
push_image_retry() {
	local repo=$1 tag=$2 mf=$3 try
	shift 3
	for try in 1 2 3 4 5 6; do
		local f all=1
		for f in "$@"; do
			req POST "/v2/$repo/blobs/uploads/?digest=$(digest_of "$f")" \
				-H 'Content-Type: application/octet-stream' --data-binary "@$f"
			[ "$REQ_STATUS" = 201 ] || all=0
		done
		push_manifest "$repo" "$tag" "$mf"
		if [ "$all" = 1 ] && [ "$REQ_STATUS" = 201 ]; then
			ok "$repo:$tag pushed (attempt $try)"
			return 0
		fi
		echo "     attempt $try: manifest PUT $REQ_STATUS $(head -c 200 "$REQ_BODY_FILE")"
	done
	fail "$repo:$tag could not be pushed in 6 attempts"
	return 1
}
WR=$BERTH_TENANT/worker
push_image_retry "$WR" v1 "$W/MW1" "$W/cfgW1" "$W/LWS" "$W/LW1"
push_image_retry "$WR" v2 "$W/MW2" "$W/cfgW2" "$W/LWS" "$W/LW2"
# Let the links of both manifests age past the grace: nothing referenced
# may go.
sleep 7
pull_ok "$WR" v1 "$W/MW1" "$W/cfgW1" "$W/LWS" "$W/LW1"
pull_ok "$WR" v2 "$W/MW2" "$W/cfgW2" "$W/LWS" "$W/LW2"
MW1=$(digest_of "$W/MW1")
D_W1C=$(digest_of "$W/cfgW1")
D_W1L=$(digest_of "$W/LW1")
K_W1C=$(key_of "$D_W1C")
K_W1L=$(key_of "$D_W1L")
K_WS=$(key_of "$(digest_of "$W/LWS")")
expect_true "object files of worker:v1 exist" test -n "$K_W1C" -a -n "$K_W1L" -a -f "$BERTH_DATA/blobs/$K_W1C" -a -f "$BERTH_DATA/blobs/$K_W1L"
req DELETE "/v2/$WR/manifests/v1"
expect_status 202
t_del=$(date +%s%N)
gone=0
while [ $((($(date +%s%N) - t_del) / 1000000)) -lt 30000 ]; do
	if [ ! -e "$BERTH_DATA/blobs/$K_W1C" ] && [ ! -e "$BERTH_DATA/blobs/$K_W1L" ]; then
		gone=1
		break
	fi
	sleep 0.25
done
waited=$((($(date +%s%N) - t_del) / 1000000))
if [ "$gone" = 1 ]; then
	ok "the worker removed the object files of worker:v1 ${waited} ms after the tag delete"
else
	fail "the worker did not remove the object files of worker:v1 within 30 s" \
		"blob rows left: $(sq "SELECT count(*) FROM blobs WHERE digest IN ('$D_W1C', '$D_W1L')")" \
		"queues: manifest $(sq 'SELECT count(*) FROM gc_manifest_queue') link $(sq 'SELECT count(*) FROM gc_link_queue') blob $(sq 'SELECT count(*) FROM gc_blob_queue') outbox $(sq 'SELECT count(*) FROM gc_outbox')"
fi
expect_eq "blob rows of worker:v1's own blobs gone" "$(sq "SELECT count(*) FROM blobs WHERE digest IN ('$D_W1C', '$D_W1L')")" 0
gone_manifest "$WR" "$MW1"
gone_blob "$WR" "$D_W1C"
expect_true "shared layer's object stays" test -f "$BERTH_DATA/blobs/$K_WS"
pull_ok "$WR" v2 "$W/MW2" "$W/cfgW2" "$W/LWS" "$W/LW2"

section "the worker also expires abandoned upload sessions (uploads.expire_after 2s)"
req POST "/v2/$WR/blobs/uploads/" -H 'Content-Length: 0'
expect_status 202
SESS_LOC=$(hdr Location)
head -c 5000 /dev/urandom >"$W/sess-part"
req PATCH "$SESS_LOC" -H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-4999' --data-binary "@$W/sess-part"
expect_status 202
SESS_LOC=$(hdr Location)
SESS_ID=${SESS_LOC%%\?*}
SESS_ID=${SESS_ID##*/}
t_s=$SECONDS
while [ $((SECONDS - t_s)) -lt 30 ]; do
	[ "$(sq "SELECT count(*) FROM uploads WHERE id = '$SESS_ID'")" = 0 ] && [ ! -e "$BERTH_DATA/uploads/$SESS_ID" ] && break
	sleep 0.5
done
expect_eq "abandoned session row expired ($((SECONDS - t_s)) s)" "$(sq "SELECT count(*) FROM uploads WHERE id = '$SESS_ID'")" 0
expect_true "its data removed" test ! -e "$BERTH_DATA/uploads/$SESS_ID"
req GET "$SESS_LOC"
expect_status 404
expect_error_code BLOB_UPLOAD_UNKNOWN

read_usage
S_W2=$(sumsizes "$W/cfgW2" "$W/LWS" "$W/LW2")
expect_eq "usage after the worker collected: worker:v2 only" "$(usage_field bytes)" $((S_W2 + $(size_of "$W/MW2")))
berth_stop
expect_eq "clean exit of the server with the worker" "$BERTH_EXIT" 0

echo "total time $((SECONDS - T0)) s"
berth_done
