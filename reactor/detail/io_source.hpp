// reactor/detail/io_source.hpp — the readiness state of one registered fd, and the fibers waiting on it.
//
// Protocol (per direction; see docs/design.md "How an fd wait flows"):
//  - `state` is one atomic word: bit 0 says the direction is ready (no operation has seen it drained since
//    the last event), bit 1 that it closed (sticky), the other bits count readiness events (the epoch). An
//    operation reads it with one load, tries the syscall while ready, and on EAGAIN calls
//    Reactor::wait_ready(dir, seen), which clears the ready bit only if the epoch is still the one it saw
//    (clear_if_unchanged), then parks.
//  - Parking is lock-free for the usual single waiter: the fiber publishes a ParkedFiber record (fiber and
//    wait ticket, on its own stack) in `parked` with one compare-exchange from empty, then looks at the
//    epoch again (seq_cst); a changed epoch means an event raced in, and it takes the record back and
//    retries. An event (signal()) bumps the epoch and sets the ready bit (seq_cst), then looks at `parked`:
//    the two form a Dekker pair, so a waiter is either seen or sees the event. The waker takes the record
//    by swapping in kTaking, reads it and wins the fiber's wait (Fiber::win), puts back empty, and only then
//    casts its vote (which may run the fiber elsewhere). A waiter that leaves on its own (timeout,
//    cancellation) takes its record back with a compare-exchange; if a waker holds it (kTaking) it waits
//    the few instructions until the waker lets go, so no waker ever reads a dead record.
//  - A second fiber waiting in the same direction while the slot is taken queues in `waiters` under
//    `mutex` and counts itself in `waiting` (same Dekker pair with signal(), which returns whether to lock).
//  - A short stream read or write (fewer bytes than asked) drained the direction: clear_if_drained(seen)
//    clears the ready bit unless an event came since the snapshot, so the next call suspends at once
//    instead of spending a syscall on EAGAIN. A direction whose event said closed (peer hang-up, error)
//    keeps its ready bit: that condition is reported once by an edge-triggered backend, and a short read
//    of the last bytes before the end of stream must not hide it (the hang that stopped the first try).
//  - Every waiter of a direction is woken (they retry; the losers park again); a waiter that timed out or
//    was cancelled simply refuses the wake, it never swallows readiness meant for another.
// Thread-safety: `state`, `parked`, `waiting`, `generation` and `write_armed` are atomics, for any thread;
// `fd` and the waiter lists are guarded by `mutex`; `slot` is fixed when the slab chunk is made. The owning
// reactor's slab keeps the memory alive for the reactor's whole life, and `generation` tells a stale token or
// handle from a live one.
#pragma once

#include <fiberio/executor/detail/timer_queue.hpp>
#include <fiberio/executor/detail/wait_list.hpp>
#include <fiberio/reactor/backend.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>

namespace fiberio::detail {

class Reactor;

// What a lone parked fiber publishes in Direction::parked: lives on its stack for the length of the wait.
struct ParkedFiber {
  Fiber* fiber;
  std::uint64_t ticket;
};

struct IoSource {
  struct Direction {
    static constexpr std::uint32_t kReady = 1;
    static constexpr std::uint32_t kClosed = 2;  // sticky: the peer closed or the fd failed (ReadinessEvent)
    static constexpr std::uint32_t kEpochStep = 4;

    std::atomic<std::uint32_t> state{kReady};  // optimistic: a fresh fd is tried before anyone waits
    static constexpr std::uintptr_t kEmpty = 0;
    static constexpr std::uintptr_t kTaking = 1;  // a waker is reading the record it took

    std::atomic<std::uintptr_t> parked{kEmpty};  // kEmpty, kTaking, or a ParkedFiber*
    std::atomic<std::uint32_t> waiting{0};       // fibers queued in `waiters` (changed under the mutex)
    WaitList waiters{nullptr};                   // under the source's mutex; the reactor names the waits

    static bool ready(std::uint32_t s) noexcept { return (s & kReady) != 0; }
    static std::uint32_t epoch(std::uint32_t s) noexcept { return s & ~(kReady | kClosed); }

