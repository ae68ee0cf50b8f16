// executor/semaphore.hpp — a counting semaphore for fibers. release() hands a permit straight to the
// longest waiter (FIFO) or, with none, stores it: permits are remembered, without limit.
// Thread-safety: any fiber or thread. Invariant: permits_ > 0 only while no waiter is queued.
#pragma once

#include <fiberio/executor/detail/wait_list.hpp>

#include <cstddef>
#include <mutex>

namespace fiberio {

class Semaphore {
 public:
  explicit Semaphore(std::size_t permits = 0) : permits_(permits) {}

  void acquire() { detail::throw_if_cancelled(acquire_impl(std::nullopt)); }

  // False if the deadline passed first. Throws Cancelled.
  bool try_acquire_until(Deadline deadline) {
    const auto why = acquire_impl(deadline);
    detail::throw_if_cancelled(why);
    return why == detail::WakeReason::notified;
  }

  bool try_acquire() {
    std::lock_guard guard(mutex_);
    if (permits_ == 0) return false;
    --permits_;
    return true;
  }

  void release(std::size_t n = 1) {
    std::lock_guard guard(mutex_);
    for (; n > 0; --n) {
      if (!waiters_.wake_one()) permits_ += 1;
    }
  }

  std::size_t available() const {
    std::lock_guard guard(mutex_);
    return permits_;
  }

 private:
  detail::WakeReason acquire_impl(std::optional<Deadline> deadline) {
    std::unique_lock guard(mutex_);
    if (permits_ > 0) {
      --permits_;
      return detail::WakeReason::notified;
    }
    return detail::suspend_on(waiters_, guard, deadline);  // notified: release() handed us its permit
  }

  mutable std::mutex mutex_;
  std::size_t permits_;
  detail::WaitList waiters_{"semaphore"};
};

}  // namespace fiberio
