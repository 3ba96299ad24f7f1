#!/usr/bin/env bash
# A real PostgreSQL 15 on loopback for Berth's tests, started and stopped by
# PID, never through systemd or Debian's cluster tools, so that several can
# run side by side and none outlives its test.
#   scripts/services/postgres.sh start DIR [PORT]   (PORT defaults to 15432)
#   scripts/services/postgres.sh check DIR
#   scripts/services/postgres.sh stop DIR
# start installs what is missing (Debian 12 packages), creates a fresh
# cluster in DIR/data, listens on 127.0.0.1:PORT only (its unix socket in
# DIR/sock), waits until it accepts connections, creates the role and
# database `berth`, and writes DIR/pid (the postmaster's PID) and DIR/env:
#   BERTH_PG_DSN=postgresql://berth:PASSWORD@127.0.0.1:PORT/berth
#   BERTH_PG_PORT, BERTH_PG_HOST, BERTH_PG_SOCKET_DIR, BERTH_PG_BIN
# Authentication: the role `berth` logs in over TCP on 127.0.0.1 only, with
# a random password (scram-sha-256) written into DIR/env; it may create
# databases, so a test can take a fresh one.  The superuser (the user the
# server runs as) logs in through the unix socket only, which sits in DIR
# where nobody else can reach it.  No other address is accepted.
# When the caller is root the server runs as the `postgres` system user the
# package creates (PostgreSQL refuses to run as root) and DIR belongs to it;
# an ordinary caller runs it as themselves.
# stop shuts exactly that server down (fast mode: open sessions are cut,
# nothing half-written survives), waits a bounded time, then removes DIR.
# check makes a round trip through psql: a table, a row, an advisory lock
# held by one session and refused to another, LISTEN/NOTIFY between two
# sessions, and the PostgreSQL form of Berth's full metadata schema
# (postgres-schema-check.sql beside this script) applied to a scratch
# database; then, when a C compiler and the source tree are at hand, the
# migrations of src/meta/sql/schema.c with the substitutions of
# docs/postgres-schema.md must build exactly that schema, and every
# statement of schema.c but the SQLite-only ones must prepare on it (drift
# between the SQLite schema and its PostgreSQL form fails the check).
set -euo pipefail

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
START_TIMEOUT=${BERTH_PG_START_TIMEOUT:-60}
STOP_TIMEOUT=${BERTH_PG_STOP_TIMEOUT:-30}

die() {
	echo "postgres.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: $0 start DIR [PORT] | check DIR | stop DIR" >&2
	exit 2
}

# The user the server runs as, and a way to run a command as that user.
if [ "$(id -u)" = 0 ]; then
	PG_USER=postgres
else
	PG_USER=$(id -un)
fi

as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$PG_USER" -- "$@"
	else
		"$@"
	fi
}

