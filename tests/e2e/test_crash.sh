#!/usr/bin/env bash
# Crash safety of berthd: in each round several uploads run at once
# (single-request POST?digest= blobs, POST+PUT blobs, chunked PATCH uploads,
# manifest PUTs), berthd is killed with SIGKILL at a seeded moment, and then
# restarted on the same data directory.  After every restart:
#   - every blob and manifest whose request got its 201 before the kill is
#     served intact (blob body hashes to its digest, manifest bytes identical);
#   - a blob whose upload never completed is not visible, and any blob that is
#     visible is intact (a partial file must never become a blob);
#   - every file in the blob store named like a digest hashes to that name;
#   - an interrupted upload session either resumes from an offset between
#     what was acknowledged and what was sent and then completes correctly,
#     or is cleanly unknown (404 BLOB_UPLOAD_UNKNOWN);
#   - meta.db passes PRAGMA integrity_check and foreign_key_check;
#   - at the end, `berthd fsck` finds nothing.
# Each request's status is written to a file by its client only after the
# request ended, so "acknowledged" means the client really saw the 201.
# Env: CRASH_ROUNDS (default 10), CRASH_SEED (default 424242; printed so a
# failing run can be repeated with the same sizes and kill delays),
# CRASH_DELAY (seconds to wait after the seeded number of finished requests;
# overrides the seeded fraction, for debugging).
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/clients_lib.sh"
BERTH_OPEN=1 # authentication is covered by test_auth_*; these drive clients without it
. "$HERE/lib.sh"

T_START=$SECONDS
clients_need curl jq sqlite3 sha256sum sha512sum openssl
ROUNDS=${CRASH_ROUNDS:-10}
SEED=${CRASH_SEED:-424242}
RANDOM=$SEED
echo "crash test: $ROUNDS rounds, seed $SEED (repeat with CRASH_SEED=$SEED)"
MIB=$((1024 * 1024))

berth_start || exit 1
REPO=$BERTH_TENANT/crash
CR=$E2E_TMP/crash
mkdir -p "$CR"
LEDGER_BLOBS=$CR/acked-blobs          # "digest size" of every acknowledged blob
LEDGER_MANIFESTS=$CR/acked-manifests  # "tag digest file" of every acknowledged manifest
VERIFIED_FILES=$CR/verified-files     # blob store files already re-hashed
: >"$LEDGER_BLOBS"
: >"$LEDGER_MANIFESTS"
: >"$VERIFIED_FILES"
N_RESUMED=0
N_UNKNOWN=0
N_VISIBLE_UNACKED=0

# ---------------------------------------------------------------- clients
# These run in background subshells, so they never touch lib.sh's shared
# REQ_* files.  They avoid forks where a builtin will do: on a loaded
# machine every fork costs tens of milliseconds.

# jcurl JOBDIR NAME METHOD PATH-or-URL [curl args...]: one request.  Writes
# JOBDIR/NAME.status ("<http code> <bytes uploaded> <seconds>") only once
# curl has finished (renamed into place, so a reader never sees half a
# line), keeps the headers in JOBDIR/NAME.hdr; sets JCODE and JLOC (the
# Location header, or empty).
jcurl() {
	local j=$1 name=$2 method=$3 url=$4 line
	shift 4
	case $url in http://*) ;; *) url=$BERTH_URL$url ;; esac
	curl -s --max-time 120 -X "$method" -H 'Expect:' -D "$j/$name.hdr" -o "$j/$name.body" \
		-w '%{http_code} %{size_upload} %{time_total}\n' "$@" "$url" >"$j/$name.status.tmp" 2>/dev/null
	mv -f "$j/$name.status.tmp" "$j/$name.status"
	read -r JCODE _ <"$j/$name.status"
	JLOC=
	while IFS= read -r line; do
		line=${line%$'\r'}
		case ${line,,} in location:*) JLOC=${line#*:} JLOC=${JLOC# } ;; esac
	done <"$j/$name.hdr"
}

# Single request: POST /blobs/uploads/?digest= with the whole body.  (Not
# curl -T here: with a URL path ending in "/" curl appends the file name.)
job_mono_post() {
	local j=$1 rate=$2 digest
	read -r digest <"$j/digest"
	jcurl "$j" put POST "/v2/$REPO/blobs/uploads/?digest=$digest" \
		-H 'Content-Type: application/octet-stream' --data-binary "@$j/data" $rate
}

