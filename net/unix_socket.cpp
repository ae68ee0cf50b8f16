#include <fiberio/net/unix_socket.hpp>

#include <sys/socket.h>

namespace fiberio {

IoResult<UnixStream> UnixStream::connect(const SocketAddress& addr, Timeout timeout) {
  if (!addr.is_unix()) return std::unexpected(std::make_error_code(std::errc::address_family_not_supported));
  auto fd = detail::open_socket(AF_UNIX, SOCK_STREAM);
  if (!fd) return std::unexpected(fd.error());
  UnixStream stream(*fd);
  if (auto ec = detail::connect(stream.fd_, addr, timeout)) return std::unexpected(ec);
  return stream;
}

IoResult<UnixListener> UnixListener::bind(const SocketAddress& addr, int backlog) {
  if (!addr.is_unix()) return std::unexpected(std::make_error_code(std::errc::address_family_not_supported));
  auto fd = detail::open_socket(AF_UNIX, SOCK_STREAM);
  if (!fd) return std::unexpected(fd.error());
  UnixListener listener;
  listener.fd_ = AsyncFd(*fd);
  listener.backoff_ = std::make_unique<detail::AcceptBackoff>();
  if (auto ec = detail::bind_and_listen(*fd, addr, backlog < 0 ? 0 : backlog)) return std::unexpected(ec);
  return listener;
}

IoResult<UnixAccepted> UnixListener::accept(Timeout timeout) {
  if (!backoff_) return std::unexpected(std::make_error_code(std::errc::bad_file_descriptor));
  SocketAddress peer;
  auto fd = detail::accept(fd_, peer, timeout, *backoff_);
  if (!fd) return std::unexpected(fd.error());
  return UnixAccepted{UnixStream(*fd), peer};
}

IoResult<SocketAddress> UnixListener::local_addr() const {
  return detail::local_address(fd_.fd());
}

IoResult<std::pair<UnixStream, UnixStream>> socketpair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    return std::unexpected(detail::last_error());
  }
  return std::pair<UnixStream, UnixStream>(UnixStream(fds[0]), UnixStream(fds[1]));
}

}  // namespace fiberio
