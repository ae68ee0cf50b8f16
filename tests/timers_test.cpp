// Timer (reset, cancel, wait, select) and Interval (ticks, missed-tick policies), on one worker and
// across workers, with a stress of resets and cancels racing waiters.
#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("timer: fires at its deadline; cancel and reset report whether it was still pending") {
  fiberio::block_on([] {
    const auto start = fiberio::Clock::now();
    fiberio::Timer t{10ms};
    CHECK(t.pending());
    CHECK(t.wait());
    CHECK(fiberio::Clock::now() - start >= 10ms);
    CHECK(t.fired());
    CHECK_FALSE(t.pending());
    CHECK(t.wait());          // stays fired
    CHECK_FALSE(t.cancel());  // too late: it had fired
    CHECK_FALSE(t.wait());    // cancelled: returns at once
    CHECK_FALSE(t.deadline());
    CHECK_FALSE(t.reset(10s));  // was not pending (cancelled)
    CHECK(t.pending());
    CHECK(t.cancel());  // stopped it in time
    CHECK_FALSE(t.reset(10s));
    CHECK(t.reset(fiberio::Clock::now() + 5ms));  // still pending: the new deadline replaces it
    CHECK(t.wait());
  });
}

TEST_CASE("timer: a cancel or reset from another fiber moves a waiting fiber") {
  for (const std::uint32_t threads : {1u, 3u}) {
    fiberio::Runtime rt{fiberio::Config{.threads = threads}};
    rt.block_on([] {
      // Cancelled while waited on: the waiter returns false long before the deadline.
      fiberio::Timer far{1h};
      auto waiter = fiberio::spawn([&] { return far.wait(); });
      fiberio::sleep_for(2ms);
      CHECK(far.cancel());
      CHECK_FALSE(waiter.join());

      // Reset earlier: the waiter fires at the new deadline.
      fiberio::Timer t{1h};
      auto early = fiberio::spawn([&] { return t.wait(); });
      fiberio::sleep_for(2ms);
      CHECK(t.reset(5ms));
      CHECK(early.wait_until(fiberio::Clock::now() + 10s));
      CHECK(early.join());

      // Reset later: the waiter does not fire at the old deadline.
      fiberio::Timer later{10ms};
      std::atomic<bool> done{false};
      auto pushed = fiberio::spawn([&] {
        const bool fired = later.wait();
        done = true;
        return fired;
      });
      fiberio::sleep_for(2ms);
      const auto moved_to = fiberio::Clock::now() + 60ms;
      CHECK(later.reset(moved_to));
      fiberio::sleep_for(20ms);  // past the old deadline
      CHECK_FALSE(done);
      CHECK(pushed.join());
      CHECK(fiberio::Clock::now() >= moved_to);
    });
  }
}

TEST_CASE("timer: a plain thread waits; a select branch fires, follows a reset, ignores a cancelled timer") {
  fiberio::Runtime rt{fiberio::Config{.threads = 2}};
  fiberio::Timer shared{5ms};
  std::thread plain([&] { CHECK(shared.wait()); });
  plain.join();

  rt.block_on([] {
    fiberio::Channel<int> never;
    fiberio::Timer t{5ms};
    CHECK(fiberio::select(fiberio::on_recv(never), fiberio::on_fire(t)).index() == 1);

    fiberio::Timer stopped{1ms};
    stopped.cancel();
    CHECK(fiberio::select(fiberio::on_fire(stopped), fiberio::on_timeout(10ms)).index() == 1);

    // A select waiting on a far timer wakes at the new deadline once another fiber resets it.
    fiberio::Timer moved{1h};
    auto resetter = fiberio::spawn([&] {
      fiberio::sleep_for(2ms);
      moved.reset(3ms);
    });
    CHECK(fiberio::select(fiberio::on_fire(moved), fiberio::on_timeout(10s)).index() == 0);
    resetter.join();
  });
}

