// executor/event.hpp — a one-shot notification: set() once, and every present and future wait() returns
// until reset(). The set is remembered (a permit for all), so set-before-wait is never lost.
// on_set(event) makes the wait one branch of fiberio::select (executor/select.hpp).
// Thread-safety: any fiber or thread; set() is the usual way for a plain thread to wake fibers.
#pragma once

#include <fiberio/executor/detail/wait_list.hpp>

#include <mutex>
#include <optional>
#include <variant>

namespace fiberio {

class Event {
 public:
  // `what` names the wait in the fiber dump (a static string; Runtime::fibers()).
  explicit Event(const char* what = "event") noexcept : waiters_(what) {}

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

  // The wait as a select() branch; it consumes nothing, so any number of branches may complete on one set.
  class Wait {
   public:
    using result_type = std::monostate;
    explicit Wait(Event& event) noexcept : event_(event) {}
    std::optional<result_type> try_complete() const {
      if (!event_.is_set()) return std::nullopt;
      return result_type{};
    }
    bool subscribe(detail::Waiter& waiter) {
      std::lock_guard guard(event_.mutex_);
      if (!event_.set_) {
        event_.waiters_.push_back(waiter);
        return false;
      }
      return waiter.wake();
    }
    void unsubscribe(detail::Waiter& waiter) {
      std::lock_guard guard(event_.mutex_);
      event_.waiters_.remove(waiter);
    }
    std::optional<Deadline> deadline() const noexcept { return std::nullopt; }

   private:
    Event& event_;
  };

 private:
  mutable std::mutex mutex_;
  bool set_ = false;
  detail::WaitList waiters_;  // named by the constructor
};

inline Event::Wait on_set(Event& event) noexcept {
  return Event::Wait{event};
}

}  // namespace fiberio
