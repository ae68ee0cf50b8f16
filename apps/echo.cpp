#include "echo.hpp"

#include "buffer_pool.hpp"

#include <fiberio/reactor/detail/syscall.hpp>

#include <sys/socket.h>

#include <cerrno>

namespace fiberio {
namespace {

enum class Ended : std::uint8_t { end_of_stream, failed, drained };

// The echo loop of both modes: reads with `read(op, size)` (AsyncFd::io_some, which waits, or
// try_io_some, which says the socket is drained instead) and writes every byte back, until the end of
// stream (then shuts its write side down), an error, or a drained socket. kDrainedByShortRead: a short
// read (fewer bytes than asked) ends the loop as drained once its bytes are written back, without a
// read that would only say so (an idle loop's handler: its idle point looks at the socket again).
template <bool kDrainedByShortRead, class Read>
[[gnu::always_inline]] inline Ended echo_bytes(TcpStream& stream, Read&& read) {
  // Small messages go through a buffer on the stack, in the page its frames already keep resident, so
  // they cost no pool traffic; a read that fills it means bytes are streaming, and the reads after it
  // take a pooled buffer until one comes back short.
  std::byte small[1024];
  detail::PooledBuffer buffer;
  bool big = false;
  const int fd = stream.fd();
  for (;;) {
    const std::size_t size = big ? detail::PooledBuffer::kSize : sizeof small;
    auto n = read(
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
    if (!n) return n.error() == AsyncFd::would_block() ? Ended::drained : Ended::failed;
    if (*n == 0) {  // the client's end of stream: everything it sent has been echoed
      (void)stream.shutdown_write();
      return Ended::end_of_stream;
    }
    const std::byte* data = big ? buffer.data() : small;
    if (!stream.write_all({data, static_cast<std::size_t>(*n)})) return Ended::failed;
    // A short read drained the socket (the next read suspends first): back to the stack buffer.
    big = static_cast<std::size_t>(*n) == size;
    if (!big) {
      if constexpr (kDrainedByShortRead) return Ended::drained;
      buffer.release();
    }
  }
}

}  // namespace

void echo_connection(TcpStream stream) {
  // A reset or another error: closing is all that is left.
  (void)echo_bytes<false>(stream, [&](auto&& op, std::size_t size) {
    return stream.async_fd().io_some(Interest::read, op, size);
  });
}

Next echo_ready(TcpStream& stream) {
  return echo_bytes<true>(stream,
                          [&](auto&& op, std::size_t size) {
                            return stream.async_fd().try_io_some(Interest::read, op, size);
                          }) == Ended::drained
             ? Next::wait
             : Next::stop;
}

}  // namespace fiberio
