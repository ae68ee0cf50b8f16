// Unix-domain datagram sockets on every backend: bound (abstract name and path) and unbound sockets, the
// "(unnamed)" sender, pairs, truncation and peeking, and a full receiver that makes the sender wait (a
// connected one woken by the kernel, an unconnected one by the back-off) without losing a datagram, also
// with many senders on several workers.
#include <doctest/doctest.h>

#include "net_support.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace net_test;

namespace {

std::string unique_name(const char* tag) {
  return "fiberio-dgram-test-" + std::to_string(::getpid()) + "-" + tag;
}

// Sends numbered datagrams until `count` went, while the receiver starts only once the queue is full: each
// send that waits must be woken, and every datagram must arrive once, in order.
void fill_then_drain(fiberio::UnixDatagram& sender, fiberio::UnixDatagram& receiver) {
  constexpr std::uint32_t count = 2000;  // far more than a receive queue holds (max_dgram_qlen is 10..512)
  fiberio::Event full;
  auto producer = fiberio::spawn([&] {
    for (std::uint32_t i = 0; i < count; ++i) {
      std::array<std::byte, 256> d{};
      std::memcpy(d.data(), &i, sizeof i);
      if (i > 0 && !full.is_set()) {
        // A limit that has already passed: the send is tried once and times out only if it would wait.
        auto r = sender.send(d, fiberio::Clock::now());
        if (r) continue;
        REQUIRE(r.error() == std::errc::timed_out);
        full.set();
      }
      auto r = sender.send(d, 10s);
      REQUIRE(r);
      REQUIRE(*r == d.size());
    }
  });
  REQUIRE(full.wait_until(fiberio::deadline_after(10s)));
  for (std::uint32_t i = 0; i < count; ++i) {
    std::array<std::byte, 512> buf;
    auto r = receiver.recv_from(buf, 10s);
    REQUIRE(r);
    REQUIRE(r->size == 256u);
    std::uint32_t got = 0;
    std::memcpy(&got, buf.data(), sizeof got);
    REQUIRE(got == i);
  }
  producer.join();
}

}  // namespace

TEST_CASE("unix datagram: bound on an abstract name, an unbound sender shows up as (unnamed)") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          auto addr = fiberio::SocketAddress::unix_abstract(unique_name("abstract"));
          REQUIRE(addr);
          auto server = fiberio::UnixDatagram::bind(*addr);
          REQUIRE(server);
          CHECK(*server->local_addr() == *addr);
          auto client = fiberio::UnixDatagram::unbound();
          REQUIRE(client);
          REQUIRE(client->send_to(bytes("hello"), *addr) == 5u);
          std::array<std::byte, 64> buf;
          auto r = server->recv_from(buf, 5s);
          REQUIRE(r);
          CHECK(text(std::span(buf).first(r->size)) == "hello");
          CHECK(r->from.is_unix());
          CHECK(r->from == fiberio::SocketAddress::unix_unnamed());
          CHECK(r->from.to_string() == "(unnamed)");

          // A bound client can be answered.
          auto named_addr = fiberio::SocketAddress::unix_abstract(unique_name("client"));
          REQUIRE(named_addr);
          auto named = fiberio::UnixDatagram::bind(*named_addr);
          REQUIRE(named);
          REQUIRE(named->send_to(bytes("ping"), *addr) == 4u);
          r = server->recv_from(buf, 5s);
          REQUIRE(r);
          CHECK(r->from == *named_addr);
          REQUIRE(server->send_to(bytes("pong"), r->from) == 4u);
          r = named->recv_from(buf, 5s);
          REQUIRE(r);
          CHECK(text(std::span(buf).first(r->size)) == "pong");
          CHECK(r->from == *addr);
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("unix datagram: a path socket, its stale file, and errors") {
  fiberio::block_on([] {
    const std::string path = "/tmp/" + unique_name("path") + ".sock";
    ::unlink(path.c_str());
    auto addr = fiberio::SocketAddress::unix_path(path);
    REQUIRE(addr);
    {
      auto server = fiberio::UnixDatagram::bind(*addr);
      REQUIRE(server);
      auto client = fiberio::UnixDatagram::unbound();
      REQUIRE(client);
      REQUIRE(client->connect(*addr));
      CHECK(*client->peer_addr() == *addr);
      REQUIRE(client->send(bytes("x")) == 1u);
      std::array<std::byte, 8> buf;
      auto r = server->recv(buf, 5s);
      REQUIRE(r);
      CHECK(r->size == 1u);
    }
    // The file stays behind: binding again fails until it is removed.
    auto again = fiberio::UnixDatagram::bind(*addr);
    REQUIRE_FALSE(again);
    CHECK(again.error() == std::errc::address_in_use);
    ::unlink(path.c_str());
    CHECK(fiberio::UnixDatagram::bind(*addr));
    ::unlink(path.c_str());

    // Nobody there; not a Unix address.
    auto lonely = fiberio::UnixDatagram::unbound();
    REQUIRE(lonely);
    auto nobody = fiberio::SocketAddress::unix_abstract(unique_name("nobody"));
    REQUIRE(nobody);
    auto sent = lonely->send_to(bytes("?"), *nobody);
    REQUIRE_FALSE(sent);
    CHECK(sent.error() == std::errc::connection_refused);
    CHECK(fiberio::UnixDatagram::bind(fiberio::SocketAddress::loopback_v4(0)).error() ==
          std::errc::address_family_not_supported);
  });
}

