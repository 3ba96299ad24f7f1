#!/usr/bin/env bash
# berth-edge's token flow and connection cache.  Against the scripted
# upstream (edge_fake_upstream.py, tokens living 10 s): a 401 with a Bearer
# challenge on the upstream's own origin makes berth-edge fetch a token
# with the gateway's key (Basic KEY:<key>) and retry once; the token then
# serves later requests of that scope with no further token request, is
# replaced before it expires, and a second 401 passes through; a realm on
# another origin (another port, or "origin@other-host") never sees a
# request.  Upstream connections are shared by the server threads.
# Against a real berthd: a valid key pulls without any token request; a
# revoked one follows berthd's own challenge to its token endpoint once
# and the 401 passes through.  The YAML configuration end to end:
# berth-edge started with only --config (its key, listen address, threads,
# cache and allow_push in force), flags over the file (credentials,
# --listen, --threads, --cache-max-bytes), bad files refused with the
# file, line and key named.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/auth_lib.sh"
. "$HERE/edge_lib.sh"
W=$E2E_WORK
TTL=10

if [ ! -x "$BERTH_EDGE" ]; then
	fail "berth-edge binary not found at $BERTH_EDGE"
	berth_done
	exit 1
fi

# through: requests go to the proxy, without credentials.
through() {
	BERTH_URL=$EDGE_URL
	AUTH_TLS=()
	as none ""
}

# log_since N FILTER: the fake's log lines after the first N, through jq.
log_since() { tail -n +$(($1 + 1)) "$W/fake.log" | jq -c "$2"; }
log_lines() { wc -l <"$W/fake.log"; }
token_requests() { jq -c 'select(.path | startswith("/v2/token"))' "$W/fake.log" | wc -l; }

section "scripted upstream with token authentication"
"$E2E_PY" "$HERE/edge_fake_upstream.py" "$W/fake.port" "$W/fake.log" "$TTL" 2>"$W/fake.err" &
E2E_PIDS+=($!)
for i in $(seq 1 100); do
	[ -s "$W/fake.port" ] && break
	sleep 0.1
done
FAKE_URL=http://127.0.0.1:$(cat "$W/fake.port")
printf 'brt_gateway_key\n' >"$W/fake.key"
BASIC=$(auth_basic KEY brt_gateway_key)
edge_start --upstream "$FAKE_URL" --access-key-file "$W/fake.key" --threads 4 || exit 1

section "a challenge is answered with a token, once"
through
start=$(log_lines)
areq GET /v2/tok/app/manifests/v1
ISSUED_MS=$(($(date +%s%N) / 1000000))
expect_resp 200
expect_json .token accepted
seen=$(log_since "$start" '[.server, .path, .authorization]')
expect_eq "upstream saw: the request, the token request, the retry" "$seen" \
	"$(printf '%s\n' \
		'["main","/v2/tok/app/manifests/v1","Bearer brt_gateway_key"]' \
		"[\"main\",\"/v2/token?service=fake%20registry&scope=repository%3Atok%2Fapp%3Apull\",\"$BASIC\"]" \
		'["main","/v2/tok/app/manifests/v1","Bearer tok-1"]')"
start=$(log_lines)
for path in /v2/tok/app/manifests/v2 /v2/tok/app/tags/list "/v2/tok/app/blobs/sha256:$(printf 'a%.0s' $(seq 1 64))"; do
	areq GET "$path"
	expect_resp 200
	areq HEAD "$path"
	expect_resp 200
done
expect_eq "token requests after 6 more requests of the same scope" "$(token_requests)" 1
expect_eq "those 6 went straight with the token" \
	"$(log_since "$start" .authorization | sort | uniq -c | sed 's/^ *//')" '6 "Bearer tok-1"'
areq GET /v2/tok/other/manifests/v1
expect_resp 200
expect_eq "another repository (scope): its own token" "$(token_requests)" 2
expect_eq "  sent for that scope" "$(log_since "$(($(log_lines) - 1))" .authorization)" '"Bearer tok-2"'

section "the token is replaced before it expires"
# tok-1 is handed out until TTL - 1 s after it was issued; the fake takes
# it until TTL.  Half-way between the two:
wait_ms=$((ISSUED_MS + TTL * 1000 - 500 - $(date +%s%N) / 1000000))
if [ "$wait_ms" -gt 0 ]; then
	sleep "$(printf '%d.%03d' $((wait_ms / 1000)) $((wait_ms % 1000)))"
else
	fail "the requests before took too long to check the margin ($((-wait_ms)) ms late)"
