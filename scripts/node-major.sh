#!/usr/bin/env bash
# Prints the bin folder of the newest Node.js <major> for this machine, from the
# npm registry's node-linux-<arch> package (the official binaries), installed
# once into a cache folder and reused for a week:
#   PATH="$(bash scripts/node-major.sh 24):$PATH" npm test
# LIVEKEXEC_NODE_CACHE overrides the folder (default ~/.cache/livekexec/node).
set -euo pipefail
major="${1:?usage: node-major.sh <major>}"
[[ "$major" =~ ^[0-9]+$ ]] || { echo "node-major.sh: bad major '$major'" >&2; exit 2; }
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "node-major.sh: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac
cache="${LIVEKEXEC_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/livekexec/node}/$arch-$major"
bin="$cache/node_modules/node-linux-$arch/bin"
fresh() {
  [ -x "$bin/node" ] && [ -n "$(find "$cache/stamp" -mtime -7 2>/dev/null)" ] &&
    [[ "$("$bin/node" --version)" == "v$major."* ]]
}
if ! fresh; then
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-save --no-audit --no-fund --no-package-lock \
    --loglevel=error "node-linux-$arch@$major" >&2
  touch "$cache/stamp"
  fresh || { echo "node-major.sh: node-linux-$arch@$major did not install a node $major" >&2; exit 1; }
fi
echo "$bin"
