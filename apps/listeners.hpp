// apps/listeners.hpp — binds a server's listening socket(s) and makes sure the port is the server's own.
//
//   auto bound = fiberio::bind_listeners(addr, fiberio::AcceptMode::single, threads);
//   if (!bound) { log(bound.error()); return 1; }        // "cannot listen on 127.0.0.1:7000: Address in use"
//   std::cout << "listening on " << bound->local.to_string() << "\n";
//
// Two ways to accept (docs/benchmarks.md, "Echo server", has the measurements behind the default):
//  - single: one listening socket, bound WITHOUT SO_REUSEPORT; one acceptor fiber hands connections to the
//    workers round-robin. A second server on the same port gets EADDRINUSE from the kernel: exclusive by
//    construction.
//  - reuseport: one SO_REUSEPORT listener per worker, each with its own acceptor, so the kernel spreads
//    connections and no connection crosses workers. SO_REUSEPORT would let ANY process of the same user
//    join the group, so the port is first claimed by a "port guard": a socket bound with SO_REUSEADDR but
//    without SO_REUSEPORT and never listening, held for the server's life. Our listeners may share the port
//    with it (a bound, non-listening SO_REUSEADDR socket does not conflict); a later server's guard
//    conflicts with our listening sockets and fails with EADDRINUSE. Two servers started in the very same
//    instant could both pass their guards; after listening, reuseport mode therefore also checks the
//    kernel's table of listening sockets (/proc/net/tcp, tcp6) for a listener on the port that is not ours,
//    and fails if it finds one (both racers may then fail: never both succeed).
// Owns the sockets. Thread-safety: build and destroy on one thread; accept on the listeners as
// TcpListener allows.
#pragma once

#include <fiberio/net/address.hpp>
#include <fiberio/net/tcp_listener.hpp>

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace fiberio {

enum class AcceptMode : std::uint8_t { single, reuseport };

std::expected<AcceptMode, std::string> parse_accept_mode(std::string_view text);

struct Listeners {
  AcceptMode mode = AcceptMode::single;
  std::vector<TcpListener> sockets;  // single: one; reuseport: one per worker
  SocketAddress local;               // the bound address, with the real port
  int port_guard = -1;               // reuseport: the guard socket (see above); -1 otherwise

  Listeners() = default;
  Listeners(Listeners&& other) noexcept;
  Listeners& operator=(Listeners&& other) noexcept;
  ~Listeners();
  // Closes every socket (listeners first, then the guard). Call when no fiber accepts any more.
  void close() noexcept;
};

// Binds `addr` (port 0: a free port) for `workers` workers. The error is one line naming the address.
std::expected<Listeners, std::string> bind_listeners(const SocketAddress& addr, AcceptMode mode,
                                                     std::uint32_t workers);

}  // namespace fiberio
