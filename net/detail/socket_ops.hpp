// net/detail/socket_ops.hpp — fiberio::detail: the thin syscall wrappers the socket classes share (create,
// options, addresses, connect and accept with deadlines). Not a public API.
// Every fd created here is non-blocking and close-on-exec. Errors follow net/error.hpp.
// Thread-safety: free functions; the AsyncFd rules apply to the fds passed in.
#pragma once

#include <fiberio/net/address.hpp>
#include <fiberio/net/error.hpp>
#include <fiberio/reactor/async_fd.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace fiberio::detail {

// socket(2) with SOCK_NONBLOCK | SOCK_CLOEXEC.
IoResult<int> open_socket(int domain, int type, int protocol = 0);

std::error_code set_option(int fd, int level, int name, int value);
IoResult<int> get_option(int fd, int level, int name);

IoResult<SocketAddress> local_address(int fd);
IoResult<SocketAddress> peer_address(int fd);

// Binds `fd` to `addr` and, if backlog >= 0, listens.
std::error_code bind_and_listen(int fd, const SocketAddress& addr, int backlog);

// Connects the (non-blocking, unconnected) socket `sock` to `addr`, waiting for the handshake until
// `deadline`. A Unix socket whose listener's backlog is full is retried with a short back-off.
std::error_code connect(AsyncFd& sock, const SocketAddress& addr, std::optional<Deadline> deadline);

// Accept-side resource exhaustion handling, one per listener.
// EMFILE/ENFILE/ENOBUFS/ENOMEM leave the connection in the backlog: accept() sleeps (1 ms, doubling to
// 100 ms) and retries, so a listener out of fds neither spins nor fails, and serves again once fds free up.
class AcceptBackoff {
 public:
  static constexpr std::chrono::milliseconds kFirst{1};
  static constexpr std::chrono::milliseconds kMax{100};

  // Times accept() slept for lack of resources (statistics; relaxed).
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }

 private:
  friend IoResult<int> accept(AsyncFd&, SocketAddress&, std::optional<Deadline>, AcceptBackoff&);
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::int64_t> delay_ms_{0};  // the next sleep; 0 after a success
};

// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC: waits for a connection until `deadline`; skips connections
// that died in the backlog (ECONNABORTED, EPROTO...); backs off on fd exhaustion (see AcceptBackoff).
IoResult<int> accept(AsyncFd& listener, SocketAddress& peer, std::optional<Deadline> deadline,
                     AcceptBackoff& backoff);

}  // namespace fiberio::detail
