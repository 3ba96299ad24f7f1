#!/usr/bin/env bash
# Quick start: install what is missing, build, and run the registry on the
# embedded default (127.0.0.1:5000, data in ./berth-data).  Extra arguments
# go to `berthd serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
exec build/berthd serve "$@"
