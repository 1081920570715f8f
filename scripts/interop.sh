#!/usr/bin/env bash
# Interop checks against the real tools (dtc, fdtdump, libfdt). Needs the Debian
# packages device-tree-compiler, python3-libfdt and libfdt-dev:
#   sudo apt-get install -y device-tree-compiler python3-libfdt libfdt-dev
# Runs the interop test files with LIVEKEXEC_INTEROP=1, which makes a missing
# tool a failure instead of a reason to skip.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in dtc fdtdump cc; do
  command -v "$tool" >/dev/null || { echo "interop: $tool is missing (apt-get install device-tree-compiler gcc)" >&2; exit 1; }
done
[ -f /usr/include/libfdt.h ] || { echo "interop: libfdt.h is missing (apt-get install libfdt-dev)" >&2; exit 1; }
npx tsc -p .
LIVEKEXEC_INTEROP=1 bash scripts/run-tests.sh interop
