// executor/timer.hpp — a one-shot timer as an object: armed at a deadline, it can be waited on, reset and
// cancelled from any fiber or thread (Go's time.Timer, tokio's Sleep with reset()).
//
//   fiberio::Timer idle{30s};
//   ... on every request: idle.reset(30s);                      // true if it had not fired yet
//   if (idle.wait()) close_connection();                        // false: cancel() stopped it
//   fiberio::select(fiberio::on_recv(ch), fiberio::on_fire(idle));  // a branch, too
//
// States: pending (armed, its deadline ahead), fired (its deadline reached: it stays fired until reset),
// cancelled (stopped by cancel(): it never fires until reset). cancel() and reset() return whether the
// timer was still pending, so a caller learns whether it stopped the firing or came too late. wait()
// returns true once fired and false once cancelled (at once, or when a cancel() comes while it waits);
// a reset() while fibers wait moves their wake-up to the new deadline. A timer holds no worker timer
// while nobody waits: waiting is what arms one, for that wait only. Waiting calls throw Cancelled when the
// waiting fiber is cancelled; a plain thread blocks.
// Thread-safety: every member from any fiber or thread (one mutex).
#pragma once

#include <fiberio/executor/clock.hpp>
#include <fiberio/executor/detail/wait_list.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <variant>

namespace fiberio {

class Timer {
 public:
  explicit Timer(Deadline deadline) : deadline_(deadline) {}
  template <class Rep, class Period>
  explicit Timer(std::chrono::duration<Rep, Period> after) : Timer(deadline_after(after)) {}

  // Re-arms at `deadline` (a timer that fired or was cancelled becomes pending again). True if it was
  // still pending.
  bool reset(Deadline deadline) {
    std::lock_guard guard(mutex_);
    const bool was_pending = pending_locked(Clock::now());
    deadline_ = deadline;
    changed_locked();
    return was_pending;
  }
  template <class Rep, class Period>
  bool reset(std::chrono::duration<Rep, Period> after) {
    return reset(deadline_after(after));
  }

  // Stops it: it will not fire. True if it was still pending (false: it had fired or was cancelled).
  bool cancel() {
    std::lock_guard guard(mutex_);
    const bool was_pending = pending_locked(Clock::now());
    deadline_.reset();
    changed_locked();
    return was_pending;
  }

  bool pending() const {
    std::lock_guard guard(mutex_);
    return pending_locked(Clock::now());
  }
  bool fired() const {
    std::lock_guard guard(mutex_);
    return deadline_ && Clock::now() >= *deadline_;
  }
  // The deadline it is armed at; nullopt once cancelled.
  std::optional<Deadline> deadline() const {
    std::lock_guard guard(mutex_);
    return deadline_;
  }

  // Waits until it fires (true) or is cancelled (false); returns at once if either already happened.
  bool wait() {
    std::unique_lock guard(mutex_);
    for (;;) {
      if (!deadline_) return false;
      if (Clock::now() >= *deadline_) return true;
      detail::throw_if_cancelled(detail::suspend_on(waiters_, guard, deadline_));
    }
  }

  // The firing as a select() branch (on_fire()): completes once fired; never while cancelled.
  class Fire {
   public:
    using result_type = std::monostate;
    explicit Fire(Timer& timer) noexcept : timer_(timer) {}
    std::optional<result_type> try_complete() {
      std::lock_guard guard(timer_.mutex_);
      seen_ = timer_.version_;
      if (!timer_.deadline_ || Clock::now() < *timer_.deadline_) return std::nullopt;
      return result_type{};
    }
    bool subscribe(detail::Waiter& waiter) {
      std::lock_guard guard(timer_.mutex_);
      if (timer_.version_ == seen_) {
        timer_.waiters_.push_back(waiter);
        return false;
      }
      return waiter.wake();  // reset or cancelled since the try: look again
    }
    void unsubscribe(detail::Waiter& waiter) {
      std::lock_guard guard(timer_.mutex_);
      timer_.waiters_.remove(waiter);
    }
    std::optional<Deadline> deadline() const { return timer_.deadline(); }

   private:
    Timer& timer_;
    std::uint64_t seen_ = 0;
  };

 private:
  bool pending_locked(Deadline now) const { return deadline_ && now < *deadline_; }
  // Waiters look again at the new state (and a select at the new deadline).
  void changed_locked() {
    ++version_;
    waiters_.wake_all();
  }

  mutable std::mutex mutex_;
  std::optional<Deadline> deadline_;  // nullopt: cancelled
  std::uint64_t version_ = 0;         // bumped by every reset() and cancel()
  detail::WaitList waiters_{"timer"};
};

inline Timer::Fire on_fire(Timer& timer) noexcept {
  return Timer::Fire{timer};
}

}  // namespace fiberio
