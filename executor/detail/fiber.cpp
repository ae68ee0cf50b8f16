#include <fiberio/executor/detail/fiber.hpp>

#include <fiberio/executor/cancelled.hpp>
#include <fiberio/executor/detail/context.hpp>
#include <fiberio/executor/detail/fiber_thread.hpp>
#include <fiberio/executor/detail/stack_pool.hpp>
#include <fiberio/executor/detail/timer_queue.hpp>
#include <fiberio/executor/detail/wait_list.hpp>

#include <cassert>
#include <cstdio>
#include <memory>
#include <utility>

namespace fiberio::detail {

struct Fiber::JoinWaiters {
  std::mutex mutex;
  WaitList list{"join"};
};

Fiber::Fiber(std::string name) : name_(std::move(name)) {}

Fiber::~Fiber() {
  // Whoever runs a fiber holds a reference until it finishes, so no fiber dies suspended (its stack
  // would never be unwound nor returned).
  assert(!context_ && "fiber destroyed while suspended");
  if (error_ && !error_observed_) {
    try {
      std::rethrow_exception(error_);
    } catch (const Cancelled&) {
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fiberio: fiber '%s' ended with an unobserved exception: %s\n", name_.c_str(),
                   e.what());
    } catch (...) {
      std::fprintf(stderr, "fiberio: fiber '%s' ended with an unobserved exception\n", name_.c_str());
    }
  }
  delete joiners_.load(std::memory_order_acquire);
}

WakeReason Fiber::suspend_with_timer(std::uint64_t ticket, Deadline deadline) {
  if (deadline <= Clock::now()) {
    // A pending cancellation wins over the deadline: suspend() delivers it (every blocking call honours a
    // pending cancel, even one whose deadline has passed).
    if (!cancel_pending_.load(std::memory_order_seq_cst)) wake(ticket, WakeReason::timeout);
    return suspend(ticket);
  }
  TimerQueue& timers = FiberThread::current()->timers();
  ScopedTimer timer(&timers, timers.insert(deadline, *this, ticket));
  return suspend(ticket);
}

void Fiber::yield_now() noexcept {
  switch_out(Exit::yielding);
}

void Fiber::request_cancel() noexcept {
  cancel_pending_.store(true, std::memory_order_seq_cst);
  const std::uint64_t ticket = ticket_.load(std::memory_order_seq_cst);
  if (ticket & 1) wake(ticket, WakeReason::cancelled);
}

void Fiber::wait_finished_blocking() const noexcept {
  while (!finished_.load(std::memory_order_acquire))
    finished_.wait(false, std::memory_order_acquire);
}

Fiber::JoinWaiters& Fiber::joiners() {
  JoinWaiters* joiners = joiners_.load(std::memory_order_seq_cst);
  if (joiners) return *joiners;
  auto made = std::make_unique<JoinWaiters>();
  // seq_cst: a Dekker pair with complete(), which sets finished_ and then looks at joiners_. Either it
  // sees this list (and wakes whoever queues on it), or the caller sees finished_ under the list's lock.
  if (joiners_.compare_exchange_strong(joiners, made.get(), std::memory_order_seq_cst))
    return *made.release();
  return *joiners;  // another joiner was first
}

void Fiber::wait_finished() {
  if (finished()) return;
  JoinWaiters& joiners = this->joiners();
  std::unique_lock lock(joiners.mutex);
  while (!finished_.load(std::memory_order_seq_cst))  // seq_cst: see joiners()
    throw_if_cancelled(suspend_on(joiners.list, lock));
}

bool Fiber::wait_finished_until(Deadline deadline) {
  if (finished()) return true;
  JoinWaiters& joiners = this->joiners();
  std::unique_lock lock(joiners.mutex);
  while (!finished_.load(std::memory_order_seq_cst)) {  // seq_cst: see joiners()
    const WakeReason why = suspend_on(joiners.list, lock, deadline);
    throw_if_cancelled(why);
    if (why == WakeReason::timeout) return finished();
  }
  return true;
}

