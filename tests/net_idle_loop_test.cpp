// Idle loops (runtime/idle_loop.hpp): connections served by a handler that holds a stack only while it
// runs. Every byte echoed exactly through idle -> busy -> idle cycles, with the stacks really released
// between them (the workers' stacks_released counter); a handler that waits mid-request keeps its stack;
// cancellation, shutdown and the idle timeout reach a loop at its idle point with and without a stack;
// and a stress where wake-ups race the release passes (run under TSan and ASan in CI).
#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>
#include "net_support.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <vector>

using namespace std::chrono_literals;
using namespace net_test;

namespace {

// A handler's first read: nothing when bytes came (into `buf`), else what the handler returns (wait
// when drained, stop at the end of stream or an error).
std::optional<fiberio::Next> nothing_to_read(fiberio::TcpStream& stream, std::span<std::byte> buf) {
  auto n = stream.try_read(buf);
  if (!n) {
    return n.error() == std::errc::resource_unavailable_try_again ? fiberio::Next::wait : fiberio::Next::stop;
  }
  if (*n == 0) return fiberio::Next::stop;
  return std::nullopt;
}

std::uint64_t stacks_released(const fiberio::Runtime& rt) {
  std::uint64_t n = 0;
  for (const auto& w : rt.stats())
    n += w.stacks_released;
  return n;
}

// Waits (from a fiber) until at least `n` stacks were released in all; false after 10 s.
bool wait_released(const fiberio::Runtime& rt, std::uint64_t n) {
  for (int i = 0; i < 2000 && stacks_released(rt) < n; ++i)
    fiberio::sleep_for(5ms);
  return stacks_released(rt) >= n;
}

// One request: `size` bytes of pattern `seed` out, the same back.
void round_trip(fiberio::TcpStream& client, std::uint64_t seed, std::size_t size) {
  std::vector<std::byte> out(size), in(size);
  fill_pattern(out, seed, 0);
  auto writer = fiberio::spawn([&] { REQUIRE(client.write_all(out)); });
  REQUIRE(client.read_exact(in, fiberio::Clock::now() + 10s));
  writer.join();
  REQUIRE(in == out);
}

// Accepts `n` connections into idle loops running `handler`.
template <class Handler>
std::vector<fiberio::JoinHandle<void>> serve(fiberio::TcpListener& listener, std::size_t n, Handler handler,
                                             fiberio::IdleLoopOptions options = {}) {
  std::vector<fiberio::JoinHandle<void>> loops;
  for (std::size_t i = 0; i < n; ++i) {
    auto conn = listener.accept(fiberio::Clock::now() + 10s);
    REQUIRE(conn);
    REQUIRE(conn->stream.set_nodelay(true));  // echoed pieces must not wait for an ACK (Nagle)
    loops.push_back(fiberio::spawn_idle_loop(std::move(conn->stream), handler, options));
  }
  return loops;
}

std::vector<fiberio::TcpStream> connect_all(const fiberio::SocketAddress& to, std::size_t n) {
  std::vector<fiberio::TcpStream> clients;
  for (std::size_t i = 0; i < n; ++i) {
    auto c = fiberio::TcpStream::connect(to);
    REQUIRE(c);
    REQUIRE(c->set_nodelay(true));
    clients.push_back(std::move(*c));
  }
  return clients;
}

// The peer's end of stream within 10 s.
void expect_eof(fiberio::TcpStream& client) {
  std::byte b[16];
  auto n = client.read_some(b, fiberio::Clock::now() + 10s);
  REQUIRE(n);
  CHECK(*n == 0);
}

}  // namespace

