// echo_load — a load generator for echo servers (fiberio-echo, bench/raw_epoll_echo, any other), written
// with fiberio itself.
//
//   echo_load HOST:PORT [--connections N] [--size BYTES] [--duration S] [--requests M] [--threads T]
//                       [--reconnect | --hold S]
//
// N connections (default 50), one fiber each; each sends a message of BYTES bytes (default 64), waits until
// the same bytes have come back, checks them, and starts again: one request in flight per connection. It
// stops after S seconds (default 5) or, with --requests, after M requests in all. --reconnect opens a new
// connection for every request (connect, send, half-close, read the echo and the end of stream, close):
// that measures the accept path. --hold S measures memory per idle connection: each connection makes
// one request, then all stay open and idle for S seconds; the line "holding N idle connections" is
// printed (and flushed) once all of them have had their echo. Every message differs (it carries the
// connection and request number), so an echo from the wrong connection or of stale bytes is caught. Prints
// requests/s, p50/p99/max latency, bytes both ways; exits 1 on any mismatch, I/O error or failed connection
// (and when no request completed), 2 on bad arguments. docs/benchmarks.md uses it. Threads: T workers
// (default 1), so that client and server can share a small machine.
#include <fiberio/fiberio.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace std::chrono_literals;

struct Options {
  fiberio::SocketAddress target;
  std::uint32_t connections = 50;
  std::size_t size = 64;
  double duration_s = 5.0;
  std::uint64_t requests = 0;  // 0: no limit (duration only)
  std::uint32_t threads = 1;
  bool reconnect = false;
  double hold_s = 0;  // > 0: --hold
};

constexpr auto kIoLimit = 10s;  // a request that takes longer than this counts as an error (a hung server)

struct Totals {
  std::mutex mutex;
  std::vector<std::uint32_t> latencies_ns;  // all requests, merged when a connection ends
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t errors = 0;
  std::uint64_t mismatches = 0;
  std::string first_error;
};

// Per-connection state; merged into Totals at the end, so the hot loop touches no shared cache line
// except the request budget.
struct Connection {
  std::uint32_t id = 0;
  std::vector<std::uint32_t> latencies_ns;
  std::uint64_t sent = 0, received = 0, errors = 0, mismatches = 0;
  std::string error;

  void fail(std::string_view what, const std::error_code& ec) {
    ++errors;
    if (error.empty()) error = std::string(what) + ": " + ec.message();
  }
};

// The message for request `seq` of connection `id`: a recognisable pattern with both numbers in front.
void fill(std::vector<std::byte>& msg, std::uint32_t id, std::uint64_t seq) {
  const std::uint64_t tag = (static_cast<std::uint64_t>(id) << 40) ^ seq;
  for (std::size_t i = 0; i < msg.size(); ++i) {
    msg[i] = static_cast<std::byte>(i < 8 ? (tag >> (8 * i)) & 0xff : (i * 131 + id) & 0xff);
  }
}

class Budget {
 public:
  Budget(std::uint64_t limit, fiberio::Clock::time_point end) : limit_(limit), end_(end) {}
  bool take() noexcept {
    if (fiberio::Clock::now() >= end_) return false;
    return limit_ == 0 || taken_.fetch_add(1, std::memory_order_relaxed) < limit_;
  }

 private:
  const std::uint64_t limit_;
  const fiberio::Clock::time_point end_;
  std::atomic<std::uint64_t> taken_{0};
};

std::uint32_t elapsed_ns(fiberio::Clock::time_point t0) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(fiberio::Clock::now() - t0).count();
  return static_cast<std::uint32_t>(std::min<std::int64_t>(ns, UINT32_MAX));
}

// One request on `stream`; false (with the reason recorded) on an error or a mismatch.
bool exchange(fiberio::TcpStream& stream, Connection& c, std::vector<std::byte>& msg,
              std::vector<std::byte>& back, std::uint64_t seq, bool half_close) {
  fill(msg, c.id, seq);
  const auto t0 = fiberio::Clock::now();
  const auto deadline = t0 + kIoLimit;
  if (auto w = stream.write_all(msg, deadline); !w) return c.fail("write", w.error()), false;
  c.sent += msg.size();
  if (half_close) {
    if (auto s = stream.shutdown_write(); !s) return c.fail("shutdown", s.error()), false;
  }
  if (auto r = stream.read_exact(back, deadline); !r) return c.fail("read", r.error()), false;
  c.received += back.size();
  if (half_close) {  // the server must close after the echo
    std::byte extra[1];
    auto n = stream.read_some(extra, deadline);
    if (!n) return c.fail("read end of stream", n.error()), false;
    if (*n != 0) return ++c.mismatches, false;
  }
  c.latencies_ns.push_back(elapsed_ns(t0));
  if (back != msg) {
    ++c.mismatches;
    if (c.error.empty()) c.error = "echo differs from the message sent";
    return false;
  }
  return true;
}

void run_connection(const Options& o, Budget& budget, Connection& c, fiberio::WaitGroup& connected) {
  struct Done {
    fiberio::WaitGroup& wg;
    ~Done() { wg.done(); }
  };
  std::optional<Done> done{std::in_place, connected};  // once the first exchange is over, or failed
  std::vector<std::byte> msg(o.size), back(o.size);
  std::uint64_t seq = 0;
  if (o.hold_s > 0) {
    auto stream = fiberio::TcpStream::connect(o.target, fiberio::Clock::now() + kIoLimit);
    if (!stream) return c.fail("connect", stream.error());
    if (!exchange(*stream, c, msg, back, seq, /*half_close=*/false)) return;
    done.reset();
    fiberio::sleep_for(std::chrono::duration<double>(o.hold_s));
    return;
  }
  if (o.reconnect) {
    while (budget.take()) {
      auto stream = fiberio::TcpStream::connect(o.target, fiberio::Clock::now() + kIoLimit);
      if (!stream) return c.fail("connect", stream.error());
      if (!exchange(*stream, c, msg, back, seq++, /*half_close=*/true)) return;
    }
    return;
  }
  auto stream = fiberio::TcpStream::connect(o.target, fiberio::Clock::now() + kIoLimit);
  if (!stream) return c.fail("connect", stream.error());
  (void)stream->set_nodelay(true);
  while (budget.take()) {
    if (!exchange(*stream, c, msg, back, seq++, /*half_close=*/false)) return;
  }
}

