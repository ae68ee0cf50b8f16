// executor/condition_variable.hpp — waits for a condition guarded by a fiberio::Mutex.
// Notifications are not remembered: notify with no waiter does nothing (use Event or Semaphore for a
// permit). A notify_one whose chosen waiter timed out or was cancelled meanwhile goes to the next waiter.
// Thread-safety: any fiber or thread. Waiting with a deadline needs a fiber.
#pragma once

#include <fiberio/executor/clock.hpp>
#include <fiberio/executor/detail/wait_list.hpp>
#include <fiberio/executor/mutex.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace fiberio {

class ConditionVariable {
 public:
  // Atomically releases `lock` and waits; reacquires it before returning (also when throwing Cancelled).
  void wait(std::unique_lock<Mutex>& lock) { detail::throw_if_cancelled(wait_impl(lock, std::nullopt)); }

  template <class Predicate>
  void wait(std::unique_lock<Mutex>& lock, Predicate ready) {
    while (!ready())
      wait(lock);
  }

  std::cv_status wait_until(std::unique_lock<Mutex>& lock, Deadline deadline) {
    const auto why = wait_impl(lock, deadline);
    detail::throw_if_cancelled(why);
    return why == detail::WakeReason::timeout ? std::cv_status::timeout : std::cv_status::no_timeout;
  }

  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<Mutex>& lock, std::chrono::duration<Rep, Period> timeout) {
    return wait_until(lock, deadline_after(timeout));
  }

  void notify_one() {
    std::lock_guard guard(state_mutex_);
    waiters_.wake_one();
  }

  void notify_all() {
    std::lock_guard guard(state_mutex_);
    waiters_.wake_all();
  }

 private:
  detail::WakeReason wait_impl(std::unique_lock<Mutex>& lock, std::optional<Deadline> deadline) {
    std::unique_lock guard(state_mutex_);
    // The user's mutex is released only once we are queued, so a notify after that point reaches us.
    const auto why = detail::suspend_on(waiters_, guard, deadline, [&] { lock.unlock(); });
    guard.unlock();
    // Reacquire even if cancelled: the caller's unique_lock must own the mutex again on every exit.
    for (;;) {
      try {
        lock.lock();
        return why;
      } catch (const Cancelled&) {
        // A cancellation that lands while we reacquire is re-requested so it is not lost.
        if (auto* self = detail::Fiber::current()) self->request_cancel();
      }
    }
  }

  std::mutex state_mutex_;
  detail::WaitList waiters_{"condition variable"};
};

}  // namespace fiberio
