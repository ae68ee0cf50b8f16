// net/blocking_pool.hpp — spawn_blocking(): runs a blocking call (getaddrinfo, a file read, a slow library
// call) on a separate thread pool, so that it stalls no worker, and hands its result to the caller.
//
//   auto size = fiberio::spawn_blocking([path] { return std::filesystem::file_size(path); });
//
// From a fiber, only the fiber waits (on a fiberio::Event); from a plain thread, the thread blocks. The
// result comes back by value, or the job's exception is rethrown in the caller.
// Cancellation: a cancelled caller stops waiting at once (it throws Cancelled) but the job cannot be
// interrupted and runs to its end, its result dropped. So the job must OWN what it uses: capture by
// value, never references into the caller's stack.
//
// The pool (detail::BlockingPool, one per process, created on first use and never destroyed) starts a
// thread when a job finds no idle one, up to max_threads (64); beyond that jobs queue in FIFO order. A
// thread with no job for idle_timeout (10 s) exits, so an idle process keeps no pool threads. Pool threads
// block every signal, so signalfd-based listeners (signals.hpp) never lose a signal to them.
// Thread-safety: every function here may be called from any fiber or thread.
// Invariants: no job starts while threads > max_threads (after set_limits lowers the limit, idle threads
// above it leave at once and busy ones when their job ends); a queued job is taken by exactly one thread; the
// pool's state outlives every pool thread (each holds a reference to it).
#pragma once

#include <fiberio/executor/event.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace fiberio {

struct BlockingPoolStats {
  std::size_t threads = 0;  // alive pool threads
  std::size_t idle = 0;     // of which waiting for a job
  std::size_t queued = 0;   // jobs not yet taken by a thread
};

namespace detail {

class BlockingPool {
 public:
  static BlockingPool& instance();

  // Queues `job`, starting a thread if none is idle and the limit allows. Throws std::system_error if no
  // thread exists and none can be started (the job would never run).
  void submit(std::move_only_function<void()> job);  // `job` must not throw

  BlockingPoolStats stats() const;
  // Tuning and tests: the thread limit (>= 1) and how long an idle thread waits before it exits. A lower
  // limit applies at once to idle threads and to busy ones as they finish.
  void set_limits(std::size_t max_threads, std::chrono::milliseconds idle_timeout);

 private:
  struct State;
  BlockingPool();
  static void thread_main(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

// The rendezvous between a job and its caller; shared because a cancelled caller may leave first.
template <class R>
struct BlockingResult {
  Event done{"blocking pool"};
  std::optional<R> value;
  std::exception_ptr error;
};
template <>
struct BlockingResult<void> {
  Event done{"blocking pool"};
  std::exception_ptr error;
};

}  // namespace detail

template <class F>
std::invoke_result_t<std::decay_t<F>&> spawn_blocking(F&& fn) {
  using R = std::invoke_result_t<std::decay_t<F>&>;
  static_assert(!std::is_reference_v<R>, "spawn_blocking returns values: the job may outlive its caller");
  auto result = std::make_shared<detail::BlockingResult<R>>();
  detail::BlockingPool::instance().submit([result, job = std::forward<F>(fn)]() mutable {
    try {
      if constexpr (std::is_void_v<R>) {
        job();
      } else {
        result->value.emplace(job());
      }
    } catch (...) {
      result->error = std::current_exception();
    }
    result->done.set();
  });
  result->done.wait();  // throws Cancelled; the job keeps `result` alive
  if (result->error) std::rethrow_exception(result->error);
  if constexpr (!std::is_void_v<R>) return std::move(*result->value);
}

}  // namespace fiberio