TEST_CASE("idle loop: idle -> busy -> idle cycles echo every byte, and idle stacks are released") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::Runtime rt{fiberio::Config{.threads = 2, .backend = kind, .idle_stack_release = 10ms}};
    rt.block_on([&] {
      constexpr std::size_t kConns = 16;
      auto listener = listen_loopback();
      auto server = fiberio::spawn([&] { return serve(listener, kConns, echo_ready); });
      auto clients = connect_all(address_of(listener), kConns);
      auto loops = server.join();
      for (std::uint64_t cycle = 0; cycle < 3; ++cycle) {
        const std::uint64_t before = stacks_released(rt);
        // Busy: every connection at once, sizes from one byte to more than a socket buffer (the handler
        // then waits in write_all, with its stack).
        std::vector<fiberio::JoinHandle<void>> busy;
        for (std::size_t i = 0; i < kConns; ++i) {
          busy.push_back(fiberio::spawn([&, i] {
            const std::size_t sizes[] = {1, 64, 3000, 700'000};
            for (std::size_t size : sizes)
              round_trip(clients[i], cycle * 1000 + i, size);
          }));
        }
        for (auto& b : busy)
          b.join();
        // Idle: every loop gives its stack back within a few periods.
        CHECK(wait_released(rt, before + kConns));
      }
      for (auto& c : clients)
        REQUIRE(c.shutdown_write());
      for (auto& c : clients)
        expect_eof(c);  // the handler saw the end of stream on a stack it got back
      for (auto& l : loops)
        l.join();
    });
  });
}

TEST_CASE("idle loop: a handler that waits mid-request keeps its stack") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2, .idle_stack_release = 5ms}};
  rt.block_on([&] {
    auto listener = listen_loopback();
    std::atomic<std::uint64_t> released_during_wait{~std::uint64_t{0}};
    auto handler = [&](fiberio::TcpStream& s) {
      std::byte b[1];
      if (const auto next = nothing_to_read(s, b)) return *next;
      // A frame full of state, then a wait of many release periods: the stack must stay.
      volatile std::uint64_t on_stack[512];
      for (std::size_t i = 0; i < 512; ++i)
        on_stack[i] = i * 0x9E3779B97F4A7C15ull;
      const std::uint64_t before = stacks_released(rt);
      fiberio::sleep_for(100ms);
      released_during_wait = stacks_released(rt) - before;
      bool intact = true;
      for (std::size_t i = 0; i < 512; ++i)
        intact = intact && on_stack[i] == i * 0x9E3779B97F4A7C15ull;
      const std::byte reply[1] = {intact ? std::byte{'y'} : std::byte{'n'}};
      if (!s.write_all(reply)) return fiberio::Next::stop;
      return fiberio::Next::wait;
    };
    auto server = fiberio::spawn([&] { return serve(listener, 1, handler); });
    auto clients = connect_all(address_of(listener), 1);
    auto loops = server.join();
    REQUIRE(clients[0].write_all(bytes("x")));
    std::byte reply[1];
    REQUIRE(clients[0].read_exact(reply, fiberio::Clock::now() + 10s));
    CHECK(reply[0] == std::byte{'y'});
    CHECK(released_during_wait.load() == 0);
    // And once it is back at its idle point, it does give the stack back.
    CHECK(wait_released(rt, 1));
    REQUIRE(clients[0].write_all(bytes("x")));
    REQUIRE(clients[0].read_exact(reply, fiberio::Clock::now() + 10s));
    CHECK(reply[0] == std::byte{'y'});
    loops[0].cancel();
    CHECK_THROWS_AS(loops[0].join(), fiberio::Cancelled);
  });
}

