// runtime/detail/task.hpp — a fiber as the runtime runs it. Task adds to the executor's Fiber what the
// scheduler keeps per fiber (its scheduler, the worker it belongs to, its links in the registry of live
// fibers); ResultTask<R> is what a JoinHandle<R> sees; FnTask<R, F> adds the callable, destroyed as soon as
// it returns so captured resources (sockets, buffers) are released when the fiber ends, not when the
// handle goes.
// Thread-safety: `home` and the registry links belong to the scheduler (registry links under its registry
// lock). The result is written by the fiber before it is marked finished and read only after finished()
// is observed (release/acquire on the finished flag).
// Invariant: every Fiber the runtime runs is a Task (schedule(Fiber&) relies on it).
#pragma once

#include <fiberio/executor/detail/fiber.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace fiberio::detail {

class Scheduler;

class Task : public Fiber {
 public:
  Task(Scheduler& scheduler, std::string name) : Fiber(std::move(name)), scheduler_(scheduler) {}

  Scheduler& scheduler() const noexcept { return scheduler_; }

  // The worker this fiber belongs to: where it runs next when woken from another thread.
  // Atomic (relaxed: plain moves) only so that the fiber dump may read it while workers run.
  std::atomic<std::uint32_t> home{0};
  // Never leaves `home` (SpawnOptions::pinned): not stolen, woken back onto it. Set before submit.
  bool pinned = false;
  // The scheduler's registry of live fibers (what shutdown cancels).
  Task* registry_prev = nullptr;
  Task* registry_next = nullptr;
  bool shutdown_cancelled = false;  // shutdown has cancelled it once (under the registry lock)
  // An idle loop (runtime/idle_loop.hpp), counted apart so that worker 0 knows to look for idle stacks.
  // Set before submit.
  bool idle_loop = false;
  // The idle wait the last release pass saw open (under the registry lock): released if the next pass
  // finds the same one (Scheduler::release_idle_stacks).
  std::uint64_t idle_seen = 0;

 private:
  Scheduler& scheduler_;
};

template <class R>
class ResultTask : public Task {
 public:
  using Task::Task;
  R take_result() {
    if constexpr (!std::is_void_v<R>) return std::move(*result_);
  }

 protected:
  struct Empty {};
  std::optional<std::conditional_t<std::is_void_v<R>, Empty, R>> result_;
};

template <class R, class F>
class FnTask final : public ResultTask<R> {
 public:
  FnTask(Scheduler& scheduler, std::string name, F fn)
      : ResultTask<R>(scheduler, std::move(name)), fn_(std::move(fn)) {}

 private:
  void run() override {
    struct Reset {
      std::optional<F>& fn;
      ~Reset() { fn.reset(); }
    } reset{fn_};
    if constexpr (std::is_void_v<R>) {
      std::invoke(*fn_);
      this->result_.emplace();
    } else {
      this->result_.emplace(std::invoke(*fn_));
    }
  }

  std::optional<F> fn_;
};

}  // namespace fiberio::detail
