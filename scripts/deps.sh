#!/usr/bin/env bash
# Install the Debian 12 packages Berth needs to build, only those missing.
#   scripts/deps.sh        to build
#   scripts/deps.sh --ci   also clang and its libFuzzer runtime, for the
#                          clang build and the fuzzing in scripts/test.sh,
#                          and clang-format-14 for scripts/check-format.sh
# (The tests' clients come from tests/e2e/install-clients.sh, the
# benchmark's tools from bench/run.sh.)
set -euo pipefail

pkgs=(build-essential cmake pkg-config libmicrohttpd-dev libssl-dev libjansson-dev
      libsqlite3-dev libyaml-dev libgnutls28-dev libcurl4-openssl-dev libxml2-dev libpq-dev)
if [ "${1:-}" = --ci ]; then
  pkgs+=(clang libclang-rt-14-dev clang-format-14)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
