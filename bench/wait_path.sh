#!/usr/bin/env bash
# wait_path.sh — the cost of fiberio's wait path, measured side by side with the plain-epoll floor.
#
#   bench/wait_path.sh [--quick] [--build] [--no-docs] [--out DIR] [--n1 N] [--n2 N] [--reps R] [BUILD_DIR]
#
# Servers, in the same run (same minutes): `apps/fiberio-echo --threads 1` on epoll (idle loops, the
# default, and `--connection-mode fiber`, a fiber per connection) and (where the kernel allows it) on
# io_uring, and `bench/raw_epoll_echo`.
# Load: bench/echo_load, 1 thread, 50 connections, 64-byte ping-pong (one request in flight per connection).
# Measures, for each server:
#   1. syscalls per request under `strace -f -c` (server started under strace), total and breakdown;
#   2. syscalls per request at full speed with `perf stat -e raw_syscalls:sys_enter,... -p PID`;
#   3. user-space instructions per request: valgrind --tool=callgrind, the "Collected" Ir of the server;
#   4. bytes per idle connection: VmRSS before and while `echo_load --hold` keeps 10,000 connections open.
# 1–3 use two fresh server starts, one driven for N1 requests and one for N2 (default 20,000 and 60,000):
# per request = (count(N2) - count(N1)) / (N2 - N1), so start-up, connection set-up and shutdown cancel.
# The callgrind pair is repeated R times (default 3): its figure depends on timing (see step 3 below).
#
# BUILD_DIR (default build-rel) must hold a built apps/fiberio-echo, bench/echo_load, bench/raw_epoll_echo
# (meson setup build-rel -Dbuildtype=release && ninja -C build-rel); --build runs ninja there first.
# Writes raw outputs, tables and a callgrind annotation under --out (default BUILD_DIR/wait_path), and,
# unless --no-docs or --quick, the block between <!-- wait_path:begin --> and <!-- wait_path:end --> in
# docs/benchmarks.md plus docs/img/wait_path_*.png (gnuplot; installed on demand if missing).
# --quick: small counts (2,000/6,000 requests, 1,000 idle connections), a smoke check; implies --no-docs.
# Exits non-zero if echo_load reports an error or a mismatch, or completes a different number of requests
# than asked; every server it started is stopped on any exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

# Packages this script installs on demand (not build or test dependencies of fiberio).
BENCH_PACKAGES=(gnuplot-nox)

build_dir=build-rel
quick=0
do_build=0
docs=1
out=""
n1=""
n2=""
reps=""
invocation="bench/wait_path.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --build) do_build=1 ;;
    --no-docs) docs=0 ;;
    --out) out=$2; shift ;;
    --n1) n1=$2; shift ;;
    --n2) n2=$2; shift ;;
    --reps) reps=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "wait_path: unknown option '$1'" >&2; exit 2 ;;
    *) build_dir=$1 ;;
  esac
  shift
done

if [ "$quick" = 1 ]; then
  n1=${n1:-2000} n2=${n2:-6000} mem_conns=1000 hold_s=5 reps=${reps:-1} docs=0
else
  n1=${n1:-20000} n2=${n2:-60000} mem_conns=10000 hold_s=8 reps=${reps:-3}
fi
if ! [ "$n1" -gt 0 ] 2>/dev/null || ! [ "$n2" -gt "$n1" ] 2>/dev/null; then
  echo "wait_path: need 0 < N1 < N2 (got $n1, $n2)" >&2
  exit 2
fi
connections=50
size=64
out=${out:-$build_dir/wait_path}

if [ "$do_build" = 1 ]; then
  ninja -j2 -C "$build_dir" apps/fiberio-echo bench/echo_load bench/raw_epoll_echo
fi
echo_bin=$build_dir/apps/fiberio-echo
raw_bin=$build_dir/bench/raw_epoll_echo
load_bin=$build_dir/bench/echo_load
for b in "$echo_bin" "$raw_bin" "$load_bin"; do
  if [ ! -x "$b" ]; then
    echo "wait_path: $b not found: build first (ninja -C $build_dir) or pass --build" >&2
    exit 1
  fi
done
for tool in strace valgrind callgrind_annotate callgrind_control python3; do
  command -v "$tool" >/dev/null || { echo "wait_path: $tool is needed" >&2; exit 1; }