# POST to open a session, then one PUT with the whole body.
job_mono_put() {
	local j=$1 rate=$2 digest size
	read -r digest <"$j/digest"
	read -r size <"$j/size"
	jcurl "$j" post POST "/v2/$REPO/blobs/uploads/" -H 'Content-Length: 0'
	[ "$JCODE" = 202 ] || return 0
	printf '%s\n' "$JLOC" >"$j/loc"
	printf '%s\n' "$size" >"$j/sent"
	: >"$j/put.begun"
	jcurl "$j" put PUT "$(with_query "$JLOC" "digest=$digest")" \
		-H 'Content-Type: application/octet-stream' -T "$j/data" $rate
}

# POST, PATCH each chunk with Content-Range, then an empty PUT.
job_chunked() {
	local j=$1 rate=$2 digest loc i=0 start end
	read -r digest <"$j/digest"
	jcurl "$j" post POST "/v2/$REPO/blobs/uploads/" -H 'Content-Length: 0'
	[ "$JCODE" = 202 ] || return 0
	loc=$JLOC
	printf '%s\n' "$loc" >"$j/loc"
	printf '0\n' >"$j/acked"
	while read -r start end; do
		i=$((i + 1))
		printf '%s\n' "$((end + 1))" >"$j/sent"
		jcurl "$j" "patch$i" PATCH "$loc" -H 'Content-Type: application/octet-stream' \
			-H "Content-Range: $start-$end" -T "$j/chunk$i" $rate
		[ "$JCODE" = 202 ] || return 0
		printf '%s\n' "$((end + 1))" >"$j/acked"
		[ -z "$JLOC" ] || loc=$JLOC
		printf '%s\n' "$loc" >"$j/loc"
	done <"$j/chunks"
	: >"$j/put.begun"
	jcurl "$j" put PUT "$(with_query "$loc" "digest=$digest")" -H 'Content-Length: 0'
}

# Manifest PUTs one after another, a little apart.
job_manifests() {
	local j=$1 tag
	while read -r tag; do
		jcurl "$j" "m-$tag" PUT "/v2/$REPO/manifests/$tag" -H "Content-Type: $MT_OCI_MANIFEST" \
			--data-binary "@$j/$tag.json"
		sleep 0.0$((RANDOM % 5 + 1))
	done <"$j/tags"
}