    std::uint32_t snapshot() const noexcept { return state.load(std::memory_order_acquire); }
    // An event: a new epoch, ready (and closed, sticky, if the event says so). Returns whether fibers may
    // be waiting (the caller then wakes them). One compare-exchange: the new epoch and the ready bit land
    // together, so nobody ever sees the new epoch not ready (a clear against it would then hide this
    // event). Adding kEpochStep leaves the two flag bits alone, so the closed bit stays sticky.
    bool signal(bool closed = false) noexcept {
      const std::uint32_t set = kReady | (closed ? kClosed : 0);
      std::uint32_t s = state.load(std::memory_order_relaxed);
      while (!state.compare_exchange_weak(s, (s + kEpochStep) | set, std::memory_order_seq_cst,
                                          std::memory_order_relaxed)) {
      }
      return waiting.load(std::memory_order_seq_cst) != 0;
    }
    // The waiting fiber: publishes `record` if nobody else is parked here; false if the slot is taken.
    bool try_park(ParkedFiber& record) noexcept {
      std::uintptr_t expected = kEmpty;
      return parked.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(&record),
                                            std::memory_order_seq_cst, std::memory_order_relaxed);
    }
    // The waiting fiber, leaving: takes `record` back. False if a waker took it (the wait is then won or
    // being won); either way the record is no longer read by anyone when this returns.
    bool unpark(ParkedFiber& record) noexcept {
      std::uintptr_t expected = reinterpret_cast<std::uintptr_t>(&record);
      if (parked.compare_exchange_strong(expected, kEmpty, std::memory_order_acq_rel,
                                         std::memory_order_acquire))
        return true;
      // Only the waker that swapped in kTaking puts kEmpty back: any other value means it let go of ours.
      for (unsigned spins = 0; parked.load(std::memory_order_acquire) == kTaking; ++spins)
        relax(spins);
      return false;
    }
    // A waker, after signal(): wakes the parked fiber, if any. Lock-free; any thread.
    void wake_parked(WakeReason why = WakeReason::notified) noexcept {
      std::uintptr_t seen = parked.load(std::memory_order_seq_cst);
      if (seen <= kTaking) return;  // empty, or another waker is already waking it
      if (!parked.compare_exchange_strong(seen, kTaking, std::memory_order_acquire,
                                          std::memory_order_relaxed))
        return;  // it left, or another waker took it; a newcomer sees our epoch (Dekker)
      const auto* record = reinterpret_cast<const ParkedFiber*>(seen);
      Fiber* fiber = record->fiber;
      const bool won = fiber->win(record->ticket, why);
      parked.store(kEmpty, std::memory_order_release);  // from here the record may be gone
      if (won) fiber->vote_woken();                     // the fiber cannot run before this vote
    }

    // After EAGAIN: clears the ready bit if no event came since `seen` was read; false if one did.
    bool clear_if_unchanged(std::uint32_t seen) noexcept { return clear(seen, false); }
    // After a short transfer: likewise, but a closed direction stays ready (its end of stream or error
    // must still be read, and an edge-triggered backend will not report it again).
    bool clear_if_drained(std::uint32_t seen) noexcept { return clear(seen, true); }

   private:
    // A waker holds kTaking for a handful of instructions; yield the CPU only if it was preempted there.
    static void relax(unsigned spins) noexcept {
      if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
      } else {
        std::this_thread::yield();
      }
    }
    bool clear(std::uint32_t seen, bool keep_if_closed) noexcept {
      std::uint32_t s = state.load(std::memory_order_acquire);  // not `seen`: it may be stale
      while (epoch(s) == epoch(seen)) {
        if (!ready(s)) return true;
        if (keep_if_closed && (s & kClosed)) return false;
        if (state.compare_exchange_weak(s, s & ~kReady, std::memory_order_acq_rel, std::memory_order_acquire))
          return true;
      }
      return false;
    }
  };

  std::mutex mutex;
  std::atomic<std::uint32_t> generation{0};  // bumped (under mutex) when the slot is freed
  std::uint32_t slot = 0;                    // this source's index in the slab; set once
  // A first_write backend (Reactor::must_arm) watches this fd for writes: set by the first arm() for a
  // write, cleared when the slot is registered again; changed under `mutex`, read without it as a hint.
  std::atomic<bool> write_armed{false};
  int fd = -1;
  Direction directions[2];  // [0] read, [1] write

  static int index(Interest direction) {
    return direction == Interest::write ? 1 : 0;
  }
};

// An idle loop's wait for readability (Reactor::wait_idle): what a wait otherwise keeps on the waiting
// fiber's stack, the parked record and the deadline's timer, so that the stack may go while it lasts
// (Fiber::release_idle_stack). Owned by the idle loop's task; one wait at a time; touched only by the
// fiber (and, through `record`, by the waker that takes it).
struct IdleWait {
  ParkedFiber record{};
  IoSource::Direction* parked_in = nullptr;  // where `record` was published, until end()
  TimerQueue* timers = nullptr;              // the deadline's timer, until end()
  TimerHandle timer{};

  // Closes the wait, whatever ended it (`why`): takes the record back unless the waker that woke us took
  // it, and cancels the timer.
  void end(WakeReason why) noexcept {
    if (parked_in && why != WakeReason::notified) parked_in->unpark(record);
    parked_in = nullptr;
    if (timers) timers->cancel(timer);
    timers = nullptr;
  }
};

// A counted reference to a live IoSource: what an AsyncFd holds.
struct SourceHandle {
  Reactor* reactor = nullptr;
  IoSource* source = nullptr;
  std::uint32_t generation = 0;
  int fd = -1;
  explicit operator bool() const noexcept { return source != nullptr; }
};

}  // namespace fiberio::detail