bool Fiber::subscribe_finished(Waiter& waiter) {
  JoinWaiters& joiners = this->joiners();
  std::lock_guard lock(joiners.mutex);
  if (finished_.load(std::memory_order_seq_cst)) return waiter.wake();  // seq_cst: see joiners()
  joiners.list.push_back(waiter);
  return false;
}

void Fiber::unsubscribe_finished(Waiter& waiter) noexcept {
  // A waiter was queued, so the list exists.
  JoinWaiters& joiners = *joiners_.load(std::memory_order_acquire);
  std::lock_guard lock(joiners.mutex);
  joiners.list.remove(waiter);
}

void Fiber::create_context(std::size_t size) {
  const boost::context::stack_context stack = StackPool::local().allocate(size);
  stack_ = to_stack_bounds(stack);
  stack_bytes_.store(stack_.size, std::memory_order_relaxed);
  stack_low_.store(stack_.bottom, std::memory_order_release);
  configured_stack_size_ = size;
  tsan_fiber_ = tsan_create();
  context_ = make_context(stack);
}

bool Fiber::release_idle_stack(std::uint64_t ticket) noexcept {
  // A third vote, held across the release: a waker that wins the wait meanwhile casts its vote, but only
  // ours (the last) schedules the fiber. It can only be taken while exactly one vote of the wait is cast.
  std::uint32_t one = 1;
  if (!votes_.compare_exchange_strong(one, 2, std::memory_order_acq_rel, std::memory_order_relaxed))
    return false;
  // If `ticket` is still open, the vote cast was the switch-out's (a winner moves the ticket on before it
  // votes), so the fiber is off its stack, and what its thread wrote before voting is visible here.
  const bool release = ticket_.load(std::memory_order_seq_cst) == ticket &&
                       idle_ticket_.load(std::memory_order_relaxed) == ticket && context_ != nullptr &&
                       !exception_saved_;
  if (release) drop_stack();
  if (votes_.fetch_sub(1, std::memory_order_acq_rel) == 1) schedule(*this);  // won meanwhile
  return release;
}

void Fiber::drop_stack() noexcept {
  stack_low_.store(nullptr, std::memory_order_relaxed);
  forget_stack(const_cast<void*>(stack_.bottom), stack_.size);  // ASan: what the dropped frames had poisoned
  StackPool::local().deallocate(to_stack_context(stack_));
  tsan_destroy(tsan_fiber_);
  tsan_fiber_ = nullptr;
  asan_fake_stack_ = nullptr;
  context_ = nullptr;
  restarted_ = true;
}

void Fiber::enter(boost::context::detail::fcontext_t thread) noexcept {
  finish_switch(nullptr);
  return_context_ = thread;
  execute();
  exit_ = Exit::finished;
}

void* Fiber::prepare_leave() noexcept {
  const Turn* thread = current_turn();
  start_switch(nullptr, thread->thread_stack);  // this stack is dying: ASan drops its fake frames
  return thread->tsan_context;
}

boost::context::detail::fcontext_t Fiber::take_return_context() noexcept {
  return std::exchange(return_context_, nullptr);
}

void Fiber::execute() noexcept {
  try {
    // Cancelled before it ever ran. A restart after its idle wait's stack went is its run()'s to handle:
    // that wait has to be closed first.
    if (!restarted_ && take_cancel()) throw Cancelled{};
    run();
  } catch (...) {
    error_ = std::current_exception();
  }
}

void Fiber::complete() noexcept {
  {
    finished_.store(true, std::memory_order_seq_cst);
    // A fiber nobody joined (a detached one) never made a list: no lock, no allocation.
    if (JoinWaiters* joiners = joiners_.load(std::memory_order_seq_cst)) {
      std::lock_guard lock(joiners->mutex);  // a joiner that saw finished_ false is queued by now
      joiners->list.wake_all();
    }
  }
  finished_.notify_all();
}

void Fiber::abandon() noexcept {
  error_ = std::make_exception_ptr(Cancelled{});
  error_observed_ = true;
  complete();
  release();
}

}  // namespace fiberio::detail
