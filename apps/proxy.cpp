#include "proxy.hpp"

#include <fiberio/net/copy.hpp>
#include "log.hpp"

#include <fiberio/runtime/runtime.hpp>

#include <cerrno>
#include <vector>

namespace fiberio {
namespace {

// Errors that say this process (or host) is short of something, not that the upstream is bad.
bool local_shortage(const std::error_code& ec) {
  if (ec.category() != std::generic_category()) return false;
  const int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

LogLimiter shortage_log;

}  // namespace

void check_upstreams(UpstreamPool& upstreams, const ProxyOptions& options) {
  std::vector<JoinHandle<void>> checks;
  for (std::size_t i = 0; i < upstreams.size(); ++i) {
    checks.push_back(spawn(
        [&upstreams, &options, i] {
          const Deadline deadline = Clock::now() + options.connect_timeout;
          auto addrs = resolve(upstreams.address(i));
          if (!addrs) return upstreams.failed(i, addrs.error());
          auto probe = TcpStream::connect(*addrs, deadline);
          if (!probe && !local_shortage(probe.error())) upstreams.failed(i, probe.error());
        },
        {.name = "health check"}));
  }
  // Every check is joined before this returns, even when the caller is cancelled (shutdown): they use the
  // pool and the options, which the caller owns.
  bool caller_cancelled = false;
  for (auto& check : checks) {
    while (check.joinable()) {
      try {
        check.join();
      } catch (const Cancelled&) {
        if (!check.joinable()) continue;  // the check itself ended cancelled: we cancelled it
        caller_cancelled = true;          // aimed at us: stop the checks, wait for them below
        for (auto& other : checks)
          other.cancel();
      }
    }
  }
  if (caller_cancelled) throw Cancelled{};
}

void proxy_connection(TcpStream client, UpstreamPool& upstreams, const ProxyOptions& options) {
  const std::size_t index = upstreams.pick();
  struct Release {
    UpstreamPool& pool;
    std::size_t index;
    ~Release() { pool.release(index); }
  } release{upstreams, index};
  const HostPort& target = upstreams.address(index);
  const Deadline deadline = Clock::now() + options.connect_timeout;
  auto addrs = resolve(target);  // a numeric address: at once; a name: getaddrinfo on the blocking pool
  if (!addrs) {
    upstreams.failed(index, addrs.error());
    return;  // closes the client
  }
  auto upstream = TcpStream::connect(*addrs, deadline);
  if (!upstream) {
    if (local_shortage(upstream.error())) {
      std::uint64_t held = 0;
      if (shortage_log.allow(held)) {
        log_event(LogLevel::warn, "cannot connect to upstream ", target.to_string(), ": ",
                  upstream.error().message(), " (+", held, " more)");
      }
    } else {
      upstreams.failed(index, upstream.error());
    }
    return;
  }
  (void)upstream->set_nodelay(true);  // as run_server did for the client: small messages go out at once
  CopyOptions copy;
  if (options.idle_timeout.count() > 0) copy.idle_timeout = options.idle_timeout;
  if (options.response_timeout.count() > 0) copy.response_timeout = options.response_timeout;
  // Ends at both ends of stream, an error (reset...) or a timeout; either way both sockets close when this
  // returns. Nothing to log but a hung upstream: the rest are the ordinary ways a connection ends.
  // The upstream is judged by the relay, not by the connect: one that accepts and never answers, or whose
  // socket fails (a reset, a broken pipe), is down; a relay that ends any other way (the client's error
  // included) counts for it.
  CopyReport report;
  auto relayed = copy_bidirectional(client, *upstream, copy, report);
  if (!relayed && (relayed.error() == NetErrc::no_response || report.failed == CopyReport::Side::b)) {
    upstreams.failed(index, relayed.error());
  } else {
    upstreams.succeeded(index);
  }
}

}  // namespace fiberio
