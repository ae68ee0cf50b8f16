// net/tcp_stream.hpp — a TCP connection: connect with a timeout (from a chosen source address if need
// be), plus the TCP options (nodelay, keepalive, linger). Reading and writing come from StreamSocket
// (net/stream_socket.hpp).
//
//   auto s = fiberio::TcpStream::connect(*fiberio::SocketAddress::parse("127.0.0.1:7000"), 3s);
//   if (!s) return s.error();            // errc::connection_refused, errc::timed_out...
//   s->set_nodelay(true);
//   s->write_all("ping\n");
//
// Owns its socket; moves, never copies. Errors, deadlines, cancellation: net/error.hpp.
// Thread-safety: as StreamSocket (one reader and one writer fiber at a time).
#pragma once

#include <fiberio/net/stream_socket.hpp>

#include <chrono>
#include <optional>
#include <span>

namespace fiberio {

struct TcpConnectOptions {
  // Bind to this address before connecting: the connection's source address (an IP of this host; port 0
  // lets the kernel pick the port at connect, with IP_BIND_ADDRESS_NO_PORT, so many connections from one
  // source address do not use up the ephemeral ports). Its family must be the peer's.
  std::optional<SocketAddress> local;
  bool reuse_address = false;  // SO_REUSEADDR before binding (a fixed local port still in TIME_WAIT)
};

class TcpStream : public StreamSocket {
 public:
  TcpStream() = default;
  explicit TcpStream(int fd) : StreamSocket(fd) {}

  // Connects to `addr` (IPv4 or IPv6), waiting for the handshake at most `timeout`.
  static IoResult<TcpStream> connect(const SocketAddress& addr, Timeout timeout = {});
  // The same, with the socket set up (bound, options set) before it connects.
  static IoResult<TcpStream> connect(const SocketAddress& addr, const TcpConnectOptions& options,
                                     Timeout timeout = {});
  // Tries each address in turn (e.g. resolve()'s answer) until one connects; the timeout covers all
  // attempts. Fails with the last attempt's error (errc::invalid_argument if `addrs` is empty).
  static IoResult<TcpStream> connect(std::span<const SocketAddress> addrs, Timeout timeout = {});

  IoResult<void> set_nodelay(bool on);
  IoResult<bool> nodelay() const;
  // SO_KEEPALIVE; with `idle`, also the idle time before the first probe (TCP_KEEPIDLE).
  IoResult<void> set_keepalive(bool on, std::optional<std::chrono::seconds> idle = {});
  IoResult<bool> keepalive() const;
  // SO_LINGER. linger 0 makes close() reset the connection (RST) instead of a graceful FIN; nullopt
  // restores the default.
  IoResult<void> set_linger(std::optional<std::chrono::seconds> linger);
  // SO_LINGER read back: nullopt when off (the default).
  IoResult<std::optional<std::chrono::seconds>> linger() const;
};

}  // namespace fiberio
