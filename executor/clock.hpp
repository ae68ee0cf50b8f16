// executor/clock.hpp — the time vocabulary of fiberio: the clock every deadline is read from, and the
// deadline type every waiting call takes. It lives in the lowest layer that waits (the executor), so every
// layer above uses the same names.
// Thread-safety: a clock and a value type; nothing to guard. Invariant: deadlines are on the steady clock,
// never the system clock, so a wall-clock jump neither fires nor delays a timer; a duration turns into a
// deadline only through deadline_after(), which saturates (duration::max() means "never", not the past).
#pragma once

#include <chrono>

namespace fiberio {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

// now + `duration`, saturated: a duration too long to add (hours::max(), Clock::duration::max()) gives
// Deadline::max(), one of zero or less gives now (the deadline has passed). Every waiting call that takes
// a duration goes through it.
template <class Rep, class Period>
Deadline deadline_after(std::chrono::duration<Rep, Period> duration) noexcept {
  const Deadline now = Clock::now();
  if (duration <= duration.zero()) return now;
  // Compare in the caller's unit, into which the headroom converts without overflow (it only shrinks or
  // keeps its count for units of a nanosecond or more).
  const auto headroom = std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(Deadline::max() - now);
  if (duration >= headroom) return Deadline::max();
  return now + std::chrono::duration_cast<Clock::duration>(duration);
}

}  // namespace fiberio
