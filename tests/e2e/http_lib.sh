# Helpers for the HTTP-layer tests (test_http_*.sh), sourced after lib.sh:
#   http_config FILE KEY: VALUE...   write a YAML config with those http.* keys
#   attack ARGS...                   run http_attack.py against BERTH_PORT
#                                    (prints its JSON)
#   jget JSON EXPR                   jq -r EXPR on JSON
#   expect_le NAME GOT MAX / expect_ge NAME GOT MIN   numeric assertions
#                                    (decimals allowed; empty GOT fails)
# shellcheck shell=bash

HTTP_ATTACK=$BERTH_E2E_DIR/http_attack.py

http_config() {
	local file=$1 kv
	shift
	printf 'http:\n' >"$file"
	for kv in "$@"; do
		printf '  %s\n' "$kv" >>"$file"
	done
}

attack() {
	local sub=$1
	shift
	timeout 120 "$E2E_PY" "$HTTP_ATTACK" "$sub" "$BERTH_PORT" "$@"
}

jget() { jq -r "$2" <<<"$1"; }

expect_le() {
	if [ -n "$2" ] && [ "$2" != null ] && awk -v g="$2" -v m="$3" 'BEGIN { exit !(g <= m) }'; then
		ok "$1: $2 <= $3"
	else
		fail "$1: $2, want <= $3"
	fi
}

expect_ge() {
	if [ -n "$2" ] && [ "$2" != null ] && awk -v g="$2" -v m="$3" 'BEGIN { exit !(g >= m) }'; then
		ok "$1: $2 >= $3"
	else
		fail "$1: $2, want >= $3"
	fi
}
