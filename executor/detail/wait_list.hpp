// executor/detail/wait_list.hpp — the parking lot shared by every blocking primitive: a FIFO of waiters, each
// a fiber (woken through its wait ticket) or a plain thread (woken through a futex word).
//
// Thread-safety: a WaitList is not synchronised; its owner guards it with a mutex and passes that lock to
// suspend_on(). Invariants: a Waiter is linked in at most one list; wakers only touch a Waiter while holding
// the list's lock, and suspend_on() retakes that lock before its Waiter (on the waiting stack) goes away, so
// a waker never touches a dead Waiter.
#pragma once

#include <fiberio/executor/cancelled.hpp>
#include <fiberio/executor/clock.hpp>
#include <fiberio/executor/detail/fiber.hpp>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <optional>
#include <utility>

namespace fiberio::detail {

// A plain thread's wait on a futex word: sleeps while `word` holds `expected`, until woken or `deadline`
// (steady_clock is CLOCK_MONOTONIC, so the deadline is passed as an absolute time). Raw futex calls on
// both sides: std::atomic::wait() has no timeout, and its notify may skip the wake-up of a sleeper that
// it did not count.
inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       std::optional<Deadline> deadline) noexcept {
  timespec at{};
  const timespec* timeout = nullptr;
  if (deadline && *deadline != Deadline::max()) {
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline->time_since_epoch()).count();
    at = timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    timeout = &at;
  }
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_BITSET_PRIVATE, expected, timeout,
            nullptr, FUTEX_BITSET_MATCH_ANY);
}

