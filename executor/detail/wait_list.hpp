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

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>

namespace fiberio::detail {

struct Waiter {
  Fiber* fiber = nullptr;  // nullptr: a plain thread waits on `thread_woken`
  std::uint64_t ticket = 0;
  std::atomic<std::uint32_t> thread_woken{0};
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  bool linked = false;

  // True if this call woke the waiter (false: it was already woken, timed out or cancelled).
  bool wake(WakeReason why = WakeReason::notified) noexcept {
    if (fiber) return fiber->wake(ticket, why);
    if (thread_woken.exchange(1, std::memory_order_release) != 0) return false;
    thread_woken.notify_one();
    return true;
  }
};

class WaitList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }

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

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

// Suspends the caller (fiber or plain thread) on `list` until woken, the deadline passes (fibers only) or
// the fiber is cancelled. `lock` guards `list`: held on entry, held again on return, the waiter unlinked.
// `before_suspend` runs after the waiter is queued and `lock` released (a condition variable releases the
// user's mutex there). Returns why it woke; throws nothing (callers decide whether cancellation throws).
// A plain thread has no deadline and cannot be cancelled: it waits until notified.
template <class BeforeSuspend>
WakeReason suspend_on(WaitList& list, std::unique_lock<std::mutex>& lock, std::optional<Deadline> deadline,
                      BeforeSuspend&& before_suspend) {
  Waiter waiter;
  Fiber* self = Fiber::current();
  if (self) {
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
    while (waiter.thread_woken.load(std::memory_order_acquire) == 0) {
      waiter.thread_woken.wait(0, std::memory_order_acquire);
    }
  }
  lock.lock();
  list.remove(waiter);
  return why;
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
