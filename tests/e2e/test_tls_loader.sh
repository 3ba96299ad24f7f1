#!/usr/bin/env bash
# GnuTLS only when TLS is configured (issue 10, src/http/tls_loader.c):
# berthd links libmicrohttpd from its archive and opens libgnutls with
# dlopen() only for a server started with TLS.  A plain-HTTP berthd must
# not map libgnutls (nor its dependencies); an HTTPS berthd maps it, serves
# HTTPS and identifies a device by its client certificate (device.c's
# GnuTLS calls go through the loader too); and an HTTPS berthd whose
# libgnutls cannot be loaded (hidden by a bind mount of /dev/null in a
# private mount namespace) refuses to start and says why.  Skipped for a
# build with -DBERTH_SHARED_MHD=ON, where GnuTLS is always loaded.
set -u -o pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/auth_lib.sh"

W=$E2E_WORK
for tool in curl openssl; do
	command -v "$tool" >/dev/null || {
		echo "SKIP: $tool is missing"
		exit 77
	}
done
if ! [ -x "$BERTHD" ]; then
	fail "berthd binary not found at $BERTHD"
	berth_done
	exit 1
fi
if readelf -d "$BERTHD" | grep 'NEEDED.*libmicrohttpd\.so' >/dev/null; then # no -q: pipefail
	echo "SKIP: $BERTHD links the shared libmicrohttpd (BERTH_SHARED_MHD=ON), which always loads GnuTLS"
	# ctest's skip code, past lib.sh's EXIT trap (which exits 0 or 1).
	trap - EXIT
	rm -rf "$E2E_TMP"
	exit 77
fi

# maps_have PID REGEX: the process maps a file whose path matches REGEX.
maps_have() { grep -Eq "$2" "/proc/$1/maps"; }
# The libraries GnuTLS brings (Debian 12): none may be there without TLS.
GNUTLS_LIBS_RE='/lib(gnutls|p11-kit|nettle|hogweed|gmp|tasn1|unistring|idn2)\.so'

# libcurl (the S3 client, through librtmp) and libpq (through libldap)
# link GnuTLS themselves on Debian 12: then the dynamic loader maps it
# before berthd runs, and loading it only for TLS saves nothing.
DEPS_GNUTLS=0
ldd "$BERTHD" | grep -q 'libgnutls\.so' && DEPS_GNUTLS=1

section "plain HTTP: GnuTLS is not loaded"
BERTH_OPEN=1 berth_start || exit 1
req GET /v2/
expect_status 200
if [ "$DEPS_GNUTLS" = 1 ]; then
	echo "(not checked: berthd's client libraries link GnuTLS: $(ldd "$BERTHD" | grep -Eo 'lib(rtmp|ldap)[^ ]*' | sort -u | tr '\n' ' '))"
elif maps_have "$BERTH_PID" "$GNUTLS_LIBS_RE"; then
	fail "berthd without TLS maps GnuTLS or its libraries" "$(grep -Eo "/[^ ]*$GNUTLS_LIBS_RE[^ ]*" "/proc/$BERTH_PID/maps" | sort -u)"
else
	ok "berthd without TLS maps none of libgnutls, p11-kit, nettle, hogweed, gmp, tasn1, unistring, idn2"
fi
maps_have "$BERTH_PID" '/libmicrohttpd\.so' && fail "libmicrohttpd.so is mapped (want the archive linked in)" ||
	ok "libmicrohttpd is linked in, not mapped"
printf '(idle-ish VmRSS without TLS: %s)\n' "$(awk '/^VmRSS/ {print $2 " " $3}' "/proc/$BERTH_PID/status")"
berth_stop
expect_eq "plain server exit status" "$BERTH_EXIT" 0

section "HTTPS with a client CA: GnuTLS is loaded and serves"
auth_make_pki "$W/pki" || exit 1
P=$AUTH_PKI
auth_start --tls-cert "$P/server.crt" --tls-key "$P/server.key" --client-ca "$P/ca.crt" || exit 1
expect_match "server URL" "$BERTH_URL" '^https://127\.0\.0\.1:[0-9]+$'
if maps_have "$BERTH_PID" '/libgnutls\.so\.30'; then
	ok "berthd with TLS maps libgnutls.so.30"
else
	fail "berthd with TLS does not map libgnutls.so.30"
fi
GNUTLS_FILE=$(grep -Eo '/[^ ]*/libgnutls\.so\.30[^ ]*' "/proc/$BERTH_PID/maps" | head -n 1)
as none ""
areq GET /v2/
expect_resp 401
auth_new_account A alpha
AUTH_LABEL[$A]=A
auth_make_devices "$A" || exit 1
as_cert device-A "$P/dev-ok.crt" "$P/dev-ok.key"
areq GET /v2/
expect_resp 200
as_cert device-rogue "$P/dev-rogue.crt" "$P/dev-rogue.key"
areq GET /v2/
expect_resp 401
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$BERTH_PORT/v2/")
case $code in
200 | 401) fail "plain HTTP on the TLS port answered $code" ;;
*) ok "plain HTTP on the TLS port is not served ($code)" ;;
esac
auth_stop
expect_eq "HTTPS server exit status" "$BERTH_EXIT" 0

section "HTTPS without a loadable libgnutls: start-up fails, and says why"
if [ "$DEPS_GNUTLS" = 1 ]; then
	echo "(not checked: with GnuTLS linked by berthd's client libraries, hiding it stops the dynamic loader before berthd runs)"
elif [ "$(id -u)" != 0 ] || [ -z "$GNUTLS_FILE" ] || ! unshare -m --propagation private true 2>/dev/null; then
	# Not root (no private mount namespace): the rest of the test
	# still stands; CI runs as root.
	echo "(not checked: needs root and unshare -m to hide $GNUTLS_FILE)"
else
	mkdir -p "$W/nolib"
	rc=0
	timeout 30 unshare -m --propagation private bash -c '
		mount --bind /dev/null "$1" || exit 99
		shift
		exec "$@"' hide "$GNUTLS_FILE" "$BERTHD" serve --listen 127.0.0.1:0 --data-dir "$W/nolib" \
		--tls-cert "$P/server.crt" --tls-key "$P/server.key" >"$W/nolib.log" 2>&1 || rc=$?
	case $rc in
	0) fail "berthd started with TLS and no libgnutls (exit 0)" "$(tail -n 5 "$W/nolib.log")" ;;
	99) fail "could not hide $GNUTLS_FILE with a bind mount" ;;
	124) fail "berthd with TLS and no libgnutls was still running after 30 s" "$(tail -n 5 "$W/nolib.log")" ;;
	*) ok "berthd with TLS and no libgnutls exits with status $rc" ;;
	esac
	if grep -q 'TLS is configured but cannot be used: cannot load libgnutls\.so\.30' "$W/nolib.log"; then
		ok "its log says it cannot load libgnutls.so.30"
	else
		fail "no clear log line about libgnutls" "$(tail -n 5 "$W/nolib.log")"
	fi
fi

berth_done
