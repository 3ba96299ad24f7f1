#!/usr/bin/env bash
# Online GC racing pushes (issue 9).  berthd runs its GC worker continuously
# (gc.interval 1s, gc.grace 1s) while, for a bounded time (GC_RACE_SECONDS,
# default 60):
#   - 4 skopeo pushers copy freshly generated OCI layouts (a base layer
#     common to every image, one of 3 shared "mid" layers, a layer and a
#     config of their own) to 3 shared repositories;
#   - 4 curl pushers push the same kind of images blob by blob, each blob
#     one of: HEAD then skip or single-request POST?digest=, POST + PUT
#     monolithic, POST + 2 PATCH + PUT chunked; then the manifest by tag,
#     or by digest only every 5th time (2nd, 7th, ...);
#   - `berthd gc --grace 1s` runs every 2 s beside the worker;
#   - 2 deleters delete random acknowledged tags and, a third of the time,
#     push the same manifest to the same tag again (at once, or after
#     1-2 s when GC may be taking its blobs).
# Every manifest PUT answered 201 (for skopeo: a successful copy) is
# recorded.  Afterwards, with the worker still running, once the grace
# period and a few passes are over:
#   - every acknowledged image whose tag is still there (or that was pushed
#     by digest) pulls completely, manifest and blobs verified against their
#     digests; no acknowledged tag vanished without a DELETE; a manifest
#     whose tag was deleted is gone; two images pull with skopeo into dir:
#     layouts whose blobs are re-hashed;
#   - nothing unreferenced older than the grace remains: no blob row without
#     a link, no unlisted link past the grace, no due queue or outbox row,
#     no file under blobs/ that no row names, no row without its file
#     (gc_check.sh), no untagged manifest that was not pushed by digest;
#   - berthd usage equals a recount of what the account holds;
#   - berthd fsck reports nothing missing and exits 0.
# A manifest PUT may fail with MANIFEST_BLOB_UNKNOWN when its blobs' links
# were collected first (a 1 s grace on a loaded machine): that push was not
# acknowledged, and the test only requires enough acknowledged pushes.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/clients_lib.sh"
clients_private_cache "$0" "$@"
BERTH_OPEN=1 # authentication is covered by test_auth_*; these drive clients without it
# ...but the account exists, so that its usage is kept (berthd usage).
BERTH_AUTO_KEY=1
. "$HERE/lib.sh"
. "$HERE/gc_check.sh"

T_START=$SECONDS
clients_need skopeo curl jq sqlite3 sha256sum gzip openssl
DURATION=${GC_RACE_SECONDS:-60}
GRACE_MS=1000
RC=$E2E_TMP/race
mkdir -p "$RC/shared"
CONF=$RC/gc.yml
printf 'gc:\n  interval: 1s\n  grace: 1s\n' >"$CONF"
LEDGER=$RC/acked      # "repo ref digest manifest-path who", one per 201
DELLOG=$RC/deletions  # "repo tag status"
: >"$LEDGER"
: >"$DELLOG"
: >"$RC/push-failures"
: >"$RC/repush"

section "setup"
berth_start --config "$CONF" || exit 1
clients_setup
echo "registry $BERTH_URL, private blob-info cache: ${BERTH_E2E_PRIVATE_CACHE:-?}, load ${DURATION}s"
MT_M=$MT_OCI_MANIFEST

# gen_layer OUT BYTES: a gzip layer of BYTES random bytes; prints
# "digest size diffid".
gen_layer() {
	local out=$1 raw=$1.raw diffid d
	head -c "$2" /dev/urandom >"$raw"
	diffid=$(sha256sum <"$raw")
	gzip -n -1 -c "$raw" >"$out"
	rm -f "$raw"
	d=$(sha256sum <"$out")
	printf 'sha256:%s %s sha256:%s\n' "${d%% *}" "$(stat -c %s "$out")" "${diffid%% *}"
}

read -r BASE_D BASE_S BASE_ID < <(gen_layer "$RC/shared/base" 300000)
MID_D=() MID_S=() MID_ID=()
for i in 0 1 2; do
	read -r d s id < <(gen_layer "$RC/shared/mid$i" $((40000 + i * 10000)))
	MID_D+=("$d") MID_S+=("$s") MID_ID+=("$id")
