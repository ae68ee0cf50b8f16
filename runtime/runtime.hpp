// runtime/runtime.hpp — the public entry point: a pool of worker threads, each with its own reactor and
// timers, running fibers.
//
//   fiberio::Runtime rt{fiberio::Config{.threads = 4}};
//   auto h = rt.spawn([] { fiberio::sleep_for(10ms); return 1; });
//   int one = h.join();                       // from main: blocks this thread
//   int two = rt.block_on([] { return 2; });  // runs a fiber and waits for it
//
// spawn() works from any thread; inside a fiber, fiberio::spawn() uses the runtime the fiber runs on.
// block_on() from a plain thread blocks that thread; from a fiber of this runtime it is a nested run
// (spawn + join, the calling fiber suspends, the worker keeps running): it never deadlocks.
// fiberio::block_on() (free function) drives a one-worker runtime on the calling thread itself, like
// async-io's block_on; calling it from a fiber is an error (std::logic_error), as it would stall a worker.
// Shutdown (shutdown() or the destructor) cancels every fiber once, and again only one that swallowed
// Cancelled and blocks outside any handler (never one that is unwinding: waits in destructors work),
// until all have unwound; then it joins the workers. Thread-safety: every member may be called from any
// thread.
#pragma once

#include <fiberio/runtime/config.hpp>
#include <fiberio/runtime/detail/task.hpp>
#include <fiberio/runtime/fiber_info.hpp>
#include <fiberio/runtime/join_handle.hpp>
#include <fiberio/runtime/stats.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace fiberio {

// Placement. `worker` only places a fiber: with work stealing (the default) an idle worker may take it
// at once, and a woken fiber may run on the worker that woke it. `pinned` keeps it on its worker (the one
// given, or the one it is placed on) for its whole life: never stolen, always woken back onto that worker
// (thread-affine work, per-worker state). Without stealing every fiber stays on its worker anyway.
struct SpawnOptions {
  std::string name{};                     // shown in error reports
  std::optional<std::uint32_t> worker{};  // place on this worker (modulo the thread count)
  bool pinned = false;                    // and never leave it
};

namespace detail {

class Scheduler;

template <class F>
using SpawnResult = std::invoke_result_t<std::decay_t<F>&>;

// Registers a new task with `scheduler` and queues it (Scheduler::submit; out of line so that this header
// needs no scheduler internals).
void submit(Scheduler& scheduler, Task* task, std::optional<std::uint32_t> worker);

// Places a new task as `options` say and queues it; the handle takes a reference of its own.
template <class R>
JoinHandle<R> start(Scheduler& scheduler, ResultTask<R>* task, const SpawnOptions& options) {
  task->add_ref();  // the handle's reference; the scheduler keeps the initial one
  task->pinned = options.pinned;
  submit(scheduler, task, options.worker);
  return JoinHandle<R>(task);
}

template <class F>
JoinHandle<SpawnResult<F>> spawn_on(Scheduler& scheduler, F&& fn, SpawnOptions options) {
  using R = SpawnResult<F>;
  return start<R>(scheduler,
                  new FnTask<R, std::decay_t<F>>(scheduler, std::move(options.name), std::forward<F>(fn)),
                  options);
}

// The scheduler of the fiber or worker running on this thread; throws std::logic_error elsewhere.
Scheduler& current_scheduler();

}  // namespace detail

// Declared here for Runtime's friendship; defined below.
template <class F>
detail::SpawnResult<F> block_on(F&& fn, Config config = Config{.threads = 1});

class Runtime {
 public:
  explicit Runtime(Config config = Config{});  // throws std::invalid_argument, std::system_error
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  template <class F>
  JoinHandle<detail::SpawnResult<F>> spawn(F&& fn, SpawnOptions options = {}) {
    return detail::spawn_on(*scheduler_, std::forward<F>(fn), std::move(options));
  }

  template <class F>
  JoinHandle<detail::SpawnResult<F>> spawn_on(std::uint32_t worker, F&& fn) {
    return detail::spawn_on(*scheduler_, std::forward<F>(fn), SpawnOptions{{}, worker});
  }

  template <class F>
  detail::SpawnResult<F> block_on(F&& fn) {
    return spawn(std::forward<F>(fn), SpawnOptions{"block_on", std::nullopt}).join();
  }

  // Cancels all fibers, waits until they have unwound, joins the workers. Idempotent. Must not be
  // called from one of this runtime's fibers.
  void shutdown();
  // shutdown() that waits at most until `deadline` (or for `limit`): true if every fiber unwound in time
  // (the workers are then joined). False: some still run, blocked again after their Cancelled or
  // computing; they stay cancelled, a later shutdown() or the destructor waits for them, and a program
  // that cannot wait ends itself (tokio's shutdown_timeout leaks such tasks; fibers have stacks that are
  // live until they return, so fiberio does not pretend they are gone).
  bool shutdown(Deadline deadline);
  template <class Rep, class Period>
  bool shutdown(std::chrono::duration<Rep, Period> limit) {
    return shutdown(deadline_after(limit));
  }

  const Config& config() const noexcept;
  std::vector<WorkerStats> stats() const;
  // Every live fiber: name, state, what it waits on and for how long, worker, stack high-water mark
  // (runtime/fiber_info.hpp). Any thread, while the workers run; a snapshot, approximate by nature.
  std::vector<FiberInfo> fibers() const;
  std::size_t live_fibers() const noexcept;

 private:
  template <class F>
  friend detail::SpawnResult<F> block_on(F&& fn, Config config);
  // block_on's runtime: no threads; the caller runs worker 0 through drive().
  struct CallerDriven {};
  Runtime(Config config, CallerDriven);
  // Runs worker 0 on the calling thread until `done`.
  void drive(const std::atomic<bool>& done);

  std::unique_ptr<detail::Scheduler> scheduler_;
};

// Spawns on the runtime of the calling fiber. Throws std::logic_error outside a fiber.
template <class F>
JoinHandle<detail::SpawnResult<F>> spawn(F&& fn, SpawnOptions options = {}) {
  return detail::spawn_on(detail::current_scheduler(), std::forward<F>(fn), std::move(options));
}

// Runs `fn` as a fiber on a one-worker runtime driven by the calling thread, until it returns; then
// cancels and unwinds whatever fibers it left behind, and returns fn's result (or rethrows).
template <class F>
detail::SpawnResult<F> block_on(F&& fn, Config config) {
  if (detail::Fiber::current()) {
    throw std::logic_error("fiberio::block_on called from a fiber: use spawn(...).join() instead");
  }
  config.threads = 1;
  Runtime runtime(std::move(config), Runtime::CallerDriven{});
  using R = detail::SpawnResult<F>;
  auto* task = new detail::FnTask<R, std::decay_t<F>>(*runtime.scheduler_, "block_on", std::forward<F>(fn));
  task->add_ref();
  JoinHandle<R> handle(task);
  detail::submit(*runtime.scheduler_, task, 0);
  runtime.drive(task->finished_flag());
  runtime.shutdown();
  return handle.join();
}

}  // namespace fiberio
