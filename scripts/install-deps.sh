#!/usr/bin/env bash
# Installs the Debian 12 packages fiberio needs, only those missing (no apt-get update when all are present).
# Usage: scripts/install-deps.sh [extra packages...]   (as root, or with sudo available)
set -euo pipefail

# Build and library: compiler, meson/ninja, Boost.Context, concurrentqueue, doctest, Google Benchmark,
# CLI11 and toml++ (for the programs), pkg-config (for meson), valgrind headers (stack registration).
BUILD_PACKAGES=(g++ meson ninja-build pkg-config cmake libboost-context-dev libconcurrentqueue-dev doctest-dev
  libbenchmark-dev libcli11-dev libtomlplusplus-dev liburing-dev valgrind)
# Real third-party peers used by the integration tests of the two servers.
TEST_PACKAGES=(socat netcat-openbsd curl nginx-light redis-server redis-tools procps)

missing=()
for p in "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
# Do not start the services nginx and redis ship with: the tests start their own on free ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
