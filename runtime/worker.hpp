// runtime/worker.hpp — one worker: a thread's scheduling loop with its reactor, timers and run queues.
//
// A worker loops: run a ready fiber (LIFO slot, then local queue, then inbox); every `event_interval`
// runs look at the inbox, timers and backend first; when out of work, steal (if enabled), then park in
// the backend's wait with the next timer as timeout. docs/design.md walks the states.
// Thread-safety: the loop, push_local() and the LIFO slot belong to the worker's thread. push_remote(),
// unpark(), the inbox, the timers and the reactor's registration calls are for any thread; steal_from()
// is called by other workers.
// Invariants: a fiber is in at most one queue, and is queued only after it fully switched out.
#pragma once

#include "executor/fiber.hpp"
#include "executor/run_queue.hpp"
#include "executor/sanitizer.hpp"
#include "reactor/reactor.hpp"
#include "reactor/timer_queue.hpp"
#include "runtime/stats.hpp"

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstdint>
#include <optional>

namespace fiberio::detail {

class Scheduler;

class Worker {
 public:
  Worker(Scheduler& scheduler, std::uint32_t index, std::unique_ptr<Backend> backend);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The worker whose loop runs on this thread, or nullptr.
  static Worker* current() noexcept;

  // Runs the loop on the calling thread until `stop` is true or `until` passes.
  void run(const std::atomic<bool>& stop, std::optional<Deadline> until = std::nullopt);

  // Owner thread: makes `fiber` runnable here; `lifo` puts it next in line (the LIFO slot).
  void push_local(Fiber* fiber, bool lifo);
  // Any thread: queues `fiber` in the inbox and unparks the worker; true if it was parked (so it will
  // look at its inbox now), false if it is busy and will get to it in its next round.
  bool push_remote(Fiber* fiber);
  // Any thread: interrupts the worker's park, if it is parked; true if it was.
  bool unpark() noexcept;
  // Another worker: takes about half of this worker's queued fibers into `thief`'s queue; returns one to
  // run now, or nullptr.
  Fiber* steal_into(Worker& thief) noexcept;
  bool has_stealable_work() const noexcept;

  Fiber* running() const noexcept { return running_; }
  Reactor& reactor() noexcept { return reactor_; }
  TimerQueue& timers() noexcept { return timers_; }
  Scheduler& scheduler() noexcept { return scheduler_; }
  std::uint32_t index() const noexcept { return index_; }
  WorkerStats stats() const noexcept;

  // For the context switch annotations.
  StackBounds thread_stack() const noexcept { return thread_stack_; }
  void* tsan_context() const noexcept { return tsan_context_; }

 private:
  Fiber* next_fiber();
  Fiber* pop_inbox();
  Fiber* search();
  void stop_searching();
  void park(std::optional<Deadline> until);
  void run_fiber(Fiber* fiber);
  void push_queue(Fiber* fiber);
  std::size_t poll_events(std::optional<std::chrono::nanoseconds> timeout);
  std::size_t fire_timers();
  bool has_local_work() const noexcept;

  Scheduler& scheduler_;
  const std::uint32_t index_;
  const bool stealing_;
  const std::uint32_t event_interval_;
  Reactor reactor_;
  TimerQueue timers_;
  RunQueue<Fiber> queue_;
  moodycamel::ConcurrentQueue<Fiber*> inbox_;
  Fiber* lifo_ = nullptr;          // owner only; never stolen
  std::uint32_t lifo_streak_ = 0;  // fibers run from the LIFO slot in a row
  std::uint64_t tick_ = 0;
  Fiber* running_ = nullptr;
  bool searching_ = false;
  std::atomic<bool> sleeping_{false};  // in (or about to enter) a blocking backend wait
  std::atomic<bool> notified_{false};  // unpark() was called since the last park began
  std::uint64_t rng_;
  Deadline last_trim_{};
  StackBounds thread_stack_;
  void* tsan_context_ = nullptr;
  void* asan_fake_stack_ = nullptr;
  WorkerCounters counters_;
};

}  // namespace fiberio::detail
