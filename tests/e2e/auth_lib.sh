# Helpers for the authentication end-to-end tests (test_auth_*.sh), on top
# of lib.sh (source lib.sh first): accounts and access keys made with the
# `berthd account|key` admin commands against the running server's data
# directory, a request function that also speaks HTTPS with a test CA and
# client certificates and sends the current credential, assertions on the
# status, the OCI error code and the Bearer challenge that cost no extra
# process, a test PKI (CA, server certificate, device certificates: valid,
# expired, not yet valid, from an unknown CA, naming no account) made with
# openssl (past and future validity through `openssl ca -startdate/-enddate`,
# which openssl 3.0's x509 cannot do), a server starter for HTTPS, the token
# endpoint, `refused` for client commands that must fail because the
# registry said no, and a private containerd for ctr.
#
# Credentials: areq sends "Authorization: $AUTH_HDR" when AUTH_HDR is set,
# and the extra curl arguments in AUTH_CURL (client certificate) and
# AUTH_TLS (--cacert) on every request.
#
# shellcheck shell=bash
# shellcheck disable=SC2034

AUTH_HDR=
AUTH_CURL=()
AUTH_TLS=()
AUTH_REALM=
AUTH_SERVICE=
AUTH_CRED=
AUTH_PKI=
AUTH_TOKEN_LABEL=
declare -A AUTH_LABEL=() # account id -> short label for the log

# ---------------------------------------------------------------- admin

# auth_admin ARGS...: run `berthd ARGS... --data-dir DATA` (the running
# server's data directory); stdout in AUTH_OUT, stderr in AUTH_ERR, exit
# status in AUTH_RC.
auth_admin() {
	AUTH_OUT=$("$BERTHD" "$@" --data-dir "$BERTH_DATA" 2>"$E2E_WORK/admin.err")
	AUTH_RC=$?
	AUTH_ERR=$(head -c 2000 "$E2E_WORK/admin.err")
	return $AUTH_RC
}

# auth_new_account VAR LABEL: create an account named LABEL; sets VAR to its
# id.  Counts one assertion (exit 0 and a 32-hex id alone on stdout).
auth_new_account() {
	local var=$1 label=$2
	auth_admin account create --name "$label"
	if [ "$AUTH_RC" = 0 ] && [[ $AUTH_OUT =~ ^[0-9a-f]{32}$ ]]; then
		ok "account create --name $label -> $AUTH_OUT"
		AUTH_LABEL[$AUTH_OUT]=$label
		printf -v "$var" '%s' "$AUTH_OUT"
		return 0
	fi
	fail "account create --name $label: exit $AUTH_RC, stdout '$AUTH_OUT'" "stderr: $AUTH_ERR"
	printf -v "$var" '%s' "ffffffffffffffffffffffffffffffff"
	return 1
}

# auth_new_key IDVAR KEYVAR ACCOUNT [key create flags...]: sets IDVAR to the
# key id and KEYVAR to the access key.  One assertion on the output format
# (`<16 hex id> brt_<id><48 hex secret>`).
auth_new_key() {
	local idvar=$1 keyvar=$2 account=$3 id key
	shift 3
	auth_admin key create --account "$account" "$@"
	id=${AUTH_OUT%% *}
	key=${AUTH_OUT#* }
	if [ "$AUTH_RC" = 0 ] && [[ $id =~ ^[0-9a-f]{16}$ ]] && [[ $key =~ ^brt_[0-9a-f]{64}$ ]] &&
		[ "${key:4:16}" = "$id" ]; then
		ok "key create ${AUTH_LABEL[$account]:-$account} $* -> $id"
		printf -v "$idvar" '%s' "$id"
		printf -v "$keyvar" '%s' "$key"
		return 0
	fi
	fail "key create --account $account $*: exit $AUTH_RC, stdout '$AUTH_OUT'" "stderr: $AUTH_ERR"
	printf -v "$idvar" '%s' 0000000000000000
	printf -v "$keyvar" '%s' brt_invalid
	return 1
}

# auth_revoke KEY_ID: one assertion (exit 0).
auth_revoke() {
	if auth_admin key revoke "$1"; then
		ok "key revoke $1"
	else
		fail "key revoke $1: exit $AUTH_RC" "stderr: $AUTH_ERR"
	fi
}

# auth_basic USER PASSWORD: prints the Authorization value for Basic.
auth_basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }

