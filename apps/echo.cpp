#include "echo.hpp"

#include "buffer_pool.hpp"

#include <fiberio/reactor/detail/syscall.hpp>

#include <sys/socket.h>

#include <cerrno>

namespace fiberio {

void echo_connection(TcpStream stream) {
  (void)stream.set_nodelay(true);  // an echo is a small write that must not wait for an ACK (Nagle)
  // Small messages go through a buffer on the fiber's stack, in the page its frames already keep
  // resident, so they cost no pool traffic; a read that fills it means bytes are streaming, and the reads
  // after it take a pooled buffer until one comes back short.
  std::byte small[1024];
  detail::PooledBuffer buffer;
  bool big = false;
  const int fd = stream.fd();
  for (;;) {
    const std::size_t size = big ? detail::PooledBuffer::kSize : sizeof small;
    auto n = stream.async_fd().io_some(
        Interest::read,
        [&]() -> ssize_t {
          std::byte* into = small;
          if (big) {
            buffer.acquire();
            into = buffer.data();
          }
          const ssize_t r = detail::recv_nocancel(fd, into, size, 0);
          if (r < 0 && big && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            buffer.release();  // about to park: an idle connection holds no pooled buffer
            errno = EAGAIN;
          }
          return r;
        },
        size);
    if (!n) return;      // reset, or another error: closing is all that is left
    if (*n == 0) break;  // the client's end of stream: everything it sent has been echoed
    const std::byte* data = big ? buffer.data() : small;
    if (!stream.write_all({data, static_cast<std::size_t>(*n)})) return;
    // A short read drained the socket (the next read suspends first): back to the stack buffer.
    big = static_cast<std::size_t>(*n) == size;
    if (!big) buffer.release();
  }
  (void)stream.shutdown_write();
}

}  // namespace fiberio
