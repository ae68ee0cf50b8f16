#include <fiberio/net/tcp_listener.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

namespace fiberio {

IoResult<TcpListener> TcpListener::bind(const SocketAddress& addr, TcpListenOptions options) {
  if (!addr.is_ip()) return std::unexpected(std::make_error_code(std::errc::address_family_not_supported));
  auto fd = detail::open_socket(addr.os_family(), SOCK_STREAM);
  if (!fd) return std::unexpected(fd.error());
  TcpListener listener;
  listener.fd_ = AsyncFd(*fd);
  listener.backoff_ = std::make_unique<detail::AcceptBackoff>();
  if (options.reuse_address) {
    if (auto ec = detail::set_option(*fd, SOL_SOCKET, SO_REUSEADDR, 1)) return std::unexpected(ec);
  }
  if (options.reuse_port) {
    if (auto ec = detail::set_option(*fd, SOL_SOCKET, SO_REUSEPORT, 1)) return std::unexpected(ec);
  }
  if (options.v6_only && addr.family() == SocketAddress::Family::ipv6) {
    if (auto ec = detail::set_option(*fd, IPPROTO_IPV6, IPV6_V6ONLY, *options.v6_only ? 1 : 0)) {
      return std::unexpected(ec);
    }
  }
  if (auto ec = detail::bind_and_listen(*fd, addr, options.backlog < 0 ? 0 : options.backlog)) {
    return std::unexpected(ec);
  }
  return listener;
}

IoResult<TcpAccepted> TcpListener::accept(Timeout timeout) {
  if (!backoff_) return std::unexpected(std::make_error_code(std::errc::bad_file_descriptor));
  SocketAddress peer;
  auto fd = detail::accept(fd_, peer, timeout, *backoff_);
  if (!fd) return std::unexpected(fd.error());
  return TcpAccepted{TcpStream(*fd), peer};
}

IoResult<SocketAddress> TcpListener::local_addr() const {
  return detail::local_address(fd_.fd());
}

}  // namespace fiberio
