#!/usr/bin/env bash
# The README's "main job": builds fiberio, starts build/apps/fiberio-echo on a free port, drives it for ~5 s
# with bench/echo_load (50 connections, 64-byte request/response messages), prints the results, then stops
# the server with SIGTERM and checks that it exits 0. Exits non-zero if any step fails (an echo mismatch
# included). docs/benchmarks.md ("Echo server") quotes its figures.
# Usage: scripts/main-job.sh            environment: BUILD_DIR (build), DURATION (5), CONNECTIONS (50),
#                                        SIZE (64), SERVER_ARGS (extra fiberio-echo flags, e.g. "--threads 1")
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
duration=${DURATION:-5}
connections=${CONNECTIONS:-50}
size=${SIZE:-64}

scripts/install-deps.sh
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build"
fi
ninja -C "$build"
server_bin="$build/apps/fiberio-echo"
load_bin="$build/bench/echo_load"
for bin in "$server_bin" "$load_bin"; do
  if [ ! -x "$bin" ]; then
    echo "main-job: $bin was not built (it needs -Dbench=auto or enabled)" >&2
    exit 1
  fi
done

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck disable=SC2086  # SERVER_ARGS is a list of flags
"$server_bin" --listen 127.0.0.1:0 ${SERVER_ARGS:-} >"$work/stdout" 2>"$work/stderr" &
pid=$!

# The ready line, "listening on 127.0.0.1:PORT", within 10 s.
line=""
for _ in $(seq 1 100); do
  line=$(head -n 1 "$work/stdout" 2>/dev/null || true)
  [ -n "$line" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "main-job: fiberio-echo exited before it was ready:" >&2
    cat "$work/stderr" >&2
    exit 1
  fi
  sleep 0.1
done
case "$line" in
  "listening on 127.0.0.1:"*) port=${line##*:} ;;
  *) echo "main-job: no ready line from fiberio-echo (got '$line')" >&2; cat "$work/stderr" >&2; exit 1 ;;
esac
echo "== fiberio-echo (pid $pid) $line"
sed 's/^/   /' "$work/stderr"

echo "== echo_load: $connections connections, $size-byte messages, $duration s"
load_rc=0
"$load_bin" "127.0.0.1:$port" --connections "$connections" --size "$size" --duration "$duration" || load_rc=$?

echo "== SIGTERM"
start=$(date +%s%N)
kill -TERM "$pid"
for _ in $(seq 1 100); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
if kill -0 "$pid" 2>/dev/null; then
  echo "main-job: fiberio-echo still running 5 s after SIGTERM" >&2
  exit 1
fi
server_rc=0
wait "$pid" || server_rc=$?
pid=""
echo "   exit code $server_rc after $(( ($(date +%s%N) - start) / 1000000 )) ms"
sed 's/^/   /' "$work/stderr" | tail -n +2

if [ "$load_rc" -ne 0 ]; then
  echo "main-job: FAILED: echo_load exit code $load_rc" >&2
  exit 1
fi
if [ "$server_rc" -ne 0 ]; then
  echo "main-job: FAILED: fiberio-echo exit code $server_rc after SIGTERM" >&2
  exit 1
fi
echo "main-job: OK"
