// TCP streams and listeners over loopback, on every backend: IPv4 and IPv6, 64 MiB with a checksum,
// half-close both ways, refused and timed-out connects, connect from a source address, read deadlines, a
// peer that resets mid-transfer.
#include <doctest/doctest.h>

#include "net_support.hpp"

#include <sys/socket.h>

#include <array>
#include <vector>

using namespace std::chrono_literals;
using namespace net_test;

TEST_CASE("tcp: bind to port 0 gets a real port; echo over IPv4 and IPv6") {
  for_each_backend([](fiberio::BackendKind kind) {
    for (const bool v6 : {false, true}) {
      CAPTURE(v6);
      fiberio::block_on(
          [v6] {
            auto listener = listen_loopback(v6);
            const auto addr = address_of(listener);
            CHECK(addr.port() != 0);
            CHECK(addr.family() ==
                  (v6 ? fiberio::SocketAddress::Family::ipv6 : fiberio::SocketAddress::Family::ipv4));
            auto server = fiberio::spawn([&] {
              auto conn = listener.accept();
              REQUIRE(conn);
              std::array<std::byte, 64> buf;
              auto n = conn->stream.read_some(buf);
              REQUIRE(n);
              REQUIRE(conn->stream.write_all(std::span(buf).first(*n)));
              return conn->peer;
            });
            auto client = fiberio::TcpStream::connect(addr, 5s);
            REQUIRE_MESSAGE(client, client.error().message());
            REQUIRE(client->write_all("hello"));
            std::array<std::byte, 5> reply;
            REQUIRE(client->read_exact(reply));
            CHECK(text(reply) == "hello");
            const auto peer_seen_by_server = server.join();
            CHECK(peer_seen_by_server == *client->local_addr());
            CHECK(*client->peer_addr() == addr);
          },
          fiberio::Config{.backend = kind});
    }
  });
}

TEST_CASE("tcp: 64 MiB each way at once through one connection arrive intact (checksum)") {
  constexpr std::uint64_t kTotal = 64ull << 20;
  const std::uint64_t expect_up = pattern_checksum(1, kTotal), expect_down = pattern_checksum(2, kTotal);
  for_each_backend([&](fiberio::BackendKind kind) {
    fiberio::Runtime rt{fiberio::Config{.threads = 2, .backend = kind}};
    rt.block_on([&] {
      auto listener = listen_loopback();
      auto server = fiberio::spawn([&] {
        auto conn = listener.accept();
        REQUIRE(conn);
        auto& s = conn->stream;
        auto writer = fiberio::spawn([&] {
          send_pattern(s, 2, kTotal);
          REQUIRE(s.shutdown_write());
        });
        const Checksum up = drain(s);
        writer.join();
        return up;
      });
      auto client = fiberio::TcpStream::connect(address_of(listener));
      REQUIRE(client);
      auto writer = fiberio::spawn([&] {
        send_pattern(*client, 1, kTotal);
        REQUIRE(client->shutdown_write());
      });
      const Checksum down = drain(*client);
      writer.join();
      const Checksum up = server.join();
      CHECK(up.size() == kTotal);
      CHECK(up.value() == expect_up);
      CHECK(down.size() == kTotal);
      CHECK(down.value() == expect_down);
    });
  });
}

