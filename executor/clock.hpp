// executor/clock.hpp — the time vocabulary of fiberio: the clock every deadline is read from, and the
// deadline type every waiting call takes. It lives in the lowest layer that waits (the executor), so every
// layer above uses the same names.
// Thread-safety: a clock and a value type; nothing to guard. Invariant: deadlines are on the steady clock,
// never the system clock, so a wall-clock jump neither fires nor delays a timer.
#pragma once

#include <chrono>

namespace fiberio {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

}  // namespace fiberio
