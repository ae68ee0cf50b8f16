// Repros of two core issues found while building net/; both are fixed in the core now, and these stay
// as regression tests.
//
// 1. WakeChannel lost wake-up (fixed in 1e335cb: drain() reads before it clears `pending_`). drain() used
//    to clear `pending_` and then read the eventfd. A notify() landing between the two wrote a second 1
//    that the read swallowed, leaving pending_ == true with nothing in the fd: every later notify() then
//    skipped its write, and the worker slept through every unpark until some unrelated fd event or timer.
//    Seen as a Runtime whose destructor hung (a worker parked in ppoll with only the wake fd, never woken
//    after shutdown) in net_many_test, about 1 run in 20. The test hammers notify() against a worker-like
//    poll+drain loop; before the fix it failed in 2 runs out of 3.
//
// 2. AsyncFd's first registration was not synchronised (fixed in be57081). ensure_registered() read and
//    wrote `source_` without synchronisation, although async_fd.hpp promises that "one AsyncFd may be read
//    by one fiber and written by another at the same time": when those two fibers made their first call
//    at about the same time on two workers, one read `source_` while the other wrote it (TSan: data race
//    in ensure_registered/register_fd). Seen in net_unix_test (socketpair, reader and writer fibers)
//    under TSan. The second test sets up that race; it shows in a TSan build.
//
// 3. A fiber that suspends inside a catch handler and resumes on another worker lost "the exception being
//    handled": the C++ runtime keeps it per thread (__cxa_get_globals), so after the fiber was stolen
//    std::current_exception() was null and `throw;` called std::terminate. Seen as fiberio-proxy aborting
//    on SIGINT with relays open. Fixed: the worker swaps the exception state in and out around every
//    switch (Fiber::exception_state). Without the swap this test fails every run.
#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>

#include <fiberio/reactor/detail/wake_channel.hpp>

#include "net_support.hpp"

#include <poll.h>

#include <exception>
#include <stdexcept>

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

TEST_CASE("core repro: a notify() racing with drain() is never lost (WakeChannel)") {
  // The owner's side as a worker runs it: wait until the fd is readable, then drain. The notifier keeps
  // notifying, so the fd must always become readable again; a lost write leaves it silent for good.
  fiberio::detail::WakeChannel channel;
  std::atomic<bool> stop{false};
  std::thread notifier([&] {
    while (!stop.load(std::memory_order_relaxed))
      channel.notify();
  });
  int silent = 0;
  for (int i = 0; i < 100'000 && silent == 0; ++i) {
    pollfd p{channel.fd(), POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) ++silent;
    channel.drain();
  }
  stop = true;
  notifier.join();
  CHECK(silent == 0);
}

