#include <fiberio/executor/detail/fiber_thread.hpp>

#include <fiberio/executor/detail/overflow_reporter.hpp>
#include <fiberio/executor/this_fiber.hpp>

#include <pthread.h>

namespace fiberio::detail {

// Read by current_turn() under this assembler name.
constinit thread_local Turn* t_bound_turn __asm__("fiberio_detail_bound_turn")
    __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

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

#if !defined(__x86_64__)
// Not inlined, and with a compiler barrier: see current_turn().
__attribute__((noinline)) Turn* current_turn_slow() noexcept {
  asm volatile("" ::: "memory");
  return t_bound_turn;
}
#endif

FiberThread::Binding::Binding(FiberThread& thread) noexcept : outer_(current()) {
  t_bound_turn = &thread;
  thread.thread_stack = current_thread_stack();
  thread.tsan_context = tsan_current();
  thread.set_coarse_now(Clock::now());  // the first fibers may wait before the loop reads the clock
  thread.exception_globals_ = reinterpret_cast<Fiber::ExceptionState*>(abi::__cxa_get_globals());
  thread.loop_in_exception_ = thread.exception_globals_->caught_exceptions != nullptr ||
                              thread.exception_globals_->uncaught_exceptions != 0;
  prepare_thread_for_overflow_reports();
}

FiberThread::Binding::~Binding() {
  t_bound_turn = outer_;
}

void budget_spent() {
  if (!Fiber::current()) {
    current_turn()->budget_left = ~std::uint32_t{0};
    return;
  }
  yield();  // the next resume refills the budget
}

}  // namespace fiberio::detail
