// Every byte intact through a misbehaving backend (reactor/fault_injection.hpp): spurious, delayed and
// duplicated readiness and early wake-ups, seeded, over each built-in backend. Workloads: many echo
// connections in fibers and in idle loops (stacks released and taken again), and a relay
// (copy_bidirectional) carrying megabytes both ways. A failure names the seed and the backend (CAPTURE,
// outside the fibers); rerun with that seed to reproduce the fault stream.
#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>
#include "net_support.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

using namespace std::chrono_literals;
using namespace net_test;

namespace {

constexpr std::uint64_t kSeeds[] = {1, 2, 3};

fiberio::Config faulty(fiberio::BackendKind kind, std::uint64_t seed) {
  return fiberio::Config{
      .threads = 2,
      .backend_factory =
          [kind, seed] {
            std::error_code ec;
            return fiberio::make_fault_injecting_backend(
                fiberio::make_backend(kind, ec),
                fiberio::FaultPlan{
                    .seed = seed, .spurious = 0.2, .delay = 0.2, .duplicate = 0.2, .empty_wake = 0.1});
          },
      .idle_stack_release = 1ms};
}

void echo_fiber(fiberio::TcpStream stream) {
  std::byte buf[4096];
  for (;;) {
    auto n = stream.read_some(buf);
    if (!n || *n == 0) break;
    if (!stream.write_all(std::span(buf).first(*n))) return;
  }
  (void)stream.shutdown_write();
}

// `conns` clients each send `bytes` of their own pattern and check the echo, half the connections served
// by idle loops and half by fibers.
void echo_workload(int conns, std::uint64_t bytes) {
  auto listener = listen_loopback();
  auto server = fiberio::spawn([&] {
    std::vector<fiberio::JoinHandle<void>> served;
    for (int i = 0; i < conns; ++i) {
      auto c = listener.accept(fiberio::Clock::now() + 30s);
      REQUIRE(c);
      if (i % 2 == 0) {
        served.push_back(fiberio::spawn_idle_loop(std::move(c->stream), echo_ready));
      } else {
        served.push_back(fiberio::spawn([s = std::move(c->stream)]() mutable { echo_fiber(std::move(s)); }));
      }
    }
    for (auto& s : served)
      s.join();
  });
  std::vector<fiberio::JoinHandle<void>> clients;
  for (int i = 0; i < conns; ++i) {
    clients.push_back(fiberio::spawn([&, i] {
      auto c = fiberio::TcpStream::connect(address_of(listener));
      REQUIRE(c);
      auto writer = fiberio::spawn([&] {
        send_pattern(*c, 100 + i, bytes);
        REQUIRE(c->shutdown_write());
      });
      const Checksum got = drain(*c);
      writer.join();
      CHECK(got.size() == bytes);
      CHECK(got.value() == pattern_checksum(100 + i, bytes));
    }));
  }
  for (auto& c : clients)
    c.join();
  server.join();
}

}  // namespace

TEST_CASE("faults: echo in fibers and idle loops, every byte intact") {
  for_each_backend([](fiberio::BackendKind kind) {
    for (const std::uint64_t seed : kSeeds) {
      CAPTURE(seed);
      fiberio::Runtime rt{faulty(kind, seed)};
      rt.block_on([] { echo_workload(24, 300'000); });
    }
  });
}

TEST_CASE("faults: a relay carries 4 MiB each way intact") {
  constexpr std::uint64_t kTotal = 4 << 20;
  for_each_backend([&](fiberio::BackendKind kind) {
    for (const std::uint64_t seed : kSeeds) {
      CAPTURE(seed);
      fiberio::Runtime rt{faulty(kind, seed)};
      rt.block_on([&] {
        auto front = listen_loopback();
        auto back = listen_loopback();
        auto client = fiberio::TcpStream::connect(address_of(front));
        REQUIRE(client);
        auto down = front.accept(fiberio::Clock::now() + 10s);
        REQUIRE(down);
        auto up = fiberio::TcpStream::connect(address_of(back));
        REQUIRE(up);
        auto server = back.accept(fiberio::Clock::now() + 10s);
        REQUIRE(server);
        auto relay = fiberio::spawn([&] { return fiberio::copy_bidirectional(down->stream, *up); });
        auto client_writer = fiberio::spawn([&] {
          send_pattern(*client, 7, kTotal);
          REQUIRE(client->shutdown_write());
        });
        auto server_writer = fiberio::spawn([&] {
          send_pattern(server->stream, 8, kTotal);
          REQUIRE(server->stream.shutdown_write());
        });
        auto at_server = fiberio::spawn([&] { return drain(server->stream); });
        const Checksum at_client = drain(*client);
        const Checksum server_got = at_server.join();
        client_writer.join();
        server_writer.join();
        auto moved = relay.join();
        REQUIRE_MESSAGE(moved, moved.error().message());
        CHECK(moved->a_to_b == kTotal);
        CHECK(moved->b_to_a == kTotal);
        CHECK(server_got.value() == pattern_checksum(7, kTotal));
        CHECK(at_client.value() == pattern_checksum(8, kTotal));
      });
    }
  });
}

TEST_CASE("faults: the injector is reproducible and does inject") {
  // The same seed and the same calls give the same events; a plan with every fault on changes what a
  // quiet backend reports (spurious events for a registered fd, early empty wakes).
  auto run = [](std::uint64_t seed) {
    std::error_code ec;
    auto b = fiberio::make_fault_injecting_backend(fiberio::make_backend(fiberio::BackendKind::epoll, ec),
                                                   fiberio::FaultPlan{.seed = seed, .spurious = 0.5});
    REQUIRE(b);
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    REQUIRE_FALSE(b->add(p[0], 77));
    std::vector<int> seen;
    std::vector<fiberio::ReadinessEvent> out(8);
    for (int i = 0; i < 64; ++i) {
      const std::size_t n = b->wait(out, std::chrono::nanoseconds::zero());
      seen.push_back(static_cast<int>(n));
      for (std::size_t k = 0; k < n; ++k)
        CHECK(out[k].token == 77);  // nothing but the one registered fd
    }
    b->remove(p[0]);
    ::close(p[0]);
    ::close(p[1]);
    return seen;
  };
  const auto a = run(5), b = run(5), c = run(6);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(std::count(a.begin(), a.end(), 1) > 10);  // spurious readiness of a pipe nobody wrote to
}