install_missing() {
	local pkgs=("postgresql-$PG_MAJOR" "postgresql-client-$PG_MAJOR" libpq-dev) missing=() p
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "postgres.sh: installing ${missing[*]}" >&2
	local sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
	$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Absolute path of DIR (it need not exist yet).
abspath() {
	case $1 in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s/%s\n' "$(pwd)" "$1" ;;
	esac
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Only a directory this script made is ever stopped or removed.
is_ours() {
	[ -f "$1/data/PG_VERSION" ] && [ -f "$1/env" ] && [ -f "$1/pid" ]
}

# Run psql as the superuser through DIR's socket, against database $1.
admin_psql() {
	local db=$1
	shift
	as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR/sock" -p "$PORT" -d "$db" "$@"
}

start_failed() {
	local status=$?
	if [ -f "$DIR/data/postmaster.pid" ]; then
		as_pg "$PG_BIN/pg_ctl" stop -D "$DIR/data" -m immediate -w -t "$STOP_TIMEOUT" -s || true
	fi
	if [ -f "$DIR/data/postmaster.pid" ]; then
		echo "postgres.sh: a server may still run in $DIR; left in place" >&2
	else
		rm -rf -- "$DIR"
	fi
	exit "$status"
}

cmd_start() {
	[ -n "${PORT:-}" ] || PORT=15432
	case $PORT in
	'' | *[!0-9]*) die "port must be a number: $PORT" ;;
	esac
	if [ "$PORT" -lt 1024 ] || [ "$PORT" -gt 65535 ]; then die "port out of range: $PORT"; fi
	if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
		die "$DIR exists and is not empty (stop the server there first)"
	fi
	local t0=$SECONDS t1
	install_missing
	t1=$SECONDS
	[ -x "$PG_BIN/initdb" ] || die "$PG_BIN/initdb missing after install"
	port_busy "$PORT" && die "127.0.0.1:$PORT is already in use"

	mkdir -p "$DIR"
	# A start that fails half way leaves no server and no directory.
	trap start_failed EXIT
	chmod 700 "$DIR"
	[ "$(id -u)" = 0 ] && chown "$PG_USER:" "$DIR"
	as_pg test -w "$DIR" -a -x "$DIR" ||
		die "$PG_USER cannot reach $DIR (a parent directory is closed to it?)"
	as_pg mkdir -m 700 "$DIR/sock" "$DIR/log"

	local password
	password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	[ ${#password} -eq 32 ] || die "could not make a password"

	as_pg "$PG_BIN/initdb" -D "$DIR/data" -U "$PG_USER" -A trust -E UTF8 \
		--locale=C.UTF-8 --no-instructions >"$DIR/log/initdb.log" 2>&1 ||
		die "initdb failed: $(tail -n 5 "$DIR/log/initdb.log")"

	# Our settings come last, so they win over initdb's defaults.
	as_pg tee -a "$DIR/data/postgresql.conf" >/dev/null <<EOF

# Berth test server (scripts/services/postgres.sh)
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR/sock'
unix_socket_permissions = 0700
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 16MB
max_connections = 100
password_encryption = scram-sha-256
logging_collector = off
log_min_messages = warning
EOF
	# Socket: the superuser only (peer-equivalent: the socket is in a
	# 0700 directory).  TCP: role berth, with its password, from
	# 127.0.0.1 only.  Anything else is refused.
	as_pg tee "$DIR/data/pg_hba.conf" >/dev/null <<EOF
# TYPE  DATABASE  USER   ADDRESS       METHOD
local   all       $PG_USER               trust
host    all       berth  127.0.0.1/32  scram-sha-256
EOF

	as_pg "$PG_BIN/pg_ctl" start -D "$DIR/data" -l "$DIR/log/postgres.log" -w \
		-t "$START_TIMEOUT" -s ||
		die "server did not start: $(tail -n 10 "$DIR/log/postgres.log" 2>/dev/null)"
	local pid
	pid=$(head -n 1 "$DIR/data/postmaster.pid")
	echo "$pid" >"$DIR/pid"

	# pg_ctl -w already waits for the socket; wait for TCP too (bounded).
	local i
	for ((i = 0; i < START_TIMEOUT * 10; i++)); do
		"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
		sleep 0.1
	done
	"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" ||
		die "server (pid $pid) does not accept connections on 127.0.0.1:$PORT"

	# The password is hex, so it is safe inside a literal; it goes
	# through psql's standard input, never a command line.
	admin_psql postgres >/dev/null <<EOF
CREATE ROLE berth LOGIN CREATEDB PASSWORD '$password';
CREATE DATABASE berth OWNER berth;
EOF

	local dsn="postgresql://berth:$password@127.0.0.1:$PORT/berth"
	cat >"$DIR/env" <<EOF
BERTH_PG_DSN=$dsn
BERTH_PG_HOST=127.0.0.1
BERTH_PG_PORT=$PORT
BERTH_PG_SOCKET_DIR=$DIR/sock
BERTH_PG_BIN=$PG_BIN
EOF
	[ "$(id -u)" = 0 ] && chown "$PG_USER:" "$DIR/env" "$DIR/pid"
	trap - EXIT
	echo "postgres.sh: PostgreSQL $PG_MAJOR pid $pid on 127.0.0.1:$PORT, env in $DIR/env" \
		"(install $((t1 - t0)) s, initdb and start $((SECONDS - t1)) s)" >&2
}

# Process $1 is alive (a zombie counts as gone).
alive() {
	local state
	state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	case $state in Z*) return 1 ;; esac
	return 0
}

cmd_stop() {
	[ -d "$DIR" ] || die "$DIR does not exist"
	is_ours "$DIR" || die "$DIR is not a server directory of this script; not touching it"
	local pid i
	pid=$(cat "$DIR/pid")
	case $pid in
	'' | *[!0-9]*) die "bad pid file $DIR/pid" ;;
	esac
	if alive "$pid"; then
		# The PID must still be the postmaster of this very data directory.
		if ! [ -f "$DIR/data/postmaster.pid" ] ||
			[ "$(head -n 1 "$DIR/data/postmaster.pid")" != "$pid" ]; then
			die "pid $pid is not the server of $DIR; not killing it"
		fi
		as_pg "$PG_BIN/pg_ctl" stop -D "$DIR/data" -m fast -w -t "$STOP_TIMEOUT" -s ||
			echo "postgres.sh: fast shutdown of pid $pid timed out" >&2
		for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			# Immediate shutdown: the postmaster ends its children itself.
			echo "postgres.sh: immediate shutdown of pid $pid" >&2
			kill -QUIT "$pid" 2>/dev/null || true
			for ((i = 0; i < 100; i++)); do
				alive "$pid" || break
				sleep 0.1
			done
		fi
		alive "$pid" && die "pid $pid still running; $DIR left in place"
	fi
	rm -rf -- "$DIR"
	echo "postgres.sh: stopped pid $pid, removed $DIR" >&2
}

# Exit non-zero with a message when a check fails.
fail() {
	echo "postgres.sh check: FAILED: $*" >&2
	exit 1
}

cmd_check() {
	is_ours "$DIR" || die "$DIR is not a server directory of this script"
	# shellcheck source=/dev/null
	. "$DIR/env"
	PORT=$BERTH_PG_PORT
	# The password goes to psql through the environment, the DSN on its
	# command lines (which ps shows) without it.
	local secret=${BERTH_PG_DSN#postgresql://berth:}
	export PGPASSWORD=${secret%%@*}
	BERTH_PG_DSN=postgresql://berth@${BERTH_PG_DSN#*@}
	local psql=("$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$BERTH_PG_DSN")
	local out tmp
	tmp=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf -- '$tmp'" EXIT

	# 1. A table, a row, read back.
	out=$("${psql[@]}" -c "CREATE TEMP TABLE berth_check (id BIGINT PRIMARY KEY, v BYTEA NOT NULL)" \
		-c "INSERT INTO berth_check VALUES (1, '\\x626572746800'::bytea)" \
		-c "SELECT id || ':' || encode(v, 'hex') FROM berth_check") ||
		fail "table round trip: could not query $BERTH_PG_HOST:$PORT"
	[ "$out" = "1:626572746800" ] || fail "table round trip read back '$out'"
	echo "check: table round trip ok"

	# 2. An advisory lock: held by one session, refused to another, then
	# free once the holder is gone.
	local key=$((0x6265727468)) holder i
	PGAPPNAME=berth-check-holder "${psql[@]}" \
		-c "SELECT pg_advisory_lock($key)" -c "SELECT pg_sleep(2)" >/dev/null 2>"$tmp/holder.err" &
	holder=$!
	for ((i = 0; i < 100; i++)); do
		out=$("${psql[@]}" -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND objid = ($key::bigint & 4294967295)::oid") || true
		[ "$out" = 1 ] && break
		sleep 0.1
	done
	[ "$out" = 1 ] || { kill "$holder" 2>/dev/null; fail "advisory lock: the holder never got it"; }
	out=$("${psql[@]}" -c "SELECT pg_try_advisory_lock($key)") || fail "advisory lock: try failed"
	[ "$out" = f ] || { kill "$holder" 2>/dev/null; fail "advisory lock: a second session got a held lock"; }
	wait "$holder" || fail "advisory lock: holder session failed: $(cat "$tmp/holder.err")"
	out=$("${psql[@]}" -c "SELECT pg_try_advisory_lock($key)") || fail "advisory lock: try failed"
	[ "$out" = t ] || fail "advisory lock: not released with its session"
	echo "check: advisory lock ok"

	# 3. LISTEN in one session, NOTIFY from another.  psql reports a
	# notification after the command during which it arrived.
	local payload="berth-$$-$RANDOM" listener
	PGAPPNAME=berth-check-listener "${psql[@]}" -c "LISTEN berth_check" -c "SELECT pg_sleep(2)" \
		-c "SELECT 1" >"$tmp/listener.out" 2>&1 &
	listener=$!
	for ((i = 0; i < 100; i++)); do
		out=$("${psql[@]}" -c "SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'berth-check-listener' AND query LIKE '%pg_sleep%'") || true
		[ "$out" = 1 ] && break
		sleep 0.1
	done
	[ "$out" = 1 ] || { kill "$listener" 2>/dev/null; fail "LISTEN/NOTIFY: the listener never started"; }
	"${psql[@]}" -c "NOTIFY berth_check, '$payload'" || fail "LISTEN/NOTIFY: NOTIFY failed"
	wait "$listener" || fail "LISTEN/NOTIFY: listener failed: $(cat "$tmp/listener.out")"
	grep -q "notification \"berth_check\" with payload \"$payload\"" "$tmp/listener.out" ||
		fail "LISTEN/NOTIFY: the listener did not receive the payload: $(cat "$tmp/listener.out")"
	echo "check: LISTEN/NOTIFY ok"

	# 4. Berth's metadata schema, in its PostgreSQL form, on a scratch
	# database, in one transaction.
	local schema=$HERE/postgres-schema-check.sql db="berth_check_$$"
	[ -f "$schema" ] || fail "missing $schema"
	"${psql[@]}" -c "CREATE DATABASE $db" || fail "schema: cannot create database $db"
	local scratch=${BERTH_PG_DSN%/berth}/$db
	if ! "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 --single-transaction -d "$scratch" \
		-f "$schema" >"$tmp/schema.out" 2>&1; then
		"${psql[@]}" -c "DROP DATABASE $db" || true
		fail "schema: $(cat "$tmp/schema.out")"
	fi
	out=$("$PG_BIN/psql" -X -q -A -t -d "$scratch" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
	echo "check: metadata schema applied ($out tables)"

	# 5. With a compiler and the source tree at hand: the migrations and
	# statements of schema.c, as the PostgreSQL driver would send them,
	# against that schema.
	local root
	root=$(cd "$HERE/../.." && pwd)
	if [ -f "$root/src/meta/sql/schema.c" ] && command -v cc >/dev/null; then
		sql_source_check "$root" "$tmp" "$scratch" "$db" || {
			"${psql[@]}" -c "DROP DATABASE $db" || true
			"${psql[@]}" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS ${db}_m" || true
			exit 1
		}
	else
		echo "check: schema.c comparison skipped (no C compiler or no source tree)"
	fi
	"${psql[@]}" -c "DROP DATABASE $db" || fail "schema: cannot drop database $db"
	echo "postgres.sh check: all ok on 127.0.0.1:$PORT"
}

# One line per column, index, constraint and settings row of a database,
# sorted: equal output means equal schemas.
SCHEMA_SHAPE="
SELECT format('column %s.%s %s %s %s %s %s %s', table_name, ordinal_position, column_name,
  data_type, collation_name, is_nullable, is_identity, column_default)
  FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'schema_version'
UNION ALL SELECT 'index ' || indexdef FROM pg_indexes
  WHERE schemaname = 'public' AND tablename <> 'schema_version'
UNION ALL SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  AND conrelid::regclass::text <> 'schema_version'
UNION ALL SELECT format('row settings %s %s', name, value) FROM settings
ORDER BY 1"

# Statements PostgreSQL does not prepare: the driver sends the
# transaction's own as they are (docs/postgres-schema.md).
SQLITE_ONLY="begin commit rollback"

sql_source_check() {
	local root=$1 tmp=$2 scratch=$3 db=$4 names
	names=$(sed -n '/^enum brt_sql_stmt {/,/BRT_SQL_COUNT/p' "$root/src/meta/sql/schema.h" |
		grep -o 'BRT_SQL_[A-Z0-9_]*' | grep -vx BRT_SQL_COUNT |
		sed 's/^BRT_SQL_//' | tr '[:upper:]' '[:lower:]' | sed 's/.*/"&",/' | tr -d '\n')
	printf '#define BERTH_SQL_NAMES %s\n' "$names" >"$tmp/names.h"
	cc -std=c11 -I"$root/src" -include "$tmp/names.h" -o "$tmp/sql-dump" \
		"$HERE/postgres-sql-dump.c" "$root/src/meta/sql/schema.c" "$root/src/meta/pg/ddl.c" \
		"$root/src/common/dynbuf.c" "$root/src/common/error.c" 2>"$tmp/cc.err" ||
		fail "sql dump: $(cat "$tmp/cc.err")"

	# The migrations as the driver substitutes them (src/meta/pg/ddl.c)
	# must be the substitutions of docs/postgres-schema.md, and build
	# exactly the schema of postgres-schema-check.sql.
	"$tmp/sql-dump" pg-migrations >"$tmp/migrations.sql" || fail "sql dump: pg-migrations"
	"$tmp/sql-dump" migrations | sed -E \
		-e 's/INTEGER PRIMARY KEY AUTOINCREMENT/BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY/g' \
		-e 's/\bINTEGER\b/BIGINT/g' -e 's/\bBLOB\b/BYTEA/g' -e 's/\bTEXT\b/TEXT COLLATE "C"/g' \
		>"$tmp/migrations.sed"
	cmp -s "$tmp/migrations.sql" "$tmp/migrations.sed" ||
		fail "the driver's DDL substitutions differ from docs/postgres-schema.md's"
	local mdb=${db}_m
	local mscratch=${BERTH_PG_DSN%/berth}/$mdb
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$BERTH_PG_DSN" -c "CREATE DATABASE $mdb" ||
		fail "migrations: cannot create database $mdb"
	if ! "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 --single-transaction -d "$mscratch" \
		-f "$tmp/migrations.sql" >"$tmp/migrations.out" 2>&1; then
		echo "postgres.sh check: FAILED: schema.c migrations: $(cat "$tmp/migrations.out")" >&2
		return 1
	fi
	"$PG_BIN/psql" -X -q -A -t -d "$scratch" -c "$SCHEMA_SHAPE" >"$tmp/shape.sql-file"
	"$PG_BIN/psql" -X -q -A -t -d "$mscratch" -c "$SCHEMA_SHAPE" >"$tmp/shape.migrations"
	"$PG_BIN/psql" -X -q -d "$BERTH_PG_DSN" -c "DROP DATABASE $mdb"
	if ! diff "$tmp/shape.sql-file" "$tmp/shape.migrations" >"$tmp/shape.diff"; then
		echo "postgres.sh check: FAILED: postgres-schema-check.sql (<) differs from" \
			"schema.c's migrations (>):" >&2
		cat "$tmp/shape.diff" >&2
		return 1
	fi
	echo "check: schema.c's $(wc -l <"$tmp/migrations.sql") migrations build the same schema" \
		"($(wc -l <"$tmp/shape.migrations") columns, indexes and constraints)"

	# Every statement, with $N for ?N, prepared on that schema.
	"$tmp/sql-dump" statements | sed -E 's/\?([0-9]+)/$\1/g' >"$tmp/statements.tsv"
	grep -q '[\]' "$tmp/statements.tsv" && fail "a statement holds a backslash; the COPY below would mangle it"
	"$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$scratch" >"$tmp/prepare.out" 2>&1 <<EOF || {
CREATE TEMP TABLE stmt (name TEXT, sql TEXT);
CREATE TEMP TABLE failed (name TEXT, message TEXT);
\\copy stmt FROM '$tmp/statements.tsv'
DO \$\$
DECLARE r record;
BEGIN
  FOR r IN SELECT name, sql FROM stmt LOOP
    BEGIN
      EXECUTE format('PREPARE %I AS %s', r.name, r.sql);
    EXCEPTION WHEN others THEN
      INSERT INTO failed VALUES (r.name, SQLERRM);
    END;
  END LOOP;
END \$\$;
SELECT 'prepared ' || count(*) FROM pg_prepared_statements;
SELECT 'failed ' || name || ': ' || message FROM failed ORDER BY name;
SELECT 'int4 ' || name || ' ' || parameter_types::text FROM pg_prepared_statements
  WHERE 'integer'::regtype = ANY (parameter_types) ORDER BY name;
EOF
		echo "postgres.sh check: FAILED: preparing statements: $(cat "$tmp/prepare.out")" >&2
		return 1
	}
	local failed
	failed=$(sed -n 's/^failed \([a-z0-9_]*\):.*/\1/p' "$tmp/prepare.out" | tr '\n' ' ' | sed 's/ $//')
	if [ "$failed" != "$SQLITE_ONLY" ]; then
		echo "postgres.sh check: FAILED: statements that PostgreSQL does not prepare" \
			"(expected only: $SQLITE_ONLY):" >&2
		grep '^failed ' "$tmp/prepare.out" >&2
		return 1
	fi
	echo "check: schema.c's statements: $(sed -n 's/^prepared //p' "$tmp/prepare.out") prepare," \
		"not preparable as expected: $failed"
	# Known (docs/postgres-schema.md), not a failure: a parameter typed
	# integer overflows past 2^31 - 1.
	sed -n 's/^int4 /check: warning: a parameter typed integer (32-bit): /p' "$tmp/prepare.out"
}

[ $# -ge 2 ] || usage
ACTION=$1
DIR=$(abspath "$2")
PORT=${3:-}
[ "$DIR" != / ] || die "refusing DIR=/"
case $ACTION in
start) [ $# -le 3 ] || usage; cmd_start ;;
stop) [ $# -eq 2 ] || usage; cmd_stop ;;
check) [ $# -eq 2 ] || usage; cmd_check ;;
*) usage ;;
esac
