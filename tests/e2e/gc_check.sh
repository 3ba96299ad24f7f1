# Shared by the GC end-to-end tests (test_gc_race.sh, test_gc_crash.sh), on
# top of lib.sh: what "nothing unreferenced and older than the grace period
# remains" means, read straight from the data directory while the server
# runs.
#
#   gc_leftovers GRACE_MS SLACK_MS
#       sets, from <data>/meta.db and <data>/blobs:
#       GCL_BLOBS_NOLINK   blob rows no repository links
#       GCL_LINKS_OLD      links no manifest lists, touched before
#                          now - GRACE_MS
#       GCL_QUEUES_DUE     review-queue rows (manifest, link, blob) queued
#                          before now - GRACE_MS - SLACK_MS
#       GCL_OUTBOX_DUE     outbox rows due before now - SLACK_MS
#       GCL_FILES_UNNAMED  files under blobs/ (quarantine aside) named by no
#                          blobs.storage_key and no gc_outbox row
#       GCL_ROWS_NOFILE    blob rows whose object file is missing
#       GCL_SUMMARY        all of it on one line
#       and returns 0 when every count is 0.
#   gc_expect_clean LABEL: one assertion per count (call after
#       gc_leftovers); on failure the offending rows/files are listed.
#
# shellcheck shell=bash

gcl_sq() { sqlite3 -cmd '.timeout 20000' "$BERTH_DATA/meta.db" "$1"; }

GCL_NOLINK_SQL="SELECT digest FROM blobs b WHERE NOT EXISTS
	(SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)"

gc_leftovers() {
	local grace_ms=$1 slack_ms=$2 now
	now=$(date +%s%3N)
	GCL_DIR=$E2E_WORK/gcl
	mkdir -p "$GCL_DIR"
	GCL_BLOBS_NOLINK=$(gcl_sq "SELECT count(*) FROM ($GCL_NOLINK_SQL)")
	GCL_LINKS_OLD=$(gcl_sq "SELECT count(*) FROM repository_blobs rb WHERE NOT EXISTS
		(SELECT 1 FROM manifest_blobs mb WHERE mb.repository_id = rb.repository_id AND mb.digest = rb.digest)
		AND rb.touched_at < $((now - grace_ms))")
	GCL_QUEUES_DUE=$(gcl_sq "SELECT
		(SELECT count(*) FROM gc_manifest_queue WHERE queued_at < $((now - grace_ms - slack_ms))) +
		(SELECT count(*) FROM gc_link_queue WHERE queued_at < $((now - grace_ms - slack_ms))) +
		(SELECT count(*) FROM gc_blob_queue WHERE queued_at < $((now - grace_ms - slack_ms)))")
	GCL_OUTBOX_DUE=$(gcl_sq "SELECT count(*) FROM gc_outbox WHERE not_before < $((now - slack_ms))")
	gcl_sq "SELECT storage_key FROM blobs UNION SELECT storage_key FROM gc_outbox" | sort -u >"$GCL_DIR/named"
	gcl_sq "SELECT storage_key FROM blobs" | sort -u >"$GCL_DIR/rows"
	(cd "$BERTH_DATA/blobs" && find . -path ./quarantine -prune -o -type f -printf '%P\n') | sort -u >"$GCL_DIR/files"
	comm -23 "$GCL_DIR/files" "$GCL_DIR/named" >"$GCL_DIR/unnamed"
	comm -13 "$GCL_DIR/files" "$GCL_DIR/rows" >"$GCL_DIR/nofile"
	GCL_FILES_UNNAMED=$(wc -l <"$GCL_DIR/unnamed")
	GCL_ROWS_NOFILE=$(wc -l <"$GCL_DIR/nofile")
	GCL_SUMMARY="blob rows without a link $GCL_BLOBS_NOLINK, unlisted links past the grace $GCL_LINKS_OLD,"
	GCL_SUMMARY+=" queue rows due $GCL_QUEUES_DUE, outbox rows due $GCL_OUTBOX_DUE,"
	GCL_SUMMARY+=" unnamed files $GCL_FILES_UNNAMED, rows without a file $GCL_ROWS_NOFILE"
	GCL_SUMMARY+=" ($(wc -l <"$GCL_DIR/files") files, $(wc -l <"$GCL_DIR/rows") blob rows)"
	[ "$GCL_BLOBS_NOLINK$GCL_LINKS_OLD$GCL_QUEUES_DUE$GCL_OUTBOX_DUE$GCL_FILES_UNNAMED$GCL_ROWS_NOFILE" = 000000 ]
}

gc_expect_clean() {
	local label=$1
	if [ "$GCL_BLOBS_NOLINK" = 0 ]; then
		ok "$label: no blob row without a link"
	else
		fail "$label: $GCL_BLOBS_NOLINK blob rows without a link" "$(gcl_sq "$GCL_NOLINK_SQL LIMIT 5")"
	fi
	expect_eq "$label: links no manifest lists, touched before the grace" "$GCL_LINKS_OLD" 0
	expect_eq "$label: review-queue rows due but not processed" "$GCL_QUEUES_DUE" 0
	expect_eq "$label: outbox rows due but not processed" "$GCL_OUTBOX_DUE" 0
	if [ "$GCL_FILES_UNNAMED" = 0 ]; then
		ok "$label: no file under blobs/ that no row names (orphans)"
	else
		fail "$label: $GCL_FILES_UNNAMED files under blobs/ that no row names" "$(head -n 5 "$GCL_DIR/unnamed")"
	fi
	if [ "$GCL_ROWS_NOFILE" = 0 ]; then
		ok "$label: every blob row's object file exists"
	else
		fail "$label: $GCL_ROWS_NOFILE blob rows whose object file is missing (referenced data lost)" \
			"$(head -n 5 "$GCL_DIR/nofile")"
	fi
}

# gc_expect_usage LABEL ACCOUNT: `berthd usage --account ACCOUNT` equals a
# recount from meta.db (distinct blobs the account links, each once, plus
# its manifests): the counters kept in the mutating transactions did not
# drift through the races, kills and collections.
gc_expect_usage() {
	local label=$1 acct=$2 line want got f
	line=$(timeout 60 "$BERTHD" usage --account "$acct" --data-dir "$BERTH_DATA" 2>&1)
	want=$(gcl_sq "SELECT 'bytes=' || (
			(SELECT COALESCE(SUM(size), 0) FROM blobs WHERE digest IN
				(SELECT digest FROM repository_blobs WHERE account_id = '$acct')) +
			(SELECT COALESCE(SUM(size), 0) FROM manifests WHERE account_id = '$acct'))
		|| ' blobs=' || (SELECT count(*) FROM blobs WHERE digest IN
				(SELECT digest FROM repository_blobs WHERE account_id = '$acct'))
		|| ' blob_bytes=' || (SELECT COALESCE(SUM(size), 0) FROM blobs WHERE digest IN
				(SELECT digest FROM repository_blobs WHERE account_id = '$acct'))
		|| ' manifests=' || (SELECT count(*) FROM manifests WHERE account_id = '$acct')
		|| ' manifest_bytes=' || (SELECT COALESCE(SUM(size), 0) FROM manifests WHERE account_id = '$acct')")
	got=
	for f in $line; do
		case $f in bytes=* | blobs=* | blob_bytes=* | manifests=* | manifest_bytes=*) got+="$f " ;; esac
	done
	got=${got% }
	printf '     | %s\n' "${line//$acct/<account>}"
	expect_eq "$label: berthd usage agrees with a recount from meta.db" "$got" "$want"
}
