#!/usr/bin/env bash
# What the tests need from Debian besides node: the interop tools (dtc,
# libfdt, libpmemobj), Chromium for the memory-map picture, and systemd's
# systemd-socket-activate (socket activation into a restart handover). Run
# once on a developer machine; .ci/run runs it on CI.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
if ! command -v apt-get >/dev/null; then
  echo "install-test-deps: no apt-get; install device-tree-compiler, python3-libfdt, libfdt-dev, libpmemobj-dev, gcc, make, chromium and systemd yourself" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq device-tree-compiler python3-libfdt libfdt-dev libpmemobj-dev gcc make chromium systemd >/dev/null
