// runtime/stats.hpp — per-worker counters, readable while the runtime runs.
// Each counter is written by its worker alone with a relaxed load+store (no locked instruction on the hot
// path) and read by anyone with a relaxed load, so a snapshot is approximate but never torn.
#pragma once

#include <atomic>
#include <cstdint>

namespace fiberio {

struct WorkerStats {
  std::uint64_t fibers_run = 0;      // fiber turns (a fiber resumed, until it suspends)
  std::uint64_t steal_attempts = 0;  // victims tried
  std::uint64_t steals = 0;          // attempts that took something
  std::uint64_t fibers_stolen = 0;   // fibers moved to this worker by its steals
  std::uint64_t parks = 0;           // blocking waits in the backend
  std::uint64_t unparks = 0;         // parks that ended through the wake channel
  std::uint64_t inbox_pops = 0;      // fibers taken from this worker's cross-thread inbox
  std::uint64_t backend_polls = 0;   // calls into the backend's wait (blocking or not)
  std::uint64_t io_events = 0;       // fd events dispatched
  std::uint64_t timers_fired = 0;
  std::uint64_t stacks_released = 0;  // idle loops' stacks this worker took back (Config::idle_stack_release)
  std::uint64_t timers_pending = 0;   // a gauge: timers set on this worker and not yet fired or cancelled
  std::uint64_t fds_registered = 0;   // a gauge: fds registered with this worker's reactor
};

namespace detail {

class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

struct WorkerCounters {
  Counter fibers_run, steal_attempts, steals, fibers_stolen, parks, unparks, inbox_pops, backend_polls,
      io_events, timers_fired, stacks_released;

  WorkerStats snapshot() const noexcept {
    return WorkerStats{fibers_run.get(), steal_attempts.get(), steals.get(),         fibers_stolen.get(),
                       parks.get(),      unparks.get(),        inbox_pops.get(),     backend_polls.get(),
                       io_events.get(),  timers_fired.get(),   stacks_released.get()};
  }
};

}  // namespace detail
}  // namespace fiberio
