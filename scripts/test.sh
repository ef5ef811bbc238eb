#!/usr/bin/env bash
# Install what is missing, build everything with the tests, and run the whole suite.
# Extra arguments go to ctest, e.g. scripts/test.sh -R Router
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
# The browser test's one dependency (playwright-core drives Debian's chromium; no browser download).
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKINFRA_BUILD_TESTS=ON >/dev/null
cmake --build build/test
cd build/test
ctest --output-on-failure --timeout 300 -j "$(nproc)" "$@"
