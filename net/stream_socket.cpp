#include <fiberio/net/stream_socket.hpp>

#include <fiberio/net/detail/socket_ops.hpp>
#include <fiberio/reactor/detail/syscall.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <vector>

namespace fiberio {

IoResult<std::size_t> StreamSocket::peek(std::span<std::byte> buffer, Timeout timeout) {
  // io(), not io_some(): a short peek drains nothing, so it must not mark the socket empty.
  auto n = fd_.io(
      Interest::read, [&] { return detail::recv_nocancel(fd_.fd(), buffer.data(), buffer.size(), MSG_PEEK); },
      timeout);
  if (!n) return std::unexpected(n.error());
  return static_cast<std::size_t>(*n);
}

IoResult<void> StreamSocket::read_exact(std::span<std::byte> buffer, Timeout timeout) {
  std::size_t done = 0;
  while (done < buffer.size()) {
    auto n = read_some(buffer.subspan(done), timeout);
    if (!n) return std::unexpected(n.error());
    if (*n == 0) return std::unexpected(make_error_code(done == 0 ? NetErrc::eof : NetErrc::unexpected_eof));
    done += *n;
  }
  return {};
}

IoResult<void> StreamSocket::write_rest(std::span<const std::byte> rest, Timeout timeout) {
  while (!rest.empty()) {
    auto n = write_some(rest, timeout);
    if (!n) return std::unexpected(n.error());
    rest = rest.subspan(*n);
  }
  return {};
}

IoResult<void> StreamSocket::writev_all(std::span<const std::span<const std::byte>> buffers,
                                        Timeout timeout) {
  // A window of at most IOV_MAX iovecs over `buffers`; `first` and `offset` track what is already sent.
  constexpr std::size_t kMaxIov = IOV_MAX;
  std::vector<iovec> iov;
  iov.reserve(std::min(buffers.size(), kMaxIov));
  std::size_t first = 0;
  std::size_t offset = 0;  // bytes of buffers[first] already sent
  for (;;) {
    while (first < buffers.size() && offset == buffers[first].size()) {
      ++first;
      offset = 0;
    }
    if (first == buffers.size()) return {};
    iov.clear();
    for (std::size_t i = first; i < buffers.size() && iov.size() < kMaxIov; ++i) {
      const std::size_t skip = i == first ? offset : 0;
      if (buffers[i].size() == skip) continue;
      iov.push_back(iovec{const_cast<std::byte*>(buffers[i].data()) + skip, buffers[i].size() - skip});
    }
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    auto n = fd_.io(
        Interest::write, [&] { return ::sendmsg(fd_.fd(), &msg, MSG_NOSIGNAL); }, timeout);
    if (!n) return std::unexpected(n.error());
    // Advance past what was sent.
    auto sent = static_cast<std::size_t>(*n);
    while (sent > 0) {
      const std::size_t left = buffers[first].size() - offset;
      if (sent < left) {
        offset += sent;
        sent = 0;
      } else {
        sent -= left;
        ++first;
        offset = 0;
      }
    }
  }
}

namespace {

// ENOTCONN: the peer reset (or the connection otherwise ended), so there is nothing left to shut down;
// that is done, not an error (tokio treats it alike). Other errors (EBADF: closed) are reported.
IoResult<void> shutdown_socket(int fd, int how) {
  if (::shutdown(fd, how) != 0 && errno != ENOTCONN) return std::unexpected(detail::last_error());
  return {};
}

}  // namespace

IoResult<void> StreamSocket::shutdown_write() {
  return shutdown_socket(fd_.fd(), SHUT_WR);
}

IoResult<void> StreamSocket::shutdown_both() {
  return shutdown_socket(fd_.fd(), SHUT_RDWR);
}

IoResult<SocketAddress> StreamSocket::local_addr() const {
  return detail::local_address(fd_.fd());
}
IoResult<SocketAddress> StreamSocket::peer_addr() const {
  return detail::peer_address(fd_.fd());
}

}  // namespace fiberio
