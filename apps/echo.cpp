#include "echo.hpp"

#include "buffer_pool.hpp"

#include <fiberio/reactor/detail/syscall.hpp>

#include <sys/socket.h>

#include <cerrno>

namespace fiberio {

void echo_connection(TcpStream stream) {
  (void)stream.set_nodelay(true);  // an echo is a small write that must not wait for an ACK (Nagle)
  detail::PooledBuffer buffer;
  const int fd = stream.fd();
  for (;;) {
    auto n = stream.async_fd().io_some(
        Interest::read,
        [&]() -> ssize_t {
          buffer.acquire();
          const ssize_t r = detail::recv_nocancel(fd, buffer.data(), detail::PooledBuffer::kSize, 0);
          if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            buffer.release();  // about to park: an idle connection holds no buffer
            errno = EAGAIN;
          }
          return r;
        },
        detail::PooledBuffer::kSize);
    if (!n) return;      // reset, or another error: closing is all that is left
    if (*n == 0) break;  // the client's end of stream: everything it sent has been echoed
    if (!stream.write_all(buffer.span().first(static_cast<std::size_t>(*n)))) return;
    // A short read drained the socket (the next read suspends first): an idle connection holds no buffer.
    if (static_cast<std::size_t>(*n) < detail::PooledBuffer::kSize) buffer.release();
  }
  (void)stream.shutdown_write();
}

}  // namespace fiberio