done
ok "shared layers generated (base ${BASE_S} bytes, 3 mid layers)"
REPOS=("$NS/race/r0" "$NS/race/r1" "$NS/race/r2")

layer_json() { printf '{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}' "$1" "$2"; }

# image_json OUT_MANIFEST OUT_CONFIG LABEL MID UNIQ_D UNIQ_S UNIQ_ID: write
# the config and the manifest (base, mid, own layer); prints the manifest
# digest.
image_json() {
	local mf=$1 cf=$2 label=$3 mid=$4 cd cs d
	printf '{"architecture":"amd64","os":"linux","config":{"Labels":{"berth.race":"%s"}},"rootfs":{"type":"layers","diff_ids":["%s","%s","%s"]}}' \
		"$label" "$BASE_ID" "${MID_ID[$mid]}" "$7" >"$cf"
	cd=$(sha256sum <"$cf")
	cd=sha256:${cd%% *}
	cs=$(stat -c %s "$cf")
	printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"%s","digest":"%s","size":%s},"layers":[%s,%s,%s]}' \
		"$MT_M" "$MT_OCI_CONFIG" "$cd" "$cs" "$(layer_json "$BASE_D" "$BASE_S")" \
		"$(layer_json "${MID_D[$mid]}" "${MID_S[$mid]}")" "$(layer_json "$5" "$6")" >"$mf"
	d=$(sha256sum <"$mf")
	printf 'sha256:%s\n' "${d%% *}"
}

now_s() { date +%s; }

