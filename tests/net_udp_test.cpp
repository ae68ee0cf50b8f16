// UDP over loopback on every backend: round trips (IPv4, IPv6), truncation reported, peeking, connected
// sockets, receive timeouts, ICMP port-unreachable as connection_refused.
#include <doctest/doctest.h>

#include "net_support.hpp"

#include <array>
#include <vector>

using namespace std::chrono_literals;
using namespace net_test;

TEST_CASE("udp: round trip with send_to / recv_from over IPv4 and IPv6") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          for (const bool v6 : {false, true}) {  // no CAPTURE: its scope would span suspensions
            const auto any =
                v6 ? fiberio::SocketAddress::loopback_v6(0) : fiberio::SocketAddress::loopback_v4(0);
            auto server = fiberio::UdpSocket::bind(any);
            auto client = fiberio::UdpSocket::bind(any);
            REQUIRE(server);
            REQUIRE(client);
            const auto server_addr = *server->local_addr();
            CHECK(server_addr.port() != 0);
            auto echo = fiberio::spawn([&] {
              std::array<std::byte, 1500> buf;
              auto r = server->recv_from(buf, fiberio::Clock::now() + 5s);
              REQUIRE(r);
              CHECK_FALSE(r->truncated);
              REQUIRE(server->send_to(std::span(buf).first(r->size), r->from));
              return r->from;
            });
            REQUIRE(client->send_to(bytes("ping"), server_addr) == 4u);
            std::array<std::byte, 1500> buf;
            auto r = client->recv_from(buf, fiberio::Clock::now() + 5s);
            REQUIRE(r);
            CHECK(text(std::span(buf).first(r->size)) == "ping");
            CHECK(r->from == server_addr);
            CHECK(echo.join() == *client->local_addr());
          }
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("udp: a datagram larger than the buffer is reported as truncated, with its real size") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          auto a = fiberio::UdpSocket::bind(fiberio::SocketAddress::loopback_v4(0));
          auto b = fiberio::UdpSocket::bind(fiberio::SocketAddress::loopback_v4(0));
          REQUIRE(a);
          REQUIRE(b);
          std::vector<std::byte> big(3000);
          fill_pattern(big, 7, 0);
          REQUIRE(a->send_to(big, *b->local_addr()) == big.size());
          REQUIRE(a->send_to(bytes("small"), *b->local_addr()) == 5u);
          std::array<std::byte, 1000> buf;
          auto r = b->recv_from(buf, fiberio::Clock::now() + 5s);
          REQUIRE(r);
          CHECK(r->truncated);
          CHECK(r->size == buf.size());
          CHECK(r->datagram_size == big.size());
          CHECK(std::equal(buf.begin(), buf.end(), big.begin()));
          // The rest of the big datagram is gone; the next one is whole.
          r = b->recv_from(buf, fiberio::Clock::now() + 5s);
          REQUIRE(r);
          CHECK_FALSE(r->truncated);
          CHECK(text(std::span(buf).first(r->size)) == "small");
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("udp: peek_from leaves the datagram queued and tells its size, even through a small buffer") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          auto a = fiberio::UdpSocket::bind(fiberio::SocketAddress::loopback_v4(0));
          auto b = fiberio::UdpSocket::bind(fiberio::SocketAddress::loopback_v4(0));
          REQUIRE(a);
          REQUIRE(b);
          // A peek that waits: the datagram comes while it is suspended.
          auto sender = fiberio::spawn([&] {
            fiberio::sleep_for(10ms);
            REQUIRE(a->send_to(bytes("0123456789"), *b->local_addr()) == 10u);
          });
          std::array<std::byte, 4> small;
          auto peeked = b->peek_from(small, 5s);
          REQUIRE(peeked);
          CHECK(peeked->truncated);
          CHECK(peeked->size == 4u);
          CHECK(peeked->datagram_size == 10u);
          CHECK(text(small) == "0123");
          CHECK(peeked->from == *a->local_addr());
          sender.join();
          // Still queued: a second peek, then the receive, see the whole datagram.
          std::array<std::byte, 16> buf;
          peeked = b->peek_from(buf, 5s);
          REQUIRE(peeked);
          CHECK_FALSE(peeked->truncated);
          CHECK(text(std::span(buf).first(peeked->size)) == "0123456789");
          auto r = b->recv_from(buf, 5s);
          REQUIRE(r);
          CHECK(text(std::span(buf).first(r->size)) == "0123456789");
          // Now it is gone: a connected peek times out like a receive.
          REQUIRE(b->connect(*a->local_addr()));
          CHECK(b->peek(buf, 20ms).error() == std::errc::timed_out);
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("udp: connected sockets, deadlines, and port unreachable") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          auto a = fiberio::UdpSocket::bind(fiberio::SocketAddress::loopback_v4(0));
          auto b = fiberio::UdpSocket::bind(fiberio::SocketAddress::loopback_v4(0));
          REQUIRE(a);
          REQUIRE(b);
          REQUIRE(a->connect(*b->local_addr()));
          REQUIRE(b->connect(*a->local_addr()));
          CHECK(*a->peer_addr() == *b->local_addr());
          REQUIRE(a->send(bytes("one")) == 3u);
          std::array<std::byte, 16> buf;
          auto r = b->recv(buf, fiberio::Clock::now() + 5s);
          REQUIRE(r);
          CHECK(text(std::span(buf).first(r->size)) == "one");
          CHECK(r->from == *a->local_addr());

          // Nothing comes: the deadline answers.
          CHECK(b->recv(buf, fiberio::Clock::now() + 20ms).error() == std::errc::timed_out);

          // Sending to a closed port: the ICMP error comes back on the connected socket.
          auto lonely = fiberio::UdpSocket::bind(fiberio::SocketAddress::loopback_v4(0));
          REQUIRE(lonely);
          auto gone = fiberio::UdpSocket::bind(fiberio::SocketAddress::loopback_v4(0));
          REQUIRE(gone);
          const auto gone_addr = *gone->local_addr();
          gone->close();
          REQUIRE(lonely->connect(gone_addr));
          REQUIRE(lonely->send(bytes("anyone?")));
          auto refused = lonely->recv(buf, fiberio::Clock::now() + 5s);
          REQUIRE_FALSE(refused);
          CHECK(refused.error() == std::errc::connection_refused);
        },
        fiberio::Config{.backend = kind});
  });
}
