#include <fiberio/executor/detail/fiber_thread.hpp>

#include <fiberio/executor/detail/overflow_reporter.hpp>
#include <fiberio/executor/this_fiber.hpp>

#include <pthread.h>

namespace fiberio::detail {
namespace {

thread_local FiberThread* t_current = nullptr;

StackBounds current_thread_stack() {
  StackBounds bounds;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    bounds = StackBounds{addr, size};
    pthread_attr_destroy(&attr);
  }
  return bounds;
}

}  // namespace

// Not inlined, and with a compiler barrier: a fiber may resume on another thread, and a cached address of
// a thread_local from before the switch would name the old thread's variable.
__attribute__((noinline)) FiberThread* FiberThread::current() noexcept {
  asm volatile("" ::: "memory");
  return t_current;
}

FiberThread::Binding::Binding(FiberThread& thread) noexcept : outer_(t_current) {
  t_current = &thread;
  thread.thread_stack_ = current_thread_stack();
  thread.tsan_context_ = tsan_current();
  thread.exception_globals_ = reinterpret_cast<Fiber::ExceptionState*>(abi::__cxa_get_globals());
  prepare_thread_for_overflow_reports();
}

FiberThread::Binding::~Binding() {
  t_current = outer_;
}

Fiber* Fiber::current() noexcept {
  FiberThread* thread = FiberThread::current();
  return thread ? thread->running() : nullptr;
}

void consume_budget() {
  FiberThread* thread = FiberThread::current();
  if (!thread || !thread->running() || thread->take_budget()) return;
  yield();  // the next resume refills the budget
}

}  // namespace fiberio::detail
