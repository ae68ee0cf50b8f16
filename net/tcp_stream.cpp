#include <fiberio/net/tcp_stream.hpp>

#include <fiberio/net/detail/socket_ops.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace fiberio {

IoResult<TcpStream> TcpStream::connect(const SocketAddress& addr, Timeout timeout) {
  return connect(addr, TcpConnectOptions{}, timeout);
}

IoResult<TcpStream> TcpStream::connect(const SocketAddress& addr, const TcpConnectOptions& options,
                                       Timeout timeout) {
  if (!addr.is_ip()) return std::unexpected(std::make_error_code(std::errc::address_family_not_supported));
  if (options.local && options.local->os_family() != addr.os_family())
    return std::unexpected(std::make_error_code(std::errc::address_family_not_supported));
  auto fd = detail::open_socket(addr.os_family(), SOCK_STREAM);
  if (!fd) return std::unexpected(fd.error());
  TcpStream stream(*fd);  // closes the socket if we fail below
  if (options.reuse_address) {
    if (auto ec = detail::set_option(*fd, SOL_SOCKET, SO_REUSEADDR, 1)) return std::unexpected(ec);
  }
  if (options.local) {
    if (options.local->port() == 0) {
      if (auto ec = detail::set_option(*fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1))
        return std::unexpected(ec);
    }
    if (auto ec = detail::bind_and_listen(*fd, *options.local, -1)) return std::unexpected(ec);
  }
  if (auto ec = detail::connect(stream.fd_, addr, timeout)) return std::unexpected(ec);
  return stream;
}

IoResult<TcpStream> TcpStream::connect(std::span<const SocketAddress> addrs, Timeout timeout) {
  std::error_code last = std::make_error_code(std::errc::invalid_argument);
  for (const auto& addr : addrs) {
    auto s = connect(addr, timeout);
    if (s) return s;
    last = s.error();
    if (last == std::errc::timed_out) break;  // the deadline covers all attempts
  }
  return std::unexpected(last);
}

IoResult<void> TcpStream::set_nodelay(bool on) {
  if (auto ec = detail::set_option(fd(), IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0)) return std::unexpected(ec);
  return {};
}

IoResult<bool> TcpStream::nodelay() const {
  auto v = detail::get_option(fd(), IPPROTO_TCP, TCP_NODELAY);
  if (!v) return std::unexpected(v.error());
  return *v != 0;
}

IoResult<void> TcpStream::set_keepalive(bool on, std::optional<std::chrono::seconds> idle) {
  if (auto ec = detail::set_option(fd(), SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0)) return std::unexpected(ec);
  if (on && idle) {
    if (auto ec = detail::set_option(fd(), IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(idle->count()))) {
      return std::unexpected(ec);
    }
  }
  return {};
}

IoResult<bool> TcpStream::keepalive() const {
  auto v = detail::get_option(fd(), SOL_SOCKET, SO_KEEPALIVE);
  if (!v) return std::unexpected(v.error());
  return *v != 0;
}

IoResult<void> TcpStream::set_linger(std::optional<std::chrono::seconds> linger) {
  ::linger value{};
  value.l_onoff = linger ? 1 : 0;
  value.l_linger = linger ? static_cast<int>(linger->count()) : 0;
  if (::setsockopt(fd(), SOL_SOCKET, SO_LINGER, &value, sizeof value) != 0) {
    return std::unexpected(detail::last_error());
  }
  return {};
}

IoResult<std::optional<std::chrono::seconds>> TcpStream::linger() const {
  ::linger value{};
  socklen_t size = sizeof value;
  if (::getsockopt(fd(), SOL_SOCKET, SO_LINGER, &value, &size) != 0)
    return std::unexpected(detail::last_error());
  if (!value.l_onoff) return std::optional<std::chrono::seconds>{};
  return std::optional<std::chrono::seconds>{value.l_linger};
}

}  // namespace fiberio