TEST_CASE("idle loop: a stack is released only in the idle wait that is open, once") {
  // The release passes' races, stretched out: a ticket seen at the idle point is offered again after the
  // loop moved on into a wait inside its handler (whose frames are live), and after the release.
  fiberio::Runtime rt{fiberio::Config{.threads = 2, .idle_stack_release = 0ms}};  // no passes: by hand
  rt.block_on([&] {
    auto listener = listen_loopback();
    std::atomic<fiberio::detail::Fiber*> self{nullptr};
    std::atomic<bool> sleeping{false};
    auto handler = [&](fiberio::TcpStream& s) {
      self = fiberio::detail::Fiber::current();
      std::byte b[1];
      if (const auto next = nothing_to_read(s, b)) return *next;
      volatile std::uint64_t on_stack[256];
      for (std::size_t i = 0; i < 256; ++i)
        on_stack[i] = i;
      sleeping = true;
      fiberio::sleep_for(50ms);  // a wait that is not the idle one
      sleeping = false;
      bool intact = true;
      for (std::size_t i = 0; i < 256; ++i)
        intact = intact && on_stack[i] == i;
      const std::byte reply[1] = {intact ? std::byte{'y'} : std::byte{'n'}};
      return s.write_all(reply) ? fiberio::Next::wait : fiberio::Next::stop;
    };
    auto server = fiberio::spawn([&] { return serve(listener, 1, handler); });
    auto clients = connect_all(address_of(listener), 1);
    auto loops = server.join();
    auto idle_ticket = [&] {
      std::uint64_t ticket = 0;
      for (int i = 0; i < 2000 && (!self.load() || (ticket = self.load()->open_idle_wait()) == 0); ++i)
        fiberio::sleep_for(1ms);
      REQUIRE(ticket != 0);
      return ticket;
    };
    std::byte reply[1];
    for (int round = 0; round < 3; ++round) {
      const std::uint64_t seen = idle_ticket();
      REQUIRE(clients[0].write_all(bytes("x")));
      for (int i = 0; i < 2000 && !sleeping.load(); ++i)
        fiberio::sleep_for(1ms);
      REQUIRE(sleeping.load());
      CHECK_FALSE(self.load()->release_idle_stack(seen));  // moved on: its frames are live
      REQUIRE(clients[0].read_exact(reply, fiberio::Clock::now() + 10s));
      CHECK(reply[0] == std::byte{'y'});
      // Back at the idle point: released once, then the same offer again is refused.
      const std::uint64_t now_idle = idle_ticket();
      CHECK(self.load()->release_idle_stack(now_idle));
      CHECK_FALSE(self.load()->release_idle_stack(now_idle));
    }
    REQUIRE(clients[0].shutdown_write());  // seen by a handler on a fresh stack: the loop ends
    loops[0].join();
  });
}

TEST_CASE("idle loop: cancellation at the idle point, with and without a stack, and while busy") {
  for (const auto release : {std::chrono::milliseconds{0}, std::chrono::milliseconds{5}}) {
    const bool released = release.count() > 0;
    CAPTURE(released);
    fiberio::Runtime rt{fiberio::Config{.threads = 2, .idle_stack_release = release}};
    rt.block_on([&] {
      auto listener = listen_loopback();
      std::atomic<int> in_handler{0};
      auto handler = [&](fiberio::TcpStream& s) {
        std::byte b[8];
        if (const auto next = nothing_to_read(s, b)) return *next;
        ++in_handler;
        fiberio::sleep_for(1h);  // busy for good: only a cancellation ends it
        return fiberio::Next::stop;
      };
      auto server = fiberio::spawn([&] { return serve(listener, 2, handler); });
      auto clients = connect_all(address_of(listener), 2);
      auto loops = server.join();
      if (released) {
        REQUIRE(wait_released(rt, 2));
      } else {
        fiberio::sleep_for(20ms);
        CHECK(stacks_released(rt) == 0);
      }
      // Idle: cancelled at the idle point.
      loops[0].cancel();
      CHECK_THROWS_AS(loops[0].join(), fiberio::Cancelled);
      expect_eof(clients[0]);
      // Busy: cancelled inside the handler.
      REQUIRE(clients[1].write_all(bytes("go")));
      for (int i = 0; i < 2000 && in_handler.load() == 0; ++i)
        fiberio::sleep_for(1ms);
      REQUIRE(in_handler.load() == 1);
      loops[1].cancel();
      CHECK_THROWS_AS(loops[1].join(), fiberio::Cancelled);
      expect_eof(clients[1]);
    });
  }
}

