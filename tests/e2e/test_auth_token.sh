#!/usr/bin/env bash
# The token flow (issue 3): the Bearer challenge (realm from the Host
# header, service, scope per request kind), the token endpoint by GET with
# one or several scopes and by POST form (grant_type=password), the answer's
# fields (token = access_token, a HS256 JWT that does not carry the secret,
# expires_in, issued_at), tokens working within their grant and giving 401
# with a challenge naming the needed scope beyond it, foreign and unknown
# scopes dropped without error, the catalog scope, bad credentials, tampered
# tokens, revocation ending a token on the next request, token_ttl expiry,
# public_host and service from the configuration, and auth mode none.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/auth_lib.sh"

T_START=$SECONDS
W=$E2E_WORK

section "setup"
berth_start || exit 1
auth_require_auth
auth_new_account A alpha
auth_new_account B beta
AUTH_LABEL[$A]=A
AUTH_LABEL[$B]=B
auth_new_key A_PUSH_ID A_PUSH "$A"
auth_new_key A_PULL_ID A_PULL "$A" --pull-only
auth_new_key A_REV_ID A_REV "$A"
auth_new_key A_EXP_ID A_EXP "$A" --expires 6s
T_EXP=$SECONDS
AUTH_REALM=$BERTH_URL/v2/token
AUTH_SERVICE=berth
auth_token TOKE "$(auth_basic KEY "$A_EXP")" "repository:$A/app:pull"
expect_resp 200
as expiring-key-token "Bearer $TOKE"
areq GET /v2/
expect_resp 200
auth_new_key B_PUSH_ID B_PUSH "$B"
BA=$(auth_basic KEY "$A_PUSH")
BA_PULL=$(auth_basic KEY "$A_PULL")
BB=$(auth_basic KEY "$B_PUSH")

printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$W/cfg"
make_blob "$W/layer" 4000 token-layer
make_manifest "$W/m" "$W/cfg" "$MT_OCI_CONFIG" "$W/layer"
M=$(digest_of "$W/m")
L=$(digest_of "$W/layer")
for r in "$A/app" "$A/other"; do
	as A-basic "$BA"
	apush_blob "$r" "$W/cfg"
	apush_blob "$r" "$W/layer"
	apush_manifest "$r" v1 "$W/m"
done
as B-basic "$BB"
apush_blob "$B/app" "$W/cfg"
apush_blob "$B/app" "$W/layer"
apush_manifest "$B/app" v1 "$W/m"

# ------------------------------------------------------------------ challenge
section "the challenge"
as none ""
areq GET /v2/
expect_resp 401 UNAUTHORIZED "Bearer realm=\"$(re_quote "$BERTH_URL")/v2/token\",service=\"berth\""
auth_discover
RA=$(re_quote "$A/app")
areq GET "/v2/$A/app/tags/list"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:pull")"
areq HEAD "/v2/$A/app/manifests/v1"
expect_resp 401 - "$(challenge_re "repository:$RA:pull")"
areq GET "/v2/$A/app/blobs/$L"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:pull")"
areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:pull,push")"
areq PUT "/v2/$A/app/manifests/v2" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$W/m"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:pull,push")"
areq DELETE "/v2/$A/app/manifests/$M"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:delete")"
areq DELETE "/v2/$A/app/blobs/$L"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:delete")"
areq GET /v2/_catalog
expect_resp 401 UNAUTHORIZED "$(challenge_re)(,scope=\"registry:catalog:\\*\")?"
# The realm follows the Host header when no public_host is configured.
areq GET /v2/ -H 'Host: registry.example.test:5443'
expect_resp 401 UNAUTHORIZED 'Bearer realm="http://registry\.example\.test:5443/v2/token",service="berth"'
# The realm is reachable (same server) and asks for credentials itself.
areq GET "$AUTH_REALM?service=berth&scope=repository:$A/app:pull"
expect_resp 401 UNAUTHORIZED

