// executor/rw_lock.hpp — a read-write lock for fibers: many readers or one writer (tokio's RwLock,
// std::shared_mutex for fibers; use it with std::shared_lock and std::unique_lock).
//
//   fiberio::RwLock lock;
//   { std::shared_lock read(lock); use(table); }       // any number at once
//   { std::unique_lock write(lock); table.update(); }   // alone
//
// Fair: waiters are served in arrival order, readers behind a waiting writer wait for it, so a stream of
// readers cannot starve a writer (tokio's choice; std::shared_mutex leaves it open). An unlock hands the
// lock straight to the waiters at the front: a writer, or every reader up to the next writer. A waiter that
// times out or is cancelled refuses the hand-off and lets the ones behind it in. Waiting calls throw
// Cancelled; plain threads block. Thread-safety: any fiber or thread, on any worker.
// Invariant: writer_ and readers_ > 0 never hold together; waiters queue only while the lock is taken
// (or others queue before them).
#pragma once

#include <fiberio/executor/clock.hpp>
#include <fiberio/executor/detail/wait_list.hpp>

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>

namespace fiberio {

class RwLock {
 public:
  void lock() { detail::throw_if_cancelled(acquire(true, std::nullopt)); }
  bool try_lock() {
    std::lock_guard guard(mutex_);
    return take_locked(true);
  }
  // False if the deadline passed first. Throws Cancelled.
  bool try_lock_until(Deadline deadline) { return limited(true, deadline); }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> limit) {
    return try_lock_until(deadline_after(limit));
  }
  void unlock() {
    std::lock_guard guard(mutex_);
    writer_ = false;
    grant_locked();
  }

  void lock_shared() { detail::throw_if_cancelled(acquire(false, std::nullopt)); }
  bool try_lock_shared() {
    std::lock_guard guard(mutex_);
    return take_locked(false);
  }
  bool try_lock_shared_until(Deadline deadline) { return limited(false, deadline); }
  template <class Rep, class Period>
  bool try_lock_shared_for(std::chrono::duration<Rep, Period> limit) {
    return try_lock_shared_until(deadline_after(limit));
  }
  void unlock_shared() {
    std::lock_guard guard(mutex_);
    if (--readers_ == 0) grant_locked();
  }

 private:
  struct Waiter : detail::Waiter {
    bool writer = false;
  };

  // Takes the lock if it is free for this kind and nobody waits before us.
  bool take_locked(bool writer) {
    if (!waiters_.empty() || writer_ || (writer && readers_ != 0)) return false;
    if (writer) {
      writer_ = true;
    } else {
      ++readers_;
    }
    return true;
  }

  detail::WakeReason acquire(bool writer, std::optional<Deadline> deadline) {
    std::unique_lock guard(mutex_);
    if (take_locked(writer)) return detail::WakeReason::notified;
    Waiter waiter;
    waiter.writer = writer;
    const auto why = detail::suspend_on(waiters_, waiter, guard, deadline, [] {});
    // Notified: an unlock handed us the lock. Otherwise we may have held up the waiters behind us.
    if (why != detail::WakeReason::notified) grant_locked();
    return why;
  }

  bool limited(bool writer, Deadline deadline) {
    const auto why = acquire(writer, deadline);
    detail::throw_if_cancelled(why);
    return why == detail::WakeReason::notified;
  }

  // Hands the lock to the waiters at the front while they fit: one writer, or readers up to a writer.
  void grant_locked() {
    while (detail::Waiter* front = waiters_.front()) {
      auto* next = static_cast<Waiter*>(front);
      if (writer_ || (next->writer && readers_ != 0)) return;
      waiters_.remove(*next);
      if (!next->wake()) continue;  // it timed out or was cancelled meanwhile
      if (next->writer) {
        writer_ = true;
        return;
      }
      ++readers_;
    }
  }

  std::mutex mutex_;  // guards everything below, held only for a few instructions
  bool writer_ = false;
  std::size_t readers_ = 0;
  detail::WaitList waiters_{"rw lock"};
};

}  // namespace fiberio
