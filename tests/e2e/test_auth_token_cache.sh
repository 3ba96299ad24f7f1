#!/usr/bin/env bash
# Cached bearer tokens (issue 10): the server keeps the tokens each thread
# verified, found by their bytes, so these checks send a token again on the
# same keep-alive connections it was cached for (several connections, held
# open together, so that every server thread has it) and on new ones:
# refused on the next request once its key is revoked (through the admin
# command, another process), once its key has expired, once the token has
# expired (token_ttl); a token with one byte changed (same length) refused
# while the original is cached; tokens of two accounts on one connection
# never lend each other their account or grants.  The requests come from
# token_cache_client.py (http.client, one socket per named connection).
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/auth_lib.sh"

T_START=$SECONDS
W=$E2E_WORK
CONNS=(c0 c1 c2 c3 c4 c5 c6 c7)

# The scenario is written first, naming tokens (they live 15 s: token_ttl);
# the tokens are fetched right before the client runs.  step JSON: append
# a step; kreq CONN PATH TOKEN-NAME WANT LABEL [TAMPER]: a request step;
# run_scenario FILE TOKENS-JSON: run the steps written so far (and start
# afresh), turning the client's PASS/FAIL lines into assertions.
STEPS=$W/steps
: >"$STEPS"
step() { printf '%s\n' "$1" >>"$STEPS"; }
kreq() {
	printf '{"req":"%s","path":"%s","token":"%s","want":%s,"label":"%s"%s}\n' "$1" "$2" "$3" "$4" "$5" \
		"${6:+,\"tamper\":$6}" >>"$STEPS"
}
open_conns() { step "{\"open\":[$(printf '"%s",' "$@" | sed 's/,$//')]}"; }
run_scenario() {
	local file=$1 line n=0
	jq -s . "$STEPS" >"$file" || fail "scenario $file is not JSON"
	: >"$STEPS"
	printf '%s\n' "$2" >"$file.tokens"
	while IFS= read -r line; do
		n=$((n + 1))
		case $line in
		"PASS "*) ok "${line#PASS }" ;;
		"FAIL "*) fail "${line#FAIL }" ;;
		*) fail "client: $line" ;;
		esac
	done < <("$E2E_PY" "$HERE/token_cache_client.py" "$BERTH_URL" "$file" "$file.tokens" 2>&1)
	[ "$n" -gt 0 ] || fail "the keep-alive client ran no checks"
}
# tokens_json NAME=VALUE...: the client's tokens file, issued now.
tokens_json() {
	local a args=()
	for a in "$@"; do args+=(--arg "${a%%=*}" "${a#*=}"); done
	jq -nc --argjson issued "$(date +%s)" "${args[@]}" '{issued: $issued, tokens: $ARGS.named}'
}

section "setup"
cat >"$W/config.yml" <<EOF
http:
  threads: 2
auth:
  token_ttl: 15
EOF
auth_start --config "$W/config.yml" || exit 1
auth_require_auth
auth_new_account A alpha
auth_new_account B beta
auth_new_key A_KEY_ID A_KEY "$A"
auth_new_key B_KEY_ID B_KEY "$B" --pull-only
auth_new_key A_REV_ID A_REV "$A"
AUTH_REALM=$BERTH_URL/v2/token
AUTH_SERVICE=berth
BA=$(auth_basic KEY "$A_KEY")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
make_blob "$W/layer" 3000 token-cache-layer
make_manifest "$W/m" "$W/cfg" "$MT_OCI_CONFIG" "$W/layer"
as A-basic "$BA"
apush_blob "$A/app" "$W/cfg"
apush_blob "$A/app" "$W/layer"
apush_manifest "$A/app" v1 "$W/m"
auth_new_key B_PUSH_ID B_PUSH "$B"
as B-basic "$(auth_basic KEY "$B_PUSH")"
apush_blob "$B/app" "$W/cfg"
apush_blob "$B/app" "$W/layer"
apush_manifest "$B/app" v1 "$W/m"
PA=/v2/$A/app/tags/list
PB=/v2/$B/app/tags/list

