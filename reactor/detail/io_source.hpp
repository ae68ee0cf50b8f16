// reactor/detail/io_source.hpp — the readiness state of one registered fd, and the fibers waiting on it.
//
// Protocol (per direction; see docs/design.md "I/O across workers"):
//  - `epoch` counts readiness events; `ready` says the last operation did not see EAGAIN since then.
//  - An operation snapshots the epoch, tries the syscall while `ready`, and on EAGAIN calls wait(dir, seen):
//    under the lock, a changed epoch means an event raced in, so it returns at once; otherwise it clears
//    `ready`, queues the fiber and parks. An event bumps the epoch, sets `ready` and wakes every waiter of
//    that direction, all under the same lock. So no event between the EAGAIN and the park is lost.
//  - Every waiter of a direction is woken (they retry; the losers park again); a waiter that timed out or
//    was cancelled simply refuses the wake, it never swallows readiness meant for another.
// Thread-safety: all members under `mutex`; the owning reactor's slab keeps the memory alive for the
// reactor's whole life, and `generation` tells a stale token or handle from a live one.
#pragma once

#include <fiberio/executor/detail/wait_list.hpp>
#include <fiberio/reactor/backend.hpp>

#include <cstdint>
#include <mutex>

namespace fiberio::detail {

class Reactor;

struct IoSource {
  struct Direction {
    std::uint32_t epoch = 0;
    bool ready = true;  // optimistic: a fresh fd is tried before anyone waits
    WaitList waiters;
  };

  std::mutex mutex;
  std::uint32_t generation = 0;  // bumped when the slot is freed
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
