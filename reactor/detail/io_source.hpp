// reactor/detail/io_source.hpp — the readiness state of one registered fd, and the fibers waiting on it.
//
// Protocol (per direction; see docs/design.md "How an fd wait flows"):
//  - `state` is one atomic word: bit 0 says the direction is ready (no operation has seen it drained since
//    the last event), the other bits count readiness events (the epoch). An operation reads it with one
//    load (no lock), tries the syscall while ready, and then:
//      on EAGAIN it calls Reactor::wait_ready(dir, seen): under `mutex` it clears the ready bit only if the
//      epoch is still the one it saw (clear_if_unchanged), queues the fiber, announces it in `waiting` and
//      checks the epoch again (seq_cst); a changed epoch means an event raced in, and it returns at once.
//  - An event (signal()) bumps the epoch and sets the ready bit in one compare-exchange (seq_cst), then
//    takes `mutex` and wakes every waiter only if `waiting` says someone is queued. `waiting` and `state`
//    form a Dekker pair with the waiter's announce-then-recheck, so a waiter is either seen or sees the
//    event. The lock is touched only when a fiber really parks.
//  - A short stream read or write (fewer bytes than asked) drained the direction: clear_if_drained(seen)
//    clears the ready bit unless an event came since the snapshot, so the next call suspends at once
//    instead of spending a syscall on EAGAIN. A direction whose event said closed (peer hang-up, error)
//    keeps its ready bit: that condition is reported once by an edge-triggered backend, and a short read
//    of the last bytes before the end of stream must not hide it (the hang that stopped the first try).
//  - Every waiter of a direction is woken (they retry; the losers park again); a waiter that timed out or
//    was cancelled simply refuses the wake, it never swallows readiness meant for another.
// Thread-safety: `state`, `waiting` and `generation` are atomics, for any thread; `fd`, `slot` and the
// waiter lists are guarded by `mutex`. The owning reactor's slab keeps the memory alive for the reactor's
// whole life, and `generation` tells a stale token or handle from a live one.
#pragma once

#include <fiberio/executor/detail/wait_list.hpp>
#include <fiberio/reactor/backend.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>

namespace fiberio::detail {

class Reactor;

struct IoSource {
  struct Direction {
    static constexpr std::uint32_t kReady = 1;
    static constexpr std::uint32_t kClosed = 2;  // sticky: the peer closed or the fd failed (ReadinessEvent)
    static constexpr std::uint32_t kEpochStep = 4;

    std::atomic<std::uint32_t> state{kReady};  // optimistic: a fresh fd is tried before anyone waits
    std::atomic<std::uint32_t> waiting{0};     // fibers queued in `waiters` (changed under the mutex)
    WaitList waiters;                          // under the source's mutex

    static bool ready(std::uint32_t s) noexcept { return (s & kReady) != 0; }
    static std::uint32_t epoch(std::uint32_t s) noexcept { return s & ~(kReady | kClosed); }

    std::uint32_t snapshot() const noexcept { return state.load(std::memory_order_acquire); }
    // An event: a new epoch, ready (and closed, sticky, if the event says so). Returns whether fibers may
    // be waiting (the caller then wakes them).
    bool signal(bool closed = false) noexcept {
      const std::uint32_t add = kReady | (closed ? kClosed : 0);
      std::uint32_t s = state.load(std::memory_order_relaxed);
      while (!state.compare_exchange_weak(s, ((s & ~kReady) + kEpochStep) | (s & kClosed) | add,
                                          std::memory_order_seq_cst, std::memory_order_relaxed)) {
      }
      return waiting.load(std::memory_order_seq_cst) != 0;
    }
    // After EAGAIN: clears the ready bit if no event came since `seen` was read; false if one did.
    bool clear_if_unchanged(std::uint32_t seen) noexcept { return clear(seen, false); }
    // After a short transfer: likewise, but a closed direction stays ready (its end of stream or error
    // must still be read, and an edge-triggered backend will not report it again).
    bool clear_if_drained(std::uint32_t seen) noexcept { return clear(seen, true); }

   private:
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
  std::uint32_t slot = 0;
  int fd = -1;
  Direction directions[2];  // [0] read, [1] write

  static int index(Interest direction) { return direction == Interest::write ? 1 : 0; }
};

// A counted reference to a live IoSource: what an AsyncFd holds.
struct SourceHandle {
  Reactor* reactor = nullptr;
  IoSource* source = nullptr;
  std::uint32_t generation = 0;
  explicit operator bool() const noexcept { return source != nullptr; }
};

}  // namespace fiberio::detail