# ---------------------------------------------------------------- skopeo
skopeo_pusher() {
	local p=$1 iter=0 repo tag d mid ud us uid md cd
	while [ "$(now_s)" -lt "$END" ]; do
		iter=$((iter + 1))
		repo=${REPOS[$(((p + iter) % 3))]}
		tag=s$p-$iter
		mid=$(((p * 7 + iter) % 3))
		d=$RC/s$p-$iter
		mkdir -p "$d/blobs/sha256"
		printf '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
		ln "$RC/shared/base" "$d/blobs/sha256/${BASE_D#sha256:}"
		ln "$RC/shared/mid$mid" "$d/blobs/sha256/${MID_D[$mid]#sha256:}"
		read -r ud us uid < <(gen_layer "$d/own" $((4096 + RANDOM % 60000)))
		mv "$d/own" "$d/blobs/sha256/${ud#sha256:}"
		md=$(image_json "$d/m" "$d/c" "$tag" "$mid" "$ud" "$us" "$uid")
		cd=$(sha256sum <"$d/c")
		mv "$d/c" "$d/blobs/sha256/${cd%% *}"
		mv "$d/m" "$d/blobs/sha256/${md#sha256:}"
		printf '{"schemaVersion":2,"manifests":[{"mediaType":"%s","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
			"$MT_M" "$md" "$(stat -c %s "$d/blobs/sha256/${md#sha256:}")" "$tag" >"$d/index.json"
		if timeout 120 "${SK[@]}" copy --retry-times 0 "${SK_DST[@]}" --digestfile "$d.digest" \
			"oci:$d:$tag" "docker://$REGISTRY/$repo:$tag" >"$d.log" 2>&1; then
			printf '%s %s %s %s skopeo\n' "$repo" "$tag" "$(cat "$d.digest")" "$d/blobs/sha256/${md#sha256:}" >>"$LEDGER"
			[ "$(cat "$d.digest")" = "$md" ] || echo "skopeo $repo:$tag pushed $(cat "$d.digest"), generated $md" >>"$RC/notes"
		else
			printf 'skopeo %s:%s: %s\n' "$repo" "$tag" "$(tail -n 1 "$d.log" | cut -c1-300)" >>"$RC/push-failures"
		fi
	done
}

# ---------------------------------------------------------------- curl
# cu METHOD URL [curl args...]: sets CODE and LOC (Location, as a URL).
cu() {
	local m=$1 url=$2 l
	shift 2
	local -a mf=(-X "$m")
	[ "$m" = HEAD ] && mf=(-I)
	: >"$H"
	CODE=$(curl -s --max-time 60 "${mf[@]}" -D "$H" -o /dev/null -w '%{http_code}' "$@" "$url" 2>/dev/null)
	LOC=
	while IFS= read -r l; do
		l=${l%$'\r'}
		case ${l,,} in location:*) LOC=${l#*:} ;; esac
	done <"$H"
	LOC=${LOC# }
	case $LOC in /*) LOC=$BERTH_URL$LOC ;; esac
}

with_digest() { case $1 in *\?*) printf '%s&digest=%s\n' "$1" "$2" ;; *) printf '%s?digest=%s\n' "$1" "$2" ;; esac; }

# split_parts FILE: FILE.p1 and FILE.p2 (its two halves) and FILE.len (its
# size), made before the uploads so that the upload phase forks only curl.
split_parts() {
	local size half
	size=$(stat -c %s "$1")
	half=$((size / 2))
	head -c "$half" "$1" >"$1.p1"
	tail -c +$((half + 1)) "$1" >"$1.p2"
	printf '%s\n' "$size" >"$1.len"
}

# prepare REPO FILE DIGEST MODE: the steps of an upload that create no
# link yet; appends the step that completes it (and links the blob) to
# FINAL, a curl argument list.  MODE 0: HEAD, and if absent a single POST
# ?digest=; 1: POST now, PUT with the body last; 2: POST and 2 PATCHes now
# (FILE split by split_parts), PUT without a body last; 3: a single POST
# ?digest= last.  Returns 1 if a step failed.
FINAL=()
final_step() {
	[ ${#FINAL[@]} -gt 0 ] && FINAL+=(--next)
	FINAL+=(-o /dev/null -w '%{http_code}\n' "$@")
}
prepare() {
	local repo=$1 f=$2 dg=$3 mode=$4 size half
	case $mode in
	0 | 3)
		if [ "$mode" = 0 ]; then
			cu HEAD "$BERTH_URL/v2/$repo/blobs/$dg"
			[ "$CODE" = 200 ] && return 0
		fi
		final_step -X POST -H 'Content-Type: application/octet-stream' --data-binary "@$f" \
			"$BERTH_URL/v2/$repo/blobs/uploads/?digest=$dg"
		;;
	1)
		cu POST "$BERTH_URL/v2/$repo/blobs/uploads/" -H 'Content-Length: 0'
		[ "$CODE" = 202 ] || return 1
		final_step -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$f" "$(with_digest "$LOC" "$dg")"
		;;
	2)
		read -r size <"$f.len"
		half=$((size / 2))
		cu POST "$BERTH_URL/v2/$repo/blobs/uploads/" -H 'Content-Length: 0'
		[ "$CODE" = 202 ] || return 1
		cu PATCH "$LOC" -H 'Content-Type: application/octet-stream' -H "Content-Range: 0-$((half - 1))" --data-binary "@$f.p1"
		[ "$CODE" = 202 ] || return 1
		cu PATCH "$LOC" -H 'Content-Type: application/octet-stream' -H "Content-Range: $half-$((size - 1))" --data-binary "@$f.p2"
		[ "$CODE" = 202 ] || return 1
		final_step -X PUT -H 'Content-Length: 0' "$(with_digest "$LOC" "$dg")"
		;;
	esac
	return 0
}

# Like a real client: content made first; upload sessions opened and
# chunks sent (no link yet); then the completing requests of every blob and
# the manifest PUT go in one curl run on one connection (curl --next), so
# that the window between a new link and the manifest that lists it stays
# short even on a loaded machine (with a 1 s grace, a window longer than a
# second loses the link to the collector, as it should).  The shared layers
# are HEADed and skipped, or uploaded monolithic or chunked; the config in
# one POST; the image's own layer monolithic or chunked.
curl_pusher() {
	local p=$1 iter=0 repo tag d mid ud us uid md cd ref mode f dg err codes code n bad
	H=$RC/c$p.hdr
	while [ "$(now_s)" -lt "$END" ]; do
		iter=$((iter + 1))
		repo=${REPOS[$(((p + iter + 1) % 3))]}
		tag=c$p-$iter
		mid=$(((p * 5 + iter) % 3))
		d=$RC/c$p-$iter
		mkdir -p "$d"
		read -r ud us uid < <(gen_layer "$d/own" $((4096 + RANDOM % 60000)))
		split_parts "$d/own"
		md=$(image_json "$d/m" "$d/c" "$tag" "$mid" "$ud" "$us" "$uid")
		cd=$(sha256sum <"$d/c")
		FINAL=()
		for f in "0:$RC/shared/base:$BASE_D" "1:$RC/shared/mid$mid:${MID_D[$mid]}" "3:$d/c:sha256:${cd%% *}" "2:$d/own:$ud"; do
			mode=${f%%:*}
			f=${f#*:}
			dg=${f#*:}
			f=${f%%:*}
			case $mode in
			0 | 1) mode=$(((p + iter + mode) % 3)) ;;
			2) mode=$((1 + (p + iter) % 2)) ;;
			esac
			if ! prepare "$repo" "$f" "$dg" "$mode"; then
				printf 'curl %s:%s: blob %s mode %s: status %s\n' "$repo" "$tag" "$dg" "$mode" "$CODE" >>"$RC/push-failures"
				continue 2
			fi
		done
		ref=$tag
		[ $((iter % 5)) = 2 ] && ref=$md
		[ ${#FINAL[@]} -gt 0 ] && FINAL+=(--next)
		FINAL+=(-o "$H.body" -w '%{http_code}\n' -X PUT -H "Content-Type: $MT_M" --data-binary "@$d/m"
			"$BERTH_URL/v2/$repo/manifests/$ref")
		codes=$(curl -s --max-time 60 "${FINAL[@]}" 2>/dev/null)
		code=${codes##*$'\n'}
		n=0 bad=
		while read -r c; do
			n=$((n + 1))
			[ "$c" = 201 ] || bad+=" $c"
		done <<<"$codes"
		# An acknowledged manifest counts whatever the blob steps said.
		if [ "$code" = 201 ]; then
			[ "$ref" = "$md" ] && ref=-
			printf '%s %s %s %s curl\n' "$repo" "$ref" "$md" "$d/m" >>"$LEDGER"
			[ -z "$bad" ] || printf 'curl %s:%s: final steps %s, yet the manifest PUT 201\n' "$repo" "$tag" "${codes//$'\n'/ }" >>"$RC/push-failures"
		else
			err=
			read -r -n 400 err <"$H.body"
			printf 'curl %s:%s: final steps %s, manifest PUT %s %s\n' "$repo" "$tag" "${codes//$'\n'/ }" "$code" "$err" >>"$RC/push-failures"
		fi
	done
}

# ---------------------------------------------------------------- deleters
deleter() {
	local k=$1 n line repo tag digest path who code
	RANDOM=$((k * 7919 + $$))
	while [ "$(now_s)" -lt "$END" ]; do
		sleep "0.$((2 + RANDOM % 4))"
		n=$(wc -l <"$LEDGER")
		[ "$n" -gt 0 ] || continue
		line=$(sed -n "$((1 + RANDOM % n))p" "$LEDGER")
		read -r repo tag digest path who <<<"$line"
		if [ -z "$tag" ] || [ "$tag" = - ]; then continue; fi
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X DELETE "$BERTH_URL/v2/$repo/manifests/$tag")
		printf '%s %s %s\n' "$repo" "$tag" "$code" >>"$DELLOG"
		if [ "$code" = 202 ] && [ $((RANDOM % 3)) = 0 ]; then
			[ $((RANDOM % 2)) = 0 ] && sleep "1.$((RANDOM % 10))"
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -X PUT -H "Content-Type: $MT_M" \
				--data-binary "@$path" "$BERTH_URL/v2/$repo/manifests/$tag")
			[ "$code" = 201 ] && printf '%s %s %s %s repush\n' "$repo" "$tag" "$digest" "$path" >>"$LEDGER"
			printf '%s %s %s\n' "$repo" "$tag" "$code" >>"$RC/repush"
		fi
	done
}

# ---------------------------------------------------------------- load
section "load: 4 skopeo + 4 curl pushers, 2 deleters, GC worker every 1 s (grace 1 s), ${DURATION}s"
for f in "$RC/shared/base" "$RC/shared/mid0" "$RC/shared/mid1" "$RC/shared/mid2"; do
	split_parts "$f"
done
END=$(($(now_s) + DURATION))
T_LOAD=$SECONDS
JOBS=()
for p in 1 2 3 4; do
	skopeo_pusher "$p" &
	JOBS+=($!)
	curl_pusher "$p" &
	JOBS+=($!)
done
for k in 1 2; do
	deleter "$k" &
	JOBS+=($!)
done
# An operator's `berthd gc` now and then, a second collector beside the
# worker on the same queues and outbox.
(
	n=0
	while [ "$(now_s)" -lt "$END" ] && [ "$n" -lt 30 ]; do
		n=$((n + 1))
		sleep 2
		timeout 120 "$BERTHD" gc --grace 1s --data-dir "$BERTH_DATA" >"$RC/cli-$n.out" 2>"$RC/cli-$n.err"
		printf '%s %s\n' "$n" "$?" >>"$RC/cli-status"
	done
) &
JOBS+=($!)
for j in "${JOBS[@]}"; do
	wait "$j"
done
echo "load ran $((SECONDS - T_LOAD)) s"
N_SK=$(grep -c ' skopeo$' "$LEDGER")
N_CU=$(grep -c ' curl$' "$LEDGER")
N_CU_DIGEST=$(awk '$2 == "-"' "$LEDGER" | wc -l)
N_DEL=$(awk '$3 == 202' "$DELLOG" | wc -l)
N_REPUSH=$(awk '$3 == 201' "$RC/repush" | wc -l)
echo "acknowledged: skopeo $N_SK, curl $N_CU ($N_CU_DIGEST by digest only), re-pushes $N_REPUSH of $(wc -l <"$RC/repush");" \
	"tag deletes 202: $N_DEL of $(wc -l <"$DELLOG"); push failures: $(wc -l <"$RC/push-failures")"
if [ -s "$RC/push-failures" ]; then
	echo "push failures by kind:"
	sed -E 's/^(\S+) \S+:\S+: /\1 /; s/sha256:[0-9a-f]{64}/sha256:.../g; s/^skopeo time="[^"]*" /skopeo /' "$RC/push-failures" |
		cut -c1-300 | sort | uniq -c | sort -rn | head -n 8
fi
[ -s "$RC/notes" ] && sed 's/^/note: /' "$RC/notes"
expect_true() {
	local label=$1
	shift
	if "$@"; then ok "$label"; else fail "$label"; fi
}
expect_true "skopeo pushes acknowledged: $N_SK (want >= 4)" test "$N_SK" -ge 4
expect_true "curl pushes acknowledged: $N_CU (want >= 4)" test "$N_CU" -ge 4
# Floors that keep the test meaningful on a loaded 2-core machine (where a
# fork can take a second); the counts are printed above.
expect_true "tag deletes answered 202: $N_DEL (want >= 5)" test "$N_DEL" -ge 5
N_CLI=$(wc -l <"$RC/cli-status" 2>/dev/null || echo 0)
expect_true "berthd gc ran $N_CLI times beside the worker" test "$N_CLI" -ge 3
expect_eq "every berthd gc run beside the worker exited 0" "$(awk '$2 != 0' "$RC/cli-status" 2>/dev/null | wc -l)" 0
awk '$2 != 0' "$RC/cli-status" 2>/dev/null | while read -r n rc; do
	echo "     run $n exited $rc: $(head -c 300 "$RC/cli-$n.err")"
done
echo "     removed by the CLI runs: $(cat "$RC"/cli-*.out 2>/dev/null | grep -c '^removed ') items; summaries: $(grep -h '^gc: ' "$RC"/cli-*.out 2>/dev/null | grep -vc 'removed 0 tags, 0 manifests (0 bytes), 0 links, 0 blobs (0 bytes), 0 objects (0 bytes), 0 orphans') non-empty"
bad_lines=$(cat "$RC"/cli-*.out 2>/dev/null | grep -Evc '^(removed (manifest|link|blob|object|orphan|tag) |gc: removed )')
expect_eq "every line of those runs has the contract's form" "$bad_lines" 0
expect_eq "skopeo pushed the manifests it was given" "$(grep -c '^skopeo' "$RC/notes" 2>/dev/null || echo 0)" 0
bad5xx=$(grep -Ec '^curl .*( 5[0-9][0-9]| 000)( |,|$)' "$RC/push-failures")
expect_eq "no curl push step answered 5xx or dropped the connection" "$bad5xx" 0
if grep -q 'status=5[0-9][0-9]' "$BERTH_LOG"; then
	fail "server log has 5xx answers" "$(grep 'status=5[0-9][0-9]' "$BERTH_LOG" | head -n 3)"
else
	ok "no 5xx answer in the server log"
fi

# ---------------------------------------------------------------- settle
section "after the load: the worker settles (grace 1 s, interval 1 s)"
t0=$(date +%s%N)
clean=0
for i in $(seq 1 90); do
	if gc_leftovers "$GRACE_MS" 3000; then
		clean=1
		break
	fi
	[ $((($(date +%s%N) - t0) / 1000000)) -ge 45000 ] && break
	sleep 0.5
done
waited=$((($(date +%s%N) - t0) / 1000000))
echo "     $GCL_SUMMARY"
if [ "$clean" = 1 ]; then
	ok "nothing unreferenced past the grace left, ${waited} ms after the load stopped"
else
	fail "still unreferenced data past the grace ${waited} ms after the load stopped"
fi
gc_expect_clean "settled"
gc_expect_usage "settled" "$BERTH_TENANT"
if kill -0 "$BERTH_PID" 2>/dev/null; then ok "berthd still running"; else fail "berthd died (log $BERTH_LOG)"; fi

section "every acknowledged image pulls, digests verified; deleted ones are gone"
"$E2E_PY" "$HERE/gc_verify.py" "$BERTH_URL" "$BERTH_DATA" "$LEDGER" "$DELLOG" >"$RC/verify.out" 2>&1
vrc=$?
[ "$vrc" = 0 ] || fail "gc_verify.py exited $vrc" "$(tail -n 5 "$RC/verify.out")"
while IFS= read -r line; do
	case $line in
	PASS\ *) ok "${line#PASS }" ;;
	FAIL\ *) fail "${line#FAIL }" ;;
	*) printf '     %s\n' "${line#INFO }" ;;
	esac
done <"$RC/verify.out"

section "skopeo pulls of surviving images into dir: layouts"
n=0
while read -r repo tag digest path who; do
	[ "$who" = skopeo ] || continue
	case " $(curl -s --max-time 30 "$BERTH_URL/v2/$repo/tags/list?n=1000" | jq -r '(.tags // [])[]' | tr '\n' ' ') " in
	*" $tag "*) ;;
	*) continue ;;
	esac
	n=$((n + 1))
	step "skopeo copy $repo:$tag -> dir:" "${SK[@]}" copy "${SK_SRC[@]}" "docker://$REGISTRY/$repo:$tag" "dir:$CL_TMP/pull-$n"
	step "dir: copy of $tag verified" verify_dir "$CL_TMP/pull-$n" "$digest"
	[ "$n" -ge 2 ] && break
done < <(tac "$LEDGER")
[ "$n" -gt 0 ] || echo "     (no skopeo image survived the deleters)"

section "fsck: nothing missing"
timeout 300 "$BERTHD" fsck --data-dir "$BERTH_DATA" >"$RC/fsck.out" 2>&1
rc=$?
sed 's/^/     | /' "$RC/fsck.out" | head -n 15
expect_eq "fsck: no missing object" "$(grep -c '^missing ' "$RC/fsck.out")" 0
expect_eq "fsck: no dangling manifest reference" "$(grep -c '^dangling ' "$RC/fsck.out")" 0
expect_eq "fsck exit status" "$rc" 0

berth_stop
expect_eq "clean exit after the race" "$BERTH_EXIT" 0
echo "total time $((SECONDS - T_START)) s"
berth_done
