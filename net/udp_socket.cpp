#include <fiberio/net/udp_socket.hpp>

#include <fiberio/net/detail/socket_ops.hpp>

#include <sys/socket.h>

namespace fiberio {

IoResult<UdpSocket> UdpSocket::bind(const SocketAddress& addr, UdpOptions options) {
  if (!addr.is_ip()) return std::unexpected(std::make_error_code(std::errc::address_family_not_supported));
  auto fd = detail::open_socket(addr.os_family(), SOCK_DGRAM);
  if (!fd) return std::unexpected(fd.error());
  UdpSocket sock(*fd);  // closes the socket if we fail below
  const struct {
    bool on;
    int name;
  } flags[] = {{options.reuse_address, SO_REUSEADDR},
               {options.reuse_port, SO_REUSEPORT},
               {options.broadcast, SO_BROADCAST}};
  for (const auto& f : flags) {
    if (!f.on) continue;
    if (auto ec = detail::set_option(*fd, SOL_SOCKET, f.name, 1)) return std::unexpected(ec);
  }
  if (auto ec = detail::bind_and_listen(*fd, addr, -1)) return std::unexpected(ec);
  return sock;
}

}  // namespace fiberio
