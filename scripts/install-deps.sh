#!/usr/bin/env bash
# Installs the Debian 12 packages kinfra needs, and only those that are missing (safe to re-run).
#   scripts/install-deps.sh           build + run
#   scripts/install-deps.sh --test    also what the test suite needs
#   scripts/install-deps.sh --bench   also what bench/run.sh needs
#   scripts/install-deps.sh --hardening   also what scripts/hardening.sh needs (clang, libFuzzer)
set -euo pipefail

build_pkgs=(g++ cmake ninja-build ccache pkg-config
            libboost1.81-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev libyaml-dev libspdlog-dev libcli11-dev libnghttp2-dev libmimalloc-dev
            python3 ca-certificates dpkg-dev)
# dpkg-dev (above: dpkg-shlibdeps, so that `cpack -G DEB` after the quick start lists the libraries
# kinfra needs) and lintian: the Debian package and its test.
# pebble (with pebble-challtestsrv): a real ACME CA and its DNS for the automatic-HTTPS tests;
# python3-cryptography for the OCSP responder the stapling test runs.
# nghttp2-client (nghttp, h2load), python3-h2 and python3-grpcio: the HTTP/2 and gRPC tests.
test_pkgs=(libgtest-dev googletest curl openssl procps chromium fonts-noto-color-emoji lintian pebble python3-cryptography
           nghttp2-client python3-h2 python3-grpcio)
bench_pkgs=(wrk nginx haproxy valgrind util-linux)
hardening_pkgs=(clang libclang-rt-14-dev)

want=("${build_pkgs[@]}")
for arg in "$@"; do
  case "$arg" in
    --test) want+=("${test_pkgs[@]}") ;;
    --bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
    --hardening) want+=("${test_pkgs[@]}" "${hardening_pkgs[@]}") ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

# The browser tests need Node.js and npm; a machine that already has them (from any source) keeps
# its own, otherwise Debian's are installed.
for arg in "$@"; do
  if [ "$arg" = --test ] || [ "$arg" = --bench ] || [ "$arg" = --hardening ]; then
    command -v node >/dev/null 2>&1 || want+=(nodejs)
    command -v npm >/dev/null 2>&1 || want+=(npm)
  fi
done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
