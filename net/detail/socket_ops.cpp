#include <fiberio/net/detail/socket_ops.hpp>

#include <fiberio/executor/this_fiber.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

namespace fiberio::detail {

IoResult<int> open_socket(int domain, int type, int protocol) {
  const int fd = ::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return std::unexpected(last_error());
  return fd;
}

std::error_code set_option(int fd, int level, int name, int value) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) return last_error();
  return {};
}

IoResult<int> get_option(int fd, int level, int name) {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, level, name, &value, &len) != 0) return std::unexpected(last_error());
  return value;
}

IoResult<SocketAddress> local_address(int fd) {
  SocketAddress a;
  socklen_t len = SocketAddress::capacity();
  if (::getsockname(fd, a.data(), &len) != 0) return std::unexpected(last_error());
  a.resize(len);
  return a;
}

IoResult<SocketAddress> peer_address(int fd) {
  SocketAddress a;
  socklen_t len = SocketAddress::capacity();
  if (::getpeername(fd, a.data(), &len) != 0) return std::unexpected(last_error());
  a.resize(len);
  return a;
}

std::error_code bind_and_listen(int fd, const SocketAddress& addr, int backlog) {
  if (::bind(fd, addr.data(), addr.size()) != 0) return last_error();
  if (backlog >= 0 && ::listen(fd, backlog) != 0) return last_error();
  return {};
}

std::error_code connect(AsyncFd& sock, const SocketAddress& addr, std::optional<Deadline> deadline) {
  auto delay = std::chrono::milliseconds(1);
  for (;;) {
    if (::connect(sock.fd(), addr.data(), addr.size()) == 0) return {};
    const int err = errno;
    if (err == EAGAIN && addr.is_unix()) {
      // A Unix listener's backlog is full; there is no readiness to wait for, so poll gently.
      if (deadline && Clock::now() >= *deadline) return std::make_error_code(std::errc::timed_out);
      const auto wake = Clock::now() + delay;
      sleep_until(deadline ? std::min(wake, *deadline) : wake);
      delay = std::min(delay * 2, std::chrono::milliseconds(50));
      continue;
    }
    if (err != EINPROGRESS && err != EINTR) return {err, std::generic_category()};
    break;
  }
  // The handshake is under way: the socket becomes writable (or fails) when it ends.
  if (auto ready = sock.writable(deadline); !ready) return ready.error();
  auto so_error = get_option(sock.fd(), SOL_SOCKET, SO_ERROR);
  if (!so_error) return so_error.error();
  if (*so_error != 0) return {*so_error, std::generic_category()};
  return {};
}

IoResult<int> accept(AsyncFd& listener, SocketAddress& peer, std::optional<Deadline> deadline,
                     AcceptBackoff& backoff) {
  for (;;) {
    socklen_t len = SocketAddress::capacity();
    auto fd = listener.io(
        Interest::read,
        [&] { return ::accept4(listener.fd(), peer.data(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC); }, deadline);
    if (fd) {
      peer.resize(len);
      backoff.delay_ms_.store(0, std::memory_order_relaxed);
      return *fd;
    }
    const std::error_code ec = fd.error();
    // Compared by address (what operator== does): no virtual call, which UBSan's vptr check cannot
    // verify in a process that is out of fds.
    if (&ec.category() != &std::generic_category()) return std::unexpected(ec);
    switch (ec.value()) {
      // The connection at the head of the backlog died before we took it (accept(2), "Error handling"):
      // not the listener's problem, take the next one.
      case ECONNABORTED:
      case EPROTO:
      case EINTR:
      case ENETDOWN:
      case ENOPROTOOPT:
      case EHOSTDOWN:
      case ENONET:
      case EHOSTUNREACH:
      case ENETUNREACH:
        continue;
      case EMFILE:
      case ENFILE:
      case ENOBUFS:
      case ENOMEM: {
        // Out of fds or memory: the connection waits in the backlog. Sleep, growing the delay, rather
        // than spin on a listener that stays readable.
        std::int64_t ms = backoff.delay_ms_.load(std::memory_order_relaxed);
        ms = ms == 0 ? AcceptBackoff::kFirst.count()
                     : std::min<std::int64_t>(ms * 2, AcceptBackoff::kMax.count());
        backoff.delay_ms_.store(ms, std::memory_order_relaxed);
        backoff.count_.fetch_add(1, std::memory_order_relaxed);
        if (deadline && Clock::now() >= *deadline)
          return std::unexpected(std::make_error_code(std::errc::timed_out));
        const auto wake = Clock::now() + std::chrono::milliseconds(ms);
        sleep_until(deadline ? std::min(wake, *deadline) : wake);
        continue;
      }
      default:
        return std::unexpected(ec);
    }
  }
}

}  // namespace fiberio::detail