done
if [ "$docs" = 1 ] && ! command -v gnuplot >/dev/null; then
  echo "wait_path: installing ${BENCH_PACKAGES[*]} for the charts" >&2
  bash scripts/install-deps.sh "${BENCH_PACKAGES[@]}"
fi

# Both the servers and echo_load inherit this (10,000 connections need 10,000 fds on each side).
ulimit -n 20000

rm -rf "$out"
mkdir -p "$out"

# name -> command line of the server; every one prints "listening on 127.0.0.1:PORT" once ready.
servers=(fiberio-echo fiberio-echo-fiber fiberio-echo-io_uring raw_epoll_echo)
server_cmd() {
  case "$1" in
    fiberio-echo) echo "$echo_bin --listen 127.0.0.1:0 --threads 1" ;;
    fiberio-echo-fiber) echo "$echo_bin --listen 127.0.0.1:0 --threads 1 --connection-mode fiber" ;;
    fiberio-echo-io_uring) echo "$echo_bin --listen 127.0.0.1:0 --threads 1 --backend io_uring" ;;
    raw_epoll_echo) echo "$raw_bin 127.0.0.1:0" ;;
  esac
}
# io_uring only where this build has it and the kernel lets us use it (if not, the program says why).
"$echo_bin" --listen 127.0.0.1:0 --threads 1 --backend io_uring >"$out/uring_probe.out" 2>"$out/uring_probe.err" &
probe_pid=$!
for _ in $(seq 1 50); do
  grep -q '^listening on' "$out/uring_probe.out" 2>/dev/null && break
  kill -0 "$probe_pid" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q '^listening on' "$out/uring_probe.out" 2>/dev/null; then
  echo "== io_uring left out: $(head -n 1 "$out/uring_probe.err")"
  servers=(fiberio-echo fiberio-echo-fiber raw_epoll_echo)
fi
kill -TERM "$probe_pid" 2>/dev/null || true
wait "$probe_pid" 2>/dev/null || true

# On any exit: the running server (a grandchild when under strace) and every background job still there.
srv_pid=""
cleanup() {
  local p pids
  pids=$(jobs -p)
  for p in $srv_pid $pids; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in $srv_pid $pids; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "wait_path: $*" >&2
  exit 1
}

# start_server NAME TAG [WRAPPER...]: starts NAME (under WRAPPER, if given), waits for its ready line.
# Sets srv_pid (the server process itself), wrap_pid (what $! was: the wrapper, or the server) and port.
# Under valgrind, the io_uring server sometimes never gets ready: valgrind keeps its one lock while the
# worker blocks in io_uring_enter, so the main thread cannot hand it the first fiber (all three threads
# seen waiting, two for valgrind's lock). That start is killed and tried again, up to three times.
start_server() {
  local name=$1 tag=$2
  shift 2
  local cmd line="" attempt
  read -r -a cmd <<<"$(server_cmd "$name")"
  for attempt in 1 2 3; do
    "$@" "${cmd[@]}" >"$out/$tag.stdout" 2>"$out/$tag.stderr" &
    wrap_pid=$!
    srv_pid=$wrap_pid
    line=""
    for _ in $(seq 1 300); do
      line=$(head -n 1 "$out/$tag.stdout" 2>/dev/null || true)
      [ -n "$line" ] && break
      kill -0 "$wrap_pid" 2>/dev/null || { cat "$out/$tag.stderr" >&2; fail "$name ($tag) exited before it was ready"; }
      sleep 0.1
    done
    [ -n "$line" ] && break
    echo "    $name ($tag): not ready after 30 s (attempt $attempt), starting it again" >&2
    pkill -KILL -P "$wrap_pid" 2>/dev/null || true  # a server under strace is strace's child
    kill -KILL "$wrap_pid" 2>/dev/null || true
    wait "$wrap_pid" 2>/dev/null || true
  done
  case "$line" in
    "listening on 127.0.0.1:"*) port=${line##*:} ;;
    *) cat "$out/$tag.stderr" >&2; fail "$name ($tag): no ready line (got '$line')" ;;
  esac
  if [ "$#" -gt 0 ] && [ "$1" = strace ]; then  # strace forks the server: signal the child, not strace
    srv_pid=$(pgrep -P "$wrap_pid" | head -n 1)
    [ -n "$srv_pid" ] || fail "$name ($tag): no server process under strace"
  fi
}

