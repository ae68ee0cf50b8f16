#!/usr/bin/env bash
# Builds fiberio and runs its test suite: the README's test command, and what CI calls.
# Usage: scripts/test.sh [build-dir] [extra meson setup options...]
#   scripts/test.sh                                   # plain debugoptimized build in build/
#   scripts/test.sh build-tsan -Db_sanitize=thread    # the suite under ThreadSanitizer
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

build=${1:-build}
shift || true
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$@"
fi
ninja -C "$build"

# Sanitizer settings for the suite: fail on the first report, suppress the known third-party false positive.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 detect_deadlocks=0 suppressions=$PWD/tests/tsan.supp ${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="detect_leaks=1 ${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 ${UBSAN_OPTIONS:-}"
meson test -C "$build" --print-errorlogs --num-processes 2
