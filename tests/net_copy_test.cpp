// copy_bidirectional on every backend, with splice and with the read/write fallback: a proxy between two
// TCP connections moves data both ways intact, passes half-closes on, reports errors and idle timeouts.
#include <doctest/doctest.h>

#include "net_support.hpp"

#include <array>
#include <filesystem>
#include <vector>

using namespace std::chrono_literals;
using namespace net_test;

namespace {

// client <-> [proxy: accepted | upstream] <-> server: returns the three connected pairs' ends.
struct Relay {
  fiberio::TcpStream client;      // the client's end
  fiberio::TcpStream downstream;  // the proxy's end facing the client
  fiberio::TcpStream upstream;    // the proxy's end facing the server
  fiberio::TcpStream server;      // the server's end
};

Relay make_relay() {
  auto front = listen_loopback();
  auto back = listen_loopback(true);  // the second hop over IPv6
  Relay r;
  auto c = fiberio::TcpStream::connect(address_of(front));
  REQUIRE(c);
  r.client = std::move(*c);
  auto d = front.accept(fiberio::Clock::now() + 5s);
  REQUIRE(d);
  r.downstream = std::move(d->stream);
  auto u = fiberio::TcpStream::connect(address_of(back));
  REQUIRE(u);
  r.upstream = std::move(*u);
  auto s = back.accept(fiberio::Clock::now() + 5s);
  REQUIRE(s);
  r.server = std::move(s->stream);
  return r;
}

}  // namespace