inline void futex_wake_one(std::atomic<std::uint32_t>& word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

struct Waiter {
  static constexpr std::uint32_t kThreadWaiting = 0, kThreadWoken = 1, kThreadTimedOut = 2;

  Fiber* fiber = nullptr;  // nullptr: a plain thread waits on `thread_woken`
  std::uint64_t ticket = 0;
  std::atomic<std::uint32_t> thread_woken{kThreadWaiting};
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  bool linked = false;
  // This waiter's wake won the wait: written by the waker under the list's lock, read under it (select()
  // learns from it which of its waits woke it).
  bool woke = false;

  // True if this call woke the waiter (false: it was already woken, timed out or cancelled).
  bool wake(WakeReason why = WakeReason::notified) noexcept {
    if (fiber) {
      if (!fiber->win(ticket, why)) return false;
      woke = true;  // before the vote, which may run the fiber
      fiber->vote_woken();
      return true;
    }
    // Only one of this and the thread's own timeout moves the word off kThreadWaiting.
    std::uint32_t expected = kThreadWaiting;
    if (!thread_woken.compare_exchange_strong(expected, kThreadWoken, std::memory_order_acq_rel))
      return false;
    woke = true;
    futex_wake_one(thread_woken);
    return true;
  }
};

class WaitList {
 public:
  // `what` names what its waiters wait on, in the fiber dump (a static string: "mutex", "channel"...);
  // nullptr: the owner names each wait itself (Fiber::note_wait) before suspend_on().
  explicit WaitList(const char* what = "wait list") noexcept : what_(what) {}
  const char* what() const noexcept { return what_; }

  bool empty() const noexcept { return head_ == nullptr; }
  Waiter* front() const noexcept { return head_; }

  void push_back(Waiter& w) noexcept {
    w.prev = tail_;
    w.next = nullptr;
    if (tail_) {
      tail_->next = &w;
    } else {
      head_ = &w;
    }
    tail_ = &w;
    w.linked = true;
  }

  void remove(Waiter& w) noexcept {
    if (!w.linked) return;
    (w.prev ? w.prev->next : head_) = w.next;
    (w.next ? w.next->prev : tail_) = w.prev;
    w.prev = w.next = nullptr;
    w.linked = false;
  }

  // Unlinks waiters from the front until one accepts the wake-up; returns it, or nullptr if none did.
  // Waiters that refused (timed out or cancelled meanwhile) are unlinked too: they are leaving anyway.
  Waiter* wake_one(WakeReason why = WakeReason::notified) noexcept {
    while (head_) {
      Waiter* w = head_;
      remove(*w);
      if (w->wake(why)) return w;
    }
    return nullptr;
  }

  std::size_t wake_all(WakeReason why = WakeReason::notified) noexcept {
    std::size_t woken = 0;
    while (wake_one(why))
      ++woken;
    return woken;
  }

  // wake_all() in two steps, for a waker that must not let a fiber run while it holds the list's lock (a
  // reactor's dispatch may run a woken fiber at once, and that fiber retakes the lock): under the lock,
  // win_all() unlinks every waiter and wins the fibers' waits, returning the winners chained through
  // `next` (a plain thread is woken at once: that runs nothing here); after unlocking, vote_all() casts
  // their votes. Until its vote no winner can run, so its waiter (on its stack) is still there.
  Waiter* win_all(WakeReason why = WakeReason::notified) noexcept {
    Waiter* won = nullptr;
    Waiter** last = &won;
    while (Waiter* w = head_) {
      remove(*w);
      if (!w->fiber) {
        w->wake(why);
      } else if (w->fiber->win(w->ticket, why)) {
        w->woke = true;
        *last = w;
        last = &w->next;
      }
    }
    return won;
  }
  static void vote_all(Waiter* won) noexcept {
    while (won) {
      Waiter* next = won->next;  // read before the vote: after it the waiter may be gone
      won->fiber->vote_woken();
      won = next;
    }
  }

 private:
  const char* what_;
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

// Suspends the caller (fiber or plain thread) on `list` until woken, the deadline passes (fibers only) or
// the fiber is cancelled. `lock` guards `list`: held on entry, held again on return, the waiter unlinked.
// `before_suspend` runs after the waiter is queued and `lock` released (a condition variable releases the
// user's mutex there). Returns why it woke; throws nothing (callers decide whether cancellation throws).
// A plain thread sleeps on a futex until notified or the deadline; it cannot be cancelled. As with a
// fiber, exactly one of the wake-up and the timeout wins: a waker that finds the thread timed out moves on.
// With a waiter the caller provides (a primitive that keeps more per waiter derives from Waiter, and its
// wakers static_cast back; the waiter must be fresh).
template <class BeforeSuspend>
WakeReason suspend_on(WaitList& list, Waiter& waiter, std::unique_lock<std::mutex>& lock,
                      std::optional<Deadline> deadline, BeforeSuspend&& before_suspend) {
  Fiber* self = Fiber::current();
  if (self) {
    if (list.what()) self->note_wait(list.what());
    waiter.fiber = self;
    waiter.ticket = self->prepare_wait();
  }
  list.push_back(waiter);
  lock.unlock();
  before_suspend();
  WakeReason why = WakeReason::notified;
  if (self) {
    why = self->suspend_until(waiter.ticket, deadline);
  } else {
    while (waiter.thread_woken.load(std::memory_order_acquire) == Waiter::kThreadWaiting) {
      if (deadline && Clock::now() >= *deadline) {
        std::uint32_t expected = Waiter::kThreadWaiting;
        if (waiter.thread_woken.compare_exchange_strong(expected, Waiter::kThreadTimedOut,
                                                        std::memory_order_acq_rel)) {
          why = WakeReason::timeout;
        }
        break;  // timed out, or a waker won just before: either way the wait is over
      }
      futex_wait(waiter.thread_woken, Waiter::kThreadWaiting, deadline);
    }
  }
  lock.lock();
  list.remove(waiter);
  return why;
}

template <class BeforeSuspend>
WakeReason suspend_on(WaitList& list, std::unique_lock<std::mutex>& lock, std::optional<Deadline> deadline,
                      BeforeSuspend&& before_suspend) {
  Waiter waiter;
  return suspend_on(list, waiter, lock, deadline, std::forward<BeforeSuspend>(before_suspend));
}

inline WakeReason suspend_on(WaitList& list, std::unique_lock<std::mutex>& lock,
                             std::optional<Deadline> deadline = {}) {
  return suspend_on(list, lock, deadline, [] {});
}

// Throws Cancelled if `why` says so; the usual tail of a blocking call.
inline void throw_if_cancelled(WakeReason why) {
  if (why == WakeReason::cancelled) throw Cancelled{};
}

}  // namespace fiberio::detail
