// net/tcp_listener.hpp — a listening TCP socket: bind (port 0 picks a free port), accept connections.
//
//   auto listener = fiberio::TcpListener::bind(*fiberio::SocketAddress::parse("127.0.0.1:0"));
//   std::cout << "listening on " << listener->local_addr()->to_string() << "\n";
//   for (;;) {
//     auto conn = listener->accept();
//     if (!conn) { log(conn.error()); continue; }
//     fiberio::spawn([s = std::move(conn->stream)]() mutable { serve(s); }).detach();
//   }
//
// accept() never spins and never fails for lack of fds: on EMFILE/ENFILE (and ENOBUFS/ENOMEM) it sleeps
// with a growing delay (1 ms doubling to 100 ms), the connection waiting in the backlog, and accepts again
// once fds are free; accept_backoffs() counts those sleeps. Connections that died in the backlog
// (ECONNABORTED...) are skipped. Errors, deadlines, cancellation: net/error.hpp.
// Owns its socket; invariant: a bound listener always has its back-off state (a default-constructed or
// moved-from one has neither and fails with errc::bad_file_descriptor). Thread-safety: several fibers may
// accept on one listener at once (each connection goes to one of them); the rest is for one fiber at a time.
#pragma once

#include <fiberio/net/detail/socket_ops.hpp>
#include <fiberio/net/tcp_stream.hpp>

#include <memory>
#include <optional>

namespace fiberio {

struct TcpListenOptions {
  int backlog = 1024;             // capped by net.core.somaxconn
  bool reuse_address = true;      // SO_REUSEADDR: rebind at once after a restart (TIME_WAIT)
  bool reuse_port = false;        // SO_REUSEPORT: several listeners (e.g. one per worker) share the port
  std::optional<bool> v6_only{};  // IPV6_V6ONLY for an IPv6 address; nullopt keeps the OS default
};

struct TcpAccepted {
  TcpStream stream;
  SocketAddress peer;
};

class TcpListener {
 public:
  TcpListener() = default;

  static IoResult<TcpListener> bind(const SocketAddress& addr, TcpListenOptions options = {});

  IoResult<TcpAccepted> accept(Timeout timeout = {});

  IoResult<SocketAddress> local_addr() const;
  std::uint64_t accept_backoffs() const noexcept { return backoff_ ? backoff_->count() : 0; }

  bool is_open() const noexcept { return fd_.is_open(); }
  int fd() const noexcept { return fd_.fd(); }
  AsyncFd& async_fd() noexcept { return fd_; }
  void close() noexcept { fd_.close(); }

 private:
  AsyncFd fd_;
  std::unique_ptr<detail::AcceptBackoff> backoff_;  // heap: keeps the listener movable
};

}  // namespace fiberio
