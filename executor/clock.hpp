// executor/clock.hpp — the time vocabulary of fiberio: the clock every deadline is read from, the deadline
// type, and Timeout, the limit every I/O call takes (a deadline or a duration alike). It lives in the lowest
// layer that waits (the executor), so every layer above uses the same names.
//
//   stream.read_some(buf, 5s);                     // a duration: from the call on
//   stream.read_some(buf, fiberio::Clock::now() + 5s);  // a deadline: one limit shared by several calls
//   stream.read_some(buf);                         // no limit
// Thread-safety: a clock and a value type; nothing to guard. Invariant: deadlines are on the steady clock,
// never the system clock, so a wall-clock jump neither fires nor delays a timer; a duration turns into a
// deadline only through deadline_after(), which saturates (duration::max() means "never", not the past).
#pragma once

#include <chrono>
#include <optional>

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

// A limit on one waiting call: a deadline, a duration (turned into a deadline through deadline_after() when
// the Timeout is made, that is, when the call starts), or none. A call that waits several times (write_all,
// read_exact, connect to several addresses) has one limit for all its waits. The executor's own waits name
// the kind instead (wait_until / wait_for); Timeout is for calls with one name and an optional limit.
class Timeout {
 public:
  constexpr Timeout() noexcept = default;
  constexpr Timeout(std::nullopt_t) noexcept {}
  constexpr Timeout(Deadline deadline) noexcept : deadline_(deadline) {}
  constexpr Timeout(std::optional<Deadline> deadline) noexcept : deadline_(deadline) {}
  template <class Rep, class Period>
  Timeout(std::chrono::duration<Rep, Period> duration) noexcept : deadline_(deadline_after(duration)) {}

  constexpr std::optional<Deadline> deadline() const noexcept { return deadline_; }
  // The layers below take the deadline itself.
  constexpr operator std::optional<Deadline>() const noexcept { return deadline_; }

 private:
  std::optional<Deadline> deadline_;
};

}  // namespace fiberio
