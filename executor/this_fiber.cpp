#include "executor/this_fiber.hpp"

#include "executor/cancelled.hpp"
#include "executor/fiber.hpp"
#include "executor/park.hpp"
#include "runtime/worker.hpp"

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
  const std::uint64_t ticket = self->prepare_wait();
  if (detail::suspend_until(*self, ticket, deadline) == detail::WakeReason::cancelled) throw Cancelled{};
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
  detail::Worker* worker = detail::Worker::current();
  return worker && worker->running() ? static_cast<int>(worker->index()) : -1;
}

bool cancel_requested() noexcept {
  detail::Fiber* self = detail::Fiber::current();
  return self && self->cancel_requested();
}

}  // namespace this_fiber

namespace detail {

void consume_budget() {
  Fiber* self = Fiber::current();
  if (!self) return;
  if (self->io_budget > 0 && --self->io_budget > 0) return;
  yield();  // the worker refills the budget when it resumes the fiber
}

}  // namespace detail
}  // namespace fiberio
