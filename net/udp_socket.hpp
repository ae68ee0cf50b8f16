// net/udp_socket.hpp — a UDP socket: datagrams to and from any IP address, or to one connected peer.
// Sending, receiving, peeking and truncation come from DatagramSocket (net/datagram_socket.hpp).
//
//   auto sock = fiberio::UdpSocket::bind(fiberio::SocketAddress::loopback_v4(0));
//   sock->send_to(bytes, peer);
//   std::array<std::byte, 1500> buf;
//   auto r = sock->recv_from(buf, 1s);
//
// On a connected socket, an ICMP "port unreachable" for an earlier datagram shows up as
// errc::connection_refused on a later send/recv. Errors, timeouts, cancellation: net/error.hpp.
// Owns its socket. Thread-safety: as DatagramSocket.
#pragma once

#include <fiberio/net/datagram_socket.hpp>

namespace fiberio {

struct UdpOptions {
  bool reuse_address = false;  // SO_REUSEADDR
  bool reuse_port = false;     // SO_REUSEPORT
  bool broadcast = false;      // SO_BROADCAST
};

class UdpSocket : public DatagramSocket {
 public:
  UdpSocket() = default;

  // Binds to `addr` (port 0: any free port).
  static IoResult<UdpSocket> bind(const SocketAddress& addr, UdpOptions options = {});

 private:
  explicit UdpSocket(int fd) : DatagramSocket(fd, false) {}
};

}  // namespace fiberio
