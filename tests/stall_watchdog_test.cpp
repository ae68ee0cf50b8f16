// The stall watchdog (Config::stall_threshold): a fiber that computes or blocks its thread past the
// threshold is reported once, by name and worker; fibers that yield or wait are never reported; 0 turns
// it off.
#include <doctest/doctest.h>

#include <fiberio/fiberio.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct Reports {
  std::mutex mutex;
  std::vector<fiberio::StallReport> seen;
  std::function<void(const fiberio::StallReport&)> sink() {
    return [this](const fiberio::StallReport& r) {
      std::lock_guard lock(mutex);
      seen.push_back(r);
    };
  }
  std::vector<fiberio::StallReport> take() {
    std::lock_guard lock(mutex);
    return std::exchange(seen, {});
  }
};

// Runs for `how_long` without ever reaching the scheduler.
void spin_for(std::chrono::milliseconds how_long) {
  const auto end = std::chrono::steady_clock::now() + how_long;
  while (std::chrono::steady_clock::now() < end) {
  }
}

}  // namespace

TEST_CASE("stall watchdog: a fiber that computes, or blocks its thread, is reported once, by name") {
  Reports reports;
  fiberio::Runtime rt{fiberio::Config{.threads = 2, .stall_threshold = 50ms, .on_stall = reports.sink()}};
  rt.spawn([] { spin_for(300ms); }, {.name = "hog", .worker = 1, .pinned = true}).join();
  auto seen = reports.take();
  REQUIRE(seen.size() == 1);  // once per stall, however long it lasts
  CHECK(seen[0].fiber == "hog");
  CHECK(seen[0].worker == 1);
  CHECK(seen[0].ran_for >= 50ms);
  CHECK(fiberio::to_string(seen[0]).starts_with("worker 1 stalled: fiber 'hog' has run at least "));

  // A blocking call stalls the same way; two stalls in a row are two reports.
  rt.spawn(
        [] {
          std::this_thread::sleep_for(200ms);
          fiberio::yield();
          std::this_thread::sleep_for(200ms);
        },
        {.name = "sleeps its thread", .worker = 0, .pinned = true})
      .join();
  seen = reports.take();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].fiber == "sleeps its thread");
  CHECK(seen[1].fiber == "sleeps its thread");
  CHECK(seen[0].worker == 0);
}

TEST_CASE("stall watchdog: fibers that yield, wait or sleep are never reported; 0 turns it off") {
  Reports reports;
  {
    fiberio::Runtime rt{fiberio::Config{.threads = 2, .stall_threshold = 50ms, .on_stall = reports.sink()}};
    rt.block_on([] {
      auto busy = fiberio::spawn([] {  // computes for 300 ms, yielding every few microseconds
        const auto end = std::chrono::steady_clock::now() + 300ms;
        while (std::chrono::steady_clock::now() < end) {
          spin_for(0ms);
          fiberio::yield();
        }
      });
      auto sleeper = fiberio::spawn([] { fiberio::sleep_for(300ms); });
      busy.join();
      sleeper.join();
    });
  }
  CHECK(reports.take().empty());
  fiberio::Runtime off{fiberio::Config{.threads = 1, .stall_threshold = 0ms, .on_stall = reports.sink()}};
  off.spawn([] { spin_for(200ms); }).join();
  CHECK(reports.take().empty());
}
