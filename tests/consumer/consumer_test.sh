#!/usr/bin/env bash
# Builds tests/consumer/consumer.cpp out of tree, the three ways a user's project takes fiberio, and runs it:
#   pkg-config  install into a scratch root, move that root elsewhere (the package must be relocatable),
#               build against the shared and the static library with pkg-config's flags
#   cmake       the same installed copy through find_package(fiberio) and fiberio::fiberio(_static)
#   meson       fiberio as a meson subproject of a scratch project: only the library may be configured
# Every build puts tests/consumer/shadow/ (headers named like fiberio's, each an #error) first on the
# include path. Usage: consumer_test.sh MODE BUILD_ROOT SOURCE_ROOT CXX
set -euo pipefail
mode=$1
build_root=$2
source_root=$3
cxx=${4:-c++}
here="$source_root/tests/consumer"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# A sanitizer build's library is instrumented: installing it is no user's scenario, and the plain build
# already proves the packages. Skip (meson's code 77).
symbols=$(nm -D "$build_root/libfiberio.so" 2>/dev/null || true)  # not piped: pipefail + grep -q
if grep -q "__tsan_\|__asan_" <<<"$symbols"; then
  echo "skipped: sanitizer build"
  exit 77
fi

install_copy() {  # installs into $scratch/staged, then moves it to $scratch/moved: prints the prefix there
  meson install -C "$build_root" --destdir "$scratch/staged" --no-rebuild --quiet >/dev/null
  mv "$scratch/staged" "$scratch/moved"
  local pc
  pc=$(find "$scratch/moved" -name fiberio.pc | head -n 1)
  [ -n "$pc" ] || { echo "fiberio.pc was not installed" >&2; exit 1; }
  echo "$pc"
}

case "$mode" in
  pkg-config)
    pc=$(install_copy)
    if grep -n '/usr\|/work\|/tmp' "$pc"; then
      echo "fiberio.pc names an absolute path (above): it is not relocatable"
      exit 1
    fi
    # Only public headers and the internals they include are installed: no worker, scheduler or reactor.
    incdir=$(find "$scratch/moved" -type d -path '*/include/fiberio' | head -n 1)
    for internal in runtime/detail/worker.hpp runtime/detail/scheduler.hpp reactor/detail/reactor.hpp; do
      if [ -e "$incdir/$internal" ]; then echo "internal header installed: $internal"; exit 1; fi
    done
    export PKG_CONFIG_PATH=$(dirname "$pc")
    libdir=$(pkg-config --variable=libdir fiberio)
    readelf -d "$libdir/libfiberio.so" | grep -q 'SONAME.*libfiberio\.so\.0\]' || {
      echo "libfiberio.so has no versioned soname"
      exit 1
    }
    "$cxx" -I"$here/shadow" $(pkg-config --cflags fiberio) "$here/consumer.cpp" -o "$scratch/consumer-shared" \
      $(pkg-config --libs fiberio)
    LD_LIBRARY_PATH="$libdir" "$scratch/consumer-shared"
    "$cxx" -I"$here/shadow" $(pkg-config --cflags fiberio) "$here/consumer.cpp" -o "$scratch/consumer-static" \
      -static-libstdc++ "$libdir/libfiberio.a" $(pkg-config --libs-only-other --static fiberio) \
      $(pkg-config --libs-only-l --static fiberio | sed 's/-lfiberio\b//')
    "$scratch/consumer-static"
    ;;
  cmake)
    pc=$(install_copy)
    prefix=$(cd "$(dirname "$pc")/$(sed -n 's/^prefix=${pcfiledir}\///p' "$pc")" && pwd)
    cmake -S "$here/cmake" -B "$scratch/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release >"$scratch/cmake.log" 2>&1 ||
      { cat "$scratch/cmake.log"; exit 1; }
    cmake --build "$scratch/cmake-build" -j 2 >"$scratch/build.log" 2>&1 || { cat "$scratch/build.log"; exit 1; }
    "$scratch/cmake-build/consumer-shared"
    "$scratch/cmake-build/consumer-static"
    ;;
  meson)
    project="$scratch/project"
    mkdir -p "$project/subprojects"
    cp "$here/meson/meson.build" "$here/consumer.cpp" "$project/"
    cp -r "$here/shadow" "$project/shadow"
    # The subproject is this source tree as git has it (no build folders inside).
    (cd "$source_root" && git ls-files -z --cached --others --exclude-standard |
      tar --null -T - -cf -) | (mkdir -p "$project/subprojects/fiberio" && tar -xf - -C "$project/subprojects/fiberio")
    meson setup "$scratch/build" "$project" >"$scratch/setup.log" 2>&1 || { cat "$scratch/setup.log"; exit 1; }
    # Only the library: no program, test or benchmark of fiberio's is configured in a user's build.
    targets=$(meson introspect --targets "$scratch/build" |
      python3 -c 'import json,sys; print(" ".join(sorted(t["name"] for t in json.load(sys.stdin))))')
    echo "targets: $targets"
    for unwanted in fiberio-echo fiberio-proxy echo_load fiber_test; do
      if grep -qw -- "$unwanted" <<<"$targets"; then echo "the subproject built $unwanted"; exit 1; fi
    done
    tests=$(meson introspect --tests "$scratch/build" |
      python3 -c 'import json,sys; print(" ".join(t["name"] for t in json.load(sys.stdin)))')
    [ "$tests" = "consumer" ] || { echo "tests configured: $tests (only the user's own expected)"; exit 1; }
    ninja -C "$scratch/build" -j 2 >"$scratch/ninja.log" 2>&1 || { tail -30 "$scratch/ninja.log"; exit 1; }
    "$scratch/build/consumer"
    ;;
  *)
    echo "usage: consumer_test.sh pkg-config|cmake|meson BUILD_ROOT SOURCE_ROOT CXX" >&2
    exit 2
    ;;
esac
echo "consumer ($mode): OK"