TEST_CASE("unix datagram: a pair, truncation, peek, and a receive timeout") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          auto p = fiberio::UnixDatagram::pair();
          REQUIRE(p);
          auto& [left, right] = *p;
          REQUIRE(left.send(bytes("a longer datagram")) == 17u);
          std::array<std::byte, 8> small;
          auto peeked = right.peek(small, 5s);
          REQUIRE(peeked);
          CHECK(peeked->truncated);
          CHECK(peeked->datagram_size == 17u);
          std::array<std::byte, 64> buf;
          auto r = right.recv(buf, 5s);
          REQUIRE(r);
          CHECK_FALSE(r->truncated);
          CHECK(text(std::span(buf).first(r->size)) == "a longer datagram");
          CHECK(right.recv(buf, 20ms).error() == std::errc::timed_out);
          // A waiting receive is woken by the datagram.
          auto late = fiberio::spawn([&] {
            fiberio::sleep_for(10ms);
            REQUIRE(right.send(bytes("late")));
          });
          r = left.recv(buf, 5s);
          REQUIRE(r);
          CHECK(text(std::span(buf).first(r->size)) == "late");
          late.join();
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("unix datagram: a full receiver makes a connected sender wait, and nothing is lost") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          auto p = fiberio::UnixDatagram::pair();
          REQUIRE(p);
          fill_then_drain(p->first, p->second);
        },
        fiberio::Config{.backend = kind});
  });
}

namespace {

// A receiver whose queue another socket filled; `sender` then sends to it (connected: send(), or not:
// send_to()) and must wait without spinning (a refused send raises a writability event of its own), then
// go through once the queue drains.
void wait_for_a_full_receiver(fiberio::BackendKind kind, bool connected) {
  fiberio::Runtime rt{fiberio::Config{.threads = 1, .backend = kind}};
  auto polls = [&] {
    std::uint64_t n = 0;
    for (const auto& w : rt.stats())
      n += w.backend_polls;
    return n;
  };
  rt.block_on([&] {
    auto addr = fiberio::SocketAddress::unix_abstract(unique_name(connected ? "full-c" : "full-u"));
    REQUIRE(addr);
    auto server = fiberio::UnixDatagram::bind(*addr);
    auto filler = fiberio::UnixDatagram::unbound();
    auto late = fiberio::UnixDatagram::unbound();
    REQUIRE(server);
    REQUIRE(filler);
    REQUIRE(late);
    if (connected) REQUIRE(late->connect(*addr));
    auto send_late = [&](fiberio::Timeout timeout) {
      return connected ? late->send(bytes("late"), timeout) : late->send_to(bytes("late"), *addr, timeout);
    };
    std::size_t queued = 0;
    while (filler->send_to(bytes("fill"), *addr, fiberio::Clock::now()))
      ++queued;
    REQUIRE(queued > 0);
    CHECK(send_late(20ms).error() == std::errc::timed_out);
    auto sender = fiberio::spawn([&] { return send_late(5s); });
    fiberio::sleep_for(5ms);
    const auto before = polls();
    fiberio::sleep_for(50ms);  // the sender waits meanwhile; a spinning one would poll thousands of times
    CHECK(polls() - before < 50);
    std::array<std::byte, 16> buf;
    for (std::size_t i = 0; i < queued; ++i) {
      auto r = server->recv_from(buf, 5s);
      REQUIRE(r);
      REQUIRE(text(std::span(buf).first(r->size)) == "fill");
    }
    auto sent = sender.join();
    REQUIRE(sent);
    CHECK(*sent == 4u);
    auto r = server->recv_from(buf, 5s);
    REQUIRE(r);
    CHECK(text(std::span(buf).first(r->size)) == "late");
  });
}

}  // namespace

