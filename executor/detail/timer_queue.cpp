#include <fiberio/executor/detail/timer_queue.hpp>

namespace fiberio::detail {

TimerQueue::~TimerQueue() {
  while (auto entry = heap_.pop_expired(Deadline::max()))
    entry->fiber->release();
}

TimerHandle TimerQueue::insert(Deadline deadline, Fiber& fiber, std::uint64_t ticket) {
  fiber.add_ref();
  std::lock_guard lock(mutex_);
  return heap_.insert(deadline, Entry{&fiber, ticket});
}

void TimerQueue::cancel(TimerHandle handle) {
  std::optional<Entry> entry;
  {
    std::lock_guard lock(mutex_);
    entry = heap_.cancel(handle);
  }
  if (entry) entry->fiber->release();
}

std::optional<Deadline> TimerQueue::earliest() const {
  std::lock_guard lock(mutex_);
  return heap_.earliest();
}

std::size_t TimerQueue::fire_expired(Deadline now) {
  std::size_t fired = 0;
  for (;;) {
    std::optional<Entry> entry;
    {
      std::lock_guard lock(mutex_);
      entry = heap_.pop_expired(now);
    }
    if (!entry) return fired;
    entry->fiber->wake(entry->ticket, WakeReason::timeout);
    entry->fiber->release();
    ++fired;
  }
}

std::size_t TimerQueue::size() const {
  std::lock_guard lock(mutex_);
  return heap_.size();
}

}  // namespace fiberio::detail
