#include <fiberio/net/unix_datagram.hpp>

#include <fiberio/net/detail/socket_ops.hpp>

#include <sys/socket.h>

namespace fiberio {

IoResult<UnixDatagram> UnixDatagram::bind(const SocketAddress& addr) {
  if (!addr.is_unix()) return std::unexpected(std::make_error_code(std::errc::address_family_not_supported));
  auto sock = unbound();
  if (!sock) return sock;
  if (auto ec = detail::bind_and_listen(sock->fd(), addr, -1)) return std::unexpected(ec);
  return sock;
}

IoResult<UnixDatagram> UnixDatagram::unbound() {
  auto fd = detail::open_socket(AF_UNIX, SOCK_DGRAM);
  if (!fd) return std::unexpected(fd.error());
  return UnixDatagram(*fd);
}

IoResult<std::pair<UnixDatagram, UnixDatagram>> UnixDatagram::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
    return std::unexpected(detail::last_error());
  return std::pair<UnixDatagram, UnixDatagram>(UnixDatagram(fds[0]), UnixDatagram(fds[1]));
}

}  // namespace fiberio
