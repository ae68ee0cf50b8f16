// net/stream_socket.hpp — what every connected byte stream (TCP, Unix) can do: read, write, half-close,
// name its ends. TcpStream and UnixStream derive from it; copy_bidirectional() takes two of them.
//
//   std::array<std::byte, 4096> buf;
//   auto n = stream.read_some(buf, fiberio::Clock::now() + 5s);   // 0: the peer closed its side
//   if (!n) return n.error();                                     // errc::timed_out, connection_reset...
//   if (auto w = stream.write_all(std::span(buf).first(*n)); !w) return w.error();
//
// Owns one socket fd (through an AsyncFd); closing happens in the destructor or close().
// Errors (net/error.hpp): expected<T, error_code>; deadlines give errc::timed_out; cancellation throws
// Cancelled. A peer that vanished gives errc::connection_reset or errc::broken_pipe, never a SIGPIPE: writes
// use send/sendmsg with MSG_NOSIGNAL. After a failed or timed-out read_exact/write_all the stream position
// is unknown (part of the data may have moved): treat the stream as broken.
// Invariant: is_open() until close() or release(); a moved-from stream is closed.
// Thread-safety: one fiber may read while another writes; two concurrent readers (or writers) interleave
// their bytes unpredictably. Everything else: one fiber at a time.
#pragma once

#include <fiberio/net/address.hpp>
#include <fiberio/net/error.hpp>
#include <fiberio/reactor/async_fd.hpp>
#include <fiberio/reactor/detail/syscall.hpp>

#include <sys/socket.h>

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace fiberio {

class StreamSocket {
 public:
  StreamSocket() = default;
  // Adopts a connected stream socket (made non-blocking if it is not).
  explicit StreamSocket(int fd) : fd_(fd) {}

  bool is_open() const noexcept { return fd_.is_open(); }
  int fd() const noexcept { return fd_.fd(); }
  AsyncFd& async_fd() noexcept { return fd_; }
  void close() noexcept { fd_.close(); }
  int release() noexcept { return fd_.release(); }

  // Up to buffer.size() bytes; 0 means end of stream (or an empty buffer). Inline, as write_some: the
  // usual read is one recv and costs no call.
  IoResult<std::size_t> read_some(std::span<std::byte> buffer, Timeout timeout = {}) {
    auto n = fd_.io_some(
        Interest::read, [&] { return detail::recv_nocancel(fd_.fd(), buffer.data(), buffer.size(), 0); },
        buffer.size(), timeout);
    if (!n) [[unlikely]]
      return std::unexpected(n.error());
    return static_cast<std::size_t>(*n);
  }
  // Like read_some, but leaves the bytes in the socket: the next read returns them again (MSG_PEEK).
  IoResult<std::size_t> peek(std::span<std::byte> buffer, Timeout timeout = {});
  // One attempt, never waits for readiness: the bytes there are now, 0 at end of stream, or
  // errc::resource_unavailable_try_again (EAGAIN) when nothing is there yet. After an attempt that found
  // the socket drained, bytes that came since count once the reactor has reported them (at the next
  // wait, or the worker's next look at its backend), as for read_some(): no syscall is spent to find
  // what the reactor would say. What an idle loop's handler reads with (runtime/idle_loop.hpp). Counts
  // against the fiber's I/O budget like every ready operation (it may yield when the budget is spent).
  IoResult<std::size_t> try_read(std::span<std::byte> buffer) {
    auto n = fd_.try_io_some(
        Interest::read, [&] { return detail::recv_nocancel(fd_.fd(), buffer.data(), buffer.size(), 0); },
        buffer.size());
    if (!n) return std::unexpected(n.error());
    return static_cast<std::size_t>(*n);
  }
  // Likewise for writing: as many bytes as the socket takes now, or resource_unavailable_try_again.
  IoResult<std::size_t> try_write(std::span<const std::byte> buffer) {
    auto n = fd_.try_io_some(
        Interest::write,
        [&] { return detail::send_nocancel(fd_.fd(), buffer.data(), buffer.size(), MSG_NOSIGNAL); },
        buffer.size());
    if (!n) return std::unexpected(n.error());
    return static_cast<std::size_t>(*n);
  }
  // Fills `buffer` completely, or fails: NetErrc::eof if the stream ended before any byte,
  // NetErrc::unexpected_eof if it ended part way.
  IoResult<void> read_exact(std::span<std::byte> buffer, Timeout timeout = {});

  // At least one byte (for a non-empty buffer), as many as the socket takes now.
  IoResult<std::size_t> write_some(std::span<const std::byte> buffer, Timeout timeout = {}) {
    auto n = fd_.io_some(
        Interest::write,
        [&] { return detail::send_nocancel(fd_.fd(), buffer.data(), buffer.size(), MSG_NOSIGNAL); },
        buffer.size(), timeout);
    if (!n) [[unlikely]]
      return std::unexpected(n.error());
    return static_cast<std::size_t>(*n);
  }
  // Inline: the usual write, one send that takes it all, costs no call; a partial one goes on out of line.
  IoResult<void> write_all(std::span<const std::byte> buffer, Timeout timeout = {}) {
    if (buffer.empty()) return {};
    auto n = write_some(buffer, timeout);
    if (!n) [[unlikely]]
      return std::unexpected(n.error());
    if (*n == buffer.size()) [[likely]]
      return {};
    return write_rest(buffer.subspan(*n), timeout);
  }
  IoResult<void> write_all(std::string_view text, Timeout timeout = {}) {
    return write_all(std::as_bytes(std::span(text.data(), text.size())), timeout);
  }
  // Gathers the buffers in order with sendmsg (no copy into one buffer), resuming after partial writes.
  IoResult<void> writev_all(std::span<const std::span<const std::byte>> buffers, Timeout timeout = {});

  // Half-close: the peer reads end of stream once it has read everything sent before; this side can still
  // read. Unblocks nothing on this side. On a connection the peer already reset or closed entirely there
  // is nothing to shut down: that succeeds (the kernel's ENOTCONN is not reported).
  IoResult<void> shutdown_write();
  // Both directions (wakes a fiber of this stream blocked in read: it sees end of stream); likewise.
  IoResult<void> shutdown_both();

  IoResult<SocketAddress> local_addr() const;
  IoResult<SocketAddress> peer_addr() const;

 protected:
  AsyncFd fd_;

 private:
  // write_all() after a partial write: loops until `rest` is sent.
  IoResult<void> write_rest(std::span<const std::byte> rest, Timeout timeout);
};

}  // namespace fiberio