double percentile_us(std::vector<std::uint32_t>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k] / 1000.0;
}

template <class T>
bool parse_number(std::string_view text, T& out) {
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return !text.empty() && ec == std::errc{} && ptr == end;
}

int usage(const std::string& why) {
  std::cerr << "echo_load: " << why
            << "\nusage: echo_load HOST:PORT [--connections N] [--size BYTES] [--duration S] [--requests M] "
               "[--threads T] [--reconnect | --hold S]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool have_target = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&](auto& out) {
      if (i + 1 >= argc || !parse_number(argv[i + 1], out)) return false;
      ++i;
      return true;
    };
    bool ok = true;
    if (arg == "--connections") {
      ok = value(o.connections) && o.connections > 0;
    } else if (arg == "--size") {
      ok = value(o.size) && o.size > 0;
    } else if (arg == "--duration") {
      ok = value(o.duration_s) && o.duration_s > 0;
    } else if (arg == "--requests") {
      ok = value(o.requests);
    } else if (arg == "--threads") {
      ok = value(o.threads) && o.threads > 0;
    } else if (arg == "--reconnect") {
      o.reconnect = true;
    } else if (arg == "--hold") {
      ok = value(o.hold_s) && o.hold_s > 0;
    } else if (!arg.starts_with("--") && !have_target) {
      auto a = fiberio::SocketAddress::parse(arg);
      if (!a) return usage(a.error());
      o.target = *a;
      have_target = true;
    } else {
      return usage("unexpected argument '" + std::string(arg) + "'");
    }
    if (!ok) return usage("bad value for " + std::string(arg));
  }
  if (!have_target) return usage("missing HOST:PORT");
  if (o.reconnect && o.hold_s > 0) return usage("--reconnect and --hold exclude each other");

  Totals totals;
  double seconds = 0;
  {
    fiberio::Runtime runtime{fiberio::Config{.threads = o.threads}};
    runtime.block_on([&] {
      const auto start = fiberio::Clock::now();
      Budget budget(o.requests, start + std::chrono::duration_cast<fiberio::Clock::duration>(
                                            std::chrono::duration<double>(o.duration_s)));
      std::vector<std::unique_ptr<Connection>> conns;
      std::vector<fiberio::JoinHandle<void>> fibers;
      fiberio::WaitGroup connected;
      connected.add(o.connections);
      for (std::uint32_t i = 0; i < o.connections; ++i) {
        conns.push_back(std::make_unique<Connection>());
        conns.back()->id = i;
        if (o.hold_s == 0) conns.back()->latencies_ns.reserve(1 << 12);
        fibers.push_back(fiberio::spawn(
            [&o, &budget, &connected, c = conns.back().get()] { run_connection(o, budget, *c, connected); },
            {.name = "load", .worker = i % o.threads}));
      }
      if (o.hold_s > 0) {
        connected.wait();
        std::printf("holding %u idle connections for %.1f s\n", o.connections, o.hold_s);
        std::fflush(stdout);
      }
      for (auto& f : fibers)
        f.join();
      seconds = std::chrono::duration<double>(fiberio::Clock::now() - start).count();
      for (auto& c : conns) {
        totals.latencies_ns.insert(totals.latencies_ns.end(), c->latencies_ns.begin(), c->latencies_ns.end());
        totals.bytes_sent += c->sent;
        totals.bytes_received += c->received;
        totals.errors += c->errors;
        totals.mismatches += c->mismatches;
        if (totals.first_error.empty() && !c->error.empty()) totals.first_error = c->error;
      }
    });
  }

  auto& lat = totals.latencies_ns;
  const std::size_t n = lat.size();
  const double max_us = n ? *std::max_element(lat.begin(), lat.end()) / 1000.0 : 0;
  const double p50 = percentile_us(lat, 0.50);
  const double p99 = percentile_us(lat, 0.99);
  std::printf("echo_load: %s, %u connections%s, %zu-byte messages, %u thread%s, %.2f s\n",
              o.target.to_string().c_str(), o.connections, o.reconnect ? " (new connection per request)" : "",
              o.size, o.threads, o.threads == 1 ? "" : "s", seconds);
  std::printf("requests: %zu (%.0f requests/s)\n", n, seconds > 0 ? static_cast<double>(n) / seconds : 0.0);
  std::printf("latency: p50 %.1f us, p99 %.1f us, max %.1f us\n", p50, p99, max_us);
  std::printf("bytes: sent %llu, received %llu\n", static_cast<unsigned long long>(totals.bytes_sent),
              static_cast<unsigned long long>(totals.bytes_received));
  std::printf("errors: %llu, mismatches: %llu%s%s\n", static_cast<unsigned long long>(totals.errors),
              static_cast<unsigned long long>(totals.mismatches),
              totals.first_error.empty() ? "" : " — first: ", totals.first_error.c_str());
  return (totals.errors == 0 && totals.mismatches == 0 && n > 0) ? 0 : 1;
}
