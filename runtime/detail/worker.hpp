// runtime/detail/worker.hpp — one worker: a thread's scheduling loop with its reactor, timers and run queues.
//
// A Worker is the executor's FiberThread (the switch, the timers) plus what the runtime adds: run queues, a
// reactor, stealing and parking. A worker loops: run a ready fiber (LIFO slot, then local queue, then inbox);
// every `event_interval` runs look at the inbox, timers and backend first; a fiber that yields waits in
// `deferred_` until the next such look (taken at once when nothing else is queued); when out of work,
// steal (if enabled), then park in the backend's wait with the next timer as timeout. Without stealing, a
// fiber woken by the worker's own reactor runs from inside the event's dispatch (try_run_now), and looked-at
// yielded fibers run from `looked_`, after the LIFO slot, before the queue. docs/design.md walks the states.
// Pinned fibers have their own queue and inbox, which steal_into() never touches.
// Thread-safety: the loop, push_local() and the LIFO slot belong to the worker's thread.
// push_remote(), unpark(), the inbox, the timers and the reactor's registration calls are for any thread;
// steal_from() is called by other workers. Invariants: a fiber is in at most one queue, and is queued only
// after it fully switched out.
#pragma once

#include <fiberio/executor/detail/fiber_thread.hpp>
#include <fiberio/executor/detail/run_queue.hpp>
#include <fiberio/reactor/detail/reactor.hpp>
#include <fiberio/runtime/detail/task.hpp>
#include <fiberio/runtime/stats.hpp>

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace fiberio::detail {

class Scheduler;

class Worker : public FiberThread {
 public:
  Worker(Scheduler& scheduler, std::uint32_t index, std::unique_ptr<Backend> backend);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The worker whose loop runs on this thread, or nullptr (every bound FiberThread is a Worker).
  static Worker* current() noexcept { return static_cast<Worker*>(FiberThread::current()); }

  // Runs the loop on the calling thread until `stop` is true or `until` passes.
  void run(const std::atomic<bool>& stop, std::optional<Deadline> until = std::nullopt);

  // Owner thread: makes `fiber` runnable here; `lifo` puts it next in line (the LIFO slot).
  void push_local(Task* task, bool lifo);
  // Owner thread: runs a fiber woken by this worker's own reactor at once, from inside the dispatch of
  // the event, if the worker is dispatching from its loop and nobody could steal the fiber (one worker,
  // or stealing off): the queue would only hand it back. False when it must be queued instead.
  bool try_run_now(Task* task);
  // Any thread: queues `fiber` in the inbox and unparks the worker; true if it was parked (so it will
  // look at its inbox now), false if it is busy and will get to it in its next round.
  bool push_remote(Task* task);
  // Any thread: interrupts the worker's park, if it is parked; true if it was.
  bool unpark() noexcept;
  // Another worker: takes about half of this worker's queued fibers into `thief`'s queue; returns one to
  // run now, or nullptr.
  Task* steal_into(Worker& thief) noexcept;
  bool has_stealable_work() const noexcept;

  Reactor& reactor() noexcept { return reactor_; }
  Scheduler& scheduler() noexcept { return scheduler_; }
  WorkerStats stats() const noexcept;
  // Any thread: fiber turns so far (WorkerStats::fibers_run), one relaxed load (the stall watchdog).
  std::uint64_t turns() const noexcept { return counters_.fibers_run.get(); }

 private:
  Task* next_task();
  Task* pop_inbox();
  Task* pop_pinned();
  Task* search();
  void stop_searching();
  void park(std::optional<Deadline> until);
  void run_task(Task* task);
  void push_queue(Task* task);
  std::size_t poll_events(std::optional<std::chrono::nanoseconds> timeout);
  std::size_t fire_timers();
  // Polls the backend without blocking, fires due timers, then makes the deferred (yielded) fibers
  // runnable: queued (stealing on) or moved to `looked_`.
  void look_around();
  // About once a second, from park() and (busy) look_around(): trims the stack pool; worker 0 also
  // takes back idle loops' stacks (Config::idle_stack_release).
  void housekeep(Deadline now);
  bool has_local_work() const noexcept;

  Scheduler& scheduler_;
  const bool stealing_;
  const std::uint32_t event_interval_;
  Reactor reactor_;
  RunQueue<Task> queue_;
  moodycamel::ConcurrentQueue<Task*> inbox_;
  // Pinned fibers (SpawnOptions::pinned) wait apart, where no thief looks: queued here by the owner,
  // woken here from other threads. Taken in turns with queue_ and inbox_.
  std::deque<Task*> pinned_;
  moodycamel::ConcurrentQueue<Task*> pinned_inbox_;
  // Fibers that yielded: they run again only after the worker's next look at its backend and timers, so
  // a fiber yielding in a loop lets I/O in (tokio defers a yielded task the same way). Owner only.
  std::vector<Task*> deferred_;
  // Without stealing, deferred fibers that the last looks let go: run in order, before the queue, from
  // looked_[looked_next_] on. Owner only.
  std::vector<Task*> looked_;
  std::size_t looked_next_ = 0;
  Task* lifo_ = nullptr;           // owner only; never stolen
  std::uint32_t lifo_streak_ = 0;  // fibers run from the LIFO slot in a row
  std::uint64_t tick_ = 0;
  std::uint32_t until_look_ = event_interval_;  // fibers to run before the next look_around()
  bool searching_ = false;
  bool run_woken_now_ = false;  // the loop dispatches its reactor's events without stealing: try_run_now()
  std::atomic<bool> sleeping_{false};  // in (or about to enter) a blocking backend wait
  std::atomic<bool> notified_{false};  // unpark() was called since the last park began
  std::uint64_t rng_;
  Deadline last_trim_{};
  const std::chrono::milliseconds release_period_;  // Config::idle_stack_release, worker 0 only (else 0)
  Deadline next_release_{};
  std::uint32_t looks_ = 0;  // look_around() calls, for its occasional housekeep()
  WorkerCounters counters_;
};

}  // namespace fiberio::detail