# stop_server: SIGTERM to the server, then waits for the wrapper (strace/valgrind write their reports).
stop_server() {
  kill -TERM "$srv_pid" 2>/dev/null || true
  for _ in $(seq 1 600); do
    kill -0 "$wrap_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$wrap_pid" 2>/dev/null && fail "server pid $srv_pid still running 60 s after SIGTERM"
  wait "$wrap_pid" 2>/dev/null || true
  srv_pid=""
}

# check_load FILE RC EXPECTED: echo_load's exit code 0, no error or mismatch, EXPECTED requests completed.
check_load() {
  local file=$1 rc=$2 expected=$3
  if [ "$rc" != 0 ] || ! grep -q '^errors: 0, mismatches: 0' "$file"; then
    cat "$file" >&2
    fail "echo_load failed (exit code $rc): see $file"
  fi
  local got
  got=$(sed -n 's/^requests: \([0-9]*\).*/\1/p' "$file")
  [ "$got" = "$expected" ] || { cat "$file" >&2; fail "echo_load completed $got requests, not $expected ($file)"; }
}

# load TAG REQUESTS [DURATION]: a ping-pong run of exactly REQUESTS requests against $port.
load() {
  local tag=$1 requests=$2 duration=${3:-120} rc=0
  "$load_bin" "127.0.0.1:$port" --connections "$connections" --size "$size" --threads 1 \
    --requests "$requests" --duration "$duration" >"$out/$tag.load" 2>&1 || rc=$?
  check_load "$out/$tag.load" "$rc" "$requests"
  echo "    $(grep '^requests:' "$out/$tag.load")"
}

started=$(date +%s)
echo "== wait_path: $build_dir, N1=$n1 N2=$n2, $connections connections, $size-byte messages; out: $out"
echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
cut -d' ' -f1-3 /proc/loadavg >"$out/loadavg.before"

# 1. strace -f -c: server started under strace, so all its threads are counted from the first syscall.
echo "== 1. syscalls per request, strace -f -c"
for n in "$n1" "$n2"; do
  for s in "${servers[@]}"; do
    echo "  $s, $n requests"
    start_server "$s" "strace_${s}_$n" strace -f -c -o "$out/strace_${s}_$n.txt"
    load "strace_${s}_$n" "$n"
    stop_server
  done
done

# 2. perf stat on the syscall tracepoints, attached to the running server.
echo "== 2. syscalls per request at full speed, perf stat"
perf_events=""
perf_skip=""
if ! command -v perf >/dev/null; then
  perf_skip="perf not installed"
elif ! perf stat -e raw_syscalls:sys_enter -o /dev/null -- true 2>"$out/perf_probe.err"; then
  perf_skip="perf cannot open raw_syscalls:sys_enter ($(head -n 1 "$out/perf_probe.err"))"
else
  perf_events=raw_syscalls:sys_enter
  for sc in recvfrom sendto epoll_wait epoll_pwait epoll_pwait2 io_uring_enter read write epoll_ctl; do
    perf_events+=,syscalls:sys_enter_$sc
  done
  perf stat -e "$perf_events" -o /dev/null -- true 2>/dev/null || perf_events=raw_syscalls:sys_enter
fi
if [ -n "$perf_skip" ]; then
  echo "  SKIP: $perf_skip; the perf rows are left out"
  echo "$perf_skip" >"$out/perf_skipped.txt"
else
  for n in "$n1" "$n2"; do
    for s in "${servers[@]}"; do
      echo "  $s, $n requests"
      start_server "$s" "perf_${s}_$n"
      perf stat -x, -e "$perf_events" -p "$srv_pid" -o "$out/perf_${s}_$n.csv" &
      perf_pid=$!
      sleep 1  # attached well before the load starts
      load "perf_${s}_$n" "$n"
      kill -INT "$perf_pid"
      wait "$perf_pid" || true
      stop_server
    done
  done
fi