section "one connection, two accounts; tampered tokens; revocation"
open_conns "${CONNS[@]}"
for c in "${CONNS[@]}"; do
	kreq "$c" "$PA" TR 200 "$c: revocable key's token (first use)"
	kreq "$c" "$PA" TR 200 "$c: revocable key's token (cached)"
done
for i in 1 2 3; do
	kreq c0 "$PA" TA 200 "c0 round $i: A's token on A/app"
	kreq c0 "$PB" TB 200 "c0 round $i: B's token on B/app"
	kreq c0 "$PB" TA 403 "c0 round $i: A's token on B/app (denied)"
	kreq c0 "$PA" TB 403 "c0 round $i: B's token on A/app (denied)"
	kreq c0 "/v2/$A/other/tags/list" TA 401 "c0 round $i: A's token beyond its grant"
done
# One character changed in each part, at its start, middle and end (the
# last signature character keeps the length but may land on bits that
# base64url's canonical form forbids: refused either way).
for part in 0 1 2; do
	for pos in 0 17 -1; do
		t="[$part,$pos]"
		kreq c0 "$PA" TA 401 "c0: A's token, part $part char $pos changed (original cached)" "$t"
		kreq c1 "$PA" TA 401 "c1: A's token, part $part char $pos changed" "$t"
		kreq new "$PA" TA 401 "new connection: A's token, part $part char $pos changed" "$t"
		kreq c0 "$PA" TA 200 "c0: A's token itself, after the tampered one"
	done
done
step "$(jq -nc --arg b "$BERTHD" --arg id "$A_REV_ID" --arg d "$BERTH_DATA" \
	'{run: [$b, "key", "revoke", $id, "--data-dir", $d], label: "berthd key revoke (another process)"}')"
for c in "${CONNS[@]}"; do
	kreq "$c" "$PA" TR 401 "$c: revoked key's token, same connection"
done
for i in 1 2 3 4 5 6 7 8; do
	kreq new "$PA" TR 401 "new connection $i: revoked key's token"
done
kreq c0 "$PA" TA 200 "c0: another key's token still works"
kreq c1 "$PB" TB 200 "c1: B's token still works"
auth_token TA "$BA" "repository:$A/app:pull"
expect_resp 200
auth_token TB "$(auth_basic KEY "$B_KEY")" "repository:$B/app:pull"
expect_resp 200
auth_token TR "$(auth_basic KEY "$A_REV")" "repository:$A/app:pull"
expect_resp 200
run_scenario "$W/scenario1.json" "$(tokens_json "TA=$TA" "TB=$TB" "TR=$TR")"

section "key expiry and token expiry on kept connections"
DCONNS=(d0 d1 d2 d3 d4 d5 d6 d7)
open_conns "${DCONNS[@]}"
for c in "${DCONNS[@]}"; do
	for n in 1 2; do
		kreq "$c" "$PA" TE 200 "$c: expiring key's token ($n)"
		kreq "$c" "$PA" TX 200 "$c: 15 s token ($n)"
	done
done
step '{"sleep_until": 9}'
for c in "${DCONNS[@]}"; do
	kreq "$c" "$PA" TE 401 "$c: token of an expired key, same connection"
	kreq "$c" "$PA" TX 200 "$c: 15 s token, not yet expired"
done
kreq new "$PA" TE 401 "new connection: token of an expired key"
step '{"sleep_until": 16}'
for c in "${DCONNS[@]}"; do
	kreq "$c" "$PA" TX 401 "$c: expired token, same connection"
done
kreq new "$PA" TX 401 "new connection: expired token"
# The key expires 8 s after it is made, the tokens 15 s after they are
# issued: "issued" is taken after both, so +9 s is past the key's end and
# +16 s past the tokens'.
auth_new_key A_EXP_ID A_EXP "$A" --expires 8s
auth_token TE "$(auth_basic KEY "$A_EXP")" "repository:$A/app:pull"
expect_resp 200
auth_token TX "$BA" "repository:$A/app:pull"
expect_resp 200
run_scenario "$W/scenario2.json" "$(tokens_json "TE=$TE" "TX=$TX")"
auth_stop

echo "total $((SECONDS - T_START)) s"
berth_done
