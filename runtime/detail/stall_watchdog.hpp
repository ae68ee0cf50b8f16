// runtime/detail/stall_watchdog.hpp — reports a worker whose fiber has run longer than
// Config::stall_threshold without reaching the scheduler: a loop that never waits, or a blocking call
// (a syscall, a std::mutex, a sleep of the thread). Fibers are not preempted, so every fiber queued behind
// it on that worker waits as long. A thread of its own samples each worker twice per threshold: the fiber
// on its CPU and its count of fiber turns, both relaxed loads of what the worker keeps anyway, so the
// switch path pays nothing. A stall is reported once, when first seen past the threshold, through
// Config::on_stall (default: one line on stderr).
// Thread-safety: constructed and destroyed by the Scheduler; its thread only reads the workers.
// Invariant: the workers outlive it (the Scheduler destroys it first).
#pragma once

#include <fiberio/runtime/config.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace fiberio::detail {

class Scheduler;

class StallWatchdog {
 public:
  // Starts watching `scheduler`'s workers (config().stall_threshold must be > 0).
  explicit StallWatchdog(Scheduler& scheduler);
  ~StallWatchdog();  // stops and joins its thread
  StallWatchdog(const StallWatchdog&) = delete;
  StallWatchdog& operator=(const StallWatchdog&) = delete;

 private:
  void run();
  void report(const StallReport& stall) const;

  Scheduler& scheduler_;
  const std::chrono::milliseconds threshold_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;  // under mutex_
  std::thread thread_;
};

}  // namespace fiberio::detail
