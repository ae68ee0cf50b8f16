// executor/mutex.hpp — a mutual-exclusion lock that suspends the waiting fiber, never its thread.
// Fair: unlock() hands ownership straight to the longest waiter (FIFO, no barging), so no fiber starves
// under contention. A waiter that times out or is cancelled refuses the hand-off and the next one gets it.
// Works from plain threads too (they block). Thread-safety: any fiber or thread, on any worker.
// Invariant: `locked_` is true while an owner exists; waiters only queue while it is true.
#pragma once

#include <fiberio/executor/detail/wait_list.hpp>

#include <mutex>

namespace fiberio {

class Mutex {
 public:
  // Throws Cancelled (without the lock) if the fiber is cancelled while waiting.
  void lock() {
    std::unique_lock guard(state_mutex_);
    if (!locked_) {
      locked_ = true;
      return;
    }
    // Woken with WakeReason::notified means unlock() handed us the lock.
    detail::throw_if_cancelled(detail::suspend_on(waiters_, guard));
  }

  bool try_lock() {
    std::lock_guard guard(state_mutex_);
    if (locked_) return false;
    locked_ = true;
    return true;
  }

  void unlock() {
    std::lock_guard guard(state_mutex_);
    if (!waiters_.wake_one()) locked_ = false;
  }

 private:
  std::mutex state_mutex_;  // guards locked_ and waiters_, held only for a few instructions
  bool locked_ = false;
  detail::WaitList waiters_{"mutex"};
};

}  // namespace fiberio