# 3. callgrind: the server's own instructions (user space only), "Collected" of the whole process.
# The figure depends on timing: a slowed server that finds the next request already waiting reads it
# without parking, which is cheaper. So the N1/N2 pair is repeated $reps times (servers interleaved); the
# report gives the median and the range, and fd suspensions (fiberio) or recv calls (raw) and epoll_wait
# calls per request show the regime of each.
echo "== 3. instructions per request, valgrind --tool=callgrind ($reps pairs)"
for rep in $(seq 1 "$reps"); do
  for n in "$n1" "$n2"; do
    for s in "${servers[@]}"; do
      tag="callgrind_${s}_${n}_r$rep"
      echo "  $s, $n requests, pair $rep (slow under valgrind)"
      start_server "$s" "$tag" valgrind --tool=callgrind --trace-children=no \
        --callgrind-out-file="$out/$tag.out" --log-file="$out/$tag.log"
      load "$tag" "$n" 1800  # --requests decides when it stops
      if [ "$s" = fiberio-echo-io_uring ]; then
        # Under valgrind 3.19 the io_uring server does not stop on SIGTERM (its waits with a timeout never
        # end there, so shutdown hangs), though it does everywhere else: dump the profile while it runs,
        # then kill it. Both runs of a pair leave out the same shutdown, so the difference is unchanged.
        callgrind_control -d "$srv_pid" >/dev/null
        kill -KILL "$srv_pid"
        wait "$wrap_pid" 2>/dev/null || true
        srv_pid=""
        dump=$(ls "$out/$tag.out."* | head -n 1)
        mv "$dump" "$out/$tag.out"
        echo "Collected : $(sed -n 's/^summary: *//p' "$out/$tag.out") (from callgrind_control --dump)" >>"$out/$tag.log"
      else
        stop_server
      fi
      grep -q "Collected" "$out/$tag.log" || fail "no 'Collected' line in $out/$tag.log"
      callgrind_annotate --auto=no --threshold=100 "$out/$tag.out" >"$out/$tag.annotate" 2>&1
    done
  done
done

# 4. memory per idle connection.
echo "== 4. bytes per idle connection, $mem_conns connections"
vmrss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
for s in "${servers[@]}"; do
  echo "  $s"
  start_server "$s" "mem_$s"
  sleep 0.5
  before=$(vmrss "$srv_pid")
  "$load_bin" "127.0.0.1:$port" --connections "$mem_conns" --size "$size" --threads 1 --hold "$hold_s" \
    >"$out/mem_$s.load" 2>&1 &
  hold_pid=$!
  for _ in $(seq 1 600); do
    grep -q '^holding' "$out/mem_$s.load" && break
    kill -0 "$hold_pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -q "^holding $mem_conns idle connections" "$out/mem_$s.load" || {
    cat "$out/mem_$s.load" >&2
    fail "echo_load --hold did not report $mem_conns idle connections"
  }
  # Idle loops give their stacks back after one to two seconds idle (Config::idle_stack_release): wait 3.
  sleep 3
  during=$(vmrss "$srv_pid")
  rc=0
  wait "$hold_pid" || rc=$?
  check_load "$out/mem_$s.load" "$rc" "$mem_conns"
  stop_server
  printf 'before_kib %s\nduring_kib %s\nconnections %s\n' "$before" "$during" "$mem_conns" >"$out/mem_$s.txt"
  echo "    VmRSS $before KiB -> $during KiB"
done

cut -d' ' -f1-3 /proc/loadavg >"$out/loadavg.after"
elapsed=$(($(date +%s) - started))
echo "== done in ${elapsed} s; load average: $(cat "$out/loadavg.after")"

commit=$(git rev-parse --short HEAD)
# Uncommitted changes other than what this script writes make the figures those of no commit.
if [ -n "$(git status --porcelain --untracked-files=no -- . ':!docs/benchmarks.md' ':!docs/img' 2>/dev/null)" ]; then
  commit="$commit + uncommitted changes"
fi
report_args=(--out "$out" --reps "$reps" --servers "$(IFS=,; echo "${servers[*]}")" --n1 "$n1" --n2 "$n2"
  --connections "$connections" --size "$size" --commit "$commit" --date "$(date -u +%Y-%m-%d)"
  --command "$invocation" --elapsed "$elapsed")
if [ "$docs" = 1 ]; then
  report_args+=(--docs docs/benchmarks.md --img docs/img)
fi
python3 "$here/wait_path.py" "${report_args[@]}"
echo "== tables: $out/wait_path.md"
echo "== callgrind top 20 (N2 run of the median pair, fiberio-echo): $out/callgrind_top20_fiberio-echo.txt"
echo "== callgrind per request by function (that pair, N2 - N1): $out/callgrind_per_request_fiberio-echo.txt"
