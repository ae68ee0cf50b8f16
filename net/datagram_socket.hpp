// net/datagram_socket.hpp — what every datagram socket (UDP, Unix datagram) can do: send to an address or to
// the connected peer, receive with the sender's address, peek, and report truncation. UdpSocket
// (net/udp_socket.hpp) and UnixDatagram (net/unix_datagram.hpp) derive from it and add how they are made.
//
//   std::array<std::byte, 1500> buf;
//   auto r = sock.recv_from(buf, 1s);           // or peek_from(): the same, but the datagram stays queued
//   if (r && r->truncated) warn(r->datagram_size, "bytes sent, only", r->size, "kept");
//   sock.send_to(std::span(buf).first(r->size), r->from);
//
// Truncation is reported, never hidden: a datagram larger than the buffer fills the buffer, the rest is
// discarded by the kernel (peek leaves it queued), `truncated` is true and `datagram_size` gives the size
// that was sent, so a peek with a small buffer tells how large a buffer the datagram needs.
// connect() fixes the peer: send()/recv() then talk to it only, and datagrams from others are dropped.
// Errors, timeouts, cancellation: net/error.hpp. Owns its socket; moves, never copies.
// Thread-safety: one fiber may receive while another sends; datagrams are atomic, so several senders (or
// receivers) are safe too. Everything else: one fiber at a time.
#pragma once

#include <fiberio/net/address.hpp>
#include <fiberio/net/error.hpp>
#include <fiberio/reactor/async_fd.hpp>

#include <cstddef>
#include <span>

namespace fiberio {

struct DatagramReceived {
  std::size_t size = 0;           // bytes written into the buffer
  std::size_t datagram_size = 0;  // bytes the datagram had (> size when truncated)
  bool truncated = false;
  SocketAddress from;  // the sender ("(unnamed)" for an unbound Unix socket)
};

class DatagramSocket {
 public:
  IoResult<std::size_t> send_to(std::span<const std::byte> datagram, const SocketAddress& to,
                                Timeout timeout = {});
  IoResult<DatagramReceived> recv_from(std::span<std::byte> buffer, Timeout timeout = {});
  // Like recv_from, but the datagram stays queued: the next receive returns it again (MSG_PEEK).
  IoResult<DatagramReceived> peek_from(std::span<std::byte> buffer, Timeout timeout = {});

  IoResult<void> connect(const SocketAddress& peer);
  IoResult<std::size_t> send(std::span<const std::byte> datagram, Timeout timeout = {});
  // On a connected socket the kernel fills in the peer as the sender: recv() is recv_from().
  IoResult<DatagramReceived> recv(std::span<std::byte> buffer, Timeout timeout = {}) {
    return recv_from(buffer, timeout);
  }
  IoResult<DatagramReceived> peek(std::span<std::byte> buffer, Timeout timeout = {}) {
    return peek_from(buffer, timeout);
  }

  IoResult<SocketAddress> local_addr() const;
  IoResult<SocketAddress> peer_addr() const;

  bool is_open() const noexcept { return fd_.is_open(); }
  int fd() const noexcept { return fd_.fd(); }
  AsyncFd& async_fd() noexcept { return fd_; }
  void close() noexcept { fd_.close(); }

 protected:
  DatagramSocket() = default;
  // `unix_domain` changes two things. A send refused because the receiver's queue is full (EAGAIN) raises a
  // writability event of its own, so it is never waited for: send() asks poll(2) instead, and send_to(),
  // which Linux never wakes, retries with a growing back-off (1 ms doubling to 50 ms). And a sender with no
  // name arrives as SocketAddress::unix_unnamed() (the kernel gives no address).
  DatagramSocket(int fd, bool unix_domain) : fd_(fd), unix_domain_(unix_domain) {}

  AsyncFd fd_;

 private:
  // One send (sendto, or send when `to` is null), waiting while it is refused.
  IoResult<std::size_t> send_impl(std::span<const std::byte> datagram, const SocketAddress* to,
                                  Timeout timeout);
  // recvmsg with `flags` (0 or MSG_PEEK), waiting while nothing is queued.
  IoResult<DatagramReceived> recv_impl(std::span<std::byte> buffer, int flags, Timeout timeout);

  bool unix_domain_ = false;
};

}  // namespace fiberio
