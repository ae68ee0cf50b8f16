// runtime/detail/scheduler.hpp — the engine behind fiberio::Runtime: the workers, their threads, the idle
// bookkeeping, and the registry of live fibers that shutdown cancels.
// Thread-safety: every public member may be called from any thread, including from fibers.
// Invariants: `live_` counts fibers submitted and not yet finished; `stopped_` becomes true only after
// shutdown began and `live_` reached zero, and workers exit their loops only then.
#pragma once

#include <fiberio/runtime/config.hpp>
#include <fiberio/runtime/detail/idle.hpp>
#include <fiberio/runtime/detail/task.hpp>
#include <fiberio/runtime/fiber_info.hpp>
#include <fiberio/runtime/stats.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace fiberio::detail {

class Worker;
class StallWatchdog;

class Scheduler {
 public:
  // `caller_driven`: no threads are started; the caller runs worker 0 through drive() (block_on).
  Scheduler(Config config, bool caller_driven);  // throws std::invalid_argument, std::system_error
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  const Config& config() const noexcept { return config_; }
  std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(workers_.size()); }
  Worker& worker(std::uint32_t index) noexcept { return *workers_[index]; }
  Idle& idle() noexcept { return idle_; }

  // Registers a new fiber and queues it: on `worker` if given, else on the calling worker, else
  // round-robin. Takes over the fiber's initial reference.
  void submit(Task* task, std::optional<std::uint32_t> worker);
  // Stealable work appeared: wake a parked worker if nobody is searching.
  void notify_work();
  // A worker reports a fiber that ran to completion.
  void on_finished(Task* task) noexcept;

  // Cancels every live fiber (again every 10 ms until all have unwound), then stops and joins the
  // workers. With a deadline, gives up waiting there and returns false (fibers still live; a later call
  // goes on). Idempotent; must not be called from a fiber of this scheduler.
  bool shutdown(std::optional<Deadline> deadline = std::nullopt);
  // Caller-driven mode: runs worker 0 on this thread until `done`.
  void drive(const std::atomic<bool>& done);

  // Worker 0, once per Config::idle_stack_release: takes back the stack of every idle loop found in the
  // same idle wait as at the last call (idle through a whole period). Returns how many it took.
  std::size_t release_idle_stacks() noexcept;
  // Idle loops alive (whether worker 0 has to look).
  std::size_t idle_loops() const noexcept { return idle_loops_.load(std::memory_order_relaxed); }

  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  const std::atomic<bool>& stopped() const noexcept { return stopped_; }
  std::size_t live_fibers() const noexcept { return live_.load(std::memory_order_acquire); }
  std::vector<WorkerStats> stats() const;
  std::vector<FiberInfo> fibers() const;  // Runtime::fibers()
  // The name of `fiber` if it is still the one on `worker`'s CPU (read under the registry lock, which
  // keeps it alive); nullopt if that moved on. For the stall watchdog.
  std::optional<std::string> running_fiber_name(std::uint32_t worker, const Fiber* fiber) const;

 private:
  // Makes a woken task runnable: the wait protocol's second vote, which every caller casts through the
  // executor's seam, schedule(Fiber&). Both are defined in worker.cpp, inlined with the worker's switch,
  // so that a wake-up goes from the vote to the fiber in one call frame.
  friend void schedule(Fiber& fiber) noexcept;
  void schedule(Task* task);
  void cancel_all();
  // Queues `task` in `worker`'s inbox from any thread and wakes a worker as needed, keeping this
  // scheduler alive until it is done (handing_over_).
  void hand_over(Task* task, std::uint32_t worker);

  const Config config_;
  const bool caller_driven_;
  Idle idle_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::atomic<std::uint32_t> next_worker_{0};

  mutable std::mutex registry_mutex_;  // guards the list of live fibers and shutdown's wait
  std::condition_variable all_finished_;
  Task* registry_head_ = nullptr;
  std::atomic<std::size_t> live_{0};
  std::atomic<std::size_t> idle_loops_{0};  // live tasks with Task::idle_loop
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  std::once_flag join_once_;  // the workers' threads are joined by the first shutdown that sees them done
  // Calls of hand_over() in progress. Once queued, a fiber may run to its end and the runtime be
  // destroyed before the caller, on a thread of its own, has unparked the worker: the destructor waits
  // for this to drop to zero.
  std::atomic<std::uint32_t> handing_over_{0};
  std::unique_ptr<StallWatchdog> watchdog_;  // Config::stall_threshold > 0; destroyed before the workers
};

}  // namespace fiberio::detail