namespace {

// Two connected ends of a loopback TCP connection (from a fiber).
std::pair<fiberio::TcpStream, fiberio::TcpStream> tcp_pair() {
  auto listener = net_test::listen_loopback();
  auto connected = fiberio::TcpStream::connect(net_test::address_of(listener));
  REQUIRE(connected);
  auto accepted = listener.accept();
  REQUIRE(accepted);
  return {std::move(*connected), std::move(accepted->stream)};
}

// Each end of a stream pair gets a writer fiber and a reader fiber, spawned at once so that one is stolen by
// the idle worker: the reader and the writer of `right` make their first calls on it from different
// workers. 2 MiB each way must arrive.
void exchange_both_ways(fiberio::StreamSocket& left, fiberio::StreamSocket& right) {
  constexpr std::size_t kTotal = 2 << 20;
  auto send = [](fiberio::StreamSocket& s) {
    std::vector<std::byte> chunk(64 * 1024);
    for (std::size_t sent = 0; sent < kTotal; sent += chunk.size())
      REQUIRE(s.write_all(chunk));
    REQUIRE(s.shutdown_write());
  };
  auto receive = [](fiberio::StreamSocket& s) {
    std::vector<std::byte> buf(50'000);
    std::size_t got = 0;
    for (;;) {
      auto n = s.read_some(buf);
      REQUIRE(n);
      if (*n == 0) return got;
      got += *n;
    }
  };
  auto w1 = fiberio::spawn([&] { send(left); });
  auto w2 = fiberio::spawn([&] { send(right); });
  auto r1 = fiberio::spawn([&] { return receive(right); });
  CHECK(receive(left) == kTotal);
  CHECK(r1.join() == kTotal);
  w1.join();
  w2.join();
}

// Three rounds of `round` on a two-worker runtime; afterwards no registration may be left behind (one
// overwritten by a second would stay counted).
template <class Round>
void on_two_workers(Round round) {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  for (int i = 0; i < 3; ++i)
    rt.block_on(round);
  std::uint64_t registered = 0;
  for (const auto& w : rt.stats())
    registered += w.fds_registered;
  CHECK(registered == 0);
}

}  // namespace

TEST_CASE("core repro: a reader and a writer fiber make the first use of one fd on two workers") {
  // The shape that showed the race (net_unix_test).
  on_two_workers([] {
    auto pair = fiberio::socketpair();
    REQUIRE(pair);
    exchange_both_ways(pair->first, pair->second);
  });
}

TEST_CASE("core repro: the same over TCP: reads and writes across two workers lose no edge") {
  on_two_workers([] {
    auto [left, right] = tcp_pair();
    exchange_both_ways(left, right);
  });
}

TEST_CASE("core repro: a fiber that waits inside a catch handler and is stolen keeps its exception") {
  using namespace std::chrono_literals;
  fiberio::Runtime rt{fiberio::Config{.threads = 2, .work_stealing = true}};
  int migrated = 0, lost = 0;
  for (int round = 0; round < 20; ++round) {
    fiberio::Event go;
    auto catcher = rt.spawn_on(0, [&] {
      try {
        throw std::runtime_error("being handled");
      } catch (const std::runtime_error&) {
        const int before = fiberio::this_fiber::worker_index();
        go.wait();  // suspends inside the handler
        if (fiberio::this_fiber::worker_index() != before) {
          ++migrated;
          if (!std::current_exception()) ++lost;  // `throw;` here would terminate the process
        }
      }
    });
    auto waker = rt.spawn_on(0, [&] {
      fiberio::sleep_for(5ms);
      go.set();                        // the catcher becomes runnable on worker 0 ...
      fiberio::spawn([] {}).detach();  // ... and leaves the LIFO slot for the stealable queue
      const auto until = fiberio::Clock::now() + 50ms;
      while (fiberio::Clock::now() < until) {
      }  // worker 0 stays busy: worker 1 steals the catcher
    });
    waker.join();
    catcher.join();
  }
  MESSAGE(migrated << " of 20 rounds resumed the handler on the other worker");
  CHECK(lost == 0);
}

namespace {

// The reader is suspended on an empty stream; the writer then sends a few bytes and shuts down in one
// turn, so an edge-triggered backend reports data and end of stream as one event. The reader's first
// read is short; if that cleared readiness the end of stream would never be reported again and the next
// read would wait for its deadline (the hang of the first short-read attempt).
void eof_after_short_read(fiberio::StreamSocket& reader, fiberio::StreamSocket& writer) {
  using namespace std::chrono_literals;
  auto r = fiberio::spawn([&] {
    std::vector<std::byte> buf(4096);
    auto first = reader.read_some(buf, fiberio::Clock::now() + 5s);
    REQUIRE(first);
    auto second = reader.read_some(buf, fiberio::Clock::now() + 5s);
    return std::pair{*first, second ? static_cast<long>(*second) : -1L};
  });
  fiberio::sleep_for(20ms);  // the reader is suspended on the empty stream
  const std::byte bytes[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
  REQUIRE(writer.write_all(bytes));
  REQUIRE(writer.shutdown_write());
  const auto [first, second] = r.join();
  CHECK(first == 3);
  CHECK(second == 0);  // the end of stream, not a timeout
}

}  // namespace

TEST_CASE("core repro: a short read just before the end of stream does not hide the end (Unix, TCP)") {
  fiberio::Runtime rt{fiberio::Config{.threads = 1}};
  rt.block_on([] {
    auto pair = fiberio::socketpair();
    REQUIRE(pair);
    eof_after_short_read(pair->first, pair->second);
  });
  rt.block_on([] {
    auto [left, right] = tcp_pair();
    eof_after_short_read(left, right);
  });
}
