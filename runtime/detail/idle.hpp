// runtime/detail/idle.hpp — which workers are searching for work and which are parked, so that new work wakes
// a parked worker only when no searching worker will pick it up (Go's nmspinning/pidle, tokio's Idle).
//
// Protocol (the order matters; docs/design.md gives the proof):
//  - A producer that queued stealable work calls should_wake(): after a seq_cst fence it wakes a parked
//    worker only if nobody searches. claim_parked() counts the woken worker as searching at once, so a
//    burst of producers wakes one worker, not all.
//  - A worker gives up searching in this order: add_parked(self), end_search() (true if it was the last
//    searcher), fence, and, if last, re-scan every queue. A producer that saw "nobody searches" therefore
//    also sees the worker parked and wakes it; one that saw a searcher is covered by the re-scan.
//  - At most half the workers search at once (try_begin_search), so idle workers do not burn every core.
// Thread-safety: any thread; counters are atomics, the parked set is under a mutex.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

namespace fiberio::detail {

class Idle {
 public:
  explicit Idle(std::uint32_t workers) : workers_(workers) { parked_.reserve(workers); }

  bool try_begin_search() noexcept {
    std::uint32_t n = searching_.load(std::memory_order_relaxed);
    do {
      if (2 * n >= workers_ && n > 0) return false;
    } while (!searching_.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst));
    return true;
  }
  // True if the caller was the last searcher.
  bool end_search() noexcept { return searching_.fetch_sub(1, std::memory_order_seq_cst) == 1; }

  void add_parked(std::uint32_t worker) {
    std::lock_guard lock(mutex_);
    parked_.push_back(worker);
    parked_count_.fetch_add(1, std::memory_order_seq_cst);
  }
  // True if `worker` was still parked (nobody claimed it); false if a producer claimed it, which then
  // counted it as searching.
  bool remove_parked(std::uint32_t worker) {
    std::lock_guard lock(mutex_);
    auto it = std::find(parked_.begin(), parked_.end(), worker);
    if (it == parked_.end()) return false;
    parked_.erase(it);
    parked_count_.fetch_sub(1, std::memory_order_seq_cst);
    return true;
  }

  // A parked worker to wake because stealable work appeared and nobody searches; nullopt if none needed.
  std::optional<std::uint32_t> should_wake() {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (searching_.load(std::memory_order_seq_cst) != 0 ||
        parked_count_.load(std::memory_order_seq_cst) == 0) {
      return std::nullopt;
    }
    std::lock_guard lock(mutex_);
    if (parked_.empty() || searching_.load(std::memory_order_seq_cst) != 0) return std::nullopt;
    const std::uint32_t worker = parked_.back();
    parked_.pop_back();
    parked_count_.fetch_sub(1, std::memory_order_seq_cst);
    searching_.fetch_add(1, std::memory_order_seq_cst);
    return worker;
  }

  std::uint32_t searching() const noexcept { return searching_.load(std::memory_order_relaxed); }

 private:
  const std::uint32_t workers_;
  std::atomic<std::uint32_t> searching_{0};
  std::atomic<std::uint32_t> parked_count_{0};
  std::mutex mutex_;
  std::vector<std::uint32_t> parked_;
};

}  // namespace fiberio::detail
