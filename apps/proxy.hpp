// apps/proxy.hpp — one proxied connection: connect the client to the next upstream, then relay bytes both
// ways until both directions have ended.
//
// The relay is net/copy.hpp's copy_bidirectional(): two direction fibers, small messages by read/write and
// large transfers by splice(2) through a pooled pipe, a half-close from either side passed on to the other,
// and an idle timeout that ends both directions (so a connection whose client left half-open is reaped).
// Backpressure comes with it: a direction reads only what its buffer or pipe can hold and waits while the
// destination does not take it, so a client that sends without reading is stopped by TCP flow control.
// An upstream that accepts and then does not answer within response_timeout of the client's first bytes,
// or whose socket fails during the relay (it resets the connection), is reported to the pool like one
// that refuses: the client is closed and the upstream skipped for a while, so a hung or crashing
// upstream does not keep taking clients. A client's own reset is not held against the upstream.
// An upstream that refuses, cannot be reached within connect_timeout, or whose name does not resolve: the
// client's connection is closed at once, the upstream is reported to the UpstreamPool (which logs the
// outage once and skips it for a while). A local shortage (EMFILE, ENOBUFS...) is not the upstream's
// fault: it is logged (rate-limited) and does not mark the upstream down.
// Active health checks (check_upstreams, every health_check_interval when set) connect to each upstream.
// Thread-safety: the function owns the client stream; run it in its own fiber. The pool is shared.
#pragma once

#include <fiberio/net/tcp_stream.hpp>
#include "app_config.hpp"
#include "upstreams.hpp"

#include <chrono>

namespace fiberio {

struct ProxyOptions {
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds health_check_interval{0};  // 0: no active checks
  std::chrono::milliseconds response_timeout{10'000};  // 0: no limit
  std::chrono::seconds idle_timeout{300};              // 0: never
};

void proxy_connection(TcpStream client, UpstreamPool& upstreams, const ProxyOptions& options);

// One round of active health checks: a TCP connect to every upstream at once, within connect_timeout. A
// failed connect marks the upstream down, as a client's would (so clients stop being sent to a dead
// upstream before they find out); a passing one changes nothing (a connect does not show that an
// upstream answers, so a down one comes back when its pause ends and a client's relay succeeds).
void check_upstreams(UpstreamPool& upstreams, const ProxyOptions& options);

// The upstreams and options of one configuration, as a reload swaps them (apps/proxy_main.cpp).
struct ProxySetup {
  explicit ProxySetup(const AppConfig& config)
      : upstreams(config.upstreams, config.balance),
        options{config.connect_timeout, config.health_check_interval, config.response_timeout,
                config.idle_timeout} {}
  mutable UpstreamPool upstreams;  // its counters change; the setup itself does not
  const ProxyOptions options;
};

}  // namespace fiberio
