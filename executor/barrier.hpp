// executor/barrier.hpp — lets a fixed number of fibers (or threads) wait for each other, round after round
// (tokio's Barrier, std::barrier for fibers).
//
//   fiberio::Barrier ready{workers};
//   ... in each of the `workers` fibers:
//   if (ready.wait()) log("all here");   // true for exactly one of them per round: the last to arrive
//
// A round completes when `parties` calls of wait() have arrived; they all return, and the barrier is
// ready for the next round. A waiter that is cancelled leaves its round (it no longer counts as arrived)
// and throws Cancelled, so the others keep waiting for a full round instead of being released one short.
// Thread-safety: any fiber or thread.
#pragma once

#include <fiberio/executor/detail/wait_list.hpp>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>

namespace fiberio {

class Barrier {
 public:
  // Throws std::invalid_argument for 0 parties.
  explicit Barrier(std::size_t parties) : parties_(parties) {
    if (parties == 0) throw std::invalid_argument("fiberio::Barrier: needs at least one party");
  }

  // Waits for the round to fill; true for the call that completed it (the leader). Throws Cancelled.
  bool wait() {
    std::unique_lock guard(mutex_);
    const std::uint64_t round = round_;
    if (++arrived_ == parties_) {
      arrived_ = 0;
      ++round_;
      waiters_.wake_all();
      return true;
    }
    while (round_ == round) {
      if (detail::suspend_on(waiters_, guard) == detail::WakeReason::cancelled) {
        if (round_ == round) --arrived_;  // leaves the round it did not complete
        throw Cancelled{};
      }
    }
    return false;
  }

  std::size_t parties() const noexcept { return parties_; }

 private:
  std::mutex mutex_;
  const std::size_t parties_;
  std::size_t arrived_ = 0;
  std::uint64_t round_ = 0;
  detail::WaitList waiters_{"barrier"};
};

}  // namespace fiberio