# ---------------------------------------------------------------- servers

# auth_start [--data DIR] [--https] [berthd serve args...]: like
# berth_start, but HTTPS when the arguments hold --tls-cert or --https is
# given (TLS set up in a config file; readiness checked with curl --cacert
# $AUTH_PKI/ca.crt), and optionally on an existing data directory (e.g. the
# one of a server stopped just before).  Sets BERTH_PID, BERTH_PORT,
# BERTH_URL, BERTH_DATA, BERTH_LOG, BERTH_ARGS.
auth_start() {
	local dir data="" scheme=http a attempt i code
	if [ "${1:-}" = --data ]; then
		data=$2
		shift 2
	fi
	if [ "${1:-}" = --https ]; then
		scheme=https
		shift
	fi
	if [ ! -x "$BERTHD" ]; then
		fail "berthd binary not found at $BERTHD"
		return 1
	fi
	for a in "$@"; do
		[ "$a" = --tls-cert ] && scheme=https
	done
	AUTH_TLS=()
	[ "$scheme" = https ] && AUTH_TLS=(--cacert "$AUTH_PKI/ca.crt")
	E2E_SRV_SEQ=$((E2E_SRV_SEQ + 1))
	dir=$E2E_TMP/srv$E2E_SRV_SEQ
	mkdir -p "$dir"
	if [ -n "$data" ]; then
		BERTH_DATA=$data
	else
		BERTH_DATA=$(mktemp -d "$dir/data.XXXXXX")
	fi
	BERTH_LOG=$dir/berthd.log
	BERTH_ARGS=("$@")
	for attempt in 1 2 3; do
		BERTH_PORT=$(e2e_free_port) || break
		"$BERTHD" serve --listen "127.0.0.1:$BERTH_PORT" --data-dir "$BERTH_DATA" \
			"${BERTH_ARGS[@]}" >>"$BERTH_LOG" 2>&1 &
		BERTH_PID=$!
		E2E_PIDS+=("$BERTH_PID")
		BERTH_URL=$scheme://127.0.0.1:$BERTH_PORT
		for i in $(seq 1 150); do
			kill -0 "$BERTH_PID" 2>/dev/null || break
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${AUTH_TLS[@]}" "$BERTH_URL/v2/" 2>/dev/null)
			case $code in
			200 | 401) return 0 ;;
			esac
			sleep 0.1
		done
		if kill -0 "$BERTH_PID" 2>/dev/null; then
			e2e_stop_pid "$BERTH_PID" >/dev/null 2>&1
			break
		fi
		grep -qi 'in use' "$BERTH_LOG" 2>/dev/null || break
		printf '(port %s taken, retrying: attempt %d)\n' "$BERTH_PORT" "$attempt"
	done
	fail "berthd did not start ($scheme, args: $*; log $BERTH_LOG)"
	tail -n 20 "$BERTH_LOG" 2>/dev/null | sed 's/^/     | /'
	return 1
}

# auth_stop: stop the current server (SIGTERM, bounded) and forget its PID.
auth_stop() {
	[ -n "$BERTH_PID" ] || return 0
	e2e_stop_pid "$BERTH_PID" >/dev/null 2>&1
	BERTH_EXIT=$?
	e2e_forget_pid "$BERTH_PID"
	BERTH_PID=
	return 0
}

# auth_require_auth: the server must answer an anonymous GET /v2/ with 401;
# otherwise authentication is not implemented and the script ends here
# with one failure.
auth_require_auth() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${AUTH_TLS[@]}" "$BERTH_URL/v2/")
	if [ "$code" != 401 ]; then
		fail "anonymous GET /v2/ answered $code, not 401: authentication is not enforced; stopping"
		berth_done
		exit 1
	fi
	if ! auth_admin account list; then
		fail "berthd account list fails (exit $AUTH_RC): admin commands missing; stopping" "$AUTH_ERR"
		berth_done
		exit 1
	fi
}

