// net/unix_socket.hpp — Unix-domain stream sockets: UnixListener and UnixStream, on a filesystem path or
// an abstract name (Linux), and socketpair() for two connected ends in this process.
//
//   auto addr = fiberio::SocketAddress::unix_path("/run/app.sock");   // or unix_abstract("app")
//   auto listener = fiberio::UnixListener::bind(*addr);
//   auto client = fiberio::UnixStream::connect(*addr);
//   auto [left, right] = *fiberio::socketpair();
//
// A path listener leaves its socket file behind when closed (as the OS does); bind() fails with
// errc::address_in_use while the file exists, so remove stale files before binding. Abstract names vanish
// with the last socket. accept() backs off on fd exhaustion exactly like TcpListener::accept().
// Errors, deadlines, cancellation: net/error.hpp. Owns its sockets.
// Thread-safety: as TcpListener and StreamSocket.
#pragma once

#include <fiberio/net/detail/socket_ops.hpp>
#include <fiberio/net/stream_socket.hpp>

#include <memory>
#include <optional>
#include <utility>

namespace fiberio {

class UnixStream : public StreamSocket {
 public:
  UnixStream() = default;
  explicit UnixStream(int fd) : StreamSocket(fd) {}

  // A full listener backlog is retried (gently polled) until the timeout.
  static IoResult<UnixStream> connect(const SocketAddress& addr, Timeout timeout = {});
};

struct UnixAccepted {
  UnixStream stream;
  SocketAddress peer;  // usually "(unnamed)": clients rarely bind
};

class UnixListener {
 public:
  UnixListener() = default;

  static IoResult<UnixListener> bind(const SocketAddress& addr, int backlog = 1024);

  IoResult<UnixAccepted> accept(Timeout timeout = {});

  IoResult<SocketAddress> local_addr() const;
  std::uint64_t accept_backoffs() const noexcept { return backoff_ ? backoff_->count() : 0; }

  bool is_open() const noexcept { return fd_.is_open(); }
  int fd() const noexcept { return fd_.fd(); }
  AsyncFd& async_fd() noexcept { return fd_; }
  void close() noexcept { fd_.close(); }

 private:
  AsyncFd fd_;
  std::unique_ptr<detail::AcceptBackoff> backoff_;
};

// Two connected, anonymous Unix stream sockets.
IoResult<std::pair<UnixStream, UnixStream>> socketpair();

}  // namespace fiberio
