// executor/this_fiber.hpp — what a fiber can do about itself: yield, sleep, learn its name.
// Each call works on a plain thread too (yield and sleep then act on the thread), so library code need not
// know where it runs. Suspending calls throw fiberio::Cancelled when the fiber is cancelled.
#pragma once

#include <fiberio/executor/clock.hpp>

#include <chrono>
#include <string_view>

namespace fiberio {

// Lets the other ready fibers of this worker run, then continues. A fiber that never blocks is never
// preempted: a long computation should yield now and then.
void yield();

void sleep_until(Clock::time_point deadline);

template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> duration) {
  sleep_until(deadline_after(duration));
}

namespace this_fiber {
bool in_fiber() noexcept;
std::string_view name() noexcept;  // empty outside a fiber
// Index of the worker (the thread) running the calling fiber; -1 outside a fiber.
int worker_index() noexcept;
// A stop token for loops that never block: true while a cancellation of this fiber is pending. It is not
// consumed: the next blocking call (or yield()) still throws Cancelled.
bool cancel_requested() noexcept;
}  // namespace this_fiber

}  // namespace fiberio
