#include <fiberio/runtime/detail/stall_watchdog.hpp>

#include <fiberio/runtime/detail/scheduler.hpp>
#include <fiberio/runtime/detail/worker.hpp>

#include <cstdio>
#include <vector>

namespace fiberio::detail {

StallWatchdog::StallWatchdog(Scheduler& scheduler)
    : scheduler_(scheduler), threshold_(scheduler.config().stall_threshold), thread_([this] { run(); }) {}

StallWatchdog::~StallWatchdog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void StallWatchdog::run() {
  // What the last sample saw on each worker; a stall is the same fiber on the CPU with the same turn
  // count, sample after sample.
  struct Seen {
    const Fiber* fiber = nullptr;
    std::uint64_t turns = 0;
    Deadline since{};
    bool reported = false;
  };
  std::vector<Seen> seen(scheduler_.size());
  const auto period = std::max(std::chrono::milliseconds(1), threshold_ / 2);
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, period, [this] { return stop_; })) {
    const Deadline now = Clock::now();
    for (std::uint32_t i = 0; i < seen.size(); ++i) {
      const Worker& worker = scheduler_.worker(i);
      const Fiber* fiber = worker.running();
      const std::uint64_t turns = worker.turns();
      Seen& s = seen[i];
      if (!fiber || fiber != s.fiber || turns != s.turns) {
        s = Seen{fiber, turns, now, false};
        continue;
      }
      if (s.reported || now - s.since < threshold_) continue;
      s.reported = true;
      // The name, read while the fiber provably lives (Scheduler::running_fiber_name).
      auto name = scheduler_.running_fiber_name(i, fiber);
      if (!name) continue;  // it moved on meanwhile
      const StallReport stall{i, std::move(*name),
                              std::chrono::duration_cast<std::chrono::milliseconds>(now - s.since)};
      lock.unlock();
      report(stall);
      lock.lock();
    }
  }
}

void StallWatchdog::report(const StallReport& stall) const {
  if (scheduler_.config().on_stall) {
    scheduler_.config().on_stall(stall);
    return;
  }
  std::fprintf(stderr, "fiberio: %s\n", to_string(stall).c_str());
}

}  // namespace fiberio::detail
