// bench/copy_bench.cpp — what splice(2) buys in copy_bidirectional (net/copy.hpp). A relay between two
// loopback TCP connections (client -> relay -> server) moves 64 MiB per iteration, one way or both ways at
// once, with splice through a pipe (zero copy) and with the read/write fallback (CopyOptions::use_splice),
// with 64 KiB and 1 MiB chunks (the pipe is resized to the chunk).
//
// Only the relay runs in this process (a Runtime with 2 workers); the client and the server run in a
// forked child with plain blocking sockets and one thread per direction, so that this process's CPU time
// (getrusage) is the relay's alone. Wall-clock time (UseRealTime). Counters: bytes_per_second (relayed
// bytes) and relay_cpu_ms_per_GiB. docs/benchmarks.md ("copy_bidirectional: splice vs read/write") has
// the command and the figures.
#include <benchmark/benchmark.h>

#include <fiberio/fiberio.hpp>

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

constexpr std::uint64_t kBytes = 64ull << 20;  // per direction and iteration

double cpu_seconds() {
  rusage r{};
  ::getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(what);
}

// A connected pair of blocking loopback TCP sockets: {connector, acceptor}.
std::pair<int, int> tcp_pair() {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  check(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) == 0, "bind");
  check(::listen(listener, 1) == 0, "listen");
  check(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0, "getsockname");
  const int a = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  check(::connect(a, reinterpret_cast<sockaddr*>(&addr), len) == 0, "connect");
  const int b = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  check(b >= 0, "accept");
  ::close(listener);
  return {a, b};
}

// The child's side: writes kBytes into `out` (then half-closes), reads `in` to the end.
void pump(int out) {
  std::vector<char> chunk(256 * 1024, 'x');
  for (std::uint64_t sent = 0; sent < kBytes;) {
    const ssize_t n = ::send(out, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n <= 0) _exit(3);
    sent += static_cast<std::uint64_t>(n);
  }
  ::shutdown(out, SHUT_WR);
}
std::uint64_t sink(int in) {
  std::vector<char> buf(256 * 1024);
  std::uint64_t got = 0;
  for (ssize_t n; (n = ::recv(in, buf.data(), buf.size(), 0)) > 0;)
    got += static_cast<std::uint64_t>(n);
  return got;
}

// Forks the client+server process; returns its pid. The relay keeps `downstream` and `upstream`.
pid_t start_peers(int client, int server, int downstream, int upstream, bool both_ways) {
  const pid_t pid = ::fork();
  check(pid >= 0, "fork");
  if (pid > 0) return pid;
  ::close(downstream);
  ::close(upstream);
  std::uint64_t at_server = 0, at_client = 0;
  std::thread up([&] { pump(client); });
  std::thread down([&] {
    if (both_ways) {
      pump(server);
    } else {
      ::shutdown(server, SHUT_WR);
    }
  });
  std::thread sink_server([&] { at_server = sink(server); });
  at_client = sink(client);
  up.join();
  down.join();
  sink_server.join();
  _exit(at_server == kBytes && at_client == (both_ways ? kBytes : 0) ? 0 : 4);
}

void BM_Relay(benchmark::State& state) {
  const bool use_splice = state.range(0) != 0;
  const bool both_ways = state.range(1) != 0;
  const auto chunk = static_cast<std::size_t>(state.range(2)) * 1024;
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  std::uint64_t moved = 0;
  double cpu = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const auto [client, downstream] = tcp_pair();
    const auto [upstream, server] = tcp_pair();
    const pid_t peers = start_peers(client, server, downstream, upstream, both_ways);
    ::close(client);
    ::close(server);
    state.ResumeTiming();
    const double before = cpu_seconds();
    const auto counts = rt.block_on([&, downstream = downstream, upstream = upstream] {
      fiberio::TcpStream a(downstream), b(upstream);
      return fiberio::copy_bidirectional(a, b, {.use_splice = use_splice, .chunk_size = chunk});
    });
    cpu += cpu_seconds() - before;
    int status = 0;
    ::waitpid(peers, &status, 0);
    if (!counts || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      state.SkipWithError("relay failed");
      break;
    }
    moved += counts->a_to_b + counts->b_to_a;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(moved));
  state.counters["relay_cpu_ms_per_GiB"] = cpu * 1e3 / (static_cast<double>(moved) / (1 << 30));
  state.SetLabel(std::string(use_splice ? "splice" : "read/write") +
                 (both_ways ? ", both ways" : ", one way") + ", chunk " + std::to_string(chunk / 1024) +
                 " KiB");
}

}  // namespace

BENCHMARK(BM_Relay)
    ->ArgNames({"splice", "both", "chunk_kib"})
    ->ArgsProduct({{1, 0}, {0, 1}, {64, 1024}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

BENCHMARK_MAIN();
