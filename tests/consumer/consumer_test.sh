#!/usr/bin/env bash
# Installs the built library into a scratch root and builds tests/consumer/consumer.cpp against it with
# pkg-config, linked both against the shared and the static library, then runs both programs.
# Usage: consumer_test.sh BUILD_ROOT SOURCE_DIR CXX
set -euo pipefail
build_root=$1
source_dir=$2
cxx=${3:-c++}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

meson install -C "$build_root" --destdir "$scratch/root" --no-rebuild --quiet >/dev/null
pc=$(find "$scratch/root" -name fiberio.pc | head -n 1)
[ -n "$pc" ] || { echo "fiberio.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_SYSROOT_DIR="$scratch/root"

# A sanitizer build's installed library is instrumented: installing it is no user's scenario, and the
# plain build already proves the install. Skip (meson's code 77).
symbols=$(nm -D "$(dirname "$pc")/../libfiberio.so" 2>/dev/null || true)  # not piped: pipefail + grep -q
if grep -q "__tsan_\|__asan_" <<<"$symbols"; then
  echo "skipped: sanitizer build"
  exit 77
fi

"$cxx" $(pkg-config --cflags fiberio) "$source_dir/consumer.cpp" -o "$scratch/consumer-shared" \
  $(pkg-config --libs fiberio) -lboost_context -pthread
LD_LIBRARY_PATH="$(dirname "$pc")/.." "$scratch/consumer-shared"

"$cxx" $(pkg-config --cflags fiberio) "$source_dir/consumer.cpp" -o "$scratch/consumer-static" \
  "$(dirname "$pc")/../libfiberio.a" -lboost_context -pthread
"$scratch/consumer-static"
