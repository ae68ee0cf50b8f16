// executor/event.hpp — a one-shot notification: set() once, and every present and future wait() returns
// until reset(). The set is remembered (a permit for all), so set-before-wait is never lost.
// Thread-safety: any fiber or thread; set() is the usual way for a plain thread to wake fibers.
#pragma once

#include <fiberio/executor/detail/wait_list.hpp>

#include <mutex>

namespace fiberio {

class Event {
 public:
  void set() {
    std::lock_guard guard(mutex_);
    set_ = true;
    waiters_.wake_all();
  }

  void reset() {
    std::lock_guard guard(mutex_);
    set_ = false;
  }

  bool is_set() const {
    std::lock_guard guard(mutex_);
    return set_;
  }

  void wait() {
    std::unique_lock guard(mutex_);
    while (!set_)
      detail::throw_if_cancelled(detail::suspend_on(waiters_, guard));
  }

  // True if set, false if the deadline passed first. Throws Cancelled.
  bool wait_until(Deadline deadline) {
    std::unique_lock guard(mutex_);
    while (!set_) {
      const auto why = detail::suspend_on(waiters_, guard, deadline);
      detail::throw_if_cancelled(why);
      if (why == detail::WakeReason::timeout) return set_;
    }
    return true;
  }

 private:
  mutable std::mutex mutex_;
  bool set_ = false;
  detail::WaitList waiters_;
};

}  // namespace fiberio
