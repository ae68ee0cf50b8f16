// Unix-domain stream sockets on every backend: path and abstract listeners, socketpair, half-close,
// addresses, and connect errors.
#include <doctest/doctest.h>

#include "net_support.hpp"

#include <unistd.h>

#include <array>
#include <string>

using namespace std::chrono_literals;
using namespace net_test;

namespace {

std::string temp_socket_path(const char* tag) {
  return "/tmp/fiberio-net-test-" + std::to_string(::getpid()) + "-" + tag + ".sock";
}

void echo_once(fiberio::UnixListener& listener) {
  auto conn = listener.accept(fiberio::Clock::now() + 5s);
  REQUIRE(conn);
  std::array<std::byte, 64> buf;
  for (;;) {
    auto n = conn->stream.read_some(buf);
    REQUIRE(n);
    if (*n == 0) break;
    REQUIRE(conn->stream.write_all(std::span(buf).first(*n)));
  }
  REQUIRE(conn->stream.shutdown_write());
}

}  // namespace

TEST_CASE("unix: listener on a path and on an abstract name; echo with half-close") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          const std::string path = temp_socket_path("echo");
          ::unlink(path.c_str());
          for (const auto& addr :
               {*fiberio::SocketAddress::unix_path(path),
                *fiberio::SocketAddress::unix_abstract("fiberio-test-" + std::to_string(::getpid()))}) {
            CAPTURE(addr.to_string());
            auto listener = fiberio::UnixListener::bind(addr);
            REQUIRE_MESSAGE(listener, listener.error().message());
            CHECK(*listener->local_addr() == addr);
            auto server = fiberio::spawn([&] { echo_once(*listener); });
            auto client = fiberio::UnixStream::connect(addr, fiberio::Clock::now() + 5s);
            REQUIRE(client);
            CHECK(*client->peer_addr() == addr);
            CHECK(client->local_addr()->to_string() == "(unnamed)");
            REQUIRE(client->write_all("over unix"));
            REQUIRE(client->shutdown_write());
            std::array<std::byte, 9> reply;
            REQUIRE(client->read_exact(reply));
            CHECK(text(reply) == "over unix");
            std::array<std::byte, 1> end;
            CHECK(*client->read_some(end) == 0u);
            server.join();
          }
          // The path listener left its file: binding again fails until it is removed.
          auto again = fiberio::UnixListener::bind(*fiberio::SocketAddress::unix_path(path));
          CHECK(again.error() == std::errc::address_in_use);
          ::unlink(path.c_str());
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("unix: socketpair carries 8 MiB each way with a checksum") {
  constexpr std::uint64_t kTotal = 8 << 20;
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::Runtime rt{fiberio::Config{.threads = 2, .backend = kind}};
    rt.block_on([] {
      auto pair = fiberio::socketpair();
      REQUIRE(pair);
      auto& [left, right] = *pair;
      auto w1 = fiberio::spawn([&] {
        send_pattern(left, 11, kTotal);
        REQUIRE(left.shutdown_write());
      });
      auto w2 = fiberio::spawn([&] {
        send_pattern(right, 12, kTotal);
        REQUIRE(right.shutdown_write());
      });
      auto r1 = fiberio::spawn([&] { return drain(right); });
      const Checksum at_left = drain(left);
      const Checksum at_right = r1.join();
      w1.join();
      w2.join();
      CHECK(at_right.value() == pattern_checksum(11, kTotal));
      CHECK(at_left.value() == pattern_checksum(12, kTotal));
    });
  });
}

TEST_CASE("unix: connect errors") {
  fiberio::block_on([] {
    auto missing =
        fiberio::UnixStream::connect(*fiberio::SocketAddress::unix_path(temp_socket_path("missing")));
    REQUIRE_FALSE(missing);
    CHECK(missing.error() == std::errc::no_such_file_or_directory);
    auto nobody =
        fiberio::UnixStream::connect(*fiberio::SocketAddress::unix_abstract("fiberio-nobody-listens"));
    CHECK(nobody.error() == std::errc::connection_refused);
    CHECK(fiberio::UnixStream::connect(fiberio::SocketAddress::loopback_v4(1)).error() ==
          std::errc::address_family_not_supported);
  });
}

TEST_CASE("unix: a full backlog makes connect wait until the deadline") {
  fiberio::block_on([] {
    const auto addr = *fiberio::SocketAddress::unix_abstract("fiberio-full-" + std::to_string(::getpid()));
    auto listener = fiberio::UnixListener::bind(addr, 0);
    REQUIRE(listener);
    std::vector<fiberio::UnixStream> queued;
    std::error_code last;
    for (int i = 0; i < 16 && !last; ++i) {
      auto s = fiberio::UnixStream::connect(addr, fiberio::Clock::now() + 100ms);
      if (s) {
        queued.push_back(std::move(*s));
      } else {
        last = s.error();
      }
    }
    CHECK(last == std::errc::timed_out);
    // Accepting one makes room.
    REQUIRE(listener->accept(fiberio::Clock::now() + 5s));
    CHECK(fiberio::UnixStream::connect(addr, fiberio::Clock::now() + 5s));
  });
}
