// apps/proxy.hpp — one proxied connection: connect the client to the next upstream, then relay bytes both
// ways until both directions have ended.
//
// The relay is net/copy.hpp's copy_bidirectional(): two direction fibers, splice(2) through a pipe (no
// copy into user space), a half-close from either side passed on to the other, and an idle timeout that
// ends both directions. Backpressure comes with it: a direction reads only what its pipe (64 KiB) can hold
// and waits while the destination does not take it, so a client that sends without reading is stopped by
// TCP flow control.
// An upstream that refuses, cannot be reached within connect_timeout, or whose name does not resolve: the
// client's connection is closed at once, the upstream is reported to the UpstreamPool (which logs the
// outage once and skips it for a while). A local shortage (EMFILE, ENOBUFS...) is not the upstream's
// fault: it is logged (rate-limited) and does not mark the upstream down.
// Thread-safety: the function owns the client stream; run it in its own fiber. The pool is shared.
#pragma once

#include <fiberio/net/tcp_stream.hpp>
#include "upstreams.hpp"

#include <chrono>

namespace fiberio {

struct ProxyOptions {
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::seconds idle_timeout{0};  // 0: never
};

void proxy_connection(TcpStream client, UpstreamPool& upstreams, const ProxyOptions& options);

}  // namespace fiberio