TEST_CASE("copy: 16 MiB each way through a relay, intact, with byte counts; splice and fallback") {
  constexpr std::uint64_t kTotal = 16 << 20;
  const std::uint64_t up_sum = pattern_checksum(21, kTotal), down_sum = pattern_checksum(22, kTotal);
  for_each_backend([&](fiberio::BackendKind kind) {
    for (const bool splice : {true, false}) {
      CAPTURE(splice);
      fiberio::Runtime rt{fiberio::Config{.threads = 2, .backend = kind}};
      rt.block_on([&] {
        Relay r = make_relay();
        auto proxy = fiberio::spawn([&] {
          return fiberio::copy_bidirectional(r.downstream, r.upstream,
                                             {.use_splice = splice, .chunk_size = 40'000});
        });
        auto client_writer = fiberio::spawn([&] {
          send_pattern(r.client, 21, kTotal);
          REQUIRE(r.client.shutdown_write());
        });
        auto server_writer = fiberio::spawn([&] {
          send_pattern(r.server, 22, kTotal);
          REQUIRE(r.server.shutdown_write());
        });
        auto at_server = fiberio::spawn([&] { return drain(r.server); });
        const Checksum at_client = drain(r.client);
        const Checksum server_got = at_server.join();
        client_writer.join();
        server_writer.join();
        auto moved = proxy.join();
        REQUIRE_MESSAGE(moved, moved.error().message());
        CHECK(moved->a_to_b == kTotal);
        CHECK(moved->b_to_a == kTotal);
        CHECK(server_got.value() == up_sum);
        CHECK(at_client.value() == down_sum);
      });
    }
  });
}

TEST_CASE("copy: a half-close passes through, and the other direction keeps flowing") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          Relay r = make_relay();
          auto proxy = fiberio::spawn([&] { return fiberio::copy_bidirectional(r.downstream, r.upstream); });
          // The client sends a request and half-closes; the server sees the end, then answers at length.
          REQUIRE(r.client.write_all("request"));
          REQUIRE(r.client.shutdown_write());
          std::array<std::byte, 7> request;
          REQUIRE(r.server.read_exact(request, fiberio::Clock::now() + 5s));
          CHECK(text(request) == "request");
          std::array<std::byte, 1> end;
          CHECK(*r.server.read_some(end, fiberio::Clock::now() + 5s) == 0u);  // the half-close arrived
          for (int i = 0; i < 100; ++i)
            REQUIRE(r.server.write_all("answer line\n"));
          REQUIRE(r.server.shutdown_write());
          const Checksum answer = drain(r.client);
          CHECK(answer.size() == 1200u);
          auto moved = proxy.join();
          REQUIRE(moved);
          CHECK(moved->a_to_b == 7u);
          CHECK(moved->b_to_a == 1200u);

          // The other way round: the server half-closes first, the client keeps talking.
          Relay r2 = make_relay();
          auto proxy2 =
              fiberio::spawn([&] { return fiberio::copy_bidirectional(r2.downstream, r2.upstream); });
          REQUIRE(r2.server.write_all("banner"));
          REQUIRE(r2.server.shutdown_write());
          std::array<std::byte, 6> banner;
          REQUIRE(r2.client.read_exact(banner, fiberio::Clock::now() + 5s));
          CHECK(*r2.client.read_some(end, fiberio::Clock::now() + 5s) == 0u);
          REQUIRE(r2.client.write_all("late words"));
          REQUIRE(r2.client.shutdown_write());
          std::array<std::byte, 10> late;
          REQUIRE(r2.server.read_exact(late, fiberio::Clock::now() + 5s));
          CHECK(text(late) == "late words");
          auto moved2 = proxy2.join();
          REQUIRE(moved2);
          CHECK(moved2->a_to_b == 10u);
          CHECK(moved2->b_to_a == 6u);
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("copy: a reset on one side ends the copy with the error; no SIGPIPE") {
  for_each_backend([](fiberio::BackendKind kind) {
    for (const bool splice : {true, false}) {
      CAPTURE(splice);
      fiberio::block_on(
          [splice] {
            Relay r = make_relay();
            fiberio::CopyReport report;
            auto proxy = fiberio::spawn([&] {
              return fiberio::copy_bidirectional(r.downstream, r.upstream, {.use_splice = splice}, report);
            });
            // The server dies abruptly while the client streams data at it.
            std::array<std::byte, 1000> some;
            auto pump = fiberio::spawn([&] {
              std::vector<std::byte> chunk(64 * 1024);
              for (int i = 0; i < 4096; ++i) {  // bounded: 256 MiB at most
                if (!r.client.write_all(chunk)) return;
              }
            });
            REQUIRE(r.server.read_exact(some, fiberio::Clock::now() + 5s));
            REQUIRE(r.server.set_linger(0s));
            r.server.close();
            auto moved = proxy.join();
            REQUIRE_FALSE(moved);
            CHECK_MESSAGE(
                (moved.error() == std::errc::connection_reset || moved.error() == std::errc::broken_pipe),
                moved.error().message());
            CHECK(report.failed == fiberio::CopyReport::Side::b);  // the upstream side's socket failed
            CHECK(report.a_to_b >= some.size());
            r.client.close();  // unblocks the pump (it writes to a closed fd: EBADF)
            pump.join();
          },
          fiberio::Config{.backend = kind});
    }
  });
}

TEST_CASE("copy: idle timeout ends a silent relay, but not one that talks in one direction only") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          Relay r = make_relay();
          const auto start = fiberio::Clock::now();
          auto silent = fiberio::copy_bidirectional(r.downstream, r.upstream, {.idle_timeout = 50ms});
          REQUIRE_FALSE(silent);
          CHECK(silent.error() == std::errc::timed_out);
          CHECK(fiberio::Clock::now() - start >= 50ms);

          // The server trickles bytes (every 10 ms, 30 times): the client->server side is silent all
          // along, yet the relay lives, because idleness counts both directions.
          Relay r2 = make_relay();
          auto talker = fiberio::spawn([&] {
            for (int i = 0; i < 30; ++i) {
              REQUIRE(r2.server.write_all("."));
              fiberio::sleep_for(10ms);
            }
            REQUIRE(r2.server.shutdown_write());
          });
          auto listener = fiberio::spawn([&] {
            CHECK(drain(r2.client).size() == 30u);
            REQUIRE(r2.client.shutdown_write());  // ... and then the client is done too
          });
          auto moved = fiberio::copy_bidirectional(r2.downstream, r2.upstream, {.idle_timeout = 200ms});
          talker.join();
          listener.join();
          REQUIRE_MESSAGE(moved, moved.error().message());
          CHECK(moved->b_to_a == 30u);
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("copy: a cancelled relay stops both directions") {
  fiberio::block_on([] {
    Relay r = make_relay();
    auto proxy = fiberio::spawn([&] { return fiberio::copy_bidirectional(r.downstream, r.upstream); });
    fiberio::sleep_for(5ms);
    proxy.cancel();
    CHECK_THROWS_AS(proxy.join(), fiberio::Cancelled);
    // The relay's ends are still ours and usable.
    REQUIRE(r.upstream.write_all("direct"));
    std::array<std::byte, 6> buf;
    REQUIRE(r.server.read_exact(buf, fiberio::Clock::now() + 5s));
    CHECK(text(buf) == "direct");
  });
}

TEST_CASE("copy: Unix sockets relay too") {
  fiberio::block_on([] {
    auto p1 = fiberio::socketpair();
    auto p2 = fiberio::socketpair();
    REQUIRE(p1);
    REQUIRE(p2);
    auto& [client, downstream] = *p1;
    auto& [upstream, server] = *p2;
    auto proxy = fiberio::spawn([&] { return fiberio::copy_bidirectional(downstream, upstream); });
    REQUIRE(client.write_all("via unix"));
    REQUIRE(client.shutdown_write());
    const Checksum got = drain(server);
    CHECK(got.size() == 8u);
    REQUIRE(server.write_all("back"));
    REQUIRE(server.shutdown_write());
    CHECK(drain(client).size() == 4u);
    auto moved = proxy.join();
    REQUIRE(moved);
    CHECK(moved->a_to_b == 8u);
    CHECK(moved->b_to_a == 4u);
  });
}

namespace {

// The process's open pipe fds (splice's pipes), from /proc/self/fd.
std::size_t open_pipes() {
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(entry.path(), ec);
    if (!ec && target.string().starts_with("pipe:")) ++n;
  }
  return n;
}

// One request/response of `size` bytes: client -> server, then the server sends it back.
void round_trip(Relay& r, std::size_t size, std::uint64_t seed) {
  std::vector<std::byte> out(size), got(size), back(size);
  fill_pattern(out, seed, 0);
  auto writer = fiberio::spawn([&] { REQUIRE(r.client.write_all(out)); });
  REQUIRE(r.server.read_exact(got, fiberio::Clock::now() + 10s));
  writer.join();
  auto echo = fiberio::spawn([&] { REQUIRE(r.server.write_all(got)); });
  REQUIRE(r.client.read_exact(back, fiberio::Clock::now() + 10s));
  echo.join();
  CHECK(back == out);
}

}  // namespace

TEST_CASE("copy: small messages go through no pipe; a large transfer's pipe goes back to the pool") {
  fiberio::block_on([] {
    constexpr int kRelays = 8;
    const std::size_t before = open_pipes();
    std::vector<Relay> relays;
    std::vector<fiberio::JoinHandle<fiberio::IoResult<fiberio::CopyResult>>> proxies;
    for (int i = 0; i < kRelays; ++i)
      relays.push_back(make_relay());
    for (auto& r : relays)
      proxies.push_back(
          fiberio::spawn([&r] { return fiberio::copy_bidirectional(r.downstream, r.upstream); }));
    for (int round = 0; round < 20; ++round)
      for (auto& r : relays)
        round_trip(r, 64, static_cast<std::uint64_t>(round));
    // Every direction of every relay has moved bytes and now waits: none holds a pipe (a pipe per
    // direction would be 4 fds per relay).
    CHECK(open_pipes() <= before);
    // A large transfer on one relay splices, then its pipes (empty) go back to this thread's pool: at
    // most one per direction stays open.
    round_trip(relays[0], 1 << 20, 99);
    round_trip(relays[0], 64, 100);
    CHECK(open_pipes() <= before + 4);
    for (auto& r : relays) {
      REQUIRE(r.client.shutdown_write());
      REQUIRE(r.server.shutdown_write());
    }
    for (auto& p : proxies) {
      auto moved = p.join();
      REQUIRE(moved);
    }
  });
}

TEST_CASE("copy: messages of every size across the small/large switch, intact; splice and fallback") {
  const std::size_t sizes[] = {1, 64, 4095, 4096, 4097, 8192, 65'536, 65'537, 300'000, 64, 1 << 20, 3};
  for_each_backend([&](fiberio::BackendKind kind) {
    for (const bool splice : {true, false}) {
      fiberio::block_on(
          [&] {
            Relay r = make_relay();
            auto proxy = fiberio::spawn([&] {
              return fiberio::copy_bidirectional(r.downstream, r.upstream,
                                                 {.use_splice = splice, .chunk_size = 40'000});
            });
            std::uint64_t total = 0, seed = 1;
            for (const std::size_t size : sizes) {
              round_trip(r, size, seed++);
              total += size;
            }
            REQUIRE(r.client.shutdown_write());
            REQUIRE(r.server.shutdown_write());
            auto moved = proxy.join();
            REQUIRE(moved);
            CHECK(moved->a_to_b == total);
            CHECK(moved->b_to_a == total);
          },
          fiberio::Config{.backend = kind});
    }
  });
}

TEST_CASE(
    "copy: a peer that never answers ends the copy with no_response; one that answers in time does not") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          // The server reads the request and stays silent (a hung upstream).
          Relay r = make_relay();
          const auto start = fiberio::Clock::now();
          auto proxy = fiberio::spawn([&] {
            return fiberio::copy_bidirectional(r.downstream, r.upstream, {.response_timeout = 100ms});
          });
          REQUIRE(r.client.write_all("request"));
          std::array<std::byte, 7> request;
          REQUIRE(r.server.read_exact(request, fiberio::Clock::now() + 5s));
          auto silent = proxy.join();
          REQUIRE_FALSE(silent);
          CHECK(silent.error() == fiberio::NetErrc::no_response);
          CHECK(fiberio::Clock::now() - start >= 100ms);

          // A server that answers after 30 ms is within the limit; the copy then runs on until both
          // ends close, however long that takes (the limit is on the first answer only).
          Relay r2 = make_relay();
          auto proxy2 = fiberio::spawn([&] {
            return fiberio::copy_bidirectional(r2.downstream, r2.upstream, {.response_timeout = 100ms});
          });
          REQUIRE(r2.client.write_all("request"));
          REQUIRE(r2.server.read_exact(request, fiberio::Clock::now() + 5s));
          fiberio::sleep_for(30ms);
          REQUIRE(r2.server.write_all("answer"));
          std::array<std::byte, 6> answer;
          REQUIRE(r2.client.read_exact(answer, fiberio::Clock::now() + 5s));
          fiberio::sleep_for(250ms);  // silence from both sides now: no idle timeout was set
          REQUIRE(r2.client.shutdown_write());
          REQUIRE(r2.server.shutdown_write());
          auto moved = proxy2.join();
          REQUIRE_MESSAGE(moved, moved.error().message());
          CHECK(moved->a_to_b == 7u);
          CHECK(moved->b_to_a == 6u);
        },
        fiberio::Config{.backend = kind});
  });
}

