// executor/detail/fiber_thread.hpp — a thread that runs fibers: switches into one and back, and keeps what
// a running fiber needs from its thread (the timers for its deadlines, its turn's I/O budget, the thread's
// own stack for the sanitizers). The runtime's Worker is a FiberThread with run queues and a reactor.
//
// Thread-safety: a FiberThread is used only by the thread it is bound to (Binding), except timers(),
// whose TimerQueue takes calls from any thread. Invariants: at most one FiberThread is bound to a thread
// at a time (a nested binding restores the outer one); running() is the fiber on the CPU between the
// switch in and the switch out of resume(), nullptr otherwise.
#pragma once

#include <fiberio/executor/detail/context.hpp>
#include <fiberio/executor/detail/fiber.hpp>
#include <fiberio/executor/detail/sanitizer.hpp>
#include <fiberio/executor/detail/timer_queue.hpp>

#include <cxxabi.h>

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace fiberio::detail {

class FiberThread : private Turn {
 public:
  // `index` names the thread (a worker's index); fibers get `stack_size`-byte stacks and `io_budget`
  // ready I/O operations per turn.
  FiberThread(std::uint32_t index, std::size_t stack_size, std::uint32_t io_budget) noexcept
      : index_(index), stack_size_(stack_size), io_budget_(io_budget) {}
  FiberThread(const FiberThread&) = delete;
  FiberThread& operator=(const FiberThread&) = delete;

  // The FiberThread bound to the calling thread, or nullptr. Read afresh on every call (current_turn()).
  static FiberThread* current() noexcept { return static_cast<FiberThread*>(current_turn()); }

  // Binds a FiberThread to the calling thread for the scope's life.
  class Binding {
   public:
    explicit Binding(FiberThread& thread) noexcept;
    ~Binding();
    Binding(const Binding&) = delete;
    Binding& operator=(const Binding&) = delete;

   private:
    FiberThread* outer_;
  };

  // Runs `fiber` until it switches out; returns how it left. The caller then casts the switch-out vote
  // (Exit::waiting), queues it again (Exit::yielding) or completes it (Exit::finished).
  Fiber::Exit resume(Fiber& fiber) noexcept;

  Fiber* running() const noexcept { return fiber.load(std::memory_order_relaxed); }
  // The loop, whenever it reads the clock anyway: what the coarse clock says (Turn::coarse_now).
  void set_coarse_now(Deadline now) noexcept {
    coarse_now = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  }
  TimerQueue& timers() noexcept { return timers_; }
  const TimerQueue& timers() const noexcept { return timers_; }
  std::uint32_t index() const noexcept { return index_; }

 private:
  const std::uint32_t index_;
  const std::size_t stack_size_;
  const std::uint32_t io_budget_;
  TimerQueue timers_;
  void* asan_fake_stack_ = nullptr;
  // This thread's C++ exception state (__cxa_get_globals(), fixed per thread): looked up once at binding,
  // not on every switch.
  Fiber::ExceptionState* exception_globals_ = nullptr;
  // Whether the code that bound this thread (the loop) runs inside a catch handler or an unwinding, as a
  // block_on() called from a handler does; fixed for the binding's life, since the loop's own code
  // leaves every handler it enters before it resumes the next fiber.
  bool loop_in_exception_ = false;
};

// Inline: the worker loop's switch is the hottest path of the runtime; one call frame less around it
// measurably cuts its cost (docs/benchmarks.md).
__attribute__((always_inline)) inline Fiber::Exit FiberThread::resume(Fiber& fiber) noexcept {
  // A fiber queued twice (a double resume) would run on two stacks' worth of state at once: catch it in
  // debug builds, where the stress tests run.
  assert(!fiber.on_cpu_.exchange(true, std::memory_order_acq_rel) && "fiber resumed twice");
  this->fiber.store(&fiber, std::memory_order_relaxed);
  fiber.resumed_at_.store(coarse_now, std::memory_order_relaxed);  // for the fiber dump
  budget_left = io_budget_;
  if (!fiber.context_) fiber.create_context(stack_size_);
  // The exception state is swapped only when one side has one (the loop runs inside a catch handler, or
  // the fiber last left inside one): almost never, so the usual switch only looks, after the switch.
  Fiber::ExceptionState& thread_exceptions = *exception_globals_;
  const bool swapped = fiber.exception_saved_ || loop_in_exception_;
  if (swapped) [[unlikely]]
    std::swap(thread_exceptions, fiber.exception_state_);
  start_switch(&asan_fake_stack_, fiber.stack_);
  tsan_switch_to(fiber.tsan_fiber_);
  fiber.context_ = switch_context(fiber.context_, &fiber);
  finish_switch(asan_fake_stack_);
  // The thread's state is now the fiber's own.
  const bool in_exception =
      thread_exceptions.caught_exceptions != nullptr || thread_exceptions.uncaught_exceptions != 0;
  if (swapped) [[unlikely]] {
    std::swap(thread_exceptions, fiber.exception_state_);
  } else if (in_exception) [[unlikely]] {
    fiber.exception_state_ = thread_exceptions;  // the loop's own state was empty
    thread_exceptions = {};
  }
  fiber.exception_saved_ = in_exception;
  fiber.in_exception_.store(in_exception, std::memory_order_release);
  this->fiber.store(nullptr, std::memory_order_relaxed);
#ifndef NDEBUG
  fiber.on_cpu_.store(false, std::memory_order_release);
#endif
  if (fiber.exit_ == Fiber::Exit::finished) {
    fiber.stack_low_.store(nullptr, std::memory_order_relaxed);  // its stack went back to the pool
    tsan_destroy(fiber.tsan_fiber_);
    fiber.tsan_fiber_ = nullptr;
  }
  return fiber.exit_;
}

}  // namespace fiberio::detail
