# Shared by the berth-edge e2e tests (sourced after lib.sh): where the
# binary is, and starting and stopping the proxy on a free port.
if [ -z "${BERTH_EDGE:-}" ]; then
	BERTH_EDGE=$(dirname "$BERTHD")/berth-edge
fi
EDGE_PID=
EDGE_URL=

# edge_start ARGS...: start berth-edge on a free port with ARGS (upstream
# and credentials) and wait until GET /v2/ answers 200 through it.
edge_start() {
	local dir=$E2E_TMP/srv-edge$((++E2E_SRV_SEQ)) port i code
	mkdir -p "$dir"
	EDGE_LOG=$dir/berthd.log # named so that a failed run prints it
	port=$(e2e_free_port) || return 1
	"$BERTH_EDGE" --listen "127.0.0.1:$port" --threads 2 "$@" >>"$EDGE_LOG" 2>&1 &
	EDGE_PID=$!
	E2E_PIDS+=("$EDGE_PID")
	EDGE_URL=http://127.0.0.1:$port
	for i in $(seq 1 100); do
		kill -0 "$EDGE_PID" 2>/dev/null || break
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$EDGE_URL/v2/")
		[ "$code" = 200 ] && {
			ok "berth-edge $* answers GET /v2/ with 200"
			return 0
		}
		sleep 0.1
	done
	fail "berth-edge did not start or /v2/ did not answer 200 (last: $code)" "$(tail -n 20 "$EDGE_LOG")"
	return 1
}

edge_stop() {
	[ -n "$EDGE_PID" ] || return 0
	e2e_stop_pid "$EDGE_PID"
	local rc=$?
	e2e_forget_pid "$EDGE_PID"
	EDGE_PID=
	expect_eq "berth-edge exit status after SIGTERM" "$rc" 0
}

# through: the next areq calls go to the proxy, with no credentials of
# their own; back: to the upstream again, as before.  The upstream's URL
# and TLS arguments stay in UPSTREAM_URL and UPSTREAM_TLS meanwhile.
EDGE_THROUGH=0
through() {
	if [ "$EDGE_THROUGH" = 0 ]; then
		UPSTREAM_URL=$BERTH_URL
		UPSTREAM_TLS=("${AUTH_TLS[@]}")
	fi
	EDGE_THROUGH=1
	BERTH_URL=$EDGE_URL
	AUTH_TLS=()
	as none ""
}
back() {
	[ "$EDGE_THROUGH" = 1 ] || return 0
	EDGE_THROUGH=0
	BERTH_URL=$UPSTREAM_URL
	AUTH_TLS=("${UPSTREAM_TLS[@]}")
}
