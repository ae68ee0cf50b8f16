#include <fiberio/runtime/detail/worker.hpp>

#include <fiberio/executor/detail/stack_pool.hpp>
#include <fiberio/runtime/detail/scheduler.hpp>

#include <chrono>
#include <utility>

namespace fiberio::detail {
namespace {

// After this many fibers in a row from the LIFO slot, the slot's fiber goes to the back of the queue, so
// two fibers ping-ponging through it cannot starve the rest (tokio uses 3 as well).
constexpr std::uint32_t kMaxLifoStreak = 3;
// Stacks cached but unused for this long are handed back to the system.
constexpr auto kStackTrimPeriod = std::chrono::seconds(1);

}  // namespace

Worker::Worker(Scheduler& scheduler, std::uint32_t index, std::unique_ptr<Backend> backend)
    : FiberThread(index, scheduler.config().stack_size, scheduler.config().io_budget),
      scheduler_(scheduler),
      stealing_(scheduler.config().work_stealing && scheduler.config().threads > 1),  // nobody to steal from
      event_interval_(scheduler.config().event_interval),
      reactor_(std::move(backend)),
      rng_(0x9E3779B97F4A7C15ull * (index + 1)),
      release_period_(index == 0 ? scheduler.config().idle_stack_release : std::chrono::milliseconds{0}) {}

// Inlined into run(), like the switch inside it (FiberThread::resume).
__attribute__((always_inline)) inline void Worker::run_task(Task* task) {
  counters_.fibers_run.add();
  task->home.store(index(), std::memory_order_relaxed);
  switch (resume(*task)) {
    case Fiber::Exit::waiting:
      if (task->switched_out()) schedule(*task);
      return;
    case Fiber::Exit::yielding:
      deferred_.push_back(task);  // after the next look at I/O and timers (next_task)
      return;
    case Fiber::Exit::finished:
      task->complete();
      scheduler_.on_finished(task);
      task->release();  // the scheduler's reference
      return;
  }
}

void Worker::run(const std::atomic<bool>& stop, std::optional<Deadline> until) {
  const Binding bind_thread(*this);
  const Reactor::Binding bind_reactor(reactor_);

  while (!stop.load(std::memory_order_acquire)) {
    if (Task* task = next_task()) {
      if (searching_)
        stop_searching();  // own work found: a searcher that keeps counting would silence wake-ups
      run_task(task);
      continue;
    }
    if (stealing_) {
      if (Task* task = search()) {
        run_task(task);
        continue;
      }
    }
    if (until && Clock::now() >= *until) break;
    park(until);
  }
}

Task* Worker::next_task() {
  ++tick_;
  if (--until_look_ == 0) {
    until_look_ = event_interval_;
    // Fairness: a worker busy with ready fibers still looks at I/O, timers and its inbox regularly.
    look_around();
    if (Task* task = pop_inbox()) return task;
  }
  if (lifo_) {
    Task* task = lifo_;
    lifo_ = nullptr;
    if (lifo_streak_ < kMaxLifoStreak) {
      ++lifo_streak_;
      return task;
    }
    push_queue(task);
  }
  lifo_streak_ = 0;
  // Yielded fibers the last look let go come first: the queue may never run dry, and they must not starve
  // behind it (they wait at most until the next look, and run before what was queued since).
  if (looked_next_ < looked_.size()) return looked_[looked_next_++];
  if (!pinned_.empty()) [[unlikely]] {
    // Pinned fibers take turns with the shared queue, so neither can starve the other.
    if (tick_ & 1) return pop_pinned();
    if (Task* task = queue_.pop()) return task;
    return pop_pinned();
  }
  if (Task* task = queue_.pop()) return task;
  if (!deferred_.empty()) {
    look_around();  // only yielded fibers wait: let in what they yielded to, then run them
    if (Task* task = queue_.pop()) return task;
    if (looked_next_ < looked_.size()) return looked_[looked_next_++];
  }
  if (Task* task = pop_inbox()) return task;
  if (fire_timers() > 0) return next_task();
  return nullptr;
}

void Worker::look_around() {
  // Without a registered fd the backend can only report the wake channel, which guards the inbox that the
  // caller looks at anyway: a loop of yields without I/O costs no syscall.
  if (reactor_.registered() != 0) poll_events(std::chrono::nanoseconds::zero());
  fire_timers();
  // A worker that never runs out of work never parks: it keeps its coarse clock and house from here.
  if ((++looks_ & 15) == 0) {  // every 16 looks, about every 1,000 fiber runs: the coarse clock
    const Deadline now = Clock::now();
    set_coarse_now(now);
    if ((looks_ & 255) == 0) housekeep(now);
  }
  if (deferred_.empty()) return;
  if (stealing_) {
    // Into the queue, where idle workers may steal them.
    for (Task* task : deferred_)
      push_queue(task);
    scheduler_.notify_work();
  } else {
    // Nobody steals: they wait in `looked_`, in order, without a trip through the queue's atomics.
    looked_.erase(looked_.begin(), looked_.begin() + static_cast<std::ptrdiff_t>(looked_next_));
    looked_next_ = 0;
    if (looked_.empty()) {
      std::swap(looked_, deferred_);
    } else {
      looked_.insert(looked_.end(), deferred_.begin(), deferred_.end());
    }
  }
  deferred_.clear();
}

Task* Worker::pop_inbox() {
  Task* task = nullptr;
  if (!inbox_.try_dequeue(task) && !pinned_inbox_.try_dequeue(task)) return nullptr;
  counters_.inbox_pops.add();
  return task;
}

Task* Worker::pop_pinned() {
  Task* task = pinned_.front();
  pinned_.pop_front();
  return task;
}

Task* Worker::search() {
  Idle& idle = scheduler_.idle();
  if (!searching_) {
    if (!idle.try_begin_search()) return nullptr;
    searching_ = true;
  }
  const std::uint32_t n = scheduler_.size();
  Task* found = nullptr;
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

Task* Worker::steal_into(Worker& thief) noexcept {
  if (Task* task = queue_.steal_into(thief.queue_)) {
    thief.counters_.fibers_stolen.add(1 + thief.queue_.size());
    return task;
  }
  // The inbox is a multi-consumer queue: a thief may drain what a busy owner has not looked at yet.
  Task* task = nullptr;
  if (inbox_.try_dequeue(task)) {
    thief.counters_.fibers_stolen.add();
    return task;
  }
  return nullptr;
}

WorkerStats Worker::stats() const noexcept {
  WorkerStats stats = counters_.snapshot();
  stats.timers_pending = timers().size();
  stats.fds_registered = reactor_.registered();
  return stats;
}

bool Worker::has_stealable_work() const noexcept {
  return !queue_.empty() || inbox_.size_approx() != 0;
}

bool Worker::has_local_work() const noexcept {
  return lifo_ != nullptr || !queue_.empty() || !deferred_.empty() || looked_next_ < looked_.size() ||
         !pinned_.empty() || inbox_.size_approx() != 0 || pinned_inbox_.size_approx() != 0;
}

void Worker::park(std::optional<Deadline> until) {
  Idle& idle = scheduler_.idle();
  bool in_parked_set = false;
  if (stealing_) {
    idle.add_parked(index());
    in_parked_set = true;
    const bool was_searching = searching_;
    searching_ = false;
    const bool last = was_searching && idle.end_search();
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (last) {
      // The last searcher re-scans everything: a producer may have seen it searching and not woken anyone.
      for (std::uint32_t i = 0; i < scheduler_.size(); ++i) {
        if (!scheduler_.worker(i).has_stealable_work()) continue;
        if (!idle.remove_parked(index())) {
          searching_ = true;  // a producer claimed us meanwhile and counted us as searching
        } else if (idle.try_begin_search()) {
          searching_ = true;
        }
        return;
      }
    }
  }

  // Before the checks below: a release pass may queue a fiber here (one woken while its stack went).
  const Deadline before = Clock::now();
  set_coarse_now(before);
  housekeep(before);
  // Dekker with unpark(): we publish `sleeping_` then read `notified_`; it publishes `notified_` then reads
  // `sleeping_`. One of us sees the other, so an unpark is never lost, even one that sent us to steal
  // from another worker's queue (which has_local_work() cannot see).
  sleeping_.store(true, std::memory_order_seq_cst);
  const bool notified = notified_.exchange(false, std::memory_order_seq_cst);
  if (!notified && !has_local_work() && !scheduler_.stopped().load(std::memory_order_acquire)) {
    std::optional<std::chrono::nanoseconds> timeout;
    const Deadline now = Clock::now();
    std::optional<Deadline> wake_at = timers().earliest();
    if (until && (!wake_at || *until < *wake_at)) wake_at = until;
    // Idle loops alive: worker 0 wakes for its next release pass.
    if (release_period_.count() > 0 && scheduler_.idle_loops() != 0 && (!wake_at || next_release_ < *wake_at))
      wake_at = next_release_;
    if (wake_at) timeout = *wake_at > now ? *wake_at - now : std::chrono::nanoseconds::zero();
    counters_.parks.add();
    const std::uint64_t writes_before = reactor_.wake_channel().writes();
    poll_events(timeout);
    set_coarse_now(Clock::now());  // it may have slept long: the fibers it wakes stamp their next waits
    if (reactor_.wake_channel().writes() != writes_before) counters_.unparks.add();
  }
  sleeping_.store(false, std::memory_order_relaxed);
  fire_timers();

  if (in_parked_set && !idle.remove_parked(index())) searching_ = true;  // a producer claimed us to search
}

void Worker::housekeep(Deadline now) {
  if (now - last_trim_ >= kStackTrimPeriod) {
    StackPool::local().trim();
    last_trim_ = now;
  }
  if (release_period_.count() > 0 && now >= next_release_) {
    if (scheduler_.idle_loops() != 0) counters_.stacks_released.add(scheduler_.release_idle_stacks());
    next_release_ = now + release_period_;
  }
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
  run_woken_now_ = !stealing_;
  const std::size_t n = reactor_.poll(timeout);
  run_woken_now_ = false;
  counters_.io_events.add(n);
  return n;
}

std::size_t Worker::fire_timers() {
  if (timers().size() == 0) return 0;
  const std::size_t fired = timers().fire_expired(Clock::now());
  counters_.timers_fired.add(fired);
  return fired;
}

__attribute__((always_inline)) inline bool Worker::try_run_now(Task* task) {
  if (!run_woken_now_ || running()) return false;
  run_woken_now_ = false;  // a fiber it wakes meanwhile (or this one, woken again) is queued: no recursion
  // Awake now: a producer that sees this queues into the inbox without writing the wake channel, and the
  // loop looks at the inbox before it parks again (the Dekker pair in park() is redone then).
  sleeping_.store(false, std::memory_order_relaxed);
  run_task(task);
  run_woken_now_ = true;
  return true;
}

// Defined here, beside try_run_now() and run_task(), which it inlines: a wake-up from the worker's own
// reactor goes from the vote to the switch into the fiber in one call frame.
__attribute__((always_inline)) inline void Scheduler::schedule(Task* fiber) {
  Worker* here = Worker::current();
  if (here && &here->scheduler() == this &&
      ((config_.work_stealing && !fiber->pinned) ||
       fiber->home.load(std::memory_order_relaxed) == here->index())) {
    // Woken by this worker's reactor: run it now, if nobody could steal it. Woken by the fiber running
    // here (a message, an unlock): run it next, it is likely hot in cache.
    if (here->try_run_now(fiber)) return;
    here->push_local(fiber, here->running() != nullptr);
    return;
  }
  hand_over(fiber, fiber->home.load(std::memory_order_relaxed));
}

// The executor's seam (executor/detail/fiber.hpp): every fiber the runtime runs is a Task.
void schedule(Fiber& fiber) noexcept {
  Task& task = static_cast<Task&>(fiber);
  task.scheduler().schedule(&task);
}

void Worker::push_local(Task* task, bool lifo) {
  task->home.store(index(), std::memory_order_relaxed);
  if (lifo) {
    Task* previous = lifo_;
    lifo_ = task;
    if (!previous) return;
    task = previous;
  }
  // Read before queueing: once queued, a thief may run the fiber to its end and free it.
  const bool stealable = !task->pinned;
  push_queue(task);
  if (stealing_ && stealable) scheduler_.notify_work();
}

void Worker::push_queue(Task* task) {
  if (task->pinned) {
    pinned_.push_back(task);
    return;
  }
  if (queue_.push(task)) return;
  // Full: spill half to the inbox, where this worker (and thieves) will find it.
  Task* batch[RunQueue<Task>::kCapacity / 2];
  const std::uint32_t n = queue_.pop_batch(batch, RunQueue<Task>::kCapacity / 2);
  inbox_.enqueue_bulk(batch, n);
  queue_.push(task);
}

bool Worker::push_remote(Task* task) {
  (task->pinned ? pinned_inbox_ : inbox_).enqueue(task);
  return unpark();
}

}  // namespace fiberio::detail
