#include <fiberio/executor/this_fiber.hpp>

#include <fiberio/executor/cancelled.hpp>
#include <fiberio/executor/detail/fiber.hpp>
#include <fiberio/executor/detail/fiber_thread.hpp>

#include <thread>

namespace fiberio {

void yield() {
  detail::Fiber* self = detail::Fiber::current();
  if (!self) {
    std::this_thread::yield();
    return;
  }
  if (self->take_cancel()) throw Cancelled{};
  self->yield_now();
}

void sleep_until(Clock::time_point deadline) {
  detail::Fiber* self = detail::Fiber::current();
  if (!self) {
    std::this_thread::sleep_until(deadline);
    return;
  }
  self->note_wait("sleep");
  const std::uint64_t ticket = self->prepare_wait();
  if (self->suspend_until(ticket, deadline) == detail::WakeReason::cancelled) throw Cancelled{};
}

namespace this_fiber {

bool in_fiber() noexcept {
  return detail::Fiber::current() != nullptr;
}

std::string_view name() noexcept {
  detail::Fiber* self = detail::Fiber::current();
  return self ? std::string_view(self->name()) : std::string_view();
}

int worker_index() noexcept {
  detail::FiberThread* thread = detail::FiberThread::current();
  return thread && thread->running() ? static_cast<int>(thread->index()) : -1;
}

bool cancel_requested() noexcept {
  detail::Fiber* self = detail::Fiber::current();
  return self && self->cancel_requested();
}

}  // namespace this_fiber
}  // namespace fiberio
