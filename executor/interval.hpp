// executor/interval.hpp — ticks at a fixed period, with a choice of what to do about ticks that were
// missed (tokio's Interval and MissedTickBehavior, Go's Ticker).
//
//   fiberio::Interval every{1s, fiberio::MissedTick::skip};
//   for (;;) {
//     every.tick();          // waits for the next tick; returns when it was due
//     send_heartbeat();
//   }
//
// The first tick is one period after construction (as Go's Ticker; tokio's first tick is immediate: pass
// `first = fiberio::Clock::now()` for that). A tick is missed when the caller comes back a whole period or
// more after it was due (it was busy, or the worker was); then the policy says when the next one is:
//  - burst (the default): on the original schedule, so the missed ticks come at once, one per call, until
//    the schedule is caught up;
//  - delay: one period after the late tick was taken: the schedule shifts;
//  - skip: at the next point of the original schedule after now: the missed ticks are dropped.
// A tick taken less than a period late keeps the schedule under every policy. on_tick(interval) makes the
// next tick a branch of fiberio::select, whose result is the tick's due time.
// Thread-safety: one fiber (or thread) at a time, as the owner of a loop is.
#pragma once

#include <fiberio/executor/clock.hpp>
#include <fiberio/executor/detail/wait_list.hpp>
#include <fiberio/executor/this_fiber.hpp>

#include <optional>
#include <stdexcept>

namespace fiberio {

enum class MissedTick { burst, delay, skip };

class Interval {
 public:
  // Throws std::invalid_argument for a period that is not positive.
  explicit Interval(Clock::duration period, MissedTick missed = MissedTick::burst,
                    std::optional<Deadline> first = std::nullopt)
      : period_(period), missed_(missed), next_(first ? *first : Clock::now() + period) {
    if (period <= Clock::duration::zero())
      throw std::invalid_argument("fiberio::Interval: period must be > 0");
  }

  // Waits for the next tick (returns at once if it is due); returns when it was due. Throws Cancelled.
  Deadline tick() {
    const Deadline due = next_;
    sleep_until(due);
    advance(Clock::now());
    return due;
  }

  // The next tick is one period from now.
  void reset() { next_ = Clock::now() + period_; }

  Deadline next() const noexcept { return next_; }
  Clock::duration period() const noexcept { return period_; }
  MissedTick missed_tick() const noexcept { return missed_; }

  // The next tick as a select() branch (on_tick()); its result is the tick's due time.
  class Tick {
   public:
    using result_type = Deadline;
    explicit Tick(Interval& interval) noexcept : interval_(interval) {}
    std::optional<result_type> try_complete() {
      const Deadline now = Clock::now();
      const Deadline due = interval_.next_;
      if (now < due) return std::nullopt;
      interval_.advance(now);
      return due;
    }
    bool subscribe(detail::Waiter&) const noexcept { return false; }  // the select's own timer wakes it
    void unsubscribe(detail::Waiter&) const noexcept {}
    std::optional<Deadline> deadline() const noexcept { return interval_.next_; }

   private:
    Interval& interval_;
  };

 private:
  // The tick due at next_ was taken at `now`.
  void advance(Deadline now) {
    const Deadline due = next_;
    next_ = due + period_;
    if (now - due < period_) return;  // less than a period late: on schedule
    switch (missed_) {
      case MissedTick::burst:
        break;
      case MissedTick::delay:
        next_ = now + period_;
        break;
      case MissedTick::skip:
        next_ = due + period_ * ((now - due) / period_ + 1);
        break;
    }
  }

  const Clock::duration period_;
  const MissedTick missed_;
  Deadline next_;
};

inline Interval::Tick on_tick(Interval& interval) noexcept {
  return Interval::Tick{interval};
}

}  // namespace fiberio
