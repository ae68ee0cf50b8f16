// spawn_blocking: results and exceptions come back; the worker keeps running other fibers meanwhile; it
// works from a plain thread; the pool grows to the demand, is bounded, and trims its idle threads.
#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>

#include <signal.h>

#include <atomic>
#include <latch>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

fiberio::detail::BlockingPool& pool() {
  return fiberio::detail::BlockingPool::instance();
}

// Waits (boundedly) until `pred` holds.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 20s) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

}  // namespace

TEST_CASE("blocking: value and exception cross back; void works") {
  fiberio::block_on([] {
    CHECK(fiberio::spawn_blocking([] { return 6 * 7; }) == 42);
    CHECK(fiberio::spawn_blocking([s = std::string("moved in")] { return s + "!"; }) == "moved in!");
    CHECK_THROWS_WITH_AS(fiberio::spawn_blocking([]() -> int { throw std::runtime_error("from the pool"); }),
                         "from the pool", std::runtime_error);
    bool ran = false;
    fiberio::spawn_blocking([&ran] { ran = true; });  // the caller waits, so a reference is fine here
    CHECK(ran);
  });
  // From a plain thread: it simply blocks.
  CHECK(fiberio::spawn_blocking([] { return std::this_thread::get_id(); }) != std::this_thread::get_id());
}

TEST_CASE("blocking: a blocking job does not stall the worker (one worker, other fibers keep running)") {
  fiberio::block_on([] {
    std::atomic<bool> release{false};
    std::atomic<int> ticks{0};
    auto ticker = fiberio::spawn([&] {
      while (!release) {
        ++ticks;
        fiberio::sleep_for(1ms);
      }
    });
    // The job blocks its pool thread until the ticker, on the only worker, has run 20 times.
    const int seen = fiberio::spawn_blocking([&] {
      while (ticks < 20)
        std::this_thread::sleep_for(1ms);
      release = true;
      return ticks.load();
    });
    ticker.join();
    CHECK(seen >= 20);
  });
}

TEST_CASE("blocking: the pool grows to the demand, stays bounded, and trims idle threads") {
  pool().set_limits(4, 100ms);
  // Eight jobs that each wait for four of them to run at once: needs four threads, and no more exist.
  std::latch four_running(4);
  std::atomic<int> peak{0}, running{0}, started{0};
  {
    fiberio::Runtime rt{fiberio::Config{.threads = 2}};
    std::vector<fiberio::JoinHandle<void>> callers;
    for (int i = 0; i < 8; ++i) {
      callers.push_back(rt.spawn([&] {
        fiberio::spawn_blocking([&] {
          const int now = ++running;
          int p = peak.load();
          while (p < now && !peak.compare_exchange_weak(p, now)) {
          }
          if (started++ < 4) {  // the first four meet; the latch must not count below zero
            four_running.count_down();
            four_running.wait();
          }
          std::this_thread::sleep_for(5ms);
          --running;
        });
      }));
    }
    for (auto& c : callers)
      c.join();
  }
  CHECK(peak == 4);
  CHECK(pool().stats().threads <= 4);
  // Idle for 100 ms: every thread leaves.
  CHECK(eventually([] { return pool().stats().threads == 0; }));
  // And it starts again on demand.
  CHECK(fiberio::spawn_blocking([] { return 1; }) == 1);
  pool().set_limits(64, 10'000ms);
}

TEST_CASE("blocking: lowering the limit below the live threads is enforced") {
  // Four idle threads, then set_limits(2): the extra two leave, and three jobs run at most two at a time.
  pool().set_limits(8, 10'000ms);
  std::latch four_running(4);
  std::atomic<int> running{0}, peak{0};
  auto note_running = [&] {
    const int now = ++running;
    int p = peak.load();
    while (p < now && !peak.compare_exchange_weak(p, now)) {
    }
  };
  for (int i = 0; i < 4; ++i)
    pool().submit([&] {
      four_running.count_down();
      four_running.wait();
    });
  REQUIRE(eventually([] { return pool().stats().idle >= 4; }));
  pool().set_limits(2, 10'000ms);  // idle threads would otherwise stay for their 10 s
  std::latch done(3);
  for (int i = 0; i < 3; ++i)
    pool().submit([&] {
      note_running();
      std::this_thread::sleep_for(30ms);
      --running;
      done.count_down();
    });
  done.wait();
  CHECK(peak.load() <= 2);
  CHECK(eventually([] { return pool().stats().threads <= 2; }, 2s));
  pool().set_limits(64, 10'000ms);
}

TEST_CASE("blocking: a cancelled caller stops waiting; the job still runs to its end") {
  auto job_done = std::make_shared<std::atomic<bool>>(false);
  auto gate = std::make_shared<std::atomic<bool>>(false);
  fiberio::block_on([&] {
    auto caller = fiberio::spawn([job_done, gate] {
      fiberio::spawn_blocking([job_done, gate] {  // owns what it uses: it outlives the caller
        while (!*gate)
          std::this_thread::sleep_for(1ms);
        *job_done = true;
      });
    });
    fiberio::sleep_for(5ms);
    caller.cancel();
    CHECK_THROWS_AS(caller.join(), fiberio::Cancelled);
    CHECK_FALSE(*job_done);
  });
  *gate = true;
  CHECK(eventually([&] { return job_done->load(); }));
}

TEST_CASE("blocking: pool threads block all signals") {
  const bool blocked = fiberio::spawn_blocking([] {
    sigset_t mask;
    ::pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    return ::sigismember(&mask, SIGTERM) == 1 && ::sigismember(&mask, SIGINT) == 1;
  });
  CHECK(blocked);
}
