#include <fiberio/net/blocking_pool.hpp>

#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

namespace fiberio::detail {

// Shared with the pool threads (detached), so it lives as long as the last of them.
struct BlockingPool::State {
  mutable std::mutex mutex;
  std::condition_variable work;                      // signalled when a job is queued
  std::deque<std::move_only_function<void()>> jobs;  // guarded by mutex
  std::size_t threads = 0;                           // guarded by mutex
  std::size_t idle = 0;                              // threads waiting on `work`; guarded by mutex
  std::size_t max_threads = 64;                      // guarded by mutex
  std::chrono::milliseconds idle_timeout{10'000};    // guarded by mutex
};

void BlockingPool::thread_main(std::shared_ptr<State> state) {
  // Signals go to the threads that expect them (signals.hpp), never to a pool thread.
  sigset_t all;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::unique_lock lock(state->mutex);
  // More threads than the limit (it was lowered): this one leaves before it takes another job.
  auto surplus = [&] { return state->threads > state->max_threads; };
  for (;;) {
    if (surplus()) break;
    if (state->jobs.empty()) {
      // Idle for idle_timeout (re-read on each wake-up, so set_limits applies to waiting threads): exit.
      const auto idle_since = std::chrono::steady_clock::now();
      bool expired = false;
      ++state->idle;
      while (state->jobs.empty() && !expired && !surplus()) {
        expired = state->work.wait_until(lock, idle_since + state->idle_timeout) == std::cv_status::timeout &&
                  state->jobs.empty();
      }
      --state->idle;
      if (expired || surplus()) break;
    }
    auto job = std::move(state->jobs.front());
    state->jobs.pop_front();
    lock.unlock();
    job();
    job = nullptr;  // destroy the job's captures outside the lock
    lock.lock();
  }
  --state->threads;
  // A job this thread was woken for, but left queued, goes to another thread (at least one remains:
  // a surplus thread leaves only while more than max_threads >= 1 exist).
  if (!state->jobs.empty()) state->work.notify_one();
}

BlockingPool::BlockingPool() : state_(std::make_shared<State>()) {}

BlockingPool& BlockingPool::instance() {
  // Never destroyed: detached pool threads may still run jobs while static destructors run at exit.
  static BlockingPool* const pool = new BlockingPool();
  return *pool;
}

void BlockingPool::submit(std::move_only_function<void()> job) {
  std::unique_lock lock(state_->mutex);
  state_->jobs.push_back(std::move(job));
  // Start a thread when the queued jobs outnumber the idle threads that will take them.
  if (state_->jobs.size() > state_->idle && state_->threads < state_->max_threads) {
    try {
      std::thread(thread_main, state_).detach();
      ++state_->threads;
    } catch (const std::system_error&) {
      if (state_->threads == 0) {
        state_->jobs.pop_back();
        throw;  // nobody would ever run it
      }
    }
  }
  state_->work.notify_one();
}

BlockingPoolStats BlockingPool::stats() const {
  std::lock_guard lock(state_->mutex);
  return BlockingPoolStats{state_->threads, state_->idle, state_->jobs.size()};
}

void BlockingPool::set_limits(std::size_t max_threads, std::chrono::milliseconds idle_timeout) {
  std::lock_guard lock(state_->mutex);
  state_->max_threads = max_threads < 1 ? 1 : max_threads;
  state_->idle_timeout = idle_timeout;
  state_->work.notify_all();  // idle threads re-wait with the new timeout
}

}  // namespace fiberio::detail
