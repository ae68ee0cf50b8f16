// net/unix_datagram.hpp — Unix-domain datagram sockets (SOCK_DGRAM): on a filesystem path or an abstract
// name (Linux), unbound (to send, and to connect), or as a connected pair in this process. Sending,
// receiving, peeking and truncation come from DatagramSocket (net/datagram_socket.hpp).
//
//   auto server = fiberio::UnixDatagram::bind(*fiberio::SocketAddress::unix_abstract("app"));
//   auto client = fiberio::UnixDatagram::unbound();
//   client->send_to(bytes, *server->local_addr());
//   auto [left, right] = *fiberio::UnixDatagram::pair();
//
// Unlike UDP, delivery is reliable and in order, and a full receiver makes the sender wait rather than
// drop the datagram. Linux wakes only a connected sender when the receiver drains, so an unconnected
// send_to() to a full receiver retries with a back-off of up to 50 ms (connect() to the receiver to be
// woken at once). A sender with no name shows up as "(unnamed)", and nothing can be sent back to it. A path
// socket leaves its file behind when closed (as the OS does); bind() fails with errc::address_in_use
// while the file exists. Errors, timeouts, cancellation: net/error.hpp. Owns its socket.
// Thread-safety: as DatagramSocket.
#pragma once

#include <fiberio/net/datagram_socket.hpp>

#include <utility>

namespace fiberio {

class UnixDatagram : public DatagramSocket {
 public:
  UnixDatagram() = default;

  // Bound to `addr` (a path or an abstract name).
  static IoResult<UnixDatagram> bind(const SocketAddress& addr);
  // With no name: it can send (send_to, or connect then send), but nothing can be sent to it.
  static IoResult<UnixDatagram> unbound();
  // Two sockets connected to each other (socketpair(2)).
  static IoResult<std::pair<UnixDatagram, UnixDatagram>> pair();

 private:
  explicit UnixDatagram(int fd) : DatagramSocket(fd, true) {}
};

}  // namespace fiberio
