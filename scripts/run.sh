#!/usr/bin/env bash
# Quick start: install what is missing, build kinfra (Release), and run it with routes.yaml.
# Extra arguments go to `kinfra run`, e.g. scripts/run.sh my-routes.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DKINFRA_BUILD_TESTS=OFF >/dev/null
cmake --build build/release --target kinfra
exec build/release/bin/kinfra run "${@:-routes.yaml}"