TEST_CASE("copy: after a half-close, a side that never answers is reaped by the idle timeout") {
  fiberio::block_on([] {
    Relay r = make_relay();
    const auto start = fiberio::Clock::now();
    auto proxy = fiberio::spawn(
        [&] { return fiberio::copy_bidirectional(r.downstream, r.upstream, {.idle_timeout = 80ms}); });
    REQUIRE(r.client.write_all("bye"));
    REQUIRE(r.client.shutdown_write());  // the client is done; the server reads and never answers
    std::array<std::byte, 3> got;
    REQUIRE(r.server.read_exact(got, fiberio::Clock::now() + 5s));
    auto moved = proxy.join();
    REQUIRE_FALSE(moved);
    CHECK(moved.error() == std::errc::timed_out);
    const auto took = fiberio::Clock::now() - start;
    CHECK(took >= 80ms);
    CHECK(took < 5s);
  });
}

TEST_CASE("copy: the report names the side whose socket failed, and none for a clean end") {
  fiberio::block_on([] {
    // The client resets: side a.
    Relay r = make_relay();
    fiberio::CopyReport report;
    auto proxy =
        fiberio::spawn([&] { return fiberio::copy_bidirectional(r.downstream, r.upstream, {}, report); });
    REQUIRE(r.client.write_all("hello"));
    std::array<std::byte, 5> got;
    REQUIRE(r.server.read_exact(got, fiberio::Clock::now() + 5s));
    REQUIRE(r.server.write_all("reply"));
    REQUIRE(r.client.read_exact(got, fiberio::Clock::now() + 5s));
    REQUIRE(r.client.set_linger(0s));
    r.client.close();
    auto moved = proxy.join();
    REQUIRE_FALSE(moved);
    CHECK(report.failed == fiberio::CopyReport::Side::a);
    CHECK(report.a_to_b == 5u);
    CHECK(report.b_to_a == 5u);

    // Both sides end cleanly: none, and the counts.
    Relay r2 = make_relay();
    fiberio::CopyReport clean;
    auto proxy2 =
        fiberio::spawn([&] { return fiberio::copy_bidirectional(r2.downstream, r2.upstream, {}, clean); });
    REQUIRE(r2.client.write_all("abc"));
    REQUIRE(r2.client.shutdown_write());
    REQUIRE(r2.server.shutdown_write());
    CHECK(drain(r2.server).size() == 3u);
    CHECK(drain(r2.client).size() == 0u);
    auto moved2 = proxy2.join();
    REQUIRE(moved2);
    CHECK(clean.failed == fiberio::CopyReport::Side::none);
    CHECK(clean.a_to_b == 3u);
  });
}

