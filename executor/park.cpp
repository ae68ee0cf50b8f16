#include "executor/park.hpp"

#include "runtime/worker.hpp"

namespace fiberio::detail {

WakeReason suspend_until(Fiber& self, std::uint64_t ticket, std::optional<Deadline> deadline) {
  if (!deadline) return self.suspend(ticket);
  if (*deadline <= Clock::now()) {
    self.wake(ticket, WakeReason::timeout);
    return self.suspend(ticket);
  }
  TimerQueue& timers = Worker::current()->timers();
  ScopedTimer timer(&timers, timers.insert(*deadline, self, ticket));
  return self.suspend(ticket);
}

}  // namespace fiberio::detail
