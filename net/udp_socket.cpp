#include <fiberio/net/udp_socket.hpp>

#include <fiberio/net/detail/socket_ops.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>

namespace fiberio {

IoResult<UdpSocket> UdpSocket::bind(const SocketAddress& addr, UdpOptions options) {
  if (!addr.is_ip()) return std::unexpected(std::make_error_code(std::errc::address_family_not_supported));
  auto fd = detail::open_socket(addr.os_family(), SOCK_DGRAM);
  if (!fd) return std::unexpected(fd.error());
  UdpSocket sock;
  sock.fd_ = AsyncFd(*fd);
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

IoResult<std::size_t> UdpSocket::send_to(std::span<const std::byte> datagram, const SocketAddress& to,
                                         std::optional<Deadline> deadline) {
  auto n = fd_.io(
      Interest::write,
      [&] {
        return ::sendto(fd_.fd(), datagram.data(), datagram.size(), MSG_NOSIGNAL, to.data(), to.size());
      },
      deadline);
  if (!n) return std::unexpected(n.error());
  return static_cast<std::size_t>(*n);
}

IoResult<UdpReceived> UdpSocket::recv_from(std::span<std::byte> buffer, std::optional<Deadline> deadline) {
  UdpReceived out;
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  auto n = fd_.io(
      Interest::read,
      [&] {
        msg = msghdr{};
        msg.msg_name = out.from.data();
        msg.msg_namelen = SocketAddress::capacity();
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        // MSG_TRUNC: return the datagram's real length even when it did not fit.
        return ::recvmsg(fd_.fd(), &msg, MSG_TRUNC);
      },
      deadline);
  if (!n) return std::unexpected(n.error());
  out.from.resize(msg.msg_namelen);
  out.datagram_size = static_cast<std::size_t>(*n);
  out.size = std::min(out.datagram_size, buffer.size());
  out.truncated = (msg.msg_flags & MSG_TRUNC) != 0 || out.datagram_size > buffer.size();
  return out;
}

IoResult<void> UdpSocket::connect(const SocketAddress& peer) {
  if (::connect(fd_.fd(), peer.data(), peer.size()) != 0) return std::unexpected(detail::last_error());
  return {};
}

IoResult<std::size_t> UdpSocket::send(std::span<const std::byte> datagram, std::optional<Deadline> deadline) {
  auto n = fd_.io(
      Interest::write, [&] { return ::send(fd_.fd(), datagram.data(), datagram.size(), MSG_NOSIGNAL); },
      deadline);
  if (!n) return std::unexpected(n.error());
  return static_cast<std::size_t>(*n);
}

IoResult<UdpReceived> UdpSocket::recv(std::span<std::byte> buffer, std::optional<Deadline> deadline) {
  return recv_from(buffer, deadline);  // the kernel fills in the connected peer as the sender
}

IoResult<SocketAddress> UdpSocket::local_addr() const {
  return detail::local_address(fd_.fd());
}
IoResult<SocketAddress> UdpSocket::peer_addr() const {
  return detail::peer_address(fd_.fd());
}

}  // namespace fiberio
