#include "runtime/worker.hpp"

#include "executor/context.hpp"
#include "executor/overflow_reporter.hpp"
#include "executor/stack_pool.hpp"
#include "runtime/scheduler.hpp"

#include <cxxabi.h>
#include <pthread.h>

#include <cassert>

#include <chrono>
#include <utility>

namespace fiberio::detail {
namespace {

thread_local Worker* t_worker = nullptr;

// After this many fibers in a row from the LIFO slot, the slot's fiber goes to the back of the queue, so
// two fibers ping-ponging through it cannot starve the rest (tokio uses 3 as well).
constexpr std::uint32_t kMaxLifoStreak = 3;
// Stacks cached but unused for this long are handed back to the system.
constexpr auto kStackTrimPeriod = std::chrono::seconds(1);

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
__attribute__((noinline)) Worker* Worker::current() noexcept {
  asm volatile("" ::: "memory");
  return t_worker;
}

Worker::Worker(Scheduler& scheduler, std::uint32_t index, std::unique_ptr<Backend> backend)
    : scheduler_(scheduler),
      index_(index),
      stealing_(scheduler.config().work_stealing),
      event_interval_(scheduler.config().event_interval),
      reactor_(std::move(backend)),
      rng_(0x9E3779B97F4A7C15ull * (index + 1)) {}

// Inlined into run(): one call frame less around the switch measurably cuts its cost (docs/benchmarks.md).
__attribute__((always_inline)) inline void Worker::run_fiber(Fiber* fiber) {
  counters_.fibers_run.add();
  // A fiber queued twice (a double resume) would run on two stacks' worth of state at once: catch it in
  // debug builds, where the stress tests run.
  assert(!fiber->on_cpu.exchange(true, std::memory_order_acq_rel) && "fiber resumed twice");
  running_ = fiber;
  fiber->worker_index = index_;
  fiber->io_budget = scheduler_.config().io_budget;
  if (!fiber->context_) fiber->create_context();
  auto* thread_exceptions = reinterpret_cast<Fiber::ExceptionState*>(abi::__cxa_get_globals());
  std::swap(*thread_exceptions, fiber->exception_state);
  start_switch(&asan_fake_stack_, fiber->stack_);
  tsan_switch_to(fiber->tsan_fiber_);
  fiber->context_ = switch_context(std::move(fiber->context_));
  finish_switch(asan_fake_stack_);
  std::swap(*thread_exceptions, fiber->exception_state);
  running_ = nullptr;
#ifndef NDEBUG
  fiber->on_cpu.store(false, std::memory_order_release);
#endif
  fiber->after_switch_out(*this);
}

void Worker::run(const std::atomic<bool>& stop, std::optional<Deadline> until) {
  Worker* const outer = t_worker;
  t_worker = this;
  reactor_.set_owner(std::this_thread::get_id());
  thread_stack_ = current_thread_stack();
  prepare_thread_for_overflow_reports();
  tsan_context_ = tsan_current();

  while (!stop.load(std::memory_order_acquire)) {
    if (Fiber* fiber = next_fiber()) {
      stop_searching();  // found work of our own: a searcher that keeps counting would silence wake-ups
      run_fiber(fiber);
      continue;
    }
    if (stealing_) {
      if (Fiber* fiber = search()) {
        run_fiber(fiber);
        continue;
      }
    }
    if (until && Clock::now() >= *until) break;
    park(until);
  }
  t_worker = outer;
}

Fiber* Worker::next_fiber() {
  ++tick_;
  if (tick_ % event_interval_ == 0) {
    // Fairness: a worker busy with ready fibers still looks at I/O, timers and its inbox regularly.
    poll_events(std::chrono::nanoseconds::zero());
    fire_timers();
    if (Fiber* fiber = pop_inbox()) return fiber;
  }
  if (lifo_) {
    Fiber* fiber = lifo_;
    lifo_ = nullptr;
    if (lifo_streak_ < kMaxLifoStreak) {
      ++lifo_streak_;
      return fiber;
    }
    push_queue(fiber);
  }
  lifo_streak_ = 0;
  if (Fiber* fiber = queue_.pop()) return fiber;
  if (Fiber* fiber = pop_inbox()) return fiber;
  if (fire_timers() > 0) return next_fiber();
  return nullptr;
}

Fiber* Worker::pop_inbox() {
  Fiber* fiber = nullptr;
  if (!inbox_.try_dequeue(fiber)) return nullptr;
  counters_.inbox_pops.add();
  return fiber;
}

Fiber* Worker::search() {
  Idle& idle = scheduler_.idle();
  if (!searching_) {
    if (!idle.try_begin_search()) return nullptr;
    searching_ = true;
  }
  const std::uint32_t n = scheduler_.size();
  Fiber* found = nullptr;
  if (n > 1) {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    const std::uint32_t start = static_cast<std::uint32_t>(rng_ % n);
    for (std::uint32_t i = 0; i < n && !found; ++i) {
      Worker& victim = scheduler_.worker((start + i) % n);
      if (&victim == this) continue;
      counters_.steal_attempts.add();
      found = victim.steal_into(*this);
    }
  }
  if (!found) return nullptr;  // still searching: park() ends the search
  counters_.steals.add();
  stop_searching();
  return found;
}

void Worker::stop_searching() {
  if (!searching_) return;
  searching_ = false;
  // The last searcher to find work wakes another: there may be more where this came from.
  if (scheduler_.idle().end_search()) scheduler_.notify_work();
}

Fiber* Worker::steal_into(Worker& thief) noexcept {
  if (Fiber* fiber = queue_.steal_into(thief.queue_)) {
    thief.counters_.fibers_stolen.add(1 + thief.queue_.size());
    return fiber;
  }
  // The inbox is a multi-consumer queue: a thief may drain what a busy owner has not looked at yet.
  Fiber* fiber = nullptr;
  if (inbox_.try_dequeue(fiber)) {
    thief.counters_.fibers_stolen.add();
    return fiber;
  }
  return nullptr;
}

WorkerStats Worker::stats() const noexcept {
  WorkerStats stats = counters_.snapshot();
  stats.timers_pending = timers_.size();
  stats.fds_registered = reactor_.registered();
  return stats;
}

bool Worker::has_stealable_work() const noexcept {
  return !queue_.empty() || inbox_.size_approx() != 0;
}

bool Worker::has_local_work() const noexcept {
  return lifo_ != nullptr || !queue_.empty() || inbox_.size_approx() != 0;
}

void Worker::park(std::optional<Deadline> until) {
  Idle& idle = scheduler_.idle();
  bool in_parked_set = false;
  if (stealing_) {
    idle.add_parked(index_);
    in_parked_set = true;
    const bool was_searching = searching_;
    searching_ = false;
    const bool last = was_searching && idle.end_search();
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (last) {
      // The last searcher re-scans everything: a producer may have seen it searching and not woken anyone.
      for (std::uint32_t i = 0; i < scheduler_.size(); ++i) {
        if (!scheduler_.worker(i).has_stealable_work()) continue;
        if (!idle.remove_parked(index_)) {
          searching_ = true;  // a producer claimed us meanwhile and counted us as searching
        } else if (idle.try_begin_search()) {
          searching_ = true;
        }
        return;
      }
    }
  }

  // Dekker with unpark(): we publish `sleeping_` then read `notified_`; it publishes `notified_` then reads
  // `sleeping_`. One of us sees the other, so an unpark is never lost, even one that sent us to steal
  // from another worker's queue (which has_local_work() cannot see).
  sleeping_.store(true, std::memory_order_seq_cst);
  const bool notified = notified_.exchange(false, std::memory_order_seq_cst);
  if (!notified && !has_local_work() && !scheduler_.stopped().load(std::memory_order_acquire)) {
    std::optional<std::chrono::nanoseconds> timeout;
    const Deadline now = Clock::now();
    std::optional<Deadline> wake_at = timers_.earliest();
    if (until && (!wake_at || *until < *wake_at)) wake_at = until;
    if (wake_at) timeout = *wake_at > now ? *wake_at - now : std::chrono::nanoseconds::zero();
    if (now - last_trim_ >= kStackTrimPeriod) {
      StackPool::local().trim();
      last_trim_ = now;
    }
    counters_.parks.add();
    const std::uint64_t writes_before = reactor_.wake_channel().writes();
    poll_events(timeout);
    if (reactor_.wake_channel().writes() != writes_before) counters_.unparks.add();
  }
  sleeping_.store(false, std::memory_order_relaxed);
  fire_timers();

  if (in_parked_set && !idle.remove_parked(index_)) searching_ = true;  // a producer claimed us to search
}

bool Worker::unpark() noexcept {
  notified_.store(true, std::memory_order_seq_cst);
  if (!sleeping_.load(std::memory_order_seq_cst)) return false;
  // A worker dispatching its own events still counts as parked (and may claim itself as the worker to
  // wake): it is awake, so writing its own wake channel would be a wasted syscall.
  if (current() != this) reactor_.notify();
  return true;
}

std::size_t Worker::poll_events(std::optional<std::chrono::nanoseconds> timeout) {
  counters_.backend_polls.add();
  const std::size_t n = reactor_.poll(timeout);
  counters_.io_events.add(n);
  return n;
}

std::size_t Worker::fire_timers() {
  if (timers_.size() == 0) return 0;
  const std::size_t fired = timers_.fire_expired(Clock::now());
  counters_.timers_fired.add(fired);
  return fired;
}

void Worker::push_local(Fiber* fiber, bool lifo) {
  fiber->worker_index = index_;
  if (lifo) {
    Fiber* previous = lifo_;
    lifo_ = fiber;
    if (!previous) return;
    fiber = previous;
  }
  push_queue(fiber);
  if (stealing_) scheduler_.notify_work();
}

void Worker::push_queue(Fiber* fiber) {
  if (queue_.push(fiber)) return;
  // Full: spill half to the inbox, where this worker (and thieves) will find it.
  Fiber* batch[RunQueue<Fiber>::kCapacity / 2];
  const std::uint32_t n = queue_.pop_batch(batch, RunQueue<Fiber>::kCapacity / 2);
  inbox_.enqueue_bulk(batch, n);
  queue_.push(fiber);
}

bool Worker::push_remote(Fiber* fiber) {
  inbox_.enqueue(fiber);
  return unpark();
}

}  // namespace fiberio::detail
