#include <fiberio/net/datagram_socket.hpp>

#include <fiberio/executor/this_fiber.hpp>
#include <fiberio/net/detail/socket_ops.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace fiberio {

IoResult<std::size_t> DatagramSocket::send_to(std::span<const std::byte> datagram, const SocketAddress& to,
                                              Timeout timeout) {
  return send_impl(datagram, &to, timeout);
}

IoResult<std::size_t> DatagramSocket::send(std::span<const std::byte> datagram, Timeout timeout) {
  return send_impl(datagram, nullptr, timeout);
}

IoResult<std::size_t> DatagramSocket::send_impl(std::span<const std::byte> datagram, const SocketAddress* to,
                                                Timeout timeout) {
  auto op = [&] {
    return ::sendto(fd_.fd(), datagram.data(), datagram.size(), MSG_NOSIGNAL, to ? to->data() : nullptr,
                    to ? to->size() : 0);
  };
  if (!unix_domain_) {
    auto n = fd_.io(Interest::write, op, timeout);
    if (!n) return std::unexpected(n.error());
    return static_cast<std::size_t>(*n);
  }
  // Unix domain. A refused send frees the datagram it had charged to this socket, and that alone raises a
  // writability event: waiting for an event would retry at once, for ever. A connected sender asks poll(2),
  // which knows when the receiver is full (the kernel then wakes it as the receiver drains); an unconnected
  // one gets no wake at all, so it sleeps and retries.
  const auto deadline = timeout.deadline();
  auto delay = std::chrono::milliseconds(1);
  for (;;) {
    const auto n = op();
    if (n >= 0) {
      detail::consume_budget();
      return static_cast<std::size_t>(n);
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) return std::unexpected(detail::last_error());
    if (!to) {
      if (auto ready = fd_.writable(timeout); !ready) return std::unexpected(ready.error());
      continue;
    }
    if (deadline && Clock::now() >= *deadline)
      return std::unexpected(std::make_error_code(std::errc::timed_out));
    const Deadline retry = Clock::now() + delay;
    sleep_until(deadline ? std::min(*deadline, retry) : retry);
    delay = std::min(delay * 2, std::chrono::milliseconds(50));
  }
}

IoResult<DatagramReceived> DatagramSocket::recv_from(std::span<std::byte> buffer, Timeout timeout) {
  return recv_impl(buffer, 0, timeout);
}

IoResult<DatagramReceived> DatagramSocket::peek_from(std::span<std::byte> buffer, Timeout timeout) {
  return recv_impl(buffer, MSG_PEEK, timeout);
}

IoResult<DatagramReceived> DatagramSocket::recv_impl(std::span<std::byte> buffer, int flags,
                                                     Timeout timeout) {
  DatagramReceived out;
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
        return ::recvmsg(fd_.fd(), &msg, flags | MSG_TRUNC);
      },
      timeout);
  if (!n) return std::unexpected(n.error());
  out.from.resize(msg.msg_namelen);
  if (msg.msg_namelen == 0 && unix_domain_) out.from = SocketAddress::unix_unnamed();
  out.datagram_size = static_cast<std::size_t>(*n);
  out.size = std::min(out.datagram_size, buffer.size());
  out.truncated = (msg.msg_flags & MSG_TRUNC) != 0 || out.datagram_size > buffer.size();
  return out;
}

IoResult<void> DatagramSocket::connect(const SocketAddress& peer) {
  if (::connect(fd_.fd(), peer.data(), peer.size()) != 0) return std::unexpected(detail::last_error());
  return {};
}

IoResult<SocketAddress> DatagramSocket::local_addr() const {
  return detail::local_address(fd_.fd());
}
IoResult<SocketAddress> DatagramSocket::peer_addr() const {
  return detail::peer_address(fd_.fd());
}

}  // namespace fiberio