TEST_CASE("tcp: half-close works both ways") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          auto listener = listen_loopback();
          // Client closes its write side first: the server reads to EOF, then answers and closes.
          auto server = fiberio::spawn([&] {
            auto conn = listener.accept();
            REQUIRE(conn);
            std::vector<std::byte> request(3);
            REQUIRE(conn->stream.read_exact(request));
            std::array<std::byte, 8> more;
            auto eof = conn->stream.read_some(more);
            REQUIRE(eof);
            CHECK(*eof == 0);  // end of stream, not an error
            REQUIRE(conn->stream.write_all("reply:" + text(request)));
            REQUIRE(conn->stream.shutdown_write());
          });
          auto client = fiberio::TcpStream::connect(address_of(listener));
          REQUIRE(client);
          REQUIRE(client->write_all("abc"));
          REQUIRE(client->shutdown_write());
          std::array<std::byte, 9> reply;
          REQUIRE(client->read_exact(reply));
          CHECK(text(reply) == "reply:abc");
          std::array<std::byte, 1> one;
          CHECK(client->read_exact(one).error() == fiberio::NetErrc::eof);
          server.join();

          // Server closes its write side first: the client still writes after seeing EOF.
          auto server2 = fiberio::spawn([&] {
            auto conn = listener.accept();
            REQUIRE(conn);
            REQUIRE(conn->stream.write_all("bye"));
            REQUIRE(conn->stream.shutdown_write());
            std::array<std::byte, 6> late;
            REQUIRE(conn->stream.read_exact(late));
            return text(late);
          });
          auto client2 = fiberio::TcpStream::connect(address_of(listener));
          REQUIRE(client2);
          std::array<std::byte, 8> buf;
          auto n = client2->read_exact(buf);  // 3 bytes, then the end
          CHECK(n.error() == fiberio::NetErrc::unexpected_eof);
          REQUIRE(client2->write_all("still!"));
          CHECK(server2.join() == "still!");
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("tcp: connecting to a closed port is refused") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          for (const bool v6 : {false, true}) {
            auto s = fiberio::TcpStream::connect(closed_port(v6), 5s);
            REQUIRE_FALSE(s);
            CHECK(s.error() == std::errc::connection_refused);
          }
          // Several candidates: the refused one is skipped.
          auto listener = listen_loopback();
          const std::vector<fiberio::SocketAddress> candidates{closed_port(), address_of(listener)};
          auto s = fiberio::TcpStream::connect(candidates, fiberio::Clock::now() + 5s);
          CHECK(s);
          CHECK(fiberio::TcpStream::connect(std::span<const fiberio::SocketAddress>{}).error() ==
                std::errc::invalid_argument);
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("tcp: connect from a chosen source address (bind before connect)") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          for (const bool v6 : {false, true}) {
            auto listener = listen_loopback(v6);
            // Linux answers on all of 127/8: a source other than 127.0.0.1 shows it was bound. IPv6 has
            // one loopback address, so there only the port-0 binding is tested.
            const auto source =
                v6 ? fiberio::SocketAddress::loopback_v6(0) : *fiberio::SocketAddress::parse("127.0.0.2:0");
            auto s = fiberio::TcpStream::connect(address_of(listener), {.local = source}, 5s);
            REQUIRE(s);
            auto conn = listener.accept(5s);
            REQUIRE(conn);
            CHECK(conn->peer.host() == source.host());
            CHECK(conn->peer.port() != 0);
            CHECK(*s->local_addr() == conn->peer);
            // The connection works.
            REQUIRE(s->write_all(bytes("hi")));
            std::array<std::byte, 2> buf;
            REQUIRE(conn->stream.read_exact(buf, 5s));
            CHECK(text(buf) == "hi");
          }
          // A source port that is taken, a source of the wrong family.
          auto listener = listen_loopback();
          auto taken = fiberio::TcpStream::connect(address_of(listener), {.local = address_of(listener)}, 5s);
          REQUIRE_FALSE(taken);
          CHECK(taken.error() == std::errc::address_in_use);
          auto mixed = fiberio::TcpStream::connect(address_of(listener),
                                                   {.local = fiberio::SocketAddress::loopback_v6(0)});
          REQUIRE_FALSE(mixed);
          CHECK(mixed.error() == std::errc::address_family_not_supported);
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("tcp: connect times out against a listener whose backlog is full") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          // Backlog 0 and nobody accepting: the kernel queues one or two handshakes, then drops SYNs.
          auto listener = listen_loopback(false, {.backlog = 0});
          const auto addr = address_of(listener);
          std::vector<fiberio::TcpStream> queued;
          std::error_code last;
          for (int i = 0; i < 32 && !last; ++i) {
            auto s = fiberio::TcpStream::connect(addr, 300ms);
            if (s) {
              queued.push_back(std::move(*s));
            } else {
              last = s.error();
            }
          }
          CHECK(last == std::errc::timed_out);
          CHECK(queued.size() >= 1);
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("tcp: a read deadline gives timed_out, and the stream still works afterwards") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          auto listener = listen_loopback();
          auto client = fiberio::TcpStream::connect(address_of(listener));
          REQUIRE(client);
          auto conn = listener.accept(fiberio::Clock::now() + 5s);
          REQUIRE(conn);
          std::array<std::byte, 16> buf;
          const auto start = fiberio::Clock::now();
          auto r = client->read_some(buf, fiberio::Clock::now() + 50ms);
          REQUIRE_FALSE(r);
          CHECK(r.error() == std::errc::timed_out);
          CHECK(fiberio::Clock::now() - start >= 50ms);
          // A deadline already passed fails at once if there is nothing to read.
          CHECK(client->read_some(buf, fiberio::Clock::now() - 1s).error() == std::errc::timed_out);
          // An accept deadline too.
          CHECK(listener.accept(fiberio::Clock::now() + 10ms).error() == std::errc::timed_out);
          REQUIRE(conn->stream.write_all("late"));
          auto n = client->read_some(buf, fiberio::Clock::now() + 5s);
          REQUIRE(n);
          CHECK(text(std::span(buf).first(*n)) == "late");
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("tcp: every waiting call takes a duration as well as a deadline") {
  fiberio::block_on([] {
    auto listener = listen_loopback();
    CHECK(listener.accept(10ms).error() == std::errc::timed_out);
    auto client = fiberio::TcpStream::connect(address_of(listener), 5s);
    REQUIRE(client);
    auto conn = listener.accept(5s);
    REQUIRE(conn);
    std::array<std::byte, 16> buf;
    const auto start = fiberio::Clock::now();
    CHECK(client->read_some(buf, 30ms).error() == std::errc::timed_out);
    CHECK(fiberio::Clock::now() - start >= 30ms);
    CHECK(client->peek(buf, 10ms).error() == std::errc::timed_out);
    CHECK(client->read_exact(buf, 10ms).error() == std::errc::timed_out);
    CHECK(client->async_fd().readable(10ms).error() == std::errc::timed_out);
    // Nobody reads: the send buffers fill and write_all runs out of time.
    std::vector<std::byte> big(1 << 20);
    fiberio::IoResult<void> w;
    for (int i = 0; i < 64 && w; ++i)
      w = client->write_all(big, 20ms);
    REQUIRE_FALSE(w);
    CHECK(w.error() == std::errc::timed_out);
    CHECK(client->async_fd().writable(10ms).error() == std::errc::timed_out);
    // Fractional and coarse units work too.
    CHECK(conn->stream.read_some(buf, std::chrono::duration<double>(5.0)));
    CHECK(conn->stream.read_some(buf, std::chrono::minutes(1)));
  });
}

