#!/usr/bin/env bash
# Makes sure the real registry clients and tools the end-to-end tests drive
# are installed (Debian packages), installing only what is missing, and
# prints their versions.  Idempotent: when everything is present it touches
# nothing and does not even refresh the package lists.
#
# Usage: tests/e2e/install-clients.sh
set -euo pipefail

# command -> Debian package that provides it.  podman as root with the vfs
# driver needs no uidmap/fuse-overlayfs; its runtime deps (conmon, crun,
# containers-common) come with the package.  docker is looked for as
# dockerd, the daemon the tests start on a socket of their own: a docker
# CLI alone is not enough, and a dockerd that is already there (Docker's
# own docker-ce packages, say) is used as it is, never replaced.
PAIRS=(
	skopeo:skopeo
	podman:podman
	containerd:containerd
	ctr:containerd
	dockerd:docker.io
	jq:jq
	curl:curl
	sqlite3:sqlite3
	openssl:openssl
	unshare:util-linux
	gzip:gzip
	tar:tar
	sha256sum:coreutils
	python3:python3
)

missing=()
for pair in "${PAIRS[@]}"; do
	cmd=${pair%%:*}
	pkg=${pair#*:}
	if ! command -v "$cmd" > /dev/null 2>&1; then
		case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
	fi
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "install-clients: installing ${missing[*]}" >&2
	if [ "$(id -u)" != 0 ]; then
		echo "install-clients: need root to install ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# The tests start their own containerd and dockerd on private
	# sockets; the packages' services must not start (and take the
	# default sockets, /var/lib/docker and the firewall) during the
	# install.  policy-rc.d "101" is Debian's way to say so; one that is
	# already there is left alone.
	policy=/usr/sbin/policy-rc.d
	own_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# install-clients.sh: no service starts while it installs\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		own_policy=1
	fi
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	rc=0
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
	[ "$own_policy" = 1 ] && rm -f "$policy"
	[ "$rc" = 0 ] || exit "$rc"
fi

# policy.json is needed by podman (skopeo gets --insecure-policy); Debian's
# containers-common ships it, so its absence means a broken install.
[ -f /etc/containers/policy.json ] || echo "install-clients: warning: /etc/containers/policy.json missing" >&2

echo "skopeo:     $(skopeo --version 2>&1 | head -1)"
echo "podman:     $(podman --version 2>&1 | head -1)"
echo "containerd: $(containerd --version 2>&1 | head -1)"
echo "ctr:        $(ctr --version 2>&1 | head -1)"
echo "dockerd:    $(dockerd --version 2>&1 | head -1)"
echo "jq:         $(jq --version 2>&1 | head -1)"
echo "curl:       $(curl --version 2>&1 | head -1)"
echo "sqlite3:    $(sqlite3 --version 2>&1 | head -1)"
echo "openssl:    $(openssl version 2>&1 | head -1)"