# auth_discover: read realm and service from the challenge of an anonymous
# GET /v2/ into AUTH_REALM and AUTH_SERVICE (one assertion).
auth_discover() {
	local saved_hdr=$AUTH_HDR saved_curl=("${AUTH_CURL[@]}") saved_cred=$AUTH_CRED
	AUTH_HDR=
	AUTH_CURL=()
	AUTH_CRED=none
	areq GET /v2/
	AUTH_HDR=$saved_hdr
	AUTH_CURL=("${saved_curl[@]}")
	AUTH_CRED=$saved_cred
	local v=${REQ_H[www-authenticate]:-}
	if [[ $v =~ ^Bearer\ realm=\"([^\"]+)\",service=\"([^\"]+)\"$ ]]; then
		AUTH_REALM=${BASH_REMATCH[1]}
		AUTH_SERVICE=${BASH_REMATCH[2]}
		ok "challenge: $v"
		return 0
	fi
	fail_resp "GET /v2/ challenge is '$v', want Bearer realm=\"..\",service=\"..\""
	AUTH_REALM=$BERTH_URL/v2/token
	AUTH_SERVICE=berth
	return 1
}

# ---------------------------------------------------------------- requests

# areq METHOD PATH-or-URL [curl args...]: like lib.sh's req (sets REQ_STATUS,
# REQ_DESC, REQ_HDRS, REQ_BODY_FILE, REQ_BODY, REQ_H, REQ_HN) but for http
# and https on loopback, with the current credentials (AUTH_HDR, AUTH_CURL,
# AUTH_TLS).  REQ_METHOD is the method; AUTH_CRED (a label) goes into
# REQ_DESC.
areq() {
	local method=$1 path=$2 url
	shift 2
	case $path in
	http://* | https://*) url=$path ;;
	/*) url=$BERTH_URL$path ;;
	*) url=$BERTH_URL/$path ;;
	esac
	case $url in
	http://127.0.0.1:* | https://127.0.0.1:* | http://\[::1\]:* | https://\[::1\]:*) ;;
	*)
		fail "refusing non-loopback URL $url"
		return 1
		;;
	esac
	REQ_METHOD=$method
	local d=${url#"$BERTH_URL"} id
	for id in "${!AUTH_LABEL[@]}"; do
		d=${d//$id/${AUTH_LABEL[$id]}}
	done
	while [[ $d =~ (sha(256|512):[0-9a-f]{8})[0-9a-f]{8,} ]]; do
		d=${d/"${BASH_REMATCH[0]}"/"${BASH_REMATCH[1]}.."}
	done
	while [[ $d =~ (uploads/[0-9a-f]{6})[0-9a-f]{8,} ]]; do
		d=${d/"${BASH_REMATCH[0]}"/"${BASH_REMATCH[1]}.."}
	done
	REQ_DESC="$method $d${AUTH_CRED:+ [$AUTH_CRED]}"
	: >"$REQ_RAW_HDRS"
	: >"$REQ_BODY_FILE"
	local -a mflag cred=()
	case $method in
	GET) mflag=() ;;
	HEAD) mflag=(-I) ;;
	*) mflag=(-X "$method") ;;
	esac
	[ -n "$AUTH_HDR" ] && cred=(-H "Authorization: $AUTH_HDR")
	local out=$REQ_BODY_FILE wout
	[ "$method" = HEAD ] && out=/dev/null
	wout=$(curl -s --max-time 30 "${mflag[@]}" -D "$REQ_RAW_HDRS" -o "$out" \
		-w '%{http_code} %{size_download}' "${AUTH_TLS[@]}" "${AUTH_CURL[@]}" "${cred[@]}" \
		"$@" "$url" 2>"$E2E_WORK/curl.err")
	e2e_read_response "$method" "$wout"
	# The whole response without Date, for byte-for-byte comparisons.
	local line fp=
	for line in "${REQ_LINES[@]}"; do
		[[ ${line,,} == date:* ]] && continue
		fp+=$line$'\n'
	done
	REQ_FP=$fp$'\n'$REQ_BODY
	return 0
}

# as CRED_LABEL HEADER-VALUE: set the current credential (empty: none).
as() {
	AUTH_CRED=$1
	AUTH_HDR=${2:-}
	AUTH_CURL=()
}

# as_cert LABEL CERT KEY: present a client certificate (no header).
as_cert() {
	AUTH_CRED=$1
	AUTH_HDR=
	AUTH_CURL=(--cert "$2" --key "$3")
}

# re_quote STRING: STRING as a literal in an extended regex.
re_quote() {
	local s=$1 out="" c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[].[\\*+?^\$\(\)\{\}\|]) out+="\\$c" ;;
		*) out+=$c ;;
		esac
	done
	printf '%s' "$out"
}

# challenge_re [SCOPE-REGEX]: the regex a 401's WWW-Authenticate must match
# (realm and service as discovered; scope absent when SCOPE-REGEX is empty).
challenge_re() {
	local re
	re="Bearer realm=\"$(re_quote "$AUTH_REALM")\",service=\"$(re_quote "$AUTH_SERVICE")\""
	if [ -n "${1:-}" ]; then
		re+=",scope=\"($1)\""
	fi
	printf '%s' "$re"
}

# expect_resp STATUS [CODE|-] [CHALLENGE-REGEX]: one assertion covering the
# status, the OCI error code (not for HEAD, which has no body; "-" for no
# check) and, when given, the whole WWW-Authenticate value.
expect_resp() {
	local want=$1 code=${2:--} chre=${3:-} problems=() ct www
	[ "$REQ_STATUS" = "$want" ] || problems+=("status $REQ_STATUS, want $want")
	if [ "$code" != - ] && [ "$REQ_METHOD" != HEAD ]; then
		ct=${REQ_H[content-type]:-}
		[[ $ct =~ ^application/json ]] || problems+=("Content-Type '$ct', want application/json")
		[[ $REQ_BODY =~ ^[[:space:]]*\{[[:space:]]*\"errors\"[[:space:]]*:[[:space:]]*\[ ]] ||
			problems+=("body is not {\"errors\":[..]}")
		[[ $REQ_BODY =~ \"code\"[[:space:]]*:[[:space:]]*\"$code\" ]] || problems+=("no error code $code")
	fi
	if [ -n "$chre" ]; then
		www=${REQ_H[www-authenticate]:-}
		if [ "${REQ_HN[www-authenticate]:-0}" != 1 ]; then
			problems+=("${REQ_HN[www-authenticate]:-0} WWW-Authenticate headers, want 1")
		elif ! [[ $www =~ ^($chre)$ ]]; then
			problems+=("WWW-Authenticate '$www', want /$chre/")
		fi
	fi
	if [ ${#problems[@]} -eq 0 ]; then
		if [ "$code" = - ] || [ "$REQ_METHOD" = HEAD ]; then
			ok "$REQ_DESC -> $want"
		else
			ok "$REQ_DESC -> $want $code"
		fi
		return 0
	fi
	fail_resp "$REQ_DESC: ${problems[*]}"
	return 1
}

# ---------------------------------------------------------------- content

# apush_blob NAME FILE: POST + PUT with the current credentials; sets
# BLOB_DIGEST; one assertion (201).
apush_blob() {
	local name=$1 file=$2 loc sep
	BLOB_DIGEST=$(digest_of "$file")
	areq POST "/v2/$name/blobs/uploads/" -H 'Content-Length: 0'
	if [ "$REQ_STATUS" != 202 ] || ! loc=$(hdr Location); then
		fail_resp "push blob $(basename "$file") to $name: POST $REQ_STATUS"
		return 1
	fi
	sep='?'
	[[ $loc == *\?* ]] && sep='&'
	areq PUT "$loc${sep}digest=$BLOB_DIGEST" -H 'Content-Type: application/octet-stream' --data-binary "@$file"
	if [ "$REQ_STATUS" != 201 ]; then
		fail_resp "push blob $(basename "$file") to $name: PUT $REQ_STATUS"
		return 1
	fi
	ok "pushed blob $(basename "$file") to ${name/#"${name%%/*}"/${AUTH_LABEL[${name%%/*}]:-${name%%/*}}}"
	return 0
}

# apush_manifest NAME REF FILE [TYPE]: PUT with the current credentials; one
# assertion (201).
apush_manifest() {
	local name=$1 ref=$2 file=$3 ct=${4:-$MT_OCI_MANIFEST}
	areq PUT "/v2/$name/manifests/$ref" -H "Content-Type: $ct" --data-binary "@$file"
	expect_resp 201
}

# make_referrer OUT SUBJECT_FILE CONFIG_FILE LAYER_FILE: an OCI manifest with
# artifactType application/vnd.example.sig.v1 and subject = SUBJECT_FILE.
make_referrer() {
	local out=$1 subj=$2 cfg=$3 layer=$4
	jq -c -n --arg mt "$MT_OCI_MANIFEST" --arg sd "$(digest_of "$subj")" --argjson ss "$(size_of "$subj")" \
		--arg cd "$(digest_of "$cfg")" --argjson cs "$(size_of "$cfg")" \
		--arg ld "$(digest_of "$layer")" --argjson ls "$(size_of "$layer")" \
		'{schemaVersion: 2, mediaType: $mt, artifactType: "application/vnd.example.sig.v1",
		  config: {mediaType: "application/vnd.oci.empty.v1+json", digest: $cd, size: $cs},
		  layers: [{mediaType: "application/octet-stream", digest: $ld, size: $ls}],
		  subject: {mediaType: $mt, digest: $sd, size: $ss}}' | tr -d '\n' >"$out"
}

# ---------------------------------------------------------------- tokens

# auth_token VAR BASIC-HEADER-VALUE [SCOPE...]: GET realm?service=..&scope=..
# with those credentials; VAR = the token, "" on failure.  No assertion:
# the response stays in REQ_*.
auth_token() {
	local var=$1 basic=$2 s args=()
	shift 2
	for s in "$@"; do
		args+=(--data-urlencode "scope=$s")
	done
	local saved_hdr=$AUTH_HDR saved_cred=$AUTH_CRED
	AUTH_HDR=$basic
	AUTH_CRED=token-request${AUTH_TOKEN_LABEL:+ with $AUTH_TOKEN_LABEL}
	AUTH_TOKEN_LABEL=
	areq GET "$AUTH_REALM" -G --data-urlencode "service=$AUTH_SERVICE" "${args[@]}"
	AUTH_HDR=$saved_hdr
	AUTH_CRED=$saved_cred
	local t=
	if [ "$REQ_STATUS" = 200 ] && [[ $REQ_BODY =~ \"token\"[[:space:]]*:[[:space:]]*\"([^\"]+)\" ]]; then
		t=${BASH_REMATCH[1]}
	fi
	printf -v "$var" '%s' "$t"
	[ -n "$t" ]
}

# ---------------------------------------------------------------- PKI

# auth_genkey OUT: a new private key (EC P-256; AUTH_PKI_ALG=rsa for RSA 2048).
auth_genkey() {
	if [ "${AUTH_PKI_ALG:-ec}" = rsa ]; then
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
	else
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
	fi
}

# auth_make_ca DIR CN: a self-signed CA (ca.key, ca.crt) in DIR with an
# `openssl ca` database, so that certificates with any validity dates can
# be issued (openssl 3.0's x509 cannot backdate).
auth_make_ca() {
	local dir=$1 cn=$2
	mkdir -p "$dir/newcerts"
	: >"$dir/index.txt"
	printf '1000\n' >"$dir/serial"
	cat >"$dir/ca.cnf" <<EOF
[ca]
default_ca = testca
[testca]
dir = $dir
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
certificate = $dir/ca.crt
private_key = $dir/ca.key
default_md = sha256
policy = anything
unique_subject = no
email_in_dn = no
preserve = yes
copy_extensions = none
[anything]
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
	auth_genkey "$dir/ca.key" &&
		openssl req -x509 -new -key "$dir/ca.key" -subj "/O=Berth e2e/CN=$cn" -days 30 -sha256 \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
			-out "$dir/ca.crt" 2>/dev/null
}

# auth_issue CADIR OUT SUBJECT EXTENSIONS [dates...]: key OUT.key and
# certificate OUT.crt for SUBJECT, signed by the CA in CADIR; dates are
# `openssl ca` arguments (default: -days 30).
auth_issue() {
	local ca=$1 out=$2 subj=$3 ext=$4
	shift 4
	[ $# -gt 0 ] || set -- -days 30
	auth_genkey "$out.key" &&
		openssl req -new -key "$out.key" -subj "$subj" -out "$out.csr" 2>/dev/null &&
		openssl ca -batch -notext -config "$ca/ca.cnf" -extensions "$ext" "$@" \
			-in "$out.csr" -out "$out.crt" >"$out.log" 2>&1
}

# auth_make_pki DIR: sets AUTH_PKI=DIR and makes in it the test CA
# (ca.crt, ca.key; an `openssl ca` database) and server.crt/server.key
# (SAN IP:127.0.0.1, DNS:localhost), plus another CA in DIR/other.  One
# assertion.
auth_make_pki() {
	local dir=$1 t0=$SECONDS
	AUTH_PKI=$dir
	mkdir -p "$dir"
	if auth_make_ca "$dir" "Berth e2e CA" &&
		auth_issue "$dir" "$dir/server" "/CN=localhost" server &&
		auth_make_ca "$dir/other" "Other CA"; then
		ok "test PKI made in $((SECONDS - t0)) s (CA, server certificate, another CA)"
		return 0
	fi
	fail "making the test PKI failed" "$(tail -n 5 "$dir"/*.log 2>/dev/null)"
	return 1
}

# auth_make_devices ACCOUNT: device certificates in AUTH_PKI (after
# auth_make_pki):
#   dev-ok.*         OU=ACCOUNT, CN=gw-1, valid for 30 days
#   dev-expired.*    OU=ACCOUNT, valid 2020-01-01 .. 2020-02-01
#   dev-future.*     OU=ACCOUNT, valid from 2090
#   dev-noaccount.*  OU=<32 hex of no account>, CN=gw-9
#   dev-badou.*      OU=not-an-account, CN=gw-8
#   dev-noou.*       no OU at all, CN=gw-7
#   dev-rogue.*      OU=ACCOUNT, CN=gw-1, signed by the other CA
# One assertion.
auth_make_devices() {
	local dir=$AUTH_PKI acct=$1 t0=$SECONDS
	if auth_issue "$dir" "$dir/dev-ok" "/O=Berth e2e/OU=$acct/CN=gw-1" client &&
		auth_issue "$dir" "$dir/dev-expired" "/O=Berth e2e/OU=$acct/CN=gw-2" client \
			-startdate 20200101000000Z -enddate 20200201000000Z &&
		auth_issue "$dir" "$dir/dev-future" "/O=Berth e2e/OU=$acct/CN=gw-3" client \
			-startdate 20900101000000Z -enddate 20900201000000Z &&
		auth_issue "$dir" "$dir/dev-noaccount" "/O=Berth e2e/OU=0123456789abcdef0123456789abcdef/CN=gw-9" client &&
		auth_issue "$dir" "$dir/dev-badou" "/O=Berth e2e/OU=not-an-account/CN=gw-8" client &&
		auth_issue "$dir" "$dir/dev-noou" "/O=Berth e2e/CN=gw-7" client &&
		auth_issue "$dir/other" "$dir/dev-rogue" "/O=Berth e2e/OU=$acct/CN=gw-1" client; then
		ok "7 device certificates for OU=$acct made in $((SECONDS - t0)) s"
		return 0
	fi
	fail "making the device certificates failed" "$(tail -n 5 "$dir"/*.log 2>/dev/null)"
	return 1
}

# ---------------------------------------------------------------- containerd

# ---------------------------------------------------------------- clients

# What clients print when the registry refuses them (401 or 403).
AUTH_REFUSED_RE='denied|unauthori[sz]ed|authentication required|invalid username/password|forbidden|40[13]'

# refused [REGEX] -- CMD...: succeeds only if CMD fails and its output
# matches REGEX (case-insensitive; default AUTH_REFUSED_RE), so a client
# failing for another reason (network, bad reference) does not count as a
# refusal.
refused() {
	local re=$AUTH_REFUSED_RE out rc
	if [ "$1" != -- ]; then
		re=$1
		shift
	fi
	shift
	out=$("$@" 2>&1)
	rc=$?
	printf '%s\n' "$out" | tail -n 20
	if [ $rc -eq 0 ]; then
		echo "unexpectedly succeeded: $*"
		return 1
	fi
	if ! grep -qiE "$re" <<<"$out"; then
		echo "failed (exit $rc), but not with /$re/"
		return 1
	fi
	return 0
}