# finished_requests ROUNDDIR: how many client requests have ended so far.
finished_requests() {
	local f=("$1"/*/*.status)
	[ -e "${f[0]}" ] || { echo 0; return; }
	echo "${#f[@]}"
}

# ---------------------------------------------------------------- checks

status_of() { [ -f "$1" ] && cut -d' ' -f1 <"$1" || echo none; }
sent_of() { [ -f "$1" ] && cut -d' ' -f2 <"$1" || echo 0; }

# blob_state DIGEST: prints "<HEAD status> <GET status> <GET body digest>".
blob_state() {
	local h g d
	h=$(curl -s --max-time 30 -I -o /dev/null -w '%{http_code}' "$BERTH_URL/v2/$REPO/blobs/$1")
	g=$(curl -s --max-time 120 -o "$CR/get.tmp" -w '%{http_code}' "$BERTH_URL/v2/$REPO/blobs/$1")
	d=$(sha256_stdin <"$CR/get.tmp")
	rm -f "$CR/get.tmp"
	echo "$h $g $d"
}

# check_acked_blob LABEL DIGEST: acknowledged, so it must be served intact.
check_acked_blob() {
	local h g d
	read -r h g d < <(blob_state "$2")
	if [ "$h" = 200 ] && [ "$g" = 200 ] && [ "$d" = "$2" ]; then
		ok "$1: acknowledged blob served intact"
	else
		fail "$1: acknowledged blob $2: HEAD $h, GET $g, body digest $d"
	fi
}

# check_unacked_blob LABEL DIGEST FULLY_SENT: invisible, or (only if all its
# bytes reached the server) visible and intact.
check_unacked_blob() {
	local h g d
	read -r h g d < <(blob_state "$2")
	if [ "$h" = 404 ] && [ "$g" = 404 ]; then
		ok "$1: unacknowledged blob not visible"
	elif [ "$h" = 200 ] && [ "$g" = 200 ] && [ "$d" = "$2" ] && [ "$3" = 1 ]; then
		N_VISIBLE_UNACKED=$((N_VISIBLE_UNACKED + 1))
		ok "$1: blob committed just before the kill (response lost) is intact"
	else
		fail "$1: unacknowledged blob $2 (fully sent: $3): HEAD $h, GET $g, body digest $d"
	fi
}

# resume_session LABEL JOBDIR: the upload was interrupted; its session must
# either be unknown or resume at an offset between acked and sent bytes and
# then complete with the right digest.
resume_session() {
	local label=$1 j=$2 loc acked sent size range r st digest
	loc=$(cat "$j/loc")
	acked=$(cat "$j/acked" 2>/dev/null || echo 0)
	sent=$(cat "$j/sent" 2>/dev/null || echo 0)
	size=$(cat "$j/size")
	digest=$(cat "$j/digest")
	req GET "$loc"
	case $REQ_STATUS in
	404)
		if jq -e '[.errors[].code] | index("BLOB_UPLOAD_UNKNOWN")' <"$REQ_BODY_FILE" >/dev/null 2>&1; then
			N_UNKNOWN=$((N_UNKNOWN + 1))
			ok "$label: interrupted session is cleanly unknown (404 BLOB_UPLOAD_UNKNOWN; $acked bytes had been acknowledged)"
		else
			fail_resp "$label: session 404 without BLOB_UPLOAD_UNKNOWN"
		fi
		req PATCH "$loc" -H 'Content-Type: application/octet-stream' -H "Content-Range: 0-0" --data-binary x
		if [ "$REQ_STATUS" = 404 ]; then
			ok "$label: PATCH to the unknown session is 404"
		else
			fail_resp "$label: PATCH to an unknown session got $REQ_STATUS"
		fi
		return
		;;
	204) ;;
	*)
		fail_resp "$label: upload status GET got $REQ_STATUS, want 204 or 404"
		return
		;;
	esac
	range=$(hdr Range) || range=
	if ! [[ $range =~ ^0-([0-9]+)$ ]]; then
		fail_resp "$label: upload status Range '$range' is not 0-<end>"
		return
	fi
	r=$((BASH_REMATCH[1] + 1))
	[ "$range" = 0-0 ] && [ "$acked" = 0 ] && r=0
	if [ "$r" -lt "$acked" ] || [ "$r" -gt "$sent" ]; then
		fail_resp "$label: session resumes at $r, but $acked bytes were acknowledged and $sent sent"
		return
	fi
	ok "$label: session survived at offset $r (acknowledged $acked, sent $sent)"
	loc=$(hdr Location) || loc=$(cat "$j/loc")
	if [ "$r" -lt "$size" ]; then
		tail -c +$((r + 1)) "$j/data" >"$j/rest"
		req PATCH "$loc" -H 'Content-Type: application/octet-stream' \
			-H "Content-Range: $r-$((size - 1))" --data-binary "@$j/rest"
		rm -f "$j/rest"
		if [ "$REQ_STATUS" != 202 ]; then
			fail_resp "$label: resuming PATCH from $r got $REQ_STATUS"
			return
		fi
		loc=$(hdr Location) || loc=$(cat "$j/loc")
	fi
	req PUT "$(with_query "$loc" "digest=$digest")" -H 'Content-Length: 0'
	if [ "$REQ_STATUS" = 201 ]; then
		N_RESUMED=$((N_RESUMED + 1))
		ok "$label: resumed upload completed (201)"
		printf '%s %s\n' "$digest" "$size" >>"$LEDGER_BLOBS"
		check_acked_blob "$label (resumed)" "$digest"
	else
		fail_resp "$label: completing the resumed upload got $REQ_STATUS"
	fi
}

check_blob_job() {
	local label=$1 j=$2 kind digest size put fully=0
	kind=$(cat "$j/kind")
	digest=$(cat "$j/digest")
	size=$(cat "$j/size")
	put=$(status_of "$j/put.status")
	if [ "$put" = 201 ]; then
		printf '%s %s\n' "$digest" "$size" >>"$LEDGER_BLOBS"
		check_acked_blob "$label" "$digest"
		return
	fi
	# Could every byte have reached the server?  Then the commit may have
	# happened with only the response lost.
	case $kind in
	mono_post | mono_put) [ "$(sent_of "$j/put.status")" = "$size" ] && fully=1 ;;
	chunked) [ -f "$j/put.begun" ] && fully=1 ;;
	esac
	check_unacked_blob "$label" "$digest" "$fully"
	if [ -f "$j/loc" ] && [ "$(status_of "$j/put.status")" != 201 ]; then
		# A visible blob means the final request went through: its session
		# is legitimately gone, so there is nothing to resume.
		if [ "$(curl -s --max-time 30 -I -o /dev/null -w '%{http_code}' "$BERTH_URL/v2/$REPO/blobs/$digest")" = 404 ]; then
			resume_session "$label" "$j"
		fi
	fi
}

check_manifest_job() {
	local label=$1 j=$2 tag st d got
	while read -r tag; do
		st=$(status_of "$j/m-$tag.status")
		d=$(digest_of "$j/$tag.json")
		req GET "/v2/$REPO/manifests/$tag" -H "Accept: $MT_OCI_MANIFEST"
		if [ "$st" = 201 ]; then
			cp "$j/$tag.json" "$CR/manifest-$tag.json"
			printf '%s %s %s\n' "$tag" "$d" "$CR/manifest-$tag.json" >>"$LEDGER_MANIFESTS"
			got=$(hdr Docker-Content-Digest) || got=
			if [ "$REQ_STATUS" = 200 ] && cmp -s "$REQ_BODY_FILE" "$j/$tag.json" && [ "$got" = "$d" ]; then
				ok "$label: acknowledged manifest $tag served byte-identical"
			else
				fail_resp "$label: acknowledged manifest $tag: status $REQ_STATUS, digest header '$got' (want $d)"
			fi
		elif [ "$REQ_STATUS" = 404 ]; then
			ok "$label: unacknowledged manifest $tag absent"
		elif [ "$REQ_STATUS" = 200 ] && cmp -s "$REQ_BODY_FILE" "$j/$tag.json"; then
			ok "$label: manifest $tag stored just before the kill (response lost) is intact"
		else
			fail_resp "$label: unacknowledged manifest $tag: status $REQ_STATUS with other bytes"
		fi
	done <"$j/tags"
}

check_db() {
	local out
	if [ ! -f "$BERTH_DATA/meta.db" ]; then
		fail "$1: $BERTH_DATA/meta.db does not exist"
		return
	fi
	out=$(sqlite3 -cmd '.timeout 10000' "$BERTH_DATA/meta.db" 'PRAGMA integrity_check; PRAGMA foreign_key_check;' 2>&1)
	if [ "$out" = ok ]; then
		ok "$1: meta.db integrity_check ok, foreign_key_check empty"
	else
		fail "$1: meta.db check says:" "$(printf '%s' "$out" | head -n 10)"
	fi
}

# check_store LABEL [all]: every blob-store file named like a digest hashes to
# its name (new files only, unless "all").
check_store() {
	local label=$1 f base got n=0 bad=0 other=0
	[ "${2:-}" = all ] && : >"$VERIFIED_FILES"
	while IFS= read -r f; do
		base=$(basename "$f")
		grep -qxF "$f" "$VERIFIED_FILES" && continue
		if [[ $base =~ ^[0-9a-f]{64}$ ]]; then
			got=$(sha256sum <"$f" | cut -d' ' -f1)
		elif [[ $base =~ ^[0-9a-f]{128}$ ]]; then
			got=$(sha512sum <"$f" | cut -d' ' -f1)
		else
			other=$((other + 1))
			echo "     note: non-digest file in the blob store: ${f#"$BERTH_DATA"/}"
			continue
		fi
		n=$((n + 1))
		if [ "$got" = "$base" ]; then
			printf '%s\n' "$f" >>"$VERIFIED_FILES"
		else
			bad=$((bad + 1))
			fail "$label: blob store file ${f#"$BERTH_DATA"/} ($(stat -c %s "$f") bytes) does not hash to its name (partial or corrupt)"
		fi
	done < <(find "$BERTH_DATA/blobs" -type f 2>/dev/null | sort)
	[ "$bad" = 0 ] && ok "$label: $n new blob-store files hash to their names ($other other files)"
}

# ---------------------------------------------------------------- rounds

# rand_between LO HI (inclusive), from the seeded generator.
rand_between() { echo $(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1))); }

# Config and layer blobs the round's manifests reference (pushed, acked).
section "base blobs for manifests"
BASE_CFG=$CR/base-config.json
BASE_LAYER=$CR/base-layer
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$BASE_CFG"
make_blob "$BASE_LAYER" 65536 crash-base-layer
if push_blob "$REPO" "$BASE_CFG" >/dev/null && push_blob "$REPO" "$BASE_LAYER" >/dev/null; then
	ok "config and layer for the manifests pushed"
	printf '%s %s\n' "$(digest_of "$BASE_CFG")" "$(size_of "$BASE_CFG")" >>"$LEDGER_BLOBS"
	printf '%s %s\n' "$(digest_of "$BASE_LAYER")" "$(size_of "$BASE_LAYER")" >>"$LEDGER_BLOBS"
else
	exit 1
fi
make_manifest "$CR/base-manifest.json" "$BASE_CFG" "$MT_OCI_CONFIG" "$BASE_LAYER"

for round in $(seq 1 "$ROUNDS"); do
	section "round $round"
	t_round=$SECONDS
	RD=$CR/r$round
	mkdir -p "$RD"
	jobs_dirs=()
	# Plan the round: which uploads, their sizes and rates, the kill delay.
	n=0
	for kind in mono_post mono_post mono_put chunked chunked; do
		n=$((n + 1))
		j=$RD/$kind-$n
		mkdir -p "$j"
		size=$((($(rand_between 8 31)) * MIB + $(rand_between 0 65535)))
		make_blob "$j/data" "$size" "crash-$SEED-$round-$n"
		printf '%s\n' "$kind" >"$j/kind"
		printf '%s\n' "$size" >"$j/size"
		digest_of "$j/data" >"$j/digest"
		case $((RANDOM % 3)) in
		0) printf '\n' >"$j/rate" ;;
		1) printf -- '--limit-rate %sM\n' "$(rand_between 30 60)" >"$j/rate" ;;
		2) printf -- '--limit-rate %sM\n' "$(rand_between 60 120)" >"$j/rate" ;;
		esac
		if [ "$kind" = chunked ]; then
			# 3 to 5 chunks with seeded boundaries.
			chunks=$(rand_between 3 5)
			start=0
			: >"$j/chunks"
			for c in $(seq 1 "$chunks"); do
				if [ "$c" = "$chunks" ]; then
					end=$((size - 1))
				else
					end=$((start + size / chunks + $(rand_between 0 4095) - 2048))
				fi
				printf '%s %s\n' "$start" "$end" >>"$j/chunks"
				tail -c +$((start + 1)) "$j/data" | head -c $((end - start + 1)) >"$j/chunk$c"
				start=$((end + 1))
			done
		fi
		jobs_dirs+=("$j")
	done
	jm=$RD/manifests
	mkdir -p "$jm"
	: >"$jm/tags"
	for m in 1 2 3 4 5 6; do
		tag=r$round-m$m
		jq -c --arg r "$round" --arg m "$m" '. + {annotations: {"test.round": $r, "test.manifest": $m}}' \
			"$CR/base-manifest.json" | tr -d '\n' >"$jm/$tag.json"
		printf '%s\n' "$tag" >>"$jm/tags"
	done
	# When to pull the plug: after a seeded number of the round's requests
	# have ended, plus a seeded fraction of a second.  Counting finished
	# requests rather than wall time spreads the kills over the whole round
	# however slow or loaded the machine is.
	total=$((2 + 2 + 6))
	for j in "${jobs_dirs[@]}"; do
		[ -f "$j/chunks" ] && total=$((total + 2 + $(wc -l <"$j/chunks")))
	done
	kill_after=$(rand_between 0 $((total - 2)))
	delay=0.$(printf '%02d' "$(rand_between 0 25)")
	echo "plan: $(for j in "${jobs_dirs[@]}"; do printf '%s:%sMiB%s ' "$(cat "$j/kind")" "$(($(cat "$j/size") / MIB))" "$(sed 's/--limit-rate /@/' "$j/rate")"; done)manifests x6; kill ${delay}s after $kill_after of $total requests ended"

	# Run everything at once, then pull the plug.
	t_prep=$((SECONDS - t_round))
	pids=()
	for j in "${jobs_dirs[@]}"; do
		"job_$(cat "$j/kind")" "$j" "$(cat "$j/rate")" &
		pids+=($!)
	done
	job_manifests "$jm" &
	pids+=($!)
	# Bounded: at most ~30 s, and never longer than the clients run.
	for _ in $(seq 1 3000); do
		[ "$(finished_requests "$RD")" -ge "$kill_after" ] && break
		running=0
		for p in "${pids[@]}"; do
			kill -0 "$p" 2>/dev/null && running=1
		done
		[ "$running" = 1 ] || break
		sleep 0.01
	done
	sleep "${CRASH_DELAY:-$delay}"
	berth_kill9
	at_kill=$(finished_requests "$RD")
	for p in "${pids[@]}"; do
		wait "$p"
	done
	acked=0
	for f in "$RD"/*/*.status; do
		[ "$(status_of "$f")" = 201 ] && acked=$((acked + 1))
	done
	echo "killed berthd when $at_kill requests had ended; $acked got their 201"
	if ! berth_restart; then
		fail "round $round: berthd does not come back after SIGKILL"
		exit 1
	fi
	ok "round $round: berthd restarted on the same data directory"
	t_run=$((SECONDS - t_round - t_prep))

	for j in "${jobs_dirs[@]}"; do
		check_blob_job "r$round $(basename "$j")" "$j"
	done
	check_manifest_job "r$round manifests" "$jm"
	check_store "round $round"
	check_db "round $round"
	rm -f "$RD"/*/data "$RD"/*/chunk* "$RD"/*/*.body
	echo "round $round took $((SECONDS - t_round)) s (prepare $t_prep, run+kill+restart $t_run, verify $((SECONDS - t_round - t_prep - t_run)))"
done

# ---------------------------------------------------------------- final
section "final: clean restart, everything acknowledged is still there"
berth_stop
expect_eq "berthd exit status after SIGTERM" "${BERTH_EXIT:-?}" 0
if ! berth_restart; then
	fail "berthd does not start after the clean stop"
	exit 1
fi
nb=0
bad=0
while read -r d s; do
	nb=$((nb + 1))
	read -r h g got < <(blob_state "$d")
	if [ "$g" != 200 ] || [ "$got" != "$d" ]; then
		bad=$((bad + 1))
		fail "final: acknowledged blob $d ($s bytes): HEAD $h, GET $g, body $got"
	fi
done < <(sort -u "$LEDGER_BLOBS")
[ "$bad" = 0 ] && ok "final: all $nb acknowledged blobs served intact"
nm=0
bad=0
while read -r tag d f; do
	nm=$((nm + 1))
	req GET "/v2/$REPO/manifests/$tag" -H "Accept: $MT_OCI_MANIFEST"
	if [ "$REQ_STATUS" != 200 ] || ! cmp -s "$REQ_BODY_FILE" "$f"; then
		bad=$((bad + 1))
		fail_resp "final: acknowledged manifest $tag ($d) not served identically"
	fi
done <"$LEDGER_MANIFESTS"
[ "$bad" = 0 ] && ok "final: all $nm acknowledged manifests served byte-identical"
check_store "final" all
check_db "final"
req POST "/v2/$REPO/blobs/uploads/?digest=$(digest_of "$BASE_CFG")" -H 'Content-Type: application/octet-stream' \
	--data-binary "@$BASE_CFG"
expect_status 201
# fsck agrees: interrupted sessions and partial upload data are young
# (default expiry and grace), never corruption.
berth_stop
if timeout 300 "$BERTHD" fsck --data-dir "$BERTH_DATA" >"$CR/fsck.out" 2>&1; then
	ok "final: berthd fsck finds nothing: $(tail -n 1 "$CR/fsck.out")"
else
	fail "final: berthd fsck exits $?" "$(head -n 20 "$CR/fsck.out")"
fi
echo "sessions resumed: $N_RESUMED, sessions unknown after the crash: $N_UNKNOWN, blobs committed with the response lost: $N_VISIBLE_UNACKED"
echo "total $((SECONDS - T_START)) s"
berth_done
