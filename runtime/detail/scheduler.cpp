#include <fiberio/runtime/detail/scheduler.hpp>

#include <algorithm>

#include <fiberio/executor/detail/overflow_reporter.hpp>
#include <fiberio/executor/detail/stack_pool.hpp>
#include <fiberio/runtime/detail/stall_watchdog.hpp>
#include <fiberio/runtime/detail/worker.hpp>

#include <stdexcept>
#include <string>
#include <system_error>

namespace fiberio::detail {
namespace {

Config checked(Config config) {
  if (auto ok = config.validate(); !ok) throw std::invalid_argument("fiberio: " + ok.error());
  return config;
}

}  // namespace

Scheduler::Scheduler(Config config, bool caller_driven)
    : config_(checked(std::move(config))), caller_driven_(caller_driven), idle_(config_.threads) {
  install_overflow_reporter();
  workers_.reserve(config_.threads);
  for (std::uint32_t i = 0; i < config_.threads; ++i) {
    std::error_code ec;
    auto backend = config_.backend_factory ? config_.backend_factory() : make_backend(config_.backend, ec);
    if (!backend) throw std::system_error(ec, "fiberio: " + explain_backend_error(config_.backend, ec));
    workers_.push_back(std::make_unique<Worker>(*this, i, std::move(backend)));
  }
  if (config_.stall_threshold.count() > 0) watchdog_ = std::make_unique<StallWatchdog>(*this);
  if (caller_driven_) return;
  threads_.reserve(config_.threads);
  for (std::uint32_t i = 0; i < config_.threads; ++i) {
    threads_.emplace_back([this, i]() noexcept {
      if (config_.on_thread_start) config_.on_thread_start(i);
      workers_[i]->run(stopped_);
      if (config_.on_thread_stop) config_.on_thread_stop(i);
    });
  }
}

Scheduler::~Scheduler() {
  shutdown();
  watchdog_.reset();  // it reads the workers
  // A thread that woke one of our fibers may still be inside hand_over(), after the fiber it queued
  // finished: a few instructions more.
  while (handing_over_.load(std::memory_order_acquire) != 0)
    std::this_thread::yield();
}

void Scheduler::submit(Task* fiber, std::optional<std::uint32_t> worker) {
  bool start_cancelled;
  {
    std::lock_guard lock(registry_mutex_);
    if (stopped_.load(std::memory_order_acquire)) {
      fiber->abandon();  // no worker will ever run it
      return;
    }
    fiber->registry_next = registry_head_;
    if (registry_head_) registry_head_->registry_prev = fiber;
    registry_head_ = fiber;
    live_.fetch_add(1, std::memory_order_relaxed);
    start_cancelled = fiber->shutdown_cancelled = stopping();
  }
  // The first idle loop: worker 0, perhaps parked without a timeout, must start its release passes.
  if (fiber->idle_loop && idle_loops_.fetch_add(1, std::memory_order_relaxed) == 0 &&
      config_.idle_stack_release.count() > 0)
    workers_[0]->unpark();
  // A fiber spawned during shutdown starts cancelled: it unwinds at its first suspension.
  if (start_cancelled) fiber->request_cancel();

  Worker* here = Worker::current();
  if (here && &here->scheduler() != this) here = nullptr;
  std::uint32_t target;
  if (worker) {
    target = *worker % size();
  } else if (here) {
    target = here->index();
  } else {
    target = next_worker_.fetch_add(1, std::memory_order_relaxed) % size();
  }
  fiber->home.store(target, std::memory_order_relaxed);
  if (here && here->index() == target) {
    here->push_local(fiber, false);
  } else {
    hand_over(fiber, target);
  }
}

void Scheduler::hand_over(Task* task, std::uint32_t worker) {
  // Counted before the fiber is queued: until then it cannot finish, so the runtime is alive.
  handing_over_.fetch_add(1, std::memory_order_acq_rel);
  // A busy worker gets to its inbox only in its next round: let an idle worker steal it meanwhile.
  if (!workers_[worker]->push_remote(task) && config_.work_stealing) notify_work();
  handing_over_.fetch_sub(1, std::memory_order_release);  // the last touch of this scheduler
}

std::size_t Scheduler::release_idle_stacks() noexcept {
  // Released stacks beyond this many keep no pages: the next few idle loops to wake find warm ones.
  constexpr std::size_t kWarmStacks = 8;
  std::size_t released = 0;
  {
    // Walking every live fiber under the registry lock: a few loads each, once a period, and a fiber in
    // the registry cannot finish (nor be freed) meanwhile.
    std::lock_guard lock(registry_mutex_);
    for (Task* task = registry_head_; task; task = task->registry_next) {
      if (!task->idle_loop) continue;
      const std::uint64_t ticket = task->open_idle_wait();
      if (ticket != 0 && ticket == task->idle_seen) {
        if (task->release_idle_stack(ticket)) ++released;
        task->idle_seen = 0;  // the same wait again at the next pass: a no-op
      } else {
        task->idle_seen = ticket;
      }
    }
  }
  if (released != 0) StackPool::local().release_pages(kWarmStacks);
  return released;
}

void Scheduler::notify_work() {
  if (auto worker = idle_.should_wake()) workers_[*worker]->unpark();
}

void Scheduler::on_finished(Task* fiber) noexcept {
  bool last = false;
  {
    std::lock_guard lock(registry_mutex_);
    (fiber->registry_prev ? fiber->registry_prev->registry_next : registry_head_) = fiber->registry_next;
    if (fiber->registry_next) fiber->registry_next->registry_prev = fiber->registry_prev;
    fiber->registry_prev = fiber->registry_next = nullptr;
    if (fiber->idle_loop) idle_loops_.fetch_sub(1, std::memory_order_relaxed);
    last = live_.fetch_sub(1, std::memory_order_acq_rel) == 1;
    if (last && stopping()) {
      stopped_.store(true, std::memory_order_release);
      all_finished_.notify_all();
    }
  }
  if (last && stopped_.load(std::memory_order_acquire)) {
    for (auto& worker : workers_)
      worker->unpark();
  }
}

void Scheduler::cancel_all() {
  std::lock_guard lock(registry_mutex_);
  for (Task* f = registry_head_; f; f = f->registry_next) {
    // Every fiber is cancelled once. Again only if it swallowed that Cancelled and blocks once more
    // outside any handler: never while it unwinds (a wait in a destructor must work, design.md).
    if (f->shutdown_cancelled && (f->cancel_requested() || f->in_exception())) continue;
    f->shutdown_cancelled = true;
    f->request_cancel();
  }
}

bool Scheduler::shutdown(std::optional<Deadline> deadline) {
  {
    std::lock_guard lock(registry_mutex_);
    stopping_.store(true, std::memory_order_release);
    if (live_.load(std::memory_order_acquire) == 0) stopped_.store(true, std::memory_order_release);
  }
  // Fibers may swallow Cancelled and block again, or spawn more: keep cancelling until none is left.
  while (!stopped_.load(std::memory_order_acquire)) {
    const Deadline now = Clock::now();
    if (deadline && now >= *deadline) return false;
    cancel_all();
    const Deadline next = std::min(now + std::chrono::milliseconds(10), deadline.value_or(Deadline::max()));
    if (caller_driven_) {
      workers_[0]->run(stopped_, next);
    } else {
      std::unique_lock lock(registry_mutex_);
      all_finished_.wait_until(lock, next, [this] { return stopped_.load(std::memory_order_acquire); });
    }
  }
  std::call_once(join_once_, [this] {
    for (auto& worker : workers_)
      worker->unpark();
    for (auto& thread : threads_)
      thread.join();
  });
  return true;
}

void Scheduler::drive(const std::atomic<bool>& done) {
  workers_[0]->run(done);
}

std::vector<WorkerStats> Scheduler::stats() const {
  std::vector<WorkerStats> out;
  out.reserve(workers_.size());
  for (const auto& worker : workers_)
    out.push_back(worker->stats());
  return out;
}

std::optional<std::string> Scheduler::running_fiber_name(std::uint32_t worker, const Fiber* fiber) const {
  // A fiber leaves the registry (under this lock) before it can be freed, and it is on a CPU until it
  // finishes: so while the lock is held and the worker still runs it, it is alive.
  std::lock_guard lock(registry_mutex_);
  if (workers_[worker]->running() != fiber) return std::nullopt;
  return fiber->name();
}

std::vector<FiberInfo> Scheduler::fibers() const {
  std::vector<const Fiber*> running(workers_.size());
  for (std::size_t i = 0; i < workers_.size(); ++i)
    running[i] = workers_[i]->running();
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  std::vector<FiberInfo> out;
  std::lock_guard lock(registry_mutex_);  // a fiber in the registry is not freed meanwhile
  out.reserve(live_.load(std::memory_order_relaxed));
  for (const Task* task = registry_head_; task; task = task->registry_next) {
    FiberInfo& info = out.emplace_back();
    info.name = task->name();
    info.worker = task->home.load(std::memory_order_relaxed);
    const Fiber::WaitNote note = task->wait_note();
    if (auto on = std::find(running.begin(), running.end(), task); on != running.end()) {
      info.state = FiberInfo::State::running;
      info.worker = static_cast<std::uint32_t>(on - running.begin());
    } else if (note.waiting) {
      info.state = FiberInfo::State::waiting;
      info.waiting_on = note.what ? note.what : "?";
      if (note.fd >= 0) info.waiting_on = "fd " + std::to_string(note.fd) + " " + info.waiting_on;
      if (note.since_ns != 0 && now > note.since_ns) {
        info.waiting_for = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::nanoseconds(now - note.since_ns));
      }
    }
    const StackBounds stack = task->published_stack();
    if (stack.bottom) {  // as the user asked for it (Config::stack_size), not rounded up to pages
      info.stack_size = std::min(stack.size, config_.stack_size);
      info.stack_high_water = std::min(StackPool::high_water(stack), info.stack_size);
    }
  }
  return out;
}

}  // namespace fiberio::detail