TEST_CASE("tcp: peek leaves the bytes for the next read; try_read and try_write never wait") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          auto listener = listen_loopback();
          auto client = fiberio::TcpStream::connect(address_of(listener));
          REQUIRE(client);
          auto conn = listener.accept(fiberio::Clock::now() + 5s);
          REQUIRE(conn);
          std::array<std::byte, 16> buf;
          // Nothing there: try_read says so at once, peek waits (here until its deadline).
          auto empty = client->try_read(buf);
          REQUIRE_FALSE(empty);
          CHECK(empty.error() == std::errc::resource_unavailable_try_again);
          CHECK(client->peek(buf, fiberio::Clock::now() + 10ms).error() == std::errc::timed_out);

          auto writer = fiberio::spawn([&] {
            fiberio::sleep_for(5ms);
            REQUIRE(conn->stream.write_all("peekaboo"));
          });
          auto peeked = client->peek(buf, fiberio::Clock::now() + 5s);  // waits for the bytes
          writer.join();
          REQUIRE(peeked);
          CHECK(text(std::span(buf).first(*peeked)) == "peekaboo");
          auto again = client->peek(buf, fiberio::Clock::now() + 5s);  // a short peek drained nothing
          REQUIRE(again);
          CHECK(*again == *peeked);
          auto n = client->try_read(buf);
          REQUIRE(n);
          CHECK(text(std::span(buf).first(*n)) == "peekaboo");  // still there for the read

          // try_write takes what fits, then says the socket is full instead of waiting.
          auto sent = client->try_write(bytes("x"));
          REQUIRE(sent);
          CHECK(*sent == 1);
          std::vector<std::byte> big(1 << 20);
          std::size_t total = 0;
          std::error_code full;
          for (int i = 0; i < 256 && !full; ++i) {
            auto w = client->try_write(big);
            if (w) {
              total += *w;
            } else {
              full = w.error();
            }
          }
          CHECK(full == std::errc::resource_unavailable_try_again);
          CHECK(total > 0);
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("tcp: a peer that resets mid-transfer gives connection_reset (or broken_pipe), never SIGPIPE") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          auto listener = listen_loopback();
          // The server takes a little of a big upload, then aborts (SO_LINGER 0: RST).
          auto server = fiberio::spawn([&] {
            auto conn = listener.accept();
            REQUIRE(conn);
            std::vector<std::byte> some(10'000);
            REQUIRE(conn->stream.read_exact(some));
            REQUIRE(conn->stream.set_linger(0s));
            conn->stream.close();
          });
          auto client = fiberio::TcpStream::connect(address_of(listener));
          REQUIRE(client);
          std::vector<std::byte> big(1 << 20);
          std::error_code failure;
          for (int i = 0; i < 256 && !failure; ++i) {  // at most 256 MiB: the reset comes long before
            if (auto w = client->write_all(big); !w) failure = w.error();
          }
          server.join();
          CHECK_MESSAGE((failure == std::errc::connection_reset || failure == std::errc::broken_pipe),
                        failure.message());

          // The reader's side: data, then the reset instead of an end of stream.
          auto server2 = fiberio::spawn([&] {
            auto conn = listener.accept();
            REQUIRE(conn);
            REQUIRE(conn->stream.write_all("partial"));
            std::array<std::byte, 1> go;
            REQUIRE(conn->stream.read_exact(go));  // the client has read "partial"
            REQUIRE(conn->stream.set_linger(0s));
            conn->stream.close();
          });
          auto reader = fiberio::TcpStream::connect(address_of(listener));
          REQUIRE(reader);
          std::array<std::byte, 7> partial;
          REQUIRE(reader->read_exact(partial));
          REQUIRE(reader->write_all("!"));
          server2.join();
          std::array<std::byte, 16> buf;
          auto r = reader->read_some(buf, fiberio::Clock::now() + 5s);
          REQUIRE_FALSE(r);
          CHECK(r.error() == std::errc::connection_reset);
          // Writing to the dead connection is an error value too (the test would die of SIGPIPE otherwise).
          std::error_code write_error;
          for (int i = 0; i < 8 && !write_error; ++i) {
            if (auto w = reader->write_all("x"); !w) write_error = w.error();
          }
          CHECK((write_error == std::errc::broken_pipe || write_error == std::errc::connection_reset));
          // Half-closing a connection the peer reset is done, not an error (the kernel says ENOTCONN):
          // there is nothing left to shut down (as tokio).
          auto half_closed = reader->shutdown_write();
          CHECK_MESSAGE(half_closed.has_value(), (half_closed ? "" : half_closed.error().message()));
          CHECK(reader->shutdown_both());
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("tcp: options") {
  fiberio::block_on([] {
    auto listener = listen_loopback(false, {.reuse_port = true});
    auto client = fiberio::TcpStream::connect(address_of(listener));
    REQUIRE(client);
    REQUIRE(client->set_nodelay(true));
    CHECK(*client->nodelay());
    REQUIRE(client->set_nodelay(false));
    CHECK_FALSE(*client->nodelay());
    REQUIRE(client->set_keepalive(true, 30s));
    CHECK(*client->keepalive());
    REQUIRE(client->linger());
    CHECK_FALSE(*client->linger());  // off by default
    REQUIRE(client->set_linger(5s));
    CHECK(*client->linger() == std::optional<std::chrono::seconds>{5s});
    REQUIRE(client->set_linger(0s));
    CHECK(*client->linger() == std::optional<std::chrono::seconds>{0s});
    REQUIRE(client->set_linger(std::nullopt));
    CHECK_FALSE(*client->linger());
    // A second listener may share the port only with SO_REUSEPORT on both.
    auto twin = fiberio::TcpListener::bind(address_of(listener), {.reuse_port = true});
    CHECK(twin);
    auto intruder = fiberio::TcpListener::bind(address_of(listener));
    REQUIRE_FALSE(intruder);
    CHECK(intruder.error() == std::errc::address_in_use);
    // Not an IP address.
    CHECK(fiberio::TcpStream::connect(*fiberio::SocketAddress::unix_abstract("x")).error() ==
          std::errc::address_family_not_supported);
  });
}

TEST_CASE("tcp: a cancelled fiber blocked in accept or read unwinds with Cancelled") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          auto listener = listen_loopback();
          auto acceptor = fiberio::spawn([&] { (void)listener.accept(); });
          fiberio::sleep_for(5ms);
          acceptor.cancel();
          CHECK_THROWS_AS(acceptor.join(), fiberio::Cancelled);
          auto c = fiberio::TcpStream::connect(address_of(listener));
          REQUIRE(c);
          auto reader = fiberio::spawn([&] {
            std::array<std::byte, 4> buf;
            (void)c->read_some(buf);
          });
          fiberio::sleep_for(5ms);
          reader.cancel();
          CHECK_THROWS_AS(reader.join(), fiberio::Cancelled);
        },
        fiberio::Config{.backend = kind});
  });
}
