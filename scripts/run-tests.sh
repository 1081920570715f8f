#!/usr/bin/env bash
# Runs every compiled test file (dist/test/**/*.test.js) with Node's test runner.
# Extra arguments narrow the run to files whose path contains one of them.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
if [ $# -gt 0 ]; then
  keep=()
  for f in "${files[@]}"; do for p in "$@"; do [[ "$f" == *"$p"* ]] && { keep+=("$f"); break; }; done; done
  files=("${keep[@]}")
fi
[ ${#files[@]} -gt 0 ] || { echo "no test files matched" >&2; exit 1; }
exec node --test --test-reporter=spec "${files[@]}"
