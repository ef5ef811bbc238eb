#!/usr/bin/env bash
# Quick start: install what is missing, build kinfra (Release), put it on the PATH, and run it with routes.yaml.
# Extra arguments go to `kinfra run`, e.g. scripts/run.sh my-routes.yaml
# On the PATH: a symlink kinfra -> build/release/bin/kinfra in ~/.local/bin (as root: /usr/local/bin),
# made only when nothing else is there by that name (another kinfra is left alone, and said so).
# KINFRA_NO_LINK=1 scripts/run.sh skips the symlink.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DKINFRA_BUILD_TESTS=OFF >/dev/null
cmake --build build/release --target kinfra

link_kinfra() {
  local bin="$PWD/build/release/bin/kinfra" dir link first
  if [ "$(id -u)" -eq 0 ]; then dir=/usr/local/bin; elif [ -n "${HOME:-}" ]; then dir="$HOME/.local/bin"; else
    echo "kinfra: HOME is not set, so kinfra was not put on the PATH; this build is $bin"; return
  fi
  link="$dir/kinfra"
  if [ -L "$link" ] && [ "$(readlink "$link")" = "$bin" ]; then
    :  # ours, from an earlier run
  elif [ -L "$link" ] && [ ! -e "$link" ] && [[ "$(readlink "$link")" == */build/release/bin/kinfra ]]; then
    ln -sfn "$bin" "$link"  # a link to a checkout that is gone: this build takes its place
  elif [ -e "$link" ] || [ -L "$link" ]; then
    echo "kinfra: $link exists and is not a link to this build, left it alone; this build is $bin"; return
  elif ! { mkdir -p "$dir" && ln -s "$bin" "$link"; }; then
    echo "kinfra: could not create $link; this build is $bin"; return
  fi
  first="$(command -v kinfra || true)"
  if [ "$first" = "$link" ]; then
    echo "kinfra is on your PATH: $link -> $bin"
  elif [[ ":$PATH:" == *":$dir:"* ]]; then
    echo "kinfra: linked $link -> $bin, but $first comes first on your PATH"
  else
    echo "kinfra: linked $link -> $bin; $dir is not on your PATH, add it: export PATH=\"$dir:\$PATH\""
  fi
}
[ "${KINFRA_NO_LINK:-0}" != 0 ] || link_kinfra
exec build/release/bin/kinfra run "${@:-routes.yaml}"
