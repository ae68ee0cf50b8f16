// executor/park.hpp — suspending the current fiber with an optional deadline.
// Thread-safety: called by a fiber about itself. Invariant: the deadline's timer is cancelled before
// suspend_until returns, whatever ended the wait, so no timer outlives its wait.
#pragma once

#include "executor/fiber.hpp"
#include "reactor/timer_heap.hpp"

#include <optional>

namespace fiberio::detail {

// Suspends `self` (which opened wait `ticket` and published it) until woken, or until `deadline`.
WakeReason suspend_until(Fiber& self, std::uint64_t ticket, std::optional<Deadline> deadline);

}  // namespace fiberio::detail
