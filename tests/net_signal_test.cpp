// Signals as I/O: a signal sent to the process wakes the fiber waiting in SignalListener::wait, on every
// backend and from a multi-worker runtime; deadlines; a listener refuses signals that are not blocked.
// The signals are blocked first thing, in main's thread, before any runtime thread exists (signals.hpp).
#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>
#include "backends.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

using namespace std::chrono_literals;

namespace {

// Runs before main (and so before doctest or any test starts a thread).
const bool kBlocked = [] { return !fiberio::block_signals({SIGUSR1, SIGHUP}); }();

}  // namespace

TEST_CASE("signals: kill(getpid(), SIGUSR1 / SIGHUP) wakes the waiting fiber") {
  REQUIRE(kBlocked);
  for_each_backend([](fiberio::BackendKind kind) {
    fiberio::Runtime rt{fiberio::Config{.threads = 2, .backend = kind}};
    rt.block_on([] {
      auto listener = fiberio::SignalListener::open({SIGUSR1, SIGHUP});
      REQUIRE_MESSAGE(listener, listener.error().message());
      std::atomic<bool> waiting{false};
      auto waiter = fiberio::spawn([&] {
        waiting = true;
        auto first = listener->wait(fiberio::Clock::now() + 10s);
        auto second = listener->wait(fiberio::Clock::now() + 10s);
        REQUIRE(first);
        REQUIRE(second);
        return std::pair(*first, *second);
      });
      while (!waiting)
        fiberio::sleep_for(1ms);
      fiberio::sleep_for(10ms);  // let it park in the reactor
      REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
      fiberio::sleep_for(10ms);  // two different signals, one at a time: the order is then known
      REQUIRE(::kill(::getpid(), SIGHUP) == 0);
      const auto [first, second] = waiter.join();
      CHECK(first == SIGUSR1);
      CHECK(second == SIGHUP);
    });
  });
}

TEST_CASE("signals: a signal sent before the wait is not lost; a deadline gives timed_out") {
  REQUIRE(kBlocked);
  fiberio::block_on([] {
    auto listener = fiberio::SignalListener::open({SIGUSR1});
    REQUIRE(listener);
    REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
    CHECK(listener->wait(fiberio::Clock::now() + 10s) == SIGUSR1);
    CHECK(listener->wait(fiberio::Clock::now() + 20ms).error() == std::errc::timed_out);
  });
}

TEST_CASE("signals: open refuses a signal that is not blocked in this thread") {
  fiberio::block_on([] {
    auto listener = fiberio::SignalListener::open({SIGUSR2});
    REQUIRE_FALSE(listener);
    CHECK(listener.error() == fiberio::NetErrc::signals_not_blocked);
    CHECK(listener.error().message().find("block_signals") != std::string::npos);
  });
}

TEST_CASE("signals: cancelling a waiting fiber unwinds it") {
  REQUIRE(kBlocked);
  fiberio::block_on([] {
    auto listener = fiberio::SignalListener::open({SIGHUP});
    REQUIRE(listener);
    auto waiter = fiberio::spawn([&] { (void)listener->wait(); });
    fiberio::sleep_for(5ms);
    waiter.cancel();
    CHECK_THROWS_AS(waiter.join(), fiberio::Cancelled);
  });
}

TEST_CASE("signals: raise_signal() from a fiber on one worker reaches a listener on another") {
  // raise() is thread-directed: from a fiber on worker 0 it stayed pending on worker 0's thread and a
  // listener on worker 3 timed out every time. raise_signal() signals the process.
  REQUIRE(kBlocked);
  fiberio::Runtime rt{fiberio::Config{.threads = 4}};
  auto listener = rt.spawn(
      [] {
        auto signals = fiberio::SignalListener::open({SIGUSR1});
        if (!signals) return -1;
        auto got = signals->wait(fiberio::Clock::now() + 10s);
        return got ? *got : -2;
      },
      fiberio::SpawnOptions{"listener", 3u, true});
  std::this_thread::sleep_for(20ms);  // the listener is parked on worker 3
  auto raiser =
      rt.spawn([] { return fiberio::raise_signal(SIGUSR1); }, fiberio::SpawnOptions{"raiser", 0u, true});
  CHECK_FALSE(raiser.join());
  CHECK(listener.join() == SIGUSR1);
}
