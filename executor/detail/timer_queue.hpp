// executor/detail/timer_queue.hpp — a worker's timers: deadlines that wake a fiber's wait with
// WakeReason::timeout. Owns a TimerHeap and one reference on each pending fiber. Thread-safety: all members
// may be called from any thread (a fiber that migrated cancels its timer on the worker that set it); a mutex
// guards the heap. Only the owning worker fires timers. Invariant: every live entry holds one reference on
// its fiber, dropped when it fires or is cancelled.
#pragma once

#include <fiberio/executor/detail/fiber.hpp>
#include <fiberio/executor/detail/timer_heap.hpp>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <optional>

namespace fiberio::detail {

class TimerQueue {
 public:
  TimerQueue() = default;
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Wakes `fiber`'s wait `ticket` at `deadline`.
  TimerHandle insert(Deadline deadline, Fiber& fiber, std::uint64_t ticket);
  // Safe for a handle that already fired or was cancelled.
  void cancel(TimerHandle handle);
  std::optional<Deadline> earliest() const;
  // Fires every timer due at `now`; returns how many fired.
  std::size_t fire_expired(Deadline now);
  // Pending timers, without the lock (one relaxed load: the owner's "any timers?" test on every turn of
  // its loop). Exact for the owning worker, which alone inserts; a cancel from another thread may lag.
  std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    Fiber* fiber;
    std::uint64_t ticket;
  };
  static_assert(TimerStore<TimerHeap<Entry>, Entry>);

  mutable std::mutex mutex_;
  TimerHeap<Entry> heap_;
  std::atomic<std::size_t> size_{0};  // heap_.size(), stored under mutex_ after each change
};

// A timer armed for one wait, cancelled when the wait ends (whatever woke it).
class ScopedTimer {
 public:
  ScopedTimer(TimerQueue* queue, TimerHandle handle) : queue_(queue), handle_(handle) {}
  ~ScopedTimer() {
    if (queue_) queue_->cancel(handle_);
  }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  TimerQueue* queue_;
  TimerHandle handle_;
};

}  // namespace fiberio::detail