# ------------------------------------------------------------------ GET token
section "GET /v2/token: the answer"
T0=$(date -u +%s)
auth_token TOK "$BA" "repository:$A/app:pull"
expect_resp 200
expect_header Content-Type 'application/json(;.*)?'
expect_json '[has("token"), has("access_token"), has("expires_in"), has("issued_at")] | all' true
expect_json '(.token | type) + " " + (.access_token | type) + " " + (.expires_in | type) + " " + (.issued_at | type)' \
	"string string number string"
expect_json '.token == .access_token' true
expect_json '.expires_in' 300
ISSUED=$(jq -r .issued_at <"$REQ_BODY_FILE")
expect_match "issued_at is RFC 3339" "$ISSUED" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$'
ISSUED_S=$(date -u -d "$ISSUED" +%s 2>/dev/null || echo 0)
if [ $((ISSUED_S - T0)) -ge -5 ] && [ $((ISSUED_S - T0)) -le 60 ]; then
	ok "issued_at is now ($ISSUED)"
else
	fail "issued_at $ISSUED is not close to now ($(date -u -d "@$T0" +%FT%TZ))"
fi
expect_match "token is a JWT (three base64url parts)" "$TOK" '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'
# b64url_json PART: decode one base64url JWT part.
b64url_json() {
	local s=${1//-/+}
	s=${s//_//}
	while [ $((${#s} % 4)) -ne 0 ]; do s+='='; done
	printf '%s' "$s" | base64 -d 2>/dev/null
}
JWT_HDR=$(b64url_json "${TOK%%.*}")
JWT_PAY=$(b64url_json "$(cut -d. -f2 <<<"$TOK")")
expect_eq "JWT header alg" "$(jq -r .alg <<<"$JWT_HDR" 2>/dev/null)" HS256
if [[ $TOK == *"${A_PUSH:20}"* ]] || [[ $JWT_PAY == *"${A_PUSH:20}"* ]]; then
	fail "the token carries the access key's secret" "$JWT_PAY"
else
	ok "the token does not carry the access key's secret"
fi
if [[ $JWT_PAY == *"$A_PUSH_ID"* ]]; then
	ok "the token names the key ($A_PUSH_ID)"
else
	fail "the token's claims do not name the key id $A_PUSH_ID" "$JWT_PAY"
fi

section "a token works within its scope"
as token-pull "Bearer $TOK"
areq GET "/v2/$A/app/tags/list"
expect_resp 200
areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 200
expect_body_file "$W/m"
areq GET "/v2/$A/app/blobs/$L"
expect_resp 200
areq GET /v2/
expect_resp 200

section "...and gives 401 with the needed scope beyond it"
areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:pull,push")"
areq PUT "/v2/$A/app/manifests/v2" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$W/m"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:pull,push")"
areq DELETE "/v2/$A/app/manifests/$M"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:delete")"
areq GET "/v2/$A/other/tags/list"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$(re_quote "$A/other"):pull")"
areq GET /v2/_catalog
expect_resp 401 UNAUTHORIZED "$(challenge_re)(,scope=\"registry:catalog:\\*\")?"
areq GET "/v2/$B/app/tags/list"
expect_resp 403 DENIED

section "several scopes in one token"
auth_token TOK2 "$BA" "repository:$A/app:pull" "repository:$A/other:pull,push" "repository:$A/new:pull,push"
expect_resp 200
as token-multi "Bearer $TOK2"
areq GET "/v2/$A/app/tags/list"
expect_resp 200
areq GET "/v2/$A/other/tags/list"
expect_resp 200
areq POST "/v2/$A/other/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 202
areq PUT "/v2/$A/other/manifests/v2" -H "Content-Type: $MT_OCI_MANIFEST" --data-binary "@$W/m"
expect_resp 201
areq POST "/v2/$A/new/blobs/uploads/?mount=$L&from=$A/app" -H 'Content-Length: 0'
expect_resp 201
areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:pull,push")"
areq DELETE "/v2/$A/other/manifests/v2"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$(re_quote "$A/other"):delete")"
# Scope actions in another order and "*" (distribution's "all actions").
auth_token TOK3 "$BA" "repository:$A/other:delete,pull"
expect_resp 200
as token-delete "Bearer $TOK3"
areq DELETE "/v2/$A/other/manifests/v2"
expect_resp 202
auth_token TOK3 "$BA" "repository:$A/other:*"
expect_resp 200
as token-star "Bearer $TOK3"
areq GET "/v2/$A/other/tags/list"
echo "note: a token asked with actions \"*\" gives $REQ_STATUS on a pull (accepted: 200 or 401)"
expect_status_in 200 401

section "the grant is the intersection with what the key may do"
auth_token TOKP "$BA_PULL" "repository:$A/app:pull,push,delete"
expect_resp 200
as pull-key-token "Bearer $TOKP"
areq GET "/v2/$A/app/tags/list"
expect_resp 200
areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
# Both contract rules apply (pull-only key: 403; beyond the grant: 401).
echo "note: a pull-only key's token pushing answers $REQ_STATUS"
if [ "$REQ_STATUS" = 401 ]; then
	expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:pull,push")"
else
	expect_resp 403 DENIED
fi
areq DELETE "/v2/$A/app/manifests/$M"
if [ "$REQ_STATUS" = 401 ]; then
	expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:delete")"
else
	expect_resp 403 DENIED
fi

section "foreign and unknown scopes are dropped, not errors"
auth_token TOKF "$BA" "repository:$B/app:pull,push"
expect_resp 200
as foreign-token "Bearer $TOKF"
areq GET "/v2/$B/app/tags/list"
expect_resp 403 DENIED
areq POST "/v2/$B/app/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 403 DENIED
areq GET "/v2/$B/nop/tags/list"
expect_resp 403 DENIED
areq GET /v2/
expect_resp 200
auth_token TOKM "$BA" "repository:$B/app:pull" "repository:$A/app:pull" "foo:bar:baz" \
	"repository:not/a/tenant:pull" "repository:$A/app" "garbage"
expect_resp 200
as mixed-token "Bearer $TOKM"
areq GET "/v2/$A/app/tags/list"
expect_resp 200
areq GET "/v2/$B/app/tags/list"
expect_resp 403 DENIED
auth_token TOKN "$BA"
expect_resp 200
as no-scope-token "Bearer $TOKN"
areq GET /v2/
expect_resp 200
areq GET "/v2/$A/app/tags/list"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:pull")"

section "catalog scope"
auth_token TOKC "$BA" "registry:catalog:*"
expect_resp 200
as catalog-token "Bearer $TOKC"
areq GET /v2/_catalog
expect_resp 200
expect_json '.repositories | map(startswith("'"$A"'/")) | all' true
expect_json '[.repositories[] | select(. == "'"$A/app"'" or . == "'"$A/other"'")] | length' 2
areq GET "/v2/$A/app/tags/list"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:pull")"
auth_token TOKC "$BA_PULL" "registry:catalog:*"
expect_resp 200
as pull-catalog-token "Bearer $TOKC"
areq GET /v2/_catalog
expect_resp 200
auth_token TOKC "$BB" "registry:catalog:*"
as B-catalog-token "Bearer $TOKC"
areq GET /v2/_catalog
expect_resp 200
expect_json '.repositories' "[\"$B/app\"]"

section "scope encodings: plain and percent-encoded"
as A-basic "$BA"
areq GET "$AUTH_REALM?service=berth&scope=repository:$A/app:pull,push"
expect_resp 200
T_PLAIN=$(jq -r .token <"$REQ_BODY_FILE")
as plain-scope-token "Bearer $T_PLAIN"
areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 202
as A-basic "$BA"
areq GET "$AUTH_REALM?service=berth&scope=repository%3A$A%2Fapp%3Apull%2Cpush"
expect_resp 200
T_ENC=$(jq -r .token <"$REQ_BODY_FILE")
as encoded-scope-token "Bearer $T_ENC"
areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 202
# Space-separated scopes in one parameter (as some clients send them).
as A-basic "$BA"
areq GET "$AUTH_REALM" -G --data-urlencode service=berth --data-urlencode "scope=repository:$A/app:pull repository:$A/other:pull"
expect_resp 200
T_SP=$(jq -r .token <"$REQ_BODY_FILE")
as space-scope-token "Bearer $T_SP"
areq GET "/v2/$A/other/tags/list"
echo "note: space-separated scopes in one parameter: second scope answers $REQ_STATUS"

# ------------------------------------------------------------------ POST form
section "POST /v2/token (grant_type=password)"
as none ""
areq POST "$AUTH_REALM" -H 'Content-Type: application/x-www-form-urlencoded' \
	--data-urlencode grant_type=password --data-urlencode username=KEY --data-urlencode "password=$A_PUSH" \
	--data-urlencode service=berth --data-urlencode "scope=repository:$A/app:pull,push"
expect_resp 200
expect_json '(.token | length > 0) and .token == .access_token and (.expires_in > 0)' true
T_FORM=$(jq -r .token <"$REQ_BODY_FILE")
as form-token "Bearer $T_FORM"
areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 202
areq DELETE "/v2/$A/app/manifests/$M"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:delete")"
as none ""
areq POST "$AUTH_REALM" -H 'Content-Type: application/x-www-form-urlencoded' \
	--data-urlencode grant_type=password --data-urlencode username=KEY --data-urlencode "password=${A_PUSH:0:20}$(printf '%048d' 1)" \
	--data-urlencode service=berth --data-urlencode "scope=repository:$A/app:pull"
expect_resp 401 UNAUTHORIZED
areq POST "$AUTH_REALM" -H 'Content-Type: application/x-www-form-urlencoded' \
	--data-urlencode grant_type=password --data-urlencode username=admin --data-urlencode "password=$A_PUSH" \
	--data-urlencode service=berth --data-urlencode "scope=repository:$A/app:pull"
expect_resp 401 UNAUTHORIZED
areq POST "$AUTH_REALM" -H 'Content-Type: application/x-www-form-urlencoded' \
	--data-urlencode grant_type=password --data-urlencode service=berth
expect_resp 401 UNAUTHORIZED

# ------------------------------------------------------------------ bad creds
section "GET /v2/token with bad credentials: 401"
while [ $((SECONDS - T_EXP)) -lt 8 ]; do sleep 0.5; done
as expired-key-token "Bearer $TOKE"
areq GET /v2/
expect_resp 401 UNAUTHORIZED
areq GET "/v2/$A/app/tags/list"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:pull")"
declare -A BAD=(
	[none]=""
	[wrong-password]=$(auth_basic KEY "${A_PUSH:0:20}$(printf '%048d' 3)")
	[wrong-user]=$(auth_basic user "$A_PUSH")
	[expired]=$(auth_basic KEY "$A_EXP")
	[short-key]=$(auth_basic KEY "${A_PUSH:0:40}")
	[bearer-key]="Bearer garbage"
)
for c in "${!BAD[@]}"; do
	AUTH_TOKEN_LABEL=$c
	auth_token T_BAD "${BAD[$c]}" "repository:$A/app:pull"
	expect_resp 401 UNAUTHORIZED
	[ -z "$T_BAD" ] || fail "token endpoint gave a token to $c"
done

section "tampered tokens: 401"
auth_token TOKT "$BA" "repository:$A/app:pull"
expect_resp 200
HDR_PART=${TOKT%%.*}
REST=${TOKT#*.}
PAY_PART=${REST%%.*}
SIG_PART=${REST#*.}
flip() { # flip the first character of $1 between A and B
	local s=$1
	if [ "${s:0:1}" = A ]; then printf 'B%s' "${s:1}"; else printf 'A%s' "${s:1}"; fi
}
NONE_HDR=$(printf '{"alg":"none","typ":"JWT"}' | base64 -w0 | tr '+/' '-_' | tr -d '=')
for t in "$HDR_PART.$PAY_PART.$(flip "$SIG_PART")" "$HDR_PART.$(flip "$PAY_PART").$SIG_PART" \
	"$NONE_HDR.$PAY_PART." "$HDR_PART.$PAY_PART" "$TOKT.x"; do
	as tampered "Bearer $t"
	areq GET "/v2/$A/app/tags/list"
	expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:pull")"
done
as tok-basic "$(auth_basic KEY "$TOKT")"
areq GET "/v2/$A/app/tags/list"
expect_resp 401 UNAUTHORIZED

section "revoking a key ends its tokens on the next request"
auth_token TOKR "$(auth_basic KEY "$A_REV")" "repository:$A/app:pull,push" "registry:catalog:*"
expect_resp 200
as revocable-token "Bearer $TOKR"
areq GET "/v2/$A/app/tags/list"
expect_resp 200
areq GET /v2/_catalog
expect_resp 200
auth_revoke "$A_REV_ID"
areq GET "/v2/$A/app/tags/list"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:pull")"
areq POST "/v2/$A/app/blobs/uploads/" -H 'Content-Length: 0'
expect_resp 401 UNAUTHORIZED
areq GET /v2/
expect_resp 401 UNAUTHORIZED
areq GET /v2/_catalog
expect_resp 401 UNAUTHORIZED
AUTH_TOKEN_LABEL=revoked-key
auth_token T_BAD "$(auth_basic KEY "$A_REV")" "repository:$A/app:pull"
expect_resp 401 UNAUTHORIZED
# Other keys' tokens are unaffected.
as token-pull "Bearer $TOK"
areq GET "/v2/$A/app/tags/list"
expect_resp 200

# ------------------------------------------------------------------ config
SAVED_DATA=$BERTH_DATA
berth_stop
e2e_forget_pid "$BERTH_PID"

section "config: token_ttl, service, public_host"
cat >"$W/ttl.yml" <<EOF
auth:
  mode: token
  service: berth-test
  token_ttl: 10
EOF
auth_start --data "$SAVED_DATA" --config "$W/ttl.yml" || exit 1
auth_discover
expect_eq "service from the config" "$AUTH_SERVICE" berth-test
auth_token TOKTTL "$BA" "repository:$A/app:pull"
expect_resp 200
expect_json .expires_in 10
as short-token "Bearer $TOKTTL"
areq GET "/v2/$A/app/tags/list"
expect_resp 200
sleep 11
areq GET "/v2/$A/app/tags/list"
expect_resp 401 UNAUTHORIZED "$(challenge_re "repository:$RA:pull")"
auth_stop

cat >"$W/host.yml" <<EOF
region: eu-west-1
public_host: containers.eu-west-1.example.com
EOF
auth_start --data "$SAVED_DATA" --config "$W/host.yml" || exit 1
as none ""
areq GET "/v2/$A/app/tags/list"
expect_resp 401 UNAUTHORIZED \
	"Bearer realm=\"http://containers\\.eu-west-1\\.example\\.com/v2/token\",service=\"containers\\.eu-west-1\\.example\\.com\",scope=\"repository:$RA:pull\""
# The token endpoint is still this server's /v2/token.
AUTH_REALM=$BERTH_URL/v2/token
AUTH_SERVICE=containers.eu-west-1.example.com
auth_token TOKH "$BA" "repository:$A/app:pull"
expect_resp 200
as public-host-token "Bearer $TOKH"
areq GET "/v2/$A/app/tags/list"
expect_resp 200
auth_stop

section "auth off: --insecure-no-auth and auth.mode none"
auth_start --data "$SAVED_DATA" --insecure-no-auth || exit 1
as none ""
areq GET /v2/
expect_resp 200
areq GET "/v2/$A/app/tags/list"
expect_resp 200
if grep -qiE 'warn' "$BERTH_LOG"; then ok "a warning is logged with auth off"; else fail "no warning logged with --insecure-no-auth"; fi
auth_stop
printf 'auth:\n  mode: none\n' >"$W/none.yml"
auth_start --data "$SAVED_DATA" --config "$W/none.yml" || exit 1
areq GET "/v2/$A/app/manifests/v1" -H "Accept: $MT_OCI_MANIFEST"
expect_resp 200
auth_stop
# Back on: the same data still needs credentials.
auth_start --data "$SAVED_DATA" || exit 1
areq GET "/v2/$A/app/tags/list"
expect_resp 401 UNAUTHORIZED
as A-basic "$BA"
areq GET "/v2/$A/app/tags/list"
expect_resp 200
# Not in the contract: does a token outlive a restart (same data, same
# service)?
as token-pull "Bearer $TOK"
areq GET "/v2/$A/app/tags/list"
echo "note: a token issued before restarts answers $REQ_STATUS afterwards"
auth_stop

echo "total $((SECONDS - T_START)) s"
berth_done