fi
start=$(log_lines)
areq GET /v2/tok/app/manifests/v1
expect_resp 200
expect_eq "token requests after the token's time" "$(token_requests)" 3
expect_eq "the old token was not sent again" \
	"$(log_since "$start" 'select(.authorization == "Bearer tok-1")' | wc -l)" 0
areq GET /v2/tok/app/manifests/v1
expect_resp 200
expect_eq "the new token serves the next request" "$(log_since "$(($(log_lines) - 1))" .authorization)" \
	'"Bearer tok-3"'

section "a 401 to a fresh token passes through, once"
start=$(log_lines)
areq GET /v2/deny/app/manifests/v1
expect_resp 401 UNAUTHORIZED
expect_no_header WWW-Authenticate
expect_eq "upstream saw: the request, one token request, one retry" \
	"$(log_since "$start" .path | tr '\n' ' ')" \
	'"/v2/deny/app/manifests/v1" "/v2/token?service=fake%20registry&scope=repository%3Adeny%2Fapp%3Apull" "/v2/deny/app/manifests/v1" '

section "a realm on another origin is not followed"
start=$(log_lines)
areq GET /v2/far/app/manifests/v1
expect_resp 401 UNAUTHORIZED
areq HEAD /v2/trick/app/manifests/v1
expect_resp 401
expect_eq "upstream requests for the two" "$(log_since "$start" .path | wc -l)" 2
expect_eq "requests the other origin received" "$(jq -c 'select(.server == "third")' "$W/fake.log" | wc -l)" 0
expect_match "berth-edge said why" "$(cat "$EDGE_LOG")" "realm http://127\.0\.0\.1:[0-9]+/v2/token, not on $FAKE_URL"

section "one connection cache for all server threads"
requests=$(jq -c 'select(.server == "main")' "$W/fake.log" | wc -l)
connections=$(jq -r 'select(.server == "main") | .port' "$W/fake.log" | sort -u | wc -l)
threads=$(ls "/proc/$EDGE_PID/task" | wc -l)
if [ "$requests" -ge 20 ] && [ "$connections" = 1 ]; then
	ok "$requests upstream requests (token requests too) from $threads threads over 1 connection"
else
	fail "$requests upstream requests over $connections connections (want 1: one shared cache)"
fi
edge_stop

section "the YAML configuration: berth-edge with only --config"
# edge_start_config FILE PORT: berth-edge with nothing but --config FILE
# (whose listen: is 127.0.0.1:PORT), up when /v2/ answers 200 there.
edge_start_config() {
	local i code
	EDGE_LOG=$E2E_TMP/srv-edge-config$((++E2E_SRV_SEQ))/berthd.log
	mkdir -p "$(dirname "$EDGE_LOG")"
	"$BERTH_EDGE" --config "$1" >>"$EDGE_LOG" 2>&1 &
	EDGE_PID=$!
	E2E_PIDS+=("$EDGE_PID")
	EDGE_URL=http://127.0.0.1:$2
	for i in $(seq 1 100); do
		kill -0 "$EDGE_PID" 2>/dev/null || break
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$EDGE_URL/v2/")
		[ "$code" = 200 ] && {
			ok "berth-edge --config $1 answers GET /v2/ on the file's listen address"
			return 0
		}
		sleep 0.1
	done
	fail "berth-edge --config $1 did not start (last: $code)" "$(tail -n 20 "$EDGE_LOG")"
	return 1
}
PORT_FILE=$(e2e_free_port)
mkdir -p "$W/cache"
cat >"$W/edge.yaml" <<YAML
# written by test_edge_token.sh
listen: 127.0.0.1:$PORT_FILE
upstream: $FAKE_URL
access_key_file: $W/fake.key
threads: 2
cache:
  dir: $W/cache
  max_bytes: 1MiB
allow_push: true
YAML
tokens_before=$(token_requests)
edge_start_config "$W/edge.yaml" "$PORT_FILE" || exit 1
through
areq GET /v2/tok/yaml/manifests/v1
expect_resp 200
expect_eq "a token fetched with the file's access key" "$(token_requests)" $((tokens_before + 1))
expect_eq "  as Basic KEY:<key>" "$(jq -r 'select(.path | startswith("/v2/token")) | .authorization' "$W/fake.log" | tail -n 1)" "$BASIC"
log=$(grep -E "berth-edge .* on |caching content" "$EDGE_LOG")
expect_match "threads and allow_push from the file" "$log" "forwarding pulls and pushes to $FAKE_URL as an access key, 2 threads"
expect_match "the cache and its bound from the file" "$log" "caching content fetched by digest in $W/cache \\(bound: 1048576 bytes"
edge_stop

