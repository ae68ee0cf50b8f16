#include <fiberio/executor/detail/timer_queue.hpp>

namespace fiberio::detail {

TimerQueue::~TimerQueue() {
  while (auto entry = heap_.pop_expired(Deadline::max()))
    entry->fiber->release();
}

TimerHandle TimerQueue::insert(Deadline deadline, Fiber& fiber, std::uint64_t ticket) {
  fiber.add_ref();
  std::lock_guard lock(mutex_);
  const TimerHandle handle = heap_.insert(deadline, Entry{&fiber, ticket});
  size_.store(heap_.size(), std::memory_order_relaxed);
  return handle;
}

void TimerQueue::cancel(TimerHandle handle) {
  std::optional<Entry> entry;
  {
    std::lock_guard lock(mutex_);
    entry = heap_.cancel(handle);
    size_.store(heap_.size(), std::memory_order_relaxed);
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
      size_.store(heap_.size(), std::memory_order_relaxed);
    }
    if (!entry) return fired;
    entry->fiber->wake(entry->ticket, WakeReason::timeout);
    entry->fiber->release();
    ++fired;
  }
}

}  // namespace fiberio::detail