TEST_CASE(
    "unix datagram: a sender to a receiver filled by others waits without spinning, then goes through") {
  for_each_backend([](fiberio::BackendKind kind) {
    for (const bool connected : {true, false}) {
      CAPTURE(connected);  // outside the runtime's fibers
      wait_for_a_full_receiver(kind, connected);
    }
  });
}

TEST_CASE("unix datagram: many senders on several workers into a full receiver lose and repeat nothing") {
  // Senders (half connected, half not) and two receivers spread over 4 workers, with and without
  // stealing: the queue stays full, so sends wait and wake on other threads all the time.
  constexpr int kSenders = 6;
  constexpr std::uint32_t kEach = 300;
  for (const bool stealing : {false, true}) {
    CAPTURE(stealing);  // outside the runtime's fibers
    fiberio::Runtime rt{fiberio::Config{.threads = 4, .work_stealing = stealing}};
    rt.block_on([&] {
      auto addr = fiberio::SocketAddress::unix_abstract(unique_name(stealing ? "many-s" : "many"));
      REQUIRE(addr);
      auto server = fiberio::UnixDatagram::bind(*addr);
      REQUIRE(server);
      std::vector<fiberio::JoinHandle<bool>> senders;
      for (int s = 0; s < kSenders; ++s) {
        senders.push_back(rt.spawn_on(static_cast<std::uint32_t>(s % 4), [&, s] {
          auto sock = fiberio::UnixDatagram::unbound();
          if (!sock) return false;
          const bool connected = s % 2 == 0;
          if (connected && !sock->connect(*addr)) return false;
          for (std::uint32_t i = 0; i < kEach; ++i) {
            const std::uint32_t tag[2] = {static_cast<std::uint32_t>(s), i};
            const auto datagram = std::as_bytes(std::span(tag));
            auto r = connected ? sock->send(datagram, 10s) : sock->send_to(datagram, *addr, 10s);
            if (!r || *r != sizeof tag) return false;
          }
          return true;
        }));
      }
      std::vector<std::vector<std::uint32_t>> next(2, std::vector<std::uint32_t>(kSenders, 0));
      std::atomic<std::uint32_t> received{0};
      auto receive = [&](int me) {
        // Each receiver sees every sender's datagrams in order (a socket queue is FIFO), though not all.
        std::vector<std::uint32_t> last(kSenders, 0);
        std::vector<bool> any(kSenders, false);
        while (received.load() < kSenders * kEach) {
          std::array<std::byte, 16> buf;
          auto r = server->recv_from(buf, 50ms);
          if (!r) {
            if (r.error() == std::errc::timed_out) continue;
            return false;
          }
          std::uint32_t tag[2];
          if (r->size != sizeof tag) return false;
          std::memcpy(tag, buf.data(), sizeof tag);
          if (tag[0] >= kSenders) return false;
          if (any[tag[0]] && tag[1] <= last[tag[0]]) return false;  // repeated or out of order
          any[tag[0]] = true;
          last[tag[0]] = tag[1];
          ++next[me][tag[0]];
          received.fetch_add(1);
          if (received.load() % 64 == 0) fiberio::sleep_for(1ms);  // let the queue fill up again
        }
        return true;
      };
      auto other = rt.spawn_on(3, [&] { return receive(1); });
      const bool mine = receive(0);
      CHECK(mine);
      CHECK(other.join());
      for (auto& s : senders)
        CHECK(s.join());
      for (int s = 0; s < kSenders; ++s)
        CHECK(next[0][s] + next[1][s] == kEach);
    });
  }
}