section "the YAML configuration: flags override the file"
printf 'brt_wrong_key\n' >"$W/wrong.key"
sed -e "s|^access_key_file: .*|access_key_file: $W/wrong.key|" -e 's|^threads: 2|threads: 3|' \
	-e 's|^allow_push: true|allow_push: false|' "$W/edge.yaml" >"$W/edge-wrong.yaml"
# The file alone: its (wrong) key gets no token, the 401 passes through.
edge_start_config "$W/edge-wrong.yaml" "$PORT_FILE" || exit 1
through
areq GET /v2/tok/yaml/manifests/v1
expect_resp 401 UNAUTHORIZED
expect_eq "the token service saw the file's key" \
	"$(jq -r 'select(.path | startswith("/v2/token")) | .authorization' "$W/fake.log" | tail -n 1)" \
	"$(auth_basic KEY brt_wrong_key)"
edge_stop
# The same file with --listen, --threads (edge_start) and --access-key-file.
edge_start --config "$W/edge-wrong.yaml" --access-key-file "$W/fake.key" --cache-max-bytes 2KiB || exit 1
through
areq GET /v2/tok/yaml/manifests/v1
expect_resp 200
expect_eq "the token service saw the flag's key" \
	"$(jq -r 'select(.path | startswith("/v2/token")) | .authorization' "$W/fake.log" | tail -n 1)" "$BASIC"
log=$(grep -E "berth-edge .* on |caching content" "$EDGE_LOG")
expect_match "--listen and --threads over the file's" "$log" "on $(printf '%s' "${EDGE_URL#http://}" | sed 's/\./\\./g') .*forwarding pulls to .* 2 threads"
expect_match "--cache-max-bytes 2KiB over the file's, the file's cache.dir kept" "$log" \
	"in $W/cache \\(bound: 2048 bytes"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT_FILE/v2/")
expect_eq "nothing listens on the file's address" "$code" 000
edge_stop

section "the YAML configuration: a bad file is refused before starting"
printf 'upstream: %s\naccess_key_file: %s\ncache:\n  max_bytes: 10 GB\n' "$FAKE_URL" "$W/fake.key" >"$W/bad.yaml"
"$BERTH_EDGE" --config "$W/bad.yaml" >/dev/null 2>"$W/err"
expect_eq "bad size: exit status" "$?" 2
expect_match "bad size: the message names the file, the line and the key" "$(cat "$W/err")" \
	"config $W/bad\\.yaml line 4: cache\\.max_bytes must be a number of bytes"
printf 'upstream: %s\nlisten: 127.0.0.1:1\nlisten: 127.0.0.1:2\n' "$FAKE_URL" >"$W/bad.yaml"
"$BERTH_EDGE" --config "$W/bad.yaml" --access-key-file "$W/fake.key" >/dev/null 2>"$W/err"
expect_eq "a key twice: exit status" "$?" 2
expect_match "a key twice: named with its line" "$(cat "$W/err")" "line 3: listen is given twice"
printf 'upstream: %s\nthread: 2\n' "$FAKE_URL" >"$W/bad.yaml"
"$BERTH_EDGE" --config "$W/bad.yaml" --access-key-file "$W/fake.key" >/dev/null 2>"$W/err"
expect_eq "an unknown key: exit status" "$?" 2
expect_match "an unknown key: named with its line" "$(cat "$W/err")" "line 2: unknown key thread"

section "a real berthd: a valid key needs no token, a revoked one follows berthd's challenge once"
auth_start || exit 1
auth_require_auth
auth_new_account A alpha
auth_new_key A_PUSH_ID A_PUSH "$A"
auth_new_key A_PULL_ID A_PULL "$A" --pull-only
as A-push "Bearer $A_PUSH"
make_blob "$W/layer" 5000 layer
apush_blob "$A/app" "$W/layer"
LAYER=$(digest_of "$W/layer")
printf '%s\n' "$A_PULL" >"$W/a-pull.key"
UPSTREAM=$BERTH_URL
edge_start --upstream "$UPSTREAM" --access-key-file "$W/a-pull.key" || exit 1
through
areq GET "/v2/$A/app/blobs/$LAYER"
expect_resp 200
expect_body_file "$W/layer"
token_log() { grep -c 'path=/v2/token' "$BERTH_LOG"; }
expect_eq "token requests berthd saw for a valid key" "$(token_log)" 0
auth_revoke "$A_PULL_ID"
areq GET "/v2/$A/app/blobs/$LAYER"
expect_resp 401 UNAUTHORIZED
expect_no_header WWW-Authenticate
expect_eq "token requests berthd saw for the revoked key" "$(token_log)" 1
expect_match "berth-edge asked berthd's own token endpoint" "$(cat "$EDGE_LOG")" \
	"token request to ${UPSTREAM//./\\.}/v2/token: status 401"
edge_stop
auth_stop
berth_done
