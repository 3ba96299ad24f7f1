#!/usr/bin/env bash
# Install the Debian 12 packages Berth needs, only those missing.
#   scripts/deps.sh          build dependencies
#   scripts/deps.sh --test   plus what the test suite drives (real clients)
#   scripts/deps.sh --bench  plus what the benchmark compares against
set -euo pipefail

pkgs=(build-essential cmake pkg-config libmicrohttpd-dev libssl-dev libjansson-dev
      libsqlite3-dev libyaml-dev)
for arg in "$@"; do
  case $arg in
    --test) pkgs+=(curl jq sqlite3 openssl python3 skopeo podman containerd uidmap) ;;
    --bench) pkgs+=(curl jq skopeo apache2-utils docker-registry procps) ;;
    *) echo "deps.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