TEST_CASE("timer stress: resets and cancels racing many waiters across workers lose no wake-up") {
  fiberio::Runtime rt{fiberio::Config{.threads = 4}};
  rt.block_on([] {
    fiberio::Timer t{1h};
    constexpr int kWaiters = 16;
    std::atomic<int> finished{0};
    std::vector<fiberio::JoinHandle<void>> waiters;
    for (int i = 0; i < kWaiters; ++i) {
      waiters.push_back(fiberio::spawn([&, i] {
        // Half wait directly, half through select; each waits until the timer has fired.
        for (;;) {
          if (i % 2 ? t.wait() : fiberio::select(fiberio::on_fire(t)).index() == 0) break;
          fiberio::sleep_for(100us);  // cancelled meanwhile: look again later
        }
        ++finished;
      }));
    }
    std::vector<std::thread> churn;
    for (int k = 0; k < 2; ++k) {
      churn.emplace_back([&, k] {
        for (int n = 0; n < 2000; ++n) {
          if ((n + k) % 3 == 0) {
            t.cancel();
          } else {
            t.reset(fiberio::Clock::now() + std::chrono::microseconds(200 + n % 50));
          }
        }
      });
    }
    for (auto& c : churn)
      c.join();
    t.reset(fiberio::Clock::now());  // fires now: every waiter must see it
    for (auto& w : waiters)
      w.join();
    CHECK(finished == kWaiters);
  });
}

TEST_CASE("interval: ticks on its schedule, the first one period after it was made") {
  fiberio::block_on([] {
    const auto start = fiberio::Clock::now();
    fiberio::Interval every{5ms};
    CHECK(every.next() >= start + 5ms);
    const auto first = every.tick();
    CHECK(fiberio::Clock::now() >= first);
    for (int i = 1; i < 4; ++i) {
      const auto due = every.tick();
      CHECK(due == first + i * 5ms);  // on schedule: nothing was missed
      CHECK(fiberio::Clock::now() >= due);
    }
    CHECK_THROWS_AS(fiberio::Interval{0ms}, std::invalid_argument);
  });
}

TEST_CASE("interval: the missed-tick policies") {
  fiberio::block_on([] {
    constexpr auto period = 100ms;
    // Each interval starts 350 ms in the past: three whole periods and a half are missed.
    SUBCASE("burst: the missed ticks come at once, on the original schedule") {
      const auto first = fiberio::Clock::now() - 350ms;
      fiberio::Interval iv{period, fiberio::MissedTick::burst, first};
      for (int i = 0; i < 4; ++i)
        CHECK(iv.tick() == first + i * period);  // due in the past: none of these waits
      CHECK(iv.next() == first + 4 * period);    // back on schedule, 50 ms ahead
    }
    SUBCASE("delay: the schedule shifts to one period after the late tick") {
      const auto first = fiberio::Clock::now() - 350ms;
      fiberio::Interval iv{period, fiberio::MissedTick::delay, first};
      const auto before = fiberio::Clock::now();
      CHECK(iv.tick() == first);
      const auto after = fiberio::Clock::now();
      CHECK(iv.next() >= before + period);
      CHECK(iv.next() <= after + period);
    }
    SUBCASE("skip: the missed ticks are dropped, the next one on the original schedule") {
      const auto first = fiberio::Clock::now() - 350ms;
      fiberio::Interval iv{period, fiberio::MissedTick::skip, first};
      const auto before = fiberio::Clock::now();
      CHECK(iv.tick() == first);
      const auto after = fiberio::Clock::now();
      // The first point of the schedule after the moment the tick was taken.
      const auto k_low = (before - first) / period + 1, k_high = (after - first) / period + 1;
      const auto k = (iv.next() - first) / period;
      CHECK((iv.next() - first) % period == fiberio::Clock::duration::zero());
      CHECK(k >= k_low);
      CHECK(k <= k_high);
      CHECK(iv.next() > after - period);
    }
    SUBCASE("a tick less than a period late keeps the schedule under every policy") {
      for (auto policy :
           {fiberio::MissedTick::burst, fiberio::MissedTick::delay, fiberio::MissedTick::skip}) {
        const auto first = fiberio::Clock::now() - 10ms;
        fiberio::Interval iv{period, policy, first};
        CHECK(iv.tick() == first);
        CHECK(iv.next() == first + period);
      }
    }
  });
}

TEST_CASE("interval: its next tick as a select branch; reset") {
  fiberio::block_on([] {
    fiberio::Channel<int> never;
    fiberio::Interval every{3ms};
    const auto due = every.next();
    auto got = fiberio::select(fiberio::on_recv(never), fiberio::on_tick(every));
    REQUIRE(got.index() == 1);
    CHECK(std::get<1>(got) == due);
    CHECK(every.next() == due + 3ms);
    const auto before = fiberio::Clock::now();
    every.reset();
    CHECK(every.next() >= before + 3ms);
  });
}
