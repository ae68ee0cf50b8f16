// net/udp_socket.hpp — a UDP socket: datagrams to and from any address, or to one connected peer.
//
//   auto sock = fiberio::UdpSocket::bind(fiberio::SocketAddress::loopback_v4(0));
//   sock->send_to(bytes, peer);
//   std::array<std::byte, 1500> buf;
//   auto r = sock->recv_from(buf, fiberio::Clock::now() + 1s);
//   if (r && r->truncated) warn(r->datagram_size, "bytes sent, only", r->size, "kept");
//
// Truncation is reported, never hidden: a datagram larger than the buffer fills the buffer, the rest is
// discarded by the kernel, `truncated` is true and `datagram_size` gives the size that was sent.
// On a connected socket, an ICMP "port unreachable" for an earlier datagram shows up as
// errc::connection_refused on a later send/recv. Errors, deadlines, cancellation: net/error.hpp.
// Owns its socket. Thread-safety: one fiber may receive while another sends; datagrams are atomic, so
// several senders (or receivers) are safe too.
#pragma once

#include <fiberio/net/address.hpp>
#include <fiberio/net/error.hpp>
#include <fiberio/reactor/async_fd.hpp>

#include <cstddef>
#include <optional>
#include <span>

namespace fiberio {

struct UdpOptions {
  bool reuse_address = false;  // SO_REUSEADDR
  bool reuse_port = false;     // SO_REUSEPORT
  bool broadcast = false;      // SO_BROADCAST
};

struct UdpReceived {
  std::size_t size = 0;           // bytes written into the buffer
  std::size_t datagram_size = 0;  // bytes the datagram had (> size when truncated)
  bool truncated = false;
  SocketAddress from;  // the sender
};

class UdpSocket {
 public:
  UdpSocket() = default;

  // Binds to `addr` (port 0: any free port).
  static IoResult<UdpSocket> bind(const SocketAddress& addr, UdpOptions options = {});

  IoResult<std::size_t> send_to(std::span<const std::byte> datagram, const SocketAddress& to,
                                std::optional<Deadline> deadline = {});
  IoResult<UdpReceived> recv_from(std::span<std::byte> buffer, std::optional<Deadline> deadline = {});

  // Fixes the peer: send()/recv() then talk to it only, and datagrams from others are dropped.
  IoResult<void> connect(const SocketAddress& peer);
  IoResult<std::size_t> send(std::span<const std::byte> datagram, std::optional<Deadline> deadline = {});
  IoResult<UdpReceived> recv(std::span<std::byte> buffer, std::optional<Deadline> deadline = {});

  IoResult<SocketAddress> local_addr() const;
  IoResult<SocketAddress> peer_addr() const;

  bool is_open() const noexcept { return fd_.is_open(); }
  int fd() const noexcept { return fd_.fd(); }
  AsyncFd& async_fd() noexcept { return fd_; }
  void close() noexcept { fd_.close(); }

 private:
  AsyncFd fd_;
};

}  // namespace fiberio