// A direction that fails at once can make the copy cancel the other one before that fiber ever ran (one
// worker: the woken caller runs before the queued direction). A fiber cancelled before it runs never
// enters its body, so the copy must not wait for a report from that body: it waited forever (the soak,
// tests/apps/test_soak.py, found proxied connections kept after their clients reset).
TEST_CASE("copy: a client that reset before the relay started ends it at once, even on one worker") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::block_on(
        [] {
          for (int round = 0; round < 20; ++round) {
            Relay r = make_relay();
            const std::array<std::byte, 100> some{};
            REQUIRE(r.client.write_all(some));
            REQUIRE(r.client.set_linger(0s));
            r.client.close();  // a reset waits on the proxy's end before the relay starts
            fiberio::sleep_for(1ms);
            auto proxy =
                fiberio::spawn([&] { return fiberio::copy_bidirectional(r.downstream, r.upstream); });
            const bool ended = proxy.wait_until(fiberio::Clock::now() + 5s);
            CHECK(ended);
            if (!ended) {  // the bug: it would wait forever
              proxy.cancel();
              while (!proxy.wait_until(fiberio::Clock::now() + 1s)) {
              }
              return;  // the handle's fiber ended cancelled; dropping the handle detaches nothing left
            }
            auto moved = proxy.join();
            REQUIRE_FALSE(moved);
            CHECK(moved.error() == std::errc::connection_reset);
          }
        },
        fiberio::Config{.threads = 1, .backend = kind});
  });
}