TEST_CASE("idle loop: shutdown ends idle loops with and without stacks, and busy ones") {
  // Plain blocking client sockets: they outlive the runtime, and its end must close the server's side.
  std::vector<int> clients;
  {
    fiberio::Runtime rt{fiberio::Config{.threads = 2, .idle_stack_release = 5ms}};
    std::atomic<bool> busy_started{false};
    rt.block_on([&] {
      auto listener = listen_loopback();
      auto handler = [&](fiberio::TcpStream& s) {
        std::byte b[8];
        if (const auto next = nothing_to_read(s, b)) return *next;
        busy_started = true;
        fiberio::sleep_for(1h);
        return fiberio::Next::stop;
      };
      auto server = fiberio::spawn([&] {
        for (auto& l : serve(listener, 3, handler))
          l.detach();
      });
      const fiberio::SocketAddress to = address_of(listener);
      for (int i = 0; i < 3; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        REQUIRE(::connect(fd, to.data(), to.size()) == 0);  // loopback: done at once, from the backlog
        clients.push_back(fd);
      }
      server.join();
      REQUIRE(wait_released(rt, 2));  // two of them surely idle without a stack
      REQUIRE(::send(clients[2], "go", 2, MSG_NOSIGNAL) == 2);
      for (int i = 0; i < 2000 && !busy_started.load(); ++i)
        fiberio::sleep_for(1ms);
      REQUIRE(busy_started.load());
    });
    CHECK(rt.shutdown(10s));
    CHECK(rt.live_fibers() == 0);
  }
  // Every connection was closed by its loop's end.
  for (const int fd : clients) {
    const timeval limit{10, 0};
    REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) == 0);
    char b[8];
    CHECK(::recv(fd, b, sizeof b, 0) == 0);
    ::close(fd);
  }
}

TEST_CASE("idle loop: the idle timeout ends a loop whose stack was released") {
  fiberio::Runtime rt{fiberio::Config{.threads = 1, .idle_stack_release = 5ms}};
  rt.block_on([&] {
    auto listener = listen_loopback();
    auto server = fiberio::spawn(
        [&] { return serve(listener, 1, echo_ready, fiberio::IdleLoopOptions{.idle_timeout = 200ms}); });
    auto clients = connect_all(address_of(listener), 1);
    auto loops = server.join();
    round_trip(clients[0], 7, 100);
    const auto started = fiberio::Clock::now();
    expect_eof(clients[0]);
    CHECK(fiberio::Clock::now() - started >= 150ms);  // not before the timeout (robust lower bound)
    CHECK(stacks_released(rt) >= 1);                  // it had gone idle long before
    loops[0].join();                                  // a timeout is a normal end
  });
}

TEST_CASE("idle loop: stress, wake-ups racing stack releases on 2 stealing workers") {
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::Runtime rt{fiberio::Config{.threads = 2, .backend = kind, .idle_stack_release = 1ms}};
    rt.block_on([&] {
      constexpr std::size_t kConns = 24;
      constexpr int kRequests = 150;
      auto listener = listen_loopback();
      auto server = fiberio::spawn([&] { return serve(listener, kConns, echo_ready); });
      auto clients = connect_all(address_of(listener), kConns);
      auto loops = server.join();
      std::vector<fiberio::JoinHandle<void>> load;
      for (std::size_t i = 0; i < kConns; ++i) {
        load.push_back(fiberio::spawn([&, i] {
          std::mt19937_64 rng(i);
          for (int r = 0; r < kRequests; ++r) {
            round_trip(clients[i], i * 100'000 + r, 1 + rng() % 5000);
            // Pauses around the release period, so requests land before, during and after releases.
            if (rng() % 3 == 0) fiberio::sleep_for(std::chrono::microseconds(rng() % 3000));
          }
        }));
      }
      for (auto& l : load)
        l.join();
      CHECK(stacks_released(rt) > 0);
      for (auto& c : clients)
        REQUIRE(c.shutdown_write());
      for (auto& c : clients)
        expect_eof(c);
      for (auto& l : loops)
        l.join();
    });
  });
}
