#!/usr/bin/env bash
# relay_cost.sh — what one small proxied request costs fiberio-proxy, beside what it costs fiberio-echo.
#
#   bench/relay_cost.sh [--no-docs] [--n1 N] [--n2 N] [--mem-conns N] [BUILD_DIR]
#
# Setup: `fiberio-echo --threads 1` as the upstream, `fiberio-proxy --threads 1` in front of it, and
# bench/echo_load (1 thread, 50 connections, 64-byte ping-pong) through the proxy. Measured in the proxy
# only, from two fresh proxy starts driven for N1 and N2 requests (default 20,000 and 60,000), per
# request = (count(N2) - count(N1)) / (N2 - N1), so start-up and shutdown cancel:
#   1. syscalls per request under `strace -f -c`, with the breakdown of the N2 run;
#   2. user-space instructions per request under valgrind --tool=callgrind ("Collected");
#   3. open fds and memory per proxied connection, while --mem-conns connections (default 2,000) that
#      have each made one request are open and idle: /proc/PID/fd and VmRSS, growth divided by their
#      number (VmRSS leaves out the kernel's socket buffers).
# The same instruction count for fiberio-echo alone (clients straight to it) is measured in the same run,
# for the ratio. BUILD_DIR (default build-rel) must hold apps/fiberio-proxy, apps/fiberio-echo and
# bench/echo_load. Unless --no-docs, rewrites the block between <!-- relay_cost:begin --> and
# <!-- relay_cost:end --> in docs/benchmarks.md. Exits non-zero if echo_load reports an error or a
# mismatch; every server it started is stopped on any exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

build_dir=build-rel
docs=1
n1=20000
n2=60000
mem_conns=2000
invocation=$(echo "bench/relay_cost.sh $*" | sed 's/ *$//')
while [ $# -gt 0 ]; do
  case "$1" in
    --no-docs) docs=0 ;;
    --n1) n1=$2; shift ;;
    --n2) n2=$2; shift ;;
    --mem-conns) mem_conns=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "relay_cost: unknown option '$1'" >&2; exit 2 ;;
    *) build_dir=$1 ;;
  esac
  shift
done
if ! [ "$n1" -gt 0 ] 2>/dev/null || ! [ "$n2" -gt "$n1" ] 2>/dev/null; then
  echo "relay_cost: need 0 < N1 < N2 (got $n1, $n2)" >&2
  exit 2
fi
proxy_bin=$build_dir/apps/fiberio-proxy
echo_bin=$build_dir/apps/fiberio-echo
load_bin=$build_dir/bench/echo_load
for b in "$proxy_bin" "$echo_bin" "$load_bin"; do
  [ -x "$b" ] || { echo "relay_cost: $b not found: build first (ninja -C $build_dir)" >&2; exit 1; }
done
for tool in strace valgrind python3; do
  command -v "$tool" >/dev/null || { echo "relay_cost: $tool is needed" >&2; exit 1; }
done
out=$build_dir/relay_cost
rm -rf "$out"
mkdir -p "$out"
ulimit -n 20000

pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start TAG CMD...: runs a server, waits for its "listening on" line, sets $port and $pid.
start() {
  local tag=$1
  shift
  "$@" >"$out/$tag.stdout" 2>"$out/$tag.stderr" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 300); do
    grep -q '^listening on' "$out/$tag.stdout" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { echo "relay_cost: $tag exited: $(head -n 3 "$out/$tag.stderr")" >&2; exit 1; }
    sleep 0.1
  done
  port=$(sed -n 's/^listening on [^ ]*:\([0-9]*\).*/\1/p' "$out/$tag.stdout" | head -n 1)
  [ -n "$port" ] || { echo "relay_cost: $tag never listened" >&2; exit 1; }
}
# stop PID: SIGTERM to it (and, under strace or valgrind, to its child), then wait.
stop() {
  pkill -TERM -P "$1" 2>/dev/null || true
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
load() {  # TAG PORT N
  "$load_bin" "127.0.0.1:$2" --connections 50 --size 64 --threads 1 --requests "$3" --duration 1800 >"$out/$1.load" 2>&1
  grep -q '^errors: 0, mismatches: 0' "$out/$1.load" || { echo "relay_cost: load $1 failed: $(tail -n 2 "$out/$1.load")" >&2; exit 1; }
}

start upstream "$echo_bin" --listen 127.0.0.1:0 --threads 1
upstream_port=$port
proxy_cmd=("$proxy_bin" --listen 127.0.0.1:0 --threads 1 --upstream "127.0.0.1:$upstream_port")

declare -A count
for n in "$n1" "$n2"; do
  echo "== proxy under strace, $n requests"
  start "strace_$n" strace -f -c -o "$out/strace_$n.txt" "${proxy_cmd[@]}"
  load "strace_$n" "$port" "$n"
  stop "$pid"
  count[strace_$n]=$(awk '$NF == "total" {print $4}' "$out/strace_$n.txt")
  echo "== proxy under callgrind, $n requests"
  start "cg_proxy_$n" valgrind --tool=callgrind --callgrind-out-file="$out/cg_proxy_$n.out" \
    --log-file="$out/cg_proxy_$n.log" "${proxy_cmd[@]}"
  load "cg_proxy_$n" "$port" "$n"
  stop "$pid"
  count[cg_proxy_$n]=$(sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$out/cg_proxy_$n.log")
  echo "== echo alone under callgrind, $n requests"
  start "cg_echo_$n" valgrind --tool=callgrind --callgrind-out-file="$out/cg_echo_$n.out" \
    --log-file="$out/cg_echo_$n.log" "$echo_bin" --listen 127.0.0.1:0 --threads 1
  load "cg_echo_$n" "$port" "$n"
  stop "$pid"
  count[cg_echo_$n]=$(sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$out/cg_echo_$n.log")
done

echo "== fds and memory per proxied connection ($mem_conns connections held open, idle)"
vmrss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
start fds "${proxy_cmd[@]}"
proxy_pid=$pid
sleep 0.5
fds_before=$(ls "/proc/$proxy_pid/fd" | wc -l)
rss_before=$(vmrss "$proxy_pid")
"$load_bin" "127.0.0.1:$port" --connections "$mem_conns" --size 64 --threads 1 --hold 6 >"$out/fds.load" 2>&1 &
hold_pid=$!
for _ in $(seq 1 300); do grep -q '^holding' "$out/fds.load" 2>/dev/null && break; sleep 0.1; done
sleep 1
fds_held=$(ls "/proc/$proxy_pid/fd" | wc -l)
rss_held=$(vmrss "$proxy_pid")
wait "$hold_pid" || true
stop "$proxy_pid"

# per A B DIGITS: (B - A) / (N2 - N1)
per() { python3 -c "print(f'{($2 - $1) / ($n2 - $n1):,.$3f}')"; }
syscalls=$(per "${count[strace_$n1]}" "${count[strace_$n2]}" 2)
proxy_ir=$(per "${count[cg_proxy_$n1]}" "${count[cg_proxy_$n2]}" 0)
echo_ir=$(per "${count[cg_echo_$n1]}" "${count[cg_echo_$n2]}" 0)
ratio=$(python3 -c "print(f'{(${count[cg_proxy_$n2]} - ${count[cg_proxy_$n1]}) / (${count[cg_echo_$n2]} - ${count[cg_echo_$n1]}):.2f}')")
fds_per=$(python3 -c "print(f'{($fds_held - $fds_before) / $mem_conns:.2f}')")
bytes_per=$(python3 -c "print(f'{($rss_held - $rss_before) * 1024 / $mem_conns:,.0f}')")
# The N2 run's biggest syscall counts per request (start-up not subtracted: a few hundred calls in all).
breakdown=$(awk 'NR > 2 && $NF != "total" && $1 !~ /^-/ {print $NF, $4}' "$out/strace_$n2.txt" |
  sort -k2 -n -r | head -n 4 |
  python3 -c "import sys; print(', '.join(f'{n} {int(c) / $n2:.2f}' for n, c in (l.split() for l in sys.stdin)))")

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
table=$(cat <<EOF
Measured at commit \`$commit\` on $(date -u +%Y-%m-%d) (UTC), N1 = $(python3 -c "print(f'{$n1:,}')") and N2 = $(python3 -c "print(f'{$n2:,}')") requests, 50 connections,
64-byte messages, \`echo_load --threads 1\` through \`fiberio-proxy --threads 1\` to \`fiberio-echo --threads 1\`.
Regenerate with \`$invocation\` (after \`ninja -C $build_dir\`).

| in the proxy, per proxied request | measured |
|---|---|
| syscalls (\`strace -f -c\`) | **$syscalls** ($breakdown) |
| user-space instructions (callgrind) | **$proxy_ir** |
| the same for \`fiberio-echo\` serving the clients itself | $echo_ir (ratio $ratio) |
| fds per proxied connection, idle | **$fds_per** ($fds_before before, $fds_held with $mem_conns connections) |
| memory per proxied connection, idle (VmRSS growth) | **$bytes_per bytes** ($(python3 -c "print(f'{$rss_before:,}')") KiB before, $(python3 -c "print(f'{$rss_held:,}')") KiB with $mem_conns connections) |
EOF
)
echo
echo "$table"
if [ "$docs" = 1 ]; then
  python3 - "$table" <<'EOF'
import sys
path = "docs/benchmarks.md"
begin, end = "<!-- relay_cost:begin -->", "<!-- relay_cost:end -->"
text = open(path).read()
if begin not in text or end not in text:
    sys.exit(f"relay_cost: {path} has no {begin} ... {end} block")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + begin + "\n" + sys.argv[1] + "\n" + end + tail)
EOF
  echo "== docs/benchmarks.md updated"
fi
